//! `flashvol-flex install` and `flashvol-flex uninstall`: the node installer.
//!
//! The chart's privileged DaemonSet runs the same static binary that kubelet later runs as the
//! driver. `install` puts it into `<plugin dir>/<vendor~driver>/flex` together with the node
//! settings file `flashvol.json`, then sleeps until SIGTERM. `uninstall` removes both.
//!
//! What this module guarantees:
//! - kubelet never runs a half-written driver: the binary is written as `.flex`, fsynced, made
//!   executable and renamed to `flex` (kubelet only runs the file named after the driver);
//! - nothing is rewritten when it is already identical, because every write in the plugin dir
//!   makes kubelet re-probe the driver;
//! - the settings file holds array credentials: it is created 0600 (never briefly wider) and
//!   written before the binary on a first install, so the first `init` already finds it;
//! - a broken `pure.json` or `PURE_*` value is refused before anything on the node changes;
//! - on SIGTERM the driver and its credentials are removed only when the DaemonSet itself is gone
//!   or being deleted. A rolling update, a node reboot or a deleted pod leaves them in place, so
//!   mounted volumes can always be unmounted (install/README.md explains the trade-off).
//!
//! Decisions (argument parsing, kubelet flag parsing, which dir to use, what the settings file
//! holds, whether SIGTERM means "uninstall") are pure functions; file, process and API I/O sit at
//! the edges.

// The installer runs as a container's main process: its log is the container's stderr, unlike
// the driver's call-outs, whose stdio belongs to kubelet.
#![allow(clippy::print_stderr)]

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use flashvol_common::config::{self, Config, ConfigError};
use flashvol_flexdriver::node::settings::NodeSettings;
use serde_json::{Map, Value};

/// Where kubelet looks for FlexVolume drivers when `--volume-plugin-dir` is not given.
pub const KUBELET_DEFAULT_PLUGIN_DIR: &str = "/usr/libexec/kubernetes/kubelet-plugins/volume/exec";

/// The driver executable, named after the driver as kubelet requires.
const DRIVER_FILE: &str = "flex";
/// Temporary name of the driver while it is written; kubelet ignores it.
const DRIVER_TEMP_FILE: &str = ".flex";
/// The node settings file the driver reads next to its executable.
pub const SETTINGS_FILE: &str = "flashvol.json";
const SETTINGS_TEMP_FILE: &str = ".flashvol.json";

/// Service account files every pod gets, used to ask the API server about our DaemonSet.
const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The API server check on SIGTERM must finish well inside the default 30 s grace period.
const API_TIMEOUT: Duration = Duration::from_secs(5);

/// What can go wrong while installing or uninstalling. Each message names the file or flag.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{0}")]
    Usage(String),
    #[error("refusing to install: {0}")]
    Config(#[from] ConfigError),
    #[error("refusing to install: {0}")]
    NodeSettings(String),
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("plugin dir: {0}")]
    PluginDir(String),
    #[error("waiting for SIGTERM: {0}")]
    Signal(nix::Error),
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> InstallError {
    let path = path.to_owned();
    move |source| InstallError::Io {
        action,
        path,
        source,
    }
}

const USAGE: &str = "\
usage: flashvol-flex install --plugin-dir DIR|auto [options]
       flashvol-flex uninstall --plugin-dir DIR|auto [options]

install copies this binary to <plugin dir>/<vendor~driver>/flex and writes the node settings
file flashvol.json next to it, then waits for SIGTERM (unless --once).

  --plugin-dir DIR|auto   where kubelet's plugin dir is reachable (env FLASHVOL_PLUGIN_DIR);
                          auto: use the dir the running kubelet was started with, under --host-root
  --host-plugin-dir DIR   the host path mounted at --plugin-dir, to compare with kubelet's own
                          (env FLASHVOL_HOST_PLUGIN_DIR; default: --plugin-dir is a host path)
  --host-root DIR         where the host's / is mounted, for auto (env FLASHVOL_HOST_ROOT, /host)
  --proc DIR              procfs showing the host's processes (env FLASHVOL_PROC, /proc)
  --driver VENDOR/NAME    driver name (env FLASHVOL_DRIVER, pure/flex)
  --config FILE           array config, PSO's pure.json (env PURE_DISCOVERY_CONF, /etc/pure/pure.json)
  --node-settings JSON    the driver's \"node\" section (env FLASHVOL_NODE_SETTINGS)
  --source FILE           the binary to install (default /proc/self/exe)
  --daemonset NAME        on SIGTERM, uninstall only when this DaemonSet in $POD_NAMESPACE is
                          deleted or being deleted (env FLASHVOL_DAEMONSET); without it SIGTERM
                          never uninstalls
  --namespace NS          namespace of that DaemonSet (env POD_NAMESPACE)
  --kube-api URL          API server (default from KUBERNETES_SERVICE_HOST/PORT)
  --service-account-dir DIR  token and ca.crt for it (env FLASHVOL_SERVICE_ACCOUNT_DIR,
                          /var/run/secrets/kubernetes.io/serviceaccount)
  --once                  install and exit instead of waiting for SIGTERM
  --debug                 log more
";

/// Where the plugin dir is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginDirArg {
    /// A path in this process's view of the file system (the DaemonSet's hostPath mount).
    Path(PathBuf),
    /// Use the running kubelet's `--volume-plugin-dir`, reached under `host_root`.
    Auto,
}

/// Parsed command line of `install` and `uninstall`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub plugin_dir: PluginDirArg,
    pub host_plugin_dir: Option<PathBuf>,
    pub host_root: PathBuf,
    pub proc_root: PathBuf,
    pub driver: String,
    pub config: PathBuf,
    pub node_settings: Option<String>,
    pub source: PathBuf,
    pub daemonset: Option<String>,
    pub namespace: Option<String>,
    pub kube_api: Option<String>,
    /// Token and CA of the pod's service account.
    pub service_account_dir: PathBuf,
    pub once: bool,
    pub debug: bool,
}

/// Parses the arguments after the `install`/`uninstall` word. Flags win over the environment.
pub fn parse_options(
    args: &[String],
    env: impl Fn(&str) -> Option<String>,
) -> Result<Options, InstallError> {
    let env = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    let mut flags: std::collections::BTreeMap<&'static str, String> = Default::default();
    let mut once = false;
    let mut debug = false;
    let valued = [
        "--plugin-dir",
        "--host-plugin-dir",
        "--host-root",
        "--proc",
        "--driver",
        "--config",
        "--node-settings",
        "--source",
        "--daemonset",
        "--namespace",
        "--kube-api",
        "--service-account-dir",
    ];
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        match name {
            "--once" | "--debug" if inline.is_none() => {
                *(if name == "--once" {
                    &mut once
                } else {
                    &mut debug
                }) = true;
            }
            "-h" | "--help" => return Err(InstallError::Usage(USAGE.to_owned())),
            _ => {
                let Some(flag) = valued.iter().find(|f| **f == name) else {
                    return Err(InstallError::Usage(format!(
                        "unknown argument {arg:?}\n\n{USAGE}"
                    )));
                };
                let value = match inline {
                    Some(v) => v,
                    None => rest
                        .next()
                        .cloned()
                        .ok_or_else(|| InstallError::Usage(format!("{flag} needs a value")))?,
                };
                flags.insert(flag, value);
            }
        }
    }
    let pick = |flag: &str, var: &str| flags.get(flag).cloned().or_else(|| env(var));

    let plugin_dir = match pick("--plugin-dir", "FLASHVOL_PLUGIN_DIR") {
        None => {
            return Err(InstallError::Usage(format!(
                "--plugin-dir (or FLASHVOL_PLUGIN_DIR) is required\n\n{USAGE}"
            )));
        }
        Some(v) if v.trim() == "auto" => PluginDirArg::Auto,
        Some(v) => PluginDirArg::Path(absolute_path("--plugin-dir", &v)?),
    };
    let host_plugin_dir = pick("--host-plugin-dir", "FLASHVOL_HOST_PLUGIN_DIR")
        .filter(|v| v.trim() != "auto")
        .map(|v| absolute_path("--host-plugin-dir", &v))
        .transpose()?;
    let host_root = absolute_path(
        "--host-root",
        &pick("--host-root", "FLASHVOL_HOST_ROOT").unwrap_or_else(|| "/host".into()),
    )?;
    let proc_root = absolute_path(
        "--proc",
        &pick("--proc", "FLASHVOL_PROC").unwrap_or_else(|| "/proc".into()),
    )?;
    let driver = pick("--driver", "FLASHVOL_DRIVER").unwrap_or_else(|| "pure/flex".into());
    driver_dir_name(&driver)?;
    let config = flags
        .get("--config")
        .map(PathBuf::from)
        .unwrap_or_else(|| Config::default_path(env));
    let source = PathBuf::from(
        flags
            .get("--source")
            .cloned()
            .unwrap_or_else(|| "/proc/self/exe".into()),
    );
    let kube_api = flags.get("--kube-api").cloned();
    if let Some(url) = kube_api
        .as_ref()
        .filter(|u| !(u.starts_with("https://") || u.starts_with("http://")))
    {
        return Err(InstallError::Usage(format!(
            "--kube-api {url:?} must start with https:// or http://"
        )));
    }
    Ok(Options {
        plugin_dir,
        host_plugin_dir,
        host_root,
        proc_root,
        driver,
        config,
        node_settings: pick("--node-settings", "FLASHVOL_NODE_SETTINGS"),
        source,
        daemonset: pick("--daemonset", "FLASHVOL_DAEMONSET"),
        namespace: pick("--namespace", "POD_NAMESPACE"),
        kube_api,
        service_account_dir: absolute_path(
            "--service-account-dir",
            &pick("--service-account-dir", "FLASHVOL_SERVICE_ACCOUNT_DIR")
                .unwrap_or_else(|| SERVICE_ACCOUNT_DIR.into()),
        )?,
        once,
        debug,
    })
}

