//! Client-side rate limit for the Kubernetes API: a token bucket (QPS, burst) as a tower layer
//! on the kube client's service stack, so `--kube-api-qps` and `--kube-api-burst` are real.
//!
//! kube-rs has no client-side limiter; client-go's default (5 QPS, burst 10) is what held Go
//! provisioners near 2 claims per second. Every request waits for a token, watches included
//! (only their start counts).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tower::{Layer, Service};

/// The bucket: refills at `qps` tokens per second up to `burst`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    qps: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// Starts full, so a burst is available at once.
    pub fn new(qps: f64, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            qps,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes a token at `now`, or says how long until one is available.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.qps).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.qps))
        }
    }
}

/// Layer sharing one bucket among all clones of the service. `qps <= 0` disables limiting.
#[derive(Clone)]
pub struct RateLimitLayer {
    bucket: Option<Arc<Mutex<TokenBucket>>>,
}

impl RateLimitLayer {
    pub fn new(qps: f64, burst: u32) -> Self {
        Self {
            bucket: (qps > 0.0)
                .then(|| Arc::new(Mutex::new(TokenBucket::new(qps, burst, Instant::now())))),
        }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            bucket: self.bucket.clone(),
            wait: None,
            permitted: false,
        }
    }
}

pub struct RateLimit<S> {
    inner: S,
    bucket: Option<Arc<Mutex<TokenBucket>>>,
    wait: Option<Pin<Box<tokio::time::Sleep>>>,
    permitted: bool,
}

impl<S, R> Service<R> for RateLimit<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if let Some(bucket) = &self.bucket {
            while !self.permitted {
                if let Some(wait) = self.wait.as_mut() {
                    if wait.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.wait = None;
                }
                let taken = match bucket.lock() {
                    Ok(mut b) => b.try_take(Instant::now()),
                    Err(_) => Ok(()),
                };
                match taken {
                    Ok(()) => self.permitted = true,
                    Err(delay) => self.wait = Some(Box::pin(tokio::time::sleep(delay))),
                }
            }
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        self.permitted = false;
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use tower::ServiceExt;

    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100.0, 3, t0);
        assert!(b.try_take(t0).is_ok());
        assert!(b.try_take(t0).is_ok());
        assert!(b.try_take(t0).is_ok());
        let wait = b.try_take(t0).expect_err("must be refused");
        assert!(
            wait > Duration::from_millis(9) && wait <= Duration::from_millis(10),
            "{wait:?}"
        );
        assert!(
            b.try_take(t0 + Duration::from_millis(10)).is_ok(),
            "one token after 1/qps"
        );
        assert!(b.try_take(t0 + Duration::from_millis(10)).is_err());
        // Idle time refills only up to the burst.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(b.try_take(later).is_ok());
        }
        assert!(b.try_take(later).is_err());
    }

    #[tokio::test]
    async fn service_is_not_ready_once_the_burst_is_spent() {
        let inner = tower::service_fn(|x: u32| async move { Ok::<_, std::convert::Infallible>(x) });
        let mut svc = RateLimitLayer::new(0.001, 2).layer(inner);
        for i in 0..2 {
            let ready = svc
                .ready()
                .now_or_never()
                .expect("token available")
                .expect("ok");
            assert_eq!(ready.call(i).await, Ok(i));
        }
        assert!(
            svc.ready().now_or_never().is_none(),
            "third request must wait for a token"
        );
    }

    #[tokio::test]
    async fn zero_qps_means_unlimited() {
        let inner = tower::service_fn(|x: u32| async move { Ok::<_, std::convert::Infallible>(x) });
        let mut svc = RateLimitLayer::new(0.0, 1).layer(inner);
        for i in 0..100 {
            let ready = svc
                .ready()
                .now_or_never()
                .expect("always ready")
                .expect("ok");
            assert_eq!(ready.call(i).await, Ok(i));
        }
    }
}
