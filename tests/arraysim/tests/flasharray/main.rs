//! The FlashArray personality seen over HTTPS: auth and cookies, version negotiation, error
//! shapes, volumes, hosts, connections, paging, snapshots/copies, protection groups, backing files
//! and persistence.
//!
//! One test binary: starting a logged-in simulator is here; `protocol` holds versions, sessions,
//! paging and parameters, `volumes` the volume lifecycle, snapshots, copies and space, `hosts`
//! initiators, LUNs and connections, `pgroups` protection group snapshots, `resilience` restarts and
//! injected faults.

// Shared by the test binaries of this crate, so it lives beside them, not in this directory.
#[path = "../common/mod.rs"]
mod common;

mod hosts;
mod pgroups;
mod protocol;
mod resilience;
mod volumes;

use common::Client;
use flashvol_arraysim::{SimHandle, SimSpec};
use serde_json::Value;

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
