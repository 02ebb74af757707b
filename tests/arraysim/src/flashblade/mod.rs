//! FlashBlade REST 1.x personality: version discovery, `api-token` login yielding `x-auth-token`,
//! the `{"errors": [...]}` body, the `{pagination_info, items}` envelope with `limit`/`token`,
//! `filter`/`sort`, and routing to file systems, snapshots and the array-wide endpoints.

mod filesystems;
mod filter;
pub mod model;
mod snapshots;

use serde_json::{Value, json};

use crate::api::{ApiReply, ApiRequest, split_csv};
use crate::backing::{filesystem_path, tree_allocated_bytes};
use crate::clock::now_millis;
use crate::flasharray::random_hex;

pub use crate::sim::{Ctx, Outcome};
pub use model::FbState;

/// REST versions purity_fb 1.12.3 knows (note `1.8.1`).
pub const API_VERSIONS: [&str; 14] = [
    "1.0", "1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "1.7", "1.8", "1.8.1", "1.9", "1.10", "1.11",
    "1.12",
];

/// An error reply: `{"errors": [{"code", "context", "message"}]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FbError {
    pub status: u16,
    pub message: String,
    pub context: String,
}

impl FbError {
    pub fn bad(message: impl Into<String>, context: impl Into<String>) -> FbError {
        FbError {
            status: 400,
            message: message.into(),
            context: context.into(),
        }
    }

    /// A failure of the simulator itself; like [`crate::flasharray::FaError::internal`], the
    /// reply never carries the cause (it names files under the state dir), the log does.
    pub fn internal(error: anyhow::Error, context: &str) -> FbError {
        log::error!("{context}: {error:#}");
        FbError {
            status: 500,
            message: crate::api::INTERNAL_ERROR.to_string(),
            context: context.to_string(),
        }
    }
}

pub fn error_reply(status: u16, message: &str, context: &str) -> ApiReply {
    ApiReply::json(
        status,
        &json!({"errors": [{"code": status, "context": context, "message": message}]}),
    )
}

pub type FbResult = Result<ApiReply, FbError>;

/// Request facts the handlers need.
pub struct Call<'a> {
    pub ctx: &'a Ctx<'a>,
    pub request: &'a ApiRequest,
    pub now_ms: u64,
}

impl Call<'_> {
    pub fn query(&self, key: &str) -> Option<&str> {
        self.request.query_value(key).filter(|v| !v.is_empty())
    }

    pub fn query_list(&self, key: &str) -> Option<Vec<String>> {
        self.query(key).map(split_csv)
    }

    pub fn query_flag(&self, key: &str) -> Result<bool, FbError> {
        match self.query(key) {
            None => Ok(false),
            Some(text) => crate::api::parse_bool(text)
                .ok_or_else(|| FbError::bad(format!("Invalid boolean for {key}."), text)),
        }
    }

    /// The REST version the request's path names (`/api/1.9/...` → `[1, 9]`); empty when unparsable.
    pub fn rest_version(&self) -> Vec<u32> {
        match self.request.segments_after("/api/").as_deref() {
            Some([version, ..]) => version.split('.').map_while(|p| p.parse().ok()).collect(),
            _ => Vec::new(),
        }
    }

    /// The object a PATCH or DELETE names with `name=` (or a single `names=`).
    pub fn target_name(&self) -> Result<String, FbError> {
        if let Some(name) = self.query("name") {
            return Ok(name.to_string());
        }
        match self.query_list("names").as_deref() {
            Some([one]) => Ok(one.clone()),
            _ => Err(FbError::bad(
                "Exactly one name must be given with name=.",
                "name",
            )),
        }
    }

    pub fn body_object(&self) -> Result<serde_json::Map<String, Value>, FbError> {
        match self
            .request
            .json_body()
            .map_err(|m| FbError::bad(m, "body"))?
        {
            None => Ok(serde_json::Map::new()),
            Some(Value::Object(map)) => Ok(map),
            Some(_) => Err(FbError::bad("Request body must be a JSON object.", "body")),
        }
    }
}

/// Endpoint label for call statistics.
pub fn route_label(request: &ApiRequest) -> String {
    let label = match request.segments_after("/api/").as_deref() {
        Some([single]) => single.to_string(),
        Some([_version, rest @ ..]) => rest.join("/"),
        _ => request.path.clone(),
    };
    format!("{} {label}", request.method)
}

