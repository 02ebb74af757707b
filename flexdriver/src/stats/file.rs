//! The statistics file on the node: read whole, updated under a flock (`<file>.lock`), replaced
//! atomically, so concurrent call-outs never lose a count and the installer never reads half a
//! file.
//!
//! Counting is best effort and bounded: a call waits at most [`LOCK_WAIT`] for the lock, a file
//! larger than [`MAX_FILE_BYTES`] or not parseable starts again from zero (Prometheus treats that
//! as a counter reset), and nothing here ever changes a call's reply.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Stats;
use crate::node::locks;
use crate::runtime::error::{FlexError, Result};
use crate::runtime::files::write_atomic;

/// Longest a call waits for another call's update of the file.
pub const LOCK_WAIT: Duration = Duration::from_secs(2);
/// A real file is a few KB; anything much larger is not ours.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// The statistics in `path`: `Ok(None)` when there is no file yet.
pub fn read(path: &Path) -> Result<Option<Stats>> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(FlexError::io("cannot read", path, e)),
        Ok(meta) if meta.len() > MAX_FILE_BYTES => {
            return Err(FlexError::Refused(format!(
                "{} is {} bytes, more than a statistics file can be ({MAX_FILE_BYTES})",
                path.display(),
                meta.len()
            )));
        }
        Ok(_) => {}
    }
    let text = match std::fs::read_to_string(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        other => other.map_err(|e| FlexError::io("cannot read", path, e))?,
    };
    let stats: Stats = serde_json::from_str(&text).map_err(|e| {
        FlexError::Refused(format!("{} is not a statistics file: {e}", path.display()))
    })?;
    Ok(Some(stats.bounded()))
}

/// Adds one call to the file.
pub fn record(path: &Path, callout: &str, reason: &str, took: Duration) -> Result<()> {
    let _lock = locks::acquire(&lock_path(path), LOCK_WAIT)?;
    let mut stats = match read(path) {
        Ok(stats) => stats.unwrap_or_default(),
        Err(e) => {
            log::warn!("call-out statistics start again from zero: {e}");
            Stats::default()
        }
    };
    if !stats.record(callout, reason, took) {
        return Ok(());
    }
    let text = serde_json::to_string(&stats)
        .map_err(|e| FlexError::Refused(format!("cannot encode statistics: {e}")))?;
    write_atomic(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_add_up_across_processes_sharing_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("stats").join("stats.json");
        assert_eq!(read(&path).expect("absent is fine"), None);
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let reason = if i % 2 == 0 { "success" } else { "io" };
                    record(&path, "mount", reason, Duration::from_millis(10)).expect("records");
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let stats = read(&path).expect("reads").expect("exists");
        assert_eq!(stats.calls["mount"]["success"], 4);
        assert_eq!(stats.calls["mount"]["io"], 4);
    }

    #[test]
    fn a_damaged_or_oversized_file_is_refused_and_recording_starts_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("stats.json");
        std::fs::write(&path, "{\"calls\": ").expect("write");
        assert!(read(&path).is_err());
        record(&path, "unmount", "success", Duration::ZERO).expect("records");
        assert_eq!(
            read(&path).expect("reads").expect("exists").calls["unmount"]["success"],
            1
        );
        std::fs::write(&path, vec![b' '; (MAX_FILE_BYTES + 1) as usize]).expect("write");
        let err = read(&path).expect_err("too big").to_string();
        assert!(err.contains("bytes"), "{err}");
    }
}
