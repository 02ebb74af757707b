//! Configuration: PSO 2.x's `pure.json` array list, read unchanged, plus flashvol's own settings.
//!
//! One JSON document holds everything:
//!
//! ```json
//! {"FlashArrays": [{"MgmtEndPoint": "10.0.0.5", "APIToken": "…", "Labels": {"rack": "22"}}],
//!  "FlashBlades": [{"MgmtEndPoint": "10.0.0.6", "APIToken": "T-…", "NfsEndPoint": "10.0.1.6"}],
//!  "flashvol": {"namePrefix": "k8s", "tls": {"caFile": "/etc/pure/ca.pem"}, "block": {"fsType": "xfs"}},
//!  "node": {"…": "flex driver node settings, owned by the flex crate"}}
//! ```
//!
//! Precedence, lowest first: built-in defaults, the `"flashvol"` section, PSO's chart environment
//! variables (`PURE_*`, the way existing deployments pass settings), then program flags.
//!
//! This module reads the document and says what went wrong where; the parts live in:
//! - `endpoint`: [`Endpoint`] (and when two name the same array) and [`ApiToken`];
//! - `pso`: the `FlashArrays` and `FlashBlades` lists, keys matched as PSO's Go code did;
//! - `settings`: the `"flashvol"` section, its defaults and value checks;
//! - [`env`]: the one table of PSO's `PURE_*` variables, for the loader and the node installer.

mod endpoint;
pub mod env;
mod pso;
mod settings;

use std::path::{Path, PathBuf};

use serde_json::Value;

pub use endpoint::{ApiToken, Endpoint};
pub use pso::{Arrays, FlashArrayConfig, FlashBladeConfig};
pub use settings::{
    BlockSettings, ClientSettings, FileSettings, FsType, SanType, Settings, ca_certificates_in,
    parse_bool, parse_cidrs, validate_export_rules, validate_mount_options,
};

/// Where PSO mounted the Secret `pure-provisioner-secret` (key `pure.json`).
pub const DEFAULT_CONFIG_PATH: &str = "/etc/pure/pure.json";

/// What went wrong while reading the configuration. Every variant names the file and the key, or
/// the environment variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path} is not valid JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("config file {path}: {key}: {problem}")]
    Invalid {
        path: PathBuf,
        key: String,
        problem: String,
    },
    #[error("environment variable {var}={value:?}: {problem}")]
    Env {
        var: &'static str,
        value: String,
        problem: String,
    },
}

/// The whole configuration document.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where it was read from, for messages.
    pub path: PathBuf,
    pub arrays: Arrays,
    pub settings: Settings,
    /// The `"node"` section, parsed by the flex driver (it owns those keys).
    pub node: Option<Value>,
}

