//! Reconcile tests: the real reconcilers against the fake Kubernetes API ([`crate::tests::fake_kube`])
//! and in-process array simulators (`flashvol-arraysim`) reached through the real clients.
//!
//! This file holds the harness; the tests are in `provisioning`, `replication` (classes with a
//! protection group), `replica` (restores of replicated volumes), `sources` (restores, clones,
//! adoption), `deleting` (including the orphan collector), `resizing` (bound claims that grew)
//! and `watching` (the controllers fed by watches).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use flashvol_arraysim::{SimHandle, SimSpec};
use flashvol_common::config::Config;
use flashvol_common::flasharray::{FlashArray, Qos};
use flashvol_common::flashblade::FlashBlade;
use flashvol_common::options;
use http::Method;
use k8s_openapi::api::core::v1::{Event, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

mod deleting;
mod monitoring;
mod provisioning;
mod replica;
mod replication;
mod resizing;
mod sources;
mod watching;

use crate::arrays::{ArraySet, Lookup};
use crate::reconcile::context::{Context, Identity, ManualClock};
use crate::reconcile::delete::{VolumeOutcome, reclaim_volume};
use crate::reconcile::events::Recorder;
use crate::reconcile::orphans::{OrphanState, collect_once};
use crate::reconcile::provision::{ClaimOutcome, provision_claim};
use crate::serve::metrics::Metrics;
use crate::tests::fake_kube::FakeKube;
use crate::tests::fixtures::{class, pvc};

/// One simulated array to start.
pub(crate) struct ArraySpec {
    block: bool,
    capacity: u64,
    labels: &'static [(&'static str, &'static str)],
}

pub(crate) fn fa(capacity: u64, labels: &'static [(&'static str, &'static str)]) -> ArraySpec {
    ArraySpec {
        block: true,
        capacity,
        labels,
    }
}

pub(crate) fn fb(capacity: u64, labels: &'static [(&'static str, &'static str)]) -> ArraySpec {
    ArraySpec {
        block: false,
        capacity,
        labels,
    }
}

pub(crate) struct Harness {
    pub(crate) fake: FakeKube,
    pub(crate) sims: Vec<SimHandle>,
    pub(crate) config: Config,
    pub(crate) clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub(crate) fn start(arrays: &[ArraySpec], flashvol_section: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut sims = Vec::new();
        let mut bundle = String::new();
        let (mut fas, mut fbs) = (Vec::new(), Vec::new());
        for (i, a) in arrays.iter().enumerate() {
            let state = dir.path().join(format!("array{i}"));
            let mut spec = if a.block {
                SimSpec::flasharray(&state)
            } else {
                SimSpec::flashblade(&state)
            };
            spec.name = format!("sim{i}");
            spec.capacity = a.capacity;
            let sim = SimHandle::start(spec).expect("simulator starts");
            bundle.push_str(&std::fs::read_to_string(sim.ca_cert_path()).expect("ca"));
            let labels: BTreeMap<&str, &str> = a.labels.iter().copied().collect();
            let entry = serde_json::json!({
                "MgmtEndPoint": sim.endpoint(),
                "APIToken": if a.block { "sim-token-fa" } else { "sim-token-fb" },
                "Labels": labels,
            });
            if a.block {
                fas.push(entry)
            } else {
                fbs.push(entry)
            }
            sims.push(sim);
        }
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, bundle).expect("write ca");
        let text = format!(
            r#"{{"FlashArrays": {}, "FlashBlades": {}, "flashvol": {{"tls": {{"caFile": {:?}}}{flashvol_section}}}}}"#,
            serde_json::Value::from(fas),
            serde_json::Value::from(fbs),
            ca.display().to_string(),
        );
        std::fs::write(dir.path().join("pure.json"), &text).expect("write pure.json");
        let config = Config::parse(&dir.path().join("pure.json"), &text).expect("valid config");
        let (fake, _) = FakeKube::new();
        let clock = Arc::new(ManualClock::new(SystemTime::now()));
        Self {
            fake,
            sims,
            config,
            clock,
            _dir: dir,
        }
    }

    /// A fresh context, as a newly started provisioner process would build it.
    pub(crate) fn context(&self) -> Context {
        let client = self.fake.client();
        let metrics = Arc::new(Metrics::new());
        Context {
            arrays: ArraySet::from_config(
                &self.config,
                Duration::from_secs(10),
                Arc::clone(&metrics),
            )
            .expect("clients"),
            settings: self.config.settings.clone(),
            identity: Identity {
                provisioner: "pure-provisioner".into(),
                driver: "pure/flex".into(),
            },
            clock: self.clock.clone(),
            // Long enough that a test's `Provisioning` event always finds its outcome within the
            // grace, however loaded the machine: the events a fast provisioning leaves.
            events: Recorder::new(
                client.clone(),
                "pure-provisioner",
                "test",
                Duration::from_secs(600),
            ),
            metrics,
            claim_backoff: Context::default_backoff(),
            volume_backoff: Context::default_backoff(),
            classes: None,
            volumes: None,
            retained: Mutex::new(Default::default()),
            finished: Default::default(),
            last_failures: Default::default(),
            attempts: Default::default(),
            client,
        }
    }

    pub(crate) fn flash_array(&self, index: usize) -> FlashArray {
        FlashArray::new(
            &self.config.arrays.flash_arrays[index],
            &self.config.settings.client,
        )
        .expect("client")
    }

    pub(crate) fn flash_blade(&self, index: usize) -> FlashBlade {
        FlashBlade::new(
            &self.config.arrays.flash_blades[index],
            &self.config.settings.client,
        )
        .expect("client")
    }

    pub(crate) fn add_class(&self, c: StorageClass) {
        self.fake.insert(&c);
    }

    pub(crate) fn add_claim(&self, claim: &PersistentVolumeClaim) {
        self.fake.insert(claim);
    }

    pub(crate) fn pv_of(&self, claim: &PersistentVolumeClaim) -> Option<PersistentVolume> {
        let uid = claim.metadata.uid.as_deref().expect("uid");
        self.fake
            .get::<PersistentVolume>(None, &format!("pvc-{uid}"))
    }

    /// The messages of the `reason` events `ctx` has published, once its sink has written them.
    pub(crate) async fn events(&self, ctx: &Context, reason: &str) -> Vec<String> {
        ctx.events.flush().await;
        self.fake
            .list::<Event>()
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .filter_map(|e| e.message)
            .collect()
    }

    /// Marks a PV Released, as the PV controller does once its claim is deleted.
    pub(crate) fn release(&self, pv_name: &str) {
        let mut pv = self
            .fake
            .get::<PersistentVolume>(None, pv_name)
            .expect("pv exists");
        pv.status.get_or_insert_default().phase = Some("Released".into());
        self.fake.insert(&pv);
    }

    pub(crate) fn volume_name(claim: &PersistentVolumeClaim) -> String {
        format!("k8s-pvc-{}", claim.metadata.uid.as_deref().expect("uid"))
    }
}

