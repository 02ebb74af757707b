//! PSO's chart environment, the `PURE_*` variables existing deployments pass settings with: the
//! one table of their names, the `"flashvol"` key each one sets and how its text converts.
//!
//! The table drives both users of the contract:
//! - the config loader ([`Settings::apply_env`]) overlays the variables on the file's settings;
//! - the node installer ([`fold_into_section`]) writes them into the `"flashvol"` section of the
//!   node settings file, because kubelet runs the flex driver without the DaemonSet's environment.
//!
//! Both go through the same conversion ([`SettingVar::fragment`]) and the same checks (the
//! section's, [`Settings::apply_section`]), so a variable cannot mean one thing in the pod and
//! another on the node. Every `PURE_*` name is written here and nowhere else in the Rust code.
//!
//! An empty value means "not set": PSO's chart renders an unset value as an empty string.

use serde_json::{Map, Value};

use super::ConfigError;
use super::settings::{Settings, parse_bool};

/// The config file's path; [`super::DEFAULT_CONFIG_PATH`] when unset. Both PSO pods had it.
pub const DISCOVERY_CONF: &str = "PURE_DISCOVERY_CONF";

/// How a variable's text becomes the JSON value of its `"flashvol"` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// The text, trimmed: a JSON string (the section checks it, e.g. `xfs`, `ISCSI`).
    Text,
    /// Comma-separated items, trimmed, empty ones dropped: a JSON list of strings.
    List,
    /// A whole number of seconds: a JSON number.
    Seconds,
    /// `true`/`false` in any case, also `1`/`0`, `yes`/`no`, `on`/`off`: a JSON boolean.
    Bool,
}

/// One PSO chart variable that sets a flashvol setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingVar {
    pub name: &'static str,
    /// Its key in the `"flashvol"` section, outermost first: `["block", "fsType"]`.
    pub key: &'static [&'static str],
    pub conversion: Conversion,
}

/// `namespace.pure` in PSO's chart: the array name prefix. Both PSO pods had it.
pub const K8S_NAMESPACE: SettingVar = SettingVar {
    name: "PURE_K8S_NAMESPACE",
    key: &["namePrefix"],
    conversion: Conversion::Text,
};
/// `flasharray.defaultFSType`: `xfs`, `ext4` or `ext3`.
pub const DEFAULT_BLOCK_FS_TYPE: SettingVar = SettingVar {
    name: "PURE_DEFAULT_BLOCK_FS_TYPE",
    key: &["block", "fsType"],
    conversion: Conversion::Text,
};
/// `flasharray.defaultFSOpt`: mkfs options.
pub const DEFAULT_BLOCK_FS_OPT: SettingVar = SettingVar {
    name: "PURE_DEFAULT_BLOCK_FS_OPT",
    key: &["block", "mkfsOptions"],
    conversion: Conversion::Text,
};
/// `flasharray.defaultMountOpt`: mount options, one comma-separated string.
pub const DEFAULT_BLOCK_MNT_OPT: SettingVar = SettingVar {
    name: "PURE_DEFAULT_BLOCK_MNT_OPT",
    key: &["block", "mountOptions"],
    conversion: Conversion::Text,
};
/// `flasharray.sanType`: `ISCSI` or `FC`.
pub const FLASHARRAY_SAN_TYPE: SettingVar = SettingVar {
    name: "PURE_FLASHARRAY_SAN_TYPE",
    key: &["block", "sanType"],
    conversion: Conversion::Text,
};
/// `flasharray.iSCSIAllowedCIDR`: the iSCSI target portals to log in to; empty means all.
pub const ISCSI_ALLOWED_CIDRS: SettingVar = SettingVar {
    name: "PURE_ISCSI_ALLOWED_CIDRS",
    key: &["block", "iscsiAllowedCidrs"],
    conversion: Conversion::List,
};
/// `flasharray.iSCSILoginTimeout`, in seconds.
pub const ISCSI_LOGIN_TIMEOUT: SettingVar = SettingVar {
    name: "PURE_ISCSI_LOGIN_TIMEOUT",
    key: &["block", "iscsiLoginTimeoutSeconds"],
    conversion: Conversion::Seconds,
};
/// `flasharray.preemptAttachments`: RWO fencing.
pub const PREEMPT_RWO_ATTACHMENTS_DEFAULT: SettingVar = SettingVar {
    name: "PURE_PREEMPT_RWO_ATTACHMENTS_DEFAULT",
    key: &["block", "preemptRwoAttachments"],
    conversion: Conversion::Bool,
};
/// `flashblade.snapshotDirectoryEnabled`: a `.snapshot` directory on new file systems.
pub const DEFAULT_ENABLE_FB_NFS_SNAPSHOT: SettingVar = SettingVar {
    name: "PURE_DEFAULT_ENABLE_FB_NFS_SNAPSHOT",
    key: &["file", "snapshotDirectory"],
    conversion: Conversion::Bool,
};

