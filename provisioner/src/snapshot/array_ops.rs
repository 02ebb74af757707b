//! What snapshots, restores, clones and adoption ask of an array, as async operations on
//! [`Array`] (same metrics and blocking-call handling as [`crate::arrays`]), and the one loop
//! that drives a [`Search`] ([`flashvol_common::locate`]) to find which array holds a name.
//!
//! FlashArray: snapshots are volumes named `<volume>.<suffix>` (or `<pgroup>.<n>.<volume>` from a
//! protection group), listed with their volume, copied with `POST volume/<new> {"source"}` and
//! destroyed like volumes. FlashBlade: file system snapshots; REST 1.x cannot copy them into a new
//! file system ([`crate::decide::source::check_backend`]).

use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;

use flashvol_common::ArrayError;
use flashvol_common::flasharray::Volume;
use flashvol_common::flashblade::FsSnapshot;
use flashvol_common::locate::{LocateError, Located, Presence, Question, Search};
use flashvol_common::names;
use flashvol_common::options::{ArrayLocator, Backend};

use crate::arrays::{Array, Client, Lookup};

/// A snapshot as the CLI lists it and restores find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub name: String,
    /// ISO 8601 UTC, when the array says.
    pub created: Option<String>,
    /// Bytes: a FlashArray snapshot's size (its volume's size when it was taken). FlashBlade
    /// snapshots have none.
    pub size: Option<u64>,
    pub destroyed: bool,
}

impl From<Volume> for Snapshot {
    fn from(v: Volume) -> Self {
        Snapshot {
            destroyed: v.is_destroyed(),
            name: v.name,
            created: v.created,
            size: Some(v.size),
        }
    }
}

impl From<FsSnapshot> for Snapshot {
    fn from(s: FsSnapshot) -> Self {
        Snapshot {
            created: s.created.map(|ms| iso8601(ms / 1000)),
            name: s.name,
            size: None,
            destroyed: s.destroyed,
        }
    }
}

