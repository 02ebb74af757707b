//! Who else on the node still has a file system mounted: every mount namespace other than the
//! driver's own (a container's, a sandboxed service's), found through `/proc/<pid>/ns/mnt` and read
//! from `/proc/<pid>/mountinfo` of one of its processes.
//!
//! Why it matters: a container keeps its own copy of a pod's volume mount. Unmounting the staging
//! dir and the pod dir in kubelet's namespace does not end the file system while such a copy
//! exists; deleting the device and disconnecting the volume then pulls the disk from under a
//! mounted file system, and the container's last writes and the file system's final flush are
//! lost (kubelet calls `unmount` for an orphaned pod *before* it kills its containers). So a
//! volume is released only when no namespace holds it.
//!
//! Not every copy is a user. When the driver's mounts are shared (`shared:N`, systemd hosts),
//! the kernel propagates them into namespaces that were copied from kubelet's (a sandboxed
//! service, RKE1's kubelet container, an agent that mounts the host's `/` with HostToContainer
//! propagation), at the same path or under a prefix, as peers or slaves of the driver's own
//! mounts; the driver's unmount removes those copies with the originals (or fails with EBUSY
//! while one is in use). Those are not holders. A container's volume is different: the runtime
//! binds the pod dir to another path (`/data`), where no unmount of ours reaches it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::node::mountinfo::{self, MountEntry};

/// One mount namespace and what is mounted in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    /// As `readlink /proc/<pid>/ns/mnt` spells it: `mnt:[4026532412]`.
    pub id: String,
    /// Its processes, ascending.
    pub pids: Vec<u32>,
    /// The process whose table was read, and its command name.
    pub example: (u32, String),
    pub mounts: Vec<MountEntry>,
}

/// This process's mount namespace (kubelet's, since kubelet runs the driver).
pub fn own_namespace() -> std::io::Result<String> {
    namespace_of(Path::new("/proc/self"))
}

fn namespace_of(proc_dir: &Path) -> std::io::Result<String> {
    let link = std::fs::read_link(proc_dir.join("ns/mnt"))?;
    Ok(link.to_string_lossy().into_owned())
}

/// Every mount namespace visible under `proc_root` except `own`, each with its mount table.
/// Processes that exit while they are looked at are skipped; only an unreadable `proc_root` is an
/// error (then nobody can tell whether a file system is free).
pub fn others(proc_root: &Path, own: &str) -> std::io::Result<Vec<Namespace>> {
    let mut pids: Vec<u32> = std::fs::read_dir(proc_root)?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    let mut by_namespace: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for pid in pids {
        if let Ok(ns) = namespace_of(&proc_root.join(pid.to_string())) {
            if ns != own {
                by_namespace.entry(ns).or_default().push(pid);
            }
        }
    }
    Ok(by_namespace
        .into_iter()
        .filter_map(|(id, pids)| {
            // The first process whose table can still be read speaks for the namespace.
            let (pid, mounts) = pids.iter().find_map(|pid| {
                let dir = proc_root.join(pid.to_string());
                mountinfo::read_from(&dir.join("mountinfo"))
                    .ok()
                    .map(|m| (*pid, m))
            })?;
            let comm = std::fs::read_to_string(proc_root.join(pid.to_string()).join("comm"))
                .map(|c| c.trim().to_owned())
                .unwrap_or_else(|_| "?".into());
            Some(Namespace {
                id,
                pids,
                example: (pid, comm),
                mounts,
            })
        })
        .collect())
}

/// A namespace that keeps one of the devices mounted, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder<'a> {
    pub namespace: &'a Namespace,
    pub mount_points: Vec<PathBuf>,
}

