//! Tests that span modules, and what they share: an in-memory Kubernetes API, object fixtures,
//! the reconcilers against it and simulated arrays, and whole replicas.

pub(crate) mod fake_kube;
pub(crate) mod fixtures;
mod reconcile;
mod replicas;
