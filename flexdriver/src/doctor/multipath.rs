//! Multipath on this node: `multipathd` running, its configuration holding the settings Pure
//! recommends for FlashArray LUNs ([`super::multipath_conf::RECOMMENDED_FOR_FLASHARRAY`], sources cited there),
//! and maps named by WWID: the driver waits for `/dev/mapper/3624a9370<serial>`, so friendly
//! names (`mpathN`) or aliases for Pure LUNs mean a mount never finds its device.

use std::path::{Path, PathBuf};

use super::host::Host;
use super::multipath_conf::{
    self as conf, InForce, Origin, ParseError, PureView, RECOMMENDED_FOR_FLASHARRAY, Section,
};
use super::{Finding, Loaded, skip_all};

pub const IDS: &[&str] = &[
    "multipath.multipathd",
    "multipath.config",
    "multipath.friendly_names",
];

/// The main configuration file.
const MAIN_FILE: &str = "/etc/multipath.conf";

/// What was read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Facts {
    multipathd: Result<Vec<u32>, String>,
    /// Each file read (`/etc/multipath.conf`, then `config_dir`'s `*.conf` by name), parsed.
    files: Vec<(String, Result<Vec<Section>, ParseError>)>,
    /// Whether the main file exists.
    main_exists: bool,
}

pub fn check(host: &Host, loaded: &Loaded) -> Vec<Finding> {
    if !loaded.has_flash_arrays() {
        return skip_all(IDS, "not used: no FlashArrays configured");
    }
    let main = host.read_to_string(Path::new(MAIN_FILE));
    let main_exists = main.is_ok();
    let mut files = Vec::new();
    let mut dir = conf::DEFAULT_CONFIG_DIR.to_owned();
    if let Ok(text) = main {
        let parsed = conf::parse(&text);
        if let Ok(sections) = &parsed {
            dir = conf::config_dir(sections);
        }
        files.push((MAIN_FILE.to_owned(), parsed));
    }
    for path in conf_d(host, Path::new(&dir)) {
        if let Ok(text) = host.read_to_string(&path) {
            files.push((path.display().to_string(), conf::parse(&text)));
        }
    }
    let facts = Facts {
        multipathd: host.pids_named("multipathd").map_err(|e| e.to_string()),
        files,
        main_exists,
    };
    judge(&facts)
}

/// `config_dir`'s `*.conf` files (host paths), in name order.
fn conf_d(host: &Host, dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(host.path(dir)) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| n.ends_with(".conf"))
        .collect();
    names.sort();
    names.into_iter().map(|n| dir.join(n)).collect()
}

fn judge(facts: &Facts) -> Vec<Finding> {
    let multipathd = match &facts.multipathd {
        Ok(pids) if !pids.is_empty() => Finding::pass(
            "multipath.multipathd",
            format!("multipathd is running (pid {})", pids[0]),
        ),
        Ok(_) => Finding::warn(
            "multipath.multipathd",
            "multipathd is not running: volumes mount over a single path, without failover",
            "systemctl enable --now multipathd",
        ),
        Err(e) => Finding::warn(
            "multipath.multipathd",
            format!("cannot list the host's processes: {e}"),
            "run doctor on the node, or in the DaemonSet pod, which sees the host's / (--host-root)",
        ),
    };
    let broken: Vec<String> = facts
        .files
        .iter()
        .filter_map(|(file, parsed)| parsed.as_ref().err().map(|e| format!("{file}: {e}")))
        .collect();
    if !broken.is_empty() {
        return vec![
            multipathd,
            Finding::warn(
                "multipath.config",
                format!("cannot be parsed: {}", broken.join("; ")),
                "fix the file (multipathd -t shows what multipathd makes of it)",
            ),
            Finding::skip(
                "multipath.friendly_names",
                "not checked: the configuration cannot be parsed (see multipath.config)",
            ),
        ];
    }
    let parsed: Vec<(String, Vec<Section>)> = facts
        .files
        .iter()
        .filter_map(|(f, p)| p.as_ref().ok().map(|s| (f.clone(), s.clone())))
        .collect();
    let view = conf::pure_view(&parsed);
    vec![
        multipathd,
        judge_config(facts.main_exists, &view),
        judge_names(&view),
    ]
}

