//! Names that tie Kubernetes objects to array objects and to Linux devices.
//!
//! A PVC with uid `U` gets the PV `pvc-U` and the array object `<prefix>-pvc-U`, as PSO 2.x did, so
//! the name alone says what an array object belongs to: provisioning is idempotent across crashes
//! and the orphan collector can find what it owns.

/// PV name for a claim uid: `pvc-<uid>`.
pub fn pv_name(claim_uid: &str) -> String {
    format!("pvc-{claim_uid}")
}

/// Array-side name for a PV: `<prefix>-<pv name>`.
pub fn array_name(prefix: &str, pv_name: &str) -> String {
    format!("{prefix}-{pv_name}")
}

/// Glob matching every array object flashvol (or PSO) created with this prefix.
pub fn array_glob(prefix: &str) -> String {
    format!("{prefix}-pvc-*")
}

/// The claim uid encoded in an array object name, if the name is ours.
pub fn claim_uid_of(prefix: &str, array_name: &str) -> Option<String> {
    let uid = array_name.strip_prefix(prefix)?.strip_prefix("-pvc-")?;
    let looks_like_uid = uid.len() == 36
        && uid.chars().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    looks_like_uid.then(|| uid.to_ascii_lowercase())
}

/// The volume (FlashArray) or file system (FlashBlade) a snapshot name belongs to, read from the
/// name alone: `<volume>.<suffix>` (a snapshot of the volume, `purevol snap`, the snapshot CLI)
/// or `<protection group>.<suffix>.<volume>` (the volume's part of a protection group snapshot,
/// what array-side schedules take). Array object names contain no `.`, so the parts are
/// unambiguous; `None` when the name has neither form.
pub fn snapshot_source(snapshot: &str) -> Option<SnapshotOf<'_>> {
    let parts: Vec<&str> = snapshot.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    match parts.as_slice() {
        [volume, _suffix] => Some(SnapshotOf {
            volume,
            group: None,
        }),
        [group, _suffix, volume] => Some(SnapshotOf {
            volume,
            group: Some(group),
        }),
        _ => None,
    }
}

/// What a snapshot name says about its source ([`snapshot_source`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotOf<'a> {
    /// The snapshotted volume or file system.
    pub volume: &'a str,
    /// The protection group, for a volume's part of a protection group snapshot.
    pub group: Option<&'a str>,
}

/// SCSI WWID of a FlashArray volume: NAA 6, Pure's OUI `24a937`, then the serial.
/// This is the multipath map name and, without its leading `3`, the udev `wwn-0x…` name.
pub fn volume_wwid(serial: &str) -> String {
    format!("3624a9370{}", serial.to_ascii_lowercase())
}

/// udev's by-id link name for a FlashArray volume: `wwn-0x624a9370<serial>`.
pub fn volume_by_id_name(serial: &str) -> String {
    format!("wwn-0x624a9370{}", serial.to_ascii_lowercase())
}

/// Whether a FlashArray serial is well-formed (24 hex digits); serials come from array replies
/// and end up in device paths, so they are checked before use.
pub fn is_valid_serial(serial: &str) -> bool {
    serial.len() == 24 && serial.chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "70c5d7f4-3a8b-4d6e-9f10-1234567890ab";

    #[test]
    fn names_follow_pso() {
        assert_eq!(pv_name(UID), format!("pvc-{UID}"));
        assert_eq!(array_name("k8s", &pv_name(UID)), format!("k8s-pvc-{UID}"));
        assert_eq!(array_glob("k8s"), "k8s-pvc-*");
        assert_eq!(array_name("k8s", &pv_name(UID)).len(), 44);
    }

    #[test]
    fn claim_uid_is_recovered_only_from_our_names() {
        let name = array_name("k8s", &pv_name(UID));
        assert_eq!(claim_uid_of("k8s", &name).as_deref(), Some(UID));
        assert_eq!(claim_uid_of("prod", &name), None);
        assert_eq!(claim_uid_of("k8s", "k8s-pvc-not-a-uid"), None);
        assert_eq!(claim_uid_of("k8s", "k8s-other"), None);
    }

    #[test]
    fn snapshot_names_say_which_volume_they_belong_to() {
        let volume = array_name("k8s", &pv_name(UID));
        let own = format!("{volume}.883661");
        assert_eq!(
            snapshot_source(&own),
            Some(SnapshotOf {
                volume: &volume,
                group: None
            })
        );
        let scheduled = format!("daily.42.{volume}");
        assert_eq!(
            snapshot_source(&scheduled),
            Some(SnapshotOf {
                volume: &volume,
                group: Some("daily")
            })
        );
        for bad in ["", "k8s-pvc-x", "a..b", ".s", "v.", "a.b.c.d"] {
            assert_eq!(snapshot_source(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn wwid_from_serial() {
        let serial = "B75F8356604B431D00011010";
        assert!(is_valid_serial(serial));
        assert!(!is_valid_serial("B75F/../"));
        assert_eq!(volume_wwid(serial), "3624a9370b75f8356604b431d00011010");
        assert_eq!(
            volume_by_id_name(serial),
            "wwn-0x624a9370b75f8356604b431d00011010"
        );
    }
}