impl Config {
    /// The config path: the variable [`env::DISCOVERY_CONF`] names, if set, else
    /// [`DEFAULT_CONFIG_PATH`].
    pub fn default_path(env: impl Fn(&str) -> Option<String>) -> PathBuf {
        env(env::DISCOVERY_CONF)
            .filter(|p| !p.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH), PathBuf::from)
    }

    /// [`Config::default_path`] in words, for `--help`: `$<that variable>, else
    /// /etc/pure/pure.json`.
    pub fn default_path_help() -> String {
        format!("${}, else {DEFAULT_CONFIG_PATH}", env::DISCOVERY_CONF)
    }

    /// Reads and validates the file, then applies the `PURE_*` environment overrides.
    pub fn load(path: &Path, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Self::parse(path, &text)?;
        config.settings.apply_env(env)?;
        Ok(config)
    }

    /// Parses a document without touching the environment.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let doc: Value = serde_json::from_str(text).map_err(|source| ConfigError::Json {
            path: path.to_owned(),
            source,
        })?;
        let invalid = |(key, problem): (String, String)| ConfigError::Invalid {
            path: path.to_owned(),
            key,
            problem,
        };
        let Value::Object(top) = doc else {
            return Err(invalid((
                "(top level)".into(),
                "must be a JSON object".into(),
            )));
        };
        let mut arrays = Arrays::default();
        let mut settings = Settings::default();
        let mut node = None;
        for (key, value) in top {
            match key.to_ascii_lowercase().as_str() {
                "flasharrays" => {
                    arrays.flash_arrays = pso::parse_flash_arrays(&key, value).map_err(invalid)?
                }
                "flashblades" => {
                    arrays.flash_blades = pso::parse_flash_blades(&key, value).map_err(invalid)?
                }
                "flashvol" => settings.apply_section(value).map_err(|(at, problem)| {
                    let problem = if at.is_empty() {
                        problem
                    } else {
                        format!("{at}: {problem}")
                    };
                    invalid(("flashvol".into(), problem))
                })?,
                "node" => node = Some(value),
                _ => {
                    return Err(invalid((
                        key,
                        "unknown key (expected FlashArrays, FlashBlades, flashvol or node)".into(),
                    )));
                }
            }
        }
        arrays.check_unique().map_err(invalid)?;
        Ok(Self {
            path: path.to_owned(),
            arrays,
            settings,
            node,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/pure/pure.json"), text)
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    const PSO_FILE: &str = r#"{"FlashArrays":[{"MgmtEndPoint":"1.2.3.4","APIToken":"a-secret-token","Labels":{"rack":"22","zone":7}}],
        "FlashBlades":[{"MgmtEndPoint":"1.2.3.6","APIToken":"T-fb-secret","NfsEndPoint":"1.2.3.7","Labels":{"env":"dev"}}]}"#;

    #[test]
    fn reads_a_pso_pure_json_unchanged() {
        let c = parse(PSO_FILE).expect("valid");
        assert_eq!(c.arrays.flash_arrays.len(), 1);
        let fa = &c.arrays.flash_arrays[0];
        assert_eq!(fa.mgmt_endpoint.authority(), "1.2.3.4:443");
        assert_eq!(fa.api_token.expose(), "a-secret-token");
        assert_eq!(fa.labels["rack"], "22");
        assert_eq!(
            fa.labels["zone"], "7",
            "numbers from helm toJson become text"
        );
        let fb = &c.arrays.flash_blades[0];
        assert_eq!(fb.nfs_endpoint.as_deref(), Some("1.2.3.7"));
        assert_eq!(c.settings, Settings::default());
    }

    #[test]
    fn accepts_both_spellings_of_nfs_endpoint_and_any_key_case() {
        let c = parse(
            r#"{"flashblades":[{"mgmtendpoint":"fb","apitoken":"t","NFSEndPoint":"10.0.0.9"}]}"#,
        )
        .expect("valid");
        assert_eq!(
            c.arrays.flash_blades[0].nfs_endpoint.as_deref(),
            Some("10.0.0.9")
        );
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let err = parse(r#"{"FlashArrays":[{"MgmtEndPoint":"1.2.3.4"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/etc/pure/pure.json") && err.contains("FlashArrays[0].APIToken"),
            "{err}"
        );
        let err =
            parse(r#"{"FlashBlades":[{"MgmtEndPoint":"fb","APIToken":"t","NfsEndpont":"x"}]}"#)
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("FlashBlades[0].NfsEndpont") && err.contains("unknown key"),
            "{err}"
        );
        let err = parse(r#"{"FlashArrays":[{"MgmtEndPoint":"a","APIToken":"t"},{"MgmtEndPoint":"A:443","APIToken":"u"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("FlashArrays[1].MgmtEndPoint") && err.contains("twice"),
            "{err}"
        );
        let err = parse(r#"{"flashvol":{"block":{"fsType":"zfs"}}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("block.fsType") && err.contains("zfs"), "{err}");
        let err = parse(r#"{"flashvol":{"blok":{}}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("blok"), "{err}");
        assert!(matches!(parse("{"), Err(ConfigError::Json { .. })));
        assert!(matches!(parse("[]"), Err(ConfigError::Invalid { .. })));
    }

    #[test]
    fn tokens_never_show_in_debug_or_errors() {
        let c = parse(PSO_FILE).expect("valid");
        let dump = format!("{c:?}");
        assert!(
            !dump.contains("a-secret-token") && !dump.contains("T-fb-secret"),
            "{dump}"
        );
        let err = parse(r#"{"FlashArrays":[{"MgmtEndPoint":"a b","APIToken":"sekrit-123"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("sekrit-123"), "{err}");
    }

    #[test]
    fn flashvol_section_sets_our_settings() {
        let c = parse(
            r#"{"flashvol":{"namePrefix":"prod","tls":{"caFile":"/ca.pem","insecureSkipVerify":true},
                "connectTimeoutSeconds":2,"requestTimeoutSeconds":9,"retries":0,
                "block":{"fsType":"ext4","mkfsOptions":"-E nodiscard","mountOptions":"discard, noatime",
                         "sanType":"fc","iscsiAllowedCidrs":["10.0.0.0/24","fd00::/64"],
                         "iscsiLoginTimeoutSeconds":7,"preemptRwoAttachments":false},
                "file":{"exportRules":"10.0.0.0/24(rw,no_root_squash)  *(ro)","hardLimit":false,
                        "snapshotDirectory":true,"mountOptions":"vers=4.1"},
                "eradicateOnDelete":true}}"#,
        )
        .expect("valid");
        let s = &c.settings;
        assert_eq!(s.name_prefix, "prod");
        assert_eq!(s.client.ca_file.as_deref(), Some(Path::new("/ca.pem")));
        assert!(s.client.insecure_skip_verify);
        assert_eq!(s.client.connect_timeout, Duration::from_secs(2));
        assert_eq!(s.client.request_timeout, Duration::from_secs(9));
        assert_eq!(s.client.retries, 0);
        assert_eq!(s.block.fs_type, FsType::Ext4);
        assert_eq!(s.block.mount_options, "discard,noatime");
        assert_eq!(s.block.san_type, SanType::Fc);
        assert_eq!(s.block.iscsi_allowed_cidrs.len(), 2);
        assert_eq!(s.block.iscsi_login_timeout, Duration::from_secs(7));
        assert!(!s.block.preempt_rwo_attachments);
        assert_eq!(s.file.export_rules, "10.0.0.0/24(rw,no_root_squash) *(ro)");
        assert!(!s.file.hard_limit && s.file.snapshot_directory);
        assert!(s.eradicate_on_delete);
    }

    #[test]
    fn load_reads_the_file_and_default_path_honours_pso_env() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pure.json");
        std::fs::write(&path, PSO_FILE).expect("write");
        let c = Config::load(&path, no_env).expect("loads");
        assert_eq!(c.path, path);
        assert!(matches!(
            Config::load(&dir.path().join("missing.json"), no_env),
            Err(ConfigError::Read { .. })
        ));
        assert_eq!(
            Config::default_path(no_env),
            PathBuf::from(DEFAULT_CONFIG_PATH)
        );
        assert_eq!(
            Config::default_path(|_| Some("/x/pure.json".into())),
            PathBuf::from("/x/pure.json")
        );
        assert_eq!(
            Config::default_path(|name| (name == env::DISCOVERY_CONF).then(String::new)),
            PathBuf::from(DEFAULT_CONFIG_PATH),
            "an empty value means unset"
        );
        let help = Config::default_path_help();
        assert!(
            help.contains(env::DISCOVERY_CONF) && help.contains(DEFAULT_CONFIG_PATH),
            "{help}"
        );
    }

    #[test]
    fn load_applies_the_environment_and_names_a_bad_variable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pure.json");
        std::fs::write(&path, PSO_FILE).expect("write");
        let san = env::FLASHARRAY_SAN_TYPE.name;
        let c = Config::load(&path, |name| (name == san).then(|| "fc".to_owned())).expect("loads");
        assert_eq!(c.settings.block.san_type, SanType::Fc);
        let err = Config::load(&path, |name| (name == san).then(|| "nvme".to_owned()))
            .expect_err("refused")
            .to_string();
        assert!(err.contains(san) && err.contains("nvme"), "{err}");
    }
}
