//! Making a claim's volume as a copy of its source, on the array that holds the source, and
//! finishing a copy an earlier pass left behind (the copy has the claim's deterministic name, so
//! the next pass finds it):
//! - FlashArray: `POST volume/<new> {"source"}` from the snapshot or the source volume, then
//!   grown to the claim's size (Cinder's create-from-snapshot does the same: copy, then extend).
//! - FlashBlade (REST 1.9 and later): `POST file-systems {"source"}` copies a snapshot, then the
//!   copy gets the claim's settings. A blade copies snapshots only, so a clone first snapshots
//!   its source under a name derived from the new claim
//!   ([`crate::decide::source::clone_snapshot_suffix`]) and drops that snapshot once copied; a
//!   pass after a crash reuses the snapshot or, when the copy exists, just drops it.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;

use flashvol_common::ArrayError;
use flashvol_common::flashblade::NewFileSystem;

use crate::arrays::Array;
use crate::decide::plan::{NewVolume, Plan};
use crate::decide::quantity::format_bytes;
use crate::decide::source::{Source, clone_snapshot_suffix};
use crate::reconcile::context::Context;
use crate::reconcile::provision::{ProvisionError, fail, read_back};
use crate::reconcile::source::{self, Found};

/// A copy an earlier pass made: where, how big, and what it was copied from.
pub struct Earlier<'a, 's> {
    pub array: &'a Array,
    pub size: u64,
    pub source: &'s Source,
}

/// The new volume as a copy of the snapshot a restore names; returns its array and capacity.
pub async fn restore<'a>(
    ctx: &Context,
    found: Found<'a>,
    plan: &Plan<'_>,
) -> Result<(&'a Array, u64), ProvisionError> {
    match plan.new_volume(&ctx.settings) {
        NewVolume::Block(_) => copy_volume(found, plan).await,
        NewVolume::File(fs) => {
            let capacity = copy_file_system(found.array, &found.object, &fs).await?;
            Ok((found.array, capacity))
        }
    }
}

/// The new volume as a copy of a clone's source volume; returns its array and capacity.
pub async fn clone<'a>(
    ctx: &Context,
    found: Found<'a>,
    plan: &Plan<'_>,
    pv_name: &str,
) -> Result<(&'a Array, u64), ProvisionError> {
    let fs = match plan.new_volume(&ctx.settings) {
        NewVolume::Block(_) => return copy_volume(found, plan).await,
        NewVolume::File(fs) => fs,
    };
    let array = found.array;
    let snapshot = take_clone_snapshot(array, &found.object, pv_name).await?;
    let capacity = copy_file_system(array, &snapshot, &fs).await?;
    drop_clone_snapshot(array, &snapshot).await?;
    Ok((array, capacity))
}

/// Finishes a copy an earlier pass made: grows it (FlashArray) or gives it the claim's settings
/// (FlashBlade); drops a FlashBlade clone's snapshot if the earlier pass did not. The source is
/// looked up again only for that: when it cannot be (the source claim is gone), the snapshot is
/// left and logged, since the claim's own volume is complete.
pub async fn finish_earlier(
    ctx: &Context,
    pvc: &PersistentVolumeClaim,
    plan: &Plan<'_>,
    arrays: &[&Array],
    earlier: Earlier<'_, '_>,
    pv_name: &str,
) -> Result<u64, ProvisionError> {
    let Earlier {
        array,
        size,
        source,
    } = earlier;
    let fs = match plan.new_volume(&ctx.settings) {
        NewVolume::Block(_) => return grow_copy(array, &plan.array_name, size, plan.size).await,
        NewVolume::File(fs) => fs,
    };
    let capacity = apply_settings(array, &fs).await?;
    if let Source::Clone(claim) = source {
        match source::volume_to_clone(ctx, pvc, plan, arrays, claim).await {
            Ok(found) => {
                let snapshot = clone_snapshot_name(&found.object, pv_name);
                drop_clone_snapshot(array, &snapshot).await?;
            }
            Err(e) => log::warn!(
                "{}: cannot look up the clone's source to drop its temporary snapshot (*.{}): {}",
                plan.array_name,
                clone_snapshot_suffix(pv_name),
                e.message
            ),
        }
    }
    Ok(capacity)
}

