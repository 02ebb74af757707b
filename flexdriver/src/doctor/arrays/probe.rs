//! One array, step by step, each step only when the one before worked: a TCP connection to the
//! management port (reachable), `GET /api/api_version` without logging in (TLS, REST version,
//! the array's clock), then a login and `GET array(s)` (the token).

use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use flashvol_common::ArrayError;
use flashvol_common::config::{ClientSettings, Endpoint};
use flashvol_common::flasharray::Hello;

use super::{call, skip_rest, subject_of};
use crate::array::{self as arrays, Array, ArrayKind, Identity};
use crate::doctor::clock::{self, Reading};
use crate::doctor::{Finding, Limits};
use crate::runtime::error::FlexError;

struct Probe {
    /// A TCP connection to the management port.
    reach: Result<(), String>,
    /// Building the client (reads the CA file).
    client: Option<Result<(), ArrayError>>,
    /// `GET /api/api_version`, and when it was sent and answered.
    hello: Option<(Result<Hello, ArrayError>, SystemTime, SystemTime)>,
    /// Logging in and `GET array(s)`.
    identity: Option<Result<Identity, ArrayError>>,
}

/// The TLS trust in use, for messages.
struct Trust<'a> {
    ca_file: Option<&'a PathBuf>,
    insecure: bool,
}

/// Talks to the array step by step and judges each step; gives the client once logged in.
pub fn probe<K: ArrayKind>(
    endpoint: &Endpoint,
    config: &K::Config,
    settings: &ClientSettings,
    configured_ca: Option<&PathBuf>,
    limits: &Limits,
) -> (Vec<Finding>, Option<Array<K>>) {
    let mut probe = Probe {
        reach: tcp_connect(endpoint, limits.array_call),
        client: None,
        hello: None,
        identity: None,
    };
    let mut array = None;
    if probe.reach.is_ok() {
        match arrays::connect::<K>(config, settings, limits.array_call) {
            Err(e) => {
                probe.client = Some(Err(match e {
                    FlexError::Array { source, .. } => source,
                    other => ArrayError::InvalidInput {
                        endpoint: endpoint.to_string(),
                        message: other.to_string(),
                    },
                }))
            }
            Ok(a) => {
                probe.client = Some(Ok(()));
                let sent = SystemTime::now();
                let hello = call(&a, "asking for the REST versions", |c| c.hello());
                probe.hello = Some((hello, sent, SystemTime::now()));
                if matches!(probe.hello, Some((Ok(_), _, _))) {
                    let identity = call(&a, "logging in", |c| c.identity());
                    if identity.is_ok() {
                        array = Some(a);
                    }
                    probe.identity = Some(identity);
                }
            }
        }
    }
    let trust = Trust {
        ca_file: configured_ca,
        insecure: settings.insecure_skip_verify,
    };
    let subject = subject_of(endpoint);
    let findings = judge_probe(&subject, K::NAME, endpoint, &probe, &trust)
        .into_iter()
        .map(|f| f.about(subject.clone()))
        .collect();
    (findings, array)
}

/// A TCP connection to the management address, to tell "unreachable" from everything after.
fn tcp_connect(endpoint: &Endpoint, limit: Duration) -> Result<(), String> {
    let addrs: Vec<_> = (endpoint.host(), endpoint.port())
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", endpoint.host()))?
        .collect();
    let mut last = format!("{} resolves to no address", endpoint.host());
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, limit) {
            Ok(_) => return Ok(()),
            Err(e) => last = format!("cannot connect to {addr}: {e}"),
        }
    }
    Err(last)
}

