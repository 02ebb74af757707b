//! FlashBlade file systems end to end: NFS mounts through the fabric's `mount` stand-in, which
//! bind-mounts the simulator's directory for the file system.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use serde_json::json;
use support::*;

const UID_A: &str = "7a1c2a8e-0000-4000-8000-00000000000a";
const UID_B: &str = "7a1c2a8e-0000-4000-8000-00000000000b";

fn nfs_mounts_log(fab: &Fabric) -> String {
    std::fs::read_to_string(fab.state_dir.join("nfs-mounts")).unwrap_or_default()
}

#[test]
fn file_volume_mounts_over_nfs_and_unmounts() {
    if skip_unless_root() {
        return;
    }
    let fab = Fabric::new();
    let pv = "pvc-f1111111-2222-4333-8444-555555555555";
    fab.create_file_system(pv);
    let pod = fab.pod_dir(UID_A, pv);
    fab.flex(&["mount", pod.to_str().unwrap(), &file_options(&fab, pv, &[])])
        .assert_success();
    assert!(fab.mounted_at(&pod).is_some());
    // Mounted from the data VIP the simulator reports, export path = file system name.
    assert!(
        nfs_mounts_log(&fab).starts_with(&format!("127.0.0.1:/k8s-{pv} {} rw", pod.display())),
        "{}",
        nfs_mounts_log(&fab)
    );
    let sum = write_payload(&pod, "f.bin", 9);
    let backing = fab.admin_get(&fab.fb, &format!("filesystems/k8s-{pv}"));
    let dir = std::path::PathBuf::from(backing["path"].as_str().expect("path"));
    assert_eq!(
        read_checksum(&dir.join("f.bin")),
        sum,
        "data landed on the file system"
    );

    fab.flex(&["unmount", pod.to_str().unwrap()])
        .assert_success();
    assert!(fab.mounted_at(&pod).is_none());
    fab.flex(&["unmount", pod.to_str().unwrap()])
        .assert_success();
}

#[test]
fn configured_nfs_endpoint_and_options_are_used() {
    if skip_unless_root() {
        return;
    }
    let fab = Fabric::with(FabricOptions {
        nfs_endpoint: Some("127.0.0.9".into()),
        flashvol: json!({"file": {"mountOptions": "vers=4.1,hard"}}),
        ..FabricOptions::default()
    });
    let pv = "pvc-f2111111-2222-4333-8444-555555555555";
    fab.create_file_system(pv);
    let pod = fab.pod_dir(UID_A, pv);
    let opts = file_options(&fab, pv, &[("kubernetes.io/readwrite", "ro")]);
    fab.flex(&["mount", pod.to_str().unwrap(), &opts])
        .assert_success();
    let log = nfs_mounts_log(&fab);
    assert!(log.starts_with(&format!("127.0.0.9:/k8s-{pv} ")), "{log}");
    assert!(log.trim_end().ends_with("ro,vers=4.1,hard"), "{log}");
    assert!(fab.mounted_at(&pod).expect("mounted").is_read_only());
    fab.flex(&["unmount", pod.to_str().unwrap()])
        .assert_success();
}

#[test]
fn two_pods_mount_the_same_file_system() {
    if skip_unless_root() {
        return;
    }
    let fab = Fabric::new();
    let pv = "pvc-f3111111-2222-4333-8444-555555555555";
    fab.create_file_system(pv);
    let (a, b) = (fab.pod_dir(UID_A, pv), fab.pod_dir(UID_B, pv));
    let opts = file_options(&fab, pv, &[("accessMode", "shared")]);
    fab.flex(&["mount", a.to_str().unwrap(), &opts])
        .assert_success();
    fab.flex(&["mount", b.to_str().unwrap(), &opts])
        .assert_success();
    write_payload(&a, "from-a", 1);
    assert!(b.join("from-a").exists());
    fab.flex(&["unmount", a.to_str().unwrap()]).assert_success();
    assert!(
        fab.mounted_at(&b).is_some(),
        "the other pod keeps its mount"
    );
    fab.flex(&["unmount", b.to_str().unwrap()]).assert_success();
}

