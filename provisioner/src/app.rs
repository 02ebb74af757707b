//! The program's start-up: configuration, array and Kubernetes clients, leader election (the
//! controllers run only while this replica leads), the HTTP endpoints, the controllers, and
//! graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::sync::watch;

use flashvol_common::config::Config;

use crate::args::Args;
use crate::arrays::ArraySet;
use crate::controller::{self, CacheState, RunOptions};
use crate::k8s::leader::{LeaderElector, LeaderState, LeaseTiming};
use crate::k8s::ratelimit::RateLimitLayer;
use crate::reconcile::context::{Context, Identity, SystemClock};
use crate::reconcile::events::{self, Recorder};
use crate::serve::http::{Health, router};
use crate::serve::metrics::Metrics;

fn lease_namespace(flag: Option<&str>) -> String {
    flag.map(str::to_owned)
        .or_else(|| {
            std::env::var("POD_NAMESPACE")
                .ok()
                .filter(|s| !s.is_empty())
        })
        .or_else(|| {
            std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "default".into())
}

/// This replica's identity: `$POD_NAME` (or the host name) plus a per-process suffix, so a
/// restarted pod never mistakes its predecessor's lease for its own.
fn identity() -> String {
    let host = std::env::var("POD_NAME")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_owned())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "flashvol-provisioner".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{host}_{:x}{:x}", std::process::id(), nanos)
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                log::warn!("cannot listen for SIGTERM: {e}");
                futures::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = term => {},
    }
    log::info!("shutting down");
}

/// The program.
pub async fn run(args: Args) -> anyhow::Result<()> {
    args.validate()?;
    let env = |k: &str| std::env::var(k).ok();
    let path = args.instance.config_path();
    let config = Config::load(&path, env)?;
    log::info!(
        "config {}: {} FlashArray(s), {} FlashBlade(s), name prefix {:?}",
        path.display(),
        config.arrays.flash_arrays.len(),
        config.arrays.flash_blades.len(),
        config.settings.name_prefix
    );
    if config.arrays.flash_arrays.is_empty() && config.arrays.flash_blades.is_empty() {
        log::warn!("no arrays configured: every claim will fail with ProvisioningFailed");
    }
    match crate::serve::heap::settings() {
        Ok((conf, running)) => {
            log::info!("allocator: jemalloc {conf:?}, background threads running: {running}")
        }
        Err(e) => log::info!("allocator: jemalloc settings unreadable: {e}"),
    }
    let kube_config = kube::Config::infer()
        .await
        .context("Kubernetes client configuration")?;
    run_with(args, config, kube_config, shutdown_signal()).await
}

