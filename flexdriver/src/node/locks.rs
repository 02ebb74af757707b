//! Serialisation between concurrent driver processes with `flock(2)`: the kernel drops a lock
//! when its holder dies, so a crash never leaves a stale lock.
//!
//! Lock order (the only order anybody takes them in, so no deadlock is possible): first the
//! volume lock, then the host-registration lock. A process holds at most one volume lock.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::runtime::error::{FlexError, Result};

/// A held lock; released on drop (or by the kernel when the process dies).
#[derive(Debug)]
pub struct Held {
    _lock: Flock<File>,
    pub path: PathBuf,
}

pub fn volume_lock_path(dir: &Path, pv_name: &str) -> PathBuf {
    dir.join(format!("volume-{pv_name}.lock"))
}

pub fn host_lock_path(dir: &Path) -> PathBuf {
    dir.join("host-registration.lock")
}

/// Takes the lock at `path` only if nobody holds it: `None` when another process does.
pub fn try_acquire(path: &Path) -> Result<Option<Held>> {
    match acquire(path, Duration::ZERO) {
        Ok(held) => Ok(Some(held)),
        Err(FlexError::TimedOut { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Takes the lock at `path`, waiting at most `limit`.
pub fn acquire(path: &Path, limit: Duration) -> Result<Held> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| FlexError::io("cannot create locks dir", dir, e))?;
    }
    let started = Instant::now();
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| FlexError::io("cannot open lock file", path, e))?;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => {
                return Ok(Held {
                    _lock: lock,
                    path: path.to_owned(),
                });
            }
            Err((f, Errno::EWOULDBLOCK | Errno::EINTR)) => {
                if started.elapsed() >= limit {
                    return Err(FlexError::TimedOut {
                        step: format!(
                            "waiting for lock {} (another call on the same volume is still running)",
                            path.display()
                        ),
                        limit,
                    });
                }
                file = f;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err((_, errno)) => {
                return Err(FlexError::io(
                    "cannot lock",
                    path,
                    std::io::Error::from_raw_os_error(errno as i32),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_waits_and_gives_up_at_the_deadline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = volume_lock_path(dir.path(), "pvc-1");
        let first = acquire(&path, Duration::from_secs(1)).expect("first");
        let err = acquire(&path, Duration::from_millis(100)).expect_err("busy");
        assert!(matches!(err, FlexError::TimedOut { .. }), "{err}");
        assert!(try_acquire(&path).expect("no error").is_none(), "held");
        drop(first);
        acquire(&path, Duration::from_millis(100)).expect("free again");
        assert!(try_acquire(&path).expect("no error").is_some(), "free");
    }

    #[test]
    fn different_volumes_do_not_contend() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _a = acquire(&volume_lock_path(dir.path(), "a"), Duration::from_secs(1)).expect("a");
        let _b = acquire(
            &volume_lock_path(dir.path(), "b"),
            Duration::from_millis(50),
        )
        .expect("b");
        let _h = acquire(&host_lock_path(dir.path()), Duration::from_millis(50)).expect("host");
    }
}
