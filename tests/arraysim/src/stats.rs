//! Call counters for benchmarks and tests: calls per endpoint, successful authentications and
//! TLS connections (a client that keeps its connections makes few).
//! Kept in memory for the life of the `SimHandle`, so an in-process restart does not reset them.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

#[derive(Debug, Default)]
pub struct Stats {
    inner: Mutex<StatsSnapshot>,
}

/// A copy of the counters, as `GET /_sim/stats` returns them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StatsSnapshot {
    /// Calls per endpoint, keyed `"<METHOD> <route>"`, e.g. `"POST volume/{name}"`.
    pub calls: BTreeMap<String, u64>,
    /// All array API calls, including failed and fault-injected ones.
    pub total_calls: u64,
    /// Successful logins (`POST auth/session` on FlashArray, `POST /api/login` on FlashBlade).
    pub authentications: u64,
    /// Connections whose TLS handshake completed.
    pub connections: u64,
}

impl Stats {
    pub fn count_call(&self, endpoint: String) {
        let mut inner = self.lock();
        inner.total_calls += 1;
        *inner.calls.entry(endpoint).or_insert(0) += 1;
    }

    pub fn count_authentication(&self) {
        self.lock().authentications += 1;
    }

    pub fn count_connection(&self) {
        self.lock().connections += 1;
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        self.lock().clone()
    }

    pub fn reset(&self) {
        *self.lock() = StatsSnapshot::default();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StatsSnapshot> {
        // A panic while holding this lock cannot leave counters inconsistent, so poison is ignored.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
