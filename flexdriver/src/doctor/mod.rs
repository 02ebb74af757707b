//! `flashvol-flex doctor`: can this node mount Pure volumes, and if not, why not.
//!
//! Each check reads what it needs at the edge (the host's `/proc`, config files, the installed
//! driver, the arrays' replies) and decides in a pure function of what it read, giving one
//! [`Finding`]: PASS, WARN, FAIL or SKIP, what it saw, and the fix in one line. Everything is
//! read-only: no iSCSI login, no host created on an array; the only writes are temp probe files in
//! the log and lock dirs, removed at once. Every family of checks runs under a short deadline
//! ([`crate::runtime::deadline`]), all families at once.
//!
//! The host's file system is read through [`host::Host`]: `/` on the node itself, the host's `/`
//! seen through the host's procfs in the DaemonSet pod (the running kubelet's `/`). The driver's own code decides what the driver does
//! (settings parser, tool search, initiator parsing, plugin-dir detection, array clients, `init`'s
//! reply), so doctor and the driver cannot disagree.
//!
//! - [`command`]: the command line, and the entry point.
//! - [`host`]: the host's file system and processes, from wherever it is mounted.
//! - one module per family, in report order: [`settings`], [`install`], [`tools`], [`iscsi`],
//!   [`multipath`] (with the pure parser [`multipath_conf`]), [`kernel`], [`arrays`], [`clock`],
//!   [`dirs`].
//! - [`report`]: findings → text for people, JSON for programs (`doctor.schema.json`).

pub mod arrays;
pub mod clock;
pub mod command;
pub mod dirs;
pub mod host;
pub mod install;
pub mod iscsi;
pub mod kernel;
pub mod multipath;
pub mod multipath_conf;
pub mod report;
pub mod settings;
pub mod tools;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use flashvol_common::config::Config;

use crate::node::settings::NodeSettings;
use crate::runtime::deadline;
use host::Host;
use report::Report;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    Pass,
    /// Mounts work, but something is not as Pure or flashvol recommend.
    Warn,
    /// Mounts will fail (or the check could not finish).
    Fail,
    /// Not applicable here, or not checked because something it needs failed.
    Skip,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        }
    }
}

/// A family of checks: the part of a check id before the dot, and a section of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    Settings,
    Install,
    Tools,
    Iscsi,
    Multipath,
    Kernel,
    Arrays,
    Clock,
    Dirs,
}

impl Family {
    /// In report order.
    pub const ALL: [Family; 9] = [
        Family::Settings,
        Family::Install,
        Family::Tools,
        Family::Iscsi,
        Family::Multipath,
        Family::Kernel,
        Family::Arrays,
        Family::Clock,
        Family::Dirs,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::Settings => "settings",
            Family::Install => "install",
            Family::Tools => "tools",
            Family::Iscsi => "iscsi",
            Family::Multipath => "multipath",
            Family::Kernel => "kernel",
            Family::Arrays => "arrays",
            Family::Clock => "clock",
            Family::Dirs => "dirs",
        }
    }

    /// Every check id of the family (the JSON schema lists the same).
    pub fn ids(self) -> &'static [&'static str] {
        match self {
            Family::Settings => settings::IDS,
            Family::Install => install::IDS,
            Family::Tools => tools::IDS,
            Family::Iscsi => iscsi::IDS,
            Family::Multipath => multipath::IDS,
            Family::Kernel => kernel::IDS,
            Family::Arrays => arrays::IDS,
            Family::Clock => clock::IDS,
            Family::Dirs => dirs::IDS,
        }
    }

    /// The family of a check id (`"arrays.token"` → arrays).
    pub fn of(id: &str) -> Option<Family> {
        let prefix = id.split('.').next()?;
        Family::ALL.into_iter().find(|f| f.name() == prefix)
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// `family.check`, stable (listed in `doctor.schema.json`).
    pub id: &'static str,
    /// What the check was about when a check runs more than once: an array's endpoint.
    pub subject: Option<String>,
    pub status: Status,
    /// What was seen, in a sentence.
    pub saw: String,
    /// What to do, in one line; `None` when there is nothing to do.
    pub fix: Option<String>,
}

impl Finding {
    pub fn pass(id: &'static str, saw: impl Into<String>) -> Self {
        Self::new(id, Status::Pass, saw.into(), None)
    }

    pub fn warn(id: &'static str, saw: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(id, Status::Warn, saw.into(), Some(fix.into()))
    }

    pub fn fail(id: &'static str, saw: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(id, Status::Fail, saw.into(), Some(fix.into()))
    }

