//! Which configured array holds a PV's volume: the one rule, for the flex driver (blocking calls)
//! and the provisioner (async calls) alike. A [`Search`] does no I/O: it says which array to ask
//! what next ([`Search::next_question`]), takes the answers, and concludes
//! ([`Search::conclusion`]). A caller's whole part is the loop:
//!
//! ```text
//! let mut search = Search::new(name, backend, locator, arrays.iter().map(|a| &a.endpoint));
//! while let Some(question) = search.next_question() {
//!     match question {
//!         Question::ArrayId(i) => search.answer_id(i, arrays[i].id()),
//!         Question::Volume(i) => search.answer_volume(i, arrays[i].presence(name)),
//!     }
//! }
//! let located = search.conclusion()?;
//! ```
//!
//! The rule, given the PV's [`ArrayLocator`] and the configured arrays of its backend:
//! 1. **An array id in the PV is authoritative.** An endpoint may since point at another array
//!    (re-addressed, replaced), an id cannot. The arrays are asked for their ids, the one the PV's
//!    endpoint names first (usually the right one, so one question), until one answers the PV's id
//!    (compared case-insensitively). If none does, the volume is on an array that is not
//!    configured: an error, never a search by name (a volume of that name elsewhere is another
//!    volume).
//! 2. **Without an id, an endpoint that names a configured array says where**, compared as
//!    [`Endpoint::same_array_as`] does: host case-insensitive, port 443 when not written.
//! 3. **Otherwise the volume is searched for by name** on every configured array of the backend:
//!    PSO 2.x PVs name no array, and a PV whose endpoint matches none may predate a re-addressing.
//!
//! Then the volume is looked up on the array(s) so chosen, all of them (a caller whose next call
//! on the named array finds out anyway may skip that: [`Search::without_lookup_on_named_array`]),
//! and the answers conclude:
//! - on exactly one: [`Located`] (live or destroyed);
//! - on more than one: refused, to be resolved by hand (picking one could mount or destroy
//!   another PV's data);
//! - some arrays could not be asked: an error naming them, because the missing answer could be
//!   the volume or a second copy of its name (except for a mount, which takes the one live copy
//!   a search by name found: [`Search::live_array`]);
//! - on none: not found.
//!
//! Every error is a sentence naming the volume, the array(s) and what to do.

mod error;

use std::fmt;

use crate::config::Endpoint;
use crate::options::{ArrayLocator, Backend};

pub use error::{LocateError, Problem};

/// What to ask next, about the array at this index of the configured arrays given to
/// [`Search::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Question {
    /// Its id (FlashArray `GET array`, FlashBlade `GET arrays`): answer with [`Search::answer_id`].
    ArrayId(usize),
    /// Whether it holds the volume: answer with [`Search::answer_volume`].
    Volume(usize),
}

/// What an array holds under the volume's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Absent,
    Live,
    /// Destroyed, pending eradication: the name is still taken.
    Destroyed,
}

/// The array holding the volume, as an index into the configured arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Located {
    /// The volume is there, live.
    Live(usize),
    /// The volume is there, destroyed (pending eradication).
    Destroyed(usize),
    /// The array the PV names (by id or endpoint); whether it still holds the volume was not
    /// asked (see [`Search::without_lookup_on_named_array`]).
    Named(usize),
}

impl Located {
    pub fn array(self) -> usize {
        match self {
            Located::Live(i) | Located::Destroyed(i) | Located::Named(i) => i,
        }
    }
}

/// Whether two management endpoints name the same array, as [`Endpoint::same_array_as`] says.
/// Text that is not an endpoint names no array.
pub fn same_endpoint(configured: &str, named: &str) -> bool {
    match (configured.parse::<Endpoint>(), named.parse::<Endpoint>()) {
        (Ok(a), Ok(b)) => a.same_array_as(&b),
        _ => false,
    }
}

