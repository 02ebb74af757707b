//! FlashArray REST 1.x personality: version discovery, session auth with the cookie on every 200,
//! the error-list body, paging, and routing to the volume, snapshot, protection group,
//! replication, host and array handlers.

mod array;
mod hosts;
pub mod model;
mod pgroups;
pub mod replication;
mod snapshots;
mod volume_rules;
mod volumes;

use serde_json::{Value, json};

use crate::api::{ApiReply, ApiRequest, Params};
use crate::glob::{glob_match, is_glob};
pub use crate::sim::{Ctx, Outcome};

pub use model::FaState;

/// REST versions purestorage 1.19.0 knows; the simulator advertises and accepts all of them.
pub const API_VERSIONS: [&str; 20] = [
    "1.0", "1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "1.7", "1.8", "1.9", "1.10", "1.11", "1.12",
    "1.13", "1.14", "1.15", "1.16", "1.17", "1.18", "1.19",
];

/// An error reply: FlashArray answers `[{"msg", "ctx", ...}]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaError {
    pub status: u16,
    pub msg: String,
    pub ctx: String,
}

impl FaError {
    pub fn bad(msg: impl Into<String>, ctx: impl Into<String>) -> FaError {
        FaError {
            status: 400,
            msg: msg.into(),
            ctx: ctx.into(),
        }
    }

    /// A failure of the simulator itself (its state dir, its backing files). The reply says so
    /// without the cause, which names files under the state dir: a reply never shows an internal
    /// path. The cause goes to the simulator's log.
    pub fn internal(error: anyhow::Error, ctx: &str) -> FaError {
        log::error!("{ctx}: {error:#}");
        FaError {
            status: 500,
            msg: crate::api::INTERNAL_ERROR.to_string(),
            ctx: ctx.to_string(),
        }
    }

    pub fn reply(&self) -> ApiReply {
        error_reply(self.status, &self.msg, &self.ctx)
    }
}

pub fn error_reply(status: u16, msg: &str, ctx: &str) -> ApiReply {
    ApiReply::json(
        status,
        &json!([{"pure_err_key": "err.friendly", "pure_err_code": 1, "msg": msg, "ctx": ctx}]),
    )
}

impl From<String> for FaError {
    fn from(msg: String) -> FaError {
        FaError::bad(msg, "")
    }
}

/// A successful body plus the paging token to send in `x-next-token`.
pub struct Answer {
    pub body: Value,
    pub next_token: Option<String>,
}

impl From<Value> for Answer {
    fn from(body: Value) -> Answer {
        Answer {
            body,
            next_token: None,
        }
    }
}

pub type FaResult = Result<Answer, FaError>;

/// Endpoint label for call statistics: resource keywords kept, object names replaced.
pub fn route_label(request: &ApiRequest) -> String {
    let Some(segments) = request.segments_after("/api/") else {
        return format!("{} {}", request.method, request.path);
    };
    let label = match segments.as_slice() {
        ["api_version"] => "api_version".to_string(),
        [_version, rest @ ..] => rest
            .iter()
            .enumerate()
            .map(|(i, seg)| {
                if i % 2 == 1 && !matches!(*seg, "session" | "apitoken" | "connection") {
                    "{name}"
                } else {
                    seg
                }
            })
            .collect::<Vec<_>>()
            .join("/"),
        [] => String::new(),
    };
    format!("{} {label}", request.method)
}

