//! Resizing: bound claims that grew get a larger array object; file claims are finished here,
//! block claims left to kubelet; refusals, idempotence across restarts, claims not ours.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PersistentVolumeClaimCondition, PersistentVolumeClaimStatus};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::*;
use crate::reconcile::resize::{ResizeOutcome, resize_claim};

const GIB: u64 = 1 << 30;

fn storage(q: &str) -> Option<BTreeMap<String, Quantity>> {
    Some(BTreeMap::from([("storage".to_owned(), Quantity(q.into()))]))
}

/// Provisions a 1 GiB claim named after its class and binds it, as the PV controller does.
async fn bound_claim(h: &Harness, ctx: &Context, class: &str) -> (PersistentVolumeClaim, String) {
    let mut claim = pvc(class, class, "1Gi");
    h.add_claim(&claim);
    provision_claim(&claim, ctx).await.expect("provisions");
    let pv = h.pv_of(&claim).expect("PV").metadata.name.expect("name");
    claim.spec.get_or_insert_default().volume_name = Some(pv.clone());
    claim.status = Some(PersistentVolumeClaimStatus {
        phase: Some("Bound".into()),
        capacity: storage("1Gi"),
        ..Default::default()
    });
    h.add_claim(&claim);
    (claim, pv)
}

/// The user raises the claim's request.
fn request(h: &Harness, claim: &PersistentVolumeClaim, size: &str) -> PersistentVolumeClaim {
    let mut grown = h.current(claim);
    grown
        .spec
        .get_or_insert_default()
        .resources
        .get_or_insert_default()
        .requests = storage(size);
    h.add_claim(&grown);
    h.current(claim)
}

/// What the controller manager's expander does for a flex PV: the PV's capacity follows the
/// request, the claim is marked for a file system resize.
fn controller_manager_expands(h: &Harness, claim: &PersistentVolumeClaim, pv: &str, size: &str) {
    let mut volume = h.fake.get::<PersistentVolume>(None, pv).expect("pv");
    volume.spec.get_or_insert_default().capacity = storage(size);
    h.fake.insert(&volume);
    let mut marked = h.current(claim);
    let status = marked.status.get_or_insert_default();
    status.conditions = Some(vec![PersistentVolumeClaimCondition {
        type_: "FileSystemResizePending".into(),
        status: "True".into(),
        ..Default::default()
    }]);
    status.allocated_resource_statuses = Some(BTreeMap::from([(
        "storage".to_owned(),
        "NodeResizePending".to_owned(),
    )]));
    h.add_claim(&marked);
}

impl Harness {
    fn current(&self, claim: &PersistentVolumeClaim) -> PersistentVolumeClaim {
        self.fake
            .get::<PersistentVolumeClaim>(
                claim.metadata.namespace.as_deref(),
                claim.metadata.name.as_deref().expect("name"),
            )
            .expect("claim")
    }

