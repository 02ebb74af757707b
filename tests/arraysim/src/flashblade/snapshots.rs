//! FlashBlade file-system snapshots: create (`sources=` + suffix), list (`names`, `sources`,
//! `names_or_sources`, `names_or_owner_names`), destroy/recover via PATCH, eradicate via DELETE.
//! Snapshots carry metadata only; their data is not kept.

use serde_json::Value;

use super::model::{FbState, FsSnapshot};
use super::{Call, FbError, FbResult, items_reply, list_reply};
use crate::api::ApiReply;

fn missing(name: &str) -> FbError {
    FbError::bad("Snapshot does not exist.", name)
}

/// When the snapshot's file system was destroyed, if it was.
fn owner_destroyed_at(state: &FbState, snapshot: &FsSnapshot) -> Option<u64> {
    state
        .file_systems
        .get(&snapshot.source)
        .and_then(|fs| fs.destroyed_at)
}

fn render(state: &FbState, snapshot: &FsSnapshot, now_ms: u64) -> Value {
    snapshot.render(now_ms, owner_destroyed_at(state, snapshot))
}

pub fn list(call: &Call<'_>, state: &FbState) -> FbResult {
    let by_name = call.query_list("names");
    let by_source = call.query_list("sources");
    let either = call
        .query_list("names_or_sources")
        .or_else(|| call.query_list("names_or_owner_names"));
    for name in by_name.iter().flatten() {
        if !state.snapshots.contains_key(name) {
            return Err(missing(name));
        }
    }
    for source in by_source.iter().flatten() {
        if !state.file_systems.contains_key(source) {
            return Err(FbError::bad("File system does not exist.", source.clone()));
        }
    }
    for item in either.iter().flatten() {
        if !state.snapshots.contains_key(item) && !state.file_systems.contains_key(item) {
            return Err(FbError::bad(
                "File system or snapshot does not exist.",
                item.clone(),
            ));
        }
    }
    let rows = state
        .snapshots
        .values()
        .filter(|s| by_name.as_ref().is_none_or(|names| names.contains(&s.name)))
        .filter(|s| {
            by_source
                .as_ref()
                .is_none_or(|sources| sources.contains(&s.source))
        })
        .filter(|s| {
            either
                .as_ref()
                .is_none_or(|items| items.contains(&s.name) || items.contains(&s.source))
        })
        .map(|s| render(state, s, call.now_ms))
        .collect();
    list_reply(call, rows)
}

pub fn create(call: &Call<'_>, state: &mut FbState) -> FbResult {
    let sources = call
        .query_list("sources")
        .ok_or_else(|| FbError::bad("sources= is required.", "sources"))?;
    let body = call.body_object()?;
    let suffix = match body.get("suffix") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(FbError::bad("Invalid value for suffix.", "suffix")),
    };
    if let Some(suffix) = &suffix {
        if !crate::names::is_valid_suffix(suffix) {
            return Err(FbError::bad(
                "Snapshot suffix is invalid: use 1-63 letters, digits or '-'.",
                suffix.clone(),
            ));
        }
    }
    let mut planned = Vec::new();
    for source in &sources {
        let fs = state
            .file_systems
            .get(source)
            .ok_or_else(|| FbError::bad("File system does not exist.", source.clone()))?;
        if fs.is_destroyed() {
            return Err(FbError::bad(
                "File system has been destroyed.",
                source.clone(),
            ));
        }
        planned.push((fs.name.clone(), fs.id.clone()));
    }
    let mut rows = Vec::new();
    for (source, source_id) in planned {
        let id = state.allocate_id();
        let suffix = suffix.clone().unwrap_or_else(|| {
            id.rsplit('-')
                .next()
                .unwrap_or("0")
                .trim_start_matches('0')
                .to_string()
        });
        let name = format!("{source}.{suffix}");
        if state.snapshots.contains_key(&name) {
            return Err(FbError::bad("Snapshot already exists.", name));
        }
        let snapshot = FsSnapshot {
            id,
            name: name.clone(),
            suffix,
            source,
            source_id,
            created: call.now_ms,
            destroyed_at: None,
        };
        rows.push(render(state, &snapshot, call.now_ms));
        state.snapshots.insert(name, snapshot);
    }
    Ok(items_reply(rows))
}

pub fn update(call: &Call<'_>, state: &mut FbState) -> FbResult {
    let name = call.target_name()?;
    let body = call.body_object()?;
    let now = call.now_ms;
    let owner_destroyed = state
        .snapshots
        .get(&name)
        .and_then(|s| owner_destroyed_at(state, s))
        .is_some();
    let snapshot = state
        .snapshots
        .get_mut(&name)
        .ok_or_else(|| missing(&name))?;
    if owner_destroyed && body.get("destroyed") == Some(&Value::Bool(false)) {
        return Err(FbError::bad(
            "File system has been destroyed; recover it to recover its snapshots.",
            name,
        ));
    }
    match body.get("destroyed") {
        Some(Value::Bool(true)) if snapshot.destroyed_at.is_none() => {
            snapshot.destroyed_at = Some(now)
        }
        Some(Value::Bool(false)) => snapshot.destroyed_at = None,
        Some(Value::Bool(true)) => {}
        _ => {
            return Err(FbError::bad(
                "Only destroyed can be changed on a snapshot.",
                name,
            ));
        }
    }
    let snapshot = snapshot.clone();
    Ok(items_reply(vec![render(state, &snapshot, now)]))
}

pub fn delete(call: &Call<'_>, state: &mut FbState) -> FbResult {
    let name = call.target_name()?;
    let snapshot = state.snapshots.get(&name).ok_or_else(|| missing(&name))?;
    if snapshot
        .destroyed_at(owner_destroyed_at(state, snapshot))
        .is_none()
    {
        return Err(FbError::bad(
            "Snapshot must be destroyed before it can be eradicated.",
            name,
        ));
    }
    state.snapshots.remove(&name);
    Ok(ApiReply::empty(200))
}
