//! One simulated array: its spec, its state (loaded from and saved to `<state dir>/state.json`:
//! a call that changed it returns once the file holds the change, see [`crate::commit`]), and the
//! controls shared across restarts (faults, stats, API versions).
//! Requests arrive here already read; this module decides, the server module does the I/O.

use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::api::{ApiReply, ApiRequest};
use crate::clock::now_secs;
use crate::commit::GroupCommit;
use crate::faults::{Faults, Injected};
use crate::flasharray::{self, FaState};
use crate::flashblade::{self, FbState};
use crate::persist::write_atomic;
use crate::space::SpaceOverride;
use crate::spec::{Kind, SimSpec};
use crate::stats::Stats;

/// Everything a request handler may read besides the array state.
pub struct Ctx<'a> {
    pub spec: &'a SimSpec,
    pub stats: &'a Stats,
    /// Usable capacity right now: the spec's, unless the admin API changed it.
    pub capacity: u64,
    /// Epoch seconds of this request.
    pub now: u64,
    /// REST versions currently advertised and accepted.
    pub versions: &'a [String],
    /// Space figures set through `/_sim/space`.
    pub space: SpaceOverride,
    /// WWNs of the FC target ports now: the spec's, unless the admin API changed them.
    pub fc_wwns: Vec<String>,
}

/// A handler's reply and whether the state may have changed (and must be saved).
pub struct Outcome {
    pub reply: ApiReply,
    pub changed: bool,
}

/// Knobs that outlive one serving instance (an in-process restart keeps them).
#[derive(Debug, Default)]
pub struct Controls {
    pub faults: Mutex<Faults>,
    pub stats: Stats,
    /// When set, replaces the advertised/accepted REST versions (to provoke HTTP 450).
    pub api_versions: Mutex<Option<Vec<String>>>,
    /// Space figures reported instead of the measured ones (`/_sim/space`).
    pub space: Mutex<SpaceOverride>,
    /// When set, replaces the spec's capacity (an administrator added or removed shelves).
    pub capacity: Mutex<Option<u64>>,
    /// When set, replaces the spec's FC target ports (none: iSCSI only, as Cloud Block Store).
    pub fc_wwns: Mutex<Option<Vec<String>>>,
}

/// The persisted state of one array.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ArrayState {
    FlashArray(FaState),
    FlashBlade(FbState),
}

impl ArrayState {
    fn fresh(kind: Kind) -> ArrayState {
        let id = random_uuid();
        match kind {
            Kind::FlashArray => ArrayState::FlashArray(FaState::new(id)),
            Kind::FlashBlade => ArrayState::FlashBlade(FbState::new(id)),
        }
    }

    fn kind(&self) -> Kind {
        match self {
            ArrayState::FlashArray(_) => Kind::FlashArray,
            ArrayState::FlashBlade(_) => Kind::FlashBlade,
        }
    }
}

pub struct Sim {
    pub spec: SimSpec,
    pub controls: Arc<Controls>,
    state: Mutex<ArrayState>,
    commits: GroupCommit,
}

impl Sim {
    /// Loads the state from the state dir, or starts a fresh array there.
    pub fn open(spec: SimSpec, controls: Arc<Controls>) -> Result<Sim> {
        fs::create_dir_all(&spec.state_dir)
            .with_context(|| format!("creating state dir {}", spec.state_dir.display()))?;
        let file = state_file(&spec);
        let state = if file.exists() {
            let bytes = fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let state: ArrayState = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a simulator state file", file.display()))?;
            anyhow::ensure!(
                state.kind() == spec.kind,
                "{} holds a {} but a {} was asked for",
                file.display(),
                state.kind().label(),
                spec.kind.label()
            );
            state
        } else {
            let state = ArrayState::fresh(spec.kind);
            if spec.persist {
                write_atomic(&file, &serde_json::to_vec(&state)?)?;
            }
            state
        };
        Ok(Sim {
            spec,
            controls,
            state: Mutex::new(state),
            commits: GroupCommit::default(),
        })
    }