fn absolute_path(flag: &str, raw: &str) -> Result<PathBuf, InstallError> {
    let path = PathBuf::from(raw.trim());
    let clean = path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if !clean {
        return Err(InstallError::Usage(format!(
            "{flag} {raw:?} must be an absolute path without '.' or '..'"
        )));
    }
    Ok(path)
}

/// `pure/flex` → `pure~flex`, the directory name kubelet expects for a driver.
pub fn driver_dir_name(driver: &str) -> Result<String, InstallError> {
    let ok_part = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !p.starts_with('.')
    };
    match driver.split_once('/') {
        Some((vendor, name)) if ok_part(vendor) && ok_part(name) => Ok(format!("{vendor}~{name}")),
        _ => Err(InstallError::Usage(format!(
            "driver name {driver:?} must be vendor/name (letters, digits, '-', '_', '.'), e.g. pure/flex"
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// Finding kubelet's plugin dir.

/// Where a kubelet's plugin dir setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginDirSource {
    Flag,
    ConfigFile(PathBuf),
    /// kubelet was given neither, so it uses [`KUBELET_DEFAULT_PLUGIN_DIR`].
    BuiltInDefault,
}

/// The plugin dir of the kubelet running on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectedPluginDir {
    pub pid: u32,
    pub dir: PathBuf,
    pub source: PluginDirSource,
}

/// What matters in a kubelet command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeletArgs {
    pub volume_plugin_dir: Option<String>,
    pub config_file: Option<String>,
}

/// Reads a command line (`/proc/<pid>/cmdline` split at NULs). `None` when it is not a kubelet:
/// `kubelet …`, `/usr/bin/kubelet …` and RKE1's `hyperkube kubelet …` are.
pub fn parse_kubelet_cmdline(argv: &[String]) -> Option<KubeletArgs> {
    let base = |s: &String| s.rsplit('/').next().unwrap_or(s).to_owned();
    let first = argv.first().map(base)?;
    let flags = match first.as_str() {
        "kubelet" => &argv[1..],
        "hyperkube" if argv.get(1).map(String::as_str) == Some("kubelet") => &argv[2..],
        _ => return None,
    };
    let mut out = KubeletArgs::default();
    let mut i = 0;
    while i < flags.len() {
        let arg = flags[i].as_str();
        // Go's flag package accepts -flag and --flag, with "=value" or the next argument.
        let stripped = arg.trim_start_matches('-');
        let (name, inline) = match stripped.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (stripped, None),
        };
        let slot = match name {
            "volume-plugin-dir" => Some(&mut out.volume_plugin_dir),
            "config" => Some(&mut out.config_file),
            _ => None,
        };
        if let Some(slot) = slot {
            let value = match inline {
                Some(v) => Some(v),
                None => {
                    i += 1;
                    flags.get(i).cloned()
                }
            };
            *slot = value.filter(|v| !v.is_empty());
        }
        i += 1;
    }
    Some(out)
}

/// `volumePluginDir` from a kubelet config file (YAML or JSON). A line scan, because the key is a
/// top-level scalar and pulling a YAML parser into the driver binary for it is not worth it.
pub fn plugin_dir_from_kubelet_config(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.trim().trim_end_matches(',');
        let rest = line
            .strip_prefix("volumePluginDir")
            .or_else(|| line.strip_prefix("\"volumePluginDir\""))?;
        let value = rest.trim_start().strip_prefix(':')?.trim();
        let value = value.split(" #").next().unwrap_or(value).trim();
        let value = value.trim_matches(|c| c == '"' || c == '\'');
        (!value.is_empty()).then(|| value.to_owned())
    })
}

/// Looks for a kubelet among the processes under `proc_root` (the host's, with hostPID).
/// `Ok(None)` when none is visible.
pub fn detect_kubelet_plugin_dir(
    proc_root: &Path,
) -> Result<Option<DetectedPluginDir>, InstallError> {
    let entries = fs::read_dir(proc_root).map_err(io_error("reading", proc_root))?;
    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let proc_dir = proc_root.join(pid.to_string());
        // Processes come and go while we look: an unreadable one is simply not a kubelet.
        let Ok(raw) = fs::read(proc_dir.join("cmdline")) else {
            continue;
        };
        let argv: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let Some(args) = parse_kubelet_cmdline(&argv) else {
            continue;
        };
        let detected = |dir: String, source| DetectedPluginDir {
            pid,
            dir: PathBuf::from(dir),
            source,
        };
        if let Some(dir) = args.volume_plugin_dir {
            return Ok(Some(detected(dir, PluginDirSource::Flag)));
        }
        if let Some(file) = args.config_file {
            // The path is in kubelet's view: it may run in a container (RKE1) or a chroot.
            let base = if file.starts_with('/') { "root" } else { "cwd" };
            let in_proc = proc_dir.join(base).join(file.trim_start_matches('/'));
            if let Some(dir) = fs::read_to_string(&in_proc)
                .ok()
                .as_deref()
                .and_then(plugin_dir_from_kubelet_config)
            {
                return Ok(Some(detected(
                    dir,
                    PluginDirSource::ConfigFile(PathBuf::from(file)),
                )));
            }
        }
        return Ok(Some(detected(
            KUBELET_DEFAULT_PLUGIN_DIR.to_owned(),
            PluginDirSource::BuiltInDefault,
        )));
    }
    Ok(None)
}

/// The dir to install into, and a warning to log loudly when the configuration and the running
/// kubelet disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginDirChoice {
    /// Path in this process's view.
    pub local: PathBuf,
    /// The same dir as kubelet sees it on the host, when known.
    pub host: Option<PathBuf>,
    pub warning: Option<String>,
}

fn same_dir(a: &Path, b: &Path) -> bool {
    a.components().eq(b.components())
}

