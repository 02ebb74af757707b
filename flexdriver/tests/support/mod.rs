//! The test fabric around the built `flashvol-flex` binary, shared by every test binary of this
//! crate: a FlashArray and a FlashBlade simulator, a private kubelet root, fake sysfs and by-id
//! dirs, the `tests/fabric` stand-ins for iscsiadm/multipath/mount, and a settings file pointing
//! the driver at all of it. Every test gets its own temp dir, so tests run in parallel; `Drop`
//! unmounts everything under it and detaches the loop devices even when the test failed.
//!
//! - `fabric`: [`Fabric`] itself: the temp dir, simulators, settings, mounts and cleanup.
//! - `kubelet`: running the driver as kubelet does, the reply contract, pod dirs and options.
//! - `arrays`: arranging and inspecting the simulated arrays.
//! - `procfs`: a fake `/proc` (other mount namespaces, a kubelet process).

#![allow(dead_code, clippy::unwrap_used)]

mod arrays;
mod fabric;
mod kubelet;
mod procfs;

use std::path::Path;
use std::time::{Duration, Instant};

// Each test binary uses a different subset, as with `dead_code` above.
#[allow(unused_imports)]
pub use fabric::{Fabric, FabricOptions, fabric_tool};
#[allow(unused_imports)]
pub use kubelet::{Outcome, block_options, file_options, flex_binary, one_json_document};
#[allow(unused_imports)]
pub use procfs::{FakeProc, FakeProcess, container_mountinfo};

pub const GIB: u64 = 1 << 30;

/// Whether the calling test must be skipped: it mounts file systems and sets up loop devices,
/// which only root may do. As another user (`cargo test --workspace` on a workstation) it says so
/// and the test returns, instead of failing with an unrelated-looking error. Written straight to
/// stderr, past the test harness's capture, so the reason is seen.
#[track_caller]
pub fn skip_unless_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return false;
    }
    say_skipped("needs root (loop devices, mounts)");
    true
}

/// Tells, past the test harness's capture, that the calling test is skipped and why.
#[track_caller]
fn say_skipped(why: &str) {
    use std::io::Write;
    let thread = std::thread::current();
    let test = thread
        .name()
        .map_or_else(|| std::panic::Location::caller().to_string(), str::to_owned);
    let _ = writeln!(std::io::stderr(), "{test}: skipped: {why}");
}

/// Whether the calling test must be skipped because growing a *mounted* ext4 file system is
/// impossible here: the kernel asks for `CAP_SYS_RESOURCE`, which some containers drop (kubelet
/// on a node has it). Says so, like [`skip_unless_root`]. Offline growth (at mount) needs no such
/// capability and is tested everywhere.
#[track_caller]
pub fn skip_unless_ext4_grows_online() -> bool {
    const CAP_SYS_RESOURCE: u32 = 24;
    let effective = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .unwrap_or(0);
    if effective & (1 << CAP_SYS_RESOURCE) != 0 {
        return false;
    }
    say_skipped("needs CAP_SYS_RESOURCE (online ext4 resize), which this process lacks");
    true
}

/// Writes a file into a mounted volume and returns its checksum.
pub fn write_payload(dir: &Path, name: &str, seed: u8) -> u64 {
    let data: Vec<u8> = (0..1_000_000u32)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    std::fs::write(dir.join(name), &data).unwrap();
    checksum(&data)
}

pub fn read_checksum(path: &Path) -> u64 {
    checksum(&std::fs::read(path).unwrap())
}

fn checksum(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The size of the file system mounted at `dir`, as `df` shows it (statvfs: blocks × fragment).
pub fn df_bytes(dir: &Path) -> u64 {
    let s = nix::sys::statvfs::statvfs(dir).unwrap();
    s.blocks() * s.fragment_size()
}

/// Waits until `cond` holds (the fabric applies some changes lazily).
pub fn eventually(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let started = Instant::now();
    while !cond() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
