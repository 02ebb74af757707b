//! When the array fails the driver: a slow or unreachable array is a Failure within the deadline,
//! never a hang; a missing volume is named; a pod on a node that already staged the volume mounts
//! without the array.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::*;
use crate::{UID_A, UID_B};

#[test]
fn a_slow_array_fails_the_call_within_the_deadline() {
    if skip_unless_root() {
        return;
    }
    let fab = Fabric::with(FabricOptions {
        node: json!({"deadlines": {"arrayCallSeconds": 1}}),
        ..FabricOptions::default()
    });
    let pv = "pvc-d1111111-2222-4333-8444-555555555555";
    fab.create_block_volume(pv, GIB);
    fab.set_fa_latency(Duration::from_secs(30));
    let pod = fab.pod_dir(UID_A, pv);
    let started = Instant::now();
    let out = fab.flex(&[
        "mount",
        pod.to_str().unwrap(),
        &block_options(&fab, pv, &[]),
    ]);
    let took = started.elapsed();
    out.assert_failure();
    assert!(
        took < Duration::from_secs(15),
        "bounded by the deadline, took {took:?}"
    );
    assert!(fab.mounted_at(&pod).is_none());

    fab.set_fa_latency(Duration::ZERO);
    fab.flex(&[
        "mount",
        pod.to_str().unwrap(),
        &block_options(&fab, pv, &[]),
    ])
    .assert_success();
    fab.flex(&["unmount", pod.to_str().unwrap()])
        .assert_success();
}

#[test]
fn a_missing_volume_is_a_clear_failure() {
    let fab = Fabric::new();
    let pv = "pvc-e1111111-2222-4333-8444-555555555555";
    let pod = fab.pod_dir(UID_A, pv);
    let out = fab.flex(&[
        "mount",
        pod.to_str().unwrap(),
        &block_options(&fab, pv, &[]),
    ]);
    out.assert_failure();
    assert!(
        out.message().contains(&format!("k8s-{pv}")),
        "{}",
        out.message()
    );
    assert!(
        out.message().contains("does not exist"),
        "{}",
        out.message()
    );
}

#[test]
fn an_unreachable_array_is_a_failure_not_a_hang() {
    let fab = Fabric::with(FabricOptions {
        node: json!({"deadlines": {"arrayCallSeconds": 2}}),
        ..FabricOptions::default()
    });
    let pv = "pvc-f9111111-2222-4333-8444-555555555555";
    fab.create_block_volume(pv, GIB);
    fab.fa.set_faults(flashvol_arraysim::Faults {
        drop_rate: 1.0,
        ..flashvol_arraysim::Faults::default()
    });
    let pod = fab.pod_dir(UID_A, pv);
    let started = Instant::now();
    let out = fab.flex(&[
        "mount",
        pod.to_str().unwrap(),
        &block_options(&fab, pv, &[]),
    ]);
    out.assert_failure();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(
        out.message().contains(&fab.fa.endpoint()),
        "{}",
        out.message()
    );
    assert!(fab.mounts().is_empty());
}

#[test]
fn a_second_pod_on_the_node_mounts_even_while_the_array_is_slow() {
    if skip_unless_root() {
        return;
    }
    let fab = Fabric::with(FabricOptions {
        node: json!({"deadlines": {"arrayCallSeconds": 1}}),
        ..FabricOptions::default()
    });
    let pv = "pvc-fa111111-2222-4333-8444-555555555555";
    fab.create_block_volume(pv, GIB);
    let opts = block_options(&fab, pv, &[]);
    let (a, b) = (fab.pod_dir(UID_A, pv), fab.pod_dir(UID_B, pv));
    fab.flex(&["mount", a.to_str().unwrap(), &opts])
        .assert_success();
    // Already staged here: the bind needs nothing from the array.
    fab.set_fa_latency(Duration::from_secs(30));
    fab.flex(&["mount", b.to_str().unwrap(), &opts])
        .assert_success();
    assert!(fab.mounted_at(&b).is_some());
    fab.flex(&["unmount", b.to_str().unwrap()]).assert_success();
    fab.set_fa_latency(Duration::ZERO);
    fab.flex(&["unmount", a.to_str().unwrap()]).assert_success();
    assert!(fab.mounts().is_empty());
}
