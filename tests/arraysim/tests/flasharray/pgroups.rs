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
