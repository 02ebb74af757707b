//! `/_sim/space`: an array made to report a used byte count and a data reduction ratio of a
//! test's choosing (a full array without writing the data), through the admin API and in-process.

mod common;

use common::Client;
use flashvol_arraysim::{SimHandle, SimSpec, SpaceOverride};
use serde_json::{Value, json};

fn start(spec: SimSpec, token: &str) -> (SimHandle, Client) {
    let sim = SimHandle::start(spec).expect("simulator starts");
    let mut client = Client::new(&sim);
    let login = if token.starts_with("sim-token-fa") {
        client.fa_login(token)
    } else {
        client.fb_login(token)
    };
    assert_eq!(login.status, 200);
    (sim, client)
}

#[test]
fn flasharray_space_set_through_the_admin_api_replaces_the_measured_figures_until_cleared() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut sim, client) = start(SimSpec::flasharray(dir.path()), "sim-token-fa");
    let space = |c: &Client| -> Value {
        c.call("GET", "/api/1.19/array?space=true", None).json()[0].clone()
    };
    let set = client.admin(
        "PUT",
        "space",
        Some(&json!({"used": 9u64 << 40, "data_reduction": 4.5})),
    );
    assert_eq!(set.status, 200, "{}", set.text);
    let filled = space(&client);
    assert_eq!(filled["total"], json!(9u64 << 40));
    assert_eq!(filled["capacity"], json!(10u64 << 40));
    assert_eq!(filled["data_reduction"], json!(4.5));
    sim.restart().expect("restart");
    assert_eq!(
        space(&client)["total"],
        json!(9u64 << 40),
        "kept across a restart, like faults"
    );
    assert_eq!(
        client
            .admin("PUT", "space", Some(&json!({"data_reduction": 0.5})))
            .status,
        400
    );
    assert_eq!(
        client
            .admin("PUT", "space", Some(&json!({"free": 1})))
            .status,
        400
    );
    assert_eq!(
        client.admin("DELETE", "space", None).json(),
        json!({"used": null, "data_reduction": null})
    );
    let measured = space(&client);
    assert_eq!(measured["total"], json!(0));
    assert_eq!(measured["data_reduction"], json!(1.0));
}

#[test]
fn flashblade_space_set_in_process_replaces_the_measured_figures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sim, client) = start(SimSpec::flashblade(dir.path()), "sim-token-fb");
    sim.set_space(SpaceOverride {
        used: Some(8u64 << 40),
        data_reduction: Some(2.0),
    });
    let space = client.call("GET", "/api/1.12/arrays/space", None).json()["items"][0].clone();
    assert_eq!(space["space"]["total_physical"], json!(8u64 << 40));
    assert_eq!(space["space"]["data_reduction"], json!(2.0));
    assert_eq!(space["space"]["virtual"], json!(16u64 << 40));
    assert_eq!(
        client.admin("GET", "space", None).json()["used"],
        json!(8u64 << 40)
    );
}
