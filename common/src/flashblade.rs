//! Blocking client for the FlashBlade REST 1.x API (what Pure's `purity_fb` 1.12 SDK speaks).
//!
//! REST calls wrapped (paths under `/api/<version>/`; names travel in the query string, `names=`
//! to read, `name=` to change, except on create where the name is in the body):
//!
//! | method | call |
//! |---|---|
//! | [`FlashBlade::array_info`], [`FlashBlade::space`] | `GET arrays`, `GET arrays/space` (`free = capacity - space.total_physical`) |
//! | [`FlashBlade::create_file_system`] | `POST file-systems` `{"name","provisioned","hard_limit_enabled","snapshot_directory_enabled","fast_remove_directory_enabled","nfs":{...}}` |
//! | [`FlashBlade::get_file_system`], [`FlashBlade::list_file_systems`] | `GET file-systems?names=<n>` / `?filter=name='<glob>'`, paged |
//! | [`FlashBlade::resize_file_system`], [`FlashBlade::set_export_rules`], [`FlashBlade::set_hard_limit`] | `PATCH file-systems?name=<n>` |
//! | [`FlashBlade::destroy_file_system`], [`FlashBlade::recover_file_system`] | `PATCH` `{"destroyed":true}` with NFS/SMB/HTTP off in the same body / `{"destroyed":false}` then NFS back on |
//! | [`FlashBlade::eradicate_file_system`] | `DELETE file-systems?name=<n>` |
//! | [`FlashBlade::create_snapshot`], [`FlashBlade::list_snapshots`] | `POST file-system-snapshots?sources=<fs>` `{"suffix"}`, `GET file-system-snapshots?names_or_sources=<fs>` |
//! | [`FlashBlade::destroy_snapshot`], [`FlashBlade::eradicate_snapshot`] | `PATCH`/`DELETE file-system-snapshots?name=<snap>` |
//! | [`FlashBlade::data_vips`] | `GET network-interfaces`, kept when enabled with `data` in `services` |
//!
//! Any 2xx is success, as for the SDK. Replies are the envelope
//! `{"items": [...], "pagination_info": {"continuation_token": ...}}`; lists send `limit` and
//! follow `token` until the array gives no continuation token.
//!
//! **Session.** Construction touches no network. The first call discovers the version
//! (`GET /api/api_version` → `versions`, the newest ≤ 1.12, compared numerically) and logs in
//! (`POST /api/login` with header `api-token` → reply header `x-auth-token`, sent on every later
//! call). Version and token sit behind one mutex shared by all threads; login happens under it,
//! so concurrent first calls authenticate once. The SDK never logs in again by itself; we do,
//! once, on 401 or 403 (an expired token), then replay the request; a second refusal is
//! [`ArrayError::Auth`].
//!
//! **Retries** (mechanics in `client/transport.rs`, same policy as the FlashArray client): GETs
//! and the PATCH/DELETE calls that converge when repeated (resize, rules, hard limit, destroy,
//! recover, eradicate) get at most `ClientSettings::retries` extra attempts after a transport
//! failure or a 5xx, pausing 100 ms, 400 ms, ...; creates are never retried blindly, and
//! timeouts are not retried.
//!
//! The API token is only ever put in the login header; it is not in `Debug` output, and array
//! messages that echo it are redacted.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::client::call::Call;
use crate::client::classify::{Intent, classify, error_text};
use crate::client::transport::{Method, Reply, Request, Transport};
use crate::client::wire::{self, bad_reply, null_as_empty};
use crate::client::{paging, version};
use crate::config::{ApiToken, ClientSettings, FlashBladeConfig};
use crate::error::{ArrayError, Result};
pub use crate::flasharray::CallStats;

/// `GET arrays`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BladeInfo {
    pub name: String,
    pub id: String,
    pub version: String,
}

/// `GET arrays/space`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BladeSpace {
    pub capacity: u64,
    /// `space.total_physical`.
    pub used: u64,
}

impl BladeSpace {
    pub fn free(&self) -> u64 {
        self.capacity.saturating_sub(self.used)
    }
}

/// NFS settings of a file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nfs {
    pub rules: String,
    pub v3_enabled: bool,
    pub v4_1_enabled: bool,
}

