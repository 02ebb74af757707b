//! FlashBlade state (file systems, file-system snapshots, login tokens) and how each object
//! renders in REST 1.x replies. Times are epoch milliseconds, as FlashBlade reports them.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How long a destroyed file system stays recoverable: 24 h in milliseconds.
pub const ERADICATION_DELAY_MS: u64 = 86_400_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FbState {
    pub array_id: String,
    /// Counter for object ids.
    pub next_id: u64,
    pub file_systems: BTreeMap<String, FileSystem>,
    pub snapshots: BTreeMap<String, FsSnapshot>,
    /// Valid `x-auth-token` values.
    pub sessions: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileSystem {
    pub id: String,
    pub name: String,
    pub created: u64,
    pub destroyed_at: Option<u64>,
    pub settings: FsSettings,
}

/// The attributes clients may set on create and PATCH (deep-merged from the request body).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FsSettings {
    pub provisioned: u64,
    pub hard_limit_enabled: bool,
    pub fast_remove_directory_enabled: bool,
    pub snapshot_directory_enabled: bool,
    pub default_user_quota: u64,
    pub default_group_quota: u64,
    pub writable: bool,
    pub nfs: Nfs,
    pub smb: Smb,
    pub http: Http,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Nfs {
    pub rules: String,
    pub v3_enabled: bool,
    pub v4_1_enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Smb {
    pub enabled: bool,
    pub acl_mode: String,
}

impl Default for Smb {
    fn default() -> Smb {
        Smb {
            enabled: false,
            acl_mode: "shared".to_string(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Http {
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsSnapshot {
    pub id: String,
    pub name: String,
    pub suffix: String,
    pub source: String,
    pub source_id: String,
    pub created: u64,
    pub destroyed_at: Option<u64>,
}

impl FbState {
    pub fn new(array_id: String) -> FbState {
        FbState {
            array_id,
            next_id: 1,
            file_systems: BTreeMap::new(),
            snapshots: BTreeMap::new(),
            sessions: BTreeSet::new(),
        }
    }

    /// Object ids look like the array's UUID with a counter in the last group.
    pub fn allocate_id(&mut self) -> String {
        let prefix = self
            .array_id
            .get(..24)
            .unwrap_or(&self.array_id)
            .to_string();
        let id = format!("{prefix}{:012x}", self.next_id);
        self.next_id += 1;
        id
    }
}

fn time_remaining(destroyed_at: Option<u64>, now_ms: u64) -> Option<u64> {
    destroyed_at.map(|at| (at + ERADICATION_DELAY_MS).saturating_sub(now_ms))
}

impl FileSystem {
    pub fn is_destroyed(&self) -> bool {
        self.destroyed_at.is_some()
    }

    /// The full REST object; `used` is the allocated size of the backing directory.
    pub fn render(&self, now_ms: u64, used: u64) -> Value {
        let s = &self.settings;
        json!({
            "name": self.name,
            "id": self.id,
            "created": self.created,
            "destroyed": self.is_destroyed(),
            "time_remaining": time_remaining(self.destroyed_at, now_ms),
            "provisioned": s.provisioned,
            "hard_limit_enabled": s.hard_limit_enabled,
            "fast_remove_directory_enabled": s.fast_remove_directory_enabled,
            "snapshot_directory_enabled": s.snapshot_directory_enabled,
            "default_user_quota": s.default_user_quota,
            "default_group_quota": s.default_group_quota,
            "writable": s.writable,
            "promotion_status": "promoted",
            "requested_promotion_state": "promoted",
            "source": null,
            "nfs": {
                "enabled": s.nfs.v3_enabled || s.nfs.v4_1_enabled,
                "rules": s.nfs.rules,
                "v3_enabled": s.nfs.v3_enabled,
                "v4_1_enabled": s.nfs.v4_1_enabled,
            },
            "smb": {"enabled": s.smb.enabled, "acl_mode": s.smb.acl_mode},
            "http": {"enabled": s.http.enabled},
            "space": {
                "virtual": used,
                "unique": used,
                "snapshots": 0,
                "total_physical": used,
                "data_reduction": 1.0,
            },
        })
    }
}

impl FsSnapshot {
    /// A snapshot is destroyed when it was destroyed itself or when its file system was: Pure's
    /// model says of `owner` "If the owner is destroyed, this will be destroyed" (purity_fb 1.12,
    /// `FileSystemSnapshot`), and recovering the file system brings it back.
    pub fn destroyed_at(&self, owner_destroyed_at: Option<u64>) -> Option<u64> {
        self.destroyed_at.or(owner_destroyed_at)
    }

    pub fn render(&self, now_ms: u64, owner_destroyed_at: Option<u64>) -> Value {
        let owner_destroyed = owner_destroyed_at.is_some();
        let destroyed_at = self.destroyed_at(owner_destroyed_at);
        json!({
            "name": self.name,
            "id": self.id,
            "suffix": self.suffix,
            "created": self.created,
            "destroyed": destroyed_at.is_some(),
            "time_remaining": time_remaining(destroyed_at, now_ms),
            "owner": {"name": self.source, "id": self.source_id, "resource_type": "file-systems"},
            "owner_destroyed": owner_destroyed,
            "source": self.source,
            "source_id": self.source_id,
            "source_destroyed": owner_destroyed,
            "source_display_name": self.source,
            "source_is_local": true,
            "source_location": null,
            "policy": null,
        })
    }
}
