//! The node settings: the `"node"` section of the driver's settings file (the same document as
//! PSO's `pure.json`, parsed by `flashvol_common::config`). Keys are camelCase and unknown keys
//! are refused, naming the key.
//!
//! The file is `<directory of the flex executable>/flashvol.json` (the installer writes it there,
//! root-only) unless `FLASHVOL_FLEX_CONFIG` names another path.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::runtime::error::{FlexError, Result};

/// Environment variable overriding the settings file path.
pub const ENV_CONFIG: &str = "FLASHVOL_FLEX_CONFIG";
/// Environment variable overriding the log level.
pub const ENV_LOG: &str = "FLASHVOL_FLEX_LOG";
/// File name next to the executable.
pub const SETTINGS_FILE_NAME: &str = "flashvol.json";

/// Paths of the external programs the driver runs. A bare name is looked up in `PATH` and the
/// usual sbin directories (kubelet's environment often lacks `/sbin`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ToolPaths {
    pub iscsiadm: PathBuf,
    pub multipath: PathBuf,
    pub multipathd: PathBuf,
    pub blkid: PathBuf,
    pub mkfs_xfs: PathBuf,
    pub mkfs_ext4: PathBuf,
    pub mkfs_ext3: PathBuf,
    pub mount: PathBuf,
    pub xfs_growfs: PathBuf,
    pub resize2fs: PathBuf,
    pub e2fsck: PathBuf,
}

impl Default for ToolPaths {
    fn default() -> Self {
        Self {
            iscsiadm: "iscsiadm".into(),
            multipath: "multipath".into(),
            multipathd: "multipathd".into(),
            blkid: "blkid".into(),
            mkfs_xfs: "mkfs.xfs".into(),
            mkfs_ext4: "mkfs.ext4".into(),
            mkfs_ext3: "mkfs.ext3".into(),
            mount: "mount".into(),
            xfs_growfs: "xfs_growfs".into(),
            resize2fs: "resize2fs".into(),
            e2fsck: "e2fsck".into(),
        }
    }
}

/// How long each external step may take before the call fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// One array REST call (including the client's own retries).
    pub array_call: Duration,
    /// Waiting for another call on the same volume (or host registration) to finish.
    pub lock_wait: Duration,
    /// One iscsiadm or multipath run, or one sysfs rescan.
    pub iscsiadm: Duration,
    /// From login/rescan until the volume's device shows up (or, for `expandfs`, shows its new
    /// size).
    pub device_wait: Duration,
    /// blkid, mkfs and growing a file system (xfs_growfs, resize2fs).
    pub mkfs: Duration,
    /// One mount or unmount.
    pub mount: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            array_call: Duration::from_secs(60),
            lock_wait: Duration::from_secs(300),
            iscsiadm: Duration::from_secs(30),
            device_wait: Duration::from_secs(30),
            mkfs: Duration::from_secs(300),
            mount: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct RawDeadlines {
    array_call_seconds: Option<f64>,
    lock_wait_seconds: Option<f64>,
    iscsiadm_seconds: Option<f64>,
    device_wait_seconds: Option<f64>,
    mkfs_seconds: Option<f64>,
    mount_seconds: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct RawNode {
    node_name: Option<String>,
    log_file: Option<PathBuf>,
    log_level: Option<String>,
    locks_dir: Option<PathBuf>,
    device_dir: Option<PathBuf>,
    mapper_dir: Option<PathBuf>,
    sysfs_root: Option<PathBuf>,
    proc_root: Option<PathBuf>,
    iscsi_initiator_file: Option<PathBuf>,
    tools: ToolPaths,
    deadlines: RawDeadlines,
}

/// The node settings after defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSettings {
    /// Names the array host this driver creates. Default: the kernel host name.
    pub node_name: String,
    pub log_file: PathBuf,
    pub log_level: log::LevelFilter,
    pub locks_dir: PathBuf,
    /// udev's by-id links (`wwn-0x…`).
    pub device_dir: PathBuf,
    /// device-mapper nodes (multipath maps named by WWID).
    pub mapper_dir: PathBuf,
    pub sysfs_root: PathBuf,
    /// Every process of the node (kubelet's own `/proc` unless it runs with a private PID
    /// namespace): whose mount namespaces still hold a volume.
    pub proc_root: PathBuf,
    pub iscsi_initiator_file: PathBuf,
    pub tools: ToolPaths,
    pub deadlines: Deadlines,
}

