//! Protection groups as array-side schedules use them: a group of volumes, and group snapshots
//! that give each member a snapshot `<group>.<suffix>.<volume>` carrying its data, listed and
//! copied like the volume's own, and left alone when the volume is destroyed or eradicated.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use serde_json::json;

use crate::common::fa_msg;
use crate::{start, state};

#[test]
fn group_snapshots_carry_each_members_data_and_outlive_the_volume() {
    let (_dir, _sim, client) = start();
    client.call(
        "POST",
        "/api/1.19/volume/v",
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
        .open(path("v"))
        .expect("backing file");
    file.write_all_at(b"flashvol", 4096).expect("write");
    drop(file);

    let missing = client.call(
        "POST",
        "/api/1.19/pgroup/g",
        Some(&json!({"vollist": ["nope"]})),
    );
    assert_eq!(missing.status, 400);
    let group = client
        .call(
            "POST",
            "/api/1.19/pgroup/daily",
            Some(&json!({"vollist": ["v"]})),
        )
        .json();
    assert_eq!(group["volumes"], json!(["v"]));
    assert!(
        fa_msg(&client.call("POST", "/api/1.19/pgroup/daily", Some(&json!({}))))
            .contains("already exists")
    );
    assert_eq!(
        client.call("GET", "/api/1.19/pgroup/daily", None).json()["volumes"],
        json!(["v"])
    );

    let snaps = client
        .call(
            "POST",
            "/api/1.19/pgroup",
            Some(&json!({"source": ["daily"], "snap": true, "suffix": "n1"})),
        )
        .json();
    assert_eq!(snaps[0]["name"], "daily.n1");
    let listed = client
        .call("GET", "/api/1.19/volume/v?snap=true", None)
        .json();
    assert_eq!(listed[0]["name"], "daily.n1.v");
    assert_eq!(listed[0]["source"], "v");
    let mut data = [0u8; 8];
    std::fs::File::open(path("daily.n1.v"))
        .expect("snapshot backing file")
        .read_exact_at(&mut data, 4096)
        .expect("read");
    assert_eq!(&data, b"flashvol");

    let copy = client.call(
        "POST",
        "/api/1.19/volume/restored",
        Some(&json!({"source": "daily.n1.v"})),
    );
    assert_eq!(copy.status, 200, "{}", fa_msg(&copy));

    // Destroying and eradicating the volume leaves the group's snapshot of it live.
    client.call("DELETE", "/api/1.19/volume/v", None);
    client.call("DELETE", "/api/1.19/volume/v?eradicate=true", None);
    let after = state(&client);
    assert!(after["volumes"]["daily.n1.v"]["destroyed_at"].is_null());
    assert!(after["volumes"].get("v").is_none());
    assert_eq!(after["pgroups"]["daily"]["volumes"], json!([]));
}

#[test]
fn membership_changes_and_destroyed_groups_answer_as_real_arrays_do() {
    let (_dir, _sim, client) = start();
    for v in ["a", "b"] {
        client.call(
            "POST",
            &format!("/api/1.19/volume/{v}"),
            Some(&json!({"size": 1 << 20})),
        );
    }
    client.call("POST", "/api/1.19/pgroup/g", Some(&json!({})));
    let put = |body: serde_json::Value| client.call("PUT", "/api/1.19/pgroup/g", Some(&body));
    assert_eq!(
        put(json!({"addvollist": ["a"]})).json()["volumes"],
        json!(["a"])
    );
    assert!(fa_msg(&put(json!({"addvollist": ["a"]}))).contains("already belongs to"));
    assert!(fa_msg(&put(json!({"addvollist": ["nope"]}))).contains("does not exist"));
    assert!(fa_msg(&put(json!({"remvollist": ["b"]}))).contains("could not be found"));
    assert_eq!(
        put(json!({"remvollist": ["a"]})).json()["volumes"],
        json!([])
    );
    let missing = client.call(
        "PUT",
        "/api/1.19/pgroup/other",
        Some(&json!({"addvollist": ["a"]})),
    );
    assert!(fa_msg(&missing).contains("Protection group does not exist"));
    assert!(
        fa_msg(&client.call("POST", "/api/1.19/pgroup/bad_name", Some(&json!({}))))
            .contains("name is invalid")
    );

    assert_eq!(
        client.call("DELETE", "/api/1.19/pgroup/g", None).status,
        200
    );
    assert!(fa_msg(&put(json!({"addvollist": ["b"]}))).contains("has been destroyed"));
    assert!(
        fa_msg(&client.call("POST", "/api/1.19/pgroup/g", Some(&json!({}))))
            .contains("has been destroyed")
    );
    assert!(fa_msg(&client.call("GET", "/api/1.19/pgroup/g", None)).contains("does not exist"));
    let pending = client
        .call("GET", "/api/1.19/pgroup/g?pending=true", None)
        .json();
    // The 24 h eradication window, counted from the destroy: a second may pass under load.
    let remaining = pending["time_remaining"].as_u64().expect("seconds");
    assert!(remaining > 86_000 && remaining <= 86_400);
    let eradicated = client.call("DELETE", "/api/1.19/pgroup/g?eradicate=true", None);
    assert_eq!(eradicated.status, 200);
    assert_eq!(
        client
            .call("POST", "/api/1.19/pgroup/g", Some(&json!({})))
            .status,
        200
    );
}

#[test]
fn replicated_snapshots_arrive_under_their_full_names_with_transfer_fields() {
    let (_dir, _sim, client) = start();
    let data = tempfile::NamedTempFile::new().expect("data file");
    data.as_file().set_len(1 << 20).expect("size");
    data.as_file().write_all_at(b"site-a", 512).expect("write");
    let inject =
        |body: serde_json::Value| client.admin("POST", "replicated-snapshots", Some(&body));
    let done = inject(
        json!({"source_array": "site-a", "pgroup": "daily", "age_seconds": 600,
        "volumes": [{"name": "v1", "size": 1 << 20, "data": data.path()}]}),
    );
    assert_eq!(done.status, 200);
    assert_eq!(done.json()["name"], "site-a:daily.1");
    let moving = inject(
        json!({"source_array": "site-a", "pgroup": "daily", "progress": 0.25,
        "volumes": [{"name": "v1", "size": 1 << 20}]}),
    );
    assert_eq!(moving.json()["name"], "site-a:daily.2");
    assert_eq!(
        inject(json!({"source_array": "site-a", "pgroup": "daily", "suffix": 2, "volumes": []}))
            .status,
        400
    );

    let group = client
        .call("GET", "/api/1.19/pgroup/site-a:daily", None)
        .json();
    assert_eq!(
        (group["source"].clone(), group["volumes"].clone()),
        (json!("site-a"), json!(["v1"]))
    );
    let snaps = client
        .call(
            "GET",
            "/api/1.19/pgroup/site-a:daily",
            Some(&json!({"snap": true, "transfer": true})),
        )
        .json();
    assert_eq!(snaps[0]["name"], "site-a:daily.1");
    assert_eq!(snaps[0]["progress"], json!(1.0));
    assert!(snaps[0]["completed"].is_string());
    assert_eq!(snaps[1]["progress"], json!(0.25));
    assert!(snaps[1]["completed"].is_null());
    assert!(snaps[0]["created"].as_str() < snaps[1]["created"].as_str());

    let volumes = client
        .call(
            "GET",
            "/api/1.19/volume/site-a:daily.1",
            Some(&json!({"snap": true, "pgroup": true})),
        )
        .json();
    assert_eq!(volumes[0]["name"], "site-a:daily.1.v1");
    assert_eq!(volumes[0]["source"], "site-a:v1");
    let missing = client.call(
        "GET",
        "/api/1.19/volume/site-a:daily.9",
        Some(&json!({"snap": true, "pgroup": true})),
    );
    assert!(fa_msg(&missing).contains("does not exist"));

    let copy = client.call(
        "POST",
        "/api/1.19/volume/restored",
        Some(&json!({"source": "site-a:daily.1.v1"})),
    );
    assert_eq!(copy.status, 200, "{}", fa_msg(&copy));
    let mut read = [0u8; 6];
    std::fs::File::open(
        state(&client)["volumes"]["restored"]["path"]
            .as_str()
            .expect("path"),
    )
    .expect("restored backing file")
    .read_exact_at(&mut read, 512)
    .expect("read");
    assert_eq!(&read, b"site-a");

    let connections = client
        .call("GET", "/api/1.19/array/connection", None)
        .json();
    assert_eq!(connections[0]["array_name"], "site-a");
    assert_eq!(connections[0]["connected"], json!(true));
}
