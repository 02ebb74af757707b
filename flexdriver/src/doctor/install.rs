//! Is the driver where kubelet looks for it, and does it answer? The running kubelet's plugin dir
//! comes from the installer's own detection ([`plugin_dir::detect_kubelet_plugin_dir`]) on the
//! host's `/proc`; the installed binary is compared with this one and asked `init`, whose reply
//! must be exactly the driver's ([`callout::init_reply`]).

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::host::Host;
use super::{Context, Finding};
use crate::callout;
use crate::install::options::{PluginDirArg, driver_dir_name};
use crate::install::plugin_dir::{
    self, DetectedPluginDir, KUBELET_DEFAULT_PLUGIN_DIR, PluginDirSource,
};
use crate::node::tools;

pub const IDS: &[&str] = &[
    "install.kubelet",
    "install.driver",
    "install.version",
    "install.init",
];

/// The kubelet running on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kubelet {
    pub plugin_dir: DetectedPluginDir,
    /// Its `PATH`: the driver it runs searches tools there first.
    pub path_var: Option<OsString>,
}

/// Finds the kubelet process in the host's `/proc`. `Ok(None)`: no kubelet is running there.
pub fn find_kubelet(host: &Host) -> Result<Option<Kubelet>, String> {
    let proc_dir = host.proc_dir();
    let found = plugin_dir::detect_kubelet_plugin_dir(&proc_dir).map_err(|e| e.to_string())?;
    Ok(found.map(|plugin_dir| {
        let environ = std::fs::read(proc_dir.join(plugin_dir.pid.to_string()).join("environ"));
        Kubelet {
            path_var: environ.ok().and_then(|raw| path_of(&raw)),
            plugin_dir,
        }
    }))
}

/// `PATH` from a NUL-separated `/proc/<pid>/environ`.
fn path_of(environ: &[u8]) -> Option<OsString> {
    environ
        .split(|b| *b == 0)
        .find_map(|entry| entry.strip_prefix(b"PATH="))
        .map(|value| OsString::from_vec(value.to_vec()))
}

/// Where the driver should be and where it was found (host paths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The plugin dir kubelet loads drivers from (or, when no kubelet is visible, the best guess).
    pub expected: PathBuf,
    /// Plugin dirs holding an installed driver, `expected` first when it holds one.
    pub found_in: Vec<PathBuf>,
}

impl Layout {
    /// Looks for the driver in kubelet's dir, the DaemonSet's, this program's own and kubelet's
    /// built-in default.
    pub fn of(ctx: &Context, kubelet: &Result<Option<Kubelet>, String>) -> Self {
        let kubelets = kubelet
            .as_ref()
            .ok()
            .and_then(Option::as_ref)
            .map(|k| k.plugin_dir.dir.clone());
        let candidates = [
            kubelets,
            ctx.installer_dir.clone(),
            own_plugin_dir(ctx),
            Some(PathBuf::from(KUBELET_DEFAULT_PLUGIN_DIR)),
        ]
        .into_iter()
        .flatten()
        .fold(Vec::<PathBuf>::new(), |mut unique, dir| {
            if !unique.iter().any(|u| same_dir(u, &dir)) {
                unique.push(dir);
            }
            unique
        });
        let expected = candidates
            .first()
            .cloned()
            .unwrap_or_else(|| PathBuf::from(KUBELET_DEFAULT_PLUGIN_DIR));
        let found_in = candidates
            .into_iter()
            .filter(|dir| {
                ctx.host
                    .path(&dir.join(driver_dir(&ctx.driver)).join("flex"))
                    .exists()
            })
            .collect();
        Self { expected, found_in }
    }

