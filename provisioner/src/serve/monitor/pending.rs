//! Why a claim of ours is not bound yet, as a bounded set of reasons: what
//! `flashvol_claims_pending{reason}` counts and `flashvol_claims_pending_oldest_seconds` ages.
//!
//! The pure rule is [`classify`]: the claim decision ([`decide_claim`]) says whether the claim is
//! ours and whether it waits for something outside us; the PV cache says whether its PV exists
//! already (the PV controller has still to bind it); the last failed pass says why provisioning
//! does not get through ([`LastFailures`], fed by [`crate::reconcile::provision`]). No claim name
//! ever becomes a label.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::api::storage::v1::StorageClass;

use crate::decide::claim::{ClaimDecision, decide_claim};

/// Why a claim of ours is pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PendingReason {
    /// Ready and not failed (yet): queued or being provisioned.
    Provisioning,
    /// `WaitForFirstConsumer`: no pod scheduled yet. Normal, may last forever.
    WaitingForConsumer,
    /// Its StorageClass does not exist.
    ClassMissing,
    /// Its PV exists; the PV controller has not bound the claim yet.
    Binding,
    /// The last pass failed for this reason: one of the failure reasons of
    /// `flashvol_provisions_total` (`class`, `claim`, `placement`, `array`, `kubernetes`).
    Failed(&'static str),
}

/// The failure reasons a provisioning pass can end with (`ProvisionError::reason`).
pub const FAILURE_REASONS: [&str; 5] = ["class", "claim", "placement", "array", "kubernetes"];

impl PendingReason {
    /// Every reason the gauges always show (at 0 when no claim has it).
    pub fn all() -> impl Iterator<Item = PendingReason> {
        [
            PendingReason::Provisioning,
            PendingReason::WaitingForConsumer,
            PendingReason::ClassMissing,
            PendingReason::Binding,
        ]
        .into_iter()
        .chain(FAILURE_REASONS.into_iter().map(PendingReason::Failed))
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            PendingReason::Provisioning => "provisioning",
            PendingReason::WaitingForConsumer => "waiting_for_consumer",
            PendingReason::ClassMissing => "class_missing",
            PendingReason::Binding => "binding",
            PendingReason::Failed(reason) => reason,
        }
    }
}

/// Why `pvc` is pending, or `None` when it is not a pending claim of ours (bound, being deleted,
/// another provisioner's). `class` is its StorageClass when it exists, `pv_exists` whether its PV
/// `pvc-<uid>` does, `last_failure` the reason of its last failed pass.
pub fn classify(
    pvc: &PersistentVolumeClaim,
    class: Option<&StorageClass>,
    provisioner: &str,
    pv_exists: bool,
    last_failure: Option<&'static str>,
) -> Option<PendingReason> {
    match decide_claim(pvc, class, provisioner) {
        ClaimDecision::Ignore(_) => None,
        ClaimDecision::Wait(_) if class.is_none() => Some(PendingReason::ClassMissing),
        ClaimDecision::Wait(_) => Some(PendingReason::WaitingForConsumer),
        ClaimDecision::Provision if pv_exists => Some(PendingReason::Binding),
        ClaimDecision::Provision => {
            Some(last_failure.map_or(PendingReason::Provisioning, PendingReason::Failed))
        }
    }
}

/// One series of the pending gauges.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingCount {
    /// The claims' StorageClass; empty for [`PendingReason::ClassMissing`].
    pub class: String,
    pub reason: &'static str,
    pub count: i64,
    pub oldest_seconds: f64,
}