#[test]
fn pso_created_file_pvs_mount() {
    if skip_unless_root() {
        return;
    }
    let fab = Fabric::new();
    let pv = "pvc-f4111111-2222-4333-8444-555555555555";
    fab.create_file_system(pv);
    let pod = fab.pod_dir(UID_A, pv);
    // helm-charts#241: the options PSO 2.x wrote for a FlashBlade PV.
    let opts = json!({
        "accessMode": "exclusive", "backend": "file", "labels": "", "namespace": "k8s",
        "volumeMode": "", "volumeName": pv,
        "kubernetes.io/fsType": "nfs", "kubernetes.io/readwrite": "rw",
        "kubernetes.io/fsGroup": "1234",
    });
    fab.flex(&["mount", pod.to_str().unwrap(), &opts.to_string()])
        .assert_success();
    assert!(fab.mounted_at(&pod).is_some());
    fab.flex(&["unmount", pod.to_str().unwrap()])
        .assert_success();
}

#[test]
fn a_missing_file_system_is_a_clear_failure() {
    let fab = Fabric::new();
    let pv = "pvc-f5111111-2222-4333-8444-555555555555";
    let pod = fab.pod_dir(UID_A, pv);
    let out = fab.flex(&["mount", pod.to_str().unwrap(), &file_options(&fab, pv, &[])]);
    out.assert_failure();
    // The PV names the FlashBlade, so only that one is searched, and the message says so.
    assert!(
        out.message().contains(&format!(
            "file system k8s-{pv} does not exist on FlashBlade {}",
            fab.fb.endpoint()
        )),
        "{}",
        out.message()
    );
    assert!(fab.mounted_at(&pod).is_none());
}

#[test]
fn expandfs_grows_the_file_system_on_the_flashblade_and_nothing_on_the_node() {
    if skip_unless_root() {
        return;
    }
    let fab = Fabric::new();
    let pv = "pvc-f6111111-2222-4333-8444-555555555555";
    fab.create_file_system(pv);
    let pod = fab.pod_dir(UID_A, pv);
    let opts = file_options(&fab, pv, &[]);
    fab.flex(&["mount", pod.to_str().unwrap(), &opts])
        .assert_success();
    let sum = write_payload(&pod, "f.bin", 4);
    let mounts_before = fab.mounts();
    let expand = |new: u64, old: u64| {
        fab.flex(&[
            "expandfs",
            &opts,
            "",
            pod.to_str().unwrap(),
            &new.to_string(),
            &old.to_string(),
        ])
    };
    let out = expand(3 * GIB, GIB);
    out.assert_success();
    assert!(
        out.message().contains("nothing to do on the node")
            && out.message().contains("the hard limit follows"),
        "{}",
        out.message()
    );
    let fs = fab
        .fb_client()
        .get_file_system(&format!("k8s-{pv}"))
        .unwrap();
    assert_eq!((fs.provisioned, fs.hard_limit_enabled), (3 * GIB, true));
    assert_eq!(fab.mounts(), mounts_before, "the node is untouched");
    assert_eq!(read_checksum(&pod.join("f.bin")), sum);

    expand(3 * GIB, GIB).assert_success();
    let refused = expand(5 << 50, 3 * GIB);
    refused.assert_failure();
    assert!(
        refused.message().contains("over the 4Pi limit"),
        "{}",
        refused.message()
    );
    assert_eq!(
        fab.fb_client()
            .get_file_system(&format!("k8s-{pv}"))
            .unwrap()
            .provisioned,
        3 * GIB,
        "a refusal changes nothing"
    );
    fab.flex(&["unmount", pod.to_str().unwrap()])
        .assert_success();
}
