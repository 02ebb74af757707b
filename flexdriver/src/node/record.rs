//! What the driver remembers about a staged block volume, so an `unmount` that gets only a path
//! (after a kubelet restart) can still disconnect the right volume from the right array. Written
//! atomically (temp file + rename) before the volume is connected; removed when it has been
//! disconnected.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::runtime::error::{FlexError, Result};
use crate::runtime::files::write_atomic;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeRecord {
    /// Management endpoint of the FlashArray, as configured.
    pub array_endpoint: String,
    pub array_volume: String,
    pub serial: String,
}

impl VolumeRecord {
    pub fn wwid(&self) -> String {
        flashvol_common::names::volume_wwid(&self.serial)
    }
}

pub fn load(path: &Path) -> Result<Option<VolumeRecord>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            FlexError::Refused(format!(
                "volume record {} is unreadable: {e}",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(FlexError::io("cannot read volume record", path, e)),
    }
}

pub fn store(path: &Path, record: &VolumeRecord) -> Result<()> {
    let text = serde_json::to_string(record)
        .map_err(|e| FlexError::Refused(format!("cannot encode volume record: {e}")))?;
    write_atomic(path, &text)
}

pub fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(FlexError::io("cannot remove", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_absence_is_not_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("records/pvc-1.json");
        assert_eq!(load(&path).expect("absent"), None);
        let r = VolumeRecord {
            array_endpoint: "10.0.0.5".into(),
            array_volume: "k8s-pvc-1".into(),
            serial: "B75F8356604B431D00011010".into(),
        };
        store(&path, &r).expect("stored");
        assert_eq!(load(&path).expect("loaded"), Some(r.clone()));
        assert_eq!(r.wwid(), "3624a9370b75f8356604b431d00011010");
        remove(&path).expect("removed");
        remove(&path).expect("idempotent");
        std::fs::write(&path, "{").expect("corrupt");
        assert!(load(&path).is_err());
    }
}
