//! Letting go of a volume only when nothing uses it: never while another mount namespace still
//! holds its file system (a fake `/proc` shows one here; `tests/namespaces.rs` runs a real one),
//! a failed mount rolled back unless another pod uses the volume, and leftovers (records no call
//! will come for) collected by later calls and by `collect`, but never while kubelet still lists
//! them, a call holds them or anything mounts them.

use std::path::Path;

use flashvol_arraysim::{FaultAction, FaultRule, Faults};
use flashvol_flexdriver::node::locks;
use nix::mount::{MntFlags, umount2};
use serde_json::json;

use crate::support::*;
use crate::{UID_A, UID_B};

fn fabric_with_proc(proc: &Path) -> Fabric {
    Fabric::with(FabricOptions {
        node: json!({"procRoot": proc}),
        ..FabricOptions::default()
    })
}

#[track_caller]
fn assert_in_use(fab: &Fabric, pv: &str, pod: &Path) {
    assert!(fab.mounted_at(pod).is_some(), "the pod dir stays mounted");
    assert!(
        fab.mounted_at(&fab.staging_dir(pv)).is_some(),
        "the volume stays staged"
    );
    assert!(fab.record_path(pv).exists(), "the record stays");
    assert_eq!(
        fab.hosts_connected_to(&format!("k8s-{pv}")),
        [format!("{}-flashvol", fab.node_name)],
        "the volume stays connected"
    );
}

#[track_caller]
fn assert_released(fab: &Fabric, pv: &str, serial: &str) {
    assert!(fab.mounts().is_empty(), "mounts left: {:?}", fab.mounts());
    assert!(
        fab.hosts_connected_to(&format!("k8s-{pv}")).is_empty(),
        "still connected"
    );
    assert!(!fab.record_path(pv).exists(), "record left behind");
    assert!(fab.device_deleted(serial), "device left behind");
}

#[test]
fn an_unmount_changes_nothing_and_fails_while_another_mount_namespace_holds_the_volume() {
    if skip_unless_root() {
        return;
    }
    let proc_dir = tempfile::tempdir().unwrap();
    let proc = FakeProc::new(proc_dir.path());
    let fab = fabric_with_proc(&proc.root);
    let pv = "pvc-1a111111-2222-4333-8444-555555555555";
    let serial = fab.create_block_volume(pv, GIB);
    let pod = fab.pod_dir(UID_A, pv);
    let pod_s = pod.to_str().unwrap();
    fab.flex(&["mount", pod_s, &block_options(&fab, pv, &[])])
        .assert_success();
    let dev = fab.mounted_at(&fab.staging_dir(pv)).unwrap().dev;
    // The pod's container outlived the pod: its namespace still has the file system at /data.
    let mounts = container_mountinfo(dev);
    proc.add(&FakeProcess {
        pid: 4242,
        namespace: "mnt:[4026532400]",
        comm: "writer",
        cmdline: &["/bin/sh", "-c", "write"],
        mountinfo: &mounts,
    });

    let out = fab.flex(&["unmount", pod_s]);
    out.assert_failure();
    let message = out.message();
    assert!(
        message.contains(
            "still mounted by 1 process(es) in 1 other mount namespace(s), e.g. pid 4242 (writer) at /data"
        ) && message.contains(&format!("{}:{}", dev.0, dev.1))
            && message.contains("kubelet will retry"),
        "{message}"
    );
    assert_in_use(&fab, pv, &pod);
    // Another call while it is held: still nothing changes (kubelet retries with backoff).
    fab.flex(&["unmount", pod_s]).assert_failure();
    assert_in_use(&fab, pv, &pod);

    proc.remove(4242);
    fab.flex(&["unmount", pod_s]).assert_success();
    assert_released(&fab, pv, &serial);
}

