//! The host's file system and processes, read from wherever the host's `/` is visible: `/` when
//! doctor runs on the node; in the DaemonSet pod, the running kubelet's `/` through the host's
//! procfs ([`HostRoot::Kubelet`]).
//!
//! Every path in the driver's settings is a host path, so it is read at `<root>/<path>`, with
//! symlinks resolved inside the root: an absolute link such as `/lib -> /usr/lib` must lead to
//! the host's `/usr/lib`, not the pod's. Processes are read from the host's own procfs at
//! `<root>/proc` (a procfs shows the PID namespace that mounted it, so the host's processes are
//! visible there even without `hostPID`).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use crate::install::InstallError;
use crate::install::options::absolute_path;
use crate::node::tools;

/// How `--host-root` (env `FLASHVOL_HOST_ROOT`) names the host's `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRoot {
    /// A directory: `/` on the node itself.
    At(PathBuf),
    /// [`KUBELET_ROOT`], the chart's setting: the running kubelet's `/`, as
    /// `<proc>/<kubelet pid>/root` in the host's procfs (hostPID), else the init process's
    /// (`<proc>/1/root`). That is the node as the driver sees it (kubelet runs it in its own
    /// mount namespace: on RKE1, kubelet's container), and the plugin dir kubelet names is a
    /// path there. A magic link, not a mount: it shows the host's mounts as they are now, and the
    /// pod holds none of them. A hostPath mount of `/` would either keep a private copy of every
    /// volume mounted when the pod started (which the driver then never releases), or, with
    /// HostToContainer, not start at all on a host whose `/` is a private mount
    /// (install/README.md, "What the DaemonSet mounts").
    Kubelet,
}

/// The value of `--host-root` that asks for [`HostRoot::Kubelet`].
pub const KUBELET_ROOT: &str = "kubelet";

impl HostRoot {
    /// `kubelet`, or an absolute path (refused naming `flag` otherwise).
    pub fn parse(flag: &str, raw: &str) -> Result<Self, InstallError> {
        if raw.trim() == KUBELET_ROOT {
            return Ok(Self::Kubelet);
        }
        absolute_path(flag, raw).map(Self::At)
    }

    /// The directory to read the host at, given the host's procfs and the kubelet seen there.
    pub fn resolve(&self, proc: &Path, kubelet_pid: Option<u32>) -> PathBuf {
        match self {
            Self::At(dir) => dir.clone(),
            Self::Kubelet => proc
                .join(kubelet_pid.map_or_else(|| "1".to_owned(), |pid| pid.to_string()))
                .join("root"),
        }
    }
}

/// How many symlinks one path may pass through, as the kernel's `MAXSYMLINKS`.
const MAX_LINKS: usize = 40;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    root: PathBuf,
}

impl Host {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Where the host's `/` is, in this process's view.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether this process sees the host's `/` as its own (doctor runs on the node).
    pub fn is_own_root(&self) -> bool {
        self.root == Path::new("/")
    }

    /// Where `host_path` (as the host names it) is in this process's view. Relative paths are
    /// returned unchanged.
    pub fn path(&self, host_path: &Path) -> PathBuf {
        if self.is_own_root() || !host_path.is_absolute() {
            return host_path.to_owned();
        }
        resolve_within(&self.root, host_path)
    }

    /// The host's procfs. Its magic links (`/proc/<pid>/root`) are left to the kernel.
    pub fn proc_dir(&self) -> PathBuf {
        self.root.join("proc")
    }

    pub fn read_to_string(&self, host_path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(self.path(host_path))
    }

    /// A regular file with an execute bit, at a host path.
    pub fn is_executable(&self, host_path: &Path) -> bool {
        tools::is_executable(&self.path(host_path))
    }

    /// The pids of the host's processes whose name (`/proc/<pid>/comm`) is `name`.
    pub fn pids_named(&self, name: &str) -> std::io::Result<Vec<u32>> {
        let mut pids: Vec<u32> = std::fs::read_dir(self.proc_dir())?
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .filter(|pid: &u32| {
                // A process may exit while we look: unreadable is simply not it.
                std::fs::read_to_string(self.proc_dir().join(pid.to_string()).join("comm"))
                    .is_ok_and(|comm| comm.trim_end_matches('\n') == name)
            })
            .collect();
        pids.sort_unstable();
        Ok(pids)
    }
}

