//! FlashArray state (volumes, snapshots, hosts, private connections, sessions) and how each object
//! renders in REST 1.x replies. Pure data: no I/O here.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::clock::iso8601;

/// How long a destroyed volume stays recoverable before it is eradicated on its own (24 h).
pub const ERADICATION_DELAY_SECS: u64 = 86_400;
/// Highest LUN a private connection may use.
pub const MAX_LUN: u32 = 4095;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaState {
    /// Array UUID; the first 16 hex digits prefix every serial.
    pub array_id: String,
    /// Counter for the last 8 hex digits of serials.
    pub next_serial: u64,
    /// Counter for snapshot suffixes the array picks itself.
    pub next_snapshot_number: u64,
    /// Volumes and snapshots (`<volume>.<suffix>`) by name.
    pub volumes: BTreeMap<String, Volume>,
    pub hosts: BTreeMap<String, Host>,
    pub connections: Vec<Connection>,
    /// Protection groups by name (state files from before they existed have none).
    #[serde(default)]
    pub pgroups: BTreeMap<String, Pgroup>,
    /// Protection group snapshots (`<group>.<suffix>`, on a target `<source array>:<group>.<n>`)
    /// by name; their volume snapshots are in `volumes`.
    #[serde(default)]
    pub pgroup_snapshots: BTreeMap<String, PgroupSnapshot>,
    /// Arrays this one is connected to for replication, by their array name.
    #[serde(default)]
    pub array_connections: BTreeMap<String, ArrayConnection>,
    /// Valid `session` cookie values.
    pub sessions: BTreeSet<String>,
}

/// A protection group: the volumes its snapshots take together. Hosts, host groups, targets,
/// schedules and retention are not modelled; snapshots are taken on request (or, on a target,
/// injected through the admin API as replication would deliver them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pgroup {
    pub name: String,
    pub volumes: Vec<String>,
    /// Destruction time, epoch seconds; `None` while live.
    #[serde(default)]
    pub destroyed_at: Option<u64>,
    /// For a replica `<source array>:<group>` on a target array: the source array's name.
    #[serde(default)]
    pub source_array: Option<String>,
}

/// One protection group snapshot. Local snapshots are complete when taken; replicated ones
/// carry their transfer (`progress` 0.0..=1.0, `completed` once it reached 1.0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PgroupSnapshot {
    pub name: String,
    /// The group it is a snapshot of (`<group>` or `<source array>:<group>`).
    pub group: String,
    pub created: u64,
    pub started: u64,
    pub completed: Option<u64>,
    pub progress: f64,
    pub data_transferred: u64,
}

/// A replication connection to another array (`GET array/connection`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrayConnection {
    pub array_name: String,
    pub id: String,
    pub management_address: String,
    pub connected: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    pub serial: String,
    pub size: u64,
    /// Creation time, epoch seconds.
    pub created: u64,
    /// The volume this one was copied from (for snapshots: the snapshotted volume).
    pub source: Option<String>,
    /// Set for snapshots: the parent volume's name.
    pub snapshot_of: Option<String>,
    /// Destruction time, epoch seconds; `None` while live.
    pub destroyed_at: Option<u64>,
    pub bandwidth_limit: Option<u64>,
    pub iops_limit: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub name: String,
    pub iqn: Vec<String>,
    pub wwn: Vec<String>,
    pub nqn: Vec<String>,
    pub personality: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub host: String,
    pub volume: String,
    pub lun: u32,
}

impl FaState {
    pub fn new(array_id: String) -> FaState {
        FaState {
            array_id,
            next_serial: 0x11010,
            next_snapshot_number: 1,
            volumes: BTreeMap::new(),
            hosts: BTreeMap::new(),
            connections: Vec::new(),
            pgroups: BTreeMap::new(),
            pgroup_snapshots: BTreeMap::new(),
            array_connections: BTreeMap::new(),
            sessions: BTreeSet::new(),
        }
    }

