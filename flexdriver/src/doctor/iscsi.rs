//! iSCSI on this node: the initiator name the driver registers with the arrays (checked by the
//! driver's own parser, which refuses e.g. an unexpanded `$(/sbin/iscsi-iname)`), and `iscsid`,
//! running or socket-activated.

use std::path::Path;

use flashvol_common::config::SanType;

use super::host::Host;
use super::{Finding, Loaded, skip_all};
use crate::node::initiators::parse_initiator_file;

pub const IDS: &[&str] = &["iscsi.initiator", "iscsi.iscsid"];

/// The abstract socket iscsiadm talks to iscsid on; systemd holds it while `iscsid.socket` waits
/// to start iscsid on first use (open-iscsi's `iscsid.socket` unit).
const ISCSID_SOCKET: &str = "@ISCSIADM_ABSTRACT_NAMESPACE";

/// What was read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Facts {
    /// The initiator file's text, or why it could not be read.
    initiator: Result<String, String>,
    /// Pids of `iscsid`.
    iscsid: Result<Vec<u32>, String>,
    /// Whether something (systemd) listens on iscsid's socket, in the host's network namespace.
    socket_listening: bool,
}

pub fn check(host: &Host, loaded: &Loaded) -> Vec<Finding> {
    if let Some(why) = not_used(loaded) {
        return skip_all(IDS, why);
    }
    let file = &loaded.node.iscsi_initiator_file;
    let facts = Facts {
        initiator: host.read_to_string(file).map_err(|e| e.to_string()),
        iscsid: host.pids_named("iscsid").map_err(|e| e.to_string()),
        socket_listening: host
            .read_to_string(Path::new("/proc/1/net/unix"))
            .is_ok_and(|table| listening_on(&table, ISCSID_SOCKET)),
    };
    judge(file, &facts)
}

/// Why iSCSI does not matter here, if it does not.
fn not_used(loaded: &Loaded) -> Option<&'static str> {
    if !loaded.has_flash_arrays() {
        Some("not used: no FlashArrays configured")
    } else if loaded.config.settings.block.san_type != SanType::Iscsi {
        Some("not used: the SAN type is FC")
    } else {
        None
    }
}

/// Whether `/proc/net/unix` lists a socket at `path` (its last column).
fn listening_on(table: &str, path: &str) -> bool {
    table
        .lines()
        .skip(1)
        .any(|line| line.split_whitespace().nth(7) == Some(path))
}

fn judge(file: &Path, facts: &Facts) -> Vec<Finding> {
    let initiator = match &facts.initiator {
        Err(e) => Finding::fail(
            "iscsi.initiator",
            format!("cannot read {}: {e}", file.display()),
            "install open-iscsi (Debian/Ubuntu) or iscsi-initiator-utils (RHEL), which writes it, or set node.iscsiInitiatorFile",
        ),
        Ok(text) => match parse_initiator_file(text, file) {
            Ok(iqn) => Finding::pass("iscsi.initiator", format!("{iqn} ({})", file.display())),
            Err(e) => Finding::fail(
                "iscsi.initiator",
                e.to_string(),
                format!(
                    "give this node its own name: echo \"InitiatorName=$(iscsi-iname)\" > {} && systemctl restart iscsid",
                    file.display()
                ),
            ),
        },
    };
    let iscsid = match &facts.iscsid {
        Ok(pids) if !pids.is_empty() => Finding::pass(
            "iscsi.iscsid",
            format!("iscsid is running (pid {})", pids[0]),
        ),
        Ok(_) if facts.socket_listening => Finding::pass(
            "iscsi.iscsid",
            "iscsid is not running, but systemd listens on its socket (iscsid.socket): it starts on first use",
        ),
        Ok(_) => Finding::fail(
            "iscsi.iscsid",
            "iscsid is not running and nothing listens on its socket: iSCSI logins fail",
            "systemctl enable --now iscsid (or iscsid.socket)",
        ),
        Err(e) => Finding::fail(
            "iscsi.iscsid",
            format!("cannot list the host's processes: {e}"),
            "run doctor on the node, or in the DaemonSet pod, which sees the host's / (--host-root)",
        ),
    };
    vec![initiator, iscsid]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    fn facts(initiator: &str, iscsid: &[u32], socket: bool) -> Facts {
        Facts {
            initiator: Ok(initiator.into()),
            iscsid: Ok(iscsid.to_vec()),
            socket_listening: socket,
        }
    }

    #[test]
    fn an_unexpanded_initiator_name_fails_with_the_drivers_reason() {
        let f = &judge(
            Path::new("/etc/iscsi/initiatorname.iscsi"),
            &facts("InitiatorName=$(/sbin/iscsi-iname)\n", &[7], false),
        )[0];
        assert_eq!(f.status, Status::Fail);
        assert!(f.saw.contains("unexpanded"), "{}", f.saw);
        assert!(f.fix.as_deref().unwrap_or("").contains("iscsi-iname"));
    }

    #[test]
    fn iscsid_may_run_or_wait_on_its_socket() {
        let file = Path::new("/i");
        let good = "InitiatorName=iqn.2004-10.com.ubuntu:01:abc\n";
        assert_eq!(
            judge(file, &facts(good, &[7], false))[1].status,
            Status::Pass
        );
        assert_eq!(judge(file, &facts(good, &[], true))[1].status, Status::Pass);
        let down = &judge(file, &facts(good, &[], false))[1];
        assert_eq!(down.status, Status::Fail);
        assert!(
            down.fix
                .as_deref()
                .unwrap_or("")
                .contains("systemctl enable --now iscsid")
        );
    }

    #[test]
    fn the_socket_is_found_in_the_unix_socket_table() {
        let table = "Num       RefCount Protocol Flags    Type St Inode Path\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 23318 @ISCSIADM_ABSTRACT_NAMESPACE\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 23319 /run/systemd/notify\n";
        assert!(listening_on(table, ISCSID_SOCKET));
        assert!(!listening_on(table, "@other"));
    }
}
