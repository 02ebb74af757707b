//! Command line and `--config` file: turn flags or a JSON file into `SimSpec`s, validating every
//! value with a message that names the offending flag or field.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

use crate::faults::{FaultRule, Faults};
use crate::spec::{Kind, SimSpec, TlsFiles, wwn_problem};

#[derive(Debug, Parser)]
#[command(
    name = "flashvol-arraysim",
    about = "HTTPS simulator of Pure FlashArray and FlashBlade REST 1.x (for tests)",
    long_about = "HTTPS simulator of Pure FlashArray and FlashBlade REST 1.x, faithful enough for Pure's \
                  Python SDKs. State persists in the state dir; each FlashArray volume is a sparse file and \
                  each FlashBlade file system a directory there. An admin API is served under /_sim/ on the \
                  same listener (see tests/arraysim/README.md). On start, one JSON line per array is printed \
                  to stdout: {\"name\",\"kind\",\"endpoint\",\"ca_cert\",\"admin_url\"}.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Serve several arrays from one process, described in a JSON file (see README).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Simulate a FlashArray (REST 1.0-1.19).
    Flasharray {
        #[command(flatten)]
        common: CommonArgs,
        /// iSCSI portal (ip:port) advertised by GET port; repeat for several.
        #[arg(long = "iscsi-portal", value_name = "IP:PORT")]
        iscsi_portals: Vec<String>,
        /// FC target WWN advertised by GET port; repeat for several.
        #[arg(long = "fc-wwn", value_name = "WWN")]
        fc_wwns: Vec<String>,
    },
    /// Simulate a FlashBlade (REST 1.0-1.12).
    Flashblade {
        #[command(flatten)]
        common: CommonArgs,
        /// Data VIP (NFS endpoint) listed by GET network-interfaces; repeat for several.
        #[arg(long = "nfs-endpoint", value_name = "IP")]
        nfs_endpoints: Vec<IpAddr>,
        /// Management VIP listed by GET network-interfaces.
        #[arg(long = "management-vip", value_name = "IP")]
        management_vip: Option<IpAddr>,
    },
}

#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Address to serve HTTPS on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// API token clients must present (default sim-token-fa / sim-token-fb).
    #[arg(long = "api-token")]
    pub api_token: Option<String>,
    /// Directory for state.json, TLS material and backing data (created if missing).
    #[arg(long = "state-dir")]
    pub state_dir: PathBuf,
    /// Array name.
    #[arg(long)]
    pub name: Option<String>,
    /// Usable capacity: bytes or a number with K, M, G, T or P (default 10T).
    #[arg(long, value_parser = parse_capacity)]
    pub capacity: Option<u64>,
    /// Serve this PEM certificate chain instead of generating one (needs --tls-key).
    #[arg(long = "tls-cert", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long = "tls-key", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Extra subject alternative name for the generated certificate; repeat for several.
    #[arg(long = "tls-san")]
    pub tls_sans: Vec<String>,
    /// Fault: delay every API call by this many milliseconds.
    #[arg(long = "latency-ms", default_value_t = 0)]
    pub latency_ms: u64,
    /// Fault: answer this fraction (0-1) of API calls with HTTP 503.
    #[arg(long = "error-rate", default_value_t = 0.0)]
    pub error_rate: f64,
    /// Fault: close the connection without a reply for this fraction (0-1) of API calls.
    #[arg(long = "drop-rate", default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Fault: fail the next calls matching METHOD:PATH-GLOB:COUNT[:STATUS|drop]; repeatable.
    #[arg(long = "fail-next", value_parser = parse_rule)]
    pub fail_next: Vec<FaultRule>,
    /// Keep the state in memory only: never write state.json (for benchmarks; a restart loses
    /// every change).
    #[arg(long = "no-persist")]
    pub no_persist: bool,
}

fn parse_rule(text: &str) -> Result<FaultRule, String> {
    FaultRule::parse_cli(text).map_err(|e| e.to_string())
}

/// Bytes, or a number with a K/M/G/T/P suffix (powers of 2).
pub fn parse_capacity(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let invalid =
        || format!("invalid capacity {text:?}: use bytes or a number with K, M, G, T or P");
    let (digits, shift) = match text.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&text[..text.len() - 1], 10),
        Some('M') => (&text[..text.len() - 1], 20),
        Some('G') => (&text[..text.len() - 1], 30),
        Some('T') => (&text[..text.len() - 1], 40),
        Some('P') => (&text[..text.len() - 1], 50),
        Some(c) if c.is_ascii_digit() => (text, 0),
        _ => return Err(invalid()),
    };
    let value: u64 = digits.parse().map_err(|_| invalid())?;
    let bytes = value.checked_mul(1u64 << shift).ok_or_else(invalid)?;
    if bytes == 0 {
        Err(invalid())
    } else {
        Ok(bytes)
    }
}

