//! Arranging and inspecting the simulated arrays around a test: volumes and file systems created
//! as the provisioner would, other nodes' hosts, connections, the admin API and injected latency.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use flashvol_arraysim::{Faults, SimHandle};
use flashvol_common::config::{ApiToken, ClientSettings, FlashArrayConfig};
use flashvol_common::flasharray::{FlashArray, Initiators, Qos};
use serde_json::Value;

use super::{Fabric, GIB};

impl Fabric {
    pub fn client_settings(&self) -> ClientSettings {
        ClientSettings {
            ca_file: Some(self.ca_bundle.clone()),
            ..ClientSettings::default()
        }
    }

    /// A client for arranging and inspecting the FlashArray simulator.
    pub fn fa_client(&self) -> FlashArray {
        let config = FlashArrayConfig {
            mgmt_endpoint: self.fa.endpoint().parse().unwrap(),
            api_token: ApiToken::new("sim-token-fa"),
            labels: BTreeMap::new(),
        };
        FlashArray::new(&config, &self.client_settings()).unwrap()
    }

    /// Creates `k8s-<pv>` on the FlashArray; returns its serial.
    pub fn create_block_volume(&self, pv: &str, size: u64) -> String {
        self.fa_client()
            .create_volume(&format!("k8s-{pv}"), size, &Qos::default())
            .expect("volume created")
            .serial
    }

    /// A client for arranging and inspecting the FlashBlade simulator.
    pub fn fb_client(&self) -> flashvol_common::flashblade::FlashBlade {
        let config = flashvol_common::config::FlashBladeConfig {
            mgmt_endpoint: self.fb.endpoint().parse().unwrap(),
            api_token: ApiToken::new("sim-token-fb"),
            nfs_endpoint: None,
            labels: BTreeMap::new(),
        };
        flashvol_common::flashblade::FlashBlade::new(&config, &self.client_settings()).unwrap()
    }

    /// The size of `k8s-<pv>` on the FlashArray.
    pub fn block_volume_size(&self, pv: &str) -> u64 {
        self.fa_client()
            .get_volume(&format!("k8s-{pv}"))
            .expect("volume")
            .size
    }

    /// Grows `k8s-<pv>` on the FlashArray, as the provisioner does after a claim grew.
    pub fn grow_block_volume(&self, pv: &str, size: u64) {
        self.fa_client()
            .extend_volume(&format!("k8s-{pv}"), size)
            .expect("volume grown");
    }

    /// Creates `k8s-<pv>` on the FlashBlade through its REST API.
    pub fn create_file_system(&self, pv: &str) {
        use flashvol_common::flashblade::NewFileSystem;
        self.fb_client()
            .create_file_system(&NewFileSystem {
                name: format!("k8s-{pv}"),
                provisioned: GIB,
                hard_limit: true,
                snapshot_directory: false,
                nfs_rules: "*(rw,no_root_squash)".into(),
                nfs_v3: true,
                nfs_v4_1: false,
            })
            .expect("file system created");
    }

    /// A host on the FlashArray for another node, connected to `volume`.
    pub fn connect_other_host(&self, host: &str, iqn: &str, volume: &str) {
        let fa = self.fa_client();
        let initiators = Initiators {
            iqns: vec![iqn.to_owned()],
            ..Initiators::default()
        };
        fa.create_host(host, &initiators).expect("host created");
        fa.connect_host(host, volume, None).expect("connected");
    }

    /// Hosts connected to `volume`, by name.
    pub fn hosts_connected_to(&self, volume: &str) -> Vec<String> {
        let mut hosts: Vec<String> = self
            .fa_client()
            .list_volume_connections(volume)
            .expect("connections")
            .into_iter()
            .map(|c| c.host)
            .collect();
        hosts.sort();
        hosts
    }

    /// The simulator's `/_sim/<path>` answer.
    pub fn admin_get(&self, sim: &SimHandle, path: &str) -> Value {
        // One CA per call: curl (OpenSSL) gets confused by two CAs with the same subject.
        let out = Command::new("curl")
            .args(["-fsS", "--max-time", "10", "--cacert"])
            .arg(sim.ca_cert_path())
            .arg(format!("{}/{path}", sim.admin_url()))
            .output()
            .expect("curl runs");
        assert!(
            out.status.success(),
            "GET {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("admin JSON")
    }

    pub fn set_fa_latency(&self, latency: Duration) {
        self.fa.set_faults(Faults {
            latency_ms: u64::try_from(latency.as_millis()).unwrap(),
            ..Faults::default()
        });
    }
}