impl NodeSettings {
    pub fn defaults(host_name: &str) -> Self {
        Self {
            node_name: host_name.to_owned(),
            log_file: "/var/log/flashvol-flex.log".into(),
            log_level: log::LevelFilter::Info,
            locks_dir: "/run/flashvol-flex/locks".into(),
            device_dir: "/dev/disk/by-id".into(),
            mapper_dir: "/dev/mapper".into(),
            sysfs_root: "/sys".into(),
            proc_root: "/proc".into(),
            iscsi_initiator_file: "/etc/iscsi/initiatorname.iscsi".into(),
            tools: ToolPaths::default(),
            deadlines: Deadlines::default(),
        }
    }

    /// Parses the `"node"` section (absent means all defaults), then applies `FLASHVOL_FLEX_LOG`.
    pub fn parse(section: Option<&Value>, host_name: &str, env_log: Option<&str>) -> Result<Self> {
        let invalid = |e: String| FlexError::Settings(format!("settings \"node\" section: {e}"));
        let raw: RawNode = match section {
            None | Some(Value::Null) => RawNode::default(),
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| invalid(e.to_string()))?,
        };
        let mut s = Self::defaults(host_name);
        if let Some(name) = raw.node_name.filter(|n| !n.trim().is_empty()) {
            s.node_name = name.trim().to_owned();
        }
        if s.node_name.is_empty() {
            return Err(invalid(
                "nodeName is not set and the host name is unknown".into(),
            ));
        }
        let absolute = |key: &str, p: Option<PathBuf>, slot: &mut PathBuf| -> Result<()> {
            if let Some(p) = p {
                if !p.is_absolute() {
                    return Err(invalid(format!(
                        "{key}: {} is not an absolute path",
                        p.display()
                    )));
                }
                *slot = p;
            }
            Ok(())
        };
        absolute("logFile", raw.log_file, &mut s.log_file)?;
        absolute("locksDir", raw.locks_dir, &mut s.locks_dir)?;
        absolute("deviceDir", raw.device_dir, &mut s.device_dir)?;
        absolute("mapperDir", raw.mapper_dir, &mut s.mapper_dir)?;
        absolute("sysfsRoot", raw.sysfs_root, &mut s.sysfs_root)?;
        absolute("procRoot", raw.proc_root, &mut s.proc_root)?;
        absolute(
            "iscsiInitiatorFile",
            raw.iscsi_initiator_file,
            &mut s.iscsi_initiator_file,
        )?;
        if let Some(level) = raw.log_level {
            s.log_level = parse_level(&level).map_err(|e| invalid(format!("logLevel: {e}")))?;
        }
        if let Some(level) = env_log.filter(|l| !l.trim().is_empty()) {
            s.log_level = parse_level(level)
                .map_err(|e| FlexError::Settings(format!("environment {ENV_LOG}: {e}")))?;
        }
        s.tools = raw.tools;
        let d = raw.deadlines;
        let slots = [
            (
                "arrayCallSeconds",
                d.array_call_seconds,
                &mut s.deadlines.array_call,
            ),
            (
                "lockWaitSeconds",
                d.lock_wait_seconds,
                &mut s.deadlines.lock_wait,
            ),
            (
                "iscsiadmSeconds",
                d.iscsiadm_seconds,
                &mut s.deadlines.iscsiadm,
            ),
            (
                "deviceWaitSeconds",
                d.device_wait_seconds,
                &mut s.deadlines.device_wait,
            ),
            ("mkfsSeconds", d.mkfs_seconds, &mut s.deadlines.mkfs),
            ("mountSeconds", d.mount_seconds, &mut s.deadlines.mount),
        ];
        for (key, value, slot) in slots {
            if let Some(secs) = value {
                if !(0.1..=3600.0).contains(&secs) {
                    return Err(invalid(format!(
                        "deadlines.{key}: {secs} must be between 0.1 and 3600 seconds"
                    )));
                }
                *slot = Duration::from_secs_f64(secs);
            }
        }
        Ok(s)
    }
}

