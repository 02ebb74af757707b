//! Block devices of a FlashArray volume, identified only by its WWID (`3624a9370<serial>`).
//!
//! Nothing here acts on a device whose identity it has not read back from sysfs: the SCSI
//! `device/wwid` (`naa.624a9370<serial>`) of a path device, or the `dm/uuid`
//! (`mpath-3624a9370<serial>`) of a multipath map. A PSO cleanup that trusted less than that
//! removed other Pure LUNs, including boot-from-SAN disks (helm-charts#97).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::runtime::error::{FlexError, Result};

/// One entry of `<sysfs>/block`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDevice {
    /// Kernel name: `sdc`, `dm-3`, `loop7`.
    pub name: String,
    pub dev: Option<(u32, u32)>,
    /// The WWID this device proves it has (`3624a9370…`), if any.
    pub wwid: Option<String>,
    pub is_multipath: bool,
}

/// Normalises sysfs identities to multipath's WWID spelling: `naa.624a…` → `3624a…`,
/// `mpath-3624a…` → `3624a…`.
pub fn wwid_of_sysfs(scsi_wwid: Option<&str>, dm_uuid: Option<&str>) -> Option<(String, bool)> {
    if let Some(uuid) = dm_uuid.map(str::trim) {
        if let Some(w) = uuid.strip_prefix("mpath-") {
            return Some((w.to_ascii_lowercase(), true));
        }
        return None;
    }
    let raw = scsi_wwid?.trim().to_ascii_lowercase();
    raw.strip_prefix("naa.")
        .map(|naa| (format!("3{naa}"), false))
}

/// The WWID without multipath's leading `3` (the NAA designator type): udev's `wwn-0x` part.
fn naa_part(wwid: &str) -> &str {
    wwid.strip_prefix('3').unwrap_or(wwid)
}

fn read_trimmed(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned())
}