/// Every variable that sets a setting, in the order they are applied.
pub const SETTING_VARS: &[SettingVar] = &[
    K8S_NAMESPACE,
    DEFAULT_BLOCK_FS_TYPE,
    DEFAULT_BLOCK_FS_OPT,
    DEFAULT_BLOCK_MNT_OPT,
    FLASHARRAY_SAN_TYPE,
    ISCSI_ALLOWED_CIDRS,
    ISCSI_LOGIN_TIMEOUT,
    PREEMPT_RWO_ATTACHMENTS_DEFAULT,
    DEFAULT_ENABLE_FB_NFS_SNAPSHOT,
];

impl SettingVar {
    /// The variable's value, `None` when unset or empty.
    pub fn read(&self, env: impl Fn(&str) -> Option<String>) -> Option<String> {
        env(self.name).filter(|v| !v.trim().is_empty())
    }

    /// `block.fsType`: the key as the documentation and error messages write it.
    pub fn section_key(&self) -> String {
        self.key.join(".")
    }

    /// The value as the JSON its key takes. Only the shape is checked here (a number, a boolean);
    /// what the value means is checked by [`Settings::apply_section`].
    pub fn to_json(&self, raw: &str) -> Result<Value, ConfigError> {
        let text = raw.trim();
        match self.conversion {
            Conversion::Text => Ok(Value::String(text.to_owned())),
            Conversion::List => Ok(Value::Array(
                text.split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(|item| Value::String(item.to_owned()))
                    .collect(),
            )),
            Conversion::Seconds => text
                .parse::<u64>()
                .map(Value::from)
                .map_err(|_| self.error(raw, "must be a whole number of seconds")),
            Conversion::Bool => parse_bool(text)
                .map(Value::Bool)
                .ok_or_else(|| self.error(raw, "must be true or false")),
        }
    }

    /// The part of a `"flashvol"` section this value sets: `{"block": {"fsType": "ext4"}}`.
    pub fn fragment(&self, raw: &str) -> Result<Value, ConfigError> {
        let value = self.to_json(raw)?;
        Ok(self.key.iter().rev().fold(value, |inner, key| {
            Value::Object(Map::from_iter([((*key).to_owned(), inner)]))
        }))
    }

    /// This variable's value is wrong, and why.
    pub fn error(&self, raw: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError::Env {
            var: self.name,
            value: raw.to_owned(),
            problem: problem.into(),
        }
    }

    /// Overlays the value on `settings`, with the section's checks; errors name the variable.
    fn apply(&self, settings: &mut Settings, raw: &str) -> Result<(), ConfigError> {
        settings
            .apply_section(self.fragment(raw)?)
            .map_err(|(_, problem)| self.error(raw, problem))
    }
}

impl Settings {
    /// Applies PSO's chart environment variables over these settings (they win over the file).
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        for var in SETTING_VARS {
            if let Some(raw) = var.read(&env) {
                var.apply(self, &raw)?;
            }
        }
        Ok(())
    }
}

