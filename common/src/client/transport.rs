//! HTTPS transport shared by both clients: one `ureq` agent per client and the retry policy.
//!
//! - **TLS.** Arrays ship self-signed certificates, so `ClientSettings::ca_file` names a PEM file
//!   of certificates to trust (read here, in the constructor, and refused with the file named if
//!   it is unreadable or holds no certificate). Without it the web PKI roots apply. Skipping
//!   verification is an explicit opt-in, warned about once per client.
//! - **Timeouts.** `connect_timeout` bounds the TCP+TLS connect, `request_timeout` bounds each
//!   whole HTTP exchange (connect, send, receive the full body). A timed-out request is not
//!   retried: the array is slow or unreachable, and retrying would multiply the caller's wait.
//!   Neither is a certificate the configured trust refuses: it would be refused again.
//! - **Retries.** Only for requests marked idempotent (GETs, and PUT/PATCH/DELETE whose repetition
//!   leaves the same state), only after a transport failure (refused, reset, DNS) or a 5xx, at most
//!   `ClientSettings::retries` extra attempts with a growing pause (100 ms, 400 ms, 1.6 s, capped
//!   at 2 s). A create is never retried blindly: if the first attempt reached the array, a retry
//!   would fail with "already exists" and hide what happened, so the error surfaces instead.
//! - **Connections** are kept alive and reused across calls and threads (the agent is shared).
//!
//! Nothing here logs headers or bodies: they carry API tokens and session cookies.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use ureq::http::HeaderMap;
use ureq::tls::{PemItem, RootCerts, TlsConfig, TlsProvider};
use ureq::{Agent, RequestBuilder};

use crate::config::{ClientSettings, Endpoint};
use crate::error::{ArrayError, Result};

/// Replies larger than this are refused rather than buffered (a paged list is far smaller).
const MAX_BODY: u64 = 64 * 1024 * 1024;
/// Idle connections kept open to one array. The provisioner runs up to `--workers` claims at
/// once (16 by default), each calling every array of its backend; with ureq's default of 3, a
/// burst closed most connections after one call and paid a TLS handshake on the next.
const IDLE_CONNECTIONS_PER_ARRAY: usize = 64;
/// Read and write buffers of one connection, kept while it is pooled. Headers must fit (an
/// array's are well under 4 KiB); bodies stream through. ureq's default, 128 KiB each, made a
/// burst's 25 kept connections hold 8 MiB of the provisioner's heap.
const CONNECTION_BUFFER: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

/// One HTTP request, before the base URL is applied.
pub(crate) struct Request {
    pub method: Method,
    /// Absolute path, already percent-encoded: `/api/1.19/volume/k8s-pvc-1`.
    pub path: String,
    /// Sent percent-encoded by `ureq`.
    pub query: Vec<(&'static str, String)>,
    /// Secrets go here (cookies, tokens): never logged, never part of an error.
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Value>,
    /// Safe to send again after a transport failure or a 5xx.
    pub idempotent: bool,
}

impl Request {
    pub fn new(method: Method, path: String) -> Self {
        Self {
            method,
            // GETs never change state; everything else is opted in per call.
            idempotent: method == Method::Get,
            path,
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
        }
    }
}

/// A reply of any status.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn headers_all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
    }
}

/// An HTTPS connection pool to one array, with the retry policy.
pub(crate) struct Transport {
    agent: Agent,
    base_url: String,
    endpoint: String,
    retries: u32,
    requests: AtomicU64,
}

