//! FlashArray volumes end to end: the built driver, run as kubelet runs it, against the array
//! simulator and the test fabric (loop devices standing in for iSCSI LUNs).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use flashvol_common::flasharray::Initiators;
use serde_json::json;
use support::*;

const UID_A: &str = "6f1c2a8e-0000-4000-8000-00000000000a";
const UID_B: &str = "6f1c2a8e-0000-4000-8000-00000000000b";

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
fn pso_created_pvs_are_found_by_name() {
    if skip_unless_root() {
        return;
    }
    let fab = Fabric::new();
    let pv = "pvc-61111111-2222-4333-8444-555555555555";
    fab.create_block_volume(pv, GIB);
    let pod = fab.pod_dir(UID_A, pv);
    // As PSO 2.x wrote them: no array key at all.
    let opts = json!({
        "accessMode": "exclusive", "backend": "block", "labels": "", "namespace": "k8s",
        "volumeMode": "", "volumeName": pv,
        "kubernetes.io/fsType": "xfs", "kubernetes.io/readwrite": "rw",
        "kubernetes.io/pvOrVolumeName": pv, "kubernetes.io/pod.name": "web-0",
        "kubernetes.io/secret/token": "c2VjcmV0LXZhbHVl",
    });
    fab.flex(&["mount", pod.to_str().unwrap(), &opts.to_string()])
        .assert_success();
    assert!(fab.mounted_at(&pod).is_some());
    assert!(
        !fab.log_text().contains("c2VjcmV0LXZhbHVl"),
        "secrets are never logged"
    );
    assert!(
        !fab.log_text().contains("sim-token-fa"),
        "tokens are never logged"
    );
    fab.flex(&["unmount", pod.to_str().unwrap()])
        .assert_success();
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
fn rwo_volumes_are_fenced_from_other_flashvol_hosts_only() {
    if skip_unless_root() {
        return;
    }
    let fab = Fabric::new();
    let pv = "pvc-a1111111-2222-4333-8444-555555555555";
    let vol = format!("k8s-{pv}");
    fab.create_block_volume(pv, GIB);
    fab.connect_other_host(
        "old-node-flashvol",
        "iqn.2026-11.io.flashvol.test:old",
        &vol,
    );
    fab.connect_other_host("backup-server", "iqn.2026-11.io.example:backup", &vol);
    let pod = fab.pod_dir(UID_A, pv);
    fab.flex(&[
        "mount",
        pod.to_str().unwrap(),
        &block_options(&fab, pv, &[]),
    ])
    .assert_success();
    let mine = format!("{}-flashvol", fab.node_name);
    let mut expected = vec!["backup-server".to_owned(), mine];
    expected.sort();
    assert_eq!(
        fab.hosts_connected_to(&vol),
        expected,
        "old node fenced, foreign host kept"
    );
    fab.flex(&["unmount", pod.to_str().unwrap()])
        .assert_success();
    assert_eq!(fab.hosts_connected_to(&vol), ["backup-server"]);
}

#[test]
fn shared_volumes_are_not_fenced() {
    if skip_unless_root() {
        return;
    }
    let fab = Fabric::new();
    let pv = "pvc-b1111111-2222-4333-8444-555555555555";
    let vol = format!("k8s-{pv}");
    fab.create_block_volume(pv, GIB);
    fab.connect_other_host("peer-flashvol", "iqn.2026-11.io.flashvol.test:peer", &vol);
    let pod = fab.pod_dir(UID_A, pv);
    let opts = block_options(&fab, pv, &[("accessMode", "shared")]);
    fab.flex(&["mount", pod.to_str().unwrap(), &opts])
        .assert_success();
    assert!(
        fab.hosts_connected_to(&vol)
            .contains(&"peer-flashvol".to_owned())
    );
    fab.flex(&["unmount", pod.to_str().unwrap()])
        .assert_success();
}

#[test]
fn an_unexpanded_initiator_name_is_refused_clearly() {
    let fab = Fabric::with(FabricOptions {
        initiator_file: Some("InitiatorName=$(/sbin/iscsi-iname)\n".into()),
        ..FabricOptions::default()
    });
    let pv = "pvc-c1111111-2222-4333-8444-555555555555";
    fab.create_block_volume(pv, GIB);
    let pod = fab.pod_dir(UID_A, pv);
    let out = fab.flex(&[
        "mount",
        pod.to_str().unwrap(),
        &block_options(&fab, pv, &[]),
    ]);
    out.assert_failure();
    assert!(out.message().contains("unexpanded"), "{}", out.message());
    let hosts = fab.fa_client().list_hosts().expect("hosts");
    assert!(hosts.is_empty(), "no bogus host was registered: {hosts:?}");
}

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

/// The simulator's call counters that moved while `f` ran: route → calls.
fn fa_calls_during(fab: &Fabric, f: impl FnOnce()) -> BTreeMap<String, u64> {
    let before = fab.fa.stats().calls;
    f();
    fab.fa
        .stats()
        .calls
        .into_iter()
        .filter_map(|(route, n)| {
            let moved = n - before.get(&route).copied().unwrap_or(0);
            (moved > 0).then_some((route, moved))
        })
        .collect()
}

#[test]
fn block_mount_and_unmount_on_a_registered_host_look_the_host_up_with_one_array_call() {
    if skip_unless_root() {
        return;
    }
    let fab = Fabric::new();
    let pv = "pvc-0b111111-2222-4333-8444-555555555555";
    fab.create_block_volume(pv, GIB);
    let fa = fab.fa_client();
    let iqn = |s: &str| Initiators {
        iqns: vec![s.to_owned()],
        ..Initiators::default()
    };
    // This node already registered (by an earlier mount), among other hosts on the array.
    fa.create_host(&format!("{}-flashvol", fab.node_name), &iqn(&fab.iqn))
        .expect("this node's host");
    for other in ["peer-flashvol", "backup-server"] {
        fa.create_host(other, &iqn(&format!("iqn.2026-11.io.example:{other}")))
            .expect("other host");
    }
    let pod = fab.pod_dir(UID_A, pv);
    let pod_s = pod.to_str().unwrap();
    // Each call is a fresh process, so each negotiates the version and logs in. The host list is
    // one `GET host`: paged, it cost a second request for the empty page that ends the list.
    let counts = |calls: &[(&str, u64)]| -> BTreeMap<String, u64> {
        calls.iter().map(|(r, n)| ((*r).to_owned(), *n)).collect()
    };

    let mount = fa_calls_during(&fab, || {
        fab.flex(&["mount", pod_s, &block_options(&fab, pv, &[])])
            .assert_success();
    });
    assert_eq!(
        mount,
        counts(&[
            ("GET api_version", 1),
            ("POST auth/session", 1),
            ("GET volume/{name}", 1),
            ("GET host", 1),
            ("GET volume/{name}/host", 1),
            ("POST host/{name}/volume/{name}", 1),
            ("GET port", 1),
        ]),
        "block mount"
    );

    let unmount = fa_calls_during(&fab, || {
        fab.flex(&["unmount", pod_s]).assert_success();
    });
    assert_eq!(
        unmount,
        counts(&[
            ("GET api_version", 1),
            ("POST auth/session", 1),
            ("GET host", 1),
            ("DELETE host/{name}/volume/{name}", 1),
        ]),
        "block unmount"
    );
    assert!(fab.hosts_connected_to(&format!("k8s-{pv}")).is_empty());
}