/// The program after start-up checks, with the Kubernetes configuration and the shutdown
/// trigger given (tests run replicas in-process against a fake API server).
pub async fn run_with(
    args: Args,
    config: Config,
    kube_config: kube::Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    let arrays = ArraySet::from_config(
        &config,
        Duration::from_secs(args.space_cache_seconds),
        Arc::clone(&metrics),
    )
    .context("array clients")?;
    metrics.start_at_zero(
        &arrays
            .all()
            .map(|a| a.endpoint.as_str())
            .collect::<Vec<_>>(),
    );

    let client = kube::client::ClientBuilder::try_from(kube_config.clone())?
        .with_layer(&RateLimitLayer::new(args.kube_api_qps, args.kube_api_burst))
        .build();
    // Lease traffic gets its own client: a flood of provisioning must never delay renewals.
    let lease_client = kube::Client::try_from(kube_config)?;

    let identity = identity();
    let watches = controller::watches(client.clone());
    let ctx = Arc::new(Context {
        arrays,
        settings: config.settings.clone(),
        identity: Identity {
            provisioner: args.instance.provisioner_name.clone(),
            driver: args.instance.driver.clone(),
        },
        clock: Arc::new(SystemClock),
        events: Recorder::new(
            client.clone(),
            &args.instance.provisioner_name,
            &identity,
            events::PROGRESS_GRACE,
        ),
        metrics: Arc::clone(&metrics),
        claim_backoff: Context::default_backoff(),
        volume_backoff: Context::default_backoff(),
        classes: Some(watches.classes.clone()),
        volumes: Some(watches.volumes.clone()),
        retained: Default::default(),
        finished: Default::default(),
        last_failures: Default::default(),
        attempts: Default::default(),
        client,
    });

    let caches = Arc::new(CacheState::default());
    let (leader_tx, leader_rx) = watch::channel(LeaderState::Starting);
    let elector = args.leader_election.then(|| {
        LeaderElector::new(
            lease_client,
            &lease_namespace(args.leader_election_namespace.as_deref()),
            &args.leader_election_name,
            &identity,
            LeaseTiming {
                lease_duration: Duration::from_secs(args.lease_duration_seconds),
                renew_deadline: Duration::from_secs(args.renew_deadline_seconds),
                retry_period: Duration::from_secs(args.retry_period_seconds),
            },
            Arc::clone(&ctx.clock),
        )
    });

    let listener = tokio::net::TcpListener::bind(args.http_address)
        .await
        .with_context(|| format!("cannot listen on {}", args.http_address))?;
    let app = router(Health {
        metrics: Arc::clone(&metrics),
        caches: Arc::clone(&caches),
        leader: elector.is_some().then(|| leader_rx.clone()),
    });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            log::error!("HTTP server: {e}");
        }
    });
    log::info!(
        "serving /metrics, /healthz, /readyz on {}",
        args.http_address
    );

    let options = RunOptions {
        workers: args.workers,
        orphan_interval: args
            .orphan_collection
            .then(|| Duration::from_secs(args.orphan_interval_seconds)),
        orphan_grace: Duration::from_secs(args.orphan_grace_seconds),
        array_poll_interval: Duration::from_secs(args.array_poll_seconds),
    };
    tokio::pin!(shutdown);

    let Some(elector) = elector else {
        metrics.leader.set(1);
        tokio::select! {
            () = controller::run(Arc::clone(&ctx), watches, options, caches) => bail!("controllers stopped"),
            () = &mut shutdown => {
                flush_events(&ctx.events).await;
                return Ok(());
            }
        }
    };
    let lease_name = args.leader_election_name.clone();
    let elector = Arc::new(elector);
    let campaign = tokio::spawn({
        let elector = Arc::clone(&elector);
        async move { elector.run(leader_tx).await }
    });
    let mut rx = leader_rx;
    log::info!("leader election on lease {lease_name} as {identity}; standing by until elected");
    let became_leader = async {
        while *rx.borrow_and_update() != LeaderState::Leading {
            if rx.changed().await.is_err() {
                return false;
            }
        }
        true
    };
    tokio::select! {
        leading = became_leader => if !leading { bail!("leader election stopped") },
        () = &mut shutdown => {
            campaign.abort();
            flush_events(&ctx.events).await;
            return Ok(());
        }
    }
    metrics.leader.set(1);
    let lost = async {
        while *rx.borrow_and_update() == LeaderState::Leading {
            if rx.changed().await.is_err() {
                break;
            }
        }
    };
    let outcome = tokio::select! {
        () = controller::run(Arc::clone(&ctx), watches, options, caches) => Err(anyhow::anyhow!("controllers stopped")),
        () = lost => Err(anyhow::anyhow!("lost the leader lease; exiting so no two replicas act at once")),
        () = &mut shutdown => Ok(()),
    };
    campaign.abort();
    metrics.leader.set(0);
    if outcome.is_ok() {
        flush_events(&ctx.events).await;
        match elector.release().await {
            Ok(()) => log::info!("released lease {lease_name}"),
            Err(e) => log::warn!("cannot release lease {lease_name}: {e}"),
        }
    }
    outcome
}

/// On a clean shutdown, writes the events still queued (a claim's last `ProvisioningSucceeded`
/// is what its owner looks for), bounded so a slow API server cannot hold the pod past its
/// grace period.
async fn flush_events(events: &Recorder) {
    if tokio::time::timeout(EVENT_FLUSH_LIMIT, events.flush())
        .await
        .is_err()
    {
        log::warn!("events still queued after {EVENT_FLUSH_LIMIT:?}; exiting without them");
    }
}

const EVENT_FLUSH_LIMIT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[tokio::test]
    async fn an_invalid_config_stops_start_up_with_the_key_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pure.json");
        std::fs::write(&path, r#"{"FlashArrays":[{"MgmtEndPoint":"10.0.0.5"}]}"#).expect("write");
        let path_text = path.display().to_string();
        let err = run(
            Args::try_parse_from(["flashvol-provisioner", "--config", &path_text]).expect("parses"),
        )
        .await
        .expect_err("must be refused");
        let text = format!("{err:#}");
        assert!(
            text.contains("FlashArrays[0].APIToken") && text.contains(&path_text),
            "{text}"
        );
    }
}
