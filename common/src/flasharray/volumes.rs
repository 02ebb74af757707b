//! Volumes and their snapshots, copies and QoS limits: `volume/<name>` and `volume`.

use serde::Deserialize;
use serde_json::json;

use super::FlashArray;
use crate::client::call::Call;
use crate::client::transport::Method;
use crate::client::wire::{self, bad_reply, optional_limit};
use crate::error::{ArrayError, Result};

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

impl FlashArray {
    /// `POST volume/<name>` with the size in bytes and the limits that are set. Not retried.
    pub fn create_volume(&self, name: &str, size: u64, qos: &Qos) -> Result<Volume> {
        let mut body = json!({ "size": size });
        if let Some(bandwidth) = qos.bandwidth_limit {
            body["bandwidth_limit"] = json!(bandwidth);
        }
        if let Some(iops) = qos.iops_limit {
            body["iops_limit"] = json!(iops);
        }
        let call = Call::new(Method::Post, self.volume_path(name)?, name).body(body);
        self.call_json::<VolumeWire>(&call).map(Volume::from)
    }

    /// A live volume; a destroyed one is [`crate::ArrayError::Destroyed`].
    /// (`GET volume/<name>?pending=true`, which shows destroyed volumes with `time_remaining`.)
    pub fn get_volume(&self, name: &str) -> Result<Volume> {
        let call = Call::new(Method::Get, self.volume_path(name)?, name).query("pending", "true");
        let volume = Volume::from(self.call_json::<VolumeWire>(&call)?);
        if volume.is_destroyed() {
            return Err(ArrayError::Destroyed {
                endpoint: self.endpoint().to_owned(),
                object: name.to_owned(),
                message: format!(
                    "volume {name} is destroyed, eradicated in {} s unless recovered",
                    volume.time_remaining.unwrap_or_default()
                ),
            });
        }
        Ok(volume)
    }

