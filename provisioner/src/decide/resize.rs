//! Pure decisions of the resizer: which bound claims want a larger array object, how large, and
//! who finishes the claim afterwards. No I/O; [`crate::reconcile::resize`] acts.
//!
//! How a flex claim grows (`/work/shared/research/volume-lifecycle.md`): the user raises
//! `spec.resources.requests.storage` (the class must allow expansion). The controller manager's
//! expand controller handles every flex PV with a no-op plugin: it raises the PV's
//! `spec.capacity` to the request and marks the claim `Resizing`, then `FileSystemResizePending`,
//! without asking any driver. So the array object is grown here (or by the driver's `expandfs`
//! if kubelet comes first), under the rule both share (`flashvol_common::sizes::plan_growth`).
//!
//! Who finishes the claim (`status.capacity`, the resize conditions):
//! - **block**: kubelet, once the driver's `expandfs` grew the file system on the node. This
//!   process never sets a block claim's `status.capacity`: kubelet calls `expandfs` only while
//!   that capacity is below the PV's.
//! - **file**: this process, as soon as the file system on the FlashBlade holds the PV's new
//!   capacity: NFS clients see the new size at once, so nothing waits on a node, and the claim
//!   must not stay `FileSystemResizePending` until some pod happens to mount it (a CSI resizer
//!   finishes a volume that needs no node expansion the same way). If kubelet calls `expandfs`
//!   first on a node that mounts it, the driver grows the file system and kubelet finishes.
//!
//! Either way `status.capacity` reaches a size only once the array object holds it, so a claim
//! whose capacity is at least its request needs nothing from the arrays: that is the pre-filter
//! ([`pending_resize`]) that keeps the bound claims of a cluster free of array calls.

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::{Value, json};

use flashvol_common::options::{Backend, VolumeOptions};

use crate::decide::claim::annotation;
use crate::decide::quantity::parse_quantity;
use crate::decide::volume::ANN_PROVISIONED_BY;

/// The claim conditions of a resize, as Kubernetes' `MergeResizeConditionOnPVC` knows them.
pub const RESIZE_CONDITIONS: [&str; 4] = [
    "Resizing",
    "FileSystemResizePending",
    "ControllerResizeError",
    "NodeResizeError",
];

/// A bound claim that asks for more than its status says it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub requested: u64,
    pub capacity: u64,
}

/// Whether a claim waits for a resize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResizeDecision {
    Pending(Pending),
    /// Nothing to do; why, for a trace log.
    Ignore(&'static str),
}

fn storage(map: Option<&std::collections::BTreeMap<String, Quantity>>) -> Option<u64> {
    parse_quantity(&map?.get("storage")?.0).ok()
}

/// The pre-filter: a bound claim, not being deleted, whose storage request exceeds its
/// `status.capacity`. A claim whose capacity the PV controller has not set yet waits for it.
pub fn pending_resize(pvc: &PersistentVolumeClaim) -> ResizeDecision {
    if pvc.metadata.deletion_timestamp.is_some() {
        return ResizeDecision::Ignore("claim is being deleted");
    }
    let spec = pvc.spec.as_ref();
    if spec
        .and_then(|s| s.volume_name.as_deref())
        .is_none_or(str::is_empty)
    {
        return ResizeDecision::Ignore("claim is not bound");
    }
    let Some(requested) = storage(
        spec.and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref()),
    ) else {
        return ResizeDecision::Ignore("claim has no storage request");
    };
    let Some(capacity) = storage(pvc.status.as_ref().and_then(|s| s.capacity.as_ref())) else {
        return ResizeDecision::Ignore("claim has no capacity in its status yet");
    };
    if requested <= capacity {
        return ResizeDecision::Ignore("claim has the capacity it requests");
    }
    ResizeDecision::Pending(Pending {
        requested,
        capacity,
    })
}

/// A PV whose array object this provisioner grows.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub volume: VolumeOptions,
    /// The PV's `spec.capacity` (the controller manager raises it to the request).
    pub pv_capacity: Option<Quantity>,
}

impl Target {
    pub fn pv_bytes(&self) -> Option<u64> {
        parse_quantity(&self.pv_capacity.as_ref()?.0).ok()
    }
}

