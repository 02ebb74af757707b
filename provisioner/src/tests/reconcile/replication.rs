//! Replicated classes (StorageClass parameter `protectionGroup`): new volumes go only where the
//! administrator's group is live and join it; a missing or destroyed group fails the claim and
//! leaves no volume behind; an array that cannot answer the join keeps the volume for the next
//! pass.

use super::*;
use flashvol_arraysim::Faults;
use serde_json::json;

fn replicated_class() -> StorageClass {
    class(
        "pure-replicated",
        "pure-provisioner",
        &[("protectionGroup", "site-a-daily")],
    )
}

fn members(h: &Harness, array: usize) -> Vec<String> {
    h.flash_array(array)
        .get_protection_group("site-a-daily")
        .expect("group")
        .volumes
}

fn volumes_left(h: &Harness, array: usize) -> usize {
    h.flash_array(array)
        .list_volumes("k8s-pvc-*", true)
        .expect("list")
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_volumes_go_only_where_the_group_is_live_and_join_it() {
    // The bigger array would win on free space, but only the other one has the group.
    let h = Harness::start(&[fa(4 * TIB, &[]), fa(TIB, &[])], "");
    h.sims[1]
        .administer("POST", "pgroup/site-a-daily", &json!({}))
        .expect("administrator makes the group");
    let ctx = h.context();
    h.add_class(replicated_class());
    let (first, _) = provision_one(&h, &ctx, "pure-replicated").await;
    let second = pvc("more", "pure-replicated", "1Gi");
    h.add_claim(&second);
    provision_claim(&second, &ctx).await.expect("provisions");

    let names = [Harness::volume_name(&first), Harness::volume_name(&second)];
    assert_eq!(members(&h, 1), names);
    assert_eq!(volumes_left(&h, 0), 0);
    let pv = h.pv_of(&first).expect("PV");
    let opts = pv
        .spec
        .and_then(|s| s.flex_volume)
        .and_then(|f| f.options)
        .expect("options");
    assert_eq!(opts[options::PROTECTION_GROUP], "site-a-daily");
    assert_eq!(opts[options::ARRAY_ENDPOINT], h.sims[1].endpoint());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_destroyed_group_fails_the_claim_and_leaves_no_volume() {
    let h = Harness::start(&[fa(TIB, &[])], "");
    let ctx = h.context();
    h.add_class(replicated_class());
    let claim = pvc("data", "pure-replicated", "1Gi");
    h.add_claim(&claim);

    let err = provision_claim(&claim, &ctx).await.expect_err("no group");
    assert_eq!(err.reason, "class");
    assert!(
        err.message.contains("absent on FlashArray"),
        "{}",
        err.message
    );
    assert_eq!(volumes_left(&h, 0), 0);

    h.sims[0]
        .administer("POST", "pgroup/site-a-daily", &json!({}))
        .expect("group");
    h.sims[0]
        .administer("DELETE", "pgroup/site-a-daily", &json!({}))
        .expect("destroyed");
    let err = provision_claim(&claim, &ctx).await.expect_err("destroyed");
    assert!(
        err.message.contains("destroyed on FlashArray"),
        "{}",
        err.message
    );
    assert_eq!(volumes_left(&h, 0), 0);
    assert!(h.pv_of(&claim).is_none());
    let events = h.events(&ctx, "ProvisioningFailed").await;
    assert!(
        events.iter().any(|e| e.contains("protectionGroup")),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_whose_group_vanished_since_an_earlier_attempt_is_removed() {
    let h = Harness::start(&[fa(TIB, &[])], "");
    let ctx = h.context();
    h.add_class(replicated_class());
    let claim = pvc("data", "pure-replicated", "1Gi");
    h.add_claim(&claim);
    // An earlier pass created the volume and crashed before it joined; then the group went.
    h.flash_array(0)
        .create_volume(&Harness::volume_name(&claim), 1 << 30, &Qos::default())
        .expect("earlier attempt");

    let err = provision_claim(&claim, &ctx).await.expect_err("no group");
    assert_eq!(err.reason, "class");
    assert!(
        err.message.contains("nothing is left behind"),
        "{}",
        err.message
    );
    assert_eq!(volumes_left(&h, 0), 0, "destroyed and eradicated");
    assert!(h.pv_of(&claim).is_none());

    // Once the administrator made the group, the claim provisions with a fresh volume.
    h.sims[0]
        .administer("POST", "pgroup/site-a-daily", &json!({}))
        .expect("group");
    provision_claim(&claim, &ctx).await.expect("provisions");
    assert_eq!(members(&h, 0), [Harness::volume_name(&claim)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_the_array_does_not_answer_keeps_the_volume_and_the_next_pass_joins() {
    let h = Harness::start(&[fa(TIB, &[])], "");
    h.sims[0]
        .administer("POST", "pgroup/site-a-daily", &json!({}))
        .expect("group");
    let ctx = h.context();
    h.add_class(replicated_class());
    let claim = pvc("data", "pure-replicated", "1Gi");
    h.add_claim(&claim);
    // More failures than the client's retries: the pass gives up on the join.
    h.sims[0].set_faults(unavailable("PUT", "/api/*/pgroup/*"));
    let err = provision_claim(&claim, &ctx).await.expect_err("join fails");
    assert_eq!(err.reason, "array");
    assert!(
        err.message.contains("joins on the next attempt"),
        "{}",
        err.message
    );
    assert_eq!(volumes_left(&h, 0), 1, "the volume stays");

    h.sims[0].set_faults(Faults::default());
    let outcome = provision_claim(&claim, &ctx).await.expect("provisions");
    assert!(
        matches!(outcome, ClaimOutcome::Provisioned { reused: true, .. }),
        "{outcome:?}"
    );
    assert_eq!(members(&h, 0), [Harness::volume_name(&claim)]);
}