#[test]
fn a_mount_that_fails_after_connecting_leaves_no_connection_and_no_record() {
    if skip_unless_root() {
        return;
    }
    let fab = Fabric::new();
    let pv = "pvc-1b111111-2222-4333-8444-555555555555";
    let serial = fab.create_block_volume(pv, GIB);
    let pod = fab.pod_dir(UID_A, pv);
    let (pod_s, opts) = (pod.to_str().unwrap(), block_options(&fab, pv, &[]));
    // The step after the connect: the array's iSCSI ports.
    fab.fa.set_faults(Faults {
        rules: vec![FaultRule {
            method: Some("GET".into()),
            path: "/api/*/port".into(),
            count: 1000,
            action: FaultAction::Status { status: 500 },
        }],
        ..Faults::default()
    });
    for _ in 0..2 {
        let out = fab.flex(&["mount", pod_s, &opts]);
        out.assert_failure();
        assert!(out.message().contains("listing ports"), "{}", out.message());
        assert_released(&fab, pv, &serial);
    }
    assert!(fab.log_text().contains("rolling back"));

    fab.fa.set_faults(Faults::default());
    fab.flex(&["mount", pod_s, &opts]).assert_success();
    fab.flex(&["unmount", pod_s]).assert_success();
    assert_released(&fab, pv, &serial);
}

#[test]
fn a_mount_that_fails_after_staging_unstages_and_releases_the_volume() {
    if skip_unless_root() {
        return;
    }
    let fab = Fabric::new();
    let pv = "pvc-1c111111-2222-4333-8444-555555555555";
    let serial = fab.create_block_volume(pv, GIB);
    let pod = fab.pod_dir(UID_A, pv);
    // The bind is the last step; a file where the pod dir should be makes it fail.
    std::fs::create_dir_all(pod.parent().unwrap()).unwrap();
    std::fs::write(&pod, "not a dir").unwrap();
    let out = fab.flex(&[
        "mount",
        pod.to_str().unwrap(),
        &block_options(&fab, pv, &[]),
    ]);
    out.assert_failure();
    assert_released(&fab, pv, &serial);
    assert_eq!(
        fab.log_text().matches("formatting k8s-").count(),
        1,
        "it got as far as formatting"
    );
}

#[test]
fn a_failed_mount_never_releases_a_volume_another_pod_uses() {
    if skip_unless_root() {
        return;
    }
    let fab = Fabric::new();
    let pv = "pvc-1d111111-2222-4333-8444-555555555555";
    fab.create_block_volume(pv, GIB);
    let opts = block_options(&fab, pv, &[]);
    let (a, b) = (fab.pod_dir(UID_A, pv), fab.pod_dir(UID_B, pv));
    fab.flex(&["mount", a.to_str().unwrap(), &opts])
        .assert_success();
    let sum = write_payload(&a, "data", 3);
    std::fs::create_dir_all(b.parent().unwrap()).unwrap();
    std::fs::write(&b, "not a dir").unwrap();
    fab.flex(&["mount", b.to_str().unwrap(), &opts])
        .assert_failure();
    assert_in_use(&fab, pv, &a);
    assert_eq!(read_checksum(&a.join("data")), sum);
    fab.flex(&["unmount", a.to_str().unwrap()]).assert_success();
}

/// What a pod leaves when kubelet never calls `unmount` (deleted while the driver was missing
/// after a reboot): nothing mounted, the record and the connection still there.
fn leave_behind(fab: &Fabric, pv: &str, pod: &Path) {
    umount2(pod, MntFlags::MNT_DETACH).unwrap();
    umount2(&fab.staging_dir(pv), MntFlags::MNT_DETACH).unwrap();
}