/// Pending claims counted per class and reason, with the age of the oldest. `pending` gives each
/// pending claim's class (as it exists; `None` when missing), reason and creation time. Every
/// class of `our_classes` gets every reason but `class_missing`, and `class_missing` is given
/// once without a class, zeros included, so an alert sees 0 rather than nothing.
pub fn summarize<'a>(
    pending: impl IntoIterator<Item = (Option<&'a str>, PendingReason, Option<SystemTime>)>,
    our_classes: &[&'a str],
    now: SystemTime,
) -> Vec<PendingCount> {
    let mut per_series: BTreeMap<(&str, PendingReason), (i64, Duration)> = BTreeMap::new();
    for class in our_classes {
        for reason in PendingReason::all().filter(|r| *r != PendingReason::ClassMissing) {
            per_series.insert((class, reason), (0, Duration::ZERO));
        }
    }
    per_series.insert(("", PendingReason::ClassMissing), (0, Duration::ZERO));
    for (class, reason, created) in pending {
        let class = if reason == PendingReason::ClassMissing {
            ""
        } else {
            class.unwrap_or_default()
        };
        let age = created
            .and_then(|c| now.duration_since(c).ok())
            .unwrap_or_default();
        let entry = per_series.entry((class, reason)).or_default();
        entry.0 += 1;
        entry.1 = entry.1.max(age);
    }
    per_series
        .into_iter()
        .map(|((class, reason), (count, oldest))| PendingCount {
            class: class.to_owned(),
            reason: reason.as_str(),
            count,
            oldest_seconds: oldest.as_secs_f64(),
        })
        .collect()
}

/// The reason of each claim's last failed provisioning pass, by claim uid: set when a pass fails,
/// cleared when one succeeds, and pruned to the pending claims at every count, so it never
/// holds more entries than there are pending claims.
#[derive(Debug, Default)]
pub struct LastFailures(Mutex<HashMap<String, &'static str>>);

impl LastFailures {
    pub fn record(&self, uid: &str, reason: &'static str) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(uid.to_owned(), reason);
        }
    }

    pub fn clear(&self, uid: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(uid);
        }
    }

    pub fn get(&self, uid: &str) -> Option<&'static str> {
        self.0.lock().ok().and_then(|map| map.get(uid).copied())
    }

    /// Forgets every claim `keep` says no.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        if let Ok(mut map) = self.0.lock() {
            map.retain(|uid, _| keep(uid));
        }
    }

    pub fn len(&self) -> usize {
        self.0.lock().map_or(0, |map| map.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::claim::ANN_SELECTED_NODE;
    use crate::tests::fixtures::{class, pvc};

    const US: &str = "pure-provisioner";

    #[test]
    fn each_state_of_a_claim_of_ours_has_its_reason() {
        let claim = pvc("data", "pure", "1Gi");
        let pure = class("pure", US, &[]);
        let classify = |c, class, pv, failure| classify(c, class, US, pv, failure);
        assert_eq!(
            classify(&claim, Some(&pure), false, None),
            Some(PendingReason::Provisioning)
        );
        assert_eq!(
            classify(&claim, None, false, None),
            Some(PendingReason::ClassMissing)
        );
        assert_eq!(
            classify(&claim, Some(&pure), true, Some("array")),
            Some(PendingReason::Binding),
            "a PV that exists outranks an old failure"
        );
        assert_eq!(
            classify(&claim, Some(&pure), false, Some("placement")),
            Some(PendingReason::Failed("placement"))
        );
        let mut late = pure.clone();
        late.volume_binding_mode = Some("WaitForFirstConsumer".into());
        assert_eq!(
            classify(&claim, Some(&late), false, None),
            Some(PendingReason::WaitingForConsumer)
        );
        let mut scheduled = claim.clone();
        scheduled
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(ANN_SELECTED_NODE.into(), "node-1".into());
        assert_eq!(
            classify(&scheduled, Some(&late), false, None),
            Some(PendingReason::Provisioning)
        );
    }

    #[test]
    fn claims_that_are_not_pending_claims_of_ours_are_not_counted() {
        let theirs = class("pure", "someone-else", &[]);
        let claim = pvc("data", "pure", "1Gi");
        assert_eq!(classify(&claim, Some(&theirs), US, false, None), None);
        let mut bound = claim.clone();
        bound.spec.get_or_insert_default().volume_name = Some("pv-1".into());
        let pure = class("pure", US, &[]);
        assert_eq!(classify(&bound, Some(&pure), US, false, None), None);
    }

    #[test]
    fn the_summary_has_every_class_and_reason_with_counts_and_the_oldest_age() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000);
        let ago = |s| Some(now - Duration::from_secs(s));
        let summary = summarize(
            [
                (Some("pure"), PendingReason::Failed("array"), ago(30)),
                (Some("pure"), PendingReason::Failed("array"), ago(900)),
                (Some("late"), PendingReason::WaitingForConsumer, ago(5)),
                (Some("pure"), PendingReason::Provisioning, None),
                (None, PendingReason::ClassMissing, ago(60)),
            ],
            &["pure", "late"],
            now,
        );
        let get = |class: &str, reason: &str| {
            summary
                .iter()
                .find(|p| p.class == class && p.reason == reason)
                .map(|p| (p.count, p.oldest_seconds))
        };
        assert_eq!(get("pure", "array"), Some((2, 900.0)));
        assert_eq!(get("late", "waiting_for_consumer"), Some((1, 5.0)));
        assert_eq!(get("pure", "provisioning"), Some((1, 0.0)));
        assert_eq!(get("", "class_missing"), Some((1, 60.0)));
        assert_eq!(
            get("late", "binding"),
            Some((0, 0.0)),
            "absent pairs show 0"
        );
        assert_eq!(
            get("pure", "class_missing"),
            None,
            "an existing class is never missing"
        );
        assert_eq!(summary.len(), 2 * (PendingReason::all().count() - 1) + 1);
        let labels: Vec<_> = PendingReason::all().map(PendingReason::as_str).collect();
        assert_eq!(
            labels,
            [
                "provisioning",
                "waiting_for_consumer",
                "class_missing",
                "binding",
                "class",
                "claim",
                "placement",
                "array",
                "kubernetes"
            ]
        );
    }

    #[test]
    fn last_failures_are_recorded_cleared_and_pruned() {
        let failures = LastFailures::default();
        failures.record("a", "array");
        failures.record("b", "class");
        failures.record("a", "placement");
        assert_eq!(failures.get("a"), Some("placement"));
        failures.clear("b");
        assert_eq!(failures.get("b"), None);
        failures.record("c", "claim");
        failures.retain(|uid| uid == "c");
        assert_eq!((failures.len(), failures.get("c")), (1, Some("claim")));
    }
}
