//! The fabric one test runs in: its temp dir, the two simulators, the settings and fabric config
//! files, and what the node looks like (mounts, exposed LUNs, the driver's log); `Drop` cleans up.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use flashvol_arraysim::{SimHandle, SimSpec};
use flashvol_flexdriver::node::mountinfo::{self, MountEntry};
use serde_json::{Value, json};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn fabric_tool(name: &str) -> PathBuf {
    repo_root().join("tests/fabric").join(name)
}

/// Knobs a test may turn before the fabric starts.
#[derive(Debug, Clone)]
pub struct FabricOptions {
    /// Content of the node's initiatorname.iscsi; `None` writes a unique valid IQN.
    pub initiator_file: Option<String>,
    /// Extra keys merged into the `"node"` section.
    pub node: Value,
    /// The `"flashvol"` section.
    pub flashvol: Value,
    /// Whether the FlashBlade entry carries an NfsEndPoint.
    pub nfs_endpoint: Option<String>,
    /// The FlashArray has iSCSI ports only, like Pure Cloud Block Store.
    pub iscsi_only_array: bool,
}

impl Default for FabricOptions {
    fn default() -> Self {
        Self {
            initiator_file: None,
            node: json!({}),
            flashvol: json!({}),
            nfs_endpoint: None,
            iscsi_only_array: false,
        }
    }
}

pub struct Fabric {
    pub dir: tempfile::TempDir,
    pub fa: SimHandle,
    pub fb: SimHandle,
    pub kubelet_root: PathBuf,
    pub settings_path: PathBuf,
    pub fabric_config: PathBuf,
    pub sysfs: PathBuf,
    pub device_dir: PathBuf,
    pub state_dir: PathBuf,
    pub log_file: PathBuf,
    pub iqn: String,
    pub node_name: String,
    pub(super) ca_bundle: PathBuf,
}

fn unique_suffix(dir: &Path) -> String {
    dir.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("x")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase()
}

impl Fabric {
    pub fn new() -> Self {
        Self::with(FabricOptions::default())
    }

    pub fn with(opts: FabricOptions) -> Self {
        // FLASHVOL_FABRIC_KEEP=1 keeps the temp dir (log, settings, fabric state) for debugging;
        // mounts and loop devices are still cleaned up.
        let dir = tempfile::Builder::new()
            .prefix("flexfab")
            .disable_cleanup(std::env::var_os("FLASHVOL_FABRIC_KEEP").is_some())
            .tempdir()
            .expect("temp dir");
        let root = dir.path().canonicalize().unwrap();
        let suffix = unique_suffix(&root);
        let mut fa_spec = SimSpec::flasharray(root.join("sim-fa"));
        if opts.iscsi_only_array {
            fa_spec.fc_wwns.clear();
        }
        let fa = SimHandle::start(fa_spec).expect("FlashArray sim");
        let fb =
            SimHandle::start(SimSpec::flashblade(root.join("sim-fb"))).expect("FlashBlade sim");
        let ca_bundle = root.join("ca-bundle.pem");
        let bundle = [fa.ca_cert_path(), fb.ca_cert_path()]
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&ca_bundle, bundle).unwrap();

        let kubelet_root = root.join("kubelet");
        let sysfs = root.join("sys");
        let device_dir = root.join("dev/disk/by-id");
        let mapper_dir = root.join("dev/mapper");
        let state_dir = root.join("fabric-state");
        for d in [
            &kubelet_root,
            &sysfs.join("block"),
            &device_dir,
            &mapper_dir,
            &state_dir,
        ] {
            std::fs::create_dir_all(d).unwrap();
        }
        let iqn = format!("iqn.2026-11.io.flashvol.test:{suffix}");
        let node_name = format!("node-{suffix}");
        let initiator_path = root.join("initiatorname.iscsi");
        let initiator_text = opts
            .initiator_file
            .clone()
            .unwrap_or_else(|| format!("InitiatorName={iqn}\n"));
        std::fs::write(&initiator_path, initiator_text).unwrap();