/// The PV of a pending resize, if it is ours to grow: provisioned by us (PSO's PVs carry the same
/// name) and a flex PV of our driver. `Ok(None)`: not ours; `Err`: ours, but its options do not
/// say which array object it is.
pub fn resize_target(
    pv: &PersistentVolume,
    provisioner: &str,
    driver: &str,
    name_prefix: &str,
) -> Result<Option<Target>, String> {
    if annotation(&pv.metadata, ANN_PROVISIONED_BY) != Some(provisioner) {
        return Ok(None);
    }
    let spec = pv.spec.as_ref();
    let Some(flex) = spec
        .and_then(|s| s.flex_volume.as_ref())
        .filter(|f| f.driver == driver)
    else {
        return Ok(None);
    };
    let volume = VolumeOptions::from_options(
        flex.options.as_ref().unwrap_or(&Default::default()),
        name_prefix,
    )
    .map_err(|e| e.to_string())?;
    Ok(Some(Target {
        volume,
        pv_capacity: spec
            .and_then(|s| s.capacity.as_ref())
            .and_then(|c| c.get("storage"))
            .cloned(),
    }))
}

/// The bytes the array object must hold: the larger of the claim's request and the PV's capacity
/// (the controller manager sets the PV to the request; should they differ, kubelet and the
/// claim's status follow the PV, so the object must hold that too).
pub fn wanted_bytes(pending: Pending, target: &Target) -> u64 {
    pending.requested.max(target.pv_bytes().unwrap_or(0))
}

/// Who finishes a claim once its array object holds `object_bytes`.
#[derive(Debug, Clone, PartialEq)]
pub enum Finish {
    /// Block: kubelet, after the driver's `expandfs`; this process leaves the claim alone.
    Kubelet,
    /// File: this process, now, setting `status.capacity` to the PV's capacity.
    Now { capacity: Quantity },
    /// File, but the controller manager has not raised the PV yet; its next change to the claim
    /// brings the claim back here.
    WaitForPv,
}

pub fn finish(pending: Pending, target: &Target, object_bytes: u64) -> Finish {
    if target.volume.backend == Backend::Block {
        return Finish::Kubelet;
    }
    match (&target.pv_capacity, target.pv_bytes()) {
        (Some(capacity), Some(pv)) if pv >= pending.requested && object_bytes >= pv => {
            Finish::Now {
                capacity: capacity.clone(),
            }
        }
        _ => Finish::WaitForPv,
    }
}

