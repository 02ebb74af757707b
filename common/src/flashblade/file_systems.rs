//! File systems: `file-systems`, named by `names=` to read and `name=` to change (the body on
//! create), and listed by `filter=name='<glob>'`. From REST 1.9 a create may copy a snapshot
//! (`"source": {"name": <snapshot>}`).

use serde::Deserialize;
use serde_json::{Value, json};

use super::FlashBlade;
use crate::client::call::Call;
use crate::client::classify::Intent;
use crate::client::transport::Method;
use crate::client::{version, wire};
use crate::error::{ArrayError, Result};

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

/// The REST version whose `POST file-systems` takes a `source` snapshot (purity_fb's
/// `FileSystem.source` and `create_file_systems(overwrite=)` first appear in its 1.9 API).
pub const COPY_SINCE: &[u32] = &[1, 9];

/// The attributes a claim sets on its file system, as a create or PATCH body.
fn settings_body(fs: &NewFileSystem) -> Value {
    json!({
        "provisioned": fs.provisioned,
        "hard_limit_enabled": fs.hard_limit,
        "snapshot_directory_enabled": fs.snapshot_directory,
        "nfs": {
            "rules": fs.nfs_rules,
            "v3_enabled": fs.nfs_v3,
            "v4_1_enabled": fs.nfs_v4_1,
        },
    })
}

impl FlashBlade {
    /// `POST file-systems` with the name in the body. A taken name is
    /// [`ArrayError::AlreadyExists`]. Not retried.
    pub fn create_file_system(&self, fs: &NewFileSystem) -> Result<FileSystem> {
        wire::check_name(self.endpoint(), "file system", &fs.name)?;
        let mut body = settings_body(fs);
        body["name"] = json!(fs.name);
        body["fast_remove_directory_enabled"] = json!(true);
        let call = Call::new(Method::Post, "file-systems".into(), &fs.name).body(body);
        self.first_item::<FsWire>(&call).map(FileSystem::from)
    }

    /// A new file system `name` holding the data of `snapshot` (`POST file-systems`
    /// `{"name", "source": {"name": snapshot}}`, REST ≥ 1.9; never `overwrite=true`, which would
    /// revert an existing file system in place). It starts with its source's settings:
    /// [`FlashBlade::apply_settings`] gives it a claim's. A taken name is
    /// [`ArrayError::AlreadyExists`]; an older blade is refused before any request. Not retried.
    pub fn copy_snapshot(&self, snapshot: &str, name: &str) -> Result<FileSystem> {
        wire::check_name(self.endpoint(), "snapshot", snapshot)?;
        wire::check_name(self.endpoint(), "file system", name)?;
        let speaks = self.session.version()?;
        if !version::at_least(&speaks, COPY_SINCE) {
            return Err(ArrayError::InvalidInput {
                endpoint: self.endpoint().to_owned(),
                message: format!(
                    "copying snapshot {snapshot} into a new file system needs FlashBlade REST 1.9 or later; this blade offers REST {speaks} at most (upgrade Purity//FB)"
                ),
            });
        }
        let body = json!({ "name": name, "source": { "name": snapshot } });
        let call = Call::new(Method::Post, "file-systems".into(), name).body(body);
        self.first_item::<FsWire>(&call).map(FileSystem::from)
    }

    /// `PATCH file-systems?name=<fs.name>` with a claim's settings (size, hard limit, snapshot
    /// directory, NFS rules and versions): what a copy gets after [`FlashBlade::copy_snapshot`].
    /// Converges when repeated. Retried.
    pub fn apply_settings(&self, fs: &NewFileSystem) -> Result<FileSystem> {
        self.patch_file_system(&fs.name, settings_body(fs), Intent::Other)
    }

    /// Live or destroyed (check `destroyed`); missing is [`crate::ArrayError::NotFound`].
    /// (`GET file-systems?names=<name>`.)
    pub fn get_file_system(&self, name: &str) -> Result<FileSystem> {
        wire::check_name(self.endpoint(), "file system", name)?;
        let call = Call::new(Method::Get, "file-systems".into(), name).query("names", name);
        let found: Vec<FsWire> = self.call_items(&call)?;
        found
            .into_iter()
            .map(FileSystem::from)
            .find(|fs| fs.name == name)
            .ok_or_else(|| ArrayError::NotFound {
                endpoint: self.endpoint().to_owned(),
                object: name.to_owned(),
                message: format!("file system {name} is not listed"),
            })
    }

