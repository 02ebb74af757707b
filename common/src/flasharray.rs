//! Blocking client for the FlashArray REST 1.x API (what Pure's `purestorage` 1.19 SDK speaks).
//!
//! REST calls wrapped (paths under `/api/<version>/`):
//!
//! | method | call |
//! |---|---|
//! | [`FlashArray::array_info`], [`FlashArray::space`] | `GET array`, `GET array?space=true` (a dict or a one-element list) |
//! | [`FlashArray::create_volume`], [`FlashArray::copy_volume`] | `POST volume/<n>` `{"size", QoS}` / `{"source", "overwrite"}` |
//! | [`FlashArray::get_volume`], [`FlashArray::get_qos`] | `GET volume/<n>?pending=true`, `GET volume/<n>?qos=true` |
//! | [`FlashArray::list_volumes`] | `GET volume?names=<glob>[&pending=true]`, paged |
//! | [`FlashArray::extend_volume`], [`FlashArray::set_qos`], [`FlashArray::rename_volume`], [`FlashArray::recover_volume`] | `PUT volume/<n>` `{"size","truncate":false}` / limits / `{"name"}` / `{"action":"recover"}` |
//! | [`FlashArray::destroy_volume`], [`FlashArray::eradicate_volume`] | `DELETE volume/<n>[?eradicate=true]` |
//! | [`FlashArray::create_snapshot`], [`FlashArray::list_snapshots`] | `POST volume` `{"source":[v],"snap":true,"suffix"}`, `GET volume/<v>?snap=true` |
//! | [`FlashArray::create_host`], [`FlashArray::get_host`], [`FlashArray::list_hosts`], [`FlashArray::modify_host`], [`FlashArray::delete_host`] | `POST/GET/PUT/DELETE host/<h>`, `GET host` (not paged) |
//! | [`FlashArray::connect_host`], [`FlashArray::disconnect_host`] | `POST/DELETE host/<h>/volume/<v>` |
//! | [`FlashArray::list_host_connections`], [`FlashArray::list_volume_connections`] | `GET host/<h>/volume?private=true`, `GET volume/<v>/host` |
//! | [`FlashArray::list_ports`] | `GET port` |
//!
//! GET and DELETE parameters travel in the query string, POST and PUT parameters as JSON bodies.
//! Success is exactly HTTP 200, as for the SDK.
//!
//! **Session.** Construction touches no network (the flex driver builds a client per call). The
//! first call negotiates the version (`GET /api/api_version`, the newest 1.x up to 1.19, compared
//! numerically) and logs in (`POST auth/session` with the API token → cookie `session`). The
//! version and cookie jar sit behind one mutex and are shared by every thread using the client;
//! login happens under that lock, so concurrent first calls authenticate once. Any `Set-Cookie`
//! on a reply updates the jar. A 401 means the session expired (idle timeout, array restart):
//! log in again once, unless another thread already did, and replay the request; a second 401 is
//! [`ArrayError::Auth`]. HTTP 450 means the array no longer serves our version: renegotiate once
//! and replay.
//!
//! **Retries** (mechanics in `client/transport.rs`): GETs and the PUT/DELETE calls whose
//! repetition converges (extend, QoS, destroy, eradicate, disconnect, delete host) get at most
//! `ClientSettings::retries` extra attempts, pausing 100 ms, 400 ms, 1.6 s (capped at 2 s), after
//! a transport failure (refused, reset, DNS) or a 5xx. Creates, connects, renames, recovers and
//! host changes are never retried: a retry after a lost reply would fail with "already exists"
//! and hide what happened, so the error surfaces and callers look the object up. A timeout is not
//! retried either, so `request_timeout` bounds each request. Each method's documentation says
//! whether it is retried.
//!
//! **Lists** are paged (`limit`, `token`, next token in `x-next-token`) on REST ≥ 1.7, so a large
//! array is listed completely without one huge reply. Hosts are the exception: see
//! [`FlashArray::list_hosts`].
//!
//! The API token is only ever put in the login body; it is not in `Debug` output, and array
//! messages that echo it are redacted.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::client::call::Call;
use crate::client::classify::{Intent, classify};
use crate::client::transport::{Method, Reply, Request, Transport};
use crate::client::wire::{self, bad_reply, null_as_empty, optional_limit, path_segment};
use crate::client::{paging, version};
use crate::config::{ApiToken, ClientSettings, FlashArrayConfig};
use crate::error::{ArrayError, Result};

