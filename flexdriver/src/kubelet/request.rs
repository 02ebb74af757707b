//! What a `mount` call asks for, decoded from kubelet's option map: kubelet's own
//! `kubernetes.io/*` keys plus the PV's options (decoded by `flashvol_common::options`).

use std::collections::BTreeMap;

use flashvol_common::options::{self, VolumeOptions};

use crate::runtime::error::{FlexError, Result};

pub const FS_TYPE: &str = "kubernetes.io/fsType";
pub const READ_WRITE: &str = "kubernetes.io/readwrite";
pub const PV_OR_VOLUME_NAME: &str = "kubernetes.io/pvOrVolumeName";
/// fsGroup since Kubernetes 1.15.
pub const FS_GROUP: &str = "kubernetes.io/mounterArgs.FsGroup";
/// fsGroup before 1.15.
pub const FS_GROUP_LEGACY: &str = "kubernetes.io/fsGroup";
/// Secrets referenced by the PV, base64; never logged.
pub const SECRET_PREFIX: &str = "kubernetes.io/secret/";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountRequest {
    pub volume: VolumeOptions,
    /// From the PV's `flexVolume.fsType`; `None` means the configured default.
    pub fs_type: Option<String>,
    pub read_only: bool,
    pub fs_group: Option<u32>,
    /// RWX/ROX claims (`accessMode: shared`): never fenced.
    pub shared: bool,
}

impl MountRequest {
    pub fn from_options(opts: &BTreeMap<String, String>, default_prefix: &str) -> Result<Self> {
        let volume = VolumeOptions::from_options(opts, default_prefix)
            .map_err(|e| FlexError::Request(e.to_string()))?;
        let get = |k: &str| opts.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let read_only = match get(READ_WRITE) {
            None | Some("rw") => false,
            Some("ro") => true,
            Some(other) => {
                return Err(FlexError::Request(format!(
                    "option {READ_WRITE:?} is {other:?}, expected \"ro\" or \"rw\""
                )));
            }
        };
        let fs_group = match get(FS_GROUP).or_else(|| get(FS_GROUP_LEGACY)) {
            None => None,
            Some(text) => Some(text.parse::<u32>().map_err(|_| {
                FlexError::Request(format!("fsGroup {text:?} is not a numeric group id"))
            })?),
        };
        let shared = get(options::ACCESS_MODE).is_some_and(|m| m.eq_ignore_ascii_case("shared"));
        Ok(Self {
            volume,
            fs_type: get(FS_TYPE).map(str::to_owned),
            read_only,
            fs_group,
            shared,
        })
    }
}

/// The options as they may appear in a log: secrets replaced.
pub fn loggable(opts: &BTreeMap<String, String>) -> BTreeMap<&str, &str> {
    opts.iter()
        .map(|(k, v)| {
            let shown = if k.starts_with(SECRET_PREFIX) {
                "<redacted>"
            } else {
                v.as_str()
            };
            (k.as_str(), shown)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn kubelet_keys_are_read() {
        let r = MountRequest::from_options(
            &map(&[
                ("backend", "block"),
                ("volumeName", "pvc-1"),
                ("accessMode", "shared"),
                (FS_TYPE, "ext4"),
                (READ_WRITE, "ro"),
                (FS_GROUP, "2000"),
            ]),
            "k8s",
        )
        .expect("valid");
        assert!(r.read_only && r.shared);
        assert_eq!(r.fs_group, Some(2000));
        assert_eq!(r.fs_type.as_deref(), Some("ext4"));
        assert_eq!(r.volume.array_volume, "k8s-pvc-1");
    }

    #[test]
    fn both_fs_group_keys_are_accepted() {
        let r = MountRequest::from_options(
            &map(&[
                ("backend", "file"),
                ("volumeName", "p"),
                (FS_GROUP_LEGACY, "7"),
            ]),
            "k8s",
        )
        .expect("valid");
        assert_eq!(r.fs_group, Some(7));
        assert!(!r.read_only && !r.shared);
    }

    #[test]
    fn bad_values_are_named() {
        let e = MountRequest::from_options(
            &map(&[
                ("backend", "file"),
                ("volumeName", "p"),
                (READ_WRITE, "maybe"),
            ]),
            "k8s",
        )
        .expect_err("refused");
        assert!(e.to_string().contains("maybe"));
        let e = MountRequest::from_options(
            &map(&[
                ("backend", "file"),
                ("volumeName", "p"),
                (FS_GROUP, "staff"),
            ]),
            "k8s",
        )
        .expect_err("refused");
        assert!(e.to_string().contains("staff"));
    }

    #[test]
    fn secrets_never_reach_the_log() {
        let opts = map(&[
            ("kubernetes.io/secret/token", "c2VjcmV0"),
            ("backend", "file"),
        ]);
        let shown = format!("{:?}", loggable(&opts));
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
        assert!(shown.contains("backend"));
    }
}
