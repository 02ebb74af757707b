//! Pure decisions for restoring a replicated volume on another site (issue 18): a claim names a
//! source array, a protection group on it and a volume in it (annotations, in the style of PSO's
//! `snapshot.beta.purestorage.com/name`); the new volume is a copy of the newest *completed*
//! replicated snapshot (`<array>:<group>.<n>`) that contains the volume, taken from a FlashArray
//! that holds the replica group `<array>:<group>`. Snapshots still in transfer are skipped, and so
//! are snapshots that lack the volume (it joined the group later); the claim's size rules are
//! those of every copy ([`crate::decide::source::check_size`]).
//!
//! No I/O: [`crate::reconcile::replica`] asks the arrays and brings the answers here.

use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::PersistentVolumeClaim;

use flashvol_common::flasharray::PgroupSnapshot;
use flashvol_common::options::{is_valid_array_name, is_valid_pgroup_name};

use crate::decide::claim::annotation;
use crate::decide::source::SourceError;

/// The source array's name (Purity `array_name`), as replication names it on the target.
pub const ANN_REPLICA_ARRAY: &str = "replica.beta.purestorage.com/array";
/// The protection group on the source array that replicates the volume.
pub const ANN_REPLICA_GROUP: &str = "replica.beta.purestorage.com/protection-group";
/// The volume's name on the source array (`<prefix>-pvc-<uid>` for one of ours).
pub const ANN_REPLICA_VOLUME: &str = "replica.beta.purestorage.com/volume";

/// What a claim restores: `volume` of protection group `group` on array `array`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    pub array: String,
    pub group: String,
    pub volume: String,
}

impl Replica {
    /// The replica group on a target array: `<array>:<group>`.
    pub fn replica_group(&self) -> String {
        format!("{}:{}", self.array, self.group)
    }

    /// The volume's snapshot inside the replicated group snapshot `snapshot`.
    pub fn volume_snapshot(&self, snapshot: &str) -> String {
        format!("{snapshot}.{}", self.volume)
    }
}

/// Why a replica restore is refused; the text becomes the `ProvisioningFailed` event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplicaError {
    #[error(
        "a replica restore needs all three annotations {ANN_REPLICA_ARRAY}, {ANN_REPLICA_GROUP} and {ANN_REPLICA_VOLUME}; missing: {missing}"
    )]
    Incomplete { missing: String },
    #[error(
        "no FlashArray holds replicated snapshots of protection group {group} ({asked}); replication from {array} must reach one of this cluster's arrays first"
    )]
    NotReplicatedHere {
        group: String,
        array: String,
        asked: String,
    },
    #[error(
        "no completed replicated snapshot of {group} contains volume {volume} ({detail}); restore when a snapshot that includes it has been transferred"
    )]
    NoSnapshot {
        group: String,
        volume: String,
        detail: String,
    },
}

/// The replica a claim names, `None` without any of the annotations; all three or an error.
pub fn claim_replica(pvc: &PersistentVolumeClaim) -> Result<Option<Replica>, SourceError> {
    let get = |key| annotation(&pvc.metadata, key).map(str::trim);
    let (array, group, volume) = (
        get(ANN_REPLICA_ARRAY),
        get(ANN_REPLICA_GROUP),
        get(ANN_REPLICA_VOLUME),
    );
    let (Some(array), Some(group), Some(volume)) = (array, group, volume) else {
        if array.is_none() && group.is_none() && volume.is_none() {
            return Ok(None);
        }
        let missing = [
            (array, ANN_REPLICA_ARRAY),
            (group, ANN_REPLICA_GROUP),
            (volume, ANN_REPLICA_VOLUME),
        ]
        .iter()
        .filter(|(v, _)| v.is_none())
        .map(|(_, k)| *k)
        .collect::<Vec<_>>()
        .join(", ");
        return Err(ReplicaError::Incomplete { missing }.into());
    };
    let bad = |key, value: &str, expected| SourceError::BadName {
        key,
        value: value.to_owned(),
        expected,
    };
    if !is_valid_pgroup_name(array) {
        return Err(bad(
            ANN_REPLICA_ARRAY,
            array,
            "an array name (1-63 letters, digits or '-')",
        ));
    }
    if !is_valid_pgroup_name(group) {
        return Err(bad(
            ANN_REPLICA_GROUP,
            group,
            "a protection group name (1-63 letters, digits or '-')",
        ));
    }
    if !is_valid_array_name(volume) {
        return Err(bad(
            ANN_REPLICA_VOLUME,
            volume,
            "a volume name (1-63 letters, digits, '-' or '_')",
        ));
    }
    Ok(Some(Replica {
        array: array.to_owned(),
        group: group.to_owned(),
        volume: volume.to_owned(),
    }))
}

/// The snapshots worth trying, newest first: completed ones only. Returns them and how many were
/// skipped because their transfer is still running.
pub fn restorable(snapshots: &[PgroupSnapshot]) -> (Vec<&PgroupSnapshot>, usize) {
    let mut complete: Vec<&PgroupSnapshot> = snapshots.iter().filter(|s| s.is_complete()).collect();
    complete.sort_by_key(|s| std::cmp::Reverse(created_at(s)));
    let in_transfer = snapshots.len() - complete.len();
    (complete, in_transfer)
}

/// When the source took the snapshot (`None`: the array did not say, sorted last).
pub fn created_at(snapshot: &PgroupSnapshot) -> Option<SystemTime> {
    let text = snapshot.created.as_deref()?;
    let ts: k8s_openapi::jiff::Timestamp = text.parse().ok()?;
    Some(SystemTime::from(ts))
}