impl Cli {
    /// The arrays to serve.
    pub fn specs(&self) -> Result<Vec<SimSpec>> {
        match (&self.config, &self.command) {
            (Some(path), None) => specs_from_config_file(path),
            (None, Some(command)) => Ok(vec![spec_from_command(command)?]),
            _ => bail!("give either a subcommand (flasharray | flashblade) or --config FILE"),
        }
    }
}

fn spec_from_command(command: &Command) -> Result<SimSpec> {
    let (mut spec, common) = match command {
        Command::Flasharray {
            common,
            iscsi_portals,
            fc_wwns,
        } => {
            let mut spec = SimSpec::flasharray(&common.state_dir);
            if !iscsi_portals.is_empty() {
                spec.iscsi_portals = iscsi_portals.clone();
            }
            if !fc_wwns.is_empty() {
                spec.fc_wwns = fc_wwns.clone();
            }
            (spec, common)
        }
        Command::Flashblade {
            common,
            nfs_endpoints,
            management_vip,
        } => {
            let mut spec = SimSpec::flashblade(&common.state_dir);
            if !nfs_endpoints.is_empty() {
                spec.data_vips = nfs_endpoints.clone();
            }
            if let Some(vip) = management_vip {
                spec.management_vip = *vip;
            }
            (spec, common)
        }
    };
    spec.listen = common.listen;
    if let Some(token) = &common.api_token {
        spec.api_token = token.clone();
    }
    if let Some(name) = &common.name {
        spec.name = name.clone();
    }
    if let Some(capacity) = common.capacity {
        spec.capacity = capacity;
    }
    if let (Some(cert), Some(key)) = (&common.tls_cert, &common.tls_key) {
        spec.tls_files = Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        });
    }
    spec.tls_sans = common.tls_sans.clone();
    spec.persist = !common.no_persist;
    spec.faults = Faults {
        latency_ms: common.latency_ms,
        error_rate: common.error_rate,
        drop_rate: common.drop_rate,
        rules: common.fail_next.clone(),
    };
    validate(&spec)?;
    Ok(spec)
}

/// `--config` file: `{"state_root": DIR?, "persist": BOOL?, "arrays": [ArrayConfig, ...]}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    /// Default parent of each array's state dir (`<state_root>/<name>`).
    state_root: Option<PathBuf>,
    /// Every array's [`SimSpec::persist`] (default true).
    persist: Option<bool>,
    arrays: Vec<ArrayConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArrayConfig {
    kind: Kind,
    name: String,
    listen: SocketAddr,
    api_token: Option<String>,
    capacity: Option<serde_json::Value>,
    state_dir: Option<PathBuf>,
    #[serde(default)]
    iscsi_portals: Vec<String>,
    #[serde(default)]
    fc_wwns: Vec<String>,
    #[serde(default)]
    data_vips: Vec<IpAddr>,
    management_vip: Option<IpAddr>,
    #[serde(default)]
    tls_sans: Vec<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    #[serde(default)]
    faults: Faults,
}

pub fn specs_from_config_file(path: &Path) -> Result<Vec<SimSpec>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config {}", path.display()))?;
    specs_from_config(&text, path.parent().unwrap_or(Path::new(".")))
        .with_context(|| format!("in config {}", path.display()))
}

