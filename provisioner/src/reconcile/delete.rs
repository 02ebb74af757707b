//! Deleting one PV's array volume: find the array, destroy (disconnecting FlashArray hosts first,
//! eradicating only when configured), then release our finalizer and delete the PV.
//!
//! A PV that says which array holds it is matched by array id, else by endpoint; a PV PSO 2.x
//! created names no array, so every array of its backend is searched by name. Missing or
//! already destroyed on the array counts as done.

use std::time::Instant;

use k8s_openapi::api::core::v1::PersistentVolume;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Resource};

use flashvol_common::options::VolumeOptions;

use crate::arrays::{Array, Lookup};
use crate::decide::volume::{FINALIZER, VolumeDecision, decide_volume};
use crate::reconcile::context::Context;
use crate::reconcile::events::{self, Kind};

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
                    ctx.events
                        .publish(
                            &pv.object_ref(&()),
                            Kind::Warning,
                            events::VOLUME_FAILED_DELETE,
                            &e.message,
                        )
                        .await;
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
    let array = locate(&opts, ctx).await?;
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

/// The array holding the PV's volume; `None` when a PSO PV's volume is on no array (gone).
async fn locate<'a>(
    opts: &VolumeOptions,
    ctx: &'a Context,
) -> Result<Option<&'a Array>, DeleteError> {
    let candidates: Vec<&Array> = ctx.arrays.of(opts.backend).collect();
    if let Some(locator) = &opts.array {
        if let Some(id) = &locator.id {
            // The id is authoritative: an endpoint may since point at another array. An array
            // that cannot say its id does not block finding the volume on another one.
            let mut unreachable = Vec::new();
            for array in &candidates {
                match array.id().await {
                    Ok(array_id) if &array_id == id => return Ok(Some(array)),
                    Ok(_) => {}
                    Err(e) => unreachable.push(format!("{}: {e}", array.describe())),
                }
            }
            if !unreachable.is_empty() {
                return Err(fail(
                    "array",
                    format!(
                        "cannot find array id {id} holding {}; unreachable: {}",
                        opts.array_volume,
                        unreachable.join("; ")
                    ),
                ));
            }
            return Err(fail(
                "array",
                format!(
                    "{} lives on array id {id} ({}), which is not in pure.json",
                    opts.array_volume,
                    locator.endpoint.as_deref().unwrap_or("endpoint unknown")
                ),
            ));
        }
        if let Some(endpoint) = &locator.endpoint {
            return candidates
                .iter()
                .find(|a| &a.endpoint == endpoint)
                .map(|a| Some(*a))
                .ok_or_else(|| {
                    fail(
                        "array",
                        format!(
                            "{} lives on {endpoint}, which is not in pure.json",
                            opts.array_volume
                        ),
                    )
                });
        }
    }
    // PSO PV: search by name.
    let mut found = None;
    for array in candidates {
        match array.lookup(&opts.array_volume).await {
            Ok(Lookup::Absent) => {}
            Ok(Lookup::Live { .. } | Lookup::Destroyed) => {
                if found.is_some() {
                    return Err(fail(
                        "array",
                        format!(
                            "{} exists on more than one array; resolve by hand",
                            opts.array_volume
                        ),
                    ));
                }
                found = Some(array);
            }
            Err(e) => {
                return Err(fail(
                    "array",
                    format!(
                        "cannot check {} for {}: {e}",
                        array.describe(),
                        opts.array_volume
                    ),
                ));
            }
        }
    }
    Ok(found)
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