pub fn handle(ctx: &Ctx<'_>, state: &mut FaState, request: &ApiRequest) -> Outcome {
    let unchanged = |reply| Outcome {
        reply,
        changed: false,
    };
    let Some(segments) = request.segments_after("/api/") else {
        return unchanged(error_reply(404, "Not found.", &request.path));
    };
    match segments.as_slice() {
        ["api_version"] if request.method == "GET" => {
            return unchanged(ApiReply::json(200, &json!({"version": ctx.versions})));
        }
        [version, ..] if !ctx.versions.iter().any(|v| v == version) => {
            return unchanged(error_reply(
                450,
                "The REST API version is not supported.",
                version,
            ));
        }
        _ => {}
    }
    let rest: Vec<&str> = segments.iter().skip(1).copied().collect();
    let params = match Params::from_request(request) {
        Ok(params) => params,
        Err(msg) => return unchanged(error_reply(400, &msg, "")),
    };
    match (request.method.as_str(), rest.as_slice()) {
        ("POST", ["auth", "session"]) => return login(ctx, state, &params),
        ("POST", ["auth", "apitoken"]) => return unchanged(api_token(ctx, &params)),
        _ => {}
    }
    let Some(session) = request
        .cookie("session")
        .filter(|s| state.sessions.contains(*s))
        .map(str::to_string)
    else {
        return unchanged(error_reply(401, "Session is not valid. Log in again.", ""));
    };
    if request.method == "DELETE" && rest.as_slice() == ["auth", "session"] {
        state.sessions.remove(&session);
        return Outcome {
            reply: ApiReply::json(200, &json!({"username": "pureuser"})),
            changed: true,
        };
    }
    expire_destroyed(ctx, state, ctx.now);
    let mutating = request.method != "GET";
    match dispatch(ctx, state, &request.method, &rest, &params) {
        Ok(answer) => {
            let mut reply = ApiReply::json(200, &answer.body).with_header(
                "set-cookie",
                format!("session={session}; Path=/; HttpOnly; Secure"),
            );
            if let Some(token) = answer.next_token {
                reply = reply.with_header("x-next-token", token);
            }
            Outcome {
                reply,
                changed: mutating,
            }
        }
        Err(error) => unchanged(error.reply()),
    }
}

fn dispatch(
    ctx: &Ctx<'_>,
    state: &mut FaState,
    method: &str,
    rest: &[&str],
    params: &Params,
) -> FaResult {
    match (method, rest) {
        ("GET", ["array"]) => array::get_array(ctx, state, params),
        ("GET", ["port"]) => array::list_ports(ctx, state, params),
        ("GET", ["volume"]) => volumes::list(ctx, state, params),
        ("POST", ["volume"]) => snapshots::create(ctx, state, params),
        ("GET", ["volume", name]) if params.flag("pgroup")? => {
            pgroups::snapshot_volumes(state, name, params)
        }
        ("GET", ["volume", name]) => volumes::get(ctx, state, name, params),
        ("POST", ["volume", name]) => volumes::create_or_copy(ctx, state, name, params),
        ("PUT", ["volume", name]) => volumes::modify(ctx, state, name, params),
        ("DELETE", ["volume", name]) => volumes::destroy_or_eradicate(ctx, state, name, params),
        ("GET", ["volume", name, "host"]) => volumes::list_connections(state, name, params),
        ("GET", ["volume", name, "hgroup"]) => volumes::list_shared_connections(state, name),
        ("POST", ["pgroup"]) => pgroups::snapshot(ctx, state, params),
        ("POST", ["pgroup", name]) => pgroups::create(ctx, state, name, params),
        ("GET", ["pgroup", name]) => pgroups::get(ctx, state, name, params),
        ("PUT", ["pgroup", name]) => pgroups::modify(state, name, params),
        ("DELETE", ["pgroup", name]) => pgroups::destroy_or_eradicate(ctx, state, name, params),
        ("GET", ["array", "connection"]) => replication::list_connections(state, params),
        ("GET", ["host"]) => hosts::list(state, params),
        ("GET", ["host", name]) => hosts::get(state, name),
        ("POST", ["host", name]) => hosts::create(state, name, params),
        ("PUT", ["host", name]) => hosts::modify(state, name, params),
        ("DELETE", ["host", name]) => hosts::delete(state, name),
        ("GET", ["host", name, "volume"]) => hosts::list_connections(state, name, params),
        ("POST", ["host", host, "volume", volume]) => hosts::connect(state, host, volume, params),
        ("DELETE", ["host", host, "volume", volume]) => hosts::disconnect(state, host, volume),
        _ => Err(FaError {
            status: 404,
            msg: "Not found.".to_string(),
            ctx: rest.join("/"),
        }),
    }
}

