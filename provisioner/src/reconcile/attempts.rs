//! Whether a claim's array object may exist from an earlier attempt: the question
//! [`crate::reconcile::provision`] must answer before creating, answered without asking every
//! array before every create.
//!
//! The array name is derived from the claim uid, so only an earlier attempt at the same claim
//! can have made the object, and only two kinds of attempt exist:
//! - this process's own: a create whose PV create then failed, or whose reply never came. Each
//!   is recorded here ([`Attempts::begin`]) before its create or copy is sent, and kept until the
//!   claim's PV is in the watch cache (after which the pass stops at "PV exists");
//! - a process before this one: its objects are in each array's listing of our names, live and
//!   destroyed, taken once per array on the first pass that needs it ([`Attempts::held_before`]).
//!   Passes run only while this process leads, and a leader that loses its lease exits
//!   ([`crate::app`]), so no other process creates between the listing and our creates.
//!
//! A name in neither cannot exist: the pass creates at once, one array round trip instead of a
//! lookup on every array and then the create. A name in either is looked up on every array, as
//! before. An array that cannot be listed may hold anything: passes look names up on it (and
//! fail while it cannot answer) and one listing is tried again after [`LISTING_RETRY`], so an
//! outage never queues passes behind listings that time out one after another.
//!
//! Listings are kept as 64-bit hashes of the names (8 bytes per object even on an array with
//! thousands): a collision only costs a lookup.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::arrays::Array;

/// Entries kept before the first pruning of attempts whose PVs are cached.
const PRUNE_FLOOR: usize = 256;
/// How long after a failed listing of an array the next one is tried.
pub const LISTING_RETRY: Duration = Duration::from_secs(10);

/// The attempts of this process and the arrays' listings; one per process, in the
/// [`crate::reconcile::context::Context`].
pub struct Attempts {
    begun: Mutex<Begun>,
    /// Per array endpoint.
    listings: Mutex<HashMap<String, Arc<Listing>>>,
}

/// One array's listing: the sorted name hashes of our objects it held when first listed.
#[derive(Default)]
struct Listing {
    hashes: OnceLock<Vec<u64>>,
    failed_at: Mutex<Option<Instant>>,
    /// Held while a listing is in flight, so concurrent passes wait for one listing.
    loading: tokio::sync::Mutex<()>,
}

impl Listing {
    /// Whether the array held the name hashed `hash` when listed; `Some(true)` (it may) while a
    /// failed listing waits for its retry; `None` when a listing is to be taken.
    fn known(&self, hash: u64) -> Option<bool> {
        if let Some(hashes) = self.hashes.get() {
            return Some(hashes.binary_search(&hash).is_ok());
        }
        let failed_at = self.failed_at.lock().unwrap_or_else(|p| p.into_inner());
        failed_at
            .is_some_and(|at| at.elapsed() < LISTING_RETRY)
            .then_some(true)
    }
}

struct Begun {
    /// PV names of the claims whose array object this process has asked for.
    pvs: HashSet<String>,
    /// Size at which the next pruning happens: twice what the last one kept, so pruning costs
    /// O(1) per attempt however many claims are in flight.
    prune_at: usize,
}

impl Default for Attempts {
    fn default() -> Self {
        Self {
            begun: Mutex::new(Begun {
                pvs: HashSet::new(),
                prune_at: PRUNE_FLOOR,
            }),
            listings: Mutex::new(HashMap::new()),
        }
    }
}

impl Attempts {
    /// Records that this process is about to ask an array for the object of the claim whose PV
    /// is `pv_name`. Attempts whose PVs `pv_cached` reports are dropped now and then: their
    /// claims are done.
    pub fn begin(&self, pv_name: &str, pv_cached: impl Fn(&str) -> bool) {
        let mut begun = self.begun.lock().unwrap_or_else(|p| p.into_inner());
        if begun.pvs.len() >= begun.prune_at {
            begun.pvs.retain(|pv| !pv_cached(pv));
            begun.prune_at = (begun.pvs.len() * 2).max(PRUNE_FLOOR);
        }
        begun.pvs.insert(pv_name.to_owned());
    }

