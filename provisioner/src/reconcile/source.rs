//! A new claim's source found on the arrays and in the API, then checked by the rules of
//! [`crate::decide::source`]: the snapshot a restore copies, the volume of the claim a clone
//! copies, the object an adoption takes over. [`crate::reconcile::provision`] makes the copy (or
//! the PV of the adopted object).
//!
//! Every refusal is a [`ProvisionError`] whose message becomes the `ProvisioningFailed` event;
//! nothing here creates anything.

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Api;

use flashvol_common::locate::{LocateError, Located, Problem};
use flashvol_common::options::{Backend, VolumeOptions};

use crate::arrays::{Array, Lookup};
use crate::decide::claim::requested_bytes;
use crate::decide::plan::Plan;
use crate::decide::source::{
    AdoptionFacts, Ours, check_adoption, check_adoption_allowed, check_placement, check_size,
    check_snapshot, clone_source,
};
use crate::reconcile::context::Context;
use crate::reconcile::orphans::each_page;
use crate::reconcile::provision::{ProvisionError, claim_key, fail};
use crate::snapshot::array_ops::{locate_snapshot, locate_volume};

/// The source object, found: on which array, its name there, its size.
pub struct Found<'a> {
    pub array: &'a Array,
    pub object: String,
    pub size: u64,
}

/// A locate error as the event says it: a source that is on no array, or destroyed, is the
/// claim's problem (`claim`); an array that cannot answer is `array`.
fn located_or_fail(
    what: &str,
    result: Result<Located, LocateError>,
) -> Result<Located, ProvisionError> {
    result.map_err(|e| match e.problem {
        Problem::NotFound { .. } | Problem::IdNotConfigured { .. } => {
            fail("claim", format!("{what}: {e}"))
        }
        _ => fail("array", format!("{what}: {e}")),
    })
}

fn claim_fault(e: impl std::fmt::Display) -> ProvisionError {
    fail("claim", e.to_string())
}

/// The claim's request in bytes (already checked by the plan).
fn requested(pvc: &PersistentVolumeClaim) -> Result<u64, ProvisionError> {
    requested_bytes(pvc).map_err(claim_fault)
}

/// The snapshot a restore copies: any snapshot of one of our volumes, on the FlashArray that
/// holds it (found by name on every FlashArray, as PSO 2.x PVs are), live, no bigger than the
/// claim.
pub async fn snapshot_to_restore<'a>(
    ctx: &Context,
    pvc: &PersistentVolumeClaim,
    plan: &Plan<'_>,
    arrays: &[&'a Array],
    snapshot: &str,
) -> Result<Found<'a>, ProvisionError> {
    check_snapshot(snapshot, &ctx.settings.name_prefix).map_err(claim_fault)?;
    let what = format!("snapshot {snapshot}");
    let located = located_or_fail(
        &what,
        locate_snapshot(arrays, snapshot, plan.params.backend).await,
    )?;
    let array = arrays[located.array()];
    if matches!(located, Located::Destroyed(_)) {
        return Err(claim_fault(format!(
            "{what} on {} is destroyed (pending eradication); recover it on the array to restore it",
            array.describe()
        )));
    }
    let found = array.find_snapshot(snapshot).await.map_err(|e| {
        fail(
            "array",
            format!("cannot read {what} on {}: {e}", array.describe()),
        )
    })?;
    let size = found.and_then(|s| s.size).ok_or_else(|| {
        fail(
            "array",
            format!("{what} vanished from {}", array.describe()),
        )
    })?;
    check_size(requested(pvc)?, size, &what).map_err(claim_fault)?;
    check_placement(plan.selector, &array.labels, &array.endpoint, &what).map_err(claim_fault)?;
    Ok(Found {
        array,
        object: snapshot.to_owned(),
        size,
    })
}

/// A claim and the PV its `spec.volumeName` names, as the API has them (`None`: not found): what
/// a clone's source and the snapshot CLI's claim are judged by ([`claimed_volume`]). The error
/// names the object that could not be read (`claim ns/name`, `PV name`).
///
/// [`claimed_volume`]: crate::decide::source::claimed_volume
pub async fn claim_and_volume(
    client: &kube::Client,
    namespace: &str,
    claim: &str,
) -> Result<(Option<PersistentVolumeClaim>, Option<PersistentVolume>), (String, kube::Error)> {
    let pvc = Api::<PersistentVolumeClaim>::namespaced(client.clone(), namespace)
        .get_opt(claim)
        .await
        .map_err(|e| (format!("claim {namespace}/{claim}"), e))?;
    let pv_name = pvc
        .as_ref()
        .and_then(|c| c.spec.as_ref())
        .and_then(|s| s.volume_name.clone())
        .filter(|v| !v.is_empty());
    let pv = match &pv_name {
        Some(name) => Api::<PersistentVolume>::all(client.clone())
            .get_opt(name)
            .await
            .map_err(|e| (format!("PV {name}"), e))?,
        None => None,
    };
    Ok((pvc, pv))
}