    /// `UPPER(array uuid hex[0:16]) + %08X counter`, as real arrays derive serials.
    pub fn allocate_serial(&mut self) -> String {
        let prefix: String = self
            .array_id
            .chars()
            .filter(char::is_ascii_hexdigit)
            .take(16)
            .collect();
        let serial = format!("{}{:08X}", prefix.to_ascii_uppercase(), self.next_serial);
        self.next_serial += 1;
        serial
    }

    pub fn live_volume(&self, name: &str) -> Option<&Volume> {
        self.volumes.get(name).filter(|v| v.destroyed_at.is_none())
    }

    pub fn connections_of_volume(&self, volume: &str) -> impl Iterator<Item = &Connection> {
        self.connections.iter().filter(move |c| c.volume == volume)
    }

    pub fn connections_of_host(&self, host: &str) -> impl Iterator<Item = &Connection> {
        self.connections.iter().filter(move |c| c.host == host)
    }

    /// Lowest LUN ≥ 1 not used by `host`.
    pub fn lowest_free_lun(&self, host: &str) -> Option<u32> {
        let used: BTreeSet<u32> = self.connections_of_host(host).map(|c| c.lun).collect();
        (1..=MAX_LUN).find(|lun| !used.contains(lun))
    }

    /// Names of destroyed objects whose 24 h have run out at `now`.
    pub fn expired(&self, now: u64) -> Vec<String> {
        self.volumes
            .values()
            .filter(|v| {
                v.destroyed_at
                    .is_some_and(|at| now >= at + ERADICATION_DELAY_SECS)
            })
            .map(|v| v.name.clone())
            .collect()
    }

    /// The host owning an initiator (IQN, WWN or NQN), if any; WWNs compare case- and colon-blind.
    pub fn host_with_initiator(&self, initiator: &str) -> Option<&Host> {
        let wanted_wwn = normalize_wwn(initiator);
        self.hosts.values().find(|host| {
            host.iqn
                .iter()
                .chain(host.nqn.iter())
                .any(|i| i == initiator)
                || wanted_wwn.as_ref().is_some_and(|w| host.wwn.contains(w))
        })
    }
}

impl Volume {
    pub fn is_snapshot(&self) -> bool {
        self.snapshot_of.is_some()
    }

    /// A volume's part of a protection group snapshot, `<pgroup>.<suffix>.<volume>`: it belongs
    /// to the group's snapshot, so destroying, recovering, eradicating or renaming the volume
    /// leaves it alone.
    pub fn is_pgroup_snapshot(&self) -> bool {
        self.is_snapshot() && self.name.matches('.').count() == 2
    }

    /// A snapshot the volume `name` owns: destroyed, recovered and eradicated with it.
    pub fn is_own_snapshot_of(&self, name: &str) -> bool {
        self.snapshot_of.as_deref() == Some(name) && !self.is_pgroup_snapshot()
    }

    pub fn time_remaining(&self, now: u64) -> Option<u64> {
        self.destroyed_at
            .map(|at| (at + ERADICATION_DELAY_SECS).saturating_sub(now))
    }

    pub fn render(&self) -> Value {
        json!({
            "name": self.name,
            "size": self.size,
            "serial": self.serial,
            "created": iso8601(self.created),
            "source": self.source,
        })
    }

    pub fn render_pending(&self, now: u64) -> Value {
        let mut value = self.render();
        value["time_remaining"] = json!(self.time_remaining(now));
        value
    }

    pub fn render_qos(&self) -> Value {
        json!({"name": self.name, "bandwidth_limit": self.bandwidth_limit, "iops_limit": self.iops_limit})
    }

    /// Space row; `allocated` is what the backing file holds on disk.
    pub fn render_space(&self, allocated: u64) -> Value {
        let (volumes, snapshots) = if self.is_snapshot() {
            (0, allocated)
        } else {
            (allocated, 0)
        };
        let thin = if self.size == 0 {
            0.0
        } else {
            1.0 - (allocated.min(self.size) as f64 / self.size as f64)
        };
        json!({
            "name": self.name,
            "size": self.size,
            "volumes": volumes,
            "snapshots": snapshots,
            "shared_space": null,
            "system": null,
            "total": allocated,
            "data_reduction": 1.0,
            "total_reduction": 1.0,
            "thin_provisioning": thin,
        })
    }
}

