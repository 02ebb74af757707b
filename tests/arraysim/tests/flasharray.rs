//! The FlashArray personality seen over HTTPS: auth and cookies, version negotiation, error
//! shapes, volumes, hosts, connections, paging, snapshots/copies, backing files and persistence.

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use common::{Client, fa_msg};
use flashvol_arraysim::{SimHandle, SimSpec};
use serde_json::{Value, json};

fn start() -> (tempfile::TempDir, SimHandle, Client) {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = SimHandle::start(SimSpec::flasharray(dir.path())).expect("simulator starts");
    let mut client = Client::new(&sim);
    assert_eq!(client.fa_login("sim-token-fa").status, 200);
    (dir, sim, client)
}

fn state(client: &Client) -> Value {
    client.admin("GET", "state", None).json()
}

#[test]
fn version_discovery_lists_1_19_and_other_versions_get_450() {
    let (_dir, _sim, client) = start();
    let versions = client.call("GET", "/api/api_version", None).json();
    let list: Vec<&str> = versions["version"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(list.contains(&"1.19") && list.contains(&"1.0"));
    let reply = client.call("GET", "/api/2.4/volume", None);
    assert_eq!(reply.status, 450);

    client.admin(
        "PUT",
        "api_versions",
        Some(&json!({"versions": ["1.16", "1.17"]})),
    );
    assert_eq!(client.call("GET", "/api/1.19/volume", None).status, 450);
    assert_eq!(client.call("GET", "/api/1.17/volume", None).status, 200);
    assert_eq!(
        client.call("GET", "/api/api_version", None).json()["version"],
        json!(["1.16", "1.17"])
    );
}

#[test]
fn calls_need_a_session_and_every_200_sets_the_cookie_again() {
    let (_dir, sim, mut client) = start();
    let cookie = client.cookie.clone().expect("login set a cookie");
    for _ in 0..3 {
        let reply = client.call("GET", "/api/1.19/array", None);
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert!(
            reply
                .header("set-cookie")
                .is_some_and(|c| c.starts_with(&format!("session={cookie}")))
        );
    }
    client.cookie = None;
    assert_eq!(client.call("GET", "/api/1.19/volume", None).status, 401);
    assert_eq!(client.fa_login("wrong-token").status, 401);
    assert_eq!(sim.stats().authentications, 1);

    client.cookie = Some(cookie);
    assert_eq!(
        client.call("DELETE", "/api/1.19/auth/session", None).status,
        200
    );
    assert_eq!(client.call("GET", "/api/1.19/volume", None).status, 401);
}

#[test]
fn volume_lifecycle_goes_destroyed_then_eradicated_with_the_expected_errors() {
    let (_dir, _sim, client) = start();
    let created = client.call(
        "POST",
        "/api/1.19/volume/pvc-1",
        Some(&json!({"size": "1G"})),
    );
    assert_eq!(created.status, 200);
    let volume = created.json();
    assert_eq!(volume["size"], json!(1u64 << 30));
    assert_eq!(volume["source"], Value::Null);
    let serial = volume["serial"].as_str().expect("serial").to_string();
    let array_id = client.call("GET", "/api/1.19/array", None).json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    let prefix: String = array_id.replace('-', "")[..16].to_ascii_uppercase();
    assert_eq!(serial.len(), 24);
    assert!(serial.starts_with(&prefix), "{serial} vs {array_id}");

    let duplicate = client.call(
        "POST",
        "/api/1.19/volume/pvc-1",
        Some(&json!({"size": 1024})),
    );
    assert_eq!(duplicate.status, 400);
    assert!(fa_msg(&duplicate).contains("already exists"));
    assert_eq!(duplicate.json()[0]["ctx"], "pvc-1");

    let path = state(&client)["volumes"]["pvc-1"]["path"]
        .as_str()
        .expect("path")
        .to_string();
    assert_eq!(
        std::fs::metadata(&path).expect("backing file").len(),
        1 << 30
    );

    assert_eq!(
        client
            .call(
                "DELETE",
                "/api/1.19/volume/pvc-1",
                Some(&json!({"eradicate": true}))
            )
            .status,
        400
    );
    assert_eq!(
        client.call("DELETE", "/api/1.19/volume/pvc-1", None).status,
        200
    );
    assert!(
        fa_msg(&client.call("DELETE", "/api/1.19/volume/pvc-1", None))
            .contains("has been destroyed")
    );
    assert!(fa_msg(&client.call("GET", "/api/1.19/volume/pvc-1", None)).contains("does not exist"));
    assert!(
        fa_msg(&client.call(
            "POST",
            "/api/1.19/volume/pvc-1",
            Some(&json!({"size": 1024}))
        ))
        .contains("has been destroyed")
    );

    let pending = client
        .call("GET", "/api/1.19/volume?pending_only=true", None)
        .json();
    assert_eq!(pending[0]["name"], "pvc-1");
    let remaining = pending[0]["time_remaining"].as_u64().expect("seconds");
    assert!(remaining > 86_000 && remaining <= 86_400);
    assert_eq!(
        client.call("GET", "/api/1.19/volume", None).json(),
        json!([])
    );

    assert_eq!(
        client
            .call(
                "PUT",
                "/api/1.19/volume/pvc-1",
                Some(&json!({"action": "recover"}))
            )
            .status,
        200
    );
    assert_eq!(
        client.call("GET", "/api/1.19/volume/pvc-1", None).json()["serial"],
        json!(serial)
    );
    client.call("DELETE", "/api/1.19/volume/pvc-1", None);
    assert_eq!(
        client
            .call(
                "DELETE",
                "/api/1.19/volume/pvc-1",
                Some(&json!({"eradicate": true}))
            )
            .status,
        200
    );
    assert!(!std::path::Path::new(&path).exists());
    assert!(
        fa_msg(&client.call("GET", "/api/1.19/volume/pvc-1?pending=true", None))
            .contains("does not exist")
    );
}

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
fn paging_returns_next_token_on_every_page_and_an_empty_last_page() {
    let (_dir, _sim, client) = start();
    for i in 0..5 {
        client.call(
            "POST",
            &format!("/api/1.19/volume/k8s-pvc-{i}"),
            Some(&json!({"size": 512})),
        );
    }
    client.call(
        "POST",
        "/api/1.19/volume/other",
        Some(&json!({"size": 512})),
    );
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let body = match &token {
            Some(t) => json!({"names": "k8s-pvc-*", "limit": 2, "token": t}),
            None => json!({"names": "k8s-pvc-*", "limit": 2}),
        };
        let reply = client.call("GET", "/api/1.19/volume", Some(&body));
        let next = reply.header("x-next-token").map(str::to_string);
        assert!(next.is_some(), "x-next-token on every page");
        let page = reply.json();
        let page = page.as_array().expect("list");
        pages += 1;
        if page.is_empty() {
            break;
        }
        names.extend(
            page.iter()
                .filter_map(|v| v["name"].as_str().map(str::to_string)),
        );
        token = next;
        assert!(pages < 10, "paging must terminate");
    }
    assert_eq!(
        names,
        (0..5).map(|i| format!("k8s-pvc-{i}")).collect::<Vec<_>>()
    );
    assert_eq!(pages, 4);
    let query = client.call(
        "GET",
        "/api/1.19/volume?names=k8s-pvc-1,other&limit=1",
        None,
    );
    assert_eq!(query.json().as_array().map(Vec::len), Some(1));
    assert!(
        fa_msg(&client.call("GET", "/api/1.19/volume?names=missing", None))
            .contains("does not exist")
    );
    assert_eq!(
        client
            .call("GET", "/api/1.19/volume?names=nothing*", None)
            .json(),
        json!([])
    );
}

