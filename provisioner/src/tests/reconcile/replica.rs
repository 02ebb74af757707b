//! Replica restores (issue 18): a claim naming a source array, protection group and volume is a
//! copy of the newest completed replicated snapshot that contains the volume, on the array that
//! holds it, grown to the claim; an event names the snapshot and its age. Refusals leave nothing.

use std::os::unix::fs::FileExt;

use super::*;
use crate::decide::replica::{ANN_REPLICA_ARRAY, ANN_REPLICA_GROUP, ANN_REPLICA_VOLUME};
use flashvol_arraysim::Faults;
use serde_json::json;

const SOURCE_VOLUME: &str = "k8s-pvc-0001";

fn replica_claim(name: &str, size: &str, volume: &str) -> PersistentVolumeClaim {
    let mut claim = pvc(name, "pure-block", size);
    let annotations = claim.metadata.annotations.get_or_insert_default();
    for (key, value) in [
        (ANN_REPLICA_ARRAY, "site-a"),
        (ANN_REPLICA_GROUP, "daily"),
        (ANN_REPLICA_VOLUME, volume),
    ] {
        annotations.insert(key.into(), value.into());
    }
    claim
}

/// Delivers `<site-a>:daily.<n>` to the array: the listed volumes, 1 GiB each, with `data`.
fn deliver(
    sim: &SimHandle,
    age_seconds: u64,
    progress: f64,
    volumes: &[&str],
    data: &std::path::Path,
) {
    let volumes: Vec<_> = volumes
        .iter()
        .map(|v| json!({"name": v, "size": 1u64 << 30, "data": data}))
        .collect();
    sim.admin(
        "POST",
        "replicated-snapshots",
        &json!({"source_array": "site-a", "pgroup": "daily", "age_seconds": age_seconds,
                "progress": progress, "volumes": volumes}),
    )
    .expect("replicated snapshot delivered");
}

fn data_file(dir: &tempfile::TempDir, text: &[u8]) -> std::path::PathBuf {
    let path = dir.path().join(format!("data-{}", text.len()));
    let file = std::fs::File::create(&path).expect("data file");
    file.set_len(1 << 30).expect("size");
    file.write_all_at(text, 4096).expect("write");
    path
}

fn no_claim_volumes(h: &Harness) -> bool {
    (0..h.sims.len()).all(|i| {
        h.flash_array(i)
            .list_volumes("k8s-pvc-*", true)
            .expect("list")
            .is_empty()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_completed_snapshot_with_the_volume_is_copied_grown_and_named_with_its_age() {
    let h = Harness::start(&[fa(4 * TIB, &[]), fa(TIB, &[])], "");
    let dir = tempfile::tempdir().expect("tempdir");
    let old = data_file(&dir, b"as of three hours ago");
    let newer = data_file(&dir, b"newer");
    // On the "cloud" array: .1 complete with the volume, .2 complete without it (another
    // volume only), .3 with it but still in transfer.
    deliver(&h.sims[1], 3 * 3600 + 600, 1.0, &[SOURCE_VOLUME], &old);
    deliver(&h.sims[1], 3600, 1.0, &["k8s-pvc-0002"], &newer);
    deliver(&h.sims[1], 60, 0.5, &[SOURCE_VOLUME], &newer);
    let ctx = h.context();
    h.add_class(class("pure-block", "pure-provisioner", &[]));
    let claim = replica_claim("restored", "2Gi", SOURCE_VOLUME);
    h.add_claim(&claim);

    let outcome = provision_claim(&claim, &ctx).await.expect("restores");
    assert!(
        matches!(outcome, ClaimOutcome::Provisioned { reused: false, .. }),
        "{outcome:?}"
    );
    let name = Harness::volume_name(&claim);
    let volume = h
        .flash_array(1)
        .get_volume(&name)
        .expect("on the cloud array");
    assert_eq!(volume.size, 2 << 30, "grown to the claim");
    assert_eq!(volume.source.as_deref(), Some("site-a:k8s-pvc-0001"));
    let state = h.sims[1]
        .admin("GET", "state", &json!(null))
        .expect("state");
    let path = state["volumes"][&name]["path"].as_str().expect("path");
    let mut read = [0u8; 21];
    std::fs::File::open(path)
        .expect("backing file")
        .read_exact_at(&mut read, 4096)
        .expect("read");
    assert_eq!(&read, b"as of three hours ago");

    let events = h.events(&ctx, "RestoringReplica").await;
    let [event] = events.as_slice() else {
        panic!("one RestoringReplica event: {events:?}")
    };
    assert!(
        event.contains("replicated snapshot site-a:daily.1 on FlashArray"),
        "{event}"
    );
    assert!(event.contains("taken 3 h "), "{event}");
    assert!(
        event.contains("skipped 1 snapshot(s) still in transfer"),
        "{event}"
    );
    assert!(
        event.contains("1 newer snapshot(s) without the volume"),
        "{event}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_refusals_are_events_and_leave_nothing_behind() {
    let h = Harness::start(&[fa(TIB, &[])], "");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = data_file(&dir, b"x");
    let ctx = h.context();
    h.add_class(class("pure-block", "pure-provisioner", &[]));
    let refused = |claim: PersistentVolumeClaim| {
        h.add_claim(&claim);
        let ctx = &ctx;
        async move { provision_claim(&claim, ctx).await.expect_err("refused") }
    };

    let err = refused(replica_claim("nowhere", "1Gi", SOURCE_VOLUME)).await;
    assert!(
        err.message
            .contains("no FlashArray holds replicated snapshots of protection group site-a:daily"),
        "{}",
        err.message
    );

    deliver(&h.sims[0], 60, 0.2, &[SOURCE_VOLUME], &data);
    let err = refused(replica_claim("in-transfer", "1Gi", SOURCE_VOLUME)).await;
    assert!(
        err.message.contains("no completed replicated snapshot"),
        "{}",
        err.message
    );
    assert!(err.message.contains("1 in transfer"), "{}", err.message);

    deliver(&h.sims[0], 600, 1.0, &[SOURCE_VOLUME], &data);
    let err = refused(replica_claim("not-in-group", "1Gi", "k8s-pvc-0009")).await;
    assert!(
        err.message.contains("contains volume k8s-pvc-0009"),
        "{}",
        err.message
    );

    let err = refused(replica_claim("too-small", "512Mi", SOURCE_VOLUME)).await;
    assert!(
        err.message
            .contains("less than the 1Gi of replicated snapshot"),
        "{}",
        err.message
    );

    h.sims[0].set_faults(unavailable("GET", "/api/*/pgroup/*"));
    let err = refused(replica_claim("unreachable", "1Gi", SOURCE_VOLUME)).await;
    assert_eq!(err.reason, "array");
    assert!(
        err.message.contains("cannot list replicated snapshots"),
        "{}",
        err.message
    );
    h.sims[0].set_faults(Faults::default());

    assert!(no_claim_volumes(&h));
    let failed = h.events(&ctx, "ProvisioningFailed").await;
    assert_eq!(failed.len(), 5, "{failed:?}");
}