/// The volume a clone copies: the source claim (same namespace) is bound to a PV of ours on the
/// same backend; its volume is found by the PV's locator, live, no bigger than the claim.
pub async fn volume_to_clone<'a>(
    ctx: &Context,
    pvc: &PersistentVolumeClaim,
    plan: &Plan<'_>,
    arrays: &[&'a Array],
    source_claim: &str,
) -> Result<Found<'a>, ProvisionError> {
    let namespace = pvc.metadata.namespace.as_deref().unwrap_or("default");
    let key = format!("{namespace}/{source_claim}");
    let (source, pv) = claim_and_volume(&ctx.client, namespace, source_claim)
        .await
        .map_err(|(what, e)| fail("kubernetes", format!("cannot read {what}: {e}")))?;
    let volume = clone_source(
        &key,
        source.as_ref(),
        pv.as_ref(),
        ours(ctx),
        plan.params.backend,
    )
    .map_err(claim_fault)?;
    let what = format!("claim {key}");
    let (array, size) = live_object(arrays, &volume, &what).await?;
    check_size(requested(pvc)?, size, &what).map_err(claim_fault)?;
    check_placement(plan.selector, &array.labels, &array.endpoint, &what).map_err(claim_fault)?;
    Ok(Found {
        array,
        object: volume.array_volume,
        size,
    })
}

/// The object an adoption takes over, with its safeguards ([`check_adoption`]): the class
/// allows it, the object is live on exactly one array of the backend, no PV names it, nothing
/// is connected to it, and the claim fits in it.
pub async fn object_to_adopt<'a>(
    ctx: &Context,
    pvc: &PersistentVolumeClaim,
    class: &StorageClass,
    plan: &Plan<'_>,
    arrays: &[&'a Array],
    object: &str,
) -> Result<Found<'a>, ProvisionError> {
    let class_name = class.metadata.name.as_deref().unwrap_or_default();
    check_adoption_allowed(class_name, plan.params.allow_adoption).map_err(claim_fault)?;
    let backend = plan.params.backend;
    let what = format!("{} {object}", backend.object_kind());
    let located = located_or_fail(&what, locate_volume(arrays, object, backend, None).await)?;
    let array = arrays[located.array()];
    let destroyed_on = matches!(located, Located::Destroyed(_)).then(|| array.describe());
    let size = match destroyed_on {
        Some(_) => 0,
        None => live_size(array, object, &what).await?,
    };
    let used_by = pv_naming(ctx, object, backend).await?;
    let connected_to = match destroyed_on {
        Some(_) => Vec::new(),
        None => array.attached_to(object).await.map_err(|e| {
            fail(
                "array",
                format!(
                    "cannot list what {what} is connected to on {}: {e}",
                    array.describe()
                ),
            )
        })?,
    };
    check_adoption(&AdoptionFacts {
        object,
        class: class_name,
        allowed: plan.params.allow_adoption,
        used_by: used_by.as_deref(),
        connected_to: &connected_to,
        destroyed_on: destroyed_on.as_deref(),
        requested: requested(pvc)?,
        size,
    })
    .map_err(claim_fault)?;
    check_placement(plan.selector, &array.labels, &array.endpoint, &what).map_err(claim_fault)?;
    log::info!(
        "claim {}: adopting {what} on {} ({size} bytes)",
        claim_key(&pvc.metadata),
        array.describe()
    );
    Ok(Found {
        array,
        object: object.to_owned(),
        size,
    })
}

fn ours(ctx: &Context) -> Ours<'_> {
    Ours {
        provisioner: &ctx.identity.provisioner,
        driver: &ctx.identity.driver,
        prefix: &ctx.settings.name_prefix,
    }
}

/// The array holding a PV's volume, live, and its size.
async fn live_object<'a>(
    arrays: &[&'a Array],
    volume: &VolumeOptions,
    what: &str,
) -> Result<(&'a Array, u64), ProvisionError> {
    let located = located_or_fail(
        what,
        locate_volume(
            arrays,
            &volume.array_volume,
            volume.backend,
            volume.array.as_ref(),
        )
        .await,
    )?;
    let array = arrays[located.array()];
    if matches!(located, Located::Destroyed(_)) {
        return Err(claim_fault(format!(
            "{what}: {} is destroyed on {}",
            volume.array_volume,
            array.describe()
        )));
    }
    Ok((array, live_size(array, &volume.array_volume, what).await?))
}

async fn live_size(array: &Array, object: &str, what: &str) -> Result<u64, ProvisionError> {
    match array.lookup(object).await {
        Ok(Lookup::Live { size }) => Ok(size),
        Ok(other) => Err(fail(
            "array",
            format!("{what}: {object} on {} is {other:?}", array.describe()),
        )),
        Err(e) => Err(fail(
            "array",
            format!("{what}: cannot read {object} on {}: {e}", array.describe()),
        )),
    }
}

/// The PV whose options name `object` on this backend, if any (a fresh, paged LIST: the cache
/// keeps no options of bound PVs).
async fn pv_naming(
    ctx: &Context,
    object: &str,
    backend: Backend,
) -> Result<Option<String>, ProvisionError> {
    let pvs = Api::<PersistentVolume>::all(ctx.client.clone());
    let prefix = &ctx.settings.name_prefix;
    let mut found = None;
    each_page(
        |params| {
            let pvs = pvs.clone();
            async move { pvs.list(&params).await }
        },
        |page| {
            for pv in page {
                let names_it = pv
                    .spec
                    .as_ref()
                    .and_then(|s| s.flex_volume.as_ref())
                    .and_then(|f| f.options.as_ref())
                    .and_then(|o| VolumeOptions::from_options(o, prefix).ok())
                    .is_some_and(|o| o.backend == backend && o.array_volume == object);
                if names_it && found.is_none() {
                    found = pv.metadata.name.clone();
                }
            }
        },
    )
    .await
    .map_err(|e| fail("kubernetes", format!("cannot list PVs: {e}")))?;
    Ok(found)
}
