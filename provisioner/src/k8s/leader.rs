//! Leader election on a `coordination.k8s.io/v1` Lease, so two replicas never act at once.
//!
//! Same rules as client-go's leaderelection: the holder renews every retry period; another
//! replica takes over only once `renewTime + leaseDuration` has passed; every write is a
//! replace carrying the resourceVersion that was read, so two candidates cannot both win (the
//! API server refuses the second with 409). A leader that cannot renew within the renew deadline
//! (shorter than the lease duration) stops acting before anyone else may start. Releasing on
//! shutdown empties the holder so a standby takes over at once.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::PostParams;
use tokio::sync::watch;

use crate::reconcile::context::Clock;

/// Timing of the election (client-go defaults: 15 s, 10 s, 2 s).
#[derive(Debug, Clone)]
pub struct LeaseTiming {
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

/// What a candidate should do, given the lease as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseAction {
    /// Take the lease: absent, unheld or expired.
    Acquire,
    /// We hold it: renew.
    Renew,
    /// Someone else holds a live lease.
    Standby { holder: String },
}

/// Pure decision from the lease spec, our identity and the time.
pub fn decide_lease(spec: Option<&LeaseSpec>, identity: &str, now: Timestamp) -> LeaseAction {
    let Some(spec) = spec else {
        return LeaseAction::Acquire;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder.is_empty() {
        return LeaseAction::Acquire;
    }
    if holder == identity {
        return LeaseAction::Renew;
    }
    let duration =
        SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(0).max(0)));
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0);
    match renewed {
        Some(at) if at.checked_add(duration).is_ok_and(|expiry| expiry > now) => {
            LeaseAction::Standby {
                holder: holder.to_owned(),
            }
        }
        _ => LeaseAction::Acquire,
    }
}

/// One candidate.
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: LeaseTiming,
    clock: Arc<dyn Clock>,
}

impl LeaderElector {
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: &str,
        identity: &str,
        timing: LeaseTiming,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity: identity.to_owned(),
            timing,
            clock,
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    fn now(&self) -> Timestamp {
        Timestamp::try_from(self.clock.now()).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// One attempt to acquire or renew. `Ok(true)` when we hold the lease afterwards.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let now = MicroTime(self.now());
        let duration = i32::try_from(self.timing.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(duration),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return conflict_is_false(self.api.create(&PostParams::default(), &lease).await);
        };
        let spec = lease.spec.get_or_insert_default();
        match decide_lease(Some(spec), &self.identity, now.0) {
            LeaseAction::Standby { .. } => return Ok(false),
            LeaseAction::Renew => {
                spec.renew_time = Some(now);
                spec.lease_duration_seconds = Some(duration);
            }
            LeaseAction::Acquire => {
                let previous = spec.holder_identity.clone().unwrap_or_default();
                log::info!(
                    "leader election: taking lease {} over from {previous:?}",
                    self.name
                );
                spec.holder_identity = Some(self.identity.clone());
                spec.lease_duration_seconds = Some(duration);
                spec.acquire_time = Some(now.clone());
                spec.renew_time = Some(now);
                spec.lease_transitions =
                    Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
            }
        }
        // `replace` sends metadata.resourceVersion: a concurrent writer makes this a 409.
        conflict_is_false(
            self.api
                .replace(&self.name, &PostParams::default(), &lease)
                .await,
        )
    }