/// `root` joined with `path`, following each symlink on the way as the host would: absolute
/// targets start again at `root`, and `..` never climbs above it.
fn resolve_within(root: &Path, path: &Path) -> PathBuf {
    let mut todo: VecDeque<OsString> = parts(path).collect();
    let mut done: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(part) = todo.pop_front() {
        if part == ".." {
            done.pop();
            continue;
        }
        let here: PathBuf = root.join(done.iter().collect::<PathBuf>()).join(&part);
        let link = std::fs::symlink_metadata(&here)
            .ok()
            .filter(|m| m.file_type().is_symlink() && links < MAX_LINKS)
            .and_then(|_| std::fs::read_link(&here).ok());
        match link {
            Some(target) => {
                links += 1;
                if target.is_absolute() {
                    done.clear();
                }
                for p in parts(&target).collect::<Vec<_>>().into_iter().rev() {
                    todo.push_front(p);
                }
            }
            None => done.push(part),
        }
    }
    root.join(done.iter().collect::<PathBuf>())
}

/// The names and `..` of a path; `/` and `.` say nothing here.
fn parts(path: &Path) -> impl Iterator<Item = OsString> + '_ {
    path.components().filter_map(|c| match c {
        Component::Normal(name) => Some(name.to_owned()),
        Component::ParentDir => Some(OsString::from("..")),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn the_kubelet_root_is_kubelets_own_through_proc_else_inits() {
        let kubelet = HostRoot::parse("--host-root", "kubelet").expect("valid");
        let proc = Path::new("/proc");
        assert_eq!(
            kubelet.resolve(proc, Some(4242)),
            Path::new("/proc/4242/root")
        );
        assert_eq!(kubelet.resolve(proc, None), Path::new("/proc/1/root"));
        let at = HostRoot::parse("--host-root", "/host").expect("valid");
        assert_eq!(at.resolve(proc, Some(4242)), Path::new("/host"));
        let bad = HostRoot::parse("--host-root", "host").expect_err("relative");
        assert!(bad.to_string().contains("--host-root"), "{bad}");
    }

    #[test]
    fn on_the_node_itself_paths_are_unchanged() {
        let host = Host::new("/");
        assert!(host.is_own_root());
        assert_eq!(host.path(Path::new("/etc/x")), Path::new("/etc/x"));
    }

    #[test]
    fn absolute_links_stay_inside_the_host_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("usr/lib/modules")).expect("mkdir");
        symlink("/usr/lib", root.join("lib")).expect("link");
        std::fs::create_dir_all(root.join("etc")).expect("mkdir");
        symlink("../usr/lib/modules", root.join("etc/mods")).expect("link");
        symlink("/../../../../usr", root.join("escape")).expect("link");
        let host = Host::new(root);
        assert_eq!(
            host.path(Path::new("/lib/modules/6.1")),
            root.join("usr/lib/modules/6.1")
        );
        assert_eq!(
            host.path(Path::new("/etc/mods")),
            root.join("usr/lib/modules")
        );
        assert_eq!(host.path(Path::new("/escape/lib")), root.join("usr/lib"));
        assert_eq!(host.path(Path::new("/../../etc")), root.join("etc"));
        assert_eq!(host.path(Path::new("relative")), Path::new("relative"));
    }

    #[test]
    fn a_link_loop_ends() {
        let dir = tempfile::tempdir().expect("tempdir");
        symlink("/b", dir.path().join("a")).expect("link");
        symlink("/a", dir.path().join("b")).expect("link");
        let resolved = Host::new(dir.path()).path(Path::new("/a/x"));
        assert!(resolved.starts_with(dir.path()), "{resolved:?}");
    }

    #[test]
    fn processes_are_found_by_name_in_the_hosts_proc() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (pid, comm) in [
            ("1", "systemd\n"),
            ("42", "iscsid\n"),
            ("43", "iscsid-helper\n"),
        ] {
            let p = dir.path().join("proc").join(pid);
            std::fs::create_dir_all(&p).expect("mkdir");
            std::fs::write(p.join("comm"), comm).expect("write");
        }
        std::fs::create_dir_all(dir.path().join("proc/sys")).expect("mkdir");
        let host = Host::new(dir.path());
        assert_eq!(host.pids_named("iscsid").expect("reads"), [42]);
        assert!(host.pids_named("multipathd").expect("reads").is_empty());
        assert!(Host::new(dir.path().join("none")).pids_named("x").is_err());
    }
}
