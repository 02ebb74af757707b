//! Pure decisions about where a new claim's data comes from, and whether that source may be
//! used: nothing (a blank volume), a snapshot (PSO 2.x's restore annotation), another claim
//! (`spec.dataSource`, a clone), an existing array object an administrator hands over
//! (adoption), or a volume replicated from another site ([`crate::decide::replica`]). Also the
//! one rule for "this bound claim's volume is ours", which clones and the snapshot CLI share.
//!
//! Owns the annotation keys and the wording of every refusal, which becomes a `ProvisioningFailed`
//! event (or, from the CLI, the error it prints). No I/O: [`crate::reconcile::source`] asks the
//! arrays and the API and brings the answers here.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use flashvol_common::names;
use flashvol_common::options::{Backend, OptionsError, VolumeOptions, is_valid_array_name};

use crate::decide::claim::annotation;
use crate::decide::placement::{describe_selector, selector_matches};
use crate::decide::quantity::format_bytes;
use crate::decide::replica::{ANN_REPLICA_VOLUME, Replica, ReplicaError, claim_replica};
use crate::decide::volume::ANN_PROVISIONED_BY;

/// PSO 2.x's restore annotation: the new claim's volume is a copy of this snapshot.
pub const ANN_RESTORE: &str = "snapshot.beta.purestorage.com/name";
/// The new claim's PV takes over this existing array volume or file system.
pub const ANN_ADOPT: &str = "flashvol.io/adopt";
/// Set on the PV of an adopted object, with the object's name: the PV's Retain policy and the
/// object's origin are visible on the PV.
pub const ANN_ADOPTED: &str = "flashvol.io/adopted";
/// The reclaim policy of an adopted object's PV: the object existed before the claim, so
/// deleting the claim keeps it unless an administrator patches the PV to `Delete`.
pub const ADOPTED_RECLAIM_POLICY: &str = "Retain";

/// Where a claim's data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A new, empty volume.
    Blank,
    /// A copy of this snapshot (any snapshot of one of our volumes).
    Snapshot(String),
    /// A copy of the volume of this claim, in the claim's namespace.
    Clone(String),
    /// This existing array object, taken over as it is.
    Adopt(String),
    /// The newest completed replicated snapshot of a volume from another site
    /// ([`crate::decide::replica`]).
    Replica(Replica),
}

impl Source {
    /// For messages: `snapshot k8s-pvc-….5`, `claim data`, `array object legacy-db`.
    pub fn describe(&self) -> String {
        match self {
            Source::Blank => "nothing".into(),
            Source::Snapshot(s) => format!("snapshot {s}"),
            Source::Clone(c) => format!("claim {c}"),
            Source::Adopt(a) => format!("array object {a}"),
            Source::Replica(r) => format!("volume {} of {}", r.volume, r.replica_group()),
        }
    }
}

