//! Wiring: watches on claims (unbound ones provisioned, bound ones resized), PVs and
//! StorageClasses feeding the reconcilers with a worker limit (turns taken in arrival order) and
//! per-object backoff, the timers of the orphan collector, the array poller and the cache gauges
//! ([`crate::serve::monitor`]), and readiness.
//!
//! Owns no decisions: it maps reconcile outcomes to requeue actions and keeps the queue-depth
//! gauge (objects being reconciled plus objects waiting for a retry).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Api;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::Semaphore;

use crate::k8s::cache::{CachedClaim, CachedVolume};
use crate::reconcile::context::Context;
use crate::reconcile::delete::{DeleteError, VolumeOutcome, reclaim_volume};
use crate::reconcile::orphans::{OrphanState, collect_once};
use crate::reconcile::provision::{ClaimOutcome, ProvisionError, claim_key, provision_claim};
use crate::reconcile::resize::{ResizeError, ResizeOutcome, resize_claim};
use crate::serve::monitor;

/// Knobs of the running controllers.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Concurrent reconciles per controller (claims and volumes each).
    pub workers: u16,
    /// `None` disables the orphan collector.
    pub orphan_interval: Option<Duration>,
    pub orphan_grace: Duration,
    /// Between polls of the arrays' space ([`crate::serve::monitor::poller`]).
    pub array_poll_interval: Duration,
}

/// Whether the watches have delivered their first full list.
#[derive(Debug, Default)]
pub struct CacheState {
    pub synced: AtomicBool,
}

/// The watches, built before the [`Context`] so their caches can go into it: StorageClasses
/// (read by provisioning) and PVs (the existence check before provisioning).
pub struct Watches {
    pub classes: Store<StorageClass>,
    pub volumes: Store<CachedVolume>,
    class_stream: futures::stream::BoxStream<'static, ()>,
    volume_controller: Controller<CachedVolume>,
}

