//! The FlashBlade personality seen over HTTPS: login tokens, file systems with deep-merged PATCH,
//! destroy/eradicate, snapshots, paging and filters, error bodies, VIPs and persistence.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::{Client, assert_internal_error_without_path, fb_msg};
use flashvol_arraysim::{SimHandle, SimSpec};
use serde_json::{Value, json};

fn start() -> (tempfile::TempDir, SimHandle, Client) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spec = SimSpec::flashblade(dir.path());
    spec.data_vips = vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 10))];
    let sim = SimHandle::start(spec).expect("simulator starts");
    let mut client = Client::new(&sim);
    assert_eq!(client.fb_login("sim-token-fb").status, 200);
    (dir, sim, client)
}

fn create_fs(client: &Client, name: &str) -> Value {
    let body = json!({"name": name, "provisioned": 1u64 << 30, "hard_limit_enabled": true,
        "nfs": {"rules": "*(rw,no_root_squash)", "v3_enabled": true, "v4_1_enabled": true}});
    let reply = client.call("POST", "/api/1.12/file-systems", Some(&body));
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json()["items"][0].clone()
}

#[test]
fn login_issues_a_token_and_calls_without_a_valid_one_are_refused() {
    let (_dir, sim, mut client) = start();
    let versions = client.call("GET", "/api/api_version", None).json();
    assert!(
        versions["versions"]
            .as_array()
            .expect("list")
            .contains(&json!("1.12"))
    );
    assert_eq!(
        client.call("GET", "/api/1.12/file-systems", None).status,
        200
    );
    let token = client.auth_token.take();
    assert_eq!(
        client.call("GET", "/api/1.12/file-systems", None).status,
        401
    );
    client.auth_token = Some("forged".to_string());
    assert_eq!(
        client.call("GET", "/api/1.12/file-systems", None).status,
        403
    );
    client.auth_token = None;
    assert_eq!(client.fb_login("wrong").status, 401);
    assert_eq!(sim.stats().authentications, 1);
    client.auth_token = token;
    assert_eq!(client.call("POST", "/api/logout", None).status, 200);
    assert_eq!(
        client.call("GET", "/api/1.12/file-systems", None).status,
        403
    );
}

#[test]
fn file_system_lifecycle_with_deep_merged_patch_and_eradicate_after_destroy() {
    let (_dir, _sim, client) = start();
    let fs = create_fs(&client, "pvc-fs1");
    assert_eq!(fs["destroyed"], false);
    assert_eq!(fs["nfs"]["rules"], "*(rw,no_root_squash)");
    let dup = client.call(
        "POST",
        "/api/1.12/file-systems",
        Some(&json!({"name": "pvc-fs1"})),
    );
    assert_eq!(dup.status, 400);
    assert!(fb_msg(&dup).contains("already exists"));
    assert_eq!(dup.json()["errors"][0]["context"], "pvc-fs1");

    let dir = client.admin("GET", "filesystems/pvc-fs1", None).json();
    let path = dir["path"].as_str().expect("path").to_string();
    assert!(std::path::Path::new(&path).is_dir());

    let patched = client.call(
        "PATCH",
        "/api/1.12/file-systems?name=pvc-fs1",
        Some(&json!({"nfs": {"rules": "10.0.0.0/24(rw)"}, "provisioned": 2u64 << 30})),
    );
    let item = &patched.json()["items"][0];
    assert_eq!(item["nfs"]["rules"], "10.0.0.0/24(rw)");
    assert_eq!(item["nfs"]["v3_enabled"], true, "other nfs keys are kept");
    assert_eq!(item["provisioned"], json!(2u64 << 30));

    let delete_live = client.call("DELETE", "/api/1.12/file-systems?name=pvc-fs1", None);
    assert_eq!(delete_live.status, 400);
    let destroy = json!({"destroyed": true, "nfs": {"v3_enabled": false, "v4_1_enabled": false}, "smb": {"enabled": false}, "http": {"enabled": false}});
    let destroyed = client
        .call(
            "PATCH",
            "/api/1.12/file-systems?name=pvc-fs1",
            Some(&destroy),
        )
        .json();
    assert_eq!(destroyed["items"][0]["destroyed"], true);
    let remaining = destroyed["items"][0]["time_remaining"]
        .as_u64()
        .expect("ms");
    assert!(remaining > 86_000_000 && remaining <= 86_400_000);
    assert_eq!(
        client.admin("GET", "filesystems/pvc-fs1", None).json()["destroyed"],
        true
    );
    let listed = client
        .call("GET", "/api/1.12/file-systems?names=pvc-fs1", None)
        .json();
    assert_eq!(
        listed["items"][0]["destroyed"], true,
        "destroyed file systems are still listed"
    );

    let recovered = client
        .call(
            "PATCH",
            "/api/1.12/file-systems?name=pvc-fs1",
            Some(&json!({"destroyed": false})),
        )
        .json();
    assert_eq!(recovered["items"][0]["time_remaining"], Value::Null);
    client.call(
        "PATCH",
        "/api/1.12/file-systems?name=pvc-fs1",
        Some(&destroy),
    );
    let eradicated = client.call("DELETE", "/api/1.12/file-systems?name=pvc-fs1", None);
    assert_eq!((eradicated.status, eradicated.text.as_str()), (200, ""));
    assert!(!std::path::Path::new(&path).exists());
    assert_eq!(client.admin("GET", "filesystems/pvc-fs1", None).status, 404);
    let missing = client.call("GET", "/api/1.12/file-systems?names=pvc-fs1", None);
    assert_eq!(missing.status, 400);
    assert!(fb_msg(&missing).contains("does not exist"));
}

