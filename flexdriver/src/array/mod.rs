//! The arrays of the settings file, reached through `flashvol_common`'s clients, every call under
//! the array-call deadline. Also: which array holds a volume (the PV says, or — for PVs PSO 2.x
//! created — a search by name over the configured arrays).

pub mod hosts;

use std::sync::Arc;
use std::time::Duration;

use flashvol_common::ArrayError;
use flashvol_common::config::{ClientSettings, Config, Endpoint, FlashBladeConfig};
use flashvol_common::flasharray::{FlashArray, Volume};
use flashvol_common::flashblade::{FileSystem, FlashBlade};
use flashvol_common::options::ArrayLocator;

use crate::runtime::deadline;
use crate::runtime::error::{FlexError, Result};

/// A FlashArray client plus the deadline its calls run under.
#[derive(Clone)]
pub struct Fa {
    client: Arc<FlashArray>,
    /// The management endpoint as configured, for messages and the volume record.
    pub endpoint: String,
    limit: Duration,
}

/// A FlashBlade client plus its configuration entry.
#[derive(Clone)]
pub struct Fb {
    client: Arc<FlashBlade>,
    pub endpoint: String,
    pub config: FlashBladeConfig,
    limit: Duration,
}

/// The client settings with timeouts no longer than the array-call deadline, so the client gives
/// up by itself instead of being abandoned.
fn bounded(settings: &ClientSettings, limit: Duration) -> ClientSettings {
    let mut s = settings.clone();
    s.request_timeout = s.request_timeout.min(limit);
    s.connect_timeout = s.connect_timeout.min(limit);
    s
}

impl Fa {
    pub fn call<T, F>(&self, step: &str, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&FlashArray) -> Result<T, ArrayError> + Send + 'static,
    {
        let client = Arc::clone(&self.client);
        let what = format!("{step} on FlashArray {}", self.endpoint);
        deadline::within(&what, self.limit, move || work(&client))?
            .map_err(|e| FlexError::array(step, e))
    }
}

impl Fb {
    pub fn call<T, F>(&self, step: &str, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&FlashBlade) -> Result<T, ArrayError> + Send + 'static,
    {
        let client = Arc::clone(&self.client);
        let what = format!("{step} on FlashBlade {}", self.endpoint);
        deadline::within(&what, self.limit, move || work(&client))?
            .map_err(|e| FlexError::array(step, e))
    }
}

/// Every configured FlashArray.
pub fn flash_arrays(config: &Config, limit: Duration) -> Result<Vec<Fa>> {
    let settings = bounded(&config.settings.client, limit);
    config
        .arrays
        .flash_arrays
        .iter()
        .map(|a| {
            let endpoint = a.mgmt_endpoint.to_string();
            let client = FlashArray::new(a, &settings)
                .map_err(|e| FlexError::array(format!("connecting to FlashArray {endpoint}"), e))?;
            Ok(Fa {
                client: Arc::new(client),
                endpoint,
                limit,
            })
        })
        .collect()
}

/// Every configured FlashBlade.
pub fn flash_blades(config: &Config, limit: Duration) -> Result<Vec<Fb>> {
    let settings = bounded(&config.settings.client, limit);
    config
        .arrays
        .flash_blades
        .iter()
        .map(|b| {
            let endpoint = b.mgmt_endpoint.to_string();
            let client = FlashBlade::new(b, &settings)
                .map_err(|e| FlexError::array(format!("connecting to FlashBlade {endpoint}"), e))?;
            Ok(Fb {
                client: Arc::new(client),
                endpoint,
                config: b.clone(),
                limit,
            })
        })
        .collect()
}

/// Whether a configured endpoint is the one a PV or record names (same host and port).
pub fn same_endpoint(configured: &str, named: &str) -> bool {
    match (configured.parse::<Endpoint>(), named.parse::<Endpoint>()) {
        (Ok(a), Ok(b)) => a.authority() == b.authority(),
        _ => configured == named,
    }
}

/// The arrays worth asking, given what the PV says: the named endpoint if configured, else the
/// one with the named id, else all of them.
fn narrow<'a, T>(
    all: &'a [T],
    locator: Option<&ArrayLocator>,
    endpoint_of: impl Fn(&T) -> &str,
    id_of: impl Fn(&T) -> Result<String>,
) -> Vec<&'a T> {
    let Some(loc) = locator else {
        return all.iter().collect();
    };
    if let Some(ep) = &loc.endpoint {
        let by_endpoint: Vec<&T> = all
            .iter()
            .filter(|a| same_endpoint(endpoint_of(a), ep))
            .collect();
        if !by_endpoint.is_empty() {
            return by_endpoint;
        }
    }
    if let Some(id) = &loc.id {
        let by_id: Vec<&T> = all
            .iter()
            .filter(|a| id_of(a).is_ok_and(|got| got.eq_ignore_ascii_case(id)))
            .collect();
        if !by_id.is_empty() {
            return by_id;
        }
    }
    // The PV names an array we do not know by that name or id (moved, re-addressed): searching
    // by name is still safe because array names are unique per array and checked below.
    all.iter().collect()
}

