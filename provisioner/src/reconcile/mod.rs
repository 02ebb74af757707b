//! One pass over a claim or a PV: the I/O that carries out the decisions of [`crate::decide`],
//! through an injectable [`context::Context`] (the Kubernetes client, the arrays, events,
//! metrics), plus the orphan collector's rounds.

pub mod context;
pub mod delete;
pub mod events;
pub mod finished;
pub mod orphans;
pub mod provision;
pub mod replica;
pub mod replication;
pub mod source;
