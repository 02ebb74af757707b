//! flashvol-flex: the FlexVolume driver kubelet runs as `<plugin dir>/pure~flex/flex`.
//!
//! kubelet calls `init`, `mount <pod dir> <json>` and `unmount <pod dir>`; everything else is
//! answered `Not supported`. The modules, from the edge inwards:
//!
//! - [`reply`]: the single JSON reply and the fd discipline that keeps kubelet's pipe clean.
//! - [`invocation`], [`request`], [`layout`]: argv, options and paths decoded without side effects.
//! - [`settings`], [`logger`], [`node`]: the node settings file and the log.
//! - [`callout`]: one call from start to reply; [`block`] and [`file`]: the two volume flows.
//! - [`registration`], [`san`], [`devices`], [`fs`]: array host and connections, iSCSI/FC,
//!   devices by WWID, file systems and mounts.
//! - [`mountinfo`], [`locks`], [`deadline`], [`process`], [`record`], [`crash`]: the plumbing.

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod arrays;
pub mod block;
pub mod callout;
pub mod crash;
pub mod deadline;
pub mod devices;
pub mod error;
pub mod file;
pub mod fs;
pub mod initiators;
pub mod invocation;
pub mod layout;
pub mod locks;
pub mod logger;
pub mod mountinfo;
pub mod node;
pub mod process;
pub mod record;
pub mod registration;
pub mod reply;
pub mod request;
pub mod san;
pub mod settings;
