//! The configured arrays as the provisioner uses them: async wrappers over the blocking clients
//! of `flashvol-common`, with call latency metrics, the time of the last successful call, a short
//! free-space cache (refreshed by placement and by the array poller, [`crate::serve::monitor::poller`])
//! and the array id.
//!
//! Owns the mapping from provisioner operations (look up, create, grow, destroy, list ours) to
//! FlashArray and FlashBlade calls, and which array replies mean "already gone".

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use flashvol_common::ArrayError;
use flashvol_common::config::Config;
use flashvol_common::flasharray::{FlashArray, Qos};
use flashvol_common::flashblade::{FlashBlade, NewFileSystem};
use flashvol_common::locate::Presence;
use flashvol_common::options::Backend;

use crate::decide::placement::Space;
use crate::serve::metrics::Metrics;

/// The client of one array.
pub enum Client {
    FlashArray(FlashArray),
    FlashBlade(FlashBlade),
}

/// What an array holds under a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Absent,
    /// A live volume of this many bytes.
    Live {
        size: u64,
    },
    /// Destroyed, pending eradication: the name is taken.
    Destroyed,
}

/// What locating a PV's volume needs to know ([`flashvol_common::locate`]).
impl From<Lookup> for Presence {
    fn from(lookup: Lookup) -> Self {
        match lookup {
            Lookup::Absent => Presence::Absent,
            Lookup::Live { .. } => Presence::Live,
            Lookup::Destroyed => Presence::Destroyed,
        }
    }
}

/// One of our volumes on an array, for the orphan collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub created: Option<SystemTime>,
}

/// What an array says about its space (`GET array?space=true`, `GET arrays/space`): what
/// placement ranks arrays by and what the array gauges show.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpaceReport {
    pub capacity: u64,
    /// Physical bytes used.
    pub used: u64,
    /// Sum of the volumes' provisioned sizes: FlashArray only (FlashBlade's `arrays/space` has
    /// no such total).
    pub provisioned: Option<u64>,
    pub data_reduction: Option<f64>,
}

impl SpaceReport {
    pub fn free(&self) -> u64 {
        self.capacity.saturating_sub(self.used)
    }
}

#[derive(Debug, Clone, Copy)]
struct CachedSpace {
    read_at: Instant,
    free: u64,
    placed: u64,
}

/// One configured array.
pub struct Array {
    pub backend: Backend,
    /// Management endpoint as written in `pure.json`: the PV's `arrayEndpoint`.
    pub endpoint: String,
    pub labels: BTreeMap<String, String>,
    /// Configured FlashBlade data VIP.
    nfs_endpoint: Option<String>,
    client: Arc<Client>,
    id: Mutex<Option<String>>,
    /// Free bytes as last read, when, and the bytes placed here since (see [`Array::charge`]).
    space: Mutex<Option<CachedSpace>>,
    space_ttl: Duration,
    metrics: Arc<Metrics>,
}