/// A FlashArray copy of the found snapshot or volume, grown to the planned size.
async fn copy_volume<'a>(
    found: Found<'a>,
    plan: &Plan<'_>,
) -> Result<(&'a Array, u64), ProvisionError> {
    let (array, array_name) = (found.array, &plan.array_name);
    let size = match array.copy_volume(&found.object, array_name).await {
        Ok(size) => size,
        Err(ArrayError::AlreadyExists { .. }) => read_back(array, array_name).await?,
        Err(e) => return Err(cannot_copy(&found.object, array_name, array, &e)),
    };
    array.charge(size);
    let capacity = grow_copy(array, array_name, size, plan.size).await?;
    Ok((array, capacity))
}

fn cannot_copy(source: &str, dest: &str, array: &Array, e: &ArrayError) -> ProvisionError {
    fail(
        "array",
        format!(
            "cannot copy {source} to {dest} on {}: {e}",
            array.describe()
        ),
    )
}

/// Grows a copy smaller than planned; converges when repeated.
async fn grow_copy(
    array: &Array,
    array_name: &str,
    size: u64,
    planned: u64,
) -> Result<u64, ProvisionError> {
    if size >= planned {
        return Ok(size);
    }
    array.grow_volume(array_name, planned).await.map_err(|e| {
        fail(
            "array",
            format!(
                "copied {array_name} on {} but cannot grow it to {}: {e}",
                array.describe(),
                format_bytes(planned)
            ),
        )
    })
}

/// A FlashBlade copy of `snapshot` as the claim's file system, with the claim's settings.
async fn copy_file_system(
    array: &Array,
    snapshot: &str,
    fs: &NewFileSystem,
) -> Result<u64, ProvisionError> {
    let made_now = array
        .copy_snapshot_to_file_system(snapshot, &fs.name)
        .await
        .map_err(|e| cannot_copy(snapshot, &fs.name, array, &e))?;
    let capacity = apply_settings(array, fs).await?;
    if made_now {
        array.charge(capacity);
    }
    Ok(capacity)
}

async fn apply_settings(array: &Array, fs: &NewFileSystem) -> Result<u64, ProvisionError> {
    array.apply_file_system_settings(fs).await.map_err(|e| {
        fail(
            "array",
            format!(
                "copied {} on {} but cannot give it the claim's settings ({}): {e}",
                fs.name,
                array.describe(),
                format_bytes(fs.provisioned)
            ),
        )
    })
}

fn clone_snapshot_name(source_fs: &str, pv_name: &str) -> String {
    format!("{source_fs}.{}", clone_snapshot_suffix(pv_name))
}

/// The clone's snapshot of its source file system: taken now, or the one an earlier pass took
/// (a destroyed leftover is eradicated and taken again, since a destroyed snapshot cannot be
/// copied).
async fn take_clone_snapshot(
    array: &Array,
    source_fs: &str,
    pv_name: &str,
) -> Result<String, ProvisionError> {
    let suffix = clone_snapshot_suffix(pv_name);
    let name = clone_snapshot_name(source_fs, pv_name);
    let cannot = |e: ArrayError| {
        fail(
            "array",
            format!(
                "cannot snapshot {source_fs} on {} to clone it: {e}",
                array.describe()
            ),
        )
    };
    match array.create_snapshot(source_fs, Some(&suffix)).await {
        Ok(taken) => return Ok(taken.name),
        Err(ArrayError::AlreadyExists { .. }) => {}
        Err(e) => return Err(cannot(e)),
    }
    let earlier = array.find_snapshot(&name).await.map_err(cannot)?;
    if earlier.is_some_and(|s| !s.destroyed) {
        return Ok(name);
    }
    array.destroy_snapshot(&name, true).await.map_err(cannot)?;
    array
        .create_snapshot(source_fs, Some(&suffix))
        .await
        .map(|taken| taken.name)
        .map_err(cannot)
}

/// Destroys and eradicates the clone's snapshot; already gone is fine.
async fn drop_clone_snapshot(array: &Array, snapshot: &str) -> Result<(), ProvisionError> {
    array
        .destroy_snapshot(snapshot, true)
        .await
        .map(drop)
        .map_err(|e| {
            fail(
                "array",
                format!(
                    "copied the clone but cannot drop its snapshot {snapshot} on {}: {e}",
                    array.describe()
                ),
            )
        })
}