#[test]
fn listing_pages_with_continuation_tokens_and_filters_by_name_glob() {
    let (_dir, _sim, client) = start();
    for i in 0..5 {
        create_fs(&client, &format!("k8s-pvc-{i}"));
    }
    create_fs(&client, "other");
    let mut names = Vec::new();
    let mut path = "/api/1.12/file-systems?filter=name%3D%27k8s-*%27&limit=2".to_string();
    loop {
        let reply = client.call("GET", &path, None).json();
        assert_eq!(reply["pagination_info"]["total_item_count"], 5);
        names.extend(
            reply["items"]
                .as_array()
                .expect("items")
                .iter()
                .filter_map(|i| i["name"].as_str().map(str::to_string)),
        );
        match reply["pagination_info"]["continuation_token"].as_str() {
            Some(token) => {
                path = format!(
                    "/api/1.12/file-systems?filter=name%3D%27k8s-*%27&limit=2&token={token}"
                )
            }
            None => break,
        }
    }
    assert_eq!(
        names,
        (0..5).map(|i| format!("k8s-pvc-{i}")).collect::<Vec<_>>()
    );
    let bad_filter = client.call("GET", "/api/1.12/file-systems?filter=name%3E1", None);
    assert_eq!(bad_filter.status, 400);
    let sorted = client
        .call("GET", "/api/1.12/file-systems?sort=name-&limit=1", None)
        .json();
    assert_eq!(sorted["items"][0]["name"], "other");
}

