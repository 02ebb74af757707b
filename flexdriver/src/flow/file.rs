//! FlashBlade file systems: an NFS mount of `<data VIP>:/<file system>` straight into the pod dir.
//! The caller holds the volume lock.

use crate::array::{self, locate};
use crate::kubelet::layout::PodVolume;
use crate::kubelet::request::MountRequest;
use crate::node::Node;
use crate::node::mountinfo;
use crate::node::mounts;
use crate::runtime::crash::step_done;
use crate::runtime::error::{FlexError, Result};

/// The NFS server address: the array's configured `NfsEndPoint`, else the one the provisioner
/// recorded in the PV, else the first data VIP the array reports.
pub fn choose_server(
    configured: Option<&str>,
    from_pv: Option<&str>,
    data_vips: &[String],
) -> Option<String> {
    configured
        .or(from_pv)
        .or(data_vips.first().map(String::as_str))
        .map(str::to_owned)
}

/// `server:/fs`, IPv6 servers bracketed.
pub fn nfs_source(server: &str, fs_name: &str) -> String {
    if server.contains(':') && !server.starts_with('[') {
        format!("[{server}]:/{fs_name}")
    } else {
        format!("{server}:/{fs_name}")
    }
}

/// Mount options: the PV's, else the configured ones; plus `ro` for a read-only mount.
pub fn nfs_options(from_pv: Option<&str>, configured: &str, read_only: bool) -> String {
    let mut opts: Vec<&str> = from_pv
        .unwrap_or(configured)
        .split(',')
        .filter(|o| !o.is_empty() && *o != "rw" && *o != "ro")
        .collect();
    opts.insert(0, if read_only { "ro" } else { "rw" });
    opts.join(",")
}

pub fn mount(node: &Node, vol: &PodVolume, req: &MountRequest) -> Result<()> {
    let d = node.deadlines();
    let table =
        mountinfo::read().map_err(|e| FlexError::io("cannot read", "/proc/self/mountinfo", e))?;
    if mountinfo::mounted_at(&table, &vol.pod_dir).is_some() {
        log::info!("{} is already mounted", vol.pod_dir.display());
        return Ok(());
    }
    let fbs = array::flash_blades(&node.config, d.array_call)?;
    let (fb, fs_info) = locate::locate(&fbs, &req.volume.array_volume, req.volume.array.as_ref())?;
    let vips = if fb.config.nfs_endpoint.is_none() && req.volume.nfs_endpoint.is_none() {
        fb.call("listing data VIPs", |c| c.data_vips())?
            .into_iter()
            .map(|v| v.address)
            .collect()
    } else {
        Vec::new()
    };
    let server = choose_server(
        fb.config.nfs_endpoint.as_deref(),
        req.volume.nfs_endpoint.as_deref(),
        &vips,
    )
    .ok_or_else(|| {
        FlexError::Refused(format!(
            "FlashBlade {} has no NfsEndPoint configured and reports no data VIP",
            fb.endpoint
        ))
    })?;
    let options = nfs_options(
        req.volume.mount_options.as_deref(),
        &node.config.settings.file.mount_options,
        req.read_only,
    );
    std::fs::create_dir_all(&vol.pod_dir)
        .map_err(|e| FlexError::io("cannot create", &vol.pod_dir, e))?;
    let source = nfs_source(&server, &fs_info.name);
    mounts::mount(
        &node.tools,
        Some("nfs"),
        &source,
        &vol.pod_dir,
        &options,
        d.mount,
    )?;
    step_done("nfs-mounted");
    if let Some(gid) = req.fs_group {
        if req.read_only {
            log::info!(
                "fsGroup {gid} not applied to read-only {}",
                vol.pod_dir.display()
            );
        } else if let Err(e) = mounts::apply_fs_group(&vol.pod_dir, gid) {
            // A root-squashing export refuses chown; the pod may still work, so do not fail.
            log::warn!("fsGroup {gid} on {}: {e}", vol.pod_dir.display());
        }
    }
    step_done("ownership-set");
    log::info!("mounted {source} at {} ({options})", vol.pod_dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_endpoint_wins_then_pv_then_data_vip() {
        let vips = vec!["10.0.1.9".to_owned()];
        assert_eq!(
            choose_server(Some("10.0.1.6"), Some("10.0.1.7"), &vips).as_deref(),
            Some("10.0.1.6")
        );
        assert_eq!(
            choose_server(None, Some("10.0.1.7"), &vips).as_deref(),
            Some("10.0.1.7")
        );
        assert_eq!(
            choose_server(None, None, &vips).as_deref(),
            Some("10.0.1.9")
        );
        assert_eq!(choose_server(None, None, &[]), None);
    }

    #[test]
    fn sources_and_options_are_spelled_for_mount() {
        assert_eq!(nfs_source("10.0.1.6", "k8s-pvc-1"), "10.0.1.6:/k8s-pvc-1");
        assert_eq!(nfs_source("fd00::6", "k8s-pvc-1"), "[fd00::6]:/k8s-pvc-1");
        assert_eq!(
            nfs_options(None, "vers=4.1,hard", false),
            "rw,vers=4.1,hard"
        );
        assert_eq!(
            nfs_options(Some("vers=3,rw"), "vers=4.1", true),
            "ro,vers=3"
        );
        assert_eq!(nfs_options(None, "", false), "rw");
    }
}
