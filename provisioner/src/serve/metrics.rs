//! Prometheus metrics, served as text on `/metrics`.
//!
//! Owns the metric names (all prefixed `flashvol_`, listed in the README) and their labels.

use std::sync::atomic::AtomicI64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `success` or `failure`.
    pub outcome: String,
    /// Short reason: `created`, `exists`, `class`, `size`, `placement`, `array`, `kubernetes`, ...
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabels {
    pub backend: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ArrayCallLabels {
    pub array: String,
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ArrayErrorLabels {
    pub array: String,
    pub operation: String,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// `claims` or `volumes`.
    pub queue: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    // 5 ms .. ~80 s
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// Every metric the provisioner exports.
pub struct Metrics {
    registry: Registry,
    pub provisions: Family<OutcomeLabels, Counter>,
    pub provision_duration: HistogramFamily<BackendLabels>,
    pub deletes: Family<OutcomeLabels, Counter>,
    pub delete_duration: HistogramFamily<BackendLabels>,
    pub resizes: Family<OutcomeLabels, Counter>,
    pub array_calls: HistogramFamily<ArrayCallLabels>,
    pub array_errors: Family<ArrayErrorLabels, Counter>,
    pub queue_depth: Family<QueueLabels, Gauge<i64, AtomicI64>>,
    pub orphans_destroyed: Counter,
    pub leader: Gauge<i64, AtomicI64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("flashvol");
        let provisions = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "provisions",
            "Claims handled by the provisioner, by outcome and reason",
            provisions.clone(),
        );
        let provision_duration: HistogramFamily<BackendLabels> =
            Family::new_with_constructor(duration_histogram);
        registry.register(
            "provision_duration_seconds",
            "Time from picking up a claim to its PV being created",
            provision_duration.clone(),
        );
        let deletes = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "deletes",
            "Released volumes handled, by outcome and reason",
            deletes.clone(),
        );
        let resizes = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "resizes",
            "Claim resizes handled, by outcome and reason",
            resizes.clone(),
        );
        let delete_duration: HistogramFamily<BackendLabels> =
            Family::new_with_constructor(duration_histogram);
        registry.register(
            "delete_duration_seconds",
            "Time to destroy an array volume and delete its PV",
            delete_duration.clone(),
        );
        let array_calls: HistogramFamily<ArrayCallLabels> =
            Family::new_with_constructor(duration_histogram);
        registry.register(
            "array_call_duration_seconds",
            "Latency of array REST calls by array and operation",
            array_calls.clone(),
        );
        let array_errors = Family::<ArrayErrorLabels, Counter>::default();
        registry.register(
            "array_call_errors",
            "Failed array REST calls by array, operation and error kind",
            array_errors.clone(),
        );
        let queue_depth = Family::<QueueLabels, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "queue_depth",
            "Objects being reconciled or waiting for a retry",
            queue_depth.clone(),
        );
        let orphans_destroyed = Counter::default();
        registry.register(
            "orphans_destroyed",
            "Array volumes destroyed by the orphan collector",
            orphans_destroyed.clone(),
        );
        let leader = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader lease (or runs without election)",
            leader.clone(),
        );
        Self {
            registry,
            provisions,
            provision_duration,
            deletes,
            delete_duration,
            resizes,
            array_calls,
            array_errors,
            queue_depth,
            orphans_destroyed,
            leader,
        }
    }

    /// Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn provision_done(&self, success: bool, reason: &str) {
        self.provisions
            .get_or_create(&outcome(success, reason))
            .inc();
    }

    pub fn delete_done(&self, success: bool, reason: &str) {
        self.deletes.get_or_create(&outcome(success, reason)).inc();
    }

    pub fn resize_done(&self, success: bool, reason: &str) {
        self.resizes.get_or_create(&outcome(success, reason)).inc();
    }

    pub fn array_call(
        &self,
        array: &str,
        operation: &str,
        took: Duration,
        error_kind: Option<&str>,
    ) {
        self.array_calls
            .get_or_create(&ArrayCallLabels {
                array: array.to_owned(),
                operation: operation.to_owned(),
            })
            .observe(took.as_secs_f64());
        if let Some(kind) = error_kind {
            self.array_errors
                .get_or_create(&ArrayErrorLabels {
                    array: array.to_owned(),
                    operation: operation.to_owned(),
                    kind: kind.to_owned(),
                })
                .inc();
        }
    }

    pub fn queue(&self, queue: &str) -> Gauge<i64, AtomicI64> {
        self.queue_depth
            .get_or_create(&QueueLabels {
                queue: queue.to_owned(),
            })
            .clone()
    }
}

fn outcome(success: bool, reason: &str) -> OutcomeLabels {
    OutcomeLabels {
        outcome: if success { "success" } else { "failure" }.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_carry_the_prefix_and_labels() {
        let m = Metrics::new();
        m.provision_done(true, "created");
        m.resize_done(false, "refused");
        m.array_call(
            "fa1",
            "create_volume",
            Duration::from_millis(20),
            Some("transport"),
        );
        m.queue("claims").set(3);
        let text = m.encode();
        assert!(
            text.contains(r#"flashvol_provisions_total{outcome="success",reason="created"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"flashvol_resizes_total{outcome="failure",reason="refused"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"flashvol_array_call_duration_seconds_count{array="fa1",operation="create_volume"} 1"#), "{text}");
        assert!(text.contains(r#"flashvol_array_call_errors_total{array="fa1",operation="create_volume",kind="transport"} 1"#), "{text}");
        assert!(
            text.contains(r#"flashvol_queue_depth{queue="claims"} 3"#),
            "{text}"
        );
    }
}
