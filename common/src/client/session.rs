//! The session both array clients send their calls in: REST version negotiation, login, the
//! credential on every request, one new login when it expires and one renegotiation when the
//! array stops serving our version. The arrays differ only in the [`Rules`] they pass.
//!
//! Construction touches no network (the flex driver builds a client per call). The first call
//! negotiates the version (`GET /api/api_version`, the newest 1.x the client speaks, compared
//! numerically) and logs in. Version and credential sit behind one mutex shared by every thread
//! using the client; login happens under that lock, so concurrent first calls authenticate once.
//!
//! After a re-login status (FlashArray 401, FlashBlade 401 or 403: an idle timeout, an array
//! restart) the client logs in again once, unless another thread already did since the request
//! was sent (the login *generation* tells), and replays the request; a second refusal is
//! [`ArrayError::Auth`]. After FlashArray's 450 (the version is no longer served) it asks for the
//! versions again once and replays; an array that refuses the version it still offers is an error,
//! not a loop.
//!
//! The API token is only ever put in the login request, and array messages that echo it are
//! redacted.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde_json::{Value, json};

use crate::client::call::Call;
use crate::client::classify::{Intent, classify, error_text};
use crate::client::transport::{Method, Reply, Request, Transport};
use crate::client::{version, wire};
use crate::config::{ApiToken, ClientSettings, Endpoint};
use crate::error::{ArrayError, Result};

/// What a login gives and how it travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CredentialKind {
    /// FlashArray: `POST /api/<version>/auth/session` `{"api_token"}` → cookie `session`, sent as
    /// `Cookie`; any `Set-Cookie` on a later reply updates the jar.
    SessionCookie,
    /// FlashBlade: `POST /api/login` with header `api-token` → reply header `x-auth-token`, sent
    /// back as `x-auth-token`.
    AuthTokenHeader,
}

impl CredentialKind {
    /// The login call, for messages (and `object` of its errors without the method).
    fn login_resource(self) -> &'static str {
        match self {
            CredentialKind::SessionCookie => "auth/session",
            CredentialKind::AuthTokenHeader => "login",
        }
    }
}

/// How one kind of array runs its sessions.
#[derive(Debug)]
pub(crate) struct Rules {
    pub credential: CredentialKind,
    /// The key of `GET /api/api_version`'s reply that lists the versions.
    pub versions_key: &'static str,
    /// The newest REST version the client speaks.
    pub newest_version: &'static [u32],
    /// Success, as each array's SDK defined it (FlashArray exactly 200, FlashBlade any 2xx).
    pub success: RangeInclusive<u16>,
    /// Statuses meaning the credential expired: log in again, once per call.
    pub relogin: &'static [u16],
    /// The status meaning the array no longer serves the negotiated version: renegotiate, once
    /// per call.
    pub version_refused: Option<u16>,
}

/// What `GET /api/api_version` tells before any login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The version this client would speak: the newest 1.x offered up to `newest_supported`.
    pub version: String,
    /// The newest version this client speaks.
    pub newest_supported: String,
    /// The array's clock, from the reply's `Date` header (whole seconds), when it sent one.
    pub clock: Option<std::time::SystemTime>,
}

/// Counters for benchmarks and tests: one authentication per process lifetime is the goal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallStats {
    /// Login requests sent (successful or not).
    pub authentications: u64,
    /// HTTP requests sent: version discovery, logins, retries and every page of a list included.
    pub calls: u64,
}

/// What a login gave.
#[derive(Clone)]
enum Credential {
    Cookies(BTreeMap<String, String>),
    AuthToken(String),
}

impl Credential {
    /// The header carrying it.
    fn header(&self) -> (&'static str, String) {
        match self {
            Credential::Cookies(jar) => ("Cookie", render_cookies(jar)),
            Credential::AuthToken(token) => ("x-auth-token", token.clone()),
        }
    }
}

