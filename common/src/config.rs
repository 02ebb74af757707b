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
//! The array keys are PSO's. Like Go's `encoding/json`, which PSO used, they match
//! case-insensitively (`NfsEndPoint` and `NFSEndPoint` both work). Unlike PSO, an unknown key is an
//! error naming it: a misspelt `NfsEndpont` silently lost the NFS endpoint in PSO.
//!
//! Precedence, lowest first: built-in defaults, the `"flashvol"` section, PSO's chart environment
//! variables (`PURE_*`, the way existing deployments pass settings), then program flags.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Where PSO mounted the Secret `pure-provisioner-secret` (key `pure.json`).
pub const DEFAULT_CONFIG_PATH: &str = "/etc/pure/pure.json";

/// Environment variable PSO's chart used for the config path.
pub const ENV_DISCOVERY_CONF: &str = "PURE_DISCOVERY_CONF";

/// What went wrong while reading the configuration. Every variant names the file and the key.
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

/// An array API token. Never shown by `Debug` or `Display`; [`ApiToken::expose`] is the one way out,
/// used only to build the authentication request.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl ApiToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The secret itself, for the login request and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

impl fmt::Display for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A management endpoint: a host name, IPv4 or IPv6 address, with an optional port.
///
/// Accepted forms: `array1.example.com`, `10.0.0.5`, `10.0.0.5:8443`, `fd00::5`, `[fd00::5]`,
/// `[fd00::5]:8443`, each optionally prefixed by `https://`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    host: String,
    port: Option<u16>,
}

impl Endpoint {
    pub const DEFAULT_PORT: u16 = 443;

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port.unwrap_or(Self::DEFAULT_PORT)
    }

    /// `host:port`, with IPv6 addresses bracketed: what goes into a URL.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port())
        } else {
            format!("{}:{}", self.host, self.port())
        }
    }

    /// `https://host:port`.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.authority())
    }
}

impl fmt::Display for Endpoint {
    /// As the user wrote it in spirit: the port only when it is not 443.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.port, self.host.contains(':')) {
            (None, _) => f.write_str(&self.host),
            (Some(p), true) => write!(f, "[{}]:{p}", self.host),
            (Some(p), false) => write!(f, "{}:{p}", self.host),
        }
    }
}

impl FromStr for Endpoint {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let s = raw.trim();
        if s.starts_with("http://") {
            return Err("arrays are managed over HTTPS only; use https:// or no scheme".into());
        }
        let s = s
            .strip_prefix("https://")
            .unwrap_or(s)
            .trim_end_matches('/');
        if s.is_empty() {
            return Err("is empty".into());
        }
        if s.contains('/') || s.contains('@') || s.chars().any(char::is_whitespace) {
            return Err(format!("{raw:?} is not a host, IP address or host:port"));
        }
        let parse_port = |p: &str| {
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("{raw:?} has an invalid port {p:?}"))
        };
        if let Some(rest) = s.strip_prefix('[') {
            let (addr, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("{raw:?} has an unclosed '['"))?;
            let ip: std::net::Ipv6Addr = addr
                .parse()
                .map_err(|_| format!("{raw:?}: {addr:?} is not an IPv6 address"))?;
            let port = match after {
                "" => None,
                _ => {
                    Some(parse_port(after.strip_prefix(':').ok_or_else(|| {
                        format!("{raw:?}: expected ':port' after ']'")
                    })?)?)
                }
            };
            return Ok(Self {
                host: ip.to_string(),
                port,
            });
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Self {
                host: ip.to_string(),
                port: None,
            });
        }
        let (host, port) = match s.split_once(':') {
            Some((h, p)) => (h, Some(parse_port(p)?)),
            None => (s, None),
        };
        let valid_name = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !valid_name {
            return Err(format!("{raw:?} is not a valid host name or IP address"));
        }
        Ok(Self {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

/// One FlashArray from `pure.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlashArrayConfig {
    pub mgmt_endpoint: Endpoint,
    pub api_token: ApiToken,
    pub labels: BTreeMap<String, String>,
}

/// One FlashBlade from `pure.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlashBladeConfig {
    pub mgmt_endpoint: Endpoint,
    pub api_token: ApiToken,
    /// The data VIP to mount from. When absent, a data VIP is discovered from the array.
    pub nfs_endpoint: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// The arrays of `pure.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Arrays {
    pub flash_arrays: Vec<FlashArrayConfig>,
    pub flash_blades: Vec<FlashBladeConfig>,
}

