//! `expandfs`: the claim grew. For flex PVs the controller manager never calls a driver: it raises
//! the PV's capacity by itself, and kubelet then calls `expandfs` on the node where the volume is
//! mounted, when a pod mounts it or (Kubernetes 1.15+) on the running pod. This flow makes the
//! array object at least the new size (the provisioner grows it too; whichever comes first does
//! it, under the one rule `flashvol_common::sizes::plan_growth`, so a node never grows what the
//! provisioner would refuse), makes the node see the new size, and grows the file system.
//! The caller holds the volume lock. Every step is repeatable and bounded by a deadline; the
//! crash points carry the steps' names.
//!
//! Block volumes, in order:
//! 1. `array-grown`: the FlashArray volume the staging record names holds the new size.
//! 2. `paths-rescanned`: the iSCSI sessions, every SCSI path of the volume's WWID
//!    (`device/rescan`) and its multipath map (`multipathd resize map`) re-read the capacity.
//! 3. `device-grown`: the staged device shows at least the new size.
//! 4. `filesystem-grown`: `xfs_growfs` on the staging mount, or `resize2fs` on the device.
//!
//! File systems: `array-grown` only. NFS clients see the FlashBlade file system's new size (and
//! hard limit) at once: nothing happens on the node, and the reply says so.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flashvol_common::config::SanType;
use flashvol_common::options::Backend;
use flashvol_common::sizes::{Growth, format_bytes, plan_growth};

use crate::array::{self, locate};
use crate::flow::release;
use crate::kubelet::layout::StagedVolume;
use crate::kubelet::request::MountRequest;
use crate::node::Node;
use crate::node::devices;
use crate::node::mountinfo::{self, MountEntry};
use crate::node::mounts;
use crate::node::record;
use crate::node::san;
use crate::runtime::crash::step_done;
use crate::runtime::error::{FlexError, Result};

/// What kubelet asks `expandfs` for, after the protocol edge checked its form.
pub struct ExpandRequest<'a> {
    pub request: &'a MountRequest,
    /// The PV's new capacity.
    pub new_bytes: u64,
}

/// Grows the volume and, for block volumes, the node's view of it and its file system. Returns
/// what was done, for the reply and the log.
pub fn expand(node: &Node, vol: &StagedVolume, req: &ExpandRequest<'_>) -> Result<String> {
    match req.request.volume.backend {
        Backend::Block => expand_block(node, vol, req),
        Backend::File => expand_file(node, req),
    }
}

fn expand_block(node: &Node, vol: &StagedVolume, req: &ExpandRequest<'_>) -> Result<String> {
    let d = node.deadlines();
    let staging = vol.staging_dir();
    let table = release::mount_table()?;
    let st = mountinfo::mounted_at(&table, &staging)
        .cloned()
        .ok_or_else(|| {
            FlexError::Refused(format!(
                "{} is not mounted on this node (nothing at {}): kubelet grows a volume's file \
                 system only where it is mounted; the next mount grows it",
                vol.pv_name,
                staging.display()
            ))
        })?;
    let rec = release::proven_record(node, &staging, &st, record::load(&vol.record_path())?)?;
    let wanted = &req.request.volume.array_volume;
    if &rec.array_volume != wanted {
        return Err(FlexError::Refused(format!(
            "{} holds FlashArray volume {}, but the PV names {wanted}: refusing to grow either",
            staging.display(),
            rec.array_volume
        )));
    }
    let fa = release::recorded_array(node, &rec)?;
    let name = rec.array_volume.clone();
    let current = fa.call(&format!("looking up volume {name}"), {
        let name = name.clone();
        move |c| c.get_volume(&name)
    })?;
    let size = ensure_size(
        Backend::Block,
        &format!("{name} on FlashArray {}", fa.endpoint),
        current.size,
        req.new_bytes,
        || Ok(fa.call("reading free space", |c| c.space())?.free()),
        |to| {
            let name = name.clone();
            Ok(fa
                .call(&format!("growing volume {name}"), move |c| {
                    c.extend_volume(&name, to)
                })?
                .size)
        },
    )?;
    step_done("array-grown");

    let device = staged_device(&st)?;
    let wwid = rec.wwid();
    rescan(node, &wwid, true)?;
    step_done("paths-rescanned");
    let device_bytes = wait_for_size(node, &device, &wwid, req.new_bytes)?;
    step_done("device-grown");
    mounts::grow(&node.tools, &st.fs_type, &staging, &device, d.mkfs)?;
    step_done("filesystem-grown");
    let fs_bytes = nix::sys::statvfs::statvfs(&staging)
        .map(|s| s.blocks() * s.fragment_size())
        .unwrap_or_default();
    Ok(format!(
        "{name} is {} on FlashArray {}; {} has {device_bytes} bytes; its {} file system now has \
         {fs_bytes} bytes",
        format_bytes(size),
        fa.endpoint,
        device.display(),
        st.fs_type
    ))
}

