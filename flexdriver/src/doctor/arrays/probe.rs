//! One array, step by step, each step only when the one before worked: a TCP connection to the
//! management port (reachable), `GET /api/api_version` without logging in (TLS, REST version,
//! the array's clock), then a login and `GET array(s)` (the token).

use std::ffi::OsStr;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use flashvol_common::ArrayError;
use flashvol_common::config::{ClientSettings, Endpoint};
use flashvol_common::flasharray::Hello;

use super::{call, subject_of};
use crate::array::{self as arrays, Array, ArrayKind, Identity};
use crate::doctor::clock::{self, Reading};
use crate::doctor::{Finding, Limits, Status, skip_all};
use crate::install::files::CA_FILE;
use crate::install::options::driver_dir_name;
use crate::runtime::error::FlexError;

/// What talking to one array gave, step by step; a step runs only when the one before worked.
#[derive(Debug)]
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

/// The CA file the settings name (`tls.caFile`), as the host names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredCa {
    pub path: PathBuf,
    /// It is the installer's copy of the chart's `flashvol.tls.caCert` (`ca.pem` next to the
    /// driver). Every install rewrites that file, so a fix goes into the chart value.
    pub from_chart: bool,
}

impl ConfiguredCa {
    /// `path` as the settings of driver `vendor/name` name it.
    pub fn new(path: PathBuf, driver: &str) -> Self {
        let from_chart = is_installed_ca(&path, driver);
        Self { path, from_chart }
    }

    /// The file and where it comes from, for messages.
    fn described(&self) -> String {
        if self.from_chart {
            format!(
                "{} (the chart's flashvol.tls.caCert, installed next to the driver)",
                self.path.display()
            )
        } else {
            format!("{} (flashvol.tls.caFile)", self.path.display())
        }
    }
}

/// `<plugin dir>/<vendor~name>/ca.pem`: where the installer puts the chart's CA.
fn is_installed_ca(path: &Path, driver: &str) -> bool {
    let in_driver_dir = path
        .parent()
        .and_then(Path::file_name)
        .zip(driver_dir_name(driver).ok())
        .is_some_and(|(dir, expected)| dir == OsStr::new(&expected));
    in_driver_dir && path.file_name() == Some(OsStr::new(CA_FILE))
}

/// The TLS trust in use, for messages.
struct Trust<'a> {
    ca: Option<&'a ConfiguredCa>,
    insecure: bool,
}

