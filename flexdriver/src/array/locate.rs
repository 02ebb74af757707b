//! Which configured array holds a volume or file system: the one the PV names (by endpoint, then
//! by array id), else — for PVs PSO 2.x created, or an array re-addressed since — a search by
//! name over all of them. One loop serves both kinds of array; [`Holds`] says what differs.
//! Also: the array a volume record names, and the FlashArray volume with a given serial.

use flashvol_common::ArrayError;
use flashvol_common::config::Endpoint;
use flashvol_common::flasharray::{FlashArray, Volume};
use flashvol_common::flashblade::{FileSystem, FlashBlade};
use flashvol_common::options::ArrayLocator;

use super::{Array, ArrayKind, Fa};
use crate::runtime::error::{FlexError, Result};

/// What one array says when asked for a name.
pub enum Answer<T> {
    Here(T),
    NotHere,
    /// It is there but must not be used (destroyed): the search stops with this message.
    Refused(String),
    /// The array could not be asked; the search goes on and reports it if nothing is found.
    Unknown(String),
}

/// What an array kind holds for a PV and how to ask for it by name.
pub trait Holds: ArrayKind {
    type Item: Send + 'static;
    /// `volume` or `file system`.
    const ITEM: &'static str;
    /// `block` or `file`: the volumes that need this kind of array.
    const BACKEND: &'static str;
    fn look_up(array: &Array<Self>, name: &str) -> Answer<Self::Item>;
}

impl Holds for FlashArray {
    type Item = Volume;
    const ITEM: &'static str = "volume";
    const BACKEND: &'static str = "block";
    fn look_up(fa: &Fa, name: &str) -> Answer<Volume> {
        let volume_name = name.to_owned();
        match fa.call(&format!("looking up volume {name}"), move |c| {
            c.get_volume(&volume_name)
        }) {
            Ok(volume) => Answer::Here(volume),
            Err(FlexError::Array {
                source: ArrayError::NotFound { .. },
                ..
            }) => Answer::NotHere,
            Err(
                e @ FlexError::Array {
                    source: ArrayError::Destroyed { .. },
                    ..
                },
            ) => Answer::Refused(format!("volume {name} is destroyed: {e}")),
            Err(e) => Answer::Unknown(e.to_string()),
        }
    }
}

impl Holds for FlashBlade {
    type Item = FileSystem;
    const ITEM: &'static str = "file system";
    const BACKEND: &'static str = "file";
    fn look_up(fb: &Array<FlashBlade>, name: &str) -> Answer<FileSystem> {
        let fs_name = name.to_owned();
        match fb.call(&format!("looking up file system {name}"), move |c| {
            c.get_file_system(&fs_name)
        }) {
            Ok(fs) if fs.destroyed => Answer::Refused(format!(
                "file system {name} on FlashBlade {} is destroyed",
                fb.endpoint
            )),
            Ok(fs) => Answer::Here(fs),
            Err(FlexError::Array {
                source: ArrayError::NotFound { .. },
                ..
            }) => Answer::NotHere,
            Err(e) => Answer::Unknown(e.to_string()),
        }
    }
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

/// The array holding `name` (a FlashArray volume or a FlashBlade file system), and the item.
pub fn locate<K: Holds>(
    arrays: &[Array<K>],
    name: &str,
    locator: Option<&ArrayLocator>,
) -> Result<(Array<K>, K::Item)> {
    if arrays.is_empty() {
        return Err(FlexError::Settings(format!(
            "the settings file lists no {}s, so {} volumes cannot be mounted",
            K::NAME,
            K::BACKEND
        )));
    }
    let candidates = narrow(
        arrays,
        locator,
        |a| &a.endpoint,
        |a| a.call("reading array id", |c| c.array_id()),
    );
    let mut failures = Vec::new();
    for array in candidates {
        match K::look_up(array, name) {
            Answer::Here(item) => return Ok((array.clone(), item)),
            Answer::NotHere => {}
            Answer::Refused(why) => return Err(FlexError::Refused(why)),
            Answer::Unknown(why) => failures.push(why),
        }
    }
    let item = K::ITEM;
    if failures.is_empty() {
        Err(FlexError::Refused(format!(
            "{item} {name} does not exist on any configured {} ({})",
            K::NAME,
            arrays
                .iter()
                .map(|a| a.endpoint.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    } else {
        Err(FlexError::Refused(format!(
            "{item} {name} not found, and some arrays could not be asked: {}",
            failures.join("; ")
        )))
    }
}

/// The configured array a volume record names.
pub fn by_endpoint<'a, K: ArrayKind>(arrays: &'a [Array<K>], named: &str) -> Option<&'a Array<K>> {
    arrays.iter().find(|a| same_endpoint(&a.endpoint, named))
}

/// The FlashArray volume with `serial` (rebuilding a lost volume record from a staged device's
/// WWID). An array that cannot be asked fails the search: a volume it holds would be missed.
pub fn volume_with_serial(fas: &[Fa], serial: &str) -> Result<(Fa, Volume)> {
    for fa in fas {
        let volumes = fa.call("listing volumes", |c| c.list_volumes("*", false))?;
        if let Some(v) = volumes
            .into_iter()
            .find(|v| v.serial.eq_ignore_ascii_case(serial))
        {
            return Ok((fa.clone(), v));
        }
    }
    Err(FlexError::Refused(format!(
        "no configured FlashArray has a volume with serial {serial}"
    )))
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
