//! flashvol's own settings: the `"flashvol"` section of the document (camelCase keys, every key
//! optional, unknown keys refused), its defaults, and the checks every value passes, whether it
//! comes from the file or from PSO's `PURE_*` environment ([`super::env`] overlays it through
//! [`Settings::apply_section`], so both sources are validated by the same code).

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use serde_json::Value;

use super::pso::FieldError;

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

impl SanType {
    /// As PSO spells it (its chart value `flasharray.sanType`).
    pub fn as_str(self) -> &'static str {
        match self {
            SanType::Iscsi => "ISCSI",
            SanType::Fc => "FC",
        }
    }
}

impl fmt::Display for SanType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
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

/// How many certificates a CA file (`tls.caFile`) holds: the check the array clients apply when
/// they load it, for installers that want to refuse a bad CA before anything uses it.
pub fn ca_certificates_in(pem: &[u8]) -> Result<usize, String> {
    crate::client::transport::pem_certificates(pem).map(|certs| certs.len())
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

/// FlashArray (block) defaults. The `PURE_*` variable of each field is in [`super::env`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockSettings {
    pub fs_type: FsType,
    /// mkfs options. Split on white space.
    pub mkfs_options: String,
    /// Mount options, comma-separated.
    pub mount_options: String,
    pub san_type: SanType,
    /// Target portals to log in to; empty means all.
    pub iscsi_allowed_cidrs: Vec<IpNet>,
    pub iscsi_login_timeout: Duration,
    /// RWO fencing: take a volume over from another node's host connection.
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
    /// `.snapshot` directory on new file systems.
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
    /// Array-side name prefix (PSO's `namespace.pure`): names are `<prefix>-pvc-<uid>`.
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

/// The `"flashvol"` section as written; every key optional.
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

impl Settings {
    /// Overlays a `"flashvol"` section (or a fragment of one, such as `{"block": {"fsType":
    /// "ext4"}}`) on these settings: keys present replace values, keys absent keep them.
    ///
    /// On a bad value the error is (key relative to the section, e.g. `block.fsType`, problem);
    /// the key is empty when the section's shape is wrong (unknown key, wrong JSON type), which
    /// serde's own message then names.
    pub fn apply_section(&mut self, section: Value) -> Result<(), FieldError> {
        let raw: RawSettings =
            serde_json::from_value(section).map_err(|e| (String::new(), e.to_string()))?;
        if let Some(p) = raw.name_prefix {
            validate_prefix(&p).map_err(at("namePrefix"))?;
            self.name_prefix = p;
        }
        if let Some(ca) = raw.tls.ca_file {
            self.client.ca_file = Some(ca);
        }
        if let Some(v) = raw.tls.insecure_skip_verify {
            self.client.insecure_skip_verify = v;
        }
        if let Some(v) = raw.connect_timeout_seconds {
            self.client.connect_timeout = seconds(v).map_err(at("connectTimeoutSeconds"))?;
        }
        if let Some(v) = raw.request_timeout_seconds {
            self.client.request_timeout = seconds(v).map_err(at("requestTimeoutSeconds"))?;
        }
        if let Some(v) = raw.retries {
            if v > 10 {
                return Err(at("retries")(format!("{v} is more than 10")));
            }
            self.client.retries = v;
        }
        let (b, block) = (raw.block, &mut self.block);
        if let Some(v) = b.fs_type {
            block.fs_type = v.parse().map_err(at("block.fsType"))?;
        }
        if let Some(v) = b.mkfs_options {
            block.mkfs_options = v;
        }
        if let Some(v) = b.mount_options {
            block.mount_options = validate_mount_options(&v).map_err(at("block.mountOptions"))?;
        }
        if let Some(v) = b.san_type {
            block.san_type = v.parse().map_err(at("block.sanType"))?;
        }
        if let Some(v) = b.iscsi_allowed_cidrs {
            block.iscsi_allowed_cidrs =
                parse_cidrs(v.iter().map(String::as_str)).map_err(at("block.iscsiAllowedCidrs"))?;
        }
        if let Some(v) = b.iscsi_login_timeout_seconds {
            block.iscsi_login_timeout = seconds(v).map_err(at("block.iscsiLoginTimeoutSeconds"))?;
        }
        if let Some(v) = b.preempt_rwo_attachments {
            block.preempt_rwo_attachments = v;
        }
        let (f, file) = (raw.file, &mut self.file);
        if let Some(v) = f.export_rules {
            file.export_rules = validate_export_rules(&v).map_err(at("file.exportRules"))?;
        }
        if let Some(v) = f.hard_limit {
            file.hard_limit = v;
        }
        if let Some(v) = f.snapshot_directory {
            file.snapshot_directory = v;
        }
        if let Some(v) = f.mount_options {
            file.mount_options = validate_mount_options(&v).map_err(at("file.mountOptions"))?;
        }
        if let Some(v) = raw.eradicate_on_delete {
            self.eradicate_on_delete = v;
        }
        Ok(())
    }
}

/// Puts the section key on a value's problem.
fn at(key: &'static str) -> impl FnOnce(String) -> FieldError {
    move |problem| (key.to_owned(), problem)
}

fn seconds(value: u64) -> Result<Duration, String> {
    if value == 0 || value > 3600 {
        return Err(format!("{value} must be between 1 and 3600 seconds"));
    }
    Ok(Duration::from_secs(value))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_files_must_hold_pem_certificates() {
        assert!(ca_certificates_in(b"").is_err());
        assert!(ca_certificates_in(b"not a certificate").is_err());
        let err = ca_certificates_in(
            b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n",
        )
        .expect_err("garbage");
        assert!(err.contains("not a certificate"), "{err}");
    }

    fn section(text: &str) -> Result<Settings, FieldError> {
        let mut s = Settings::default();
        s.apply_section(serde_json::from_str(text).expect("json"))?;
        Ok(s)
    }

    #[test]
    fn a_section_overlays_only_the_keys_it_has() {
        let mut s = section(r#"{"block": {"fsType": "ext4"}, "retries": 0}"#).expect("valid");
        assert_eq!((s.block.fs_type, s.client.retries), (FsType::Ext4, 0));
        s.apply_section(serde_json::json!({"block": {"sanType": "fc"}}))
            .expect("valid");
        assert_eq!(
            (s.block.fs_type, s.block.san_type, s.client.retries),
            (FsType::Ext4, SanType::Fc, 0),
            "a second overlay keeps what the first set"
        );
        assert_eq!(section("{}").expect("empty"), Settings::default());
    }

    #[test]
    fn bad_values_name_their_key_relative_to_the_section() {
        for (text, key, problem) in [
            (r#"{"block": {"fsType": "zfs"}}"#, "block.fsType", "zfs"),
            (
                r#"{"connectTimeoutSeconds": 0}"#,
                "connectTimeoutSeconds",
                "3600",
            ),
            (r#"{"retries": 11}"#, "retries", "more than 10"),
            (r#"{"namePrefix": "-x"}"#, "namePrefix", "22"),
            (
                r#"{"file": {"exportRules": "*"}}"#,
                "file.exportRules",
                "client(options)",
            ),
            (
                r#"{"block": {"iscsiAllowedCidrs": ["x"]}}"#,
                "block.iscsiAllowedCidrs",
                "CIDR",
            ),
        ] {
            let (k, p) = section(text).expect_err(text);
            assert_eq!(k, key, "{text}");
            assert!(p.contains(problem), "{text}: {p}");
        }
        let (k, p) = section(r#"{"blok": {}}"#).expect_err("unknown key");
        assert!(k.is_empty() && p.contains("blok"), "{p}");
        let (k, p) = section(r#"{"retries": "two"}"#).expect_err("wrong type");
        assert!(k.is_empty() && p.contains("invalid type"), "{p}");
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

    #[test]
    fn booleans_and_cidrs_take_the_forms_pso_users_wrote() {
        for (text, value) in [("True", true), ("1", true), ("yes", true), ("off", false)] {
            assert_eq!(parse_bool(text), Some(value), "{text}");
        }
        assert_eq!(parse_bool("maybe"), None);
        let cidrs =
            parse_cidrs(["10.1.0.0/16, 10.2.0.1", "", "fd00::/64"].into_iter()).expect("valid");
        assert_eq!(cidrs.len(), 3);
        assert_eq!(
            cidrs[1].to_string(),
            "10.2.0.1/32",
            "a bare address is one host"
        );
    }
}