        let log_file = root.join("flex.log");
        let mut node = json!({
            "nodeName": node_name,
            "logFile": log_file,
            "logLevel": "debug",
            "locksDir": root.join("locks"),
            "deviceDir": device_dir,
            "mapperDir": mapper_dir,
            "sysfsRoot": sysfs,
            "iscsiInitiatorFile": initiator_path,
            "tools": {
                "iscsiadm": fabric_tool("iscsiadm"),
                "multipath": fabric_tool("multipath"),
                "multipathd": fabric_tool("multipathd"),
                "mount": fabric_tool("mount"),
            },
            "deadlines": {"arrayCallSeconds": 20, "deviceWaitSeconds": 20, "lockWaitSeconds": 120},
        });
        merge(&mut node, &opts.node);
        let mut flashvol = json!({"tls": {"caFile": ca_bundle}});
        merge(&mut flashvol, &opts.flashvol);
        let mut blade = json!({"MgmtEndPoint": fb.endpoint(), "APIToken": "sim-token-fb"});
        if let Some(ep) = &opts.nfs_endpoint {
            blade["NfsEndPoint"] = json!(ep);
        }
        let settings = json!({
            "FlashArrays": [{"MgmtEndPoint": fa.endpoint(), "APIToken": "sim-token-fa"}],
            "FlashBlades": [blade],
            "flashvol": flashvol,
            "node": node,
        });
        let settings_path = root.join("flashvol.json");
        std::fs::write(
            &settings_path,
            serde_json::to_vec_pretty(&settings).unwrap(),
        )
        .unwrap();

        let fabric_config = root.join("fabric.json");
        let fabric = json!({
            "faAdminUrl": fa.admin_url(),
            "fbAdminUrl": fb.admin_url(),
            "faCaCert": fa.ca_cert_path(),
            "fbCaCert": fb.ca_cert_path(),
            "initiator": iqn,
            "sysfsRoot": sysfs,
            "deviceDir": device_dir,
            "stateDir": state_dir,
        });
        std::fs::write(&fabric_config, serde_json::to_vec_pretty(&fabric).unwrap()).unwrap();

        Self {
            dir,
            fa,
            fb,
            kubelet_root,
            settings_path,
            fabric_config,
            sysfs,
            device_dir,
            state_dir,
            log_file,
            iqn,
            node_name,
            ca_bundle,
        }
    }

    /// The fabric's temp dir, as the driver's settings name it.
    pub fn root(&self) -> PathBuf {
        self.dir.path().canonicalize().unwrap()
    }

    /// The driver's `locksDir`.
    pub fn locks_dir(&self) -> PathBuf {
        self.root().join("locks")
    }

    /// The mount table entries under this fabric's temp dir.
    pub fn mounts(&self) -> Vec<MountEntry> {
        let root = self.dir.path().canonicalize().unwrap();
        mountinfo::read()
            .unwrap()
            .into_iter()
            .filter(|m| m.mount_point.starts_with(&root))
            .collect()
    }

    pub fn mounted_at(&self, path: &Path) -> Option<MountEntry> {
        self.mounts()
            .into_iter()
            .rev()
            .find(|m| m.mount_point == path)
    }

    /// Loop devices the fabric currently exposes (serial → /dev/loopN).
    pub fn exposed_luns(&self) -> BTreeMap<String, String> {
        let Ok(entries) = std::fs::read_dir(self.state_dir.join("luns")) else {
            return BTreeMap::new();
        };
        entries
            .flatten()
            .map(|e| {
                let serial = e.file_name().to_string_lossy().into_owned();
                // "<loop device> <admin url of its array>" (tests/fabric/luns.sh).
                let record = std::fs::read_to_string(e.path()).unwrap();
                let loop_dev = record.split_whitespace().next().unwrap_or("").to_owned();
                (serial, loop_dev)
            })
            .collect()
    }

    /// Whether the driver asked the kernel to delete the fabric's device for `serial`.
    pub fn device_deleted(&self, serial: &str) -> bool {
        let Some(loop_dev) = self
            .exposed_luns()
            .get(&serial.to_ascii_lowercase())
            .cloned()
        else {
            return true;
        };
        let name = loop_dev.trim_start_matches("/dev/");
        std::fs::read_to_string(self.sysfs.join("block").join(name).join("device/delete"))
            .map(|s| s.trim() == "1")
            .unwrap_or(true)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }
}

impl Drop for Fabric {
    fn drop(&mut self) {
        // Deepest first, detached, so a failing test never leaves mounts behind.
        let mut mounts = self.mounts();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.mount_point.components().count()));
        for m in mounts {
            let _ = nix::mount::umount2(&m.mount_point, nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = Command::new(fabric_tool("iscsiadm"))
            .args(["-m", "node", "--logout"])
            .env("FLASHVOL_FABRIC_CONFIG", &self.fabric_config)
            .output();
    }
}

fn merge(base: &mut Value, extra: &Value) {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, e) => *b = e.clone(),
    }
}
