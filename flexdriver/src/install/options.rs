//! The installer's command line: `install`/`uninstall` flags, each with an environment fallback
//! (the chart sets the environment), parsed and validated before anything is touched.

use std::net::SocketAddr;
use std::path::{Component, PathBuf};

use flashvol_common::config::env as pure_env;
use flashvol_common::config::{Config, DEFAULT_CONFIG_PATH};

use super::InstallError;
use crate::doctor::host::{HostRoot, KUBELET_ROOT};

/// Service account files every pod gets, used to ask the API server about our DaemonSet.
const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The installer's `--help`. Built at run time so the config file's variable and default path
/// come from their one definition in `flashvol_common::config`.
pub(crate) fn usage() -> String {
    let discovery_conf = pure_env::DISCOVERY_CONF;
    format!(
        "\
usage: flashvol-flex install --plugin-dir DIR|auto [options]
       flashvol-flex uninstall --plugin-dir DIR|auto [options]

install copies this binary to <plugin dir>/<vendor~driver>/flex and writes the node settings
file flashvol.json next to it, then waits for SIGTERM (unless --once).

  --plugin-dir DIR|auto   where kubelet's plugin dir is reachable (env FLASHVOL_PLUGIN_DIR);
                          auto: use the dir the running kubelet was started with, under --host-root
  --host-plugin-dir DIR   the host path mounted at --plugin-dir, to compare with kubelet's own
                          (env FLASHVOL_HOST_PLUGIN_DIR; default: --plugin-dir is a host path)
  --host-root DIR|kubelet where the host's / is seen: for auto, and for the node checks
                          (flashvol-flex doctor) run after installing (env FLASHVOL_HOST_ROOT,
                          kubelet: the running kubelet's / as <proc>/<pid>/root, else init's)
  --proc DIR              procfs showing the host's processes (env FLASHVOL_PROC, /proc)
  --driver VENDOR/NAME    driver name (env FLASHVOL_DRIVER, pure/flex)
  --config FILE           array config, PSO's pure.json (env {discovery_conf}, {DEFAULT_CONFIG_PATH})
  --node-settings JSON    the driver's \"node\" section (env FLASHVOL_NODE_SETTINGS)
  --ca-file FILE          the arrays' CA (PEM; env FLASHVOL_CA_FILE, the chart's
                          flashvol.tls.caCert): copied next to the driver as ca.pem, and the
                          node settings' tls.caFile pointed at that copy
  --source FILE           the binary to install (default /proc/self/exe)
  --daemonset NAME        on SIGTERM, uninstall only when this DaemonSet in $POD_NAMESPACE is
                          deleted or being deleted (env FLASHVOL_DAEMONSET); without it SIGTERM
                          never uninstalls
  --namespace NS          namespace of that DaemonSet (env POD_NAMESPACE)
  --kube-api URL          API server (default from KUBERNETES_SERVICE_HOST/PORT)
  --service-account-dir DIR  token and ca.crt for it (env FLASHVOL_SERVICE_ACCOUNT_DIR,
                          /var/run/secrets/kubernetes.io/serviceaccount)
  --metrics-address ADDR  serve the node's call-out statistics (the file named by statsFile in
                          --node-settings) on http://ADDR/metrics while waiting
                          (env FLASHVOL_METRICS_ADDRESS, e.g. 0.0.0.0:9809; not with --once)
  --once                  install and exit instead of waiting for SIGTERM
  --debug                 log more
"
    )
}

/// Where the plugin dir is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginDirArg {
    /// A path in this process's view of the file system (the DaemonSet's hostPath mount).
    Path(PathBuf),
    /// Use the running kubelet's `--volume-plugin-dir`, reached under the host root.
    Auto,
}

