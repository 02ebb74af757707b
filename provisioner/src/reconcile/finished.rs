//! PVs whose deletion this process completed, remembered for a while so that a stale copy of
//! such a PV arriving from the watch afterwards is not handled a second time.
//!
//! Why it is needed: removing our finalizer from a `Released` PV produces a watch event for a PV
//! that is still `Released`, has no finalizer and no deletionTimestamp yet, which is exactly how a
//! PV PSO 2.x created (no finalizer) looks when it needs deleting. Without this memory ~45% of
//! PVs in a 1,000-claim delete burst were destroyed and deleted twice (harmless, the second
//! destroy and delete answer "gone", but twice the array and API calls).
//!
//! Keyed by PV uid, so a new PV with the same name is never mistaken for the old one. Entries
//! expire after a TTL, far longer than a watch event can lag, which bounds the memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a finished PV is remembered.
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);

pub struct Finished {
    ttl: Duration,
    entries: Mutex<HashMap<String, Instant>>,
}

impl Finished {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Remembers `uid` as finished, forgetting entries older than the TTL.
    pub fn insert(&self, uid: &str) {
        let now = Instant::now();
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, at| now.duration_since(*at) < self.ttl);
            entries.insert(uid.to_owned(), now);
        }
    }

    /// Whether `uid` finished within the TTL.
    pub fn contains(&self, uid: &str) -> bool {
        self.entries
            .lock()
            .ok()
            .and_then(|entries| entries.get(uid).copied())
            .is_some_and(|at| at.elapsed() < self.ttl)
    }

    /// Entries currently held (expired ones included until the next insert).
    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for Finished {
    fn default() -> Self {
        Self::new(DEFAULT_TTL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_uid_is_remembered_and_others_are_not() {
        let f = Finished::default();
        f.insert("uid-a");
        assert!(f.contains("uid-a"));
        assert!(!f.contains("uid-b"));
    }

    #[test]
    fn entries_expire_and_are_dropped_on_the_next_insert() {
        let f = Finished::new(Duration::ZERO);
        f.insert("uid-a");
        assert!(!f.contains("uid-a"), "expired at once with a zero TTL");
        f.insert("uid-b");
        assert_eq!(f.len(), 1, "uid-a dropped when uid-b was inserted");
    }
}
