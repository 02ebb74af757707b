//! What the process shows the outside: the HTTP endpoints, the metrics they serve (and, in
//! [`monitor`], what those say about the arrays, claims and PVs; in [`heap`], about the
//! process's own memory), and the log.

pub mod heap;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod monitor;
