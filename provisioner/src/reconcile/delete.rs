//! Deleting one PV's array volume: find the array, destroy (disconnecting FlashArray hosts first,
//! eradicating only when configured), then release our finalizer and delete the PV.
//!
//! The array is found by the one rule of [`flashvol_common::locate`] ([`crate::reconcile::locate`]).
//! Missing or already destroyed on the array counts as done.

use std::time::Instant;

use k8s_openapi::api::core::v1::PersistentVolume;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Resource};

use flashvol_common::options::VolumeOptions;

use crate::decide::volume::{FINALIZER, VolumeDecision, decide_volume};
use crate::reconcile::context::Context;
use crate::reconcile::events::{self, Kind};
use crate::reconcile::locate::locate;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeOutcome {
    Ignored,
    /// Retain: finalizer released, array untouched.
    Released,
    /// Array volume destroyed (or found gone) and PV deleted.
    Deleted {
        array: Option<String>,
    },
}

/// A failed pass; a `VolumeFailedDelete` event has been recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeleteError {
    /// Metric label: `options`, `array`, `kubernetes`.
    pub reason: &'static str,
    pub message: String,
}

fn fail(reason: &'static str, message: impl Into<String>) -> DeleteError {
    DeleteError {
        reason,
        message: message.into(),
    }
}

/// One pass over a PV, carrying out its reclaim policy: destroys the array volume and deletes the
/// PV when it is released with policy Delete; releases our finalizer from a deleted Retain PV.
pub async fn reclaim_volume(
    pv: &PersistentVolume,
    ctx: &Context,
) -> Result<VolumeOutcome, DeleteError> {
    let name = pv.metadata.name.clone().unwrap_or_default();
    let uid = pv.metadata.uid.as_deref().unwrap_or_default();
    if !uid.is_empty() && ctx.finished.contains(uid) {
        // A copy from before our own finalizer removal or PV delete (see `finished`).
        return Ok(VolumeOutcome::Ignored);
    }
    match decide_volume(pv, &ctx.identity.provisioner) {
        VolumeDecision::Ignore => Ok(VolumeOutcome::Ignored),
        VolumeDecision::ReleaseFinalizer => {
            if let Some(opts) = volume_options(pv, ctx)
                && let Ok(mut retained) = ctx.retained.lock()
            {
                retained.insert(opts.array_volume);
            }
            remove_finalizer(pv, ctx)
                .await
                .map_err(|e| fail("kubernetes", e))?;
            log::info!("PV {name}: deleted with reclaim policy Retain; array volume kept");
            Ok(VolumeOutcome::Released)
        }
        VolumeDecision::DestroyAndDelete => {
            let started = Instant::now();
            let result = destroy_and_delete(pv, ctx).await;
            match &result {
                Ok(VolumeOutcome::Deleted { array }) => {
                    if !uid.is_empty() {
                        ctx.finished.insert(uid);
                    }
                    ctx.metrics
                        .delete_done(true, if array.is_some() { "destroyed" } else { "gone" });
                    let backend = volume_options(pv, ctx).map_or("unknown", |o| o.backend.as_str());
                    ctx.metrics
                        .delete_duration
                        .get_or_create(&crate::serve::metrics::BackendLabels {
                            backend: backend.to_owned(),
                        })
                        .observe(started.elapsed().as_secs_f64());
                    log::info!(
                        "PV {name}: deleted; array volume {}",
                        array
                            .as_deref()
                            .map_or("was already gone".to_owned(), |a| format!(
                                "destroyed on {a}"
                            ))
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    ctx.metrics.delete_done(false, e.reason);
                    ctx.events.publish(
                        &pv.object_ref(&()),
                        Kind::Warning,
                        events::VOLUME_FAILED_DELETE,
                        &e.message,
                    );
                    log::warn!("PV {name}: delete failed: {}", e.message);
                }
            }
            result
        }
    }
}

fn volume_options(pv: &PersistentVolume, ctx: &Context) -> Option<VolumeOptions> {
    let options = pv.spec.as_ref()?.flex_volume.as_ref()?.options.as_ref()?;
    VolumeOptions::from_options(options, &ctx.settings.name_prefix).ok()
}

async fn destroy_and_delete(
    pv: &PersistentVolume,
    ctx: &Context,
) -> Result<VolumeOutcome, DeleteError> {
    let name = pv.metadata.name.clone().unwrap_or_default();
    let Some(flex) = pv.spec.as_ref().and_then(|s| s.flex_volume.as_ref()) else {
        return Err(fail(
            "options",
            format!(
                "PV {name} has no flexVolume source; cannot tell which array volume to destroy"
            ),
        ));
    };
    let opts = VolumeOptions::from_options(
        flex.options.as_ref().unwrap_or(&Default::default()),
        &ctx.settings.name_prefix,
    )
    .map_err(|e| fail("options", format!("PV {name}: {e}")))?;
    // The destroy counts a missing volume as done, so asking the array the PV names whether it
    // holds the volume would cost a call and tell nothing.
    let array = locate(&opts, ctx, false)
        .await
        .map_err(|e| fail("array", e.to_string()))?
        .map(|found| found.array);
    let destroyed_on = match array {
        Some(array) => {
            let destroyed_now = array
                .destroy(&opts.array_volume, ctx.settings.eradicate_on_delete)
                .await
                .map_err(|e| {
                    fail(
                        "array",
                        format!(
                            "cannot destroy {} on {}: {e}",
                            opts.array_volume,
                            array.describe()
                        ),
                    )
                })?;
            destroyed_now.then(|| array.describe())
        }
        None => None,
    };
    remove_finalizer(pv, ctx)
        .await
        .map_err(|e| fail("kubernetes", e))?;
    if pv.metadata.deletion_timestamp.is_none() {
        let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
        match pvs.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(fail("kubernetes", format!("cannot delete PV {name}: {e}"))),
        }
    }
    Ok(VolumeOutcome::Deleted {
        array: destroyed_on,
    })
}

/// Drops our finalizer, guarded by the resourceVersion we decided on.
async fn remove_finalizer(pv: &PersistentVolume, ctx: &Context) -> Result<(), String> {
    let Some(finalizers) = pv.metadata.finalizers.as_ref() else {
        return Ok(());
    };
    if !finalizers.iter().any(|f| f == FINALIZER) {
        return Ok(());
    }
    let name = pv.metadata.name.clone().unwrap_or_default();
    let keep: Vec<&String> = finalizers.iter().filter(|f| *f != FINALIZER).collect();
    let patch = serde_json::json!({
        "metadata": {"finalizers": keep, "resourceVersion": pv.metadata.resource_version}
    });
    let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
    match pvs
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(format!(
            "cannot remove finalizer {FINALIZER} from PV {name}: {e}"
        )),
    }
}
