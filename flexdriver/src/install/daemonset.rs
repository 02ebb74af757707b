//! On SIGTERM: is our DaemonSet gone or being deleted? Only then does the pod remove the driver
//! from the node. A small client for one GET with the pod's service account, and the decision.

use std::fs;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::Logger;
use super::options::Options;

/// The API server check on SIGTERM must finish well inside the default 30 s grace period.
const API_TIMEOUT: Duration = Duration::from_secs(5);

/// What the API server said about the DaemonSet, turned into a decision. `Ok(true)`: it is gone
/// or has a deletionTimestamp, so this pod stops for good and must clean up the node.
pub fn daemonset_deleted(status: u16, body: &str) -> Result<bool, String> {
    match status {
        404 => Ok(true),
        200 => {
            let doc: Value = serde_json::from_str(body)
                .map_err(|e| format!("the DaemonSet reply is not JSON: {e}"))?;
            let meta = doc
                .get("metadata")
                .ok_or("the DaemonSet reply has no metadata")?;
            Ok(meta.get("deletionTimestamp").is_some_and(|t| !t.is_null()))
        }
        other => Err(format!(
            "the API server answered HTTP {other}: {}",
            body.chars().take(200).collect::<String>()
        )),
    }
}

/// Asks the API server about `namespace/name` with the pod's service account.
fn fetch_daemonset(
    api: &str,
    sa: &Path,
    namespace: &str,
    name: &str,
) -> Result<(u16, String), String> {
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Ok(pem) = fs::read(sa.join("ca.crt")) {
        let certs = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect::<Vec<_>>();
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(API_TIMEOUT))
        .http_status_as_error(false)
        .tls_config(tls.build())
        .build()
        .into();
    let url = format!(
        "{}/apis/apps/v1/namespaces/{namespace}/daemonsets/{name}",
        api.trim_end_matches('/')
    );
    let mut request = agent.get(&url);
    // Projected tokens rotate: read it now, not at start-up.
    if let Ok(token) = fs::read_to_string(sa.join("token")) {
        request = request.header("Authorization", format!("Bearer {}", token.trim()));
    }
    let mut response = request.call().map_err(|e| format!("GET {url}: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("GET {url}: reading the reply: {e}"))?;
    Ok((status, body))
}

fn in_cluster_api(env: impl Fn(&str) -> Option<String>) -> Option<String> {
    let host = env("KUBERNETES_SERVICE_HOST")?;
    let port = env("KUBERNETES_SERVICE_PORT").unwrap_or_else(|| "443".into());
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    Some(format!("https://{host}:{port}"))
}

/// On SIGTERM: should this pod remove the driver from the node? Any doubt (no DaemonSet name, API
/// unreachable) keeps it, because a missing driver strands mounted volumes while a leftover one
/// harms nothing and `flashvol-flex uninstall` removes it by hand.
pub(crate) fn should_uninstall_on_stop(options: &Options, log: &Logger) -> bool {
    let Some(name) = &options.daemonset else {
        log.info("no --daemonset given: leaving the driver installed");
        return false;
    };
    let Some(namespace) = &options.namespace else {
        log.warn("no namespace (POD_NAMESPACE) to look up the DaemonSet in: leaving the driver installed");
        return false;
    };
    let Some(api) = options
        .kube_api
        .clone()
        .or_else(|| in_cluster_api(|k| std::env::var(k).ok()))
    else {
        log.warn("no API server address: leaving the driver installed");
        return false;
    };
    let reply = fetch_daemonset(&api, &options.service_account_dir, namespace, name);
    match reply.and_then(|(s, b)| daemonset_deleted(s, &b)) {
        Ok(true) => {
            log.info(&format!(
                "DaemonSet {namespace}/{name} is deleted: removing the driver from this node"
            ));
            true
        }
        Ok(false) => {
            log.info(&format!(
                "DaemonSet {namespace}/{name} still exists (update, restart or node shutdown): \
                 leaving the driver installed"
            ));
            false
        }
        Err(e) => {
            log.warn(&format!(
                "cannot tell whether DaemonSet {namespace}/{name} is deleted ({e}): leaving the \
                 driver installed; run `flashvol-flex uninstall` on the node to remove it"
            ));
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::install::options::parse_options;
    use crate::install::tests::{env_from, strings};
    use std::io::Write;

    #[test]
    fn only_a_gone_or_deleting_daemonset_means_uninstall() {
        assert_eq!(daemonset_deleted(404, ""), Ok(true));
        assert_eq!(
            daemonset_deleted(
                200,
                r#"{"metadata":{"name":"pure-flex","deletionTimestamp":"2026-01-01T00:00:00Z"}}"#
            ),
            Ok(true)
        );
        assert_eq!(
            daemonset_deleted(200, r#"{"metadata":{"name":"pure-flex"}}"#),
            Ok(false)
        );
        assert_eq!(
            daemonset_deleted(200, r#"{"metadata":{"deletionTimestamp":null}}"#),
            Ok(false)
        );
        assert!(daemonset_deleted(403, "forbidden").is_err());
        assert!(daemonset_deleted(500, "").is_err());
        assert!(daemonset_deleted(200, "<html>").is_err());
        assert!(daemonset_deleted(200, "{}").is_err());
    }

    /// Serves one canned HTTP reply and returns the request line it got.
    fn one_shot_api(status: u16, body: &'static str) -> (String, std::thread::JoinHandle<String>) {
        use std::io::{BufRead, BufReader};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let handle = std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            reader.read_line(&mut request_line).expect("read");
            let mut line = String::new();
            while reader.read_line(&mut line).expect("read") > 2 {
                line.clear();
            }
            let mut stream = stream;
            write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .expect("write");
            request_line
        });
        (url, handle)
    }

    fn options_for_api(api: Option<String>) -> Options {
        let mut o = parse_options(&strings(&["--plugin-dir", "/x"]), env_from(&[])).expect("valid");
        o.daemonset = Some("pure-flex".into());
        o.namespace = Some("pure".into());
        o.kube_api = api;
        o
    }

    #[test]
    fn sigterm_uninstalls_only_after_the_api_server_says_the_daemonset_is_gone() {
        let log = Logger { debug: false };
        let (url, server) = one_shot_api(404, r#"{"kind":"Status","code":404}"#);
        assert!(should_uninstall_on_stop(&options_for_api(Some(url)), &log));
        let request = server.join().expect("server");
        assert!(
            request.starts_with("GET /apis/apps/v1/namespaces/pure/daemonsets/pure-flex "),
            "{request}"
        );

        let (url, server) = one_shot_api(200, r#"{"metadata":{"name":"pure-flex"}}"#);
        assert!(!should_uninstall_on_stop(&options_for_api(Some(url)), &log));
        server.join().expect("server");

        let (url, server) = one_shot_api(403, r#"{"kind":"Status","code":403}"#);
        assert!(
            !should_uninstall_on_stop(&options_for_api(Some(url)), &log),
            "doubt keeps the driver"
        );
        server.join().expect("server");

        // Nothing listens on a port we just closed: unreachable keeps the driver too.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", closed.local_addr().expect("addr"));
        drop(closed);
        assert!(!should_uninstall_on_stop(&options_for_api(Some(url)), &log));

        let mut no_name = options_for_api(None);
        no_name.daemonset = None;
        assert!(!should_uninstall_on_stop(&no_name, &log));
    }
}