#[test]
fn snapshots_are_created_from_sources_and_destroyed_before_eradication() {
    let (_dir, _sim, client) = start();
    create_fs(&client, "fs");
    let created = client
        .call(
            "POST",
            "/api/1.12/file-system-snapshots?sources=fs",
            Some(&json!({"suffix": "s1"})),
        )
        .json();
    assert_eq!(created["items"][0]["name"], "fs.s1");
    assert_eq!(created["items"][0]["owner"]["name"], "fs");
    let dup = client.call(
        "POST",
        "/api/1.12/file-system-snapshots?sources=fs",
        Some(&json!({"suffix": "s1"})),
    );
    assert!(fb_msg(&dup).contains("already exists"));
    let listed = client
        .call(
            "GET",
            "/api/1.12/file-system-snapshots?names_or_sources=fs",
            None,
        )
        .json();
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        client
            .call("DELETE", "/api/1.12/file-system-snapshots?name=fs.s1", None)
            .status,
        400
    );
    let destroyed = client
        .call(
            "PATCH",
            "/api/1.12/file-system-snapshots?name=fs.s1",
            Some(&json!({"destroyed": true})),
        )
        .json();
    assert_eq!(destroyed["items"][0]["destroyed"], true);
    assert_eq!(
        client
            .call("DELETE", "/api/1.12/file-system-snapshots?name=fs.s1", None)
            .status,
        200
    );
    assert_eq!(
        client
            .call(
                "GET",
                "/api/1.12/file-system-snapshots?names_or_sources=fs.s1",
                None
            )
            .status,
        400
    );
}

fn fs_dir(client: &Client, name: &str) -> std::path::PathBuf {
    let reply = client.admin("GET", &format!("filesystems/{name}"), None);
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json()["path"].as_str().expect("path").into()
}

#[test]
fn a_file_system_made_from_a_snapshot_holds_the_data_as_it_was() {
    let (_dir, _sim, client) = start();
    create_fs(&client, "fs");
    std::fs::write(fs_dir(&client, "fs").join("data"), "before").expect("write");
    let snap = client.call(
        "POST",
        "/api/1.12/file-system-snapshots?sources=fs",
        Some(&json!({"suffix": "s1"})),
    );
    assert_eq!(snap.status, 200, "{}", snap.text);
    std::fs::write(fs_dir(&client, "fs").join("data"), "after").expect("change");

    let copy = |version: &str, name: &str, source: &str| {
        client.call(
            "POST",
            &format!("/api/{version}/file-systems"),
            Some(&json!({"name": name, "source": {"name": source}})),
        )
    };
    let made = copy("1.9", "restored", "fs.s1");
    assert_eq!(made.status, 200, "{}", made.text);
    assert_eq!(
        made.json()["items"][0]["provisioned"],
        1u64 << 30,
        "the source's size"
    );
    let restored = fs_dir(&client, "restored");
    assert_eq!(
        std::fs::read_to_string(restored.join("data")).expect("read"),
        "before"
    );
    std::fs::write(restored.join("data"), "diverged").expect("write copy");
    assert_eq!(
        std::fs::read_to_string(fs_dir(&client, "fs").join("data")).expect("read"),
        "after"
    );

    assert!(fb_msg(&copy("1.9", "restored", "fs.s1")).contains("already exists"));
    assert!(fb_msg(&copy("1.12", "other", "fs.nope")).contains("Snapshot does not exist"));
    assert!(
        fb_msg(&copy("1.8.1", "old", "fs.s1")).contains("unsupported file system attribute source")
    );
    let overwrite = client.call(
        "POST",
        "/api/1.12/file-systems?overwrite=true",
        Some(&json!({"name": "fs", "source": {"name": "fs.s1"}})),
    );
    assert_eq!(
        overwrite.status, 400,
        "the simulator never reverts in place"
    );
    client.call(
        "PATCH",
        "/api/1.12/file-system-snapshots?name=fs.s1",
        Some(&json!({"destroyed": true})),
    );
    assert!(fb_msg(&copy("1.12", "late", "fs.s1")).contains("Snapshot has been destroyed"));
}

#[test]
fn array_space_and_network_interfaces_reflect_the_spec() {
    let (_dir, _sim, client) = start();
    let space = client.call("GET", "/api/1.12/arrays/space", None).json();
    assert_eq!(space["items"][0]["capacity"], json!(10u64 << 40));
    let vips = client
        .call("GET", "/api/1.12/network-interfaces", None)
        .json();
    let data: Vec<&Value> = vips["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["services"] == json!(["data"]))
        .collect();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["address"], "10.0.0.10");
    assert_eq!(
        client.call("GET", "/api/1.12/arrays", None).json()["items"][0]["os"],
        "Purity//FB"
    );
}