#[test]
fn leftovers_are_collected_by_later_calls_once_kubelet_forgot_them_and_nothing_holds_them() {
    if skip_unless_root() {
        return;
    }
    let proc_dir = tempfile::tempdir().unwrap();
    let proc = FakeProc::new(proc_dir.path());
    let fab = fabric_with_proc(&proc.root);
    let (left, other) = (
        "pvc-1e111111-2222-4333-8444-555555555555",
        "pvc-1f111111-2222-4333-8444-555555555555",
    );
    let serial = fab.create_block_volume(left, GIB);
    fab.create_block_volume(other, GIB);
    let left_pod = fab.pod_dir(UID_A, left);
    fab.flex(&[
        "mount",
        left_pod.to_str().unwrap(),
        &block_options(&fab, left, &[]),
    ])
    .assert_success();
    let dev = fab.mounted_at(&fab.staging_dir(left)).unwrap().dev;
    leave_behind(&fab, left, &left_pod);
    let other_pod = fab.pod_dir(UID_B, other);
    let (other_s, other_opts) = (other_pod.to_str().unwrap(), block_options(&fab, other, &[]));
    let still_there = |when: &str| {
        assert!(fab.record_path(left).exists(), "{when}: record collected");
        assert!(
            !fab.hosts_connected_to(&format!("k8s-{left}")).is_empty(),
            "{when}: disconnected"
        );
    };

    // kubelet still has the pod dir: it may call mount (1.24 after a reboot) or unmount for it.
    fab.flex(&["mount", other_s, &other_opts]).assert_success();
    still_there("while kubelet lists it");
    std::fs::remove_dir_all(fab.kubelet_root.join("pods").join(UID_A)).unwrap();

    // Another call is working on it.
    let held = locks::acquire(
        &locks::volume_lock_path(&fab.locks_dir(), left),
        std::time::Duration::from_secs(1),
    )
    .unwrap();
    fab.flex(&["unmount", other_s]).assert_success();
    still_there("while a call holds its lock");
    drop(held);

    // Some namespace still has its file system mounted.
    let mounts = container_mountinfo(dev);
    proc.add(&FakeProcess {
        pid: 777,
        namespace: "mnt:[4026532777]",
        comm: "backup",
        cmdline: &["backup"],
        mountinfo: &mounts,
    });
    fab.flex(&["mount", other_s, &other_opts]).assert_success();
    still_there("while another namespace mounts it");
    proc.remove(777);

    fab.flex(&["unmount", other_s]).assert_success();
    assert_released(&fab, left, &serial);
    assert!(
        fab.log_text()
            .contains(&format!("collecting leftover volume k8s-{left} ({left})")),
        "one log line per collected volume"
    );
    assert!(fab.hosts_connected_to(&format!("k8s-{other}")).is_empty());
}

/// A volume mounted for a pod, then left behind and the pod's dir removed by kubelet: only the
/// record and the connection remain, and no call will come for them. Returns its serial.
fn forgotten_leftover(fab: &Fabric, pv: &str) -> String {
    let serial = fab.create_block_volume(pv, GIB);
    let pod = fab.pod_dir(UID_A, pv);
    fab.flex(&["mount", pod.to_str().unwrap(), &block_options(fab, pv, &[])])
        .assert_success();
    leave_behind(fab, pv, &pod);
    std::fs::remove_dir_all(fab.kubelet_root.join("pods")).unwrap();
    serial
}

#[test]
fn collect_releases_the_leftovers_of_a_kubelet_root_and_names_them() {
    if skip_unless_root() {
        return;
    }
    let fab = Fabric::new();
    let pv = "pvc-1f211111-2222-4333-8444-555555555555";
    let serial = forgotten_leftover(&fab, pv);
    let root = fab.kubelet_root.to_str().unwrap();

    let out = fab.flex(&["collect", root, "pure/flex"]);
    out.assert_success();
    assert_eq!(out.message(), format!("collected {pv}"));
    assert_released(&fab, pv, &serial);
    let again = fab.flex(&["collect", root, "pure/flex"]);
    assert_eq!(again.message(), "no leftover volume");
    fab.flex(&["collect", root, "pure"]).assert_failure();
}

#[test]
fn the_node_installer_collects_leftovers_when_it_starts() {
    if skip_unless_root() {
        return;
    }
    let fab = Fabric::new();
    let pv = "pvc-1f311111-2222-4333-8444-555555555555";
    let serial = forgotten_leftover(&fab, pv);

    // The DaemonSet pod after a reboot: kubelet runs (hostPID shows it, with its --root-dir);
    // its mount namespace is this one.
    let plugins = fab.root().join("volume-plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let proc = FakeProc::new(&fab.root().join("host-proc"));
    proc.add(&FakeProcess {
        pid: 812,
        namespace: "/proc/self/ns/mnt",
        comm: "kubelet",
        cmdline: &[
            "/usr/bin/kubelet",
            &format!("--root-dir={}", fab.kubelet_root.display()),
            &format!("--volume-plugin-dir={}", plugins.display()),
        ],
        mountinfo: "",
    });
    let out = std::process::Command::new(flex_binary())
        .arg("install")
        .arg("--once")
        .arg("--plugin-dir")
        .arg(&plugins)
        .arg("--config")
        .arg(&fab.settings_path)
        .arg("--source")
        .arg(flex_binary())
        .arg("--proc")
        .arg(&proc.root)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains(&format!(
            "leftover volumes in {}: collected {pv}",
            fab.kubelet_root.display()
        )),
        "{log}"
    );
    assert_released(&fab, pv, &serial);
    assert!(
        fab.log_text()
            .contains(&format!("collecting leftover volume k8s-{pv}")),
        "the installed driver did the work, in its own log"
    );
}
