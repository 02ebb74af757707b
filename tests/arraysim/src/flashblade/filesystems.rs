//! FlashBlade file systems: create, list, PATCH (deep merge of nfs/smb/http, resize, rename,
//! destroy/recover) and DELETE (eradicate, only once destroyed). Each one owns a directory.

use serde_json::{Map, Value};

use super::model::{FbState, FileSystem, FsSettings};
use super::{Call, Ctx, FbError, FbResult, items_reply, list_reply};
use crate::api::ApiReply;
use crate::backing::{filesystem_path, remove_dir_if_present, tree_allocated_bytes};

/// Server-managed attributes a client may echo back; they are ignored on create and PATCH.
const READ_ONLY: [&str; 9] = [
    "id",
    "created",
    "space",
    "time_remaining",
    "promotion_status",
    "requested_promotion_state",
    "multi_protocol",
    "source",
    "destroyed",
];

fn missing(name: &str) -> FbError {
    FbError::bad("File system does not exist.", name)
}

fn render(call: &Call<'_>, fs: &FileSystem) -> Value {
    let used = tree_allocated_bytes(&filesystem_path(&call.ctx.spec.state_dir, &fs.id));
    fs.render(call.now_ms, used)
}

pub fn list(call: &Call<'_>, state: &FbState) -> FbResult {
    let selected: Vec<&FileSystem> = match call.query_list("names") {
        Some(names) => names
            .iter()
            .map(|name| state.file_systems.get(name).ok_or_else(|| missing(name)))
            .collect::<Result<_, _>>()?,
        None => state.file_systems.values().collect(),
    };
    let rows = selected.into_iter().map(|fs| render(call, fs)).collect();
    list_reply(call, rows)
}

pub fn create(call: &Call<'_>, state: &mut FbState) -> FbResult {
    if call.query_flag("overwrite")? {
        return Err(FbError::bad(
            "Restoring a file system from a snapshot (overwrite=true) is not supported by the simulator.",
            "overwrite",
        ));
    }
    let mut body = call.body_object()?;
    let name = match body.remove("name") {
        Some(Value::String(name)) => name,
        _ => {
            return Err(FbError::bad(
                "The file system name is required in the request body.",
                "name",
            ));
        }
    };
    validate_name(&name)?;
    if body.get("source").is_some_and(|s| !s.is_null()) {
        return Err(FbError::bad(
            "Creating a file system from a snapshot is not supported by the simulator.",
            name,
        ));
    }
    if let Some(existing) = state.file_systems.get(&name) {
        return Err(if existing.is_destroyed() {
            FbError::bad(
                "File system already exists (it has been destroyed and is pending eradication).",
                name,
            )
        } else {
            FbError::bad("File system already exists.", name)
        });
    }
    let settings = merge_settings(
        &FsSettings {
            writable: true,
            ..FsSettings::default()
        },
        body,
        &name,
    )?;
    let id = state.allocate_id();
    std::fs::create_dir_all(filesystem_path(&call.ctx.spec.state_dir, &id))
        .map_err(|e| FbError::internal(e.into(), &name))?;
    let fs = FileSystem {
        id,
        name: name.clone(),
        created: call.now_ms,
        destroyed_at: None,
        settings,
    };
    let row = render(call, &fs);
    state.file_systems.insert(name, fs);
    Ok(items_reply(vec![row]))
}

pub fn update(call: &Call<'_>, state: &mut FbState) -> FbResult {
    let name = call.target_name()?;
    let mut body = call.body_object()?;
    let fs = state
        .file_systems
        .get(&name)
        .ok_or_else(|| missing(&name))?
        .clone();
    let destroyed = match body.remove("destroyed") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(flag)) => Some(flag),
        Some(_) => return Err(FbError::bad("Invalid value for destroyed.", name)),
    };
    let new_name = match body.remove("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(n)) if n == name => None,
        Some(Value::String(n)) => Some(n),
        Some(_) => return Err(FbError::bad("Invalid value for name.", name)),
    };
    if fs.is_destroyed() && destroyed != Some(false) && (!body.is_empty() || new_name.is_some()) {
        return Err(FbError::bad(
            "File system has been destroyed; recover it before changing it.",
            name,
        ));
    }
    let mut updated = fs.clone();
    updated.settings = merge_settings(&fs.settings, body, &name)?;
    match destroyed {
        Some(true) if updated.destroyed_at.is_none() => updated.destroyed_at = Some(call.now_ms),
        Some(false) => updated.destroyed_at = None,
        _ => {}
    }
    if let Some(new_name) = new_name {
        validate_name(&new_name)?;
        if state.file_systems.contains_key(&new_name) {
            return Err(FbError::bad("File system already exists.", new_name));
        }
        updated.name = new_name;
        for snapshot in state.snapshots.values_mut().filter(|s| s.source == name) {
            snapshot.source = updated.name.clone();
        }
    }
    let row = render(call, &updated);
    state.file_systems.remove(&name);
    state.file_systems.insert(updated.name.clone(), updated);
    Ok(items_reply(vec![row]))
}