/// How old a recovery point is, for people: `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`.
pub fn describe_age(age: Duration) -> String {
    let secs = age.as_secs();
    match secs {
        0..120 => format!("{secs} s"),
        120..7200 => format!("{} min", secs / 60),
        7200..172_800 => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
        _ => format!("{} d {} h", secs / 86_400, secs % 86_400 / 3600),
    }
}

/// The event that says which snapshot a replica restore used and how old it is (the effective
/// recovery point), and what it skipped.
pub fn restore_message(
    replica: &Replica,
    snapshot: &PgroupSnapshot,
    array: &str,
    now: SystemTime,
    skipped_in_transfer: usize,
    skipped_without_volume: usize,
) -> String {
    let age = created_at(snapshot)
        .and_then(|at| now.duration_since(at).ok())
        .map_or_else(
            || "of unknown age".to_owned(),
            |a| format!("taken {} ago", describe_age(a)),
        );
    let mut text = format!(
        "restoring volume {} of {} from replicated snapshot {} on {array}, {age} (created {}): the data is as of then",
        replica.volume,
        replica.replica_group(),
        snapshot.name,
        snapshot.created.as_deref().unwrap_or("unknown"),
    );
    if skipped_in_transfer > 0 {
        text.push_str(&format!(
            "; skipped {skipped_in_transfer} snapshot(s) still in transfer"
        ));
    }
    if skipped_without_volume > 0 {
        text.push_str(&format!(
            "; skipped {skipped_without_volume} newer snapshot(s) without the volume"
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::fixtures::pvc;

    fn annotated_pvc(pairs: &[(&str, &str)]) -> PersistentVolumeClaim {
        let mut claim = pvc("restored", "pure-block", "1Gi");
        let annotations = claim.metadata.annotations.get_or_insert_default();
        for (key, value) in pairs {
            annotations.insert((*key).into(), (*value).into());
        }
        claim
    }

    fn snap(name: &str, created: &str, complete: bool) -> PgroupSnapshot {
        PgroupSnapshot {
            name: name.into(),
            created: Some(created.into()),
            completed: complete.then(|| created.to_owned()),
            progress: Some(if complete { 1.0 } else { 0.3 }),
        }
    }

    #[test]
    fn all_three_annotations_or_none() {
        let full = annotated_pvc(&[
            (ANN_REPLICA_ARRAY, "site-a"),
            (ANN_REPLICA_GROUP, "daily"),
            (ANN_REPLICA_VOLUME, "k8s-pvc-1"),
        ]);
        let replica = claim_replica(&full).expect("valid").expect("named");
        assert_eq!(replica.replica_group(), "site-a:daily");
        assert_eq!(
            replica.volume_snapshot("site-a:daily.4"),
            "site-a:daily.4.k8s-pvc-1"
        );
        assert_eq!(claim_replica(&annotated_pvc(&[])), Ok(None));
        let partial = annotated_pvc(&[(ANN_REPLICA_VOLUME, "k8s-pvc-1")]);
        let err = claim_replica(&partial).expect_err("incomplete");
        assert!(err.to_string().contains(ANN_REPLICA_ARRAY), "{err}");
        assert!(err.to_string().contains(ANN_REPLICA_GROUP), "{err}");
    }

    #[test]
    fn names_are_checked_by_purity_rules() {
        for (key, value) in [
            (ANN_REPLICA_ARRAY, "site_a"),
            (ANN_REPLICA_GROUP, "site-a:daily"),
            (ANN_REPLICA_VOLUME, "k8s-pvc-1.snap"),
        ] {
            let mut pairs = vec![
                (ANN_REPLICA_ARRAY, "site-a"),
                (ANN_REPLICA_GROUP, "daily"),
                (ANN_REPLICA_VOLUME, "k8s-pvc-1"),
            ];
            pairs.retain(|(k, _)| *k != key);
            pairs.push((key, value));
            let err = claim_replica(&annotated_pvc(&pairs)).expect_err("bad name");
            assert!(
                matches!(&err, SourceError::BadName { key: k, .. } if *k == key),
                "{key}: {err}"
            );
        }
    }

    #[test]
    fn only_completed_snapshots_newest_first() {
        let snapshots = [
            snap("a:g.1", "2026-12-01T00:00:00Z", true),
            snap("a:g.3", "2026-12-03T00:00:00Z", false),
            snap("a:g.2", "2026-12-02T00:00:00Z", true),
        ];
        let (order, in_transfer) = restorable(&snapshots);
        let names: Vec<&str> = order.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a:g.2", "a:g.1"]);
        assert_eq!(in_transfer, 1);
    }

    #[test]
    fn the_event_names_the_snapshot_its_age_and_what_was_skipped() {
        let replica = Replica {
            array: "site-a".into(),
            group: "daily".into(),
            volume: "k8s-pvc-1".into(),
        };
        let snapshot = snap("site-a:daily.2", "2026-12-02T00:00:00Z", true);
        let now = created_at(&snapshot).expect("time") + Duration::from_secs(3 * 3600 + 300);
        let text = restore_message(&replica, &snapshot, "FlashArray cbs", now, 1, 2);
        assert!(
            text.contains("replicated snapshot site-a:daily.2 on FlashArray cbs"),
            "{text}"
        );
        assert!(text.contains("taken 3 h 5 min ago"), "{text}");
        assert!(
            text.contains("skipped 1 snapshot(s) still in transfer"),
            "{text}"
        );
        assert!(
            text.contains("2 newer snapshot(s) without the volume"),
            "{text}"
        );
        assert_eq!(describe_age(Duration::from_secs(45)), "45 s");
        assert_eq!(describe_age(Duration::from_secs(720)), "12 min");
        assert_eq!(
            describe_age(Duration::from_secs(2 * 86_400 + 4 * 3600)),
            "2 d 4 h"
        );
    }
}
