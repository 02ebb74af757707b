//! Where things live under the kubelet root, derived from the pod volume dir kubelet passes:
//! `<root>/pods/<pod uid>/volumes/<vendor>~<driver>/<pv name>`.
//!
//! The staging mount of a block volume is `<root>/plugins/kubernetes.io/flexvolume/<vendor>/<driver>/mounts/<pv>`:
//! under the kubelet root, so a containerized kubelet sharing that root (RKE1) sees it, and in
//! the place kubelet itself uses for flex device mounts. Next to it, `records/<pv>.json` remembers
//! which array volume is behind it, for an `unmount` that gets nothing but a path.

use std::path::{Component, Path, PathBuf};

use crate::runtime::error::{FlexError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodVolume {
    pub pod_dir: PathBuf,
    pub kubelet_root: PathBuf,
    pub pod_uid: String,
    pub vendor: String,
    pub driver: String,
    /// The PV name (kubelet names the directory after the volume spec, which for PVs is the PV).
    pub pv_name: String,
}

impl PodVolume {
    pub fn parse(pod_dir: &Path) -> Result<Self> {
        let bad = |why: &str| {
            FlexError::Request(format!(
                "{} is not a pod volume dir <kubelet root>/pods/<uid>/volumes/<vendor>~<driver>/<volume>: {why}",
                pod_dir.display()
            ))
        };
        if pod_dir
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        {
            return Err(bad("it contains . or .."));
        }
        let parts: Vec<&str> = pod_dir.iter().filter_map(|c| c.to_str()).collect();
        let n = parts.len();
        if n < 6 || parts[n - 3] != "volumes" || parts[n - 5] != "pods" {
            return Err(bad("unexpected layout"));
        }
        let (vendor, driver) = parts[n - 2]
            .split_once('~')
            .filter(|(v, d)| safe_name(v) && safe_name(d))
            .ok_or_else(|| bad("the driver directory is not <vendor>~<driver>"))?;
        let pv_name = parts[n - 1];
        let pod_uid = parts[n - 4];
        if !safe_name(pv_name) || !safe_name(pod_uid) {
            return Err(bad("the volume or pod name is not a Kubernetes name"));
        }
        let kubelet_root = pod_dir
            .ancestors()
            .nth(5)
            .ok_or_else(|| bad("no kubelet root"))?
            .to_path_buf();
        Ok(Self {
            pod_dir: pod_dir.to_path_buf(),
            kubelet_root,
            pod_uid: pod_uid.to_owned(),
            vendor: vendor.to_owned(),
            driver: driver.to_owned(),
            pv_name: pv_name.to_owned(),
        })
    }

    fn plugin_dir(&self) -> PathBuf {
        self.kubelet_root
            .join("plugins/kubernetes.io/flexvolume")
            .join(&self.vendor)
            .join(&self.driver)
    }

    /// The per-volume staging mount point, shared by every pod of the volume on this node.
    pub fn staging_dir(&self) -> PathBuf {
        self.plugin_dir().join("mounts").join(&self.pv_name)
    }

    /// What the driver remembers about the volume behind the staging mount.
    pub fn record_path(&self) -> PathBuf {
        self.plugin_dir()
            .join("records")
            .join(format!("{}.json", self.pv_name))
    }
}

/// A Kubernetes object name as it can appear in a path: 1–253 of `[a-zA-Z0-9._-]`, not `.`/`..`.
fn safe_name(s: &str) -> bool {
    (1..=253).contains(&s.len())
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_and_record_live_under_the_kubelet_root() {
        let v = PodVolume::parse(Path::new(
            "/var/lib/kubelet/pods/0f1e-22/volumes/pure~flex/pvc-70c5",
        ))
        .expect("valid");
        assert_eq!(v.kubelet_root, Path::new("/var/lib/kubelet"));
        assert_eq!(v.pv_name, "pvc-70c5");
        assert_eq!(v.pod_uid, "0f1e-22");
        assert_eq!(
            v.staging_dir(),
            Path::new(
                "/var/lib/kubelet/plugins/kubernetes.io/flexvolume/pure/flex/mounts/pvc-70c5"
            )
        );
        assert_eq!(
            v.record_path(),
            Path::new(
                "/var/lib/kubelet/plugins/kubernetes.io/flexvolume/pure/flex/records/pvc-70c5.json"
            )
        );
    }

    #[test]
    fn a_renamed_driver_gets_its_own_staging_area() {
        let v = PodVolume::parse(Path::new(
            "/opt/rke/var/lib/kubelet/pods/u/volumes/acme~blk/pv",
        ))
        .expect("valid");
        assert_eq!(v.kubelet_root, Path::new("/opt/rke/var/lib/kubelet"));
        assert!(v.staging_dir().ends_with("flexvolume/acme/blk/mounts/pv"));
    }

    #[test]
    fn other_paths_are_refused() {
        for p in [
            "/var/lib/kubelet/pods/u/volumes/pureflex/pv",
            "/var/lib/kubelet/pods/u/vols/pure~flex/pv",
            "/var/lib/kubelet/pods/u/volumes/pure~flex/../x",
            "/pods/u/volumes/pure~flex",
            "/tmp/x",
        ] {
            assert!(PodVolume::parse(Path::new(p)).is_err(), "{p}");
        }
    }
}
