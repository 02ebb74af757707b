//! Which configured array holds a PV's volume or file system. The rule is
//! `flashvol_common::locate`, the one the provisioner follows too: it says which array to ask
//! what, and this module asks, each call under the array-call deadline. [`Holds`] is what differs
//! between the two kinds of array. Also: the array a volume record names, and the FlashArray
//! volume with a given serial.

use flashvol_common::ArrayError;
use flashvol_common::flasharray::{FlashArray, Volume};
use flashvol_common::flashblade::{FileSystem, FlashBlade};
use flashvol_common::locate::{Presence, Question, Search, same_endpoint};
use flashvol_common::options::{ArrayLocator, Backend};

use super::{Array, ArrayKind, Fa, Fb};
use crate::runtime::error::{FlexError, Result};

/// What an array holds under a name.
pub enum Found<T> {
    Live(T),
    Absent,
    /// Destroyed but not yet eradicated: there, and not to be used.
    Destroyed,
}

/// The kind of array a backend's PVs live on, and how to look their item up by name.
pub trait Holds: ArrayKind {
    type Item: Send + 'static;
    const BACKEND: Backend;
    fn look_up(array: &Array<Self>, name: &str) -> Result<Found<Self::Item>>;
}

impl Holds for FlashArray {
    type Item = Volume;
    const BACKEND: Backend = Backend::Block;
    fn look_up(fa: &Fa, name: &str) -> Result<Found<Volume>> {
        let volume_name = name.to_owned();
        match fa.call(&format!("looking up volume {name}"), move |c| {
            c.get_volume(&volume_name)
        }) {
            Ok(volume) => Ok(Found::Live(volume)),
            Err(FlexError::Array {
                source: ArrayError::NotFound { .. },
                ..
            }) => Ok(Found::Absent),
            Err(FlexError::Array {
                source: ArrayError::Destroyed { .. },
                ..
            }) => Ok(Found::Destroyed),
            Err(e) => Err(e),
        }
    }
}

impl Holds for FlashBlade {
    type Item = FileSystem;
    const BACKEND: Backend = Backend::File;
    fn look_up(fb: &Fb, name: &str) -> Result<Found<FileSystem>> {
        let fs_name = name.to_owned();
        match fb.call(&format!("looking up file system {name}"), move |c| {
            c.get_file_system(&fs_name)
        }) {
            Ok(fs) if fs.destroyed => Ok(Found::Destroyed),
            Ok(fs) => Ok(Found::Live(fs)),
            Err(FlexError::Array {
                source: ArrayError::NotFound { .. },
                ..
            }) => Ok(Found::Absent),
            Err(e) => Err(e),
        }
    }
}

/// The array holding `name` (a FlashArray volume or a FlashBlade file system), and the item.
/// A destroyed item is refused: mounting it would fail on the array anyway, less clearly.
pub fn locate<K: Holds>(
    arrays: &[Array<K>],
    name: &str,
    locator: Option<&ArrayLocator>,
) -> Result<(Array<K>, K::Item)> {
    let endpoints = arrays.iter().map(|a| &a.endpoint);
    let mut search = Search::new(name, K::BACKEND, locator, endpoints);
    let mut items: Vec<Option<K::Item>> = arrays.iter().map(|_| None).collect();
    while let Some(question) = search.next_question() {
        match question {
            Question::ArrayId(i) => {
                search.answer_id(i, arrays[i].call("reading array id", |c| c.array_id()));
            }
            Question::Volume(i) => {
                let presence = K::look_up(&arrays[i], name).map(|found| match found {
                    Found::Live(item) => {
                        items[i] = Some(item);
                        Presence::Live
                    }
                    Found::Absent => Presence::Absent,
                    Found::Destroyed => Presence::Destroyed,
                });
                search.answer_volume(i, presence);
            }
        }
    }
    let at = search.live_array().map_err(FlexError::Locate)?;
    // The rule concludes Live only for an array whose lookup answered Live, which kept the item.
    let item = items[at].take().ok_or_else(|| {
        FlexError::Refused(format!(
            "{name} was located on {} without being looked up there",
            arrays[at].endpoint
        ))
    })?;
    Ok((arrays[at].clone(), item))
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