fn parse_dev(text: &str) -> Option<(u32, u32)> {
    let (a, b) = text.trim().split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Every block device sysfs lists, with its proven identity.
pub fn scan(sysfs_root: &Path) -> Vec<BlockDevice> {
    let Ok(entries) = std::fs::read_dir(sysfs_root.join("block")) else {
        return Vec::new();
    };
    let mut found: Vec<BlockDevice> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_owned();
            let dir = e.path();
            let scsi = read_trimmed(&dir.join("device/wwid"));
            let dm = read_trimmed(&dir.join("dm/uuid"));
            let identity = wwid_of_sysfs(scsi.as_deref(), dm.as_deref());
            Some(BlockDevice {
                name,
                dev: read_trimmed(&dir.join("dev")).and_then(|d| parse_dev(&d)),
                is_multipath: identity.as_ref().is_some_and(|(_, mp)| *mp),
                wwid: identity.map(|(w, _)| w),
            })
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

/// The kernel name a device node or link resolves to (`/dev/disk/by-id/wwn-…` → `sdc`).
fn kernel_name(node: &Path) -> Option<String> {
    let real = std::fs::canonicalize(node).ok()?;
    real.file_name()?.to_str().map(str::to_owned)
}

/// Where the volume's device is right now, if it is there and proves its identity.
/// `want_multipath`: only a multipath map will do.
pub fn locate(
    sysfs_root: &Path,
    mapper_dir: &Path,
    device_dir: &Path,
    wwid: &str,
    want_multipath: bool,
) -> Option<PathBuf> {
    let devices = scan(sysfs_root);
    let proven = |node: &Path, multipath: bool| {
        let name = kernel_name(node)?;
        devices
            .iter()
            .find(|d| {
                d.name == name && d.wwid.as_deref() == Some(wwid) && d.is_multipath == multipath
            })
            .map(|_| node.to_path_buf())
    };
    let map = mapper_dir.join(wwid);
    if let Some(found) = proven(&map, true) {
        return Some(found);
    }
    if want_multipath {
        return None;
    }
    let by_id = device_dir.join(format!("wwn-0x{}", naa_part(wwid)));
    proven(&by_id, false)
}

/// Waits for the volume's device. With multipathd running the map is preferred: a single path
/// is accepted only in the second half of the wait (a map that never forms, e.g. a blacklisted
/// device, should not fail the mount).
pub fn wait_for(
    sysfs_root: &Path,
    mapper_dir: &Path,
    device_dir: &Path,
    wwid: &str,
    multipathd_running: bool,
    limit: Duration,
) -> Result<PathBuf> {
    let started = Instant::now();
    loop {
        let elapsed = started.elapsed();
        let want_multipath = multipathd_running && elapsed < limit / 2;
        if let Some(dev) = locate(sysfs_root, mapper_dir, device_dir, wwid, want_multipath) {
            return Ok(dev);
        }
        if elapsed >= limit {
            return Err(FlexError::TimedOut {
                step: format!(
                    "waiting for the device with WWID {wwid} ({}/{wwid} or {}/wwn-0x{})",
                    mapper_dir.display(),
                    device_dir.display(),
                    naa_part(wwid)
                ),
                limit,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The size in bytes of the block device at `node` (its end, as `lseek(SEEK_END)` reports it:
/// no I/O reaches the device), under a deadline all the same (opening a dead path can stall).
pub fn size_bytes(node: &Path, limit: Duration) -> Result<u64> {
    use std::io::{Seek, SeekFrom};
    let owned = node.to_path_buf();
    let step = format!("reading the size of {}", node.display());
    crate::runtime::deadline::within(&step, limit, move || {
        std::fs::File::open(&owned)?.seek(SeekFrom::End(0))
    })?
    .map_err(|e| FlexError::io("cannot read the size of", node, e))
}

/// The WWID of the device with this `major:minor`, if it proves one.
pub fn wwid_of_dev(sysfs_root: &Path, dev: (u32, u32)) -> Option<String> {
    scan(sysfs_root)
        .into_iter()
        .find(|d| d.dev == Some(dev))
        .and_then(|d| d.wwid)
}

/// Path (non-multipath) devices proven to carry `wwid`.
pub fn paths_of(sysfs_root: &Path, wwid: &str) -> Vec<BlockDevice> {
    scan(sysfs_root)
        .into_iter()
        .filter(|d| !d.is_multipath && d.wwid.as_deref() == Some(wwid))
        .collect()
}

/// Removes the SCSI devices of `wwid` (writes `1` to `device/delete`), and only those.
pub fn delete_paths(sysfs_root: &Path, wwid: &str) -> Result<Vec<String>> {
    let mut deleted = Vec::new();
    for dev in paths_of(sysfs_root, wwid) {
        let delete = sysfs_root
            .join("block")
            .join(&dev.name)
            .join("device/delete");
        match std::fs::write(&delete, "1") {
            Ok(()) => deleted.push(dev.name),
            // Gone between the scan and the write: what we wanted.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(FlexError::io("cannot delete SCSI device via", delete, e)),
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WWID: &str = "3624a9370b75f8356604b431d00011010";

    fn fake_device(sysfs: &Path, name: &str, dev: &str, scsi: Option<&str>, dm: Option<&str>) {
        let dir = sysfs.join("block").join(name);
        std::fs::create_dir_all(dir.join("device")).expect("mkdir");
        std::fs::write(dir.join("dev"), format!("{dev}\n")).expect("dev");
        if let Some(w) = scsi {
            std::fs::write(dir.join("device/wwid"), format!("{w}\n")).expect("wwid");
            std::fs::write(dir.join("device/delete"), "").expect("delete");
        }
        if let Some(u) = dm {
            std::fs::create_dir_all(dir.join("dm")).expect("mkdir");
            std::fs::write(dir.join("dm/uuid"), format!("{u}\n")).expect("uuid");
        }
    }

    #[test]
    fn sysfs_identities_normalise_to_the_wwid() {
        assert_eq!(
            wwid_of_sysfs(Some("naa.624A9370B75F8356604B431D00011010"), None),
            Some((WWID.to_owned(), false))
        );
        assert_eq!(
            wwid_of_sysfs(None, Some(&format!("mpath-{WWID}"))),
            Some((WWID.to_owned(), true))
        );
        assert_eq!(wwid_of_sysfs(None, Some("LVM-abc")), None);
        assert_eq!(wwid_of_sysfs(Some("t10.ATA disk"), None), None);
    }

    #[test]
    fn only_devices_with_the_volumes_wwid_are_deleted() {
        let sys = tempfile::tempdir().expect("tempdir");
        fake_device(
            sys.path(),
            "sdb",
            "8:16",
            Some("naa.624a9370b75f8356604b431d00011010"),
            None,
        );
        fake_device(
            sys.path(),
            "sdc",
            "8:32",
            Some("naa.624a9370b75f8356604b431d00011010"),
            None,
        );
        // Another Pure LUN (say, the boot disk) on the same array.
        fake_device(
            sys.path(),
            "sda",
            "8:0",
            Some("naa.624a9370b75f8356604b431d00000001"),
            None,
        );
        fake_device(
            sys.path(),
            "dm-0",
            "253:0",
            None,
            Some(&format!("mpath-{WWID}")),
        );
        let deleted = delete_paths(sys.path(), WWID).expect("deleted");
        assert_eq!(deleted, ["sdb", "sdc"]);
        let read = |n: &str| {
            std::fs::read_to_string(sys.path().join("block").join(n).join("device/delete"))
                .expect("read")
        };
        assert_eq!(read("sdb"), "1");
        assert_eq!(read("sda"), "", "a foreign LUN is never touched");
        assert_eq!(wwid_of_dev(sys.path(), (253, 0)).as_deref(), Some(WWID));
    }

    #[test]
    fn a_device_is_used_only_when_its_identity_matches() {
        let root = tempfile::tempdir().expect("tempdir");
        let sys = root.path().join("sys");
        let by_id = root.path().join("by-id");
        let mapper = root.path().join("mapper");
        std::fs::create_dir_all(&by_id).expect("mkdir");
        std::fs::create_dir_all(&mapper).expect("mkdir");
        let node = root.path().join("sdq");
        std::fs::write(&node, "").expect("node");
        let link = by_id.join(format!("wwn-0x{}", &WWID[1..]));
        std::os::unix::fs::symlink(&node, &link).expect("link");
        assert_eq!(
            locate(&sys, &mapper, &by_id, WWID, false),
            None,
            "no sysfs proof yet"
        );
        fake_device(
            &sys,
            "sdq",
            "65:0",
            Some("naa.624a9370b75f8356604b431d00000002"),
            None,
        );
        assert_eq!(
            locate(&sys, &mapper, &by_id, WWID, false),
            None,
            "wrong WWID behind the link"
        );
        std::fs::write(
            sys.join("block/sdq/device/wwid"),
            "naa.624a9370b75f8356604b431d00011010",
        )
        .expect("w");
        assert_eq!(
            locate(&sys, &mapper, &by_id, WWID, false),
            Some(link.clone())
        );
        assert_eq!(
            locate(&sys, &mapper, &by_id, WWID, true),
            None,
            "multipath wanted"
        );
        let err = wait_for(
            &sys,
            &mapper,
            &by_id,
            "3624a9370ffffffffffffffffffffffff",
            false,
            Duration::from_millis(100),
        )
        .expect_err("absent");
        assert!(matches!(err, FlexError::TimedOut { .. }));
    }
}