/// File system types the driver formats FlashArray volumes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FsType {
    Xfs,
    Ext4,
    Ext3,
}

impl FsType {
    pub fn as_str(self) -> &'static str {
        match self {
            FsType::Xfs => "xfs",
            FsType::Ext4 => "ext4",
            FsType::Ext3 => "ext3",
        }
    }
}

impl fmt::Display for FsType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FsType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "xfs" => Ok(FsType::Xfs),
            "ext4" => Ok(FsType::Ext4),
            "ext3" => Ok(FsType::Ext3),
            other => Err(format!(
                "unsupported file system type {other:?} (supported: xfs, ext4, ext3)"
            )),
        }
    }
}

/// How FlashArray volumes reach the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SanType {
    Iscsi,
    Fc,
}

impl FromStr for SanType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "ISCSI" => Ok(SanType::Iscsi),
            "FC" => Ok(SanType::Fc),
            other => Err(format!("unknown SAN type {other:?} (expected ISCSI or FC)")),
        }
    }
}

/// TLS and timeouts for the array clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// PEM file with the CA (or the arrays' self-signed certificates) to trust.
    /// Without it the platform's web PKI roots are used.
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification. Off by default; logged as a warning when on.
    pub insecure_skip_verify: bool,
    pub connect_timeout: Duration,
    /// Deadline for one whole request (connect, send, receive).
    pub request_timeout: Duration,
    /// Extra attempts for idempotent calls after a transport error or a 5xx.
    pub retries: u32,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            ca_file: None,
            insecure_skip_verify: false,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            retries: 2,
        }
    }
}

/// FlashArray (block) defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockSettings {
    /// `PURE_DEFAULT_BLOCK_FS_TYPE`.
    pub fs_type: FsType,
    /// mkfs options, `PURE_DEFAULT_BLOCK_FS_OPT`. Split on white space.
    pub mkfs_options: String,
    /// Mount options, comma-separated, `PURE_DEFAULT_BLOCK_MNT_OPT`.
    pub mount_options: String,
    /// `PURE_FLASHARRAY_SAN_TYPE`.
    pub san_type: SanType,
    /// Target portals to log in to; empty means all. `PURE_ISCSI_ALLOWED_CIDRS`.
    pub iscsi_allowed_cidrs: Vec<IpNet>,
    /// `PURE_ISCSI_LOGIN_TIMEOUT`.
    pub iscsi_login_timeout: Duration,
    /// RWO fencing, `PURE_PREEMPT_RWO_ATTACHMENTS_DEFAULT`.
    pub preempt_rwo_attachments: bool,
}

impl Default for BlockSettings {
    fn default() -> Self {
        Self {
            fs_type: FsType::Xfs,
            mkfs_options: "-q".into(),
            mount_options: String::new(),
            san_type: SanType::Iscsi,
            iscsi_allowed_cidrs: Vec::new(),
            iscsi_login_timeout: Duration::from_secs(20),
            preempt_rwo_attachments: true,
        }
    }
}

/// FlashBlade (file) defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSettings {
    /// NFS export rules of new file systems. PSO 2.x hard-coded this value.
    pub export_rules: String,
    /// Enforce the PVC size as a hard quota (PSO 2.x did not).
    pub hard_limit: bool,
    /// `.snapshot` directory on new file systems, `PURE_DEFAULT_ENABLE_FB_NFS_SNAPSHOT`.
    pub snapshot_directory: bool,
    /// NFS mount options, comma-separated.
    pub mount_options: String,
}

impl Default for FileSettings {
    fn default() -> Self {
        Self {
            export_rules: "*(rw,no_root_squash)".into(),
            hard_limit: true,
            snapshot_directory: false,
            mount_options: String::new(),
        }
    }
}

