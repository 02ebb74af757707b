//! What the process shows the outside: the HTTP endpoints, the metrics they serve, and the log.

pub mod http;
pub mod logging;
pub mod metrics;
