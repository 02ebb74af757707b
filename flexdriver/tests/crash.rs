//! Crash consistency: the driver is killed right after each step (`FLASHVOL_FLEX_CRASH_AFTER`),
//! then the call is retried as kubelet would; it must converge to the same state as an
//! uninterrupted call, without reformatting or leaving anything behind.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use flashvol_flexdriver::runtime::crash::{
    BLOCK_EXPAND_STEPS, BLOCK_MOUNT_STEPS, FILE_EXPAND_STEPS, FILE_MOUNT_STEPS, UNMOUNT_STEPS,
};
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

/// kubelet's `expandfs` for a volume mounted in `pod`, grown to `new` bytes from `old`.
fn expandfs_args(pod: &std::path::Path, opts: &str, new: u64, old: u64) -> Vec<String> {
    vec![
        "expandfs".into(),
        opts.into(),
        String::new(),
        pod.to_str().unwrap().into(),
        new.to_string(),
        old.to_string(),
    ]
}

#[test]
fn an_expandfs_killed_after_any_step_converges_when_retried() {
    if skip_unless_root() {
        return;
    }
    for fs in ["xfs", "ext4"] {
        if fs == "ext4" && skip_unless_ext4_grows_online() {
            continue;
        }
        let fab = Fabric::new();
        let pv = "pvc-c5111111-2222-4333-8444-555555555555";
        fab.create_block_volume(pv, GIB);
        let pod = fab.pod_dir(UID, pv);
        let opts = block_options(&fab, pv, &[("kubernetes.io/fsType", fs)]);
        fab.flex(&["mount", pod.to_str().unwrap(), &opts])
            .assert_success();
        let sum = write_payload(&pod, "data", 6);
        let mut size = GIB;
        for step in BLOCK_EXPAND_STEPS {
            let (old, new) = (size, size + GIB);
            let args = expandfs_args(&pod, &opts, new, old);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            fab.flex_crashing_after(&args, step);
            fab.flex(&args).assert_success();
            assert_eq!(fab.block_volume_size(pv), new, "{fs}: array after {step}");
            let df = df_bytes(&pod);
            assert!(df > new - new / 10, "{fs}: df shows {df} after {step}");
            assert_eq!(
                read_checksum(&pod.join("data")),
                sum,
                "{fs}: data after {step}"
            );
            size = new;
        }
        fab.flex(&["unmount", pod.to_str().unwrap()])
            .assert_success();
        assert_released(&fab, pv);
    }
}

#[test]
fn a_file_expandfs_killed_after_any_step_converges_when_retried() {
    if skip_unless_root() {
        return;
    }
    let fab = Fabric::new();
    let pv = "pvc-c6111111-2222-4333-8444-555555555555";
    fab.create_file_system(pv);
    let pod = fab.pod_dir(UID, pv);
    let opts = file_options(&fab, pv, &[]);
    fab.flex(&["mount", pod.to_str().unwrap(), &opts])
        .assert_success();
    let mut size = GIB;
    for step in FILE_EXPAND_STEPS {
        let args = expandfs_args(&pod, &opts, size + GIB, size);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fab.flex_crashing_after(&args, step);
        fab.flex(&args).assert_success();
        size += GIB;
        let fs = fab
            .fb_client()
            .get_file_system(&format!("k8s-{pv}"))
            .unwrap();
        assert_eq!(fs.provisioned, size, "after {step}");
    }
    fab.flex(&["unmount", pod.to_str().unwrap()])
        .assert_success();
    assert!(fab.mounts().is_empty());
}
