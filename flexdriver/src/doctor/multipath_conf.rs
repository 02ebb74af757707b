//! `multipath.conf` as multipathd reads it, and what it makes of Pure FlashArray LUNs. No I/O.
//!
//! Syntax (multipath-tools' `libmultipath/parser.c`): one keyword per line, its value the next
//! word or a `"quoted string"`; `section {` … `}` nest (`defaults`, `devices` / `device`,
//! `overrides`, `multipaths` / `multipath`, `blacklist`, …); `#` and `!` start a comment outside
//! quotes. The files of `config_dir` (default `/etc/multipath/conf.d`) are read after the main
//! file, in name order, and a later value wins.
//!
//! Which value applies to a device (multipath-tools' precedence): `overrides`, then every
//! `devices` entry whose `vendor` and `product` regular expressions match the device (the last
//! one wins), then `defaults`, then the built-in hardware table.

use std::collections::BTreeMap;

/// The settings Pure recommends for FlashArray SCSI LUNs (iSCSI and FC), key → value.
///
/// Sources:
/// - Pure's Portworx CSI documentation, "Use FlashArray as backend storage for Kubernetes
///   applications", the `/etc/multipath.conf` it requires
///   (<https://docs.portworx.com/portworx-csi/25.2.0/install/prepare/flash-array>): `vendor "PURE"`,
///   `product "FlashArray"`, `path_selector "service-time 0"`, `hardware_handler "1 alua"`,
///   `path_grouping_policy group_by_prio`, `prio alua`, `failback immediate`, `path_checker tur`,
///   `fast_io_fail_tmo 10`, `user_friendly_names no`, `no_path_retry 0`, `features 0`,
///   `dev_loss_tmo 600`.
/// - Pure's "Linux Recommended Settings" knowledge base article
///   (<https://support.purestorage.com/Solutions/Linux/Reference/Linux_Recommended_Settings>):
///   newer multipath-tools replace the `alua` prioritizer unless `detect_prio "no"` is set, "all
///   customers must add" it.
/// - multipath-tools' built-in entry (`libmultipath/hwtable.c`, "Pure Storage / FlashArray"):
///   group_by_prio, failback immediate, `1 alua`, prio alua, detect_prio off, fast_io_fail 10.
pub const RECOMMENDED_FOR_FLASHARRAY: &[(&str, &str)] = &[
    ("path_selector", "service-time 0"),
    ("hardware_handler", "1 alua"),
    ("path_grouping_policy", "group_by_prio"),
    ("prio", "alua"),
    ("failback", "immediate"),
    ("path_checker", "tur"),
    ("fast_io_fail_tmo", "10"),
    ("no_path_retry", "0"),
    ("features", "0"),
    ("dev_loss_tmo", "600"),
    ("detect_prio", "no"),
    ("user_friendly_names", "no"),
];

/// The SCSI inquiry strings of a FlashArray LUN.
pub const FLASHARRAY_VENDOR: &str = "PURE";
pub const FLASHARRAY_PRODUCT: &str = "FlashArray";
/// The WWID prefix of every FlashArray volume (`3` + NAA `624a9370`).
pub const FLASHARRAY_WWID_PREFIX: &str = "3624a9370";

/// Where multipathd reads more files when `defaults` does not say.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/multipath/conf.d";

/// The device section in words, for a one-line fix (flexdriver/README.md has it to paste).
pub fn recommended_section() -> String {
    let body: Vec<String> = RECOMMENDED_FOR_FLASHARRAY
        .iter()
        .map(|(k, v)| {
            if v.contains(' ') {
                format!("{k} \"{v}\"")
            } else {
                format!("{k} {v}")
            }
        })
        .collect();
    format!(
        "a devices {{ device {{ }} }} entry with vendor \"{FLASHARRAY_VENDOR}\", product \"{FLASHARRAY_PRODUCT}\", {}",
        body.join(", ")
    )
}

/// `key value` inside a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    /// The first value word, unquoted; empty when the line has none.
    pub value: String,
    pub line: usize,
}

/// `name { … }`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    pub name: String,
    pub line: usize,
    pub settings: Vec<Setting>,
    pub children: Vec<Section>,
}

impl Section {
    /// The last value of `key` here.
    pub fn get(&self, key: &str) -> Option<&Setting> {
        self.settings.iter().rev().find(|s| s.key == key)
    }
}

