//! Call-out statistics: how many `mount`/`unmount`/`collect` calls ended how, and how long they
//! took, counted on the node without a daemon.
//!
//! The driver lives for one call, so it cannot serve metrics itself. Each call adds its outcome
//! to a small JSON file (`node.statsFile`, opt-in) under a flock ([`record`]); the DaemonSet's
//! long-running installer reads it ([`read`]) and serves it as Prometheus text ([`exposition`])
//! on `/metrics` ([`crate::install::metrics`]). The file never grows: it holds one counter per call-out and
//! reason, and one duration histogram per call-out and outcome, over fixed sets:
//!
//! - call-outs: [`CALLOUTS`]: kubelet's `mount` and `unmount`, and the installer's minutely
//!   `collect` (`init` and `Not supported` answers are constant and not counted);
//! - reasons: `success` or one of [`KINDS`], the kinds of [`crate::runtime::error::FlexError`];
//! - duration buckets: [`BUCKETS`].
//!
//! A file written by another driver version is read by name: unknown call-outs and reasons are
//! dropped, and histograms with other buckets start again, so the set stays bounded whatever the
//! file holds.
//!
//! The file is read whole, updated under a flock (`<file>.lock`) and replaced atomically, so
//! concurrent call-outs never lose a count and the installer never reads half a file. Counting
//! is best effort and bounded: a call waits at most [`LOCK_WAIT`] for the lock, a file larger than
//! [`MAX_FILE_BYTES`] or not parseable starts again from zero (Prometheus treats that as a counter
//! reset), and nothing here ever changes a call's reply.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::node::locks;
use crate::runtime::error::{FlexError, KINDS, Result};
use crate::runtime::files::write_atomic;

/// The call-outs counted.
pub const CALLOUTS: [&str; 3] = ["mount", "unmount", "collect"];
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

/// Longest a call waits for another call's update of the file.
pub const LOCK_WAIT: Duration = Duration::from_secs(2);
/// A real file is a few KB; anything much larger is not ours.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// The statistics in `path`: `Ok(None)` when there is no file yet.
pub fn read(path: &Path) -> Result<Option<Stats>> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(FlexError::io("cannot read", path, e)),
        Ok(meta) if meta.len() > MAX_FILE_BYTES => {
            return Err(FlexError::Refused(format!(
                "{} is {} bytes, more than a statistics file can be ({MAX_FILE_BYTES})",
                path.display(),
                meta.len()
            )));
        }
        Ok(_) => {}
    }
    let text = match std::fs::read_to_string(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        other => other.map_err(|e| FlexError::io("cannot read", path, e))?,
    };
    let stats: Stats = serde_json::from_str(&text).map_err(|e| {
        FlexError::Refused(format!("{} is not a statistics file: {e}", path.display()))
    })?;
    Ok(Some(stats.bounded()))
}

/// Adds one call to the file.
pub fn record(path: &Path, callout: &str, reason: &str, took: Duration) -> Result<()> {
    let _lock = locks::acquire(&lock_path(path), LOCK_WAIT)?;
    let mut stats = match read(path) {
        Ok(stats) => stats.unwrap_or_default(),
        Err(e) => {
            log::warn!("call-out statistics start again from zero: {e}");
            Stats::default()
        }
    };
    if !stats.record(callout, reason, took) {
        return Ok(());
    }
    let text = serde_json::to_string(&stats)
        .map_err(|e| FlexError::Refused(format!("cannot encode statistics: {e}")))?;
    write_atomic(path, &text)
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
        assert_eq!(
            series,
            CALLOUTS.len() * (1 + KINDS.len()) + CALLOUTS.len() * 2 * per_histogram + 1
        );
        assert!(exposition(None).contains("flashvol_flex_stats_readable 0\n"));
    }

    #[test]
    fn calls_add_up_across_processes_sharing_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("stats").join("stats.json");
        assert_eq!(read(&path).expect("absent is fine"), None);
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let reason = if i % 2 == 0 { "success" } else { "io" };
                    record(&path, "mount", reason, Duration::from_millis(10)).expect("records");
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let stats = read(&path).expect("reads").expect("exists");
        assert_eq!(stats.calls["mount"]["success"], 4);
        assert_eq!(stats.calls["mount"]["io"], 4);
    }

    #[test]
    fn a_damaged_or_oversized_file_is_refused_and_recording_starts_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("stats.json");
        std::fs::write(&path, "{\"calls\": ").expect("write");
        assert!(read(&path).is_err());
        record(&path, "unmount", "success", Duration::ZERO).expect("records");
        assert_eq!(
            read(&path).expect("reads").expect("exists").calls["unmount"]["success"],
            1
        );
        std::fs::write(&path, vec![b' '; (MAX_FILE_BYTES + 1) as usize]).expect("write");
        let err = read(&path).expect_err("too big").to_string();
        assert!(err.contains("bytes"), "{err}");
    }
}
