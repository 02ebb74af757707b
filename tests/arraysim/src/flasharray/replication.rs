//! What asynchronous replication leaves on a target array: a connection to the source array
//! (`GET array/connection`), the replica group `<source array>:<group>`, and its snapshots
//! `<source array>:<group>.<n>` whose volume snapshots are `<source array>:<group>.<n>.<volume>`
//! (`source` `<source array>:<volume>`), each with transfer fields. Two simulator processes are
//! not coupled: the admin call `POST /_sim/replicated-snapshots` ([`inject`]) delivers a
//! snapshot, data copied from the source volume's backing file, complete or still in transfer.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::model::{ArrayConnection, FaState, Pgroup, PgroupSnapshot, Volume};
use super::pgroups::is_valid_pgroup_name;
use super::volume_rules::validate_volume_name;
use super::{FaError, FaResult, paginate};
use crate::api::Params;
use crate::backing::{copy_sparse, create_sparse, volume_path};

/// `GET array/connection`: the arrays this one replicates with.
pub fn list_connections(state: &FaState, params: &Params) -> FaResult {
    let rows = state
        .array_connections
        .values()
        .map(ArrayConnection::render)
        .collect();
    paginate(rows, params)
}

/// One replicated snapshot to deliver (the admin call's body).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replicated {
    /// The source array's name (Purity `array_name`).
    pub source_array: String,
    /// The protection group on the source array.
    pub pgroup: String,
    /// The snapshot's number; default: the next free one of this replica group.
    #[serde(default)]
    pub suffix: Option<u64>,
    /// How long ago the source took the snapshot (default 0: now).
    #[serde(default)]
    pub age_seconds: u64,
    /// Transfer progress 0.0..=1.0 (default 1.0: complete).
    #[serde(default = "complete")]
    pub progress: f64,
    pub volumes: Vec<ReplicatedVolume>,
}

fn complete() -> f64 {
    1.0
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicatedVolume {
    /// The volume's name on the source array.
    pub name: String,
    pub size: u64,
    /// The source volume's backing file (`GET /_sim/state` of the source names it); without it
    /// the snapshot holds zeros.
    #[serde(default)]
    pub data: Option<PathBuf>,
}

fn bad(message: impl Into<String>) -> FaError {
    FaError::bad(message, "replicated-snapshots")
}

/// Delivers `replicated` into the target's state: connection, replica group, group snapshot and
/// volume snapshots with their data. Returns the group snapshot's row with its transfer fields.
pub fn inject(
    state: &mut FaState,
    state_dir: &Path,
    now: u64,
    replicated: &Replicated,
) -> Result<Value, FaError> {
    let source = &replicated.source_array;
    if !is_valid_pgroup_name(source) {
        return Err(bad(format!(
            "source_array {source:?} is not an array name (letters, digits, '-')"
        )));
    }
    if !is_valid_pgroup_name(&replicated.pgroup) {
        return Err(bad(format!(
            "pgroup {:?} is not a protection group name",
            replicated.pgroup
        )));
    }
    if !(0.0..=1.0).contains(&replicated.progress) {
        return Err(bad("progress must be within 0.0..=1.0"));
    }
    for volume in &replicated.volumes {
        validate_volume_name(&volume.name)?;
        if volume.size == 0 || volume.size % 512 != 0 {
            return Err(bad(format!(
                "volume {} size {} is not a positive multiple of 512",
                volume.name, volume.size
            )));
        }
    }
    let group = format!("{source}:{}", replicated.pgroup);
    let number = replicated.suffix.unwrap_or_else(|| {
        let prefix = format!("{group}.");
        state
            .pgroup_snapshots
            .keys()
            .filter_map(|n| n.strip_prefix(&prefix)?.parse::<u64>().ok())
            .max()
            .map_or(1, |n| n + 1)
    });
    let name = format!("{group}.{number}");
    if state.pgroup_snapshots.contains_key(&name) {
        return Err(FaError::bad("Snapshot already exists.", name));
    }
    let created = now.saturating_sub(replicated.age_seconds);
    for volume in &replicated.volumes {
        let serial = state.allocate_serial();
        let path = volume_path(state_dir, &serial);
        let written = match &volume.data {
            Some(data) => copy_sparse(data, &path, volume.size),
            None => create_sparse(&path, volume.size).map(|_backed| ()),
        };
        written.map_err(|e| FaError::internal(e, &volume.name))?;
        let origin = format!("{source}:{}", volume.name);
        let snapshot = Volume {
            name: format!("{name}.{}", volume.name),
            serial,
            size: volume.size,
            created,
            source: Some(origin.clone()),
            snapshot_of: Some(origin),
            destroyed_at: None,
            bandwidth_limit: None,
            iops_limit: None,
        };
        state.volumes.insert(snapshot.name.clone(), snapshot);
    }
    let members: Vec<String> = replicated.volumes.iter().map(|v| v.name.clone()).collect();
    let replica = state
        .pgroups
        .entry(group.clone())
        .or_insert_with(|| Pgroup {
            name: group.clone(),
            source_array: Some(source.clone()),
            ..Pgroup::default()
        });
    replica.volumes = members;
    let id = format!("{:016x}", connection_id(source));
    state
        .array_connections
        .entry(source.clone())
        .or_insert_with(|| ArrayConnection {
            array_name: source.clone(),
            id,
            management_address: format!("{source}.mgmt"),
            connected: true,
        });
    let transferred: u64 = replicated.volumes.iter().map(|v| v.size).sum();
    let snapshot = PgroupSnapshot {
        name: name.clone(),
        group,
        created,
        started: created,
        completed: (replicated.progress >= 1.0).then_some(now),
        progress: replicated.progress,
        data_transferred: (transferred as f64 * replicated.progress) as u64,
    };
    let row = snapshot.render(true);
    state.pgroup_snapshots.insert(name, snapshot);
    Ok(row)
}

/// A stable id for a connected array, derived from its name (FNV-1a; ids only need to be stable).
fn connection_id(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
