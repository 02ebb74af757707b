//! FlashArray protection groups: a group of volumes (`POST pgroup/<name>` with `vollist`, `GET
//! pgroup/<name>`, `PUT pgroup/<name>` with `addvollist`/`remvollist`, `DELETE pgroup/<name>`
//! to destroy and, with `eradicate`, to eradicate) and its snapshots (`POST pgroup {"source":
//! [..], "snap": true, "suffix"}`), which give each member volume a snapshot named
//! `<pgroup>.<suffix>.<volume>`, data included. Group snapshots are listed with `GET
//! pgroup/<name>?snap=true` (`transfer=true` adds `started`, `completed`, `progress`), their
//! volume snapshots with `GET volume/<pgroup>.<suffix>?snap=true&pgroup=true`; volume snapshots
//! are also listed with the volume's own (`GET volume/<v>?snap=true`) and copy like any snapshot.
//! Replicas of other arrays' groups (`<source array>:<group>`) arrive through
//! [`super::replication`]. Not modelled: hosts, host groups, targets, schedules, retention.

use serde_json::{Value, json};

use super::model::{FaState, Pgroup, PgroupSnapshot, Volume};
use super::snapshots::{suffix_of, take};
use super::volumes::missing;
use super::{Ctx, FaError, FaResult, paginate};
use crate::api::Params;

fn missing_group(name: &str) -> FaError {
    FaError::bad("Protection group does not exist.", name)
}

fn destroyed_group(name: &str) -> FaError {
    FaError::bad("Protection group has been destroyed.", name)
}

/// Purity's rule for protection group names (Pure's Ansible `purefa_pg` checks the same
/// pattern): 1-63 letters, digits or '-', starting and ending with a letter or digit.
pub fn is_valid_pgroup_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

/// A live group, or the error a real array gives for a missing or destroyed one.
fn live_group<'a>(state: &'a mut FaState, name: &str) -> Result<&'a mut Pgroup, FaError> {
    match state.pgroups.get_mut(name) {
        None => Err(missing_group(name)),
        Some(group) if group.destroyed_at.is_some() => Err(destroyed_group(name)),
        Some(group) => Ok(group),
    }
}

fn live_member<'a>(state: &'a FaState, volume: &str) -> Result<&'a Volume, FaError> {
    state
        .live_volume(volume)
        .filter(|v| !v.is_snapshot())
        .ok_or_else(|| missing(volume))
}

/// `POST pgroup/<name>` `{"vollist": [..]}`: a group of live volumes (none is fine).
pub fn create(ctx: &Ctx<'_>, state: &mut FaState, name: &str, params: &Params) -> FaResult {
    if !is_valid_pgroup_name(name) {
        return Err(FaError::bad(
            "Protection group name is invalid: use 1-63 letters, digits or '-', starting and ending with a letter or digit.",
            name,
        ));
    }
    match state.pgroups.get(name) {
        Some(group) if group.destroyed_at.is_some() => return Err(destroyed_group(name)),
        Some(_) => return Err(FaError::bad("Protection group already exists.", name)),
        None => {}
    }
    let volumes = params.list("vollist")?.unwrap_or_default();
    for volume in &volumes {
        live_member(state, volume)?;
    }
    let group = Pgroup {
        name: name.to_string(),
        volumes,
        ..Pgroup::default()
    };
    let body = group.render(&ctx.spec.name);
    state.pgroups.insert(name.to_string(), group);
    Ok(body.into())
}

/// `GET pgroup/<name>`: the group (`pending` shows a destroyed one with `time_remaining`), or
/// with `snap` its snapshots, oldest first (`transfer` adds the transfer fields).
pub fn get(ctx: &Ctx<'_>, state: &FaState, name: &str, params: &Params) -> FaResult {
    let pending = params.flag("pending")?;
    let group = state
        .pgroups
        .get(name)
        .filter(|g| pending || g.destroyed_at.is_none())
        .ok_or_else(|| missing_group(name))?;
    if params.flag("snap")? {
        let transfer = params.flag("transfer")?;
        let mut snapshots: Vec<&PgroupSnapshot> = state
            .pgroup_snapshots
            .values()
            .filter(|s| s.group == name)
            .collect();
        snapshots.sort_by_key(|s| (s.created, s.name.clone()));
        let rows = snapshots.iter().map(|s| s.render(transfer)).collect();
        return paginate(rows, params);
    }
    let mut body = group.render(&ctx.spec.name);
    if pending {
        body["time_remaining"] = json!(group.time_remaining(ctx.now));
    }
    Ok(body.into())
}