/// flashvol's own settings (the `"flashvol"` section), after environment overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Array-side name prefix (`namespace.pure`, `PURE_K8S_NAMESPACE`): names are `<prefix>-pvc-<uid>`.
    pub name_prefix: String,
    pub client: ClientSettings,
    pub block: BlockSettings,
    pub file: FileSettings,
    /// Eradicate on delete instead of leaving the volume recoverable on the array for 24 h.
    pub eradicate_on_delete: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            name_prefix: "k8s".into(),
            client: ClientSettings::default(),
            block: BlockSettings::default(),
            file: FileSettings::default(),
            eradicate_on_delete: false,
        }
    }
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
    /// The config path: `PURE_DISCOVERY_CONF` if set, else [`DEFAULT_CONFIG_PATH`].
    pub fn default_path(env: impl Fn(&str) -> Option<String>) -> PathBuf {
        env(ENV_DISCOVERY_CONF)
            .filter(|p| !p.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH), PathBuf::from)
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
        let invalid = |key: &str, problem: String| ConfigError::Invalid {
            path: path.to_owned(),
            key: key.to_owned(),
            problem,
        };
        let Value::Object(top) = doc else {
            return Err(invalid("(top level)", "must be a JSON object".into()));
        };
        let mut arrays = Arrays::default();
        let mut settings = Settings::default();
        let mut node = None;
        for (key, value) in top {
            match key.to_ascii_lowercase().as_str() {
                "flasharrays" => {
                    arrays.flash_arrays = parse_list(&key, value, parse_flash_array)
                        .map_err(|(k, p)| invalid(&k, p))?
                }
                "flashblades" => {
                    arrays.flash_blades = parse_list(&key, value, parse_flash_blade)
                        .map_err(|(k, p)| invalid(&k, p))?
                }
                "flashvol" => {
                    settings =
                        parse_settings(value).map_err(|e| invalid("flashvol", e.to_string()))?
                }
                "node" => node = Some(value),
                _ => {
                    return Err(invalid(
                        &key,
                        "unknown key (expected FlashArrays, FlashBlades, flashvol or node)".into(),
                    ));
                }
            }
        }
        check_unique(
            arrays.flash_arrays.iter().map(|a| &a.mgmt_endpoint),
            "FlashArrays",
        )
        .map_err(|(k, p)| invalid(&k, p))?;
        check_unique(
            arrays.flash_blades.iter().map(|a| &a.mgmt_endpoint),
            "FlashBlades",
        )
        .map_err(|(k, p)| invalid(&k, p))?;
        validate_prefix(&settings.name_prefix).map_err(|p| invalid("flashvol.namePrefix", p))?;
        Ok(Self {
            path: path.to_owned(),
            arrays,
            settings,
            node,
        })
    }
}

type FieldError = (String, String);

fn parse_list<T>(
    key: &str,
    value: Value,
    parse_one: fn(&str, Map<String, Value>) -> Result<T, FieldError>,
) -> Result<Vec<T>, FieldError> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                let at = format!("{key}[{i}]");
                match item {
                    Value::Object(fields) => parse_one(&at, fields),
                    _ => Err((at, "must be an object".into())),
                }
            })
            .collect(),
        _ => Err((key.to_owned(), "must be a list".into())),
    }
}

/// Takes the fields of one array entry, matching names case-insensitively as Go did.
struct Fields {
    at: String,
    fields: Map<String, Value>,
}

impl Fields {
    fn new(at: &str, fields: Map<String, Value>, known: &[&str]) -> Result<Self, FieldError> {
        for key in fields.keys() {
            if !known.iter().any(|k| k.eq_ignore_ascii_case(key)) {
                return Err((
                    format!("{at}.{key}"),
                    format!("unknown key (expected one of {})", known.join(", ")),
                ));
            }
        }
        Ok(Self {
            at: at.to_owned(),
            fields,
        })
    }

    fn take(&mut self, name: &str) -> Option<(String, Value)> {
        let key = self
            .fields
            .keys()
            .find(|k| k.eq_ignore_ascii_case(name))?
            .clone();
        self.fields.remove_entry(&key)
    }