/// The negotiated version and the credential, shared by all threads using the client.
#[derive(Default)]
struct State {
    version: Option<String>,
    credential: Option<Credential>,
    /// Bumped on each login, so a thread that saw a refusal can tell whether another thread
    /// already logged in again since it sent its request.
    generation: u64,
}

/// What one request runs with, copied out of the lock so requests run in parallel.
struct Current {
    version: String,
    header: (&'static str, String),
    generation: u64,
}

/// One array's transport, token and session.
pub(crate) struct Session {
    transport: Transport,
    token: ApiToken,
    rules: &'static Rules,
    state: Mutex<State>,
    authentications: AtomicU64,
}

impl Session {
    /// Builds the transport; touches no network. Fails only on unusable settings.
    pub fn new(
        endpoint: &Endpoint,
        token: &ApiToken,
        settings: &ClientSettings,
        rules: &'static Rules,
    ) -> Result<Self> {
        Ok(Self {
            transport: Transport::new(endpoint, settings)?,
            token: token.clone(),
            rules,
            state: Mutex::new(State::default()),
            authentications: AtomicU64::new(0),
        })
    }

    /// The management endpoint as configured, for messages.
    pub fn endpoint(&self) -> &str {
        self.transport.endpoint()
    }

    /// The REST version in use, once negotiated.
    pub fn api_version(&self) -> Option<String> {
        self.lock().version.clone()
    }

    /// The REST version in use, negotiating it (and logging in) first if needed.
    pub fn version(&self) -> Result<String> {
        Ok(self.current()?.version)
    }

    pub fn stats(&self) -> CallStats {
        CallStats {
            authentications: self.authentications.load(Ordering::Relaxed),
            calls: self.transport.requests(),
        }
    }

    /// The client's `Debug`: endpoint, version, whether logged in, the (redacted) token, stats.
    pub fn debug(&self, client: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (version, logged_in) = {
            let state = self.lock();
            (state.version.clone(), state.credential.is_some())
        };
        f.debug_struct(client)
            .field("endpoint", &self.endpoint())
            .field("version", &version)
            .field("logged_in", &logged_in)
            .field("token", &self.token)
            .field("stats", &self.stats())
            .finish()
    }