impl Transport {
    /// Builds the agent; touches no network. Reads `ca_file` if set.
    pub fn new(endpoint: &Endpoint, settings: &ClientSettings) -> Result<Self> {
        let shown = endpoint.to_string();
        let invalid = |message: String| ArrayError::InvalidInput {
            endpoint: shown.clone(),
            message,
        };
        if settings.connect_timeout.is_zero() || settings.request_timeout.is_zero() {
            return Err(invalid(
                "connect and request timeouts must be greater than zero".into(),
            ));
        }
        let mut tls = TlsConfig::builder().provider(TlsProvider::Rustls);
        if let Some(path) = &settings.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| invalid(format!("cannot read CA file {}: {e}", path.display())))?;
            let certs = pem_certificates(&pem)
                .map_err(|problem| invalid(format!("CA file {}: {problem}", path.display())))?;
            tls = tls.root_certs(RootCerts::new_with_certs(&certs));
        }
        if settings.insecure_skip_verify {
            log::warn!(
                "{shown}: TLS certificate verification is OFF (insecure_skip_verify); \
                 anyone on the path can impersonate this array"
            );
            tls = tls.disable_verification(true);
        }
        let config = Agent::config_builder()
            .tls_config(tls.build())
            .https_only(true)
            .http_status_as_error(false)
            .max_redirects(0)
            .max_idle_connections(IDLE_CONNECTIONS_PER_ARRAY)
            .max_idle_connections_per_host(IDLE_CONNECTIONS_PER_ARRAY)
            .input_buffer_size(CONNECTION_BUFFER)
            .output_buffer_size(CONNECTION_BUFFER)
            .timeout_connect(Some(settings.connect_timeout))
            .timeout_global(Some(settings.request_timeout))
            .user_agent(concat!("flashvol/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Self {
            agent: Agent::new_with_config(config),
            base_url: endpoint.base_url(),
            endpoint: shown,
            retries: settings.retries,
            requests: AtomicU64::new(0),
        })
    }

    /// The endpoint as configured, for messages.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// HTTP requests sent so far, retries and authentication included.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Sends `request`, retrying per the policy in the module header. Any status is a reply; only
    /// failures to get one are errors.
    pub fn send(&self, request: &Request) -> Result<Reply> {
        let mut attempt = 0;
        loop {
            let outcome = self.attempt(request);
            let retry = match &outcome {
                Ok(reply) => request.idempotent && reply.status >= 500,
                Err(e) => request.idempotent && is_retryable(e),
            };
            if !retry || attempt >= self.retries {
                return outcome.map_err(|e| self.transport_error(&e));
            }
            let pause = backoff(attempt);
            log::debug!(
                "{}: {:?} {} failed ({}), retrying in {pause:?}",
                self.endpoint,
                request.method,
                request.path,
                match &outcome {
                    Ok(reply) => format!("HTTP {}", reply.status),
                    Err(e) => e.to_string(),
                }
            );
            std::thread::sleep(pause);
            attempt += 1;
        }
    }

    fn attempt(&self, request: &Request) -> std::result::Result<Reply, ureq::Error> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let url = format!("{}{}", self.base_url, request.path);
        let body = match &request.body {
            Some(value) => serde_json::to_vec(value).map_err(ureq::Error::Json)?,
            None => b"{}".to_vec(),
        };
        let response = match request.method {
            Method::Get => prepare(self.agent.get(&url), request).call(),
            Method::Delete => prepare(self.agent.delete(&url), request).call(),
            Method::Post => send_with_body(prepare(self.agent.post(&url), request), body),
            Method::Put => send_with_body(prepare(self.agent.put(&url), request), body),
            Method::Patch => send_with_body(prepare(self.agent.patch(&url), request), body),
        }?;
        let status = response.status().as_u16();
        let (parts, mut body) = response.into_parts();
        let body = body.with_config().limit(MAX_BODY).read_to_vec()?;
        Ok(Reply {
            status,
            headers: parts.headers,
            body,
        })
    }

    fn transport_error(&self, error: &ureq::Error) -> ArrayError {
        ArrayError::Transport {
            endpoint: self.endpoint.clone(),
            message: describe(error),
            timed_out: is_timeout(error),
            tls: is_tls(error),
        }
    }
}

fn prepare<B>(mut builder: RequestBuilder<B>, request: &Request) -> RequestBuilder<B> {
    builder = builder.header("Accept", "application/json");
    for (name, value) in &request.headers {
        builder = builder.header(*name, value.as_str());
    }
    for (key, value) in &request.query {
        builder = builder.query(*key, value);
    }
    builder
}

fn send_with_body(
    builder: RequestBuilder<ureq::typestate::WithBody>,
    body: Vec<u8>,
) -> std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error> {
    builder.content_type("application/json").send(body)
}

/// Pause before retry number `attempt + 1`: 100 ms, 400 ms, 1.6 s, then 2 s.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let millis = 100u64.saturating_mul(4u64.saturating_pow(attempt));
    Duration::from_millis(millis.min(2_000))
}

fn is_timeout(error: &ureq::Error) -> bool {
    match error {
        ureq::Error::Timeout(_) => true,
        ureq::Error::Io(io) => matches!(
            io.kind(),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
        ),
        _ => false,
    }
}

