//! Why a call-out failed. Every variant renders as a sentence that goes into the `message` of the
//! Failure reply, so kubelet's events tell the operator what to fix.

use std::path::PathBuf;
use std::time::Duration;

use flashvol_common::ArrayError;
use flashvol_common::locate::{LocateError, Problem};

#[derive(Debug, thiserror::Error)]
pub enum FlexError {
    /// The call itself was malformed: arguments, JSON, options.
    #[error("{0}")]
    Request(String),
    /// The settings file (or an environment override) is unusable.
    #[error("{0}")]
    Settings(String),
    /// An array answered with an error.
    #[error("{step}: {source}")]
    Array {
        step: String,
        #[source]
        source: ArrayError,
    },
    /// A step did not finish within its deadline.
    #[error("{step} did not finish within {}s", limit.as_secs_f64())]
    TimedOut { step: String, limit: Duration },
    /// A required program is not installed where the settings say.
    #[error("required tool {tool} not found ({looked}); install it or set node.tools.{key}")]
    MissingTool {
        tool: &'static str,
        key: &'static str,
        looked: String,
    },
    /// An external program ran and failed.
    #[error("{command} failed ({status}): {output}")]
    ToolFailed {
        command: String,
        status: String,
        output: String,
    },
    /// A file or system call failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The PV's volume was not located; what failed depends on the [`Problem`] (see
    /// [`FlexError::kind`]).
    #[error("{0}")]
    Locate(LocateError),
    /// The node or the arrays are in a state the driver refuses to act on.
    #[error("{0}")]
    Refused(String),
}

/// Every [`FlexError::kind`]: the bounded set of failure reasons the call-out statistics count
/// ([`crate::runtime::stats`]).
pub const KINDS: [&str; 8] = [
    "request",
    "settings",
    "array",
    "timed_out",
    "missing_tool",
    "tool_failed",
    "io",
    "refused",
];

impl FlexError {
    /// A short, stable name of the variant, for metrics (one of [`KINDS`]).
    pub fn kind(&self) -> &'static str {
        match self {
            FlexError::Request(_) => "request",
            FlexError::Settings(_) => "settings",
            FlexError::Array { .. } => "array",
            FlexError::TimedOut { .. } => "timed_out",
            FlexError::MissingTool { .. } => "missing_tool",
            FlexError::ToolFailed { .. } => "tool_failed",
            FlexError::Io { .. } => "io",
            FlexError::Locate(e) => match e.problem {
                // Arrays whose answer was needed could not be asked: the arrays failed, and
                // the same call succeeds once they answer.
                Problem::Unreachable(_) => "array",
                Problem::NoArrays => "settings",
                // Every array needed answered, and the answers forbid the call.
                _ => "refused",
            },
            FlexError::Refused(_) => "refused",
        }
    }

    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        FlexError::Io {
            what,
            path: path.into(),
            source,
        }
    }

    pub fn array(step: impl Into<String>, source: ArrayError) -> Self {
        FlexError::Array {
            step: step.into(),
            source,
        }
    }
}

pub type Result<T, E = FlexError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_but_locate_has_its_own_kind_from_the_list() {
        let errors = [
            FlexError::Request(String::new()),
            FlexError::Settings(String::new()),
            FlexError::array(
                "step",
                ArrayError::InvalidInput {
                    endpoint: String::new(),
                    message: String::new(),
                },
            ),
            FlexError::TimedOut {
                step: String::new(),
                limit: Duration::ZERO,
            },
            FlexError::MissingTool {
                tool: "t",
                key: "k",
                looked: String::new(),
            },
            FlexError::ToolFailed {
                command: String::new(),
                status: String::new(),
                output: String::new(),
            },
            FlexError::io("x", "/", std::io::Error::other("x")),
            FlexError::Refused(String::new()),
        ];
        let kinds: Vec<&str> = errors.iter().map(FlexError::kind).collect();
        assert_eq!(kinds, KINDS);
    }

    fn not_located(problem: Problem) -> FlexError {
        FlexError::Locate(LocateError {
            volume: "k8s-pvc-1".into(),
            backend: flashvol_common::options::Backend::Block,
            object: flashvol_common::options::Backend::Block.object_kind(),
            problem,
        })
    }

    #[test]
    fn a_volume_not_located_because_an_array_could_not_be_asked_is_an_array_failure() {
        let unreachable = not_located(Problem::Unreachable(vec![(
            "fa-b.example:443".into(),
            "connection reset".into(),
        )]));
        assert_eq!(unreachable.kind(), "array");
        assert!(
            unreachable
                .to_string()
                .contains("fa-b.example:443 (connection reset)"),
            "the message still names the array and why: {unreachable}"
        );
    }

    #[test]
    fn a_volume_not_located_although_every_array_answered_is_refused() {
        let answered = [
            Problem::NotFound {
                searched: vec!["fa-a".into(), "fa-b".into()],
                named: false,
            },
            Problem::NotFound {
                searched: vec!["fa-a".into()],
                named: true,
            },
            Problem::OnMoreThanOne(vec!["fa-a".into(), "fa-b".into()]),
            Problem::Destroyed("fa-a".into()),
            Problem::IdNotConfigured {
                id: "id-9".into(),
                endpoint: None,
                configured: vec!["fa-a".into()],
            },
        ];
        for problem in answered {
            let error = not_located(problem);
            assert_eq!(error.kind(), "refused", "{error}");
        }
    }

    #[test]
    fn a_volume_not_located_because_no_array_is_configured_is_a_settings_failure() {
        assert_eq!(not_located(Problem::NoArrays).kind(), "settings");
    }
}
