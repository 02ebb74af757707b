//! FlashArray volumes: `mount` (connect, find the device, format once, stage, bind) and the
//! block half of `unmount` (when the last bind is gone: unstage, remove the devices, disconnect).
//! The caller holds the volume lock.

use std::path::Path;

use flashvol_common::config::{FsType, SanType};
use flashvol_common::flasharray::Volume;
use flashvol_common::names;

use crate::array::{self, Fa, fencing, hosts, locate};
use crate::kubelet::layout::PodVolume;
use crate::kubelet::request::MountRequest;
use crate::node::Node;
use crate::node::devices;
use crate::node::mountinfo::{self, MountEntry};
use crate::node::mounts;
use crate::node::record::{self, VolumeRecord};
use crate::node::san;
use crate::node::superblock;
use crate::runtime::crash::step_done;
use crate::runtime::error::{FlexError, Result};

pub(super) fn mount_table() -> Result<Vec<MountEntry>> {
    mountinfo::read().map_err(|e| FlexError::io("cannot read", "/proc/self/mountinfo", e))
}

fn mkdir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| FlexError::io("cannot create", path, e))
}

pub fn mount(node: &Node, vol: &PodVolume, req: &MountRequest) -> Result<()> {
    let d = node.deadlines();
    let staging = vol.staging_dir();
    let table = mount_table()?;
    if let Some(existing) = mountinfo::mounted_at(&table, &vol.pod_dir) {
        let staged = mountinfo::mounted_at(&table, &staging);
        if staged.is_some_and(|s| existing.same_content(s)) {
            if req.read_only && !existing.is_read_only() {
                mounts::remount_read_only(&node.tools, &vol.pod_dir, d.mount)?;
            }
            log::info!("{} is already mounted", vol.pod_dir.display());
            return Ok(());
        }
        return Err(FlexError::Refused(format!(
            "{} already has a mount of {} that is not this volume's",
            vol.pod_dir.display(),
            existing.source
        )));
    }

    // Another pod on this node already staged the volume: only the bind is missing.
    let recorded = record::load(&vol.record_path())?;
    let staged_wwid = mountinfo::mounted_at(&table, &staging)
        .and_then(|s| devices::wwid_of_dev(&node.settings.sysfs_root, s.dev));
    let already_staged = matches!((&recorded, &staged_wwid), (Some(r), Some(w)) if r.wwid() == *w);
    if !already_staged {
        attach_and_stage(node, vol, req)?;
    }
    if let Some(gid) = req.fs_group {
        mounts::apply_fs_group(&staging, gid)?;
    }
    step_done("ownership-set");
    mkdir(&vol.pod_dir)?;
    mounts::bind(&node.tools, &staging, &vol.pod_dir, d.mount)?;
    if req.read_only {
        mounts::remount_read_only(&node.tools, &vol.pod_dir, d.mount)?;
    }
    step_done("bind-mounted");
    log::info!(
        "mounted {} ({}) at {}{}",
        req.volume.array_volume,
        vol.pv_name,
        vol.pod_dir.display(),
        if req.read_only { " read-only" } else { "" }
    );
    Ok(())
}

