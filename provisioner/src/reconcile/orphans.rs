//! The orphan collector: destroys (never eradicates) `<prefix>-pvc-*` array volumes that belong
//! to no PV and no claim, once they are older than a grace period.
//!
//! Orphans come from a claim deleted between the array create and the PV create, or from PVs
//! deleted before their claims on clusters (or PSO PVs) without our finalizer. A claim that exists
//! keeps its volume whatever its state, so a claim being provisioned right now is safe; the grace
//! period covers the window between listing the arrays and listing the API. The arrays are listed
//! first and the API second, with fresh (paged) LIST calls rather than caches, so a volume created
//! during a round is always matched by its claim. Destroyed volumes stay recoverable on the array
//! for 24 hours.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::Api;
use kube::api::{ListParams, ObjectList};

use flashvol_common::names;
use flashvol_common::options::VolumeOptions;

use crate::arrays::Listed;
use crate::k8s::cache::CachedClaim;
use crate::reconcile::context::Context;

/// What the cluster refers to, from fresh lists.
#[derive(Debug, Default, Clone)]
pub struct References {
    /// Array volume names that some PV points at (by name or options).
    pub volumes: HashSet<String>,
    /// Uids of all existing claims.
    pub claim_uids: HashSet<String>,
}

/// Remembers when volumes without a creation time were first seen.
#[derive(Debug, Default)]
pub struct OrphanState {
    first_seen: HashMap<String, SystemTime>,
}

/// Which listed volumes (index into `listed`) are orphans old enough to destroy.
/// Updates `state` with first-seen times.
pub fn select_orphans(
    prefix: &str,
    listed: &[Listed],
    refs: &References,
    retained: &HashSet<String>,
    now: SystemTime,
    grace: Duration,
    state: &mut OrphanState,
) -> Vec<usize> {
    let mut out = Vec::new();
    let present: HashSet<&str> = listed.iter().map(|l| l.name.as_str()).collect();
    state
        .first_seen
        .retain(|name, _| present.contains(name.as_str()));
    for (i, volume) in listed.iter().enumerate() {
        let Some(uid) = names::claim_uid_of(prefix, &volume.name) else {
            continue;
        };
        if refs.volumes.contains(&volume.name)
            || refs.claim_uids.contains(&uid)
            || retained.contains(&volume.name)
        {
            state.first_seen.remove(&volume.name);
            continue;
        }
        let since = match volume.created {
            Some(t) => t,
            None => *state.first_seen.entry(volume.name.clone()).or_insert(now),
        };
        if now.duration_since(since).is_ok_and(|age| age >= grace) {
            out.push(i);
        }
    }
    out
}

/// Collects the references of the cluster: PV names and the array volumes their options name,
/// and claim uids.
pub fn references(
    prefix: &str,
    pvs: &[PersistentVolume],
    claims: &[PersistentVolumeClaim],
) -> References {
    let mut refs = References::default();
    refs.add_volumes(prefix, pvs);
    refs.claim_uids = claims
        .iter()
        .filter_map(|c| c.metadata.uid.clone())
        .collect();
    refs
}

impl References {
    /// Adds what `pvs` refer to: each PV's own name and the array volume its options name.
    pub fn add_volumes(&mut self, prefix: &str, pvs: &[PersistentVolume]) {
        for pv in pvs {
            if let Some(name) = &pv.metadata.name {
                self.volumes.insert(names::array_name(prefix, name));
            }
            if let Some(opts) = pv
                .spec
                .as_ref()
                .and_then(|s| s.flex_volume.as_ref())
                .and_then(|f| f.options.as_ref())
                .and_then(|o| VolumeOptions::from_options(o, prefix).ok())
            {
                self.volumes.insert(opts.array_volume);
            }
        }
    }
}

/// Objects per LIST page: a round over 10,000 PVs holds at most this many whole PVs at once.
const LIST_PAGE: u32 = 500;

