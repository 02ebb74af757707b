//! FlashArray volumes end to end: the built driver, run as kubelet runs it, against the array
//! simulator and the test fabric (loop devices standing in for iSCSI LUNs). One test binary, a
//! module per family: `mount` (the node side: staging, formatting, binds, unmounts), `array`
//! (finding the volume, registering the host, fencing), `faults` (slow, unreachable or missing),
//! `release` (never while in use, rollback of a failed mount, leftovers collected) and `expand`
//! (`expandfs`, and mount growing a file system its device outgrew).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

// Shared by every test binary of this crate, so it lives beside them, not in this directory.
#[path = "../support/mod.rs"]
mod support;

mod array;
mod expand;
mod faults;
mod mount;
mod release;

const UID_A: &str = "6f1c2a8e-0000-4000-8000-00000000000a";
const UID_B: &str = "6f1c2a8e-0000-4000-8000-00000000000b";
