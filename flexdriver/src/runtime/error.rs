//! Why a call-out failed. Every variant renders as a sentence that goes into the `message` of the
//! Failure reply, so kubelet's events tell the operator what to fix.

use std::path::PathBuf;
use std::time::Duration;

use flashvol_common::ArrayError;

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
    fn every_variant_has_its_own_kind_from_the_list() {
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
}
