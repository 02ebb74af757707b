//! State and sessions survive a restart on the same port (unless the simulator was told to keep
//! its state in memory); injected faults fail or drop calls, then clear.

use flashvol_arraysim::{SimHandle, SimSpec};
use serde_json::json;

use crate::common::{Client, fa_msg};
use crate::start;

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
fn without_persistence_changes_are_served_from_memory_and_never_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = SimSpec {
        persist: false,
        ..SimSpec::flasharray(dir.path())
    };
    let mut sim = SimHandle::start(spec).expect("simulator starts");
    let mut client = Client::new(&sim);
    assert_eq!(client.fa_login("sim-token-fa").status, 200);
    let created = client
        .call(
            "POST",
            "/api/1.19/volume/fleeting",
            Some(&json!({"size": 512})),
        )
        .json();
    assert_eq!(
        client.call("GET", "/api/1.19/volume/fleeting", None).json(),
        created
    );
    assert!(
        !dir.path().join("state.json").exists(),
        "no state file is written"
    );
    sim.restart().expect("restart");
    assert_eq!(client.fa_login("sim-token-fa").status, 200);
    assert!(
        fa_msg(&client.call("GET", "/api/1.19/volume/fleeting", None)).contains("does not exist"),
        "a restart starts from what was on disk: nothing"
    );
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