/// Writes the set `PURE_*` variables into `section`, a `"flashvol"` section as a JSON object,
/// keeping its other keys: what the node installer puts in the settings file so that the driver,
/// run by kubelet without the DaemonSet's environment, sees what the DaemonSet sees.
///
/// Each value is checked as [`Settings::apply_env`] checks it, and refused the same way.
pub fn fold_into_section(
    section: &mut Map<String, Value>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    for var in SETTING_VARS {
        let Some(raw) = var.read(&env) else {
            continue;
        };
        var.apply(&mut Settings::default(), &raw)?;
        let Some((last, parents)) = var.key.split_last() else {
            continue;
        };
        let mut at = &mut *section;
        for (depth, key) in parents.iter().enumerate() {
            let child = at
                .entry((*key).to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            at = child.as_object_mut().ok_or_else(|| {
                var.error(
                    &raw,
                    format!(
                        "the config file's flashvol.{} must be an object to take it",
                        var.key[..=depth].join(".")
                    ),
                )
            })?;
        }
        at.insert((*last).to_owned(), var.to_json(&raw)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};
    use std::path::Path;
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::config::{Config, FsType, SanType};

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    /// A value for each variable that differs from the default, as PSO users wrote them.
    fn pso_values() -> Vec<(&'static str, &'static str)> {
        vec![
            (K8S_NAMESPACE.name, "team1"),
            (DEFAULT_BLOCK_FS_TYPE.name, "ext4"),
            (DEFAULT_BLOCK_FS_OPT.name, "-q -E nodiscard"),
            (DEFAULT_BLOCK_MNT_OPT.name, "discard"),
            (FLASHARRAY_SAN_TYPE.name, "fc"),
            (ISCSI_ALLOWED_CIDRS.name, "10.1.0.0/16, 10.2.0.1"),
            (ISCSI_LOGIN_TIMEOUT.name, "30"),
            (PREEMPT_RWO_ATTACHMENTS_DEFAULT.name, "False"),
            (DEFAULT_ENABLE_FB_NFS_SNAPSHOT.name, "true"),
        ]
    }

    #[test]
    fn the_table_names_each_variable_and_key_once() {
        let names: HashSet<&str> = SETTING_VARS.iter().map(|v| v.name).collect();
        let keys: HashSet<String> = SETTING_VARS.iter().map(SettingVar::section_key).collect();
        assert_eq!(names.len(), SETTING_VARS.len());
        assert_eq!(keys.len(), SETTING_VARS.len());
        assert!(
            SETTING_VARS
                .iter()
                .all(|v| v.name.starts_with("PURE_") && !v.key.is_empty())
        );
        assert!(!names.contains(DISCOVERY_CONF));
        assert_eq!(
            pso_values().len(),
            SETTING_VARS.len(),
            "a sample per variable"
        );
    }

    #[test]
    fn every_variable_changes_the_setting_it_names() {
        for (name, value) in pso_values() {
            let var = SETTING_VARS
                .iter()
                .find(|v| v.name == name)
                .expect("in the table");
            let mut from_env = Settings::default();
            from_env
                .apply_env(env_of(&[(name, value)]))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_ne!(from_env, Settings::default(), "{name} changed nothing");
            // The same value written in the file under the variable's key gives the same settings.
            let mut from_file = Settings::default();
            from_file
                .apply_section(var.fragment(value).expect("converts"))
                .expect("valid");
            assert_eq!(from_env, from_file, "{name}");
        }
    }

    #[test]
    fn pso_environment_variables_override_the_file() {
        let mut s = Settings::default();
        s.apply_section(json!({"namePrefix": "file", "block": {"fsType": "ext3"}}))
            .expect("valid");
        s.apply_env(env_of(&pso_values())).expect("valid env");
        assert_eq!(s.name_prefix, "team1");
        assert_eq!(s.block.fs_type, FsType::Ext4);
        assert_eq!(s.block.mkfs_options, "-q -E nodiscard");
        assert_eq!(s.block.mount_options, "discard");
        assert_eq!(s.block.san_type, SanType::Fc);
        assert_eq!(s.block.iscsi_allowed_cidrs.len(), 2);
        assert_eq!(s.block.iscsi_login_timeout, Duration::from_secs(30));
        assert!(!s.block.preempt_rwo_attachments);
        assert!(s.file.snapshot_directory);
    }

    #[test]
    fn empty_values_mean_unset() {
        let mut s = Settings::default();
        s.apply_env(|_| Some("  ".to_owned()))
            .expect("empty values mean unset");
        assert_eq!(s, Settings::default());
        let mut section = Map::new();
        fold_into_section(&mut section, |_| Some(String::new())).expect("nothing to fold");
        assert!(section.is_empty());
    }

    #[test]
    fn values_convert_to_the_json_their_key_takes() {
        assert_eq!(
            ISCSI_ALLOWED_CIDRS
                .to_json(" 10.1.0.0/16, ,10.2.0.1 ")
                .expect("list"),
            json!(["10.1.0.0/16", "10.2.0.1"])
        );
        assert_eq!(
            ISCSI_LOGIN_TIMEOUT.to_json(" 35 ").expect("seconds"),
            json!(35)
        );
        assert_eq!(
            PREEMPT_RWO_ATTACHMENTS_DEFAULT.to_json("No").expect("bool"),
            json!(false)
        );
        assert_eq!(
            DEFAULT_BLOCK_FS_OPT.to_json(" -F ").expect("text"),
            json!("-F")
        );
        assert_eq!(
            DEFAULT_BLOCK_FS_TYPE.fragment("xfs").expect("fragment"),
            json!({"block": {"fsType": "xfs"}})
        );
        assert_eq!(
            K8S_NAMESPACE.fragment("k8s").expect("fragment"),
            json!({"namePrefix": "k8s"})
        );
    }

    #[test]
    fn a_bad_value_is_refused_naming_the_variable_and_the_value() {
        for (var, bad) in [
            (K8S_NAMESPACE, "-team"),
            (DEFAULT_BLOCK_FS_TYPE, "zfs"),
            (DEFAULT_BLOCK_MNT_OPT, "a b"),
            (FLASHARRAY_SAN_TYPE, "nvme"),
            (ISCSI_ALLOWED_CIDRS, "10.0.0.0/99"),
            (ISCSI_LOGIN_TIMEOUT, "soon"),
            (ISCSI_LOGIN_TIMEOUT, "-1"),
            (ISCSI_LOGIN_TIMEOUT, "0"),
            (ISCSI_LOGIN_TIMEOUT, "3601"),
            (PREEMPT_RWO_ATTACHMENTS_DEFAULT, "maybe"),
            (DEFAULT_ENABLE_FB_NFS_SNAPSHOT, "2"),
        ] {
            for err in [
                Settings::default()
                    .apply_env(env_of(&[(var.name, bad)]))
                    .expect_err(bad),
                fold_into_section(&mut Map::new(), env_of(&[(var.name, bad)])).expect_err(bad),
            ] {
                assert!(
                    matches!(&err, ConfigError::Env { var: v, value, .. } if *v == var.name && value == bad),
                    "{err:?}"
                );
                let text = err.to_string();
                assert!(text.contains(var.name) && text.contains(bad), "{text}");
            }
        }
    }

    #[test]
    fn folding_keeps_the_sections_other_keys_and_replaces_the_set_ones() {
        let mut section = json!({"namePrefix": "old", "tls": {"insecureSkipVerify": true},
                                 "block": {"fsType": "xfs", "mkfsOptions": "-K"}});
        let env = env_of(&[
            (K8S_NAMESPACE.name, "new"),
            (DEFAULT_BLOCK_FS_TYPE.name, "ext3"),
            (DEFAULT_ENABLE_FB_NFS_SNAPSHOT.name, "yes"),
        ]);
        fold_into_section(section.as_object_mut().expect("object"), &env).expect("folds");
        assert_eq!(
            section,
            json!({"namePrefix": "new", "tls": {"insecureSkipVerify": true},
                   "block": {"fsType": "ext3", "mkfsOptions": "-K"},
                   "file": {"snapshotDirectory": true}})
        );
    }

    #[test]
    fn a_section_that_cannot_take_a_variable_is_named() {
        let mut section = Map::from_iter([("block".to_owned(), json!(5))]);
        let err = fold_into_section(&mut section, env_of(&[(FLASHARRAY_SAN_TYPE.name, "fc")]))
            .expect_err("refused")
            .to_string();
        assert!(
            err.contains(FLASHARRAY_SAN_TYPE.name) && err.contains("flashvol.block must be"),
            "{err}"
        );
    }

    /// What the node installer relies on: a document with the environment folded into its
    /// section reads back as the same document read with that environment.
    #[test]
    fn a_folded_document_reads_back_as_the_file_plus_the_environment() {
        let file = r#"{"FlashArrays": [{"MgmtEndPoint": "10.0.0.5", "APIToken": "t"}],
                       "flashvol": {"retries": 0, "block": {"fsType": "xfs"}}}"#;
        let env = env_of(&pso_values());
        let mut expected = Config::parse(Path::new("pure.json"), file).expect("parses");
        expected.settings.apply_env(&env).expect("valid env");

        let mut doc: Value = serde_json::from_str(file).expect("json");
        let section = doc["flashvol"].as_object_mut().expect("section");
        fold_into_section(section, &env).expect("folds");
        let written = Config::parse(Path::new("flashvol.json"), &doc.to_string()).expect("parses");
        assert_eq!(written.settings, expected.settings);
        assert_eq!(
            written.settings.client.retries, 0,
            "the file's own keys stay"
        );
    }

    /// The README's settings table is the users' copy of this table.
    #[test]
    fn the_readme_lists_every_variable_with_its_key() {
        let readme = include_str!("../../../README.md");
        for var in SETTING_VARS {
            let row = format!("`{}`", var.name);
            let key = format!("`{}", var.section_key());
            assert!(
                readme
                    .lines()
                    .any(|line| line.contains(&row) && line.contains(&key)),
                "README.md has no row for {} ({})",
                var.name,
                var.section_key()
            );
        }
        assert!(readme.contains(DISCOVERY_CONF));
        for (at, _) in readme.match_indices("PURE_") {
            let name: String = readme[at..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            let known = name == "PURE_"
                || name == DISCOVERY_CONF
                || SETTING_VARS.iter().any(|v| v.name == name);
            assert!(known, "README.md documents {name}, which nothing reads");
        }
    }
}