/// Why a claim's source cannot be used; the text goes into a `ProvisioningFailed` event. None
/// of these ever falls back to a blank volume.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("claim names two sources ({first} and {second}); a new volume is copied from one only")]
    Conflicting {
        first: &'static str,
        second: &'static str,
    },
    #[error(
        "spec.dataSource is a VolumeSnapshot ({name}): VolumeSnapshot objects are CSI-only and flex volumes cannot use them; restore a snapshot with the annotation {ANN_RESTORE}: <snapshot name> (`snapshot list` in the provisioner pod shows them)"
    )]
    VolumeSnapshot { name: String },
    #[error(
        "spec.dataSource kind {kind:?} (apiGroup {group:?}) is not supported: only PersistentVolumeClaim (a clone) is"
    )]
    UnsupportedKind { kind: String, group: String },
    #[error(
        "spec.dataSourceRef names claim {name} in namespace {namespace}: clones are made from claims in the claim's own namespace only"
    )]
    OtherNamespace { name: String, namespace: String },
    #[error("annotation {key}: {value:?} is not {expected}")]
    BadName {
        key: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error(
        "{what} cannot be restored onto a FlashBlade: replicated snapshots are FlashArray protection-group snapshots; use a block class"
    )]
    FileReplica { what: String },
    #[error(
        "snapshot {snapshot} is of {volume}, which is not a volume flashvol manages (<prefix>-pvc-<uid> with prefix {prefix:?}); only snapshots of our volumes can be restored"
    )]
    NotOurSnapshot {
        snapshot: String,
        volume: String,
        prefix: String,
    },
    #[error("claim asks for {requested}, less than the {size} of {what}; ask for at least {size}")]
    TooSmall {
        requested: String,
        size: String,
        what: String,
    },
    #[error("source claim {0}")]
    Claim(#[from] ClaimedVolumeError),
    #[error("{0}")]
    Replica(#[from] ReplicaError),
    #[error(
        "claim {claim} is on backend {source_backend}, this claim's class is {backend}: a clone stays on the same kind of array"
    )]
    OtherBackend {
        claim: String,
        source_backend: Backend,
        backend: Backend,
    },
    #[error(
        "StorageClass {class} does not allow adoption: an administrator must set its parameter allowAdoption: \"true\" (annotation {ANN_ADOPT})"
    )]
    AdoptionNotAllowed { class: String },
    #[error(
        "claim asks for {requested}, more than the {size} of {object}; an adopted object is taken as it is, never resized: ask for at most {size}"
    )]
    DoesNotFit {
        requested: String,
        size: String,
        object: String,
    },
    #[error("{object} cannot be adopted: it is already the volume of PV {pv}")]
    InUse { object: String, pv: String },
    #[error(
        "{object} cannot be adopted: it is connected to {hosts} on the array; disconnect it first (a connected volume is in use by a host)"
    )]
    Connected { object: String, hosts: String },
    #[error(
        "{object} cannot be adopted: it is destroyed on {array}; recover it on the array first"
    )]
    Destroyed { object: String, array: String },
    #[error(
        "{what} is on {array}, which the claim's selector ({selector}) excludes; a copy is made on the array of its source"
    )]
    SelectorExcludes {
        what: String,
        array: String,
        selector: String,
    },
}

/// Where the claim says its data comes from: at most one of the restore annotation, the adopt
/// annotation and `spec.dataSource`/`dataSourceRef` (the API server keeps those two consistent;
/// `dataSourceRef` alone can name another namespace, which is refused).
pub fn claim_source(pvc: &PersistentVolumeClaim) -> Result<Source, SourceError> {
    let restore = annotation(&pvc.metadata, ANN_RESTORE);
    let replica = claim_replica(pvc)?;
    let adopt = annotation(&pvc.metadata, ANN_ADOPT);
    let spec = pvc.spec.as_ref();
    let reference = spec.and_then(|s| s.data_source_ref.as_ref());
    let local = spec.and_then(|s| s.data_source.as_ref());
    let data_source = reference
        .map(|r| (r.api_group.as_deref(), r.kind.as_str(), r.name.as_str()))
        .or_else(|| local.map(|l| (l.api_group.as_deref(), l.kind.as_str(), l.name.as_str())));
    let named: Vec<&'static str> = [
        (restore.is_some(), ANN_RESTORE),
        (adopt.is_some(), ANN_ADOPT),
        (replica.is_some(), ANN_REPLICA_VOLUME),
        (data_source.is_some(), "spec.dataSource"),
    ]
    .into_iter()
    .filter_map(|(set, what)| set.then_some(what))
    .collect();
    if let [first, second, ..] = named.as_slice() {
        return Err(SourceError::Conflicting { first, second });
    }
    if let Some(replica) = replica {
        return Ok(Source::Replica(replica));
    }
    if let Some(snapshot) = restore {
        let snapshot = snapshot.trim();
        if names::snapshot_source(snapshot).is_none_or(|of| !is_valid_array_name(of.volume))
            || !snapshot
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(SourceError::BadName {
                key: ANN_RESTORE,
                value: snapshot.to_owned(),
                expected: "a snapshot name (<volume>.<suffix> or <protection group>.<suffix>.<volume>)",
            });
        }
        return Ok(Source::Snapshot(snapshot.to_owned()));
    }
    if let Some(object) = adopt {
        let object = object.trim();
        if !is_valid_array_name(object) {
            return Err(SourceError::BadName {
                key: ANN_ADOPT,
                value: object.to_owned(),
                expected: "an array volume or file system name (1-63 letters, digits, '-' or '_')",
            });
        }
        return Ok(Source::Adopt(object.to_owned()));
    }
    let Some((group, kind, name)) = data_source else {
        return Ok(Source::Blank);
    };
    let group = group.unwrap_or_default();
    if let Some(namespace) = reference.and_then(|r| r.namespace.as_deref())
        && Some(namespace) != pvc.metadata.namespace.as_deref()
    {
        return Err(SourceError::OtherNamespace {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
        });
    }
    match (group, kind) {
        ("", "PersistentVolumeClaim") => Ok(Source::Clone(name.to_owned())),
        ("snapshot.storage.k8s.io", "VolumeSnapshot") => Err(SourceError::VolumeSnapshot {
            name: name.to_owned(),
        }),
        _ => Err(SourceError::UnsupportedKind {
            kind: kind.to_owned(),
            group: group.to_owned(),
        }),
    }
}

