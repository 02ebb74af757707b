//! The `flexVolume.options` of our PVs: written by the provisioner, read by the flex driver.
//!
//! The keys are defined here once. PSO 2.x wrote `backend`, `namespace` (the array name prefix),
//! `volumeName` (the PV name), `accessMode`, `labels` and `volumeMode`; we write those too, so
//! tools that read PSO PVs keep working, plus keys that say exactly where the volume lives.
//! A PV PSO created carries no array key: the driver then finds the volume by name.
//!
//! Values are strings (the API's type). kubelet adds its own `kubernetes.io/*` keys when it calls
//! the driver; [`VolumeOptions::from_options`] ignores those.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::names;

/// `block` (FlashArray) or `file` (FlashBlade). PSO key.
pub const BACKEND: &str = "backend";
/// Array name prefix used when the volume was created. PSO key.
pub const NAMESPACE: &str = "namespace";
/// The PV name. PSO key.
pub const VOLUME_NAME: &str = "volumeName";
/// `exclusive` (RWO) or `shared` (RWX/ROX), informational. PSO key.
pub const ACCESS_MODE: &str = "accessMode";
/// PVC selector labels, informational. PSO key.
pub const LABELS: &str = "labels";
/// `Filesystem`, informational. PSO key.
pub const VOLUME_MODE: &str = "volumeMode";
/// Exact name of the volume or file system on the array.
pub const ARRAY_VOLUME: &str = "arrayVolume";
/// Management endpoint of the array holding it, as written in `pure.json`.
pub const ARRAY_ENDPOINT: &str = "arrayEndpoint";
/// The array's own id (FlashArray `id`, FlashBlade `id`): survives an endpoint change.
pub const ARRAY_ID: &str = "arrayId";
/// mkfs options for the first format (StorageClass `createOptions`).
pub const CREATE_OPTIONS: &str = "createOptions";
/// Mount options, comma-separated (StorageClass `mountOptions`; flex PVs cannot use
/// `spec.mountOptions`, kubelet refuses them).
pub const MOUNT_OPTIONS: &str = "mountOptions";
/// NFS server (FlashBlade data VIP) chosen at provisioning time.
pub const NFS_ENDPOINT: &str = "nfsEndpoint";
/// The protection group the volume was put into (StorageClass `protectionGroup`), informational:
/// which array-side group replicates it.
pub const PROTECTION_GROUP: &str = "protectionGroup";

/// Which kind of array a volume lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// FlashArray volume over iSCSI or FC.
    Block,
    /// FlashBlade file system over NFS.
    File,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Block => "block",
            Backend::File => "file",
        }
    }

    /// The kind of array holding this backend's volumes, for messages: `FlashArray`, `FlashBlade`.
    pub fn array_kind(self) -> &'static str {
        match self {
            Backend::Block => "FlashArray",
            Backend::File => "FlashBlade",
        }
    }

    /// What the array object is called, for messages: `volume`, `file system`.
    pub fn object_kind(self) -> &'static str {
        match self {
            Backend::Block => "volume",
            Backend::File => "file system",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "block" => Ok(Backend::Block),
            "file" => Ok(Backend::File),
            other => Err(format!(
                "unknown backend {other:?} (expected block or file)"
            )),
        }
    }
}

/// Where to find the array object, when the PV says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrayLocator {
    pub endpoint: Option<String>,
    pub id: Option<String>,
}

/// What the driver needs to know about a volume, decoded from (or encoded to) PV options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeOptions {
    pub backend: Backend,
    /// Name of the object on the array.
    pub array_volume: String,
    /// `None` for PVs PSO created: search the configured arrays by name.
    pub array: Option<ArrayLocator>,
    pub create_options: Option<String>,
    pub mount_options: Option<String>,
    pub nfs_endpoint: Option<String>,
}

/// A PV's options did not describe a volume.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("volume option {key:?}: {problem}")]
pub struct OptionsError {
    pub key: String,
    pub problem: String,
}

fn opt_err(key: &str, problem: impl Into<String>) -> OptionsError {
    OptionsError {
        key: key.to_owned(),
        problem: problem.into(),
    }
}

