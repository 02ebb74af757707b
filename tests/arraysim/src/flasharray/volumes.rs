//! FlashArray volumes: create, get, list, resize, rename, QoS, destroy, recover, eradicate, and
//! their connections. Each volume and snapshot owns a sparse backing file named by its serial.
//! Snapshots and copies are in `snapshots.rs`, the parameter rules in `volume_rules.rs`.

use serde_json::{Map, Value, json};

use super::model::{FaState, Volume};
use super::snapshots;
use super::volume_rules::{bandwidth_limit, iops_limit, parse_size, validate_volume_name};
use super::{Answer, Ctx, FaError, FaResult, paginate, select_names};
use crate::api::Params;
use crate::backing::{allocated_bytes, create_sparse, remove_file_if_present, volume_path};
use crate::glob::{glob_match, is_glob};

pub(super) fn missing(name: &str) -> FaError {
    if name.contains('.') {
        FaError::bad("Snapshot does not exist.", name)
    } else {
        FaError::bad("Volume does not exist.", name)
    }
}

pub(super) fn destroyed(name: &str) -> FaError {
    FaError::bad("Volume has been destroyed.", name)
}

pub fn list(ctx: &Ctx<'_>, state: &FaState, params: &Params) -> FaResult {
    let pending_only = params.flag("pending_only")?;
    let pending = params.flag("pending")? || pending_only;
    let snap = params.flag("snap")?;
    let names = params.list("names")?;
    let visible = |v: &&Volume| {
        v.is_snapshot() == snap
            && if pending_only {
                v.destroyed_at.is_some()
            } else {
                pending || v.destroyed_at.is_none()
            }
    };
    let selected: Vec<&Volume> = if snap {
        // With `snap`, names may name the snapshots or the volumes whose snapshots to list.
        if let Some(patterns) = names.as_deref() {
            for pattern in patterns.iter().filter(|p| !is_glob(p)) {
                if !state.volumes.contains_key(pattern.as_str()) {
                    return Err(missing(pattern));
                }
            }
        }
        state
            .volumes
            .values()
            .filter(visible)
            .filter(|v| {
                names.as_deref().is_none_or(|patterns| {
                    patterns.iter().any(|p| {
                        glob_match(p, &v.name)
                            || v.snapshot_of
                                .as_deref()
                                .is_some_and(|parent| glob_match(p, parent))
                    })
                })
            })
            .collect()
    } else {
        let candidates = state
            .volumes
            .values()
            .filter(visible)
            .map(|v| v.name.as_str());
        let chosen = select_names(candidates, names.as_deref(), missing)?;
        chosen
            .iter()
            .filter_map(|name| state.volumes.get(name))
            .collect()
    };
    let rows = render_rows(ctx, state, &selected, params, pending)?;
    paginate(rows, params)
}

fn render_rows(
    ctx: &Ctx<'_>,
    state: &FaState,
    volumes: &[&Volume],
    params: &Params,
    pending: bool,
) -> Result<Vec<Value>, FaError> {
    if params.flag("connect")? {
        return Ok(volumes
            .iter()
            .flat_map(|v| {
                state.connections_of_volume(&v.name).map(|c| {
                    json!({"name": v.name, "size": v.size, "host": c.host, "lun": c.lun, "hgroup": null})
                })
            })
            .collect());
    }
    let space = params.flag("space")?;
    let qos = params.flag("qos")?;
    Ok(volumes
        .iter()
        .map(|v| {
            if space {
                v.render_space(allocated_bytes(&volume_path(
                    &ctx.spec.state_dir,
                    &v.serial,
                )))
            } else if qos {
                v.render_qos()
            } else if pending {
                v.render_pending(ctx.now)
            } else {
                v.render()
            }
        })
        .collect())
}

pub fn get(ctx: &Ctx<'_>, state: &FaState, name: &str, params: &Params) -> FaResult {
    let pending = params.flag("pending")? || params.flag("pending_only")?;
    let volume = state
        .volumes
        .get(name)
        .filter(|v| pending || v.destroyed_at.is_none())
        .ok_or_else(|| missing(name))?;
    if params.flag("snap")? {
        let snapshots: Vec<Value> = state
            .volumes
            .values()
            .filter(|s| {
                s.snapshot_of.as_deref() == Some(name) && (pending || s.destroyed_at.is_none())
            })
            .map(|s| {
                if pending {
                    s.render_pending(ctx.now)
                } else {
                    s.render()
                }
            })
            .collect();
        return paginate(snapshots, params);
    }
    let body = if params.flag("qos")? {
        volume.render_qos()
    } else if params.flag("space")? {
        volume.render_space(allocated_bytes(&volume_path(
            &ctx.spec.state_dir,
            &volume.serial,
        )))
    } else if pending {
        volume.render_pending(ctx.now)
    } else {
        volume.render()
    };
    Ok(body.into())
}