/// The namespaces in which a mount of one of `devs` would outlive the driver's own unmounts.
/// `ours` are the driver's mounts of those devices in its own namespace (the staging mount and
/// pod binds); a mount that propagation ties to one of them (see the module header) is not a
/// holder.
pub fn holders<'a>(
    namespaces: &'a [Namespace],
    devs: &[(u32, u32)],
    ours: &[&MountEntry],
) -> Vec<Holder<'a>> {
    namespaces
        .iter()
        .filter_map(|ns| {
            let mount_points: Vec<PathBuf> = ns
                .mounts
                .iter()
                .filter(|m| devs.contains(&m.dev) && !is_propagated_copy(m, ours))
                .map(|m| m.mount_point.clone())
                .collect();
            (!mount_points.is_empty()).then_some(Holder {
                namespace: ns,
                mount_points,
            })
        })
        .collect()
}

/// A peer or slave of one of our shared mounts, of the same subtree, at the same path or at the
/// same path under a prefix (a namespace that sees the node's `/` at `/host`).
fn is_propagated_copy(m: &MountEntry, ours: &[&MountEntry]) -> bool {
    ours.iter().any(|o| {
        let tail = o.mount_point.strip_prefix("/").unwrap_or(&o.mount_point);
        o.shared.is_some_and(|group| m.propagates_from(group))
            && m.same_content(o)
            && m.mount_point.ends_with(tail)
    })
}

