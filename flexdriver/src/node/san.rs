//! Making a connected volume appear on the node: iSCSI discovery records, logins and session
//! rescans, or an FC SCSI host rescan; making a grown volume show its new size (path rescans,
//! multipath map resize); and the multipath helpers.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use flashvol_common::flasharray::Port;
use ipnet::IpNet;

use crate::node::devices;
use crate::node::tools::{Tool, Tools};
use crate::runtime::deadline;
use crate::runtime::error::{FlexError, Result};

/// iscsiadm's "session already exists" (login to a logged-in portal).
const ISCSI_ERR_SESS_EXISTS: i32 = 15;
/// iscsiadm's "no records/sessions found".
const ISCSI_ERR_NO_OBJS_FOUND: i32 = 21;

/// An iSCSI target portal to log in to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    pub iqn: String,
    pub portal: String,
}

/// The IP address of a portal `ip:port` / `[v6]:port`.
pub fn portal_ip(portal: &str) -> Option<IpAddr> {
    if let Some(rest) = portal.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let host = portal.rsplit_once(':').map_or(portal, |(h, _)| h);
    host.parse().ok()
}

/// The array's iSCSI ports, restricted to the allowed CIDRs (empty: all), de-duplicated.
pub fn iscsi_targets(ports: &[Port], allowed: &[IpNet]) -> Vec<Target> {
    let mut targets: Vec<Target> = ports
        .iter()
        .filter_map(|p| {
            let iqn = p.iqn.as_deref().filter(|s| !s.is_empty())?;
            let portal = p.portal.as_deref().filter(|s| !s.is_empty())?;
            let ip = portal_ip(portal)?;
            (allowed.is_empty() || allowed.iter().any(|net| net.contains(&ip))).then(|| Target {
                iqn: iqn.to_owned(),
                portal: portal.to_owned(),
            })
        })
        .collect();
    targets.sort();
    targets.dedup();
    targets
}

/// FC needs Fibre Channel target ports on the array. An array without them (Pure Cloud Block
/// Store, whose controllers expose iSCSI only) is refused before this node's host is registered or
/// connected, so the array is left as it was, instead of waiting for a device that never appears.
pub fn require_fc_targets(ports: &[Port], array: &str) -> Result<()> {
    if ports
        .iter()
        .any(|p| p.wwn.as_deref().is_some_and(|w| !w.is_empty()))
    {
        return Ok(());
    }
    let iscsi = ports
        .iter()
        .any(|p| p.portal.as_deref().is_some_and(|a| !a.is_empty()));
    Err(FlexError::Refused(format!(
        "SAN type is FC but FlashArray {array} has no Fibre Channel ports{}; Pure Cloud Block Store arrays are iSCSI only: set block.sanType to ISCSI on nodes that use this array",
        if iscsi { " (only iSCSI)" } else { "" }
    )))
}

/// Creates node records and logs in to every target; succeeds when at least one session is up
/// (a multipath node survives the loss of some portals). Then rescans sessions, so a volume
/// connected to an existing session shows up.
pub fn iscsi_login(
    tools: &Tools,
    targets: &[Target],
    login_timeout: Duration,
    limit: Duration,
) -> Result<()> {
    if targets.is_empty() {
        return Err(FlexError::Refused(
            "the FlashArray has no iSCSI ports within the allowed CIDRs".into(),
        ));
    }
    let timeout = login_timeout.as_secs().max(1).to_string();
    let mut failures = Vec::new();
    for t in targets {
        let node = ["-m", "node", "-T", t.iqn.as_str(), "-p", t.portal.as_str()];
        let with = |extra: &[&'static str]| -> Vec<&str> {
            node.iter().copied().chain(extra.iter().copied()).collect()
        };
        let attempt = (|| -> Result<()> {
            // Only create the node record when there is none: `-o new` on an existing record
            // differs between open-iscsi versions (replace or refuse).
            let shown = tools.run(Tool::Iscsiadm, &node, limit)?;
            if shown.code != Some(0) {
                tools.run_ok(Tool::Iscsiadm, &with(&["-o", "new"]), limit, &[0])?;
            }
            let mut update = with(&[
                "-o",
                "update",
                "-n",
                "node.conn[0].timeo.login_timeout",
                "-v",
            ]);
            update.push(&timeout);
            tools.run_ok(Tool::Iscsiadm, &update, limit, &[0])?;
            tools.run_ok(
                Tool::Iscsiadm,
                &with(&["-o", "update", "-n", "node.startup", "-v", "automatic"]),
                limit,
                &[0],
            )?;
            tools.run_ok(
                Tool::Iscsiadm,
                &with(&["--login"]),
                limit,
                &[0, ISCSI_ERR_SESS_EXISTS],
            )?;
            Ok(())
        })();
        if let Err(e) = attempt {
            log::warn!("iSCSI login to {} {} failed: {e}", t.iqn, t.portal);
            failures.push(format!("{}: {e}", t.portal));
        }
    }
    if failures.len() == targets.len() {
        return Err(FlexError::Refused(format!(
            "could not log in to any iSCSI portal: {}",
            failures.join("; ")
        )));
    }
    rescan_sessions(tools, limit)
}