fn judge_config(main_exists: bool, view: &PureView) -> Finding {
    const ID: &str = "multipath.config";
    let fix = format!(
        "add to {MAIN_FILE} {} (flexdriver/README.md has it to paste), then systemctl reload multipathd",
        conf::recommended_section()
    );
    if !main_exists {
        return Finding::warn(
            ID,
            format!(
                "there is no {MAIN_FILE}: multipathd runs on its built-in settings, which differ between versions"
            ),
            fix,
        );
    }
    if view.device_entries.is_empty() {
        return Finding::warn(
            ID,
            format!(
                "no device section for vendor \"{}\" product \"{}\": this multipath-tools version's built-in settings apply to FlashArray LUNs",
                conf::FLASHARRAY_VENDOR,
                conf::FLASHARRAY_PRODUCT
            ),
            fix,
        );
    }
    let mut differ = Vec::new();
    let mut unset = Vec::new();
    // user_friendly_names is multipath.friendly_names' to judge (a FAIL, not a WARN).
    for (key, wanted) in RECOMMENDED_FOR_FLASHARRAY
        .iter()
        .filter(|(k, _)| *k != "user_friendly_names")
    {
        match view.values.get(key) {
            Some(InForce { value, at, .. }) if !conf::same_value(value, wanted) => {
                differ.push(format!(
                    "{key} is {value:?} ({at}), Pure recommends {wanted:?}"
                ));
            }
            Some(_) => {}
            None => unset.push(*key),
        }
    }
    if differ.is_empty() && unset.is_empty() {
        return Finding::pass(
            ID,
            format!(
                "FlashArray LUNs get Pure's recommended settings (device section at {})",
                view.device_entries.join(", ")
            ),
        );
    }
    let mut saw = Vec::new();
    if !differ.is_empty() {
        saw.push(differ.join("; "));
    }
    if !unset.is_empty() {
        saw.push(format!("not set: {}", unset.join(", ")));
    }
    Finding::warn(
        ID,
        format!(
            "differs from Pure's recommended settings: {}",
            saw.join("; ")
        ),
        fix,
    )
}

fn judge_names(view: &PureView) -> Finding {
    const ID: &str = "multipath.friendly_names";
    let fix = format!(
        "set user_friendly_names no in the PURE FlashArray device section of {MAIN_FILE} (and remove aliases of 3624a9370… WWIDs), then systemctl reload multipathd"
    );
    if !view.aliases.is_empty() {
        let listed: Vec<String> = view
            .aliases
            .iter()
            .map(|(wwid, alias)| format!("{wwid} → {alias}"))
            .collect();
        return Finding::fail(
            ID,
            format!(
                "multipaths gives FlashArray volumes aliases ({}): the driver waits for /dev/mapper/<WWID>",
                listed.join(", ")
            ),
            fix,
        );
    }
    match view.values.get("user_friendly_names") {
        Some(InForce { value, origin, at }) if conf::is_yes(value) => Finding::fail(
            ID,
            format!(
                "user_friendly_names {value} ({}, {at}) applies to FlashArray LUNs: their maps are named mpathN, and the driver waits for /dev/mapper/3624a9370<serial>",
                origin_words(origin)
            ),
            fix,
        ),
        Some(InForce { value, origin, at }) => Finding::pass(
            ID,
            format!(
                "user_friendly_names {value} ({}, {at}): maps are named by WWID",
                origin_words(origin)
            ),
        ),
        None => Finding::pass(
            ID,
            "user_friendly_names is not set: multipathd's default (no) names maps by WWID",
        ),
    }
}

fn origin_words(origin: &Origin) -> &'static str {
    match origin {
        Origin::Defaults => "defaults",
        Origin::Device => "PURE device section",
        Origin::Overrides => "overrides",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    fn facts_of(text: &str) -> Facts {
        Facts {
            multipathd: Ok(vec![9]),
            files: vec![(MAIN_FILE.to_owned(), conf::parse(text))],
            main_exists: true,
        }
    }

    fn statuses(findings: &[Finding]) -> Vec<(&'static str, Status)> {
        findings.iter().map(|f| (f.id, f.status)).collect()
    }

    #[test]
    fn a_config_without_a_pure_section_warns_with_the_section_to_add() {
        let findings = judge(&facts_of("defaults {\n user_friendly_names no\n}\n"));
        assert_eq!(
            statuses(&findings),
            [
                ("multipath.multipathd", Status::Pass),
                ("multipath.config", Status::Warn),
                ("multipath.friendly_names", Status::Pass),
            ]
        );
        assert!(
            findings[1]
                .fix
                .as_deref()
                .unwrap_or("")
                .contains("vendor \"PURE\"")
        );
    }

    #[test]
    fn friendly_names_without_a_pure_override_fail() {
        let findings = judge(&facts_of("defaults {\n user_friendly_names yes\n}\n"));
        assert_eq!(findings[2].status, Status::Fail);
        assert!(findings[2].saw.contains("mpathN"), "{}", findings[2].saw);
        let text = "defaults {\n user_friendly_names yes\n}\ndevices {\n device {\n vendor PURE\n product FlashArray\n user_friendly_names no\n }\n}\n";
        assert_eq!(judge(&facts_of(text))[2].status, Status::Pass);
    }

    #[test]
    fn values_other_than_pures_are_listed() {
        let text = "devices {\n device {\n vendor PURE\n product FlashArray\n no_path_retry queue\n }\n}\n";
        let f = &judge(&facts_of(text))[1];
        assert_eq!(f.status, Status::Warn);
        assert!(f.saw.contains("no_path_retry is \"queue\""), "{}", f.saw);
        assert!(f.saw.contains("not set: path_selector"), "{}", f.saw);
    }

    #[test]
    fn no_file_and_broken_files_warn() {
        let none = Facts {
            multipathd: Ok(vec![]),
            files: vec![],
            main_exists: false,
        };
        assert_eq!(
            statuses(&judge(&none)),
            [
                ("multipath.multipathd", Status::Warn),
                ("multipath.config", Status::Warn),
                ("multipath.friendly_names", Status::Pass),
            ]
        );
        let broken = judge(&facts_of("defaults {\n"));
        assert_eq!(broken[1].status, Status::Warn);
        assert_eq!(broken[2].status, Status::Skip);
    }
}
