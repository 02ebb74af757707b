//! Per-object exponential backoff: 1 s after the first failure, doubling up to 5 minutes, reset
//! by a success.
//!
//! Owns the failure counts; the controllers turn the delay into a requeue.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Delay before retry number `failures` (1-based): `base * 2^(failures-1)`, capped at `max`.
pub fn delay(failures: u32, base: Duration, max: Duration) -> Duration {
    let shift = failures.saturating_sub(1).min(31);
    base.saturating_mul(1u32 << shift).min(max)
}

/// Failure counts by object key (`namespace/name` or PV name).
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Records a failure of `key` and returns how long to wait before the next attempt.
    pub fn failed(&self, key: &str) -> Duration {
        let Ok(mut map) = self.failures.lock() else {
            return self.max;
        };
        let n = map.entry(key.to_owned()).or_insert(0);
        *n = n.saturating_add(1);
        delay(*n, self.base, self.max)
    }

    /// Forgets the failures of `key`.
    pub fn succeeded(&self, key: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(key);
        }
    }

    /// How many objects are waiting for a retry.
    pub fn pending(&self) -> usize {
        self.failures.lock().map(|m| m.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(300);

    #[test]
    fn delays_double_from_one_second_to_five_minutes() {
        let got: Vec<u64> = (1..=11).map(|n| delay(n, S, MAX).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(delay(u32::MAX, S, MAX), MAX);
    }

    #[test]
    fn success_resets_an_object_and_others_are_independent() {
        let b = Backoff::new(S, MAX);
        assert_eq!(b.failed("a"), S);
        assert_eq!(b.failed("a"), 2 * S);
        assert_eq!(b.failed("b"), S);
        assert_eq!(b.pending(), 2);
        b.succeeded("a");
        assert_eq!(b.failed("a"), S);
    }
}