pub fn handle(ctx: &Ctx<'_>, state: &mut FbState, request: &ApiRequest) -> Outcome {
    let unchanged = |reply| Outcome {
        reply,
        changed: false,
    };
    let Some(segments) = request.segments_after("/api/") else {
        return unchanged(error_reply(404, "Not found.", &request.path));
    };
    match (request.method.as_str(), segments.as_slice()) {
        ("GET", ["api_version"]) => {
            return unchanged(ApiReply::json(200, &json!({"versions": ctx.versions})));
        }
        ("POST", ["login"]) => return login(ctx, state, request),
        ("POST", ["logout"]) => return logout(state, request),
        (_, [version, ..]) if !ctx.versions.iter().any(|v| v == version) => {
            return unchanged(error_reply(
                404,
                "The REST API version is not supported.",
                version,
            ));
        }
        _ => {}
    }
    match request.header("x-auth-token") {
        None => {
            return unchanged(error_reply(
                401,
                "Authentication required: log in and send x-auth-token.",
                "x-auth-token",
            ));
        }
        Some(token) if !state.sessions.contains(token) => {
            return unchanged(error_reply(
                403,
                "The x-auth-token is not valid or has expired.",
                "x-auth-token",
            ));
        }
        Some(_) => {}
    }
    expire_destroyed(ctx, state, now_millis());
    let call = Call {
        ctx,
        request,
        now_ms: now_millis(),
    };
    let rest: Vec<&str> = segments.iter().skip(1).copied().collect();
    let result = match (request.method.as_str(), rest.as_slice()) {
        ("GET", ["arrays"]) => Ok(arrays(&call, state)),
        ("GET", ["arrays", "space"]) => Ok(arrays_space(&call, state)),
        ("GET", ["network-interfaces"]) => network_interfaces(&call),
        ("GET", ["file-systems"]) => filesystems::list(&call, state),
        ("POST", ["file-systems"]) => filesystems::create(&call, state),
        ("PATCH", ["file-systems"]) => filesystems::update(&call, state),
        ("DELETE", ["file-systems"]) => filesystems::delete(&call, state),
        ("GET", ["file-system-snapshots"]) => snapshots::list(&call, state),
        ("POST", ["file-system-snapshots"]) => snapshots::create(&call, state),
        ("PATCH", ["file-system-snapshots"]) => snapshots::update(&call, state),
        ("DELETE", ["file-system-snapshots"]) => snapshots::delete(&call, state),
        _ => Err(FbError {
            status: 404,
            message: "Not found.".to_string(),
            context: rest.join("/"),
        }),
    };
    match result {
        Ok(reply) => Outcome {
            reply,
            changed: request.method != "GET",
        },
        Err(error) => unchanged(error_reply(error.status, &error.message, &error.context)),
    }
}

fn login(ctx: &Ctx<'_>, state: &mut FbState, request: &ApiRequest) -> Outcome {
    if request.header("api-token") != Some(ctx.spec.api_token.as_str()) {
        return Outcome {
            reply: error_reply(401, "Invalid or missing api-token.", "api-token"),
            changed: false,
        };
    }
    let token = random_hex(40);
    state.sessions.insert(token.clone());
    ctx.stats.count_authentication();
    let reply =
        ApiReply::json(200, &json!({"username": "pureuser"})).with_header("x-auth-token", token);
    Outcome {
        reply,
        changed: true,
    }
}

fn logout(state: &mut FbState, request: &ApiRequest) -> Outcome {
    match request.header("x-auth-token") {
        Some(token) if state.sessions.remove(token) => Outcome {
            reply: ApiReply::empty(200),
            changed: true,
        },
        _ => Outcome {
            reply: error_reply(401, "Not logged in.", "x-auth-token"),
            changed: false,
        },
    }
}

/// Destroyed file systems and snapshots whose 24 h ran out by `now_ms` disappear, as on a real
/// array; returns how many. `u64::MAX` eradicates every destroyed object (`POST /_sim/eradicate`).
pub fn expire_destroyed(ctx: &Ctx<'_>, state: &mut FbState, now_ms: u64) -> usize {
    let expired = |at: Option<u64>| {
        at.is_some_and(|at| now_ms >= at.saturating_add(model::ERADICATION_DELAY_MS))
    };
    let snapshots = state.snapshots.len();
    state.snapshots.retain(|_, s| !expired(s.destroyed_at));
    let doomed: Vec<String> = state
        .file_systems
        .values()
        .filter(|f| expired(f.destroyed_at))
        .map(|f| f.name.clone())
        .collect();
    for name in &doomed {
        let _ = filesystems::eradicate_now(ctx, state, name);
    }
    snapshots - state.snapshots.len() + doomed.len()
}

