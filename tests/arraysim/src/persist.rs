//! Crash-safe files: every write goes to a temporary file in the same directory, then is renamed
//! over the target, so a reader (or a simulator restarted after being killed) sees either the old
//! or the new content, never a torn one.
//!
//! Not synced to disk: a killed process loses nothing the kernel already has, and a simulator
//! need not survive a power loss. An fsync per state change, under the array's state lock, held
//! every other call to that array for the disk's flush (benchmarks share the machine with the
//! control plane and measure the provisioner, not the disk).

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .context("state file has no parent directory")?;
    let file_name = path
        .file_name()
        .context("state file has no name")?
        .to_string_lossy();
    let temp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let mut file = File::create(&temp).with_context(|| format!("creating {}", temp.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", temp.display()))?;
    drop(file);
    fs::rename(&temp, path)
        .with_context(|| format!("renaming {} to {}", temp.display(), path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("state.json");
        write_atomic(&target, b"one").expect("first write");
        write_atomic(&target, b"two").expect("second write");
        assert_eq!(fs::read(&target).expect("read back"), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .filter_map(|e| e.ok())
            .collect();
        assert_eq!(names.len(), 1);
    }
}
