//! Where things live under the kubelet root, derived from the pod volume dir kubelet passes:
//! `<root>/pods/<pod uid>/volumes/<vendor>~<driver>/<pv name>`.
//!
//! The staging mount of a block volume is `<root>/plugins/kubernetes.io/flexvolume/<vendor>/<driver>/mounts/<pv>`:
//! under the kubelet root, so a containerized kubelet sharing that root (RKE1) sees it, and in
//! the place kubelet itself uses for flex device mounts. Next to it, `records/<pv>.json` remembers
//! which array volume is behind it, for an `unmount` that gets nothing but a path.
//!
//! [`DriverArea`] is that part of the kubelet root for one driver name, with no pod in it: what
//! collecting leftover volumes walks (every record, every pod dir of the driver).
//! [`StagedVolume`] is one staged volume of an area, named without a pod, for `expandfs`.

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

    /// The driver's part of the kubelet root this pod dir lives under.
    pub fn area(&self) -> DriverArea {
        DriverArea {
            kubelet_root: self.kubelet_root.clone(),
            vendor: self.vendor.clone(),
            driver: self.driver.clone(),
        }
    }

    /// The volume as staged on this node, whichever pod uses it.
    pub fn staged(&self) -> StagedVolume {
        StagedVolume {
            area: self.area(),
            pv_name: self.pv_name.clone(),
        }
    }

    /// The per-volume staging mount point, shared by every pod of the volume on this node.
    pub fn staging_dir(&self) -> PathBuf {
        self.area().staging_dir(&self.pv_name)
    }

    /// What the driver remembers about the volume behind the staging mount.
    pub fn record_path(&self) -> PathBuf {
        self.area().record_path(&self.pv_name)
    }
}

/// A volume as the driver stages it on a node, named without a pod: what `expandfs` works on,
/// since kubelet may name either a pod's volume dir or the staging dir as the mounted path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedVolume {
    pub area: DriverArea,
    pub pv_name: String,
}

impl StagedVolume {
    /// The volume behind a mounted path kubelet names: a pod volume dir
    /// `<root>/pods/<uid>/volumes/<vendor>~<driver>/<pv>` (what kubelet passes with
    /// `attach: false`) or the staging dir
    /// `<root>/plugins/kubernetes.io/flexvolume/<vendor>/<driver>/mounts/<pv>` (what it would pass
    /// for a device-mounted volume). Anything else is refused: the driver acts only under a
    /// kubelet root, on paths it owns.
    pub fn parse(path: &Path) -> Result<Self> {
        if let Ok(pod) = PodVolume::parse(path) {
            return Ok(pod.staged());
        }
        let bad = |why: &str| {
            FlexError::Request(format!(
                "{} is neither a pod volume dir <kubelet root>/pods/<uid>/volumes/<vendor>~<driver>/<volume> \
                 nor a staging dir <kubelet root>/plugins/kubernetes.io/flexvolume/<vendor>/<driver>/mounts/<volume>: {why}",
                path.display()
            ))
        };
        if path
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        {
            return Err(bad("it contains . or .."));
        }
        let parts: Vec<&str> = path.iter().filter_map(|c| c.to_str()).collect();
        let n = parts.len();
        if n < 8
            || parts[n - 2] != "mounts"
            || parts[n - 5] != "flexvolume"
            || parts[n - 6] != "kubernetes.io"
            || parts[n - 7] != "plugins"
        {
            return Err(bad("unexpected layout"));
        }
        let (vendor, driver, pv_name) = (parts[n - 4], parts[n - 3], parts[n - 1]);
        if ![vendor, driver, pv_name].into_iter().all(safe_name) {
            return Err(bad("the driver or volume name is not a Kubernetes name"));
        }
        let kubelet_root = path
            .ancestors()
            .nth(7)
            .ok_or_else(|| bad("no kubelet root"))?
            .to_path_buf();
        Ok(Self {
            area: DriverArea {
                kubelet_root,
                vendor: vendor.to_owned(),
                driver: driver.to_owned(),
            },
            pv_name: pv_name.to_owned(),
        })
    }

    /// The staging mount point of the volume.
    pub fn staging_dir(&self) -> PathBuf {
        self.area.staging_dir(&self.pv_name)
    }

    /// What the driver remembers about the volume behind the staging mount.
    pub fn record_path(&self) -> PathBuf {
        self.area.record_path(&self.pv_name)
    }
}

/// One driver's places under one kubelet root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverArea {
    pub kubelet_root: PathBuf,
    pub vendor: String,
    pub driver: String,
}

impl DriverArea {
    /// `<kubelet root>` and a driver name as the PVs spell it (`pure/flex`), validated.
    pub fn new(kubelet_root: &Path, driver_name: &str) -> Result<Self> {
        let bad = |why: String| FlexError::Request(why);
        if !kubelet_root.is_absolute()
            || kubelet_root
                .components()
                .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        {
            return Err(bad(format!(
                "kubelet root {} is not an absolute path without . or ..",
                kubelet_root.display()
            )));
        }
        let (vendor, driver) = driver_name
            .split_once('/')
            .filter(|(v, d)| safe_name(v) && safe_name(d))
            .ok_or_else(|| bad(format!("driver {driver_name:?} is not <vendor>/<driver>")))?;
        Ok(Self {
            kubelet_root: kubelet_root.to_path_buf(),
            vendor: vendor.to_owned(),
            driver: driver.to_owned(),
        })
    }