fn same_id(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// One configured array: the endpoint as shown in messages, and parsed for comparing.
#[derive(Debug)]
struct Configured {
    shown: String,
    endpoint: Option<Endpoint>,
}

/// Where the volume is looked up, once decided.
#[derive(Debug)]
struct Targets {
    arrays: Vec<usize>,
    /// The PV named the array (by id or endpoint); otherwise this is a search by name.
    named: bool,
}

/// Finding one PV's volume; see the module header for the rule.
#[derive(Debug)]
pub struct Search {
    volume: String,
    backend: Backend,
    arrays: Vec<Configured>,
    /// The PV's array id, when it has one.
    id: Option<String>,
    /// The PV's endpoint, as written in it.
    pv_endpoint: Option<String>,
    /// The order to ask ids in (empty without an id).
    id_order: Vec<usize>,
    /// Per array: its id, or why it could not be asked.
    ids: Vec<Option<Result<String, String>>>,
    /// Per array: what it holds, or why it could not be asked.
    presence: Vec<Option<Result<Presence, String>>>,
    targets: Option<Targets>,
    /// Ask the array the PV names whether it holds the volume (the default).
    look_up_named: bool,
}

impl Search {
    /// `configured`: the management endpoints of the configured arrays of `backend`, in
    /// configuration order; questions and [`Located`] refer to them by index.
    pub fn new(
        volume: &str,
        backend: Backend,
        locator: Option<&ArrayLocator>,
        configured: impl IntoIterator<Item = impl fmt::Display>,
    ) -> Self {
        let arrays: Vec<Configured> = configured
            .into_iter()
            .map(|shown| {
                let shown = shown.to_string();
                Configured {
                    endpoint: shown.parse().ok(),
                    shown,
                }
            })
            .collect();
        let id = locator
            .and_then(|l| l.id.clone())
            .filter(|id| !id.trim().is_empty());
        let pv_endpoint = locator
            .and_then(|l| l.endpoint.clone())
            .filter(|ep| !ep.trim().is_empty());
        let named_by_endpoint: Vec<usize> = match &pv_endpoint {
            Some(named) => {
                let named: Option<Endpoint> = named.parse().ok();
                (0..arrays.len())
                    .filter(|&i| match (&arrays[i].endpoint, &named) {
                        (Some(a), Some(b)) => a.same_array_as(b),
                        _ => false,
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        let (id_order, targets) = if id.is_some() {
            let rest = (0..arrays.len()).filter(|i| !named_by_endpoint.contains(i));
            (
                named_by_endpoint.iter().copied().chain(rest).collect(),
                None,
            )
        } else if !named_by_endpoint.is_empty() {
            let targets = Targets {
                arrays: named_by_endpoint,
                named: true,
            };
            (Vec::new(), Some(targets))
        } else {
            let targets = Targets {
                arrays: (0..arrays.len()).collect(),
                named: false,
            };
            (Vec::new(), Some(targets))
        };
        Self {
            volume: volume.to_owned(),
            backend,
            ids: vec![None; arrays.len()],
            presence: vec![None; arrays.len()],
            arrays,
            id,
            pv_endpoint,
            id_order,
            targets,
            look_up_named: true,
        }
    }

    /// Concludes with [`Located::Named`] as soon as the PV's id or endpoint has named the array,
    /// without asking it whether it holds the volume: for a caller whose own next call there finds
    /// out anyway (the provisioner's destroy counts a missing volume as done), so the question
    /// would cost an array call and tell nothing. A search by name still asks every array: there
    /// the answers are what finds the array.
    pub fn without_lookup_on_named_array(mut self) -> Self {
        self.look_up_named = false;
        self
    }

    /// The one array the PV named, when its volume is not to be looked up there.
    fn named_without_lookup(&self) -> Option<usize> {
        match &self.targets {
            Some(Targets {
                arrays,
                named: true,
            }) if !self.look_up_named && arrays.len() == 1 => arrays.first().copied(),
            _ => None,
        }
    }

    /// The next question, `None` once the answers conclude.
    pub fn next_question(&self) -> Option<Question> {
        if self.named_without_lookup().is_some() {
            return None;
        }
        match &self.targets {
            None => self
                .id_order
                .iter()
                .find(|&&i| self.ids[i].is_none())
                .map(|&i| Question::ArrayId(i)),
            Some(targets) => targets
                .arrays
                .iter()
                .find(|&&i| self.presence[i].is_none())
                .map(|&i| Question::Volume(i)),
        }
    }

    /// The id array `array` reported, or why it could not be asked.
    pub fn answer_id<S: AsRef<str>, E: fmt::Display>(
        &mut self,
        array: usize,
        answer: Result<S, E>,
    ) {
        let Some(slot) = self.ids.get_mut(array) else {
            return;
        };
        let answer = answer
            .map(|id| id.as_ref().to_owned())
            .map_err(|e| e.to_string());
        let matches = match (&answer, &self.id) {
            (Ok(got), Some(wanted)) => same_id(got, wanted),
            _ => false,
        };
        *slot = Some(answer);
        if matches && self.targets.is_none() {
            self.targets = Some(Targets {
                arrays: vec![array],
                named: true,
            });
        }
    }

    /// What array `array` holds under the volume's name, or why it could not be asked.
    pub fn answer_volume<E: fmt::Display>(&mut self, array: usize, answer: Result<Presence, E>) {
        if let Some(slot) = self.presence.get_mut(array) {
            *slot = Some(answer.map_err(|e| e.to_string()));
        }
    }

    /// The conclusion from the answers so far; questions still open count as arrays that could
    /// not be asked.
    pub fn conclusion(&self) -> Result<Located, LocateError> {
        if self.arrays.is_empty() {
            return Err(self.error(Problem::NoArrays));
        }
        if let Some(array) = self.named_without_lookup() {
            return Ok(Located::Named(array));
        }
        let Some(targets) = &self.targets else {
            let unreachable = self.unreachable(&self.id_order, &self.ids);
            if !unreachable.is_empty() {
                return Err(self.error(Problem::Unreachable(unreachable)));
            }
            return Err(self.error(Problem::IdNotConfigured {
                id: self.id.clone().unwrap_or_default(),
                endpoint: self.pv_endpoint.clone(),
                configured: self.shown(0..self.arrays.len()),
            }));
        };
        let found: Vec<(usize, Presence)> = targets
            .arrays
            .iter()
            .filter_map(|&i| match self.presence[i] {
                Some(Ok(p @ (Presence::Live | Presence::Destroyed))) => Some((i, p)),
                _ => None,
            })
            .collect();
        if found.len() > 1 {
            let arrays = self.shown(found.iter().map(|&(i, _)| i));
            return Err(self.error(Problem::OnMoreThanOne(arrays)));
        }
        let unreachable = self.unreachable(&targets.arrays, &self.presence);
        if !unreachable.is_empty() {
            return Err(self.error(Problem::Unreachable(unreachable)));
        }
        match found.first() {
            Some(&(array, Presence::Destroyed)) => Ok(Located::Destroyed(array)),
            Some(&(array, _)) => Ok(Located::Live(array)),
            None => Err(self.error(Problem::NotFound {
                searched: self.shown(targets.arrays.iter().copied()),
                named: targets.named,
            })),
        }
    }

    /// The conclusion for a caller that needs the volume live (the driver mounting it): a
    /// destroyed volume is an error too. Unlike [`Search::conclusion`], one live answer in a
    /// search by name wins even when another array could not be asked: a mount destroys
    /// nothing, a second copy of a `<prefix>-pvc-<uid>` name exists only if someone made it by
    /// hand, and one array down must not stop every PSO PV on the others from mounting (PSO 2.x
    /// took the first array that had the volume, too). Deleting stays strict.
    pub fn live_array(&self) -> Result<usize, LocateError> {
        if let Some(array) = self.single_live_despite_unreachable() {
            return Ok(array);
        }
        match self.conclusion()? {
            Located::Destroyed(array) => {
                Err(self.error(Problem::Destroyed(self.arrays[array].shown.clone())))
            }
            located => Ok(located.array()),
        }
    }

    /// In a search by name: the one array that answered Live, when every other array either
    /// answered Absent or could not be asked (at least one could not, else [`Search::conclusion`]
    /// decides alone).
    fn single_live_despite_unreachable(&self) -> Option<usize> {
        let targets = self.targets.as_ref().filter(|t| !t.named)?;
        let mut live = None;
        for &i in &targets.arrays {
            match self.presence[i] {
                Some(Ok(Presence::Live)) if live.is_none() => live = Some(i),
                Some(Ok(Presence::Live | Presence::Destroyed)) => return None,
                Some(Ok(Presence::Absent) | Err(_)) | None => {}
            }
        }
        live
    }

    /// The arrays among `asked` without an answer, with why.
    fn unreachable<T>(
        &self,
        asked: &[usize],
        answers: &[Option<Result<T, String>>],
    ) -> Vec<(String, String)> {
        asked
            .iter()
            .filter_map(|&i| {
                let why = match &answers[i] {
                    Some(Ok(_)) => return None,
                    Some(Err(why)) => why.clone(),
                    None => "it was not asked".to_owned(),
                };
                Some((self.arrays[i].shown.clone(), why))
            })
            .collect()
    }

    fn shown(&self, arrays: impl IntoIterator<Item = usize>) -> Vec<String> {
        arrays
            .into_iter()
            .map(|i| self.arrays[i].shown.clone())
            .collect()
    }

    fn error(&self, problem: Problem) -> LocateError {
        LocateError {
            volume: self.volume.clone(),
            backend: self.backend,
            problem,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::ARRAY_ID;

    const ARRAYS: [&str; 3] = ["10.0.0.5", "10.0.0.6:8443", "array7.example.com"];
    const IDS: [&str; 3] = ["id-5", "id-6", "id-7"];

    fn locator(endpoint: Option<&str>, id: Option<&str>) -> ArrayLocator {
        ArrayLocator {
            endpoint: endpoint.map(str::to_owned),
            id: id.map(str::to_owned),
        }
    }

    fn search(locator: Option<&ArrayLocator>) -> Search {
        Search::new("k8s-pvc-1", Backend::Block, locator, ARRAYS)
    }

    /// What the arrays answer in one test: their ids (or an error) and what they hold.
    struct World {
        ids: [Result<&'static str, &'static str>; 3],
        holds: [Result<Presence, &'static str>; 3],
    }

    impl World {
        fn holding(holds: [Presence; 3]) -> Self {
            Self {
                ids: IDS.map(Ok),
                holds: holds.map(Ok),
            }
        }
    }

    /// Runs the caller's loop against `world`, returning the questions asked.
    fn drive(search: &mut Search, world: &World) -> Vec<Question> {
        let mut asked = Vec::new();
        while let Some(question) = search.next_question() {
            asked.push(question);
            match question {
                Question::ArrayId(i) => search.answer_id(i, world.ids[i]),
                Question::Volume(i) => search.answer_volume(i, world.holds[i]),
            }
            assert!(asked.len() <= 6, "a search asks each array at most twice");
        }
        asked
    }

    /// [`drive`], then the conclusion.
    fn run(mut search: Search, world: &World) -> (Vec<Question>, Result<Located, LocateError>) {
        let asked = drive(&mut search, world);
        (asked, search.conclusion())
    }

    use Presence::{Absent, Destroyed, Live};
    use Question::{ArrayId, Volume};

    fn problem(result: Result<Located, LocateError>) -> Problem {
        result.expect_err("an error").problem
    }

    #[test]
    fn the_id_is_asked_of_the_named_endpoint_first_and_the_search_stops_at_it() {
        let pv = locator(Some("https://10.0.0.6:8443/"), Some("ID-6"));
        let (asked, result) = run(search(Some(&pv)), &World::holding([Live, Live, Live]));
        assert_eq!(asked, [ArrayId(1), Volume(1)]);
        assert_eq!(result.expect("found"), Located::Live(1));
    }

    #[test]
    fn the_id_wins_over_an_endpoint_that_now_points_at_another_array() {
        // The PV was written when 10.0.0.5 was the array with id-7; it has since been re-addressed.
        let pv = locator(Some("10.0.0.5"), Some("id-7"));
        let (asked, result) = run(search(Some(&pv)), &World::holding([Live, Absent, Live]));
        assert_eq!(asked, [ArrayId(0), ArrayId(1), ArrayId(2), Volume(2)]);
        assert_eq!(result.expect("found"), Located::Live(2));
    }

    #[test]
    fn an_id_no_configured_array_has_is_refused_not_searched_by_name() {
        let pv = locator(Some("10.9.9.9"), Some("id-gone"));
        let (asked, result) = run(search(Some(&pv)), &World::holding([Live, Live, Live]));
        assert!(asked.iter().all(|q| matches!(q, ArrayId(_))), "{asked:?}");
        let err = result.expect_err("refused");
        assert_eq!(
            err.problem,
            Problem::IdNotConfigured {
                id: "id-gone".into(),
                endpoint: Some("10.9.9.9".into()),
                configured: ARRAYS.map(str::to_owned).to_vec(),
            }
        );
        let text = err.to_string();
        assert!(
            text.contains("k8s-pvc-1")
                && text.contains("id-gone")
                && text.contains("10.0.0.6:8443")
                && text.contains("add that FlashArray to pure.json")
                && text.contains(ARRAY_ID),
            "{text}"
        );
    }

    #[test]
    fn an_array_that_cannot_say_its_id_blocks_only_when_no_other_has_the_id() {
        let pv = locator(None, Some("id-7"));
        let mut world = World::holding([Absent, Absent, Live]);
        world.ids[0] = Err("connection refused");
        let (_, result) = run(search(Some(&pv)), &world);
        assert_eq!(result.expect("found on the array with the id").array(), 2);

        world.ids = [Err("connection refused"), Ok("id-6"), Ok("id-x")];
        let (_, result) = run(search(Some(&pv)), &world);
        assert_eq!(
            problem(result),
            Problem::Unreachable(vec![("10.0.0.5".into(), "connection refused".into())])
        );
    }

    #[test]
    fn without_an_id_the_endpoint_names_the_array_however_it_is_written() {
        let pv = locator(Some("Array7.Example.com:443"), None);
        let (asked, result) = run(search(Some(&pv)), &World::holding([Live, Live, Live]));
        assert_eq!(asked, [Volume(2)]);
        assert_eq!(result.expect("found"), Located::Live(2));

        let (_, result) = run(search(Some(&pv)), &World::holding([Live, Live, Absent]));
        let err = result.expect_err("not there");
        assert_eq!(
            err.problem,
            Problem::NotFound {
                searched: vec!["array7.example.com".into()],
                named: true
            }
        );
        assert!(err.to_string().contains("the array its PV names"), "{err}");
    }

    #[test]
    fn an_endpoint_that_matches_nothing_means_a_search_by_name_over_all_arrays() {
        for pv in [
            locator(Some("10.0.0.6"), None), // 10.0.0.6:443 is not 10.0.0.6:8443
            locator(Some("not an endpoint"), None),
        ] {
            let (asked, result) = run(search(Some(&pv)), &World::holding([Absent, Live, Absent]));
            assert_eq!(asked, [Volume(0), Volume(1), Volume(2)]);
            assert_eq!(result.expect("found"), Located::Live(1));
        }
    }

    #[test]
    fn a_pso_pv_is_searched_for_by_name_on_every_array() {
        let (asked, result) = run(search(None), &World::holding([Absent, Absent, Destroyed]));
        assert_eq!(asked, [Volume(0), Volume(1), Volume(2)]);
        assert_eq!(result.expect("found"), Located::Destroyed(2));
        let empty = locator(Some(" "), Some(""));
        let (asked, _) = run(search(Some(&empty)), &World::holding([Absent; 3]));
        assert_eq!(asked.len(), 3, "blank options name no array");
    }

    #[test]
    fn a_name_on_more_than_one_array_is_refused() {
        let (_, result) = run(search(None), &World::holding([Live, Absent, Destroyed]));
        let err = result.expect_err("refused");
        assert_eq!(
            err.problem,
            Problem::OnMoreThanOne(vec!["10.0.0.5".into(), "array7.example.com".into()])
        );
        let text = err.to_string();
        assert!(
            text.contains("k8s-pvc-1")
                && text.contains("10.0.0.5, array7.example.com")
                && text.contains("resolve by hand"),
            "{text}"
        );
    }

    #[test]
    fn an_unreachable_array_in_a_search_is_an_error_naming_it_even_when_another_has_the_volume() {
        let mut world = World::holding([Live, Absent, Absent]);
        world.holds[2] = Err("timed out");
        let (_, result) = run(search(None), &world);
        let err = result.expect_err("cannot rule out a second copy");
        assert_eq!(
            err.problem,
            Problem::Unreachable(vec![("array7.example.com".into(), "timed out".into())])
        );
        let text = err.to_string();
        assert!(
            text.contains("FlashArray array7.example.com (timed out) could not be asked")
                && text.contains("try again once it answers"),
            "{text}"
        );

        world.holds = [Err("refused"), Err("timed out"), Ok(Absent)];
        let text = run(search(None), &world).1.expect_err("two").to_string();
        assert!(
            text.contains("FlashArrays 10.0.0.5 (refused); 10.0.0.6:8443 (timed out)")
                && text.contains("once they answer"),
            "{text}"
        );
    }

    #[test]
    fn a_mount_takes_the_one_live_copy_a_search_found_while_another_array_is_down() {
        let mut world = World::holding([Absent, Live, Absent]);
        world.holds[2] = Err("timed out");
        let mut s = search(None);
        drive(&mut s, &world);
        assert_eq!(
            s.live_array()
                .expect("the live copy on the answering array"),
            1
        );
        assert!(s.conclusion().is_err(), "deleting stays strict");

        // A destroyed copy beside a live one is still two holders of the name.
        let mut world = World::holding([Destroyed, Live, Absent]);
        world.holds[2] = Err("timed out");
        let mut s = search(None);
        drive(&mut s, &world);
        assert!(s.live_array().is_err());
    }

    #[test]
    fn a_volume_on_no_array_is_not_found_naming_every_array_searched() {
        let (_, result) = run(search(None), &World::holding([Absent; 3]));
        let err = result.expect_err("nowhere");
        assert_eq!(
            err.problem,
            Problem::NotFound {
                searched: ARRAYS.map(str::to_owned).to_vec(),
                named: false
            }
        );
        let text = err.to_string();
        assert!(
            text.contains(
                "volume k8s-pvc-1 does not exist on any configured FlashArray (10.0.0.5, \
                 10.0.0.6:8443, array7.example.com)"
            ),
            "{text}"
        );
    }

    #[test]
    fn file_systems_and_blades_are_named_as_such() {
        let s = Search::new("k8s-pvc-2", Backend::File, None, ["fb1"]);
        let text = s.conclusion().expect_err("not asked").to_string();
        assert!(
            text.contains("FlashBlade holds file system k8s-pvc-2") && text.contains("not asked"),
            "{text}"
        );
    }

    #[test]
    fn a_destroyed_volume_is_located_but_not_live() {
        let pv = locator(Some("10.0.0.5"), None);
        let mut s = search(Some(&pv));
        s.answer_volume(0, Ok::<_, String>(Destroyed));
        assert_eq!(s.conclusion().expect("located"), Located::Destroyed(0));
        let err = s.live_array().expect_err("destroyed");
        assert_eq!(err.problem, Problem::Destroyed("10.0.0.5".into()));
        assert!(err.to_string().contains("recover it"), "{err}");

        s.answer_volume(0, Ok::<_, String>(Live));
        assert_eq!(s.live_array().expect("live"), 0);
    }

    #[test]
    fn a_caller_that_finds_out_itself_is_not_made_to_look_the_volume_up_on_a_named_array() {
        let by_id = locator(Some("10.0.0.6:8443"), Some("id-6"));
        let (asked, result) = run(
            search(Some(&by_id)).without_lookup_on_named_array(),
            &World::holding([Absent; 3]),
        );
        assert_eq!(asked, [ArrayId(1)]);
        assert_eq!(result.expect("named"), Located::Named(1));

        let by_endpoint = locator(Some("10.0.0.5"), None);
        let (asked, result) = run(
            search(Some(&by_endpoint)).without_lookup_on_named_array(),
            &World::holding([Absent; 3]),
        );
        assert_eq!(
            (asked.len(), result.expect("named")),
            (0, Located::Named(0))
        );

        let (asked, result) = run(
            search(None).without_lookup_on_named_array(),
            &World::holding([Absent; 3]),
        );
        assert_eq!(asked.len(), 3, "a search by name still asks every array");
        assert!(matches!(
            problem(result),
            Problem::NotFound { named: false, .. }
        ));

        let gone = locator(None, Some("id-gone"));
        let (_, result) = run(
            search(Some(&gone)).without_lookup_on_named_array(),
            &World::holding([Live; 3]),
        );
        assert!(matches!(problem(result), Problem::IdNotConfigured { .. }));
    }

    #[test]
    fn without_arrays_nothing_is_asked_and_the_configuration_is_named() {
        let s = Search::new("k8s-pvc-1", Backend::Block, None, Vec::<String>::new());
        assert_eq!(s.next_question(), None);
        let err = s.conclusion().expect_err("no arrays");
        assert_eq!(err.problem, Problem::NoArrays);
        assert!(err.to_string().contains("lists no FlashArrays"), "{err}");
    }

    #[test]
    fn answers_about_arrays_that_do_not_exist_are_ignored() {
        let mut s = search(None);
        s.answer_volume(9, Ok::<_, String>(Live));
        s.answer_id(9, Ok::<_, String>("id-9"));
        assert_eq!(s.next_question(), Some(Volume(0)));
    }

    #[test]
    fn endpoints_compare_by_host_and_port() {
        assert!(same_endpoint("10.0.0.5", "https://10.0.0.5:443"));
        assert!(same_endpoint("Array1.example.com", "array1.example.com"));
        assert!(!same_endpoint("10.0.0.5", "10.0.0.5:8443"));
        assert!(!same_endpoint("10.0.0.5", "10.0.0.6"));
        assert!(!same_endpoint("10.0.0.5", "not an endpoint"));
    }
}
