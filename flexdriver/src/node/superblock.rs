//! How large a file system is, read from its superblock on the device: what `mount` compares with
//! the device's size to grow a file system that does not fill its device (a volume grown on the
//! array while no pod used it, or an `expandfs` that never came).
//!
//! Read from the device itself rather than asked of a tool: no extra program on the node, and the
//! answer is exact (`df` shows the size minus metadata, which differs by file system and size).
//! Only the types the driver formats are known: xfs, ext4, ext3 (and ext2).

use std::path::Path;
use std::time::Duration;

use crate::runtime::deadline;
use crate::runtime::error::{FlexError, Result};

/// Bytes read from the start of the device: both superblocks lie within them.
const HEAD: usize = 4096;

/// xfs: the superblock at byte 0, big-endian: magic `XFSB`, block size (u32) at 4, data blocks
/// (u64) at 8.
fn xfs_bytes(head: &[u8]) -> Option<u64> {
    if head.get(0..4)? != b"XFSB" {
        return None;
    }
    let block_size = u32::from_be_bytes(head.get(4..8)?.try_into().ok()?);
    let blocks = u64::from_be_bytes(head.get(8..16)?.try_into().ok()?);
    blocks.checked_mul(u64::from(block_size))
}

/// ext2/3/4: the superblock at byte 1024, little-endian: blocks (low u32) at 4, log2(block size
/// / 1024) at 24, magic 0xEF53 at 56, incompatible features at 96, blocks (high u32) at 0x150
/// when the 64bit feature is on.
fn ext_bytes(head: &[u8]) -> Option<u64> {
    let sb = head.get(1024..2048)?;
    let le32 = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(sb.get(at..at + 4)?.try_into().ok()?))
    };
    if u16::from_le_bytes(sb.get(56..58)?.try_into().ok()?) != 0xEF53 {
        return None;
    }
    const INCOMPAT_64BIT: u32 = 0x80;
    let high = if le32(96)? & INCOMPAT_64BIT != 0 {
        le32(0x150)?
    } else {
        0
    };
    let blocks = (u64::from(high) << 32) | u64::from(le32(4)?);
    // ext block sizes are 1 KiB to 64 KiB; anything else is not a superblock.
    let log_block = le32(24)?;
    if log_block > 6 {
        return None;
    }
    let block_size = 1024u64 << log_block;
    blocks.checked_mul(block_size)
}

/// The size in bytes of the xfs or ext file system whose first bytes are `head`, if it is one.
pub fn file_system_bytes(head: &[u8]) -> Option<u64> {
    xfs_bytes(head).or_else(|| ext_bytes(head))
}

/// Reads the file system size from `device` (under a deadline: a dead device may never answer).
/// `None` when the device holds no file system the driver knows.
pub fn read(device: &Path, limit: Duration) -> Result<Option<u64>> {
    let owned = device.to_path_buf();
    let step = format!("reading the superblock of {}", device.display());
    let head = deadline::within(&step, limit, move || -> std::io::Result<Vec<u8>> {
        use std::io::Read;
        let mut head = Vec::with_capacity(HEAD);
        std::fs::File::open(&owned)?
            .take(HEAD as u64)
            .read_to_end(&mut head)?;
        Ok(head)
    })?
    .map_err(|e| FlexError::io("cannot read the superblock of", device, e))?;
    Ok(file_system_bytes(&head))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xfs(block_size: u32, blocks: u64) -> Vec<u8> {
        let mut head = vec![0u8; HEAD];
        head[0..4].copy_from_slice(b"XFSB");
        head[4..8].copy_from_slice(&block_size.to_be_bytes());
        head[8..16].copy_from_slice(&blocks.to_be_bytes());
        head
    }

    fn ext(log_block: u32, blocks: u64, sixty_four_bit: bool) -> Vec<u8> {
        let mut head = vec![0u8; HEAD];
        let sb = &mut head[1024..2048];
        sb[4..8].copy_from_slice(&(blocks as u32).to_le_bytes());
        sb[24..28].copy_from_slice(&log_block.to_le_bytes());
        sb[56..58].copy_from_slice(&0xEF53u16.to_le_bytes());
        if sixty_four_bit {
            sb[96..100].copy_from_slice(&0x80u32.to_le_bytes());
            sb[0x150..0x154].copy_from_slice(&((blocks >> 32) as u32).to_le_bytes());
        }
        head
    }

    #[test]
    fn xfs_and_ext_sizes_are_read_from_their_superblocks() {
        assert_eq!(file_system_bytes(&xfs(4096, 262_144)), Some(1 << 30));
        assert_eq!(file_system_bytes(&ext(2, 262_144, false)), Some(1 << 30));
        assert_eq!(
            file_system_bytes(&ext(2, 5 << 32, true)),
            Some((5u64 << 32) * 4096),
            "64bit ext4 uses the high word"
        );
        assert_eq!(
            file_system_bytes(&ext(0, 1 << 20, false)),
            Some(1 << 30),
            "1 KiB blocks"
        );
    }

    #[test]
    fn anything_else_is_not_a_known_file_system() {
        assert_eq!(file_system_bytes(&[0u8; HEAD]), None);
        assert_eq!(file_system_bytes(b"XFSB"), None, "truncated");
        assert_eq!(
            file_system_bytes(&xfs(u32::MAX, u64::MAX)),
            None,
            "overflow"
        );
        assert_eq!(
            file_system_bytes(&ext(99, 1, false)),
            None,
            "absurd block size"
        );
        assert_eq!(file_system_bytes(&[]), None);
    }

    #[test]
    fn a_real_image_is_read_through_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let image = dir.path().join("fs.img");
        std::fs::write(&image, xfs(4096, 25_600)).expect("write");
        assert_eq!(
            read(&image, Duration::from_secs(5)).expect("read"),
            Some(100 << 20)
        );
        std::fs::write(&image, b"short").expect("write");
        assert_eq!(read(&image, Duration::from_secs(5)).expect("read"), None);
        assert!(read(&dir.path().join("absent"), Duration::from_secs(5)).is_err());
    }
}