#[test]
fn file_systems_and_tokens_survive_a_restart() {
    let (_dir, mut sim, client) = start();
    create_fs(&client, "durable");
    sim.restart().expect("restart");
    let listed = client.call("GET", "/api/1.12/file-systems?names=durable", None);
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.json()["items"][0]["nfs"]["v4_1_enabled"], true);
}

#[test]
fn query_booleans_are_case_insensitive_and_bodies_are_validated() {
    let (_dir, _sim, client) = start();
    let overwrite = client.call(
        "POST",
        "/api/1.12/file-systems?overwrite=True",
        Some(&json!({"name": "x"})),
    );
    assert!(fb_msg(&overwrite).contains("not supported"));
    assert!(
        fb_msg(&client.call(
            "POST",
            "/api/1.12/file-systems",
            Some(&json!({"provisioned": 1}))
        ))
        .contains("name")
    );
    assert!(
        fb_msg(&client.call(
            "POST",
            "/api/1.12/file-systems",
            Some(&json!({"name": "y", "colour": 1}))
        ))
        .contains("colour")
    );
    assert_eq!(
        client
            .call("GET", "/api/1.12/file-systems?names=a,b", None)
            .status,
        400
    );
}

#[test]
fn file_systems_of_any_size_are_created_and_grown_within_the_field_range() {
    let (_dir, _sim, client) = start();
    let body = json!({"name": "big", "provisioned": 500u64 << 40, "hard_limit_enabled": true});
    let created = client.call("POST", "/api/1.12/file-systems", Some(&body));
    assert_eq!(created.status, 200, "{}", created.text);
    let grown = client.call(
        "PATCH",
        "/api/1.12/file-systems?name=big",
        Some(&json!({"provisioned": 4u64 << 50})),
    );
    assert_eq!(grown.json()["items"][0]["provisioned"], json!(4u64 << 50));
    assert_eq!(grown.json()["items"][0]["hard_limit_enabled"], true);
    let beyond = client.call(
        "PATCH",
        "/api/1.12/file-systems?name=big",
        Some(&json!({"provisioned": u64::MAX})),
    );
    assert_eq!(beyond.status, 400);
    assert!(fb_msg(&beyond).contains("provisioned"), "{}", beyond.text);
}

#[test]
fn a_failure_inside_the_simulator_is_answered_without_an_internal_path() {
    let (dir, _sim, client) = start();
    std::fs::write(dir.path().join("filesystems"), "in the way").expect("block the dir");
    let body = json!({"name": "fs1", "provisioned": 1u64 << 30});
    let failed = client.call("POST", "/api/1.12/file-systems", Some(&body));
    assert_internal_error_without_path(dir.path(), &failed, &fb_msg(&failed));
}

#[test]
fn the_admin_eradicate_removes_every_destroyed_file_system_and_nothing_live() {
    let (_dir, _sim, client) = start();
    create_fs(&client, "pvc-gone");
    create_fs(&client, "pvc-kept");
    let destroy = json!({"destroyed": true, "nfs": {"v3_enabled": false, "v4_1_enabled": false}});
    let destroyed = client.call(
        "PATCH",
        "/api/1.12/file-systems?name=pvc-gone",
        Some(&destroy),
    );
    assert_eq!(destroyed.status, 200, "{}", destroyed.text);

    let reply = client.admin("POST", "eradicate", None);
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json(), json!({"eradicated": 1}));
    assert_eq!(
        client.admin("GET", "filesystems/pvc-gone", None).status,
        404
    );
    assert_eq!(
        client.admin("GET", "filesystems/pvc-kept", None).json()["destroyed"],
        false
    );
}

#[test]
fn a_flashblade_has_no_fc_ports_to_change() {
    let (_dir, _sim, client) = start();
    let reply = client.admin("PUT", "fc_wwns", Some(&json!({"wwns": []})));
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"], "only a FlashArray has FC ports");
}