fn login(ctx: &Ctx<'_>, state: &mut FaState, params: &Params) -> Outcome {
    let token = params.string("api_token").ok().flatten();
    if token.as_deref() != Some(ctx.spec.api_token.as_str()) {
        return Outcome {
            reply: error_reply(401, "Invalid API token.", "api_token"),
            changed: false,
        };
    }
    let session = random_hex(32);
    state.sessions.insert(session.clone());
    ctx.stats.count_authentication();
    let reply = ApiReply::json(200, &json!({"username": "pureuser"})).with_header(
        "set-cookie",
        format!("session={session}; Path=/; HttpOnly; Secure"),
    );
    Outcome {
        reply,
        changed: true,
    }
}

/// `POST auth/apitoken`: the factory credentials `pureuser`/`pureuser` yield the API token.
fn api_token(ctx: &Ctx<'_>, params: &Params) -> ApiReply {
    let user = params.string("username").ok().flatten();
    let password = params.string("password").ok().flatten();
    if user.as_deref() == Some("pureuser") && password.as_deref() == Some("pureuser") {
        ApiReply::json(200, &json!({"api_token": ctx.spec.api_token}))
    } else {
        error_reply(401, "Invalid username or password.", "username")
    }
}

/// Destroyed objects whose 24 h ran out by `now` (epoch seconds) disappear, as on a real array;
/// returns how many. `u64::MAX` eradicates every destroyed object (the admin API's
/// `POST /_sim/eradicate`).
pub fn expire_destroyed(ctx: &Ctx<'_>, state: &mut FaState, now: u64) -> usize {
    let expired = state.expired(now);
    for name in &expired {
        // A failed removal only leaves an orphan file in the state dir; the object is gone anyway.
        let _ = volumes::eradicate_now(ctx, state, name);
    }
    expired.len()
}

pub fn random_hex(len: usize) -> String {
    (0..len)
        .map(|_| char::from_digit(rand::random_range(0..16u32), 16).unwrap_or('0'))
        .collect()
}

/// Applies `names` (exact names or `*` globs) to a sorted name list. An exact name that is
/// missing is an error (`missing` builds it); a glob matching nothing is not.
pub fn select_names<'a, I>(
    candidates: I,
    patterns: Option<&[String]>,
    missing: impl Fn(&str) -> FaError,
) -> Result<Vec<String>, FaError>
where
    I: Iterator<Item = &'a str> + Clone,
{
    let Some(patterns) = patterns else {
        return Ok(candidates.map(str::to_string).collect());
    };
    for pattern in patterns.iter().filter(|p| !is_glob(p)) {
        if !candidates.clone().any(|name| name == pattern) {
            return Err(missing(pattern));
        }
    }
    Ok(candidates
        .filter(|name| patterns.iter().any(|p| glob_match(p, name)))
        .map(str::to_string)
        .collect())
}

/// `limit`/`token` paging. The token is the offset of the next row; the last page is `[]` and
/// still carries the token, because `page_through` stops only on an empty page.
pub fn paginate(rows: Vec<Value>, params: &Params) -> FaResult {
    let limit = params.unsigned("limit")?;
    let token = params.string("token")?;
    if limit.is_none() && token.is_none() {
        return Ok(Answer {
            body: Value::Array(rows),
            next_token: None,
        });
    }
    let start = match token.as_deref() {
        None | Some("") => 0,
        Some(text) => {
            usize::from_str_radix(text, 16).map_err(|_| FaError::bad("Invalid token.", text))?
        }
    };
    let limit = limit
        .map(|l| usize::try_from(l).unwrap_or(usize::MAX))
        .unwrap_or(usize::MAX);
    let page: Vec<Value> = rows.into_iter().skip(start).take(limit).collect();
    let next = start + page.len();
    Ok(Answer {
        body: Value::Array(page),
        next_token: Some(format!("{next:08x}")),
    })
}
