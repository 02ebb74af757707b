//! File systems: probing and formatting a device, mounting (through the `mount` tool, which
//! knows every option spelling and the NFS helper), bind mounts, unmounting (umount2), growing a
//! mounted file system to fill its device, and the fsGroup ownership of a volume root.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use flashvol_common::config::FsType;
use nix::mount::{MntFlags, umount2};
use nix::unistd::{Gid, chown};

use crate::node::tools::{Tool, Tools};
use crate::runtime::deadline;
use crate::runtime::error::{FlexError, Result};

/// blkid's "nothing found" exit status.
const BLKID_NOTHING_FOUND: i32 = 2;

/// The file system type on `dev`, or `None` when blkid finds no signature at all. Anything
/// blkid cannot decide (ambivalent probe, I/O error) is an error: formatting is only ever done on
/// a device proven empty.
pub fn probe(tools: &Tools, dev: &Path, limit: Duration) -> Result<Option<String>> {
    let dev_text = dev.to_string_lossy();
    let done = tools.run(Tool::Blkid, &["-p", "-o", "export", &dev_text], limit)?;
    match done.code {
        Some(0) => {
            let kind = done
                .stdout
                .lines()
                .find_map(|l| l.strip_prefix("TYPE="))
                .map(str::to_owned);
            // A signature without a TYPE (a partition table) is still data: never format it.
            Ok(Some(kind.unwrap_or_else(|| "unknown".into())))
        }
        Some(BLKID_NOTHING_FOUND) => Ok(None),
        other => Err(FlexError::ToolFailed {
            command: format!("blkid -p {dev_text}"),
            status: format!("{other:?}"),
            output: done.output(),
        }),
    }
}

/// The mkfs arguments: the class's `createOptions` if given, else the configured options when
/// formatting with the configured type, else just `-q` (options for one mkfs rarely suit another).
pub fn mkfs_args(
    fs: FsType,
    create_options: Option<&str>,
    configured_type: FsType,
    configured_options: &str,
) -> Vec<String> {
    let chosen = match create_options {
        Some(o) => o,
        None if fs == configured_type => configured_options,
        None => "-q",
    };
    chosen.split_whitespace().map(str::to_owned).collect()
}

pub fn mkfs(tools: &Tools, fs: FsType, args: &[String], dev: &Path, limit: Duration) -> Result<()> {
    let tool = match fs {
        FsType::Xfs => Tool::MkfsXfs,
        FsType::Ext4 => Tool::MkfsExt4,
        FsType::Ext3 => Tool::MkfsExt3,
    };
    let dev_text = dev.to_string_lossy();
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.push(&dev_text);
    tools.run_ok(tool, &all, limit, &[0])?;
    Ok(())
}

/// Mount options for a staged block volume. xfs also gets `nouuid`: a volume restored from a
/// snapshot carries its source's file system UUID, and xfs refuses to mount a second file system
/// with a UUID already mounted on the node, so a pod using both would never start.
pub fn block_mount_options(fs_type: &str, configured: &str) -> String {
    let mut opts: Vec<&str> = configured.split(',').filter(|o| !o.is_empty()).collect();
    if fs_type == "xfs" && !opts.contains(&"nouuid") {
        opts.push("nouuid");
    }
    opts.join(",")
}

/// `mount [-t type] [-o options] source target`.
pub fn mount(
    tools: &Tools,
    fs_type: Option<&str>,
    source: &str,
    target: &Path,
    options: &str,
    limit: Duration,
) -> Result<()> {
    let target_text = target.to_string_lossy();
    let mut args: Vec<&str> = Vec::new();
    if let Some(t) = fs_type {
        args.extend(["-t", t]);
    }
    if !options.is_empty() {
        args.extend(["-o", options]);
    }
    args.extend([source, &target_text]);
    tools.run_ok(Tool::Mount, &args, limit, &[0])?;
    Ok(())
}

/// Binds `source` at `target`.
pub fn bind(tools: &Tools, source: &Path, target: &Path, limit: Duration) -> Result<()> {
    let (s, t) = (source.to_string_lossy(), target.to_string_lossy());
    tools.run_ok(Tool::Mount, &["--bind", &s, &t], limit, &[0])?;
    Ok(())
}

