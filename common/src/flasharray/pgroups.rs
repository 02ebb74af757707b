//! Protection groups and what replication delivers: a volume joins an administrator's group
//! (`pgroup/<name>`), and a target array lists the replicated snapshots of a source array's
//! group (`<source array>:<group>.<n>`), their transfer state and their volume snapshots
//! (`<source array>:<group>.<n>.<volume>`), plus its replication connections (`array/connection`).
//! flashvol never creates, targets or schedules protection groups.

use serde::Deserialize;
use serde_json::json;

use super::FlashArray;
use super::volumes::{Volume, VolumeWire};
use crate::client::call::Call;
use crate::client::transport::Method;
use crate::error::{ArrayError, Result};

/// One protection group snapshot, with its transfer state when the array reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct PgroupSnapshot {
    /// `<group>.<suffix>`; on a target `<source array>:<group>.<n>`.
    pub name: String,
    /// When the source took it (ISO 8601, as the array sends it).
    pub created: Option<String>,
    /// When its transfer completed; `None` while it is still in transfer.
    pub completed: Option<String>,
    /// Transfer progress, 0.0 to 1.0.
    pub progress: Option<f64>,
}

impl PgroupSnapshot {
    /// Fully transferred: `completed` set and `progress` 1 (Cinder's failover keeps only those).
    pub fn is_complete(&self) -> bool {
        self.completed.is_some() && self.progress.is_none_or(|p| p >= 1.0)
    }
}

/// A protection group as `GET pgroup/<name>?pending=true` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pgroup {
    pub name: String,
    pub volumes: Vec<String>,
    /// The array that owns it: this array's name, or for a replica the source array's.
    pub source: Option<String>,
    /// Destroyed (pending eradication): it takes no volumes.
    pub destroyed: bool,
}

/// A replication connection to another array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrayConnection {
    /// The other array's Purity `array_name`.
    pub array_name: String,
    pub connected: bool,
}

impl FlashArray {
    fn pgroup_path(&self, name: &str) -> Result<String> {
        Ok(format!(
            "pgroup/{}",
            crate::client::wire::path_segment(self.endpoint(), "protection group", name)?
        ))
    }

    /// A protection group, destroyed ones included ([`Pgroup::destroyed`]); a missing one is
    /// [`ArrayError::NotFound`]. (`GET pgroup/<name>?pending=true`, retried.)
    pub fn get_protection_group(&self, name: &str) -> Result<Pgroup> {
        #[derive(Deserialize)]
        struct Wire {
            name: String,
            #[serde(default, deserialize_with = "crate::client::wire::null_as_empty")]
            volumes: Vec<String>,
            #[serde(default)]
            source: Option<String>,
            #[serde(default)]
            time_remaining: Option<u64>,
        }
        let call = Call::new(Method::Get, self.pgroup_path(name)?, name).query("pending", "true");
        let wire: Wire = self.call_json(&call)?;
        Ok(Pgroup {
            name: wire.name,
            volumes: wire.volumes,
            source: wire.source,
            destroyed: wire.time_remaining.is_some(),
        })
    }

    /// Puts `volume` into the protection group `group` (`PUT pgroup/<group>`
    /// `{"addvollist":[volume]}`). Already a member counts as done, so the call is retried and
    /// converges. A missing group is [`ArrayError::NotFound`], a destroyed one
    /// [`ArrayError::Destroyed`].
    pub fn add_to_protection_group(&self, group: &str, volume: &str) -> Result<()> {
        let call = Call::new(Method::Put, self.pgroup_path(group)?, group)
            .body(json!({ "addvollist": [volume] }))
            .idempotent();
        match self.execute(&call) {
            Ok(_) | Err(ArrayError::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The snapshots of a protection group, oldest first, with their transfer state (`GET
    /// pgroup/<group>?snap=true&transfer=true`). On a target, `group` is `<source array>:<group>`.
    pub fn list_pgroup_snapshots(&self, group: &str) -> Result<Vec<PgroupSnapshot>> {
        #[derive(Deserialize)]
        struct Wire {
            name: String,
            #[serde(default)]
            created: Option<String>,
            #[serde(default)]
            completed: Option<String>,
            #[serde(default)]
            progress: Option<f64>,
        }
        let call = Call::new(Method::Get, self.pgroup_path(group)?, group)
            .query("snap", "true")
            .query("transfer", "true");
        let rows: Vec<Wire> = self.call_json(&call)?;
        Ok(rows
            .into_iter()
            .map(|w| PgroupSnapshot {
                name: w.name,
                created: w.created,
                completed: w.completed,
                progress: w.progress,
            })
            .collect())
    }

    /// The volume snapshots of one protection group snapshot (`GET
    /// volume/<snapshot>?snap=true&pgroup=true`), named `<snapshot>.<volume>`.
    pub fn list_pgroup_snapshot_volumes(&self, snapshot: &str) -> Result<Vec<Volume>> {
        let call = Call::new(Method::Get, self.volume_path(snapshot)?, snapshot)
            .query("snap", "true")
            .query("pgroup", "true");
        let rows: Vec<VolumeWire> = self.call_json(&call)?;
        Ok(rows.into_iter().map(Volume::from).collect())
    }

    /// The arrays this one is connected to for replication (`GET array/connection`).
    pub fn list_array_connections(&self) -> Result<Vec<ArrayConnection>> {
        #[derive(Deserialize)]
        struct Wire {
            array_name: String,
            #[serde(default)]
            connected: bool,
        }
        let call = Call::new(Method::Get, "array/connection".into(), "array connections");
        let rows: Vec<Wire> = self.call_json(&call)?;
        Ok(rows
            .into_iter()
            .map(|w| ArrayConnection {
                array_name: w.array_name,
                connected: w.connected,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_is_complete_only_once_its_transfer_completed() {
        let snapshot = |completed: Option<&str>, progress: Option<f64>| PgroupSnapshot {
            name: "a:g.1".into(),
            created: None,
            completed: completed.map(str::to_owned),
            progress,
        };
        assert!(snapshot(Some("2026-12-06T10:00:00Z"), Some(1.0)).is_complete());
        assert!(snapshot(Some("2026-12-06T10:00:00Z"), None).is_complete());
        assert!(!snapshot(None, Some(0.4)).is_complete());
        assert!(!snapshot(None, None).is_complete());
        assert!(!snapshot(Some("2026-12-06T10:00:00Z"), Some(0.5)).is_complete());
    }
}
