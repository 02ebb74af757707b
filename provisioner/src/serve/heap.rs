//! The allocator's own account of the provisioner's memory (jemalloc's `stats.*`), exported on
//! `/metrics` as `flashvol_heap_bytes{kind}`.
//!
//! Owns the question "what is this resident memory": `allocated` is live data (the caches, the
//! queues), `resident` − `allocated` is what the allocator holds for reuse after a burst, and
//! the process's RSS minus `resident` is the binary's pages and the thread stacks. The benchmark
//! reads it across its phases (bench/README.md), and an operator can read it without a profiler.

use tikv_jemalloc_ctl::{background_thread, config, epoch, stats};

/// One reading of jemalloc's counters, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapStats {
    /// Bytes the program holds (live allocations).
    pub allocated: u64,
    /// Bytes in pages that hold live allocations (`allocated` plus their fragmentation).
    pub active: u64,
    /// Bytes in physically resident pages the allocator maps: what it counts in RSS.
    pub resident: u64,
    /// Bytes in the allocator's active extents (address space in use).
    pub mapped: u64,
    /// Bytes of address space kept for reuse, not resident.
    pub retained: u64,
}

impl HeapStats {
    /// The kinds and values as `/metrics` labels them.
    pub fn by_kind(&self) -> [(&'static str, u64); 5] {
        [
            ("allocated", self.allocated),
            ("active", self.active),
            ("resident", self.resident),
            ("mapped", self.mapped),
            ("retained", self.retained),
        ]
    }
}

/// Reads the counters; jemalloc refreshes them only when its epoch advances.
pub fn read() -> Result<HeapStats, tikv_jemalloc_ctl::Error> {
    epoch::advance()?;
    let bytes = |n: usize| n as u64;
    Ok(HeapStats {
        allocated: bytes(stats::allocated::read()?),
        active: bytes(stats::active::read()?),
        resident: bytes(stats::resident::read()?),
        mapped: bytes(stats::mapped::read()?),
        retained: bytes(stats::retained::read()?),
    })
}

/// jemalloc's compiled-in settings (the crate features in `Cargo.toml` choose them) and
/// whether its background threads run, for the start-up log: what returns freed pages to the
/// kernel is part of how much memory the process keeps.
pub fn settings() -> Result<(&'static str, bool), tikv_jemalloc_ctl::Error> {
    Ok((config::malloc_conf::read()?, background_thread::read()?))
}