/// Decides where to install. With a configured dir, kubelet's own dir only produces a warning
/// (the hostPath is fixed by the chart); with `auto`, kubelet's dir is used under `host_root`.
pub fn choose_plugin_dir(
    arg: &PluginDirArg,
    host_plugin_dir: Option<&Path>,
    host_root: &Path,
    detected: Option<&DetectedPluginDir>,
) -> Result<PluginDirChoice, InstallError> {
    match arg {
        PluginDirArg::Auto => {
            let d = detected.ok_or_else(|| {
                InstallError::PluginDir(
                    "plugin dir \"auto\" needs to see the kubelet process (run the DaemonSet with \
                     hostPID: true) and none was found; set flexPath to the kubelet's \
                     --volume-plugin-dir instead"
                        .into(),
                )
            })?;
            let relative = d.dir.strip_prefix("/").unwrap_or(&d.dir);
            Ok(PluginDirChoice {
                local: host_root.join(relative),
                host: Some(d.dir.clone()),
                warning: None,
            })
        }
        PluginDirArg::Path(local) => {
            let host = host_plugin_dir.unwrap_or(local).to_owned();
            let warning = detected.filter(|d| !same_dir(&d.dir, &host)).map(|d| {
                let how = match &d.source {
                    PluginDirSource::Flag => "--volume-plugin-dir".to_owned(),
                    PluginDirSource::ConfigFile(f) => {
                        format!("volumePluginDir in {}", f.display())
                    }
                    PluginDirSource::BuiltInDefault => "its built-in default".to_owned(),
                };
                format!(
                    "the kubelet on this node (pid {}) loads FlexVolume drivers from {} ({how}), \
                         but the driver is being installed into {}: kubelet will not find it and \
                         volumes will fail with \"no volume plugin matched\". Set the chart value \
                         flexPath to {} (or to auto).",
                    d.pid,
                    d.dir.display(),
                    host.display(),
                    d.dir.display()
                )
            });
            Ok(PluginDirChoice {
                local: local.clone(),
                host: Some(host),
                warning,
            })
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The node settings file.

/// The PSO chart's environment variables and where each lands in the `"flashvol"` section.
/// kubelet runs `flex` without the DaemonSet's environment, so they must be written down.
const ENV_TO_SETTINGS: &[(&str, &[&str])] = &[
    ("PURE_K8S_NAMESPACE", &["namePrefix"]),
    ("PURE_DEFAULT_BLOCK_FS_TYPE", &["block", "fsType"]),
    ("PURE_DEFAULT_BLOCK_FS_OPT", &["block", "mkfsOptions"]),
    ("PURE_DEFAULT_BLOCK_MNT_OPT", &["block", "mountOptions"]),
    ("PURE_FLASHARRAY_SAN_TYPE", &["block", "sanType"]),
    ("PURE_ISCSI_ALLOWED_CIDRS", &["block", "iscsiAllowedCidrs"]),
    (
        "PURE_ISCSI_LOGIN_TIMEOUT",
        &["block", "iscsiLoginTimeoutSeconds"],
    ),
    (
        "PURE_PREEMPT_RWO_ATTACHMENTS_DEFAULT",
        &["block", "preemptRwoAttachments"],
    ),
    (
        "PURE_DEFAULT_ENABLE_FB_NFS_SNAPSHOT",
        &["file", "snapshotDirectory"],
    ),
];

/// Converts one environment value to the JSON type its settings key takes.
/// The value was already validated by [`Config::load`]; this only changes its shape.
fn env_value_as_json(var: &str, raw: &str) -> Result<Value, String> {
    let raw = raw.trim();
    match var {
        "PURE_ISCSI_ALLOWED_CIDRS" => Ok(Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        )),
        "PURE_ISCSI_LOGIN_TIMEOUT" => raw
            .parse::<u64>()
            .map(Value::from)
            .map_err(|_| format!("{var}={raw:?} must be a whole number of seconds")),
        "PURE_PREEMPT_RWO_ATTACHMENTS_DEFAULT" | "PURE_DEFAULT_ENABLE_FB_NFS_SNAPSHOT" => {
            config::parse_bool(raw)
                .map(Value::Bool)
                .ok_or_else(|| format!("{var}={raw:?} must be true or false"))
        }
        _ => Ok(Value::String(raw.to_owned())),
    }
}

fn set_path(section: &mut Map<String, Value>, path: &[&str], value: Value) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("empty settings path")?;
    let mut at = section;
    for key in parents {
        let child = at
            .entry((*key).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        at = child
            .as_object_mut()
            .ok_or_else(|| format!("flashvol.{key} must be an object"))?;
    }
    at.insert((*last).to_owned(), value);
    Ok(())
}

/// Builds the node settings document: `pure.json` as mounted, with the `PURE_*` environment folded
/// into its `"flashvol"` section and `node_settings` (when given) as its `"node"` section.
///
/// The result is checked by parsing it back: it must give exactly the settings that the
/// DaemonSet itself sees (file plus environment), so the driver on the host behaves the same.
pub fn settings_document(
    config_path: &Path,
    pure_json: &str,
    node_settings: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<String, InstallError> {
    // Validate first with the same code the driver and the provisioner use.
    let mut expected = Config::parse(config_path, pure_json)?;
    expected.settings.apply_env(&env)?;

    let doc: Value = serde_json::from_str(pure_json).map_err(|source| ConfigError::Json {
        path: config_path.to_owned(),
        source,
    })?;
    let Value::Object(mut top) = doc else {
        return Err(InstallError::NodeSettings(format!(
            "{}: must be a JSON object",
            config_path.display()
        )));
    };
    // Keys match case-insensitively in the config; keep the user's spelling of the section.
    let key_of = |top: &Map<String, Value>, name: &str| {
        top.keys()
            .find(|k| k.eq_ignore_ascii_case(name))
            .cloned()
            .unwrap_or_else(|| name.to_owned())
    };
    let flashvol_key = key_of(&top, "flashvol");
    let mut section = match top.remove(&flashvol_key) {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(InstallError::NodeSettings(
                "the \"flashvol\" section of pure.json must be an object".into(),
            ));
        }
    };
    for (var, path) in ENV_TO_SETTINGS {
        if let Some(raw) = env(var).filter(|v| !v.trim().is_empty()) {
            let value = env_value_as_json(var, &raw).map_err(InstallError::NodeSettings)?;
            set_path(&mut section, path, value).map_err(InstallError::NodeSettings)?;
        }
    }
    if !section.is_empty() {
        top.insert(flashvol_key, Value::Object(section));
    }

    if let Some(raw) = node_settings.map(str::trim).filter(|s| !s.is_empty()) {
        let node: Value = serde_json::from_str(raw).map_err(|e| {
            InstallError::NodeSettings(format!("node settings are not valid JSON: {e}"))
        })?;
        match node {
            Value::Object(m) if m.is_empty() => {}
            Value::Object(_) => {
                let node_key = key_of(&top, "node");
                top.insert(node_key, node);
            }
            _ => {
                return Err(InstallError::NodeSettings(
                    "node settings must be a JSON object".into(),
                ));
            }
        }
    }

    // Array hosts are named after the Kubernetes node (the DaemonSet passes `spec.nodeName` as
    // NODE_NAME); the kernel host name, the driver's fallback, can differ from it.
    if let Some(node_name) = env("NODE_NAME")
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
    {
        let node_key = key_of(&top, "node");
        if let Value::Object(node) = top
            .entry(node_key)
            .or_insert_with(|| Value::Object(Map::new()))
        {
            if !node.keys().any(|k| k.eq_ignore_ascii_case("nodeName")) {
                node.insert("nodeName".to_owned(), Value::String(node_name));
            }
        }
    }

    // The driver refuses a bad "node" section on every call; better to refuse it here, once.
    if let Some(node) = top.iter().find(|(k, _)| k.eq_ignore_ascii_case("node")) {
        NodeSettings::parse(Some(node.1), "installer-check", None)
            .map_err(|e| InstallError::NodeSettings(e.to_string()))?;
    }

    let mut text = serde_json::to_string_pretty(&Value::Object(top))
        .map_err(|e| InstallError::NodeSettings(format!("cannot serialise settings: {e}")))?;
    text.push('\n');
    let written = Config::parse(Path::new(SETTINGS_FILE), &text)?;
    if written.settings != expected.settings || written.arrays != expected.arrays {
        return Err(InstallError::NodeSettings(
            "the node settings file would not reproduce the DaemonSet's settings (a flashvol bug; \
             please report it)"
                .into(),
        ));
    }
    Ok(text)
}

// ---------------------------------------------------------------------------------------------
// Files.

/// What [`put_file`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileChange {
    Unchanged,
    /// Same bytes, only the mode was wrong.
    ModeFixed,
    Written,
}

fn mode_of(meta: &fs::Metadata) -> u32 {
    meta.permissions().mode() & 0o7777
}

/// Makes `dir/name` hold `contents` with `mode`, through `dir/temp` + fsync + rename, unless it
/// already does. The temp file is created with `mode` from the start, so a 0600 file is never
/// readable by others, not even while being written.
pub fn put_file(
    dir: &Path,
    name: &str,
    temp: &str,
    contents: &[u8],
    mode: u32,
) -> Result<FileChange, InstallError> {
    let target = dir.join(name);
    let same_size = fs::symlink_metadata(&target)
        .ok()
        .filter(|m| m.file_type().is_file() && m.len() == contents.len() as u64);
    if let Some(meta) = same_size {
        let mut current = Vec::with_capacity(contents.len());
        File::open(&target)
            .and_then(|mut f| f.read_to_end(&mut current))
            .map_err(io_error("reading", &target))?;
        if current == contents {
            if mode_of(&meta) == mode {
                return Ok(FileChange::Unchanged);
            }
            fs::set_permissions(&target, fs::Permissions::from_mode(mode))
                .map_err(io_error("setting the mode of", &target))?;
            return Ok(FileChange::ModeFixed);
        }
    }
    let temp_path = dir.join(temp);
    // A stale temp file from a crash may have another mode; O_TRUNC would keep it.
    match fs::remove_file(&temp_path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error("removing", &temp_path)(e)),
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temp_path)
        .map_err(io_error("creating", &temp_path))?;
    file.write_all(contents)
        .map_err(io_error("writing", &temp_path))?;
    // The umask may have narrowed the mode given at creation; executables need exactly `mode`.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io_error("setting the mode of", &temp_path))?;
    file.sync_all().map_err(io_error("syncing", &temp_path))?;
    drop(file);
    fs::rename(&temp_path, &target).map_err(io_error("renaming into place", &target))?;
    sync_dir(dir)?;
    Ok(FileChange::Written)
}

