//! One fault on an array at a time: this node's initiator on another node's host (and its own
//! host, fine), a wrong token, an unreachable array, a CA that did not sign the certificate.

use flashvol_common::flasharray::Initiators;
use serde_json::json;

use crate::node::{FLASHARRAY_CHECKS_AFTER_REACH, NOT_APPLICABLE, Node};

#[test]
fn an_iqn_registered_to_another_nodes_host_fails_naming_that_host() {
    let node = Node::healthy();
    node.fabric
        .fa_client()
        .create_host(
            "other-node-flashvol",
            &Initiators {
                iqns: vec![node.fabric.iqn.clone()],
                ..Initiators::default()
            },
        )
        .unwrap();
    let run = node.doctor();
    let fa = node.fabric.fa.endpoint();
    run.assert_problems(&[(&format!("arrays.host {fa}"), "fail"), NOT_APPLICABLE]);
    let host = run.check("arrays.host", Some(&fa));
    assert!(
        host["saw"]
            .as_str()
            .unwrap()
            .contains("other-node-flashvol"),
        "{host}"
    );
    assert!(
        host["fix"].as_str().unwrap().contains("iscsi-iname"),
        "{host}"
    );
}

#[test]
fn this_nodes_own_host_and_its_connections_pass() {
    let node = Node::healthy();
    let own = format!("{}-flashvol", node.fabric.node_name);
    node.fabric
        .create_block_volume("pvc-doctor", crate::support::GIB);
    node.fabric
        .connect_other_host(&own, &node.fabric.iqn, "k8s-pvc-doctor");
    let run = node.doctor();
    run.assert_problems(&[NOT_APPLICABLE]);
    let host = run.check("arrays.host", Some(&node.fabric.fa.endpoint()));
    assert!(
        host["saw"]
            .as_str()
            .unwrap()
            .contains(&format!("host {own}")),
        "{host}"
    );
    assert!(
        host["saw"]
            .as_str()
            .unwrap()
            .contains("1 volume(s) connected"),
        "{host}"
    );
}

#[test]
fn a_wrong_token_fails_and_stops_at_the_login() {
    let node = Node::healthy();
    let mut settings = node.settings();
    settings["FlashArrays"][0]["APIToken"] = json!("not-the-token");
    node.write_settings(&settings);
    let run = node.doctor();
    let fa = node.fabric.fa.endpoint();
    run.assert_problems(&[
        (&format!("arrays.token {fa}"), "fail"),
        (&format!("arrays.host {fa}"), "skip"),
        (&format!("arrays.san_ports {fa}"), "skip"),
        NOT_APPLICABLE,
    ]);
    let token = run.check("arrays.token", Some(&fa));
    assert!(
        token["fix"].as_str().unwrap().contains("APIToken"),
        "{token}"
    );
    assert!(
        !run.json.to_string().contains("not-the-token"),
        "the token never shows"
    );
}

#[test]
fn an_unreachable_array_fails_and_nothing_after_is_tried() {
    let node = Node::healthy();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let mut settings = node.settings();
    settings["FlashArrays"][0]["MgmtEndPoint"] = json!(closed.to_string());
    node.write_settings(&settings);
    let run = node.doctor();
    let fa = closed.to_string();
    let mut expected: Vec<(String, &str)> = vec![(format!("arrays.reachable {fa}"), "fail")];
    expected.extend(
        FLASHARRAY_CHECKS_AFTER_REACH
            .iter()
            .map(|id| (format!("{id} {fa}"), "skip")),
    );
    expected.push(("kernel.fc".into(), "skip"));
    let expected: Vec<(&str, &str)> = expected.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    run.assert_problems(&expected);
    let check = run.check("arrays.reachable", Some(&fa));
    assert!(
        check["fix"].as_str().unwrap().contains("firewall"),
        "{check}"
    );
}

#[test]
fn a_ca_that_did_not_sign_the_arrays_certificate_fails_tls_naming_where_to_fix_it() {
    // The chart's CA (installed next to the driver, rewritten at every install: the fix is the
    // chart value) and a CA file named by tls.caFile (the fix is that file).
    for (ca_file, fix_names) in [
        (Node::installed_ca(), "chart value flashvol.tls.caCert"),
        ("/etc/pure/ca.pem".to_owned(), "(flashvol.tls.caFile)"),
    ] {
        let node = Node::healthy();
        // The FlashBlade simulator's CA: it signed the blade's certificate, not the FlashArray's.
        let blade_ca = std::fs::read_to_string(node.fabric.fb.ca_cert_path()).unwrap();
        node.put(&ca_file, &blade_ca, 0o644);
        let mut settings = node.settings();
        settings["flashvol"]["tls"]["caFile"] = ca_file.clone().into();
        node.write_settings(&settings);
        let run = node.doctor();
        let fa = node.fabric.fa.endpoint();
        let mut expected: Vec<(String, &str)> = vec![(format!("arrays.tls {fa}"), "fail")];
        for id in [
            "arrays.rest_version",
            "arrays.token",
            "arrays.host",
            "arrays.san_ports",
            "clock.skew",
        ] {
            expected.push((format!("{id} {fa}"), "skip"));
        }
        expected.push(("kernel.fc".into(), "skip"));
        let expected: Vec<(&str, &str)> = expected.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        run.assert_problems(&expected);
        let tls = run.check("arrays.tls", Some(&fa));
        let fix = tls["fix"].as_str().unwrap();
        assert!(fix.contains(&ca_file) && fix.contains(fix_names), "{tls}");
        assert_eq!(
            run.check("arrays.tls", Some(&node.fabric.fb.endpoint()))["status"],
            "pass"
        );
    }
}