fn judge_probe(
    subject: &str,
    kind: &str,
    endpoint: &Endpoint,
    probe: &Probe,
    trust: &Trust<'_>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let reach_fix = format!(
        "check MgmtEndPoint {subject} and that this node reaches the {kind}'s management address on port {} (firewall, routes, proxy)",
        endpoint.port()
    );
    if let Err(e) = &probe.reach {
        out.push(Finding::fail("arrays.reachable", e.clone(), reach_fix));
        out.extend(skip_rest(
            &["arrays.tls", "arrays.rest_version", "arrays.token"],
            "the array is unreachable (see arrays.reachable)",
        ));
        out.push(Finding::skip(
            "clock.skew",
            "not checked: the array is unreachable",
        ));
        return out;
    }
    let tls_fix = match trust.ca_file {
        Some(ca) => format!(
            "put the CA that signed the {kind}'s certificate (or the certificate itself, if self-signed) into flashvol.tls.caFile ({}), or correct MgmtEndPoint",
            ca.display()
        ),
        None => format!(
            "the {kind}'s certificate is not signed by a CA this node trusts: set flashvol.tls.caFile to a PEM file with its CA (chart value flashvol.tls.caFile)"
        ),
    };
    let hello = match (&probe.client, &probe.hello) {
        (Some(Err(e)), _) => {
            out.push(Finding::pass(
                "arrays.reachable",
                format!("{} accepts connections", endpoint.authority()),
            ));
            out.push(Finding::fail(
                "arrays.tls",
                format!("the client cannot be set up: {e}"),
                tls_fix,
            ));
            out.extend(skip_rest(
                &["arrays.rest_version", "arrays.token"],
                "TLS is not set up (see arrays.tls)",
            ));
            out.push(Finding::skip(
                "clock.skew",
                "not checked: TLS is not set up",
            ));
            return out;
        }
        (_, Some((hello, sent, received))) => (hello, *sent, *received),
        _ => return out,
    };
    match hello.0 {
        Err(ArrayError::Transport {
            tls: true, message, ..
        }) => {
            out.push(Finding::pass(
                "arrays.reachable",
                format!("{} accepts connections", endpoint.authority()),
            ));
            out.push(Finding::fail("arrays.tls", message.clone(), tls_fix));
            out.extend(skip_rest(
                &["arrays.rest_version", "arrays.token"],
                "TLS failed (see arrays.tls)",
            ));
            out.push(Finding::skip("clock.skew", "not checked: TLS failed"));
            return out;
        }
        Err(e @ ArrayError::Transport { .. }) => {
            out.push(Finding::fail(
                "arrays.reachable",
                format!(
                    "{} accepts TCP connections, but HTTPS fails: {e}",
                    endpoint.authority()
                ),
                reach_fix,
            ));
            out.extend(skip_rest(
                &["arrays.tls", "arrays.rest_version", "arrays.token"],
                "HTTPS fails (see arrays.reachable)",
            ));
            out.push(Finding::skip("clock.skew", "not checked: HTTPS fails"));
            return out;
        }
        Err(e) => {
            out.push(Finding::pass(
                "arrays.reachable",
                format!("{} answers HTTPS", endpoint.authority()),
            ));
            out.push(tls_verdict(trust));
            out.push(Finding::fail(
                "arrays.rest_version",
                format!("GET /api/api_version: {e}"),
                format!("check that {subject} is the {kind}'s management address and that its Purity offers REST 1.x"),
            ));
            out.extend(skip_rest(
                &["arrays.token"],
                "no usable REST version (see arrays.rest_version)",
            ));
            out.push(Finding::skip(
                "clock.skew",
                "not checked: no usable REST version",
            ));
            return out;
        }
        Ok(h) => {
            out.push(Finding::pass(
                "arrays.reachable",
                format!("{} answers HTTPS", endpoint.authority()),
            ));
            out.push(tls_verdict(trust));
            out.push(Finding::pass(
                "arrays.rest_version",
                format!(
                    "REST {} (this driver speaks up to {})",
                    h.version, h.newest_supported
                ),
            ));
            out.push(clock::judge(
                subject,
                h.clock.map(|array| Reading {
                    array,
                    sent: hello.1,
                    received: hello.2,
                }),
            ));
        }
    }
    out.push(match &probe.identity {
        Some(Ok(id)) => Finding::pass(
            "arrays.token",
            format!("the API token logs in: {} (Purity {}, id {})", id.name, id.version, id.id),
        ),
        Some(Err(e @ ArrayError::Auth { .. })) => Finding::fail(
            "arrays.token",
            e.to_string(),
            format!(
                "the APIToken for {subject} is wrong, expired or its user is gone: create a new one (a user with the storage_admin role), put it in pure.json (Secret pure-provisioner-secret) and restart the DaemonSet pod"
            ),
        ),
        Some(Err(e)) => Finding::fail(
            "arrays.token",
            format!("logging in failed: {e}"),
            format!("check {subject}'s health and its API token"),
        ),
        None => Finding::skip("arrays.token", "not checked"),
    });
    out
}

fn tls_verdict(trust: &Trust<'_>) -> Finding {
    if trust.insecure {
        Finding::warn(
            "arrays.tls",
            "certificate verification is off (flashvol.tls.insecureSkipVerify): anyone on the path can pose as the array",
            "set flashvol.tls.caFile to the arrays' CA and remove tls.insecureSkipVerify",
        )
    } else {
        Finding::pass(
            "arrays.tls",
            match trust.ca_file {
                Some(ca) => format!("certificate verified against {}", ca.display()),
                None => "certificate verified against the system's trusted CAs".to_owned(),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn each_failed_step_names_itself_and_skips_what_follows() {
        let endpoint: Endpoint = "10.0.0.5".parse().expect("endpoint");
        let trust = Trust {
            ca_file: None,
            insecure: false,
        };
        let mut probe = Probe {
            reach: Err("cannot connect to 10.0.0.5:443: refused".into()),
            client: None,
            hello: None,
            identity: None,
        };
        let statuses = |p: &Probe| -> Vec<(&'static str, Status)> {
            judge_probe("10.0.0.5", "FlashArray", &endpoint, p, &trust)
                .iter()
                .map(|f| (f.id, f.status))
                .collect()
        };
        assert_eq!(
            statuses(&probe),
            [
                ("arrays.reachable", Status::Fail),
                ("arrays.tls", Status::Skip),
                ("arrays.rest_version", Status::Skip),
                ("arrays.token", Status::Skip),
                ("clock.skew", Status::Skip),
            ]
        );
        let now = SystemTime::now();
        probe.reach = Ok(());
        probe.client = Some(Ok(()));
        probe.hello = Some((
            Err(ArrayError::Transport {
                endpoint: "10.0.0.5".into(),
                message: "TLS: invalid peer certificate: UnknownIssuer".into(),
                timed_out: false,
                tls: true,
            }),
            now,
            now,
        ));
        assert_eq!(statuses(&probe)[1], ("arrays.tls", Status::Fail));
        probe.hello = Some((
            Ok(Hello {
                version: "1.19".into(),
                newest_supported: "1.19".into(),
                clock: Some(now),
            }),
            now,
            now,
        ));
        probe.identity = Some(Err(ArrayError::Auth {
            endpoint: "10.0.0.5".into(),
            message: "API token refused (HTTP 401)".into(),
        }));
        let all = statuses(&probe);
        assert!(all.contains(&("arrays.token", Status::Fail)), "{all:?}");
        assert!(all.contains(&("clock.skew", Status::Pass)), "{all:?}");
        assert!(
            all.contains(&("arrays.rest_version", Status::Pass)),
            "{all:?}"
        );
    }
}