/// `error`, `warn`, `info`, `debug`, `trace` or `off`, as env_logger spells them.
pub fn parse_level(text: &str) -> std::result::Result<log::LevelFilter, String> {
    text.trim()
        .parse::<log::LevelFilter>()
        .map_err(|_| format!("{text:?} is not a log level (error, warn, info, debug, trace, off)"))
}

/// The settings file path: `FLASHVOL_FLEX_CONFIG`, else next to the executable.
pub fn settings_path(env_value: Option<String>, exe: Option<&Path>) -> PathBuf {
    if let Some(p) = env_value.filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    exe.and_then(Path::parent)
        .map(|dir| dir.join(SETTINGS_FILE_NAME))
        .unwrap_or_else(|| PathBuf::from(SETTINGS_FILE_NAME))
}

/// The kernel's host name, or empty when it cannot be read.
pub fn kernel_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn absent_section_means_documented_defaults() {
        let s = NodeSettings::parse(None, "node-1", None).expect("defaults");
        assert_eq!(s, NodeSettings::defaults("node-1"));
        assert_eq!(s.deadlines.array_call, Duration::from_secs(60));
        assert_eq!(s.device_dir, Path::new("/dev/disk/by-id"));
    }

    #[test]
    fn every_key_is_read() {
        let section = json!({
            "nodeName": "worker-7", "logFile": "/tmp/f.log", "logLevel": "debug",
            "locksDir": "/l", "deviceDir": "/d", "mapperDir": "/m", "sysfsRoot": "/s",
            "procRoot": "/p", "iscsiInitiatorFile": "/i",
            "tools": {"iscsiadm": "/fabric/iscsiadm", "mount": "/fabric/mount"},
            "deadlines": {"arrayCallSeconds": 2, "deviceWaitSeconds": 0.5, "mkfsSeconds": 9,
                          "mountSeconds": 3, "iscsiadmSeconds": 4, "lockWaitSeconds": 5}
        });
        let s = NodeSettings::parse(Some(&section), "ignored", None).expect("valid");
        assert_eq!(s.node_name, "worker-7");
        assert_eq!(s.log_level, log::LevelFilter::Debug);
        assert_eq!(s.proc_root, Path::new("/p"));
        assert_eq!(s.tools.iscsiadm, Path::new("/fabric/iscsiadm"));
        assert_eq!(s.tools.blkid, Path::new("blkid"));
        assert_eq!(s.deadlines.device_wait, Duration::from_millis(500));
        assert_eq!(s.deadlines.lock_wait, Duration::from_secs(5));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e = |v: Value| {
            NodeSettings::parse(Some(&v), "n", None)
                .expect_err("refused")
                .to_string()
        };
        assert!(e(json!({"deviceDirs": "/d"})).contains("deviceDirs"));
        assert!(e(json!({"tools": {"mkfs": "/x"}})).contains("mkfs"));
        assert!(e(json!({"sysfsRoot": "sys"})).contains("sysfsRoot"));
        assert!(e(json!({"deadlines": {"mountSeconds": 0}})).contains("mountSeconds"));
        assert!(e(json!({"logLevel": "loud"})).contains("loud"));
    }

    #[test]
    fn environment_overrides_the_log_level() {
        let s = NodeSettings::parse(Some(&json!({"logLevel": "warn"})), "n", Some("trace"))
            .expect("valid");
        assert_eq!(s.log_level, log::LevelFilter::Trace);
    }

    #[test]
    fn settings_file_sits_next_to_the_executable_unless_overridden() {
        let exe = Path::new("/usr/libexec/kubernetes/kubelet-plugins/volume/exec/pure~flex/flex");
        assert_eq!(
            settings_path(None, Some(exe)),
            Path::new(
                "/usr/libexec/kubernetes/kubelet-plugins/volume/exec/pure~flex/flashvol.json"
            )
        );
        assert_eq!(
            settings_path(Some("/t/s.json".into()), Some(exe)),
            Path::new("/t/s.json")
        );
    }
}
