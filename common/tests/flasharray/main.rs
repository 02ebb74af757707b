//! The FlashArray client against the in-process simulator: every operation's success and error
//! paths, session loss and re-authentication, version renegotiation, restarts, faults, timeouts
//! and TLS trust.
//!
//! One test binary: the client and fault helpers are here; `volumes` and `hosts` hold the
//! operations, `pgroups` protection groups and replicated snapshots, `sessions` login, re-login and version negotiation, `failures` what fails and how
//! (tokens, retries, timeouts, TLS, names refused before sending).

// Shared by the client test binaries of this crate, so it lives beside them, not in this directory.
#[path = "../support/mod.rs"]
mod support;

mod failures;
mod hosts;
mod pgroups;
mod sessions;
mod volumes;

use flashvol_arraysim::{FaultAction, FaultRule, Faults};
use flashvol_common::flasharray::{FlashArray, Initiators};
use support::Sim;

const TOKEN: &str = "sim-token-fa";
const GIB: u64 = 1 << 30;

fn client(sim: &Sim) -> FlashArray {
    FlashArray::new(&sim.fa_config(TOKEN), &sim.settings()).expect("client")
}

fn rule(method: &str, path: &str, count: u32, action: FaultAction) -> Faults {
    Faults {
        rules: vec![FaultRule {
            method: Some(method.into()),
            path: path.into(),
            count,
            action,
        }],
        ..Faults::default()
    }
}

fn iqn(n: u32) -> Initiators {
    Initiators {
        iqns: vec![format!("iqn.1993-08.org.debian:01:node{n}")],
        ..Initiators::default()
    }
}