fn attach_and_stage(node: &Node, vol: &PodVolume, req: &MountRequest) -> Result<()> {
    let d = node.deadlines();
    let block = &node.config.settings.block;
    let fas = array::flash_arrays(&node.config, d.array_call)?;
    let (fa, volume) = locate::locate(&fas, &req.volume.array_volume, req.volume.array.as_ref())?;
    let wwid = checked_wwid(&fa, &volume)?;
    record::store(
        &vol.record_path(),
        &VolumeRecord {
            array_endpoint: fa.endpoint.clone(),
            array_volume: volume.name.clone(),
            serial: volume.serial.clone(),
        },
    )?;
    step_done("record-written");

    let host = hosts::ensure_host(node, &fa)?;
    step_done("host-registered");
    if block.preempt_rwo_attachments && !req.shared {
        fencing::fence(&fa, &volume.name, &host)?;
    }
    step_done("fenced");
    let lun = hosts::connect(&fa, &host, &volume.name)?;
    log::info!(
        "{} is connected to {host} as LUN {lun} on {}",
        volume.name,
        fa.endpoint
    );
    step_done("volume-connected");

    match block.san_type {
        SanType::Iscsi => {
            let ports = fa.call("listing ports", |c| c.list_ports())?;
            let targets = san::iscsi_targets(&ports, &block.iscsi_allowed_cidrs);
            san::iscsi_login(&node.tools, &targets, block.iscsi_login_timeout, d.iscsiadm)?;
        }
        SanType::Fc => {
            san::scsi_host_rescan(&node.settings.sysfs_root)?;
        }
    }
    step_done("paths-scanned");
    let multipathd = san::multipathd_running(&node.tools, d.iscsiadm);
    let device = devices::wait_for(
        &node.settings.sysfs_root,
        &node.settings.mapper_dir,
        &node.settings.device_dir,
        &wwid,
        multipathd,
        d.device_wait,
    )?;
    log::info!("{} is {}", volume.name, device.display());
    step_done("device-found");

    let staging = vol.staging_dir();
    let table = mount_table()?;
    if let Some(st) = mountinfo::mounted_at(&table, &staging) {
        // Staged by an earlier call that crashed before writing its bind: keep it, but only
        // if it really is this volume.
        let on = devices::wwid_of_dev(&node.settings.sysfs_root, st.dev);
        if on.as_deref() != Some(wwid.as_str()) {
            return Err(FlexError::Refused(format!(
                "{} is mounted from a device with WWID {on:?}, not {wwid}",
                staging.display()
            )));
        }
        step_done("formatted");
        fill_device(node, &device, &st.fs_type, Some(&staging));
        step_done("staging-mounted");
        return Ok(());
    }
    let wanted = match &req.fs_type {
        Some(t) => t
            .parse::<FsType>()
            .map_err(|e| FlexError::Request(format!("fsType: {e}")))?,
        None => block.fs_type,
    };
    let found = mounts::probe(&node.tools, &device, d.mkfs)?;
    let formatted_now = found.is_none();
    let fs_type = match found {
        Some(existing) => {
            log::info!(
                "{} already has a {existing} file system: not formatting",
                volume.name
            );
            existing
        }
        None => {
            let args = mounts::mkfs_args(
                wanted,
                req.volume.create_options.as_deref(),
                block.fs_type,
                &block.mkfs_options,
            );
            log::info!(
                "formatting {} ({}) as {wanted} {}",
                volume.name,
                device.display(),
                args.join(" ")
            );
            mounts::mkfs(&node.tools, wanted, &args, &device, d.mkfs)?;
            wanted.as_str().to_owned()
        }
    };
    step_done("formatted");
    if !formatted_now && fs_type != "xfs" {
        fill_device(node, &device, &fs_type, None);
    }
    mkdir(&staging)?;
    let options = mounts::block_mount_options(
        &fs_type,
        req.volume
            .mount_options
            .as_deref()
            .unwrap_or(&block.mount_options),
    );
    mounts::mount(
        &node.tools,
        Some(&fs_type),
        &device.to_string_lossy(),
        &staging,
        &options,
        d.mount,
    )?;
    if !formatted_now && fs_type == "xfs" {
        fill_device(node, &device, &fs_type, Some(&staging));
    }
    step_done("staging-mounted");
    Ok(())
}

/// The safety net behind `expandfs`: a file system that leaves much of its device unused (the
/// volume grew on the array while no pod used it here, or kubelet never called `expandfs`, as
/// before Kubernetes 1.15 for volumes in use) is grown to fill it before any pod sees it. Its size
/// comes from its superblock, the device's from the device. ext file systems are grown before
/// they are mounted (`mounted_at` is `None`: checked, then resized offline, which needs no
/// privilege beyond writing the device), xfs ones once mounted (xfs grows only online).
///
/// Best effort: a failure is logged and the mount goes on, since the pod's data is all there
/// and a smaller file system beats no mount; `expandfs` is where a failure to grow is an error.
fn fill_device(node: &Node, device: &Path, fs_type: &str, mounted_at: Option<&Path>) {
    let d = node.deadlines();
    let outcome = (|| -> Result<()> {
        let Some(fs_bytes) = superblock::read(device, d.mkfs)? else {
            return Ok(());
        };
        let device_bytes = devices::size_bytes(device, d.device_wait)?;
        if !mounts::leaves_device_unused(fs_bytes, device_bytes) {
            return Ok(());
        }
        log::info!(
            "the {fs_type} file system on {} has {fs_bytes} bytes, its device {device_bytes}: growing it",
            device.display()
        );
        match mounted_at {
            Some(mount_point) => mounts::grow(&node.tools, fs_type, mount_point, device, d.mkfs),
            None => mounts::grow_offline(&node.tools, fs_type, device, d.mkfs),
        }
    })();
    if let Err(e) = outcome {
        log::warn!(
            "could not grow the {fs_type} file system on {} to fill its device: {e}",
            device.display()
        );
    }
}

fn checked_wwid(fa: &Fa, volume: &Volume) -> Result<String> {
    if !names::is_valid_serial(&volume.serial) {
        return Err(FlexError::Refused(format!(
            "FlashArray {} reported serial {:?} for {}, which is not 24 hex digits",
            fa.endpoint, volume.serial, volume.name
        )));
    }
    Ok(names::volume_wwid(&volume.serial))
}