/// Makes the bind at `target` read-only (a bind takes the flags of its source until remounted).
pub fn remount_read_only(tools: &Tools, target: &Path, limit: Duration) -> Result<()> {
    let t = target.to_string_lossy();
    tools.run_ok(Tool::Mount, &["-o", "remount,bind,ro", &t], limit, &[0])?;
    Ok(())
}

/// Unmounts the topmost mount at `target`.
pub fn unmount(target: &Path, limit: Duration) -> Result<()> {
    let owned = target.to_path_buf();
    let step = format!("unmounting {}", target.display());
    deadline::within(&step, limit, move || umount2(&owned, MntFlags::empty()))?
        .map_err(|errno| FlexError::io("cannot unmount", target, std::io::Error::from(errno)))
}

/// How much larger than its file system a device may be before `mount` grows the file system:
/// xfs and ext4 leave a tail of the device unused when it is too short for another allocation
/// group or block group (a few MiB at most), so a smaller gap is the file system's own choice,
/// and a larger one is a volume grown on the array while the file system was not.
pub const GROW_SLACK: u64 = 16 << 20;

/// Whether a file system of `fs_bytes` leaves enough of a `device_bytes` device unused that it
/// should be grown.
pub fn leaves_device_unused(fs_bytes: u64, device_bytes: u64) -> bool {
    device_bytes > fs_bytes.saturating_add(GROW_SLACK)
}

/// Grows the mounted file system at `mount_point` on `device` to fill the device: `xfs_growfs`
/// on the mount point (xfs grows only while mounted), `resize2fs` on the device for ext4/ext3
/// (online resize of a mounted file system). Both succeed doing nothing when the file system
/// fills the device already, so repeating this is harmless.
pub fn grow(
    tools: &Tools,
    fs_type: &str,
    mount_point: &Path,
    device: &Path,
    limit: Duration,
) -> Result<()> {
    match fs_type {
        "xfs" => {
            tools.run_ok(
                Tool::XfsGrowfs,
                &[&mount_point.to_string_lossy()],
                limit,
                &[0],
            )?;
        }
        "ext4" | "ext3" | "ext2" => {
            tools
                .run_ok(Tool::Resize2fs, &[&device.to_string_lossy()], limit, &[0])
                .map_err(explain_resize2fs)?;
        }
        other => {
            return Err(FlexError::Refused(format!(
                "cannot grow the {other} file system on {}: flashvol grows xfs, ext4 and ext3",
                device.display()
            )));
        }
    }
    Ok(())
}

/// resize2fs's refusal to grow a mounted file system without `CAP_SYS_RESOURCE` (the kernel's
/// check for online ext4 resizing) says only "Permission denied": say what is missing.
fn explain_resize2fs(e: FlexError) -> FlexError {
    match e {
        FlexError::ToolFailed {
            command,
            status,
            output,
        } if output.contains("Permission denied to resize") => FlexError::ToolFailed {
            command,
            status,
            output: format!(
                "{output} (growing a mounted ext4 file system needs CAP_SYS_RESOURCE, which the \
                 process running the driver lacks: kubelet's, or its container's)"
            ),
        },
        other => other,
    }
}

/// Grows the unmounted ext file system on `device` to fill it: `e2fsck -f -p` first (resize2fs
/// asks for a checked file system, and `-p` repairs only what is safe), then `resize2fs`.
/// Offline growth needs no capability beyond writing the device, unlike online ext4 growth
/// (`CAP_SYS_RESOURCE`). xfs cannot grow offline.
pub fn grow_offline(tools: &Tools, fs_type: &str, device: &Path, limit: Duration) -> Result<()> {
    if !matches!(fs_type, "ext4" | "ext3" | "ext2") {
        return Err(FlexError::Refused(format!(
            "cannot grow the {fs_type} file system on {} before it is mounted",
            device.display()
        )));
    }
    let dev = device.to_string_lossy();
    tools.run_ok(Tool::E2fsck, &["-f", "-p", &dev], limit, &E2FSCK_CLEAN)?;
    tools.run_ok(Tool::Resize2fs, &[&dev], limit, &[0])?;
    Ok(())
}

/// e2fsck's "no errors" (0) and "errors corrected" (1).
const E2FSCK_CLEAN: [i32; 2] = [0, 1];

