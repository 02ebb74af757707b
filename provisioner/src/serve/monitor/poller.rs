//! The array poller: while this replica leads, every `--array-poll-seconds` (60 by default) each
//! configured array is asked for its space once, all arrays at the same time, and the answer
//! becomes the array gauges (reachable, capacity, used, provisioned, data reduction).
//!
//! Why this shape:
//! - One call per array per interval, whatever the scrape rate or the number of Prometheus
//!   replicas: `/metrics` only reads gauges, it never reaches an array.
//! - Only the leader polls: standbys make no array traffic, and the array series come from one
//!   process, so two replicas never report conflicting values for one array. A standby shows
//!   the array gauges from the moment it takes over (it polls at once).
//! - The answer also refreshes placement's free-space cache ([`Array::read_space`]), so with a
//!   poll interval shorter than `--space-cache-seconds` placement asks the arrays no more often
//!   than before.
//! - A slow or dead array delays nobody: the polls run concurrently, each bounded by the array
//!   client's request timeout.

use std::time::Duration;

use futures::future::join_all;

use crate::arrays::{Array, ArraySet};
use crate::serve::metrics::Metrics;

/// Polls every array once; returns, in configuration order, whether each could be read.
pub async fn poll_once(arrays: &ArraySet, metrics: &Metrics) -> Vec<bool> {
    join_all(arrays.all().map(|array| poll_array(array, metrics))).await
}

async fn poll_array(array: &Array, metrics: &Metrics) -> bool {
    match array.read_space().await {
        Ok(space) => {
            metrics.array_polled(&array.endpoint, array.backend, Some(&space));
            true
        }
        Err(e) => {
            log::debug!("poll of {}: {e}", array.describe());
            metrics.array_polled(&array.endpoint, array.backend, None);
            false
        }
    }
}

/// What to log when an array's reachability is known for the first time or changes.
pub fn transition(before: Option<bool>, now: bool) -> Option<&'static str> {
    match (before, now) {
        (Some(true), false) | (None, false) => Some("cannot be read"),
        (Some(false), true) => Some("can be read again"),
        _ => None,
    }
}

/// Polls at once, then every `interval`, until the future is dropped (leadership ends).
pub async fn run(arrays: &ArraySet, metrics: &Metrics, interval: Duration) {
    let mut before: Vec<Option<bool>> = vec![None; arrays.all().count()];
    loop {
        let now = poll_once(arrays, metrics).await;
        for ((array, was), is) in arrays.all().zip(&mut before).zip(now) {
            match transition(*was, is) {
                Some(change) if is => log::info!("array poll: {} {change}", array.describe()),
                Some(change) => log::warn!(
                    "array poll: {} {change} (flashvol_array_reachable 0; see flashvol_array_call_errors_total)",
                    array.describe()
                ),
                None => {}
            }
            *was = Some(is);
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_first_failures_and_changes_are_logged() {
        assert_eq!(transition(None, true), None);
        assert_eq!(transition(None, false), Some("cannot be read"));
        assert_eq!(transition(Some(true), false), Some("cannot be read"));
        assert_eq!(transition(Some(false), false), None);
        assert_eq!(transition(Some(false), true), Some("can be read again"));
        assert_eq!(transition(Some(true), true), None);
    }
}
