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
//! - once installed, `doctor`'s checks run in the background and their WARN and FAIL lines go to
//!   the log, so a node that cannot mount says so before the first volume fails; they never
//!   block or fail the install;
//! - on SIGTERM the driver and its credentials are removed only when the DaemonSet itself is gone
//!   or being deleted. A rolling update, a node reboot or a deleted pod leaves them in place, so
//!   mounted volumes can always be unmounted (install/README.md explains the trade-off).
//!
//! Decisions (argument parsing, kubelet flag parsing, which dir to use, what the settings file
//! holds, whether SIGTERM means "uninstall") are pure functions; file, process and API I/O sit at
//! the edges.
//!
//! This module holds the entry points, the installer's log and its signal handling; the steps
//! live in [`options`] (the command line), [`settings_file`] (what `flashvol.json` holds),
//! [`plugin_dir`] (where kubelet looks for drivers), [`files`] (atomic, mode-exact writes),
//! [`daemonset`] (whether SIGTERM means uninstall), [`collect`] (leftover volumes collected at
//! start and periodically) and [`metrics`] (the node's call-out statistics on `/metrics` while
//! the installer waits).

// The installer runs as a container's main process: its log is the container's stderr, unlike
// the driver's call-outs, whose stdio belongs to kubelet.
#![allow(clippy::print_stderr)]

pub mod collect;
pub mod daemonset;
pub mod files;
pub mod metrics;
pub mod options;
pub mod plugin_dir;
pub mod settings_file;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use flashvol_common::config::ConfigError;

use crate::doctor;
use crate::node::settings::SETTINGS_FILE_NAME;
use daemonset::should_uninstall_on_stop;
use files::{install_files, uninstall_files};
use options::{Options, driver_dir_name, parse_options, usage};
use plugin_dir::{
    DetectedPluginDir, PluginDirChoice, choose_plugin_dir, detect_kubelet_plugin_dir,
};
use settings_file::settings_document;

/// The most the checks run after installing may take (each of them has its own, shorter limit).
const DOCTOR_LIMIT: Duration = Duration::from_secs(60);

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

pub(crate) fn io_error(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> InstallError {
    let path = path.to_owned();
    move |source| InstallError::Io {
        action,
        path,
        source,
    }
}

/// The installer's log: one line per event on stderr, the container's log.
pub struct Logger {
    pub(crate) debug: bool,
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

/// Where the installer finds things on the node, decided once kubelet has been looked for.
struct Resolved {
    choice: PluginDirChoice,
    /// The kubelet seen running (when hostPID shows it).
    kubelet: Option<DetectedPluginDir>,
    /// The host's `/` in this process's view (`--host-root`, resolved).
    host_root: PathBuf,
}

/// The plugin dir to use, the kubelet seen running and the host's `/`.
fn resolve_plugin_dir(options: &Options, log: &Logger) -> Result<Resolved, InstallError> {
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
    let host_root = options
        .host_root
        .resolve(&options.proc_root, detected.as_ref().map(|d| d.pid));
    let choice = choose_plugin_dir(
        &options.plugin_dir,
        options.host_plugin_dir.as_deref(),
        &host_root,
        detected.as_ref(),
    )?;
    if let Some(w) = &choice.warning {
        // Loud on purpose: a wrong plugin dir is the most common flex install failure.
        for _ in 0..3 {
            log.warn(w);
        }
    }
    Ok(Resolved {
        choice,
        kubelet: detected,
        host_root,
    })
}

/// Starts `doctor`'s checks in the background, so a node with a broken prerequisite says so in
/// this pod's log before the first volume fails. Their WARN and FAIL lines are logged as
/// warnings; they never block or fail the install. Needs the host's `/` at `--host-root`.
fn start_doctor(options: &Options, resolved: &Resolved, log: &Logger) -> Option<Receiver<()>> {
    let Resolved {
        choice, host_root, ..
    } = resolved;
    if !host_root.join("proc").is_dir() {
        log.info(&format!(
            "node checks skipped: the host's / is not visible at {} (--host-root)",
            host_root.display()
        ));
        return None;
    }
    let driver_dir = choice.local.join(driver_dir_name(&options.driver).ok()?);
    let ctx = doctor::Context {
        host: doctor::host::Host::new(host_root),
        driver: options.driver.clone(),
        config: Some(driver_dir.join(SETTINGS_FILE_NAME)),
        installer_dir: choice.host.clone(),
        exe: Some(options.source.clone()),
        limits: doctor::Limits::default(),
    };
    let debug = log.debug;
    Some(doctor::run_in_background(
        ctx,
        DOCTOR_LIMIT,
        move |line| Logger { debug }.warn(line),
        move |line| Logger { debug }.info(line),
    ))
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
    let ca = options.ca_file.as_deref().map(read_ca).transpose()?;
    let binary = fs::read(&options.source).map_err(io_error("reading", &options.source))?;
    let resolved = resolve_plugin_dir(options, log)?;
    let Resolved {
        choice, kubelet, ..
    } = &resolved;
    let host_dir = choice.host.as_deref().unwrap_or(&choice.local);
    let driver_dir = host_dir.join(driver_dir_name(&options.driver)?);
    let ca_on_host = ca.as_ref().map(|_| driver_dir.join(files::CA_FILE));
    let settings = settings_document(
        &options.config,
        &pure_json,
        options.node_settings.as_deref(),
        ca_on_host.as_deref(),
        env,
    )?;
    let stats_file = match options.metrics_address {
        None => None,
        Some(_) => Some(settings_file::stats_file(&settings)?.ok_or_else(|| {
            InstallError::NodeSettings(
                "--metrics-address serves the file named by statsFile, but the node settings name none"
                    .into(),
            )
        })?),
    };
    let report = install_files(
        &choice.local,
        &options.driver,
        &binary,
        &settings,
        ca.as_deref(),
    )?;
    log.info(&format!(
        "driver {} in {}: binary {:?}, settings {:?}, CA {} (kubelet sees {})",
        options.driver,
        report.driver_dir.display(),
        report.binary,
        report.settings,
        report
            .ca
            .map_or_else(|| "none".to_owned(), |c| format!("{c:?}")),
        driver_dir.display(),
    ));
    let checks = start_doctor(options, &resolved, log);
    let collection = collect::plan(
        kubelet.as_ref(),
        choice,
        &options.proc_root,
        &options.driver,
    );
    match &collection {
        Ok(plan) => collect::run(plan, log),
        Err(why) => log.info(why),
    }
    let Some(signals) = stop_signals else {
        // --once: the process is about to end; give the checks their time, no more.
        if let Some(done) = checks {
            let _ = done.recv_timeout(DOCTOR_LIMIT + Duration::from_secs(1));
        }
        return Ok(());
    };
    if let (Some(address), Some(stats_file)) = (options.metrics_address, stats_file) {
        let bound = metrics::spawn(address, stats_file.clone(), log.debug)?;
        log.info(&format!(
            "serving the call-out statistics of {} on http://{bound}/metrics",
            stats_file.display()
        ));
    }
    if let Ok(plan) = collection {
        let log = Logger { debug: log.debug };
        // The stop signals stay blocked in this thread too (it inherits the mask): they are
        // taken below, by the main thread.
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(collect::COLLECT_INTERVAL);
                collect::run(&plan, &log);
            }
        });
    }
    let signal = signals.wait().map_err(InstallError::Signal)?;
    log.info(&format!("got {signal:?}"));
    if should_uninstall_on_stop(options, log) {
        // Looked up again: with auto, the dir is reached through kubelet's pid, which a kubelet
        // restart since the install has changed.
        let local = match resolve_plugin_dir(options, log) {
            Ok(now) => now.choice.local,
            Err(_) => choice.local.clone(),
        };
        let removed = uninstall_files(&local, &options.driver)?;
        log.info(&format!("removed {removed:?}"));
    }
    Ok(())
}

