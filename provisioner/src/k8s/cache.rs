//! What the watch caches keep of each claim and PV: the fields the reconcilers and the orphan
//! collector read, nothing else.
//!
//! Why: the caches hold every claim and PV of the cluster for as long as the process runs. A
//! `k8s-openapi` `PersistentVolume` is 3.4 KB before any of its strings (its spec inlines every
//! volume source Kubernetes knows), and the apiserver sends `managedFields` and kubectl's
//! `last-applied-configuration` with every object; kept whole, 10,000 claims and PVs cost about
//! 200 MB. These types are deserialized straight from the watch, so the dropped parts exist only
//! while one event is decoded.
//!
//! What is kept, and why each part:
//! - all objects: metadata without `managedFields` and without kubectl's last-applied annotation;
//! - an unbound claim: its whole spec (class, size, access modes, selector, volume mode) and
//!   annotations, what provisioning reads;
//! - a bound claim: only the name, namespace, uid, resourceVersion, deletionTimestamp,
//!   `spec.volumeName` and, as byte counts, its storage request and `status.capacity`: provisioning
//!   ignores every bound claim, and the resizer's pre-filter
//!   ([`crate::decide::resize::pending_resize`]) reads nothing else;
//! - a PV: name, uid, resourceVersion, finalizers, deletionTimestamp, the `provisioned-by`
//!   annotation, the reclaim policy and `status.phase`, what [`crate::decide::volume::decide_volume`]
//!   reads; the flexVolume source (which array volume) only while the PV is `Released` or being
//!   deleted, the only states in which [`crate::reconcile::delete`] acts on it.
//!
//! Dropping by state is sound because every change of state reaches the cache as a new watch
//! event carrying the whole object, from which the new state's fields are kept. The orphan
//! collector reads fresh lists, not these caches.
//!
//! The reconcilers take the `k8s-openapi` types; [`CachedClaim::to_claim`] and
//! [`CachedVolume::to_volume`] rebuild one (with only the kept fields) for the pass.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    FlexPersistentVolumeSource, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimStatus, PersistentVolumeSpec, PersistentVolumeStatus,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

use crate::decide::claim::class_name_of;
use crate::decide::quantity::parse_quantity;
use crate::decide::volume::ANN_PROVISIONED_BY;