/// The JSON merge patch of a claim's status that finishes its resize, as kubelet's
/// `MarkFSResizeFinished` does: `status.capacity` becomes the PV's, the resize conditions go,
/// and so does the `storage` entry of `allocatedResourceStatuses`. Other conditions stay. The
/// claim's resourceVersion guards it: a claim the controller manager changed meanwhile is
/// refused (409) and looked at again with its changes.
pub fn finished_status_patch(claim: &PersistentVolumeClaim, capacity: &Quantity) -> Value {
    let status = claim.status.as_ref();
    let kept: Vec<Value> = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| !RESIZE_CONDITIONS.contains(&c.type_.as_str()))
        .map(|c| serde_json::to_value(c).unwrap_or(Value::Null))
        .collect();
    let mut patch = json!({
        "metadata": {"resourceVersion": claim.metadata.resource_version},
        "status": {
            "capacity": {"storage": capacity},
            "conditions": if kept.is_empty() { Value::Null } else { Value::Array(kept) },
        }
    });
    let has_status = status
        .and_then(|s| s.allocated_resource_statuses.as_ref())
        .is_some_and(|m| m.contains_key("storage"));
    if has_status {
        patch["status"]["allocatedResourceStatuses"] = json!({"storage": null});
    }
    patch
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::{PersistentVolumeClaimCondition, PersistentVolumeClaimStatus};

    use super::*;
    use crate::tests::fixtures::{pv_of, pvc};

    const GIB: u64 = 1 << 30;
    const NAME: &str = "pure-provisioner";

    fn bound(requested: &str, capacity: Option<&str>) -> PersistentVolumeClaim {
        let mut claim = pvc("c", "pure", requested);
        claim.spec.get_or_insert_default().volume_name = Some("pvc-1".into());
        claim.status = Some(PersistentVolumeClaimStatus {
            capacity: capacity
                .map(|c| BTreeMap::from([("storage".to_owned(), Quantity(c.into()))])),
            ..Default::default()
        });
        claim
    }

    fn target(backend: &str, pv_capacity: Option<&str>) -> Target {
        let mut pv = pv_of(NAME);
        let spec = pv.spec.get_or_insert_default();
        if let Some(flex) = spec.flex_volume.as_mut() {
            flex.options
                .get_or_insert_default()
                .insert("backend".into(), backend.into());
        }
        spec.capacity =
            pv_capacity.map(|c| BTreeMap::from([("storage".to_owned(), Quantity(c.into()))]));
        resize_target(&pv, NAME, "pure/flex", "k8s")
            .expect("usable")
            .expect("ours")
    }

    #[test]
    fn a_bound_claim_asking_for_more_than_its_capacity_is_pending() {
        assert_eq!(
            pending_resize(&bound("3Gi", Some("1Gi"))),
            ResizeDecision::Pending(Pending {
                requested: 3 * GIB,
                capacity: GIB
            })
        );
        assert_eq!(
            pending_resize(&bound("5Pi", Some("1Gi"))),
            ResizeDecision::Pending(Pending {
                requested: 5 << 50,
                capacity: GIB
            }),
            "beyond the limit: pending, so the refusal is told"
        );
    }

    #[test]
    fn claims_that_have_what_they_ask_for_cost_no_array_call() {
        for claim in [
            bound("1Gi", Some("1Gi")),
            bound("1Gi", Some("3Gi")),
            bound("1073741824", Some("1Gi")),
            bound("3Gi", None),
            pvc("unbound", "pure", "3Gi"),
        ] {
            assert!(
                matches!(pending_resize(&claim), ResizeDecision::Ignore(_)),
                "{claim:?}"
            );
        }
        let mut deleting = bound("3Gi", Some("1Gi"));
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        assert!(matches!(
            pending_resize(&deleting),
            ResizeDecision::Ignore(_)
        ));
    }

    #[test]
    fn only_our_flex_pvs_are_grown() {
        let ours = pv_of(NAME);
        assert!(
            resize_target(&ours, NAME, "pure/flex", "k8s")
                .expect("ok")
                .is_some()
        );
        assert_eq!(
            resize_target(&pv_of("other-provisioner"), NAME, "pure/flex", "k8s"),
            Ok(None)
        );
        assert_eq!(resize_target(&ours, NAME, "acme/other", "k8s"), Ok(None));
        let mut broken = pv_of(NAME);
        if let Some(flex) = broken.spec.as_mut().and_then(|s| s.flex_volume.as_mut()) {
            flex.options = Some(BTreeMap::from([("backend".into(), "tape".into())]));
        }
        assert!(resize_target(&broken, NAME, "pure/flex", "k8s").is_err());
    }

    #[test]
    fn the_object_holds_the_larger_of_request_and_pv_capacity() {
        let pending = Pending {
            requested: 3 * GIB,
            capacity: GIB,
        };
        assert_eq!(wanted_bytes(pending, &target("block", None)), 3 * GIB);
        assert_eq!(
            wanted_bytes(pending, &target("block", Some("1Gi"))),
            3 * GIB
        );
        assert_eq!(
            wanted_bytes(pending, &target("block", Some("4Gi"))),
            4 * GIB
        );
    }

    #[test]
    fn kubelet_finishes_block_claims_and_we_finish_file_claims_once_the_pv_grew() {
        let pending = Pending {
            requested: 3 * GIB,
            capacity: GIB,
        };
        assert_eq!(
            finish(pending, &target("block", Some("3Gi")), 3 * GIB),
            Finish::Kubelet
        );
        assert_eq!(
            finish(pending, &target("file", Some("3Gi")), 3 * GIB),
            Finish::Now {
                capacity: Quantity("3Gi".into())
            }
        );
        for (pv, object) in [
            (Some("1Gi"), 3 * GIB),
            (None, 3 * GIB),
            (Some("3Gi"), 2 * GIB),
        ] {
            assert_eq!(
                finish(pending, &target("file", pv), object),
                Finish::WaitForPv,
                "{pv:?} {object}"
            );
        }
    }

    #[test]
    fn finishing_sets_the_capacity_and_drops_only_the_resize_conditions() {
        let mut claim = bound("3Gi", Some("1Gi"));
        claim.metadata.resource_version = Some("42".into());
        let status = claim.status.get_or_insert_default();
        status.conditions = Some(
            ["Resizing", "FileSystemResizePending", "SomethingElse"]
                .iter()
                .map(|t| PersistentVolumeClaimCondition {
                    type_: (*t).into(),
                    status: "True".into(),
                    ..Default::default()
                })
                .collect(),
        );
        status.allocated_resource_statuses = Some(BTreeMap::from([(
            "storage".to_owned(),
            "NodeResizePending".to_owned(),
        )]));
        let patch = finished_status_patch(&claim, &Quantity("3Gi".into()));
        assert_eq!(patch["metadata"]["resourceVersion"], "42");
        assert_eq!(patch["status"]["capacity"]["storage"], "3Gi");
        assert_eq!(
            patch["status"]["allocatedResourceStatuses"]["storage"],
            Value::Null
        );
        let kept: Vec<&str> = patch["status"]["conditions"]
            .as_array()
            .expect("list")
            .iter()
            .map(|c| c["type"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(kept, ["SomethingElse"]);

        let plain = finished_status_patch(&bound("3Gi", Some("1Gi")), &Quantity("3Gi".into()));
        assert_eq!(
            plain["status"]["conditions"],
            Value::Null,
            "no list left: removed"
        );
        assert!(plain["status"].get("allocatedResourceStatuses").is_none());
    }
}
