//! Crash consistency: the driver is killed right after each step (`FLASHVOL_FLEX_CRASH_AFTER`),
//! then the call is retried as kubelet would; it must converge to the same state as an
//! uninterrupted call, without reformatting or leaving anything behind.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use flashvol_flexdriver::runtime::crash::{BLOCK_MOUNT_STEPS, FILE_MOUNT_STEPS, UNMOUNT_STEPS};
use support::*;

const UID: &str = "8b1c2a8e-0000-4000-8000-00000000000a";

#[track_caller]
fn assert_released(fab: &Fabric, pv: &str) {
    assert!(fab.mounts().is_empty(), "mounts left: {:?}", fab.mounts());
    assert!(
        fab.hosts_connected_to(&format!("k8s-{pv}")).is_empty(),
        "still connected"
    );
    assert!(!fab.record_path(pv).exists(), "record left behind");
}

#[test]
fn a_block_mount_killed_after_any_step_converges_when_retried() {
    if skip_unless_root() {
        return;
    }
    let fab = Fabric::new();
    let pv = "pvc-c2111111-2222-4333-8444-555555555555";
    fab.create_block_volume(pv, GIB);
    let pod = fab.pod_dir(UID, pv);
    let (pod_s, opts) = (pod.to_str().unwrap(), block_options(&fab, pv, &[]));
    let mut checksum = None;
    for step in BLOCK_MOUNT_STEPS {
        fab.flex_crashing_after(&["mount", pod_s, &opts], step);
        fab.flex(&["mount", pod_s, &opts]).assert_success();
        let staging = fab.mounted_at(&fab.staging_dir(pv)).expect("staged");
        assert_eq!(
            fab.mounted_at(&pod).expect("bound").dev,
            staging.dev,
            "after {step}"
        );
        match checksum {
            None => checksum = Some(write_payload(&pod, "data", 5)),
            Some(sum) => assert_eq!(
                read_checksum(&pod.join("data")),
                sum,
                "data survived {step}"
            ),
        }
        fab.flex(&["unmount", pod_s]).assert_success();
        assert_released(&fab, pv);
    }
    assert_eq!(
        fab.log_text().matches("formatting k8s-").count(),
        1,
        "formatted once"
    );
}

#[test]
fn an_unmount_killed_after_any_step_converges_when_retried() {
    if skip_unless_root() {
        return;
    }
    let fab = Fabric::new();
    let pv = "pvc-c3111111-2222-4333-8444-555555555555";
    let serial = fab.create_block_volume(pv, GIB);
    let pod = fab.pod_dir(UID, pv);
    let (pod_s, opts) = (pod.to_str().unwrap(), block_options(&fab, pv, &[]));
    for step in UNMOUNT_STEPS {
        fab.flex(&["mount", pod_s, &opts]).assert_success();
        fab.flex_crashing_after(&["unmount", pod_s], step);
        fab.flex(&["unmount", pod_s]).assert_success();
        assert_released(&fab, pv);
        assert!(
            fab.device_deleted(&serial),
            "device removed after a crash at {step}"
        );
    }
}

#[test]
fn a_file_mount_killed_after_any_step_converges_when_retried() {
    if skip_unless_root() {
        return;
    }
    let fab = Fabric::new();
    let pv = "pvc-c4111111-2222-4333-8444-555555555555";
    fab.create_file_system(pv);
    let pod = fab.pod_dir(UID, pv);
    let (pod_s, opts) = (pod.to_str().unwrap(), file_options(&fab, pv, &[]));
    for step in FILE_MOUNT_STEPS {
        fab.flex_crashing_after(&["mount", pod_s, &opts], step);
        fab.flex(&["mount", pod_s, &opts]).assert_success();
        assert_eq!(
            fab.mounts().iter().filter(|m| m.mount_point == pod).count(),
            1,
            "after {step}"
        );
        fab.flex(&["unmount", pod_s]).assert_success();
        assert!(fab.mounts().is_empty());
    }
}