pub fn create_or_copy(ctx: &Ctx<'_>, state: &mut FaState, name: &str, params: &Params) -> FaResult {
    if let Some(source) = params.string("source")? {
        return snapshots::copy(ctx, state, &source, name, params.flag("overwrite")?);
    }
    validate_volume_name(name)?;
    let size = parse_size(
        params
            .get("size")
            .ok_or_else(|| FaError::bad("Missing parameter size.", name))?,
        name,
    )?;
    if let Some(existing) = state.volumes.get(name) {
        return Err(if existing.destroyed_at.is_some() {
            destroyed(name)
        } else {
            FaError::bad("Volume already exists.", name)
        });
    }
    let bandwidth_limit = bandwidth_limit(params)?.flatten();
    let iops_limit = iops_limit(params)?.flatten();
    let serial = state.allocate_serial();
    create_sparse(&volume_path(&ctx.spec.state_dir, &serial), size)
        .map_err(|e| FaError::internal(e, name))?;
    let volume = Volume {
        name: name.to_string(),
        serial,
        size,
        created: ctx.now,
        source: None,
        snapshot_of: None,
        destroyed_at: None,
        bandwidth_limit,
        iops_limit,
    };
    let body = volume.render();
    state.volumes.insert(name.to_string(), volume);
    Ok(body.into())
}

pub fn modify(ctx: &Ctx<'_>, state: &mut FaState, name: &str, params: &Params) -> FaResult {
    let volume = state.volumes.get(name).ok_or_else(|| missing(name))?;
    if let Some(action) = params.string("action")? {
        return match action.as_str() {
            "recover" => recover(state, name),
            other => Err(FaError::bad(format!("Unknown action {other}."), name)),
        };
    }
    if volume.destroyed_at.is_some() {
        return Err(destroyed(name));
    }
    let mut changed = Map::new();
    let mut renamed = false;
    changed.insert("name".to_string(), json!(name));
    if let Some(size) = params.get("size").filter(|v| !v.is_null()) {
        let size = parse_size(size, name)?;
        resize(ctx, state, name, size, params.flag("truncate")?)?;
        changed.insert("size".to_string(), json!(size));
    }
    let bandwidth = bandwidth_limit(params)?;
    let iops = iops_limit(params)?;
    if bandwidth.is_some() || iops.is_some() {
        let volume = state.volumes.get_mut(name).ok_or_else(|| missing(name))?;
        if let Some(limit) = bandwidth {
            volume.bandwidth_limit = limit;
        }
        if let Some(limit) = iops {
            volume.iops_limit = limit;
        }
        changed.insert("bandwidth_limit".to_string(), json!(volume.bandwidth_limit));
        changed.insert("iops_limit".to_string(), json!(volume.iops_limit));
    }
    if let Some(new_name) = params.string("name")?.filter(|n| n != name) {
        rename(state, name, &new_name)?;
        changed.insert("name".to_string(), json!(new_name));
        renamed = true;
    }
    if changed.len() == 1 && !renamed {
        return Err(FaError::bad(
            "No volume attribute to change was given.",
            name,
        ));
    }
    Ok(Value::Object(changed).into())
}

fn resize(
    ctx: &Ctx<'_>,
    state: &mut FaState,
    name: &str,
    size: u64,
    truncate: bool,
) -> Result<(), FaError> {
    let volume = state.volumes.get_mut(name).ok_or_else(|| missing(name))?;
    if volume.is_snapshot() {
        return Err(FaError::bad("Snapshots cannot be resized.", name));
    }
    if size < volume.size && !truncate {
        return Err(FaError::bad("Implicit truncation is not permitted.", name));
    }
    create_sparse(&volume_path(&ctx.spec.state_dir, &volume.serial), size)
        .map_err(|e| FaError::internal(e, name))?;
    volume.size = size;
    Ok(())
}