/// Array object names: 1 to 63 letters, digits, `-` or `_`, starting with a letter or digit.
/// They end up in URLs and device bookkeeping, so anything else is refused.
pub fn is_valid_array_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Purity's protection group (and array) names: 1 to 63 letters, digits or `-`, starting and
/// ending with a letter or digit (the pattern Pure's Ansible `purefa_pg` checks). No `_`, unlike
/// volume names.
pub fn is_valid_pgroup_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

impl VolumeOptions {
    /// Decodes the options of a PV (or of a kubelet call, which carries them plus its own keys).
    ///
    /// `default_prefix` is used for PSO PVs that lack `namespace`.
    pub fn from_options(
        options: &BTreeMap<String, String>,
        default_prefix: &str,
    ) -> Result<Self, OptionsError> {
        let get = |k: &str| options.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let backend = match get(BACKEND) {
            Some(b) => b.parse().map_err(|e: String| opt_err(BACKEND, e))?,
            None => return Err(opt_err(BACKEND, "is missing")),
        };
        let array_volume = match (get(ARRAY_VOLUME), get(VOLUME_NAME)) {
            (Some(name), _) => name.to_owned(),
            (None, Some(pv)) => names::array_name(get(NAMESPACE).unwrap_or(default_prefix), pv),
            (None, None) => {
                return Err(opt_err(VOLUME_NAME, "is missing (and so is arrayVolume)"));
            }
        };
        if !is_valid_array_name(&array_volume) {
            return Err(opt_err(
                ARRAY_VOLUME,
                format!("{array_volume:?} is not a valid array object name"),
            ));
        }
        let endpoint = get(ARRAY_ENDPOINT).map(str::to_owned);
        let id = get(ARRAY_ID).map(str::to_owned);
        let array = (endpoint.is_some() || id.is_some()).then_some(ArrayLocator { endpoint, id });
        let mount_options = get(MOUNT_OPTIONS)
            .map(crate::config::validate_mount_options)
            .transpose()
            .map_err(|e| opt_err(MOUNT_OPTIONS, e))?
            .filter(|s| !s.is_empty());
        Ok(Self {
            backend,
            array_volume,
            array,
            create_options: get(CREATE_OPTIONS).map(str::to_owned),
            mount_options,
            nfs_endpoint: get(NFS_ENDPOINT).map(str::to_owned),
        })
    }
}

/// Everything the provisioner writes into a new PV's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVolumeOptions<'a> {
    pub backend: Backend,
    pub prefix: &'a str,
    pub pv_name: &'a str,
    /// `true` for RWX/ROX claims.
    pub shared: bool,
    /// The claim's selector labels as text (`k=v,k2=v2`), as PSO recorded them.
    pub labels: &'a str,
    pub array_endpoint: &'a str,
    pub array_id: &'a str,
    pub create_options: Option<&'a str>,
    pub mount_options: Option<&'a str>,
    pub nfs_endpoint: Option<&'a str>,
}

