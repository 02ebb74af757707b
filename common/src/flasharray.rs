//! Blocking client for the FlashArray REST 1.x API.
//!
//! CONTRACT SKELETON: types and signatures are settled; bodies are being implemented (issue 2).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{ClientSettings, FlashArrayConfig};
use crate::error::Result;

/// `GET array`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ArrayInfo {
    pub array_name: String,
    pub id: String,
    pub version: String,
    #[serde(default)]
    pub revision: String,
}

/// `GET array?space=true`: capacity and used bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArraySpace {
    pub capacity: u64,
    /// Used (physical) bytes, the array's `total`.
    pub used: u64,
    /// Sum of provisioned volume sizes, when the array reports it.
    pub provisioned: Option<u64>,
}

impl ArraySpace {
    pub fn free(&self) -> u64 {
        self.capacity.saturating_sub(self.used)
    }
}

/// A volume or snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub name: String,
    pub size: u64,
    /// 24 hex digits; see [`crate::names::volume_wwid`].
    pub serial: String,
    pub created: Option<String>,
    pub source: Option<String>,
    /// Seconds until eradication; `Some` only for destroyed volumes listed with `pending`.
    pub time_remaining: Option<u64>,
}

impl Volume {
    pub fn is_destroyed(&self) -> bool {
        self.time_remaining.is_some()
    }
}

/// QoS limits; `None` means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Qos {
    /// Bytes per second.
    pub bandwidth_limit: Option<u64>,
    pub iops_limit: Option<u64>,
}

/// Initiators of a host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Initiators {
    pub iqns: Vec<String>,
    pub wwns: Vec<String>,
    pub nqns: Vec<String>,
}

/// A host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub iqns: Vec<String>,
    /// Upper-case hex, no colons, as the array reports them.
    pub wwns: Vec<String>,
    pub nqns: Vec<String>,
    pub hgroup: Option<String>,
}

/// Changes to a host's initiator lists (`PUT host/<h>`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostChange {
    pub add: Initiators,
    pub remove: Initiators,
}

/// A private host-volume connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub host: String,
    pub volume: String,
    pub lun: u32,
}

/// A target port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub name: String,
    pub iqn: Option<String>,
    /// `ip:port`, IPv6 as `[addr]:port`.
    pub portal: Option<String>,
    pub wwn: Option<String>,
    pub nqn: Option<String>,
}

/// Counters for benchmarks and tests: one authentication per process lifetime is the goal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallStats {
    pub authentications: u64,
    pub calls: u64,
}

/// A FlashArray. Cheap to construct: version negotiation and login happen on the first call.
/// `Send + Sync`: one client can serve many threads; the session is shared.
pub struct FlashArray {
    _private: (),
}

#[allow(unused_variables, clippy::todo)]
impl FlashArray {
    pub fn new(config: &FlashArrayConfig, settings: &ClientSettings) -> Result<Self> {
        todo!()
    }
    /// The management endpoint, as configured (for messages and PV options).
    pub fn endpoint(&self) -> &str {
        todo!()
    }
    pub fn stats(&self) -> CallStats {
        todo!()
    }
    pub fn array_info(&self) -> Result<ArrayInfo> {
        todo!()
    }
    pub fn space(&self) -> Result<ArraySpace> {
        todo!()
    }

    pub fn create_volume(&self, name: &str, size: u64, qos: &Qos) -> Result<Volume> {
        todo!()
    }
    /// A live volume; a destroyed one is [`crate::ArrayError::Destroyed`].
    pub fn get_volume(&self, name: &str) -> Result<Volume> {
        todo!()
    }
    /// Volumes matching a glob (`k8s-pvc-*`); `pending` also lists destroyed ones.
    pub fn list_volumes(&self, names: &str, pending: bool) -> Result<Vec<Volume>> {
        todo!()
    }
    pub fn extend_volume(&self, name: &str, size: u64) -> Result<Volume> {
        todo!()
    }
    pub fn get_qos(&self, name: &str) -> Result<Qos> {
        todo!()
    }
    pub fn set_qos(&self, name: &str, qos: &Qos) -> Result<()> {
        todo!()
    }
    pub fn rename_volume(&self, name: &str, new_name: &str) -> Result<()> {
        todo!()
    }
    pub fn destroy_volume(&self, name: &str) -> Result<()> {
        todo!()
    }
    pub fn eradicate_volume(&self, name: &str) -> Result<()> {
        todo!()
    }
    pub fn recover_volume(&self, name: &str) -> Result<()> {
        todo!()
    }
    pub fn create_snapshot(&self, volume: &str, suffix: Option<&str>) -> Result<Volume> {
        todo!()
    }
    pub fn list_snapshots(&self, volume: &str) -> Result<Vec<Volume>> {
        todo!()
    }
    pub fn copy_volume(&self, source: &str, dest: &str, overwrite: bool) -> Result<Volume> {
        todo!()
    }

    pub fn create_host(&self, name: &str, initiators: &Initiators) -> Result<Host> {
        todo!()
    }
    pub fn get_host(&self, name: &str) -> Result<Host> {
        todo!()
    }
    pub fn list_hosts(&self) -> Result<Vec<Host>> {
        todo!()
    }
    pub fn modify_host(&self, name: &str, change: &HostChange) -> Result<Host> {
        todo!()
    }
    pub fn delete_host(&self, name: &str) -> Result<()> {
        todo!()
    }
    pub fn connect_host(&self, host: &str, volume: &str, lun: Option<u32>) -> Result<Connection> {
        todo!()
    }
    pub fn disconnect_host(&self, host: &str, volume: &str) -> Result<()> {
        todo!()
    }
    pub fn list_host_connections(&self, host: &str) -> Result<Vec<Connection>> {
        todo!()
    }
    pub fn list_volume_connections(&self, volume: &str) -> Result<Vec<Connection>> {
        todo!()
    }
    pub fn list_ports(&self) -> Result<Vec<Port>> {
        todo!()
    }
}

#[allow(dead_code)]
const _IDLE: Duration = Duration::from_secs(0);
