//! Test-only crash points, compiled in and inert unless `FLASHVOL_FLEX_CRASH_AFTER=<step>` is
//! set: right after the named step the process aborts, as if killed there. Tests use it to prove
//! that a retried call converges from every intermediate state. `FLASHVOL_FLEX_PANIC_AFTER=<step>`
//! panics there instead, to prove that a panic still yields one Failure reply.

use std::sync::OnceLock;

pub const ENV_CRASH_AFTER: &str = "FLASHVOL_FLEX_CRASH_AFTER";
pub const ENV_PANIC_AFTER: &str = "FLASHVOL_FLEX_PANIC_AFTER";

/// Steps of a block mount, in order.
pub const BLOCK_MOUNT_STEPS: &[&str] = &[
    "volume-locked",
    "record-written",
    "host-registered",
    "fenced",
    "volume-connected",
    "paths-scanned",
    "device-found",
    "formatted",
    "staging-mounted",
    "ownership-set",
    "bind-mounted",
];

/// Steps of an unmount (block volumes go through all of them).
pub const UNMOUNT_STEPS: &[&str] = &[
    "volume-locked",
    "unbound",
    "staging-unmounted",
    "multipath-flushed",
    "devices-deleted",
    "volume-disconnected",
];

/// Steps of a file (NFS) mount.
pub const FILE_MOUNT_STEPS: &[&str] = &["volume-locked", "nfs-mounted", "ownership-set"];

/// Steps of a block `expandfs`.
pub const BLOCK_EXPAND_STEPS: &[&str] = &[
    "volume-locked",
    "array-grown",
    "paths-rescanned",
    "device-grown",
    "filesystem-grown",
];

/// Steps of a file `expandfs` (nothing happens on the node).
pub const FILE_EXPAND_STEPS: &[&str] = &["volume-locked", "array-grown"];

fn point(cell: &'static OnceLock<Option<String>>, var: &str) -> Option<&'static str> {
    cell.get_or_init(|| std::env::var(var).ok().filter(|s| !s.is_empty()))
        .as_deref()
}

fn crash_point() -> Option<&'static str> {
    static POINT: OnceLock<Option<String>> = OnceLock::new();
    point(&POINT, ENV_CRASH_AFTER)
}

fn panic_point() -> Option<&'static str> {
    static POINT: OnceLock<Option<String>> = OnceLock::new();
    point(&POINT, ENV_PANIC_AFTER)
}

/// Marks the end of a step: logs it, and aborts if this is the configured crash point.
pub fn step_done(step: &str) {
    log::debug!("step done: {step}");
    if crash_point() == Some(step) {
        log::warn!("{ENV_CRASH_AFTER}={step}: aborting on purpose");
        std::process::abort();
    }
    if panic_point() == Some(step) {
        panic!("{ENV_PANIC_AFTER}={step}: panicking on purpose");
    }
}