fn expand_file(node: &Node, req: &ExpandRequest<'_>) -> Result<String> {
    let volume = &req.request.volume;
    let fbs = array::flash_blades(&node.config, node.deadlines().array_call)?;
    let (fb, fs) = locate::locate(&fbs, &volume.array_volume, volume.array.as_ref())?;
    let name = fs.name.clone();
    let size = ensure_size(
        Backend::File,
        &format!("{name} on FlashBlade {}", fb.endpoint),
        fs.provisioned,
        req.new_bytes,
        || Ok(fb.call("reading free space", |c| c.space())?.free()),
        |to| {
            let name = name.clone();
            Ok(fb
                .call(&format!("growing file system {name}"), move |c| {
                    c.resize_file_system(&name, to)
                })?
                .provisioned)
        },
    )?;
    step_done("array-grown");
    Ok(format!(
        "{name} is provisioned {} on FlashBlade {}{}; NFS clients see the new size: nothing to \
         do on the node",
        format_bytes(size),
        fb.endpoint,
        if fs.hard_limit_enabled {
            " (the hard limit follows)"
        } else {
            ""
        }
    ))
}

/// Makes an array object of `current` bytes hold `wanted` (growing it with `grow` when the rule
/// says so, after checking the array's `free` bytes); returns its size afterwards. A refusal
/// changes nothing and says why.
fn ensure_size(
    backend: Backend,
    what: &str,
    current: u64,
    wanted: u64,
    free: impl FnOnce() -> Result<u64>,
    grow: impl FnOnce(u64) -> Result<u64>,
) -> Result<u64> {
    let refused = |why: flashvol_common::sizes::GrowthRefusal| {
        FlexError::Refused(format!(
            "cannot grow {what} to {}: {why}",
            format_bytes(wanted)
        ))
    };
    match plan_growth(backend, current, wanted).map_err(refused)? {
        Growth::Enough { current } => {
            log::info!("{what} is {current} bytes already: not growing it");
            Ok(current)
        }
        growth @ Growth::Grow { to, .. } => {
            growth.fits(free()?).map_err(refused)?;
            log::info!("growing {what} from {current} to {to} bytes");
            grow(to)
        }
    }
}

/// The device node a staging mount is mounted from (mountinfo's source), proven to be that
/// mount's device by its device number before anything reads or resizes it.
fn staged_device(st: &MountEntry) -> Result<PathBuf> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let source = Path::new(&st.source);
    let proven = std::fs::metadata(source).ok().is_some_and(|m| {
        m.file_type().is_block_device()
            && (
                nix::sys::stat::major(m.rdev()),
                nix::sys::stat::minor(m.rdev()),
            ) == (u64::from(st.dev.0), u64::from(st.dev.1))
    });
    if !proven {
        return Err(FlexError::Refused(format!(
            "{} is mounted from {}, which is not the block device {}:{}: refusing to resize it",
            st.mount_point.display(),
            st.source,
            st.dev.0,
            st.dev.1
        )));
    }
    Ok(source.to_path_buf())
}

