//! Letting go of a block volume on this node: unstage it, remove its devices, disconnect it on
//! the array, forget its record. Three callers: `unmount` after the last pod's bind, a `mount`
//! that failed after connecting (rollback), and the collection of leftovers. The caller holds the
//! volume lock. `expandfs` shares the proof that a staged device is the volume's
//! ([`proven_record`]) and the lookup of its array ([`recorded_array`]).
//!
//! Nothing is released while the file system is still mounted anywhere on the node: at a path of
//! kubelet's namespace other than the driver's own mounts (another pod's bind keeps the volume
//! staged; a subtree bind or a mount elsewhere refuses), or in any other mount namespace (a
//! container that outlived its pod, see [`namespaces`]). Such a call answers Failure without
//! changing anything, and kubelet retries.

use std::path::Path;

use flashvol_common::names;

use crate::array::{self, Fa, hosts, locate};
use crate::kubelet::layout::DriverArea;
use crate::node::Node;
use crate::node::devices;
use crate::node::mountinfo::{self, MountEntry};
use crate::node::mounts;
use crate::node::namespaces;
use crate::node::record::{self, VolumeRecord};
use crate::node::san;
use crate::runtime::crash::step_done;
use crate::runtime::error::{FlexError, Result};

pub fn mount_table() -> Result<Vec<MountEntry>> {
    mountinfo::read().map_err(|e| FlexError::io("cannot read", "/proc/self/mountinfo", e))
}

/// If no pod bind of the staging mount is left, unstage the volume and let go of it (devices,
/// then the array connection). Nothing staged and nothing recorded means nothing to do (a file
/// volume, or released already).
pub fn release_if_unused(node: &Node, area: &DriverArea, pv: &str) -> Result<()> {
    let staging = area.staging_dir(pv);
    let recorded = record::load(&area.record_path(pv))?;
    let table = mount_table()?;
    let staged = mountinfo::mounted_at(&table, &staging);
    let rec = match staged {
        Some(st) => {
            let users: Vec<_> = mountinfo::binds_of(&table, st)
                .map(|b| b.mount_point.display().to_string())
                .collect();
            if !users.is_empty() {
                log::info!("{pv} stays staged: still mounted at {}", users.join(", "));
                return Ok(());
            }
            proven_record(node, &staging, st, recorded)?
        }
        None => match recorded {
            Some(r) => r,
            None => return Ok(()),
        },
    };
    let ours = mounts_at(&table, &[&staging]);
    let devs = devices_of(node, Some(&rec.wwid()), &ours);
    ensure_unheld(node, &staging, &table, &devs, &ours)?;
    // Stacked mounts (a staging mount repeated by an old crash) all go; bounded, in case the
    // table never empties.
    for _ in 0..16 {
        if mountinfo::mounted_at(&mount_table()?, &staging).is_none() {
            break;
        }
        mounts::unmount(&staging, node.deadlines().mount)?;
    }
    step_done("staging-unmounted");
    release_devices_and_connection(node, area, pv, &rec)
}

/// Before a pod dir's bind goes: when it is the last bind of the staging mount, the volume is
/// released right after, so it must be free now. Checked before anything is unmounted, so a
/// refusal leaves the pod dir mounted, which is what kubelet assumes after a Failure (it retries
/// the `unmount`; the container that holds the file system is killed meanwhile).
pub fn ensure_last_unbind_is_safe(
    node: &Node,
    area: &DriverArea,
    pv: &str,
    pod_dir: &Path,
    table: &[MountEntry],
) -> Result<()> {
    let staging = area.staging_dir(pv);
    let (Some(bound), Some(st)) = (
        mountinfo::mounted_at(table, pod_dir),
        mountinfo::mounted_at(table, &staging),
    ) else {
        return Ok(());
    };
    if !bound.same_content(st) || mountinfo::binds_of(table, st).any(|b| b.mount_point != pod_dir) {
        return Ok(());
    }
    let wwid = devices::wwid_of_dev(&node.settings.sysfs_root, st.dev);
    let ours = mounts_at(table, &[&staging, pod_dir]);
    let devs = devices_of(node, wwid.as_deref(), &ours);
    ensure_unheld(node, &staging, table, &devs, &ours)
}