/// After a pod's bind is gone: if no other bind of the staging mount is left, unstage the volume
/// and let go of it (devices, then the array connection). Nothing staged and nothing recorded
/// means nothing to do (a file volume, or cleaned up already).
pub fn release_if_unused(node: &Node, vol: &PodVolume) -> Result<()> {
    let d = node.deadlines();
    let sysfs = &node.settings.sysfs_root;
    let staging = vol.staging_dir();
    let mut recorded = record::load(&vol.record_path())?;
    let table = mount_table()?;
    if let Some(st) = mountinfo::mounted_at(&table, &staging) {
        let users: Vec<_> = mountinfo::binds_of(&table, st)
            .map(|b| b.mount_point.display().to_string())
            .collect();
        if !users.is_empty() {
            log::info!(
                "{} stays staged: still mounted at {}",
                vol.pv_name,
                users.join(", ")
            );
            return Ok(());
        }
        recorded = Some(prove_staged(node, &staging, st, recorded)?);
        // Stacked mounts (a staging mount repeated by an old crash) all go; bounded, in case
        // the table never empties.
        for _ in 0..16 {
            if mountinfo::mounted_at(&mount_table()?, &staging).is_none() {
                break;
            }
            mounts::unmount(&staging, d.mount)?;
        }
    }
    step_done("staging-unmounted");
    let Some(rec) = recorded else {
        return Ok(());
    };
    let wwid = rec.wwid();
    san::flush_map(&node.tools, &node.settings.mapper_dir, &wwid, d.iscsiadm)?;
    step_done("multipath-flushed");
    let deleted = devices::delete_paths(sysfs, &wwid)?;
    log::info!("removed SCSI devices {deleted:?} of {wwid}");
    step_done("devices-deleted");

    let fa = recorded_array(node, &rec)?;
    let mine = node.initiators()?;
    let registered = fa.call("listing hosts", |c| c.list_hosts())?;
    match hosts::find_host(&registered, &mine) {
        Some(host) => hosts::disconnect(&fa, &host.name, &rec.array_volume)?,
        None => log::warn!(
            "no host for this node on {}: nothing to disconnect",
            fa.endpoint
        ),
    }
    step_done("volume-disconnected");
    record::remove(&vol.record_path())?;
    let _ = std::fs::remove_dir(&staging);
    log::info!("released {} ({})", rec.array_volume, vol.pv_name);
    Ok(())
}

/// The volume staged at `staging` (mounted from `st`), proven: the staged device's WWID, read from
/// sysfs, must be the record's (a lost record is rebuilt from the WWID). The driver removes,
/// disconnects or grows only what it proved is this volume; anything else is refused.
pub(super) fn prove_staged(
    node: &Node,
    staging: &Path,
    st: &MountEntry,
    recorded: Option<VolumeRecord>,
) -> Result<VolumeRecord> {
    match (
        recorded,
        devices::wwid_of_dev(&node.settings.sysfs_root, st.dev),
    ) {
        (Some(r), Some(w)) if r.wwid() == w => Ok(r),
        (Some(r), on) => Err(FlexError::Refused(format!(
            "{} is mounted from a device with WWID {on:?}, but the volume record says {}: \
             refusing to act on devices that are not provably this volume's",
            staging.display(),
            r.wwid()
        ))),
        (None, Some(w)) => identify_by_wwid(node, &w),
        (None, None) => Err(FlexError::Refused(format!(
            "{} is mounted from a device without a FlashArray WWID and no volume record exists: \
             refusing to guess",
            staging.display()
        ))),
    }
}

/// The configured FlashArray a volume record names.
pub(super) fn recorded_array(node: &Node, rec: &VolumeRecord) -> Result<Fa> {
    let fas = array::flash_arrays(&node.config, node.deadlines().array_call)?;
    locate::by_endpoint(&fas, &rec.array_endpoint)
        .cloned()
        .ok_or_else(|| {
            FlexError::Settings(format!(
                "volume {} was mounted from FlashArray {}, which is no longer in the settings file",
                rec.array_volume, rec.array_endpoint
            ))
        })
}

/// Rebuilds a lost volume record from the staged device's WWID: the volume with that serial on a
/// configured FlashArray.
fn identify_by_wwid(node: &Node, wwid: &str) -> Result<VolumeRecord> {
    let serial = wwid
        .strip_prefix("3624a9370")
        .filter(|s| names::is_valid_serial(s))
        .ok_or_else(|| FlexError::Refused(format!("WWID {wwid} is not a FlashArray volume's")))?;
    let fas = array::flash_arrays(&node.config, node.deadlines().array_call)?;
    let (fa, volume) = locate::volume_with_serial(&fas, serial)?;
    Ok(VolumeRecord {
        array_endpoint: fa.endpoint,
        array_volume: volume.name,
        serial: volume.serial,
    })
}