    fn string(&mut self, name: &str, required: bool) -> Result<Option<String>, FieldError> {
        match self.take(name) {
            None | Some((_, Value::Null)) if required => {
                Err((format!("{}.{name}", self.at), "is required".into()))
            }
            None | Some((_, Value::Null)) => Ok(None),
            Some((key, Value::String(s))) => {
                if s.trim().is_empty() && required {
                    Err((format!("{}.{key}", self.at), "must not be empty".into()))
                } else {
                    Ok(Some(s.trim().to_owned()))
                }
            }
            Some((key, _)) => Err((format!("{}.{key}", self.at), "must be a string".into())),
        }
    }

    fn endpoint(&mut self, name: &str) -> Result<Endpoint, FieldError> {
        let raw = self.string(name, true)?.unwrap_or_default();
        raw.parse()
            .map_err(|problem| (format!("{}.{name}", self.at), problem))
    }

    /// PSO's Labels are a map; Helm's `toJson` turns `rack: 22` into a number, so scalars are
    /// accepted and kept as their text.
    fn labels(&mut self) -> Result<BTreeMap<String, String>, FieldError> {
        let Some((key, value)) = self.take("Labels") else {
            return Ok(BTreeMap::new());
        };
        let at = format!("{}.{key}", self.at);
        match value {
            Value::Null => Ok(BTreeMap::new()),
            Value::Object(map) => map
                .into_iter()
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s,
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => return Err((format!("{at}.{k}"), "must be a string".into())),
                    };
                    if k.is_empty() {
                        return Err((at.clone(), "label names must not be empty".into()));
                    }
                    Ok((k, text))
                })
                .collect(),
            _ => Err((at, "must be an object of label names to values".into())),
        }
    }
}

fn parse_flash_array(at: &str, fields: Map<String, Value>) -> Result<FlashArrayConfig, FieldError> {
    let mut f = Fields::new(at, fields, &["MgmtEndPoint", "APIToken", "Labels"])?;
    Ok(FlashArrayConfig {
        mgmt_endpoint: f.endpoint("MgmtEndPoint")?,
        api_token: ApiToken::new(f.string("APIToken", true)?.unwrap_or_default()),
        labels: f.labels()?,
    })
}

fn parse_flash_blade(at: &str, fields: Map<String, Value>) -> Result<FlashBladeConfig, FieldError> {
    let mut f = Fields::new(
        at,
        fields,
        &["MgmtEndPoint", "APIToken", "NfsEndPoint", "Labels"],
    )?;
    let mgmt_endpoint = f.endpoint("MgmtEndPoint")?;
    let api_token = ApiToken::new(f.string("APIToken", true)?.unwrap_or_default());
    let nfs_endpoint = f
        .string("NfsEndPoint", false)?
        .filter(|s| !s.is_empty())
        .map(|raw| {
            let ep: Endpoint = raw.parse().map_err(|p| (format!("{at}.NfsEndPoint"), p))?;
            if ep.port.is_some() {
                return Err((
                    format!("{at}.NfsEndPoint"),
                    format!("{raw:?}: give the data VIP without a port"),
                ));
            }
            Ok(ep.host)
        })
        .transpose()?;
    Ok(FlashBladeConfig {
        mgmt_endpoint,
        api_token,
        nfs_endpoint,
        labels: f.labels()?,
    })
}

fn check_unique<'a>(
    endpoints: impl Iterator<Item = &'a Endpoint>,
    list: &str,
) -> Result<(), FieldError> {
    let mut seen = std::collections::BTreeSet::new();
    for (i, ep) in endpoints.enumerate() {
        if !seen.insert(ep.authority()) {
            return Err((
                format!("{list}[{i}].MgmtEndPoint"),
                format!("{ep} is listed twice"),
            ));
        }
    }
    Ok(())
}