    /// Sends one call relative to `/api/<version>/` with the credential, logging in again or
    /// renegotiating once each as the [`Rules`] say. Any other non-success status is classified.
    pub fn execute(&self, call: &Call) -> Result<Reply> {
        let mut current = self.current()?;
        let mut logged_in_again = false;
        let mut renegotiated = false;
        loop {
            let mut request = Request::new(
                call.method,
                format!("/api/{}/{}", current.version, call.resource),
            );
            request.query = call.query.clone();
            request.body = call.body.clone();
            request.idempotent = call.idempotent;
            request.headers.push(current.header.clone());
            let reply = self.transport.send(&request)?;
            self.absorb_cookies(&reply, current.generation);
            let status = reply.status;
            if self.rules.success.contains(&status) {
                return Ok(reply);
            }
            if !logged_in_again && self.rules.relogin.contains(&status) {
                logged_in_again = true;
                log::debug!(
                    "{}: HTTP {status}, the credential expired; logging in again",
                    self.endpoint()
                );
                current = self.log_in_again(current.generation)?;
            } else if !renegotiated && self.rules.version_refused == Some(status) {
                renegotiated = true;
                log::debug!(
                    "{}: REST {} refused, renegotiating",
                    self.endpoint(),
                    current.version
                );
                current = self.renegotiate(&current.version)?;
            } else {
                return Err(classify(
                    self.endpoint(),
                    status,
                    &reply.body,
                    &call.object,
                    call.intent,
                )
                .redacted(self.token.expose()));
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Fields are only ever assigned whole, so a lock poisoned by a panic elsewhere still
        // holds a consistent state: the poison flag carries no information here.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The session to use, negotiating and logging in first if there is none yet.
    fn current(&self) -> Result<Current> {
        let mut state = self.lock();
        self.ensure(&mut state)
    }

    fn ensure(&self, state: &mut State) -> Result<Current> {
        let version = match &state.version {
            Some(version) => version.clone(),
            None => {
                let version = self.negotiate()?;
                state.version = Some(version.clone());
                version
            }
        };
        let header = match &state.credential {
            Some(credential) => credential.header(),
            None => {
                let credential = self.log_in(&version)?;
                let header = credential.header();
                state.credential = Some(credential);
                state.generation += 1;
                header
            }
        };
        Ok(Current {
            header,
            generation: state.generation,
            version,
        })
    }

    /// After a refusal of a request sent with login `generation`: log in again, unless another
    /// thread already did since.
    fn log_in_again(&self, generation: u64) -> Result<Current> {
        let mut state = self.lock();
        if state.generation == generation {
            state.credential = None;
        }
        self.ensure(&mut state)
    }

    /// After the array refused version `refused`: ask for the versions again (unless another
    /// thread already did).
    fn renegotiate(&self, refused: &str) -> Result<Current> {
        let mut state = self.lock();
        if state.version.as_deref() == Some(refused) {
            let version = self.negotiate()?;
            if version == refused {
                return Err(ArrayError::Api {
                    endpoint: self.endpoint().to_owned(),
                    status: self.rules.version_refused.unwrap_or_default(),
                    message: format!(
                        "the array refused REST {refused} yet still offers it as its newest 1.x"
                    ),
                });
            }
            state.version = Some(version);
        }
        self.ensure(&mut state)
    }

    /// `GET /api/api_version` → the newest 1.x version up to the newest the client speaks.
    fn negotiate(&self) -> Result<String> {
        self.hello().map(|hello| hello.version)
    }

    /// `GET /api/api_version`, which needs no login: the version this client would speak and the
    /// array's clock (its `Date` header). Changes nothing in the session.
    pub fn hello(&self) -> Result<Hello> {
        let operation = "GET api_version";
        let reply = self
            .transport
            .send(&Request::new(Method::Get, "/api/api_version".into()))?;
        if !self.rules.success.contains(&reply.status) {
            return Err(classify(
                self.endpoint(),
                reply.status,
                &reply.body,
                "api_version",
                Intent::Other,
            ));
        }
        let key = self.rules.versions_key;
        let versions: Value = wire::decode(self.endpoint(), operation, &reply.body)?;
        let offered: Vec<&str> = versions
            .get(key)
            .and_then(Value::as_array)
            .ok_or_else(|| {
                wire::bad_reply(
                    self.endpoint(),
                    operation,
                    format!("no list of versions `{key}`"),
                )
            })?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let newest = self.newest_version();
        let version = version::pick(offered.iter().copied(), self.rules.newest_version)
            .ok_or_else(|| {
                wire::bad_reply(
                    self.endpoint(),
                    operation,
                    format!("no REST version between 1.0 and {newest} offered (got {offered:?})"),
                )
            })?;
        Ok(Hello {
            version,
            newest_supported: newest,
            clock: reply
                .header("date")
                .and_then(|date| httpdate::parse_http_date(date).ok()),
        })
    }

    /// The newest REST version the client speaks, dotted.
    fn newest_version(&self) -> String {
        let parts: Vec<String> = self
            .rules
            .newest_version
            .iter()
            .map(u32::to_string)
            .collect();
        parts.join(".")
    }

    /// One login request → the credential. Retried like a GET: a repeated login only opens
    /// another session.
    fn log_in(&self, version: &str) -> Result<Credential> {
        self.authentications.fetch_add(1, Ordering::Relaxed);
        let kind = self.rules.credential;
        let secret = self.token.expose();
        let mut request = match kind {
            CredentialKind::SessionCookie => {
                let mut request =
                    Request::new(Method::Post, format!("/api/{version}/auth/session"));
                request.body = Some(json!({ "api_token": secret }));
                request
            }
            CredentialKind::AuthTokenHeader => {
                let mut request = Request::new(Method::Post, "/api/login".into());
                request.headers.push(("api-token", secret.to_owned()));
                request
            }
        };
        request.idempotent = true;
        let reply = self.transport.send(&request)?;
        let status = reply.status;
        if !self.rules.success.contains(&status) {
            let refused =
                (400..=499).contains(&status) && self.rules.version_refused != Some(status);
            let error = if refused {
                ArrayError::Auth {
                    endpoint: self.endpoint().to_owned(),
                    message: format!(
                        "API token refused (HTTP {status}): {}",
                        error_text(&reply.body).message
                    ),
                }
            } else {
                classify(
                    self.endpoint(),
                    status,
                    &reply.body,
                    kind.login_resource(),
                    Intent::Other,
                )
            };
            return Err(error.redacted(secret));
        }
        let operation = format!("POST {}", kind.login_resource());
        match kind {
            CredentialKind::SessionCookie => {
                let jar: BTreeMap<String, String> = reply
                    .headers_all("set-cookie")
                    .filter_map(parse_set_cookie)
                    .collect();
                if !jar.contains_key("session") {
                    return Err(wire::bad_reply(
                        self.endpoint(),
                        &operation,
                        "login succeeded but set no session cookie",
                    ));
                }
                Ok(Credential::Cookies(jar))
            }
            CredentialKind::AuthTokenHeader => reply
                .header("x-auth-token")
                .map(str::trim)
                .filter(|token| !token.is_empty())
                .map(|token| Credential::AuthToken(token.to_owned()))
                .ok_or_else(|| {
                    wire::bad_reply(
                        self.endpoint(),
                        &operation,
                        "login succeeded but sent no x-auth-token header",
                    )
                }),
        }
    }

    /// Stores any `Set-Cookie` of a reply in the cookie jar, if the login it answered is still
    /// the current one.
    fn absorb_cookies(&self, reply: &Reply, generation: u64) {
        if self.rules.credential != CredentialKind::SessionCookie {
            return;
        }
        let updates: Vec<(String, String)> = reply
            .headers_all("set-cookie")
            .filter_map(parse_set_cookie)
            .collect();
        if updates.is_empty() {
            return;
        }
        let mut state = self.lock();
        if state.generation != generation {
            return;
        }
        if let Some(Credential::Cookies(jar)) = state.credential.as_mut() {
            for (name, value) in updates {
                if value.is_empty() {
                    jar.remove(&name);
                } else {
                    jar.insert(name, value);
                }
            }
        }
    }
}

/// `session=abc; Path=/; HttpOnly` → `("session", "abc")`. An empty value means "delete".
fn parse_set_cookie(header: &str) -> Option<(String, String)> {
    let pair = header.split(';').next()?;
    let (name, value) = pair.split_once('=')?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    Some((name.to_owned(), value.trim().trim_matches('"').to_owned()))
}

fn render_cookies(jar: &BTreeMap<String, String>) -> String {
    jar.iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_cookie_headers_yield_name_and_value() {
        assert_eq!(
            parse_set_cookie("session=abc123; Path=/; HttpOnly; Secure"),
            Some(("session".into(), "abc123".into()))
        );
        assert_eq!(
            parse_set_cookie("session=\"q\""),
            Some(("session".into(), "q".into()))
        );
        assert_eq!(
            parse_set_cookie("session=; Max-Age=0"),
            Some(("session".into(), String::new()))
        );
        assert_eq!(parse_set_cookie("garbage"), None);
        assert_eq!(parse_set_cookie("=value"), None);
    }

    #[test]
    fn credentials_travel_in_their_own_header() {
        let jar: BTreeMap<String, String> = [
            ("session".to_owned(), "s1".to_owned()),
            ("a".to_owned(), "b".to_owned()),
        ]
        .into();
        assert_eq!(
            Credential::Cookies(jar).header(),
            ("Cookie", "a=b; session=s1".to_owned())
        );
        assert_eq!(
            Credential::Cookies(BTreeMap::new()).header(),
            ("Cookie", String::new())
        );
        assert_eq!(
            Credential::AuthToken("t-1".into()).header(),
            ("x-auth-token", "t-1".to_owned())
        );
    }
}
