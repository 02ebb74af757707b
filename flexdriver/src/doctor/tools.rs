//! The programs the driver runs: each found on the host by the driver's own search rule
//! ([`tools::resolve_with`]: an absolute path as configured, a bare name in kubelet's `PATH` and
//! the usual sbin dirs), and whether this node's configuration needs it.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use flashvol_common::config::{FsType, SanType};

use super::host::Host;
use super::install::Kubelet;
use super::{Finding, Loaded, skip_all};
use crate::node::tools::{self, Tool};

pub const IDS: &[&str] = &[
    "tools.iscsiadm",
    "tools.multipath",
    "tools.multipathd",
    "tools.blkid",
    "tools.mkfs_xfs",
    "tools.mkfs_ext4",
    "tools.mkfs_ext3",
    "tools.mount",
    "tools.xfs_growfs",
    "tools.resize2fs",
    "tools.e2fsck",
];

fn id(tool: Tool) -> &'static str {
    match tool {
        Tool::Iscsiadm => "tools.iscsiadm",
        Tool::Multipath => "tools.multipath",
        Tool::Multipathd => "tools.multipathd",
        Tool::Blkid => "tools.blkid",
        Tool::MkfsXfs => "tools.mkfs_xfs",
        Tool::MkfsExt4 => "tools.mkfs_ext4",
        Tool::MkfsExt3 => "tools.mkfs_ext3",
        Tool::Mount => "tools.mount",
        Tool::XfsGrowfs => "tools.xfs_growfs",
        Tool::Resize2fs => "tools.resize2fs",
        Tool::E2fsck => "tools.e2fsck",
    }
}

/// The package that ships a tool: Debian/Ubuntu, then RHEL and its relatives.
fn package(tool: Tool) -> (&'static str, &'static str) {
    match tool {
        Tool::Iscsiadm => ("open-iscsi", "iscsi-initiator-utils"),
        Tool::Multipath | Tool::Multipathd => ("multipath-tools", "device-mapper-multipath"),
        Tool::Blkid | Tool::Mount => ("util-linux", "util-linux"),
        Tool::MkfsXfs | Tool::XfsGrowfs => ("xfsprogs", "xfsprogs"),
        Tool::MkfsExt4 | Tool::MkfsExt3 | Tool::Resize2fs | Tool::E2fsck => {
            ("e2fsprogs", "e2fsprogs")
        }
    }
}