/// `GET array`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ArrayInfo {
    pub array_name: String,
    pub id: String,
    pub version: String,
    #[serde(default)]
    pub revision: String,
}

/// `GET array?space=true`: capacity and used bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArraySpace {
    pub capacity: u64,
    /// Used (physical) bytes, the array's `total`.
    pub used: u64,
    /// Sum of provisioned volume sizes, when the array reports it.
    pub provisioned: Option<u64>,
}

impl ArraySpace {
    pub fn free(&self) -> u64 {
        self.capacity.saturating_sub(self.used)
    }
}

/// A volume or snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub name: String,
    pub size: u64,
    /// 24 hex digits; see [`crate::names::volume_wwid`].
    pub serial: String,
    pub created: Option<String>,
    pub source: Option<String>,
    /// Seconds until eradication; `Some` only for destroyed volumes listed with `pending`.
    pub time_remaining: Option<u64>,
}

impl Volume {
    pub fn is_destroyed(&self) -> bool {
        self.time_remaining.is_some()
    }
}

/// QoS limits; `None` means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Qos {
    /// Bytes per second.
    pub bandwidth_limit: Option<u64>,
    pub iops_limit: Option<u64>,
}

/// Initiators of a host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Initiators {
    pub iqns: Vec<String>,
    pub wwns: Vec<String>,
    pub nqns: Vec<String>,
}

/// A host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub iqns: Vec<String>,
    /// Upper-case hex, no colons, as the array reports them.
    pub wwns: Vec<String>,
    pub nqns: Vec<String>,
    pub hgroup: Option<String>,
}

/// Changes to a host's initiator lists (`PUT host/<h>`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostChange {
    pub add: Initiators,
    pub remove: Initiators,
}

/// A private host-volume connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub host: String,
    pub volume: String,
    pub lun: u32,
}

/// A target port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub name: String,
    pub iqn: Option<String>,
    /// `ip:port`, IPv6 as `[addr]:port`.
    pub portal: Option<String>,
    pub wwn: Option<String>,
    pub nqn: Option<String>,
}

/// Counters for benchmarks and tests: one authentication per process lifetime is the goal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallStats {
    /// Login requests sent (successful or not).
    pub authentications: u64,
    /// HTTP requests sent: version discovery, logins, retries and every page of a list included.
    pub calls: u64,
}

/// The newest FlashArray REST version this client speaks.
const NEWEST_REST_VERSION: &[u32] = &[1, 19];
/// `limit`/`token` paging exists from REST 1.7 on.
const PAGING_SINCE: &[u32] = &[1, 7];
const DEFAULT_PAGE_SIZE: usize = 1000;

/// A FlashArray. Cheap to construct: version negotiation and login happen on the first call.
/// `Send + Sync`: one client can serve many threads; the session is shared.
pub struct FlashArray {
    transport: Transport,
    token: ApiToken,
    session: Mutex<Session>,
    authentications: AtomicU64,
    page_size: usize,
}

/// The negotiated version and the cookie jar, shared by all threads using the client.
#[derive(Default)]
struct Session {
    version: Option<String>,
    cookies: Option<BTreeMap<String, String>>,
    /// Bumped on each login, so a thread that saw a 401 can tell whether another thread already
    /// logged in again since it sent its request.
    generation: u64,
}

/// What one request runs with, copied out of the lock so requests run in parallel.
struct Current {
    version: String,
    cookie: String,
    generation: u64,
}