/// `PUT pgroup/<name>` `{"addvollist": [..]}` / `{"remvollist": [..]}`: membership changes,
/// all or nothing. Adding a member is refused with "already belongs to", removing a non-member
/// with "could not be found" (the substrings Cinder matches).
pub fn modify(state: &mut FaState, name: &str, params: &Params) -> FaResult {
    let add = params.list("addvollist")?.unwrap_or_default();
    let remove = params.list("remvollist")?.unwrap_or_default();
    if add.is_empty() && remove.is_empty() {
        return Err(FaError::bad(
            "Missing parameter: addvollist or remvollist.",
            name,
        ));
    }
    for volume in &add {
        live_member(state, volume)?;
    }
    let group = live_group(state, name)?;
    for volume in &add {
        if group.volumes.contains(volume) {
            return Err(FaError::bad(
                format!("Volume '{volume}' already belongs to protection group '{name}'."),
                volume.as_str(),
            ));
        }
    }
    for volume in &remove {
        if !group.volumes.contains(volume) {
            return Err(FaError::bad(
                format!("Volume '{volume}' could not be found in protection group '{name}'."),
                volume.as_str(),
            ));
        }
    }
    group.volumes.retain(|v| !remove.contains(v));
    group.volumes.extend(add);
    Ok(json!({"name": name, "volumes": group.volumes}).into())
}

/// `DELETE pgroup/<name>`: destroys the group (its snapshots stay, like the group, for 24 h);
/// with `eradicate`, removes a destroyed group and its snapshots for good.
pub fn destroy_or_eradicate(
    ctx: &Ctx<'_>,
    state: &mut FaState,
    name: &str,
    params: &Params,
) -> FaResult {
    if params.flag("eradicate")? {
        let group = state.pgroups.get(name).ok_or_else(|| missing_group(name))?;
        if group.destroyed_at.is_none() {
            return Err(FaError::bad(
                "Protection group must be destroyed before it can be eradicated.",
                name,
            ));
        }
        state.pgroups.remove(name);
        let doomed: Vec<String> = state
            .pgroup_snapshots
            .values()
            .filter(|s| s.group == name)
            .map(|s| s.name.clone())
            .collect();
        for snapshot in doomed {
            state.pgroup_snapshots.remove(&snapshot);
            let prefix = format!("{snapshot}.");
            let volumes: Vec<String> = state
                .volumes
                .keys()
                .filter(|v| v.starts_with(&prefix))
                .cloned()
                .collect();
            for volume in volumes {
                if let Some(v) = state.volumes.remove(&volume) {
                    crate::backing::remove_file_if_present(&crate::backing::volume_path(
                        &ctx.spec.state_dir,
                        &v.serial,
                    ))
                    .map_err(|e| FaError::internal(e, &volume))?;
                }
            }
        }
        return Ok(json!({"name": name}).into());
    }
    live_group(state, name)?.destroyed_at = Some(ctx.now);
    Ok(json!({"name": name}).into())
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
        let members = live_group(state, group)?.volumes.clone();
        if state
            .pgroup_snapshots
            .contains_key(&format!("{group}.{suffix}"))
        {
            return Err(FaError::bad(
                "Snapshot already exists.",
                format!("{group}.{suffix}"),
            ));
        }
        for volume in &members {
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
    let rows: Vec<Value> = groups
        .iter()
        .map(|group| {
            let snapshot = PgroupSnapshot {
                name: format!("{group}.{suffix}"),
                group: group.clone(),
                created: ctx.now,
                started: ctx.now,
                completed: Some(ctx.now),
                progress: 1.0,
                data_transferred: 0,
            };
            let row = snapshot.render(false);
            state
                .pgroup_snapshots
                .insert(snapshot.name.clone(), snapshot);
            row
        })
        .collect();
    Ok(Value::Array(rows).into())
}

/// `GET volume/<group snapshot>?snap=true&pgroup=true`: the volume snapshots of one protection
/// group snapshot (`<snapshot>.<volume>`), as Cinder's failover lists them.
pub fn snapshot_volumes(state: &FaState, snapshot: &str, params: &Params) -> FaResult {
    if !state.pgroup_snapshots.contains_key(snapshot) {
        return Err(missing(snapshot));
    }
    let prefix = format!("{snapshot}.");
    let rows = state
        .volumes
        .values()
        .filter(|v| v.destroyed_at.is_none() && v.name.starts_with(&prefix))
        .map(Volume::render)
        .collect();
    paginate(rows, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgroup_names_follow_puritys_rule() {
        for good in ["daily", "a", "site-a-daily", "0x1", &"g".repeat(63)] {
            assert!(is_valid_pgroup_name(good), "{good}");
        }
        for bad in [
            "",
            "-daily",
            "daily-",
            "da_ily",
            "da.ily",
            "a:b",
            &"g".repeat(64),
        ] {
            assert!(!is_valid_pgroup_name(bad), "{bad}");
        }
    }
}