    pub fn skip(id: &'static str, why: impl Into<String>) -> Self {
        Self::new(id, Status::Skip, why.into(), None)
    }

    fn new(id: &'static str, status: Status, saw: String, fix: Option<String>) -> Self {
        Self {
            id,
            subject: None,
            status,
            saw,
            fix,
        }
    }

    pub fn about(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    pub fn family(&self) -> Family {
        // Every id is written with its family's prefix (a unit test holds each family to it).
        Family::of(self.id).unwrap_or(Family::Settings)
    }
}

/// The same SKIP for each of `ids`.
pub fn skip_all(ids: &[&'static str], why: &str) -> Vec<Finding> {
    ids.iter().map(|id| Finding::skip(id, why)).collect()
}

/// How long each part may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A family that reads local files and `/proc`.
    pub local: Duration,
    /// Running the installed driver's `init`.
    pub program: Duration,
    /// One array call (retries included).
    pub array_call: Duration,
    /// Everything about one array.
    pub array: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            local: Duration::from_secs(5),
            program: Duration::from_secs(10),
            array_call: Duration::from_secs(10),
            array: Duration::from_secs(30),
        }
    }
}

/// What doctor was asked to look at.
#[derive(Debug, Clone)]
pub struct Context {
    /// The host's file system.
    pub host: Host,
    /// The driver's name, `vendor/name` (`pure/flex`).
    pub driver: String,
    /// The settings file named on the command line or by `FLASHVOL_FLEX_CONFIG` (this process's
    /// view); otherwise the installed driver's.
    pub config: Option<PathBuf>,
    /// The plugin dir (host path) the DaemonSet installs into, from its environment.
    pub installer_dir: Option<PathBuf>,
    /// This program, to compare with the installed driver.
    pub exe: Option<PathBuf>,
    pub limits: Limits,
}

/// The settings file, parsed the way the driver parses it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub node: NodeSettings,
}

impl Loaded {
    pub fn has_flash_arrays(&self) -> bool {
        !self.config.arrays.flash_arrays.is_empty()
    }

    pub fn has_flash_blades(&self) -> bool {
        !self.config.arrays.flash_blades.is_empty()
    }
}

/// What the families after `settings` need: the parsed settings and the kubelet found.
type Shared = (Context, Arc<Loaded>, Arc<Option<install::Kubelet>>);

/// Runs every check and returns the report.
pub fn run(ctx: &Context) -> Report {
    let limit = ctx.limits.local;
    let kubelet = {
        let host = ctx.host.clone();
        deadline::within("finding kubelet", limit, move || {
            install::find_kubelet(&host)
        })
        .unwrap_or_else(|e| Err(e.to_string()))
    };
    let layout = install::Layout::of(ctx, &kubelet);
    let settings_file = settings::path_for(ctx, &layout);
    let (mut findings, loaded) = {
        let path = settings_file.clone();
        deadline::within("reading the settings", limit, move || {
            settings::check(&path)
        })
        .unwrap_or_else(|e| (timed_out(settings::IDS, &e.to_string()), None))
    };
    findings.extend({
        let (ctx, layout, kubelet) = (ctx.clone(), layout.clone(), kubelet.clone());
        bounded(install::IDS, ctx.limits.program + limit, move || {
            install::check(&ctx, &layout, &kubelet)
        })
    });
    let node = loaded.as_ref().map(|l| l.node.node_name.clone());
    match loaded {
        Some(loaded) => {
            let shared: Shared = (
                ctx.clone(),
                Arc::new(loaded),
                Arc::new(kubelet.ok().flatten()),
            );
            findings.extend(node_families(&shared));
        }
        None => {
            for family in &Family::ALL[2..] {
                findings.extend(skip_all(
                    family.ids(),
                    "not checked: the settings file is unusable (see settings.file)",
                ));
            }
        }
    }
    findings.sort_by_key(|f| f.family());
    Report {
        node,
        host_root: ctx.host.root().to_owned(),
        settings_file: Some(settings_file),
        findings,
    }
}