/// How much the driver needs a tool on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Need {
    /// Mounts fail without it.
    Required,
    /// Some mounts fail without it, or they work less well; the reason says which.
    Wanted(&'static str),
    /// Not used with this configuration; the reason says why.
    Unused(&'static str),
}

/// Which tools the configured arrays, SAN type and file system type need.
fn need(tool: Tool, loaded: &Loaded) -> Need {
    let (block, file) = (loaded.has_flash_arrays(), loaded.has_flash_blades());
    if !block && !file {
        return Need::Unused("no arrays configured");
    }
    if tool == Tool::Mount {
        return Need::Required;
    }
    if !block {
        return Need::Unused("no FlashArrays configured");
    }
    let fs_type = loaded.config.settings.block.fs_type;
    let iscsi = loaded.config.settings.block.san_type == SanType::Iscsi;
    match tool {
        Tool::Iscsiadm if iscsi => Need::Required,
        Tool::Iscsiadm => Need::Unused("the SAN type is FC"),
        Tool::Blkid => Need::Required,
        Tool::MkfsXfs if fs_type == FsType::Xfs => Need::Required,
        Tool::MkfsExt4 if fs_type == FsType::Ext4 => Need::Required,
        Tool::MkfsExt3 if fs_type == FsType::Ext3 => Need::Required,
        Tool::MkfsXfs | Tool::MkfsExt4 | Tool::MkfsExt3 => {
            Need::Wanted("PVs that ask for this file system type cannot be formatted")
        }
        Tool::Multipath | Tool::Multipathd => {
            Need::Wanted("volumes mount over a single path, without failover")
        }
        // Growing is not mounting: without these a grown claim keeps its old file system size
        // (expandfs fails naming the tool), every mount still works.
        Tool::XfsGrowfs => Need::Wanted("grown xfs claims cannot grow their file system"),
        Tool::Resize2fs | Tool::E2fsck => {
            Need::Wanted("grown ext3/ext4 claims cannot grow their file system")
        }
        Tool::Mount => Need::Required,
    }
}

/// Finds each tool under the host root and judges it.
pub fn check(host: &Host, loaded: &Loaded, kubelet: Option<&Kubelet>) -> Vec<Finding> {
    if !loaded.has_flash_arrays() && !loaded.has_flash_blades() {
        return skip_all(IDS, "no arrays configured");
    }
    let path_var = kubelet.and_then(|k| k.path_var.as_deref());
    Tool::ALL
        .into_iter()
        .map(|tool| {
            let configured = tool.configured(&loaded.node.tools);
            let found = tools::resolve_with(configured, path_var, |p| host.is_executable(p));
            judge(tool, &need(tool, loaded), configured, found, path_var)
        })
        .collect()
}

fn judge(
    tool: Tool,
    need: &Need,
    configured: &Path,
    found: Option<PathBuf>,
    path_var: Option<&OsStr>,
) -> Finding {
    let id = id(tool);
    let (debian, rhel) = package(tool);
    let fix = || {
        format!(
            "install {debian} (Debian/Ubuntu) or {rhel} (RHEL), or set node.tools.{} to its path",
            tool.settings_key()
        )
    };
    let looked = || {
        let missing = tools::missing(tool, configured).to_string();
        match path_var {
            Some(p) => format!("{missing}; kubelet's PATH is {}", p.to_string_lossy()),
            None => missing,
        }
    };
    match (need, found) {
        (Need::Unused(why), found) => Finding::skip(
            id,
            format!(
                "not used: {why}{}",
                found
                    .map(|p| format!(" ({} is at {})", tool.name(), p.display()))
                    .unwrap_or_default()
            ),
        ),
        (_, Some(path)) => Finding::pass(id, format!("{}", path.display())),
        (Need::Required, None) => Finding::fail(id, looked(), fix()),
        (Need::Wanted(why), None) => Finding::warn(id, format!("{}: {why}", looked()), fix()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;
    use crate::node::settings::NodeSettings;
    use flashvol_common::config::Config;

    fn loaded(doc: &str) -> Loaded {
        let config = Config::parse(Path::new("t.json"), doc).expect("config");
        Loaded {
            node: NodeSettings::parse(config.node.as_ref(), "n", None).expect("node"),
            config,
        }
    }

    const FA: &str = r#"{"FlashArrays":[{"MgmtEndPoint":"a","APIToken":"t"}]}"#;
    const FB: &str = r#"{"FlashBlades":[{"MgmtEndPoint":"b","APIToken":"t"}]}"#;

    #[test]
    fn what_a_node_needs_follows_its_arrays_san_and_file_system() {
        let fa = loaded(FA);
        assert_eq!(need(Tool::Iscsiadm, &fa), Need::Required);
        assert_eq!(need(Tool::MkfsXfs, &fa), Need::Required);
        assert!(matches!(need(Tool::MkfsExt4, &fa), Need::Wanted(_)));
        assert!(matches!(need(Tool::Multipathd, &fa), Need::Wanted(_)));
        let fc = loaded(
            r#"{"FlashArrays":[{"MgmtEndPoint":"a","APIToken":"t"}],"flashvol":{"block":{"sanType":"FC","fsType":"ext4"}}}"#,
        );
        assert!(matches!(need(Tool::Iscsiadm, &fc), Need::Unused(_)));
        assert_eq!(need(Tool::MkfsExt4, &fc), Need::Required);
        let fb = loaded(FB);
        assert_eq!(need(Tool::Mount, &fb), Need::Required);
        assert!(matches!(need(Tool::Blkid, &fb), Need::Unused(_)));
    }

    #[test]
    fn a_missing_required_tool_fails_naming_package_and_settings_key() {
        let f = judge(
            Tool::MkfsXfs,
            &Need::Required,
            Path::new("mkfs.xfs"),
            None,
            None,
        );
        assert_eq!(f.status, Status::Fail);
        assert!(
            f.saw.contains("mkfs.xfs") && f.saw.contains("/usr/sbin"),
            "{}",
            f.saw
        );
        let fix = f.fix.unwrap_or_default();
        assert!(
            fix.contains("xfsprogs") && fix.contains("node.tools.mkfsXfs"),
            "{fix}"
        );
        let f = judge(
            Tool::Multipath,
            &Need::Wanted("x"),
            Path::new("multipath"),
            None,
            None,
        );
        assert_eq!(f.status, Status::Warn);
        let f = judge(
            Tool::Blkid,
            &Need::Required,
            Path::new("blkid"),
            Some("/sbin/blkid".into()),
            None,
        );
        assert_eq!((f.status, f.saw.as_str()), (Status::Pass, "/sbin/blkid"));
    }

    #[test]
    fn tools_are_searched_on_the_host_not_in_the_pod() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let sbin = dir.path().join("usr/sbin");
        std::fs::create_dir_all(&sbin).expect("mkdir");
        for name in ["iscsiadm", "blkid", "mkfs.xfs", "mount"] {
            std::fs::write(sbin.join(name), "#!/bin/sh\n").expect("write");
            std::fs::set_permissions(sbin.join(name), std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
        }
        let findings = check(&Host::new(dir.path()), &loaded(FA), None);
        let status = |id: &str| {
            findings
                .iter()
                .find(|f| f.id == id)
                .map(|f| f.status)
                .expect("finding")
        };
        assert_eq!(status("tools.iscsiadm"), Status::Pass);
        assert_eq!(status("tools.mkfs_xfs"), Status::Pass);
        assert_eq!(status("tools.multipath"), Status::Warn);
        // Growing is not mounting: a missing xfs_growfs warns, it does not fail the node.
        assert_eq!(status("tools.xfs_growfs"), Status::Warn);
        assert_eq!(findings.len(), IDS.len());
    }
}