/// `iscsiadm -m session --rescan`: every session looks for new LUNs (and, for LUNs it has, their
/// capacity). No session at all is not an error.
pub fn rescan_sessions(tools: &Tools, limit: Duration) -> Result<()> {
    tools.run_ok(
        Tool::Iscsiadm,
        &["-m", "session", "--rescan"],
        limit,
        &[0, ISCSI_ERR_NO_OBJS_FOUND],
    )?;
    Ok(())
}

/// Asks the kernel to re-read the capacity of every SCSI path device of `wwid` (writes `1` to
/// `device/rescan`), and only those: a volume grown on the array shows its new size. Returns the
/// devices rescanned; one that cannot be is logged (another path may carry the volume).
pub fn rescan_paths(sysfs_root: &Path, wwid: &str, limit: Duration) -> Result<Vec<String>> {
    let mut rescanned = Vec::new();
    for dev in devices::paths_of(sysfs_root, wwid) {
        let rescan = sysfs_root
            .join("block")
            .join(&dev.name)
            .join("device/rescan");
        let target = rescan.clone();
        let step = format!("rescanning {}", rescan.display());
        match deadline::within(&step, limit, move || std::fs::write(&target, "1"))? {
            Ok(()) => rescanned.push(dev.name),
            Err(e) => log::warn!("rescan of {} failed: {e}", rescan.display()),
        }
    }
    Ok(rescanned)
}

/// `multipathd resize map <wwid>` when the map exists and multipathd runs: the map takes the
/// size of its (rescanned) paths. Without a map or multipathd there is nothing to resize.
pub fn resize_map(tools: &Tools, mapper_dir: &Path, wwid: &str, limit: Duration) -> Result<bool> {
    if !mapper_dir.join(wwid).exists() || !multipathd_running(tools, limit) {
        return Ok(false);
    }
    tools.run_ok(Tool::Multipathd, &["resize", "map", wwid], limit, &[0])?;
    Ok(true)
}

/// Asks every SCSI host to scan all channels, targets and LUNs (FC: new LUNs appear).
pub fn scsi_host_rescan(sysfs_root: &Path) -> Result<usize> {
    let dir = sysfs_root.join("class/scsi_host");
    let entries = std::fs::read_dir(&dir).map_err(|e| FlexError::io("cannot list", &dir, e))?;
    let mut scanned = 0;
    for entry in entries.flatten() {
        let scan = entry.path().join("scan");
        match std::fs::write(&scan, "- - -") {
            Ok(()) => scanned += 1,
            Err(e) => log::warn!("rescan of {} failed: {e}", scan.display()),
        }
    }
    if scanned == 0 {
        return Err(FlexError::Refused(format!(
            "no SCSI host under {} could be rescanned",
            dir.display()
        )));
    }
    Ok(scanned)
}

/// Whether multipathd is up (multipath maps will form). No multipathd tool means no.
pub fn multipathd_running(tools: &Tools, limit: Duration) -> bool {
    if !tools.is_available(Tool::Multipathd) {
        return false;
    }
    tools
        .run(Tool::Multipathd, &["show", "daemon"], limit)
        .is_ok_and(|f| f.code == Some(0))
}

