//! Shared fixtures of the client integration tests: an in-process simulator per test, client
//! settings that trust its CA, and calls to its `/_sim/` admin API.

#![allow(dead_code)] // each test binary uses a different subset

pub mod scripted;

use std::collections::BTreeMap;
use std::time::Duration;

use flashvol_arraysim::{Faults, SimHandle, SimSpec};
use flashvol_common::config::{ApiToken, ClientSettings, FlashArrayConfig, FlashBladeConfig};
use serde_json::Value;

/// A running simulator and the directory holding its state (removed on drop).
pub struct Sim {
    pub handle: SimHandle,
    _dir: tempfile::TempDir,
}

impl Sim {
    pub fn flasharray() -> Sim {
        let dir = tempfile::tempdir().expect("tempdir");
        let handle =
            SimHandle::start(SimSpec::flasharray(dir.path())).expect("start FlashArray sim");
        Sim { handle, _dir: dir }
    }

    pub fn flashblade() -> Sim {
        let dir = tempfile::tempdir().expect("tempdir");
        let handle =
            SimHandle::start(SimSpec::flashblade(dir.path())).expect("start FlashBlade sim");
        Sim { handle, _dir: dir }
    }

    /// Trusts the simulator's CA; short deadlines so a broken test fails fast.
    pub fn settings(&self) -> ClientSettings {
        ClientSettings {
            ca_file: Some(self.handle.ca_cert_path()),
            insecure_skip_verify: false,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            retries: 2,
        }
    }

    pub fn fa_config(&self, token: &str) -> FlashArrayConfig {
        FlashArrayConfig {
            mgmt_endpoint: self.handle.endpoint().parse().expect("endpoint"),
            api_token: ApiToken::new(token),
            labels: BTreeMap::new(),
        }
    }

    pub fn fb_config(&self, token: &str) -> FlashBladeConfig {
        FlashBladeConfig {
            mgmt_endpoint: self.handle.endpoint().parse().expect("endpoint"),
            api_token: ApiToken::new(token),
            nfs_endpoint: None,
            labels: BTreeMap::new(),
        }
    }

    pub fn faults(&self, faults: Faults) {
        self.handle.set_faults(faults);
    }

    /// Calls of one simulator route, e.g. `"GET volume/{name}"`.
    pub fn calls(&self, route: &str) -> u64 {
        self.handle.stats().calls.get(route).copied().unwrap_or(0)
    }

    pub fn authentications(&self) -> u64 {
        self.handle.stats().authentications
    }

    /// TLS connections the simulator has accepted.
    pub fn connections(&self) -> u64 {
        self.handle.stats().connections
    }

    /// An array administrator's FlashArray REST call (see `SimHandle::administer`).
    pub fn fa_call(&self, method: &str, path: &str, body: Value) -> Value {
        self.handle
            .administer(method, path, &body)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// `<method> /_sim/<path>` with an optional JSON body; the reply as JSON.
    pub fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let pem = std::fs::read(self.handle.ca_cert_path()).expect("read CA");
        let cert = ureq::tls::Certificate::from_pem(&pem).expect("CA PEM");
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::new_with_certs(&[cert]))
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(true)
            .build()
            .new_agent();
        let url = format!("{}/{path}", self.handle.admin_url());
        let body = body.unwrap_or(Value::Null).to_string();
        let mut reply = match method {
            "GET" => agent.get(&url).call(),
            "DELETE" => agent.delete(&url).call(),
            "PUT" => agent.put(&url).content_type("application/json").send(body),
            "POST" => agent.post(&url).content_type("application/json").send(body),
            other => panic!("unsupported admin method {other}"),
        }
        .unwrap_or_else(|e| panic!("admin {method} {path}: {e}"));
        reply.body_mut().read_json().expect("admin reply is JSON")
    }

    /// Forgets every session, as an array does after its idle timeout.
    pub fn expire_sessions(&self) {
        self.admin("DELETE", "sessions", None);
    }

    /// Makes the simulator advertise and accept only these REST versions.
    pub fn set_versions(&self, versions: &[&str]) {
        self.admin(
            "PUT",
            "api_versions",
            Some(serde_json::json!({ "versions": versions })),
        );
    }
}
