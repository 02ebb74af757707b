//! Findings → what people and programs read, with no I/O: the text report (one line per check,
//! grouped by family, the fix under each WARN and FAIL), the JSON document described by
//! `flexdriver/doctor.schema.json`, and the lines the installer logs.

use std::path::PathBuf;

use serde::Serialize;

use super::{Family, Finding, Status};

/// Version of the JSON document's shape: bumped when a field changes meaning or goes away
/// (adding checks or fields does not bump it).
pub const SCHEMA_VERSION: u32 = 1;

/// Everything one run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The node name the driver uses (from the settings), when they could be read.
    pub node: Option<String>,
    pub host_root: PathBuf,
    pub settings_file: Option<PathBuf>,
    /// In family order.
    pub findings: Vec<Finding>,
}

/// How many findings had each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
    pub skip: usize,
}

impl Report {
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for f in &self.findings {
            *match f.status {
                Status::Pass => &mut counts.pass,
                Status::Warn => &mut counts.warn,
                Status::Fail => &mut counts.fail,
                Status::Skip => &mut counts.skip,
            } += 1;
        }
        counts
    }

    /// Nothing failed: this node can mount Pure volumes. The exit status is 0 exactly then.
    pub fn ok(&self) -> bool {
        self.counts().fail == 0
    }

    /// The one-line verdict.
    pub fn summary_line(&self) -> String {
        let c = self.counts();
        let verdict = if c.fail > 0 {
            "this node cannot mount Pure volumes until the FAILs are fixed"
        } else if c.warn > 0 {
            "this node can mount Pure volumes; the WARNs are worth fixing"
        } else {
            "this node can mount Pure volumes"
        };
        format!(
            "{} pass, {} warn, {} fail, {} skip: {verdict}",
            c.pass, c.warn, c.fail, c.skip
        )
    }

    /// One line per WARN and FAIL, with its fix: what the installer logs.
    pub fn problem_lines(&self) -> Vec<String> {
        self.findings
            .iter()
            .filter(|f| matches!(f.status, Status::Warn | Status::Fail))
            .map(|f| {
                let fix = f
                    .fix
                    .as_deref()
                    .map(|x| format!(" (fix: {x})"))
                    .unwrap_or_default();
                format!(
                    "doctor: {} {}{}: {}{fix}",
                    f.status.word(),
                    f.id,
                    on(f),
                    f.saw
                )
            })
            .collect()
    }

    /// The report for people.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "flashvol-flex doctor {}: node {}\n  settings {}, host root {}\n",
            env!("CARGO_PKG_VERSION"),
            self.node.as_deref().unwrap_or("(unknown)"),
            self.settings_file
                .as_ref()
                .map_or_else(|| "(none)".to_owned(), |p| p.display().to_string()),
            self.host_root.display()
        );
        let width = self
            .findings
            .iter()
            .map(|f| f.id.len() + on(f).len())
            .max()
            .unwrap_or(0);
        for family in Family::ALL {
            let mine: Vec<&Finding> = self
                .findings
                .iter()
                .filter(|f| f.family() == family)
                .collect();
            if mine.is_empty() {
                continue;
            }
            out.push('\n');
            out.push_str(family.name());
            out.push('\n');
            // A family skipped as a whole for one reason takes one line.
            if let [first, rest @ ..] = mine.as_slice() {
                let one_reason = first.status == Status::Skip
                    && first.subject.is_none()
                    && !rest.is_empty()
                    && rest.iter().all(|f| {
                        f.status == Status::Skip && f.subject.is_none() && f.saw == first.saw
                    });
                if one_reason {
                    let label = format!("{}.*", family.name());
                    out.push_str(&format!(
                        "  SKIP  {label:<width$}  {} ({} checks)\n",
                        first.saw,
                        mine.len()
                    ));
                    continue;
                }
            }
            for f in mine {
                let label = format!("{}{}", f.id, on(f));
                out.push_str(&format!(
                    "  {}  {label:<width$}  {}\n",
                    f.status.word(),
                    f.saw
                ));
                if let Some(fix) = &f.fix {
                    out.push_str(&format!("        fix: {fix}\n"));
                }
            }
        }
        out.push('\n');
        out.push_str(&self.summary_line());
        out.push('\n');
        out
    }

    /// The report for programs; its shape is `flexdriver/doctor.schema.json`.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Document<'a> {
            schema_version: u32,
            version: &'static str,
            node: Option<&'a str>,
            host_root: String,
            settings_file: Option<String>,
            ok: bool,
            summary: Counts,
            checks: Vec<Check<'a>>,
        }
        #[derive(Serialize)]
        struct Check<'a> {
            id: &'static str,
            family: &'static str,
            subject: Option<&'a str>,
            status: &'static str,
            saw: &'a str,
            fix: Option<&'a str>,
        }
        let document = Document {
            schema_version: SCHEMA_VERSION,
            version: env!("CARGO_PKG_VERSION"),
            node: self.node.as_deref(),
            host_root: self.host_root.display().to_string(),
            settings_file: self.settings_file.as_ref().map(|p| p.display().to_string()),
            ok: self.ok(),
            summary: self.counts(),
            checks: self
                .findings
                .iter()
                .map(|f| Check {
                    id: f.id,
                    family: f.family().name(),
                    subject: f.subject.as_deref(),
                    status: match f.status {
                        Status::Pass => "pass",
                        Status::Warn => "warn",
                        Status::Fail => "fail",
                        Status::Skip => "skip",
                    },
                    saw: &f.saw,
                    fix: f.fix.as_deref(),
                })
                .collect(),
        };
        // Plain data with string keys: serialising cannot fail.
        serde_json::to_string_pretty(&document).unwrap_or_default()
    }
}