/// `{pagination_info, items}` with `filter`, `sort`, `start`, `limit` and `token` applied.
pub fn list_reply(call: &Call<'_>, rows: Vec<Value>) -> FbResult {
    let mut rows = match call.query("filter") {
        Some(expression) => {
            let filter =
                filter::Filter::parse(expression).map_err(|m| FbError::bad(m, expression))?;
            rows.into_iter().filter(|row| filter.matches(row)).collect()
        }
        None => rows,
    };
    if let Some(sort) = call.query("sort") {
        filter::sort_rows(&mut rows, sort);
    }
    let total = rows.len();
    let parse_number = |key: &str| -> Result<Option<usize>, FbError> {
        call.query(key)
            .map(|v| {
                v.parse::<usize>()
                    .map_err(|_| FbError::bad(format!("Invalid {key}."), v))
            })
            .transpose()
    };
    let start = match call.query("token") {
        Some(token) => usize::from_str_radix(token, 16)
            .map_err(|_| FbError::bad("Invalid continuation token.", token))?,
        None => parse_number("start")?.unwrap_or(0),
    };
    let limit = parse_number("limit")?;
    let page: Vec<Value> = rows
        .into_iter()
        .skip(start)
        .take(limit.unwrap_or(usize::MAX))
        .collect();
    let next = start + page.len();
    let continuation = (limit.is_some() && next < total).then(|| format!("{next:08x}"));
    Ok(ApiReply::json(
        200,
        &json!({"pagination_info": {"total_item_count": total, "continuation_token": continuation}, "items": page}),
    ))
}

pub fn items_reply(items: Vec<Value>) -> ApiReply {
    let count = items.len();
    ApiReply::json(
        200,
        &json!({"pagination_info": {"total_item_count": count, "continuation_token": null}, "items": items}),
    )
}

fn arrays(call: &Call<'_>, state: &FbState) -> ApiReply {
    items_reply(vec![json!({
        "name": call.ctx.spec.name,
        "id": state.array_id,
        "os": "Purity//FB",
        "revision": "2020.10.15_a8b1c0d3",
        "version": "3.1.4",
        "time_zone": "UTC",
        "ntp_servers": [],
        "banner": "",
        "idle_timeout": 0,
    })])
}

fn arrays_space(call: &Call<'_>, state: &FbState) -> ApiReply {
    let used: u64 = state
        .file_systems
        .values()
        .map(|f| tree_allocated_bytes(&filesystem_path(&call.ctx.spec.state_dir, &f.id)))
        .sum();
    let used = call.ctx.space.used(used);
    let reduction = call.ctx.space.data_reduction();
    // Logical bytes written are the physical ones times the reduction, as on a real blade.
    let logical = (used as f64 * reduction) as u64;
    items_reply(vec![json!({
        "name": call.ctx.spec.name,
        "capacity": call.ctx.capacity,
        "parity": 1.0,
        "time": call.now_ms,
        "space": {"virtual": logical, "unique": used, "snapshots": 0, "total_physical": used, "data_reduction": reduction},
    })])
}

fn network_interfaces(call: &Call<'_>) -> FbResult {
    let spec = call.ctx.spec;
    let interface = |name: String, address: String, service: &str| {
        json!({
            "id": format!("{:08x}-0000-4000-8000-{:012x}", name.len(), name.bytes().map(u64::from).sum::<u64>()),
            "name": name,
            "address": address,
            "enabled": true,
            "gateway": null,
            "mtu": 1500,
            "netmask": "255.255.255.0",
            "services": [service],
            "subnet": {"id": "00000000-0000-4000-8000-000000000001", "name": "subnet0", "resource_type": "subnets"},
            "type": "vip",
            "vlan": 0,
        })
    };
    let mut rows = vec![interface(
        "vir0".to_string(),
        spec.management_vip.to_string(),
        "management",
    )];
    rows.extend(
        spec.data_vips
            .iter()
            .enumerate()
            .map(|(i, vip)| interface(format!("data{}", i + 1), vip.to_string(), "data")),
    );
    if let Some(names) = call.query_list("names") {
        for name in &names {
            if !rows.iter().any(|r| r["name"] == json!(name)) {
                return Err(FbError::bad(
                    "Network interface does not exist.",
                    name.clone(),
                ));
            }
        }
        rows.retain(|r| names.iter().any(|n| r["name"] == json!(n)));
    }
    list_reply(call, rows)
}
