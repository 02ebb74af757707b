//! What one simulated array is: its kind, identity, credentials, capacity, network personality and
//! where it keeps its state. Shared by the library API, the CLI flags and the `--config` file.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::faults::Faults;

/// Default capacity of a simulated array: 10 TiB.
pub const DEFAULT_CAPACITY: u64 = 10 << 40;

/// Which REST 1.x personality the simulator speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    FlashArray,
    FlashBlade,
}

impl Kind {
    pub fn default_token(self) -> &'static str {
        match self {
            Kind::FlashArray => "sim-token-fa",
            Kind::FlashBlade => "sim-token-fb",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::FlashArray => "flasharray",
            Kind::FlashBlade => "flashblade",
        }
    }
}

/// Everything needed to start one simulated array.
#[derive(Debug, Clone)]
pub struct SimSpec {
    pub kind: Kind,
    /// Array name (`array_name` on FlashArray, `name` on FlashBlade).
    pub name: String,
    /// The API token clients must present.
    pub api_token: String,
    /// Usable capacity in bytes reported by the space endpoints.
    pub capacity: u64,
    /// Where state, TLS material and backing files live; created if missing.
    pub state_dir: PathBuf,
    /// Address to serve HTTPS on; port 0 picks a free port (kept across `restart`).
    pub listen: SocketAddr,
    /// FlashArray iSCSI portals (`ip:port`), one `CTx.ETHy` port each.
    pub iscsi_portals: Vec<String>,
    /// FlashArray FC target WWNs (16 hex digits), one `CTx.FCy` port each.
    pub fc_wwns: Vec<String>,
    /// FlashBlade data VIPs (network interfaces with `services: ["data"]`).
    pub data_vips: Vec<IpAddr>,
    /// FlashBlade management VIP (network interface with `services: ["management"]`).
    pub management_vip: IpAddr,
    /// Extra subject alternative names for the generated certificate.
    pub tls_sans: Vec<String>,
    /// Serve this certificate chain and key (PEM) instead of generating one.
    pub tls_files: Option<TlsFiles>,
    /// Faults active from the first request on.
    pub faults: Faults,
    /// Write every change to `state.json` before answering (the default). Off, the state lives
    /// in memory only: a restarted simulator starts from the file as it was (or empty). For
    /// benchmarks, where the rewrite of the whole state per change costs the machine's shared
    /// CPUs what a real array spends on its own hardware.
    pub persist: bool,
}

/// A user-supplied certificate chain and private key, both PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why `wwn` cannot name an FC target port, if it cannot: the array lists WWNs as 16 hex digits.
pub fn wwn_problem(wwn: &str) -> Option<String> {
    (wwn.len() != 16 || !wwn.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| format!("FC WWN {wwn:?} must be 16 hex digits without colons"))
}

impl SimSpec {
    pub fn flasharray(state_dir: impl Into<PathBuf>) -> Self {
        Self::new(Kind::FlashArray, "sim-fa", state_dir.into())
    }

    pub fn flashblade(state_dir: impl Into<PathBuf>) -> Self {
        Self::new(Kind::FlashBlade, "sim-fb", state_dir.into())
    }

    fn new(kind: Kind, name: &str, state_dir: PathBuf) -> Self {
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        SimSpec {
            kind,
            name: name.to_string(),
            api_token: kind.default_token().to_string(),
            capacity: DEFAULT_CAPACITY,
            state_dir,
            listen: SocketAddr::new(loopback, 0),
            iscsi_portals: vec!["127.0.0.1:3260".to_string()],
            fc_wwns: vec![
                "524A937000000000".to_string(),
                "524A937000000001".to_string(),
            ],
            data_vips: vec![loopback],
            management_vip: loopback,
            tls_sans: Vec::new(),
            tls_files: None,
            faults: Faults::default(),
            persist: true,
        }
    }
}