/// Whether the TLS handshake failed. rustls reports a refused certificate from inside the
/// handshake's I/O, so it arrives as an I/O error carrying a `rustls::Error`.
fn is_tls(error: &ureq::Error) -> bool {
    match error {
        ureq::Error::Rustls(_) | ureq::Error::Tls(_) => true,
        ureq::Error::Io(io) => io
            .get_ref()
            .is_some_and(|inner| inner.is::<rustls::Error>()),
        _ => false,
    }
}

/// Failures where the request may not have been processed and a new attempt may succeed.
/// Excluded on purpose: timeouts (see the module header), certificate and TLS setup failures
/// (they fail the same way every time), and errors of our own making.
fn is_retryable(error: &ureq::Error) -> bool {
    !is_timeout(error)
        && !is_tls(error)
        && matches!(
            error,
            ureq::Error::Io(_)
                | ureq::Error::ConnectionFailed
                | ureq::Error::HostNotFound
                | ureq::Error::Protocol(_)
        )
}

fn describe(error: &ureq::Error) -> String {
    match error {
        ureq::Error::Timeout(which) => format!("timed out ({which})"),
        ureq::Error::Rustls(e) => format!("TLS: {e}"),
        ureq::Error::Io(io) if is_tls(error) => format!("TLS: {io}"),
        ureq::Error::BodyExceedsLimit(limit) => format!("reply larger than {limit} bytes"),
        other => other.to_string(),
    }
}

/// The certificates in a PEM document; an error when there are none or the PEM is corrupt.
pub(crate) fn pem_certificates(
    pem: &[u8],
) -> std::result::Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        match item {
            Ok(PemItem::Certificate(cert)) => {
                // PEM framing around garbage parses; a trust anchor must be a certificate.
                rustls::RootCertStore::empty()
                    .add(rustls::pki_types::CertificateDer::from(cert.der().to_vec()))
                    .map_err(|e| format!("holds a block that is not a certificate: {e}"))?;
                certs.push(cert)
            }
            Ok(_) => {}
            Err(e) => return Err(format!("not valid PEM: {e}")),
        }
    }
    if certs.is_empty() {
        return Err("contains no PEM certificate".into());
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_then_caps() {
        let pauses: Vec<u64> = (0..5).map(|a| backoff(a).as_millis() as u64).collect();
        assert_eq!(pauses, [100, 400, 1600, 2000, 2000]);
        assert_eq!(backoff(u32::MAX), Duration::from_secs(2));
    }

    #[test]
    fn pem_without_certificates_is_refused() {
        assert!(pem_certificates(b"").is_err());
        assert!(pem_certificates(b"hello, not pem").is_err());
        let key_only = b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n-----END PRIVATE KEY-----\n";
        assert!(pem_certificates(key_only).is_err());
    }

    #[test]
    fn timeouts_are_not_retried_but_resets_are() {
        assert!(!is_retryable(&ureq::Error::Timeout(ureq::Timeout::Global)));
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(is_retryable(&ureq::Error::Io(reset)));
        assert!(is_retryable(&ureq::Error::ConnectionFailed));
        assert!(!is_retryable(&ureq::Error::BadUri("x".into())));
        let untrusted = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        assert!(!is_retryable(&ureq::Error::Rustls(untrusted)));
    }

    #[test]
    fn a_refused_certificate_is_a_tls_failure_in_whatever_wrapping() {
        let untrusted =
            || rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let in_handshake = ureq::Error::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            untrusted(),
        ));
        assert!(is_tls(&in_handshake) && !is_retryable(&in_handshake));
        assert!(describe(&in_handshake).starts_with("TLS: "));
        assert!(is_tls(&ureq::Error::Rustls(untrusted())));
        let reset = ureq::Error::Io(std::io::ErrorKind::ConnectionReset.into());
        assert!(!is_tls(&reset) && is_retryable(&reset));
    }

    #[test]
    fn zero_timeouts_and_bad_ca_files_are_refused_up_front() {
        let endpoint: Endpoint = "array1:8443".parse().expect("endpoint");
        let zero = ClientSettings {
            request_timeout: Duration::ZERO,
            ..ClientSettings::default()
        };
        assert!(matches!(
            Transport::new(&endpoint, &zero),
            Err(ArrayError::InvalidInput { .. })
        ));
        let missing = ClientSettings {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..ClientSettings::default()
        };
        match Transport::new(&endpoint, &missing) {
            Err(ArrayError::InvalidInput { message, .. }) => {
                assert!(message.contains("/nonexistent/ca.pem"))
            }
            other => panic!("expected InvalidInput, got {:?}", other.err()),
        }
    }
}