/// Applies a pod's fsGroup to the volume root only: group-owned, group rwx, setgid so new files
/// inherit the group. kubelet's own fsGroup handling (which `init` turns off) walks the whole
/// tree, which on a large or shared volume kept pods in ContainerCreating for hours
/// (kubernetes#68680, rook#2254); the root is what a new pod needs to write, and files the
/// pod creates inherit the group through setgid.
pub fn apply_fs_group(root: &Path, gid: u32) -> Result<()> {
    chown(root, None, Some(Gid::from_raw(gid)))
        .map_err(|e| FlexError::io("cannot chown", root, std::io::Error::from(e)))?;
    let meta = std::fs::metadata(root).map_err(|e| FlexError::io("cannot stat", root, e))?;
    let mode = meta.permissions().mode() | 0o2070;
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(mode))
        .map_err(|e| FlexError::io("cannot chmod", root, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn create_options_win_and_foreign_options_are_not_reused() {
        let xfs_opts = "-q -m reflink=0";
        assert_eq!(
            mkfs_args(FsType::Xfs, None, FsType::Xfs, xfs_opts),
            ["-q", "-m", "reflink=0"]
        );
        assert_eq!(mkfs_args(FsType::Ext4, None, FsType::Xfs, xfs_opts), ["-q"]);
        assert_eq!(
            mkfs_args(FsType::Ext4, Some("-q -E nodiscard"), FsType::Xfs, xfs_opts),
            ["-q", "-E", "nodiscard"]
        );
    }

    #[test]
    fn a_file_system_is_grown_only_when_it_leaves_more_than_the_slack_unused() {
        let gib = 1u64 << 30;
        assert!(!leaves_device_unused(gib, gib));
        assert!(
            !leaves_device_unused(gib - (4 << 20), gib),
            "a tail shorter than a group"
        );
        assert!(leaves_device_unused(gib, 3 * gib));
        assert!(!leaves_device_unused(3 * gib, gib), "never a shrink");
        assert!(!leaves_device_unused(u64::MAX, u64::MAX));
    }

    #[test]
    fn a_missing_capability_for_online_ext4_growth_is_named() {
        let denied = FlexError::ToolFailed {
            command: "resize2fs /dev/sdb".into(),
            status: "exit 1".into(),
            output: "resize2fs: Permission denied to resize filesystem".into(),
        };
        let shown = explain_resize2fs(denied).to_string();
        assert!(shown.contains("CAP_SYS_RESOURCE"), "{shown}");
        let other = FlexError::Refused("x".into());
        assert_eq!(explain_resize2fs(other).to_string(), "x");
    }

    #[test]
    fn unknown_file_systems_are_not_grown() {
        let tools = Tools::new(crate::node::settings::ToolPaths::default());
        let err = grow(
            &tools,
            "btrfs",
            Path::new("/mnt"),
            Path::new("/dev/x"),
            Duration::from_secs(1),
        )
        .expect_err("refused");
        assert!(err.to_string().contains("btrfs"), "{err}");
    }

    #[test]
    fn xfs_volumes_mount_with_nouuid() {
        assert_eq!(block_mount_options("xfs", ""), "nouuid");
        assert_eq!(
            block_mount_options("xfs", "discard,nouuid"),
            "discard,nouuid"
        );
        assert_eq!(block_mount_options("ext4", "discard"), "discard");
    }

    #[test]
    fn fs_group_sets_group_and_setgid_on_the_root_only() {
        // Root may give the root to any group; another user only to a group of its own, so the
        // test runs everywhere and the setgid bit proves what the group cannot show there.
        let gid = if nix::unistd::geteuid().is_root() {
            4321
        } else {
            nix::unistd::getegid().as_raw()
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).expect("mkdir");
        let sub_gid_before = std::fs::metadata(&sub).expect("stat").gid();
        apply_fs_group(dir.path(), gid).expect("applied");
        let root = std::fs::metadata(dir.path()).expect("stat");
        assert_eq!(root.gid(), gid);
        assert_eq!(root.mode() & 0o2070, 0o2070);
        let sub = std::fs::metadata(&sub).expect("stat");
        assert_eq!(
            (sub.gid(), sub.mode() & 0o2000),
            (sub_gid_before, 0),
            "not recursive"
        );
    }
}
