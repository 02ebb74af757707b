//! Blocking client for the FlashBlade REST 1.x API.
//!
//! CONTRACT SKELETON: types and signatures are settled; bodies are being implemented (issue 2).

use crate::config::{ClientSettings, FlashBladeConfig};
use crate::error::Result;
pub use crate::flasharray::CallStats;

/// `GET arrays`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BladeInfo {
    pub name: String,
    pub id: String,
    pub version: String,
}

/// `GET arrays/space`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BladeSpace {
    pub capacity: u64,
    /// `space.total_physical`.
    pub used: u64,
}

impl BladeSpace {
    pub fn free(&self) -> u64 {
        self.capacity.saturating_sub(self.used)
    }
}

/// NFS settings of a file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nfs {
    pub rules: String,
    pub v3_enabled: bool,
    pub v4_1_enabled: bool,
}

/// A file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSystem {
    pub name: String,
    pub id: Option<String>,
    pub provisioned: u64,
    pub hard_limit_enabled: bool,
    pub snapshot_directory_enabled: bool,
    pub nfs: Nfs,
    pub destroyed: bool,
    /// Milliseconds until eradication, for destroyed file systems.
    pub time_remaining: Option<u64>,
    /// Milliseconds since the epoch.
    pub created: Option<u64>,
}

/// What to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFileSystem {
    pub name: String,
    pub provisioned: u64,
    pub hard_limit: bool,
    pub snapshot_directory: bool,
    pub nfs_rules: String,
    pub nfs_v3: bool,
    pub nfs_v4_1: bool,
}

/// A file system snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsSnapshot {
    pub name: String,
    pub source: String,
    pub suffix: String,
    pub destroyed: bool,
}

/// A network interface (data VIPs have `services` containing `data`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInterface {
    pub name: String,
    pub address: String,
    pub services: Vec<String>,
    pub enabled: bool,
}

/// A FlashBlade. Cheap to construct: login happens on the first call. `Send + Sync`.
pub struct FlashBlade {
    _private: (),
}

#[allow(unused_variables, clippy::todo)]
impl FlashBlade {
    pub fn new(config: &FlashBladeConfig, settings: &ClientSettings) -> Result<Self> {
        todo!()
    }
    pub fn endpoint(&self) -> &str {
        todo!()
    }
    pub fn stats(&self) -> CallStats {
        todo!()
    }
    pub fn array_info(&self) -> Result<BladeInfo> {
        todo!()
    }
    pub fn space(&self) -> Result<BladeSpace> {
        todo!()
    }

    pub fn create_file_system(&self, fs: &NewFileSystem) -> Result<FileSystem> {
        todo!()
    }
    /// Live or destroyed (check `destroyed`); missing is [`crate::ArrayError::NotFound`].
    pub fn get_file_system(&self, name: &str) -> Result<FileSystem> {
        todo!()
    }
    /// File systems whose names match a glob (`k8s-pvc-*`), all pages, destroyed ones included.
    pub fn list_file_systems(&self, names: &str) -> Result<Vec<FileSystem>> {
        todo!()
    }
    pub fn resize_file_system(&self, name: &str, provisioned: u64) -> Result<FileSystem> {
        todo!()
    }
    pub fn set_export_rules(&self, name: &str, rules: &str) -> Result<FileSystem> {
        todo!()
    }
    pub fn set_hard_limit(&self, name: &str, enabled: bool) -> Result<FileSystem> {
        todo!()
    }
    /// Turns NFS/SMB/HTTP off and destroys, in one PATCH.
    pub fn destroy_file_system(&self, name: &str) -> Result<()> {
        todo!()
    }
    pub fn recover_file_system(&self, name: &str) -> Result<FileSystem> {
        todo!()
    }
    /// Only valid once destroyed.
    pub fn eradicate_file_system(&self, name: &str) -> Result<()> {
        todo!()
    }
    pub fn create_snapshot(&self, fs: &str, suffix: &str) -> Result<FsSnapshot> {
        todo!()
    }
    pub fn list_snapshots(&self, fs: &str) -> Result<Vec<FsSnapshot>> {
        todo!()
    }
    pub fn destroy_snapshot(&self, name: &str) -> Result<()> {
        todo!()
    }
    pub fn eradicate_snapshot(&self, name: &str) -> Result<()> {
        todo!()
    }
    /// Enabled interfaces whose services include `data`.
    pub fn data_vips(&self) -> Result<Vec<NetworkInterface>> {
        todo!()
    }
}
