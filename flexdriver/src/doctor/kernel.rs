//! The kernel side: the iSCSI and multipath modules (loaded, built in, or installed and loaded on
//! first use), FC HBAs online for FC, an NFS client (kernel support and `mount.nfs`) when
//! FlashBlades are configured, and the propagation of the host's `/` mount.
//!
//! That last one matters only to a containerized kubelet, such as RKE1's: its container binds
//! kubelet's root dir from the host with shared propagation (rancher/rke, `BuildKubeletProcess`:
//! `/var/lib/kubelet:/var/lib/kubelet:shared`), so that the volumes kubelet and the driver mount
//! in there reach the host and the pods' containers. The runtime refuses a shared bind unless the
//! host's `/` is a shared mount (docker: "is mounted on / but it is not a shared mount"), and
//! without it the mounts would not come back out. systemd makes `/` shared at boot; a host booted
//! otherwise (another init, a VM or container image that remounts `/` private) may not have it.
//! A kubelet running on the host itself does not care, and neither does the chart's DaemonSet (it
//! mounts no part of the host's `/`), so a `/` that is not shared is a WARN that says when it
//! matters, never a FAIL.

use std::collections::BTreeSet;
use std::path::Path;

use flashvol_common::config::SanType;

use super::host::Host;
use super::install::Kubelet;
use super::{Finding, Loaded};
use crate::node::{mountinfo, tools};

pub const IDS: &[&str] = &[
    "kernel.iscsi",
    "kernel.multipath",
    "kernel.fc",
    "kernel.nfs",
    "kernel.root_propagation",
];

/// The modules the driver's I/O path needs.
const ISCSI_MODULE: &str = "iscsi_tcp";
const MULTIPATH_MODULE: &str = "dm_multipath";
const NFS_MODULE: &str = "nfs";

/// What the host's kernel has, as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Facts {
    release: Option<String>,
    /// `/proc/modules` and `<sysfs>/module/*`.
    loaded: BTreeSet<String>,
    /// `modules.builtin`.
    builtin: BTreeSet<String>,
    /// `modules.dep`: installed, loadable on demand.
    installed: BTreeSet<String>,
    /// Whether `/lib/modules/<release>` could be read.
    module_tree: bool,
    /// `/proc/filesystems`.
    filesystems: BTreeSet<String>,
    /// `<sysfs>/class/fc_host/<host>/port_state`, when that dir exists.
    fc_hosts: Option<Vec<(String, String)>>,
    /// Where `mount.nfs` is, searched like the driver's tools.
    mount_nfs: Option<String>,
    /// The host's `/`, as the host's init process sees it.
    root: RootPropagation,
}

/// How the host's `/` propagates mounts: its `mountinfo` tags (`shared:N`, `master:N`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum RootPropagation {
    /// A peer group (shared, perhaps also a slave): what systemd makes it.
    Shared(u32),
    /// A slave of a peer group only: it receives mounts but passes none on.
    Slave(u32),
    /// Neither tag: private (or unbindable).
    Private,
    Unknown(String),
}

impl Default for RootPropagation {
    fn default() -> Self {
        Self::Unknown("not read".into())
    }
}

/// The init process's mount namespace (PID 1): where the container runtime works on a node.
fn read_root_propagation(host: &Host) -> RootPropagation {
    let shown = "/proc/1/mountinfo";
    let table = match mountinfo::read_from(&host.proc_dir().join("1/mountinfo")) {
        Ok(table) => table,
        Err(e) => return RootPropagation::Unknown(format!("cannot read {shown}: {e}")),
    };
    match mountinfo::mounted_at(&table, Path::new("/")) {
        None => RootPropagation::Unknown(format!("{shown} has no mount at /")),
        Some(root) => match (root.shared, root.master) {
            (Some(group), _) => RootPropagation::Shared(group),
            (None, Some(group)) => RootPropagation::Slave(group),
            (None, None) => RootPropagation::Private,
        },
    }
}

