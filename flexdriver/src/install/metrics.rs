//! The node's call-out statistics served on `/metrics` by the long-running installer
//! (`install --metrics-address`), so mount failures by reason and call durations reach
//! Prometheus without another daemon on the node.
//!
//! The driver processes kubelet runs write the statistics file ([`crate::runtime::stats`]); this
//! server only reads it, once per scrape (a few KB). It is a minimal HTTP/1.0 responder on one
//! thread: `GET /metrics` (Prometheus text 0.0.4), `GET /healthz`, 404 otherwise; every
//! connection is bounded by read/write timeouts and a request size limit, and one connection is
//! answered at a time (scrapes are rare), so a stuck client cannot grow anything.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{InstallError, Logger, io_error};
use crate::runtime::stats::{self, exposition};

/// Longest a client may take to send its request or read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest request head read; a scrape sends a few hundred bytes.
const MAX_REQUEST_BYTES: usize = 8 * 1024;

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Metrics,
    Health,
    NotFound,
    MethodNotAllowed,
}

/// The route of a request line (`GET /metrics HTTP/1.1`); a query string is ignored.
pub fn route(request_line: &str) -> Route {
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next(), parts.next());
    let path = target.map(|t| t.split('?').next().unwrap_or_default());
    match (method, path) {
        (Some("GET" | "HEAD"), Some("/metrics")) => Route::Metrics,
        (Some("GET" | "HEAD"), Some("/healthz")) => Route::Health,
        (Some("GET" | "HEAD"), _) => Route::NotFound,
        _ => Route::MethodNotAllowed,
    }
}

/// The full HTTP answer to `request_line`: status line, headers, body.
pub(crate) fn answer(request_line: &str, stats_file: &Path, log: &Logger) -> Vec<u8> {
    let (status, content_type, body) = match route(request_line) {
        Route::Metrics => {
            let stats = match stats::read(stats_file) {
                Ok(stats) => Some(stats.unwrap_or_default()),
                Err(e) => {
                    log.warn(&format!("metrics: {e}"));
                    None
                }
            };
            (
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                exposition(stats.as_ref()),
            )
        }
        Route::Health => ("200 OK", "text/plain; charset=utf-8", "ok\n".to_owned()),
        Route::NotFound => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "only /metrics and /healthz are served here\n".to_owned(),
        ),
        Route::MethodNotAllowed => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET\n".to_owned(),
        ),
    };
    let head_only = request_line.starts_with("HEAD ");
    let mut out = format!(
        "HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// Binds `address` now (so a taken port fails the install at once) and serves on a thread of
/// its own until the process ends.
pub fn spawn(
    address: SocketAddr,
    stats_file: PathBuf,
    debug: bool,
) -> Result<SocketAddr, InstallError> {
    let listener = TcpListener::bind(address).map_err(|source| InstallError::Io {
        action: "listening for /metrics on",
        path: PathBuf::from(address.to_string()),
        source,
    })?;
    let bound = listener.local_addr().map_err(io_error(
        "reading the address of",
        Path::new("the metrics listener"),
    ))?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || serve(&listener, &stats_file, &Logger { debug }))
        .map_err(io_error(
            "starting the metrics thread for",
            Path::new("/metrics"),
        ))?;
    Ok(bound)
}

fn serve(listener: &TcpListener, stats_file: &Path, log: &Logger) {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                if let Err(e) = answer_connection(stream, stats_file, log) {
                    log.debug(&format!("metrics connection: {e}"));
                }
            }
            Err(e) => log.debug(&format!("metrics accept: {e}")),
        }
    }
}

fn answer_connection(
    mut stream: TcpStream,
    stats_file: &Path,
    log: &Logger,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST_BYTES {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let request_line = text.lines().next().unwrap_or_default();
    stream.write_all(&answer(request_line, stats_file, log))?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn requests_are_routed_by_method_and_path() {
        assert_eq!(route("GET /metrics HTTP/1.1"), Route::Metrics);
        assert_eq!(route("GET /metrics?x=1 HTTP/1.1"), Route::Metrics);
        assert_eq!(route("HEAD /healthz HTTP/1.0"), Route::Health);
        assert_eq!(route("GET / HTTP/1.1"), Route::NotFound);
        assert_eq!(route("POST /metrics HTTP/1.1"), Route::MethodNotAllowed);
        assert_eq!(route(""), Route::MethodNotAllowed);
    }

    #[test]
    fn a_scrape_over_tcp_reads_the_statistics_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stats = dir.path().join("stats.json");
        stats::record(&stats, "mount", "tool_failed", Duration::from_secs(2)).expect("records");
        let addr = spawn("127.0.0.1:0".parse().expect("addr"), stats, false).expect("listens");
        let mut conn = TcpStream::connect(addr).expect("connects");
        conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("sends");
        let mut reply = String::new();
        conn.read_to_string(&mut reply).expect("reads");
        assert!(reply.starts_with("HTTP/1.0 200 OK\r\n"), "{reply}");
        assert!(reply.contains("text/plain; version=0.0.4"));
        assert!(
            reply.contains(
                "flashvol_flex_calls_total{callout=\"mount\",reason=\"tool_failed\"} 1\n"
            ),
            "{reply}"
        );
        assert!(reply.contains("flashvol_flex_stats_readable 1\n"));
    }

    #[test]
    fn an_unreadable_file_is_reported_not_fatal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stats = dir.path().join("stats.json");
        std::fs::write(&stats, "garbage").expect("write");
        let reply = String::from_utf8(answer(
            "GET /metrics HTTP/1.1",
            &stats,
            &Logger { debug: false },
        ))
        .expect("utf-8");
        assert!(
            reply.contains("flashvol_flex_stats_readable 0\n"),
            "{reply}"
        );
        let missing = dir.path().join("none.json");
        let reply = String::from_utf8(answer(
            "GET /metrics HTTP/1.1",
            &missing,
            &Logger { debug: false },
        ))
        .expect("utf-8");
        assert!(
            reply.contains("flashvol_flex_stats_readable 1\n"),
            "no file yet: no call yet"
        );
    }
}
