//! Resizing one bound claim, as [`crate::decide::resize`] decides: the array object grows to what
//! the claim (and its PV) ask for; a file claim's status is then finished here, a block claim's
//! by kubelet after the driver's `expandfs`.
//!
//! Idempotent across crashes and restarts: the array object's size is read before every
//! decision, so a provisioner killed after growing it finds it grown and only finishes; the
//! claim's status is patched only at the resourceVersion it was read at. Events use the
//! reasons users know from the CSI resizer: `Resizing`, then `FileSystemResizeRequired` (block)
//! or `VolumeResizeSuccessful` (file), or `VolumeResizeFailed` saying why.

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};

use flashvol_common::sizes::{Growth, format_bytes, plan_growth};

use crate::arrays::Lookup;
use crate::decide::resize::{
    Finish, Pending, ResizeDecision, finish, finished_status_patch, pending_resize, resize_target,
    wanted_bytes,
};
use crate::reconcile::context::Context;
use crate::reconcile::events::{self, Kind};
use crate::reconcile::locate::locate;
use crate::reconcile::provision::claim_key;

/// How a pass over a bound claim ended without error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResizeOutcome {
    /// Nothing to resize, or not ours.
    Ignored(&'static str),
    /// Waiting for the controller manager to raise the PV (file claims).
    Waiting(String),
    /// The array object held the size already; kubelet finishes the claim.
    UpToDate,
    /// The array object grew; kubelet finishes the claim (block).
    Grown { from: u64, to: u64 },
    /// The claim's status was finished here (file).
    Finished,
}

/// A failed pass; unless it was a lost race (`conflict`), a `VolumeResizeFailed` event says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ResizeError {
    /// Metric label: `refused`, `array`, `options`, `kubernetes`, `conflict`.
    pub reason: &'static str,
    pub message: String,
}

/// Every [`ResizeError::reason`] counted as a failure (all but `conflict`, a lost race that is
/// retried): the failure series start at zero ([`crate::serve::metrics`]).
pub const FAILURE_REASONS: [&str; 4] = ["refused", "array", "options", "kubernetes"];

fn fail(reason: &'static str, message: impl Into<String>) -> ResizeError {
    debug_assert!(
        reason == "conflict" || FAILURE_REASONS.contains(&reason),
        "{reason} is missing from FAILURE_REASONS"
    );
    ResizeError {
        reason,
        message: message.into(),
    }
}

/// One pass over a bound claim: grows its array object when its request exceeds its capacity,
/// and records the outcome (events, metrics, log).
pub async fn resize_claim(
    pvc: &PersistentVolumeClaim,
    ctx: &Context,
) -> Result<ResizeOutcome, ResizeError> {
    let pending = match pending_resize(pvc) {
        ResizeDecision::Ignore(why) => return Ok(ResizeOutcome::Ignored(why)),
        ResizeDecision::Pending(p) => p,
    };
    let key = claim_key(&pvc.metadata);
    let result = resize(pvc, pending, ctx).await;
    match &result {
        Ok(ResizeOutcome::Grown { .. }) => ctx.metrics.resize_done(true, "grown"),
        Ok(ResizeOutcome::Finished) => ctx.metrics.resize_done(true, "finished"),
        Ok(_) => {}
        Err(e) if e.reason == "conflict" => log::debug!("claim {key}: {}", e.message),
        Err(e) => {
            ctx.metrics.resize_done(false, e.reason);
            ctx.events.publish(
                &pvc.object_ref(&()),
                Kind::Warning,
                events::VOLUME_RESIZE_FAILED,
                &e.message,
            );
            log::warn!("claim {key}: {}", e.message);
        }
    }
    result
}