/// `2017-12-16T05:12:38Z` from seconds since the epoch (what FlashArray shows).
fn iso8601(seconds: u64) -> String {
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(seconds);
    k8s_openapi::jiff::Timestamp::try_from(at)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn snapshot_presence(found: Option<&Snapshot>) -> Presence {
    match found {
        None => Presence::Absent,
        Some(s) if s.destroyed => Presence::Destroyed,
        Some(_) => Presence::Live,
    }
}

fn not_found_is_none<T>(result: Result<T, ArrayError>) -> Result<Option<T>, ArrayError> {
    match result {
        Ok(found) => Ok(Some(found)),
        Err(ArrayError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

fn not_on(array: &Array, operation: &str) -> ArrayError {
    ArrayError::InvalidInput {
        endpoint: array.endpoint.clone(),
        message: format!("{operation} is not possible on a {}", array.describe()),
    }
}

impl Array {
    /// Snapshots `volume`, letting the array pick the suffix as PSO's CLI did
    /// (`k8s-pvc-<uid>.883661`). Not retried: a repeat would make a second snapshot.
    pub async fn create_snapshot(&self, volume: &str) -> Result<Snapshot, ArrayError> {
        let volume = volume.to_owned();
        self.call("create_snapshot", move |c| match c {
            Client::FlashArray(fa) => fa.create_snapshot(&volume, None).map(Snapshot::from),
            Client::FlashBlade(fb) => fb.create_snapshot(&volume, None).map(Snapshot::from),
        })
        .await
    }

    /// The snapshots of `volume`, destroyed ones included; on a FlashArray also the volume's
    /// parts of protection group snapshots.
    pub async fn snapshots_of(&self, volume: &str) -> Result<Vec<Snapshot>, ArrayError> {
        let volume = volume.to_owned();
        self.call("list_snapshots", move |c| match c {
            Client::FlashArray(fa) => fa
                .list_snapshots(&volume)
                .map(|v| v.into_iter().map(Snapshot::from).collect()),
            Client::FlashBlade(fb) => fb
                .list_snapshots(&volume)
                .map(|v| v.into_iter().map(Snapshot::from).collect()),
        })
        .await
    }

    /// The snapshot called `name`, live or destroyed, if this array has it. FlashArray: found in
    /// its volume's list, as Cinder finds one (a snapshot has no path of its own in REST 1.x).
    pub async fn find_snapshot(&self, name: &str) -> Result<Option<Snapshot>, ArrayError> {
        let Some(of) = names::snapshot_source(name) else {
            return Ok(None);
        };
        match self.backend {
            Backend::Block => Ok(not_found_is_none(self.snapshots_of(of.volume).await)?
                .and_then(|all| all.into_iter().find(|s| s.name == name))),
            Backend::File => {
                let name = name.to_owned();
                not_found_is_none(
                    self.call("get_snapshot", move |c| match c {
                        Client::FlashBlade(fb) => fb.get_snapshot(&name).map(Snapshot::from),
                        Client::FlashArray(_) => wrong_kind(),
                    })
                    .await,
                )
            }
        }
    }

    /// Destroys a snapshot (eradicates it too when asked); `false` when it was already destroyed
    /// or gone. Both calls converge when repeated.
    pub async fn destroy_snapshot(&self, name: &str, eradicate: bool) -> Result<bool, ArrayError> {
        let n = name.to_owned();
        let destroyed = self
            .call("destroy_snapshot", move |c| match c {
                Client::FlashArray(fa) => fa.destroy_volume(&n),
                Client::FlashBlade(fb) => fb.destroy_snapshot(&n),
            })
            .await;
        let destroyed_now = match destroyed {
            Ok(()) => true,
            Err(ArrayError::Destroyed { .. }) => false,
            Err(ArrayError::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        if eradicate {
            let n = name.to_owned();
            let erased = self
                .call("eradicate_snapshot", move |c| match c {
                    Client::FlashArray(fa) => fa.eradicate_volume(&n),
                    Client::FlashBlade(fb) => fb.eradicate_snapshot(&n),
                })
                .await;
            not_found_is_none(erased)?;
        }
        Ok(destroyed_now)
    }

    /// Copies a volume or snapshot into the new volume `dest` (`POST volume/<dest>
    /// {"source"}`); returns its size. Not retried: a lost reply surfaces as an error and the
    /// next pass finds `dest` by name.
    pub async fn copy_volume(&self, source: &str, dest: &str) -> Result<u64, ArrayError> {
        let (source, dest) = (source.to_owned(), dest.to_owned());
        self.call("copy_volume", move |c| match c {
            Client::FlashArray(fa) => fa.copy_volume(&source, &dest, false).map(|v| v.size),
            Client::FlashBlade(_) => Err(ArrayError::InvalidInput {
                endpoint: String::new(),
                message: "FlashBlade REST 1.x cannot copy a file system".into(),
            }),
        })
        .await
    }

    /// Grows a FlashArray volume to `size` bytes (a copy bigger than its source); returns the
    /// new size. Growing to the same size again is harmless, so a retried pass converges.
    pub async fn grow_volume(&self, name: &str, size: u64) -> Result<u64, ArrayError> {
        if self.backend != Backend::Block {
            return Err(not_on(self, "growing a copy"));
        }
        let name = name.to_owned();
        self.call("extend_volume", move |c| match c {
            Client::FlashArray(fa) => fa.extend_volume(&name, size).map(|v| v.size),
            Client::FlashBlade(_) => wrong_kind(),
        })
        .await
    }

    /// What a FlashArray volume is connected to: hosts and host groups. A FlashBlade file system
    /// has no such record (NFS clients are not tracked): empty.
    pub async fn attached_to(&self, volume: &str) -> Result<Vec<String>, ArrayError> {
        let volume = volume.to_owned();
        self.call("list_volume_connections", move |c| match c {
            Client::FlashArray(fa) => {
                let mut users: Vec<String> = fa
                    .list_volume_connections(&volume)?
                    .into_iter()
                    .map(|c| format!("host {}", c.host))
                    .collect();
                users.extend(
                    fa.list_volume_host_groups(&volume)?
                        .into_iter()
                        .map(|g| format!("host group {g}")),
                );
                Ok(users)
            }
            Client::FlashBlade(_) => Ok(Vec::new()),
        })
        .await
    }
}

fn wrong_kind<T>() -> Result<T, ArrayError> {
    Err(ArrayError::InvalidInput {
        endpoint: String::new(),
        message: "operation called on the wrong kind of array".into(),
    })
}

/// One array's answer to "what do you hold under this name?": its [`Presence`] for the search,
/// and whatever else the caller wants to keep from the same call (`()` when nothing).
pub type PresenceAnswer<'a, A> = BoxFuture<'a, Result<(Presence, A), ArrayError>>;

/// Drives `search` (built over `arrays`' endpoints, by the one rule of
/// [`flashvol_common::locate`]) to its conclusion, `ask` answering for one array. Returns which
/// array holds the name (an index into `arrays`) and what that array answered, `None` when the
/// search did not need to ask it (the locator named it).
pub async fn locate<'a, A>(
    mut search: Search,
    arrays: &[&'a Array],
    ask: impl Fn(&'a Array) -> PresenceAnswer<'a, A>,
) -> Result<(Located, Option<A>), LocateError> {
    let mut answers: Vec<Option<A>> = arrays.iter().map(|_| None).collect();
    while let Some(question) = search.next_question() {
        match question {
            Question::ArrayId(i) => search.answer_id(i, arrays[i].id().await),
            Question::Volume(i) => {
                let answer = ask(arrays[i]).await.map(|(presence, kept)| {
                    answers[i] = Some(kept);
                    presence
                });
                search.answer_volume(i, answer);
            }
        }
    }
    let located = search.conclusion()?;
    Ok((located, answers.swap_remove(located.array())))
}

/// [`locate`] for a snapshot name, on the arrays of one backend.
pub async fn locate_snapshot<'a>(
    arrays: &[&'a Array],
    name: &str,
    backend: Backend,
) -> Result<Located, LocateError> {
    let search = Search::new(name, backend, None, arrays.iter().map(|a| &a.endpoint));
    let owned = name.to_owned();
    let (located, _) = locate(search, arrays, move |array: &'a Array| {
        let name = owned.clone();
        Box::pin(async move {
            let found = array.find_snapshot(&name).await?;
            Ok((snapshot_presence(found.as_ref()), ()))
        })
    })
    .await?;
    Ok(located)
}

/// [`locate`] for a volume or file system, by the PV's locator (or by name).
pub async fn locate_volume(
    arrays: &[&Array],
    name: &str,
    backend: Backend,
    locator: Option<&ArrayLocator>,
) -> Result<Located, LocateError> {
    let (located, _) = locate_volume_lookup(arrays, name, backend, locator, true).await?;
    Ok(located)
}

/// [`locate_volume`], keeping the located array's [`Lookup`] when it was asked. With
/// `ask_named_array: false`, an array the locator names is taken at its word, without a lookup.
pub async fn locate_volume_lookup<'a>(
    arrays: &[&'a Array],
    name: &str,
    backend: Backend,
    locator: Option<&ArrayLocator>,
    ask_named_array: bool,
) -> Result<(Located, Option<Lookup>), LocateError> {
    let mut search = Search::new(name, backend, locator, arrays.iter().map(|a| &a.endpoint));
    if !ask_named_array {
        search = search.without_lookup_on_named_array();
    }
    let owned = name.to_owned();
    locate(search, arrays, move |array: &'a Array| {
        let name = owned.clone();
        Box::pin(async move {
            let lookup = array.lookup(&name).await?;
            Ok((Presence::from(lookup), lookup))
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flashblade_snapshot_times_read_as_flasharray_writes_them() {
        assert_eq!(iso8601(1_513_401_158), "2017-12-16T05:12:38Z");
        let s = Snapshot::from(FsSnapshot {
            name: "fs.1".into(),
            source: "fs".into(),
            suffix: "1".into(),
            destroyed: false,
            created: Some(1_513_401_158_123),
        });
        assert_eq!(s.created.as_deref(), Some("2017-12-16T05:12:38Z"));
        assert_eq!(s.size, None);
    }

    #[test]
    fn presence_of_a_snapshot() {
        let live = Snapshot {
            name: "v.1".into(),
            created: None,
            size: Some(1),
            destroyed: false,
        };
        assert_eq!(snapshot_presence(None), Presence::Absent);
        assert_eq!(snapshot_presence(Some(&live)), Presence::Live);
        let gone = Snapshot {
            destroyed: true,
            ..live
        };
        assert_eq!(snapshot_presence(Some(&gone)), Presence::Destroyed);
    }
}
