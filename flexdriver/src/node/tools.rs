//! External programs: found once (with an error naming the missing one), run with stdin from
//! `/dev/null`, their output captured (never inherited: it would reach kubelet), and killed at
//! their deadline.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::node::settings::ToolPaths;
use crate::runtime::error::{FlexError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tool {
    Iscsiadm,
    Multipath,
    Multipathd,
    Blkid,
    MkfsXfs,
    MkfsExt4,
    MkfsExt3,
    Mount,
    XfsGrowfs,
    Resize2fs,
    E2fsck,
}

impl Tool {
    pub fn name(self) -> &'static str {
        match self {
            Tool::Iscsiadm => "iscsiadm",
            Tool::Multipath => "multipath",
            Tool::Multipathd => "multipathd",
            Tool::Blkid => "blkid",
            Tool::MkfsXfs => "mkfs.xfs",
            Tool::MkfsExt4 => "mkfs.ext4",
            Tool::MkfsExt3 => "mkfs.ext3",
            Tool::Mount => "mount",
            Tool::XfsGrowfs => "xfs_growfs",
            Tool::Resize2fs => "resize2fs",
            Tool::E2fsck => "e2fsck",
        }
    }

    /// The settings key under `node.tools`.
    pub fn settings_key(self) -> &'static str {
        match self {
            Tool::Iscsiadm => "iscsiadm",
            Tool::Multipath => "multipath",
            Tool::Multipathd => "multipathd",
            Tool::Blkid => "blkid",
            Tool::MkfsXfs => "mkfsXfs",
            Tool::MkfsExt4 => "mkfsExt4",
            Tool::MkfsExt3 => "mkfsExt3",
            Tool::Mount => "mount",
            Tool::XfsGrowfs => "xfsGrowfs",
            Tool::Resize2fs => "resize2fs",
            Tool::E2fsck => "e2fsck",
        }
    }

    fn configured(self, paths: &ToolPaths) -> &Path {
        match self {
            Tool::Iscsiadm => &paths.iscsiadm,
            Tool::Multipath => &paths.multipath,
            Tool::Multipathd => &paths.multipathd,
            Tool::Blkid => &paths.blkid,
            Tool::MkfsXfs => &paths.mkfs_xfs,
            Tool::MkfsExt4 => &paths.mkfs_ext4,
            Tool::MkfsExt3 => &paths.mkfs_ext3,
            Tool::Mount => &paths.mount,
            Tool::XfsGrowfs => &paths.xfs_growfs,
            Tool::Resize2fs => &paths.resize2fs,
            Tool::E2fsck => &paths.e2fsck,
        }
    }
}

/// Directories searched for a bare tool name besides `PATH`.
const SYSTEM_DIRS: &[&str] = &["/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin"];

/// What a finished program left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// stdout and stderr, trimmed and shortened for a message.
    pub fn output(&self) -> String {
        let all = format!("{} {}", self.stdout.trim(), self.stderr.trim());
        let all = all.trim();
        if all.len() > 600 {
            let cut = (0..=600)
                .rev()
                .find(|i| all.is_char_boundary(*i))
                .unwrap_or(0);
            format!("{}...", &all[..cut])
        } else {
            all.to_owned()
        }
    }
}

/// The node's tools, each resolved on first use.
pub struct Tools {
    paths: ToolPaths,
    resolved: Mutex<HashMap<Tool, PathBuf>>,
}

impl Tools {
    pub fn new(paths: ToolPaths) -> Self {
        Self {
            paths,
            resolved: Mutex::new(HashMap::new()),
        }
    }

    /// Where `tool` is, or an error naming it.
    pub fn path(&self, tool: Tool) -> Result<PathBuf> {
        if let Some(p) = self
            .resolved
            .lock()
            .ok()
            .and_then(|m| m.get(&tool).cloned())
        {
            return Ok(p);
        }
        let configured = tool.configured(&self.paths);
        let found = resolve(configured, std::env::var_os("PATH").as_deref());
        let path = found.ok_or_else(|| FlexError::MissingTool {
            tool: tool.name(),
            key: tool.settings_key(),
            looked: if configured.is_absolute() {
                format!(
                    "{} does not exist or is not executable",
                    configured.display()
                )
            } else {
                format!(
                    "{} is not in PATH or {}",
                    configured.display(),
                    SYSTEM_DIRS.join(":")
                )
            },
        })?;
        if let Ok(mut m) = self.resolved.lock() {
            m.insert(tool, path.clone());
        }
        Ok(path)
    }

