//! The simulator's own admin API under `/_sim/` (not part of Pure's API, no auth; the simulator
//! binds loopback by default): state dumps, call stats, fault injection, space overrides, session
//! expiry, REST version narrowing, FC target ports (none: iSCSI only), the data-path lookups the
//! test fabric needs, and replicated snapshots delivered to a FlashArray as its replication
//! source would.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{ApiReply, ApiRequest};
use crate::backing::{filesystem_path, volume_path};
use crate::clock::now_secs;
use crate::faults::Faults;
use crate::flasharray::replication::{self, Replicated};
use crate::sim::{ArrayState, Sim};
use crate::space::SpaceOverride;
use crate::spec::{Kind, wwn_problem};
use crate::{flasharray, flashblade};

fn error(status: u16, message: impl Into<String>) -> ApiReply {
    ApiReply::json(status, &json!({"error": message.into()}))
}

pub fn handle(sim: &Sim, request: &ApiRequest) -> ApiReply {
    let segments = request.segments_after("/_sim").unwrap_or_default();
    match (request.method.as_str(), segments.as_slice()) {
        ("GET", ["info"]) => info(sim),
        ("GET", ["state"]) => state(sim),
        ("GET", ["stats"]) => ApiReply::json(200, &json!(sim.controls.stats.snapshot())),
        ("DELETE", ["stats"]) => {
            sim.controls.stats.reset();
            ApiReply::json(200, &json!(sim.controls.stats.snapshot()))
        }
        ("GET", ["faults"]) => faults_reply(sim),
        ("POST", ["faults"]) | ("PUT", ["faults"]) => set_faults(sim, request),
        ("DELETE", ["faults"]) => {
            *sim.controls
                .faults
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Faults::default();
            faults_reply(sim)
        }
        ("GET", ["space"]) => space_reply(sim),
        ("POST", ["space"]) | ("PUT", ["space"]) => set_space(sim, request),
        ("DELETE", ["space"]) => {
            *sim.controls.space.lock().unwrap_or_else(|p| p.into_inner()) =
                SpaceOverride::default();
            space_reply(sim)
        }
        ("DELETE", ["sessions"]) => expire_sessions(sim),
        ("GET", ["api_versions"]) => ApiReply::json(200, &json!({"versions": sim.versions()})),
        ("PUT", ["api_versions"]) | ("POST", ["api_versions"]) => set_versions(sim, request),
        ("DELETE", ["api_versions"]) => {
            *sim.controls
                .api_versions
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = None;
            ApiReply::json(200, &json!({"versions": sim.versions()}))
        }
        ("GET", ["capacity"]) => capacity_reply(sim),
        ("PUT", ["capacity"]) | ("POST", ["capacity"]) => set_capacity(sim, request),
        ("DELETE", ["capacity"]) => {
            *sim.controls
                .capacity
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = None;
            capacity_reply(sim)
        }
        ("GET", ["fc_wwns"]) => fc_wwns_reply(sim),
        ("PUT", ["fc_wwns"]) | ("POST", ["fc_wwns"]) => set_fc_wwns(sim, request),
        ("DELETE", ["fc_wwns"]) => {
            *sim.controls
                .fc_wwns
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = None;
            fc_wwns_reply(sim)
        }
        ("GET", ["connections"]) => connections(sim, request),
        ("GET", ["filesystems", name]) => filesystem(sim, name),
        ("POST", ["replicated-snapshots"]) => inject_replicated(sim, request),
        ("POST", ["eradicate"]) => eradicate_destroyed(sim),
        _ => error(
            404,
            format!("no admin route {} {}", request.method, request.path),
        ),
    }
}

fn info(sim: &Sim) -> ApiReply {
    let spec = &sim.spec;
    ApiReply::json(
        200,
        &json!({
            "kind": spec.kind.label(),
            "name": spec.name,
            "api_token": spec.api_token,
            "capacity": sim.capacity(),
            "state_dir": spec.state_dir,
            "listen": spec.listen.to_string(),
        }),
    )
}

fn state(sim: &Sim) -> ApiReply {
    let state = sim.state();
    let mut dump = json!(&*state);
    // Resolve backing paths so tests can assert on data without knowing the layout.
    match &*state {
        ArrayState::FlashArray(fa) => {
            for (name, volume) in &fa.volumes {
                dump["volumes"][name]["path"] =
                    json!(volume_path(&sim.spec.state_dir, &volume.serial));
            }
        }
        ArrayState::FlashBlade(fb) => {
            for (name, fs) in &fb.file_systems {
                dump["file_systems"][name]["path"] =
                    json!(filesystem_path(&sim.spec.state_dir, &fs.id));
            }
        }
    }
    ApiReply::json(200, &dump)
}

