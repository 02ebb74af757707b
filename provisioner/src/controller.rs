//! Wiring: watches on claims (unbound ones provisioned, bound ones resized), PVs and
//! StorageClasses feeding the work queues ([`crate::k8s::workqueue`]) of the claim and PV workers,
//! with per-object backoff; the timers of the orphan collector, the array poller and the cache
//! gauges ([`crate::serve::monitor`]), and readiness.
//!
//! Owns no decisions: it maps watch events to triggers and pass outcomes to retries, and keeps the
//! queue-depth gauge (objects being reconciled plus objects waiting for a retry).

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::{BoxStream, FuturesUnordered};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;

use crate::k8s::cache::{CachedClaim, CachedVolume};
use crate::k8s::workqueue::WorkQueue;
use crate::reconcile::context::Context;
use crate::reconcile::delete::{VolumeOutcome, reclaim_volume};
use crate::reconcile::orphans::{OrphanState, collect_once};
use crate::reconcile::provision::{ClaimOutcome, ProvisionError, claim_key, provision_claim};
use crate::reconcile::resize::{ResizeError, ResizeOutcome, resize_claim};
use crate::serve::monitor;

/// Knobs of the running controllers.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Concurrent passes per controller (claims and volumes each).
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

/// The objects a watch changed (added or modified), each once the cache holds the change.
type Changes<K> = BoxStream<'static, ObjectRef<K>>;

/// The watches, built before the [`Context`] so their caches can go into it: StorageClasses
/// (read by provisioning) and PVs (the existence check before provisioning), and claims.
pub struct Watches {
    pub classes: Store<StorageClass>,
    pub volumes: Store<CachedVolume>,
    claims: Store<CachedClaim>,
    class_changes: Changes<StorageClass>,
    volume_changes: Changes<CachedVolume>,
    claim_changes: Changes<CachedClaim>,
}

/// Sets up the watches; nothing runs until [`run`].
pub fn watches(client: kube::Client) -> Watches {
    let (classes, class_changes) = cached(Api::all(client.clone()));
    let (volumes, volume_changes) = cached(Api::all(client.clone()));
    let (claims, claim_changes) = cached(Api::all(client));
    Watches {
        classes,
        volumes,
        claims,
        class_changes,
        volume_changes,
        claim_changes,
    }
}

/// A watch of every `K` (relisting with backoff after errors, which are logged) and its cache.
fn cached<K>(api: Api<K>) -> (Store<K>, Changes<K>)
where
    K: kube::Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    let (store, writer) = reflector::store::<K>();
    let changes = reflector::reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .applied_objects()
        .filter_map(|event| async move {
            match event {
                Ok(object) => Some(ObjectRef::from_obj(&object)),
                Err(e) => {
                    log::warn!("{} watch: {e}", K::kind(&()));
                    None
                }
            }
        })
        .boxed();
    (store, changes)
}

struct Shared {
    ctx: Arc<Context>,
    /// The passes running, for the queue-depth gauge.
    claims_in_flight: AtomicI64,
    volumes_in_flight: AtomicI64,
}

impl Shared {
    fn publish_depth(&self) {
        self.ctx.metrics.queue("claims").set(
            self.claims_in_flight.load(Ordering::Relaxed) + self.ctx.claim_backoff.pending() as i64,
        );
        self.ctx.metrics.queue("volumes").set(
            self.volumes_in_flight.load(Ordering::Relaxed)
                + self.ctx.volume_backoff.pending() as i64,
        );
    }
}

/// When to look at an object again unless a change triggers it first: `None`, only on a change.
type Retry = Option<Duration>;