/// The cluster's references from fresh, paged lists: PVs whole (their options name the array
/// volume), claims as the cache keeps them (only the uid is needed).
async fn list_references(ctx: &Context, prefix: &str) -> Result<References, String> {
    let mut refs = References::default();
    let pvs = Api::<PersistentVolume>::all(ctx.client.clone());
    each_page(
        |params| {
            let pvs = pvs.clone();
            async move { pvs.list(&params).await }
        },
        |page| refs.add_volumes(prefix, &page),
    )
    .await
    .map_err(|e| format!("cannot list PVs: {e}"))?;
    // As the claim cache keeps them (the uid is all that is read); not a metadata-only list,
    // which Kubernetes 1.14 serves only as v1beta1.
    let claims = Api::<CachedClaim>::all(ctx.client.clone());
    each_page(
        |params| {
            let claims = claims.clone();
            async move { claims.list(&params).await }
        },
        |page| {
            refs.claim_uids
                .extend(page.into_iter().filter_map(|c| c.metadata.uid));
        },
    )
    .await
    .map_err(|e| format!("cannot list claims: {e}"))?;
    Ok(refs)
}

/// Runs a LIST page by page, handing each page's items to `each`.
pub(crate) async fn each_page<T, Fetch, Fut>(
    mut fetch: Fetch,
    mut each: impl FnMut(Vec<T>),
) -> Result<(), kube::Error>
where
    T: Clone,
    Fetch: FnMut(ListParams) -> Fut,
    Fut: std::future::Future<Output = Result<ObjectList<T>, kube::Error>>,
{
    let mut params = ListParams::default().limit(LIST_PAGE);
    loop {
        let page = fetch(params.clone()).await?;
        each(page.items);
        match page.metadata.continue_.filter(|t| !t.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(()),
        }
    }
}