    pub fn is_available(&self, tool: Tool) -> bool {
        self.path(tool).is_ok()
    }

    /// Runs `tool args…`, killing it at `limit`. A non-zero exit is returned, not an error.
    pub fn run(&self, tool: Tool, args: &[&str], limit: Duration) -> Result<Finished> {
        let path = self.path(tool)?;
        run_program(&path, args, limit)
    }

    /// Like [`Tools::run`], but any exit status outside `ok_codes` is an error.
    pub fn run_ok(
        &self,
        tool: Tool,
        args: &[&str],
        limit: Duration,
        ok_codes: &[i32],
    ) -> Result<Finished> {
        let done = self.run(tool, args, limit)?;
        if done.code.is_some_and(|c| ok_codes.contains(&c)) {
            Ok(done)
        } else {
            Err(FlexError::ToolFailed {
                command: format!("{} {}", tool.name(), args.join(" ")),
                status: done
                    .code
                    .map_or_else(|| "killed by a signal".to_owned(), |c| format!("exit {c}")),
                output: done.output(),
            })
        }
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// An absolute path as is; a bare name through `PATH` then the usual system dirs.
pub fn resolve(configured: &Path, path_var: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    if configured.is_absolute() {
        return is_executable(configured).then(|| configured.to_owned());
    }
    let from_env = path_var
        .map(|p| std::env::split_paths(p).collect::<Vec<_>>())
        .unwrap_or_default();
    from_env
        .into_iter()
        .chain(SYSTEM_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(configured))
        .find(|p| is_executable(p))
}

/// Runs a program with stdin from /dev/null and captured output; kills it at `limit`.
pub fn run_program(path: &Path, args: &[&str], limit: Duration) -> Result<Finished> {
    let shown = format!("{} {}", path.display(), args.join(" "));
    log::debug!("running {shown}");
    let mut child = Command::new(path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| FlexError::io("cannot run", path, e))?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= limit => {
                let _ = child.kill();
                let _ = child.wait();
                log::warn!("{shown}: killed after {:?}", limit);
                return Err(FlexError::TimedOut { step: shown, limit });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(FlexError::io("cannot wait for", path, e)),
        }
    };
    let finished = Finished {
        code: status.code(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    };
    log::debug!("{shown}: {:?}", finished.code);
    Ok(finished)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_captured_and_exit_codes_returned() {
        let done = run_program(
            Path::new("/bin/sh"),
            &["-c", "echo out; echo err >&2; exit 3"],
            Duration::from_secs(5),
        )
        .expect("runs");
        assert_eq!(done.code, Some(3));
        assert_eq!(done.stdout, "out\n");
        assert_eq!(done.stderr, "err\n");
    }

    #[test]
    fn a_hanging_program_is_killed_at_its_deadline() {
        let err = run_program(Path::new("/bin/sleep"), &["30"], Duration::from_millis(100))
            .expect_err("killed");
        assert!(matches!(err, FlexError::TimedOut { .. }), "{err}");
    }

    #[test]
    fn a_missing_tool_is_named_with_its_settings_key() {
        let tools = Tools::new(ToolPaths {
            mkfs_xfs: "/nonexistent/mkfs.xfs".into(),
            ..ToolPaths::default()
        });
        let err = tools.path(Tool::MkfsXfs).expect_err("missing").to_string();
        assert!(
            err.contains("mkfs.xfs") && err.contains("node.tools.mkfsXfs"),
            "{err}"
        );
        assert!(resolve(Path::new("sh"), None).is_some());
        assert!(resolve(Path::new("no-such-tool-here"), None).is_none());
    }

    #[test]
    fn non_zero_exit_is_an_error_unless_allowed() {
        let tools = Tools::new(ToolPaths {
            mount: "/bin/false".into(),
            ..ToolPaths::default()
        });
        let err = tools
            .run_ok(Tool::Mount, &["x"], Duration::from_secs(5), &[0])
            .expect_err("fails");
        assert!(err.to_string().contains("exit 1"), "{err}");
        tools
            .run_ok(Tool::Mount, &["x"], Duration::from_secs(5), &[0, 1])
            .expect("allowed");
    }
}