/// Sets up the watches; nothing runs until [`run`].
pub fn watches(client: kube::Client) -> Watches {
    let (classes, writer) = reflector::store::<StorageClass>();
    let class_stream = reflector::reflector(
        writer,
        watcher(
            Api::<StorageClass>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects()
    .map(|r| {
        if let Err(e) = r {
            log::warn!("StorageClass watch: {e}");
        }
    })
    .boxed();
    let volume_controller =
        Controller::new(Api::<CachedVolume>::all(client), watcher::Config::default());
    Watches {
        classes,
        volumes: volume_controller.store(),
        class_stream,
        volume_controller,
    }
}

/// Passes kube-runtime may start per worker. They wait for one of the `workers` turns in the
/// order they arrived (a fair semaphore); what kube-runtime holds back beyond its concurrency it
/// keeps in a set with no order, so with its concurrency at `workers` a burst's first claims could
/// wait until the end (the benchmark's p99 claim→PV was 4.6 s where a Go provisioner's FIFO queue
/// gave 2.0 s, and the slowest claims were the earliest: bench/results/analysis.md). Bounded, so
/// a watch's first list of 10,000 claims does not start 10,000 passes at once.
const DISPATCHED_PER_WORKER: u16 = 64;

struct Depth {
    in_flight: AtomicI64,
    /// `workers` turns, handed out first come, first served.
    turns: Semaphore,
}

impl Depth {
    fn new(workers: u16) -> Self {
        Self {
            in_flight: AtomicI64::new(0),
            turns: Semaphore::new(usize::from(workers.max(1))),
        }
    }
}

struct Shared {
    ctx: Arc<Context>,
    claims: Depth,
    volumes: Depth,
    claim_store: Store<CachedClaim>,
    volume_store: Store<CachedVolume>,
}

/// The object as the cache holds it now. A pass that waited for its turn works on what changed
/// meanwhile: a claim the controller-manager annotated while it waited is provisioned in this
/// pass, not sent to the back of the line for the next one. `None`: deleted while it waited.
fn latest<K>(store: &Store<K>, waited: &K) -> Option<Arc<K>>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    store.get(&ObjectRef::from_obj(waited))
}

impl Shared {
    fn publish_depth(&self) {
        self.ctx.metrics.queue("claims").set(
            self.claims.in_flight.load(Ordering::Relaxed) + self.ctx.claim_backoff.pending() as i64,
        );
        self.ctx.metrics.queue("volumes").set(
            self.volumes.in_flight.load(Ordering::Relaxed)
                + self.ctx.volume_backoff.pending() as i64,
        );
    }
}

/// Why a pass over a claim failed: provisioning an unbound claim or resizing a bound one.
#[derive(Debug, thiserror::Error)]
pub enum ClaimPassError {
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error(transparent)]
    Resize(#[from] ResizeError),
}

/// kube-runtime's reconciler for claims: [`claim_pass`] once this claim's turn comes. Boxed, so a
/// claim waiting for its turn holds a few words, not the pass's whole state.
async fn run_claim_pass(
    pvc: Arc<CachedClaim>,
    shared: Arc<Shared>,
) -> Result<Action, ClaimPassError> {
    // The semaphore is never closed; without a permit the pass still runs.
    let _turn = shared.claims.turns.acquire().await.ok();
    match latest(&shared.claim_store, &pvc) {
        Some(pvc) => Box::pin(claim_pass(pvc, Arc::clone(&shared))).await,
        None => Ok(Action::await_change()),
    }
}

/// One pass over a claim (an unbound claim is provisioned, a bound one resized), counted in the
/// queue depth, and when to look at the claim again.
async fn claim_pass(pvc: Arc<CachedClaim>, shared: Arc<Shared>) -> Result<Action, ClaimPassError> {
    shared.claims.in_flight.fetch_add(1, Ordering::Relaxed);
    shared.publish_depth();
    let claim = pvc.to_claim();
    let key = claim_key(&pvc.metadata);
    let waiting = if pvc.is_bound() {
        match resize_claim(&claim, &shared.ctx).await {
            Ok(ResizeOutcome::Waiting(why)) => Ok(Some(why)),
            Ok(outcome) => {
                log::trace!("claim {key}: {outcome:?}");
                Ok(None)
            }
            Err(e) => Err(ClaimPassError::from(e)),
        }
    } else {
        match provision_claim(&claim, &shared.ctx).await {
            Ok(ClaimOutcome::Waiting(why)) => Ok(Some(why)),
            Ok(outcome) => {
                if let ClaimOutcome::Ignored(why) = &outcome {
                    log::trace!("claim {key}: ignored: {why}");
                }
                Ok(None)
            }
            Err(e) => Err(ClaimPassError::from(e)),
        }
    };
    shared.claims.in_flight.fetch_sub(1, Ordering::Relaxed);
    let action = waiting.map(|waiting| match waiting {
        Some(why) => {
            log::debug!("claim {key}: waiting: {why}");
            Action::requeue(shared.ctx.claim_backoff.failed(&key))
        }
        None => {
            shared.ctx.claim_backoff.succeeded(&key);
            Action::await_change()
        }
    });
    shared.publish_depth();
    action
}

/// kube-runtime's error policy for claims: retry after the claim's backoff delay.
fn retry_claim(pvc: Arc<CachedClaim>, _e: &ClaimPassError, shared: Arc<Shared>) -> Action {
    let delay = shared.ctx.claim_backoff.failed(&claim_key(&pvc.metadata));
    shared.publish_depth();
    Action::requeue(delay)
}

/// kube-runtime's reconciler for PVs: [`volume_pass`] once this PV's turn comes (as for claims).
async fn run_volume_pass(
    pv: Arc<CachedVolume>,
    shared: Arc<Shared>,
) -> Result<Action, DeleteError> {
    let _turn = shared.volumes.turns.acquire().await.ok();
    match latest(&shared.volume_store, &pv) {
        Some(pv) => Box::pin(volume_pass(pv, Arc::clone(&shared))).await,
        None => Ok(Action::await_change()),
    }
}

/// One [`reclaim_volume`] pass, counted in the queue depth.
async fn volume_pass(pv: Arc<CachedVolume>, shared: Arc<Shared>) -> Result<Action, DeleteError> {
    shared.volumes.in_flight.fetch_add(1, Ordering::Relaxed);
    shared.publish_depth();
    let result = reclaim_volume(&pv.to_volume(), &shared.ctx).await;
    shared.volumes.in_flight.fetch_sub(1, Ordering::Relaxed);
    let key = pv.metadata.name.clone().unwrap_or_default();
    let action = result.map(|outcome| {
        if outcome != VolumeOutcome::Ignored {
            log::debug!("PV {key}: {outcome:?}");
        }
        shared.ctx.volume_backoff.succeeded(&key);
        Action::await_change()
    });
    shared.publish_depth();
    action
}

/// kube-runtime's error policy for PVs: retry after the PV's backoff delay.
fn retry_volume(pv: Arc<CachedVolume>, _e: &DeleteError, shared: Arc<Shared>) -> Action {
    let delay = shared
        .ctx
        .volume_backoff
        .failed(pv.metadata.name.as_deref().unwrap_or_default());
    shared.publish_depth();
    Action::requeue(delay)
}

/// Runs everything until the process is told to stop (the future is dropped) or a watch ends.
pub async fn run(
    ctx: Arc<Context>,
    watches: Watches,
    options: RunOptions,
    caches: Arc<CacheState>,
) {
    let Watches {
        class_stream,
        volume_controller,
        ..
    } = watches;
    let client = ctx.client.clone();
    let config = ControllerConfig::default()
        .concurrency(options.workers.max(1).saturating_mul(DISPATCHED_PER_WORKER));

    let claims = Controller::new(
        Api::<CachedClaim>::all(client.clone()),
        watcher::Config::default(),
    )
    .with_config(config.clone());
    let claim_store = claims.store();
    let store_for_mapper = claim_store.clone();
    // A class created (or fixed) after its claims re-triggers them at once.
    let claims = claims.watches(
        Api::<StorageClass>::all(client.clone()),
        watcher::Config::default(),
        move |class: StorageClass| {
            let name = class.metadata.name.clone().unwrap_or_default();
            store_for_mapper
                .state()
                .into_iter()
                .filter(|c| c.unbound_class_name() == Some(name.as_str()))
                .map(|c| ObjectRef::from_obj(&*c))
                .collect::<Vec<_>>()
        },
    );
    let volumes = volume_controller.with_config(config);
    let volume_store = volumes.store();
    let class_store = ctx.classes.clone();
    let shared = Arc::new(Shared {
        ctx: Arc::clone(&ctx),
        claims: Depth::new(options.workers),
        volumes: Depth::new(options.workers),
        claim_store: claim_store.clone(),
        volume_store: volume_store.clone(),
    });

    let claim_loop = claims
        .run(run_claim_pass, retry_claim, Arc::clone(&shared))
        .for_each(|r| async move {
            if let Err(e) = r {
                log::debug!("claim controller: {e}");
            }
        });
    let volume_loop = volumes
        .run(run_volume_pass, retry_volume, Arc::clone(&shared))
        .for_each(|r| async move {
            if let Err(e) = r {
                log::debug!("volume controller: {e}");
            }
        });
    let readiness = async {
        let _ = claim_store.wait_until_ready().await;
        let _ = volume_store.wait_until_ready().await;
        if let Some(store) = &class_store {
            let _ = store.wait_until_ready().await;
        }
        caches.synced.store(true, Ordering::Relaxed);
        log::info!("caches synced; provisioning");
        futures::future::pending::<()>().await;
    };
    let orphans = async {
        let Some(interval) = options.orphan_interval else {
            return futures::future::pending::<()>().await;
        };
        let mut state = OrphanState::default();
        loop {
            tokio::time::sleep(interval).await;
            match collect_once(&ctx, options.orphan_grace, &mut state).await {
                Ok(destroyed) if !destroyed.is_empty() => {
                    log::info!("orphan collector: destroyed {} volume(s)", destroyed.len());
                }
                Ok(_) => {}
                Err(e) => log::warn!("orphan collector: round skipped: {e}"),
            }
        }
    };
    let poller = monitor::poller::run(&ctx.arrays, &ctx.metrics, options.array_poll_interval);
    let cache_gauges = async {
        let Some(classes) = &class_store else {
            return futures::future::pending::<()>().await;
        };
        let _ = claim_store.wait_until_ready().await;
        let _ = volume_store.wait_until_ready().await;
        loop {
            monitor::publish_cache_gauges(&ctx, &claim_store, classes, &volume_store);
            tokio::time::sleep(monitor::CACHE_GAUGES_EVERY).await;
        }
    };
    tokio::select! {
        () = claim_loop => log::error!("claim watch ended"),
        () = volume_loop => log::error!("PV watch ended"),
        () = class_stream.for_each(|()| async {}) => log::error!("StorageClass watch ended"),
        () = readiness => {},
        () = orphans => {},
        () = poller => {},
        () = cache_gauges => {},
    }
}
