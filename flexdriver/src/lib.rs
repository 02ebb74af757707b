//! flashvol-flex: the FlexVolume driver kubelet runs as `<plugin dir>/pure~flex/flex`.
//!
//! kubelet calls `init`, `mount <pod dir> <json>`, `unmount <pod dir>` and, after a claim grew,
//! `expandfs <json> <device> <mount dir> <new bytes> <old bytes>`; the node installer calls
//! `collect <kubelet root> <vendor/driver>`; everything else is answered `Not supported`. The
//! modules, in the order a call-out passes through them:
//!
//! - [`kubelet`]: the protocol edge, no I/O.
//!   - [`kubelet::invocation`]: argv → init, mount, unmount, expandfs, collect or Not supported.
//!   - [`kubelet::request`]: the mount option map → what to mount and how.
//!   - [`kubelet::layout`]: the pod volume dir (or staging dir) → the PV name, staging dir and
//!     record path; a driver's area of a kubelet root (its records, its pod dirs).
//!   - [`kubelet::reply`]: the JSON document kubelet reads.
//! - [`callout`]: one call from start to reply: settings, the volume lock, then a flow; then the
//!   collection of leftovers.
//! - [`flow`]: the volume flows, run under the volume lock.
//!   - [`flow::block`]: FlashArray: attach, format once, stage, bind; a failed mount rolled back.
//!   - [`flow::release`]: unstage, remove devices, disconnect, never while mounted anywhere.
//!   - [`flow::collect`]: leftover volumes no call will come for.
//!   - [`flow::file`]: FlashBlade: an NFS mount into the pod dir.
//!   - [`flow::expand`]: `expandfs`: the array object, the node's view and the file system grow.
//! - [`node`]: this node, and everything done to it ([`node::Node`] is what a call carries).
//!   - [`node::settings`]: the `node` section of the settings file.
//!   - [`node::tools`]: external programs, found once, run with a deadline.
//!   - [`node::mounts`]: blkid, mkfs, mount, bind, unmount, growing, fsGroup on a volume root.
//!   - [`node::superblock`]: a file system's size, read from its superblock.
//!   - [`node::mountinfo`]: the kernel's mount table, the driver's memory.
//!   - [`node::namespaces`]: other mount namespaces that still hold a file system.
//!   - [`node::san`]: iSCSI logins, FC rescans, capacity rescans, multipath maps.
//!   - [`node::devices`]: block devices proven by WWID.
//!   - [`node::initiators`]: the node's IQN and WWNs, and its array host name.
//!   - [`node::record`]: what a staged volume is, for an unmount that gets only a path.
//!   - [`node::locks`]: the per-volume and host-registration flocks.
//! - [`array`](mod@array): the configured arrays, one client type for both kinds, calls under a deadline.
//!   - [`array::locate`]: which array holds a volume or file system.
//!   - [`array::hosts`]: this node as a FlashArray host, and its connections.
//!   - [`array::fencing`]: RWO volumes disconnected from other flashvol hosts.
//! - [`runtime`]: process plumbing.
//!   - [`runtime::stdio`]: kubelet's pipe kept clean; the reply written once.
//!   - [`runtime::error`]: why a call failed, as a sentence for kubelet's events.
//!   - [`runtime::deadline`]: bounded waiting for anything that can hang.
//!   - [`runtime::logger`]: the size-bounded log file.
//!   - [`runtime::crash`]: test-only crash points.
//! - [`install`]: `flashvol-flex install`/`uninstall`, the node installer the DaemonSet runs.
//!   - [`install::options`]: its command line and environment.
//!   - [`install::plugin_dir`]: which plugin dir the running kubelet reads.
//!   - [`install::settings_file`]: `flashvol.json` from `pure.json` and the environment.
//!   - [`install::files`]: atomic, mode-exact writes of the binary and the settings.
//!   - [`install::daemonset`]: whether SIGTERM means uninstall.
//!   - [`install::collect`]: `collect` at start and every minute, in kubelet's mount namespace.

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod kubelet;

pub mod callout;

pub mod flow;

pub mod node;

pub mod array;

pub mod runtime;

pub mod install;