/// ` [subject]`, or nothing.
fn on(f: &Finding) -> String {
    f.subject
        .as_deref()
        .map(|s| format!(" [{s}]"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        Report {
            node: Some("worker-1".into()),
            host_root: "/host".into(),
            settings_file: Some("/host/x/flashvol.json".into()),
            findings: vec![
                Finding::pass("settings.file", "parses"),
                Finding::fail("settings.mode", "mode 0644", "chmod 600 /x/flashvol.json"),
                Finding::warn("clock.skew", "12s ahead", "run NTP").about("10.0.0.5"),
                Finding::skip("kernel.fc", "SAN type is iSCSI"),
            ],
        }
    }

    #[test]
    fn the_text_groups_by_family_and_gives_each_fix() {
        let text = sample().to_text();
        assert!(text.contains("node worker-1"), "{text}");
        assert!(text.contains("\nsettings\n  PASS  settings.file"), "{text}");
        assert!(text.contains("  FAIL  settings.mode"), "{text}");
        assert!(
            text.contains("        fix: chmod 600 /x/flashvol.json\n"),
            "{text}"
        );
        assert!(text.contains("WARN  clock.skew [10.0.0.5]"), "{text}");
        assert!(
            text.trim_end()
                .ends_with("1 pass, 1 warn, 1 fail, 1 skip: this node cannot mount Pure volumes until the FAILs are fixed"),
            "{text}"
        );
    }

    #[test]
    fn a_family_skipped_for_one_reason_takes_one_line() {
        let mut report = sample();
        report.findings = super::super::skip_all(super::super::tools::IDS, "no arrays configured");
        let text = report.to_text();
        assert!(text.contains("  SKIP  tools.*"), "{text}");
        assert!(text.contains("no arrays configured (11 checks)"), "{text}");
        assert!(!text.contains("tools.blkid"), "{text}");
    }

    #[test]
    fn the_json_carries_every_finding_and_the_verdict() {
        let doc: serde_json::Value = serde_json::from_str(&sample().to_json()).expect("JSON");
        assert_eq!(doc["schemaVersion"], 1);
        assert_eq!(doc["ok"], false);
        assert_eq!(doc["summary"]["fail"], 1);
        assert_eq!(doc["checks"][2]["subject"], "10.0.0.5");
        assert_eq!(doc["checks"][2]["family"], "clock");
        assert_eq!(doc["checks"][0]["fix"], serde_json::Value::Null);
        assert_eq!(doc["checks"][1]["status"], "fail");
    }

    #[test]
    fn only_warnings_and_failures_reach_the_installers_log() {
        let lines = sample().problem_lines();
        assert_eq!(
            lines,
            [
                "doctor: FAIL settings.mode: mode 0644 (fix: chmod 600 /x/flashvol.json)",
                "doctor: WARN clock.skew [10.0.0.5]: 12s ahead (fix: run NTP)",
            ]
        );
        let mut fine = sample();
        fine.findings.retain(|f| f.status != Status::Fail);
        assert!(fine.ok());
    }
}