    /// Whether this process has asked an array for this claim's object before.
    pub fn begun(&self, pv_name: &str) -> bool {
        let begun = self.begun.lock().unwrap_or_else(|p| p.into_inner());
        begun.pvs.contains(pv_name)
    }

    /// Whether `array` may hold `name` from before this process: it did when first listed
    /// (objects matching `glob`, destroyed ones included), or it could not be listed.
    pub async fn held_before(&self, array: &Array, glob: &str, name: &str) -> bool {
        let listing = {
            let mut listings = self.listings.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(listings.entry(array.endpoint.clone()).or_default())
        };
        let hash = name_hash(name);
        if let Some(held) = listing.known(hash) {
            return held;
        }
        let _loading = listing.loading.lock().await;
        // Listed, or failed, while this pass waited.
        if let Some(held) = listing.known(hash) {
            return held;
        }
        match array.names_taken(glob).await {
            Ok(names) => {
                let hashes = listing.hashes.get_or_init(|| hash_sorted(&names));
                hashes.binary_search(&hash).is_ok()
            }
            Err(e) => {
                // The lookups by name that follow say whether the array can answer at all.
                log::debug!(
                    "cannot list {}: {e}; asking it for each new volume",
                    array.describe()
                );
                *listing.failed_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
                true
            }
        }
    }
}

fn name_hash(name: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    name.hash(&mut hasher);
    hasher.finish()
}

fn hash_sorted(names: &[String]) -> Vec<u64> {
    let mut hashes: Vec<u64> = names.iter().map(|n| name_hash(n)).collect();
    hashes.sort_unstable();
    hashes.dedup();
    hashes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_is_remembered_until_its_pv_is_cached_and_a_pruning_comes() {
        let attempts = Attempts::default();
        attempts.begin("pvc-0", |_| false);
        assert!(attempts.begun("pvc-0"));
        assert!(!attempts.begun("pvc-1"));
        // Fill to the pruning size with claims whose PVs are cached, except pvc-0's.
        for i in 1..PRUNE_FLOOR {
            attempts.begin(&format!("pvc-{i}"), |_| false);
        }
        attempts.begin("pvc-next", |pv| pv != "pvc-0");
        assert!(attempts.begun("pvc-0"), "its PV is not cached yet");
        assert!(attempts.begun("pvc-next"), "the attempt just begun");
        assert!(!attempts.begun("pvc-1"), "its PV is cached: pruned");
        let begun = attempts.begun.lock().expect("lock");
        assert_eq!(begun.pvs.len(), 2);
        assert_eq!(begun.prune_at, PRUNE_FLOOR, "never below the floor");
    }

    #[test]
    fn pruning_grows_with_what_it_keeps_so_it_stays_rare() {
        let attempts = Attempts::default();
        for i in 0..PRUNE_FLOOR * 3 {
            attempts.begin(&format!("pvc-{i}"), |_| false);
        }
        let begun = attempts.begun.lock().expect("lock");
        assert_eq!(begun.pvs.len(), PRUNE_FLOOR * 3, "nothing cached: all kept");
        assert_eq!(begun.prune_at, PRUNE_FLOOR * 4);
    }

    #[test]
    fn listed_names_are_found_by_hash_and_others_are_not() {
        let hashes = hash_sorted(&["k8s-pvc-b".into(), "k8s-pvc-a".into(), "k8s-pvc-a".into()]);
        assert_eq!(hashes.len(), 2);
        assert!(hashes.binary_search(&name_hash("k8s-pvc-a")).is_ok());
        assert!(hashes.binary_search(&name_hash("k8s-pvc-b")).is_ok());
        assert!(hashes.binary_search(&name_hash("k8s-pvc-c")).is_err());
    }
}
