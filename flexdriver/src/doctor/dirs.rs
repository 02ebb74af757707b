//! The dirs the driver writes on every call: its log file's dir and its lock dir. Writable is
//! proven by a probe file created, synced and removed at once; a dir that does not exist yet
//! (the driver creates it) is judged by its nearest existing parent without writing there. In a
//! pod whose view of the host is read-only, the host's own mount table decides.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::host::Host;
use super::{Finding, Loaded};
use crate::node::mountinfo;

pub const IDS: &[&str] = &["dirs.log", "dirs.locks"];

/// What trying the dir gave.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Probe {
    /// A probe file was written there and removed.
    Written,
    /// The dir does not exist; its nearest existing parent is writable, so the driver can create it.
    Creatable(PathBuf),
    /// This view of the host is read-only, but the host mounts the dir read-write.
    HostWritable,
    Refused(String),
}

pub fn check(host: &Host, loaded: &Loaded) -> Vec<Finding> {
    let log_dir = loaded
        .node
        .log_file
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_owned);
    let locks = &loaded.node.locks_dir;
    vec![
        judge("dirs.log", &log_dir, &probe(host, &log_dir)),
        judge("dirs.locks", locks, &probe(host, locks)),
    ]
}

fn probe(host: &Host, dir: &Path) -> Probe {
    let local = host.path(dir);
    if !local.exists() {
        return creatable(host, dir);
    }
    if !local.is_dir() {
        return Probe::Refused(format!("{} is not a directory", dir.display()));
    }
    match write_probe(&local) {
        Ok(()) => Probe::Written,
        Err(e) if e.raw_os_error() == Some(nix::libc::EROFS) && !host.is_own_root() => {
            host_mount_verdict(host, dir, e)
        }
        Err(e) => Probe::Refused(format!("cannot write in {}: {e}", dir.display())),
    }
}

/// Creates, syncs and removes `.flashvol-doctor-<pid>` in `dir`.
fn write_probe(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(format!(".flashvol-doctor-{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|mut f| {
            f.write_all(b"flashvol-flex doctor probe\n")?;
            f.sync_all()
        });
    let removed = std::fs::remove_file(&path);
    written.and(removed)
}

/// A dir the driver will create: may it, under the nearest parent that exists?
fn creatable(host: &Host, dir: &Path) -> Probe {
    let Some(parent) = dir.ancestors().skip(1).find(|a| host.path(a).is_dir()) else {
        return Probe::Refused(format!("no parent of {} exists", dir.display()));
    };
    match nix::unistd::access(&host.path(parent), nix::unistd::AccessFlags::W_OK) {
        Ok(()) => Probe::Creatable(parent.to_owned()),
        Err(nix::errno::Errno::EROFS) if !host.is_own_root() => host_mount_verdict(
            host,
            parent,
            std::io::Error::from_raw_os_error(nix::libc::EROFS),
        ),
        Err(e) => Probe::Refused(format!(
            "{} does not exist and cannot be created in {}: {e}",
            dir.display(),
            parent.display()
        )),
    }
}

/// This view is read-only: ask the host's mount table (its init's) whether the host can write.
fn host_mount_verdict(host: &Host, dir: &Path, error: std::io::Error) -> Probe {
    let table = std::fs::read_to_string(host.proc_dir().join("1/mountinfo"))
        .ok()
        .and_then(|t| mountinfo::parse(&t).ok());
    match table.as_deref().and_then(|t| covering_mount(t, dir)) {
        Some(entry) if !entry.is_read_only() => Probe::HostWritable,
        Some(entry) => Probe::Refused(format!(
            "{} is on {}, which the host mounts read-only",
            dir.display(),
            entry.mount_point.display()
        )),
        None => Probe::Refused(format!(
            "cannot write in {} ({error}) and the host's mount table cannot be read",
            dir.display()
        )),
    }
}

/// The mount `path` lies on: the last-mounted entry with the longest mount point above it.
fn covering_mount<'a>(
    table: &'a [mountinfo::MountEntry],
    path: &Path,
) -> Option<&'a mountinfo::MountEntry> {
    table
        .iter()
        .filter(|m| path.starts_with(&m.mount_point))
        .fold(None, |best: Option<&mountinfo::MountEntry>, m| match best {
            Some(b) if b.mount_point.components().count() > m.mount_point.components().count() => {
                Some(b)
            }
            _ => Some(m),
        })
}

fn judge(id: &'static str, dir: &Path, probe: &Probe) -> Finding {
    let shown = dir.display();
    match probe {
        Probe::Written => Finding::pass(
            id,
            format!("{shown} is writable (a probe file was written and removed)"),
        ),
        Probe::Creatable(parent) => Finding::pass(
            id,
            format!(
                "{shown} does not exist yet; the driver creates it in {} (writable)",
                parent.display()
            ),
        ),
        Probe::HostWritable => Finding::pass(
            id,
            format!(
                "{shown} is on a file system the host mounts read-write (this view of the host is read-only)"
            ),
        ),
        Probe::Refused(why) if id == "dirs.locks" => Finding::fail(
            id,
            format!("{why}: every mount and unmount takes a lock file there"),
            "make it writable for root, or set node.locksDir to a writable local dir (chart flexDriver.nodeSettings)",
        ),
        Probe::Refused(why) => Finding::warn(
            id,
            format!("{why}: the driver runs without its log"),
            "make it writable for root, or set node.logFile to a path in a writable dir (chart flexDriver.nodeSettings)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn a_writable_dir_passes_and_keeps_no_probe() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = Host::new("/");
        assert_eq!(probe(&host, dir.path()), Probe::Written);
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 0);
        let later = dir.path().join("run/flashvol-flex/locks");
        assert_eq!(
            probe(&host, &later),
            Probe::Creatable(dir.path().to_owned())
        );
        assert!(!dir.path().join("run").exists(), "nothing is created");
    }

    #[test]
    fn a_file_where_a_dir_belongs_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("locks");
        std::fs::write(&file, "").expect("write");
        let p = probe(&Host::new("/"), &file);
        assert!(matches!(p, Probe::Refused(_)), "{p:?}");
        assert_eq!(judge("dirs.locks", &file, &p).status, Status::Fail);
        assert_eq!(judge("dirs.log", &file, &p).status, Status::Warn);
    }

    #[test]
    fn the_covering_mount_is_the_deepest() {
        let table = mountinfo::parse(
            "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n\
             23 22 0:5 / /run rw,nosuid - tmpfs tmpfs rw\n\
             24 22 8:2 / /usr ro,relatime - ext4 /dev/sda2 ro\n",
        )
        .expect("parses");
        let at = |p: &str| covering_mount(&table, Path::new(p)).map(|m| m.mount_point.clone());
        assert_eq!(at("/run/flashvol-flex/locks"), Some(PathBuf::from("/run")));
        assert_eq!(at("/var/log"), Some(PathBuf::from("/")));
        assert!(covering_mount(&table, Path::new("/usr/x")).is_some_and(|m| m.is_read_only()));
    }
}
