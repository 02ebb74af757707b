//! Both clients against a scripted HTTPS server, for what the simulator never sends: malformed,
//! truncated and unexpected replies (never a panic, always a named `BadReply`), missing session
//! headers, rotating cookies, endless paging, repeated refusals, tokens echoed back, and an
//! array's self-signed certificate used as the CA file.
//!
//! One test binary: the clients and the scripted login of each array are here; `malformed` holds
//! the broken replies (fixed and random), `session` the login and renegotiation cases, `transport`
//! what goes over the wire (parameters, redaction, connection reuse, TLS trust).

// Shared by the client test binaries of this crate, so it lives beside them, not in this directory.
#[path = "../support/mod.rs"]
mod support;

mod malformed;
mod session;
mod transport;

use std::collections::BTreeMap;
use std::time::Duration;

use flashvol_common::ArrayError;
use flashvol_common::config::{ApiToken, ClientSettings, FlashArrayConfig, FlashBladeConfig};
use flashvol_common::flasharray::FlashArray;
use flashvol_common::flashblade::FlashBlade;
use support::scripted::{Canned, Scripted, Seen};

const TOKEN: &str = "scripted-token-5f1e";
const SESSION: &str = "session=s1; Path=/; HttpOnly; Secure";

fn settings(server: &Scripted) -> ClientSettings {
    ClientSettings {
        ca_file: Some(server.cert_file()),
        insecure_skip_verify: false,
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        retries: 2,
    }
}

fn flasharray(server: &Scripted) -> FlashArray {
    let config = FlashArrayConfig {
        mgmt_endpoint: server.endpoint().parse().expect("endpoint"),
        api_token: ApiToken::new(TOKEN),
        labels: BTreeMap::new(),
    };
    FlashArray::new(&config, &settings(server)).expect("client")
}

fn flashblade(server: &Scripted) -> FlashBlade {
    let config = FlashBladeConfig {
        mgmt_endpoint: server.endpoint().parse().expect("endpoint"),
        api_token: ApiToken::new(TOKEN),
        nfs_endpoint: None,
        labels: BTreeMap::new(),
    };
    FlashBlade::new(&config, &settings(server)).expect("client")
}

/// Version discovery and login as a FlashArray does them; `None` for everything else.
fn fa_session(seen: &Seen) -> Option<Canned> {
    match (seen.method.as_str(), seen.path()) {
        ("GET", "/api/api_version") => {
            Some(Canned::json(200, r#"{"version": ["1.16", "1.19", "2.0"]}"#))
        }
        ("POST", "/api/1.19/auth/session") => Some(
            Canned::json(200, r#"{"username": "pureuser"}"#).with_header("Set-Cookie", SESSION),
        ),
        _ => None,
    }
}

fn fb_session(seen: &Seen) -> Option<Canned> {
    match (seen.method.as_str(), seen.path()) {
        ("GET", "/api/api_version") => {
            Some(Canned::json(200, r#"{"versions": ["1.8.1", "1.12"]}"#))
        }
        ("POST", "/api/login") => Some(
            Canned::json(200, r#"{"username": "pureuser"}"#)
                .with_header("x-auth-token", "fb-session"),
        ),
        _ => None,
    }
}

fn bad_reply_detail<T: std::fmt::Debug>(result: Result<T, ArrayError>) -> String {
    match result {
        Err(ArrayError::BadReply { detail, .. }) => detail,
        other => panic!("expected BadReply, got {other:?}"),
    }
}