#[test]
fn snapshots_and_copies_carry_the_data_and_resizes_follow_the_rules() {
    let (_dir, _sim, client) = start();
    client.call(
        "POST",
        "/api/1.19/volume/src",
        Some(&json!({"size": 8 << 20})),
    );
    let path = |name: &str| {
        state(&client)["volumes"][name]["path"]
            .as_str()
            .expect("path")
            .to_string()
    };
    let file = OpenOptions::new()
        .write(true)
        .open(path("src"))
        .expect("backing file");
    file.write_all_at(b"flashvol", 4096).expect("write");
    drop(file);

    let snaps = client
        .call(
            "POST",
            "/api/1.19/volume",
            Some(&json!({"source": ["src"], "snap": true, "suffix": "s1"})),
        )
        .json();
    assert_eq!(snaps[0]["name"], "src.s1");
    assert_eq!(snaps[0]["source"], "src");
    assert!(
        fa_msg(&client.call(
            "POST",
            "/api/1.19/volume",
            Some(&json!({"source": ["src"], "snap": true, "suffix": "s1"}))
        ))
        .contains("already exists")
    );
    let listed = client
        .call("GET", "/api/1.19/volume/src?snap=true", None)
        .json();
    assert_eq!(listed[0]["name"], "src.s1");

    let clone = client
        .call(
            "POST",
            "/api/1.19/volume/clone",
            Some(&json!({"source": "src.s1"})),
        )
        .json();
    assert_eq!(clone["source"], "src", "source names the original volume");
    let mut buffer = [0u8; 8];
    std::fs::File::open(path("clone"))
        .expect("clone file")
        .read_exact_at(&mut buffer, 4096)
        .expect("read");
    assert_eq!(&buffer, b"flashvol");
    assert!(
        fa_msg(&client.call(
            "POST",
            "/api/1.19/volume/clone",
            Some(&json!({"source": "src"}))
        ))
        .contains("already exists")
    );
    assert_eq!(
        client
            .call(
                "POST",
                "/api/1.19/volume/clone",
                Some(&json!({"source": "src", "overwrite": true}))
            )
            .status,
        200
    );

    let grown = client
        .call(
            "PUT",
            "/api/1.19/volume/clone",
            Some(&json!({"size": "16M", "truncate": false})),
        )
        .json();
    assert_eq!(grown, json!({"name": "clone", "size": 16 << 20}));
    assert_eq!(
        std::fs::metadata(path("clone")).expect("meta").len(),
        16 << 20
    );
    assert!(
        fa_msg(&client.call(
            "PUT",
            "/api/1.19/volume/clone",
            Some(&json!({"size": "1M"}))
        ))
        .contains("truncation")
    );
    assert_eq!(
        client
            .call(
                "PUT",
                "/api/1.19/volume/clone",
                Some(&json!({"size": "1M", "truncate": true}))
            )
            .status,
        200
    );

    let qos = client
        .call(
            "PUT",
            "/api/1.19/volume/clone",
            Some(&json!({"bandwidth_limit": "10M", "iops_limit": 1000})),
        )
        .json();
    assert_eq!(qos["bandwidth_limit"], json!(10 << 20));
    let cleared = client
        .call(
            "PUT",
            "/api/1.19/volume/clone",
            Some(&json!({"iops_limit": ""})),
        )
        .json();
    assert_eq!(cleared["iops_limit"], Value::Null);
    assert_eq!(
        client
            .call("GET", "/api/1.19/volume/clone?qos=true", None)
            .json()["bandwidth_limit"],
        json!(10 << 20)
    );

    assert_eq!(
        client
            .call(
                "PUT",
                "/api/1.19/volume/src",
                Some(&json!({"name": "renamed"}))
            )
            .json()["name"],
        "renamed"
    );
    assert_eq!(
        client
            .call("GET", "/api/1.19/volume?snap=true", None)
            .json()[0]["name"],
        "renamed.s1"
    );
}

