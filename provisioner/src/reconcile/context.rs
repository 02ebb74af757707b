//! What the reconcilers act through: the Kubernetes client, the arrays, the settings, a clock,
//! the event recorder, metrics and the per-object backoff. Tests build it with a fake API server
//! and in-process array simulators.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::PersistentVolume;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client};

use flashvol_common::config::Settings;

use crate::arrays::ArraySet;
use crate::decide::backoff::Backoff;
use crate::k8s::cache::CachedVolume;
use crate::reconcile::attempts::Attempts;
use crate::reconcile::events::Recorder;
use crate::reconcile::finished::Finished;
use crate::serve::metrics::Metrics;
use crate::serve::monitor::pending::LastFailures;

/// Wall-clock time, injectable so grace periods can be tested without waiting.
pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
}

/// The real clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to.
pub struct ManualClock(Mutex<SystemTime>);

impl ManualClock {
    pub fn new(start: SystemTime) -> Self {
        Self(Mutex::new(start))
    }

    pub fn advance(&self, by: Duration) {
        if let Ok(mut t) = self.0.lock() {
            *t += by;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        self.0.lock().map(|t| *t).unwrap_or(SystemTime::UNIX_EPOCH)
    }
}

/// Identity and behaviour switches of this provisioner.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The provisioner name StorageClasses use (`pure-provisioner`).
    pub provisioner: String,
    /// The flex driver name written into PVs (`pure/flex`).
    pub driver: String,
}

pub struct Context {
    pub client: Client,
    pub arrays: ArraySet,
    pub settings: Settings,
    pub identity: Identity,
    pub clock: Arc<dyn Clock>,
    pub events: Recorder,
    pub metrics: Arc<Metrics>,
    pub claim_backoff: Backoff,
    pub volume_backoff: Backoff,
    /// StorageClass cache from the watch; `None` reads classes from the API.
    pub classes: Option<Store<StorageClass>>,
    /// PV cache from the watch; `None` asks the API whether a PV exists.
    pub volumes: Option<Store<CachedVolume>>,
    /// Array volumes of Retain PVs deleted while this process watched: the orphan collector
    /// leaves them alone.
    pub retained: Mutex<std::collections::HashSet<String>>,
    /// PVs this process destroyed and deleted: stale watch copies of them are ignored.
    pub finished: Finished,
    /// Why each claim's last provisioning pass failed, for `flashvol_claims_pending{reason}`.
    pub last_failures: LastFailures,
    /// Which claims may have an array object from an earlier attempt.
    pub attempts: Attempts,
}

impl Context {
    /// A StorageClass by name, from the cache when there is one, else from the API.
    pub async fn storage_class(&self, name: &str) -> Result<Option<StorageClass>, kube::Error> {
        if let Some(store) = &self.classes
            && let Some(class) = store.get(&ObjectRef::new(name))
        {
            return Ok(Some((*class).clone()));
        }
        Api::<StorageClass>::all(self.client.clone())
            .get_opt(name)
            .await
    }

    /// Whether the PV exists. A cache miss is trusted: if the cache lags, the claim's attempt is
    /// still recorded ([`Attempts`]), so the next steps find the array volume by name and the PV
    /// create answers AlreadyExists, which also means done.
    pub async fn pv_exists(&self, name: &str) -> Result<bool, kube::Error> {
        if self.volumes.is_some() {
            return Ok(self.pv_cached(name));
        }
        Ok(Api::<PersistentVolume>::all(self.client.clone())
            .get_opt(name)
            .await?
            .is_some())
    }

    /// Whether the PV is in the watch cache (never, without one).
    pub fn pv_cached(&self, name: &str) -> bool {
        self.volumes
            .as_ref()
            .is_some_and(|store| store.get(&ObjectRef::new(name)).is_some())
    }

    /// Retry delays with the defaults of the issue: 1 s doubling to 5 min.
    pub fn default_backoff() -> Backoff {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(300))
    }
}