/// The families that need the settings, all at once, each under its deadline.
fn node_families(shared: &Shared) -> Vec<Finding> {
    let limits = shared.0.limits;
    type Job = Box<dyn FnOnce(Shared) -> Vec<Finding> + Send>;
    let jobs: Vec<(&'static [&'static str], Duration, Job)> = vec![
        (
            tools::IDS,
            limits.local,
            Box::new(|(c, l, k)| tools::check(&c.host, &l, k.as_ref().as_ref())),
        ),
        (
            iscsi::IDS,
            limits.local,
            Box::new(|(c, l, _)| iscsi::check(&c.host, &l)),
        ),
        (
            multipath::IDS,
            limits.local,
            Box::new(|(c, l, _)| multipath::check(&c.host, &l)),
        ),
        (
            kernel::IDS,
            limits.local,
            Box::new(|(c, l, k)| kernel::check(&c.host, &l, k.as_ref().as_ref())),
        ),
        (
            // arrays::check bounds each array itself; this is the backstop.
            arrays::IDS,
            limits.array + limits.local,
            Box::new(|(c, l, _)| arrays::check(&c, &l)),
        ),
        (
            dirs::IDS,
            limits.local,
            Box::new(|(c, l, _)| dirs::check(&c.host, &l)),
        ),
    ];
    std::thread::scope(|scope| {
        let running: Vec<_> = jobs
            .into_iter()
            .map(|(ids, limit, job)| {
                let shared = shared.clone();
                (
                    ids,
                    scope.spawn(move || bounded(ids, limit, move || job(shared))),
                )
            })
            .collect();
        running
            .into_iter()
            .flat_map(|(ids, handle)| {
                handle
                    .join()
                    .unwrap_or_else(|_| timed_out(ids, "the checks stopped"))
            })
            .collect()
    })
}

/// Runs `work` under `limit`; when it does not finish, each of `ids` fails saying so.
fn bounded(
    ids: &'static [&'static str],
    limit: Duration,
    work: impl FnOnce() -> Vec<Finding> + Send + 'static,
) -> Vec<Finding> {
    let step = Family::of(ids.first().copied().unwrap_or("")).map_or("checks", Family::name);
    deadline::within(step, limit, work).unwrap_or_else(|e| timed_out(ids, &e.to_string()))
}

fn timed_out(ids: &[&'static str], why: &str) -> Vec<Finding> {
    ids.iter()
        .map(|id| {
            Finding::fail(
                id,
                format!("{why}: something it reads hung (a dead NFS mount, a hung device or array?)"),
                "find what hangs (ls, cat on the paths this check reads) and fix it, then run doctor again",
            )
        })
        .collect()
}

/// Runs every check on a helper thread for the installer: each WARN and FAIL line goes to
/// `warn`, then the summary to `info`. Returns at once; the receiver gets `()` when the checks
/// are done (or disconnects if they could not start), so a caller about to exit can wait a
/// bounded time.
pub fn run_in_background(
    ctx: Context,
    limit: Duration,
    warn: impl Fn(&str) + Send + 'static,
    info: impl Fn(&str) + Send + 'static,
) -> std::sync::mpsc::Receiver<()> {
    let (done, finished) = std::sync::mpsc::sync_channel(1);
    let _ = std::thread::Builder::new()
        .name("doctor".into())
        .spawn(move || {
            match deadline::within("doctor", limit, move || run(&ctx)) {
                Ok(report) => {
                    for line in report.problem_lines() {
                        warn(&line);
                    }
                    info(&format!("doctor: {}", report.summary_line()));
                }
                Err(e) => warn(&format!(
                    "doctor: {e}; run `flashvol-flex doctor` on the node to see which check hangs"
                )),
            }
            let _ = done.send(());
        });
    finished
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_id_carries_its_familys_prefix_once() {
        let mut seen = std::collections::BTreeSet::new();
        for family in Family::ALL {
            assert!(!family.ids().is_empty(), "{family:?}");
            for id in family.ids() {
                assert_eq!(Family::of(id), Some(family), "{id}");
                assert!(seen.insert(*id), "{id} is listed twice");
            }
        }
    }

    #[test]
    fn the_json_schema_lists_exactly_the_families_and_check_ids() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../doctor.schema.json")).expect("schema JSON");
        let check = &schema["$defs"]["check"]["properties"];
        let listed = |key: &str| -> Vec<String> {
            check[key]["enum"]
                .as_array()
                .unwrap_or_else(|| panic!("the schema lists {key}"))
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        };
        let families: Vec<String> = Family::ALL.iter().map(|f| f.name().to_owned()).collect();
        assert_eq!(listed("family"), families);
        let ids: Vec<String> = Family::ALL
            .iter()
            .flat_map(|f| f.ids().iter().map(|id| (*id).to_owned()))
            .collect();
        assert_eq!(listed("id"), ids);
        let statuses: Vec<String> = [Status::Pass, Status::Warn, Status::Fail, Status::Skip]
            .iter()
            .map(|s| s.word().to_ascii_lowercase())
            .collect();
        assert_eq!(listed("status"), statuses);
    }
}
