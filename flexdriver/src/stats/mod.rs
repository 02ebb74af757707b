//! Call-out statistics: how many `mount`/`unmount` calls ended how, and how long they took,
//! counted on the node without a daemon.
//!
//! The driver lives for one call, so it cannot serve metrics itself. Each call adds its outcome
//! to a small JSON file (`node.statsFile`, opt-in) under a flock ([`file`]); the DaemonSet's
//! long-running installer serves that file as Prometheus text on `/metrics`
//! ([`crate::install::metrics`]). The file never grows: it holds one counter per call-out and
//! reason, and one duration histogram per call-out and outcome, over fixed sets:
//!
//! - call-outs: [`CALLOUTS`] (`init` and `Not supported` answers are constant and not counted);
//! - reasons: `success` or one of [`KINDS`], the kinds of [`crate::runtime::error::FlexError`];
//! - duration buckets: [`BUCKETS`].
//!
//! A file written by another driver version is read by name: unknown call-outs and reasons are
//! dropped, and histograms with other buckets start again, so the set stays bounded whatever the
//! file holds.

pub mod file;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::runtime::error::KINDS;

/// The call-outs counted.
pub const CALLOUTS: [&str; 2] = ["mount", "unmount"];
/// The reason of a call that succeeded.
pub const SUCCESS: &str = "success";
/// Upper bounds of the duration buckets, in seconds (then `+Inf`): a bind mount takes
/// milliseconds, an iSCSI attach with mkfs seconds to minutes, and kubelet gives up after 2 min.
pub const BUCKETS: [f64; 11] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];

/// Durations of one call-out and outcome: a count per bucket (the last one is `+Inf`), not
/// cumulative, plus their sum.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub counts: Vec<u64>,
    pub sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        self.counts.resize(BUCKETS.len() + 1, 0);
        let bucket = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        self.counts[bucket] += 1;
        self.sum += seconds;
    }

    fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// `calls[call-out][reason]`.
    #[serde(default)]
    pub calls: BTreeMap<String, BTreeMap<String, u64>>,
    /// `durations[call-out][success|failure]`.
    #[serde(default)]
    pub durations: BTreeMap<String, BTreeMap<String, Histogram>>,
    /// The bucket bounds the histograms were counted with.
    #[serde(default)]
    pub buckets: Vec<f64>,
}

fn known_reason(reason: &str) -> bool {
    reason == SUCCESS || KINDS.contains(&reason)
}

fn outcome_of(reason: &str) -> &'static str {
    if reason == SUCCESS {
        "success"
    } else {
        "failure"
    }
}

impl Stats {
    /// Counts one call. Returns false (and counts nothing) for a call-out or reason outside the
    /// fixed sets.
    pub fn record(&mut self, callout: &str, reason: &str, took: Duration) -> bool {
        if !CALLOUTS.contains(&callout) || !known_reason(reason) {
            return false;
        }
        *self
            .calls
            .entry(callout.to_owned())
            .or_default()
            .entry(reason.to_owned())
            .or_default() += 1;
        self.buckets = BUCKETS.to_vec();
        self.durations
            .entry(callout.to_owned())
            .or_default()
            .entry(outcome_of(reason).to_owned())
            .or_default()
            .observe(took.as_secs_f64());
        true
    }

    /// Only what this version counts: known call-outs and reasons, histograms of the current
    /// buckets with the right number of counts.
    pub fn bounded(mut self) -> Self {
        self.calls
            .retain(|callout, _| CALLOUTS.contains(&callout.as_str()));
        for reasons in self.calls.values_mut() {
            reasons.retain(|reason, _| known_reason(reason));
        }
        if self.buckets != BUCKETS {
            self.durations.clear();
            self.buckets = BUCKETS.to_vec();
        }
        self.durations
            .retain(|callout, _| CALLOUTS.contains(&callout.as_str()));
        for outcomes in self.durations.values_mut() {
            outcomes.retain(|outcome, h| {
                matches!(outcome.as_str(), "success" | "failure")
                    && h.counts.len() == BUCKETS.len() + 1
                    && h.sum.is_finite()
            });
        }
        self
    }

    fn calls_of(&self, callout: &str, reason: &str) -> u64 {
        self.calls
            .get(callout)
            .and_then(|r| r.get(reason))
            .copied()
            .unwrap_or(0)
    }
}

