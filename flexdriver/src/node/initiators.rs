//! This node's identity on a FlashArray: its iSCSI IQN and FC WWNs, and the name of the array
//! host the driver creates for it.
//!
//! Hosts the driver creates are named `<node name, sanitised>-flashvol`. The suffix is how the
//! driver recognises its own hosts: RWO fencing only ever disconnects volumes from hosts that
//! carry it, never from hosts an administrator made.

use std::path::Path;

use crate::runtime::error::{FlexError, Result};

/// Suffix of every host name this driver creates.
pub const HOST_SUFFIX: &str = "-flashvol";
/// Purity object names are at most 63 characters.
const MAX_NAME: usize = 63;

/// The IQN from an open-iscsi `initiatorname.iscsi` file.
pub fn parse_initiator_file(text: &str, path: &Path) -> Result<String> {
    let value = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix("InitiatorName="))
        .map(str::trim)
        .ok_or_else(|| {
            FlexError::Refused(format!(
                "{} has no InitiatorName= line; is open-iscsi installed and configured?",
                path.display()
            ))
        })?;
    validate_iqn(value).map_err(|why| {
        FlexError::Refused(format!(
            "{}: InitiatorName {value:?} is not usable: {why}",
            path.display()
        ))
    })?;
    Ok(value.to_owned())
}

/// An IQN/EUI the array will accept. Refuses, among others, the literal `$(/sbin/iscsi-iname)`
/// that some images ship unexpanded (pso-csi#111): registering it would make every such node
/// the same host.
pub fn validate_iqn(iqn: &str) -> std::result::Result<(), String> {
    if iqn.contains("$(") || iqn.contains('`') || iqn.contains("${") {
        return Err(
            "it is an unexpanded shell expression; generate a name with iscsi-iname and restart iscsid"
                .into(),
        );
    }
    let lower = iqn.to_ascii_lowercase();
    let well_formed =
        (lower.starts_with("iqn.") || lower.starts_with("eui.") || lower.starts_with("naa."))
            && iqn.len() <= 223
            && iqn
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    if !well_formed {
        return Err(
            "expected iqn.YYYY-MM.reversed.domain[:id] (letters, digits, '.', '-', ':')".into(),
        );
    }
    Ok(())
}

/// FC port WWNs from `<sysfs>/class/fc_host/*/port_name` (`0x21000024ff3a4b5c`), in the array's
/// spelling: 16 upper-case hex digits.
pub fn read_fc_wwns(sysfs_root: &Path) -> Vec<String> {
    let dir = sysfs_root.join("class/fc_host");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut wwns: Vec<String> = entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("port_name")).ok())
        .filter_map(|raw| normalise_wwn(&raw))
        .collect();
    wwns.sort();
    wwns.dedup();
    wwns
}

pub fn normalise_wwn(raw: &str) -> Option<String> {
    let hex: String = raw
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|c| *c != ':')
        .collect();
    (hex.len() == 16 && hex.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_uppercase())
}

/// The host name the driver gives this node: `[-a-zA-Z0-9]` only, at most 63 characters,
/// ending in [`HOST_SUFFIX`]. A long node name is shortened with a hash of the full name, so
/// two long names sharing a prefix still get distinct hosts.
pub fn host_name_for(node: &str) -> String {
    let cleaned: String = node
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let cleaned = cleaned.trim_matches('-');
    let room = MAX_NAME - HOST_SUFFIX.len();
    let base = if cleaned.is_empty() {
        "node".to_owned()
    } else if cleaned.len() <= room {
        cleaned.to_owned()
    } else {
        let hash = format!("{:08x}", fnv1a(node.as_bytes()) as u32);
        format!("{}-{hash}", cleaned[..room - 9].trim_end_matches('-'))
    };
    format!("{base}{HOST_SUFFIX}")
}

/// Whether this driver created the host (by its naming convention).
pub fn is_flashvol_host(name: &str) -> bool {
    name.ends_with(HOST_SUFFIX)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iqn_is_read_from_open_iscsi_file() {
        let text = "## generated\nInitiatorName=iqn.1993-08.org.debian:01:abc123\n";
        assert_eq!(
            parse_initiator_file(text, Path::new("/etc/iscsi/initiatorname.iscsi")).expect("ok"),
            "iqn.1993-08.org.debian:01:abc123"
        );
    }

    #[test]
    fn unexpanded_shell_expression_is_refused() {
        let err = parse_initiator_file("InitiatorName=$(/sbin/iscsi-iname)\n", Path::new("/f"))
            .expect_err("refused")
            .to_string();
        assert!(err.contains("unexpanded") && err.contains("/f"), "{err}");
        assert!(parse_initiator_file("# nothing\n", Path::new("/f")).is_err());
        assert!(validate_iqn("iqn.2020 space").is_err());
        assert!(validate_iqn("hello").is_err());
    }

    #[test]
    fn wwns_take_the_arrays_spelling() {
        assert_eq!(
            normalise_wwn("0x21000024ff3a4b5c\n").as_deref(),
            Some("21000024FF3A4B5C")
        );
        assert_eq!(
            normalise_wwn("21:00:00:24:ff:3a:4b:5c").as_deref(),
            Some("21000024FF3A4B5C")
        );
        assert_eq!(normalise_wwn("0x21"), None);
    }

    #[test]
    fn fc_wwns_come_from_sysfs() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (host, wwn) in [
            ("host3", "0x21000024ff3a4b5c"),
            ("host4", "0x21000024ff3a4b5d"),
        ] {
            let p = dir.path().join("class/fc_host").join(host);
            std::fs::create_dir_all(&p).expect("mkdir");
            std::fs::write(p.join("port_name"), format!("{wwn}\n")).expect("write");
        }
        assert_eq!(
            read_fc_wwns(dir.path()),
            ["21000024FF3A4B5C", "21000024FF3A4B5D"]
        );
        assert!(read_fc_wwns(&dir.path().join("none")).is_empty());
    }

    #[test]
    fn host_names_are_purity_safe_and_recognisable() {
        assert_eq!(
            host_name_for("worker-1.example.com"),
            "worker-1-example-com-flashvol"
        );
        assert_eq!(host_name_for("..."), "node-flashvol");
        let long = format!("{}.example.com", "n".repeat(80));
        let name = host_name_for(&long);
        assert!(name.len() <= 63 && is_flashvol_host(&name), "{name}");
        assert_ne!(
            name,
            host_name_for(&format!("{}.example.org", "n".repeat(80)))
        );
        assert!(!is_flashvol_host("esx-cluster-01"));
    }
}
