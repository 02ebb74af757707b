//! `flashvol-flex doctor [--json] [--host-root DIR] [--config FILE] [--driver VENDOR/NAME]`:
//! the command line (flags win over the environment the DaemonSet sets), and the entry point.
//! Not a kubelet call-out: it writes a report for people (or `--json`) to stdout, and exits 0
//! only when no check FAILs.

// doctor's report is for the operator's terminal, not kubelet's pipe.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::host::{Host, HostRoot, KUBELET_ROOT};
use super::{Context, Limits};
use crate::install::options::{absolute_path, driver_dir_name};
use crate::node::settings::ENV_CONFIG;

/// Where the host's `/` is: the chart's DaemonSet sets it to [`KUBELET_ROOT`].
pub const ENV_HOST_ROOT: &str = "FLASHVOL_HOST_ROOT";
/// The driver's name (`pure/flex`), as for the installer.
pub const ENV_DRIVER: &str = "FLASHVOL_DRIVER";
/// The plugin dir the DaemonSet installs into, as a host path (chart `flexPath`), or `auto`.
pub const ENV_HOST_PLUGIN_DIR: &str = "FLASHVOL_HOST_PLUGIN_DIR";
pub const ENV_PLUGIN_DIR: &str = "FLASHVOL_PLUGIN_DIR";

pub fn usage() -> String {
    format!(
        "\
usage: flashvol-flex doctor [--json] [--host-root DIR] [--config FILE] [--driver VENDOR/NAME]

Checks whether this node can mount Pure volumes, and says why not: the settings file, the
driver in kubelet's plugin dir, the tools, iSCSI, multipath, kernel modules, each array
(reachable, TLS, REST version, token, this node's host), clock skew, the log and lock dirs.
Read-only. Exit status 0 when no check FAILs, 1 when one does, 2 for a usage error.

  --json             one JSON document (flexdriver/doctor.schema.json) instead of text
  --host-root DIR|{KUBELET_ROOT}
                     where the host's / is seen (env {ENV_HOST_ROOT}, default /); {KUBELET_ROOT}: the
                     running kubelet's / as /proc/<pid>/root (else init's), as the chart's
                     DaemonSet pod sees it (hostPID):
                       kubectl -n <namespace> exec ds/pure-flex -- /flashvol-flex doctor
  --config FILE      the settings file to check (env {ENV_CONFIG}; default: the installed
                     driver's flashvol.json)
  --driver NAME      driver name (env {ENV_DRIVER}, pure/flex)
"
    )
}

/// Parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub json: bool,
    pub host_root: HostRoot,
    pub config: Option<PathBuf>,
    pub driver: String,
    /// The DaemonSet's install dir (host path), from its environment.
    pub installer_dir: Option<PathBuf>,
}

/// Parses the arguments after `doctor`: `Ok(None)` asks for the usage; `Err` is the message for
/// stderr.
pub fn parse(
    args: &[String],
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<Options>, String> {
    let env = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    let mut json = false;
    let (mut host_root, mut config, mut driver) = (None, None, None);
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| rest.next().cloned())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name {
            "--json" if inline.is_none() => json = true,
            "--host-root" => host_root = Some(value()?),
            "--config" => config = Some(value()?),
            "--driver" => driver = Some(value()?),
            "-h" | "--help" => return Ok(None),
            _ => return Err(format!("unknown argument {arg:?}\n\n{}", usage())),
        }
    }
    let host_root = HostRoot::parse(
        "--host-root",
        &host_root
            .or_else(|| env(ENV_HOST_ROOT))
            .unwrap_or_else(|| "/".into()),
    )
    .map_err(|e| e.to_string())?;
    let driver = driver
        .or_else(|| env(ENV_DRIVER))
        .unwrap_or_else(|| "pure/flex".into());
    driver_dir_name(&driver).map_err(|e| e.to_string())?;
    // The installer's own rule: the host path of its --plugin-dir, unless that is auto.
    let installer_dir = env(ENV_HOST_PLUGIN_DIR)
        .or_else(|| env(ENV_PLUGIN_DIR))
        .filter(|d| d.trim() != "auto")
        .map(|d| absolute_path(ENV_HOST_PLUGIN_DIR, &d))
        .transpose()
        .map_err(|e| e.to_string())?;
    Ok(Some(Options {
        json,
        host_root,
        config: config.or_else(|| env(ENV_CONFIG)).map(PathBuf::from),
        driver,
        installer_dir,
    }))
}

/// The directory to read the host at; for [`HostRoot::Kubelet`], kubelet is looked for in this
/// process's `/proc` (the host's, with hostPID).
fn host_root(arg: &HostRoot) -> PathBuf {
    let proc = Path::new("/proc");
    let kubelet = match arg {
        HostRoot::At(_) => None,
        HostRoot::Kubelet => crate::install::plugin_dir::detect_kubelet_plugin_dir(proc)
            .ok()
            .flatten()
            .map(|k| k.pid),
    };
    arg.resolve(proc, kubelet)
}

/// `flashvol-flex doctor …` (`args` after the word `doctor`).
pub fn main(args: &[String]) -> ExitCode {
    let options = match parse(args, |k| std::env::var(k).ok()) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let ctx = Context {
        host: Host::new(host_root(&options.host_root)),
        driver: options.driver,
        config: options.config,
        installer_dir: options.installer_dir,
        exe: std::env::current_exe().ok(),
        limits: Limits::default(),
    };
    let report = super::run(&ctx);
    if options.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    fn env_from(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| {
            pairs
                .iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.clone())
        }
    }

    fn options(args: &[&str], env: impl Fn(&str) -> Option<String>) -> Options {
        parse(&strings(args), env)
            .expect("valid")
            .expect("not --help")
    }

    #[test]
    fn flags_win_over_the_daemonsets_environment() {
        let env = env_from(&[
            (ENV_HOST_ROOT, "kubelet"),
            (ENV_PLUGIN_DIR, "/flexmnt"),
            (ENV_HOST_PLUGIN_DIR, "/var/lib/kubelet/volumeplugins"),
        ]);
        let o = options(&["--json"], &env);
        assert!(o.json);
        assert_eq!(o.host_root, HostRoot::Kubelet);
        assert_eq!(
            o.installer_dir,
            Some(PathBuf::from("/var/lib/kubelet/volumeplugins"))
        );
        assert_eq!(o.driver, "pure/flex");
        let o = options(&["--host-root=/", "--config", "/x/f.json"], &env);
        assert_eq!(o.host_root, HostRoot::At(PathBuf::from("/")));
        assert_eq!(o.config, Some(PathBuf::from("/x/f.json")));
        let o = options(&[], env_from(&[(ENV_PLUGIN_DIR, "auto")]));
        assert_eq!(
            (o.host_root, o.installer_dir),
            (HostRoot::At(PathBuf::from("/")), None)
        );
    }

    #[test]
    fn bad_arguments_are_named() {
        let e = |args: &[&str]| parse(&strings(args), env_from(&[])).expect_err("refused");
        assert!(e(&["--frob"]).contains("--frob"));
        assert!(e(&["--host-root"]).contains("needs a value"));
        assert!(e(&["--host-root", "rel"]).contains("--host-root"));
        assert!(e(&["--driver", "flex"]).contains("vendor/name"));
        assert!(e(&["--json=yes"]).contains("--json"));
        assert_eq!(parse(&strings(&["--help"]), env_from(&[])), Ok(None));
    }
}
