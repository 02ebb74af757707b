//! FlashArray snapshots and copies: `POST volume` with `snap` takes point-in-time snapshots named
//! `<volume>.<suffix>`; `POST volume/<name>` with `source` copies a volume or snapshot into a new
//! volume (or over one, with `overwrite`). Either way the backing file is copied, so the data
//! travels with it.

use serde_json::Value;

use super::model::{FaState, Volume};
use super::volume_rules::{validate_suffix, validate_volume_name};
use super::volumes::{destroyed, missing};
use super::{Ctx, FaError, FaResult};
use crate::api::Params;
use crate::backing::{copy_sparse, volume_path};

/// `POST volume {"source": [..], "snap": true, "suffix": ..}`: point-in-time copies named `<vol>.<suffix>`.
pub fn create(ctx: &Ctx<'_>, state: &mut FaState, params: &Params) -> FaResult {
    if !params.flag("snap")? {
        return Err(FaError::bad(
            "Creating volumes requires a name in the path.",
            "",
        ));
    }
    let sources = params
        .list("source")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| FaError::bad("Missing parameter source.", ""))?;
    let suffix = suffix_of(state, params)?;
    let mut planned = Vec::new();
    for source in &sources {
        let volume = state
            .live_volume(source)
            .filter(|v| !v.is_snapshot())
            .ok_or_else(|| missing(source))?;
        let name = format!("{source}.{suffix}");
        if let Some(existing) = state.volumes.get(&name) {
            return Err(if existing.destroyed_at.is_some() {
                FaError::bad("Snapshot has been destroyed.", name)
            } else {
                FaError::bad("Snapshot already exists.", name)
            });
        }
        planned.push((name, volume.clone()));
    }
    let mut created = Vec::new();
    for (name, parent) in planned {
        created.push(take(ctx, state, name, &parent)?);
    }
    Ok(Value::Array(created).into())
}

/// The `suffix` parameter of a snapshot request, checked, or the array's next number.
pub(super) fn suffix_of(state: &mut FaState, params: &Params) -> Result<String, FaError> {
    match params.string("suffix")? {
        Some(suffix) => {
            validate_suffix(&suffix)?;
            Ok(suffix)
        }
        None => {
            state.next_snapshot_number += 1;
            Ok((state.next_snapshot_number - 1).to_string())
        }
    }
}

/// Takes the snapshot `name` of `parent`, data included; returns how `POST volume` renders it.
pub(super) fn take(
    ctx: &Ctx<'_>,
    state: &mut FaState,
    name: String,
    parent: &Volume,
) -> Result<Value, FaError> {
    let serial = state.allocate_serial();
    copy_sparse(
        &volume_path(&ctx.spec.state_dir, &parent.serial),
        &volume_path(&ctx.spec.state_dir, &serial),
        parent.size,
    )
    .map_err(|e| FaError::internal(e, &name))?;
    let snapshot = Volume {
        name: name.clone(),
        serial,
        size: parent.size,
        created: ctx.now,
        source: Some(parent.name.clone()),
        snapshot_of: Some(parent.name.clone()),
        destroyed_at: None,
        bandwidth_limit: None,
        iops_limit: None,
    };
    let rendered = snapshot.render();
    state.volumes.insert(name, snapshot);
    Ok(rendered)
}

/// `POST volume/<dest> {"source": .., "overwrite": ..}`: `dest` becomes a copy of the volume or
/// snapshot `source`, remembering the volume it came from.
pub(super) fn copy(
    ctx: &Ctx<'_>,
    state: &mut FaState,
    source: &str,
    dest: &str,
    overwrite: bool,
) -> FaResult {
    let src = state
        .live_volume(source)
        .ok_or_else(|| missing(source))?
        .clone();
    let origin = src.snapshot_of.clone().unwrap_or_else(|| src.name.clone());
    let src_path = volume_path(&ctx.spec.state_dir, &src.serial);
    if let Some(existing) = state.volumes.get_mut(dest) {
        if existing.destroyed_at.is_some() {
            return Err(destroyed(dest));
        }
        if !overwrite {
            return Err(FaError::bad("Volume already exists.", dest));
        }
        if existing.is_snapshot() {
            return Err(FaError::bad("Snapshots cannot be overwritten.", dest));
        }
        copy_sparse(
            &src_path,
            &volume_path(&ctx.spec.state_dir, &existing.serial),
            src.size,
        )
        .map_err(|e| FaError::internal(e, dest))?;
        existing.size = src.size;
        existing.source = Some(origin);
        return Ok(existing.render().into());
    }
    validate_volume_name(dest)?;
    let serial = state.allocate_serial();
    copy_sparse(
        &src_path,
        &volume_path(&ctx.spec.state_dir, &serial),
        src.size,
    )
    .map_err(|e| FaError::internal(e, dest))?;
    let volume = Volume {
        name: dest.to_string(),
        serial,
        size: src.size,
        created: ctx.now,
        source: Some(origin),
        snapshot_of: None,
        destroyed_at: None,
        bandwidth_limit: None,
        iops_limit: None,
    };
    let body = volume.render();
    state.volumes.insert(dest.to_string(), volume);
    Ok(body.into())
}