    fn plugin_dir(&self) -> PathBuf {
        self.kubelet_root
            .join("plugins/kubernetes.io/flexvolume")
            .join(&self.vendor)
            .join(&self.driver)
    }

    pub fn staging_dir(&self, pv_name: &str) -> PathBuf {
        self.plugin_dir().join("mounts").join(pv_name)
    }

    pub fn records_dir(&self) -> PathBuf {
        self.plugin_dir().join("records")
    }

    pub fn record_path(&self, pv_name: &str) -> PathBuf {
        self.records_dir().join(format!("{pv_name}.json"))
    }

    /// The PVs with a volume record, by name (`<pv>.json`; temp files and anything else ignored).
    pub fn recorded_volumes(&self) -> std::io::Result<Vec<String>> {
        let entries = match std::fs::read_dir(self.records_dir()) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_str()?.strip_suffix(".json")?.to_owned();
                safe_name(&name).then_some(name)
            })
            .collect();
        names.sort();
        Ok(names)
    }

    /// The pod volume dirs kubelet keeps for `pv` with this driver:
    /// `<root>/pods/*/volumes/<vendor>~<driver>/<pv>` that exist.
    pub fn pod_dirs_of(&self, pv_name: &str) -> std::io::Result<Vec<PathBuf>> {
        let pods = self.kubelet_root.join("pods");
        let entries = match std::fs::read_dir(&pods) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let plugin = format!("{}~{}", self.vendor, self.driver);
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .map(|pod| pod.path().join("volumes").join(&plugin).join(pv_name))
            .filter(|dir| dir.symlink_metadata().is_ok())
            .collect();
        found.sort();
        Ok(found)
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
    fn expandfs_names_a_volume_by_its_pod_dir_or_its_staging_dir() {
        let from_pod = StagedVolume::parse(Path::new(
            "/var/lib/kubelet/pods/0f1e-22/volumes/pure~flex/pvc-70c5",
        ))
        .expect("pod dir");
        let staging = from_pod.staging_dir();
        assert_eq!(
            staging,
            Path::new(
                "/var/lib/kubelet/plugins/kubernetes.io/flexvolume/pure/flex/mounts/pvc-70c5"
            )
        );
        assert_eq!(
            StagedVolume::parse(&staging).expect("staging dir"),
            from_pod,
            "both name the same staged volume"
        );
        for p in [
            "/var/lib/kubelet/plugins/kubernetes.io/flexvolume/pure/flex/records/pvc-70c5",
            "/var/lib/kubelet/plugins/kubernetes.io/flexvolume/pure/flex/mounts/../x",
            "/var/lib/kubelet/plugins/other/flexvolume/pure/flex/mounts/pvc-70c5",
            "/kubernetes.io/flexvolume/pure/flex/mounts/pvc-70c5",
            "/var/lib/kubelet/plugins/kubernetes.io/flexvolume/pu re/flex/mounts/pvc-70c5",
            "/etc/passwd",
        ] {
            assert!(StagedVolume::parse(Path::new(p)).is_err(), "{p}");
        }
    }

    #[test]
    fn the_driver_area_lists_records_and_the_pod_dirs_of_a_volume() {
        let root = tempfile::tempdir().expect("tempdir");
        let area = DriverArea::new(root.path(), "pure/flex").expect("valid");
        assert_eq!(
            area.recorded_volumes().expect("none yet"),
            Vec::<String>::new()
        );
        assert_eq!(
            area.pod_dirs_of("pv-a").expect("none yet"),
            Vec::<PathBuf>::new()
        );
        let records = area.records_dir();
        std::fs::create_dir_all(&records).expect("mkdir");
        for f in ["pv-b.json", "pv-a.json", "pv-a.tmp42", "notes.txt"] {
            std::fs::write(records.join(f), "{}").expect("write");
        }
        assert_eq!(area.recorded_volumes().expect("listed"), ["pv-a", "pv-b"]);
        let pod_dir = root.path().join("pods/u1/volumes/pure~flex/pv-a");
        std::fs::create_dir_all(&pod_dir).expect("mkdir");
        std::fs::create_dir_all(root.path().join("pods/u2/volumes/other~drv/pv-a")).expect("mkdir");
        std::fs::create_dir_all(root.path().join("pods/u3/volumes/pure~flex/pv-b")).expect("mkdir");
        assert_eq!(
            area.pod_dirs_of("pv-a").expect("listed"),
            std::slice::from_ref(&pod_dir)
        );
        let vol = PodVolume::parse(&pod_dir).expect("valid");
        assert_eq!(vol.area(), area);
        assert_eq!(vol.record_path(), records.join("pv-a.json"));
        for (root, driver) in [
            ("relative", "pure/flex"),
            ("/r/../x", "pure/flex"),
            ("/r", "pureflex"),
            ("/r", "pure/../x"),
        ] {
            assert!(
                DriverArea::new(Path::new(root), driver).is_err(),
                "{root} {driver}"
            );
        }
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
