//! flashvol-flex: the FlexVolume driver kubelet runs as `<plugin dir>/pure~flex/flex`.
//!
//! kubelet calls `init`, `mount <pod dir> <json>` and `unmount <pod dir>`; everything else is
//! answered `Not supported`. The modules, in the order a call-out passes through them:
//!
//! - [`kubelet`]: the protocol edge: argv, options and paths decoded without side effects, and the reply.
//! - [`callout`]: one call from start to reply: load the settings, take the volume lock, pick a flow.
//! - [`flow`]: the two volume flows, [`flow::block`] (FlashArray) and [`flow::file`] (FlashBlade NFS).
//! - [`node`]: this node: settings, tools, mounts, devices, SAN sessions, records and locks.
//! - [`array`]: the configured arrays: which one holds a volume, host registration, fencing.
//! - [`runtime`]: the plumbing under it all: errors, deadlines, the log, crash points.

#![deny(clippy::print_stdout, clippy::print_stderr)]
pub mod kubelet;

pub mod callout;

pub mod flow;

pub mod node;

pub mod array;

pub mod runtime;

pub mod install;
