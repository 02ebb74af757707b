//! The HTTP endpoints: `/metrics` (Prometheus text; the allocator's counters are read at each
//! scrape), `/healthz` (the process serves) and `/readyz` (caches synced while leading, or a
//! healthy standby).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::sync::watch;

use crate::controller::CacheState;
use crate::k8s::leader::LeaderState;
use crate::serve::heap;
use crate::serve::metrics::Metrics;

/// What the endpoints read.
#[derive(Clone)]
pub struct Health {
    pub metrics: Arc<Metrics>,
    pub caches: Arc<CacheState>,
    /// `None` when leader election is off.
    pub leader: Option<watch::Receiver<LeaderState>>,
}

/// Readiness as a pure function of the state: `Ok` text or `Err` reason.
pub fn readiness(
    caches_synced: bool,
    leader: Option<LeaderState>,
) -> Result<&'static str, &'static str> {
    match leader {
        None | Some(LeaderState::Leading) if caches_synced => Ok("ready"),
        None | Some(LeaderState::Leading) => Err("caches not synced yet"),
        Some(LeaderState::Standby) => Ok("standing by"),
        Some(LeaderState::Starting) => Err("leader election starting"),
        Some(LeaderState::Unreachable) => Err("lease unreachable"),
    }
}

async fn metrics(State(h): State<Health>) -> impl IntoResponse {
    match heap::read() {
        Ok(stats) => h.metrics.heap_read(&stats),
        Err(e) => log::debug!("jemalloc stats unavailable: {e}"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        h.metrics.encode(),
    )
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(h): State<Health>) -> (StatusCode, &'static str) {
    let leader = h.leader.as_ref().map(|rx| *rx.borrow());
    match readiness(h.caches.synced.load(Ordering::Relaxed), leader) {
        Ok(text) => (StatusCode::OK, text),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

pub fn router(health: Health) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(health)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_when_synced_and_leading_or_standing_by() {
        assert!(readiness(true, None).is_ok());
        assert!(readiness(false, None).is_err());
        assert!(readiness(true, Some(LeaderState::Leading)).is_ok());
        assert!(readiness(false, Some(LeaderState::Leading)).is_err());
        assert!(readiness(false, Some(LeaderState::Standby)).is_ok());
        assert!(readiness(true, Some(LeaderState::Unreachable)).is_err());
        assert!(readiness(false, Some(LeaderState::Starting)).is_err());
    }

    #[tokio::test]
    async fn endpoints_answer_over_http() {
        let metrics = Arc::new(Metrics::new());
        metrics.provision_done(true, "created");
        let caches = Arc::new(CacheState::default());
        let app = router(Health {
            metrics,
            caches: Arc::clone(&caches),
            leader: None,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let get = |path: &'static str| crate::tests::fixtures::http_get(addr, path);
        assert!(get("/healthz").await.starts_with("HTTP/1.1 200"));
        assert!(get("/readyz").await.starts_with("HTTP/1.1 503"));
        caches.synced.store(true, Ordering::Relaxed);
        assert!(get("/readyz").await.starts_with("HTTP/1.1 200"));
        let m = get("/metrics").await;
        assert!(
            m.contains("flashvol_provisions_total{outcome=\"success\",reason=\"created\"} 1"),
            "{m}"
        );
        // Read from the allocator at each scrape.
        assert!(m.contains("flashvol_heap_bytes{kind=\"resident\"} "), "{m}");
    }
}
