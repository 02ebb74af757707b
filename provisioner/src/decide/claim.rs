//! Pure decisions about a claim: is it ours to provision now, and what does it ask for (size,
//! access).
//!
//! Owns the claim annotation keys and the rules of sig-storage-lib-external-provisioner that
//! flashvol copies. No I/O: callers pass objects in and act on the answer.

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PersistentVolumeClaimSpec};
use k8s_openapi::api::storage::v1::StorageClass;

use flashvol_common::options::Backend;

use crate::decide::quantity::{MAX_VOLUME_BYTES, format_bytes, parse_quantity};

/// Set on claims by the PV controller (Kubernetes 1.23+).
pub const ANN_STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
/// The same, on older clusters.
pub const ANN_STORAGE_PROVISIONER_BETA: &str = "volume.beta.kubernetes.io/storage-provisioner";
/// Legacy way of naming a claim's class; checked before `spec.storageClassName`, as the PV
/// controller does.
pub const ANN_STORAGE_CLASS_BETA: &str = "volume.beta.kubernetes.io/storage-class";
/// Set by the scheduler for `WaitForFirstConsumer` classes.
pub const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// The same, Kubernetes 1.11.
pub const ANN_SELECTED_NODE_ALPHA: &str = "volume.alpha.kubernetes.io/selected-node";

/// A non-empty annotation value.
pub(crate) fn annotation<'a>(
    meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    key: &str,
) -> Option<&'a str> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// The class a claim asks for: the beta annotation first, then `spec.storageClassName`.
pub fn claim_class_name(pvc: &PersistentVolumeClaim) -> Option<&str> {
    class_name_of(&pvc.metadata, pvc.spec.as_ref())
}

/// [`claim_class_name`] from a claim's parts (the claim cache keeps no whole claim).
pub fn class_name_of<'a>(
    meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    spec: Option<&'a PersistentVolumeClaimSpec>,
) -> Option<&'a str> {
    annotation(meta, ANN_STORAGE_CLASS_BETA).or_else(|| {
        spec.and_then(|s| s.storage_class_name.as_deref())
            .filter(|n| !n.is_empty())
    })
}

/// What to do with a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimDecision {
    /// Ours, and ready: create the volume and PV.
    Provision,
    /// Ours but not yet: the reason is logged at debug level; a later change of the claim or
    /// class triggers another look.
    Wait(String),
    /// Not ours, or nothing to do.
    Ignore(&'static str),
}

/// sig-storage-lib's `shouldProvision`, plus the class check.
pub fn decide_claim(
    pvc: &PersistentVolumeClaim,
    class: Option<&StorageClass>,
    provisioner: &str,
) -> ClaimDecision {
    let spec = pvc.spec.as_ref();
    if pvc.metadata.deletion_timestamp.is_some() {
        return ClaimDecision::Ignore("claim is being deleted");
    }
    if spec
        .and_then(|s| s.volume_name.as_deref())
        .is_some_and(|v| !v.is_empty())
    {
        return ClaimDecision::Ignore("claim is bound or pre-bound to a volume");
    }
    let asks_us = [ANN_STORAGE_PROVISIONER, ANN_STORAGE_PROVISIONER_BETA]
        .iter()
        .any(|k| annotation(&pvc.metadata, k) == Some(provisioner));
    if !asks_us {
        return ClaimDecision::Ignore("claim's storage-provisioner annotation does not name us");
    }
    let Some(class_name) = claim_class_name(pvc) else {
        return ClaimDecision::Ignore("claim names no StorageClass");
    };
    let Some(class) = class else {
        return ClaimDecision::Wait(format!("StorageClass {class_name:?} not found"));
    };
    if class.provisioner != provisioner {
        return ClaimDecision::Ignore("claim's StorageClass belongs to another provisioner");
    }
    if class.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer")
        && annotation(&pvc.metadata, ANN_SELECTED_NODE)
            .or_else(|| annotation(&pvc.metadata, ANN_SELECTED_NODE_ALPHA))
            .is_none()
    {
        return ClaimDecision::Wait("WaitForFirstConsumer: no node selected yet".into());
    }
    ClaimDecision::Provision
}

