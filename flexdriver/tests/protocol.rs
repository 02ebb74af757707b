//! kubelet's side of the contract, checked on the built binary: exactly one JSON document on
//! stdout, nothing on stderr, the right status and exit code, for good and bad input alike.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use std::process::Command;

use support::*;

fn run(args: &[&str], config: Option<&std::path::Path>) -> Outcome {
    let mut cmd = Command::new(flex_binary());
    cmd.args(args).env_clear().env("PATH", "/usr/bin:/bin");
    cmd.env(
        "FLASHVOL_FLEX_CONFIG",
        config.unwrap_or(std::path::Path::new("/nonexistent/flashvol.json")),
    );
    one_json_document(cmd.output().expect("runs"))
}

#[test]
fn init_declares_every_capability_without_needing_a_config() {
    let out = run(&["init"], None);
    out.assert_success();
    assert_eq!(
        out.reply["capabilities"],
        serde_json::json!({"attach": false, "selinuxRelabel": true, "supportsMetrics": true,
                           "fsGroup": false, "requiresFSResize": true})
    );
}

#[test]
fn other_call_outs_are_not_supported_with_exit_zero() {
    for call in [
        vec!["attach", "{}", "node1"],
        vec!["waitforattach", "/dev/x", "{}"],
        vec!["getvolumename", "{}"],
        vec!["expandvolume", "{}", "1", "2"],
        vec!["no-such-call-out"],
    ] {
        let out = run(&call, None);
        assert_eq!(out.status(), "Not supported", "{call:?}");
        assert_eq!(out.output.status.code(), Some(0));
    }
}

#[test]
fn garbage_arguments_get_a_failure_reply() {
    for args in [
        vec![],
        vec!["init", "extra"],
        vec!["mount"],
        vec!["mount", "relative/dir", "{}"],
        vec!["unmount"],
        vec!["unmount", "/a", "/b"],
        vec!["expandfs", "{}", "", "/a"],
        vec!["expandfs", "{}", "", "/a", "3Gi", "1Gi"],
        vec!["expandfs", "{}", "", "relative", "2", "1"],
    ] {
        let out = run(&args, None);
        out.assert_failure();
        assert!(!out.message().is_empty(), "{args:?}");
    }
}

#[test]
fn malformed_json_gets_a_failure_naming_the_problem() {
    let dir = "/var/lib/kubelet/pods/u/volumes/pure~flex/pvc-1";
    for (json, expect) in [
        ("{", "not valid JSON"),
        ("[1,2]", "JSON object"),
        (r#"{"backend": 5}"#, "\"backend\" must be a string"),
        ("", "not valid JSON"),
        (r#"{"backend":"block"} {"second":"doc"}"#, "not valid JSON"),
    ] {
        let out = run(&["mount", dir, json], None);
        out.assert_failure();
        assert!(out.message().contains(expect), "{json}: {}", out.message());
    }
}

#[test]
fn non_utf8_arguments_get_a_failure_reply() {
    use std::os::unix::ffi::OsStrExt;
    let junk = std::ffi::OsStr::from_bytes(b"{\"backend\":\"\xff\"}");
    let output = Command::new(flex_binary())
        .arg("mount")
        .arg("/var/lib/kubelet/pods/u/volumes/pure~flex/pvc-1")
        .arg(junk)
        .env_clear()
        .output()
        .expect("runs");
    let out = one_json_document(output);
    out.assert_failure();
    assert!(out.message().contains("UTF-8"), "{}", out.message());
}

#[test]
fn a_missing_or_broken_settings_file_is_a_failure_not_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pod = "/var/lib/kubelet/pods/u/volumes/pure~flex/pvc-1";
    let out = run(&["unmount", pod], None);
    out.assert_failure();
    assert!(
        out.message().contains("/nonexistent/flashvol.json"),
        "{}",
        out.message()
    );

    let bad = dir.path().join("flashvol.json");
    std::fs::write(&bad, r#"{"FlashArrays": [], "node": {"sysfsRot": "/sys"}}"#).expect("write");
    let out = run(
        &["mount", pod, r#"{"backend":"block","volumeName":"pvc-1"}"#],
        Some(&bad),
    );
    out.assert_failure();
    assert!(out.message().contains("sysfsRot"), "{}", out.message());
}

#[test]
fn bad_options_and_paths_are_refused_before_touching_anything() {
    let fab = Fabric::new();
    let pod = fab.pod_dir("u1", "pvc-1");
    let out = fab.flex(&[
        "mount",
        pod.to_str().unwrap(),
        r#"{"backend":"tape","volumeName":"pvc-1"}"#,
    ]);
    out.assert_failure();
    assert!(out.message().contains("tape"), "{}", out.message());
    let out = fab.flex(&[
        "mount",
        "/tmp/not-a-pod-dir",
        r#"{"backend":"block","volumeName":"pvc-1"}"#,
    ]);
    out.assert_failure();
    assert!(
        out.message().contains("not a pod volume dir"),
        "{}",
        out.message()
    );
    let out = fab.flex(&[
        "mount",
        pod.to_str().unwrap(),
        r#"{"backend":"block","volumeName":"pvc-1","kubernetes.io/readwrite":"sometimes"}"#,
    ]);
    out.assert_failure();
    assert!(fab.mounts().is_empty());
}

#[test]
fn a_missing_tool_is_named_in_the_failure() {
    let fab = Fabric::with(FabricOptions {
        node: serde_json::json!({"tools": {"iscsiadm": "/nonexistent/sbin/iscsiadm"}}),
        ..FabricOptions::default()
    });
    let pv = "pvc-0a111111-2222-4333-8444-555555555555";
    fab.create_block_volume(pv, GIB);
    let pod = fab.pod_dir("u1", pv);
    let out = fab.flex(&[
        "mount",
        pod.to_str().unwrap(),
        &block_options(&fab, pv, &[]),
    ]);
    out.assert_failure();
    assert!(out.message().contains("iscsiadm"), "{}", out.message());
    assert!(
        out.message().contains("node.tools.iscsiadm"),
        "{}",
        out.message()
    );
}

#[test]
fn a_panic_still_yields_exactly_one_failure_reply() {
    let fab = Fabric::new();
    let pod = fab.pod_dir("u1", "pvc-1");
    let out = fab.flex_env(
        &[
            "mount",
            pod.to_str().unwrap(),
            r#"{"backend":"block","volumeName":"pvc-1"}"#,
        ],
        &[("FLASHVOL_FLEX_PANIC_AFTER", "volume-locked")],
    );
    out.assert_failure();
    assert!(
        out.message().starts_with("internal error"),
        "{}",
        out.message()
    );
}