fn faults_reply(sim: &Sim) -> ApiReply {
    let faults = sim
        .controls
        .faults
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    ApiReply::json(200, &json!(faults))
}

fn set_faults(sim: &Sim, request: &ApiRequest) -> ApiReply {
    let faults: Faults = match serde_json::from_slice(&request.body) {
        Ok(faults) => faults,
        Err(e) => {
            return error(
                400,
                format!(
                    "fault set is not valid JSON for {{latency_ms, error_rate, drop_rate, rules}}: {e}"
                ),
            );
        }
    };
    if let Err(e) = faults.validate() {
        return error(400, e.to_string());
    }
    *sim.controls
        .faults
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = faults;
    faults_reply(sim)
}

fn space_reply(sim: &Sim) -> ApiReply {
    let space = *sim.controls.space.lock().unwrap_or_else(|p| p.into_inner());
    ApiReply::json(200, &json!(space))
}

fn set_space(sim: &Sim, request: &ApiRequest) -> ApiReply {
    let space: SpaceOverride = match serde_json::from_slice(&request.body) {
        Ok(space) => space,
        Err(e) => {
            return error(
                400,
                format!("expected {{\"used\": bytes|null, \"data_reduction\": ratio|null}}: {e}"),
            );
        }
    };
    if let Err(e) = space.validate() {
        return error(400, e);
    }
    *sim.controls.space.lock().unwrap_or_else(|p| p.into_inner()) = space;
    space_reply(sim)
}

fn expire_sessions(sim: &Sim) -> ApiReply {
    let mut state = sim.state();
    let expired = match &mut *state {
        ArrayState::FlashArray(fa) => std::mem::take(&mut fa.sessions).len(),
        ArrayState::FlashBlade(fb) => std::mem::take(&mut fb.sessions).len(),
    };
    if let Err(e) = sim.persist(state) {
        log::error!("{}: saving state: {e:#}", sim.spec.name);
        return error(500, crate::api::INTERNAL_ERROR);
    }
    ApiReply::json(200, &json!({"expired": expired}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Versions {
    versions: Vec<String>,
}

fn set_versions(sim: &Sim, request: &ApiRequest) -> ApiReply {
    let versions: Versions = match serde_json::from_slice(&request.body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                400,
                format!("expected {{\"versions\": [\"1.x\", ...]}}: {e}"),
            );
        }
    };
    let well_formed = |v: &String| {
        !v.is_empty()
            && v.split('.')
                .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()))
    };
    if versions.versions.is_empty() || !versions.versions.iter().all(well_formed) {
        return error(
            400,
            "versions must be a non-empty list of dotted numbers such as \"1.17\"",
        );
    }
    *sim.controls
        .api_versions
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = Some(versions.versions);
    ApiReply::json(200, &json!({"versions": sim.versions()}))
}

fn capacity_reply(sim: &Sim) -> ApiReply {
    ApiReply::json(200, &json!({"capacity": sim.capacity()}))
}

/// `{"capacity": bytes | "10T"}`: the usable capacity from now on, as if shelves were added or
/// removed. Kept across in-process restarts like faults, not across a new process.
fn set_capacity(sim: &Sim, request: &ApiRequest) -> ApiReply {
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let parsed = match &body["capacity"] {
        Value::Number(n) => n
            .as_u64()
            .filter(|c| *c > 0)
            .ok_or_else(|| format!("capacity {n} is not a positive number of bytes")),
        Value::String(text) => crate::cli::parse_capacity(text),
        _ => Err("expected {\"capacity\": bytes or a string like \"10T\"}".to_string()),
    };
    match parsed {
        Ok(capacity) => {
            *sim.controls
                .capacity
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(capacity);
            capacity_reply(sim)
        }
        Err(why) => error(400, why),
    }
}

fn fc_wwns_reply(sim: &Sim) -> ApiReply {
    ApiReply::json(200, &json!({"wwns": sim.fc_wwns()}))
}