    /// Gives the lease up if we hold it, so a standby takes over without waiting for expiry.
    pub async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_default();
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(self.now()));
        conflict_is_false(
            self.api
                .replace(&self.name, &PostParams::default(), &lease)
                .await,
        )
        .map(|_| ())
    }

    /// Campaigns forever, publishing the state on `state`. A leader that has not renewed
    /// within the renew deadline publishes [`LeaderState::Unreachable`]: the caller must stop
    /// acting, before the lease can expire for the others.
    pub async fn run(&self, state: watch::Sender<LeaderState>) {
        let mut last_renewal: Option<tokio::time::Instant> = None;
        loop {
            // A hung request must not carry a leader past its renew deadline (counted from the
            // last successful renewal): it is cut off then and counts as a failure.
            let budget = last_renewal.map_or(self.timing.renew_deadline, |at| {
                self.timing.renew_deadline.saturating_sub(at.elapsed())
            });
            // The lease records the time the attempt started: count the deadline from there.
            let started = tokio::time::Instant::now();
            let attempt = tokio::time::timeout(budget, self.try_acquire_or_renew())
                .await
                .unwrap_or_else(|_| Err(kube::Error::Service("lease request timed out".into())));
            let now = tokio::time::Instant::now();
            match attempt {
                Ok(true) => {
                    if last_renewal.is_none() {
                        log::info!("leader election: {} is now the leader", self.identity);
                    }
                    last_renewal = Some(started);
                    state.send_replace(LeaderState::Leading);
                }
                Ok(false) => {
                    if last_renewal.take().is_some() {
                        log::error!(
                            "leader election: lease {} lost to another replica",
                            self.name
                        );
                    }
                    state.send_replace(LeaderState::Standby);
                }
                Err(e) => {
                    log::warn!(
                        "leader election: cannot read or write lease {}: {e}",
                        self.name
                    );
                    let still_leading = last_renewal
                        .is_some_and(|at| now.duration_since(at) < self.timing.renew_deadline);
                    if !still_leading {
                        if last_renewal.take().is_some() {
                            log::error!(
                                "leader election: no renewal within {:?}; stepping down",
                                self.timing.renew_deadline
                            );
                        }
                        state.send_replace(LeaderState::Unreachable);
                    }
                }
            }
            tokio::time::sleep(self.timing.retry_period).await;
        }
    }
}

/// Where this replica stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaderState {
    /// No attempt finished yet.
    Starting,
    Leading,
    /// Another replica leads; this one is healthy and waiting.
    Standby,
    /// The lease cannot be read or written (and we do not lead).
    Unreachable,
}