/// The FlashArray holding `name`, and the volume.
pub fn locate_volume(
    fas: &[Fa],
    name: &str,
    locator: Option<&ArrayLocator>,
) -> Result<(Fa, Volume)> {
    if fas.is_empty() {
        return Err(FlexError::Settings(
            "the settings file lists no FlashArrays, so block volumes cannot be mounted".into(),
        ));
    }
    let candidates = narrow(
        fas,
        locator,
        |a| &a.endpoint,
        |a| a.call("reading array id", |c| c.array_info().map(|i| i.id)),
    );
    let mut failures = Vec::new();
    for fa in candidates {
        let volume_name = name.to_owned();
        match fa.call(&format!("looking up volume {name}"), move |c| {
            c.get_volume(&volume_name)
        }) {
            Ok(volume) => return Ok((fa.clone(), volume)),
            Err(FlexError::Array {
                source: ArrayError::NotFound { .. },
                ..
            }) => {}
            Err(
                e @ FlexError::Array {
                    source: ArrayError::Destroyed { .. },
                    ..
                },
            ) => {
                return Err(FlexError::Refused(format!(
                    "volume {name} is destroyed: {e}"
                )));
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    if failures.is_empty() {
        Err(FlexError::Refused(format!(
            "volume {name} does not exist on any configured FlashArray ({})",
            fas.iter()
                .map(|a| a.endpoint.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    } else {
        Err(FlexError::Refused(format!(
            "volume {name} not found, and some arrays could not be asked: {}",
            failures.join("; ")
        )))
    }
}

/// The FlashBlade holding file system `name`, and the file system.
pub fn locate_file_system(
    fbs: &[Fb],
    name: &str,
    locator: Option<&ArrayLocator>,
) -> Result<(Fb, FileSystem)> {
    if fbs.is_empty() {
        return Err(FlexError::Settings(
            "the settings file lists no FlashBlades, so file volumes cannot be mounted".into(),
        ));
    }
    let candidates = narrow(
        fbs,
        locator,
        |b| &b.endpoint,
        |b| b.call("reading array id", |c| c.array_info().map(|i| i.id)),
    );
    let mut failures = Vec::new();
    for fb in candidates {
        let fs_name = name.to_owned();
        match fb.call(&format!("looking up file system {name}"), move |c| {
            c.get_file_system(&fs_name)
        }) {
            Ok(fs) if fs.destroyed => {
                return Err(FlexError::Refused(format!(
                    "file system {name} on FlashBlade {} is destroyed",
                    fb.endpoint
                )));
            }
            Ok(fs) => return Ok((fb.clone(), fs)),
            Err(FlexError::Array {
                source: ArrayError::NotFound { .. },
                ..
            }) => {}
            Err(e) => failures.push(e.to_string()),
        }
    }
    if failures.is_empty() {
        Err(FlexError::Refused(format!(
            "file system {name} does not exist on any configured FlashBlade ({})",
            fbs.iter()
                .map(|b| b.endpoint.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    } else {
        Err(FlexError::Refused(format!(
            "file system {name} not found, and some arrays could not be asked: {}",
            failures.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_compare_by_host_and_port() {
        assert!(same_endpoint("10.0.0.5", "https://10.0.0.5:443"));
        assert!(same_endpoint("Array1.example.com", "array1.example.com"));
        assert!(!same_endpoint("10.0.0.5", "10.0.0.5:8443"));
        assert!(!same_endpoint("10.0.0.5", "10.0.0.6"));
    }

    #[test]
    fn a_named_endpoint_narrows_the_search() {
        let all = ["10.0.0.5", "10.0.0.6:8443"];
        let loc = |ep: &str| ArrayLocator {
            endpoint: Some(ep.to_owned()),
            id: None,
        };
        let never = |_: &&str| -> Result<String> { Err(FlexError::Refused("no".into())) };
        let picked = narrow(&all, Some(&loc("10.0.0.6:8443")), |a| a, never);
        assert_eq!(picked, [&"10.0.0.6:8443"]);
        let unknown = narrow(&all, Some(&loc("10.9.9.9")), |a| a, never);
        assert_eq!(
            unknown.len(),
            2,
            "an unknown endpoint falls back to all arrays"
        );
        let by_id = narrow(
            &all,
            Some(&ArrayLocator {
                endpoint: None,
                id: Some("ID-6".into()),
            }),
            |a| a,
            |a| {
                Ok(if a.starts_with("10.0.0.6") {
                    "id-6".into()
                } else {
                    "id-5".into()
                })
            },
        );
        assert_eq!(by_id, [&"10.0.0.6:8443"]);
        assert_eq!(narrow(&all, None, |a| a, never).len(), 2);
    }
}
