//! Collecting leftover volumes: a volume record with no call ever coming for it. kubelet calls
//! `unmount` only for volumes it knows are mounted; it never does for a pod whose `mount` failed
//! (it removes the pod dir), nor for a pod deleted while the driver was missing after a reboot
//! (kubelet cannot reconstruct the volume without its plugin, and only removes the empty dir).
//! Such a volume would stay connected to the node, and its record on it, for ever.
//!
//! A record is collected (devices removed, volume disconnected, record removed, one log line)
//! only when all of these hold, checked under its volume lock:
//! - the lock was free at once: no call is working on the volume (a `mount` in progress holds it);
//! - the volume is not staged: a staged volume is in use, or its `unmount` is still to come;
//! - no pod dir lists it (`<root>/pods/*/volumes/<vendor>~<driver>/<pv>`): kubelet may still call
//!   for it. After a kubelet restart or a reboot, kubelet (1.24 notably) calls `mount` again for
//!   the volumes of the pods it finds there; once it gives up on a pod it removes the dir, and
//!   only then is the volume collected;
//! - none of its devices is mounted anywhere, in any mount namespace.
//!
//! Collection runs after every `mount` and `unmount` (for the kubelet root of that call; a record
//! whose collection failed is retried by calls only after [`CALL_RETRY_AFTER`], so a dead array
//! does not slow every call down) and in `collect`, which the node installer runs when it starts
//! and then periodically.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::release::{self, mount_table};
use crate::kubelet::layout::DriverArea;
use crate::node::Node;
use crate::node::locks;
use crate::node::mountinfo;
use crate::node::record;
use crate::runtime::error::{FlexError, Result};

/// The `collect` reply's message when there was nothing to collect.
pub const NOTHING_COLLECTED: &str = "no leftover volume";

/// How long calls leave a record alone after its collection failed.
pub const CALL_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Who collects: a call-out (which honours [`CALL_RETRY_AFTER`]) or the node installer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sweep {
    AfterCall,
    Installer,
}

/// What the node shows about a recorded volume, gathered under its lock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// Another call holds the volume lock.
    pub locked: bool,
    /// Its staging mount, if mounted.
    pub staged_at: Option<PathBuf>,
    /// Pod dirs kubelet keeps for it.
    pub listed_by: Vec<PathBuf>,
    /// Where its file system is mounted, in this namespace or another.
    pub mounted: Vec<String>,
    /// A call already failed to collect it less than [`CALL_RETRY_AFTER`] ago.
    pub failed_recently: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Collect,
    Keep(String),
}

/// The decision, from the facts alone.
pub fn verdict(facts: &Facts, sweep: Sweep) -> Verdict {
    let keep = |why: String| Verdict::Keep(why);
    if facts.locked {
        return keep("another call is working on it".into());
    }
    if let Some(at) = &facts.staged_at {
        return keep(format!("it is staged at {}", at.display()));
    }
    if let Some(dir) = facts.listed_by.first() {
        return keep(format!("kubelet still lists it at {}", dir.display()));
    }
    if !facts.mounted.is_empty() {
        return keep(format!("its file system is {}", facts.mounted.join("; ")));
    }
    if facts.failed_recently && sweep == Sweep::AfterCall {
        return keep("collecting it failed recently".into());
    }
    Verdict::Collect
}

/// Collects every leftover volume recorded under `area`, except `skip` (the volume of the calling
/// call, which has just dealt with it). Returns the PVs collected; failures are logged, never
/// returned: collection must not change the answer of the call that runs it.
pub fn sweep(node: &Node, area: &DriverArea, skip: Option<&str>, sweep: Sweep) -> Vec<String> {
    let pvs = match area.recorded_volumes() {
        Ok(p) => p,
        Err(e) => {
            log::warn!(
                "collecting leftovers: cannot list {}: {e}",
                area.records_dir().display()
            );
            return Vec::new();
        }
    };
    let mut collected = Vec::new();
    for pv in pvs.iter().filter(|pv| Some(pv.as_str()) != skip) {
        match collect_one(node, area, pv, sweep) {
            Ok(true) => collected.push(pv.clone()),
            Ok(false) => {}
            Err(e) => {
                log::warn!("collecting leftover volume {pv}: {e}");
                note_failure(&node.settings.locks_dir, pv);
            }
        }
    }
    collected
}