/// A file multipathd would complain about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct ParseError {
    pub line: usize,
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    Word(String),
}

/// The tokens of one line: words, quoted strings (`""` inside quotes is a quote) and braces,
/// up to a comment.
fn tokens(line: &str, number: usize) -> Result<Vec<Token>, ParseError> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '#' | '!' => break,
            '{' => out.push(Token::Open),
            '}' => out.push(Token::Close),
            '"' => {
                let mut word = String::new();
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            word.push('"');
                        }
                        Some('"') => break,
                        Some(c) => word.push(c),
                        None => {
                            return Err(ParseError {
                                line: number,
                                problem: "unterminated quoted string".into(),
                            });
                        }
                    }
                }
                out.push(Token::Word(word));
            }
            c => {
                let mut word = String::from(c);
                while let Some(&next) = chars.peek() {
                    if next.is_whitespace() || matches!(next, '{' | '}' | '"' | '#' | '!') {
                        break;
                    }
                    word.push(next);
                    chars.next();
                }
                out.push(Token::Word(word));
            }
        }
    }
    Ok(out)
}

/// Parses one file into its top-level sections.
pub fn parse(text: &str) -> Result<Vec<Section>, ParseError> {
    let mut open: Vec<Section> = Vec::new();
    let mut top: Vec<Section> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let mut toks = tokens(line, number)?.into_iter().peekable();
        while let Some(tok) = toks.next() {
            match tok {
                Token::Close => {
                    let done = open.pop().ok_or_else(|| ParseError {
                        line: number,
                        problem: "'}' closes nothing".into(),
                    })?;
                    match open.last_mut() {
                        Some(parent) => parent.children.push(done),
                        None => top.push(done),
                    }
                }
                Token::Open => {
                    return Err(ParseError {
                        line: number,
                        problem: "'{' without a section name".into(),
                    });
                }
                Token::Word(word) if toks.peek() == Some(&Token::Open) => {
                    toks.next();
                    open.push(Section {
                        name: word,
                        line: number,
                        ..Section::default()
                    });
                }
                Token::Word(key) => {
                    let value = match toks.peek() {
                        Some(Token::Word(_)) => match toks.next() {
                            Some(Token::Word(v)) => v,
                            _ => String::new(),
                        },
                        _ => String::new(),
                    };
                    // Extra words on the line are ignored, as multipathd does (with a warning).
                    while matches!(toks.peek(), Some(Token::Word(_))) {
                        toks.next();
                    }
                    let section = open.last_mut().ok_or_else(|| ParseError {
                        line: number,
                        problem: format!("{key:?} outside any section"),
                    })?;
                    section.settings.push(Setting {
                        key,
                        value,
                        line: number,
                    });
                }
            }
        }
    }
    match open.last() {
        Some(unclosed) => Err(ParseError {
            line: unclosed.line,
            problem: format!("section {:?} is never closed", unclosed.name),
        }),
        None => Ok(top),
    }
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Defaults,
    /// A `devices` entry matching PURE / FlashArray.
    Device,
    Overrides,
}

/// A value in force, and where it was set (`file:line`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InForce {
    pub value: String,
    pub origin: Origin,
    pub at: String,
}

/// What the configuration sets for FlashArray LUNs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PureView {
    /// `file:line` of each `device` entry matching PURE / FlashArray.
    pub device_entries: Vec<String>,
    /// Each key of [`RECOMMENDED_FOR_FLASHARRAY`] that the configuration sets, with its value in force.
    pub values: BTreeMap<&'static str, InForce>,
    /// `multipaths` entries giving a FlashArray WWID an alias: `wwid → alias`.
    pub aliases: Vec<(String, String)>,
}

/// Keys multipathd does not take in `defaults` (they only mean something per device).
const DEVICE_ONLY: &[&str] = &["hardware_handler"];

/// `config_dir` from the main file's `defaults`, else the built-in one.
pub fn config_dir(main: &[Section]) -> String {
    main.iter()
        .filter(|s| s.name == "defaults")
        .filter_map(|s| s.get("config_dir"))
        .next_back()
        .map_or_else(|| DEFAULT_CONFIG_DIR.to_owned(), |s| s.value.clone())
}