/// A file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSystem {
    pub name: String,
    pub id: Option<String>,
    pub provisioned: u64,
    pub hard_limit_enabled: bool,
    pub snapshot_directory_enabled: bool,
    pub nfs: Nfs,
    pub destroyed: bool,
    /// Milliseconds until eradication, for destroyed file systems.
    pub time_remaining: Option<u64>,
    /// Milliseconds since the epoch.
    pub created: Option<u64>,
}

/// What to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFileSystem {
    pub name: String,
    pub provisioned: u64,
    pub hard_limit: bool,
    pub snapshot_directory: bool,
    pub nfs_rules: String,
    pub nfs_v3: bool,
    pub nfs_v4_1: bool,
}

/// A file system snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsSnapshot {
    pub name: String,
    pub source: String,
    pub suffix: String,
    pub destroyed: bool,
}

/// A network interface (data VIPs have `services` containing `data`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInterface {
    pub name: String,
    pub address: String,
    pub services: Vec<String>,
    pub enabled: bool,
}

/// The newest FlashBlade REST version this client speaks.
const NEWEST_REST_VERSION: &[u32] = &[1, 12];
const DEFAULT_PAGE_SIZE: usize = 1000;

/// A FlashBlade. Cheap to construct: login happens on the first call. `Send + Sync`.
pub struct FlashBlade {
    transport: Transport,
    token: ApiToken,
    session: Mutex<Session>,
    authentications: AtomicU64,
    page_size: usize,
}

/// The negotiated version and the `x-auth-token`, shared by all threads using the client.
#[derive(Default)]
struct Session {
    version: Option<String>,
    auth_token: Option<String>,
    /// Bumped on each login (see the FlashArray client).
    generation: u64,
}

struct Current {
    version: String,
    auth_token: String,
    generation: u64,
}

/// The `{"items": [...], "pagination_info": {...}}` envelope.
#[derive(Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
struct Envelope<T> {
    #[serde(default = "Vec::new", deserialize_with = "null_as_empty")]
    items: Vec<T>,
    #[serde(default)]
    pagination_info: Option<PaginationInfo>,
}

#[derive(Deserialize)]
struct PaginationInfo {
    #[serde(default)]
    continuation_token: Option<String>,
}

impl FlashBlade {
    /// Builds the client without touching the network. Fails only on unusable settings.
    pub fn new(config: &FlashBladeConfig, settings: &ClientSettings) -> Result<Self> {
        Ok(Self {
            transport: Transport::new(&config.mgmt_endpoint, settings)?,
            token: config.api_token.clone(),
            session: Mutex::new(Session::default()),
            authentications: AtomicU64::new(0),
            page_size: DEFAULT_PAGE_SIZE,
        })
    }

    /// Items per page when listing (default 1000); at least 1.
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// The REST version in use, once negotiated (by the first call).
    pub fn api_version(&self) -> Option<String> {
        self.lock().version.clone()
    }

    /// The management endpoint, as configured.
    pub fn endpoint(&self) -> &str {
        self.transport.endpoint()
    }

    /// Logins and HTTP requests so far (every request counts, including version discovery,
    /// logins, retries and each page of a list).
    pub fn stats(&self) -> CallStats {
        CallStats {
            authentications: self.authentications.load(Ordering::Relaxed),
            calls: self.transport.requests(),
        }
    }

    /// `GET arrays`.
    pub fn array_info(&self) -> Result<BladeInfo> {
        #[derive(Deserialize)]
        struct ArrayWire {
            name: String,
            id: String,
            #[serde(default)]
            version: Option<String>,
        }
        let call = Call::new(Method::Get, "arrays".into(), "arrays");
        let array: ArrayWire = self.first_item(&call)?;
        Ok(BladeInfo {
            name: array.name,
            id: array.id,
            version: array.version.unwrap_or_default(),
        })
    }

    /// `GET arrays/space`: `used` is `space.total_physical`.
    pub fn space(&self) -> Result<BladeSpace> {
        #[derive(Deserialize)]
        struct SpaceWire {
            capacity: u64,
            space: Physical,
        }
        #[derive(Deserialize)]
        struct Physical {
            total_physical: u64,
        }
        let call = Call::new(Method::Get, "arrays/space".into(), "arrays");
        let space: SpaceWire = self.first_item(&call)?;
        Ok(BladeSpace {
            capacity: space.capacity,
            used: space.space.total_physical,
        })
    }