pub fn check(host: &Host, loaded: &Loaded, kubelet: Option<&Kubelet>) -> Vec<Finding> {
    let sysfs = &loaded.node.sysfs_root;
    let release = host
        .read_to_string(Path::new("/proc/sys/kernel/osrelease"))
        .ok()
        .map(|r| r.trim().to_owned());
    let modules_dir = release.as_ref().map(|r| Path::new("/lib/modules").join(r));
    let read_modules = |file: &str| {
        modules_dir
            .as_ref()
            .and_then(|d| host.read_to_string(&d.join(file)).ok())
    };
    let mut loaded_modules: BTreeSet<String> = host
        .read_to_string(Path::new("/proc/modules"))
        .map(|t| {
            t.lines()
                .filter_map(|l| l.split_whitespace().next())
                .map(module_name)
                .collect()
        })
        .unwrap_or_default();
    if let Ok(entries) = std::fs::read_dir(host.path(&sysfs.join("module"))) {
        loaded_modules.extend(
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str().map(module_name)),
        );
    }
    let builtin = read_modules("modules.builtin");
    let dep = read_modules("modules.dep");
    let fc_hosts = std::fs::read_dir(host.path(&sysfs.join("class/fc_host")))
        .ok()
        .map(|entries| {
            let mut hosts: Vec<(String, String)> = entries
                .flatten()
                .map(|e| {
                    let state = std::fs::read_to_string(e.path().join("port_state"))
                        .map(|s| s.trim().to_owned())
                        .unwrap_or_else(|_| "unknown".into());
                    (e.file_name().to_string_lossy().into_owned(), state)
                })
                .collect();
            hosts.sort();
            hosts
        });
    let path_var = kubelet.and_then(|k| k.path_var.as_deref());
    let facts = Facts {
        release,
        loaded: loaded_modules,
        module_tree: builtin.is_some() || dep.is_some(),
        builtin: builtin
            .as_deref()
            .map(|t| module_names(t.lines()))
            .unwrap_or_default(),
        installed: dep
            .as_deref()
            .map(|t| module_names(t.lines().filter_map(|l| l.split(':').next())))
            .unwrap_or_default(),
        filesystems: host
            .read_to_string(Path::new("/proc/filesystems"))
            .map(|t| {
                t.lines()
                    .filter_map(|l| l.split_whitespace().last())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        fc_hosts,
        mount_nfs: tools::resolve_with(Path::new("mount.nfs"), path_var, |p| host.is_executable(p))
            .map(|p| p.display().to_string()),
        root: read_root_propagation(host),
    };
    judge(loaded, &facts)
}

/// A module's name as the kernel lists it: `-` becomes `_`.
fn module_name(name: &str) -> String {
    name.replace('-', "_")
}

/// Module names from paths like `kernel/drivers/scsi/iscsi_tcp.ko.xz`.
fn module_names<'a>(paths: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
    paths
        .filter_map(|l| l.trim().rsplit('/').next())
        .filter_map(|file| file.split(".ko").next().filter(|n| !n.is_empty()))
        .map(module_name)
        .collect()
}

fn judge(loaded: &Loaded, facts: &Facts) -> Vec<Finding> {
    let block = loaded.has_flash_arrays();
    let san = loaded.config.settings.block.san_type;
    let no_fa = "not used: no FlashArrays configured";
    vec![
        match (block, san) {
            (false, _) => Finding::skip("kernel.iscsi", no_fa),
            (true, SanType::Fc) => Finding::skip("kernel.iscsi", "not used: the SAN type is FC"),
            (true, SanType::Iscsi) => module("kernel.iscsi", ISCSI_MODULE, facts),
        },
        if block {
            module("kernel.multipath", MULTIPATH_MODULE, facts)
        } else {
            Finding::skip("kernel.multipath", no_fa)
        },
        match (block, san) {
            (false, _) => Finding::skip("kernel.fc", no_fa),
            (true, SanType::Iscsi) => Finding::skip("kernel.fc", "not used: the SAN type is iSCSI"),
            (true, SanType::Fc) => fc(facts),
        },
        if loaded.has_flash_blades() {
            nfs(facts)
        } else {
            Finding::skip("kernel.nfs", "not used: no FlashBlades configured")
        },
        root_propagation(&facts.root),
    ]
}

