//! The node side of a block volume: staged and formatted once, bind-mounted into each pod,
//! read-only when asked, fsGroup and mkfs options honoured, and unmounted without a trace, even
//! after kubelet lost the record, never touching another LUN.

use crate::support::*;
use crate::{UID_A, UID_B};

#[test]
fn block_volume_mounts_formats_and_unmounts_cleanly() {
    if skip_unless_root() {
        return;
    }
    let fab = Fabric::new();
    let pv = "pvc-11111111-2222-4333-8444-555555555555";
    let serial = fab.create_block_volume(pv, GIB);
    let pod = fab.pod_dir(UID_A, pv);
    let pod_s = pod.to_str().unwrap();

    fab.flex(&["mount", pod_s, &block_options(&fab, pv, &[])])
        .assert_success();

    let bind = fab.mounted_at(&pod).expect("pod dir is mounted");
    let staging = fab.mounted_at(&fab.staging_dir(pv)).expect("staging mount");
    assert_eq!(
        bind.dev, staging.dev,
        "the pod dir is a bind of the staging mount"
    );
    assert_eq!(staging.fs_type, "xfs");
    assert!(!bind.is_read_only());
    let conns = fab.admin_get(&fab.fa, &format!("connections?initiator={}", fab.iqn));
    assert_eq!(conns[0]["volume"], format!("k8s-{pv}"));
    assert_eq!(conns[0]["host"], format!("{}-flashvol", fab.node_name));
    write_payload(&pod, "hello", 1);

    fab.flex(&["unmount", pod_s]).assert_success();
    assert!(fab.mounted_at(&pod).is_none());
    assert!(fab.mounted_at(&fab.staging_dir(pv)).is_none());
    assert!(
        fab.hosts_connected_to(&format!("k8s-{pv}")).is_empty(),
        "disconnected on the array"
    );
    assert!(fab.device_deleted(&serial), "the SCSI device was deleted");
    assert!(!fab.record_path(pv).exists());
}

#[test]
fn a_volume_is_formatted_once_and_keeps_its_data_across_pods() {
    if skip_unless_root() {
        return;
    }
    let fab = Fabric::new();
    let pv = "pvc-21111111-2222-4333-8444-555555555555";
    fab.create_block_volume(pv, GIB);
    let opts = block_options(&fab, pv, &[]);
    let first = fab.pod_dir(UID_A, pv);
    fab.flex(&["mount", first.to_str().unwrap(), &opts])
        .assert_success();
    let sum = write_payload(&first, "data.bin", 7);
    fab.flex(&["unmount", first.to_str().unwrap()])
        .assert_success();

    let second = fab.pod_dir(UID_B, pv);
    fab.flex(&["mount", second.to_str().unwrap(), &opts])
        .assert_success();
    assert_eq!(
        read_checksum(&second.join("data.bin")),
        sum,
        "same data, not reformatted"
    );
    let mkfs_runs = fab.log_text().matches("formatting k8s-").count();
    assert_eq!(mkfs_runs, 1, "mkfs ran exactly once");
    let calls = std::fs::read_to_string(fab.state_dir.join("iscsiadm.calls")).expect("calls");
    assert_eq!(
        calls.matches("-o new").count(),
        1,
        "node record created once: {calls}"
    );
    assert_eq!(
        calls.matches("--login").count(),
        2,
        "logged in on each attach: {calls}"
    );
    fab.flex(&["unmount", second.to_str().unwrap()])
        .assert_success();
}

