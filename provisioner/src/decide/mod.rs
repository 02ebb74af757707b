//! Pure decisions, no I/O: callers pass objects in and act on the answer. The reconcilers
//! ([`crate::reconcile`]) do what these modules decide.

pub mod backoff;
pub mod claim;
pub mod class_params;
pub mod placement;
pub mod plan;
pub mod pv;
pub mod quantity;
pub mod replica;
pub mod replication;
pub mod resize;
pub mod source;
pub mod volume;
