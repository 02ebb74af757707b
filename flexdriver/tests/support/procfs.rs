//! A fake `/proc` for the driver's `node.procRoot` and the installer's `--proc`: processes with a
//! mount namespace, a command name and line, and a mount table, as the kernel shows them.

use std::path::{Path, PathBuf};

pub struct FakeProc {
    pub root: PathBuf,
}

/// One process of a [`FakeProc`].
pub struct FakeProcess<'a> {
    pub pid: u32,
    /// What `ns/mnt` links to: `mnt:[N]` (a namespace that is not ours), or a real namespace
    /// file such as `/proc/self/ns/mnt`.
    pub namespace: &'a str,
    pub comm: &'a str,
    pub cmdline: &'a [&'a str],
    pub mountinfo: &'a str,
}

impl FakeProc {
    pub fn new(root: &Path) -> Self {
        std::fs::create_dir_all(root).unwrap();
        Self {
            root: root.to_path_buf(),
        }
    }

    pub fn add(&self, p: &FakeProcess<'_>) {
        let dir = self.root.join(p.pid.to_string());
        std::fs::create_dir_all(dir.join("ns")).unwrap();
        std::os::unix::fs::symlink(p.namespace, dir.join("ns/mnt")).unwrap();
        std::fs::write(dir.join("comm"), format!("{}\n", p.comm)).unwrap();
        std::fs::write(dir.join("cmdline"), p.cmdline.join("\0") + "\0").unwrap();
        std::fs::write(dir.join("mountinfo"), p.mountinfo).unwrap();
    }

    /// The process exits.
    pub fn remove(&self, pid: u32) {
        std::fs::remove_dir_all(self.root.join(pid.to_string())).unwrap();
    }
}

/// A mountinfo line of a container that has `dev` mounted at `/data`.
pub fn container_mountinfo((major, minor): (u32, u32)) -> String {
    format!(
        "500 400 0:60 / / rw - overlay overlay rw\n501 500 {major}:{minor} / /data rw,relatime - xfs /dev/loop9 rw\n"
    )
}
