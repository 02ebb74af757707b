//! Volumes end to end: the lifecycle through destroyed and eradicated with Purity's errors,
//! snapshots and copies that carry the data, resizes by the rules, and space counted from the
//! backing files.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use serde_json::{Value, json};

use crate::common::{assert_internal_error_without_path, fa_msg};
use crate::{start, state};

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

    // An administrator adds shelves: the admin API changes the capacity until reset.
    let raised = client.admin("PUT", "capacity", Some(&json!({"capacity": "2P"})));
    assert_eq!(raised.json(), json!({"capacity": 2u64 << 50}));
    let space = |c: &crate::common::Client| {
        c.call("GET", "/api/1.19/array?space=true", None).json()[0]["capacity"].clone()
    };
    assert_eq!(space(&client), json!(2u64 << 50));
    assert_eq!(
        client
            .admin("PUT", "capacity", Some(&json!({"capacity": "lots"})))
            .status,
        400
    );
    client.admin("DELETE", "capacity", None);
    assert_eq!(space(&client), json!(10u64 << 40));
}

#[test]
fn volumes_of_every_size_purity_accepts_are_created_and_extended_thin() {
    let (_dir, _sim, client) = start();
    let created = client.call(
        "POST",
        "/api/1.19/volume/big",
        Some(&json!({"size": "500T"})),
    );
    assert_eq!(created.status, 200, "{}", created.text);
    assert_eq!(created.json()["size"], json!(500u64 << 40));
    for size in [1u64 << 50, 4 << 50] {
        let grown = client.call(
            "PUT",
            "/api/1.19/volume/big",
            Some(&json!({"size": size, "truncate": false})),
        );
        assert_eq!(grown.json(), json!({"name": "big", "size": size}));
    }
    let beyond = client.call(
        "PUT",
        "/api/1.19/volume/big",
        Some(&json!({"size": (4u64 << 50) + 512})),
    );
    assert_eq!(beyond.status, 400);
    assert!(
        fa_msg(&beyond).contains("exceeds the maximum of 4P"),
        "{}",
        beyond.text
    );
    let got = client.call("GET", "/api/1.19/volume/big", None).json();
    assert_eq!(
        got["size"],
        json!(4u64 << 50),
        "the refused extend changed nothing"
    );

    // Thin: the backing file is as long as the host allows and holds (almost) nothing.
    let path = state(&client)["volumes"]["big"]["path"]
        .as_str()
        .expect("path")
        .to_string();
    let meta = std::fs::metadata(&path).expect("backing file");
    assert!(
        meta.len() <= 4 << 50 && meta.len() >= 1 << 30,
        "{}",
        meta.len()
    );
    use std::os::unix::fs::MetadataExt;
    assert!(meta.blocks() * 512 < 1 << 20, "sparse");

    // A snapshot and a copy of it are as large as their source.
    let snap = client.call(
        "POST",
        "/api/1.19/volume",
        Some(&json!({"source": ["big"], "snap": true, "suffix": "s1"})),
    );
    assert_eq!(snap.status, 200, "{}", snap.text);
    let copy = client.call(
        "POST",
        "/api/1.19/volume/big-copy",
        Some(&json!({"source": "big.s1"})),
    );
    assert_eq!(copy.json()["size"], json!(4u64 << 50));
}

#[test]
fn a_failure_inside_the_simulator_is_answered_without_an_internal_path() {
    let (dir, _sim, client) = start();
    // The backing files' directory cannot be created: a file stands where it would go.
    std::fs::write(dir.path().join("volumes"), "in the way").expect("block the dir");
    let failed = client.call("POST", "/api/1.19/volume/v1", Some(&json!({"size": "1G"})));
    assert_internal_error_without_path(dir.path(), &failed, &fa_msg(&failed));
    assert!(!failed.text.contains("/volumes"), "{}", failed.text);
    assert_eq!(
        client.call("GET", "/api/1.19/volume/v1", None).status,
        400,
        "nothing was created"
    );
}

#[test]
fn the_admin_eradicate_removes_every_destroyed_volume_and_its_data_and_nothing_live() {
    let (_dir, _sim, client) = start();
    for name in ["pvc-gone-1", "pvc-gone-2", "pvc-kept"] {
        let created = client.call(
            "POST",
            &format!("/api/1.19/volume/{name}"),
            Some(&json!({"size": "1G"})),
        );
        assert_eq!(created.status, 200, "{}", created.text);
    }
    for name in ["pvc-gone-1", "pvc-gone-2"] {
        let destroyed = client.call("DELETE", &format!("/api/1.19/volume/{name}"), None);
        assert_eq!(destroyed.status, 200, "{}", destroyed.text);
    }
    let backing = |name: &str| -> std::path::PathBuf {
        state(&client)["volumes"][name]["path"]
            .as_str()
            .expect("backing path")
            .into()
    };
    let gone_file = backing("pvc-gone-1");
    assert!(gone_file.exists());

    let reply = client.admin("POST", "eradicate", None);
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json(), json!({"eradicated": 2}));
    let pending = client
        .call("GET", "/api/1.19/volume?pending_only=true", None)
        .json();
    assert_eq!(pending, json!([]), "no destroyed volume left");
    assert!(!gone_file.exists(), "the data went with it");
    assert!(backing("pvc-kept").exists(), "the live volume stays");
    let reused = client.call(
        "POST",
        "/api/1.19/volume/pvc-gone-1",
        Some(&json!({"size": "1G"})),
    );
    assert_eq!(
        reused.status, 200,
        "the name is free again: {}",
        reused.text
    );
    assert_eq!(
        client.admin("POST", "eradicate", None).json(),
        json!({"eradicated": 0})
    );
}
