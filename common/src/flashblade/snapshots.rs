//! File system snapshots: `file-system-snapshots`, created from `sources=<fs>`, listed by
//! `names_or_sources=<fs>`.

use serde::Deserialize;
use serde_json::json;

use super::FlashBlade;
use crate::client::call::Call;
use crate::client::transport::Method;
use crate::client::wire;
use crate::error::Result;

/// A file system snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsSnapshot {
    pub name: String,
    pub source: String,
    pub suffix: String,
    pub destroyed: bool,
    /// Milliseconds since the epoch.
    pub created: Option<u64>,
}

impl FlashBlade {
    /// `POST file-system-snapshots?sources=<fs>` `{"suffix": suffix}`; without a suffix the
    /// blade names the snapshot itself (no body). Not retried.
    pub fn create_snapshot(&self, fs: &str, suffix: Option<&str>) -> Result<FsSnapshot> {
        wire::check_name(self.endpoint(), "file system", fs)?;
        let mut call =
            Call::new(Method::Post, "file-system-snapshots".into(), fs).query("sources", fs);
        if let Some(suffix) = suffix {
            wire::check_name(self.endpoint(), "snapshot suffix", suffix)?;
            call = call.body(json!({ "suffix": suffix }));
        }
        self.first_item::<SnapshotWire>(&call).map(FsSnapshot::from)
    }

    /// One snapshot, live or destroyed (`GET file-system-snapshots?names=<name>`); missing is
    /// [`crate::ArrayError::NotFound`].
    pub fn get_snapshot(&self, name: &str) -> Result<FsSnapshot> {
        wire::check_name(self.endpoint(), "snapshot", name)?;
        let call =
            Call::new(Method::Get, "file-system-snapshots".into(), name).query("names", name);
        let found: Vec<SnapshotWire> = self.call_items(&call)?;
        found
            .into_iter()
            .map(FsSnapshot::from)
            .find(|s| s.name == name)
            .ok_or_else(|| crate::ArrayError::NotFound {
                endpoint: self.endpoint().to_owned(),
                object: name.to_owned(),
                message: format!("snapshot {name} is not listed"),
            })
    }

    /// Snapshots of one file system (`GET file-system-snapshots?names_or_sources=<fs>`), all pages.
    pub fn list_snapshots(&self, fs: &str) -> Result<Vec<FsSnapshot>> {
        wire::check_name(self.endpoint(), "file system", fs)?;
        let call = Call::new(Method::Get, "file-system-snapshots".into(), fs)
            .query("names_or_sources", fs);
        let found: Vec<SnapshotWire> = self.call_all_pages(&call)?;
        Ok(found.into_iter().map(FsSnapshot::from).collect())
    }

    /// `PATCH file-system-snapshots?name=<name>` `{"destroyed": true}`. Retried.
    pub fn destroy_snapshot(&self, name: &str) -> Result<()> {
        wire::check_name(self.endpoint(), "snapshot", name)?;
        let call = Call::new(Method::Patch, "file-system-snapshots".into(), name)
            .query("name", name)
            .body(json!({ "destroyed": true }))
            .idempotent()
            .destroying();
        self.execute(&call).map(drop)
    }

    /// `DELETE file-system-snapshots?name=<name>`, once destroyed. Retried.
    pub fn eradicate_snapshot(&self, name: &str) -> Result<()> {
        wire::check_name(self.endpoint(), "snapshot", name)?;
        let call = Call::new(Method::Delete, "file-system-snapshots".into(), name)
            .query("name", name)
            .idempotent();
        self.execute(&call).map(drop)
    }
}

#[derive(Deserialize)]
struct SnapshotWire {
    name: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    owner: Option<Owner>,
    #[serde(default)]
    suffix: Option<String>,
    #[serde(default)]
    destroyed: Option<bool>,
    #[serde(default)]
    created: Option<u64>,
}

#[derive(Deserialize)]
struct Owner {
    #[serde(default)]
    name: Option<String>,
}

impl From<SnapshotWire> for FsSnapshot {
    fn from(wire: SnapshotWire) -> Self {
        // `fs.suffix`: when the array omits a field, the name still says it.
        let (name_source, name_suffix) =
            wire.name.rsplit_once('.').map_or((None, None), |(s, x)| {
                (Some(s.to_owned()), Some(x.to_owned()))
            });
        FsSnapshot {
            source: wire
                .source
                .or_else(|| wire.owner.and_then(|o| o.name))
                .or(name_source)
                .unwrap_or_default(),
            suffix: wire.suffix.or(name_suffix).unwrap_or_default(),
            destroyed: wire.destroyed.unwrap_or(false),
            created: wire.created,
            name: wire.name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_source_and_suffix_fall_back_to_the_name() {
        let s = FsSnapshot::from(
            wire::decode::<SnapshotWire>("b", "op", br#"{"name": "fs1.s1"}"#).expect("sparse"),
        );
        assert_eq!(
            (s.source.as_str(), s.suffix.as_str(), s.destroyed),
            ("fs1", "s1", false)
        );
        let s = FsSnapshot::from(
            wire::decode::<SnapshotWire>(
                "b",
                "op",
                br#"{"name": "fs1.s1", "owner": {"name": "fs1"}, "suffix": "s1", "destroyed": true}"#,
            )
            .expect("full"),
        );
        assert_eq!((s.source.as_str(), s.destroyed), ("fs1", true));
    }
}