/// Array object names are at most 63 characters; `<prefix>-pvc-<36-char uid>` leaves 22.
fn validate_prefix(prefix: &str) -> Result<(), String> {
    let ok_chars = prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let starts_ok = prefix
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if prefix.is_empty() || prefix.len() > 22 || !ok_chars || !starts_ok {
        return Err(format!(
            "{prefix:?} must be 1 to 22 letters, digits, '-' or '_', starting with a letter or digit"
        ));
    }
    Ok(())
}

/// The `"flashvol"` section as written in the file; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct RawSettings {
    name_prefix: Option<String>,
    tls: RawTls,
    connect_timeout_seconds: Option<u64>,
    request_timeout_seconds: Option<u64>,
    retries: Option<u32>,
    block: RawBlock,
    file: RawFile,
    eradicate_on_delete: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct RawTls {
    ca_file: Option<PathBuf>,
    insecure_skip_verify: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct RawBlock {
    fs_type: Option<String>,
    mkfs_options: Option<String>,
    mount_options: Option<String>,
    san_type: Option<String>,
    iscsi_allowed_cidrs: Option<Vec<String>>,
    iscsi_login_timeout_seconds: Option<u64>,
    preempt_rwo_attachments: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct RawFile {
    export_rules: Option<String>,
    hard_limit: Option<bool>,
    snapshot_directory: Option<bool>,
    mount_options: Option<String>,
}

fn seconds(key: &str, value: u64) -> Result<Duration, String> {
    if value == 0 || value > 3600 {
        return Err(format!("{key}: {value} must be between 1 and 3600 seconds"));
    }
    Ok(Duration::from_secs(value))
}

fn parse_settings(value: Value) -> Result<Settings, String> {
    let raw: RawSettings = serde_json::from_value(value).map_err(|e| e.to_string())?;
    let mut s = Settings::default();
    if let Some(p) = raw.name_prefix {
        validate_prefix(&p).map_err(|e| format!("namePrefix: {e}"))?;
        s.name_prefix = p;
    }
    if let Some(ca) = raw.tls.ca_file {
        s.client.ca_file = Some(ca);
    }
    if let Some(v) = raw.tls.insecure_skip_verify {
        s.client.insecure_skip_verify = v;
    }
    if let Some(v) = raw.connect_timeout_seconds {
        s.client.connect_timeout = seconds("connectTimeoutSeconds", v)?;
    }
    if let Some(v) = raw.request_timeout_seconds {
        s.client.request_timeout = seconds("requestTimeoutSeconds", v)?;
    }
    if let Some(v) = raw.retries {
        if v > 10 {
            return Err(format!("retries: {v} is more than 10"));
        }
        s.client.retries = v;
    }
    let b = raw.block;
    if let Some(v) = b.fs_type {
        s.block.fs_type = v.parse().map_err(|e| format!("block.fsType: {e}"))?;
    }
    if let Some(v) = b.mkfs_options {
        s.block.mkfs_options = v;
    }
    if let Some(v) = b.mount_options {
        s.block.mount_options =
            validate_mount_options(&v).map_err(|e| format!("block.mountOptions: {e}"))?;
    }
    if let Some(v) = b.san_type {
        s.block.san_type = v.parse().map_err(|e| format!("block.sanType: {e}"))?;
    }
    if let Some(v) = b.iscsi_allowed_cidrs {
        s.block.iscsi_allowed_cidrs = parse_cidrs(v.iter().map(String::as_str))
            .map_err(|e| format!("block.iscsiAllowedCidrs: {e}"))?;
    }
    if let Some(v) = b.iscsi_login_timeout_seconds {
        s.block.iscsi_login_timeout = seconds("block.iscsiLoginTimeoutSeconds", v)?;
    }
    if let Some(v) = b.preempt_rwo_attachments {
        s.block.preempt_rwo_attachments = v;
    }
    let f = raw.file;
    if let Some(v) = f.export_rules {
        s.file.export_rules =
            validate_export_rules(&v).map_err(|e| format!("file.exportRules: {e}"))?;
    }
    if let Some(v) = f.hard_limit {
        s.file.hard_limit = v;
    }
    if let Some(v) = f.snapshot_directory {
        s.file.snapshot_directory = v;
    }
    if let Some(v) = f.mount_options {
        s.file.mount_options =
            validate_mount_options(&v).map_err(|e| format!("file.mountOptions: {e}"))?;
    }
    if let Some(v) = raw.eradicate_on_delete {
        s.eradicate_on_delete = v;
    }
    Ok(s)
}

/// Comma-separated CIDRs (a bare address means that one host).
pub fn parse_cidrs<'a>(items: impl Iterator<Item = &'a str>) -> Result<Vec<IpNet>, String> {
    items
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{s:?} is not a CIDR such as 10.0.0.0/24"))
        })
        .collect()
}