/// Makes the node re-read the volume's capacity: iSCSI sessions (`sessions`; not on FC, which has
/// none), every SCSI path of `wwid`, then its multipath map.
fn rescan(node: &Node, wwid: &str, sessions: bool) -> Result<()> {
    let limit = node.deadlines().iscsiadm;
    if sessions && node.config.settings.block.san_type == SanType::Iscsi {
        san::rescan_sessions(&node.tools, limit)?;
    }
    let paths = san::rescan_paths(&node.settings.sysfs_root, wwid, limit)?;
    log::info!("rescanned the paths {paths:?} of {wwid}");
    san::resize_map(&node.tools, &node.settings.mapper_dir, wwid, limit)?;
    Ok(())
}

/// Waits until `device` shows at least `want` bytes, asking the paths and the map again every
/// second (a map resized before its paths keeps its old size); returns the size it shows.
fn wait_for_size(node: &Node, device: &Path, wwid: &str, want: u64) -> Result<u64> {
    let limit = node.deadlines().device_wait;
    let started = Instant::now();
    let mut asked = started;
    loop {
        let size = devices::size_bytes(device, limit)?;
        if size >= want {
            return Ok(size);
        }
        if started.elapsed() >= limit {
            return Err(FlexError::TimedOut {
                step: format!(
                    "waiting for {} to show {want} bytes after the rescan (it shows {size})",
                    device.display()
                ),
                limit,
            });
        }
        if asked.elapsed() >= Duration::from_secs(1) {
            if let Err(e) = rescan(node, wwid, false) {
                log::warn!("rescanning {wwid} again: {e}");
            }
            asked = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn an_object_already_large_enough_is_left_alone() {
        let grown = ensure_size(
            Backend::Block,
            "v",
            3 * GIB,
            2 * GIB,
            || panic!("no space needed"),
            |_| panic!("no growth"),
        );
        assert_eq!(grown.expect("enough"), 3 * GIB);
    }

    #[test]
    fn an_object_grows_to_what_the_array_allocates_when_it_fits() {
        let grown = ensure_size(
            Backend::Block,
            "v",
            GIB,
            2_000_000_001,
            || Ok(100 * GIB),
            |to| {
                assert_eq!(to, 2_000_000_512, "whole sectors");
                Ok(to)
            },
        );
        assert_eq!(grown.expect("grown"), 2_000_000_512);
    }

    #[test]
    fn refusals_change_nothing_and_say_why() {
        let no_room = ensure_size(
            Backend::Block,
            "k8s-pvc-1 on FlashArray fa",
            GIB,
            20 * GIB,
            || Ok(8 * GIB),
            |_| panic!("refused before growing"),
        )
        .expect_err("no room")
        .to_string();
        assert_eq!(
            no_room,
            "cannot grow k8s-pvc-1 on FlashArray fa to 20Gi: growing needs 19Gi more but the \
             array has 8Gi free (refused, nothing changed)"
        );
        let too_large = ensure_size(
            Backend::File,
            "fs",
            GIB,
            5 << 50,
            || panic!("refused before asking"),
            |_| panic!("refused before growing"),
        )
        .expect_err("too large")
        .to_string();
        assert!(
            too_large.contains("5Pi is over the 4Pi limit"),
            "{too_large}"
        );
    }

    #[test]
    fn only_the_block_device_of_the_mount_is_resized() {
        let entry = |source: &str| MountEntry {
            id: 1,
            parent: 0,
            dev: (7, 99),
            root: "/".into(),
            mount_point: "/staging".into(),
            options: "rw".into(),
            fs_type: "xfs".into(),
            source: source.into(),
            shared: None,
            master: None,
        };
        for source in ["/dev/null", "/nonexistent", "/etc/passwd", "tmpfs"] {
            assert!(staged_device(&entry(source)).is_err(), "{source}");
        }
    }
}
