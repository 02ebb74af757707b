//! Data behind the simulated objects: one sparse file per FlashArray volume or snapshot (named by
//! serial, so renames do not move data) and one directory per FlashBlade file system (named by id).
//! Copies keep holes, so cloning a mostly empty 10 GiB volume costs only its written extents.
//!
//! Thin, like the array: a backing file is sparse, so a volume costs only what was written to it.
//! A volume may be larger than one file can be on the host (a FlashArray takes up to 4 PiB; ext4
//! with 4 KiB blocks stops at 16 TiB − 4 KiB): its backing file is then as long as the host file
//! system allows ([`size_sparse`]), and the volume's size stays what the array was told. The
//! test fabric exposes the backing file as a loop device, so a node sees the backed length and
//! can never write past it.

use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::unistd::{Whence, lseek};

pub fn volume_path(state_dir: &Path, serial: &str) -> PathBuf {
    state_dir.join("volumes").join(format!("{serial}.img"))
}

pub fn filesystem_path(state_dir: &Path, id: &str) -> PathBuf {
    state_dir.join("filesystems").join(id)
}

/// Creates (or resizes) the sparse backing file of a volume of `size` bytes; returns its length:
/// `size`, or less when the host file system cannot hold a file that long ([`size_sparse`]).
pub fn create_sparse(path: &Path, size: u64) -> Result<u64> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    size_sparse(&file, size).with_context(|| format!("sizing {}", path.display()))
}

/// Sets a sparse file's length to `size`, or, when the host file system refuses a file that long
/// (`EFBIG`), to the longest length it accepts, in whole 512-byte sectors; returns the length set.
/// Growing never shortens the file below its current length, so written data is never cut.
pub fn size_sparse(file: &File, size: u64) -> std::io::Result<u64> {
    let too_large = |e: &std::io::Error| e.raw_os_error() == Some(nix::errno::Errno::EFBIG as i32);
    match file.set_len(size) {
        Err(e) if too_large(&e) => {}
        other => return other.map(|()| size),
    }
    // Bisect, in whole sectors, between a length known to fit (the current one) and one known
    // not to.
    let current = file.metadata()?.len();
    let (mut fits, mut refused) = (current / SECTOR, size.div_ceil(SECTOR));
    while refused - fits > 1 {
        let middle = fits + (refused - fits) / 2;
        match file.set_len(middle * SECTOR) {
            Ok(()) => fits = middle,
            Err(e) if too_large(&e) => refused = middle,
            Err(e) => return Err(e),
        }
    }
    let backed = (fits * SECTOR).max(current);
    file.set_len(backed)?;
    Ok(backed)
}

/// Loop devices and Purity both count in 512-byte sectors.
const SECTOR: u64 = 512;

pub fn remove_file_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != ErrorKind::NotFound => {
            Err(error).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

pub fn remove_dir_if_present(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Err(error) if error.kind() != ErrorKind::NotFound => {
            Err(error).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Bytes actually allocated on disk (what "used" space means in the simulator).
pub fn allocated_bytes(path: &Path) -> u64 {
    fs::symlink_metadata(path)
        .map(|meta| meta.blocks() * 512)
        .unwrap_or(0)
}

/// Allocated bytes of a directory tree.
pub fn tree_allocated_bytes(path: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(path) else {
        return allocated_bytes(path);
    };
    entries
        .filter_map(|entry| entry.ok())
        .map(|entry| {
            let child = entry.path();
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                tree_allocated_bytes(&child)
            } else {
                allocated_bytes(&child)
            }
        })
        .sum()
}

/// Copies `source` over `dest` (created if needed), keeping holes, and sizes `dest` for a volume
/// of `size` bytes ([`size_sparse`]).
pub fn copy_sparse(source: &Path, dest: &Path, size: u64) -> Result<()> {
    let input = File::open(source).with_context(|| format!("opening {}", source.display()))?;
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let output = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(dest)
        .with_context(|| format!("opening {}", dest.display()))?;
    let backed = size_sparse(&output, size)?;
    let source_len = input.metadata()?.len().min(backed);
    let mut buffer = vec![0u8; 1 << 20];
    for (start, end) in data_extents(&input, source_len) {
        let mut offset = start;
        while offset < end {
            let want =
                usize::try_from((end - offset).min(buffer.len() as u64)).unwrap_or(buffer.len());
            let read = input.read_at(&mut buffer[..want], offset)?;
            if read == 0 {
                break;
            }
            // Zero blocks stay holes in the copy, even when the source had them allocated.
            if buffer[..read].iter().any(|b| *b != 0) {
                output.write_all_at(&buffer[..read], offset)?;
            }
            offset += read as u64;
        }
    }
    output
        .sync_all()
        .with_context(|| format!("syncing {}", dest.display()))
}

/// Data extents of a file via SEEK_DATA/SEEK_HOLE; the whole file when the filesystem lacks them.
fn data_extents(file: &File, len: u64) -> Vec<(u64, u64)> {
    let mut extents = Vec::new();
    let mut offset: u64 = 0;
    while offset < len {
        let Ok(position) = i64::try_from(offset) else {
            break;
        };
        let data = match lseek(file, position, Whence::SeekData) {
            Ok(data) => data as u64,
            Err(nix::errno::Errno::ENXIO) => break,
            Err(_) => return vec![(0, len)],
        };
        let hole = match lseek(file, data as i64, Whence::SeekHole) {
            Ok(hole) => (hole as u64).min(len),
            Err(_) => return vec![(0, len)],
        };
        if hole <= data {
            break;
        }
        extents.push((data, hole));
        offset = hole;
    }
    extents
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_volume_larger_than_the_host_allows_is_backed_as_far_as_it_can_be() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.img");
        let size = 500u64 << 40;
        let backed = create_sparse(&path, size).expect("sized");
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), backed);
        assert!(backed <= size && backed % SECTOR == 0, "{backed}");
        // Either the host took all of it (xfs, tmpfs) or it refused longer files (ext4: 16 TiB).
        if backed < size {
            let file = OpenOptions::new().write(true).open(&path).expect("open");
            assert!(
                file.set_len(backed + SECTOR).is_err(),
                "the longest length was found"
            );
        }
        assert!(allocated_bytes(&path) < 1 << 20, "still sparse");
    }

    #[test]
    fn growing_past_the_host_limit_keeps_written_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("v.img");
        create_sparse(&path, 64 << 20).expect("create");
        let file = OpenOptions::new().write(true).open(&path).expect("open");
        file.write_all_at(b"keep", 60 << 20).expect("write");
        let backed = create_sparse(&path, 4 << 50).expect("grown");
        assert!(backed >= 64 << 20);
        let mut four = [0u8; 4];
        File::open(&path)
            .expect("open")
            .read_exact_at(&mut four, 60 << 20)
            .expect("read");
        assert_eq!(&four, b"keep");
    }

    #[test]
    fn sparse_copy_keeps_data_and_size_but_not_holes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = dir.path().join("a.img");
        let dest = dir.path().join("b.img");
        create_sparse(&source, 64 << 20).expect("create");
        let file = OpenOptions::new().write(true).open(&source).expect("open");
        file.write_all_at(b"hello", 32 << 20).expect("write");
        copy_sparse(&source, &dest, 128 << 20).expect("copy");
        let copied = File::open(&dest).expect("open copy");
        let mut five = [0u8; 5];
        copied.read_exact_at(&mut five, 32 << 20).expect("read");
        assert_eq!(&five, b"hello");
        assert_eq!(copied.metadata().expect("meta").len(), 128 << 20);
        assert!(allocated_bytes(&dest) < 8 << 20, "copy should stay sparse");
    }
}
