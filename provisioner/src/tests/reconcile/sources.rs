//! Claims with a source: a restore from a snapshot (PSO's annotation), a clone
//! (`spec.dataSource`), an adopted array object; their refusals, and a crash between the array
//! copy and the PV create.

use k8s_openapi::api::core::v1::{PersistentVolumeClaimStatus, TypedLocalObjectReference};

use flashvol_arraysim::{FaultAction, FaultRule, Faults};

use super::*;
use crate::decide::source::{ANN_ADOPT, ANN_ADOPTED, ANN_RESTORE};
use crate::tests::fixtures::annotated_pvc;

/// A claim whose PV the PV controller has bound: `volumeName` set, phase `Bound`.
fn bind(h: &Harness, claim: &PersistentVolumeClaim) -> PersistentVolumeClaim {
    let pv = h.pv_of(claim).expect("PV");
    let mut bound = claim.clone();
    bound.spec.get_or_insert_default().volume_name = pv.metadata.name;
    bound.status = Some(PersistentVolumeClaimStatus {
        phase: Some("Bound".into()),
        ..Default::default()
    });
    h.add_claim(&bound);
    bound
}

fn clone_of(name: &str, size: &str, source: &str) -> PersistentVolumeClaim {
    let mut claim = pvc(name, "pure", size);
    claim.spec.get_or_insert_default().data_source = Some(TypedLocalObjectReference {
        api_group: None,
        kind: "PersistentVolumeClaim".into(),
        name: source.into(),
    });
    claim
}

/// A 2Gi claim `restored` annotated with `snapshot`, provisioned from it.
async fn restore_2gi(h: &Harness, ctx: &Context, snapshot: &str) -> PersistentVolumeClaim {
    let restored = annotated_pvc("restored", "pure", "2Gi", ANN_RESTORE, snapshot);
    h.add_claim(&restored);
    let outcome = provision_claim(&restored, ctx).await.expect("restores");
    assert!(
        matches!(&outcome, ClaimOutcome::Provisioned { array, .. } if array.contains(snapshot)),
        "{outcome:?}"
    );
    restored
}

/// A new process's pass over `claim` finishes the copy an earlier pass made.
async fn completes_with_the_earlier_copy(h: &Harness, claim: &PersistentVolumeClaim) {
    let outcome = provision_claim(claim, &h.context())
        .await
        .expect("completes");
    assert!(
        matches!(outcome, ClaimOutcome::Provisioned { reused: true, .. }),
        "{outcome:?}"
    );
}

