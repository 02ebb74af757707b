//! One fault on the node at a time: a missing tool, iscsid, the initiator name, multipath, the
//! driver outside kubelet's plugin dir, the settings file's mode, a private `/`.

use std::os::unix::fs::PermissionsExt;

use crate::node::{DEFAULT_DIR, KUBELET_DIR, NOT_APPLICABLE, Node, multipath_conf, root_mountinfo};

#[test]
fn a_missing_tool_fails_naming_its_package_and_setting() {
    let node = Node::healthy();
    node.remove("/usr/sbin/mkfs.xfs");
    let run = node.doctor();
    run.assert_problems(&[("tools.mkfs_xfs", "fail"), NOT_APPLICABLE]);
    let fix = run.check("tools.mkfs_xfs", None)["fix"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        fix.contains("xfsprogs") && fix.contains("node.tools.mkfsXfs"),
        "{fix}"
    );
}

#[test]
fn iscsid_down_fails() {
    let node = Node::healthy();
    node.remove("/proc/200");
    let run = node.doctor();
    run.assert_problems(&[("iscsi.iscsid", "fail"), NOT_APPLICABLE]);
    assert!(
        run.check("iscsi.iscsid", None)["fix"]
            .as_str()
            .unwrap()
            .contains("systemctl enable --now iscsid")
    );
}

#[test]
fn iscsid_waiting_on_its_socket_is_fine() {
    let node = Node::healthy();
    node.remove("/proc/200");
    node.put(
        "/proc/1/net/unix",
        "Num       RefCount Protocol Flags    Type St Inode Path\n\
         0000000000000000: 00000002 00000000 00010000 0001 01 23318 @ISCSIADM_ABSTRACT_NAMESPACE\n",
        0o444,
    );
    node.doctor().assert_problems(&[NOT_APPLICABLE]);
}

#[test]
fn a_literal_shell_expression_as_iqn_fails_and_the_array_host_is_not_checked() {
    let node = Node::healthy();
    node.put(
        "/etc/iscsi/initiatorname.iscsi",
        "InitiatorName=$(/sbin/iscsi-iname)\n",
        0o644,
    );
    let run = node.doctor();
    let fa = node.fabric.fa.endpoint();
    run.assert_problems(&[
        ("iscsi.initiator", "fail"),
        (&format!("arrays.host {fa}"), "skip"),
        NOT_APPLICABLE,
    ]);
    let check = run.check("iscsi.initiator", None);
    assert!(
        check["saw"]
            .as_str()
            .unwrap()
            .contains("unexpanded shell expression"),
        "{check}"
    );
    assert!(
        check["fix"].as_str().unwrap().contains("iscsi-iname"),
        "{check}"
    );
}

#[test]
fn multipath_without_the_pure_device_section_warns_with_the_section() {
    let node = Node::healthy();
    node.put(
        "/etc/multipath.conf",
        "defaults {\n    user_friendly_names no\n}\n",
        0o644,
    );
    let run = node.doctor();
    run.assert_problems(&[("multipath.config", "warn"), NOT_APPLICABLE]);
    assert_eq!(run.json["ok"], true, "a WARN does not fail the node");
    let fix = run.check("multipath.config", None)["fix"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        fix.contains("vendor \"PURE\", product \"FlashArray\"")
            && fix.contains("hardware_handler \"1 alua\""),
        "{fix}"
    );
}

#[test]
fn friendly_names_for_pure_luns_fail() {
    let node = Node::healthy();
    node.put("/etc/multipath.conf", &multipath_conf("yes", false), 0o644);
    let run = node.doctor();
    run.assert_problems(&[("multipath.friendly_names", "fail"), NOT_APPLICABLE]);
    let check = run.check("multipath.friendly_names", None);
    assert!(
        check["saw"]
            .as_str()
            .unwrap()
            .contains("/etc/multipath.conf:2"),
        "{check}"
    );
}

#[test]
fn a_driver_outside_kubelets_plugin_dir_fails_with_the_flex_path_to_set() {
    let node = Node::healthy();
    std::fs::create_dir_all(node.local(DEFAULT_DIR)).unwrap();
    std::fs::rename(
        node.local(&Node::driver_dir(KUBELET_DIR)),
        node.local(&Node::driver_dir(DEFAULT_DIR)),
    )
    .unwrap();
    // The settings the installer wrote there name its CA there.
    let mut settings = node.settings();
    settings["flashvol"]["tls"]["caFile"] =
        format!("{}/ca.pem", Node::driver_dir(DEFAULT_DIR)).into();
    node.put(
        &format!("{}/flashvol.json", Node::driver_dir(DEFAULT_DIR)),
        &settings.to_string(),
        0o600,
    );
    let run = node.doctor();
    run.assert_problems(&[
        ("install.driver", "fail"),
        ("install.version", "skip"),
        ("install.init", "skip"),
        NOT_APPLICABLE,
    ]);
    let check = run.check("install.driver", None);
    let saw = check["saw"].as_str().unwrap();
    assert!(
        saw.contains(KUBELET_DIR) && saw.contains(DEFAULT_DIR),
        "{check}"
    );
    assert!(
        check["fix"]
            .as_str()
            .unwrap()
            .contains(&format!("flexPath to {KUBELET_DIR}")),
        "{check}"
    );
    assert!(
        run.json["settingsFile"]
            .as_str()
            .unwrap()
            .contains(DEFAULT_DIR),
        "the settings are read where the driver is: {}",
        run.json["settingsFile"]
    );
}

#[test]
fn a_world_readable_settings_file_fails() {
    let node = Node::healthy();
    std::fs::set_permissions(node.settings_file(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = node.doctor();
    run.assert_problems(&[("settings.mode", "fail"), NOT_APPLICABLE]);
    let check = run.check("settings.mode", None);
    assert!(
        check["fix"].as_str().unwrap().starts_with("chmod 600 "),
        "{check}"
    );
}

#[test]
fn a_private_root_mount_warns_that_only_a_containerized_kubelet_needs_it_shared() {
    let node = Node::healthy();
    node.put("/proc/1/mountinfo", &root_mountinfo(""), 0o444);
    let run = node.doctor();
    run.assert_problems(&[("kernel.root_propagation", "warn"), NOT_APPLICABLE]);
    assert_eq!(run.json["ok"], true, "a WARN leaves the node ok");
    let check = run.check("kernel.root_propagation", None);
    let (saw, fix) = (
        check["saw"].as_str().unwrap(),
        check["fix"].as_str().unwrap(),
    );
    assert!(
        saw.contains("private") && saw.contains("containerized kubelet (RKE1)"),
        "{check}"
    );
    assert!(
        fix.starts_with("only if kubelet runs in a container")
            && fix.contains("mount --make-rshared /"),
        "{check}"
    );

    // A slave / passes nothing on: a containerized kubelet's shared bind needs it shared.
    node.put("/proc/1/mountinfo", &root_mountinfo("master:1"), 0o444);
    node.doctor()
        .assert_problems(&[("kernel.root_propagation", "warn"), NOT_APPLICABLE]);
}