fn conflict_is_false(r: Result<Lease, kube::Error>) -> Result<bool, kube::Error> {
    match r {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: &str, renewed_at: i64, duration: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            renew_time: Some(MicroTime(Timestamp::from_second(renewed_at).expect("ts"))),
            lease_duration_seconds: Some(duration),
            ..Default::default()
        }
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).expect("ts")
    }

    fn timing() -> LeaseTiming {
        LeaseTiming {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    fn candidates() -> (
        crate::tests::fake_kube::FakeKube,
        Arc<crate::reconcile::context::ManualClock>,
        LeaderElector,
        LeaderElector,
    ) {
        let (fake, client) = crate::tests::fake_kube::FakeKube::new();
        let clock = Arc::new(crate::reconcile::context::ManualClock::new(
            std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000),
        ));
        let a = LeaderElector::new(
            client.clone(),
            "flashvol",
            "pure-provisioner",
            "a",
            timing(),
            clock.clone(),
        );
        let b = LeaderElector::new(
            client,
            "flashvol",
            "pure-provisioner",
            "b",
            timing(),
            clock.clone(),
        );
        (fake, clock, a, b)
    }

    #[tokio::test]
    async fn only_one_candidate_leads_and_the_standby_takes_over_after_expiry() {
        let (fake, clock, a, b) = candidates();
        assert!(
            a.try_acquire_or_renew().await.expect("a"),
            "first candidate creates the lease"
        );
        assert!(!b.try_acquire_or_renew().await.expect("b"));
        clock.advance(Duration::from_secs(10));
        assert!(a.try_acquire_or_renew().await.expect("renew"));
        clock.advance(Duration::from_secs(14));
        assert!(
            !b.try_acquire_or_renew().await.expect("b"),
            "renewed 14 s ago: still live"
        );
        // a dies: no more renewals.
        clock.advance(Duration::from_secs(1));
        assert!(
            b.try_acquire_or_renew().await.expect("b"),
            "expired: b takes over"
        );
        assert!(
            !a.try_acquire_or_renew().await.expect("a"),
            "a sees b and stands by"
        );
        let lease: Lease = fake
            .get(Some("flashvol"), "pure-provisioner")
            .expect("lease");
        let spec = lease.spec.expect("spec");
        assert_eq!(spec.holder_identity.as_deref(), Some("b"));
        assert_eq!(spec.lease_transitions, Some(1));
    }

    #[tokio::test]
    async fn a_leader_that_cannot_renew_steps_down() {
        let (fake, client) = crate::tests::fake_kube::FakeKube::new();
        let timing = LeaseTiming {
            lease_duration: Duration::from_millis(1500),
            renew_deadline: Duration::from_millis(1000),
            retry_period: Duration::from_millis(100),
        };
        let clock: Arc<dyn crate::reconcile::context::Clock> =
            Arc::new(crate::reconcile::context::SystemClock);
        let elector =
            LeaderElector::new(client, "flashvol", "pure-provisioner", "a", timing, clock);
        let (tx, mut rx) = watch::channel(LeaderState::Starting);
        let campaign = tokio::spawn(async move { elector.run(tx).await });
        while *rx.borrow_and_update() != LeaderState::Leading {
            rx.changed().await.expect("campaign runs");
        }
        // The API server becomes unreachable for the lease.
        for _ in 0..1000 {
            fake.fail_next(http::Method::GET, "/leases/", 503);
        }
        let stepped_down = tokio::time::timeout(Duration::from_secs(10), async {
            while *rx.borrow_and_update() == LeaderState::Leading {
                rx.changed().await.expect("campaign runs");
            }
            *rx.borrow()
        })
        .await
        .expect("steps down before the lease could expire");
        assert_eq!(stepped_down, LeaderState::Unreachable);
        campaign.abort();
    }

    #[tokio::test]
    async fn release_hands_the_lease_over_at_once() {
        let (_fake, _clock, a, b) = candidates();
        assert!(a.try_acquire_or_renew().await.expect("a"));
        b.release().await.expect("not the holder: no-op");
        assert!(!b.try_acquire_or_renew().await.expect("b"));
        a.release().await.expect("release");
        assert!(b.try_acquire_or_renew().await.expect("b"));
    }

    #[tokio::test]
    async fn a_concurrent_write_makes_the_attempt_lose_not_fail() {
        let (fake, clock, a, b) = candidates();
        assert!(a.try_acquire_or_renew().await.expect("a"));
        clock.advance(Duration::from_secs(60));
        // Someone else's write lands between b's read and b's replace: the server answers 409.
        fake.fail_next(http::Method::PUT, "/leases/", 409);
        assert!(
            !b.try_acquire_or_renew()
                .await
                .expect("conflict is not an error")
        );
    }

    #[test]
    fn absent_or_unheld_lease_is_taken() {
        assert_eq!(decide_lease(None, "me", at(0)), LeaseAction::Acquire);
        let mut s = spec("x", 0, 15);
        s.holder_identity = Some(String::new());
        assert_eq!(decide_lease(Some(&s), "me", at(1)), LeaseAction::Acquire);
    }

    #[test]
    fn own_lease_is_renewed() {
        assert_eq!(
            decide_lease(Some(&spec("me", 0, 15)), "me", at(100)),
            LeaseAction::Renew
        );
    }

    #[test]
    fn live_lease_of_another_holder_is_respected_until_it_expires() {
        let s = spec("other", 100, 15);
        assert_eq!(
            decide_lease(Some(&s), "me", at(114)),
            LeaseAction::Standby {
                holder: "other".into()
            }
        );
        assert_eq!(decide_lease(Some(&s), "me", at(115)), LeaseAction::Acquire);
    }
}