/// kubectl's copy of the whole object as last applied; never read here, often the largest
/// annotation.
const ANN_LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops what no reconciler reads from any object's metadata.
fn prune_meta(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    if let Some(annotations) = &mut meta.annotations {
        annotations.remove(ANN_LAST_APPLIED);
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

/// A claim as the cache keeps it (see the module comment).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(from = "WireClaim")]
pub struct CachedClaim {
    pub metadata: ObjectMeta,
    pub spec: ClaimSpec,
}

/// What the cache keeps of a claim's spec.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum ClaimSpec {
    /// The API always sends a spec; kept apart so a rebuilt claim is the same as the original.
    #[default]
    Missing,
    /// Not bound: all of it, provisioning reads it. Boxed: a bound claim pays no 400 bytes for
    /// an empty spec.
    Unbound(Box<PersistentVolumeClaimSpec>),
    /// Bound (or pre-bound) to this PV: besides the PV, only the sizes the resizer compares
    /// (bytes of the storage request and of `status.capacity`) are ever read.
    Bound {
        volume_name: String,
        requested: Option<u64>,
        capacity: Option<u64>,
    },
}

/// The fields of a claim on the wire that the cache looks at; serde skips the rest unparsed.
#[derive(Deserialize)]
struct WireClaim {
    #[serde(default)]
    metadata: ObjectMeta,
    spec: Option<PersistentVolumeClaimSpec>,
    #[serde(default)]
    status: Option<WireClaimStatus>,
}

/// The one status field the cache keeps (of a bound claim).
#[derive(Deserialize)]
struct WireClaimStatus {
    capacity: Option<BTreeMap<String, Quantity>>,
}

/// A `storage` quantity as bytes.
fn storage_bytes(map: Option<&BTreeMap<String, Quantity>>) -> Option<u64> {
    parse_quantity(&map?.get("storage")?.0).ok()
}

impl From<WireClaim> for CachedClaim {
    fn from(wire: WireClaim) -> Self {
        let mut metadata = wire.metadata;
        prune_meta(&mut metadata);
        let Some(spec) = wire.spec else {
            return Self {
                metadata,
                spec: ClaimSpec::Missing,
            };
        };
        match spec.volume_name.clone().filter(|v| !v.is_empty()) {
            None => Self {
                metadata,
                spec: ClaimSpec::Unbound(Box::new(spec)),
            },
            Some(volume_name) => Self {
                metadata: ObjectMeta {
                    name: metadata.name,
                    namespace: metadata.namespace,
                    uid: metadata.uid,
                    resource_version: metadata.resource_version,
                    deletion_timestamp: metadata.deletion_timestamp,
                    ..Default::default()
                },
                spec: ClaimSpec::Bound {
                    volume_name,
                    requested: storage_bytes(
                        spec.resources.as_ref().and_then(|r| r.requests.as_ref()),
                    ),
                    capacity: storage_bytes(wire.status.as_ref().and_then(|s| s.capacity.as_ref())),
                },
            },
        }
    }
}

impl From<&PersistentVolumeClaim> for CachedClaim {
    fn from(claim: &PersistentVolumeClaim) -> Self {
        WireClaim {
            metadata: claim.metadata.clone(),
            spec: claim.spec.clone(),
            status: claim.status.as_ref().map(|s| WireClaimStatus {
                capacity: s.capacity.clone(),
            }),
        }
        .into()
    }
}

impl CachedClaim {
    /// Whether the claim still waits for a PV (the class mapper re-triggers only those).
    pub fn is_unbound(&self) -> bool {
        matches!(self.spec, ClaimSpec::Unbound(_))
    }

    /// Whether the claim is bound to a PV (the resizer looks at those).
    pub fn is_bound(&self) -> bool {
        matches!(self.spec, ClaimSpec::Bound { .. })
    }

    /// The class an unbound claim asks for ([`crate::decide::claim::claim_class_name`]); `None` for
    /// bound claims, whose class is not kept.
    pub fn unbound_class_name(&self) -> Option<&str> {
        match &self.spec {
            ClaimSpec::Unbound(spec) => class_name_of(&self.metadata, Some(spec)),
            ClaimSpec::Missing | ClaimSpec::Bound { .. } => None,
        }
    }

    /// The claim as the reconcilers take it, with the kept fields (a bound claim's sizes as
    /// plain byte quantities).
    pub fn to_claim(&self) -> PersistentVolumeClaim {
        let storage = |bytes: Option<u64>| {
            bytes.map(|b| BTreeMap::from([("storage".to_owned(), Quantity(b.to_string()))]))
        };
        let (spec, status) = match &self.spec {
            ClaimSpec::Missing => (None, None),
            ClaimSpec::Unbound(spec) => (Some((**spec).clone()), None),
            ClaimSpec::Bound {
                volume_name,
                requested,
                capacity,
            } => (
                Some(PersistentVolumeClaimSpec {
                    volume_name: Some(volume_name.clone()),
                    resources: requested.map(|_| VolumeResourceRequirements {
                        requests: storage(*requested),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                capacity.map(|_| PersistentVolumeClaimStatus {
                    capacity: storage(*capacity),
                    ..Default::default()
                }),
            ),
        };
        PersistentVolumeClaim {
            metadata: self.metadata.clone(),
            spec,
            status,
        }
    }
}

/// A PV as the cache keeps it (see the module comment).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(from = "WireVolume")]
pub struct CachedVolume {
    /// Without labels and annotations: the one annotation read is kept in `provisioned_by`
    /// (a map costs half a kilobyte even for one entry).
    pub metadata: ObjectMeta,
    pub provisioned_by: Option<String>,
    pub reclaim_policy: Option<String>,
    pub phase: Option<String>,
    /// Only while the PV is `Released` or being deleted, the only states in which the array
    /// volume is acted on; a PV reaches them through a watch event that brings the source again.
    pub flex_volume: Option<Box<FlexPersistentVolumeSource>>,
}

#[derive(Deserialize)]
struct WireVolume {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: Option<WireVolumeSpec>,
    #[serde(default)]
    status: Option<WireVolumeStatus>,
}

/// The two spec fields kept; deserializing the whole `PersistentVolumeSpec` would allocate every
/// volume source present only to drop it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireVolumeSpec {
    persistent_volume_reclaim_policy: Option<String>,
    flex_volume: Option<FlexPersistentVolumeSource>,
}

#[derive(Deserialize)]
struct WireVolumeStatus {
    phase: Option<String>,
}

impl From<WireVolume> for CachedVolume {
    fn from(wire: WireVolume) -> Self {
        let mut metadata = wire.metadata;
        metadata.managed_fields = None;
        metadata.labels = None;
        let provisioned_by = metadata
            .annotations
            .take()
            .and_then(|mut a| a.remove(ANN_PROVISIONED_BY));
        let (reclaim_policy, flex_volume) = wire
            .spec
            .map(|s| (s.persistent_volume_reclaim_policy, s.flex_volume))
            .unwrap_or_default();
        let phase = wire.status.and_then(|s| s.phase);
        let acted_on =
            phase.as_deref() == Some("Released") || metadata.deletion_timestamp.is_some();
        Self {
            metadata,
            provisioned_by,
            reclaim_policy,
            phase,
            flex_volume: flex_volume.filter(|_| acted_on).map(Box::new),
        }
    }
}

impl From<&PersistentVolume> for CachedVolume {
    fn from(pv: &PersistentVolume) -> Self {
        let spec = pv.spec.as_ref();
        WireVolume {
            metadata: pv.metadata.clone(),
            spec: spec.map(|s| WireVolumeSpec {
                persistent_volume_reclaim_policy: s.persistent_volume_reclaim_policy.clone(),
                flex_volume: s.flex_volume.clone(),
            }),
            status: pv.status.as_ref().map(|s| WireVolumeStatus {
                phase: s.phase.clone(),
            }),
        }
        .into()
    }
}

impl CachedVolume {
    /// The PV as the reconcilers take it, with the kept fields.
    pub fn to_volume(&self) -> PersistentVolume {
        let mut metadata = self.metadata.clone();
        metadata.annotations = self
            .provisioned_by
            .as_ref()
            .map(|p| BTreeMap::from([(ANN_PROVISIONED_BY.to_owned(), p.clone())]));
        PersistentVolume {
            metadata,
            spec: Some(PersistentVolumeSpec {
                persistent_volume_reclaim_policy: self.reclaim_policy.clone(),
                flex_volume: self.flex_volume.as_deref().cloned(),
                ..Default::default()
            }),
            status: Some(PersistentVolumeStatus {
                phase: self.phase.clone(),
                ..Default::default()
            }),
        }
    }
}

/// Same API resource as the `k8s-openapi` type, so `Api<Cached…>` lists and watches the real
/// objects.
macro_rules! same_resource_as {
    ($cached:ty, $full:ty) => {
        impl k8s_openapi::Resource for $cached {
            const API_VERSION: &'static str = <$full as k8s_openapi::Resource>::API_VERSION;
            const GROUP: &'static str = <$full as k8s_openapi::Resource>::GROUP;
            const KIND: &'static str = <$full as k8s_openapi::Resource>::KIND;
            const VERSION: &'static str = <$full as k8s_openapi::Resource>::VERSION;
            const URL_PATH_SEGMENT: &'static str =
                <$full as k8s_openapi::Resource>::URL_PATH_SEGMENT;
            type Scope = <$full as k8s_openapi::Resource>::Scope;
        }

        impl k8s_openapi::Metadata for $cached {
            type Ty = ObjectMeta;

            fn metadata(&self) -> &ObjectMeta {
                &self.metadata
            }

            fn metadata_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

same_resource_as!(CachedClaim, PersistentVolumeClaim);
same_resource_as!(CachedVolume, PersistentVolume);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::claim::decide_claim;
    use crate::decide::volume::{VolumeDecision, decide_volume};
    use crate::tests::fixtures::{class, pv_of, pvc};

    /// A PV as the apiserver sends it: managedFields, a last-applied annotation and spec fields
    /// the cache has no use for.
    const PV_JSON: &str = include_str!("../../benches/fixtures/pv.json");
    const CLAIM_JSON: &str = include_str!("../../benches/fixtures/pvc.json");

    #[test]
    fn a_pv_from_the_wire_keeps_what_the_reconcilers_read_and_nothing_else() {
        let full: PersistentVolume = serde_json::from_str(PV_JSON).expect("full");
        let cached: CachedVolume = serde_json::from_str(PV_JSON).expect("cached");
        assert_eq!(
            cached,
            CachedVolume::from(&full),
            "wire and conversion agree"
        );
        assert!(cached.metadata.managed_fields.is_none());
        assert!(cached.metadata.annotations.is_none() && cached.metadata.labels.is_none());
        assert_eq!(cached.provisioned_by.as_deref(), Some("pure-provisioner"));
        assert_eq!(cached.metadata.finalizers, full.metadata.finalizers);
        assert_eq!(cached.metadata.uid, full.metadata.uid);
        assert_eq!(
            cached.metadata.resource_version,
            full.metadata.resource_version
        );
        let spec = full.spec.as_ref().expect("spec");
        assert_eq!(cached.reclaim_policy, spec.persistent_volume_reclaim_policy);
        assert_eq!(cached.phase.as_deref(), Some("Bound"));
        assert_eq!(cached.flex_volume, None, "a Bound PV's source is not kept");
        let mut available = full.clone();
        available.status.get_or_insert_default().phase = Some("Available".into());
        assert_eq!(
            CachedVolume::from(&available).flex_volume,
            None,
            "nor an Available one's"
        );

        let mut released = full.clone();
        released.status.get_or_insert_default().phase = Some("Released".into());
        let cached = CachedVolume::from(&released);
        assert_eq!(cached.flex_volume.as_deref(), spec.flex_volume.as_ref());
        let rebuilt = cached.to_volume();
        assert_eq!(
            rebuilt
                .metadata
                .annotations
                .as_ref()
                .map(|a| a[ANN_PROVISIONED_BY].as_str()),
            Some("pure-provisioner")
        );
        assert_eq!(rebuilt.spec.and_then(|s| s.flex_volume), spec.flex_volume);
    }

    #[test]
    fn the_rebuilt_pv_gets_the_same_decision_as_the_whole_one() {
        let full: PersistentVolume = serde_json::from_str(PV_JSON).expect("full");
        for policy in ["Delete", "Retain"] {
            for phase in ["Bound", "Released", "Available", "Failed"] {
                for deleting in [false, true] {
                    let mut pv = full.clone();
                    pv.spec
                        .get_or_insert_default()
                        .persistent_volume_reclaim_policy = Some(policy.into());
                    pv.status.get_or_insert_default().phase = Some(phase.into());
                    if deleting {
                        pv.metadata.deletion_timestamp = full.metadata.creation_timestamp.clone();
                    }
                    let rebuilt = CachedVolume::from(&pv).to_volume();
                    let decision = decide_volume(&pv, "pure-provisioner");
                    let case = format!("{policy}, {phase}, deleting {deleting}");
                    assert_eq!(
                        decide_volume(&rebuilt, "pure-provisioner"),
                        decision,
                        "{case}"
                    );
                    if decision != VolumeDecision::Ignore {
                        assert_eq!(
                            rebuilt.spec.and_then(|s| s.flex_volume),
                            pv.spec.and_then(|s| s.flex_volume),
                            "{case}: acting on the volume needs its source"
                        );
                    }
                }
            }
        }
        let other = pv_of("someone-else");
        assert_eq!(
            decide_volume(&CachedVolume::from(&other).to_volume(), "pure-provisioner"),
            decide_volume(&other, "pure-provisioner")
        );
    }

    #[test]
    fn an_unbound_claim_keeps_its_whole_spec_and_annotations() {
        let mut claim = pvc("data", "pure", "10Gi");
        claim.metadata.annotations.get_or_insert_default().insert(
            ANN_LAST_APPLIED.into(),
            "{\"kind\":\"PersistentVolumeClaim\"}".into(),
        );
        let cached = CachedClaim::from(&claim);
        assert!(cached.is_unbound());
        assert_eq!(cached.unbound_class_name(), Some("pure"));
        let rebuilt = cached.to_claim();
        assert_eq!(rebuilt.spec, claim.spec);
        let mut expected = claim.metadata.annotations.clone().expect("annotations");
        expected.remove(ANN_LAST_APPLIED);
        assert_eq!(rebuilt.metadata.annotations, Some(expected));
        let c = class("pure", "pure-provisioner", &[]);
        assert_eq!(
            decide_claim(&rebuilt, Some(&c), "pure-provisioner"),
            decide_claim(&claim, Some(&c), "pure-provisioner")
        );
    }

    #[test]
    fn a_bound_claim_keeps_what_the_resizer_compares_and_gets_the_same_decision() {
        use crate::decide::resize::pending_resize;
        let full: PersistentVolumeClaim = serde_json::from_str(CLAIM_JSON).expect("full");
        for (requested, capacity) in [
            ("10Gi", Some("10Gi")),
            ("30Gi", Some("10Gi")),
            ("1.5Gi", Some("1Gi")),
            ("5Pi", Some("1Gi")),
            ("30Gi", None),
        ] {
            let mut claim = full.clone();
            claim
                .spec
                .get_or_insert_default()
                .resources
                .get_or_insert_default()
                .requests
                .get_or_insert_default()
                .insert("storage".into(), Quantity(requested.into()));
            claim.status.get_or_insert_default().capacity =
                capacity.map(|c| BTreeMap::from([("storage".to_owned(), Quantity(c.into()))]));
            let wire: CachedClaim =
                serde_json::from_value(serde_json::to_value(&claim).expect("json")).expect("wire");
            assert_eq!(wire, CachedClaim::from(&claim), "wire and conversion agree");
            assert_eq!(
                pending_resize(&wire.to_claim()),
                pending_resize(&claim),
                "{requested} over {capacity:?}"
            );
        }
    }

    #[test]
    fn a_bound_claim_keeps_only_its_identity_and_volume_name() {
        let full: PersistentVolumeClaim = serde_json::from_str(CLAIM_JSON).expect("full");
        let cached: CachedClaim = serde_json::from_str(CLAIM_JSON).expect("cached");
        assert_eq!(
            cached,
            CachedClaim::from(&full),
            "wire and conversion agree"
        );
        assert_eq!(cached.metadata.name, full.metadata.name);
        assert_eq!(cached.metadata.namespace, full.metadata.namespace);
        assert_eq!(cached.metadata.uid, full.metadata.uid);
        assert_eq!(
            cached.metadata.resource_version,
            full.metadata.resource_version
        );
        assert!(cached.metadata.annotations.is_none() && cached.metadata.labels.is_none());
        assert!(!cached.is_unbound());
        assert_eq!(
            cached.to_claim().spec.and_then(|s| s.volume_name),
            full.spec.as_ref().and_then(|s| s.volume_name.clone())
        );
        let c = class("pure", "pure-provisioner", &[]);
        assert_eq!(
            decide_claim(&cached.to_claim(), Some(&c), "pure-provisioner"),
            decide_claim(&full, Some(&c), "pure-provisioner")
        );
    }

    #[test]
    fn cached_types_address_the_same_api_resources() {
        use kube::Resource;
        assert_eq!(CachedVolume::plural(&()), PersistentVolume::plural(&()));
        assert_eq!(CachedVolume::api_version(&()), "v1");
        assert_eq!(
            CachedClaim::url_path(&(), Some("ns")),
            PersistentVolumeClaim::url_path(&(), Some("ns"))
        );
    }
}