impl NewVolumeOptions<'_> {
    /// The `flexVolume.options` map.
    pub fn to_options(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: &str| {
            m.insert(k.to_owned(), v.to_owned());
        };
        put(BACKEND, self.backend.as_str());
        put(NAMESPACE, self.prefix);
        put(VOLUME_NAME, self.pv_name);
        put(
            ACCESS_MODE,
            if self.shared { "shared" } else { "exclusive" },
        );
        put(LABELS, self.labels);
        put(VOLUME_MODE, "Filesystem");
        put(ARRAY_VOLUME, &names::array_name(self.prefix, self.pv_name));
        put(ARRAY_ENDPOINT, self.array_endpoint);
        put(ARRAY_ID, self.array_id);
        for (k, v) in [
            (CREATE_OPTIONS, self.create_options),
            (MOUNT_OPTIONS, self.mount_options),
            (NFS_ENDPOINT, self.nfs_endpoint),
        ] {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                put(k, v);
            }
        }
        m
    }
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
    fn what_the_provisioner_writes_the_driver_reads_back() {
        let new = NewVolumeOptions {
            backend: Backend::Block,
            prefix: "k8s",
            pv_name: "pvc-1",
            shared: false,
            labels: "rack=22",
            array_endpoint: "10.0.0.5",
            array_id: "b75f8356-604b-431d-af5c-64c3ca303749",
            create_options: Some("-q -m reflink=0"),
            mount_options: Some("discard"),
            nfs_endpoint: None,
        };
        let opts = new.to_options();
        assert_eq!(opts[BACKEND], "block");
        assert_eq!(opts[ACCESS_MODE], "exclusive");
        assert!(!opts.contains_key(NFS_ENDPOINT));
        let read = VolumeOptions::from_options(&opts, "other").expect("valid");
        assert_eq!(read.backend, Backend::Block);
        assert_eq!(read.array_volume, "k8s-pvc-1");
        let array = read.array.expect("locator");
        assert_eq!(array.endpoint.as_deref(), Some("10.0.0.5"));
        assert_eq!(read.create_options.as_deref(), Some("-q -m reflink=0"));
        assert_eq!(read.mount_options.as_deref(), Some("discard"));
    }

    #[test]
    fn pso_pvs_are_found_by_name() {
        // As PSO 2.x wrote a FlashBlade PV (helm-charts#241).
        let opts = map(&[
            ("accessMode", "exclusive"),
            ("backend", "file"),
            ("labels", ""),
            ("namespace", "k8s"),
            ("volumeMode", ""),
            ("volumeName", "pvc-xxxx"),
            ("kubernetes.io/fsType", "nfs"),
            ("kubernetes.io/readwrite", "rw"),
        ]);
        let read = VolumeOptions::from_options(&opts, "ignored").expect("valid");
        assert_eq!(read.backend, Backend::File);
        assert_eq!(read.array_volume, "k8s-pvc-xxxx");
        assert_eq!(read.array, None);

        let no_namespace = map(&[("backend", "block"), ("volumeName", "pvc-y")]);
        let read = VolumeOptions::from_options(&no_namespace, "team").expect("valid");
        assert_eq!(read.array_volume, "team-pvc-y");
    }

    #[test]
    fn bad_options_name_the_key() {
        let e = VolumeOptions::from_options(&map(&[("volumeName", "pvc-1")]), "k8s").unwrap_err();
        assert_eq!(e.key, BACKEND);
        let e =
            VolumeOptions::from_options(&map(&[("backend", "tape"), ("volumeName", "p")]), "k8s")
                .unwrap_err();
        assert!(e.to_string().contains("tape"));
        let e = VolumeOptions::from_options(&map(&[("backend", "block")]), "k8s").unwrap_err();
        assert_eq!(e.key, VOLUME_NAME);
        let e = VolumeOptions::from_options(
            &map(&[("backend", "block"), ("arrayVolume", "../../etc")]),
            "k8s",
        )
        .unwrap_err();
        assert_eq!(e.key, ARRAY_VOLUME);
        let e = VolumeOptions::from_options(
            &map(&[
                ("backend", "block"),
                ("volumeName", "p"),
                ("mountOptions", "a b"),
            ]),
            "k8s",
        )
        .unwrap_err();
        assert_eq!(e.key, MOUNT_OPTIONS);
    }

    #[test]
    fn array_names_are_checked() {
        assert!(is_valid_array_name(
            "k8s-pvc-70c5d7f4-3a8b-4d6e-9f10-1234567890ab"
        ));
        for bad in ["", "-a", "a/b", "a.b", &"a".repeat(64)] {
            assert!(!is_valid_array_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn pgroup_names_follow_puritys_rule() {
        for good in ["daily", "a", "site-a-daily", "0x1", &"g".repeat(63)] {
            assert!(is_valid_pgroup_name(good), "{good:?}");
        }
        for bad in [
            "",
            "-daily",
            "daily-",
            "da_ily",
            "da.ily",
            "a:b",
            " a",
            &"g".repeat(64),
        ] {
            assert!(!is_valid_pgroup_name(bad), "{bad:?}");
        }
    }
}
