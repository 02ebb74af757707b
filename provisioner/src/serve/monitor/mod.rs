//! What the metrics say beyond the reconcilers' own counters: the state of the arrays and of the
//! claims and PVs, for dashboards and alerts. All of it runs only while this replica leads.
//!
//! - [`poller`]: each array's space and reachability, one call per array per poll interval.
//! - [`pending`]: why claims of ours are not bound yet (a bounded set of reasons), and the oldest.
//! - [`volumes`]: our PVs per array.
//!
//! The last two are counted from the watch caches every [`CACHE_GAUGES_EVERY`]; they cost no
//! API or array call.

pub mod pending;
pub mod poller;
pub mod volumes;

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::storage::v1::StorageClass;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};

use flashvol_common::names;

use crate::k8s::cache::{CachedClaim, CachedVolume};
use crate::reconcile::context::Context;
use pending::{classify, summarize};
use volumes::count_by_array;

/// How often the claim and PV gauges are recounted from the caches.
pub const CACHE_GAUGES_EVERY: Duration = Duration::from_secs(5);

/// Recounts `flashvol_claims_pending`, `flashvol_claims_pending_oldest_seconds` and
/// `flashvol_volumes` from the caches, and forgets the failures of claims no longer pending.
pub fn publish_cache_gauges(
    ctx: &Context,
    claims: &Store<CachedClaim>,
    classes: &Store<StorageClass>,
    volumes: &Store<CachedVolume>,
) {
    let provisioner = ctx.identity.provisioner.as_str();
    let mut pending = Vec::new();
    let mut still_pending = HashSet::new();
    for cached in claims.state().iter().filter(|c| c.is_unbound()) {
        let Some(uid) = cached.metadata.uid.as_deref() else {
            continue;
        };
        let class = cached
            .unbound_class_name()
            .and_then(|name| classes.get(&ObjectRef::new(name)));
        let pv_exists = volumes.get(&ObjectRef::new(&names::pv_name(uid))).is_some();
        let claim = cached.to_claim();
        let reason = classify(
            &claim,
            class.as_deref(),
            provisioner,
            pv_exists,
            ctx.last_failures.get(uid),
        );
        if let Some(reason) = reason {
            let created = cached
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| SystemTime::from(t.0));
            pending.push((class.map(|c| c.name_any()), reason, created));
            still_pending.insert(uid.to_owned());
        }
    }
    ctx.last_failures.retain(|uid| still_pending.contains(uid));
    let all_classes = classes.state();
    let ours: Vec<&str> = all_classes
        .iter()
        .filter(|c| c.provisioner == provisioner)
        .filter_map(|c| c.metadata.name.as_deref())
        .collect();
    let pending = pending
        .iter()
        .map(|(class, reason, created)| (class.as_deref(), *reason, *created));
    ctx.metrics
        .pending_claims(&summarize(pending, &ours, ctx.clock.now()));

    let arrays: Vec<&str> = ctx.arrays.all().map(|a| a.endpoint.as_str()).collect();
    let pvs = volumes.state();
    ctx.metrics.volumes_per_array(count_by_array(
        pvs.iter().map(AsRef::as_ref),
        provisioner,
        &arrays,
    ));
}