impl Pgroup {
    /// `GET pgroup/<name>`, as pugo's fixtures show it; a replica names its source array.
    pub fn render(&self, array_name: &str) -> Value {
        let source = self.source_array.as_deref().unwrap_or(array_name);
        json!({"name": self.name, "volumes": self.volumes, "hosts": null, "hgroups": null,
               "source": source, "targets": null})
    }

    pub fn time_remaining(&self, now: u64) -> Option<u64> {
        self.destroyed_at
            .map(|at| (at + ERADICATION_DELAY_SECS).saturating_sub(now))
    }
}

impl PgroupSnapshot {
    /// A row of `GET pgroup/<g>?snap=true`, with the transfer fields when `transfer` is asked.
    pub fn render(&self, transfer: bool) -> Value {
        let mut row =
            json!({"name": self.name, "source": self.group, "created": iso8601(self.created)});
        if transfer {
            row["started"] = json!(iso8601(self.started));
            row["completed"] = json!(self.completed.map(iso8601));
            row["progress"] = json!(self.progress);
            row["data_transferred"] = json!(self.data_transferred);
            row["physical_bytes_written"] = json!(self.data_transferred);
        }
        row
    }
}

impl ArrayConnection {
    /// A row of `GET array/connection`, as purestorage 1.19's `list_array_connections` returns it.
    pub fn render(&self) -> Value {
        json!({"array_name": self.array_name, "id": self.id, "connected": self.connected,
               "management_address": self.management_address, "replication_address": null,
               "type": ["replication"], "version": "6.1.0", "throttled": false})
    }
}

impl Host {
    pub fn render(&self) -> Value {
        json!({"name": self.name, "hgroup": null, "iqn": self.iqn, "wwn": self.wwn, "nqn": self.nqn})
    }
}

impl Connection {
    /// Row of `GET host/<h>/volume`.
    pub fn render_for_host(&self) -> Value {
        json!({"name": self.host, "vol": self.volume, "lun": self.lun, "hgroup": null})
    }

    /// Row of `GET volume/<v>/host`.
    pub fn render_for_volume(&self, size: u64) -> Value {
        json!({"name": self.volume, "host": self.host, "lun": self.lun, "size": size})
    }
}

/// Upper-case hex without separators, when `text` is a 16-digit WWN (colons allowed).
pub fn normalize_wwn(text: &str) -> Option<String> {
    let digits: String = text.chars().filter(|c| *c != ':').collect();
    (digits.len() == 16 && digits.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| digits.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_array_id_prefix_plus_counter() {
        let mut state = FaState::new("b75f8356-604b-431d-af5c-64c3ca303749".to_string());
        assert_eq!(state.allocate_serial(), "B75F8356604B431D00011010");
        assert_eq!(state.allocate_serial(), "B75F8356604B431D00011011");
    }

    #[test]
    fn lowest_free_lun_fills_gaps_per_host() {
        let mut state = FaState::new("00".repeat(16));
        for (host, lun) in [("a", 1), ("a", 3), ("b", 1)] {
            state.connections.push(Connection {
                host: host.into(),
                volume: format!("v{lun}"),
                lun,
            });
        }
        assert_eq!(state.lowest_free_lun("a"), Some(2));
        assert_eq!(state.lowest_free_lun("b"), Some(2));
        assert_eq!(state.lowest_free_lun("c"), Some(1));
    }

    #[test]
    fn wwns_normalise_to_upper_hex_without_colons() {
        assert_eq!(
            normalize_wwn("50:01:50:01:50:01:50:0a"),
            Some("500150015001500A".to_string())
        );
        assert_eq!(normalize_wwn("iqn.1993-08.org.debian:01:abc"), None);
    }
}
