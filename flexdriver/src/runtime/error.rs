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

impl FlexError {
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
