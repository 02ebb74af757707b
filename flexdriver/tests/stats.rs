//! Call-out statistics as kubelet's calls leave them on the node: the driver binary, run as
//! kubelet runs it, counts each mount and unmount (and the installer's collect) in
//! `node.statsFile` by reason.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use serde_json::{Value, json};
use support::*;

const UID: &str = "7a1c2a8e-0000-4000-8000-0000000000c1";

fn counts(stats_file: &std::path::Path) -> Value {
    serde_json::from_str::<Value>(&std::fs::read_to_string(stats_file).unwrap()).unwrap()["calls"]
        .clone()
}

/// A fabric whose node settings name a statistics file (in a temp dir the caller keeps).
fn counting_fabric() -> (tempfile::TempDir, std::path::PathBuf, Fabric) {
    let stats_dir = tempfile::tempdir().unwrap();
    let stats_file = stats_dir.path().join("stats.json");
    let fab = Fabric::with(FabricOptions {
        node: json!({"statsFile": stats_file}),
        ..FabricOptions::default()
    });
    (stats_dir, stats_file, fab)
}

#[test]
fn a_refused_mount_is_counted_by_its_reason_and_the_reply_is_unchanged() {
    let (_stats_dir, stats_file, fab) = counting_fabric();
    // Not a kubelet pod volume dir: refused as a bad request, before any array call.
    let outcome = fab.flex(&["mount", "/not/a/pod/dir", &file_options(&fab, "pvc-x", &[])]);
    outcome.assert_failure();
    assert_eq!(counts(&stats_file)["mount"], json!({"request": 1}));
    let again = fab.flex(&["mount", "/not/a/pod/dir", &file_options(&fab, "pvc-x", &[])]);
    assert_eq!(
        again.message(),
        outcome.message(),
        "counting changes no reply"
    );
    assert_eq!(counts(&stats_file)["mount"], json!({"request": 2}));
}

#[test]
fn a_mount_the_array_could_not_answer_counts_as_array_and_one_it_answered_as_refused() {
    let (_stats_dir, stats_file, fab) = counting_fabric();
    let mount = |pv: &str| {
        let pod = fab.pod_dir(UID, pv);
        fab.flex(&[
            "mount",
            pod.to_str().unwrap(),
            &block_options(&fab, pv, &[]),
        ])
        .assert_failure();
    };
    // The array answers that it holds no such volume: the call is refused.
    mount("pvc-c1111111-2222-4333-8444-555555555555");
    assert_eq!(counts(&stats_file)["mount"], json!({"refused": 1}));
    // The array drops every call, so which array holds the volume cannot be told: the array
    // failed, not the request.
    let pv = "pvc-c2111111-2222-4333-8444-555555555555";
    fab.create_block_volume(pv, GIB);
    fab.drop_every_fa_call();
    mount(pv);
    assert_eq!(
        counts(&stats_file)["mount"],
        json!({"refused": 1, "array": 1})
    );
}

#[test]
fn without_a_stats_file_nothing_is_written() {
    let fab = Fabric::new();
    fab.flex(&["mount", "/not/a/pod/dir", &file_options(&fab, "pvc-x", &[])])
        .assert_failure();
    let written: Vec<_> = std::fs::read_dir(fab.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("stats"))
        .collect();
    assert!(written.is_empty());
}

#[test]
fn successful_mounts_and_unmounts_are_counted_with_their_durations() {
    if skip_unless_root() {
        return;
    }
    let (_stats_dir, stats_file, fab) = counting_fabric();
    let pv = "pvc-c1111111-2222-4333-8444-555555555555";
    fab.create_file_system(pv);
    let pod = fab.pod_dir(UID, pv);
    fab.flex(&["mount", pod.to_str().unwrap(), &file_options(&fab, pv, &[])])
        .assert_success();
    fab.flex(&["unmount", pod.to_str().unwrap()])
        .assert_success();
    let stats: Value =
        serde_json::from_str(&std::fs::read_to_string(&stats_file).unwrap()).unwrap();
    assert_eq!(
        stats["calls"],
        json!({"mount": {"success": 1}, "unmount": {"success": 1}})
    );
    let counts = stats["durations"]["mount"]["success"]["counts"]
        .as_array()
        .unwrap();
    assert_eq!(counts.iter().filter_map(Value::as_u64).sum::<u64>(), 1);
}

#[test]
fn the_installers_collect_is_counted_by_its_reason_like_kubelets_call_outs() {
    let (_stats_dir, stats_file, fab) = counting_fabric();
    let root = fab.kubelet_root.to_str().unwrap();
    fab.flex(&["collect", root, "pure/flex"]).assert_success();
    // Not <vendor>/<driver>: refused as a bad request.
    fab.flex(&["collect", root, "pure"]).assert_failure();
    assert_eq!(
        counts(&stats_file)["collect"],
        json!({"success": 1, "request": 1})
    );
}