/// Mount options are a comma-separated list of `name` or `name=value`, as `mount -o` takes them.
/// Returns them normalised (no spaces, no empty items).
pub fn validate_mount_options(raw: &str) -> Result<String, String> {
    let mut out = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = item
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\'');
        if bad || item.starts_with('=') {
            return Err(format!("{item:?} is not a mount option"));
        }
        out.push(item);
    }
    Ok(out.join(","))
}

/// FlashBlade NFS export rules: space-separated `client(options)` entries, e.g.
/// `10.0.0.0/24(rw,no_root_squash) *(ro)`.
pub fn validate_export_rules(raw: &str) -> Result<String, String> {
    let rules: Vec<&str> = raw.split_whitespace().collect();
    if rules.is_empty() {
        return Err(
            "must not be empty (use \"*(rw,no_root_squash)\" to export to everyone)".into(),
        );
    }
    for rule in &rules {
        let well_formed = rule.split_once('(').is_some_and(|(client, opts)| {
            !client.is_empty()
                && opts.ends_with(')')
                && !opts[..opts.len() - 1].contains(['(', ')'])
        });
        if !well_formed {
            return Err(format!("{rule:?} is not of the form client(options)"));
        }
    }
    Ok(rules.join(" "))
}

/// Booleans as PSO's chart wrote them: `"true"`/`"false"` in any case, also `1`/`0`, `yes`/`no`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

