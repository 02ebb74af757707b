//! A healthy node: every check passes, the text report reads right, nothing is changed on the
//! arrays or the node, the schema holds, and the installer logs the same findings.

use std::path::Path;

use serde_json::json;

use crate::node::{
    FLASHARRAY_CHECKS_AFTER_REACH, KUBELET_DIR, NOT_APPLICABLE, Node, assert_valid_against_schema,
    tree,
};
use crate::support::flex_binary;

#[test]
fn a_healthy_node_passes_every_check() {
    let node = Node::healthy();
    let run = node.doctor();
    run.assert_problems(&[NOT_APPLICABLE]);
    assert_eq!(run.json["ok"], true);
    assert_eq!(run.json["node"], node.fabric.node_name.as_str());
    let fa = node.fabric.fa.endpoint();
    for id in std::iter::once("arrays.reachable").chain(FLASHARRAY_CHECKS_AFTER_REACH) {
        assert_eq!(run.check(id, Some(&fa))["status"], "pass", "{id}");
    }
    let tls = run.check("arrays.tls", Some(&fa));
    assert!(
        tls["saw"].as_str().unwrap().contains(&format!(
            "{} (the chart's flashvol.tls.caCert",
            Node::installed_ca()
        )),
        "{tls}"
    );
    let host = run.check("arrays.host", Some(&fa));
    assert!(
        host["saw"].as_str().unwrap().contains("not registered yet"),
        "{host}"
    );
    let init = run.check("install.init", None);
    assert!(
        init["saw"].as_str().unwrap().contains("\"attach\":false"),
        "{init}"
    );
    let multipath = run.check("kernel.multipath", None);
    assert!(
        multipath["saw"]
            .as_str()
            .unwrap()
            .contains("installed for kernel"),
        "{multipath}"
    );
}

#[test]
fn doctor_only_reads_the_arrays_and_leaves_the_node_as_it_was() {
    let node = Node::healthy();
    let before = tree(&node.root);
    node.doctor().assert_problems(&[NOT_APPLICABLE]);
    assert!(
        tree(&node.root) == before,
        "doctor changed a file on the node"
    );
    for sim in [&node.fabric.fa, &node.fabric.fb] {
        let calls = sim.stats().calls;
        assert!(!calls.is_empty());
        for call in calls.keys() {
            let read = call.starts_with("GET ");
            let login = call == "POST auth/session" || call == "POST login";
            assert!(read || login, "doctor sent {call} (all calls: {calls:?})");
        }
    }
}

#[test]
fn the_text_report_names_each_check_and_the_verdict() {
    let node = Node::healthy();
    node.remove("/proc/200");
    let root = node.root.display().to_string();
    let output = node.run(&["doctor", "--host-root", &root]);
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("\niscsi\n"), "{text}");
    assert!(text.contains("FAIL  iscsi.iscsid"), "{text}");
    assert!(
        text.contains("fix: systemctl enable --now iscsid"),
        "{text}"
    );
    assert!(text.contains("PASS  arrays.token ["), "{text}");
    assert!(
        text.trim_end()
            .ends_with("this node cannot mount Pure volumes until the FAILs are fixed"),
        "{text}"
    );
}

#[test]
fn the_schema_refuses_what_doctor_never_writes() {
    let node = Node::healthy();
    let mut doc = node.doctor().json;
    doc["checks"][0]["id"] = json!("settings.nonsense");
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("doctor.schema.json");
    let result = std::panic::catch_unwind(|| assert_valid_against_schema(&doc.to_string()));
    assert!(
        result.is_err(),
        "{} accepted an unknown check id",
        schema.display()
    );
}

#[test]
fn the_installer_logs_the_same_findings_and_installs_anyway() {
    let node = Node::healthy();
    node.remove(&Node::driver_dir(KUBELET_DIR));
    node.remove("/proc/200");
    // As the chart installs: pure.json without a CA, the CA given by --ca-file (caCert). The
    // checks then verify the arrays against the copy the installer put next to the driver.
    let pure_json = node.fabric.dir.path().join("pure.json");
    let mut settings = node.settings();
    settings.as_object_mut().unwrap().remove("flashvol");
    std::fs::write(&pure_json, settings.to_string()).unwrap();
    let ca = node.fabric.dir.path().join("ca-cert.pem");
    std::fs::write(&ca, node.fabric_ca()).unwrap();
    let root = node.root.display().to_string();
    let plugin_dir = node.local(KUBELET_DIR).display().to_string();
    let output = node.run(&[
        "install",
        "--once",
        "--plugin-dir",
        &plugin_dir,
        "--host-plugin-dir",
        KUBELET_DIR,
        "--host-root",
        &root,
        "--proc",
        &format!("{root}/proc"),
        "--config",
        pure_json.to_str().unwrap(),
        "--ca-file",
        ca.to_str().unwrap(),
        "--source",
        flex_binary().to_str().unwrap(),
    ]);
    let log = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "a FAIL never fails the install: {log}"
    );
    assert!(
        node.local(&format!("{}/flex", Node::driver_dir(KUBELET_DIR)))
            .is_file(),
        "{log}"
    );
    assert_eq!(
        std::fs::read_to_string(node.local(&Node::installed_ca())).unwrap(),
        node.fabric_ca()
    );
    assert!(
        log.contains("WARNING: doctor: FAIL iscsi.iscsid: iscsid is not running"),
        "{log}"
    );
    assert_eq!(
        log.matches("WARNING: doctor:").count(),
        1,
        "one problem, one line: {log}"
    );
    assert!(
        log.contains("INFO: doctor: ") && log.contains(" 1 fail,"),
        "{log}"
    );
}
