//! FlashArray protection groups, as far as array-side snapshot schedules need them: a group of
//! volumes (`POST pgroup/<name>` with `vollist`, `GET pgroup/<name>`) and its snapshots (`POST
//! pgroup {"source": [..], "snap": true, "suffix"}`), which give each member volume a snapshot
//! named `<pgroup>.<suffix>.<volume>`, data included. Those volume snapshots are listed with the
//! volume's own (`GET volume/<v>?snap=true`) and can be copied like any snapshot. Not modelled:
//! hosts, host groups, replication targets, schedules, retention, and destroying a group or one
//! of its snapshots.

use serde_json::{Value, json};

use super::model::{FaState, Pgroup};
use super::snapshots::{suffix_of, take};
use super::volume_rules::validate_volume_name;
use super::volumes::missing;
use super::{Ctx, FaError, FaResult};
use crate::api::Params;

fn missing_group(name: &str) -> FaError {
    FaError::bad("Protection group does not exist.", name)
}

/// `POST pgroup/<name>` `{"vollist": [..]}`: a group of live volumes (none is fine).
pub fn create(ctx: &Ctx<'_>, state: &mut FaState, name: &str, params: &Params) -> FaResult {
    validate_volume_name(name).map_err(|_| {
        FaError::bad(
            "Protection group name is invalid: use 1-63 letters, digits, '-' or '_'.",
            name,
        )
    })?;
    if state.pgroups.contains_key(name) {
        return Err(FaError::bad("Protection group already exists.", name));
    }
    let volumes = params.list("vollist")?.unwrap_or_default();
    for volume in &volumes {
        state
            .live_volume(volume)
            .filter(|v| !v.is_snapshot())
            .ok_or_else(|| missing(volume))?;
    }
    let group = Pgroup {
        name: name.to_string(),
        volumes,
    };
    let body = group.render(&ctx.spec.name);
    state.pgroups.insert(name.to_string(), group);
    Ok(body.into())
}

pub fn get(ctx: &Ctx<'_>, state: &FaState, name: &str) -> FaResult {
    let group = state.pgroups.get(name).ok_or_else(|| missing_group(name))?;
    Ok(group.render(&ctx.spec.name).into())
}

/// `POST pgroup {"source": [groups], "snap": true, "suffix"}`: one group snapshot `<group>.<suffix>`
/// per group, and a snapshot `<group>.<suffix>.<volume>` of each member volume.
pub fn snapshot(ctx: &Ctx<'_>, state: &mut FaState, params: &Params) -> FaResult {
    if !params.flag("snap")? {
        return Err(FaError::bad(
            "Creating protection groups requires a name in the path.",
            "",
        ));
    }
    let groups = params
        .list("source")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| FaError::bad("Missing parameter source.", ""))?;
    let suffix = suffix_of(state, params)?;
    let mut planned = Vec::new();
    for group in &groups {
        let members = &state
            .pgroups
            .get(group)
            .ok_or_else(|| missing_group(group))?
            .volumes;
        for volume in members {
            let parent = state.live_volume(volume).ok_or_else(|| missing(volume))?;
            let name = format!("{group}.{suffix}.{volume}");
            if state.volumes.contains_key(&name) {
                return Err(FaError::bad("Snapshot already exists.", name));
            }
            planned.push((name, parent.clone()));
        }
    }
    for (name, parent) in planned {
        take(ctx, state, name, &parent)?;
    }
    let created = crate::clock::iso8601(ctx.now);
    let rows: Vec<Value> = groups
        .iter()
        .map(|g| json!({"name": format!("{g}.{suffix}"), "source": g, "created": created}))
        .collect();
    Ok(Value::Array(rows).into())
}
