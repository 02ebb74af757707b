//! flashvol-provisioner: turns `pure-provisioner` claims into FlashArray volumes or FlashBlade
//! file systems and flex PVs, and destroys them again when their PVs are released.
//!
//! Decisions are pure functions ([`decide`], [`class_params`], [`placement`], [`pv`],
//! [`quantity`], [`backoff`], [`orphans::select_orphans`], [`leader::decide_lease`]); the
//! reconcilers ([`provision`], [`delete`], [`orphans`]) do the I/O through an injectable
//! [`context::Context`]; [`controller`] wires them to watches, leader election and the HTTP
//! endpoints.

pub mod app;
pub mod args;
pub mod arrays;
pub mod backoff;
pub mod cache;
pub mod class_params;
pub mod context;
pub mod controller;
pub mod decide;
pub mod delete;
pub mod events;
pub mod finished;
pub mod http;
pub mod leader;
pub mod logging;
pub mod metrics;
pub mod orphans;
pub mod placement;
pub mod provision;
pub mod pv;
pub mod quantity;
pub mod ratelimit;

#[cfg(test)]
mod fake_kube;
#[cfg(test)]
mod reconcile_tests;
#[cfg(test)]
mod replica_tests;
#[cfg(test)]
mod testutil;