/// The suffix of the snapshot a FlashBlade clone copies through (`<source fs>.<suffix>`; a blade
/// copies snapshots, not live file systems): named after the new claim's PV, so a pass after a
/// restart finds the snapshot an earlier pass took instead of taking another. Letters, digits
/// and `-` only, as suffixes must be.
pub fn clone_snapshot_suffix(pv_name: &str) -> String {
    let safe: String = pv_name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("clone-{safe}")
}

/// Replicated snapshots come from FlashArray protection groups, so only a block class can restore
/// one; snapshots and clones are copied on both backends ([`crate::reconcile::copy`]).
pub fn check_backend(source: &Source, backend: Backend) -> Result<(), SourceError> {
    match (source, backend) {
        (Source::Replica(_), Backend::File) => Err(SourceError::FileReplica {
            what: source.describe(),
        }),
        _ => Ok(()),
    }
}

/// A restore may use any snapshot of a volume we provisioned (`<prefix>-pvc-<uid>`), taken by
/// the CLI or by the array (a protection group schedule), but never one of a volume outside
/// Kubernetes: the annotation is written by whoever may create claims.
pub fn check_snapshot(snapshot: &str, prefix: &str) -> Result<(), SourceError> {
    let volume = names::snapshot_source(snapshot).map_or("", |of| of.volume);
    if names::claim_uid_of(prefix, volume).is_none() {
        return Err(SourceError::NotOurSnapshot {
            snapshot: snapshot.to_owned(),
            volume: volume.to_owned(),
            prefix: prefix.to_owned(),
        });
    }
    Ok(())
}

/// A copy or an adopted object stays on the array of its source: the claim's selector, if any,
/// must accept that array's labels.
pub fn check_placement(
    selector: Option<&LabelSelector>,
    labels: &BTreeMap<String, String>,
    array: &str,
    what: &str,
) -> Result<(), SourceError> {
    match selector {
        Some(s) if !selector_matches(s, labels) => Err(SourceError::SelectorExcludes {
            what: what.to_owned(),
            array: array.to_owned(),
            selector: describe_selector(Some(s)),
        }),
        _ => Ok(()),
    }
}

/// The claim must ask for at least what it copies or adopts; a copy larger than its source is
/// grown after the copy. `requested` is the claim's request in bytes, `size` the source's.
pub fn check_size(requested: u64, size: u64, what: &str) -> Result<(), SourceError> {
    if requested < size {
        return Err(SourceError::TooSmall {
            requested: format_bytes(requested),
            size: format_bytes(size),
            what: what.to_owned(),
        });
    }
    Ok(())
}

/// What the API and the array say about an object a claim wants to adopt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdoptionFacts<'a> {
    pub object: &'a str,
    /// The claim's class, and whether it allows adoption.
    pub class: &'a str,
    pub allowed: bool,
    /// The PV whose options name the object, if any.
    pub used_by: Option<&'a str>,
    /// Hosts and host groups the FlashArray volume is connected to (FlashBlade: none to tell).
    pub connected_to: &'a [String],
    /// `Some(array)` when the object is destroyed there.
    pub destroyed_on: Option<&'a str>,
    pub requested: u64,
    pub size: u64,
}

/// The first safeguard of adoption, checked before any array is asked about the object (a claim's
/// author must not learn what the arrays hold): an administrator allowed it on the class.
pub fn check_adoption_allowed(class: &str, allowed: bool) -> Result<(), SourceError> {
    if !allowed {
        return Err(SourceError::AdoptionNotAllowed {
            class: class.to_owned(),
        });
    }
    Ok(())
}