pub(crate) const TIB: u64 = 1 << 40;

/// Faults that answer calls matching `method path` (a glob) with 503, more times than the clients
/// retry: the array cannot answer that call for the rest of a pass.
pub(crate) fn unavailable(method: &str, path: &str) -> flashvol_arraysim::Faults {
    flashvol_arraysim::Faults {
        rules: vec![flashvol_arraysim::FaultRule {
            method: Some(method.into()),
            path: path.into(),
            count: 10,
            action: flashvol_arraysim::FaultAction::Status { status: 503 },
        }],
        ..flashvol_arraysim::Faults::default()
    }
}

pub(crate) fn selector(key: &str, op: &str, values: &[&str]) -> LabelSelector {
    LabelSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
        }]),
        match_labels: None,
    }
}

pub(crate) async fn provision_one(
    h: &Harness,
    ctx: &Context,
    class_name: &str,
) -> (PersistentVolumeClaim, String) {
    let claim = pvc("data", class_name, "1Gi");
    h.add_claim(&claim);
    provision_claim(&claim, ctx).await.expect("provisions");
    let pv = h.pv_of(&claim).expect("PV").metadata.name.expect("name");
    (claim, pv)
}

/// Polls `done` for up to 20 s; the limit only bounds a hung test.
pub(crate) async fn wait_for(what: &str, done: impl Fn() -> bool) {
    for _ in 0..400 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}