/// One collection round; returns the names destroyed.
pub async fn collect_once(
    ctx: &Context,
    grace: Duration,
    state: &mut OrphanState,
) -> Result<Vec<String>, String> {
    let prefix = &ctx.settings.name_prefix;
    let glob = names::array_glob(prefix);
    // Arrays first, then the API: see the module comment.
    let mut per_array = Vec::new();
    for array in ctx.arrays.all() {
        match array.list_live(&glob).await {
            Ok(listed) => per_array.push((array, listed)),
            Err(e) => log::warn!("orphan collector: cannot list {}: {e}", array.describe()),
        }
    }
    let refs = list_references(ctx, prefix).await?;
    let retained = ctx.retained.lock().map(|r| r.clone()).unwrap_or_default();
    let now = ctx.clock.now();
    let all: Vec<Listed> = per_array
        .iter()
        .flat_map(|(_, l)| l.iter().cloned())
        .collect();
    let chosen: HashSet<usize> = select_orphans(prefix, &all, &refs, &retained, now, grace, state)
        .into_iter()
        .collect();
    let mut destroyed = Vec::new();
    let mut index = 0;
    for (array, listed) in &per_array {
        for volume in listed {
            let pick = chosen.contains(&index);
            index += 1;
            if !pick {
                continue;
            }
            match array.destroy(&volume.name, false).await {
                Ok(true) => {
                    log::warn!(
                        "orphan collector: destroyed {} on {} (no PV and no claim refer to it; recoverable on the array for 24 h)",
                        volume.name,
                        array.describe()
                    );
                    ctx.metrics.orphans_destroyed.inc();
                    destroyed.push(volume.name.clone());
                }
                Ok(false) => {}
                Err(e) => log::warn!(
                    "orphan collector: cannot destroy {} on {}: {e}",
                    volume.name,
                    array.describe()
                ),
            }
        }
    }
    Ok(destroyed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lists_are_read_page_by_page_until_the_last() {
        let (fake, client) = crate::tests::fake_kube::FakeKube::new();
        for _ in 0..5 {
            fake.insert(&crate::tests::fixtures::pv_of("pure-provisioner"));
        }
        let api = Api::<PersistentVolume>::all(client);
        let mut names = HashSet::new();
        each_page(
            |params| {
                let api = api.clone();
                async move { api.list(&params.limit(2)).await }
            },
            |page| names.extend(page.into_iter().filter_map(|pv| pv.metadata.name)),
        )
        .await
        .expect("lists");
        assert_eq!(names.len(), 5, "every PV once");
        let pages = fake
            .requests()
            .iter()
            .filter(|(m, p)| m == "GET" && p == "/api/v1/persistentvolumes")
            .count();
        assert_eq!(pages, 3, "2 + 2 + 1");
    }

    const UID_A: &str = "11111111-1111-4111-8111-111111111111";
    const UID_B: &str = "22222222-2222-4222-8222-222222222222";

    fn listed(name: &str, created: Option<SystemTime>) -> Listed {
        Listed {
            name: name.into(),
            created,
        }
    }

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn old_volumes_without_pv_or_claim_are_orphans() {
        let vols = [listed(&format!("k8s-pvc-{UID_A}"), Some(t(0)))];
        let mut state = OrphanState::default();
        let refs = References::default();
        let grace = Duration::from_secs(600);
        assert!(
            select_orphans(
                "k8s",
                &vols,
                &refs,
                &HashSet::new(),
                t(599),
                grace,
                &mut state
            )
            .is_empty()
        );
        assert_eq!(
            select_orphans(
                "k8s",
                &vols,
                &refs,
                &HashSet::new(),
                t(600),
                grace,
                &mut state
            ),
            [0]
        );
    }

    #[test]
    fn a_claim_or_a_pv_keeps_its_volume() {
        let vols = [
            listed(&format!("k8s-pvc-{UID_A}"), Some(t(0))),
            listed(&format!("k8s-pvc-{UID_B}"), Some(t(0))),
        ];
        let mut refs = References::default();
        refs.claim_uids.insert(UID_A.into());
        refs.volumes.insert(format!("k8s-pvc-{UID_B}"));
        let mut state = OrphanState::default();
        assert!(
            select_orphans(
                "k8s",
                &vols,
                &refs,
                &HashSet::new(),
                t(10_000),
                Duration::ZERO,
                &mut state
            )
            .is_empty()
        );
    }

    #[test]
    fn foreign_names_and_retained_volumes_are_never_touched() {
        let retained_name = format!("k8s-pvc-{UID_A}");
        let vols = [
            listed("k8s-pvc-not-a-uid", Some(t(0))),
            listed(&format!("prod-pvc-{UID_B}"), Some(t(0))),
            listed(&retained_name, Some(t(0))),
        ];
        let retained = HashSet::from([retained_name]);
        let mut state = OrphanState::default();
        assert!(
            select_orphans(
                "k8s",
                &vols,
                &References::default(),
                &retained,
                t(10_000),
                Duration::ZERO,
                &mut state
            )
            .is_empty()
        );
    }

    #[test]
    fn without_a_creation_time_the_grace_runs_from_first_sight() {
        let vols = [listed(&format!("k8s-pvc-{UID_A}"), None)];
        let refs = References::default();
        let grace = Duration::from_secs(60);
        let mut state = OrphanState::default();
        assert!(
            select_orphans(
                "k8s",
                &vols,
                &refs,
                &HashSet::new(),
                t(1000),
                grace,
                &mut state
            )
            .is_empty()
        );
        assert!(
            select_orphans(
                "k8s",
                &vols,
                &refs,
                &HashSet::new(),
                t(1059),
                grace,
                &mut state
            )
            .is_empty()
        );
        assert_eq!(
            select_orphans(
                "k8s",
                &vols,
                &refs,
                &HashSet::new(),
                t(1060),
                grace,
                &mut state
            ),
            [0]
        );
    }

    #[test]
    fn pv_options_protect_volumes_whose_pv_has_another_name() {
        let mut pv = crate::tests::fixtures::pv_of("pure-provisioner");
        let spec = pv.spec.get_or_insert_default();
        let opts = spec
            .flex_volume
            .get_or_insert_default()
            .options
            .get_or_insert_default();
        opts.insert("arrayVolume".into(), format!("k8s-pvc-{UID_A}"));
        pv.metadata.name = Some("imported-by-hand".into());
        let refs = references("k8s", &[pv], &[]);
        assert!(refs.volumes.contains(&format!("k8s-pvc-{UID_A}")));
    }
}