/// The arrays' CA from `--ca-file`, refused unless it holds PEM certificates: a garbage CA would
/// fail every call-out on the node with a TLS error far from its cause.
fn read_ca(path: &Path) -> Result<Vec<u8>, InstallError> {
    let pem = fs::read(path).map_err(io_error("reading the arrays' CA", path))?;
    flashvol_common::config::ca_certificates_in(&pem).map_err(|problem| {
        InstallError::NodeSettings(format!(
            "the arrays' CA {} (chart value flashvol.tls.caCert) {problem}",
            path.display()
        ))
    })?;
    Ok(pem)
}

fn uninstall(options: &Options, log: &Logger) -> Result<(), InstallError> {
    let removed = uninstall_files(
        &resolve_plugin_dir(options, log)?.choice.local,
        &options.driver,
    )?;
    if removed.is_empty() {
        log.info("nothing to remove: the driver is not installed here");
    } else {
        log.info(&format!("removed {removed:?}"));
    }
    Ok(())
}

/// `flashvol-flex install …` / `flashvol-flex uninstall …`; `args` starts with the command word.
pub fn main(args: &[String]) -> ExitCode {
    let Some((command, rest)) = args.split_first() else {
        eprintln!("{}", usage());
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
            "unknown command {other:?}\n\n{}",
            usage()
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
    use std::fs;

    use flashvol_common::config::Config;

    pub(crate) fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    pub(crate) fn env_from(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    pub(crate) const SAMPLE_CONFIG: &str = r#"{"FlashArrays":[{"MgmtEndPoint":"10.0.0.5","APIToken":"fa-token","Labels":{"rack":"22"}}],
        "FlashBlades":[{"MgmtEndPoint":"10.0.0.6","APIToken":"T-fb-token","NfsEndPoint":"10.0.1.6"}]}"#;

    #[test]
    fn install_once_puts_binary_and_settings_in_place_from_the_mounted_secret() {
        let work = tempfile::tempdir().expect("tempdir");
        let plugins = work.path().join("plugins");
        fs::create_dir(&plugins).expect("mkdir");
        let source = work.path().join("flashvol-flex");
        fs::write(&source, b"the-static-binary").expect("write");
        let config = work.path().join("pure.json");
        fs::write(&config, SAMPLE_CONFIG).expect("write");
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