/// What applies to a PURE / FlashArray LUN, from the files in the order multipathd reads them
/// (`(name, sections)`).
pub fn pure_view(files: &[(String, Vec<Section>)]) -> PureView {
    let mut view = PureView::default();
    let mut layers: [BTreeMap<&'static str, InForce>; 3] = Default::default();
    for (file, sections) in files {
        let at = |line: usize| format!("{file}:{line}");
        for section in sections {
            match section.name.as_str() {
                "defaults" => take(&mut layers[0], section, Origin::Defaults, &at),
                "overrides" => take(&mut layers[2], section, Origin::Overrides, &at),
                "devices" => {
                    for device in section.children.iter().filter(|d| d.name == "device") {
                        if matches_pure(device) {
                            view.device_entries.push(at(device.line));
                            take(&mut layers[1], device, Origin::Device, &at);
                        }
                    }
                }
                "multipaths" => {
                    for entry in section.children.iter().filter(|m| m.name == "multipath") {
                        if let (Some(wwid), Some(alias)) = (entry.get("wwid"), entry.get("alias")) {
                            if wwid
                                .value
                                .to_ascii_lowercase()
                                .starts_with(FLASHARRAY_WWID_PREFIX)
                            {
                                view.aliases.push((wwid.value.clone(), alias.value.clone()));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
    for (key, _) in RECOMMENDED_FOR_FLASHARRAY {
        let in_force = layers[2]
            .get(key)
            .or_else(|| layers[1].get(key))
            .or_else(|| layers[0].get(key).filter(|_| !DEVICE_ONLY.contains(key)));
        if let Some(v) = in_force {
            view.values.insert(key, v.clone());
        }
    }
    view
}

/// Records the recommended keys a section sets (a later section overwrites an earlier one).
fn take(
    layer: &mut BTreeMap<&'static str, InForce>,
    section: &Section,
    origin: Origin,
    at: &dyn Fn(usize) -> String,
) {
    for (key, _) in RECOMMENDED_FOR_FLASHARRAY {
        if let Some(setting) = section.get(key) {
            layer.insert(
                key,
                InForce {
                    value: setting.value.clone(),
                    origin: origin.clone(),
                    at: at(setting.line),
                },
            );
        }
    }
}

/// Whether a `device` entry applies to FlashArray LUNs: its `vendor` and `product` are POSIX
/// extended regular expressions matched anywhere in the inquiry strings, as multipathd does.
fn matches_pure(device: &Section) -> bool {
    let field = |key: &str, actual: &str| {
        device
            .get(key)
            .is_some_and(|s| match regex::Regex::new(&s.value) {
                Ok(re) => re.is_match(actual),
                Err(_) => s.value == actual,
            })
    };
    field("vendor", FLASHARRAY_VENDOR) && field("product", FLASHARRAY_PRODUCT)
}

/// Two values mean the same to multipathd: case and spacing inside quotes do not matter.
pub fn same_value(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_lowercase()
    };
    norm(a) == norm(b)
}

/// A yes/no keyword as multipathd reads it.
pub fn is_yes(value: &str) -> bool {
    matches!(value.trim().to_ascii_lowercase().as_str(), "yes" | "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECOMMENDED_CONF: &str = r#"
# Pure's recommended settings
defaults {
    user_friendly_names yes   # for the local disks
    find_multipaths yes
}
devices {
    device {
        vendor                   "PURE"
        product                  "FlashArray"
        path_selector            "service-time 0"
        hardware_handler         "1 alua"
        path_grouping_policy     group_by_prio
        prio                     alua
        failback                 immediate
        path_checker             tur
        fast_io_fail_tmo         10
        user_friendly_names      no
        no_path_retry            0
        features                 0
        dev_loss_tmo             600
        detect_prio              no
    }
    device {
        vendor "NETAPP"
        product "LUN.*" # ONTAP
    }
}
"#;

    #[test]
    fn sections_settings_quotes_and_comments_parse() {
        let sections = parse(RECOMMENDED_CONF).expect("parses");
        assert_eq!(sections.len(), 2);
        assert_eq!(sections[0].name, "defaults");
        assert_eq!(
            sections[0]
                .get("user_friendly_names")
                .map(|s| s.value.as_str()),
            Some("yes")
        );
        let devices = &sections[1].children;
        assert_eq!(devices.len(), 2);
        assert_eq!(
            devices[0].get("hardware_handler").map(|s| s.value.as_str()),
            Some("1 alua")
        );
        assert_eq!(devices[0].get("vendor").map(|s| s.line), Some(9));
        assert_eq!(
            devices[1].get("product").map(|s| s.value.as_str()),
            Some("LUN.*")
        );
        let quoted =
            parse("defaults {\n  alias_prefix \"a#b\"\"c\" ! comment\n}\n").expect("parses");
        assert_eq!(quoted[0].settings[0].value, "a#b\"c");
    }

    #[test]
    fn broken_files_say_where() {
        let e = |t: &str| parse(t).expect_err("refused");
        assert_eq!(e("defaults {\n x 1\n").line, 1);
        assert!(e("defaults {\n}\n}\n").problem.contains("closes nothing"));
        assert!(e("x 1\n").problem.contains("outside"));
        assert!(
            e("defaults {\n a \"open\n}\n")
                .problem
                .contains("unterminated")
        );
    }

    #[test]
    fn the_pure_device_entry_beats_defaults_and_overrides_beat_both() {
        let main = parse(RECOMMENDED_CONF).expect("parses");
        let view = pure_view(&[("/etc/multipath.conf".into(), main.clone())]);
        assert_eq!(view.device_entries, ["/etc/multipath.conf:8"]);
        let ufn = &view.values["user_friendly_names"];
        assert_eq!((ufn.value.as_str(), &ufn.origin), ("no", &Origin::Device));
        assert_eq!(ufn.at, "/etc/multipath.conf:18");
        for (key, value) in RECOMMENDED_FOR_FLASHARRAY {
            assert!(same_value(&view.values[key].value, value), "{key}");
        }
        let more = parse("overrides {\n no_path_retry queue\n}\n").expect("parses");
        let view = pure_view(&[
            ("/etc/multipath.conf".into(), main),
            ("/etc/multipath/conf.d/x.conf".into(), more),
        ]);
        let npr = &view.values["no_path_retry"];
        assert_eq!(
            (npr.value.as_str(), &npr.origin),
            ("queue", &Origin::Overrides)
        );
    }

    #[test]
    fn regular_expressions_select_devices_and_defaults_fill_in() {
        let text = "defaults {\n user_friendly_names yes\n hardware_handler \"0\"\n}\n\
                    devices {\n device {\n vendor \".*\"\n product \"Flash.*\"\n prio alua\n }\n\
                    device {\n vendor \"^PURE$\"\n product \"FlashBlade\"\n prio const\n }\n}\n";
        let view = pure_view(&[("m".into(), parse(text).expect("parses"))]);
        assert_eq!(view.device_entries, ["m:6"]);
        assert_eq!(view.values["prio"].value, "alua");
        assert_eq!(view.values["user_friendly_names"].origin, Origin::Defaults);
        assert!(
            !view.values.contains_key("hardware_handler"),
            "not a defaults keyword"
        );
        let none = pure_view(&[("m".into(), parse("defaults {\n}\n").expect("parses"))]);
        assert!(none.device_entries.is_empty() && none.values.is_empty());
    }

    #[test]
    fn aliases_of_flasharray_wwids_are_found() {
        let text = "multipaths {\n multipath {\n wwid 3624A937012345678\n alias data\n }\n\
                    multipath {\n wwid 36000d31000aaaa\n alias other\n }\n}\n";
        let view = pure_view(&[("m".into(), parse(text).expect("parses"))]);
        assert_eq!(
            view.aliases,
            [("3624A937012345678".to_owned(), "data".to_owned())]
        );
    }

    #[test]
    fn config_dir_comes_from_defaults() {
        let main = parse("defaults {\n config_dir /etc/mp.d\n}\n").expect("parses");
        assert_eq!(config_dir(&main), "/etc/mp.d");
        assert_eq!(config_dir(&[]), DEFAULT_CONFIG_DIR);
    }

    #[test]
    fn values_compare_like_multipathd_reads_them() {
        assert!(same_value("Service-Time  0", "service-time 0"));
        assert!(!same_value("round-robin 0", "service-time 0"));
        assert!(is_yes("yes") && is_yes("1") && !is_yes("no"));
        assert!(recommended_section().contains("vendor \"PURE\", product \"FlashArray\""));
        assert!(recommended_section().contains("hardware_handler \"1 alua\""));
    }
}