fn collect_one(node: &Node, area: &DriverArea, pv: &str, sweep: Sweep) -> Result<bool> {
    let lock_path = locks::volume_lock_path(&node.settings.locks_dir, pv);
    let lock = locks::try_acquire(&lock_path)?;
    // Gone since the listing: released by the call that held the lock.
    let Some(rec) = record::load(&area.record_path(pv))? else {
        return Ok(false);
    };
    let facts = match &lock {
        Some(_) => gather(node, area, pv, &rec.wwid())?,
        None => Facts {
            locked: true,
            ..Facts::default()
        },
    };
    match verdict(&facts, sweep) {
        Verdict::Keep(why) => {
            log::debug!("leftover check of {pv}: kept, {why}");
            Ok(false)
        }
        Verdict::Collect => {
            log::info!(
                "collecting leftover volume {} ({pv}): recorded on this node, but not staged, \
                 listed by no pod dir and mounted nowhere",
                rec.array_volume
            );
            release::release_devices_and_connection(node, area, pv, &rec)?;
            clear_failure(&node.settings.locks_dir, pv);
            Ok(true)
        }
    }
}

fn gather(node: &Node, area: &DriverArea, pv: &str, wwid: &str) -> Result<Facts> {
    let table = mount_table()?;
    let staging = area.staging_dir(pv);
    let staged_at = mountinfo::mounted_at(&table, &staging).map(|m| m.mount_point.clone());
    let listed_by = area
        .pod_dirs_of(pv)
        .map_err(|e| FlexError::io("cannot list", area.kubelet_root.join("pods"), e))?;
    let mounted = if staged_at.is_none() && listed_by.is_empty() {
        let devs = release::devices_of(node, Some(wwid), &[]);
        release::holders(node, &table, &devs, &[])?
    } else {
        Vec::new()
    };
    Ok(Facts {
        locked: false,
        staged_at,
        listed_by,
        mounted,
        failed_recently: failed_recently(&node.settings.locks_dir, pv),
    })
}

fn failure_marker(locks_dir: &Path, pv: &str) -> PathBuf {
    locks_dir.join(format!("collect-{pv}.failed"))
}

fn failed_recently(locks_dir: &Path, pv: &str) -> bool {
    std::fs::metadata(failure_marker(locks_dir, pv))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age < CALL_RETRY_AFTER)
}

fn note_failure(locks_dir: &Path, pv: &str) {
    let _ = std::fs::write(failure_marker(locks_dir, pv), b"");
}

fn clear_failure(locks_dir: &Path, pv: &str) {
    let _ = std::fs::remove_file(failure_marker(locks_dir, pv));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free() -> Facts {
        Facts::default()
    }

    #[test]
    fn a_record_nothing_uses_is_collected() {
        assert_eq!(verdict(&free(), Sweep::AfterCall), Verdict::Collect);
        assert_eq!(verdict(&free(), Sweep::Installer), Verdict::Collect);
    }

    #[test]
    fn a_volume_in_use_or_still_expected_by_kubelet_is_kept() {
        let cases = [
            (
                Facts {
                    locked: true,
                    ..free()
                },
                "another call",
            ),
            (
                Facts {
                    staged_at: Some("/k/plugins/x/mounts/pv".into()),
                    ..free()
                },
                "staged at /k/plugins/x/mounts/pv",
            ),
            (
                Facts {
                    listed_by: vec!["/k/pods/u/volumes/pure~flex/pv".into()],
                    ..free()
                },
                "kubelet still lists it at /k/pods/u/volumes/pure~flex/pv",
            ),
            (
                Facts {
                    mounted: vec!["still mounted by 1 process(es) in 1 other mount namespace(s), e.g. pid 7 (sh) at /data".into()],
                    ..free()
                },
                "pid 7 (sh)",
            ),
        ];
        for (facts, why) in cases {
            for sweep in [Sweep::AfterCall, Sweep::Installer] {
                match verdict(&facts, sweep) {
                    Verdict::Keep(reason) => assert!(reason.contains(why), "{reason}"),
                    Verdict::Collect => panic!("collected: {facts:?}"),
                }
            }
        }
    }

    #[test]
    fn after_a_failure_calls_wait_but_the_installer_retries() {
        let facts = Facts {
            failed_recently: true,
            ..free()
        };
        assert!(matches!(
            verdict(&facts, Sweep::AfterCall),
            Verdict::Keep(_)
        ));
        assert_eq!(verdict(&facts, Sweep::Installer), Verdict::Collect);
    }

    #[test]
    fn failure_markers_expire_and_are_cleared() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(!failed_recently(dir.path(), "pv"));
        note_failure(dir.path(), "pv");
        assert!(failed_recently(dir.path(), "pv"));
        let old = SystemTime::now() - CALL_RETRY_AFTER - Duration::from_secs(1);
        std::fs::File::options()
            .write(true)
            .open(failure_marker(dir.path(), "pv"))
            .and_then(|f| f.set_modified(old))
            .expect("aged");
        assert!(!failed_recently(dir.path(), "pv"));
        clear_failure(dir.path(), "pv");
        assert!(!failure_marker(dir.path(), "pv").exists());
    }
}