#[test]
fn space_counts_allocated_bytes_of_backing_files() {
    let (_dir, _sim, client) = start();
    client.call("POST", "/api/1.19/volume/v", Some(&json!({"size": "1G"})));
    let before = client
        .call("GET", "/api/1.19/array?space=true", None)
        .json()[0]
        .clone();
    assert_eq!(before["provisioned"], json!(1u64 << 30));
    assert_eq!(before["capacity"], json!(10u64 << 40));
    let path = state(&client)["volumes"]["v"]["path"]
        .as_str()
        .expect("path")
        .to_string();
    OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open")
        .write_all_at(&vec![7u8; 1 << 20], 0)
        .expect("write");
    let after = client
        .call("GET", "/api/1.19/array", Some(&json!({"space": true})))
        .json()[0]
        .clone();
    let used = after["total"].as_u64().expect("total");
    assert!(
        used >= 1 << 20,
        "used {used} should include the written MiB"
    );
}

#[test]
fn state_and_sessions_survive_a_restart_on_the_same_port() {
    let (_dir, mut sim, client) = start();
    let endpoint = sim.endpoint();
    let first = client
        .call("POST", "/api/1.19/volume/keep", Some(&json!({"size": 512})))
        .json();
    client.call(
        "POST",
        "/api/1.19/host/h",
        Some(&json!({"iqnlist": ["iqn.2020-01.io.test:h"]})),
    );
    client.call("POST", "/api/1.19/host/h/volume/keep", None);
    sim.restart().expect("restart");
    assert_eq!(sim.endpoint(), endpoint);
    assert_eq!(
        client.call("GET", "/api/1.19/volume/keep", None).json(),
        first
    );
    assert_eq!(
        client.call("GET", "/api/1.19/host/h/volume", None).json()[0]["lun"],
        1
    );
    let second = client
        .call("POST", "/api/1.19/volume/next", Some(&json!({"size": 512})))
        .json();
    assert_ne!(
        second["serial"], first["serial"],
        "serial counter persisted"
    );
    assert_eq!(sim.stats().authentications, 1, "no re-login was needed");
}

