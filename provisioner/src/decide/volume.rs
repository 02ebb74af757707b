//! Pure decision about a PV: is it ours to delete now, or only our finalizer to release.
//!
//! Owns the marks of our PVs (the `provisioned-by` annotation and our finalizer) and
//! sig-storage-lib-external-provisioner's `shouldDelete` rule. No I/O.

use k8s_openapi::api::core::v1::PersistentVolume;

use crate::decide::claim::annotation;

/// Set on our PVs; deletion only touches PVs that carry our name here.
pub const ANN_PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// Keeps a PV object until its array volume is gone, so deleting the PV first cannot orphan it.
pub const FINALIZER: &str = "flashvol.io/array-volume";

/// What to do with a PV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeDecision {
    /// Destroy the array volume, then drop our finalizer and delete the PV (if not already
    /// being deleted).
    DestroyAndDelete,
    /// Retain (or Recycle) while the PV is being deleted: drop our finalizer, leave the array alone.
    ReleaseFinalizer,
    Ignore,
}

fn has_finalizer(pv: &PersistentVolume) -> bool {
    pv.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == FINALIZER)
}

/// sig-storage-lib's `shouldDelete`, extended with our finalizer.
pub fn decide_volume(pv: &PersistentVolume, provisioner: &str) -> VolumeDecision {
    let ours = annotation(&pv.metadata, ANN_PROVISIONED_BY) == Some(provisioner);
    let finalizer = has_finalizer(pv);
    let deleting = pv.metadata.deletion_timestamp.is_some();
    let spec = pv.spec.as_ref();
    let policy = spec
        .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
        .unwrap_or("Retain");
    let phase = pv
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("");
    if policy != "Delete" {
        return if deleting && finalizer {
            VolumeDecision::ReleaseFinalizer
        } else {
            VolumeDecision::Ignore
        };
    }
    if !ours {
        return VolumeDecision::Ignore;
    }
    if deleting && !finalizer {
        // Someone else's deletion is already past our chance to act; nothing left to protect.
        return VolumeDecision::Ignore;
    }
    // A Bound PV stays (the pv-protection finalizer also keeps it while a claim uses it); once
    // the claim is gone the PV controller marks it Released.
    if phase == "Released" || (deleting && phase != "Bound") {
        VolumeDecision::DestroyAndDelete
    } else {
        VolumeDecision::Ignore
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::fixtures::pv_of;

    const NAME: &str = "pure-provisioner";

    fn with(
        mut pv: PersistentVolume,
        policy: &str,
        phase: &str,
        deleting: bool,
        finalizer: bool,
    ) -> PersistentVolume {
        pv.spec
            .get_or_insert_default()
            .persistent_volume_reclaim_policy = Some(policy.into());
        pv.status.get_or_insert_default().phase = Some(phase.into());
        if deleting {
            pv.metadata.deletion_timestamp =
                Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
                ));
        }
        if !finalizer {
            pv.metadata.finalizers = None;
        }
        pv
    }

    #[test]
    fn released_delete_volumes_of_ours_are_destroyed() {
        let pv = pv_of(NAME);
        assert_eq!(
            decide_volume(&with(pv.clone(), "Delete", "Released", false, true), NAME),
            VolumeDecision::DestroyAndDelete
        );
        assert_eq!(
            decide_volume(&with(pv.clone(), "Delete", "Released", false, false), NAME),
            VolumeDecision::DestroyAndDelete,
            "PSO PVs have no finalizer"
        );
        assert_eq!(
            decide_volume(&with(pv.clone(), "Delete", "Bound", false, true), NAME),
            VolumeDecision::Ignore
        );
        assert_eq!(
            decide_volume(&with(pv.clone(), "Delete", "Available", true, true), NAME),
            VolumeDecision::DestroyAndDelete,
            "PV deleted first"
        );
        assert_eq!(
            decide_volume(&with(pv.clone(), "Delete", "Bound", true, true), NAME),
            VolumeDecision::Ignore,
            "still in use"
        );
        assert_eq!(
            decide_volume(&with(pv, "Delete", "Released", true, false), NAME),
            VolumeDecision::Ignore
        );
    }

    #[test]
    fn retain_is_honoured_and_only_our_finalizer_is_released() {
        let pv = pv_of(NAME);
        assert_eq!(
            decide_volume(&with(pv.clone(), "Retain", "Released", false, true), NAME),
            VolumeDecision::Ignore
        );
        assert_eq!(
            decide_volume(&with(pv.clone(), "Retain", "Released", true, true), NAME),
            VolumeDecision::ReleaseFinalizer
        );
        assert_eq!(
            decide_volume(&with(pv, "Retain", "Released", true, false), NAME),
            VolumeDecision::Ignore
        );
    }

    #[test]
    fn volumes_of_other_provisioners_are_ignored() {
        let pv = pv_of("someone-else");
        assert_eq!(
            decide_volume(&with(pv, "Delete", "Released", false, false), NAME),
            VolumeDecision::Ignore
        );
    }
}
