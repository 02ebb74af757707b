//! One pass over a claim or a PV: the I/O that carries out the decisions of [`crate::decide`],
//! through an injectable [`context::Context`] (the Kubernetes client, the arrays, events,
//! metrics), plus the orphan collector's rounds. An unbound claim is provisioned, a bound one
//! resized; a released PV is deleted.

pub mod attempts;
pub mod context;
pub mod copy;
pub mod delete;
pub mod events;
pub mod finished;
pub mod locate;
pub mod orphans;
pub mod provision;
pub mod replica;
pub mod replication;
pub mod resize;
pub mod source;
