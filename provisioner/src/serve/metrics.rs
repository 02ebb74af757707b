//! Prometheus metrics, served as text on `/metrics`.
//!
//! Owns the metric names (all prefixed `flashvol_`, listed in the README) and their labels. Every
//! label takes values from a bounded set: the configured arrays, operation and error-kind names
//! from the code, the reasons of [`crate::serve::monitor::pending::PendingReason`]; never a claim or PV.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::time::{Duration, SystemTime};

use flashvol_common::options::Backend;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Metric, Registry};

use crate::arrays::SpaceReport;
use crate::serve::heap::HeapStats;
use crate::serve::monitor::pending::PendingCount;

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

/// One configured array: its management endpoint as in `pure.json`, and `block` (FlashArray) or
/// `file` (FlashBlade).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ArrayLabels {
    pub array: String,
    pub backend: String,
}

/// An array endpoint as in `pure.json` (`unknown` for PVs that name no configured array).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub array: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PendingLabels {
    /// One of our StorageClasses; empty for claims whose class does not exist (a name a user
    /// typed is no label value).
    pub class: String,
    /// [`crate::serve::monitor::pending::PendingReason`].
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HeapLabels {
    /// One of [`crate::serve::heap::HeapStats::by_kind`]: `allocated`, `active`, `resident`,
    /// `mapped`, `retained`.
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// `claims` or `volumes`.
    pub queue: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;
type IntGauges<L> = Family<L, Gauge<i64, AtomicI64>>;
type FloatGauges<L> = Family<L, Gauge<f64, AtomicU64>>;

fn duration_histogram() -> Histogram {
    // 5 ms .. ~80 s
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// Every metric the provisioner exports.
pub struct Metrics {
    registry: Registry,
    names: Vec<String>,
    pub provisions: Family<OutcomeLabels, Counter>,
    pub provision_duration: HistogramFamily<BackendLabels>,
    pub deletes: Family<OutcomeLabels, Counter>,
    pub delete_duration: HistogramFamily<BackendLabels>,
    pub resizes: Family<OutcomeLabels, Counter>,
    pub array_calls: HistogramFamily<ArrayCallLabels>,
    pub array_errors: Family<ArrayErrorLabels, Counter>,
    pub queue_depth: IntGauges<QueueLabels>,
    pub orphans_destroyed: Family<EndpointLabels, Counter>,
    pub leader: Gauge<i64, AtomicI64>,
    pub array_reachable: IntGauges<ArrayLabels>,
    pub array_last_contact: FloatGauges<ArrayLabels>,
    pub array_capacity: IntGauges<ArrayLabels>,
    pub array_used: IntGauges<ArrayLabels>,
    pub array_provisioned: IntGauges<ArrayLabels>,
    pub array_data_reduction: FloatGauges<ArrayLabels>,
    pub volumes: IntGauges<EndpointLabels>,
    pub claims_pending: IntGauges<PendingLabels>,
    pub claims_pending_oldest: FloatGauges<PendingLabels>,
    pub heap: IntGauges<HeapLabels>,
    /// The label sets of the last [`Metrics::pending_claims`], to drop those of deleted classes.
    pending_shown: Mutex<HashSet<PendingLabels>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Registers metrics under the `flashvol_` prefix and remembers the names PromQL will see, so
/// the list of exported names comes from the registrations themselves.
struct Registrar {
    registry: Registry,
    names: Vec<String>,
}

impl Registrar {
    fn add<M: Metric + TypedMetric + Clone>(&mut self, name: &str, help: &str, metric: M) -> M {
        let full = format!("flashvol_{name}");
        match M::TYPE {
            MetricType::Counter => self.names.push(format!("{full}_total")),
            MetricType::Histogram => self
                .names
                .extend(["_bucket", "_sum", "_count"].map(|s| format!("{full}{s}"))),
            _ => self.names.push(full),
        }
        self.registry.register(name, help, metric.clone());
        metric
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut r = Registrar {
            registry: Registry::with_prefix("flashvol"),
            names: Vec::new(),
        };
        let provisions = r.add(
            "provisions",
            "Claims handled by the provisioner, by outcome and reason",
            Family::<OutcomeLabels, Counter>::default(),
        );
        let provision_duration = r.add(
            "provision_duration_seconds",
            "Time from picking up a claim to its PV being created",
            HistogramFamily::<BackendLabels>::new_with_constructor(duration_histogram),
        );
        let deletes = r.add(
            "deletes",
            "Released volumes handled, by outcome and reason",
            Family::<OutcomeLabels, Counter>::default(),
        );
        let resizes = r.add(
            "resizes",
            "Claim resizes handled, by outcome and reason",
            Family::<OutcomeLabels, Counter>::default(),
        );
        let delete_duration = r.add(
            "delete_duration_seconds",
            "Time to destroy an array volume and delete its PV",
            HistogramFamily::<BackendLabels>::new_with_constructor(duration_histogram),
        );
        let array_calls = r.add(
            "array_call_duration_seconds",
            "Latency of array REST calls by array and operation",
            HistogramFamily::<ArrayCallLabels>::new_with_constructor(duration_histogram),
        );
        let array_errors = r.add(
            "array_call_errors",
            "Failed array REST calls by array, operation and error kind",
            Family::<ArrayErrorLabels, Counter>::default(),
        );
        let queue_depth = r.add(
            "queue_depth",
            "Objects being reconciled or waiting for a retry",
            IntGauges::<QueueLabels>::default(),
        );
        let orphans_destroyed = r.add(
            "orphans_destroyed",
            "Array volumes destroyed by the orphan collector, by array",
            Family::<EndpointLabels, Counter>::default(),
        );
        let leader = r.add(
            "leader",
            "1 while this replica holds the leader lease (or runs without election)",
            Gauge::<i64, AtomicI64>::default(),
        );
        let array_reachable = r.add(
            "array_reachable",
            "1 when the last poll of the array read its space, 0 when it failed",
            IntGauges::<ArrayLabels>::default(),
        );
        let array_last_contact = r.add(
            "array_last_contact_timestamp_seconds",
            "Unix time of the last array call that succeeded",
            FloatGauges::<ArrayLabels>::default(),
        );
        let array_capacity = r.add(
            "array_capacity_bytes",
            "Usable capacity, as last polled",
            IntGauges::<ArrayLabels>::default(),
        );
        let array_used = r.add(
            "array_used_bytes",
            "Physical bytes used, as last polled",
            IntGauges::<ArrayLabels>::default(),
        );
        let array_provisioned = r.add(
            "array_provisioned_bytes",
            "Sum of provisioned volume sizes, as last polled (FlashArray only)",
            IntGauges::<ArrayLabels>::default(),
        );
        let array_data_reduction = r.add(
            "array_data_reduction_ratio",
            "Data reduction ratio the array reports, as last polled",
            FloatGauges::<ArrayLabels>::default(),
        );
        let volumes = r.add(
            "volumes",
            "PVs provisioned by this provisioner, by the array their volume is on",
            IntGauges::<EndpointLabels>::default(),
        );
        let claims_pending = r.add(
            "claims_pending",
            "Unbound claims of ours, by StorageClass and why they are not bound yet",
            IntGauges::<PendingLabels>::default(),
        );
        let claims_pending_oldest = r.add(
            "claims_pending_oldest_seconds",
            "Age of the oldest pending claim, by StorageClass and reason (0 when there is none)",
            FloatGauges::<PendingLabels>::default(),
        );
        let heap = r.add(
            "heap_bytes",
            "The allocator's bytes by kind: allocated (live data), active, resident, mapped, retained",
            IntGauges::<HeapLabels>::default(),
        );
        Self {
            registry: r.registry,
            names: r.names,
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
            array_reachable,
            array_last_contact,
            array_capacity,
            array_used,
            array_provisioned,
            array_data_reduction,
            volumes,
            claims_pending,
            claims_pending_oldest,
            heap,
            pending_shown: Mutex::default(),
        }
    }

    /// Every metric name this registry exports, as PromQL sees it: counters with `_total`,
    /// histograms as `_bucket`, `_sum` and `_count`.
    pub fn names(&self) -> &[String] {
        &self.names
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

    /// Creates the failure and orphan counters at 0 for every reason and configured array, so
    /// the first failure is an increase that `increase()` and `rate()` see (a series born at 1
    /// is not).
    pub fn start_at_zero(&self, arrays: &[&str]) {
        for reason in crate::serve::monitor::pending::FAILURE_REASONS {
            self.provisions
                .get_or_create(&outcome(false, reason))
                .inc_by(0);
        }
        for reason in crate::reconcile::delete::FAILURE_REASONS {
            self.deletes
                .get_or_create(&outcome(false, reason))
                .inc_by(0);
        }
        for reason in crate::reconcile::resize::FAILURE_REASONS {
            self.resizes
                .get_or_create(&outcome(false, reason))
                .inc_by(0);
        }
        for array in arrays {
            self.orphans_destroyed
                .get_or_create(&EndpointLabels {
                    array: (*array).to_owned(),
                })
                .inc_by(0);
        }
    }

    /// A call to the array succeeded at `when`.
    pub fn array_contact(&self, array: &str, backend: Backend, when: SystemTime) {
        let seconds = when
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.array_last_contact
            .get_or_create(&array_labels(array, backend))
            .set(seconds);
    }

    /// The outcome of one poll: the space figures, or `None` when the array could not be read.
    /// A failed poll leaves the last figures in place (the array did not change because it
    /// stopped answering) and sets only the reachability to 0.
    pub fn array_polled(&self, array: &str, backend: Backend, space: Option<&SpaceReport>) {
        let labels = array_labels(array, backend);
        self.array_reachable
            .get_or_create(&labels)
            .set(i64::from(space.is_some()));
        let Some(space) = space else {
            return;
        };
        let bytes = |b: u64| i64::try_from(b).unwrap_or(i64::MAX);
        self.array_capacity
            .get_or_create(&labels)
            .set(bytes(space.capacity));
        self.array_used
            .get_or_create(&labels)
            .set(bytes(space.used));
        if let Some(provisioned) = space.provisioned {
            self.array_provisioned
                .get_or_create(&labels)
                .set(bytes(provisioned));
        }
        if let Some(ratio) = space.data_reduction {
            self.array_data_reduction.get_or_create(&labels).set(ratio);
        }
    }

    /// The volume count per array, every array given (zeros included, so an emptied array
    /// shows 0 rather than its last count).
    pub fn volumes_per_array<'a>(&self, counts: impl IntoIterator<Item = (&'a str, i64)>) {
        for (array, count) in counts {
            self.volumes
                .get_or_create(&EndpointLabels {
                    array: array.to_owned(),
                })
                .set(count);
        }
    }

    /// Pending claims per class and reason with the age of the oldest: every pair given is set,
    /// and pairs of an earlier count that are not given any more are dropped (a deleted class).
    pub fn pending_claims(&self, summary: &[PendingCount]) {
        let given: HashSet<PendingLabels> = summary
            .iter()
            .map(|p| PendingLabels {
                class: p.class.clone(),
                reason: p.reason.to_owned(),
            })
            .collect();
        for p in summary {
            let labels = PendingLabels {
                class: p.class.clone(),
                reason: p.reason.to_owned(),
            };
            self.claims_pending.get_or_create(&labels).set(p.count);
            self.claims_pending_oldest
                .get_or_create(&labels)
                .set(p.oldest_seconds);
        }
        // Removed one by one after the new values are in, so a scrape never sees the set empty.
        if let Ok(mut shown) = self.pending_shown.lock() {
            for gone in shown.difference(&given) {
                self.claims_pending.remove(gone);
                self.claims_pending_oldest.remove(gone);
            }
            *shown = given;
        }
    }

    /// The allocator's counters as read just now (taken at each scrape).
    pub fn heap_read(&self, stats: &HeapStats) {
        for (kind, bytes) in stats.by_kind() {
            self.heap
                .get_or_create(&HeapLabels {
                    kind: kind.to_owned(),
                })
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
    }

    /// The orphan collector destroyed a volume on `array`.
    pub fn orphan_destroyed(&self, array: &str) {
        self.orphans_destroyed
            .get_or_create(&EndpointLabels {
                array: array.to_owned(),
            })
            .inc();
    }

    pub fn queue(&self, queue: &str) -> Gauge<i64, AtomicI64> {
        self.queue_depth
            .get_or_create(&QueueLabels {
                queue: queue.to_owned(),
            })
            .clone()
    }
}

fn array_labels(array: &str, backend: Backend) -> ArrayLabels {
    ArrayLabels {
        array: array.to_owned(),
        backend: backend.as_str().to_owned(),
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
    use crate::arrays::SpaceReport;
    use flashvol_common::options::Backend;

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

    #[test]
    fn every_metric_is_documented_in_the_readme_and_nothing_else_is() {
        let readme = include_str!("../../README.md");
        let documented: HashSet<&str> = readme
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .filter(|name| name.starts_with("flashvol_"))
            .collect();
        let metrics = Metrics::new();
        // The README names a histogram once, without its `_bucket`/`_sum`/`_count` series.
        let registered: HashSet<&str> = metrics
            .names()
            .iter()
            .filter(|n| !n.ends_with("_bucket") && !n.ends_with("_sum"))
            .map(|n| n.strip_suffix("_count").unwrap_or(n))
            .collect();
        assert_eq!(documented, registered);
    }

    #[test]
    fn a_poll_sets_the_array_gauges_and_a_failed_one_only_reachability() {
        let m = Metrics::new();
        let space = SpaceReport {
            capacity: 100,
            used: 40,
            provisioned: None,
            data_reduction: Some(2.5),
        };
        m.array_polled("fb1", Backend::File, Some(&space));
        m.array_polled("fb1", Backend::File, None);
        let text = m.encode();
        let labels = r#"{array="fb1",backend="file"}"#;
        for line in [
            format!("flashvol_array_reachable{labels} 0"),
            format!("flashvol_array_capacity_bytes{labels} 100"),
            format!("flashvol_array_used_bytes{labels} 40"),
            format!("flashvol_array_data_reduction_ratio{labels} 2.5"),
        ] {
            assert!(text.contains(&line), "{line} in {text}");
        }
        assert!(
            !text.contains("flashvol_array_provisioned_bytes{"),
            "{text}"
        );
    }

    #[test]
    fn failure_and_orphan_counters_start_at_zero() {
        let m = Metrics::new();
        m.start_at_zero(&["fa1"]);
        let text = m.encode();
        for line in [
            r#"flashvol_provisions_total{outcome="failure",reason="placement"} 0"#,
            r#"flashvol_deletes_total{outcome="failure",reason="array"} 0"#,
            r#"flashvol_resizes_total{outcome="failure",reason="refused"} 0"#,
            r#"flashvol_orphans_destroyed_total{array="fa1"} 0"#,
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }

    #[test]
    fn the_names_are_those_promql_uses() {
        let metrics = Metrics::new();
        for name in [
            "flashvol_provisions_total",
            "flashvol_provision_duration_seconds_bucket",
            "flashvol_array_reachable",
            "flashvol_claims_pending_oldest_seconds",
            "flashvol_leader",
        ] {
            assert!(metrics.names().iter().any(|n| n == name), "{name}");
        }
    }
}