    /// File systems whose names match a glob (`k8s-pvc-*`), all pages, destroyed ones included.
    /// A glob is sent as `filter=name='<glob>'`; a pattern without `*` is one exact name, sent as
    /// `names=` (absent → empty list); an empty string lists every file system.
    pub fn list_file_systems(&self, names: &str) -> Result<Vec<FileSystem>> {
        let mut call = Call::new(Method::Get, "file-systems".into(), names);
        if names.contains('*') {
            call = call.query("filter", name_filter(self.endpoint(), names)?);
        } else if !names.is_empty() {
            wire::check_name(self.endpoint(), "file system", names)?;
            call = call.query("names", names);
        }
        match self.call_all_pages::<FsWire>(&call) {
            Ok(found) => Ok(found.into_iter().map(FileSystem::from).collect()),
            Err(ArrayError::NotFound { .. }) if !names.contains('*') => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// `PATCH file-systems?name=<name>` `{"provisioned": bytes}`. Retried.
    pub fn resize_file_system(&self, name: &str, provisioned: u64) -> Result<FileSystem> {
        self.patch_file_system(name, json!({ "provisioned": provisioned }), Intent::Other)
    }

    /// `PATCH file-systems?name=<name>` `{"nfs": {"rules": rules}}`. Retried.
    pub fn set_export_rules(&self, name: &str, rules: &str) -> Result<FileSystem> {
        self.patch_file_system(name, json!({ "nfs": { "rules": rules } }), Intent::Other)
    }

    /// `PATCH file-systems?name=<name>` `{"hard_limit_enabled": enabled}`. Retried.
    pub fn set_hard_limit(&self, name: &str, enabled: bool) -> Result<FileSystem> {
        self.patch_file_system(
            name,
            json!({ "hard_limit_enabled": enabled }),
            Intent::Other,
        )
    }

    /// Turns NFS/SMB/HTTP off and destroys, in one PATCH (as Manila does: a destroyed file
    /// system must not stay exported). Retried.
    pub fn destroy_file_system(&self, name: &str) -> Result<()> {
        let body = json!({
            "destroyed": true,
            "nfs": { "v3_enabled": false, "v4_1_enabled": false },
            "smb": { "enabled": false },
            "http": { "enabled": false },
        });
        self.patch_file_system(name, body, Intent::Destroy)
            .map(drop)
    }

    /// `PATCH` `{"destroyed": false}`, then NFS v3 and v4.1 back on (destroy turned them off).
    /// Two requests because an array may refuse protocol changes on a destroyed file system.
    /// Retried.
    pub fn recover_file_system(&self, name: &str) -> Result<FileSystem> {
        self.patch_file_system(name, json!({ "destroyed": false }), Intent::Other)?;
        let nfs_on = json!({ "nfs": { "v3_enabled": true, "v4_1_enabled": true } });
        self.patch_file_system(name, nfs_on, Intent::Other)
    }

    /// Only valid once destroyed (`DELETE file-systems?name=<name>`). Retried.
    pub fn eradicate_file_system(&self, name: &str) -> Result<()> {
        wire::check_name(self.endpoint(), "file system", name)?;
        let call = Call::new(Method::Delete, "file-systems".into(), name)
            .query("name", name)
            .idempotent();
        self.execute(&call).map(drop)
    }

    fn patch_file_system(&self, name: &str, body: Value, intent: Intent) -> Result<FileSystem> {
        wire::check_name(self.endpoint(), "file system", name)?;
        let mut call = Call::new(Method::Patch, "file-systems".into(), name)
            .query("name", name)
            .body(body)
            .idempotent();
        call.intent = intent;
        self.first_item::<FsWire>(&call).map(FileSystem::from)
    }
}

/// `k8s-pvc-*` → `name='k8s-pvc-*'`. Quotes cannot be escaped in the filter language, so a glob
/// containing one is refused.
fn name_filter(endpoint: &str, glob: &str) -> Result<String> {
    wire::check_name(endpoint, "file system", glob)?;
    if glob.contains('\'') {
        return Err(ArrayError::InvalidInput {
            endpoint: endpoint.to_owned(),
            message: format!("file system name pattern {glob:?} contains a quote"),
        });
    }
    Ok(format!("name='{glob}'"))
}

/// A file system as the array sends it. Only `name` is required: the SDK's models make every
/// field optional, and older releases lack some (`hard_limit_enabled` < 1.4, `v4_1_enabled` < 1.6).
#[derive(Deserialize)]
struct FsWire {
    name: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    provisioned: Option<u64>,
    #[serde(default)]
    hard_limit_enabled: Option<bool>,
    #[serde(default)]
    snapshot_directory_enabled: Option<bool>,
    #[serde(default)]
    nfs: Option<NfsWire>,
    #[serde(default)]
    destroyed: Option<bool>,
    #[serde(default)]
    time_remaining: Option<u64>,
    #[serde(default)]
    created: Option<u64>,
}

#[derive(Deserialize)]
struct NfsWire {
    #[serde(default)]
    rules: Option<String>,
    #[serde(default)]
    v3_enabled: Option<bool>,
    #[serde(default)]
    v4_1_enabled: Option<bool>,
    /// Deprecated form of `v3_enabled` (before 1.6).
    #[serde(default)]
    enabled: Option<bool>,
}

impl From<FsWire> for FileSystem {
    fn from(wire: FsWire) -> Self {
        let nfs = wire.nfs.map_or(
            Nfs {
                rules: String::new(),
                v3_enabled: false,
                v4_1_enabled: false,
            },
            |nfs| Nfs {
                rules: nfs.rules.unwrap_or_default(),
                v3_enabled: nfs.v3_enabled.or(nfs.enabled).unwrap_or(false),
                v4_1_enabled: nfs.v4_1_enabled.unwrap_or(false),
            },
        );
        let destroyed = wire.destroyed.unwrap_or(false);
        FileSystem {
            name: wire.name,
            id: wire.id,
            provisioned: wire.provisioned.unwrap_or(0),
            hard_limit_enabled: wire.hard_limit_enabled.unwrap_or(false),
            snapshot_directory_enabled: wire.snapshot_directory_enabled.unwrap_or(false),
            nfs,
            destroyed,
            time_remaining: wire.time_remaining.filter(|_| destroyed),
            created: wire.created,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_become_name_filters_and_quotes_are_refused() {
        assert_eq!(
            name_filter("b", "k8s-pvc-*").expect("ok"),
            "name='k8s-pvc-*'"
        );
        assert!(matches!(
            name_filter("b", "x'*"),
            Err(ArrayError::InvalidInput { .. })
        ));
    }

    #[test]
    fn file_systems_decode_from_sparse_and_full_replies() {
        let full = br#"{"name": "fs1", "id": "i", "provisioned": 1073741824, "hard_limit_enabled": true,
            "snapshot_directory_enabled": true, "destroyed": false, "time_remaining": null,
            "created": 1700000000000, "nfs": {"rules": "*(rw)", "v3_enabled": true, "v4_1_enabled": true},
            "space": {"virtual": 0}, "smb": {"enabled": false}}"#;
        let fs = FileSystem::from(wire::decode::<FsWire>("b", "op", full).expect("full"));
        assert!(fs.nfs.v3_enabled && fs.nfs.v4_1_enabled && fs.hard_limit_enabled);
        assert_eq!(
            (fs.provisioned, fs.created),
            (1 << 30, Some(1_700_000_000_000))
        );

        let old = br#"{"name": "fs1", "nfs": {"enabled": true}, "destroyed": true, "time_remaining": 86400000}"#;
        let fs = FileSystem::from(wire::decode::<FsWire>("b", "op", old).expect("old"));
        assert!(fs.nfs.v3_enabled && !fs.nfs.v4_1_enabled);
        assert_eq!((fs.destroyed, fs.time_remaining), (true, Some(86_400_000)));

        let nameless = wire::decode::<FsWire>("b", "op", br#"{"provisioned": 1}"#);
        assert!(
            matches!(nameless, Err(ArrayError::BadReply { ref detail, .. }) if detail.contains("name"))
        );
    }
}
