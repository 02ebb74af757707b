//! Deleting: destroy with and without eradicate, Retain, PV deleted first, PSO PVs, which array
//! holds a PV, orphans.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn released_volume_is_destroyed_but_not_eradicated_by_default() {
    let h = Harness::start(&[fa(TIB, &[]), fb(TIB, &[])], "");
    let ctx = h.context();
    h.add_class(class("pure", "pure-provisioner", &[]));
    h.add_class(class(
        "pure-file",
        "pure-provisioner",
        &[("backend", "file")],
    ));
    let (claim, pv) = provision_one(&h, &ctx, "pure").await;
    let (fclaim, fpv) = provision_one(&h, &ctx, "pure-file").await;
    let fa0 = h.flash_array(0);
    fa0.create_host("node1", &Default::default()).expect("host");
    fa0.connect_host("node1", &Harness::volume_name(&claim), None)
        .expect("connect");

    // Bound: nothing happens.
    let bound = h.fake.get::<PersistentVolume>(None, &pv).expect("pv");
    assert_eq!(
        reclaim_volume(&bound, &ctx).await,
        Ok(VolumeOutcome::Ignored)
    );

    for (name, claim) in [(&pv, &claim), (&fpv, &fclaim)] {
        h.release(name);
        let released = h.fake.get::<PersistentVolume>(None, name).expect("pv");
        let outcome = reclaim_volume(&released, &ctx).await.expect("deletes");
        assert!(
            matches!(outcome, VolumeOutcome::Deleted { array: Some(_) }),
            "{outcome:?}"
        );
        assert!(
            h.fake.get::<PersistentVolume>(None, name).is_none(),
            "PV deleted"
        );
        let on_array = ctx.arrays.all().find_map(|a| {
            match futures::executor::block_on(a.lookup(&Harness::volume_name(claim))) {
                Ok(Lookup::Absent) => None,
                other => Some(other),
            }
        });
        assert_eq!(
            on_array,
            Some(Ok(Lookup::Destroyed)),
            "destroyed, still recoverable"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copy_the_watch_sends_after_our_finalizer_removal_is_not_deleted_twice() {
    let h = Harness::start(&[fa(TIB, &[])], "");
    let ctx = h.context();
    h.add_class(class("pure", "pure-provisioner", &[]));
    let (_claim, pv) = provision_one(&h, &ctx, "pure").await;
    h.release(&pv);
    let released = h.fake.get::<PersistentVolume>(None, &pv).expect("pv");
    let outcome = reclaim_volume(&released, &ctx).await.expect("deletes");
    assert!(matches!(outcome, VolumeOutcome::Deleted { array: Some(_) }));

    // What the watch delivers between the finalizer patch and the delete: still Released, no
    // finalizer, no deletionTimestamp, i.e. shaped like a PSO PV that needs deleting.
    let mut stale = released.clone();
    stale.metadata.finalizers = None;
    let api_before = h.fake.requests().len();
    let array_before = h.sims[0].stats();
    assert_eq!(
        reclaim_volume(&stale, &ctx).await,
        Ok(VolumeOutcome::Ignored)
    );
    assert_eq!(h.fake.requests().len(), api_before, "no API request");
    assert_eq!(h.sims[0].stats(), array_before, "no array call");

    // A new PV of the same name (new uid) is handled, not mistaken for the finished one.
    let mut reused_name = stale.clone();
    reused_name.metadata.uid = Some(crate::tests::fixtures::uid());
    assert_ne!(
        reclaim_volume(&reused_name, &ctx).await,
        Ok(VolumeOutcome::Ignored)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eradicate_on_delete_removes_the_volume_for_good() {
    let h = Harness::start(&[fa(TIB, &[])], r#", "eradicateOnDelete": true"#);
    let ctx = h.context();
    h.add_class(class("pure", "pure-provisioner", &[]));
    let (claim, pv) = provision_one(&h, &ctx, "pure").await;
    h.release(&pv);
    let released = h.fake.get::<PersistentVolume>(None, &pv).expect("pv");
    reclaim_volume(&released, &ctx).await.expect("deletes");
    assert!(
        h.flash_array(0)
            .list_volumes(&Harness::volume_name(&claim), true)
            .expect("list")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retain_keeps_the_array_volume_and_releases_the_finalizer_when_the_pv_is_deleted() {
    let h = Harness::start(&[fa(TIB, &[])], "");
    let ctx = h.context();
    let mut c = class("keep", "pure-provisioner", &[]);
    c.reclaim_policy = Some("Retain".into());
    h.add_class(c);
    let (claim, pv) = provision_one(&h, &ctx, "keep").await;
    h.release(&pv);
    let released = h.fake.get::<PersistentVolume>(None, &pv).expect("pv");
    assert_eq!(
        reclaim_volume(&released, &ctx).await,
        Ok(VolumeOutcome::Ignored)
    );

    // The admin deletes the PV: our finalizer holds it until we let go, without touching the array.
    kube::Api::<PersistentVolume>::all(h.fake.client())
        .delete(&pv, &Default::default())
        .await
        .expect("delete");
    let deleting = h
        .fake
        .get::<PersistentVolume>(None, &pv)
        .expect("held by finalizer");
    assert!(deleting.metadata.deletion_timestamp.is_some());
    assert_eq!(
        reclaim_volume(&deleting, &ctx).await,
        Ok(VolumeOutcome::Released)
    );
    assert!(h.fake.get::<PersistentVolume>(None, &pv).is_none());
    assert!(
        h.flash_array(0)
            .get_volume(&Harness::volume_name(&claim))
            .is_ok(),
        "array volume kept"
    );

    // ...and the orphan collector leaves it alone too.
    h.fake
        .remove::<PersistentVolumeClaim>(Some("default"), "data");
    h.clock.advance(Duration::from_secs(7200));
    let destroyed = collect_once(&ctx, Duration::from_secs(600), &mut OrphanState::default())
        .await
        .expect("round");
    assert!(destroyed.is_empty(), "{destroyed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_pv_first_destroys_the_volume_before_the_pv_goes() {
    let h = Harness::start(&[fa(TIB, &[])], "");
    let ctx = h.context();
    h.add_class(class("pure", "pure-provisioner", &[]));
    let (claim, pv) = provision_one(&h, &ctx, "pure").await;
    let mut available = h.fake.get::<PersistentVolume>(None, &pv).expect("pv");
    available.status.get_or_insert_default().phase = Some("Available".into());
    h.fake.insert(&available);
    kube::Api::<PersistentVolume>::all(h.fake.client())
        .delete(&pv, &Default::default())
        .await
        .expect("delete");
    let deleting = h
        .fake
        .get::<PersistentVolume>(None, &pv)
        .expect("held by finalizer");
    let outcome = reclaim_volume(&deleting, &ctx).await.expect("deletes");
    assert!(
        matches!(outcome, VolumeOutcome::Deleted { array: Some(_) }),
        "{outcome:?}"
    );
    assert!(h.fake.get::<PersistentVolume>(None, &pv).is_none());
    assert!(matches!(
        h.flash_array(0).get_volume(&Harness::volume_name(&claim)),
        Err(flashvol_common::ArrayError::Destroyed { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pso_created_pvs_are_found_by_name_on_any_array() {
    let h = Harness::start(&[fa(TIB, &[]), fa(TIB, &[])], "");
    let ctx = h.context();
    let uid = crate::tests::fixtures::uid();
    let pv_name = format!("pvc-{uid}");
    let name = format!("k8s-{pv_name}");
    h.flash_array(1)
        .create_volume(&name, 1 << 30, &Qos::default())
        .expect("create");
    // Exactly the shape PSO 2.x wrote: no array key, no finalizer.
    let pv: PersistentVolume = serde_json::from_value(serde_json::json!({
        "metadata": {"name": pv_name, "annotations": {"pv.kubernetes.io/provisioned-by": "pure-provisioner"}},
        "spec": {"persistentVolumeReclaimPolicy": "Delete", "capacity": {"storage": "1Gi"},
                 "accessModes": ["ReadWriteOnce"],
                 "flexVolume": {"driver": "pure/flex", "fsType": "xfs", "options": {
                     "accessMode": "exclusive", "backend": "block", "labels": "", "namespace": "k8s",
                     "volumeMode": "", "volumeName": pv_name}}},
        "status": {"phase": "Released"}
    }))
    .expect("pv");
    h.fake.insert(&pv);
    let stored = h.fake.get::<PersistentVolume>(None, &pv_name).expect("pv");
    let outcome = reclaim_volume(&stored, &ctx).await.expect("deletes");
    assert_eq!(
        outcome,
        VolumeOutcome::Deleted {
            array: Some(format!("FlashArray {}", h.sims[1].endpoint()))
        }
    );
    assert!(matches!(
        h.flash_array(1).get_volume(&name),
        Err(flashvol_common::ArrayError::Destroyed { .. })
    ));
    assert!(h.fake.get::<PersistentVolume>(None, &pv_name).is_none());

    // The same PV again, its volume gone everywhere: already deleted is fine.
    h.fake.insert(&pv);
    let stored = h.fake.get::<PersistentVolume>(None, &pv_name).expect("pv");
    h.flash_array(1).eradicate_volume(&name).expect("eradicate");
    assert_eq!(
        reclaim_volume(&stored, &ctx).await,
        Ok(VolumeOutcome::Deleted { array: None })
    );
}

/// A released PV naming `array_volume` on the array at `endpoint` with id `id`, as we write them.
fn released_pv_naming(
    pv_name: &str,
    array_volume: &str,
    endpoint: &str,
    id: &str,
) -> PersistentVolume {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": pv_name, "annotations": {"pv.kubernetes.io/provisioned-by": "pure-provisioner"}},
        "spec": {"persistentVolumeReclaimPolicy": "Delete", "capacity": {"storage": "1Gi"},
                 "accessModes": ["ReadWriteOnce"],
                 "flexVolume": {"driver": "pure/flex", "fsType": "xfs", "options": {
                     "backend": "block", "namespace": "k8s", "volumeName": pv_name,
                     options::ARRAY_VOLUME: array_volume, options::ARRAY_ENDPOINT: endpoint,
                     options::ARRAY_ID: id}}},
        "status": {"phase": "Released"}
    }))
    .expect("pv")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_array_id_finds_the_volume_when_the_pvs_endpoint_now_names_another_array() {
    let h = Harness::start(&[fa(TIB, &[]), fa(TIB, &[])], "");
    let ctx = h.context();
    let pv_name = format!("pvc-{}", crate::tests::fixtures::uid());
    let name = format!("k8s-{pv_name}");
    // The same name on both arrays: only the id can tell which one is this PV's.
    for i in [0, 1] {
        h.flash_array(i)
            .create_volume(&name, 1 << 30, &Qos::default())
            .expect("create");
    }
    let id = h.flash_array(1).array_info().expect("info").id;
    h.fake.insert(&released_pv_naming(
        &pv_name,
        &name,
        &h.sims[0].endpoint(),
        &id,
    ));
    let stored = h.fake.get::<PersistentVolume>(None, &pv_name).expect("pv");
    let outcome = reclaim_volume(&stored, &ctx).await.expect("deletes");
    assert_eq!(
        outcome,
        VolumeOutcome::Deleted {
            array: Some(format!("FlashArray {}", h.sims[1].endpoint()))
        }
    );
    assert!(
        h.flash_array(0).get_volume(&name).is_ok(),
        "the other array's volume is kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pv_whose_array_id_no_configured_array_has_keeps_its_volume_and_says_why() {
    let h = Harness::start(&[fa(TIB, &[])], "");
    let ctx = h.context();
    let pv_name = format!("pvc-{}", crate::tests::fixtures::uid());
    let name = format!("k8s-{pv_name}");
    h.flash_array(0)
        .create_volume(&name, 1 << 30, &Qos::default())
        .expect("create");
    h.fake.insert(&released_pv_naming(
        &pv_name,
        &name,
        &h.sims[0].endpoint(),
        "id-of-another-array",
    ));
    let stored = h.fake.get::<PersistentVolume>(None, &pv_name).expect("pv");
    let err = reclaim_volume(&stored, &ctx).await.expect_err("refused");
    assert_eq!(err.reason, "array");
    assert!(
        err.message.contains("id-of-another-array"),
        "{}",
        err.message
    );
    assert_eq!(h.events(&ctx, "VolumeFailedDelete").await, [err.message]);
    assert!(h.flash_array(0).get_volume(&name).is_ok(), "not destroyed");
    assert!(
        h.fake.get::<PersistentVolume>(None, &pv_name).is_some(),
        "PV kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_collector_destroys_only_old_volumes_without_pv_or_claim() {
    let h = Harness::start(&[fa(TIB, &[]), fb(TIB, &[])], "");
    let ctx = h.context();
    h.add_class(class("pure", "pure-provisioner", &[]));
    let (with_pv, _) = provision_one(&h, &ctx, "pure").await;
    let orphan = format!("k8s-pvc-{}", crate::tests::fixtures::uid());
    let fb_orphan = format!("k8s-pvc-{}", crate::tests::fixtures::uid());
    let in_flight = pvc("new", "pure", "1Gi");
    h.add_claim(&in_flight);
    let foreign = "other-volume";
    let fa0 = h.flash_array(0);
    for name in [orphan.as_str(), &Harness::volume_name(&in_flight), foreign] {
        fa0.create_volume(name, 1 << 20, &Qos::default())
            .expect("create");
    }
    h.flash_blade(0)
        .create_file_system(&flashvol_common::flashblade::NewFileSystem {
            name: fb_orphan.clone(),
            provisioned: 1 << 20,
            hard_limit: true,
            snapshot_directory: false,
            nfs_rules: "*(rw)".into(),
            nfs_v3: true,
            nfs_v4_1: true,
        })
        .expect("create fs");

    let grace = Duration::from_secs(600);
    let mut state = OrphanState::default();
    assert!(
        collect_once(&ctx, grace, &mut state)
            .await
            .expect("round")
            .is_empty(),
        "too young"
    );
    h.clock.advance(Duration::from_secs(3600));
    let mut destroyed = collect_once(&ctx, grace, &mut state).await.expect("round");
    destroyed.sort();
    let mut want = vec![orphan.clone(), fb_orphan.clone()];
    want.sort();
    assert_eq!(destroyed, want);
    assert!(matches!(
        fa0.get_volume(&orphan),
        Err(flashvol_common::ArrayError::Destroyed { .. })
    ));
    assert!(
        fa0.list_volumes(&orphan, true).expect("list").len() == 1,
        "destroyed, never eradicated"
    );
    for kept in [
        Harness::volume_name(&with_pv),
        Harness::volume_name(&in_flight),
        foreign.to_owned(),
    ] {
        assert!(fa0.get_volume(&kept).is_ok(), "{kept} kept");
    }
    assert!(
        h.flash_blade(0)
            .get_file_system(&fb_orphan)
            .expect("fs")
            .destroyed
    );
}