    /// `POST file-systems` with the name in the body. A taken name is
    /// [`ArrayError::AlreadyExists`]. Not retried.
    pub fn create_file_system(&self, fs: &NewFileSystem) -> Result<FileSystem> {
        wire::check_name(self.endpoint(), "file system", &fs.name)?;
        let body = json!({
            "name": fs.name,
            "provisioned": fs.provisioned,
            "hard_limit_enabled": fs.hard_limit,
            "snapshot_directory_enabled": fs.snapshot_directory,
            "fast_remove_directory_enabled": true,
            "nfs": {
                "rules": fs.nfs_rules,
                "v3_enabled": fs.nfs_v3,
                "v4_1_enabled": fs.nfs_v4_1,
            },
        });
        let call = Call::new(Method::Post, "file-systems".into(), &fs.name).body(body);
        self.first_item::<FsWire>(&call).map(FileSystem::from)
    }

    /// Live or destroyed (check `destroyed`); missing is [`crate::ArrayError::NotFound`].
    /// (`GET file-systems?names=<name>`.)
    pub fn get_file_system(&self, name: &str) -> Result<FileSystem> {
        wire::check_name(self.endpoint(), "file system", name)?;
        let call = Call::new(Method::Get, "file-systems".into(), name).query("names", name);
        let found: Vec<FsWire> = self.call_items(&call)?;
        found
            .into_iter()
            .map(FileSystem::from)
            .find(|fs| fs.name == name)
            .ok_or_else(|| ArrayError::NotFound {
                endpoint: self.endpoint().to_owned(),
                object: name.to_owned(),
                message: format!("file system {name} is not listed"),
            })
    }

