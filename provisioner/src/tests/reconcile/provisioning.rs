//! Provisioning: block and file, placement, validation errors, crash recovery, unreachable arrays.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_gets_its_pv_while_event_writes_hang() {
    let h = Harness::start(&[fa(TIB, &[])], "");
    let ctx = h.context();
    h.add_class(class(
        "pure-block",
        "pure-provisioner",
        &[("backend", "block")],
    ));
    let claim = pvc("data", "pure-block", "1Gi");
    h.add_claim(&claim);
    h.fake.stall("/events");

    // A guard, not a measurement: before events were queued this waited forever.
    let outcome = tokio::time::timeout(Duration::from_secs(60), provision_claim(&claim, &ctx))
        .await
        .expect("provisioning waited for an event write")
        .expect("provisions");
    assert!(
        matches!(outcome, ClaimOutcome::Provisioned { .. }),
        "{outcome:?}"
    );
    assert!(
        h.pv_of(&claim).is_some(),
        "PV created before any event was written"
    );

    // The outcome was queued, not lost: it is written once the API server answers again (the
    // `Provisioning` event it superseded, never).
    h.fake.release();
    assert_eq!(h.events(&ctx, "ProvisioningSucceeded").await.len(), 1);
    assert_eq!(h.events(&ctx, "Provisioning").await.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisions_a_block_volume_and_a_pv_that_points_at_it() {
    let h = Harness::start(&[fa(TIB, &[])], "");
    let ctx = h.context();
    let mut c = class(
        "pure-block",
        "pure-provisioner",
        &[("backend", "block"), ("iops_limit", "5000")],
    );
    c.mount_options = Some(vec!["discard".into()]);
    h.add_class(c);
    let claim = pvc("data", "pure-block", "10Gi");
    h.add_claim(&claim);

    let outcome = provision_claim(&claim, &ctx).await.expect("provisions");
    assert!(
        matches!(outcome, ClaimOutcome::Provisioned { reused: false, .. }),
        "{outcome:?}"
    );

    let name = Harness::volume_name(&claim);
    let volume = h
        .flash_array(0)
        .get_volume(&name)
        .expect("volume on the array");
    assert_eq!(volume.size, 10 << 30);
    assert_eq!(
        h.flash_array(0).get_qos(&name).expect("qos").iops_limit,
        Some(5000)
    );
    let pv = h.pv_of(&claim).expect("PV created");
    let flex = pv
        .spec
        .as_ref()
        .and_then(|s| s.flex_volume.as_ref())
        .expect("flex");
    let opts = flex.options.as_ref().expect("options");
    assert_eq!(opts[options::ARRAY_VOLUME], name);
    assert_eq!(opts[options::ARRAY_ENDPOINT], h.sims[0].endpoint());
    assert_eq!(
        opts[options::ARRAY_ID],
        h.flash_array(0).array_info().expect("info").id
    );
    assert_eq!(opts[options::MOUNT_OPTIONS], "discard");
    // Provisioned within the grace: the outcome is the claim's one event.
    assert_eq!(h.events(&ctx, "ProvisioningSucceeded").await.len(), 1);
    assert_eq!(h.events(&ctx, "Provisioning").await.len(), 0);

    // A second pass (e.g. the claim's next update) finds the PV and does nothing.
    assert_eq!(
        provision_claim(&claim, &ctx).await,
        Ok(ClaimOutcome::AlreadyProvisioned)
    );
    assert_eq!(
        h.flash_array(0)
            .list_volumes("k8s-pvc-*", true)
            .expect("list")
            .len(),
        1
    );
    let pv_creates = h
        .fake
        .requests()
        .iter()
        .filter(|(m, p)| m == "POST" && p == "/api/v1/persistentvolumes")
        .count();
    assert_eq!(pv_creates, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisions_a_file_system_with_class_export_rules_and_a_data_vip() {
    let h = Harness::start(&[fb(TIB, &[])], "");
    let ctx = h.context();
    h.add_class(class(
        "pure-file",
        "pure-provisioner",
        &[
            ("backend", "file"),
            ("exportRules", "10.0.0.0/8(rw,no_root_squash)"),
            ("hardLimit", "false"),
        ],
    ));
    let mut claim = pvc("shared", "pure-file", "5Gi");
    claim.spec.get_or_insert_default().access_modes = Some(vec!["ReadWriteMany".into()]);
    h.add_claim(&claim);

    let outcome = provision_claim(&claim, &ctx).await.expect("provisions");
    assert!(
        matches!(outcome, ClaimOutcome::Provisioned { .. }),
        "{outcome:?}"
    );
    let fs = h
        .flash_blade(0)
        .get_file_system(&Harness::volume_name(&claim))
        .expect("file system");
    assert_eq!(fs.provisioned, 5 << 30);
    assert_eq!(fs.nfs.rules, "10.0.0.0/8(rw,no_root_squash)");
    assert!(!fs.hard_limit_enabled);
    let pv = h.pv_of(&claim).expect("PV");
    let spec = pv.spec.expect("spec");
    assert_eq!(
        spec.access_modes.as_deref(),
        Some(&["ReadWriteMany".to_owned()][..])
    );
    let flex = spec.flex_volume.expect("flex");
    assert_eq!(flex.fs_type.as_deref(), Some("nfs"));
    assert_eq!(
        flex.options.expect("options")[options::NFS_ENDPOINT],
        "127.0.0.1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_spreads_over_equal_arrays_by_what_was_just_placed() {
    // Thin volumes leave the arrays' free space unchanged, so the cached figure must be charged
    // with each placement or the whole burst lands on the first array.
    let h = Harness::start(&[fa(TIB, &[]), fa(TIB, &[])], "");
    let ctx = h.context();
    h.add_class(class("pure", "pure-provisioner", &[]));
    // 4 × 600 GiB is more than the 2 TiB free: thin arrays take it, and no claim is refused.
    let claims: Vec<_> = (0..4)
        .map(|i| pvc(&format!("c{i}"), "pure", "600Gi"))
        .collect();
    for claim in &claims {
        provision_claim(claim, &ctx).await.expect("provisions");
    }
    let on = |i: usize| {
        claims
            .iter()
            .filter(|c| {
                h.flash_array(i)
                    .get_volume(&Harness::volume_name(c))
                    .is_ok()
            })
            .count()
    };
    assert_eq!((on(0), on(1)), (2, 2), "alternates between the two arrays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placement_follows_the_claim_selector_then_free_capacity() {
    let h = Harness::start(
        &[
            fa(TIB, &[("tier", "slow")]),
            fa(2 * TIB, &[("tier", "fast")]),
            fa(5 * TIB, &[("tier", "slow")]),
        ],
        "",
    );
    let ctx = h.context();
    h.add_class(class("pure", "pure-provisioner", &[]));

    let unrestricted = pvc("any", "pure", "1Gi");
    provision_claim(&unrestricted, &ctx)
        .await
        .expect("provisions");
    assert!(
        h.flash_array(2)
            .get_volume(&Harness::volume_name(&unrestricted))
            .is_ok(),
        "most free space wins"
    );

    let mut fast = pvc("fast", "pure", "1Gi");
    fast.spec.get_or_insert_default().selector = Some(selector("tier", "In", &["fast"]));
    provision_claim(&fast, &ctx).await.expect("provisions");
    assert!(
        h.flash_array(1)
            .get_volume(&Harness::volume_name(&fast))
            .is_ok(),
        "selector narrows the arrays"
    );

    let mut gold = pvc("gold", "pure", "1Gi");
    gold.spec.get_or_insert_default().selector = Some(selector("tier", "In", &["gold"]));
    let err = provision_claim(&gold, &ctx)
        .await
        .expect_err("no array matches");
    assert_eq!(err.reason, "placement");
    assert!(err.message.contains("tier in (gold)"), "{}", err.message);

    let mut too_big = pvc("big", "pure", "3Ti");
    too_big.spec.get_or_insert_default().selector = Some(selector("tier", "In", &["fast"]));
    let err = provision_claim(&too_big, &ctx).await.expect_err("no room");
    assert!(
        err.message.contains("no FlashArray has room for 3Ti"),
        "{}",
        err.message
    );
    let failed = h.events(&ctx, "ProvisioningFailed").await;
    assert_eq!(failed.len(), 2, "{failed:?}");
    for i in 0..3 {
        assert!(
            h.flash_array(i)
                .get_volume(&Harness::volume_name(&too_big))
                .is_err()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn class_and_claim_errors_are_events_and_touch_no_array() {
    let h = Harness::start(&[fa(TIB, &[])], "");
    let ctx = h.context();
    h.add_class(class("typo", "pure-provisioner", &[("backnd", "file")]));
    h.add_class(class(
        "block",
        "pure-provisioner",
        &[("exportRules", "*(rw)")],
    ));
    h.add_class(class("ok", "pure-provisioner", &[]));

    let err = provision_claim(&pvc("a", "typo", "1Gi"), &ctx)
        .await
        .expect_err("unknown key");
    assert_eq!(err.reason, "class");
    assert!(err.message.contains("\"backnd\""), "{}", err.message);
    let err = provision_claim(&pvc("b", "block", "1Gi"), &ctx)
        .await
        .expect_err("file key on block class");
    assert!(err.message.contains("exportRules"), "{}", err.message);
    let mut rwx = pvc("c", "ok", "1Gi");
    rwx.spec.get_or_insert_default().access_modes = Some(vec!["ReadWriteMany".into()]);
    let err = provision_claim(&rwx, &ctx).await.expect_err("RWX on block");
    assert!(err.message.contains("ReadWriteMany"), "{}", err.message);
    let err = provision_claim(&pvc("d", "ok", "0"), &ctx)
        .await
        .expect_err("zero size");
    assert!(err.message.contains("zero"), "{}", err.message);

    assert_eq!(h.events(&ctx, "ProvisioningFailed").await.len(), 4);
    assert!(
        h.flash_array(0)
            .list_volumes("*", true)
            .expect("list")
            .is_empty()
    );
    assert!(h.fake.list::<PersistentVolume>().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_array_create_and_pv_create_leaves_one_volume_and_finishes_after_restart() {
    let h = Harness::start(&[fa(TIB, &[]), fa(2 * TIB, &[])], "");
    h.add_class(class("pure", "pure-provisioner", &[]));
    let claim = pvc("data", "pure", "1Gi");
    h.add_claim(&claim);
    let name = Harness::volume_name(&claim);

    // First process: the array volume is created, then the PV create fails (as if it died there).
    let first = h.context();
    h.fake.fail_next(Method::POST, "/persistentvolumes", 500);
    let err = provision_claim(&claim, &first)
        .await
        .expect_err("PV create fails");
    assert_eq!(err.reason, "kubernetes");
    assert!(h.flash_array(1).get_volume(&name).is_ok());
    assert!(h.pv_of(&claim).is_none());
    drop(first);

    // Second process, fresh caches: finds the volume by name instead of creating another.
    let second = h.context();
    let outcome = provision_claim(&claim, &second).await.expect("completes");
    assert_reused_on(&h, &outcome, &claim, 1);
}

/// The claim's pass reused the volume an earlier attempt left on array `on`: no other array
/// holds one by its name, and the PV points at `on`.
fn assert_reused_on(h: &Harness, outcome: &ClaimOutcome, claim: &PersistentVolumeClaim, on: usize) {
    assert!(
        matches!(outcome, ClaimOutcome::Provisioned { reused: true, .. }),
        "{outcome:?}"
    );
    let name = Harness::volume_name(claim);
    for other in (0..h.sims.len()).filter(|i| *i != on) {
        assert!(
            h.flash_array(other).get_volume(&name).is_err(),
            "a second volume on array {other}"
        );
    }
    let pv = h.pv_of(claim).expect("PV");
    let opts = pv
        .spec
        .and_then(|s| s.flex_volume)
        .and_then(|f| f.options)
        .expect("options");
    assert_eq!(opts[options::ARRAY_ENDPOINT], h.sims[on].endpoint());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_no_attempt_has_touched_is_created_without_asking_every_array_first() {
    let h = Harness::start(&[fa(TIB, &[]), fa(2 * TIB, &[])], "");
    let ctx = h.context();
    h.add_class(class("pure", "pure-provisioner", &[]));
    let calls = |route: &str| -> u64 {
        h.sims
            .iter()
            .map(|sim| sim.stats().calls.get(route).copied().unwrap_or(0))
            .sum()
    };

    for i in 0..3 {
        let claim = pvc(&format!("data-{i}"), "pure", "1Gi");
        h.add_claim(&claim);
        let outcome = provision_claim(&claim, &ctx).await.expect("provisions");
        assert!(
            matches!(outcome, ClaimOutcome::Provisioned { reused: false, .. }),
            "{outcome:?}"
        );
    }
    // Each array was listed once, on the first pass, and no name was looked up: each claim
    // cost its create alone.
    assert_eq!(calls("GET volume"), 2, "one listing per array");
    assert_eq!(calls("GET volume/{name}"), 0, "no lookup before a create");
    assert_eq!(calls("POST volume/{name}"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_array_that_cannot_be_listed_is_asked_by_name_and_listed_again_only_later() {
    let h = Harness::start(&[fa(TIB, &[]), fa(2 * TIB, &[])], "");
    let ctx = h.context();
    h.add_class(class("pure", "pure-provisioner", &[]));
    h.sims[0].set_faults(unavailable("GET", "/api/*/volume"));
    let calls = |array: usize, route: &str| -> u64 {
        h.sims[array].stats().calls.get(route).copied().unwrap_or(0)
    };

    let first = pvc("first", "pure", "1Gi");
    h.add_claim(&first);
    provision_claim(&first, &ctx)
        .await
        .expect("array 0 answers lookups by name: the claim goes ahead");
    let listings_tried = calls(0, "GET volume");
    assert!(listings_tried >= 1);
    assert_eq!(calls(0, "GET volume/{name}"), 1);

    // Within the retry delay the failed listing is not tried again: every pass looks the name up.
    for name in ["second", "third"] {
        let claim = pvc(name, "pure", "1Gi");
        h.add_claim(&claim);
        provision_claim(&claim, &ctx).await.expect("provisions");
    }
    assert_eq!(
        calls(0, "GET volume"),
        listings_tried,
        "no second listing yet"
    );
    assert_eq!(
        calls(0, "GET volume/{name}"),
        3,
        "each claim looked up by name"
    );
    assert_eq!(calls(1, "GET volume/{name}"), 3, "on every array");
    assert_eq!(calls(1, "GET volume"), 1, "array 1 was listed once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_this_process_made_is_reused_when_its_pv_failed_and_placement_moved() {
    let h = Harness::start(&[fa(TIB, &[]), fa(2 * TIB, &[])], "");
    let ctx = h.context();
    h.add_class(class("pure", "pure-provisioner", &[]));
    // Large enough that, once charged to the freer array 1, array 0 becomes the freer one.
    let claim = pvc("big", "pure", "1536Gi");
    h.add_claim(&claim);
    let name = Harness::volume_name(&claim);

    h.fake.fail_next(Method::POST, "/persistentvolumes", 500);
    provision_claim(&claim, &ctx)
        .await
        .expect_err("PV create fails");
    assert!(h.flash_array(1).get_volume(&name).is_ok());

    // Same process: its own attempt is remembered, so the name is looked up before placement
    // (which now prefers array 0) could create a second volume.
    let outcome = provision_claim(&claim, &ctx).await.expect("completes");
    assert_reused_on(&h, &outcome, &claim, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_left_on_a_less_free_array_is_adopted_not_duplicated() {
    let h = Harness::start(&[fa(TIB, &[]), fa(5 * TIB, &[])], "");
    let ctx = h.context();
    h.add_class(class("pure", "pure-provisioner", &[]));
    let claim = pvc("data", "pure", "2Gi");
    let name = Harness::volume_name(&claim);
    // An earlier process put it on array 0 (placement now prefers array 1).
    h.flash_array(0)
        .create_volume(&name, 2 << 30, &Qos::default())
        .expect("create");

    let outcome = provision_claim(&claim, &ctx).await.expect("completes");
    assert_reused_on(&h, &outcome, &claim, 0);
    let pv = h.pv_of(&claim).expect("PV");
    assert_eq!(
        pv.spec.and_then(|s| s.capacity).expect("capacity")["storage"].0,
        "2Gi"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_array_blocks_new_volumes_but_not_deletes_elsewhere() {
    let mut h = Harness::start(&[fa(TIB, &[]), fa(5 * TIB, &[])], "");
    h.add_class(class("pure", "pure-provisioner", &[]));
    let (claim, pv) = provision_one(&h, &h.context(), "pure").await;
    assert!(
        h.flash_array(1)
            .get_volume(&Harness::volume_name(&claim))
            .is_ok()
    );
    h.sims.remove(0).stop();
    let ctx = h.context();

    // Creating could duplicate a volume the silent array may hold: refuse, say which array.
    let lookups = || {
        let stats = h.sims[0].stats();
        stats.calls.get("GET volume/{name}").copied().unwrap_or(0)
    };
    let asked_before = lookups();
    let waiting = pvc("waiting", "pure", "1Gi");
    let err = provision_claim(&waiting, &ctx)
        .await
        .expect_err("array 0 cannot answer");
    assert!(err.message.contains("cannot check"), "{}", err.message);
    // Array 0 cannot be listed, so it may hold the name from an earlier process: the name is
    // looked up on every array at once (one round trip, not one per array), so array 1 was asked
    // although array 0, first in order, could not answer.
    assert_eq!(lookups(), asked_before + 1);
    assert!(
        h.flash_array(1)
            .get_volume(&Harness::volume_name(&waiting))
            .is_err()
    );

    // Deleting a volume whose PV names array 1 by id goes ahead.
    h.release(&pv);
    let released = h.fake.get::<PersistentVolume>(None, &pv).expect("pv");
    let outcome = reclaim_volume(&released, &ctx).await.expect("deletes");
    assert!(
        matches!(outcome, VolumeOutcome::Deleted { array: Some(_) }),
        "{outcome:?}"
    );
}