/// A claim whose request cannot be served; the text goes into a `ProvisioningFailed` event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error("claim has no storage request (spec.resources.requests.storage)")]
    NoSize,
    #[error("claim's storage request {0}")]
    BadSize(String),
    #[error(
        "access mode {mode} is not possible on {backend} volumes (FlashArray volumes are ReadWriteOnce; use a file class for shared access)"
    )]
    SharedBlock { mode: String, backend: Backend },
    #[error("claim has no access modes")]
    NoAccessModes,
    #[error("unknown access mode {0:?}")]
    UnknownAccessMode(String),
    #[error("claim asks for volumeMode Block; flex volumes are file systems only")]
    RawBlock,
}

/// The claim's requested size in bytes: positive, at most 4 PiB.
pub fn requested_bytes(pvc: &PersistentVolumeClaim) -> Result<u64, ClaimError> {
    let quantity = pvc
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .ok_or(ClaimError::NoSize)?;
    let bytes = parse_quantity(&quantity.0).map_err(|e| ClaimError::BadSize(e.to_string()))?;
    if bytes == 0 {
        return Err(ClaimError::BadSize(format!("{:?} is zero", quantity.0)));
    }
    if bytes > MAX_VOLUME_BYTES {
        return Err(ClaimError::BadSize(format!(
            "{:?} is over the {} limit",
            quantity.0,
            format_bytes(MAX_VOLUME_BYTES)
        )));
    }
    Ok(bytes)
}