fn module(id: &'static str, name: &str, facts: &Facts) -> Finding {
    let release = facts.release.as_deref().unwrap_or("<release>");
    if facts.loaded.contains(name) {
        Finding::pass(id, format!("{name} is loaded"))
    } else if facts.builtin.contains(name) {
        Finding::pass(id, format!("{name} is built into kernel {release}"))
    } else if facts.installed.contains(name) {
        Finding::pass(
            id,
            format!("{name} is installed for kernel {release}; it loads on first use"),
        )
    } else if !facts.module_tree {
        Finding::warn(
            id,
            format!(
                "{name} is not loaded, and /lib/modules/{release} cannot be read to tell whether it is installed"
            ),
            format!("modprobe {name} on the node to check"),
        )
    } else {
        Finding::fail(
            id,
            format!("{name} is neither loaded, built in nor installed for kernel {release}"),
            format!(
                "install the kernel's extra modules (Ubuntu: linux-modules-extra-{release}), then modprobe {name}"
            ),
        )
    }
}

fn fc(facts: &Facts) -> Finding {
    const ID: &str = "kernel.fc";
    let fix = "connect and zone the node's FC HBAs to the FlashArray (FC is for bare-metal nodes)";
    match &facts.fc_hosts {
        None => Finding::fail(ID, "no FC HBA: sysfs has no class/fc_host", fix),
        Some(hosts) => {
            let online: Vec<&str> = hosts
                .iter()
                .filter(|(_, state)| state == "Online")
                .map(|(h, _)| h.as_str())
                .collect();
            let all: Vec<String> = hosts.iter().map(|(h, s)| format!("{h} {s}")).collect();
            if online.is_empty() {
                Finding::fail(
                    ID,
                    format!("no FC port is online ({})", all.join(", ")),
                    fix,
                )
            } else {
                Finding::pass(ID, format!("online: {}", online.join(", ")))
            }
        }
    }
}

fn nfs(facts: &Facts) -> Finding {
    const ID: &str = "kernel.nfs";
    let fix = "install nfs-common (Debian/Ubuntu) or nfs-utils (RHEL)";
    let kernel = facts.filesystems.contains("nfs")
        || facts.filesystems.contains("nfs4")
        || facts.loaded.contains(NFS_MODULE)
        || facts.builtin.contains(NFS_MODULE)
        || facts.installed.contains(NFS_MODULE);
    match (&facts.mount_nfs, kernel) {
        (Some(helper), true) => Finding::pass(
            ID,
            format!("the kernel mounts NFS and {helper} is installed"),
        ),
        (None, _) => Finding::fail(
            ID,
            "no mount.nfs: NFS mounts of FlashBlade file systems fail",
            fix,
        ),
        (Some(_), false) => Finding::fail(
            ID,
            format!(
                "the kernel {} has no NFS client (no nfs in /proc/filesystems, no nfs module)",
                facts.release.as_deref().unwrap_or("")
            ),
            fix,
        ),
    }
}