fn sync_dir(dir: &Path) -> Result<(), InstallError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("syncing", dir))
}

/// What one install did, for the log and the tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallReport {
    pub driver_dir: PathBuf,
    pub settings: FileChange,
    pub binary: FileChange,
}

/// Installs into `plugin_dir` (this process's view): settings first, so the first `init` of a
/// fresh install already finds them, then the binary.
pub fn install_files(
    plugin_dir: &Path,
    driver: &str,
    binary: &[u8],
    settings: &str,
) -> Result<InstallReport, InstallError> {
    if !plugin_dir.is_dir() {
        return Err(InstallError::PluginDir(format!(
            "{} does not exist or is not a directory (is the hostPath mounted?)",
            plugin_dir.display()
        )));
    }
    let driver_dir = plugin_dir.join(driver_dir_name(driver)?);
    if !driver_dir.is_dir() {
        fs::create_dir(&driver_dir).map_err(io_error("creating", &driver_dir))?;
        fs::set_permissions(&driver_dir, fs::Permissions::from_mode(0o755))
            .map_err(io_error("setting the mode of", &driver_dir))?;
        sync_dir(plugin_dir)?;
    }
    let settings = put_file(
        &driver_dir,
        SETTINGS_FILE,
        SETTINGS_TEMP_FILE,
        settings.as_bytes(),
        0o600,
    )?;
    let binary = put_file(&driver_dir, DRIVER_FILE, DRIVER_TEMP_FILE, binary, 0o755)?;
    Ok(InstallReport {
        driver_dir,
        settings,
        binary,
    })
}

/// Removes the driver, its settings (credentials) and our temp files, then the driver dir when
/// nothing else is left in it. Returns the files removed. Missing files are fine: uninstall may
/// run twice.
pub fn uninstall_files(plugin_dir: &Path, driver: &str) -> Result<Vec<PathBuf>, InstallError> {
    let driver_dir = plugin_dir.join(driver_dir_name(driver)?);
    let mut removed = Vec::new();
    // The binary first: once it is gone kubelet stops calling the driver, then the credentials.
    for name in [
        DRIVER_FILE,
        DRIVER_TEMP_FILE,
        SETTINGS_FILE,
        SETTINGS_TEMP_FILE,
    ] {
        let path = driver_dir.join(name);
        match fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("removing", &path)(e)),
        }
    }
    match fs::remove_dir(&driver_dir) {
        Ok(()) => sync_dir(plugin_dir)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        // Something that is not ours is left (e.g. the driver's log or lock files): keep the dir.
        Err(_) if driver_dir.is_dir() => sync_dir(&driver_dir)?,
        Err(e) => return Err(io_error("removing", &driver_dir)(e)),
    }
    Ok(removed)
}

// ---------------------------------------------------------------------------------------------
// Is our DaemonSet being deleted?

/// What the API server said about the DaemonSet, turned into a decision. `Ok(true)`: it is gone
/// or has a deletionTimestamp, so this pod stops for good and must clean up the node.
pub fn daemonset_deleted(status: u16, body: &str) -> Result<bool, String> {
    match status {
        404 => Ok(true),
        200 => {
            let doc: Value = serde_json::from_str(body)
                .map_err(|e| format!("the DaemonSet reply is not JSON: {e}"))?;
            let meta = doc
                .get("metadata")
                .ok_or("the DaemonSet reply has no metadata")?;
            Ok(meta.get("deletionTimestamp").is_some_and(|t| !t.is_null()))
        }
        other => Err(format!(
            "the API server answered HTTP {other}: {}",
            body.chars().take(200).collect::<String>()
        )),
    }
}