fn rename(state: &mut FaState, name: &str, new_name: &str) -> Result<(), FaError> {
    if state.volumes.get(name).is_some_and(Volume::is_snapshot) {
        return Err(FaError::bad("Snapshots cannot be renamed.", name));
    }
    validate_volume_name(new_name)?;
    if state.volumes.contains_key(new_name) {
        return Err(FaError::bad("Volume already exists.", new_name));
    }
    let Some(mut volume) = state.volumes.remove(name) else {
        return Err(missing(name));
    };
    volume.name = new_name.to_string();
    state.volumes.insert(new_name.to_string(), volume);
    // Snapshots follow their volume's name (`<volume>.<suffix>`, `<pgroup>.<suffix>.<volume>`).
    let snapshot_names: Vec<String> = state
        .volumes
        .values()
        .filter(|v| v.snapshot_of.as_deref() == Some(name))
        .map(|v| v.name.clone())
        .collect();
    for old in snapshot_names {
        if let Some(mut snapshot) = state.volumes.remove(&old) {
            snapshot.name = if snapshot.is_pgroup_snapshot() {
                let group = old.rsplit_once('.').map_or("", |(g, _)| g);
                format!("{group}.{new_name}")
            } else {
                let suffix = old.rsplit_once('.').map_or("", |(_, s)| s);
                format!("{new_name}.{suffix}")
            };
            snapshot.snapshot_of = Some(new_name.to_string());
            snapshot.source = Some(new_name.to_string());
            state.volumes.insert(snapshot.name.clone(), snapshot);
        }
    }
    for connection in state.connections.iter_mut().filter(|c| c.volume == name) {
        connection.volume = new_name.to_string();
    }
    for member in state
        .pgroups
        .values_mut()
        .flat_map(|g| g.volumes.iter_mut())
        .filter(|v| *v == name)
    {
        *member = new_name.to_string();
    }
    Ok(())
}

fn recover(state: &mut FaState, name: &str) -> FaResult {
    let Some(destroyed_at) = state.volumes.get(name).and_then(|v| v.destroyed_at) else {
        return Err(FaError::bad("Volume is not destroyed.", name));
    };
    for volume in state.volumes.values_mut() {
        let own = volume.name == name;
        let destroyed_with_it =
            volume.is_own_snapshot_of(name) && volume.destroyed_at == Some(destroyed_at);
        if own || destroyed_with_it {
            volume.destroyed_at = None;
        }
    }
    Ok(json!({"name": name}).into())
}

pub fn destroy_or_eradicate(
    ctx: &Ctx<'_>,
    state: &mut FaState,
    name: &str,
    params: &Params,
) -> FaResult {
    let volume = state.volumes.get(name).ok_or_else(|| missing(name))?;
    if params.flag("eradicate")? {
        if volume.destroyed_at.is_none() {
            return Err(FaError::bad(
                "Volume must be destroyed before it can be eradicated.",
                name,
            ));
        }
        eradicate_now(ctx, state, name)?;
        return Ok(json!({"name": name}).into());
    }
    if volume.destroyed_at.is_some() {
        return Err(destroyed(name));
    }
    if state.connections_of_volume(name).next().is_some() {
        return Err(FaError::bad(
            "Volume has host connections and cannot be destroyed; disconnect it first.",
            name,
        ));
    }
    for volume in state.volumes.values_mut() {
        let own = volume.name == name;
        let snapshot = volume.is_own_snapshot_of(name) && volume.destroyed_at.is_none();
        if own || snapshot {
            volume.destroyed_at = Some(ctx.now);
        }
    }
    Ok(json!({"name": name}).into())
}

/// Removes a volume (and its snapshots) and their backing files.
pub fn eradicate_now(ctx: &Ctx<'_>, state: &mut FaState, name: &str) -> Result<(), FaError> {
    let doomed: Vec<String> = state
        .volumes
        .values()
        .filter(|v| v.name == name || v.is_own_snapshot_of(name))
        .map(|v| v.name.clone())
        .collect();
    for victim in doomed {
        if let Some(volume) = state.volumes.remove(&victim) {
            remove_file_if_present(&volume_path(&ctx.spec.state_dir, &volume.serial))
                .map_err(|e| FaError::internal(e, &victim))?;
        }
    }
    state.connections.retain(|c| c.volume != name);
    for group in state.pgroups.values_mut() {
        group.volumes.retain(|v| v != name);
    }
    Ok(())
}

pub fn list_connections(state: &FaState, name: &str, params: &Params) -> FaResult {
    let volume = state.live_volume(name).ok_or_else(|| missing(name))?;
    let rows = state
        .connections_of_volume(name)
        .map(|c| c.render_for_volume(volume.size))
        .collect();
    paginate(rows, params)
}

pub fn list_shared_connections(state: &FaState, name: &str) -> FaResult {
    state.live_volume(name).ok_or_else(|| missing(name))?;
    Ok(Answer {
        body: json!([]),
        next_token: None,
    })
}