/// The claim's access modes, checked against the backend; `true` when any of them is shared
/// (RWX/ROX).
pub fn access_modes(
    pvc: &PersistentVolumeClaim,
    backend: Backend,
) -> Result<(Vec<String>, bool), ClaimError> {
    let spec = pvc.spec.as_ref();
    if spec.and_then(|s| s.volume_mode.as_deref()) == Some("Block") {
        return Err(ClaimError::RawBlock);
    }
    let modes = spec
        .and_then(|s| s.access_modes.clone())
        .unwrap_or_default();
    if modes.is_empty() {
        return Err(ClaimError::NoAccessModes);
    }
    let mut shared = false;
    for mode in &modes {
        match mode.as_str() {
            "ReadWriteOnce" | "ReadWriteOncePod" => {}
            "ReadWriteMany" | "ReadOnlyMany" => {
                if backend == Backend::Block {
                    return Err(ClaimError::SharedBlock {
                        mode: mode.clone(),
                        backend,
                    });
                }
                shared = true;
            }
            other => return Err(ClaimError::UnknownAccessMode(other.to_owned())),
        }
    }
    Ok((modes, shared))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::fixtures::{class, pvc};

    const NAME: &str = "pure-provisioner";

    #[test]
    fn claim_for_us_with_an_immediate_class_is_provisioned() {
        let c = class("pure", NAME, &[]);
        assert_eq!(
            decide_claim(&pvc("c", "pure", "1Gi"), Some(&c), NAME),
            ClaimDecision::Provision
        );
    }

    #[test]
    fn beta_annotations_of_old_clusters_are_honoured() {
        let c = class("pure", NAME, &[]);
        let mut claim = pvc("c", "", "1Gi");
        let ann = claim.metadata.annotations.get_or_insert_default();
        ann.remove(ANN_STORAGE_PROVISIONER);
        ann.insert(ANN_STORAGE_PROVISIONER_BETA.into(), NAME.into());
        ann.insert(ANN_STORAGE_CLASS_BETA.into(), "pure".into());
        assert_eq!(claim_class_name(&claim), Some("pure"));
        assert_eq!(
            decide_claim(&claim, Some(&c), NAME),
            ClaimDecision::Provision
        );
    }

    #[test]
    fn claim_for_another_provisioner_is_ignored() {
        let mut claim = pvc("c", "pure", "1Gi");
        claim
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(ANN_STORAGE_PROVISIONER.into(), "other".into());
        let c = class("pure", NAME, &[]);
        assert!(matches!(
            decide_claim(&claim, Some(&c), NAME),
            ClaimDecision::Ignore(_)
        ));
        let foreign = class("pure", "other", &[]);
        assert!(matches!(
            decide_claim(&pvc("c", "pure", "1Gi"), Some(&foreign), NAME),
            ClaimDecision::Ignore(_)
        ));
    }

    #[test]
    fn bound_deleted_or_classless_claims_are_ignored() {
        let c = class("pure", NAME, &[]);
        let mut bound = pvc("c", "pure", "1Gi");
        bound.spec.get_or_insert_default().volume_name = Some("pv1".into());
        assert!(matches!(
            decide_claim(&bound, Some(&c), NAME),
            ClaimDecision::Ignore(_)
        ));
        let mut deleting = pvc("c", "pure", "1Gi");
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        assert!(matches!(
            decide_claim(&deleting, Some(&c), NAME),
            ClaimDecision::Ignore(_)
        ));
        assert!(matches!(
            decide_claim(&pvc("c", "", "1Gi"), None, NAME),
            ClaimDecision::Ignore(_)
        ));
    }

    #[test]
    fn missing_class_waits() {
        assert!(
            matches!(decide_claim(&pvc("c", "pure", "1Gi"), None, NAME), ClaimDecision::Wait(m) if m.contains("pure"))
        );
    }

    #[test]
    fn wait_for_first_consumer_waits_for_a_selected_node() {
        let mut c = class("pure", NAME, &[]);
        c.volume_binding_mode = Some("WaitForFirstConsumer".into());
        let mut claim = pvc("c", "pure", "1Gi");
        assert!(matches!(
            decide_claim(&claim, Some(&c), NAME),
            ClaimDecision::Wait(_)
        ));
        claim
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(ANN_SELECTED_NODE_ALPHA.into(), "node1".into());
        assert_eq!(
            decide_claim(&claim, Some(&c), NAME),
            ClaimDecision::Provision
        );
        let mut claim = pvc("c", "pure", "1Gi");
        claim
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(ANN_SELECTED_NODE.into(), "node1".into());
        assert_eq!(
            decide_claim(&claim, Some(&c), NAME),
            ClaimDecision::Provision
        );
    }

    #[test]
    fn sizes_are_checked() {
        assert_eq!(requested_bytes(&pvc("c", "pure", "10Gi")), Ok(10 << 30));
        for bad in ["0", "-1Gi", "lots", "5Pi"] {
            assert!(
                matches!(
                    requested_bytes(&pvc("c", "pure", bad)),
                    Err(ClaimError::BadSize(_))
                ),
                "{bad}"
            );
        }
        let mut none = pvc("c", "pure", "1Gi");
        none.spec.get_or_insert_default().resources = None;
        assert_eq!(requested_bytes(&none), Err(ClaimError::NoSize));
    }

    #[test]
    fn shared_access_is_for_file_volumes_only() {
        let mut claim = pvc("c", "pure", "1Gi");
        assert_eq!(
            access_modes(&claim, Backend::Block),
            Ok((vec!["ReadWriteOnce".to_owned()], false))
        );
        claim.spec.get_or_insert_default().access_modes = Some(vec!["ReadWriteMany".into()]);
        assert!(matches!(
            access_modes(&claim, Backend::Block),
            Err(ClaimError::SharedBlock { .. })
        ));
        assert_eq!(
            access_modes(&claim, Backend::File),
            Ok((vec!["ReadWriteMany".to_owned()], true))
        );
        claim.spec.get_or_insert_default().access_modes = Some(vec![]);
        assert_eq!(
            access_modes(&claim, Backend::File),
            Err(ClaimError::NoAccessModes)
        );
        claim.spec.get_or_insert_default().volume_mode = Some("Block".into());
        assert_eq!(
            access_modes(&claim, Backend::File),
            Err(ClaimError::RawBlock)
        );
    }
}