fn array_volume(pv: &PersistentVolume) -> String {
    pv.spec
        .as_ref()
        .and_then(|s| s.flex_volume.as_ref())
        .and_then(|f| f.options.as_ref())
        .expect("options")[options::ARRAY_VOLUME]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_copies_the_snapshot_on_its_array_and_grows_a_bigger_claim() {
    let h = Harness::start(&[fa(TIB, &[]), fa(5 * TIB, &[])], "");
    let ctx = h.context();
    h.add_class(class("pure", "pure-provisioner", &[]));
    let (source, _) = provision_one(&h, &ctx, "pure").await;
    let volume = Harness::volume_name(&source);
    // Placement put the source on the emptier array 1; the copy must follow it there.
    let snapshot = h
        .flash_array(1)
        .create_snapshot(&volume, Some("883661"))
        .expect("snapshot");

    let restored = restore_2gi(&h, &ctx, &snapshot.name).await;
    let copy = h
        .flash_array(1)
        .get_volume(&Harness::volume_name(&restored))
        .expect("copy on the snapshot's array");
    assert_eq!(copy.size, 2 << 30, "grown to the claim's size");
    assert!(
        h.flash_array(0)
            .list_volumes("k8s-pvc-*", true)
            .expect("list")
            .is_empty()
    );
    let pv = h.pv_of(&restored).expect("PV");
    assert_eq!(array_volume(&pv), Harness::volume_name(&restored));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clone_copies_the_source_claims_volume_and_crashing_before_the_pv_leaves_one_volume() {
    let h = Harness::start(&[fa(TIB, &[])], "");
    h.add_class(class("pure", "pure-provisioner", &[]));
    let (source, _) = provision_one(&h, &h.context(), "pure").await;
    bind(&h, &source);
    let claim = clone_of("copy", "3Gi", "data");
    h.add_claim(&claim);
    let name = Harness::volume_name(&claim);

    // The first process copies, then dies at the PV create.
    let first = h.context();
    h.fake.fail_next(Method::POST, "/persistentvolumes", 500);
    let err = provision_claim(&claim, &first)
        .await
        .expect_err("PV create fails");
    assert_eq!(err.reason, "kubernetes");
    assert!(h.flash_array(0).get_volume(&name).is_ok(), "copied");
    drop(first);

    completes_with_the_earlier_copy(&h, &claim).await;
    let volumes = h
        .flash_array(0)
        .list_volumes("k8s-pvc-*", true)
        .expect("list");
    assert_eq!(volumes.len(), 2, "the source and one copy: {volumes:?}");
    assert_eq!(
        h.flash_array(0).get_volume(&name).expect("copy").size,
        3 << 30
    );
    assert!(h.pv_of(&claim).is_some());
}

fn file_class(h: &Harness) {
    h.add_class(class(
        "pure",
        "pure-provisioner",
        &[
            ("backend", "file"),
            ("exportRules", "10.0.0.0/8(rw,no_root_squash)"),
        ],
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flashblade_restore_copies_the_file_system_snapshot_with_the_claims_settings() {
    let h = Harness::start(&[fb(TIB, &[])], "");
    let ctx = h.context();
    file_class(&h);
    let (source, _) = provision_one(&h, &ctx, "pure").await;
    let fs = Harness::volume_name(&source);
    let snapshot = h
        .flash_blade(0)
        .create_snapshot(&fs, None)
        .expect("snapshot");

    let small = annotated_pvc("small", "pure", "512Mi", ANN_RESTORE, &snapshot.name);
    h.add_claim(&small);
    let err = provision_claim(&small, &ctx).await.expect_err("too small");
    assert!(err.message.contains("less than the 1Gi"), "{}", err.message);

    let restored = restore_2gi(&h, &ctx, &snapshot.name).await;
    let copy = h
        .flash_blade(0)
        .get_file_system(&Harness::volume_name(&restored))
        .expect("copy");
    assert_eq!(copy.provisioned, 2 << 30);
    assert_eq!(copy.nfs.rules, "10.0.0.0/8(rw,no_root_squash)");
    assert!(copy.nfs.v3_enabled && copy.nfs.v4_1_enabled);
    let pv = h.pv_of(&restored).expect("PV");
    assert_eq!(array_volume(&pv), copy.name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flashblade_clone_copies_through_a_snapshot_it_drops_even_across_a_crash() {
    let h = Harness::start(&[fb(TIB, &[])], "");
    file_class(&h);
    let (source, _) = provision_one(&h, &h.context(), "pure").await;
    bind(&h, &source);
    let source_fs = Harness::volume_name(&source);
    let claim = clone_of("copy", "3Gi", "data");
    h.add_claim(&claim);
    let name = Harness::volume_name(&claim);

    // The first process copies, then dies before it can drop the clone's snapshot.
    let first = h.context();
    h.sims[0].set_faults(Faults {
        rules: vec![FaultRule {
            method: Some("DELETE".into()),
            path: "/api/*/file-system-snapshots".into(),
            count: 1,
            // A definite refusal: a dropped connection would just be retried.
            action: FaultAction::Status { status: 400 },
        }],
        ..Faults::default()
    });
    let err = provision_claim(&claim, &first)
        .await
        .expect_err("snapshot drop fails");
    assert_eq!(err.reason, "array", "{err:?}");
    assert!(
        err.message.contains("cannot drop its snapshot"),
        "{}",
        err.message
    );
    assert!(h.flash_blade(0).get_file_system(&name).is_ok(), "copied");
    let leftover = h.flash_blade(0).list_snapshots(&source_fs).expect("list");
    assert_eq!(leftover.len(), 1, "{leftover:?}");
    drop(first);

    completes_with_the_earlier_copy(&h, &claim).await;
    let all = h
        .flash_blade(0)
        .list_file_systems("k8s-pvc-*")
        .expect("list");
    assert_eq!(all.len(), 2, "the source and one copy: {all:?}");
    assert_eq!(
        h.flash_blade(0)
            .get_file_system(&name)
            .expect("copy")
            .provisioned,
        3 << 30
    );
    let left = h.flash_blade(0).list_snapshots(&source_fs).expect("list");
    assert!(left.is_empty(), "the clone's snapshot is dropped: {left:?}");
    assert!(h.pv_of(&claim).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flashblade_older_than_rest_1_9_refuses_a_copy_by_name() {
    let h = Harness::start(&[fb(TIB, &[])], "");
    h.sims[0].set_api_versions(Some(vec!["1.8".into(), "1.8.1".into()]));
    let ctx = h.context();
    file_class(&h);
    let (source, _) = provision_one(&h, &ctx, "pure").await;
    let snapshot = h
        .flash_blade(0)
        .create_snapshot(&Harness::volume_name(&source), None)
        .expect("snapshot");
    let restored = annotated_pvc("restored", "pure", "1Gi", ANN_RESTORE, &snapshot.name);
    h.add_claim(&restored);
    let err = provision_claim(&restored, &ctx).await.expect_err("refused");
    assert!(
        err.message.contains("needs FlashBlade REST 1.9"),
        "{}",
        err.message
    );
    assert!(h.pv_of(&restored).is_none());
    assert_eq!(
        h.flash_blade(0)
            .list_file_systems("k8s-pvc-*")
            .expect("list")
            .len(),
        1,
        "only the source"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_sources_are_events_and_never_a_blank_volume() {
    let h = Harness::start(&[fa(TIB, &[]), fb(TIB, &[])], "");
    let ctx = h.context();
    h.add_class(class("pure", "pure-provisioner", &[]));
    h.add_class(class(
        "pure-file",
        "pure-provisioner",
        &[("backend", "file")],
    ));
    let (source, _) = provision_one(&h, &ctx, "pure").await;
    let snapshot = h
        .flash_array(0)
        .create_snapshot(&Harness::volume_name(&source), None)
        .expect("snapshot");

    let cases = [
        (
            annotated_pvc("small", "pure", "512Mi", ANN_RESTORE, &snapshot.name),
            "less than the 1Gi",
        ),
        (
            annotated_pvc("foreign", "pure", "1Gi", ANN_RESTORE, "oracle-prod.nightly"),
            "not a volume flashvol manages",
        ),
        (
            annotated_pvc(
                "gone",
                "pure",
                "1Gi",
                ANN_RESTORE,
                "k8s-pvc-70c5d7f4-3a8b-4d6e-9f10-1234567890ab.1",
            ),
            "snapshot k8s-pvc-70c5d7f4",
        ),
        (
            annotated_pvc("blade", "pure-file", "1Gi", ANN_RESTORE, &snapshot.name),
            "does not exist on any configured",
        ),
        (clone_of("unbound", "1Gi", "data"), "not bound"),
        (
            clone_of("nothing", "1Gi", "no-such-claim"),
            "does not exist",
        ),
        (
            annotated_pvc("adopt", "pure", "1Gi", ANN_ADOPT, "legacy-db"),
            "allowAdoption",
        ),
    ];
    for (claim, expected) in &cases {
        h.add_claim(claim);
        let err = provision_claim(claim, &ctx).await.expect_err("refused");
        assert_eq!(err.reason, "claim", "{err:?}");
        assert!(
            err.message.contains(expected),
            "{expected:?}: {}",
            err.message
        );
        assert!(h.pv_of(claim).is_none());
    }
    assert_eq!(
        h.flash_array(0)
            .list_volumes("k8s-pvc-*", true)
            .expect("list")
            .len(),
        1,
        "only the source"
    );
    assert!(
        h.flash_blade(0)
            .list_file_systems("k8s-pvc-*")
            .expect("list")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adopted_volume_keeps_its_name_and_size_is_retained_and_is_adopted_once() {
    let h = adoption_harness(5 << 30);
    let ctx = h.context();

    let claim = annotated_pvc("db", "adopting", "4Gi", ANN_ADOPT, "legacy-db");
    h.add_claim(&claim);
    provision_claim(&claim, &ctx).await.expect("adopts");
    let pv = h.pv_of(&claim).expect("PV");
    assert_eq!(array_volume(&pv), "legacy-db");
    assert_eq!(
        pv.metadata.annotations.as_ref().expect("annotations")[ANN_ADOPTED],
        "legacy-db"
    );
    let spec = pv.spec.as_ref().expect("spec");
    assert_eq!(
        spec.persistent_volume_reclaim_policy.as_deref(),
        Some("Retain")
    );
    assert_eq!(
        spec.capacity.as_ref().expect("capacity")["storage"].0,
        "5Gi"
    );
    assert!(
        h.flash_array(0)
            .list_volumes("k8s-pvc-*", true)
            .expect("list")
            .is_empty(),
        "nothing created"
    );

    let second = annotated_pvc("db-again", "adopting", "1Gi", ANN_ADOPT, "legacy-db");
    h.add_claim(&second);
    let err = provision_claim(&second, &ctx).await.expect_err("in use");
    assert!(
        err.message.contains("already the volume of PV"),
        "{}",
        err.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_claims_adopting_one_volume_at_once_get_one_pv() {
    let h = adoption_harness(1 << 30);
    let ctx = h.context();
    // Slow arrays keep both passes between their "no PV names it" check and their PV create at
    // the same time, unless they are serialized.
    h.sims[0].set_faults(Faults {
        latency_ms: 150,
        ..Faults::default()
    });
    let one = annotated_pvc("one", "adopting", "1Gi", ANN_ADOPT, "legacy-db");
    let two = annotated_pvc("two", "adopting", "1Gi", ANN_ADOPT, "legacy-db");
    h.add_claim(&one);
    h.add_claim(&two);
    let (a, b) = tokio::join!(provision_claim(&one, &ctx), provision_claim(&two, &ctx));
    h.sims[0].set_faults(Faults::default());
    let refusals: Vec<String> = [a, b]
        .into_iter()
        .filter_map(|r| r.err().map(|e| e.message))
        .collect();
    assert_eq!(refusals.len(), 1, "exactly one claim refused: {refusals:?}");
    assert!(
        refusals[0].contains("already the volume of PV"),
        "{refusals:?}"
    );
    let pvs = [h.pv_of(&one), h.pv_of(&two)];
    assert_eq!(pvs.iter().flatten().count(), 1, "one PV names legacy-db");
}

/// A FlashArray holding an administrator's volume `legacy-db` of `bytes`, and the class
/// `adopting` that allows adoption.
fn adoption_harness(bytes: u64) -> Harness {
    let h = Harness::start(&[fa(TIB, &[])], "");
    h.add_class(class(
        "adopting",
        "pure-provisioner",
        &[("allowAdoption", "true")],
    ));
    h.flash_array(0)
        .create_volume("legacy-db", bytes, &Qos::default())
        .expect("an administrator's volume");
    h
}
