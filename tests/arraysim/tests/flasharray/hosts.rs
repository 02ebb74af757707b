//! Hosts and connections: initiators belong to one host, LUNs are the lowest free per host, and
//! connections guard destroying volumes and deleting hosts.

use serde_json::{Value, json};

use crate::common::fa_msg;
use crate::start;

#[test]
fn luns_are_the_lowest_free_per_host_and_connections_guard_destroy_and_delete() {
    let (_dir, _sim, client) = start();
    for name in ["a", "b", "c"] {
        client.call(
            "POST",
            &format!("/api/1.19/volume/{name}"),
            Some(&json!({"size": 1048576})),
        );
    }
    client.call(
        "POST",
        "/api/1.19/host/node1",
        Some(&json!({"iqnlist": ["iqn.2020-01.io.test:node1"]})),
    );
    client.call(
        "POST",
        "/api/1.19/host/node2",
        Some(&json!({"wwnlist": ["21:00:00:24:ff:00:00:01"]})),
    );
    let lun = |host: &str, vol: &str, body: Value| {
        client.call(
            "POST",
            &format!("/api/1.19/host/{host}/volume/{vol}"),
            Some(&body),
        )
    };
    assert_eq!(lun("node1", "a", json!({})).json()["lun"], 1);
    assert_eq!(lun("node1", "b", json!({})).json()["lun"], 2);
    assert_eq!(lun("node2", "a", json!({})).json()["lun"], 1);
    assert!(fa_msg(&lun("node1", "a", json!({}))).contains("already exists"));
    assert_eq!(
        client
            .call("DELETE", "/api/1.19/host/node1/volume/a", None)
            .status,
        200
    );
    assert_eq!(
        lun("node1", "c", json!(null)).json()["lun"],
        1,
        "freed LUN 1 is reused"
    );
    assert_eq!(lun("node1", "a", json!({"lun": 9})).json()["lun"], 9);
    assert!(
        fa_msg(&client.call("DELETE", "/api/1.19/host/node2/volume/b", None))
            .contains("is not connected")
    );
    assert!(fa_msg(&lun("ghost", "a", json!({}))).contains("Host does not exist"));

    assert!(
        fa_msg(&client.call("DELETE", "/api/1.19/volume/a", None)).contains("host connections")
    );
    let delete_host = client.call("DELETE", "/api/1.19/host/node2", None);
    assert!(fa_msg(&delete_host).contains("cannot be deleted due to existing connections"));

    let by_host = client
        .call("GET", "/api/1.19/host/node1/volume", None)
        .json();
    let luns: Vec<(String, u64)> = by_host
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["vol"].as_str().unwrap_or("").to_string(),
                r["lun"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        luns,
        vec![
            ("b".to_string(), 2),
            ("c".to_string(), 1),
            ("a".to_string(), 9)
        ]
    );
    let by_volume = client.call("GET", "/api/1.19/volume/a/host", None).json();
    assert_eq!(by_volume.as_array().map(Vec::len), Some(2));

    let admin = client
        .admin(
            "GET",
            "connections?initiator=2100002400000001"
                .replace("2100002400000001", "21:00:00:24:FF:00:00:01")
                .as_str(),
            None,
        )
        .json();
    assert_eq!(admin[0]["volume"], "a");
    assert_eq!(admin[0]["lun"], 1);
    assert!(
        admin[0]["path"]
            .as_str()
            .is_some_and(|p| p.starts_with('/'))
    );
}

#[test]
fn initiators_belong_to_one_host_and_can_be_added_and_removed() {
    let (_dir, _sim, client) = start();
    let iqn = "iqn.2020-01.io.test:shared";
    assert_eq!(
        client
            .call(
                "POST",
                "/api/1.19/host/h1",
                Some(&json!({"iqnlist": [iqn]}))
            )
            .status,
        200
    );
    assert!(
        fa_msg(&client.call(
            "POST",
            "/api/1.19/host/h2",
            Some(&json!({"iqnlist": [iqn]}))
        ))
        .contains("already in use")
    );
    assert!(fa_msg(&client.call("POST", "/api/1.19/host/h1", None)).contains("already exists"));
    client.call("POST", "/api/1.19/host/h2", None);
    assert!(
        fa_msg(&client.call(
            "PUT",
            "/api/1.19/host/h2",
            Some(&json!({"addiqnlist": [iqn]}))
        ))
        .contains("already in use")
    );
    let moved = client.call(
        "PUT",
        "/api/1.19/host/h1",
        Some(&json!({"remiqnlist": [iqn], "addwwnlist": ["5001500150015000"]})),
    );
    assert_eq!(moved.json()["iqn"], json!([]));
    assert_eq!(moved.json()["wwn"], json!(["5001500150015000"]));
    assert_eq!(
        client
            .call(
                "PUT",
                "/api/1.19/host/h2",
                Some(&json!({"addiqnlist": [iqn]}))
            )
            .json()["iqn"],
        json!([iqn])
    );
    assert!(
        fa_msg(&client.call(
            "POST",
            "/api/1.19/host/h3",
            Some(&json!({"iqnlist": ["not-an-iqn"]}))
        ))
        .contains("invalid")
    );
    assert_eq!(client.call("DELETE", "/api/1.19/host/h1", None).status, 200);
    assert!(fa_msg(&client.call("GET", "/api/1.19/host/h1", None)).contains("Host does not exist"));
}

#[test]
fn target_ports_list_iscsi_and_fc_and_the_admin_api_can_leave_iscsi_only() {
    let (_dir, _sim, client) = start();
    let wwns_listed = || -> Vec<Value> {
        let ports = client.call("GET", "/api/1.19/port", None).json();
        let ports = ports.as_array().expect("a list of ports");
        assert!(
            ports.iter().any(|p| p["portal"] == "127.0.0.1:3260"),
            "the iSCSI portal stays: {ports:?}"
        );
        ports
            .iter()
            .filter(|p| !p["wwn"].is_null())
            .map(|p| p["wwn"].clone())
            .collect()
    };
    assert_eq!(
        wwns_listed(),
        vec![json!("524A937000000000"), json!("524A937000000001")]
    );

    // Cloud Block Store: iSCSI ports only.
    let reply = client.admin("PUT", "fc_wwns", Some(&json!({"wwns": []})));
    assert_eq!((reply.status, reply.json()), (200, json!({"wwns": []})));
    assert!(wwns_listed().is_empty());

    for bad in [
        json!({"wwns": ["52:4A:93:70:00:00:00:00"]}),
        json!({"wwns": "524A937000000000"}),
        json!({"ports": []}),
    ] {
        let reply = client.admin("PUT", "fc_wwns", Some(&bad));
        assert_eq!(reply.status, 400, "{bad}");
        assert!(
            reply.json()["error"]
                .as_str()
                .is_some_and(|e| !e.is_empty()),
            "{bad}: {:?}",
            reply.json()
        );
    }
    assert!(wwns_listed().is_empty(), "a refused change changes nothing");

    let reply = client.admin(
        "PUT",
        "fc_wwns",
        Some(&json!({"wwns": ["524a937000000042"]})),
    );
    assert_eq!(reply.status, 200);
    assert_eq!(wwns_listed(), vec![json!("524a937000000042")]);
    client.admin("DELETE", "fc_wwns", None);
    assert_eq!(wwns_listed().len(), 2, "back to the spec's ports");
}