/// Prometheus text exposition (format 0.0.4) of `stats`; `None` when the file could not be read,
/// which `flashvol_flex_stats_readable 0` says. Every call-out, reason and outcome is written,
/// zeros included, so rates and alerts work before the first failure.
pub fn exposition(stats: Option<&Stats>) -> String {
    let empty = Stats::default();
    let s = stats.unwrap_or(&empty);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP flashvol_flex_calls_total Call-outs of the flex driver on this node, by reason (success or the failure kind)."
    );
    let _ = writeln!(out, "# TYPE flashvol_flex_calls_total counter");
    for callout in CALLOUTS {
        for reason in std::iter::once(SUCCESS).chain(KINDS) {
            let _ = writeln!(
                out,
                "flashvol_flex_calls_total{{callout=\"{callout}\",reason=\"{reason}\"}} {}",
                s.calls_of(callout, reason)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP flashvol_flex_call_duration_seconds Time from a call-out's start to its reply."
    );
    let _ = writeln!(out, "# TYPE flashvol_flex_call_duration_seconds histogram");
    for callout in CALLOUTS {
        for outcome in ["success", "failure"] {
            let h = s
                .durations
                .get(callout)
                .and_then(|o| o.get(outcome))
                .cloned()
                .unwrap_or_default();
            let labels = format!("callout=\"{callout}\",outcome=\"{outcome}\"");
            let mut cumulative = 0;
            for (i, bound) in BUCKETS
                .iter()
                .map(f64::to_string)
                .chain(["+Inf".to_owned()])
                .enumerate()
            {
                cumulative += h.counts.get(i).copied().unwrap_or(0);
                let _ = writeln!(
                    out,
                    "flashvol_flex_call_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "flashvol_flex_call_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "flashvol_flex_call_duration_seconds_count{{{labels}}} {}",
                h.count()
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP flashvol_flex_stats_readable 1 when the statistics file could be read (or does not exist yet), 0 when it could not."
    );
    let _ = writeln!(out, "# TYPE flashvol_flex_stats_readable gauge");
    let _ = writeln!(
        out,
        "flashvol_flex_stats_readable {}",
        i32::from(stats.is_some())
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_counted_by_reason_and_timed_by_outcome() {
        let mut s = Stats::default();
        assert!(s.record("mount", "success", Duration::from_millis(30)));
        assert!(s.record("mount", "success", Duration::from_secs(3)));
        assert!(s.record("mount", "array", Duration::from_secs(500)));
        assert!(s.record("unmount", "timed_out", Duration::from_secs(60)));
        assert_eq!(s.calls_of("mount", "success"), 2);
        assert_eq!(s.calls_of("mount", "array"), 1);
        let ok = &s.durations["mount"]["success"];
        assert_eq!((ok.count(), ok.counts[0], ok.counts[6]), (2, 1, 1));
        assert_eq!(
            s.durations["mount"]["failure"].counts[BUCKETS.len()],
            1,
            "+Inf"
        );
    }

    #[test]
    fn anything_outside_the_fixed_sets_is_not_counted() {
        let mut s = Stats::default();
        assert!(!s.record("getvolumename", "success", Duration::ZERO));
        assert!(!s.record("mount", "made-up", Duration::ZERO));
        assert_eq!(s, Stats::default());
    }

    #[test]
    fn a_file_from_another_version_is_cut_down_to_what_this_one_counts() {
        let text = r#"{"calls": {"mount": {"success": 4, "cosmic_rays": 9}, "resize": {"success": 1}},
            "durations": {"mount": {"success": {"counts": [1, 2], "sum": 1.0}}},
            "buckets": [1, 2]}"#;
        let s: Stats = serde_json::from_str(text).expect("parses");
        let s = s.bounded();
        assert_eq!(s.calls.len(), 1);
        assert_eq!(s.calls["mount"].len(), 1);
        assert_eq!(s.calls_of("mount", "success"), 4);
        assert!(
            s.durations.is_empty(),
            "other buckets: durations start again"
        );
    }

    #[test]
    fn the_exposition_has_every_series_with_cumulative_buckets() {
        let mut s = Stats::default();
        s.record("mount", "success", Duration::from_millis(30));
        s.record("mount", "success", Duration::from_secs(3));
        let text = exposition(Some(&s));
        assert!(
            text.contains("flashvol_flex_calls_total{callout=\"mount\",reason=\"success\"} 2\n")
        );
        assert!(
            text.contains("flashvol_flex_calls_total{callout=\"unmount\",reason=\"refused\"} 0\n")
        );
        assert!(text.contains("flashvol_flex_call_duration_seconds_bucket{callout=\"mount\",outcome=\"success\",le=\"0.05\"} 1\n"));
        assert!(text.contains("flashvol_flex_call_duration_seconds_bucket{callout=\"mount\",outcome=\"success\",le=\"5\"} 2\n"));
        assert!(text.contains("flashvol_flex_call_duration_seconds_bucket{callout=\"mount\",outcome=\"success\",le=\"+Inf\"} 2\n"));
        assert!(text.contains(
            "flashvol_flex_call_duration_seconds_count{callout=\"mount\",outcome=\"success\"} 2\n"
        ));
        assert!(text.contains("flashvol_flex_stats_readable 1\n"));
        let series = text.lines().filter(|l| !l.starts_with('#')).count();
        let per_histogram = BUCKETS.len() + 1 + 2;
        assert_eq!(series, 2 * (1 + KINDS.len()) + 2 * 2 * per_histogram + 1);
        assert!(exposition(None).contains("flashvol_flex_stats_readable 0\n"));
    }
}