/// The safeguards of adoption: an administrator allowed it on the class
/// ([`check_adoption_allowed`]); the object is live, no PV names it (so no claim owns it), and no
/// host uses it; the claim fits in it. The size is not changed: adoption never touches the
/// object's data or size.
pub fn check_adoption(facts: &AdoptionFacts<'_>) -> Result<(), SourceError> {
    let object = facts.object.to_owned();
    check_adoption_allowed(facts.class, facts.allowed)?;
    if let Some(array) = facts.destroyed_on {
        return Err(SourceError::Destroyed {
            object,
            array: array.to_owned(),
        });
    }
    if let Some(pv) = facts.used_by {
        return Err(SourceError::InUse {
            object,
            pv: pv.to_owned(),
        });
    }
    if !facts.connected_to.is_empty() {
        return Err(SourceError::Connected {
            object,
            hosts: facts.connected_to.join(", "),
        });
    }
    if facts.requested > facts.size {
        return Err(SourceError::DoesNotFit {
            requested: format_bytes(facts.requested),
            size: format_bytes(facts.size),
            object,
        });
    }
    Ok(())
}

/// Why a claim's volume is not one of ours to act on (a clone source, a CLI target).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimedVolumeError {
    #[error("{claim} does not exist")]
    NoClaim { claim: String },
    #[error("{claim} is being deleted")]
    Deleting { claim: String },
    #[error("{claim} is not bound to a volume yet")]
    NotBound { claim: String },
    #[error("{claim} is bound to PV {pv}, which does not exist")]
    NoVolume { claim: String, pv: String },
    #[error(
        "{claim} is bound to PV {pv}, which {provisioner} did not provision (provisioned-by {provisioned_by:?}, flexVolume driver {driver:?})"
    )]
    NotOurs {
        claim: String,
        pv: String,
        provisioner: String,
        provisioned_by: String,
        driver: String,
    },
    #[error("{claim} is bound to PV {pv}, whose options do not name a volume: {error}")]
    BadOptions {
        claim: String,
        pv: String,
        error: OptionsError,
    },
}

/// Which provisioner and driver this process is.
#[derive(Debug, Clone, Copy)]
pub struct Ours<'a> {
    pub provisioner: &'a str,
    pub driver: &'a str,
    /// Array name prefix for PSO PVs without `namespace`.
    pub prefix: &'a str,
}

/// The array volume of a bound claim, when the claim's PV is ours: provisioned by us (the
/// `provisioned-by` annotation, which PSO 2.x wrote too) and mounted by our driver. `claim` is
/// `namespace/name` for messages; `pvc`/`pv` are what the API returned (`None`: not found).
pub fn claimed_volume(
    claim: &str,
    pvc: Option<&PersistentVolumeClaim>,
    pv: Option<&PersistentVolume>,
    ours: Ours<'_>,
) -> Result<VolumeOptions, ClaimedVolumeError> {
    let claim = claim.to_owned();
    let Some(pvc) = pvc else {
        return Err(ClaimedVolumeError::NoClaim { claim });
    };
    if pvc.metadata.deletion_timestamp.is_some() {
        return Err(ClaimedVolumeError::Deleting { claim });
    }
    let bound = pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    let Some(pv_name) = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .filter(|v| !v.is_empty() && bound)
    else {
        return Err(ClaimedVolumeError::NotBound { claim });
    };
    pv_volume(&claim, &pv_name, pv, ours)
}

/// The second half of [`claimed_volume`]: the volume of the PV `pv_name` a claim is bound to,
/// when that PV is ours.
pub fn pv_volume(
    claim: &str,
    pv_name: &str,
    pv: Option<&PersistentVolume>,
    ours: Ours<'_>,
) -> Result<VolumeOptions, ClaimedVolumeError> {
    let (claim, pv_name) = (claim.to_owned(), pv_name.to_owned());
    let Some(pv) = pv else {
        return Err(ClaimedVolumeError::NoVolume { claim, pv: pv_name });
    };
    let provisioned_by = annotation(&pv.metadata, ANN_PROVISIONED_BY).unwrap_or_default();
    let flex = pv.spec.as_ref().and_then(|s| s.flex_volume.as_ref());
    let driver = flex.map_or("", |f| f.driver.as_str());
    if provisioned_by != ours.provisioner || driver != ours.driver {
        return Err(ClaimedVolumeError::NotOurs {
            claim,
            pv: pv_name,
            provisioner: ours.provisioner.to_owned(),
            provisioned_by: provisioned_by.to_owned(),
            driver: driver.to_owned(),
        });
    }
    let options = flex.and_then(|f| f.options.clone()).unwrap_or_default();
    VolumeOptions::from_options(&options, ours.prefix).map_err(|error| {
        ClaimedVolumeError::BadOptions {
            claim,
            pv: pv_name,
            error,
        }
    })
}