impl Settings {
    /// Applies PSO's chart environment variables. Empty values mean "not set", as the chart
    /// renders an unset value as an empty string.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let get = |var: &'static str| env(var).filter(|v| !v.trim().is_empty()).map(|v| (var, v));
        let bad = |var: &'static str, value: &str, problem: String| ConfigError::Env {
            var,
            value: value.to_owned(),
            problem,
        };
        if let Some((var, v)) = get("PURE_K8S_NAMESPACE") {
            validate_prefix(v.trim()).map_err(|p| bad(var, &v, p))?;
            self.name_prefix = v.trim().to_owned();
        }
        if let Some((var, v)) = get("PURE_DEFAULT_BLOCK_FS_TYPE") {
            self.block.fs_type = v.parse().map_err(|p| bad(var, &v, p))?;
        }
        if let Some((_, v)) = get("PURE_DEFAULT_BLOCK_FS_OPT") {
            self.block.mkfs_options = v;
        }
        if let Some((var, v)) = get("PURE_DEFAULT_BLOCK_MNT_OPT") {
            self.block.mount_options = validate_mount_options(&v).map_err(|p| bad(var, &v, p))?;
        }
        if let Some((var, v)) = get("PURE_FLASHARRAY_SAN_TYPE") {
            self.block.san_type = v.parse().map_err(|p| bad(var, &v, p))?;
        }
        if let Some((var, v)) = get("PURE_ISCSI_ALLOWED_CIDRS") {
            self.block.iscsi_allowed_cidrs =
                parse_cidrs(std::iter::once(v.as_str())).map_err(|p| bad(var, &v, p))?;
        }
        if let Some((var, v)) = get("PURE_ISCSI_LOGIN_TIMEOUT") {
            let secs = v
                .trim()
                .parse::<u64>()
                .map_err(|_| bad(var, &v, "must be a whole number of seconds".into()))?;
            self.block.iscsi_login_timeout = seconds(var, secs).map_err(|p| bad(var, &v, p))?;
        }
        if let Some((var, v)) = get("PURE_PREEMPT_RWO_ATTACHMENTS_DEFAULT") {
            self.block.preempt_rwo_attachments =
                parse_bool(&v).ok_or_else(|| bad(var, &v, "must be true or false".into()))?;
        }
        if let Some((var, v)) = get("PURE_DEFAULT_ENABLE_FB_NFS_SNAPSHOT") {
            self.file.snapshot_directory =
                parse_bool(&v).ok_or_else(|| bad(var, &v, "must be true or false".into()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
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
    fn endpoint_forms() {
        for (raw, authority) in [
            ("array1.example.com", "array1.example.com:443"),
            ("10.0.0.5:8443", "10.0.0.5:8443"),
            ("fd00::5", "[fd00::5]:443"),
            ("[fd00::5]", "[fd00::5]:443"),
            ("[fd00::5]:8443", "[fd00::5]:8443"),
            ("https://Array1:444/", "array1:444"),
        ] {
            let ep: Endpoint = raw.parse().unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(ep.authority(), authority, "{raw}");
        }
        for bad in [
            "",
            "http://a",
            "a:0",
            "a:99999",
            "[fd00::5",
            "a b",
            "a/b",
            "-a",
            "[1.2.3.4]",
        ] {
            assert!(
                bad.parse::<Endpoint>().is_err(),
                "{bad:?} should be refused"
            );
        }
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
    fn pso_environment_variables_override_the_file() {
        let env = |k: &str| {
            Some(
                match k {
                    "PURE_K8S_NAMESPACE" => "team1",
                    "PURE_DEFAULT_BLOCK_FS_TYPE" => "ext4",
                    "PURE_DEFAULT_BLOCK_FS_OPT" => "-F",
                    "PURE_DEFAULT_BLOCK_MNT_OPT" => "discard",
                    "PURE_FLASHARRAY_SAN_TYPE" => "fc",
                    "PURE_ISCSI_ALLOWED_CIDRS" => "10.1.0.0/16,10.2.0.1",
                    "PURE_ISCSI_LOGIN_TIMEOUT" => "30",
                    "PURE_PREEMPT_RWO_ATTACHMENTS_DEFAULT" => "False",
                    "PURE_DEFAULT_ENABLE_FB_NFS_SNAPSHOT" => "true",
                    _ => return None,
                }
                .to_owned(),
            )
        };
        let mut s = Settings::default();
        s.apply_env(env).expect("valid env");
        assert_eq!(s.name_prefix, "team1");
        assert_eq!(s.block.fs_type, FsType::Ext4);
        assert_eq!(s.block.mkfs_options, "-F");
        assert_eq!(s.block.mount_options, "discard");
        assert_eq!(s.block.san_type, SanType::Fc);
        assert_eq!(s.block.iscsi_allowed_cidrs.len(), 2);
        assert_eq!(s.block.iscsi_login_timeout, Duration::from_secs(30));
        assert!(!s.block.preempt_rwo_attachments);
        assert!(s.file.snapshot_directory);

        let mut s = Settings::default();
        s.apply_env(|_| Some(String::new()))
            .expect("empty values mean unset");
        assert_eq!(s, Settings::default());

        let err = Settings::default()
            .apply_env(|k| (k == "PURE_ISCSI_LOGIN_TIMEOUT").then(|| "soon".to_owned()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("PURE_ISCSI_LOGIN_TIMEOUT") && err.contains("soon"),
            "{err}"
        );
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
    }

    #[test]
    fn name_prefix_must_leave_room_in_63_character_names() {
        assert!(validate_prefix("k8s").is_ok());
        assert!(validate_prefix(&"a".repeat(22)).is_ok());
        for bad in ["", "-k8s", "k8s.x", &"a".repeat(23)] {
            assert!(validate_prefix(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn export_rules_and_mount_options_are_checked() {
        assert!(validate_export_rules("").is_err());
        assert!(validate_export_rules("10.0.0.0/24").is_err());
        assert!(validate_export_rules("*(rw").is_err());
        assert!(validate_mount_options("a b").is_err());
        assert_eq!(validate_mount_options(" a , b=1 ,").as_deref(), Ok("a,b=1"));
    }
}
