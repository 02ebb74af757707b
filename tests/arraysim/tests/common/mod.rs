//! Test client for the simulator: a ureq agent that pins the simulator's CA, never turns HTTP
//! statuses into errors, and sends JSON bodies on any method (as Pure's SDK does).

#![allow(dead_code)]

use std::sync::Arc;

use flashvol_arraysim::SimHandle;
use serde_json::Value;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("reply is not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct Client {
    agent: ureq::Agent,
    base: String,
    pub cookie: Option<String>,
    pub auth_token: Option<String>,
}

impl Client {
    pub fn new(sim: &SimHandle) -> Client {
        let pem = std::fs::read(sim.ca_cert_path()).expect("CA file readable");
        let cert = Certificate::from_pem(&pem).expect("CA parses").to_owned();
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::Specific(Arc::new(vec![cert])))
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(30)))
            .build()
            .into();
        Client {
            agent,
            base: format!("https://{}", sim.endpoint()),
            cookie: None,
            auth_token: None,
        }
    }

    /// Raw call; `Err` carries transport failures (e.g. a dropped connection).
    pub fn try_call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Reply, ureq::Error> {
        let mut builder = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path));
        builder = builder.header("content-type", "application/json");
        if let Some(cookie) = &self.cookie {
            builder = builder.header("cookie", format!("session={cookie}"));
        }
        if let Some(token) = &self.auth_token {
            builder = builder.header("x-auth-token", token.as_str());
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let bytes = body
            .map(|b| serde_json::to_vec(b).expect("serialisable"))
            .unwrap_or_default();
        let request = builder.body(bytes).expect("request builds");
        let mut response = self.agent.run(request)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let text = response.body_mut().read_to_string()?;
        Ok(Reply {
            status,
            headers,
            text,
        })
    }

    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        self.try_call(method, path, body, &[])
            .unwrap_or_else(|e| panic!("{method} {path} failed: {e}"))
    }

    /// FlashArray login: keeps the session cookie.
    pub fn fa_login(&mut self, token: &str) -> Reply {
        let reply = self.call(
            "POST",
            "/api/1.19/auth/session",
            Some(&serde_json::json!({"api_token": token})),
        );
        if let Some(cookie) = reply.header("set-cookie") {
            self.cookie = cookie
                .split(';')
                .next()
                .and_then(|kv| kv.strip_prefix("session="))
                .map(str::to_string);
        }
        reply
    }

    /// FlashBlade login: keeps the x-auth-token.
    pub fn fb_login(&mut self, token: &str) -> Reply {
        let reply = self
            .try_call("POST", "/api/login", None, &[("api-token", token)])
            .expect("login call");
        self.auth_token = reply.header("x-auth-token").map(str::to_string);
        reply
    }

    pub fn admin(&self, method: &str, route: &str, body: Option<&Value>) -> Reply {
        self.call(method, &format!("/_sim/{route}"), body)
    }
}

/// The first error message of a FlashArray error list.
pub fn fa_msg(reply: &Reply) -> String {
    reply.json()[0]["msg"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The first error message of a FlashBlade error body.
pub fn fb_msg(reply: &Reply) -> String {
    reply.json()["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A failure inside the simulator (its state dir `dir` broken) is answered as Purity answers one:
/// HTTP 500 with "Internal error" in `message`, and no path of `dir` anywhere in the reply.
pub fn assert_internal_error_without_path(dir: &std::path::Path, failed: &Reply, message: &str) {
    assert_eq!(failed.status, 500, "{}", failed.text);
    assert!(message.contains("Internal error"), "{}", failed.text);
    let root = dir.canonicalize().expect("root");
    for shown in [dir.display().to_string(), root.display().to_string()] {
        assert!(
            !failed.text.contains(&shown),
            "reply leaks {shown}: {}",
            failed.text
        );
    }
}