    /// File systems whose names match a glob (`k8s-pvc-*`), all pages, destroyed ones included.
    /// A glob is sent as `filter=name='<glob>'`; a pattern without `*` is one exact name, sent as
    /// `names=` (absent → empty list); an empty string lists every file system.
    pub fn list_file_systems(&self, names: &str) -> Result<Vec<FileSystem>> {
        let mut call = Call::new(Method::Get, "file-systems".into(), names);
        if names.contains('*') {
            call = call.query("filter", name_filter(self.endpoint(), names)?);
        } else if !names.is_empty() {
            wire::check_name(self.endpoint(), "file system", names)?;
            call = call.query("names", names);
        }
        match self.call_all_pages::<FsWire>(&call) {
            Ok(found) => Ok(found.into_iter().map(FileSystem::from).collect()),
            Err(ArrayError::NotFound { .. }) if !names.contains('*') => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// `PATCH file-systems?name=<name>` `{"provisioned": bytes}`. Retried.
    pub fn resize_file_system(&self, name: &str, provisioned: u64) -> Result<FileSystem> {
        self.patch_file_system(name, json!({ "provisioned": provisioned }), Intent::Other)
    }

    /// `PATCH file-systems?name=<name>` `{"nfs": {"rules": rules}}`. Retried.
    pub fn set_export_rules(&self, name: &str, rules: &str) -> Result<FileSystem> {
        self.patch_file_system(name, json!({ "nfs": { "rules": rules } }), Intent::Other)
    }

    /// `PATCH file-systems?name=<name>` `{"hard_limit_enabled": enabled}`. Retried.
    pub fn set_hard_limit(&self, name: &str, enabled: bool) -> Result<FileSystem> {
        self.patch_file_system(
            name,
            json!({ "hard_limit_enabled": enabled }),
            Intent::Other,
        )
    }

    /// Turns NFS/SMB/HTTP off and destroys, in one PATCH (as Manila does: a destroyed file
    /// system must not stay exported). Retried.
    pub fn destroy_file_system(&self, name: &str) -> Result<()> {
        let body = json!({
            "destroyed": true,
            "nfs": { "v3_enabled": false, "v4_1_enabled": false },
            "smb": { "enabled": false },
            "http": { "enabled": false },
        });
        self.patch_file_system(name, body, Intent::Destroy)
            .map(drop)
    }

    /// `PATCH` `{"destroyed": false}`, then NFS v3 and v4.1 back on (destroy turned them off).
    /// Two requests because an array may refuse protocol changes on a destroyed file system.
    /// Retried.
    pub fn recover_file_system(&self, name: &str) -> Result<FileSystem> {
        self.patch_file_system(name, json!({ "destroyed": false }), Intent::Other)?;
        let nfs_on = json!({ "nfs": { "v3_enabled": true, "v4_1_enabled": true } });
        self.patch_file_system(name, nfs_on, Intent::Other)
    }

    /// Only valid once destroyed (`DELETE file-systems?name=<name>`). Retried.
    pub fn eradicate_file_system(&self, name: &str) -> Result<()> {
        wire::check_name(self.endpoint(), "file system", name)?;
        let call = Call::new(Method::Delete, "file-systems".into(), name)
            .query("name", name)
            .idempotent();
        self.execute(&call).map(drop)
    }

    /// `POST file-system-snapshots?sources=<fs>` `{"suffix": suffix}`. Not retried.
    pub fn create_snapshot(&self, fs: &str, suffix: &str) -> Result<FsSnapshot> {
        wire::check_name(self.endpoint(), "file system", fs)?;
        wire::check_name(self.endpoint(), "snapshot suffix", suffix)?;
        let call = Call::new(Method::Post, "file-system-snapshots".into(), fs)
            .query("sources", fs)
            .body(json!({ "suffix": suffix }));
        self.first_item::<SnapshotWire>(&call).map(FsSnapshot::from)
    }

    /// Snapshots of one file system (`GET file-system-snapshots?names_or_sources=<fs>`), all pages.
    pub fn list_snapshots(&self, fs: &str) -> Result<Vec<FsSnapshot>> {
        wire::check_name(self.endpoint(), "file system", fs)?;
        let call = Call::new(Method::Get, "file-system-snapshots".into(), fs)
            .query("names_or_sources", fs);
        let found: Vec<SnapshotWire> = self.call_all_pages(&call)?;
        Ok(found.into_iter().map(FsSnapshot::from).collect())
    }

    /// `PATCH file-system-snapshots?name=<name>` `{"destroyed": true}`. Retried.
    pub fn destroy_snapshot(&self, name: &str) -> Result<()> {
        wire::check_name(self.endpoint(), "snapshot", name)?;
        let call = Call::new(Method::Patch, "file-system-snapshots".into(), name)
            .query("name", name)
            .body(json!({ "destroyed": true }))
            .idempotent()
            .destroying();
        self.execute(&call).map(drop)
    }

    /// `DELETE file-system-snapshots?name=<name>`, once destroyed. Retried.
    pub fn eradicate_snapshot(&self, name: &str) -> Result<()> {
        wire::check_name(self.endpoint(), "snapshot", name)?;
        let call = Call::new(Method::Delete, "file-system-snapshots".into(), name)
            .query("name", name)
            .idempotent();
        self.execute(&call).map(drop)
    }

    /// Enabled interfaces whose services include `data` (`GET network-interfaces`).
    pub fn data_vips(&self) -> Result<Vec<NetworkInterface>> {
        #[derive(Deserialize)]
        struct InterfaceWire {
            name: String,
            #[serde(default)]
            address: Option<String>,
            #[serde(default, deserialize_with = "null_as_empty")]
            services: Vec<String>,
            /// Arrays before the field existed only had enabled interfaces.
            #[serde(default)]
            enabled: Option<bool>,
        }
        let call = Call::new(
            Method::Get,
            "network-interfaces".into(),
            "network-interfaces",
        );
        let interfaces: Vec<InterfaceWire> = self.call_all_pages(&call)?;
        Ok(interfaces
            .into_iter()
            .filter_map(|i| {
                let address = i.address.filter(|a| !a.is_empty())?;
                let vip = NetworkInterface {
                    name: i.name,
                    address,
                    services: i.services,
                    enabled: i.enabled.unwrap_or(true),
                };
                (vip.enabled && vip.services.iter().any(|s| s == "data")).then_some(vip)
            })
            .collect())
    }

    // ---- dispatch ------------------------------------------------------------------------------

    fn patch_file_system(&self, name: &str, body: Value, intent: Intent) -> Result<FileSystem> {
        wire::check_name(self.endpoint(), "file system", name)?;
        let mut call = Call::new(Method::Patch, "file-systems".into(), name)
            .query("name", name)
            .body(body)
            .idempotent();
        call.intent = intent;
        self.first_item::<FsWire>(&call).map(FileSystem::from)
    }

    /// The items of one reply.
    fn call_items<T: DeserializeOwned>(&self, call: &Call) -> Result<Vec<T>> {
        let reply = self.execute(call)?;
        let envelope: Envelope<T> = wire::decode(self.endpoint(), &call.label(), &reply.body)?;
        Ok(envelope.items)
    }

    /// The first item of a reply that must have one.
    fn first_item<T: DeserializeOwned>(&self, call: &Call) -> Result<T> {
        self.call_items(call)?
            .into_iter()
            .next()
            .ok_or_else(|| bad_reply(self.endpoint(), &call.label(), "no items in the reply"))
    }

    /// Every page: `limit`, then `token=<continuation_token>` until there is none.
    fn call_all_pages<T: DeserializeOwned>(&self, call: &Call) -> Result<Vec<T>> {
        paging::collect_pages(self.endpoint(), &call.label(), |token| {
            let mut page = call.clone().query("limit", self.page_size.to_string());
            if let Some(token) = token {
                page = page.query("token", token.to_owned());
            }
            let reply = self.execute(&page)?;
            let envelope: Envelope<T> = wire::decode(self.endpoint(), &call.label(), &reply.body)?;
            let next = envelope.pagination_info.and_then(|p| p.continuation_token);
            Ok((envelope.items, next))
        })
    }

    /// Sends one call with `x-auth-token`, logging in again once on 401/403. Success is any 2xx.
    fn execute(&self, call: &Call) -> Result<Reply> {
        let mut current = self.current()?;
        let mut logged_in_again = false;
        loop {
            let mut request = Request::new(
                call.method,
                format!("/api/{}/{}", current.version, call.resource),
            );
            request.query = call.query.clone();
            request.body = call.body.clone();
            request.idempotent = call.idempotent;
            request
                .headers
                .push(("x-auth-token", current.auth_token.clone()));
            let reply = self.transport.send(&request)?;
            match reply.status {
                200..=299 => return Ok(reply),
                401 | 403 if !logged_in_again => {
                    logged_in_again = true;
                    log::debug!("{}: token refused, logging in again", self.endpoint());
                    current = self.log_in_again(current.generation)?;
                }
                status => {
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
    }

    fn lock(&self) -> MutexGuard<'_, Session> {
        // Fields are only ever assigned whole, so a poisoned lock still holds a usable session.
        self.session
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn current(&self) -> Result<Current> {
        let mut session = self.lock();
        self.ensure(&mut session)
    }

    fn ensure(&self, session: &mut Session) -> Result<Current> {
        let version = match &session.version {
            Some(version) => version.clone(),
            None => {
                let version = self.negotiate()?;
                session.version = Some(version.clone());
                version
            }
        };
        let auth_token = match &session.auth_token {
            Some(token) => token.clone(),
            None => {
                let token = self.log_in()?;
                session.auth_token = Some(token.clone());
                session.generation += 1;
                token
            }
        };
        Ok(Current {
            version,
            auth_token,
            generation: session.generation,
        })
    }

    fn log_in_again(&self, generation: u64) -> Result<Current> {
        let mut session = self.lock();
        if session.generation == generation {
            session.auth_token = None;
        }
        self.ensure(&mut session)
    }

    /// `GET /api/api_version` → the newest 1.x version up to 1.12.
    fn negotiate(&self) -> Result<String> {
        #[derive(Deserialize)]
        struct Versions {
            versions: Vec<Value>,
        }
        let operation = "GET api_version";
        let reply = self
            .transport
            .send(&Request::new(Method::Get, "/api/api_version".into()))?;
        if !(200..300).contains(&reply.status) {
            return Err(classify(
                self.endpoint(),
                reply.status,
                &reply.body,
                "api_version",
                Intent::Other,
            ));
        }
        let offered: Versions = wire::decode(self.endpoint(), operation, &reply.body)?;
        let offered: Vec<&str> = offered.versions.iter().filter_map(Value::as_str).collect();
        version::pick(offered.iter().copied(), NEWEST_REST_VERSION).ok_or_else(|| {
            bad_reply(
                self.endpoint(),
                operation,
                format!("no REST version between 1.0 and 1.12 offered (got {offered:?})"),
            )
        })
    }

    /// `POST /api/login` with header `api-token` → the `x-auth-token` reply header. Retried like
    /// a GET: a repeated login only opens another session.
    fn log_in(&self) -> Result<String> {
        self.authentications.fetch_add(1, Ordering::Relaxed);
        let secret = self.token.expose();
        let mut request = Request::new(Method::Post, "/api/login".into());
        request.headers.push(("api-token", secret.to_owned()));
        request.idempotent = true;
        let reply = self.transport.send(&request)?;
        match reply.status {
            200..=299 => {}
            status @ 400..=499 => {
                return Err(ArrayError::Auth {
                    endpoint: self.endpoint().to_owned(),
                    message: format!(
                        "API token refused (HTTP {status}): {}",
                        error_text(&reply.body).message
                    ),
                }
                .redacted(secret));
            }
            status => {
                return Err(
                    classify(self.endpoint(), status, &reply.body, "login", Intent::Other)
                        .redacted(secret),
                );
            }
        }
        reply
            .header("x-auth-token")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| {
                bad_reply(
                    self.endpoint(),
                    "POST login",
                    "login succeeded but sent no x-auth-token header",
                )
            })
    }
}

impl fmt::Debug for FlashBlade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let session = self.lock();
        f.debug_struct("FlashBlade")
            .field("endpoint", &self.endpoint())
            .field("version", &session.version)
            .field("logged_in", &session.auth_token.is_some())
            .field("token", &self.token)
            .field("stats", &self.stats())
            .finish()
    }
}

/// `k8s-pvc-*` → `name='k8s-pvc-*'`. Quotes cannot be escaped in the filter language, so a glob
/// containing one is refused.
fn name_filter(endpoint: &str, glob: &str) -> Result<String> {
    wire::check_name(endpoint, "file system", glob)?;
    if glob.contains('\'') {
        return Err(ArrayError::InvalidInput {
            endpoint: endpoint.to_owned(),
            message: format!("file system name pattern {glob:?} contains a quote"),
        });
    }
    Ok(format!("name='{glob}'"))
}

// ---- wire formats ---------------------------------------------------------------------------

/// A file system as the array sends it. Only `name` is required: the SDK's models make every
/// field optional, and older releases lack some (`hard_limit_enabled` < 1.4, `v4_1_enabled` < 1.6).
#[derive(Deserialize)]
struct FsWire {
    name: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    provisioned: Option<u64>,
    #[serde(default)]
    hard_limit_enabled: Option<bool>,
    #[serde(default)]
    snapshot_directory_enabled: Option<bool>,
    #[serde(default)]
    nfs: Option<NfsWire>,
    #[serde(default)]
    destroyed: Option<bool>,
    #[serde(default)]
    time_remaining: Option<u64>,
    #[serde(default)]
    created: Option<u64>,
}

#[derive(Deserialize)]
struct NfsWire {
    #[serde(default)]
    rules: Option<String>,
    #[serde(default)]
    v3_enabled: Option<bool>,
    #[serde(default)]
    v4_1_enabled: Option<bool>,
    /// Deprecated form of `v3_enabled` (before 1.6).
    #[serde(default)]
    enabled: Option<bool>,
}

impl From<FsWire> for FileSystem {
    fn from(wire: FsWire) -> Self {
        let nfs = wire.nfs.map_or(
            Nfs {
                rules: String::new(),
                v3_enabled: false,
                v4_1_enabled: false,
            },
            |nfs| Nfs {
                rules: nfs.rules.unwrap_or_default(),
                v3_enabled: nfs.v3_enabled.or(nfs.enabled).unwrap_or(false),
                v4_1_enabled: nfs.v4_1_enabled.unwrap_or(false),
            },
        );
        let destroyed = wire.destroyed.unwrap_or(false);
        FileSystem {
            name: wire.name,
            id: wire.id,
            provisioned: wire.provisioned.unwrap_or(0),
            hard_limit_enabled: wire.hard_limit_enabled.unwrap_or(false),
            snapshot_directory_enabled: wire.snapshot_directory_enabled.unwrap_or(false),
            nfs,
            destroyed,
            time_remaining: wire.time_remaining.filter(|_| destroyed),
            created: wire.created,
        }
    }
}

#[derive(Deserialize)]
struct SnapshotWire {
    name: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    owner: Option<Owner>,
    #[serde(default)]
    suffix: Option<String>,
    #[serde(default)]
    destroyed: Option<bool>,
}

#[derive(Deserialize)]
struct Owner {
    #[serde(default)]
    name: Option<String>,
}

impl From<SnapshotWire> for FsSnapshot {
    fn from(wire: SnapshotWire) -> Self {
        // `fs.suffix`: when the array omits a field, the name still says it.
        let (name_source, name_suffix) =
            wire.name.rsplit_once('.').map_or((None, None), |(s, x)| {
                (Some(s.to_owned()), Some(x.to_owned()))
            });
        FsSnapshot {
            source: wire
                .source
                .or_else(|| wire.owner.and_then(|o| o.name))
                .or(name_source)
                .unwrap_or_default(),
            suffix: wire.suffix.or(name_suffix).unwrap_or_default(),
            destroyed: wire.destroyed.unwrap_or(false),
            name: wire.name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_become_name_filters_and_quotes_are_refused() {
        assert_eq!(
            name_filter("b", "k8s-pvc-*").expect("ok"),
            "name='k8s-pvc-*'"
        );
        assert!(matches!(
            name_filter("b", "x'*"),
            Err(ArrayError::InvalidInput { .. })
        ));
    }

    #[test]
    fn file_systems_decode_from_sparse_and_full_replies() {
        let full = br#"{"name": "fs1", "id": "i", "provisioned": 1073741824, "hard_limit_enabled": true,
            "snapshot_directory_enabled": true, "destroyed": false, "time_remaining": null,
            "created": 1700000000000, "nfs": {"rules": "*(rw)", "v3_enabled": true, "v4_1_enabled": true},
            "space": {"virtual": 0}, "smb": {"enabled": false}}"#;
        let fs = FileSystem::from(wire::decode::<FsWire>("b", "op", full).expect("full"));
        assert!(fs.nfs.v3_enabled && fs.nfs.v4_1_enabled && fs.hard_limit_enabled);
        assert_eq!(
            (fs.provisioned, fs.created),
            (1 << 30, Some(1_700_000_000_000))
        );

        let old = br#"{"name": "fs1", "nfs": {"enabled": true}, "destroyed": true, "time_remaining": 86400000}"#;
        let fs = FileSystem::from(wire::decode::<FsWire>("b", "op", old).expect("old"));
        assert!(fs.nfs.v3_enabled && !fs.nfs.v4_1_enabled);
        assert_eq!((fs.destroyed, fs.time_remaining), (true, Some(86_400_000)));

        let nameless = wire::decode::<FsWire>("b", "op", br#"{"provisioned": 1}"#);
        assert!(
            matches!(nameless, Err(ArrayError::BadReply { ref detail, .. }) if detail.contains("name"))
        );
    }

    #[test]
    fn envelopes_tolerate_null_items_and_missing_pagination() {
        let e: Envelope<FsWire> = wire::decode("b", "op", br#"{"items": null}"#).expect("null");
        assert!(e.items.is_empty() && e.pagination_info.is_none());
        let e: Envelope<FsWire> = wire::decode(
            "b",
            "op",
            br#"{"items": [{"name": "a"}], "pagination_info": {"continuation_token": "t", "total_item_count": 9}}"#,
        )
        .expect("page");
        assert_eq!(
            e.pagination_info
                .and_then(|p| p.continuation_token)
                .as_deref(),
            Some("t")
        );
    }

    #[test]
    fn snapshot_source_and_suffix_fall_back_to_the_name() {
        let s = FsSnapshot::from(
            wire::decode::<SnapshotWire>("b", "op", br#"{"name": "fs1.s1"}"#).expect("sparse"),
        );
        assert_eq!(
            (s.source.as_str(), s.suffix.as_str(), s.destroyed),
            ("fs1", "s1", false)
        );
        let s = FsSnapshot::from(
            wire::decode::<SnapshotWire>(
                "b",
                "op",
                br#"{"name": "fs1.s1", "owner": {"name": "fs1"}, "suffix": "s1", "destroyed": true}"#,
            )
            .expect("full"),
        );
        assert_eq!((s.source.as_str(), s.destroyed), ("fs1", true));
    }

    #[test]
    fn construction_touches_no_network_and_the_client_is_shareable() {
        fn shared<T: Send + Sync>() {}
        shared::<FlashBlade>();
        let config = FlashBladeConfig {
            mgmt_endpoint: "192.0.2.2:9".parse().expect("endpoint"),
            api_token: ApiToken::new("T-secret"),
            nfs_endpoint: None,
            labels: Default::default(),
        };
        let blade = FlashBlade::new(&config, &ClientSettings::default()).expect("new");
        assert_eq!(blade.stats(), CallStats::default());
        assert!(!format!("{blade:?}").contains("T-secret"));
    }
}
