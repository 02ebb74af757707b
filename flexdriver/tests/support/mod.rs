//! The test fabric around the built `flashvol-flex` binary: a FlashArray and a FlashBlade
//! simulator, a private kubelet root, fake sysfs and by-id dirs, the `tests/fabric` stand-ins for
//! iscsiadm/multipath/mount, and a settings file pointing the driver at all of it. Every test
//! gets its own temp dir, so tests run in parallel; `Drop` unmounts everything under it and
//! detaches the loop devices even when the test failed.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use flashvol_arraysim::{Faults, SimHandle, SimSpec};
use flashvol_common::config::{ApiToken, ClientSettings, FlashArrayConfig};
use flashvol_common::flasharray::{FlashArray, Initiators, Qos};
use flashvol_common::options::{Backend, NewVolumeOptions};
use flashvol_flexdriver::node::mountinfo::{self, MountEntry};
use serde_json::{Value, json};

pub const GIB: u64 = 1 << 30;

/// Whether the calling test must be skipped: it mounts file systems and sets up loop devices,
/// which only root may do. As another user (`cargo test --workspace` on a workstation) it says so
/// and the test returns, instead of failing with an unrelated-looking error. Written straight to
/// stderr, past the test harness's capture, so the reason is seen.
#[track_caller]
pub fn skip_unless_root() -> bool {
    use std::io::Write;
    if nix::unistd::geteuid().is_root() {
        return false;
    }
    let thread = std::thread::current();
    let test = thread
        .name()
        .map_or_else(|| std::panic::Location::caller().to_string(), str::to_owned);
    let _ = writeln!(
        std::io::stderr(),
        "{test}: skipped: needs root (loop devices, mounts)"
    );
    true
}

/// What one driver run produced. Constructing it asserts the protocol: stderr is empty and
/// stdout is exactly one JSON document.
#[derive(Debug)]
pub struct Outcome {
    pub output: Output,
    pub reply: Value,
}

impl Outcome {
    pub fn status(&self) -> &str {
        self.reply["status"].as_str().unwrap_or("<no status>")
    }

    pub fn message(&self) -> String {
        self.reply["message"].as_str().unwrap_or("").to_owned()
    }

    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert_eq!(self.status(), "Success", "reply: {}", self.reply);
        assert_eq!(self.output.status.code(), Some(0));
        self
    }

    #[track_caller]
    pub fn assert_failure(&self) -> &Self {
        assert_eq!(self.status(), "Failure", "reply: {}", self.reply);
        assert_eq!(self.output.status.code(), Some(1));
        self
    }
}

/// Checks kubelet's contract on one run and decodes the reply.
#[track_caller]
pub fn one_json_document(output: Output) -> Outcome {
    let stdout = String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.is_empty(), "stderr must stay empty, got: {stderr}");
    let docs: Vec<Value> = serde_json::Deserializer::from_str(&stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout:?}"));
    assert_eq!(
        docs.len(),
        1,
        "exactly one JSON document expected, got: {stdout:?}"
    );
    let reply = docs.into_iter().next().unwrap();
    assert!(reply.is_object(), "the reply is an object: {reply}");
    Outcome { output, reply }
}

/// The driver under test: the one cargo built, or `FLASHVOL_FLEX_BIN` (e.g. the static release
/// build) to run the same suite against another binary.
pub fn flex_binary() -> PathBuf {
    std::env::var_os("FLASHVOL_FLEX_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_flashvol-flex")))
}

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
}