/// Talks to the array step by step and judges each step; gives the client once logged in.
pub fn probe<K: ArrayKind>(
    endpoint: &Endpoint,
    config: &K::Config,
    settings: &ClientSettings,
    configured_ca: Option<&ConfiguredCa>,
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
        ca: configured_ca,
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

/// The steps in the order they run; a failed one leaves the later ones unchecked.
const STEPS: [&str; 4] = [
    "arrays.reachable",
    "arrays.tls",
    "arrays.rest_version",
    "arrays.token",
];

fn judge_probe(
    subject: &str,
    kind: &str,
    endpoint: &Endpoint,
    probe: &Probe,
    trust: &Trust<'_>,
) -> Vec<Finding> {
    let address = endpoint.authority();
    let unreachable = |saw: String| {
        Finding::fail(
            "arrays.reachable",
            saw,
            format!(
                "check MgmtEndPoint {subject} and that this node reaches the {kind}'s management address on port {} (firewall, routes, proxy)",
                endpoint.port()
            ),
        )
    };
    let untrusted = |saw: String| {
        let signer = format!(
            "the CA that signed the {kind}'s certificate (or the certificate itself, if self-signed)"
        );
        let fix = match trust.ca {
            Some(ca) if ca.from_chart => format!(
                "put {signer} into the chart value flashvol.tls.caCert (installed here as {}), or correct MgmtEndPoint",
                ca.path.display()
            ),
            Some(ca) => format!(
                "put {signer} into {} (flashvol.tls.caFile) on every node, or correct MgmtEndPoint",
                ca.path.display()
            ),
            None => format!(
                "this node trusts no CA that signed it: give {signer} as the chart value flashvol.tls.caCert (PEM), which the installer puts on every node"
            ),
        };
        Finding::fail("arrays.tls", saw, fix)
    };
    let answers = || Finding::pass("arrays.reachable", format!("{address} answers HTTPS"));
    // The verdict of each step that ran, in order; the last one may be the failure.
    let mut verdicts = Vec::new();
    let mut clock = None;
    match (&probe.reach, &probe.client, &probe.hello) {
        (Err(e), _, _) => verdicts.push(unreachable(e.clone())),
        (Ok(()), Some(Err(e)), _) => {
            verdicts.push(Finding::pass(
                "arrays.reachable",
                format!("{address} accepts connections"),
            ));
            verdicts.push(untrusted(format!("the client cannot be set up: {e}")));
        }
        (
            Ok(()),
            _,
            Some((
                Err(ArrayError::Transport {
                    tls: true, message, ..
                }),
                _,
                _,
            )),
        ) => {
            verdicts.push(Finding::pass(
                "arrays.reachable",
                format!("{address} accepts connections"),
            ));
            verdicts.push(untrusted(message.clone()));
        }
        (Ok(()), _, Some((Err(e @ ArrayError::Transport { .. }), _, _))) => {
            verdicts.push(unreachable(format!(
                "{address} accepts TCP connections, but HTTPS fails: {e}"
            )))
        }
        (Ok(()), _, Some((Err(e), _, _))) => {
            verdicts.push(answers());
            verdicts.push(tls_verdict(trust));
            verdicts.push(Finding::fail(
                "arrays.rest_version",
                format!("GET /api/api_version: {e}"),
                format!("check that {subject} is the {kind}'s management address and that its Purity offers REST 1.x"),
            ));
        }
        (Ok(()), _, Some((Ok(hello), sent, received))) => {
            verdicts.push(answers());
            verdicts.push(tls_verdict(trust));
            verdicts.push(Finding::pass(
                "arrays.rest_version",
                format!(
                    "REST {} (this driver speaks up to {})",
                    hello.version, hello.newest_supported
                ),
            ));
            clock = Some(clock::judge(
                subject,
                hello.clock.map(|array| Reading {
                    array,
                    sent: *sent,
                    received: *received,
                }),
            ));
            verdicts.extend(
                probe
                    .identity
                    .as_ref()
                    .map(|identity| token(subject, identity)),
            );
        }
        (Ok(()), _, None) => {}
    }
    let failed = verdicts
        .iter()
        .find(|f| f.status == Status::Fail)
        .map(|f| f.id);
    let why = failed.map_or_else(
        || "not checked".to_owned(),
        |id| format!("not checked: {id} failed"),
    );
    let checked: Vec<&str> = verdicts.iter().map(|f| f.id).collect();
    let unchecked: Vec<&'static str> = STEPS
        .into_iter()
        .filter(|id| !checked.contains(id))
        .collect();
    verdicts.extend(skip_all(&unchecked, &why));
    verdicts.push(clock.unwrap_or_else(|| Finding::skip("clock.skew", why)));
    verdicts
}

fn token(subject: &str, identity: &Result<Identity, ArrayError>) -> Finding {
    match identity {
        Ok(id) => Finding::pass(
            "arrays.token",
            format!(
                "the API token logs in: {} (Purity {}, id {})",
                id.name, id.version, id.id
            ),
        ),
        Err(e @ ArrayError::Auth { .. }) => Finding::fail(
            "arrays.token",
            e.to_string(),
            format!(
                "the APIToken for {subject} is wrong, expired or its user is gone: create a new one (a user with the storage_admin role), put it in pure.json (Secret pure-provisioner-secret) and restart the DaemonSet pod"
            ),
        ),
        Err(e) => Finding::fail(
            "arrays.token",
            format!("logging in failed: {e}"),
            format!("check {subject}'s health and its API token"),
        ),
    }
}

fn tls_verdict(trust: &Trust<'_>) -> Finding {
    if trust.insecure {
        Finding::warn(
            "arrays.tls",
            "certificate verification is off (flashvol.tls.insecureSkipVerify): anyone on the path can pose as the array",
            "give the arrays' CA as the chart value flashvol.tls.caCert (PEM) and remove tls.insecureSkipVerify",
        )
    } else {
        Finding::pass(
            "arrays.tls",
            match trust.ca {
                Some(ca) => format!("certificate verified against {}", ca.described()),
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
            ca: None,
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

    #[test]
    fn only_the_ca_next_to_the_driver_is_the_charts() {
        let installed = "/var/lib/kubelet/volumeplugins/pure~flex/ca.pem";
        assert!(ConfiguredCa::new(installed.into(), "pure/flex").from_chart);
        for (path, driver) in [
            (installed, "acme/blk"),
            ("/etc/pure/ca.pem", "pure/flex"),
            (
                "/var/lib/kubelet/volumeplugins/pure~flex/other.pem",
                "pure/flex",
            ),
            ("ca.pem", "pure/flex"),
        ] {
            assert!(
                !ConfiguredCa::new(path.into(), driver).from_chart,
                "{path} {driver}"
            );
        }
        let chart = Trust {
            ca: Some(&ConfiguredCa::new(installed.into(), "pure/flex")),
            insecure: false,
        };
        let verdict = tls_verdict(&chart);
        assert!(
            verdict.saw.contains(installed) && verdict.saw.contains("flashvol.tls.caCert"),
            "{verdict:?}"
        );
    }
}