    /// The driver's dir to read (host path): in kubelet's dir, else wherever it was found.
    pub fn driver_dir(&self, driver: &str) -> PathBuf {
        let plugin_dir = if self.found_in.iter().any(|d| same_dir(d, &self.expected)) {
            &self.expected
        } else {
            self.found_in.first().unwrap_or(&self.expected)
        };
        plugin_dir.join(driver_dir(driver))
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    a.components().eq(b.components())
}

/// `pure/flex` → `pure~flex`; a name the installer would refuse is used as given.
fn driver_dir(driver: &str) -> String {
    driver_dir_name(driver).unwrap_or_else(|_| driver.replace('/', "~"))
}

/// The plugin dir this program is installed in, when it is the driver itself run on the host
/// (`<plugin dir>/pure~flex/flex doctor`).
fn own_plugin_dir(ctx: &Context) -> Option<PathBuf> {
    let exe = ctx.exe.as_deref().filter(|_| ctx.host.is_own_root())?;
    let driver_dir = exe.parent()?;
    (exe.file_name()? == "flex" && driver_dir.file_name()? == driver_dir_name_os(&ctx.driver))
        .then(|| driver_dir.parent().map(Path::to_owned))
        .flatten()
}

fn driver_dir_name_os(driver: &str) -> OsString {
    OsString::from(driver_dir(driver))
}

/// What was read about the installed driver.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Installed {
    /// `<expected>/<driver dir>/flex`, host path.
    path: PathBuf,
    /// Its mode, when it exists in `expected`.
    mode: Option<u32>,
    /// Same bytes as this program (`None`: could not compare).
    same_as_me: Option<bool>,
    /// This program is that very file.
    is_me: bool,
    /// What `flex init` printed and how it ended, when run.
    init: Option<Result<InitRun, String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct InitRun {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Reads (and runs `init` of) the installed driver, then judges.
pub fn check(
    ctx: &Context,
    layout: &Layout,
    kubelet: &Result<Option<Kubelet>, String>,
) -> Vec<Finding> {
    let path = layout.expected.join(driver_dir(&ctx.driver)).join("flex");
    let local = ctx.host.path(&path);
    let mode = std::fs::metadata(&local)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.permissions().mode() & 0o7777);
    let is_me = ctx
        .exe
        .as_deref()
        .zip(local.canonicalize().ok())
        .is_some_and(|(me, it)| me.canonicalize().is_ok_and(|me| me == it));
    let same_as_me = match (&ctx.exe, mode) {
        (Some(me), Some(_)) => same_bytes(me, &local),
        _ => None,
    };
    let init = mode.filter(|m| m & 0o111 != 0).map(|_| {
        tools::run_program(&local, &["init"], ctx.limits.program)
            .map(|done| InitRun {
                code: done.code,
                stdout: done.stdout,
                stderr: done.stderr,
            })
            .map_err(|e| e.to_string())
    });
    let installed = Installed {
        path,
        mode,
        same_as_me,
        is_me,
        init,
    };
    judge(ctx, layout, kubelet, &installed)
}

/// Whether two files hold the same bytes (`None`: one cannot be read).
fn same_bytes(a: &Path, b: &Path) -> Option<bool> {
    use std::io::Read;
    let (mut a, mut b) = (std::fs::File::open(a).ok()?, std::fs::File::open(b).ok()?);
    if a.metadata().ok()?.len() != b.metadata().ok()?.len() {
        return Some(false);
    }
    let (mut left, mut right) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = a.read(&mut left).ok()?;
        if n == 0 {
            return Some(true);
        }
        b.read_exact(&mut right[..n]).ok()?;
        if left[..n] != right[..n] {
            return Some(false);
        }
    }
}

fn judge(
    ctx: &Context,
    layout: &Layout,
    kubelet: &Result<Option<Kubelet>, String>,
    installed: &Installed,
) -> Vec<Finding> {
    let mut findings = vec![judge_kubelet(ctx, kubelet)];
    let driver = judge_driver(ctx, layout, kubelet, installed);
    let present = installed.mode.is_some();
    findings.push(driver);
    if present {
        findings.push(judge_version(installed));
        findings.push(judge_init(installed));
    } else {
        let why = "not checked: no driver where kubelet looks (see install.driver)";
        findings.push(Finding::skip("install.version", why));
        findings.push(Finding::skip("install.init", why));
    }
    findings
}

