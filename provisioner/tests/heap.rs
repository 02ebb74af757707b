//! `flashvol_heap_bytes` reads jemalloc as the binary runs it: this test binary makes jemalloc
//! its global allocator, as `main.rs` does, so what it allocates must show in the counters.

use flashvol_provisioner::serve::heap;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const BLOCK: usize = 8 << 20;
/// The test harness's own threads allocate and free a little meanwhile.
const BLOCK_SEEN: u64 = 7 << 20;

#[test]
fn live_data_shows_as_allocated_and_leaves_it_when_freed() {
    let before = heap::read().expect("jemalloc stats");
    let block = std::hint::black_box(vec![7u8; BLOCK]);
    let held = heap::read().expect("jemalloc stats");
    assert!(
        held.allocated >= before.allocated + BLOCK_SEEN,
        "{before:?} then {held:?}"
    );
    // What each counter means orders them: live bytes sit in active pages, which are resident
    // and inside the mapped extents.
    assert!(held.allocated <= held.active, "{held:?}");
    assert!(held.active <= held.resident, "{held:?}");
    assert!(held.active <= held.mapped, "{held:?}");
    drop(block);
    let freed = heap::read().expect("jemalloc stats");
    assert!(
        freed.allocated + BLOCK_SEEN <= held.allocated,
        "{held:?} then {freed:?}"
    );
}

/// The setting `main.rs` documents is the one built in: background threads on (the crate
/// feature); without them an idle arena keeps what a burst freed.
#[test]
fn jemalloc_is_built_with_background_threads_running() {
    let (conf, running) = heap::settings().expect("jemalloc settings");
    assert!(conf.contains("background_thread:true"), "{conf}");
    // Allocating starts them; this test binary has allocated by now.
    let _warm = std::hint::black_box(vec![0u8; 1 << 16]);
    assert!(running, "background threads are not running ({conf})");
}

/// `.cargo/config.toml` builds jemalloc to return freed pages after 1 s, not 10 s, so the
/// resident memory after a burst follows the live data: the compiled-in settings jemalloc
/// reads at start say so.
#[test]
fn jemalloc_is_built_to_return_freed_pages_after_one_second() {
    let (conf, _) = heap::settings().expect("jemalloc settings");
    assert!(conf.contains("dirty_decay_ms:1000"), "{conf}");
    assert!(conf.contains("muzzy_decay_ms:0"), "{conf}");
}