impl Default for FabricOptions {
    fn default() -> Self {
        Self {
            initiator_file: None,
            node: json!({}),
            flashvol: json!({}),
            nfs_endpoint: None,
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
    ca_bundle: PathBuf,
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
        let fa =
            SimHandle::start(SimSpec::flasharray(root.join("sim-fa"))).expect("FlashArray sim");
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

    fn command(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(flex_binary());
        cmd.args(args)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("FLASHVOL_FLEX_CONFIG", &self.settings_path)
            .env("FLASHVOL_FABRIC_CONFIG", &self.fabric_config);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs the driver as kubelet does and checks the one-JSON-document contract.
    #[track_caller]
    pub fn flex(&self, args: &[&str]) -> Outcome {
        self.flex_env(args, &[])
    }

    #[track_caller]
    pub fn flex_env(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Outcome {
        let output = self.command(args, extra_env).output().expect("driver runs");
        one_json_document(output)
    }

    /// Runs the driver with a crash point and checks that it died there, silently.
    #[track_caller]
    pub fn flex_crashing_after(&self, args: &[&str], step: &str) {
        use std::os::unix::process::ExitStatusExt;
        let output = self
            .command(args, &[("FLASHVOL_FLEX_CRASH_AFTER", step)])
            .output()
            .expect("driver runs");
        assert_eq!(
            output.status.signal(),
            Some(6),
            "expected an abort after {step}, got {:?} with {}",
            output.status,
            String::from_utf8_lossy(&output.stdout)
        );
        assert!(output.stdout.is_empty() && output.stderr.is_empty());
    }

    pub fn pod_dir(&self, pod_uid: &str, pv: &str) -> PathBuf {
        self.kubelet_root
            .join("pods")
            .join(pod_uid)
            .join("volumes/pure~flex")
            .join(pv)
    }

    pub fn staging_dir(&self, pv: &str) -> PathBuf {
        self.kubelet_root
            .join("plugins/kubernetes.io/flexvolume/pure/flex/mounts")
            .join(pv)
    }

    pub fn record_path(&self, pv: &str) -> PathBuf {
        self.kubelet_root
            .join("plugins/kubernetes.io/flexvolume/pure/flex/records")
            .join(format!("{pv}.json"))
    }

    pub fn client_settings(&self) -> ClientSettings {
        ClientSettings {
            ca_file: Some(self.ca_bundle.clone()),
            ..ClientSettings::default()
        }
    }

    /// A client for arranging and inspecting the FlashArray simulator.
    pub fn fa_client(&self) -> FlashArray {
        let config = FlashArrayConfig {
            mgmt_endpoint: self.fa.endpoint().parse().unwrap(),
            api_token: ApiToken::new("sim-token-fa"),
            labels: BTreeMap::new(),
        };
        FlashArray::new(&config, &self.client_settings()).unwrap()
    }

    /// Creates `k8s-<pv>` on the FlashArray; returns its serial.
    pub fn create_block_volume(&self, pv: &str, size: u64) -> String {
        self.fa_client()
            .create_volume(&format!("k8s-{pv}"), size, &Qos::default())
            .expect("volume created")
            .serial
    }

    /// Creates `k8s-<pv>` on the FlashBlade through its REST API.
    pub fn create_file_system(&self, pv: &str) {
        use flashvol_common::config::FlashBladeConfig;
        use flashvol_common::flashblade::{FlashBlade, NewFileSystem};
        let config = FlashBladeConfig {
            mgmt_endpoint: self.fb.endpoint().parse().unwrap(),
            api_token: ApiToken::new("sim-token-fb"),
            nfs_endpoint: None,
            labels: BTreeMap::new(),
        };
        FlashBlade::new(&config, &self.client_settings())
            .unwrap()
            .create_file_system(&NewFileSystem {
                name: format!("k8s-{pv}"),
                provisioned: GIB,
                hard_limit: true,
                snapshot_directory: false,
                nfs_rules: "*(rw,no_root_squash)".into(),
                nfs_v3: true,
                nfs_v4_1: false,
            })
            .expect("file system created");
    }

    /// A host on the FlashArray for another node, connected to `volume`.
    pub fn connect_other_host(&self, host: &str, iqn: &str, volume: &str) {
        let fa = self.fa_client();
        let initiators = Initiators {
            iqns: vec![iqn.to_owned()],
            ..Initiators::default()
        };
        fa.create_host(host, &initiators).expect("host created");
        fa.connect_host(host, volume, None).expect("connected");
    }

    /// Hosts connected to `volume`, by name.
    pub fn hosts_connected_to(&self, volume: &str) -> Vec<String> {
        let mut hosts: Vec<String> = self
            .fa_client()
            .list_volume_connections(volume)
            .expect("connections")
            .into_iter()
            .map(|c| c.host)
            .collect();
        hosts.sort();
        hosts
    }

    /// The simulator's `/_sim/<path>` answer.
    pub fn admin_get(&self, sim: &SimHandle, path: &str) -> Value {
        // One CA per call: curl (OpenSSL) gets confused by two CAs with the same subject.
        let out = Command::new("curl")
            .args(["-fsS", "--max-time", "10", "--cacert"])
            .arg(sim.ca_cert_path())
            .arg(format!("{}/{path}", sim.admin_url()))
            .output()
            .expect("curl runs");
        assert!(
            out.status.success(),
            "GET {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("admin JSON")
    }

    pub fn set_fa_latency(&self, latency: Duration) {
        self.fa.set_faults(Faults {
            latency_ms: u64::try_from(latency.as_millis()).unwrap(),
            ..Faults::default()
        });
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
                let loop_dev = std::fs::read_to_string(e.path()).unwrap().trim().to_owned();
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

/// The options kubelet passes for one of our block PVs.
pub fn block_options(fabric: &Fabric, pv: &str, extra: &[(&str, &str)]) -> String {
    volume_options(fabric, Backend::Block, pv, &fabric.fa.endpoint(), extra)
}

/// The options kubelet passes for one of our file PVs.
pub fn file_options(fabric: &Fabric, pv: &str, extra: &[(&str, &str)]) -> String {
    volume_options(fabric, Backend::File, pv, &fabric.fb.endpoint(), extra)
}

fn volume_options(
    _fabric: &Fabric,
    backend: Backend,
    pv: &str,
    endpoint: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut opts = NewVolumeOptions {
        backend,
        prefix: "k8s",
        pv_name: pv,
        shared: false,
        labels: "",
        array_endpoint: endpoint,
        array_id: "",
        create_options: None,
        mount_options: None,
        nfs_endpoint: None,
    }
    .to_options();
    opts.insert(
        "kubernetes.io/fsType".into(),
        if backend == Backend::Block {
            "xfs"
        } else {
            "nfs"
        }
        .into(),
    );
    opts.insert("kubernetes.io/readwrite".into(), "rw".into());
    opts.insert("kubernetes.io/pvOrVolumeName".into(), pv.into());
    for (k, v) in extra {
        opts.insert((*k).into(), (*v).into());
    }
    serde_json::to_string(&opts).unwrap()
}

/// Writes a file into a mounted volume and returns its checksum.
pub fn write_payload(dir: &Path, name: &str, seed: u8) -> u64 {
    let data: Vec<u8> = (0..1_000_000u32)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    std::fs::write(dir.join(name), &data).unwrap();
    checksum(&data)
}

pub fn read_checksum(path: &Path) -> u64 {
    checksum(&std::fs::read(path).unwrap())
}

fn checksum(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Waits until `cond` holds (the fabric applies some changes lazily).
pub fn eventually(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let started = Instant::now();
    while !cond() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
