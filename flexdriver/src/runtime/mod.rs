//! Process plumbing every call-out runs on: stdio kept away from kubelet's pipe, the error type,
//! bounded waiting, the log file, atomic file writes, the call-out statistics and the test-only
//! crash points.

pub mod crash;
pub mod deadline;
pub mod error;
pub mod files;
pub mod logger;
pub mod stats;
pub mod stdio;