    fn capacity_of(&self, claim: &PersistentVolumeClaim) -> Option<String> {
        self.current(claim)
            .status
            .and_then(|s| s.capacity)
            .and_then(|c| c.get("storage").map(|q| q.0.clone()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grown_block_claim_gets_a_larger_volume_and_kubelet_finishes_the_claim() {
    let h = Harness::start(&[fa(TIB, &[])], "");
    let ctx = h.context();
    h.add_class(class("pure-block", "pure-provisioner", &[]));
    let (claim, pv) = bound_claim(&h, &ctx, "pure-block").await;
    let name = Harness::volume_name(&claim);

    let unchanged = h.current(&claim);
    assert!(matches!(
        resize_claim(&unchanged, &ctx).await,
        Ok(ResizeOutcome::Ignored(_))
    ));
    let grown = request(&h, &claim, "3Gi");
    controller_manager_expands(&h, &claim, &pv, "3Gi");
    assert_eq!(
        resize_claim(&grown, &ctx).await,
        Ok(ResizeOutcome::Grown {
            from: GIB,
            to: 3 * GIB
        })
    );
    assert_eq!(
        h.flash_array(0).get_volume(&name).expect("volume").size,
        3 * GIB
    );
    assert_eq!(h.events(&ctx, "Resizing").await.len(), 1);
    let required = h.events(&ctx, "FileSystemResizeRequired").await;
    assert_eq!(required.len(), 1, "{required:?}");
    assert!(required[0].contains("3Gi"), "{required:?}");
    assert_eq!(
        h.capacity_of(&claim).as_deref(),
        Some("1Gi"),
        "a block claim's capacity is kubelet's to set, after expandfs"
    );

    // The claim's next updates (the controller manager's, kubelet's) find nothing to do.
    assert_eq!(
        resize_claim(&h.current(&claim), &ctx).await,
        Ok(ResizeOutcome::UpToDate)
    );
    assert_eq!(
        h.events(&ctx, "Resizing").await.len(),
        1,
        "no second resize"
    );
    assert!(
        !h.fake
            .requests()
            .iter()
            .any(|(_, p)| p.ends_with("/status")),
        "no status patch for a block claim"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grown_file_claim_is_finished_once_the_controller_manager_raised_its_pv() {
    let h = Harness::start(&[fb(TIB, &[])], "");
    let ctx = h.context();
    h.add_class(class(
        "pure-file",
        "pure-provisioner",
        &[("backend", "file")],
    ));
    let (claim, pv) = bound_claim(&h, &ctx, "pure-file").await;
    let name = Harness::volume_name(&claim);

    // The provisioner may see the claim before the controller manager raised the PV.
    let grown = request(&h, &claim, "3Gi");
    assert!(matches!(
        resize_claim(&grown, &ctx).await,
        Ok(ResizeOutcome::Waiting(_))
    ));
    let fs = h.flash_blade(0).get_file_system(&name).expect("fs");
    assert_eq!((fs.provisioned, fs.hard_limit_enabled), (3 * GIB, true));
    assert_eq!(h.capacity_of(&claim).as_deref(), Some("1Gi"), "not yet");

    controller_manager_expands(&h, &claim, &pv, "3Gi");
    assert_eq!(
        resize_claim(&h.current(&claim), &ctx).await,
        Ok(ResizeOutcome::Finished)
    );
    let finished = h.current(&claim);
    let status = finished.status.expect("status");
    assert_eq!(status.capacity, storage("3Gi"));
    assert_eq!(status.conditions, None, "resize conditions cleared");
    assert_eq!(status.allocated_resource_statuses, Some(BTreeMap::new()));
    assert_eq!(h.events(&ctx, "VolumeResizeSuccessful").await.len(), 1);
    assert_eq!(h.events(&ctx, "Resizing").await.len(), 1);
    assert!(matches!(
        resize_claim(&h.current(&claim), &ctx).await,
        Ok(ResizeOutcome::Ignored(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resize_beyond_four_pebibytes_or_the_free_space_is_refused_with_nothing_changed() {
    let h = Harness::start(&[fa(8 * GIB, &[])], "");
    let ctx = h.context();
    h.add_class(class("pure-block", "pure-provisioner", &[]));
    let (claim, _) = bound_claim(&h, &ctx, "pure-block").await;
    let name = Harness::volume_name(&claim);
    for (size, expect) in [
        ("5Pi", "5Pi is over the 4Pi limit of FlashArray volumes"),
        ("100Gi", "growing needs 99Gi more but the array has"),
    ] {
        let asked = request(&h, &claim, size);
        let err = resize_claim(&asked, &ctx).await.expect_err("refused");
        assert_eq!(err.reason, "refused");
        let failed = h.events(&ctx, "VolumeResizeFailed").await;
        assert!(
            failed
                .iter()
                .any(|m| m.contains(expect) && m.contains("nothing changed")),
            "{failed:?}"
        );
        assert_eq!(
            h.flash_array(0).get_volume(&name).expect("volume").size,
            GIB
        );
    }
    assert!(
        h.events(&ctx, "Resizing").await.is_empty(),
        "nothing was started"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provisioner_killed_after_growing_converges_in_its_next_life() {
    let h = Harness::start(&[fa(TIB, &[]), fb(TIB, &[])], "");
    let ctx = h.context();
    h.add_class(class("pure-block", "pure-provisioner", &[]));
    h.add_class(class(
        "pure-file",
        "pure-provisioner",
        &[("backend", "file")],
    ));
    let (block, bpv) = bound_claim(&h, &ctx, "pure-block").await;
    let (file, fpv) = bound_claim(&h, &ctx, "pure-file").await;
    for (claim, pv) in [(&block, &bpv), (&file, &fpv)] {
        request(&h, claim, "2Gi");
        controller_manager_expands(&h, claim, pv, "2Gi");
    }
    // The last life grew both array objects, then died before its events and the status.
    h.flash_array(0)
        .extend_volume(&Harness::volume_name(&block), 2 * GIB)
        .expect("grown");
    h.flash_blade(0)
        .resize_file_system(&Harness::volume_name(&file), 2 * GIB)
        .expect("grown");

    let next_life = h.context();
    assert_eq!(
        resize_claim(&h.current(&block), &next_life).await,
        Ok(ResizeOutcome::UpToDate)
    );
    assert_eq!(
        resize_claim(&h.current(&file), &next_life).await,
        Ok(ResizeOutcome::Finished)
    );
    assert_eq!(h.capacity_of(&file).as_deref(), Some("2Gi"));
    assert_eq!(h.capacity_of(&block).as_deref(), Some("1Gi"));
    assert!(
        h.events(&next_life, "Resizing").await.is_empty(),
        "nothing grew twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_claim_changed_meanwhile_is_finished_on_its_next_pass_without_a_warning() {
    let h = Harness::start(&[fb(TIB, &[])], "");
    let ctx = h.context();
    h.add_class(class(
        "pure-file",
        "pure-provisioner",
        &[("backend", "file")],
    ));
    let (claim, pv) = bound_claim(&h, &ctx, "pure-file").await;
    request(&h, &claim, "2Gi");
    controller_manager_expands(&h, &claim, &pv, "2Gi");
    h.fake.fail_next(Method::PATCH, "/status", 409);
    let err = resize_claim(&h.current(&claim), &ctx)
        .await
        .expect_err("lost the race");
    assert_eq!(err.reason, "conflict");
    assert!(h.events(&ctx, "VolumeResizeFailed").await.is_empty());
    assert_eq!(
        resize_claim(&h.current(&claim), &ctx).await,
        Ok(ResizeOutcome::Finished)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_not_ours_or_not_growing_cost_no_array_call() {
    let h = Harness::start(&[fa(TIB, &[])], "");
    let ctx = h.context();
    h.add_class(class("pure-block", "pure-provisioner", &[]));
    let (claim, pv) = bound_claim(&h, &ctx, "pure-block").await;
    let mut foreign = h.fake.get::<PersistentVolume>(None, &pv).expect("pv");
    foreign.metadata.annotations.get_or_insert_default().insert(
        crate::decide::volume::ANN_PROVISIONED_BY.into(),
        "someone-else".into(),
    );
    h.fake.insert(&foreign);
    let calls = || h.sims[0].stats().total_calls;
    let before = calls();
    assert!(matches!(
        resize_claim(&h.current(&claim), &ctx).await,
        Ok(ResizeOutcome::Ignored(_))
    ));
    let grown = request(&h, &claim, "3Gi");
    assert_eq!(
        resize_claim(&grown, &ctx).await,
        Ok(ResizeOutcome::Ignored("the claim's PV is not ours"))
    );
    assert_eq!(calls(), before, "no array was asked");
}
