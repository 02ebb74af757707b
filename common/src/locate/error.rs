//! Why a PV's volume was not located ([`LocateError`], [`Problem`]) and the sentence each
//! problem reads as: it names the volume, the array(s) and what to do about it.

use std::fmt;

use crate::options::{ARRAY_ID, Backend};

/// The volume could not be located, or not safely: see [`Problem`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocateError {
    pub volume: String,
    pub backend: Backend,
    pub problem: Problem,
}

/// Why a volume was not located. Arrays are named by their endpoints as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The configuration lists no array of the volume's backend.
    NoArrays,
    /// The PV's array id is none of the configured arrays' ids.
    IdNotConfigured {
        id: String,
        /// The endpoint the PV recorded with it.
        endpoint: Option<String>,
        configured: Vec<String>,
    },
    /// Arrays whose answer was needed could not be asked: (array, why).
    Unreachable(Vec<(String, String)>),
    /// The volume is on none of the arrays searched.
    NotFound {
        searched: Vec<String>,
        /// The PV named the array searched (by id or endpoint); otherwise all were searched.
        named: bool,
    },
    /// The name is taken on more than one array.
    OnMoreThanOne(Vec<String>),
    /// Found on this array, destroyed ([`Search::live_array`](super::Search::live_array) only).
    Destroyed(String),
}

impl std::error::Error for LocateError {}

impl fmt::Display for LocateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, name) = (self.backend.object_kind(), &self.volume);
        let kind = self.backend.array_kind();
        match &self.problem {
            Problem::NoArrays => write!(
                f,
                "cannot look for {what} {name}: the configuration lists no {kind}s; add the \
                 {kind} that holds it to pure.json"
            ),
            Problem::IdNotConfigured {
                id,
                endpoint,
                configured,
            } => {
                write!(f, "{what} {name} is on the {kind} with id {id}")?;
                if let Some(endpoint) = endpoint {
                    write!(f, " (at {endpoint} when the PV was written)")?;
                }
                write!(
                    f,
                    ", and none of the configured {kind}s ({}) has that id; add that {kind} to \
                     pure.json, or correct the PV's {ARRAY_ID} option if the {what} was moved",
                    configured.join(", ")
                )
            }
            Problem::Unreachable(arrays) => {
                let listed: Vec<String> = arrays
                    .iter()
                    .map(|(array, why)| format!("{array} ({why})"))
                    .collect();
                write!(
                    f,
                    "cannot tell which {kind} holds {what} {name}: {kind}{} {} could not be asked; \
                     try again once {} or remove {} from pure.json if {} gone for good",
                    if arrays.len() > 1 { "s" } else { "" },
                    listed.join("; "),
                    if arrays.len() > 1 {
                        "they answer"
                    } else {
                        "it answers"
                    },
                    if arrays.len() > 1 { "them" } else { "it" },
                    if arrays.len() > 1 {
                        "they are"
                    } else {
                        "it is"
                    },
                )
            }
            Problem::NotFound { searched, named } if *named => write!(
                f,
                "{what} {name} does not exist on {kind} {}, the array its PV names; check on the \
                 array whether it was renamed or eradicated",
                searched.join(", ")
            ),
            Problem::NotFound { searched, .. } => write!(
                f,
                "{what} {name} does not exist on any configured {kind} ({}); if it is on another \
                 {kind}, add that {kind} to pure.json",
                searched.join(", ")
            ),
            Problem::OnMoreThanOne(arrays) => write!(
                f,
                "{what} {name} exists on more than one {kind} ({}), so which one the PV means is \
                 unknown; resolve by hand: rename or remove the copy that is not this PV's, or set \
                 the PV's {ARRAY_ID} option to the right array's id",
                arrays.join(", ")
            ),
            Problem::Destroyed(array) => write!(
                f,
                "{what} {name} on {kind} {array} is destroyed (pending eradication); recover it \
                 on the array to use it again"
            ),
        }
    }
}
