//! flashvol-provisioner: turns `pure-provisioner` claims into FlashArray volumes or FlashBlade
//! file systems and flex PVs, grows them when their claims grow, and destroys them again when
//! their PVs are released.
//!
//! Modules in the order a claim flows through them (claim, decision, array, PV), then the
//! plumbing they run on:
//!
//! - [`args`]: the command line; every flag also a `FLASHVOL_*` variable.
//! - [`app`]: start-up: configuration, clients, leader gate, HTTP endpoints, controllers.
//! - [`controller`]: watches on claims, PVs and classes feeding the reconcilers, with backoff.
//! - [`decide`]: pure decisions, no I/O:
//!   - [`decide::claim`]: is a claim ours to provision now; its size and access modes.
//!   - [`decide::class_params`]: StorageClass parameters, parsed strictly.
//!   - [`decide::quantity`]: Kubernetes quantities (the size rules are `flashvol_common::sizes`).
//!   - [`decide::plan`]: what a claim's volume will be: name, size, file system defaults.
//!   - [`decide::placement`]: which array gets a new volume: labels, then free space.
//!   - [`decide::pv`]: the PV of a provisioned volume.
//!   - [`decide::resize`]: which bound claims want a larger array object, how large, and who
//!     finishes them (kubelet for block, this process for file).
//!   - [`decide::source`]: where a claim's data comes from (snapshot, clone, adoption), and
//!     whether that source may be used.
//!   - [`decide::volume`]: is a PV ours to delete, or only our finalizer to release.
//!   - [`decide::backoff`]: per-object retry delays.
//! - [`reconcile`]: one pass over a claim or PV, the I/O that acts on the decisions:
//!   - [`reconcile::context`]: what the passes act through (client, arrays, clock, events).
//!   - [`reconcile::provision`]: a claim to an array volume and a PV.
//!   - [`reconcile::resize`]: a grown claim's array object grown; a file claim finished.
//!   - [`reconcile::delete`]: a released PV's array volume destroyed, the PV deleted.
//!   - [`reconcile::locate`]: which array holds a PV's volume (the shared rule, asked).
//!   - [`reconcile::source`]: a claim's snapshot, clone source or adopted object, found and
//!     checked.
//!   - [`reconcile::orphans`]: volumes no PV or claim refers to (pure `select_orphans`), destroyed.
//!   - [`reconcile::events`]: Kubernetes Events on claims and PVs.
//!   - [`reconcile::finished`]: PVs this process deleted, so stale copies are ignored.
//! - [`arrays`]: the configured arrays as async operations, with metrics and a space cache.
//! - [`snapshot`]: the `snapshot` CLI (PSO 2.x's, in the provisioner image) and the array
//!   operations on snapshots and copies that restores and clones use.
//! - [`k8s`]: Kubernetes plumbing:
//!   - [`k8s::cache`]: what the watch caches keep of each claim and PV.
//!   - [`k8s::leader`]: leader election on a Lease (the pure rule: `decide_lease`).
//!   - [`k8s::ratelimit`]: the client-side token bucket.
//! - [`serve`]: what the process shows the outside:
//!   - [`serve::http`]: `/metrics`, `/healthz`, `/readyz`.
//!   - [`serve::metrics`]: the Prometheus metrics.
//!   - [`serve::logging`]: the logger, with the wire-logging crates capped.
//! - `tests` (test builds only): the fake API server, fixtures, reconcile and replica tests.

pub mod app;
pub mod args;
pub mod arrays;
pub mod controller;
pub mod decide;
pub mod k8s;
pub mod reconcile;
pub mod serve;
pub mod snapshot;

#[cfg(test)]
mod tests;