/// A clone's source: the claim's volume is ours ([`claimed_volume`]) and on the same backend.
pub fn clone_source(
    claim: &str,
    pvc: Option<&PersistentVolumeClaim>,
    pv: Option<&PersistentVolume>,
    ours: Ours<'_>,
    backend: Backend,
) -> Result<VolumeOptions, SourceError> {
    let volume = claimed_volume(claim, pvc, pv, ours)?;
    if volume.backend != backend {
        return Err(SourceError::OtherBackend {
            claim: claim.to_owned(),
            source_backend: volume.backend,
            backend,
        });
    }
    Ok(volume)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        PersistentVolumeClaimStatus, TypedLocalObjectReference, TypedObjectReference,
    };

    use super::*;
    use crate::tests::fixtures::{annotated_pvc, pv_of, pvc};

    const OURS: Ours<'static> = Ours {
        provisioner: "pure-provisioner",
        driver: "pure/flex",
        prefix: "k8s",
    };

    fn annotated(key: &str, value: &str) -> PersistentVolumeClaim {
        annotated_pvc("new", "pure-block", "10Gi", key, value)
    }

    fn with_data_source(group: Option<&str>, kind: &str, name: &str) -> PersistentVolumeClaim {
        let mut claim = pvc("new", "pure-block", "10Gi");
        claim.spec.get_or_insert_default().data_source = Some(TypedLocalObjectReference {
            api_group: group.map(str::to_owned),
            kind: kind.into(),
            name: name.into(),
        });
        claim
    }

    fn bound(claim: &mut PersistentVolumeClaim, pv: &PersistentVolume) {
        claim.spec.get_or_insert_default().volume_name = pv.metadata.name.clone();
        claim.status = Some(PersistentVolumeClaimStatus {
            phase: Some("Bound".into()),
            ..Default::default()
        });
    }

    const UID: &str = "70c5d7f4-3a8b-4d6e-9f10-1234567890ab";

    #[test]
    fn a_plain_claim_gets_a_blank_volume() {
        assert_eq!(claim_source(&pvc("c", "pure", "1Gi")), Ok(Source::Blank));
    }

    #[test]
    fn psos_restore_annotation_names_a_snapshot_of_either_form() {
        for name in [
            format!("k8s-pvc-{UID}.883661"),
            format!("daily.42.k8s-pvc-{UID}"),
        ] {
            assert_eq!(
                claim_source(&annotated(ANN_RESTORE, &name)),
                Ok(Source::Snapshot(name.clone()))
            );
            assert_eq!(check_snapshot(&name, "k8s"), Ok(()));
        }
        for bad in ["k8s-pvc-x", "a/b.c", "x.y.z.w", " "] {
            let result = claim_source(&annotated(ANN_RESTORE, bad));
            assert!(
                matches!(result, Err(SourceError::BadName { .. }) | Ok(Source::Blank)),
                "{bad:?}: {result:?}"
            );
        }
    }

    #[test]
    fn only_snapshots_of_our_volumes_are_restored() {
        let err = check_snapshot("oracle-prod.nightly", "k8s").expect_err("refused");
        assert!(err.to_string().contains("oracle-prod"), "{err}");
        let other_prefix = format!("team-pvc-{UID}.1");
        assert!(check_snapshot(&other_prefix, "k8s").is_err());
        assert!(check_snapshot(&other_prefix, "team").is_ok());
    }

    #[test]
    fn a_claim_data_source_is_a_clone_and_other_kinds_are_refused_with_the_reason() {
        assert_eq!(
            claim_source(&with_data_source(None, "PersistentVolumeClaim", "data")),
            Ok(Source::Clone("data".into()))
        );
        assert_eq!(
            claim_source(&with_data_source(Some(""), "PersistentVolumeClaim", "data")),
            Ok(Source::Clone("data".into()))
        );
        let snap = claim_source(&with_data_source(
            Some("snapshot.storage.k8s.io"),
            "VolumeSnapshot",
            "s1",
        ))
        .expect_err("refused");
        assert!(
            snap.to_string().contains("CSI-only") && snap.to_string().contains(ANN_RESTORE),
            "{snap}"
        );
        let other = claim_source(&with_data_source(Some("example.com"), "Backup", "b"))
            .expect_err("refused");
        assert!(
            matches!(&other, SourceError::UnsupportedKind { kind, .. } if kind == "Backup"),
            "{other}"
        );
        let grouped = claim_source(&with_data_source(
            Some("example.com"),
            "PersistentVolumeClaim",
            "b",
        ));
        assert!(
            matches!(grouped, Err(SourceError::UnsupportedKind { .. })),
            "{grouped:?}"
        );
    }

    #[test]
    fn a_data_source_ref_into_another_namespace_is_refused() {
        let mut claim = pvc("new", "pure-block", "10Gi");
        claim.spec.get_or_insert_default().data_source_ref = Some(TypedObjectReference {
            api_group: None,
            kind: "PersistentVolumeClaim".into(),
            name: "data".into(),
            namespace: Some("prod".into()),
        });
        assert!(matches!(
            claim_source(&claim),
            Err(SourceError::OtherNamespace { .. })
        ));
        claim
            .spec
            .get_or_insert_default()
            .data_source_ref
            .as_mut()
            .expect("ref")
            .namespace = Some("default".into());
        assert_eq!(claim_source(&claim), Ok(Source::Clone("data".into())));
    }

    #[test]
    fn two_sources_at_once_are_refused() {
        let mut claim = with_data_source(None, "PersistentVolumeClaim", "data");
        claim
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(ANN_RESTORE.into(), format!("k8s-pvc-{UID}.1"));
        let err = claim_source(&claim).expect_err("refused");
        assert_eq!(
            err,
            SourceError::Conflicting {
                first: ANN_RESTORE,
                second: "spec.dataSource"
            }
        );
    }

    #[test]
    fn a_flashblade_clone_snapshot_is_named_after_the_new_claim() {
        let suffix = clone_snapshot_suffix(&format!("pvc-{UID}"));
        assert_eq!(suffix, format!("clone-pvc-{UID}"));
        assert!(
            suffix.len() <= 63
                && suffix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-')
        );
        assert_eq!(clone_snapshot_suffix("pvc_a.b"), "clone-pvc-a-b");
    }

    #[test]
    fn a_copy_stays_on_its_sources_array_only_where_the_selector_allows() {
        let labels = BTreeMap::from([("rack".to_owned(), "a".to_owned())]);
        let rack = |value: &str| LabelSelector {
            match_labels: Some(BTreeMap::from([("rack".to_owned(), value.to_owned())])),
            match_expressions: None,
        };
        assert_eq!(check_placement(None, &labels, "fa-1", "snapshot s"), Ok(()));
        assert_eq!(
            check_placement(Some(&rack("a")), &labels, "fa-1", "snapshot s"),
            Ok(())
        );
        let err =
            check_placement(Some(&rack("b")), &labels, "fa-1", "snapshot s").expect_err("excluded");
        assert!(err.to_string().contains("rack=b"), "{err}");
    }

    #[test]
    fn a_copy_is_at_least_as_big_as_its_source() {
        assert_eq!(check_size(10 << 30, 10 << 30, "snapshot s"), Ok(()));
        assert_eq!(check_size(20 << 30, 10 << 30, "snapshot s"), Ok(()));
        let err = check_size(5 << 30, 10 << 30, "snapshot s").expect_err("refused");
        assert_eq!(
            err.to_string(),
            "claim asks for 5Gi, less than the 10Gi of snapshot s; ask for at least 10Gi"
        );
    }

    fn facts<'a>(connected: &'a [String]) -> AdoptionFacts<'a> {
        AdoptionFacts {
            object: "legacy-db",
            class: "pure-adopt",
            allowed: true,
            used_by: None,
            connected_to: connected,
            destroyed_on: None,
            requested: 1 << 30,
            size: 2 << 30,
        }
    }

    #[test]
    fn adoption_has_safeguards() {
        assert_eq!(check_adoption(&facts(&[])), Ok(()));
        let refused = |f: AdoptionFacts<'_>| check_adoption(&f).expect_err("refused").to_string();
        assert!(
            refused(AdoptionFacts {
                allowed: false,
                ..facts(&[])
            })
            .contains("allowAdoption")
        );
        assert!(
            refused(AdoptionFacts {
                used_by: Some("pvc-1"),
                ..facts(&[])
            })
            .contains("PV pvc-1")
        );
        let hosts = ["node-a".to_owned()];
        assert!(refused(facts(&hosts)).contains("connected to node-a"));
        assert!(
            refused(AdoptionFacts {
                destroyed_on: Some("fa-1"),
                ..facts(&[])
            })
            .contains("destroyed on fa-1")
        );
        assert!(
            refused(AdoptionFacts {
                requested: 3 << 30,
                ..facts(&[])
            })
            .contains("more than the 2Gi")
        );
        assert!(
            claim_source(&annotated(ANN_ADOPT, "../etc")).is_err(),
            "object names are checked"
        );
        assert_eq!(
            claim_source(&annotated(ANN_ADOPT, "legacy-db")),
            Ok(Source::Adopt("legacy-db".into()))
        );
    }

    #[test]
    fn a_bound_claim_of_ours_yields_its_volume_and_everything_else_says_why_not() {
        let pv = pv_of("pure-provisioner");
        let mut claim = pvc("data", "pure-block", "1Gi");
        let ns_name = "default/data";
        assert!(matches!(
            claimed_volume(ns_name, None, None, OURS),
            Err(ClaimedVolumeError::NoClaim { .. })
        ));
        assert!(matches!(
            claimed_volume(ns_name, Some(&claim), None, OURS),
            Err(ClaimedVolumeError::NotBound { .. })
        ));
        bound(&mut claim, &pv);
        assert!(matches!(
            claimed_volume(ns_name, Some(&claim), None, OURS),
            Err(ClaimedVolumeError::NoVolume { .. })
        ));
        let volume = claimed_volume(ns_name, Some(&claim), Some(&pv), OURS).expect("ours");
        assert_eq!(
            volume.array_volume,
            format!("k8s-{}", pv.metadata.name.as_deref().expect("name"))
        );

        let foreign = pv_of("someone-else");
        let mut foreign_claim = claim.clone();
        bound(&mut foreign_claim, &foreign);
        let err = claimed_volume(ns_name, Some(&foreign_claim), Some(&foreign), OURS)
            .expect_err("not ours");
        assert!(err.to_string().contains("someone-else"), "{err}");
        let mut other_driver = pv.clone();
        other_driver
            .spec
            .as_mut()
            .and_then(|s| s.flex_volume.as_mut())
            .expect("flex")
            .driver = "other/flex".into();
        assert!(matches!(
            claimed_volume(ns_name, Some(&claim), Some(&other_driver), OURS),
            Err(ClaimedVolumeError::NotOurs { .. })
        ));
        let mut no_options = pv.clone();
        no_options
            .spec
            .as_mut()
            .and_then(|s| s.flex_volume.as_mut())
            .expect("flex")
            .options = Some(BTreeMap::new());
        assert!(matches!(
            claimed_volume(ns_name, Some(&claim), Some(&no_options), OURS),
            Err(ClaimedVolumeError::BadOptions { .. })
        ));
        let err = clone_source(ns_name, Some(&claim), Some(&pv), OURS, Backend::File)
            .expect_err("other backend");
        assert!(matches!(err, SourceError::OtherBackend { .. }), "{err}");
        let mut deleting = claim.clone();
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        assert!(matches!(
            claimed_volume(ns_name, Some(&deleting), Some(&pv), OURS),
            Err(ClaimedVolumeError::Deleting { .. })
        ));
    }

    #[test]
    fn only_a_block_class_restores_a_replica_and_copies_work_on_both_backends() {
        let replica = Source::Replica(crate::decide::replica::Replica {
            array: "fa-b".into(),
            group: "site-a".into(),
            volume: "k8s-pvc-1".into(),
        });
        let err = check_backend(&replica, Backend::File).expect_err("refused");
        assert!(err.to_string().contains("use a block class"), "{err}");
        assert_eq!(check_backend(&replica, Backend::Block), Ok(()));
        for copy in [
            Source::Snapshot("fs1.snap".into()),
            Source::Clone("claim".into()),
        ] {
            assert_eq!(check_backend(&copy, Backend::File), Ok(()));
        }
    }
}
