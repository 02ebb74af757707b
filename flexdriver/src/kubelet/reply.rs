//! The one JSON document kubelet reads: a status, a message, `init`'s capabilities, and the
//! exit code that goes with them. [`crate::runtime::stdio`] writes it, exactly once.

use std::process::ExitCode;

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

    /// Success with a sentence for the log of whoever called (what `expandfs` did, or why there
    /// was nothing to do on the node).
    pub fn success_with(message: impl Into<String>) -> Self {
        Self {
            message: Some(message.into()),
            ..Self::success()
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
                "{call} is not implemented: the driver does all its work in mount, unmount and expandfs"
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