fn root_propagation(root: &RootPropagation) -> Finding {
    const ID: &str = "kernel.root_propagation";
    let when = "a kubelet running on the host does not need it, and neither does the pure-flex DaemonSet; a containerized kubelet (RKE1) binds its root dir with shared propagation, which the runtime refuses (or its volume mounts never reach the pods) unless / is shared";
    let fix = "only if kubelet runs in a container: make / shared, as systemd does at boot: mount --make-rshared / (and in the node's boot setup, so that it stays)";
    match root {
        RootPropagation::Shared(group) => Finding::pass(
            ID,
            format!(
                "the host's / is a shared mount (peer group {group}): a containerized kubelet's volume mounts reach the host and its pods"
            ),
        ),
        RootPropagation::Slave(group) => Finding::warn(
            ID,
            format!("the host's / is a slave mount (of peer group {group}), not shared: {when}"),
            fix,
        ),
        RootPropagation::Private => Finding::warn(
            ID,
            format!(
                "the host's / is a private mount (no shared: tag in /proc/1/mountinfo): {when}"
            ),
            fix,
        ),
        RootPropagation::Unknown(why) => Finding::warn(
            ID,
            format!("cannot tell how the host's / propagates mounts: {why}"),
            "run doctor as root on the node, or in the DaemonSet pod (kubectl exec ds/pure-flex -- /flashvol-flex doctor)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn module_lists_give_kernel_names() {
        assert_eq!(
            module_names(
                [
                    "kernel/drivers/scsi/iscsi_tcp.ko.xz",
                    "kernel/drivers/md/dm-multipath.ko"
                ]
                .into_iter()
            ),
            set(&["dm_multipath", "iscsi_tcp"])
        );
    }

    #[test]
    fn a_module_is_fine_loaded_built_in_or_installed_and_fails_when_absent() {
        let mut facts = Facts {
            release: Some("6.8.0-1015-kvm".into()),
            module_tree: true,
            ..Facts::default()
        };
        let f = module("kernel.iscsi", ISCSI_MODULE, &facts);
        assert_eq!(f.status, Status::Fail);
        assert!(
            f.fix
                .unwrap_or_default()
                .contains("linux-modules-extra-6.8.0-1015-kvm")
        );
        facts.installed = set(&["iscsi_tcp"]);
        assert_eq!(
            module("kernel.iscsi", ISCSI_MODULE, &facts).status,
            Status::Pass
        );
        facts.installed.clear();
        facts.builtin = set(&["iscsi_tcp"]);
        assert_eq!(
            module("kernel.iscsi", ISCSI_MODULE, &facts).status,
            Status::Pass
        );
        facts.module_tree = false;
        facts.builtin.clear();
        assert_eq!(
            module("kernel.iscsi", ISCSI_MODULE, &facts).status,
            Status::Warn
        );
    }

    #[test]
    fn fc_needs_an_online_port_and_nfs_needs_kernel_and_helper() {
        let mut facts = Facts {
            fc_hosts: Some(vec![("host3".into(), "Linkdown".into())]),
            ..Facts::default()
        };
        assert_eq!(fc(&facts).status, Status::Fail);
        facts.fc_hosts = Some(vec![
            ("host3".into(), "Linkdown".into()),
            ("host4".into(), "Online".into()),
        ]);
        assert_eq!(fc(&facts).status, Status::Pass);
        assert_eq!(fc(&Facts::default()).status, Status::Fail);

        let mut facts = Facts {
            filesystems: set(&["nfs", "nfs4"]),
            ..Facts::default()
        };
        assert_eq!(nfs(&facts).status, Status::Fail);
        facts.mount_nfs = Some("/sbin/mount.nfs".into());
        assert_eq!(nfs(&facts).status, Status::Pass);
        facts.filesystems.clear();
        assert_eq!(nfs(&facts).status, Status::Fail);
    }

    #[test]
    fn only_a_shared_root_passes_and_others_warn_saying_a_containerized_kubelet_needs_it() {
        let shared = root_propagation(&RootPropagation::Shared(1));
        assert_eq!(shared.status, Status::Pass);
        assert!(
            shared.saw.contains("shared mount (peer group 1)"),
            "{shared:?}"
        );
        for not_shared in [RootPropagation::Private, RootPropagation::Slave(7)] {
            let f = root_propagation(&not_shared);
            assert_eq!(f.status, Status::Warn, "{f:?}");
            assert!(
                f.saw.contains("containerized kubelet") && f.saw.contains("does not need it"),
                "{f:?}"
            );
            let fix = f.fix.unwrap_or_default();
            assert!(
                fix.starts_with("only if kubelet runs in a container")
                    && fix.contains("mount --make-rshared /"),
                "{fix}"
            );
        }
        assert!(
            root_propagation(&RootPropagation::Private)
                .saw
                .contains("private mount")
        );
        let unknown = root_propagation(&RootPropagation::Unknown("cannot read it".into()));
        assert_eq!(unknown.status, Status::Warn);
        assert!(unknown.saw.contains("cannot read it"));
    }
}