/// One worker: takes the oldest triggered object, runs `pass` over the object as the cache holds
/// it now, and schedules the retry the pass asks for. A pass that waited works on what changed
/// meanwhile: a claim the controller-manager annotated while it waited is provisioned in this
/// pass, not sent to the back of the line for the next one. An object deleted while it waited
/// gets no pass.
async fn worker<K, F, Fut>(queue: &WorkQueue<ObjectRef<K>>, store: &Store<K>, pass: F)
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
    F: Fn(Arc<K>) -> Fut,
    Fut: std::future::Future<Output = Retry>,
{
    loop {
        let key = queue.next().await;
        if let Some(object) = store.get(&key) {
            if let Some(delay) = pass(object).await {
                queue.add_after(key.clone(), delay);
            }
        }
        queue.done(&key);
    }
}

/// `workers` [`worker`]s on one queue, and its retry timers, once the cache holds the first full
/// list; runs until dropped. Not before: kube-runtime's cache shows the first list only when it is
/// complete, and a key its watch queued meanwhile would find no object and get no pass.
async fn serve<K, F, Fut>(queue: &WorkQueue<ObjectRef<K>>, store: &Store<K>, workers: u16, pass: F)
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
    F: Fn(Arc<K>) -> Fut,
    Fut: std::future::Future<Output = Retry>,
{
    // An error means the watch is gone, and `run` ends with it.
    let _ = store.wait_until_ready().await;
    let mut running: FuturesUnordered<_> = (0..workers.max(1))
        .map(|_| worker(queue, store, &pass))
        .collect();
    tokio::select! {
        _ = running.next() => {}
        () = queue.serve_retries() => {}
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

/// One pass over a claim (an unbound claim is provisioned, a bound one resized), counted in the
/// queue depth, and when to look at the claim again: after its backoff delay when the pass failed
/// or is waiting for something.
async fn claim_pass(pvc: Arc<CachedClaim>, shared: &Shared) -> Retry {
    shared.claims_in_flight.fetch_add(1, Ordering::Relaxed);
    shared.publish_depth();
    let claim = pvc.to_claim();
    let key = claim_key(&pvc.metadata);
    let outcome = if pvc.is_bound() {
        match resize_claim(&claim, &shared.ctx).await {
            Ok(ResizeOutcome::Waiting(why)) => Ok(Some(why)),
            Ok(outcome) => {
                log::trace!("claim {key}: {outcome:?}");
                Ok(None)
            }
            Err(e) => Err(ClaimPassError::from(e)),
        }
    } else {
        match Box::pin(provision_claim(&claim, &shared.ctx)).await {
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
    shared.claims_in_flight.fetch_sub(1, Ordering::Relaxed);
    let retry = match outcome {
        Ok(None) => {
            shared.ctx.claim_backoff.succeeded(&key);
            None
        }
        Ok(Some(why)) => {
            log::debug!("claim {key}: waiting: {why}");
            Some(shared.ctx.claim_backoff.failed(&key))
        }
        Err(e) => {
            log::debug!("claim {key}: {e}");
            Some(shared.ctx.claim_backoff.failed(&key))
        }
    };
    shared.publish_depth();
    retry
}

/// One [`reclaim_volume`] pass, counted in the queue depth; retried after the PV's backoff delay
/// when it failed.
async fn volume_pass(pv: Arc<CachedVolume>, shared: &Shared) -> Retry {
    shared.volumes_in_flight.fetch_add(1, Ordering::Relaxed);
    shared.publish_depth();
    let result = Box::pin(reclaim_volume(&pv.to_volume(), &shared.ctx)).await;
    shared.volumes_in_flight.fetch_sub(1, Ordering::Relaxed);
    let key = pv.metadata.name.as_deref().unwrap_or_default();
    let retry = match result {
        Ok(outcome) => {
            if outcome != VolumeOutcome::Ignored {
                log::debug!("PV {key}: {outcome:?}");
            }
            shared.ctx.volume_backoff.succeeded(key);
            None
        }
        Err(e) => {
            log::debug!("PV {key}: {e}");
            Some(shared.ctx.volume_backoff.failed(key))
        }
    };
    shared.publish_depth();
    retry
}

/// Runs everything until the process is told to stop (the future is dropped) or a watch ends.
pub async fn run(
    ctx: Arc<Context>,
    watches: Watches,
    options: RunOptions,
    caches: Arc<CacheState>,
) {
    let Watches {
        classes: class_store,
        volumes: volume_store,
        claims: claim_store,
        class_changes,
        volume_changes,
        claim_changes,
    } = watches;
    let claim_queue = WorkQueue::default();
    let volume_queue = WorkQueue::default();
    let shared = Shared {
        ctx: Arc::clone(&ctx),
        claims_in_flight: AtomicI64::new(0),
        volumes_in_flight: AtomicI64::new(0),
    };

    let claim_triggers = claim_changes.for_each(|claim| {
        claim_queue.add(claim);
        async {}
    });
    let volume_triggers = volume_changes.for_each(|pv| {
        volume_queue.add(pv);
        async {}
    });
    // A class created (or fixed) after its claims triggers them at once.
    let class_triggers = class_changes.for_each(|class| {
        for claim in claim_store.state() {
            if claim.unbound_class_name() == Some(class.name.as_str()) {
                claim_queue.add(ObjectRef::from_obj(&*claim));
            }
        }
        async {}
    });
    let claim_workers = serve(&claim_queue, &claim_store, options.workers, |pvc| {
        claim_pass(pvc, &shared)
    });
    let volume_workers = serve(&volume_queue, &volume_store, options.workers, |pv| {
        volume_pass(pv, &shared)
    });
    let readiness = async {
        let _ = claim_store.wait_until_ready().await;
        let _ = volume_store.wait_until_ready().await;
        let _ = class_store.wait_until_ready().await;
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
        let _ = claim_store.wait_until_ready().await;
        let _ = volume_store.wait_until_ready().await;
        loop {
            monitor::publish_cache_gauges(&ctx, &claim_store, &class_store, &volume_store);
            tokio::time::sleep(monitor::CACHE_GAUGES_EVERY).await;
        }
    };
    tokio::select! {
        () = claim_triggers => log::error!("claim watch ended"),
        () = volume_triggers => log::error!("PV watch ended"),
        () = class_triggers => log::error!("StorageClass watch ended"),
        () = claim_workers => log::error!("claim workers ended"),
        () = volume_workers => log::error!("PV workers ended"),
        () = readiness => {},
        () = orphans => {},
        () = poller => {},
        () = cache_gauges => {},
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;
    use kube::runtime::watcher::Event;

    use super::*;

    fn object(name: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some("default".to_owned()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    #[tokio::test]
    async fn keys_queued_during_the_first_list_get_their_pass_once_the_list_is_complete() {
        let (store, mut writer) = reflector::store::<ConfigMap>();
        let queue = WorkQueue::default();
        let passes = Mutex::new(Vec::new());
        let first = object("first");
        writer.apply_watcher_event(&Event::Init);
        writer.apply_watcher_event(&Event::InitApply(first.clone()));
        queue.add(ObjectRef::from_obj(&first));
        let workers = serve(&queue, &store, 2, |object: Arc<ConfigMap>| {
            passes
                .lock()
                .unwrap()
                .push(object.metadata.name.clone().unwrap());
            async { None }
        });
        tokio::pin!(workers);
        let list_ends = async {
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            assert!(
                passes.lock().unwrap().is_empty(),
                "no pass before the list ends"
            );
            writer.apply_watcher_event(&Event::InitDone);
            // Bounded, so a key dropped before the list ended fails the test instead of hanging it.
            for _ in 0..1_000 {
                if !passes.lock().unwrap().is_empty() {
                    break;
                }
                tokio::task::yield_now().await;
            }
        };
        tokio::select! {
            () = &mut workers => unreachable!("the workers run until dropped"),
            () = list_ends => {}
        }
        assert_eq!(*passes.lock().unwrap(), ["first"]);
    }
}
