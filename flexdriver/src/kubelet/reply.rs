//! The one JSON document kubelet reads, and the only writer to the real stdout.
//!
//! kubelet merges stdout and stderr and parses the lot as one JSON object, so at start-up
//! [`take_over_stdio`] keeps a private copy of the real stdout and points fds 0, 1 and 2 at
//! `/dev/null`: no library, log line or child process can reach kubelet's pipe. [`emit`] writes
//! the single reply to the private copy and gives it up, so a second reply (say, from the panic
//! hook racing the main thread) is impossible.

use std::fs::File;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Mutex;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Status {
    Success,
    Failure,
    #[serde(rename = "Not supported")]
    NotSupported,
}

/// What `init` promises kubelet. Every key is explicit: kubelet keeps its own (unwanted) default
/// for any key left out, notably `attach: true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    pub attach: bool,
    #[serde(rename = "selinuxRelabel")]
    pub selinux_relabel: bool,
    pub supports_metrics: bool,
    #[serde(rename = "fsGroup")]
    pub fs_group: bool,
    #[serde(rename = "requiresFSResize")]
    pub requires_fs_resize: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reply {
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
}

impl Reply {
    pub fn success() -> Self {
        Self {
            status: Status::Success,
            message: None,
            capabilities: None,
        }
    }

    pub fn failure(message: impl Into<String>) -> Self {
        Self {
            status: Status::Failure,
            message: Some(message.into()),
            capabilities: None,
        }
    }

    pub fn not_supported(call: &str) -> Self {
        Self {
            status: Status::NotSupported,
            message: Some(format!(
                "{call} is not implemented: the driver does all its work in mount and unmount"
            )),
            capabilities: None,
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        match self.status {
            Status::Success | Status::NotSupported => ExitCode::SUCCESS,
            Status::Failure => ExitCode::FAILURE,
        }
    }

    /// The document as one line. A serialisation failure (which the types above cannot produce)
    /// still yields valid JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"status":"Failure","message":"internal error: reply could not be encoded"}"#.into()
        })
    }
}

static REAL_STDOUT: Mutex<Option<File>> = Mutex::new(None);

/// Keeps the real stdout for [`emit`] and silences fds 0, 1 and 2. Returns false when there was no
/// usable stdout to keep (then nobody can be answered anyway).
pub fn take_over_stdio() -> bool {
    let Ok(saved) = nix::unistd::dup(std::io::stdout()) else {
        return false;
    };
    if let Ok(mut slot) = REAL_STDOUT.lock() {
        *slot = Some(File::from(saved));
    }
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
    true
}

/// Sends whatever libraries print to stderr into the log file rather than nowhere.
pub fn redirect_stderr_to(log: &File) {
    let _ = nix::unistd::dup2_stderr(log);
}

/// Writes the reply once. Later calls do nothing.
pub fn emit(reply: &Reply) {
    let taken = REAL_STDOUT.lock().ok().and_then(|mut slot| slot.take());
    if let Some(mut out) = taken {
        let mut text = reply.to_json();
        text.push('\n');
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

/// A panic anywhere (any thread) becomes a Failure reply and exit status 1.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        log::error!("internal error: {what}{place}");
        emit(&Reply::failure(format!("internal error: {what}{place}")));
        std::process::exit(1);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_spelled_as_kubelet_expects() {
        assert_eq!(Reply::success().to_json(), r#"{"status":"Success"}"#);
        let ns: serde_json::Value =
            serde_json::from_str(&Reply::not_supported("attach").to_json()).expect("json");
        assert_eq!(ns["status"], "Not supported");
        assert_eq!(Reply::failure("x").exit_code(), ExitCode::FAILURE);
        assert_eq!(Reply::not_supported("x").exit_code(), ExitCode::SUCCESS);
    }

    #[test]
    fn capabilities_use_kubelet_key_names() {
        let reply = Reply {
            capabilities: Some(Capabilities {
                attach: false,
                selinux_relabel: true,
                supports_metrics: false,
                fs_group: false,
                requires_fs_resize: false,
            }),
            ..Reply::success()
        };
        let v: serde_json::Value = serde_json::from_str(&reply.to_json()).expect("json");
        let caps = v["capabilities"].as_object().expect("object");
        let mut keys: Vec<&str> = caps.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "attach",
                "fsGroup",
                "requiresFSResize",
                "selinuxRelabel",
                "supportsMetrics"
            ]
        );
        assert_eq!(caps["attach"], false);
    }
}
