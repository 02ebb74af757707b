//! The arrays of the settings file, each reached through `flashvol_common`'s client with every
//! call under the array-call deadline. [`Array`] is one configured FlashArray ([`Fa`]) or
//! FlashBlade ([`Fb`]); [`ArrayKind`] is the little that differs between the two for the driver.

pub mod fencing;
pub mod hosts;
pub mod locate;

use std::sync::Arc;
use std::time::Duration;

use flashvol_common::ArrayError;
use flashvol_common::config::{ClientSettings, Config, FlashArrayConfig, FlashBladeConfig};
use flashvol_common::flasharray::{FlashArray, Hello};
use flashvol_common::flashblade::FlashBlade;

use crate::runtime::deadline;
use crate::runtime::error::{FlexError, Result};

/// A kind of array: its client, its configuration entry and how the driver names it.
pub trait ArrayKind: Send + Sync + Sized + 'static {
    /// `FlashArray` or `FlashBlade`, for messages.
    const NAME: &'static str;
    type Config: Clone;
    /// The management endpoint as configured.
    fn endpoint(config: &Self::Config) -> String;
    fn connect(config: &Self::Config, settings: &ClientSettings) -> Result<Self, ArrayError>;
    /// The REST version and the array's clock, before any login.
    fn hello(&self) -> Result<Hello, ArrayError>;
    /// Who the array says it is (logs in).
    fn identity(&self) -> Result<Identity, ArrayError>;
    /// The array's own id, which a PV may name instead of an endpoint.
    fn array_id(&self) -> Result<String, ArrayError> {
        self.identity().map(|i| i.id)
    }
}

/// An array's name, id and software version, as it reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub id: String,
    pub version: String,
}

impl ArrayKind for FlashArray {
    const NAME: &'static str = "FlashArray";
    type Config = FlashArrayConfig;
    fn endpoint(config: &FlashArrayConfig) -> String {
        config.mgmt_endpoint.to_string()
    }
    fn connect(config: &FlashArrayConfig, settings: &ClientSettings) -> Result<Self, ArrayError> {
        FlashArray::new(config, settings)
    }
    fn hello(&self) -> Result<Hello, ArrayError> {
        FlashArray::hello(self)
    }
    fn identity(&self) -> Result<Identity, ArrayError> {
        self.array_info().map(|i| Identity {
            name: i.array_name,
            id: i.id,
            version: i.version,
        })
    }
}

impl ArrayKind for FlashBlade {
    const NAME: &'static str = "FlashBlade";
    type Config = FlashBladeConfig;
    fn endpoint(config: &FlashBladeConfig) -> String {
        config.mgmt_endpoint.to_string()
    }
    fn connect(config: &FlashBladeConfig, settings: &ClientSettings) -> Result<Self, ArrayError> {
        FlashBlade::new(config, settings)
    }
    fn hello(&self) -> Result<Hello, ArrayError> {
        FlashBlade::hello(self)
    }
    fn identity(&self) -> Result<Identity, ArrayError> {
        self.array_info().map(|i| Identity {
            name: i.name,
            id: i.id,
            version: i.version,
        })
    }
}

/// One configured array: its client, its settings entry and the deadline its calls run under.
pub struct Array<K: ArrayKind> {
    client: Arc<K>,
    /// The management endpoint as configured, for messages and the volume record.
    pub endpoint: String,
    pub config: K::Config,
    limit: Duration,
}

/// A configured FlashArray.
pub type Fa = Array<FlashArray>;
/// A configured FlashBlade.
pub type Fb = Array<FlashBlade>;

impl<K: ArrayKind> Clone for Array<K> {
    fn clone(&self) -> Self {
        Self {
            client: Arc::clone(&self.client),
            endpoint: self.endpoint.clone(),
            config: self.config.clone(),
            limit: self.limit,
        }
    }
}

impl<K: ArrayKind> Array<K> {
    /// Runs `work` with the client, abandoned at the array-call deadline.
    pub fn call<T, F>(&self, step: &str, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&K) -> Result<T, ArrayError> + Send + 'static,
    {
        let client = Arc::clone(&self.client);
        let what = format!("{step} on {} {}", K::NAME, self.endpoint);
        deadline::within(&what, self.limit, move || work(&client))?
            .map_err(|e| FlexError::array(step, e))
    }
}

/// The client settings with timeouts no longer than the array-call deadline, so the client gives
/// up by itself instead of being abandoned.
fn bounded(settings: &ClientSettings, limit: Duration) -> ClientSettings {
    let mut s = settings.clone();
    s.request_timeout = s.request_timeout.min(limit);
    s.connect_timeout = s.connect_timeout.min(limit);
    s
}

/// One configured array, each of its calls abandoned at `limit`. Touches no network.
pub fn connect<K: ArrayKind>(
    config: &K::Config,
    settings: &ClientSettings,
    limit: Duration,
) -> Result<Array<K>> {
    let endpoint = K::endpoint(config);
    let client = K::connect(config, &bounded(settings, limit))
        .map_err(|e| FlexError::array(format!("connecting to {} {endpoint}", K::NAME), e))?;
    Ok(Array {
        client: Arc::new(client),
        endpoint,
        config: config.clone(),
        limit,
    })
}

fn connect_all<K: ArrayKind>(
    configs: &[K::Config],
    settings: &ClientSettings,
    limit: Duration,
) -> Result<Vec<Array<K>>> {
    configs
        .iter()
        .map(|config| connect(config, settings, limit))
        .collect()
}

/// Every configured FlashArray.
pub fn flash_arrays(config: &Config, limit: Duration) -> Result<Vec<Fa>> {
    connect_all(&config.arrays.flash_arrays, &config.settings.client, limit)
}

/// Every configured FlashBlade.
pub fn flash_blades(config: &Config, limit: Duration) -> Result<Vec<Fb>> {
    connect_all(&config.arrays.flash_blades, &config.settings.client, limit)
}