fn source_words(source: &PluginDirSource) -> String {
    match source {
        PluginDirSource::Flag => "its --volume-plugin-dir".to_owned(),
        PluginDirSource::ConfigFile(f) => format!("volumePluginDir in {}", f.display()),
        PluginDirSource::BuiltInDefault => "its built-in default".to_owned(),
    }
}

fn judge_kubelet(ctx: &Context, kubelet: &Result<Option<Kubelet>, String>) -> Finding {
    const ID: &str = "install.kubelet";
    let fix = "run doctor on a node whose kubelet is running; in a pod, the host's / must be visible (the chart's pod sees it as kubelet's /proc/<pid>/root, with hostPID) and named with --host-root";
    match kubelet {
        Ok(Some(k)) => Finding::pass(
            ID,
            format!(
                "kubelet (pid {}) loads FlexVolume drivers from {} ({})",
                k.plugin_dir.pid,
                k.plugin_dir.dir.display(),
                source_words(&k.plugin_dir.source)
            ),
        ),
        Ok(None) => Finding::warn(
            ID,
            format!(
                "no kubelet process in {}: cannot tell which plugin dir kubelet reads",
                ctx.host.proc_dir().display()
            ),
            fix,
        ),
        Err(e) => Finding::warn(ID, format!("cannot look for kubelet: {e}"), fix),
    }
}

fn judge_driver(
    ctx: &Context,
    layout: &Layout,
    kubelet: &Result<Option<Kubelet>, String>,
    installed: &Installed,
) -> Finding {
    const ID: &str = "install.driver";
    let detected = kubelet.as_ref().ok().and_then(Option::as_ref);
    let shown = installed.path.display();
    // The DaemonSet installs elsewhere than kubelet reads: the installer's own warning says so.
    if let Some(dir) = &ctx.installer_dir {
        let choice = plugin_dir::choose_plugin_dir(
            &PluginDirArg::Path(dir.clone()),
            Some(dir),
            ctx.host.root(),
            detected.map(|k| &k.plugin_dir),
        );
        if let Ok(Some(warning)) = choice.map(|c| c.warning) {
            return Finding::fail(ID, warning, set_flex_path(&layout.expected));
        }
    }
    match installed.mode {
        Some(mode) if mode & 0o111 == 0 => Finding::fail(
            ID,
            format!("{shown} has mode {mode:04o}: kubelet cannot run it"),
            format!(
                "chmod 755 {shown}, or restart the DaemonSet pod on this node (it rewrites the driver)"
            ),
        ),
        Some(mode) => Finding::pass(
            ID,
            match detected {
                Some(_) => format!("{shown} (mode {mode:04o}), in the dir kubelet reads"),
                None => format!(
                    "{shown} (mode {mode:04o}); kubelet not visible: cannot confirm it reads this dir"
                ),
            },
        ),
        None => {
            let elsewhere: Vec<String> = layout
                .found_in
                .iter()
                .filter(|d| !same_dir(d, &layout.expected))
                .map(|d| d.display().to_string())
                .collect();
            let whose = match detected {
                Some(k) => format!(
                    "kubelet (pid {}) loads drivers from {} ({})",
                    k.plugin_dir.pid,
                    layout.expected.display(),
                    source_words(&k.plugin_dir.source)
                ),
                None => format!("the driver is expected in {}", layout.expected.display()),
            };
            let (saw, fix) = if elsewhere.is_empty() {
                (
                    format!("{whose}, and {shown} does not exist: the driver is not installed"),
                    "install flashvol (the chart's DaemonSet pure-flex installs the driver on every node) and check the pod on this node: kubectl -n <namespace> logs ds/pure-flex".to_owned(),
                )
            } else {
                (
                    format!(
                        "{whose}, but the driver is in {}: kubelet will not find it (\"no volume plugin matched\")",
                        elsewhere.join(", ")
                    ),
                    set_flex_path(&layout.expected),
                )
            };
            Finding::fail(ID, saw, fix)
        }
    }
}