pub fn delete(call: &Call<'_>, state: &mut FbState) -> FbResult {
    let name = call.target_name()?;
    let fs = state
        .file_systems
        .get(&name)
        .ok_or_else(|| missing(&name))?;
    if !fs.is_destroyed() {
        return Err(FbError::bad(
            "File system must be destroyed before it can be eradicated.",
            name,
        ));
    }
    eradicate_now(call.ctx, state, &name)?;
    Ok(ApiReply::empty(200))
}

/// Removes a file system, its snapshots and its directory.
pub fn eradicate_now(ctx: &Ctx<'_>, state: &mut FbState, name: &str) -> Result<(), FbError> {
    if let Some(fs) = state.file_systems.remove(name) {
        state.snapshots.retain(|_, s| s.source_id != fs.id);
        remove_dir_if_present(&filesystem_path(&ctx.spec.state_dir, &fs.id))
            .map_err(|e| FbError::internal(e, name))?;
    }
    Ok(())
}

/// Deep-merges a create/PATCH body over `base`: nested objects (`nfs`, `smb`, `http`) merge key
/// by key; unknown attributes are rejected so typos do not pass silently.
fn merge_settings(
    base: &FsSettings,
    mut patch: Map<String, Value>,
    name: &str,
) -> Result<FsSettings, FbError> {
    for key in READ_ONLY {
        patch.remove(key);
    }
    // Before REST 1.6 clients switched NFS with `nfs.enabled`; map it onto both versions.
    if let Some(Value::Object(nfs)) = patch.get_mut("nfs") {
        if let Some(enabled) = nfs.remove("enabled").filter(|v| !v.is_null()) {
            nfs.entry("v3_enabled").or_insert(enabled.clone());
            nfs.entry("v4_1_enabled").or_insert(enabled);
        }
    }
    let mut merged = serde_json::to_value(base).map_err(|e| FbError::internal(e.into(), name))?;
    for (key, value) in patch {
        let Some(slot) = merged.get_mut(&key) else {
            return Err(FbError::bad(
                format!("Unknown or unsupported file system attribute {key}."),
                name,
            ));
        };
        merge_value(slot, value);
    }
    let settings: FsSettings = serde_json::from_value(merged)
        .map_err(|e| FbError::bad(format!("Invalid file system attributes: {e}."), name))?;
    if settings.provisioned > MAX_PROVISIONED {
        return Err(FbError::bad(
            format!("Invalid provisioned size: at most {MAX_PROVISIONED} bytes."),
            name,
        ));
    }
    Ok(settings)
}

/// The largest `provisioned` a FlashBlade takes: the REST API documents no maximum below the
/// field's signed 64-bit range (purity_fb's and py-pure-client's `FileSystem.provisioned`, bytes,
/// where an empty value means unlimited). A file system is a directory here, so any size is thin.
const MAX_PROVISIONED: u64 = i64::MAX as u64;

fn merge_value(slot: &mut Value, patch: Value) {
    match (slot, patch) {
        (_, Value::Null) => {}
        (Value::Object(target), Value::Object(source)) => {
            for (key, value) in source {
                match target.get_mut(&key) {
                    Some(existing) => merge_value(existing, value),
                    None => {
                        target.insert(key, value);
                    }
                }
            }
        }
        (slot, value) => *slot = value,
    }
}

fn validate_name(name: &str) -> Result<(), FbError> {
    if crate::names::is_valid_object_name(name) {
        Ok(())
    } else {
        Err(FbError::bad(
            "File system name is invalid: use 1-63 letters, digits, '-' or '_'.",
            name,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patch_merges_nested_protocol_objects_key_by_key() {
        let mut base = FsSettings::default();
        base.nfs.rules = "*(rw,no_root_squash)".to_string();
        base.nfs.v3_enabled = true;
        let patch = json!({"nfs": {"v4_1_enabled": true}, "provisioned": 1024});
        let Value::Object(patch) = patch else {
            unreachable!()
        };
        let merged = merge_settings(&base, patch, "fs").expect("merge");
        assert_eq!(merged.nfs.rules, "*(rw,no_root_squash)");
        assert!(merged.nfs.v3_enabled && merged.nfs.v4_1_enabled);
        assert_eq!(merged.provisioned, 1024);
    }

    #[test]
    fn unknown_attributes_and_wrong_types_are_rejected() {
        let Value::Object(unknown) = json!({"colour": "blue"}) else {
            unreachable!()
        };
        assert!(merge_settings(&FsSettings::default(), unknown, "fs").is_err());
        let Value::Object(wrong) = json!({"provisioned": "lots"}) else {
            unreachable!()
        };
        assert!(merge_settings(&FsSettings::default(), wrong, "fs").is_err());
    }

    #[test]
    fn legacy_nfs_enabled_switches_both_versions() {
        let Value::Object(patch) = json!({"nfs": {"enabled": false}}) else {
            unreachable!()
        };
        let mut base = FsSettings::default();
        base.nfs.v3_enabled = true;
        base.nfs.v4_1_enabled = true;
        let merged = merge_settings(&base, patch, "fs").expect("merge");
        assert!(!merged.nfs.v3_enabled && !merged.nfs.v4_1_enabled);
    }
}