async fn resize(
    pvc: &PersistentVolumeClaim,
    pending: Pending,
    ctx: &Context,
) -> Result<ResizeOutcome, ResizeError> {
    let pv_name = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .unwrap_or_default();
    let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let Some(pv) = pvs
        .get_opt(&pv_name)
        .await
        .map_err(|e| fail("kubernetes", format!("cannot read PV {pv_name}: {e}")))?
    else {
        return Ok(ResizeOutcome::Ignored("the claim's PV does not exist"));
    };
    let Some(target) = resize_target(
        &pv,
        &ctx.identity.provisioner,
        &ctx.identity.driver,
        &ctx.settings.name_prefix,
    )
    .map_err(|e| fail("options", format!("resize volume {pv_name} failed: {e}")))?
    else {
        return Ok(ResizeOutcome::Ignored("the claim's PV is not ours"));
    };
    let name = target.volume.array_volume.clone();
    let backend = target.volume.backend;
    let failed =
        |reason, why: String| fail(reason, format!("resize volume {pv_name} failed: {why}"));
    let located = locate(&target.volume, ctx, true)
        .await
        .map_err(|e| failed("array", e.to_string()))?
        .ok_or_else(|| {
            failed(
                "array",
                format!("{name} is on no configured {}", backend.array_kind()),
            )
        })?;
    let array = located.array;
    let lookup = match located.lookup {
        Some(found) => found,
        None => array.lookup(&name).await.map_err(|e| {
            failed(
                "array",
                format!("cannot read {name} on {}: {e}", array.describe()),
            )
        })?,
    };
    let Lookup::Live { size } = lookup else {
        return Err(failed(
            "array",
            format!("{name} on {} is {lookup:?}", array.describe()),
        ));
    };
    let wanted = wanted_bytes(pending, &target);
    let refused = |why: flashvol_common::sizes::GrowthRefusal| {
        failed(
            "refused",
            format!(
                "{name} on {} cannot grow to {}: {why}",
                array.describe(),
                format_bytes(wanted)
            ),
        )
    };
    let object = pvc.object_ref(&());
    let (size_now, grew) = match plan_growth(backend, size, wanted).map_err(refused)? {
        Growth::Enough { current } => (current, None),
        growth @ Growth::Grow { from, to } => {
            let space = array.space().await.map_err(|e| {
                failed(
                    "array",
                    format!("cannot read the free space of {}: {e}", array.describe()),
                )
            })?;
            growth.fits(space.free).map_err(refused)?;
            ctx.events.publish(
                &object,
                Kind::Normal,
                events::RESIZING,
                &format!(
                    "External resizer is resizing volume {pv_name}: {name} on {} from {} to {}",
                    array.describe(),
                    format_bytes(from),
                    format_bytes(to)
                ),
            );
            let now = array.grow(&name, to).await.map_err(|e| {
                failed(
                    "array",
                    format!(
                        "cannot grow {name} on {} to {}: {e}",
                        array.describe(),
                        format_bytes(to)
                    ),
                )
            })?;
            array.charge(to - from);
            log::info!(
                "claim {}: grew {name} on {} from {from} to {now} bytes",
                claim_key(&pvc.metadata),
                array.describe()
            );
            (now, Some((from, now)))
        }
    };
    match finish(pending, &target, size_now) {
        Finish::Kubelet => {
            let Some((from, to)) = grew else {
                return Ok(ResizeOutcome::UpToDate);
            };
            ctx.events.publish(
                &object,
                Kind::Normal,
                events::FILE_SYSTEM_RESIZE_REQUIRED,
                &format!(
                    "Require file system resize of volume on node: {name} on {} is {}; \
                         kubelet has the driver grow the file system where the volume is mounted \
                         (on a running pod from Kubernetes 1.15, else when a pod next mounts it)",
                    array.describe(),
                    format_bytes(to)
                ),
            );
            Ok(ResizeOutcome::Grown { from, to })
        }
        Finish::WaitForPv => Ok(ResizeOutcome::Waiting(format!(
            "the controller manager has not raised PV {pv_name}'s capacity yet"
        ))),
        Finish::Now { capacity } => {
            finish_file_claim(pvc, &capacity, ctx).await?;
            ctx.events.publish(
                &object,
                Kind::Normal,
                events::VOLUME_RESIZE_SUCCESSFUL,
                &format!(
                    "Resize volume succeeded: {name} on {} is {}; NFS clients see the new size",
                    array.describe(),
                    format_bytes(size_now)
                ),
            );
            Ok(ResizeOutcome::Finished)
        }
    }
}

/// Sets a file claim's status as kubelet would after a node resize, on the claim as it is now
/// (its conditions and resourceVersion); a claim someone finished meanwhile is left alone.
async fn finish_file_claim(
    pvc: &PersistentVolumeClaim,
    capacity: &k8s_openapi::apimachinery::pkg::api::resource::Quantity,
    ctx: &Context,
) -> Result<(), ResizeError> {
    let (Some(ns), Some(claim)) = (
        pvc.metadata.namespace.as_deref(),
        pvc.metadata.name.as_deref(),
    ) else {
        return Ok(());
    };
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), ns);
    let Some(fresh) = claims
        .get_opt(claim)
        .await
        .map_err(|e| fail("kubernetes", format!("cannot read claim {ns}/{claim}: {e}")))?
    else {
        return Ok(());
    };
    if matches!(pending_resize(&fresh), ResizeDecision::Ignore(_)) {
        return Ok(());
    }
    let patch = finished_status_patch(&fresh, capacity);
    match claims
        .patch_status(claim, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Err(fail(
            "conflict",
            format!("claim {ns}/{claim} changed while its resize was finished; looking again"),
        )),
        Err(e) => Err(fail(
            "kubernetes",
            format!("cannot finish the resize of claim {ns}/{claim}: {e}"),
        )),
    }
}