/// Asks the API server about `namespace/name` with the pod's service account.
fn fetch_daemonset(
    api: &str,
    sa: &Path,
    namespace: &str,
    name: &str,
) -> Result<(u16, String), String> {
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Ok(pem) = fs::read(sa.join("ca.crt")) {
        let certs = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect::<Vec<_>>();
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(API_TIMEOUT))
        .http_status_as_error(false)
        .tls_config(tls.build())
        .build()
        .into();
    let url = format!(
        "{}/apis/apps/v1/namespaces/{namespace}/daemonsets/{name}",
        api.trim_end_matches('/')
    );
    let mut request = agent.get(&url);
    // Projected tokens rotate: read it now, not at start-up.
    if let Ok(token) = fs::read_to_string(sa.join("token")) {
        request = request.header("Authorization", format!("Bearer {}", token.trim()));
    }
    let mut response = request.call().map_err(|e| format!("GET {url}: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("GET {url}: reading the reply: {e}"))?;
    Ok((status, body))
}

fn in_cluster_api(env: impl Fn(&str) -> Option<String>) -> Option<String> {
    let host = env("KUBERNETES_SERVICE_HOST")?;
    let port = env("KUBERNETES_SERVICE_PORT").unwrap_or_else(|| "443".into());
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    Some(format!("https://{host}:{port}"))
}

/// On SIGTERM: should this pod remove the driver from the node? Any doubt (no DaemonSet name, API
/// unreachable) keeps it, because a missing driver strands mounted volumes while a leftover one
/// harms nothing and `flashvol-flex uninstall` removes it by hand.
fn should_uninstall_on_stop(options: &Options, log: &Logger) -> bool {
    let Some(name) = &options.daemonset else {
        log.info("no --daemonset given: leaving the driver installed");
        return false;
    };
    let Some(namespace) = &options.namespace else {
        log.warn("no namespace (POD_NAMESPACE) to look up the DaemonSet in: leaving the driver installed");
        return false;
    };
    let Some(api) = options
        .kube_api
        .clone()
        .or_else(|| in_cluster_api(|k| std::env::var(k).ok()))
    else {
        log.warn("no API server address: leaving the driver installed");
        return false;
    };
    let reply = fetch_daemonset(&api, &options.service_account_dir, namespace, name);
    match reply.and_then(|(s, b)| daemonset_deleted(s, &b)) {
        Ok(true) => {
            log.info(&format!(
                "DaemonSet {namespace}/{name} is deleted: removing the driver from this node"
            ));
            true
        }
        Ok(false) => {
            log.info(&format!(
                "DaemonSet {namespace}/{name} still exists (update, restart or node shutdown): \
                 leaving the driver installed"
            ));
            false
        }
        Err(e) => {
            log.warn(&format!(
                "cannot tell whether DaemonSet {namespace}/{name} is deleted ({e}): leaving the \
                 driver installed; run `flashvol-flex uninstall` on the node to remove it"
            ));
            false
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Entry points.

struct Logger {
    debug: bool,
}

impl Logger {
    fn line(&self, level: &str, message: &str) {
        eprintln!("flashvol-flex installer {level}: {message}");
    }
    fn info(&self, message: &str) {
        self.line("INFO", message);
    }
    fn warn(&self, message: &str) {
        self.line("WARNING", message);
    }
    fn debug(&self, message: &str) {
        if self.debug {
            self.line("DEBUG", message);
        }
    }
}

fn resolve_plugin_dir(options: &Options, log: &Logger) -> Result<PluginDirChoice, InstallError> {
    let detected = match detect_kubelet_plugin_dir(&options.proc_root) {
        Ok(d) => d,
        Err(e) => {
            log.debug(&format!("kubelet detection skipped: {e}"));
            None
        }
    };
    match &detected {
        Some(d) => log.info(&format!(
            "kubelet (pid {}) uses plugin dir {} ({:?})",
            d.pid,
            d.dir.display(),
            d.source
        )),
        None => log.info("no kubelet process visible (hostPID off?): plugin dir not checked"),
    }
    let choice = choose_plugin_dir(
        &options.plugin_dir,
        options.host_plugin_dir.as_deref(),
        &options.host_root,
        detected.as_ref(),
    )?;
    if let Some(w) = &choice.warning {
        // Loud on purpose: a wrong plugin dir is the most common flex install failure.
        for _ in 0..3 {
            log.warn(w);
        }
    }
    Ok(choice)
}

/// Blocks SIGTERM and SIGINT in this thread so they queue until [`wait_for_stop`] takes them,
/// even when they arrive during the install itself.
fn block_stop_signals() -> Result<nix::sys::signal::SigSet, InstallError> {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    set.thread_block().map_err(InstallError::Signal)?;
    Ok(set)
}

fn install(options: &Options, log: &Logger) -> Result<(), InstallError> {
    let stop_signals = if options.once {
        None
    } else {
        Some(block_stop_signals()?)
    };
    let env = |k: &str| std::env::var(k).ok();
    let pure_json = fs::read_to_string(&options.config).map_err(|source| ConfigError::Read {
        path: options.config.clone(),
        source,
    })?;
    let settings = settings_document(
        &options.config,
        &pure_json,
        options.node_settings.as_deref(),
        env,
    )?;
    let binary = fs::read(&options.source).map_err(io_error("reading", &options.source))?;
    let choice = resolve_plugin_dir(options, log)?;
    let report = install_files(&choice.local, &options.driver, &binary, &settings)?;
    let host_dir = choice.host.as_deref().unwrap_or(&choice.local);
    log.info(&format!(
        "driver {} in {}: binary {:?}, settings {:?} (kubelet sees {}/{})",
        options.driver,
        report.driver_dir.display(),
        report.binary,
        report.settings,
        host_dir.display(),
        driver_dir_name(&options.driver)?,
    ));
    let Some(signals) = stop_signals else {
        return Ok(());
    };
    let signal = signals.wait().map_err(InstallError::Signal)?;
    log.info(&format!("got {signal:?}"));
    if should_uninstall_on_stop(options, log) {
        let removed = uninstall_files(&choice.local, &options.driver)?;
        log.info(&format!("removed {removed:?}"));
    }
    Ok(())
}

fn uninstall(options: &Options, log: &Logger) -> Result<(), InstallError> {
    let choice = resolve_plugin_dir(options, log)?;
    let removed = uninstall_files(&choice.local, &options.driver)?;
    if removed.is_empty() {
        log.info("nothing to remove: the driver is not installed here");
    } else {
        log.info(&format!("removed {removed:?}"));
    }
    Ok(())
}

/// Runs `install`/`uninstall` when the process was started for them, before kubelet's stdio
/// discipline applies: `main` calls this first and returns its code when it is `Some`.
pub fn dispatch() -> Option<ExitCode> {
    // Lossy: a non-UTF-8 argument then fails as an unknown argument instead of panicking.
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match args.first().map(String::as_str) {
        Some("install" | "uninstall") => Some(main(&args)),
        _ => None,
    }
}

/// `flashvol-flex install …` / `flashvol-flex uninstall …`; `args` starts with the command word.
pub fn main(args: &[String]) -> ExitCode {
    let Some((command, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let options = match parse_options(rest, |k| std::env::var(k).ok()) {
        Ok(o) => o,
        Err(InstallError::Usage(message)) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("flashvol-flex {command}: {e}");
            return ExitCode::from(2);
        }
    };
    let log = Logger {
        debug: options.debug,
    };
    let result = match command.as_str() {
        "install" => install(&options, &log),
        "uninstall" => uninstall(&options, &log),
        other => Err(InstallError::Usage(format!(
            "unknown command {other:?}\n\n{USAGE}"
        ))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log.line("ERROR", &e.to_string());
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::os::unix::fs::MetadataExt;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    fn env_from(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const PURE_JSON: &str = r#"{"FlashArrays":[{"MgmtEndPoint":"10.0.0.5","APIToken":"fa-token","Labels":{"rack":"22"}}],
        "FlashBlades":[{"MgmtEndPoint":"10.0.0.6","APIToken":"T-fb-token","NfsEndPoint":"10.0.1.6"}]}"#;

    #[test]
    fn flags_win_over_environment_and_defaults_follow_pso() {
        let env = env_from(&[
            ("FLASHVOL_PLUGIN_DIR", "/from-env"),
            ("FLASHVOL_DRIVER", "acme/blk"),
            ("PURE_DISCOVERY_CONF", "/etc/other/pure.json"),
            ("POD_NAMESPACE", "storage"),
        ]);
        let o =
            parse_options(&strings(&["--plugin-dir", "/flexmnt", "--once"]), &env).expect("valid");
        assert_eq!(o.plugin_dir, PluginDirArg::Path("/flexmnt".into()));
        assert_eq!(o.driver, "acme/blk");
        assert_eq!(o.config, PathBuf::from("/etc/other/pure.json"));
        assert_eq!(o.namespace.as_deref(), Some("storage"));
        assert!(o.once && !o.debug);

        let o = parse_options(
            &strings(&["--plugin-dir=auto", "--driver=pure/flex", "--debug"]),
            env_from(&[]),
        )
        .expect("valid");
        assert_eq!(o.plugin_dir, PluginDirArg::Auto);
        assert_eq!(o.config, PathBuf::from(config::DEFAULT_CONFIG_PATH));
        assert_eq!(o.source, PathBuf::from("/proc/self/exe"));
        assert_eq!(o.host_root, PathBuf::from("/host"));
        assert!(o.debug && o.daemonset.is_none());
    }

    #[test]
    fn bad_arguments_are_refused_with_the_flag_named() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "--plugin-dir"),
            (&["--plugin-dir", "relative/dir"], "--plugin-dir"),
            (&["--plugin-dir", "/a/../b"], "--plugin-dir"),
            (&["--plugin-dir", "/x", "--driver", "flex"], "vendor/name"),
            (
                &["--plugin-dir", "/x", "--driver", "pure/../x"],
                "vendor/name",
            ),
            (&["--plugin-dir", "/x", "--frobnicate"], "--frobnicate"),
            (&["--plugin-dir"], "--plugin-dir needs a value"),
            (
                &["--plugin-dir", "/x", "--kube-api", "ftp://x"],
                "--kube-api",
            ),
        ];
        for (args, expected) in cases {
            let err = parse_options(&strings(args), env_from(&[]))
                .expect_err("must be refused")
                .to_string();
            assert!(err.contains(expected), "{args:?}: {err}");
        }
    }

    #[test]
    fn driver_names_map_to_kubelet_dir_names() {
        assert_eq!(driver_dir_name("pure/flex").expect("valid"), "pure~flex");
        assert_eq!(
            driver_dir_name("pure/flex-norelabel").expect("valid"),
            "pure~flex-norelabel"
        );
        for bad in [
            "",
            "pure",
            "/flex",
            "pure/",
            "a/b/c",
            "pure/.flex",
            "pu re/flex",
        ] {
            assert!(driver_dir_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn kubelet_command_lines_are_recognised_in_all_their_forms() {
        let parse = |args: &[&str]| parse_kubelet_cmdline(&strings(args));
        assert_eq!(
            parse(&[
                "/usr/bin/kubelet",
                "--v=2",
                "--volume-plugin-dir=/var/lib/kubelet/volumeplugins"
            ]),
            Some(KubeletArgs {
                volume_plugin_dir: Some("/var/lib/kubelet/volumeplugins".into()),
                config_file: None
            })
        );
        assert_eq!(
            parse(&[
                "hyperkube",
                "kubelet",
                "-volume-plugin-dir",
                "/opt/x",
                "--config",
                "/c.yaml"
            ]),
            Some(KubeletArgs {
                volume_plugin_dir: Some("/opt/x".into()),
                config_file: Some("/c.yaml".into())
            })
        );
        assert_eq!(parse(&["kubelet"]), Some(KubeletArgs::default()));
        assert_eq!(parse(&["kubectl", "--volume-plugin-dir=/x"]), None);
        assert_eq!(parse(&["kubelet-helper"]), None);
        assert_eq!(parse(&["hyperkube", "kube-proxy"]), None);
        assert_eq!(parse(&[]), None);
    }

    #[test]
    fn volume_plugin_dir_is_read_from_yaml_and_json_kubelet_configs() {
        let yaml = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
                    volumePluginDir: /etc/kubernetes/kubelet-plugins/volume/exec # OCP\n";
        assert_eq!(
            plugin_dir_from_kubelet_config(yaml).as_deref(),
            Some("/etc/kubernetes/kubelet-plugins/volume/exec")
        );
        let json = "{\n  \"kind\": \"KubeletConfiguration\",\n  \"volumePluginDir\": \"/var/lib/kubelet/volumeplugins\",\n}";
        assert_eq!(
            plugin_dir_from_kubelet_config(json).as_deref(),
            Some("/var/lib/kubelet/volumeplugins")
        );
        assert_eq!(
            plugin_dir_from_kubelet_config("kind: KubeletConfiguration\n"),
            None
        );
        assert_eq!(
            plugin_dir_from_kubelet_config("volumePluginDir: \"\"\n"),
            None
        );
    }

    fn fake_process(proc_root: &Path, pid: u32, argv: &[&str]) -> PathBuf {
        let dir = proc_root.join(pid.to_string());
        fs::create_dir_all(dir.join("root")).expect("mkdir");
        fs::write(dir.join("cmdline"), argv.join("\0") + "\0").expect("write cmdline");
        dir
    }

    #[test]
    fn detection_finds_the_kubelet_flag_config_file_or_default() {
        let proc = tempfile::tempdir().expect("tempdir");
        fs::create_dir(proc.path().join("self")).expect("mkdir");
        fake_process(proc.path(), 1, &["/sbin/init"]);
        assert_eq!(detect_kubelet_plugin_dir(proc.path()).expect("reads"), None);

        let kubelet = fake_process(
            proc.path(),
            812,
            &["/usr/bin/kubelet", "--config=/var/lib/kubelet/config.yaml"],
        );
        let found = detect_kubelet_plugin_dir(proc.path())
            .expect("reads")
            .expect("found");
        assert_eq!(found.pid, 812);
        assert_eq!(found.dir, PathBuf::from(KUBELET_DEFAULT_PLUGIN_DIR));
        assert_eq!(found.source, PluginDirSource::BuiltInDefault);

        // The config file is read through the kubelet's own root, as a containerized kubelet sees it.
        let config_dir = kubelet.join("root/var/lib/kubelet");
        fs::create_dir_all(&config_dir).expect("mkdir");
        fs::write(
            config_dir.join("config.yaml"),
            "volumePluginDir: /etc/kubernetes/volumeplugins\n",
        )
        .expect("write");
        let found = detect_kubelet_plugin_dir(proc.path())
            .expect("reads")
            .expect("found");
        assert_eq!(found.dir, PathBuf::from("/etc/kubernetes/volumeplugins"));
        assert_eq!(
            found.source,
            PluginDirSource::ConfigFile("/var/lib/kubelet/config.yaml".into())
        );

        fs::write(
            kubelet.join("cmdline"),
            "kubelet\0--volume-plugin-dir\0/var/lib/kubelet/volumeplugins\0--config=/var/lib/kubelet/config.yaml\0",
        )
        .expect("write");
        let found = detect_kubelet_plugin_dir(proc.path())
            .expect("reads")
            .expect("found");
        assert_eq!(found.dir, PathBuf::from("/var/lib/kubelet/volumeplugins"));
        assert_eq!(found.source, PluginDirSource::Flag);

        assert!(detect_kubelet_plugin_dir(&proc.path().join("missing")).is_err());
    }

    fn detected(dir: &str) -> DetectedPluginDir {
        DetectedPluginDir {
            pid: 99,
            dir: dir.into(),
            source: PluginDirSource::Flag,
        }
    }

    #[test]
    fn a_plugin_dir_that_differs_from_kubelets_gives_a_warning_naming_both() {
        let arg = PluginDirArg::Path("/flexmnt".into());
        let rke = detected("/var/lib/kubelet/volumeplugins");
        let choice = choose_plugin_dir(
            &arg,
            Some(Path::new(KUBELET_DEFAULT_PLUGIN_DIR)),
            Path::new("/host"),
            Some(&rke),
        )
        .expect("chosen");
        assert_eq!(choice.local, PathBuf::from("/flexmnt"));
        let warning = choice.warning.expect("a warning");
        assert!(
            warning.contains("/var/lib/kubelet/volumeplugins")
                && warning.contains(KUBELET_DEFAULT_PLUGIN_DIR)
                && warning.contains("flexPath"),
            "{warning}"
        );

        let same = choose_plugin_dir(
            &arg,
            Some(Path::new("/var/lib/kubelet/volumeplugins/")),
            Path::new("/host"),
            Some(&rke),
        )
        .expect("chosen");
        assert_eq!(same.warning, None, "a trailing slash is the same dir");
        let unknown = choose_plugin_dir(&arg, None, Path::new("/host"), None).expect("chosen");
        assert_eq!(unknown.warning, None);
        assert_eq!(unknown.host, Some(PathBuf::from("/flexmnt")));
    }

    #[test]
    fn auto_uses_kubelets_dir_under_the_host_root_and_needs_a_kubelet() {
        let choice = choose_plugin_dir(
            &PluginDirArg::Auto,
            None,
            Path::new("/host"),
            Some(&detected("/home/kubernetes/flexvolume")),
        )
        .expect("chosen");
        assert_eq!(
            choice.local,
            PathBuf::from("/host/home/kubernetes/flexvolume")
        );
        assert_eq!(
            choice.host,
            Some(PathBuf::from("/home/kubernetes/flexvolume"))
        );
        let err = choose_plugin_dir(&PluginDirArg::Auto, None, Path::new("/host"), None)
            .expect_err("no kubelet")
            .to_string();
        assert!(err.contains("hostPID"), "{err}");
    }

    fn pso_daemon_env() -> impl Fn(&str) -> Option<String> + use<> {
        env_from(&[
            ("PURE_FLASHARRAY_SAN_TYPE", "fc"),
            ("PURE_K8S_NAMESPACE", "prod"),
            ("PURE_DEFAULT_BLOCK_FS_TYPE", "ext4"),
            ("PURE_DEFAULT_BLOCK_FS_OPT", "-q -E nodiscard"),
            ("PURE_DEFAULT_BLOCK_MNT_OPT", "discard"),
            ("PURE_PREEMPT_RWO_ATTACHMENTS_DEFAULT", "false"),
            ("PURE_ISCSI_ALLOWED_CIDRS", "10.1.0.0/16, 10.2.0.1"),
            ("PURE_ISCSI_LOGIN_TIMEOUT", "35"),
            ("PURE_DEFAULT_ENABLE_FB_NFS_SNAPSHOT", "true"),
        ])
    }

    #[test]
    fn the_settings_file_carries_the_daemonsets_pso_environment() {
        let path = Path::new("/etc/pure/pure.json");
        let env = pso_daemon_env();
        let text = settings_document(path, PURE_JSON, None, &env).expect("valid");
        // kubelet runs the driver without any of those variables: the file alone must suffice.
        let written = Config::parse(Path::new("flashvol.json"), &text).expect("parses");
        let mut expected = Config::parse(path, PURE_JSON).expect("parses");
        expected.settings.apply_env(&env).expect("valid env");
        assert_eq!(written.settings, expected.settings);
        assert_eq!(written.arrays, expected.arrays);
        assert_eq!(written.settings.name_prefix, "prod");
        assert_eq!(written.settings.block.iscsi_allowed_cidrs.len(), 2);
        assert!(written.settings.file.snapshot_directory);
        assert_eq!(written.node, None);
    }

    #[test]
    fn environment_overrides_the_flashvol_section_and_keeps_its_other_keys() {
        let pure_json = r#"{"FlashArrays":[{"MgmtEndPoint":"a1","APIToken":"t"}],
            "Flashvol":{"namePrefix":"old","tls":{"insecureSkipVerify":true},"block":{"fsType":"xfs"}}}"#;
        let env = env_from(&[
            ("PURE_K8S_NAMESPACE", "new"),
            ("PURE_DEFAULT_BLOCK_FS_TYPE", "ext3"),
        ]);
        let text = settings_document(Path::new("pure.json"), pure_json, None, env).expect("valid");
        let written = Config::parse(Path::new("flashvol.json"), &text).expect("parses");
        assert_eq!(written.settings.name_prefix, "new");
        assert_eq!(written.settings.block.fs_type, config::FsType::Ext3);
        assert!(written.settings.client.insecure_skip_verify);
        assert!(
            !text.contains("\"flashvol\""),
            "the user's key spelling is kept: {text}"
        );
    }

    #[test]
    fn the_kubernetes_node_name_names_the_array_host_unless_settings_say_otherwise() {
        let path = Path::new("pure.json");
        let node_of = |node_settings: Option<&str>| {
            let text = settings_document(
                path,
                PURE_JSON,
                node_settings,
                env_from(&[("NODE_NAME", "worker-7")]),
            )
            .expect("valid");
            Config::parse(path, &text).expect("parses").node
        };
        assert_eq!(
            node_of(None),
            Some(serde_json::json!({"nodeName": "worker-7"}))
        );
        assert_eq!(
            node_of(Some(r#"{"nodeName":"explicit"}"#)),
            Some(serde_json::json!({"nodeName": "explicit"}))
        );
    }

    #[test]
    fn node_settings_become_the_node_section_and_must_be_an_object() {
        let path = Path::new("pure.json");
        let text = settings_document(
            path,
            PURE_JSON,
            Some(r#"{"tools":{"iscsiadm":"/usr/sbin/iscsiadm"}}"#),
            env_from(&[]),
        )
        .expect("valid");
        let written = Config::parse(Path::new("flashvol.json"), &text).expect("parses");
        assert_eq!(
            written.node,
            Some(serde_json::json!({"tools": {"iscsiadm": "/usr/sbin/iscsiadm"}}))
        );
        for (raw, node) in [("", None), ("{}", None), ("  ", None)] {
            let text = settings_document(path, PURE_JSON, Some(raw), env_from(&[])).expect("valid");
            assert_eq!(
                Config::parse(path, &text).expect("parses").node,
                node,
                "{raw:?}"
            );
        }
        let err = settings_document(
            path,
            PURE_JSON,
            Some(r#"{"logFile":"relative.log"}"#),
            env_from(&[]),
        )
        .expect_err("refused")
        .to_string();
        assert!(
            err.contains("logFile"),
            "the driver's own check applies: {err}"
        );
        for bad in ["[1]", "\"x\"", "{"] {
            let err = settings_document(path, PURE_JSON, Some(bad), env_from(&[]))
                .expect_err("refused")
                .to_string();
            assert!(err.contains("node settings"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_broken_config_or_environment_is_refused_with_a_clear_message() {
        let path = Path::new("/etc/pure/pure.json");
        let err = settings_document(
            path,
            r#"{"FlashArrays":[{"MgmtEndPoint":"a1"}]}"#,
            None,
            env_from(&[]),
        )
        .expect_err("refused")
        .to_string();
        assert!(
            err.starts_with("refusing to install")
                && err.contains("/etc/pure/pure.json")
                && err.contains("FlashArrays[0].APIToken"),
            "{err}"
        );
        let err = settings_document(path, "not json", None, env_from(&[]))
            .expect_err("refused")
            .to_string();
        assert!(err.contains("not valid JSON"), "{err}");
        let err = settings_document(
            path,
            PURE_JSON,
            None,
            env_from(&[("PURE_FLASHARRAY_SAN_TYPE", "nvme")]),
        )
        .expect_err("refused")
        .to_string();
        assert!(
            err.contains("PURE_FLASHARRAY_SAN_TYPE") && err.contains("nvme"),
            "{err}"
        );
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("stat").permissions().mode() & 0o7777
    }

    #[test]
    fn first_install_writes_root_only_settings_and_an_executable_driver() {
        let plugins = tempfile::tempdir().expect("tempdir");
        let report =
            install_files(plugins.path(), "pure/flex", b"binary-v1", "{}\n").expect("installs");
        let dir = plugins.path().join("pure~flex");
        assert_eq!(report.driver_dir, dir);
        assert_eq!(
            (report.binary, report.settings),
            (FileChange::Written, FileChange::Written)
        );
        assert_eq!(fs::read(dir.join("flex")).expect("read"), b"binary-v1");
        assert_eq!(mode(&dir.join("flex")), 0o755);
        assert_eq!(mode(&dir.join("flashvol.json")), 0o600);
        assert_eq!(mode(&dir), 0o755);
        let mut names: Vec<String> = fs::read_dir(&dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["flashvol.json", "flex"],
            "no temp file is left behind"
        );
    }

    #[test]
    fn reinstalling_identical_files_touches_nothing() {
        let plugins = tempfile::tempdir().expect("tempdir");
        install_files(plugins.path(), "pure/flex", b"binary-v1", "{}\n").expect("installs");
        let flex = plugins.path().join("pure~flex/flex");
        let before = fs::metadata(&flex).expect("stat");
        let report =
            install_files(plugins.path(), "pure/flex", b"binary-v1", "{}\n").expect("installs");
        assert_eq!(
            (report.binary, report.settings),
            (FileChange::Unchanged, FileChange::Unchanged)
        );
        let after = fs::metadata(&flex).expect("stat");
        assert_eq!(
            (before.ino(), before.mtime_nsec()),
            (after.ino(), after.mtime_nsec())
        );
    }

    #[test]
    fn an_upgrade_replaces_the_driver_by_rename_and_fixes_modes() {
        let plugins = tempfile::tempdir().expect("tempdir");
        install_files(plugins.path(), "pure/flex", b"binary-v1", "{}\n").expect("installs");
        let dir = plugins.path().join("pure~flex");
        // A process still running v1 keeps its file: the new one is a new inode.
        let old = File::open(dir.join("flex")).expect("open");
        let old_ino = old.metadata().expect("stat").ino();
        // A crash left a half-written, world-writable temp file; someone loosened the settings.
        fs::write(dir.join(".flex"), b"half").expect("write");
        fs::set_permissions(dir.join(".flex"), fs::Permissions::from_mode(0o777)).expect("chmod");
        fs::set_permissions(dir.join("flashvol.json"), fs::Permissions::from_mode(0o644))
            .expect("chmod");

        let report =
            install_files(plugins.path(), "pure/flex", b"binary-v2", "{}\n").expect("installs");
        assert_eq!(
            (report.binary, report.settings),
            (FileChange::Written, FileChange::ModeFixed)
        );
        assert_eq!(fs::read(dir.join("flex")).expect("read"), b"binary-v2");
        assert_ne!(fs::metadata(dir.join("flex")).expect("stat").ino(), old_ino);
        assert_eq!(mode(&dir.join("flex")), 0o755);
        assert_eq!(mode(&dir.join("flashvol.json")), 0o600);
        assert!(!dir.join(".flex").exists());
    }

    #[test]
    fn install_needs_an_existing_plugin_dir() {
        let plugins = tempfile::tempdir().expect("tempdir");
        let err = install_files(&plugins.path().join("nope"), "pure/flex", b"b", "{}")
            .expect_err("refused")
            .to_string();
        assert!(err.contains("hostPath"), "{err}");
    }

    #[test]
    fn uninstall_removes_driver_and_credentials_and_can_run_twice() {
        let plugins = tempfile::tempdir().expect("tempdir");
        install_files(plugins.path(), "pure/flex", b"binary", "{\"secret\":1}\n")
            .expect("installs");
        let removed = uninstall_files(plugins.path(), "pure/flex").expect("uninstalls");
        assert_eq!(removed.len(), 2);
        assert!(!plugins.path().join("pure~flex").exists());
        assert_eq!(
            uninstall_files(plugins.path(), "pure/flex").expect("again"),
            Vec::<PathBuf>::new()
        );

        install_files(plugins.path(), "pure/flex", b"binary", "{}\n").expect("installs");
        fs::write(plugins.path().join("pure~flex/not-ours.log"), b"x").expect("write");
        uninstall_files(plugins.path(), "pure/flex").expect("uninstalls");
        let dir = plugins.path().join("pure~flex");
        assert!(dir.join("not-ours.log").exists() && !dir.join("flex").exists());
        assert!(!dir.join("flashvol.json").exists());
    }

    #[test]
    fn only_a_gone_or_deleting_daemonset_means_uninstall() {
        assert_eq!(daemonset_deleted(404, ""), Ok(true));
        assert_eq!(
            daemonset_deleted(
                200,
                r#"{"metadata":{"name":"pure-flex","deletionTimestamp":"2026-01-01T00:00:00Z"}}"#
            ),
            Ok(true)
        );
        assert_eq!(
            daemonset_deleted(200, r#"{"metadata":{"name":"pure-flex"}}"#),
            Ok(false)
        );
        assert_eq!(
            daemonset_deleted(200, r#"{"metadata":{"deletionTimestamp":null}}"#),
            Ok(false)
        );
        assert!(daemonset_deleted(403, "forbidden").is_err());
        assert!(daemonset_deleted(500, "").is_err());
        assert!(daemonset_deleted(200, "<html>").is_err());
        assert!(daemonset_deleted(200, "{}").is_err());
    }

    /// Serves one canned HTTP reply and returns the request line it got.
    fn one_shot_api(status: u16, body: &'static str) -> (String, std::thread::JoinHandle<String>) {
        use std::io::{BufRead, BufReader};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let handle = std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            reader.read_line(&mut request_line).expect("read");
            let mut line = String::new();
            while reader.read_line(&mut line).expect("read") > 2 {
                line.clear();
            }
            let mut stream = stream;
            write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .expect("write");
            request_line
        });
        (url, handle)
    }

    fn options_for_api(api: Option<String>) -> Options {
        let mut o = parse_options(&strings(&["--plugin-dir", "/x"]), env_from(&[])).expect("valid");
        o.daemonset = Some("pure-flex".into());
        o.namespace = Some("pure".into());
        o.kube_api = api;
        o
    }

    #[test]
    fn sigterm_uninstalls_only_after_the_api_server_says_the_daemonset_is_gone() {
        let log = Logger { debug: false };
        let (url, server) = one_shot_api(404, r#"{"kind":"Status","code":404}"#);
        assert!(should_uninstall_on_stop(&options_for_api(Some(url)), &log));
        let request = server.join().expect("server");
        assert!(
            request.starts_with("GET /apis/apps/v1/namespaces/pure/daemonsets/pure-flex "),
            "{request}"
        );

        let (url, server) = one_shot_api(200, r#"{"metadata":{"name":"pure-flex"}}"#);
        assert!(!should_uninstall_on_stop(&options_for_api(Some(url)), &log));
        server.join().expect("server");

        let (url, server) = one_shot_api(403, r#"{"kind":"Status","code":403}"#);
        assert!(
            !should_uninstall_on_stop(&options_for_api(Some(url)), &log),
            "doubt keeps the driver"
        );
        server.join().expect("server");

        // Nothing listens on a port we just closed: unreachable keeps the driver too.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", closed.local_addr().expect("addr"));
        drop(closed);
        assert!(!should_uninstall_on_stop(&options_for_api(Some(url)), &log));

        let mut no_name = options_for_api(None);
        no_name.daemonset = None;
        assert!(!should_uninstall_on_stop(&no_name, &log));
    }

    #[test]
    fn install_once_puts_binary_and_settings_in_place_from_the_mounted_secret() {
        let work = tempfile::tempdir().expect("tempdir");
        let plugins = work.path().join("plugins");
        fs::create_dir(&plugins).expect("mkdir");
        let source = work.path().join("flashvol-flex");
        fs::write(&source, b"the-static-binary").expect("write");
        let config = work.path().join("pure.json");
        fs::write(&config, PURE_JSON).expect("write");
        let proc = work.path().join("proc");
        fs::create_dir(&proc).expect("mkdir");
        let args = strings(&[
            "--plugin-dir",
            plugins.to_str().expect("utf-8"),
            "--config",
            config.to_str().expect("utf-8"),
            "--source",
            source.to_str().expect("utf-8"),
            "--proc",
            proc.to_str().expect("utf-8"),
            "--node-settings",
            r#"{"logFile":"/var/log/flashvol-flex.log"}"#,
            "--once",
        ]);
        let options = parse_options(&args, env_from(&[])).expect("valid");
        install(&options, &Logger { debug: true }).expect("installs");
        let dir = plugins.join("pure~flex");
        assert_eq!(
            fs::read(dir.join("flex")).expect("read"),
            b"the-static-binary"
        );
        let written = Config::load(&dir.join("flashvol.json"), |_| None).expect("loads");
        assert_eq!(
            written.arrays.flash_arrays[0].api_token.expose(),
            "fa-token"
        );
        assert!(written.node.is_some());

        fs::write(
            &config,
            r#"{"FlashArrays":[{"MgmtEndPoint":"a1","APIToken":"t","Lables":{}}]}"#,
        )
        .expect("write");
        fs::write(&source, b"a-newer-binary").expect("write");
        let err = install(&options, &Logger { debug: false })
            .expect_err("refused")
            .to_string();
        assert!(err.contains("Lables"), "{err}");
        assert_eq!(
            fs::read(dir.join("flex")).expect("read"),
            b"the-static-binary",
            "a broken config changes nothing on the node"
        );
    }
}