/// Flushes the multipath map of `wwid` if it exists.
pub fn flush_map(tools: &Tools, mapper_dir: &Path, wwid: &str, limit: Duration) -> Result<bool> {
    if !mapper_dir.join(wwid).exists() {
        return Ok(false);
    }
    tools.run_ok(Tool::Multipath, &["-f", wwid], limit, &[0])?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(name: &str, iqn: Option<&str>, portal: Option<&str>) -> Port {
        Port {
            name: name.into(),
            iqn: iqn.map(Into::into),
            portal: portal.map(Into::into),
            wwn: None,
            nqn: None,
        }
    }

    #[test]
    fn fc_needs_fibre_channel_ports_and_an_iscsi_only_array_is_refused_by_name() {
        let iscsi = port("CT0.ETH4", Some("iqn.x"), Some("10.0.0.1:3260"));
        let mut fc = port("CT0.FC0", None, None);
        fc.wwn = Some("524A937000000000".into());
        assert!(require_fc_targets(&[iscsi.clone(), fc], "fa1").is_ok());
        let err = require_fc_targets(&[iscsi], "cbs.example:443").expect_err("iSCSI only");
        let text = err.to_string();
        assert!(
            text.contains("cbs.example:443 has no Fibre Channel ports (only iSCSI)"),
            "{text}"
        );
        assert!(text.contains("block.sanType"), "{text}");
        assert!(require_fc_targets(&[], "fa1").is_err());
    }

    #[test]
    fn targets_are_iscsi_ports_within_the_allowed_cidrs() {
        let iqn = "iqn.2010-06.com.purestorage:flasharray.1";
        let ports = [
            port("CT0.ETH4", Some(iqn), Some("10.0.0.1:3260")),
            port("CT1.ETH4", Some(iqn), Some("10.1.0.1:3260")),
            port("CT0.ETH5", Some(iqn), Some("[fd00::1]:3260")),
            port("CT0.FC0", None, None),
            port("CT0.ETH8", None, Some("10.0.0.5:4420")),
        ];
        assert_eq!(iscsi_targets(&ports, &[]).len(), 3);
        let only: Vec<IpNet> = vec![
            "10.0.0.0/24".parse().expect("cidr"),
            "fd00::/64".parse().expect("cidr"),
        ];
        let picked: Vec<String> = iscsi_targets(&ports, &only)
            .into_iter()
            .map(|t| t.portal)
            .collect();
        assert_eq!(picked, ["10.0.0.1:3260", "[fd00::1]:3260"]);
    }

    #[test]
    fn portal_addresses_parse() {
        assert_eq!(portal_ip("10.0.0.1:3260"), "10.0.0.1".parse().ok());
        assert_eq!(portal_ip("[fd00::1]:3260"), "fd00::1".parse().ok());
        assert_eq!(portal_ip("nonsense"), None);
    }

    #[test]
    fn only_the_paths_of_the_volume_are_rescanned() {
        let sys = tempfile::tempdir().expect("tempdir");
        for (name, wwid) in [
            ("sdb", "naa.624a9370b75f8356604b431d00011010"),
            ("sdc", "naa.624a9370b75f8356604b431d00011010"),
            ("sda", "naa.624a9370b75f8356604b431d00000001"),
        ] {
            let d = sys.path().join("block").join(name).join("device");
            std::fs::create_dir_all(&d).expect("mkdir");
            std::fs::write(d.join("wwid"), wwid).expect("wwid");
            std::fs::write(d.join("rescan"), "").expect("rescan");
        }
        let done = rescan_paths(
            sys.path(),
            "3624a9370b75f8356604b431d00011010",
            Duration::from_secs(5),
        )
        .expect("rescanned");
        assert_eq!(done, ["sdb", "sdc"]);
        let read = |n: &str| {
            std::fs::read_to_string(sys.path().join("block").join(n).join("device/rescan"))
                .expect("read")
        };
        assert_eq!(
            (read("sdb"), read("sdc"), read("sda")),
            ("1".into(), "1".into(), String::new())
        );
    }

    #[test]
    fn fc_rescan_writes_every_scsi_host() {
        let sys = tempfile::tempdir().expect("tempdir");
        for h in ["host0", "host1"] {
            let d = sys.path().join("class/scsi_host").join(h);
            std::fs::create_dir_all(&d).expect("mkdir");
            std::fs::write(d.join("scan"), "").expect("scan");
        }
        assert_eq!(scsi_host_rescan(sys.path()).expect("rescanned"), 2);
        let text =
            std::fs::read_to_string(sys.path().join("class/scsi_host/host1/scan")).expect("read");
        assert_eq!(text, "- - -");
        assert!(scsi_host_rescan(&sys.path().join("none")).is_err());
    }
}