/// `{"wwns": [..]}`: the array's FC target ports from now on; `[]` leaves it iSCSI only, as a
/// Cloud Block Store array is. Kept across in-process restarts like faults, not across a new
/// process.
fn set_fc_wwns(sim: &Sim, request: &ApiRequest) -> ApiReply {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Wwns {
        wwns: Vec<String>,
    }
    if sim.spec.kind != Kind::FlashArray {
        return error(400, "only a FlashArray has FC ports");
    }
    let wwns = match serde_json::from_slice::<Wwns>(&request.body) {
        Ok(body) => body.wwns,
        Err(e) => {
            return error(
                400,
                format!("expected {{\"wwns\": [\"16 hex digits\", ..]}}: {e}"),
            );
        }
    };
    if let Some(problem) = wwns.iter().find_map(|wwn| wwn_problem(wwn)) {
        return error(400, problem);
    }
    *sim.controls
        .fc_wwns
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = Some(wwns);
    fc_wwns_reply(sim)
}

/// Volumes connected to the host that owns `initiator` (IQN, NQN or WWN).
fn connections(sim: &Sim, request: &ApiRequest) -> ApiReply {
    if sim.spec.kind != Kind::FlashArray {
        return error(404, "connections exist on FlashArray simulators only");
    }
    let Some(initiator) = request.query_value("initiator").filter(|i| !i.is_empty()) else {
        return error(400, "initiator=<iqn, nqn or wwn> is required");
    };
    let state = sim.state();
    let ArrayState::FlashArray(fa) = &*state else {
        return error(500, "state kind mismatch");
    };
    let rows: Vec<Value> = match fa.host_with_initiator(initiator) {
        None => Vec::new(),
        Some(host) => fa
            .connections_of_host(&host.name)
            .filter_map(|c| {
                let volume = fa.volumes.get(&c.volume)?;
                Some(json!({
                    "host": host.name,
                    "volume": volume.name,
                    "lun": c.lun,
                    "serial": volume.serial,
                    "size": volume.size,
                    "path": volume_path(&sim.spec.state_dir, &volume.serial),
                }))
            })
            .collect(),
    };
    ApiReply::json(200, &Value::Array(rows))
}

fn filesystem(sim: &Sim, name: &str) -> ApiReply {
    let state = sim.state();
    let ArrayState::FlashBlade(fb) = &*state else {
        return error(404, "file systems exist on FlashBlade simulators only");
    };
    match fb.file_systems.get(name) {
        None => error(404, format!("file system {name} does not exist")),
        Some(fs) => ApiReply::json(
            200,
            &json!({"name": fs.name, "path": filesystem_path(&sim.spec.state_dir, &fs.id), "destroyed": fs.is_destroyed()}),
        ),
    }
}

/// As if every destroyed object's eradication delay had passed: all of them are eradicated now.
/// Benchmarks call it between runs, so each run starts with the array's state (and the state file
/// rewritten on every change) the size it had before, not grown by every earlier run.
fn eradicate_destroyed(sim: &Sim) -> ApiReply {
    let versions = sim.versions();
    let ctx = sim.ctx(&versions);
    let mut state = sim.state();
    let eradicated = match &mut *state {
        ArrayState::FlashArray(fa) => flasharray::expire_destroyed(&ctx, fa, u64::MAX),
        ArrayState::FlashBlade(fb) => flashblade::expire_destroyed(&ctx, fb, u64::MAX),
    };
    if eradicated > 0
        && let Err(e) = sim.persist(state)
    {
        return error(500, format!("saving state: {e:#}"));
    }
    ApiReply::json(200, &json!({ "eradicated": eradicated }))
}

/// Delivers a replicated protection group snapshot (see `flasharray::replication`).
fn inject_replicated(sim: &Sim, request: &ApiRequest) -> ApiReply {
    let replicated: Replicated = match serde_json::from_slice(&request.body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                400,
                format!(
                    "expected {{source_array, pgroup, suffix?, age_seconds?, progress?, volumes: [{{name, size, data?}}]}}: {e}"
                ),
            );
        }
    };
    let mut state = sim.state();
    let ArrayState::FlashArray(fa) = &mut *state else {
        return error(404, "replication exists on FlashArray simulators only");
    };
    let row = match replication::inject(fa, &sim.spec.state_dir, now_secs(), &replicated) {
        Ok(row) => row,
        Err(e) => return error(e.status, format!("{} ({})", e.msg, e.ctx)),
    };
    if let Err(e) = sim.persist(state) {
        return error(500, format!("saving state: {e:#}"));
    }
    ApiReply::json(200, &row)
}