fn specs_from_config(text: &str, base_dir: &Path) -> Result<Vec<SimSpec>> {
    let config: ConfigFile =
        serde_json::from_str(text).context("config is not valid JSON of the documented shape")?;
    anyhow::ensure!(!config.arrays.is_empty(), "config lists no arrays");
    let mut specs: Vec<SimSpec> = Vec::new();
    for array in config.arrays {
        let state_dir = match (&array.state_dir, &config.state_root) {
            (Some(dir), _) => base_dir.join(dir),
            (None, Some(root)) => base_dir.join(root).join(&array.name),
            (None, None) => bail!(
                "array {}: state_dir is required when no state_root is set",
                array.name
            ),
        };
        let mut spec = match array.kind {
            Kind::FlashArray => SimSpec::flasharray(state_dir),
            Kind::FlashBlade => SimSpec::flashblade(state_dir),
        };
        spec.name = array.name.clone();
        spec.listen = array.listen;
        if let Some(persist) = config.persist {
            spec.persist = persist;
        }
        if let Some(token) = array.api_token {
            spec.api_token = token;
        }
        if let Some(capacity) = array.capacity {
            spec.capacity = match capacity {
                serde_json::Value::Number(n) => n.as_u64().filter(|c| *c > 0),
                serde_json::Value::String(s) => parse_capacity(&s).ok(),
                _ => None,
            }
            .with_context(|| {
                format!(
                    "array {}: capacity must be bytes or a string like \"10T\"",
                    array.name
                )
            })?;
        }
        if !array.iscsi_portals.is_empty() {
            spec.iscsi_portals = array.iscsi_portals;
        }
        if !array.fc_wwns.is_empty() {
            spec.fc_wwns = array.fc_wwns;
        }
        if !array.data_vips.is_empty() {
            spec.data_vips = array.data_vips;
        }
        if let Some(vip) = array.management_vip {
            spec.management_vip = vip;
        }
        spec.tls_sans = array.tls_sans;
        spec.tls_files = match (array.tls_cert, array.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: base_dir.join(cert),
                key: base_dir.join(key),
            }),
            (None, None) => None,
            _ => bail!("array {}: tls_cert and tls_key go together", array.name),
        };
        spec.faults = array.faults;
        validate(&spec).with_context(|| format!("array {}", spec.name))?;
        if let Some(clash) = specs
            .iter()
            .find(|s| s.name == spec.name || s.state_dir == spec.state_dir)
        {
            bail!(
                "arrays {} and {} share a name or state dir",
                clash.name,
                spec.name
            );
        }
        specs.push(spec);
    }
    Ok(specs)
}

fn validate(spec: &SimSpec) -> Result<()> {
    anyhow::ensure!(!spec.name.is_empty(), "array name must not be empty");
    anyhow::ensure!(!spec.api_token.is_empty(), "API token must not be empty");
    spec.faults.validate()?;
    for portal in &spec.iscsi_portals {
        anyhow::ensure!(
            portal.parse::<SocketAddr>().is_ok(),
            "iSCSI portal {portal:?} is not ip:port (IPv6 as [addr]:port)"
        );
    }
    if let Some(problem) = spec.fc_wwns.iter().find_map(|wwn| wwn_problem(wwn)) {
        bail!(problem);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_accepts_suffixes_and_rejects_garbage() {
        assert_eq!(parse_capacity("10T"), Ok(10 << 40));
        assert_eq!(parse_capacity("512"), Ok(512));
        assert!(parse_capacity("lots").is_err());
        assert!(parse_capacity("0").is_err());
    }

    #[test]
    fn config_file_yields_one_spec_per_array_with_defaults() {
        let text = r#"{"state_root": "state", "arrays": [
            {"kind": "flasharray", "name": "fa1", "listen": "127.0.0.1:0", "capacity": "1T",
             "iscsi_portals": ["10.0.0.1:3260", "10.0.0.2:3260"]},
            {"kind": "flashblade", "name": "fb1", "listen": "127.0.0.1:0", "api_token": "T-1",
             "data_vips": ["10.0.0.10"], "faults": {"latency_ms": 5}}
        ]}"#;
        let specs = specs_from_config(text, Path::new("/etc/sim")).expect("valid config");
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].state_dir, PathBuf::from("/etc/sim/state/fa1"));
        assert_eq!(specs[0].capacity, 1 << 40);
        assert_eq!(specs[0].api_token, "sim-token-fa");
        assert_eq!(specs[0].iscsi_portals.len(), 2);
        assert_eq!(specs[1].api_token, "T-1");
        assert_eq!(specs[1].faults.latency_ms, 5);
        assert!(
            specs.iter().all(|s| s.persist),
            "state is persisted by default"
        );
        let in_memory = r#"{"state_root": "s", "persist": false, "arrays": [
            {"kind": "flasharray", "name": "fa1", "listen": "127.0.0.1:0"}]}"#;
        let specs = specs_from_config(in_memory, Path::new(".")).expect("valid config");
        assert!(!specs[0].persist);
    }

    #[test]
    fn config_errors_name_the_problem() {
        let no_dir =
            r#"{"arrays": [{"kind": "flasharray", "name": "fa1", "listen": "127.0.0.1:0"}]}"#;
        let error = format!(
            "{:#}",
            specs_from_config(no_dir, Path::new(".")).expect_err("must fail")
        );
        assert!(error.contains("state_dir is required"), "{error}");
        let bad_portal = r#"{"state_root": "s", "arrays": [{"kind": "flasharray", "name": "fa1",
            "listen": "127.0.0.1:0", "iscsi_portals": ["nope"]}]}"#;
        let error = format!(
            "{:#}",
            specs_from_config(bad_portal, Path::new(".")).expect_err("must fail")
        );
        assert!(error.contains("nope"), "{error}");
        let unknown = r#"{"arrays": [], "extra": 1}"#;
        assert!(specs_from_config(unknown, Path::new(".")).is_err());
    }
}