impl Array {
    /// Runs one blocking client call off the async runtime and records its latency.
    pub(crate) async fn call<T: Send + 'static>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&Client) -> Result<T, ArrayError> + Send + 'static,
    ) -> Result<T, ArrayError> {
        let client = Arc::clone(&self.client);
        let started = Instant::now();
        let result = tokio::task::spawn_blocking(move || f(&client))
            .await
            .unwrap_or_else(|join| {
                Err(ArrayError::Transport {
                    endpoint: self.endpoint.clone(),
                    message: format!("{operation} did not complete: {join}"),
                    timed_out: false,
                    tls: false,
                })
            });
        let kind = result.as_ref().err().map(ArrayError::kind);
        self.metrics
            .array_call(&self.endpoint, operation, started.elapsed(), kind);
        if result.is_ok() {
            self.metrics
                .array_contact(&self.endpoint, self.backend, SystemTime::now());
        }
        result
    }

    /// The array's own id (cached after the first success): recorded in PVs so a volume is
    /// found again even when the endpoint changes.
    pub async fn id(&self) -> Result<String, ArrayError> {
        if let Some(id) = self.id.lock().ok().and_then(|g| g.clone()) {
            return Ok(id);
        }
        let id = self
            .call("array_info", |c| match c {
                Client::FlashArray(fa) => fa.array_info().map(|i| i.id),
                Client::FlashBlade(fb) => fb.array_info().map(|i| i.id),
            })
            .await?;
        if let Ok(mut g) = self.id.lock() {
            *g = Some(id.clone());
        }
        Ok(id)
    }

    /// Free bytes and what was placed since they were read, cached for the space TTL so a burst
    /// of claims does not query the array for each.
    pub async fn space(&self) -> Result<Space, ArrayError> {
        if let Some(c) = self.space.lock().ok().and_then(|g| *g)
            && c.read_at.elapsed() < self.space_ttl
        {
            return Ok(Space {
                free: c.free,
                placed: c.placed,
            });
        }
        let free = self.read_space().await?.free();
        Ok(Space { free, placed: 0 })
    }

    /// Asks the array for its space now (one call) and refreshes the free-space cache with the
    /// answer, so a poll also serves placement.
    pub async fn read_space(&self) -> Result<SpaceReport, ArrayError> {
        let report = self
            .call("space", |c| match c {
                Client::FlashArray(fa) => fa.space().map(|s| SpaceReport {
                    capacity: s.capacity,
                    used: s.used,
                    provisioned: s.provisioned,
                    data_reduction: s.data_reduction,
                }),
                Client::FlashBlade(fb) => fb.space().map(|s| SpaceReport {
                    capacity: s.capacity,
                    used: s.used,
                    provisioned: None,
                    data_reduction: s.data_reduction,
                }),
            })
            .await?;
        if let Ok(mut g) = self.space.lock() {
            *g = Some(CachedSpace {
                read_at: Instant::now(),
                free: report.free(),
                placed: 0,
            });
        }
        Ok(report)
    }

    /// Records a volume just created here. Volumes are thin, so the array's own free figure
    /// barely moves during a burst; placement ranks arrays by free space minus what was placed
    /// since the last read, so a burst spreads instead of landing on one array until the cache
    /// expires. Whether a volume fits is still judged by the array's own figure: thin arrays
    /// take more provisioned bytes than they have free.
    pub fn charge(&self, bytes: u64) {
        if let Ok(mut g) = self.space.lock()
            && let Some(c) = g.as_mut()
        {
            c.placed = c.placed.saturating_add(bytes);
        }
    }

    /// What the array holds under `name`.
    pub async fn lookup(&self, name: &str) -> Result<Lookup, ArrayError> {
        let name = name.to_owned();
        let found = self
            .call("get", move |c| match c {
                Client::FlashArray(fa) => {
                    fa.get_volume(&name).map(|v| Lookup::Live { size: v.size })
                }
                Client::FlashBlade(fb) => fb.get_file_system(&name).map(|fs| {
                    if fs.destroyed {
                        Lookup::Destroyed
                    } else {
                        Lookup::Live {
                            size: fs.provisioned,
                        }
                    }
                }),
            })
            .await;
        match found {
            Ok(l) => Ok(l),
            Err(ArrayError::NotFound { .. }) => Ok(Lookup::Absent),
            Err(ArrayError::Destroyed { .. }) => Ok(Lookup::Destroyed),
            Err(e) => Err(e),
        }
    }

    /// Creates a FlashArray volume; returns the size the array allocated.
    pub async fn create_volume(&self, name: &str, size: u64, qos: Qos) -> Result<u64, ArrayError> {
        let name = name.to_owned();
        self.call("create_volume", move |c| match c {
            Client::FlashArray(fa) => fa.create_volume(&name, size, &qos).map(|v| v.size),
            Client::FlashBlade(_) => Err(wrong_kind("create_volume")),
        })
        .await
    }

    /// Creates a FlashBlade file system; returns its provisioned size.
    pub async fn create_file_system(&self, fs: NewFileSystem) -> Result<u64, ArrayError> {
        self.call("create_file_system", move |c| match c {
            Client::FlashBlade(fb) => fb.create_file_system(&fs).map(|f| f.provisioned),
            Client::FlashArray(_) => Err(wrong_kind("create_file_system")),
        })
        .await
    }

    /// Grows a FlashArray volume or a FlashBlade file system (its hard limit is its provisioned
    /// size) to `size` bytes; returns the size the array then reports.
    pub async fn grow(&self, name: &str, size: u64) -> Result<u64, ArrayError> {
        let name = name.to_owned();
        self.call("grow", move |c| match c {
            Client::FlashArray(fa) => fa.extend_volume(&name, size).map(|v| v.size),
            Client::FlashBlade(fb) => fb.resize_file_system(&name, size).map(|f| f.provisioned),
        })
        .await
    }

    /// The NFS server for file systems of this FlashBlade: the configured `NfsEndPoint`, else the
    /// first enabled data VIP.
    pub async fn nfs_endpoint(&self) -> Result<String, ArrayError> {
        if let Some(ep) = &self.nfs_endpoint {
            return Ok(ep.clone());
        }
        let endpoint = self.endpoint.clone();
        self.call("data_vips", move |c| match c {
            Client::FlashBlade(fb) => {
                fb.data_vips()?
                    .into_iter()
                    .next()
                    .map(|v| v.address)
                    .ok_or(ArrayError::BadReply {
                        endpoint,
                        operation: "data_vips".into(),
                        detail: "no enabled data interface; set NfsEndPoint in pure.json".into(),
                    })
            }
            Client::FlashArray(_) => Err(wrong_kind("data_vips")),
        })
        .await
    }

    /// Destroys `name`: FlashArray volumes are disconnected from their hosts first; FlashBlade
    /// file systems have their protocols turned off by the destroy itself. Eradicates when asked.
    /// Already destroyed or missing counts as done: the answer is `false` then, `true` when this
    /// call destroyed it.
    pub async fn destroy(&self, name: &str, eradicate: bool) -> Result<bool, ArrayError> {
        let gone = |r: Result<(), ArrayError>| match r {
            Ok(()) => Ok(true),
            Err(ArrayError::NotFound { .. } | ArrayError::Destroyed { .. }) => Ok(false),
            Err(e) => Err(e),
        };
        let destroyed_now;
        match self.backend {
            Backend::Block => {
                let n = name.to_owned();
                let connections = match self
                    .call("list_volume_connections", move |c| match c {
                        Client::FlashArray(fa) => fa.list_volume_connections(&n),
                        Client::FlashBlade(_) => Err(wrong_kind("list_volume_connections")),
                    })
                    .await
                {
                    Ok(c) => c,
                    Err(ArrayError::NotFound { .. } | ArrayError::Destroyed { .. }) => Vec::new(),
                    Err(e) => return Err(e),
                };
                for conn in connections {
                    let n = name.to_owned();
                    let r = self
                        .call("disconnect_host", move |c| match c {
                            Client::FlashArray(fa) => fa.disconnect_host(&conn.host, &n),
                            Client::FlashBlade(_) => Err(wrong_kind("disconnect_host")),
                        })
                        .await;
                    match r {
                        Ok(())
                        | Err(ArrayError::NotConnected { .. } | ArrayError::NotFound { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                let n = name.to_owned();
                destroyed_now = gone(
                    self.call("destroy_volume", move |c| match c {
                        Client::FlashArray(fa) => fa.destroy_volume(&n),
                        Client::FlashBlade(_) => Err(wrong_kind("destroy_volume")),
                    })
                    .await,
                )?;
                if eradicate {
                    let n = name.to_owned();
                    let r = self
                        .call("eradicate_volume", move |c| match c {
                            Client::FlashArray(fa) => fa.eradicate_volume(&n),
                            Client::FlashBlade(_) => Err(wrong_kind("eradicate_volume")),
                        })
                        .await;
                    if !matches!(r, Err(ArrayError::NotFound { .. })) {
                        r?;
                    }
                }
            }
            Backend::File => {
                let n = name.to_owned();
                destroyed_now = gone(
                    self.call("destroy_file_system", move |c| match c {
                        Client::FlashBlade(fb) => fb.destroy_file_system(&n),
                        Client::FlashArray(_) => Err(wrong_kind("destroy_file_system")),
                    })
                    .await,
                )?;
                if eradicate {
                    let n = name.to_owned();
                    let r = self
                        .call("eradicate_file_system", move |c| match c {
                            Client::FlashBlade(fb) => fb.eradicate_file_system(&n),
                            Client::FlashArray(_) => Err(wrong_kind("eradicate_file_system")),
                        })
                        .await;
                    if !matches!(r, Err(ArrayError::NotFound { .. })) {
                        r?;
                    }
                }
            }
        }
        Ok(destroyed_now)
    }

    /// The names of every volume or file system matching `glob`, destroyed ones included: the
    /// names the array will not take for a new object until they are eradicated.
    pub async fn names_taken(&self, glob: &str) -> Result<Vec<String>, ArrayError> {
        let glob = glob.to_owned();
        self.call("list", move |c| match c {
            Client::FlashArray(fa) => Ok(fa
                .list_volumes(&glob, true)?
                .into_iter()
                .map(|v| v.name)
                .collect()),
            Client::FlashBlade(fb) => Ok(fb
                .list_file_systems(&glob)?
                .into_iter()
                .map(|f| f.name)
                .collect()),
        })
        .await
    }

    /// Live volumes or file systems matching `glob`, with their creation time when the array
    /// reports it.
    pub async fn list_live(&self, glob: &str) -> Result<Vec<Listed>, ArrayError> {
        let glob = glob.to_owned();
        self.call("list", move |c| match c {
            Client::FlashArray(fa) => Ok(fa
                .list_volumes(&glob, false)?
                .into_iter()
                .filter(|v| !v.is_destroyed())
                .map(|v| Listed {
                    created: v.created.as_deref().and_then(parse_iso8601),
                    name: v.name,
                })
                .collect()),
            Client::FlashBlade(fb) => Ok(fb
                .list_file_systems(&glob)?
                .into_iter()
                .filter(|f| !f.destroyed)
                .map(|f| Listed {
                    created: f
                        .created
                        .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms)),
                    name: f.name,
                })
                .collect()),
        })
        .await
    }

    pub fn describe(&self) -> String {
        format!("{} {}", self.backend.array_kind(), self.endpoint)
    }
}

pub(crate) fn wrong_kind(operation: &str) -> ArrayError {
    ArrayError::BadReply {
        endpoint: String::new(),
        operation: operation.to_owned(),
        detail: "operation called on the wrong kind of array".into(),
    }
}

fn parse_iso8601(text: &str) -> Option<SystemTime> {
    let ts: k8s_openapi::jiff::Timestamp = text.parse().ok()?;
    Some(SystemTime::from(ts))
}

/// Every configured array, FlashArrays first, each kind in `pure.json` order.
pub struct ArraySet {
    arrays: Vec<Array>,
}

impl ArraySet {
    /// Builds clients for every array of the configuration. No network traffic happens here.
    pub fn from_config(
        config: &Config,
        space_ttl: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<Self, ArrayError> {
        let settings = &config.settings;
        let mut arrays = Vec::new();
        let make = |backend, endpoint: String, labels, nfs_endpoint, client| Array {
            backend,
            endpoint,
            labels,
            nfs_endpoint,
            client: Arc::new(client),
            id: Mutex::new(None),
            space: Mutex::new(None),
            space_ttl,
            metrics: Arc::clone(&metrics),
        };
        for fa in &config.arrays.flash_arrays {
            let client = FlashArray::new(fa, &settings.client)?;
            arrays.push(make(
                Backend::Block,
                fa.mgmt_endpoint.to_string(),
                fa.labels.clone(),
                None,
                Client::FlashArray(client),
            ));
        }
        for fb in &config.arrays.flash_blades {
            let client = FlashBlade::new(fb, &settings.client)?;
            arrays.push(make(
                Backend::File,
                fb.mgmt_endpoint.to_string(),
                fb.labels.clone(),
                fb.nfs_endpoint.clone(),
                Client::FlashBlade(client),
            ));
        }
        Ok(Self { arrays })
    }

    /// The arrays of one backend, in configuration order.
    pub fn of(&self, backend: Backend) -> impl Iterator<Item = &Array> {
        self.arrays.iter().filter(move |a| a.backend == backend)
    }

    pub fn all(&self) -> impl Iterator<Item = &Array> {
        self.arrays.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flasharray_creation_times_are_read() {
        let t = parse_iso8601("2017-12-19T02:59:33Z").expect("parses");
        assert_eq!(
            t.duration_since(SystemTime::UNIX_EPOCH)
                .expect("after epoch")
                .as_secs(),
            1_513_652_373
        );
        assert_eq!(parse_iso8601("yesterday"), None);
    }
}