#[test]
fn injected_faults_fail_drop_and_then_clear() {
    let (_dir, sim, client) = start();
    let faults = json!({"rules": [
        {"method": "POST", "path": "/api/*/volume/*", "count": 2, "action": {"kind": "status", "status": 503}},
        {"method": "GET", "path": "/api/*/host", "count": 1, "action": {"kind": "drop"}}
    ]});
    assert_eq!(client.admin("POST", "faults", Some(&faults)).status, 200);
    let body = json!({"size": 512});
    assert_eq!(
        client
            .call("POST", "/api/1.19/volume/f", Some(&body))
            .status,
        503
    );
    assert_eq!(
        client
            .call("POST", "/api/1.19/volume/f", Some(&body))
            .status,
        503
    );
    assert_eq!(
        client
            .call("POST", "/api/1.19/volume/f", Some(&body))
            .status,
        200
    );
    assert!(
        client.try_call("GET", "/api/1.19/host", None, &[]).is_err(),
        "connection dropped without reply"
    );
    assert_eq!(client.call("GET", "/api/1.19/host", None).status, 200);

    sim.set_faults(flashvol_arraysim::Faults {
        error_rate: 1.0,
        ..Default::default()
    });
    assert_eq!(client.call("GET", "/api/1.19/volume", None).status, 503);
    assert_eq!(
        client.admin("DELETE", "faults", None).json()["error_rate"],
        json!(0.0)
    );
    assert_eq!(client.call("GET", "/api/1.19/volume", None).status, 200);
    assert_eq!(
        client
            .admin("POST", "faults", Some(&json!({"error_rate": 2})))
            .status,
        400
    );
    assert_eq!(
        client
            .admin("POST", "faults", Some(&json!({"bogus": 1})))
            .status,
        400
    );

    let stats = client.admin("GET", "stats", None).json();
    assert_eq!(stats["calls"]["POST volume/{name}"], 3);
    assert_eq!(stats["authentications"], 1);
}

#[test]
fn parameters_are_read_from_query_or_body_and_bad_input_is_rejected() {
    let (_dir, _sim, client) = start();
    assert_eq!(
        client
            .call("POST", "/api/1.19/volume/q?size=1M", None)
            .status,
        200
    );
    assert_eq!(
        client
            .call("GET", "/api/1.19/volume/q?space=True", None)
            .json()["size"],
        json!(1 << 20)
    );
    let bad_json = client
        .try_call("GET", "/api/1.19/volume", None, &[])
        .expect("call");
    assert_eq!(bad_json.status, 200);
    assert!(
        fa_msg(&client.call("POST", "/api/1.19/volume/bad", Some(&json!({"size": 1000}))))
            .contains("Invalid size")
    );
    assert!(
        fa_msg(&client.call("POST", "/api/1.19/volume/-bad", Some(&json!({"size": 512}))))
            .contains("invalid")
    );
    assert!(
        fa_msg(&client.call("POST", "/api/1.19/volume/nosize", Some(&json!({})))).contains("size")
    );
    assert_eq!(
        client.call("GET", "/api/1.19/nothing-here", None).status,
        404
    );
}