/// For kubelet's event: how many processes in how many namespaces, one of them by name.
pub fn describe(holders: &[Holder<'_>]) -> String {
    let processes: usize = holders.iter().map(|h| h.namespace.pids.len()).sum();
    let Some(first) = holders.first() else {
        return "no other mount namespace".into();
    };
    let (pid, comm) = &first.namespace.example;
    format!(
        "{processes} process(es) in {} other mount namespace(s), e.g. pid {pid} ({comm}) at {}",
        holders.len(),
        first.mount_points[0].display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAGING: &str =
        "/var/lib/kubelet/plugins/kubernetes.io/flexvolume/pure/flex/mounts/pvc-1";
    const POD: &str = "/var/lib/kubelet/pods/u1/volumes/pure~flex/pvc-1";

    fn table(text: &str) -> Vec<MountEntry> {
        mountinfo::parse(text).expect("parses")
    }

    fn namespace(id: &str, pids: &[u32], comm: &str, mounts: &str) -> Namespace {
        Namespace {
            id: id.into(),
            pids: pids.to_vec(),
            example: (pids[0], comm.into()),
            mounts: table(mounts),
        }
    }

    fn ours(shared: bool) -> Vec<MountEntry> {
        let tag = if shared { " shared:50" } else { "" };
        table(&format!(
            "98 27 7:3 / {STAGING} rw{tag} - xfs /dev/loop3 rw\n99 27 7:3 / {POD} rw{tag} - xfs /dev/loop3 rw\n"
        ))
    }

    #[test]
    fn a_containers_copy_of_the_volume_holds_it() {
        let ours = ours(true);
        let ours: Vec<&MountEntry> = ours.iter().collect();
        let container = namespace(
            "mnt:[4026532400]",
            &[4242, 4250],
            "writer",
            "500 400 7:3 / /data/blk rw - xfs /dev/loop3 rw\n501 400 0:5 / /dev rw - tmpfs tmpfs rw\n",
        );
        let other_device = namespace(
            "mnt:[4026532401]",
            &[5000],
            "other",
            "600 401 7:4 / /data/blk rw - xfs /dev/loop4 rw\n",
        );
        let all = [container, other_device];
        let found = holders(&all, &[(7, 3)], &ours);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].mount_points, [PathBuf::from("/data/blk")]);
        assert_eq!(
            describe(&found),
            "2 process(es) in 1 other mount namespace(s), e.g. pid 4242 (writer) at /data/blk"
        );
    }

    #[test]
    fn copies_that_propagation_removes_with_ours_are_not_holders() {
        let shared = ours(true);
        let shared: Vec<&MountEntry> = shared.iter().collect();
        // A sandboxed service's namespace (slave copies at the same paths), RKE1's kubelet
        // container (peers), an agent seeing the node's / at /host (slaves under a prefix).
        let service = namespace(
            "mnt:[1]",
            &[10],
            "chronyd",
            &format!(
                "70 20 7:3 / {STAGING} rw master:50 - xfs /dev/loop3 rw\n71 20 7:3 / {POD} rw master:50 - xfs /dev/loop3 rw\n"
            ),
        );
        let peer = namespace(
            "mnt:[2]",
            &[20],
            "kubelet",
            &format!("80 30 7:3 / {STAGING} rw shared:50 - xfs /dev/loop3 rw\n"),
        );
        let agent = namespace(
            "mnt:[3]",
            &[30],
            "node_exporter",
            &format!("90 40 7:3 / /host{STAGING} rw master:50 - xfs /dev/loop3 rw\n"),
        );
        let all = [service, peer, agent];
        assert!(holders(&all, &[(7, 3)], &shared).is_empty());

        // The same copies when our mounts are private: nothing removes them with ours.
        let private = ours(false);
        let private: Vec<&MountEntry> = private.iter().collect();
        assert_eq!(holders(&all, &[(7, 3)], &private).len(), 3);
    }

    #[test]
    fn a_slave_bind_elsewhere_or_of_a_subtree_still_holds() {
        let shared = ours(true);
        let shared: Vec<&MountEntry> = shared.iter().collect();
        // HostToContainer propagation: the runtime binds the pod dir to /data as a slave, which
        // our unmounts never reach; kubelet's subPath binds a subtree.
        let container = namespace(
            "mnt:[4]",
            &[40],
            "app",
            &format!(
                "95 45 7:3 / /data rw master:50 - xfs /dev/loop3 rw\n96 45 7:3 /sub /host{STAGING} rw master:50 - xfs /dev/loop3 rw\n"
            ),
        );
        let all = [container];
        let found = holders(&all, &[(7, 3)], &shared);
        assert_eq!(
            found[0].mount_points,
            [
                PathBuf::from("/data"),
                PathBuf::from(format!("/host{STAGING}"))
            ]
        );
    }

    #[test]
    fn namespaces_are_read_once_each_from_a_proc_tree() {
        let proc = tempfile::tempdir().expect("tempdir");
        let process = |pid: u32, ns: &str, comm: &str, mounts: Option<&str>| {
            let dir = proc.path().join(pid.to_string());
            std::fs::create_dir_all(dir.join("ns")).expect("mkdir");
            std::os::unix::fs::symlink(ns, dir.join("ns/mnt")).expect("ns link");
            std::fs::write(dir.join("comm"), format!("{comm}\n")).expect("comm");
            if let Some(m) = mounts {
                std::fs::write(dir.join("mountinfo"), m).expect("mountinfo");
            }
        };
        let held = "500 400 7:3 / /data/blk rw - xfs /dev/loop3 rw\n";
        process(
            1,
            "mnt:[100]",
            "init",
            Some("1 0 254:0 / / rw - ext4 /dev/vda rw\n"),
        );
        // The first process of the container exited while we looked: the next one speaks.
        process(300, "mnt:[300]", "pause", None);
        process(301, "mnt:[300]", "writer", Some(held));
        process(302, "mnt:[300]", "sh", Some(held));
        process(400, "mnt:[400]", "gone", None);
        std::fs::create_dir_all(proc.path().join("self")).expect("not a pid");
        std::fs::write(proc.path().join("uptime"), "1 1\n").expect("not a pid");

        let found = others(proc.path(), "mnt:[100]").expect("scanned");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].id, "mnt:[300]");
        assert_eq!(found[0].pids, [300, 301, 302]);
        assert_eq!(found[0].example, (301, "writer".into()));
        assert_eq!(found[0].mounts[0].dev, (7, 3));
        assert!(others(&proc.path().join("absent"), "mnt:[100]").is_err());
    }

    #[test]
    fn the_drivers_own_namespace_is_readable() {
        let own = own_namespace().expect("own namespace");
        assert!(own.starts_with("mnt:["), "{own}");
    }
}
