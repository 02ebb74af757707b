//! The node installer's share of collecting leftover volumes (`flow::collect`): right after the
//! install, which after a reboot is when the DaemonSet pod starts again, and then every
//! [`COLLECT_INTERVAL`] while it waits for SIGTERM. A pod deleted while the driver was missing
//! from the plugin dir gets no `unmount` from kubelet, and on a node with no other flex volume no
//! later call-out would ever collect it.
//!
//! The work is the installed driver's own `collect` call, run as kubelet runs the driver: the
//! binary kubelet loads, in kubelet's mount namespace (entered through the host's `/proc`, which
//! the DaemonSet sees with hostPID), with a bare environment, for kubelet's `--root-dir`. So the
//! driver sees the node exactly as in its call-outs (its settings file, tools, devices, kubelet's
//! tree, every process), and logs to its own log file. Entering the namespace takes a process of
//! its own, single-threaded (setns(2) refuses a mount namespace change to threaded ones): the
//! installer starts itself again as `flashvol-flex enter-namespace <ns> <driver> collect ...`,
//! which enters and then execs the driver.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use nix::sched::{CloneFlags, setns};

use super::Logger;
use super::files::DRIVER_FILE;
use super::options::driver_dir_name;
use super::plugin_dir::{DetectedPluginDir, PluginDirChoice};
use crate::flow::collect::NOTHING_COLLECTED;

/// The installer's own helper command: enter a mount namespace, then exec a program.
pub const ENTER_NAMESPACE: &str = "enter-namespace";

/// The environment kubelet's call-outs typically get, and all the collecting driver gets.
const BARE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Time between two collections while the installer waits.
pub const COLLECT_INTERVAL: Duration = Duration::from_secs(60);

/// How to run the installed driver's `collect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectRun {
    /// kubelet's mount namespace, as the installer reaches it: `<proc>/<kubelet pid>/ns/mnt`.
    pub namespace: PathBuf,
    /// The installed driver, in kubelet's view.
    pub driver_path: PathBuf,
    pub kubelet_root: PathBuf,
    /// `vendor/driver`, as in the PVs.
    pub driver: String,
}

/// What to run, or why collection is left to the call-outs (no kubelet visible: hostPID off).
pub fn plan(
    kubelet: Option<&DetectedPluginDir>,
    choice: &PluginDirChoice,
    proc_root: &Path,
    driver: &str,
) -> Result<CollectRun, String> {
    let kubelet = kubelet.ok_or_else(|| {
        "no kubelet process visible (hostPID off?): leftover volumes are collected by later \
         call-outs only"
            .to_owned()
    })?;
    let plugin_dir = choice.host.as_deref().unwrap_or(&choice.local);
    let dir_name = driver_dir_name(driver).map_err(|e| e.to_string())?;
    Ok(CollectRun {
        namespace: proc_root.join(kubelet.pid.to_string()).join("ns/mnt"),
        driver_path: plugin_dir.join(dir_name).join(DRIVER_FILE),
        kubelet_root: kubelet.root_dir.clone(),
        driver: driver.to_owned(),
    })
}

/// Runs one collection and logs its outcome: what was collected, or why it failed. Never fails
/// the installer: collecting is a chore, installing is its job.
pub fn run(plan: &CollectRun, log: &Logger) {
    match run_driver(plan) {
        Ok(message) if message == NOTHING_COLLECTED => log.debug(&format!(
            "collect in {}: {message}",
            plan.kubelet_root.display()
        )),
        Ok(message) => log.info(&format!(
            "leftover volumes in {}: {message} (the driver's log has the details)",
            plan.kubelet_root.display()
        )),
        Err(e) => log.warn(&format!(
            "collecting leftover volumes with {} collect: {e}",
            plan.driver_path.display()
        )),
    }
}

fn run_driver(plan: &CollectRun) -> Result<String, String> {
    let output = Command::new("/proc/self/exe")
        .arg(ENTER_NAMESPACE)
        .arg(&plan.namespace)
        .arg(&plan.driver_path)
        .arg("collect")
        .arg(&plan.kubelet_root)
        .arg(&plan.driver)
        .env_clear()
        .env("PATH", BARE_PATH)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot start it: {e}"))?;
    let reply: serde_json::Value = serde_json::from_slice(&output.stdout).map_err(|e| {
        format!(
            "{} with no JSON reply ({e}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr).trim()
        )
    })?;
    let message = reply["message"].as_str().unwrap_or_default().to_owned();
    match reply["status"].as_str() {
        Some("Success") => Ok(message),
        _ => Err(message),
    }
}

/// `flashvol-flex enter-namespace <namespace file> <program> [args...]`: enters the mount
/// namespace and execs the program with this process's (bare) environment; returns only when
/// that fails.
pub fn enter_namespace_main(args: &[String]) -> ExitCode {
    let fail = |message: String| {
        eprintln!("flashvol-flex {ENTER_NAMESPACE}: {message}");
        ExitCode::FAILURE
    };
    let [namespace, program, rest @ ..] = args else {
        return fail("usage: enter-namespace <namespace file> <program> [args...]".into());
    };
    let entered = File::open(namespace)
        .map_err(|e| format!("cannot open {namespace}: {e}"))
        .and_then(|ns| {
            setns(&ns, CloneFlags::CLONE_NEWNS)
                .map_err(|e| format!("cannot enter the mount namespace {namespace}: {e}"))
        });
    if let Err(message) = entered {
        return fail(message);
    }
    let error = Command::new(program).args(rest).exec();
    fail(format!("cannot run {program}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::install::plugin_dir::PluginDirSource;

    fn kubelet() -> DetectedPluginDir {
        DetectedPluginDir {
            pid: 812,
            dir: "/var/lib/kubelet/volumeplugins".into(),
            source: PluginDirSource::Flag,
            root_dir: "/data/kubelet".into(),
        }
    }

    #[test]
    fn the_installed_driver_runs_in_kubelets_namespace_for_kubelets_root() {
        let choice = PluginDirChoice {
            local: "/flexmnt".into(),
            host: Some("/var/lib/kubelet/volumeplugins".into()),
            warning: None,
        };
        let plan =
            plan(Some(&kubelet()), &choice, Path::new("/proc"), "pure/flex").expect("planned");
        assert_eq!(
            plan,
            CollectRun {
                namespace: "/proc/812/ns/mnt".into(),
                driver_path: "/var/lib/kubelet/volumeplugins/pure~flex/flex".into(),
                kubelet_root: "/data/kubelet".into(),
                driver: "pure/flex".into(),
            }
        );
    }

    #[test]
    fn without_a_visible_kubelet_collection_is_left_to_the_call_outs() {
        let choice = PluginDirChoice {
            local: "/flexmnt".into(),
            host: None,
            warning: None,
        };
        let why = plan(None, &choice, Path::new("/proc"), "pure/flex").expect_err("no kubelet");
        assert!(why.contains("hostPID"), "{why}");
    }
}