fn set_flex_path(dir: &Path) -> String {
    format!(
        "set the chart value flexPath to {} (or to auto), e.g. helm upgrade ... --set flexPath={}",
        dir.display(),
        dir.display()
    )
}

fn judge_version(installed: &Installed) -> Finding {
    const ID: &str = "install.version";
    let me = concat!("flashvol-flex ", env!("CARGO_PKG_VERSION"));
    if installed.is_me {
        return Finding::pass(ID, format!("doctor runs as the installed driver ({me})"));
    }
    match installed.same_as_me {
        Some(true) => Finding::pass(ID, format!("the installed driver is this binary ({me})")),
        Some(false) => Finding::warn(
            ID,
            format!(
                "{} differs from this binary ({me}): another version is installed",
                installed.path.display()
            ),
            "restart the DaemonSet pod on this node so it installs its own binary: kubectl -n <namespace> rollout restart ds/pure-flex",
        ),
        None => Finding::skip(ID, "cannot compare with this program"),
    }
}

fn judge_init(installed: &Installed) -> Finding {
    const ID: &str = "install.init";
    let expected = callout::init_reply().to_json();
    let fix = format!(
        "run {} init by hand to see why; reinstall with a rollout restart of ds/pure-flex",
        installed.path.display()
    );
    let Some(run) = &installed.init else {
        return Finding::skip(
            ID,
            "not run: the driver is not executable (see install.driver)",
        );
    };
    match run {
        Err(e) => Finding::fail(ID, format!("init could not run: {e}"), fix),
        Ok(run) => {
            let replies: Vec<Value> = serde_json::Deserializer::from_str(&run.stdout)
                .into_iter::<Value>()
                .collect::<Result<_, _>>()
                .unwrap_or_default();
            let wanted: Value = serde_json::from_str(&expected).unwrap_or(Value::Null);
            if run.code == Some(0) && run.stderr.is_empty() && replies == [wanted] {
                Finding::pass(ID, format!("init answers {expected}"))
            } else {
                Finding::fail(
                    ID,
                    format!(
                        "init answered {:?} on stdout and {:?} on stderr (exit {:?}); kubelet needs exactly {expected}",
                        run.stdout.trim(),
                        run.stderr.trim(),
                        run.code
                    ),
                    fix,
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::{Limits, Status};

    const RKE: &str = "/var/lib/kubelet/volumeplugins";

    fn ctx(installer_dir: Option<&str>, exe: Option<&str>) -> Context {
        Context {
            host: Host::new("/"),
            driver: "pure/flex".into(),
            config: None,
            installer_dir: installer_dir.map(PathBuf::from),
            exe: exe.map(PathBuf::from),
            limits: Limits::default(),
        }
    }

    fn kubelet(dir: &str) -> Result<Option<Kubelet>, String> {
        Ok(Some(Kubelet {
            plugin_dir: DetectedPluginDir {
                pid: 4242,
                dir: dir.into(),
                source: PluginDirSource::Flag,
                root_dir: "/var/lib/kubelet".into(),
            },
            path_var: None,
        }))
    }

    fn installed(mode: Option<u32>) -> Installed {
        Installed {
            path: format!("{RKE}/pure~flex/flex").into(),
            mode,
            same_as_me: Some(true),
            is_me: false,
            init: None,
        }
    }

    #[test]
    fn kubelets_path_comes_from_its_environment() {
        assert_eq!(
            path_of(b"HOME=/root\0PATH=/opt/bin:/usr/bin\0X=1\0"),
            Some(OsString::from("/opt/bin:/usr/bin"))
        );
        assert_eq!(path_of(b"HOME=/root\0"), None);
    }

    #[test]
    fn the_driver_run_from_its_plugin_dir_knows_that_dir() {
        let exe = format!("{RKE}/pure~flex/flex");
        assert_eq!(
            own_plugin_dir(&ctx(None, Some(&exe))),
            Some(PathBuf::from(RKE))
        );
        assert_eq!(
            own_plugin_dir(&ctx(None, Some("/usr/local/bin/flashvol-flex"))),
            None
        );
        let mut in_pod = ctx(None, Some(&exe));
        in_pod.host = Host::new("/proc/4242/root");
        assert_eq!(
            own_plugin_dir(&in_pod),
            None,
            "a pod's own paths are not the host's"
        );
    }

    #[test]
    fn a_daemonset_installing_elsewhere_than_kubelet_reads_fails_with_the_flex_path() {
        let layout = Layout {
            expected: RKE.into(),
            found_in: vec![RKE.into()],
        };
        let f = judge_driver(
            &ctx(Some(KUBELET_DEFAULT_PLUGIN_DIR), None),
            &layout,
            &kubelet(RKE),
            &installed(Some(0o755)),
        );
        assert_eq!(f.status, Status::Fail);
        assert!(
            f.saw.contains(RKE) && f.saw.contains(KUBELET_DEFAULT_PLUGIN_DIR),
            "{}",
            f.saw
        );
        assert!(
            f.fix
                .unwrap_or_default()
                .contains(&format!("flexPath to {RKE}"))
        );
        let same = judge_driver(
            &ctx(Some(RKE), None),
            &layout,
            &kubelet(RKE),
            &installed(Some(0o755)),
        );
        assert_eq!(same.status, Status::Pass);
    }

    #[test]
    fn a_missing_or_unrunnable_driver_fails() {
        let elsewhere = Layout {
            expected: RKE.into(),
            found_in: vec![KUBELET_DEFAULT_PLUGIN_DIR.into()],
        };
        let f = judge_driver(
            &ctx(None, None),
            &elsewhere,
            &kubelet(RKE),
            &installed(None),
        );
        assert_eq!(f.status, Status::Fail);
        assert!(f.saw.contains(KUBELET_DEFAULT_PLUGIN_DIR), "{}", f.saw);
        let nowhere = Layout {
            expected: RKE.into(),
            found_in: vec![],
        };
        let f = judge_driver(&ctx(None, None), &nowhere, &kubelet(RKE), &installed(None));
        assert!(f.saw.contains("not installed"), "{}", f.saw);
        let f = judge_driver(
            &ctx(None, None),
            &nowhere,
            &kubelet(RKE),
            &installed(Some(0o644)),
        );
        assert!(f.status == Status::Fail && f.fix.unwrap_or_default().starts_with("chmod 755"));
        let f = judge_driver(
            &ctx(None, None),
            &nowhere,
            &Ok(None),
            &installed(Some(0o755)),
        );
        assert!(
            f.status == Status::Pass && f.saw.contains("cannot confirm"),
            "{}",
            f.saw
        );
    }

    #[test]
    fn init_must_answer_exactly_the_drivers_reply() {
        let expected = callout::init_reply().to_json();
        let run = |stdout: &str, stderr: &str, code| {
            let mut i = installed(Some(0o755));
            i.init = Some(Ok(InitRun {
                code: Some(code),
                stdout: stdout.into(),
                stderr: stderr.into(),
            }));
            judge_init(&i).status
        };
        assert_eq!(run(&format!("{expected}\n"), "", 0), Status::Pass);
        assert_eq!(run(&format!("{expected}\n"), "warning: x", 0), Status::Fail);
        assert_eq!(run(r#"{"status":"Success"}"#, "", 0), Status::Fail);
        assert_eq!(run(&format!("{expected}{expected}"), "", 0), Status::Fail);
        assert_eq!(judge_init(&installed(Some(0o755))).status, Status::Skip);
    }

    #[test]
    fn another_binary_in_the_plugin_dir_warns() {
        let mut i = installed(Some(0o755));
        assert_eq!(judge_version(&i).status, Status::Pass);
        i.same_as_me = Some(false);
        assert_eq!(judge_version(&i).status, Status::Warn);
        i.is_me = true;
        assert_eq!(judge_version(&i).status, Status::Pass);
    }
}
