//! The array side of a block mount: finding the volume (PSO PVs by name), registering this node's
//! host once (one array call when it exists), fencing RWO volumes from other flashvol hosts only,
//! refusing an initiator name that was never expanded, and refusing FC on an iSCSI-only array.

use std::collections::BTreeMap;

use flashvol_common::flasharray::Initiators;
use serde_json::json;

use crate::UID_A;
use crate::support::*;

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

/// Mounts a new volume on an FC node built with `options`; the mount must fail having changed
/// nothing: no host registered, no mount, and no volume record (a refusal comes before it: a
/// rollback could not release it on this node, which has no FC ports). Returns the message.
fn refused_fc_mount(options: FabricOptions, pv: &str) -> (Fabric, String) {
    let fab = Fabric::with(FabricOptions {
        flashvol: json!({"block": {"sanType": "FC"}}),
        ..options
    });
    fab.create_block_volume(pv, GIB);
    let pod = fab.pod_dir(UID_A, pv);
    let out = fab.flex(&[
        "mount",
        pod.to_str().unwrap(),
        &block_options(&fab, pv, &[]),
    ]);
    out.assert_failure();
    let hosts = fab.fa_client().list_hosts().expect("hosts");
    assert!(hosts.is_empty(), "no host was registered: {hosts:?}");
    assert!(fab.mounted_at(&pod).is_none());
    assert!(!fab.record_path(pv).exists(), "the refusal left a record");
    let message = out.message();
    (fab, message)
}

#[test]
fn fc_on_an_iscsi_only_array_like_cloud_block_store_is_refused_by_name_before_any_change() {
    if skip_unless_root() {
        return;
    }
    let options = FabricOptions {
        iscsi_only_array: true,
        ..FabricOptions::default()
    };
    let (fab, message) = refused_fc_mount(options, "pvc-c2222222-2222-4333-8444-555555555555");
    assert!(
        message.contains(&format!(
            "{} has no Fibre Channel ports (only iSCSI)",
            fab.fa.endpoint()
        )),
        "{message}"
    );
    assert!(message.contains("Cloud Block Store"), "{message}");
}

#[test]
fn fc_on_a_node_without_fc_ports_is_refused_by_name_before_any_change() {
    if skip_unless_root() {
        return;
    }
    // The array has FC targets; the node has no /sys/class/fc_host ports to register.
    let pv = "pvc-c3333333-2222-4333-8444-555555555555";
    let (_fab, message) = refused_fc_mount(FabricOptions::default(), pv);
    assert!(
        message.contains("SAN type is FC but no FC port was found under")
            && message.contains("class/fc_host"),
        "{message}"
    );
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