    pub fn state(&self) -> MutexGuard<'_, ArrayState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records that the held `state` changed, lets go of it, and returns once the state file holds
    /// the change (written by this call or by a concurrent one: [`GroupCommit`]). Compact JSON:
    /// the whole state is written each time. Nothing is written when the spec says not to persist.
    pub fn persist(&self, state: MutexGuard<'_, ArrayState>) -> Result<()> {
        if !self.spec.persist {
            return Ok(());
        }
        let change = self.commits.number();
        drop(state);
        self.commits.wait_saved(change, || {
            let (bytes, covered) = {
                let state = self.state();
                (serde_json::to_vec(&*state)?, self.commits.latest())
            };
            write_atomic(&state_file(&self.spec), &bytes)?;
            Ok(covered)
        })
    }

    pub fn versions(&self) -> Vec<String> {
        let custom = self
            .controls
            .api_versions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        custom.unwrap_or_else(|| match self.spec.kind {
            Kind::FlashArray => flasharray::API_VERSIONS
                .iter()
                .map(|v| v.to_string())
                .collect(),
            Kind::FlashBlade => flashblade::API_VERSIONS
                .iter()
                .map(|v| v.to_string())
                .collect(),
        })
    }

    /// Usable capacity: the spec's, unless the admin API changed it.
    pub fn capacity(&self) -> u64 {
        self.controls
            .capacity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .unwrap_or(self.spec.capacity)
    }

    /// WWNs of the FC target ports: the spec's, unless the admin API changed them.
    pub fn fc_wwns(&self) -> Vec<String> {
        self.controls
            .fc_wwns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_else(|| self.spec.fc_wwns.clone())
    }

    /// Counts the call and decides its fault; returns the latency to add first.
    pub fn before_call(&self, request: &ApiRequest) -> (Duration, Injected) {
        let label = match self.spec.kind {
            Kind::FlashArray => flasharray::route_label(request),
            Kind::FlashBlade => flashblade::route_label(request),
        };
        self.controls.stats.count_call(label);
        let mut faults = self
            .controls
            .faults
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let injected = faults.decide(&request.method, &request.path, rand::random::<f64>());
        (Duration::from_millis(faults.latency_ms), injected)
    }

    /// The error reply for an injected failure, in this array's error shape.
    pub fn fault_reply(&self, status: u16, request: &ApiRequest) -> ApiReply {
        let message = "Injected fault (flashvol-arraysim).";
        match self.spec.kind {
            Kind::FlashArray => flasharray::error_reply(status, message, &request.path),
            Kind::FlashBlade => flashblade::error_reply(status, message, &request.path),
        }
    }

    /// What a handler sees of the array, now.
    pub fn ctx<'a>(&'a self, versions: &'a [String]) -> Ctx<'a> {
        Ctx {
            spec: &self.spec,
            stats: &self.controls.stats,
            capacity: self.capacity(),
            now: now_secs(),
            versions,
            space: *self
                .controls
                .space
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
            fc_wwns: self.fc_wwns(),
        }
    }

    /// Serves one array API call and persists the state when it changed.
    pub fn handle_api(&self, request: &ApiRequest) -> ApiReply {
        let versions = self.versions();
        let ctx = self.ctx(&versions);
        let mut state = self.state();
        let outcome = match &mut *state {
            ArrayState::FlashArray(fa) => flasharray::handle(&ctx, fa, request),
            ArrayState::FlashBlade(fb) => flashblade::handle(&ctx, fb, request),
        };
        if outcome.changed {
            if let Err(error) = self.persist(state) {
                log::error!("{}: saving state failed: {error:#}", self.spec.name);
                return self.fault_reply(500, request);
            }
        }
        outcome.reply
    }
}

pub fn state_file(spec: &SimSpec) -> PathBuf {
    spec.state_dir.join("state.json")
}

fn random_uuid() -> String {
    let hex = flasharray::random_hex(32);
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}