impl FlashArray {
    /// Builds the client without touching the network. Fails only on unusable settings (an
    /// unreadable or non-PEM CA file, zero timeouts), naming the problem.
    pub fn new(config: &FlashArrayConfig, settings: &ClientSettings) -> Result<Self> {
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

    /// The management endpoint, as configured (for messages and PV options).
    pub fn endpoint(&self) -> &str {
        self.transport.endpoint()
    }

    /// Logins and HTTP requests so far (every request counts: version discovery, logins,
    /// retries and each page of a list).
    pub fn stats(&self) -> CallStats {
        CallStats {
            authentications: self.authentications.load(Ordering::Relaxed),
            calls: self.transport.requests(),
        }
    }

    /// `GET array`.
    pub fn array_info(&self) -> Result<ArrayInfo> {
        self.call_json(&Call::new(Method::Get, "array".into(), "array"))
    }

    /// `GET array?space=true`.
    pub fn space(&self) -> Result<ArraySpace> {
        #[derive(Deserialize)]
        struct SpaceWire {
            capacity: u64,
            total: u64,
            #[serde(default)]
            provisioned: Option<u64>,
        }
        let call = Call::new(Method::Get, "array".into(), "array").query("space", "true");
        let reply = self.execute(&call)?;
        let space: SpaceWire = wire::dict_or_first(self.endpoint(), &call.label(), &reply.body)?;
        Ok(ArraySpace {
            capacity: space.capacity,
            used: space.total,
            provisioned: space.provisioned,
        })
    }

    /// `POST volume/<name>` with the size in bytes and the limits that are set. Not retried.
    pub fn create_volume(&self, name: &str, size: u64, qos: &Qos) -> Result<Volume> {
        let mut body = json!({ "size": size });
        if let Some(bandwidth) = qos.bandwidth_limit {
            body["bandwidth_limit"] = json!(bandwidth);
        }
        if let Some(iops) = qos.iops_limit {
            body["iops_limit"] = json!(iops);
        }
        let call = Call::new(Method::Post, self.volume_path(name)?, name).body(body);
        self.call_json::<VolumeWire>(&call).map(Volume::from)
    }

    /// A live volume; a destroyed one is [`crate::ArrayError::Destroyed`].
    /// (`GET volume/<name>?pending=true`, which shows destroyed volumes with `time_remaining`.)
    pub fn get_volume(&self, name: &str) -> Result<Volume> {
        let call = Call::new(Method::Get, self.volume_path(name)?, name).query("pending", "true");
        let volume = Volume::from(self.call_json::<VolumeWire>(&call)?);
        if volume.is_destroyed() {
            return Err(ArrayError::Destroyed {
                endpoint: self.endpoint().to_owned(),
                object: name.to_owned(),
                message: format!(
                    "volume {name} is destroyed, eradicated in {} s unless recovered",
                    volume.time_remaining.unwrap_or_default()
                ),
            });
        }
        Ok(volume)
    }

    /// Volumes matching a glob (`k8s-pvc-*`); `pending` also lists destroyed ones.
    /// An empty glob lists every volume; an exact name that does not exist gives an empty list.
    /// (`GET volume?names=<glob>[&pending=true]`, all pages.)
    pub fn list_volumes(&self, names: &str, pending: bool) -> Result<Vec<Volume>> {
        let mut call = Call::new(Method::Get, "volume".into(), names);
        if !names.is_empty() {
            wire::check_name(self.endpoint(), "volume", names)?;
            call = call.query("names", names);
        }
        if pending {
            call = call.query("pending", "true");
        }
        match self.call_list::<VolumeWire>(&call) {
            Ok(volumes) => Ok(volumes.into_iter().map(Volume::from).collect()),
            Err(ArrayError::NotFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Grows a volume to `size` bytes (`PUT volume/<name>` `{"size","truncate":false}`, retried:
    /// growing to the same size twice is harmless), then reads it back. Shrinking is refused by
    /// the array.
    pub fn extend_volume(&self, name: &str, size: u64) -> Result<Volume> {
        let call = Call::new(Method::Put, self.volume_path(name)?, name)
            .body(json!({ "size": size, "truncate": false }))
            .idempotent();
        self.execute(&call)?;
        self.get_volume(name)
    }

    /// `GET volume/<name>?qos=true`.
    pub fn get_qos(&self, name: &str) -> Result<Qos> {
        #[derive(Deserialize)]
        struct QosWire {
            #[serde(default, deserialize_with = "optional_limit")]
            bandwidth_limit: Option<u64>,
            #[serde(default, deserialize_with = "optional_limit")]
            iops_limit: Option<u64>,
        }
        let call = Call::new(Method::Get, self.volume_path(name)?, name).query("qos", "true");
        let qos: QosWire = self.call_json(&call)?;
        Ok(Qos {
            bandwidth_limit: qos.bandwidth_limit,
            iops_limit: qos.iops_limit,
        })
    }

    /// Sets both limits; `None` clears a limit (sent as `""`). `PUT volume/<name>`, retried.
    pub fn set_qos(&self, name: &str, qos: &Qos) -> Result<()> {
        let limit = |value: Option<u64>| value.map_or_else(|| json!(""), |v| json!(v));
        let body = json!({
            "bandwidth_limit": limit(qos.bandwidth_limit),
            "iops_limit": limit(qos.iops_limit),
        });
        let call = Call::new(Method::Put, self.volume_path(name)?, name)
            .body(body)
            .idempotent();
        self.execute(&call).map(drop)
    }

    /// `PUT volume/<name>` `{"name": new_name}`. Not retried (a repeat would not find `name`).
    pub fn rename_volume(&self, name: &str, new_name: &str) -> Result<()> {
        wire::check_name(self.endpoint(), "new volume", new_name)?;
        let call =
            Call::new(Method::Put, self.volume_path(name)?, name).body(json!({ "name": new_name }));
        self.execute(&call).map(drop)
    }

    /// Moves the volume to the array's 24 h trash (`DELETE volume/<name>`). A connected volume is
    /// [`ArrayError::HasConnections`]; an already destroyed one [`ArrayError::Destroyed`].
    /// Retried: a repeat converges (callers treat `Destroyed` as done).
    pub fn destroy_volume(&self, name: &str) -> Result<()> {
        let call = Call::new(Method::Delete, self.volume_path(name)?, name)
            .idempotent()
            .destroying();
        self.execute(&call).map(drop)
    }

    /// Removes a destroyed volume for good (`DELETE volume/<name>?eradicate=true`). Retried.
    pub fn eradicate_volume(&self, name: &str) -> Result<()> {
        let call = Call::new(Method::Delete, self.volume_path(name)?, name)
            .query("eradicate", "true")
            .idempotent();
        self.execute(&call).map(drop)
    }

    /// Brings a destroyed volume back (`PUT volume/<name>` `{"action":"recover"}`). Not retried.
    pub fn recover_volume(&self, name: &str) -> Result<()> {
        let call = Call::new(Method::Put, self.volume_path(name)?, name)
            .body(json!({ "action": "recover" }));
        self.execute(&call).map(drop)
    }

    /// `POST volume` `{"source":[volume],"snap":true,"suffix"}`; without a suffix the array
    /// numbers the snapshot. Not retried.
    pub fn create_snapshot(&self, volume: &str, suffix: Option<&str>) -> Result<Volume> {
        wire::check_name(self.endpoint(), "volume", volume)?;
        let mut body = json!({ "source": [volume], "snap": true });
        if let Some(suffix) = suffix {
            wire::check_name(self.endpoint(), "snapshot suffix", suffix)?;
            body["suffix"] = json!(suffix);
        }
        let call = Call::new(Method::Post, "volume".into(), volume).body(body);
        let snapshots: Vec<VolumeWire> = self.call_json(&call)?;
        snapshots
            .into_iter()
            .next()
            .map(Volume::from)
            .ok_or_else(|| bad_reply(self.endpoint(), &call.label(), "empty list of snapshots"))
    }

    /// Snapshots of one volume (`GET volume/<volume>?snap=true`).
    pub fn list_snapshots(&self, volume: &str) -> Result<Vec<Volume>> {
        let call = Call::new(Method::Get, self.volume_path(volume)?, volume).query("snap", "true");
        let snapshots: Vec<VolumeWire> = self.call_json(&call)?;
        Ok(snapshots.into_iter().map(Volume::from).collect())
    }

    /// Clones a volume or snapshot into `dest` (`POST volume/<dest>` `{"source"[,"overwrite"]}`).
    /// Not retried.
    pub fn copy_volume(&self, source: &str, dest: &str, overwrite: bool) -> Result<Volume> {
        wire::check_name(self.endpoint(), "source volume", source)?;
        let mut body = json!({ "source": source });
        if overwrite {
            body["overwrite"] = json!(true);
        }
        let call = Call::new(Method::Post, self.volume_path(dest)?, dest).body(body);
        self.call_json::<VolumeWire>(&call).map(Volume::from)
    }

    /// `POST host/<name>` with the non-empty initiator lists. An initiator of another host is
    /// [`ArrayError::InUse`]. Not retried.
    pub fn create_host(&self, name: &str, initiators: &Initiators) -> Result<Host> {
        let mut body = json!({});
        for (key, list) in [
            ("iqnlist", &initiators.iqns),
            ("wwnlist", &initiators.wwns),
            ("nqnlist", &initiators.nqns),
        ] {
            if !list.is_empty() {
                body[key] = json!(list);
            }
        }
        let call = Call::new(Method::Post, self.host_path(name)?, name).body(body);
        self.call_json::<HostWire>(&call).map(Host::from)
    }

    /// `GET host/<name>`.
    pub fn get_host(&self, name: &str) -> Result<Host> {
        let call = Call::new(Method::Get, self.host_path(name)?, name);
        self.call_json::<HostWire>(&call).map(Host::from)
    }

    /// Every host (`GET host`); the flex driver finds its node by initiator here, on every block
    /// mount and unmount. One unpaged request on every REST version, as the SDK's `list_hosts()`
    /// sends it: paged, every listing would cost a second request, because the last page still
    /// carries `x-next-token` and only an empty page ends the list. A host list stays small (the
    /// array caps the number of hosts), far below the client's 64 MiB reply limit.
    pub fn list_hosts(&self) -> Result<Vec<Host>> {
        let call = Call::new(Method::Get, "host".into(), "host");
        Ok(self
            .call_json::<Vec<HostWire>>(&call)?
            .into_iter()
            .map(Host::from)
            .collect())
    }

    /// Adds and removes initiators: one `PUT host/<name>` per non-empty list
    /// (`addiqnlist`, `remiqnlist`, ...; one list per request is the form every Purity release
    /// accepts), then reads the host back. Not retried (adding twice is an error on the array).
    pub fn modify_host(&self, name: &str, change: &HostChange) -> Result<Host> {
        let path = self.host_path(name)?;
        let lists = [
            ("addiqnlist", &change.add.iqns),
            ("addwwnlist", &change.add.wwns),
            ("addnqnlist", &change.add.nqns),
            ("remiqnlist", &change.remove.iqns),
            ("remwwnlist", &change.remove.wwns),
            ("remnqnlist", &change.remove.nqns),
        ];
        for (key, list) in lists {
            if !list.is_empty() {
                let call = Call::new(Method::Put, path.clone(), name).body(json!({ key: list }));
                self.execute(&call)?;
            }
        }
        self.get_host(name)
    }

    /// `DELETE host/<name>`; refused with [`ArrayError::HasConnections`] while volumes are
    /// connected. Retried.
    pub fn delete_host(&self, name: &str) -> Result<()> {
        let call = Call::new(Method::Delete, self.host_path(name)?, name)
            .idempotent()
            .destroying();
        self.execute(&call).map(drop)
    }

    /// `POST host/<host>/volume/<volume>` (`{"lun":N}` when given, else the array picks).
    /// An existing connection is [`ArrayError::AlreadyExists`]. Not retried.
    pub fn connect_host(&self, host: &str, volume: &str, lun: Option<u32>) -> Result<Connection> {
        #[derive(Deserialize)]
        struct Connected {
            name: String,
            vol: String,
            lun: u32,
        }
        let body = lun.map_or_else(|| json!({}), |lun| json!({ "lun": lun }));
        let call = Call::new(Method::Post, self.connection_path(host, volume)?, volume).body(body);
        let connected: Connected = self.call_json(&call)?;
        Ok(Connection {
            host: connected.name,
            volume: connected.vol,
            lun: connected.lun,
        })
    }

    /// `DELETE host/<host>/volume/<volume>`; a pair that is not connected is
    /// [`ArrayError::NotConnected`]. Retried.
    pub fn disconnect_host(&self, host: &str, volume: &str) -> Result<()> {
        let call =
            Call::new(Method::Delete, self.connection_path(host, volume)?, volume).idempotent();
        self.execute(&call).map(drop)
    }

    /// Private connections of a host (`GET host/<host>/volume?private=true`).
    pub fn list_host_connections(&self, host: &str) -> Result<Vec<Connection>> {
        #[derive(Deserialize)]
        struct Row {
            name: String,
            vol: String,
            lun: u32,
        }
        let resource = format!("{}/volume", self.host_path(host)?);
        let call = Call::new(Method::Get, resource, host).query("private", "true");
        let rows: Vec<Row> = self.call_json(&call)?;
        Ok(rows
            .into_iter()
            .map(|row| Connection {
                host: row.name,
                volume: row.vol,
                lun: row.lun,
            })
            .collect())
    }

    /// Hosts a volume is privately connected to (`GET volume/<volume>/host`).
    pub fn list_volume_connections(&self, volume: &str) -> Result<Vec<Connection>> {
        #[derive(Deserialize)]
        struct Row {
            host: String,
            name: String,
            lun: u32,
        }
        let resource = format!("{}/host", self.volume_path(volume)?);
        let rows: Vec<Row> = self.call_json(&Call::new(Method::Get, resource, volume))?;
        Ok(rows
            .into_iter()
            .map(|row| Connection {
                host: row.host,
                volume: row.name,
                lun: row.lun,
            })
            .collect())
    }

    /// Target ports (`GET port`): iSCSI ports have `iqn` and `portal`, FC ports `wwn`.
    pub fn list_ports(&self) -> Result<Vec<Port>> {
        #[derive(Deserialize)]
        struct PortWire {
            name: String,
            #[serde(default)]
            iqn: Option<String>,
            #[serde(default)]
            portal: Option<String>,
            #[serde(default)]
            wwn: Option<String>,
            #[serde(default)]
            nqn: Option<String>,
        }
        let non_empty = |value: Option<String>| value.filter(|v| !v.is_empty());
        let ports: Vec<PortWire> =
            self.call_json(&Call::new(Method::Get, "port".into(), "port"))?;
        Ok(ports
            .into_iter()
            .map(|p| Port {
                name: p.name,
                iqn: non_empty(p.iqn),
                portal: non_empty(p.portal),
                wwn: non_empty(p.wwn),
                nqn: non_empty(p.nqn),
            })
            .collect())
    }

    // ---- paths -------------------------------------------------------------------------------

    fn volume_path(&self, name: &str) -> Result<String> {
        Ok(format!(
            "volume/{}",
            path_segment(self.endpoint(), "volume", name)?
        ))
    }

    fn host_path(&self, name: &str) -> Result<String> {
        Ok(format!(
            "host/{}",
            path_segment(self.endpoint(), "host", name)?
        ))
    }

    fn connection_path(&self, host: &str, volume: &str) -> Result<String> {
        Ok(format!(
            "{}/volume/{}",
            self.host_path(host)?,
            path_segment(self.endpoint(), "volume", volume)?
        ))
    }

    // ---- session and dispatch ----------------------------------------------------------------

    fn call_json<T: DeserializeOwned>(&self, call: &Call) -> Result<T> {
        let reply = self.execute(call)?;
        wire::decode(self.endpoint(), &call.label(), &reply.body)
    }

    /// A list call, following `x-next-token` until an empty page or no token (REST ≥ 1.7).
    fn call_list<T: DeserializeOwned>(&self, call: &Call) -> Result<Vec<T>> {
        if !version::at_least(&self.current()?.version, PAGING_SINCE) {
            return self.call_json(call);
        }
        paging::collect_pages(self.endpoint(), &call.label(), |token| {
            let mut page = call.clone().query("limit", self.page_size.to_string());
            if let Some(token) = token {
                page = page.query("token", token.to_owned());
            }
            let reply = self.execute(&page)?;
            let batch: Vec<T> = wire::decode(self.endpoint(), &call.label(), &reply.body)?;
            Ok((batch, next_page_token(&reply)))
        })
    }

    /// Sends one call with the session, handling 401 (log in again once) and 450 (negotiate the
    /// version again once). Success is exactly 200.
    fn execute(&self, call: &Call) -> Result<Reply> {
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
            request.headers.push(("Cookie", current.cookie.clone()));
            let reply = self.transport.send(&request)?;
            self.absorb_cookies(&reply, current.generation);
            match reply.status {
                200 => return Ok(reply),
                401 if !logged_in_again => {
                    logged_in_again = true;
                    log::debug!("{}: session refused, logging in again", self.endpoint());
                    current = self.log_in_again(current.generation)?;
                }
                450 if !renegotiated => {
                    renegotiated = true;
                    log::debug!(
                        "{}: REST {} refused, renegotiating",
                        self.endpoint(),
                        current.version
                    );
                    current = self.renegotiate(&current.version)?;
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
        // A panic elsewhere while holding the lock leaves a consistent Session (fields are only
        // assigned whole), so the poison flag carries no information here.
        self.session
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The session to use, negotiating and logging in first if there is none yet.
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
        if session.cookies.is_none() {
            self.log_in(session, &version)?;
        }
        Ok(Current {
            cookie: render_cookies(session.cookies.as_ref()),
            generation: session.generation,
            version,
        })
    }

    /// After a 401 on a request sent with session `generation`: log in again, unless another
    /// thread already did since.
    fn log_in_again(&self, generation: u64) -> Result<Current> {
        let mut session = self.lock();
        if session.generation == generation {
            session.cookies = None;
        }
        self.ensure(&mut session)
    }

    /// After a 450 on `refused`: ask for the versions again (unless another thread already did).
    fn renegotiate(&self, refused: &str) -> Result<Current> {
        let mut session = self.lock();
        if session.version.as_deref() == Some(refused) {
            let version = self.negotiate()?;
            if version == refused {
                return Err(ArrayError::Api {
                    endpoint: self.endpoint().to_owned(),
                    status: 450,
                    message: format!(
                        "the array refused REST {refused} yet still offers it as its newest 1.x"
                    ),
                });
            }
            session.version = Some(version);
        }
        self.ensure(&mut session)
    }

    /// `GET /api/api_version` → the newest 1.x version up to 1.19.
    fn negotiate(&self) -> Result<String> {
        #[derive(Deserialize)]
        struct Versions {
            version: Vec<Value>,
        }
        let operation = "GET api_version";
        let reply = self
            .transport
            .send(&Request::new(Method::Get, "/api/api_version".into()))?;
        if reply.status != 200 {
            return Err(classify(
                self.endpoint(),
                reply.status,
                &reply.body,
                "api_version",
                Intent::Other,
            ));
        }
        let offered: Versions = wire::decode(self.endpoint(), operation, &reply.body)?;
        let offered: Vec<&str> = offered.version.iter().filter_map(Value::as_str).collect();
        version::pick(offered.iter().copied(), NEWEST_REST_VERSION).ok_or_else(|| {
            bad_reply(
                self.endpoint(),
                operation,
                format!("no REST version between 1.0 and 1.19 offered (got {offered:?})"),
            )
        })
    }

    /// `POST auth/session` `{"api_token"}` → the `session` cookie. Retried like a GET: a repeated
    /// login only opens another session.
    fn log_in(&self, session: &mut Session, version: &str) -> Result<()> {
        self.authentications.fetch_add(1, Ordering::Relaxed);
        let mut request = Request::new(Method::Post, format!("/api/{version}/auth/session"));
        request.body = Some(json!({ "api_token": self.token.expose() }));
        request.idempotent = true;
        let reply = self.transport.send(&request)?;
        let secret = self.token.expose();
        match reply.status {
            200 => {}
            status @ 400..=499 if status != 450 => {
                let text = crate::client::classify::error_text(&reply.body);
                return Err(ArrayError::Auth {
                    endpoint: self.endpoint().to_owned(),
                    message: format!("API token refused (HTTP {status}): {}", text.message),
                }
                .redacted(secret));
            }
            status => {
                return Err(classify(
                    self.endpoint(),
                    status,
                    &reply.body,
                    "auth/session",
                    Intent::Other,
                )
                .redacted(secret));
            }
        }
        let mut jar = BTreeMap::new();
        for header in reply.headers_all("set-cookie") {
            if let Some((name, value)) = parse_set_cookie(header) {
                jar.insert(name, value);
            }
        }
        if !jar.contains_key("session") {
            return Err(bad_reply(
                self.endpoint(),
                "POST auth/session",
                "login succeeded but set no session cookie",
            ));
        }
        session.cookies = Some(jar);
        session.generation += 1;
        Ok(())
    }

    /// Stores any `Set-Cookie` of a reply, if the session it answered is still the current one.
    fn absorb_cookies(&self, reply: &Reply, generation: u64) {
        let updates: Vec<(String, String)> = reply
            .headers_all("set-cookie")
            .filter_map(parse_set_cookie)
            .collect();
        if updates.is_empty() {
            return;
        }
        let mut session = self.lock();
        if session.generation != generation {
            return;
        }
        if let Some(jar) = session.cookies.as_mut() {
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

impl fmt::Debug for FlashArray {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let session = self.lock();
        f.debug_struct("FlashArray")
            .field("endpoint", &self.endpoint())
            .field("version", &session.version)
            .field("logged_in", &session.cookies.is_some())
            .field("token", &self.token)
            .field("stats", &self.stats())
            .finish()
    }
}

/// The next page's token, if the reply names one.
fn next_page_token(reply: &Reply) -> Option<String> {
    reply
        .header("x-next-token")
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .map(str::to_owned)
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

fn render_cookies(jar: Option<&BTreeMap<String, String>>) -> String {
    jar.into_iter()
        .flatten()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("; ")
}

// ---- wire formats ---------------------------------------------------------------------------

/// A volume or snapshot as the array sends it; extra keys are ignored.
#[derive(Deserialize)]
struct VolumeWire {
    name: String,
    size: u64,
    serial: String,
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    time_remaining: Option<u64>,
}

impl From<VolumeWire> for Volume {
    fn from(wire: VolumeWire) -> Self {
        Volume {
            name: wire.name,
            size: wire.size,
            serial: wire.serial,
            created: wire.created,
            source: wire.source,
            time_remaining: wire.time_remaining,
        }
    }
}

#[derive(Deserialize)]
struct HostWire {
    name: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    iqn: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    wwn: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    nqn: Vec<String>,
    #[serde(default)]
    hgroup: Option<String>,
}

impl From<HostWire> for Host {
    fn from(wire: HostWire) -> Self {
        Host {
            name: wire.name,
            iqns: wire.iqn,
            wwns: wire.wwn,
            nqns: wire.nqn,
            hgroup: wire.hgroup.filter(|g| !g.is_empty()),
        }
    }
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
    fn cookie_jar_renders_as_one_header() {
        let jar: BTreeMap<String, String> = [
            ("session".to_owned(), "s1".to_owned()),
            ("a".to_owned(), "b".to_owned()),
        ]
        .into();
        assert_eq!(render_cookies(Some(&jar)), "a=b; session=s1");
        assert_eq!(render_cookies(None), "");
    }

    #[test]
    fn volume_replies_decode_with_and_without_optional_fields() {
        let full = br#"{"created": "2017-12-16T05:12:38Z", "name": "v1", "serial": "B75F8356604B431D00011010",
                       "size": 1073741824, "source": null, "time_remaining": null, "extra": [1]}"#;
        let v = Volume::from(wire::decode::<VolumeWire>("a", "op", full).expect("full"));
        assert_eq!((v.size, v.is_destroyed()), (1 << 30, false));
        let pending = br#"{"name": "v1", "serial": "S", "size": 1, "time_remaining": 86400}"#;
        let v = Volume::from(wire::decode::<VolumeWire>("a", "op", pending).expect("pending"));
        assert!(v.is_destroyed());
        let missing = wire::decode::<VolumeWire>("a", "op", br#"{"name": "v1", "size": 1}"#);
        assert!(
            matches!(missing, Err(ArrayError::BadReply { ref detail, .. }) if detail.contains("serial"))
        );
    }

    #[test]
    fn host_replies_tolerate_null_and_missing_lists() {
        let body = br#"{"name": "h", "iqn": null, "wwn": ["5001500150015000"], "hgroup": ""}"#;
        let host = Host::from(wire::decode::<HostWire>("a", "op", body).expect("host"));
        assert_eq!(host.iqns.len() + host.nqns.len(), 0);
        assert_eq!(host.wwns, ["5001500150015000"]);
        assert_eq!(host.hgroup, None);
    }

    #[test]
    fn construction_touches_no_network() {
        // Port 9 (discard) on a TEST-NET address: nothing answers, and nothing must be asked.
        let config = FlashArrayConfig {
            mgmt_endpoint: "192.0.2.1:9".parse().expect("endpoint"),
            api_token: ApiToken::new("t"),
            labels: Default::default(),
        };
        let array = FlashArray::new(&config, &ClientSettings::default()).expect("new");
        assert_eq!(array.stats(), CallStats::default());
        assert_eq!(array.endpoint(), "192.0.2.1:9");
    }

    #[test]
    fn the_client_is_send_and_sync() {
        fn shared<T: Send + Sync>() {}
        shared::<FlashArray>();
    }
}
