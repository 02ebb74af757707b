//! What an array call can fail with, classified from the arrays' replies so callers match on
//! variants, never on message text.

/// An array operation failed. `endpoint` is the array's management endpoint; `message` is the
/// array's own text (tokens never appear in it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArrayError {
    /// Creating something whose name is taken, or a connection that exists ("already exists").
    #[error("{endpoint}: {object} already exists: {message}")]
    AlreadyExists {
        endpoint: String,
        object: String,
        message: String,
    },
    /// The named object is not there ("does not exist", "No such volume or snapshot").
    #[error("{endpoint}: {object} does not exist: {message}")]
    NotFound {
        endpoint: String,
        object: String,
        message: String,
    },
    /// The object is destroyed (pending eradication), or the name is held by one ("has been destroyed").
    #[error("{endpoint}: {object} has been destroyed: {message}")]
    Destroyed {
        endpoint: String,
        object: String,
        message: String,
    },
    /// Disconnecting a pair that is not connected ("is not connected").
    #[error("{endpoint}: {object} is not connected: {message}")]
    NotConnected {
        endpoint: String,
        object: String,
        message: String,
    },
    /// An initiator (IQN/WWN/NQN) belongs to another host ("already in use").
    #[error("{endpoint}: {object} is already in use: {message}")]
    InUse {
        endpoint: String,
        object: String,
        message: String,
    },
    /// Refused because of existing connections (delete a connected host, destroy a connected volume).
    #[error("{endpoint}: {object} has connections: {message}")]
    HasConnections {
        endpoint: String,
        object: String,
        message: String,
    },
    /// The API token was refused, or the session could not be re-established.
    #[error("{endpoint}: authentication failed: {message}")]
    Auth { endpoint: String, message: String },
    /// Could not talk to the array: DNS, connect, TLS, reset, or the deadline passed.
    #[error("{endpoint}: {message}")]
    Transport {
        endpoint: String,
        message: String,
        timed_out: bool,
        /// The TLS handshake failed: the array's certificate is not trusted (wrong CA, name,
        /// dates) or no protocol was agreed. Fails the same way until the settings change.
        tls: bool,
    },
    /// Any other non-success reply.
    #[error("{endpoint}: HTTP {status}: {message}")]
    Api {
        endpoint: String,
        status: u16,
        message: String,
    },
    /// A success reply we could not understand (malformed, truncated, missing fields).
    #[error("{endpoint}: unexpected reply to {operation}: {detail}")]
    BadReply {
        endpoint: String,
        operation: String,
        detail: String,
    },
    /// Refused before anything was sent: an unusable client setting (unreadable CA file, zero
    /// timeout) or argument (empty name, a name that cannot be expressed in a filter).
    #[error("{endpoint}: {message}")]
    InvalidInput { endpoint: String, message: String },
}

impl ArrayError {
    /// Worth retrying later (transport trouble, 5xx, throttling), as opposed to a definite answer.
    pub fn is_transient(&self) -> bool {
        match self {
            ArrayError::Transport { .. } => true,
            ArrayError::Api { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// Short label for metrics and events: `already_exists`, `not_found`, `transport`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            ArrayError::AlreadyExists { .. } => "already_exists",
            ArrayError::NotFound { .. } => "not_found",
            ArrayError::Destroyed { .. } => "destroyed",
            ArrayError::NotConnected { .. } => "not_connected",
            ArrayError::InUse { .. } => "in_use",
            ArrayError::HasConnections { .. } => "has_connections",
            ArrayError::Auth { .. } => "auth",
            ArrayError::Transport { .. } => "transport",
            ArrayError::Api { .. } => "api",
            ArrayError::BadReply { .. } => "bad_reply",
            ArrayError::InvalidInput { .. } => "invalid_input",
        }
    }

    /// The same error with every occurrence of `secret` in its text replaced, so an array that
    /// echoes the API token back in an error message cannot leak it into logs.
    pub(crate) fn redacted(self, secret: &str) -> Self {
        if secret.is_empty() {
            return self;
        }
        let clean = |text: String| text.replace(secret, "<redacted>");
        match self {
            ArrayError::AlreadyExists {
                endpoint,
                object,
                message,
            } => ArrayError::AlreadyExists {
                endpoint,
                object: clean(object),
                message: clean(message),
            },
            ArrayError::NotFound {
                endpoint,
                object,
                message,
            } => ArrayError::NotFound {
                endpoint,
                object: clean(object),
                message: clean(message),
            },
            ArrayError::Destroyed {
                endpoint,
                object,
                message,
            } => ArrayError::Destroyed {
                endpoint,
                object: clean(object),
                message: clean(message),
            },
            ArrayError::NotConnected {
                endpoint,
                object,
                message,
            } => ArrayError::NotConnected {
                endpoint,
                object: clean(object),
                message: clean(message),
            },
            ArrayError::InUse {
                endpoint,
                object,
                message,
            } => ArrayError::InUse {
                endpoint,
                object: clean(object),
                message: clean(message),
            },
            ArrayError::HasConnections {
                endpoint,
                object,
                message,
            } => ArrayError::HasConnections {
                endpoint,
                object: clean(object),
                message: clean(message),
            },
            ArrayError::Auth { endpoint, message } => ArrayError::Auth {
                endpoint,
                message: clean(message),
            },
            ArrayError::Transport {
                endpoint,
                message,
                timed_out,
                tls,
            } => ArrayError::Transport {
                endpoint,
                message: clean(message),
                timed_out,
                tls,
            },
            ArrayError::Api {
                endpoint,
                status,
                message,
            } => ArrayError::Api {
                endpoint,
                status,
                message: clean(message),
            },
            ArrayError::BadReply {
                endpoint,
                operation,
                detail,
            } => ArrayError::BadReply {
                endpoint,
                operation,
                detail: clean(detail),
            },
            ArrayError::InvalidInput { endpoint, message } => ArrayError::InvalidInput {
                endpoint,
                message: clean(message),
            },
        }
    }
}

pub type Result<T, E = ArrayError> = std::result::Result<T, E>;