/// The record of the volume staged at `staging` (mounted from `st`), proven against the WWID of
/// the staged device, read from sysfs; a lost record is rebuilt from that WWID. The driver
/// removes, disconnects or grows only what it proved is this volume; anything else is refused.
pub fn proven_record(
    node: &Node,
    staging: &Path,
    st: &MountEntry,
    recorded: Option<VolumeRecord>,
) -> Result<VolumeRecord> {
    let on = devices::wwid_of_dev(&node.settings.sysfs_root, st.dev);
    match (recorded, on) {
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

/// Every mount (stacked ones too) at `paths`: the driver's own mounts of a volume.
pub fn mounts_at<'a>(table: &'a [MountEntry], paths: &[&Path]) -> Vec<&'a MountEntry> {
    table
        .iter()
        .filter(|m| paths.contains(&m.mount_point.as_path()))
        .collect()
}

/// `major:minor` of everything that is this volume: the device the staging mount uses and every
/// path device and multipath map proving the WWID.
pub fn devices_of(node: &Node, wwid: Option<&str>, ours: &[&MountEntry]) -> Vec<(u32, u32)> {
    let mut devs: Vec<(u32, u32)> = devices::scan(&node.settings.sysfs_root)
        .into_iter()
        .filter(|d| wwid.is_some() && d.wwid.as_deref() == wwid)
        .filter_map(|d| d.dev)
        .chain(ours.iter().map(|m| m.dev))
        .collect();
    devs.sort_unstable();
    devs.dedup();
    devs
}

/// Where the file system of `devs` is mounted beyond `ours` (the driver's own mounts in its
/// namespace, which it is about to remove): elsewhere in this namespace, or in another one.
/// Empty when the volume is free.
pub fn holders(
    node: &Node,
    table: &[MountEntry],
    devs: &[(u32, u32)],
    ours: &[&MountEntry],
) -> Result<Vec<String>> {
    let mut found: Vec<String> = table
        .iter()
        .filter(|m| devs.contains(&m.dev) && !ours.iter().any(|o| o.id == m.id))
        .map(|m| format!("mounted at {} on this node", m.mount_point.display()))
        .collect();
    let proc_root = &node.settings.proc_root;
    let own = namespaces::own_namespace()
        .map_err(|e| FlexError::io("cannot read", "/proc/self/ns/mnt", e))?;
    let others = namespaces::others(proc_root, &own)
        .map_err(|e| FlexError::io("cannot list the processes in", proc_root.clone(), e))?;
    let held = namespaces::holders(&others, devs, ours);
    if !held.is_empty() {
        found.push(format!("still mounted by {}", namespaces::describe(&held)));
    }
    Ok(found)
}

/// Fails, changing nothing, while anything beyond `ours` holds the volume.
pub fn ensure_unheld(
    node: &Node,
    what: &Path,
    table: &[MountEntry],
    devs: &[(u32, u32)],
    ours: &[&MountEntry],
) -> Result<()> {
    let found = holders(node, table, devs, ours)?;
    if found.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = devs.iter().map(|(a, b)| format!("{a}:{b}")).collect();
    Err(FlexError::Refused(format!(
        "not releasing {} (device {}): its file system is {}; kubelet will retry once the \
         container is gone",
        what.display(),
        shown.join(", "),
        found.join("; ")
    )))
}

/// The release proper, once the volume is unstaged and free: multipath map, SCSI devices, the
/// array connection, the record.
pub fn release_devices_and_connection(
    node: &Node,
    area: &DriverArea,
    pv: &str,
    rec: &VolumeRecord,
) -> Result<()> {
    let d = node.deadlines();
    let wwid = rec.wwid();
    san::flush_map(&node.tools, &node.settings.mapper_dir, &wwid, d.iscsiadm)?;
    step_done("multipath-flushed");
    let deleted = devices::delete_paths(&node.settings.sysfs_root, &wwid)?;
    log::info!("removed SCSI devices {deleted:?} of {wwid}");
    step_done("devices-deleted");

    let fa = recorded_array(node, rec)?;
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
    record::remove(&area.record_path(pv))?;
    let _ = std::fs::remove_dir(area.staging_dir(pv));
    log::info!("released {} ({pv})", rec.array_volume);
    Ok(())
}

/// The configured FlashArray a volume record names.
pub fn recorded_array(node: &Node, rec: &VolumeRecord) -> Result<Fa> {
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