#[test]
fn two_pods_share_one_staging_mount_until_the_last_leaves() {
    if skip_unless_root() {
        return;
    }
    let fab = Fabric::new();
    let pv = "pvc-31111111-2222-4333-8444-555555555555";
    fab.create_block_volume(pv, GIB);
    let opts = block_options(&fab, pv, &[]);
    let (a, b) = (fab.pod_dir(UID_A, pv), fab.pod_dir(UID_B, pv));
    fab.flex(&["mount", a.to_str().unwrap(), &opts])
        .assert_success();
    fab.flex(&["mount", b.to_str().unwrap(), &opts])
        .assert_success();
    write_payload(&a, "shared", 3);
    assert!(
        b.join("shared").exists(),
        "both pods see the same file system"
    );
    let staged = fab
        .mounts()
        .iter()
        .filter(|m| m.mount_point == fab.staging_dir(pv))
        .count();
    assert_eq!(staged, 1, "one staging mount");

    fab.flex(&["unmount", a.to_str().unwrap()]).assert_success();
    assert!(
        fab.mounted_at(&fab.staging_dir(pv)).is_some(),
        "still used by pod B"
    );
    assert_eq!(fab.hosts_connected_to(&format!("k8s-{pv}")).len(), 1);
    assert!(b.join("shared").exists());

    fab.flex(&["unmount", b.to_str().unwrap()]).assert_success();
    assert!(fab.mounted_at(&fab.staging_dir(pv)).is_none());
    assert!(fab.hosts_connected_to(&format!("k8s-{pv}")).is_empty());
}

#[test]
fn read_only_mounts_are_read_only_binds() {
    if skip_unless_root() {
        return;
    }
    let fab = Fabric::new();
    let pv = "pvc-41111111-2222-4333-8444-555555555555";
    fab.create_block_volume(pv, GIB);
    let pod = fab.pod_dir(UID_A, pv);
    let opts = block_options(&fab, pv, &[("kubernetes.io/readwrite", "ro")]);
    fab.flex(&["mount", pod.to_str().unwrap(), &opts])
        .assert_success();
    assert!(fab.mounted_at(&pod).expect("mounted").is_read_only());
    assert!(
        std::fs::write(pod.join("x"), "x").is_err(),
        "writes are refused"
    );
    fab.flex(&["unmount", pod.to_str().unwrap()])
        .assert_success();
}

#[test]
fn repeated_calls_converge() {
    if skip_unless_root() {
        return;
    }
    let fab = Fabric::new();
    let pv = "pvc-51111111-2222-4333-8444-555555555555";
    fab.create_block_volume(pv, GIB);
    let pod = fab.pod_dir(UID_A, pv);
    let opts = block_options(&fab, pv, &[]);
    for _ in 0..3 {
        fab.flex(&["mount", pod.to_str().unwrap(), &opts])
            .assert_success();
    }
    let at_pod = fab.mounts().iter().filter(|m| m.mount_point == pod).count();
    assert_eq!(at_pod, 1, "no stacked mounts");
    for _ in 0..3 {
        fab.flex(&["unmount", pod.to_str().unwrap()])
            .assert_success();
    }
    assert!(fab.mounts().is_empty());
    assert!(fab.hosts_connected_to(&format!("k8s-{pv}")).is_empty());
}

#[test]
fn unmount_works_after_the_volume_record_is_lost() {
    if skip_unless_root() {
        return;
    }
    let fab = Fabric::new();
    let pv = "pvc-71111111-2222-4333-8444-555555555555";
    let serial = fab.create_block_volume(pv, GIB);
    let pod = fab.pod_dir(UID_A, pv);
    fab.flex(&[
        "mount",
        pod.to_str().unwrap(),
        &block_options(&fab, pv, &[]),
    ])
    .assert_success();
    std::fs::remove_file(fab.record_path(pv)).expect("record existed");

    // kubelet restarted: unmount gets the path only.
    fab.flex(&["unmount", pod.to_str().unwrap()])
        .assert_success();
    assert!(fab.mounts().is_empty());
    assert!(
        fab.hosts_connected_to(&format!("k8s-{pv}")).is_empty(),
        "found by its WWID"
    );
    assert!(fab.device_deleted(&serial));
}