    /// Volumes matching a glob (`k8s-pvc-*`); `pending` also lists destroyed ones.
    /// An empty glob lists every volume; an exact name that does not exist gives an empty list.
    /// (`GET volume?names=<glob>[&pending=true]`, all pages.)
    pub fn list_volumes(&self, names: &str, pending: bool) -> Result<Vec<Volume>> {
        let mut call = Call::new(Method::Get, "volume".into(), names);
        if !names.is_empty() {
            wire::check_name(self.endpoint(), "volume", names)?;
            call = call.query("names", names);
        }
        if pending {
            call = call.query("pending", "true");
        }
        match self.call_list::<VolumeWire>(&call) {
            Ok(volumes) => Ok(volumes.into_iter().map(Volume::from).collect()),
            Err(ArrayError::NotFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Grows a volume to `size` bytes (`PUT volume/<name>` `{"size","truncate":false}`, retried:
    /// growing to the same size twice is harmless), then reads it back. Shrinking is refused by
    /// the array.
    pub fn extend_volume(&self, name: &str, size: u64) -> Result<Volume> {
        let call = Call::new(Method::Put, self.volume_path(name)?, name)
            .body(json!({ "size": size, "truncate": false }))
            .idempotent();
        self.execute(&call)?;
        self.get_volume(name)
    }

    /// `GET volume/<name>?qos=true`.
    pub fn get_qos(&self, name: &str) -> Result<Qos> {
        #[derive(Deserialize)]
        struct QosWire {
            #[serde(default, deserialize_with = "optional_limit")]
            bandwidth_limit: Option<u64>,
            #[serde(default, deserialize_with = "optional_limit")]
            iops_limit: Option<u64>,
        }
        let call = Call::new(Method::Get, self.volume_path(name)?, name).query("qos", "true");
        let qos: QosWire = self.call_json(&call)?;
        Ok(Qos {
            bandwidth_limit: qos.bandwidth_limit,
            iops_limit: qos.iops_limit,
        })
    }

    /// Sets both limits; `None` clears a limit (sent as `""`). `PUT volume/<name>`, retried.
    pub fn set_qos(&self, name: &str, qos: &Qos) -> Result<()> {
        let limit = |value: Option<u64>| value.map_or_else(|| json!(""), |v| json!(v));
        let body = json!({
            "bandwidth_limit": limit(qos.bandwidth_limit),
            "iops_limit": limit(qos.iops_limit),
        });
        let call = Call::new(Method::Put, self.volume_path(name)?, name)
            .body(body)
            .idempotent();
        self.execute(&call).map(drop)
    }

    /// `PUT volume/<name>` `{"name": new_name}`. Not retried (a repeat would not find `name`).
    pub fn rename_volume(&self, name: &str, new_name: &str) -> Result<()> {
        wire::check_name(self.endpoint(), "new volume", new_name)?;
        let call =
            Call::new(Method::Put, self.volume_path(name)?, name).body(json!({ "name": new_name }));
        self.execute(&call).map(drop)
    }

    /// Moves the volume to the array's 24 h trash (`DELETE volume/<name>`). A connected volume is
    /// [`ArrayError::HasConnections`]; an already destroyed one [`ArrayError::Destroyed`].
    /// Retried: a repeat converges (callers treat `Destroyed` as done).
    pub fn destroy_volume(&self, name: &str) -> Result<()> {
        let call = Call::new(Method::Delete, self.volume_path(name)?, name)
            .idempotent()
            .destroying();
        self.execute(&call).map(drop)
    }

    /// Removes a destroyed volume for good (`DELETE volume/<name>?eradicate=true`). Retried.
    pub fn eradicate_volume(&self, name: &str) -> Result<()> {
        let call = Call::new(Method::Delete, self.volume_path(name)?, name)
            .query("eradicate", "true")
            .idempotent();
        self.execute(&call).map(drop)
    }

    /// Brings a destroyed volume back (`PUT volume/<name>` `{"action":"recover"}`). Not retried.
    pub fn recover_volume(&self, name: &str) -> Result<()> {
        let call = Call::new(Method::Put, self.volume_path(name)?, name)
            .body(json!({ "action": "recover" }));
        self.execute(&call).map(drop)
    }

    /// `POST volume` `{"source":[volume],"snap":true,"suffix"}`; without a suffix the array
    /// numbers the snapshot. Not retried.
    pub fn create_snapshot(&self, volume: &str, suffix: Option<&str>) -> Result<Volume> {
        wire::check_name(self.endpoint(), "volume", volume)?;
        let mut body = json!({ "source": [volume], "snap": true });
        if let Some(suffix) = suffix {
            wire::check_name(self.endpoint(), "snapshot suffix", suffix)?;
            body["suffix"] = json!(suffix);
        }
        let call = Call::new(Method::Post, "volume".into(), volume).body(body);
        let snapshots: Vec<VolumeWire> = self.call_json(&call)?;
        snapshots
            .into_iter()
            .next()
            .map(Volume::from)
            .ok_or_else(|| bad_reply(self.endpoint(), &call.label(), "empty list of snapshots"))
    }

    /// Snapshots of one volume, its parts of protection group snapshots (`<pgroup>.<n>.<volume>`)
    /// included, destroyed ones too ([`Volume::is_destroyed`]): `GET
    /// volume/<volume>?snap=true&pending=true`. How Cinder finds one snapshot by name: list the
    /// volume's, pick the name.
    pub fn list_snapshots(&self, volume: &str) -> Result<Vec<Volume>> {
        let call = Call::new(Method::Get, self.volume_path(volume)?, volume)
            .query("snap", "true")
            .query("pending", "true");
        let snapshots: Vec<VolumeWire> = self.call_json(&call)?;
        Ok(snapshots.into_iter().map(Volume::from).collect())
    }

    /// Clones a volume or snapshot into `dest` (`POST volume/<dest>` `{"source"[,"overwrite"]}`).
    /// Not retried.
    pub fn copy_volume(&self, source: &str, dest: &str, overwrite: bool) -> Result<Volume> {
        wire::check_name(self.endpoint(), "source volume", source)?;
        let mut body = json!({ "source": source });
        if overwrite {
            body["overwrite"] = json!(true);
        }
        let call = Call::new(Method::Post, self.volume_path(dest)?, dest).body(body);
        self.call_json::<VolumeWire>(&call).map(Volume::from)
    }
}

/// A volume or snapshot as the array sends it; extra keys are ignored.
#[derive(Deserialize)]
pub(super) struct VolumeWire {
    name: String,
    size: u64,
    serial: String,
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    time_remaining: Option<u64>,
}

impl From<VolumeWire> for Volume {
    fn from(wire: VolumeWire) -> Self {
        Volume {
            name: wire.name,
            size: wire.size,
            serial: wire.serial,
            created: wire.created,
            source: wire.source,
            time_remaining: wire.time_remaining,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_replies_decode_with_and_without_optional_fields() {
        let full = br#"{"created": "2017-12-16T05:12:38Z", "name": "v1", "serial": "B75F8356604B431D00011010",
                       "size": 1073741824, "source": null, "time_remaining": null, "extra": [1]}"#;
        let v = Volume::from(wire::decode::<VolumeWire>("a", "op", full).expect("full"));
        assert_eq!((v.size, v.is_destroyed()), (1 << 30, false));
        let pending = br#"{"name": "v1", "serial": "S", "size": 1, "time_remaining": 86400}"#;
        let v = Volume::from(wire::decode::<VolumeWire>("a", "op", pending).expect("pending"));
        assert!(v.is_destroyed());
        let missing = wire::decode::<VolumeWire>("a", "op", br#"{"name": "v1", "size": 1}"#);
        assert!(
            matches!(missing, Err(ArrayError::BadReply { ref detail, .. }) if detail.contains("serial"))
        );
    }
}
