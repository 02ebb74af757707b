//! FlashArray volumes: `mount` (connect, find the device, format once, stage, bind), and its
//! rollback when a step fails after the volume was connected: kubelet removes the pod dir of a
//! failed mount and never calls `unmount` for it, so whatever the call set up and nobody else
//! uses is released before the Failure is answered. Releasing lives in [`super::release`].
//! The caller holds the volume lock.

use std::path::Path;

use flashvol_common::config::{FsType, SanType};
use flashvol_common::flasharray::Volume;
use flashvol_common::names;

use super::release::{self, mount_table};
use crate::array::{self, Fa, fencing, hosts, locate};
use crate::kubelet::layout::PodVolume;
use crate::kubelet::request::MountRequest;
use crate::node::Node;
use crate::node::devices;
use crate::node::mountinfo;
use crate::node::mounts;
use crate::node::record::{self, VolumeRecord};
use crate::node::san;
use crate::node::superblock;
use crate::runtime::crash::step_done;
use crate::runtime::error::{FlexError, Result};

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
    let set_up = || -> Result<()> {
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
        Ok(())
    };
    if let Err(e) = set_up() {
        roll_back(node, vol, &e);
        return Err(e);
    }
    log::info!(
        "mounted {} ({}) at {}{}",
        req.volume.array_volume,
        vol.pv_name,
        vol.pod_dir.display(),
        if req.read_only { " read-only" } else { "" }
    );
    Ok(())
}

/// Undoes a failed mount: the pod dir's bind if this call made it (a bind without the read-only
/// remount asked for must not stay), then the volume itself unless something else uses it (another
/// pod's bind, a mount in any namespace: [`release::release_if_unused`] decides). A rollback that
/// fails (the array is down) is logged; the record stays and a later call or the node installer
/// collects the volume ([`super::collect`]).
fn roll_back(node: &Node, vol: &PodVolume, cause: &FlexError) {
    log::info!(
        "mount of {} failed ({cause}): rolling back what it set up",
        vol.pv_name
    );
    let undone = mount_table().and_then(|table| {
        if mountinfo::mounted_at(&table, &vol.pod_dir).is_some() {
            mounts::unmount(&vol.pod_dir, node.deadlines().mount)?;
        }
        release::release_if_unused(node, &vol.area(), &vol.pv_name)
    });
    if let Err(e) = undone {
        log::warn!(
            "rollback of {} incomplete: {e}; it is collected once nothing uses it",
            vol.pv_name
        );
    }
}

fn attach_and_stage(node: &Node, vol: &PodVolume, req: &MountRequest) -> Result<()> {
    let d = node.deadlines();
    let block = &node.config.settings.block;
    let fas = array::flash_arrays(&node.config, d.array_call)?;
    let (fa, volume) = locate::locate(&fas, &req.volume.array_volume, req.volume.array.as_ref())?;
    let wwid = checked_wwid(&fa, &volume)?;
    // Refusals that read but change nothing come before the record, so they leave nothing to
    // roll back: the release a rollback runs needs this node's initiators too, and an FC node
    // without FC ports would leave the record behind.
    if block.san_type == SanType::Fc {
        let ports = fa.call("listing ports", |c| c.list_ports())?;
        san::require_fc_targets(&ports, &fa.endpoint)?;
    }
    let mine = node.initiators()?;
    record::store(
        &vol.record_path(),
        &VolumeRecord {
            array_endpoint: fa.endpoint.clone(),
            array_volume: volume.name.clone(),
            serial: volume.serial.clone(),
        },
    )?;
    step_done("record-written");

    let host = hosts::ensure_host(node, &fa, &mine)?;
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