#[test]
fn fs_group_owns_the_volume_root() {
    if skip_unless_root() {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let fab = Fabric::new();
    let pv = "pvc-81111111-2222-4333-8444-555555555555";
    fab.create_block_volume(pv, GIB);
    let pod = fab.pod_dir(UID_A, pv);
    let opts = block_options(&fab, pv, &[("kubernetes.io/mounterArgs.FsGroup", "3456")]);
    fab.flex(&["mount", pod.to_str().unwrap(), &opts])
        .assert_success();
    let meta = std::fs::metadata(&pod).expect("stat");
    assert_eq!(meta.gid(), 3456);
    assert_eq!(meta.mode() & 0o2070, 0o2070, "group rwx and setgid");
    fab.flex(&["unmount", pod.to_str().unwrap()])
        .assert_success();
}

#[test]
fn ext4_and_create_options_are_honoured() {
    if skip_unless_root() {
        return;
    }
    let fab = Fabric::new();
    let pv = "pvc-91111111-2222-4333-8444-555555555555";
    fab.create_block_volume(pv, GIB);
    let pod = fab.pod_dir(UID_A, pv);
    let opts = block_options(
        &fab,
        pv,
        &[
            ("kubernetes.io/fsType", "ext4"),
            ("createOptions", "-q -L flashvoltest"),
        ],
    );
    fab.flex(&["mount", pod.to_str().unwrap(), &opts])
        .assert_success();
    let staging = fab.mounted_at(&fab.staging_dir(pv)).expect("staged");
    assert_eq!(staging.fs_type, "ext4");
    let label = std::process::Command::new("blkid")
        .args(["-o", "value", "-s", "LABEL", &staging.source])
        .output()
        .expect("blkid");
    assert_eq!(
        String::from_utf8_lossy(&label.stdout).trim(),
        "flashvoltest"
    );
    fab.flex(&["unmount", pod.to_str().unwrap()])
        .assert_success();
}

#[test]
fn unmount_never_touches_another_pure_lun() {
    if skip_unless_root() {
        return;
    }
    let fab = Fabric::new();
    let pv = "pvc-f7111111-2222-4333-8444-555555555555";
    fab.create_block_volume(pv, GIB);
    // A boot-from-SAN LUN from the same array (helm-charts#97): same vendor prefix, other serial.
    let boot = fab.sysfs.join("block/sdz/device");
    std::fs::create_dir_all(&boot).unwrap();
    std::fs::write(boot.join("wwid"), "naa.624a9370b75f8356604b431d00000001\n").unwrap();
    std::fs::write(boot.join("delete"), "").unwrap();
    std::fs::write(fab.sysfs.join("block/sdz/dev"), "65:144\n").unwrap();

    let pod = fab.pod_dir(UID_A, pv);
    fab.flex(&[
        "mount",
        pod.to_str().unwrap(),
        &block_options(&fab, pv, &[]),
    ])
    .assert_success();
    fab.flex(&["unmount", pod.to_str().unwrap()])
        .assert_success();
    assert_eq!(std::fs::read_to_string(boot.join("delete")).unwrap(), "");
}

#[test]
fn unmounting_a_dir_that_was_never_mounted_succeeds() {
    let fab = Fabric::new();
    let pod = fab.pod_dir(UID_A, "pvc-f8111111-2222-4333-8444-555555555555");
    fab.flex(&["unmount", pod.to_str().unwrap()])
        .assert_success();
}

#[test]
fn two_xfs_volumes_with_the_same_uuid_mount_side_by_side() {
    if skip_unless_root() {
        return;
    }
    let fab = Fabric::new();
    let (pv1, pv2) = (
        "pvc-fb111111-2222-4333-8444-555555555555",
        "pvc-fc111111-2222-4333-8444-555555555555",
    );
    fab.create_block_volume(pv1, GIB);
    let a = fab.pod_dir(UID_A, pv1);
    fab.flex(&["mount", a.to_str().unwrap(), &block_options(&fab, pv1, &[])])
        .assert_success();
    write_payload(&a, "origin", 4);
    fab.flex(&["unmount", a.to_str().unwrap()]).assert_success();
    // A restore from a snapshot: a copy with the same xfs UUID.
    fab.fa_client()
        .copy_volume(&format!("k8s-{pv1}"), &format!("k8s-{pv2}"), false)
        .expect("copied");
    let b = fab.pod_dir(UID_B, pv2);
    fab.flex(&["mount", a.to_str().unwrap(), &block_options(&fab, pv1, &[])])
        .assert_success();
    fab.flex(&["mount", b.to_str().unwrap(), &block_options(&fab, pv2, &[])])
        .assert_success();
    assert!(b.join("origin").exists(), "the copy has the data");
    fab.flex(&["unmount", a.to_str().unwrap()]).assert_success();
    fab.flex(&["unmount", b.to_str().unwrap()]).assert_success();
}