/// Parsed command line of `install` and `uninstall`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub plugin_dir: PluginDirArg,
    pub host_plugin_dir: Option<PathBuf>,
    pub host_root: HostRoot,
    pub proc_root: PathBuf,
    pub driver: String,
    pub config: PathBuf,
    pub node_settings: Option<String>,
    /// The arrays' CA to install next to the driver.
    pub ca_file: Option<PathBuf>,
    pub source: PathBuf,
    pub daemonset: Option<String>,
    pub namespace: Option<String>,
    pub kube_api: Option<String>,
    /// Token and CA of the pod's service account.
    pub service_account_dir: PathBuf,
    /// Where to serve the call-out statistics while waiting for SIGTERM.
    pub metrics_address: Option<SocketAddr>,
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
        "--ca-file",
        "--source",
        "--daemonset",
        "--namespace",
        "--kube-api",
        "--service-account-dir",
        "--metrics-address",
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
            "-h" | "--help" => return Err(InstallError::Usage(usage())),
            _ => {
                let Some(flag) = valued.iter().find(|f| **f == name) else {
                    return Err(InstallError::Usage(format!(
                        "unknown argument {arg:?}\n\n{}",
                        usage()
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
                "--plugin-dir (or FLASHVOL_PLUGIN_DIR) is required\n\n{}",
                usage()
            )));
        }
        Some(v) if v.trim() == "auto" => PluginDirArg::Auto,
        Some(v) => PluginDirArg::Path(absolute_path("--plugin-dir", &v)?),
    };
    let host_plugin_dir = pick("--host-plugin-dir", "FLASHVOL_HOST_PLUGIN_DIR")
        .filter(|v| v.trim() != "auto")
        .map(|v| absolute_path("--host-plugin-dir", &v))
        .transpose()?;
    let host_root = HostRoot::parse(
        "--host-root",
        &pick("--host-root", "FLASHVOL_HOST_ROOT").unwrap_or_else(|| KUBELET_ROOT.into()),
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
    let metrics_address = pick("--metrics-address", "FLASHVOL_METRICS_ADDRESS")
        .map(|raw| {
            raw.trim().parse::<SocketAddr>().map_err(|_| {
                InstallError::Usage(format!(
                    "--metrics-address {raw:?} must be IP:PORT, e.g. 0.0.0.0:9809"
                ))
            })
        })
        .transpose()?;
    if metrics_address.is_some() && once {
        return Err(InstallError::Usage(
            "--metrics-address needs the installer to keep running: drop --once".into(),
        ));
    }
    Ok(Options {
        plugin_dir,
        host_plugin_dir,
        host_root,
        proc_root,
        driver,
        config,
        node_settings: pick("--node-settings", "FLASHVOL_NODE_SETTINGS"),
        ca_file: pick("--ca-file", "FLASHVOL_CA_FILE")
            .map(|v| absolute_path("--ca-file", &v))
            .transpose()?,
        source,
        daemonset: pick("--daemonset", "FLASHVOL_DAEMONSET"),
        namespace: pick("--namespace", "POD_NAMESPACE"),
        kube_api,
        service_account_dir: absolute_path(
            "--service-account-dir",
            &pick("--service-account-dir", "FLASHVOL_SERVICE_ACCOUNT_DIR")
                .unwrap_or_else(|| SERVICE_ACCOUNT_DIR.into()),
        )?,
        metrics_address,
        once,
        debug,
    })
}

/// An absolute path without `.` or `..`, or a usage error naming the flag.
pub(crate) fn absolute_path(flag: &str, raw: &str) -> Result<PathBuf, InstallError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::install::tests::{env_from, strings};
    use flashvol_common::config;

    #[test]
    fn flags_win_over_environment_and_defaults_follow_pso() {
        let env = env_from(&[
            ("FLASHVOL_PLUGIN_DIR", "/from-env"),
            ("FLASHVOL_DRIVER", "acme/blk"),
            (pure_env::DISCOVERY_CONF, "/etc/other/pure.json"),
            ("POD_NAMESPACE", "storage"),
            ("FLASHVOL_CA_FILE", "/etc/pure/ca.pem"),
        ]);
        let o =
            parse_options(&strings(&["--plugin-dir", "/flexmnt", "--once"]), &env).expect("valid");
        assert_eq!(o.plugin_dir, PluginDirArg::Path("/flexmnt".into()));
        assert_eq!(o.driver, "acme/blk");
        assert_eq!(o.config, PathBuf::from("/etc/other/pure.json"));
        assert_eq!(o.namespace.as_deref(), Some("storage"));
        assert_eq!(o.ca_file, Some(PathBuf::from("/etc/pure/ca.pem")));
        assert!(o.once && !o.debug);

        let o = parse_options(
            &strings(&["--plugin-dir=auto", "--driver=pure/flex", "--debug"]),
            env_from(&[]),
        )
        .expect("valid");
        assert_eq!(o.plugin_dir, PluginDirArg::Auto);
        assert_eq!(o.config, PathBuf::from(config::DEFAULT_CONFIG_PATH));
        assert_eq!(o.source, PathBuf::from("/proc/self/exe"));
        assert_eq!(o.host_root, HostRoot::Kubelet);
        assert!(o.debug && o.daemonset.is_none() && o.ca_file.is_none());
        assert_eq!(o.metrics_address, None);
        let o = parse_options(
            &strings(&["--plugin-dir=/x"]),
            env_from(&[("FLASHVOL_METRICS_ADDRESS", "0.0.0.0:9809")]),
        )
        .expect("valid");
        assert_eq!(
            o.metrics_address,
            Some("0.0.0.0:9809".parse().expect("addr"))
        );
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
            (&["--plugin-dir", "/x", "--ca-file", "ca.pem"], "--ca-file"),
            (
                &["--plugin-dir", "/x", "--kube-api", "ftp://x"],
                "--kube-api",
            ),
            (
                &["--plugin-dir", "/x", "--metrics-address", "9809"],
                "--metrics-address",
            ),
            (
                &[
                    "--plugin-dir",
                    "/x",
                    "--metrics-address=0.0.0.0:9809",
                    "--once",
                ],
                "drop --once",
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
}
