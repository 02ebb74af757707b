//! Kubernetes plumbing under the controllers: what the watch caches keep, the work queues, the
//! leader lease and the client-side rate limit. Named `k8s`, not `kube`, so it does not shadow the
//! `kube` crate.

pub mod cache;
pub mod leader;
pub mod ratelimit;
pub mod workqueue;
