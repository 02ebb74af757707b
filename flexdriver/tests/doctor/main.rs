//! `flashvol-flex doctor` on the test fabric: the array simulators for the arrays, and a fake
//! host root for the node, the way the DaemonSet pod sees the host at kubelet's `/proc/<pid>/root`: its `/proc` (a
//! kubelet, iscsid and multipathd "running"), `/etc/iscsi`, `/etc/multipath.conf`, kernel
//! modules, the fabric's stand-ins as the node's tools, and the driver installed in kubelet's
//! plugin dir. A healthy node passes every check; then one fault at a time gives exactly the
//! FAIL or WARN it should, with its hint, and nothing else goes wrong. Every JSON document is
//! validated against `flexdriver/doctor.schema.json`.
//!
//! One test binary, a module per family: `node` (the fake host and running doctor), `healthy`
//! (all PASS, the text report, read-only, the schema, the installer), `node_faults` (tools,
//! iSCSI, multipath, plugin dir, settings) and `array_faults` (host entry, token, reachability,
//! TLS).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

// Shared by every test binary of this crate, so it lives beside them, not in this directory.
#[path = "../support/mod.rs"]
mod support;

mod array_faults;
mod healthy;
mod node;
mod node_faults;
