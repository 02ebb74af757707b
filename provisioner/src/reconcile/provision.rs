//! Provisioning one claim: decide ([`crate::decide::plan`], [`crate::decide::source`]), find or
//! make the array volume (blank, a copy of a snapshot or claim, or an adopted object), put a new
//! volume of a replicated class into its protection group ([`crate::reconcile::replication`]),
//! create the PV.
//!
//! Idempotent across crashes and restarts: the array name is derived from the claim uid, and
//! before creating anything every array of the backend is asked for that name whenever an earlier
//! attempt may have made it ([`crate::reconcile::attempts`]), so a crash between the array create
//! and the PV create is completed on the next pass instead of leaving a second volume elsewhere.
//! A claim no attempt has touched is created at once: one array round trip. Copies get the same
//! deterministic name, so a crash between the array copy and the PV create also leaves exactly
//! one volume, which the next pass finds and finishes ([`crate::reconcile::copy`]). A PV that
//! already exists means the claim is done.

use std::time::Instant;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::{Api, Resource};

use flashvol_common::ArrayError;
use flashvol_common::names;
use flashvol_common::options::Backend;

use crate::arrays::{Array, Lookup};
use crate::decide::claim::{ClaimDecision, claim_class_name, decide_claim};
use crate::decide::placement::{Candidate, choose_array};
use crate::decide::plan::{NewVolume, Plan, plan_volume};
use crate::decide::pv::{Placed, PvInputs, build_pv};
use crate::decide::quantity::format_bytes;
use crate::decide::source::{Source, check_backend, claim_source};
use crate::reconcile::context::Context;
use crate::reconcile::copy::{self, Earlier};
use crate::reconcile::events::{self, Kind};
use crate::reconcile::source;
use crate::reconcile::{replica, replication};
use crate::serve::monitor::pending::FAILURE_REASONS;

/// How a pass over a claim ended without error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// Not ours or nothing to do.
    Ignored(&'static str),
    /// Ours, but waiting (missing class, no selected node yet).
    Waiting(String),
    /// The PV exists already.
    AlreadyProvisioned,
    /// Created the PV (and the array volume unless it was found from an earlier attempt).
    Provisioned {
        pv: String,
        array: String,
        reused: bool,
    },
}

/// A failed pass; a `ProvisioningFailed` event has been recorded with the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProvisionError {
    /// Metric label: `class`, `claim`, `placement`, `array`, `kubernetes`.
    pub reason: &'static str,
    pub message: String,
}

pub(crate) fn fail(reason: &'static str, message: impl Into<String>) -> ProvisionError {
    debug_assert!(
        FAILURE_REASONS.contains(&reason),
        "{reason} is missing from serve::monitor::pending::FAILURE_REASONS"
    );
    ProvisionError {
        reason,
        message: message.into(),
    }
}

/// `namespace/name`: how logs name a claim, and its backoff key.
pub fn claim_key(meta: &ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

/// One pass over a claim: provisions it when it is ours and ready, records the outcome (event,
/// metrics, log, and the failure reason the pending-claims gauge reports).
pub async fn provision_claim(
    pvc: &PersistentVolumeClaim,
    ctx: &Context,
) -> Result<ClaimOutcome, ProvisionError> {
    let result = provision_pass(pvc, ctx).await;
    if let Some(uid) = pvc.metadata.uid.as_deref() {
        match &result {
            Err(e) => ctx.last_failures.record(uid, e.reason),
            Ok(ClaimOutcome::Waiting(_)) => {}
            Ok(_) => ctx.last_failures.clear(uid),
        }
    }
    result
}

async fn provision_pass(
    pvc: &PersistentVolumeClaim,
    ctx: &Context,
) -> Result<ClaimOutcome, ProvisionError> {
    // Most claims in a cluster are not ours or are bound: settle those without any lookup.
    if let ClaimDecision::Ignore(why) = decide_claim(pvc, None, &ctx.identity.provisioner) {
        return Ok(ClaimOutcome::Ignored(why));
    }
    let class = match claim_class_name(pvc) {
        Some(name) => ctx.storage_class(name).await.map_err(|e| {
            fail(
                "kubernetes",
                format!("cannot read StorageClass {name}: {e}"),
            )
        })?,
        None => None,
    };
    match decide_claim(pvc, class.as_ref(), &ctx.identity.provisioner) {
        ClaimDecision::Ignore(why) => return Ok(ClaimOutcome::Ignored(why)),
        ClaimDecision::Wait(why) => return Ok(ClaimOutcome::Waiting(why)),
        ClaimDecision::Provision => {}
    }
    let Some(class) = class else {
        return Ok(ClaimOutcome::Waiting("StorageClass not found".into()));
    };
    let Some(uid) = pvc.metadata.uid.as_deref() else {
        return Ok(ClaimOutcome::Ignored("claim has no uid"));
    };
    let pv_name = names::pv_name(uid);
    match ctx.pv_exists(&pv_name).await {
        Ok(true) => return Ok(ClaimOutcome::AlreadyProvisioned),
        Ok(false) => {}
        Err(e) => {
            return Err(fail("kubernetes", format!("cannot read PV {pv_name}: {e}")));
        }
    }
    let started = Instant::now();
    let result = provision(pvc, &class, &pv_name, ctx).await;
    let object = pvc.object_ref(&());
    match &result {
        Ok(ClaimOutcome::Provisioned { pv, array, reused }) => {
            ctx.metrics
                .provision_done(true, if *reused { "reused" } else { "created" });
            ctx.events.publish(
                &object,
                Kind::Normal,
                events::PROVISIONING_SUCCEEDED,
                &format!("Successfully provisioned volume {pv} on {array}"),
            );
            log::info!(
                "claim {}: provisioned {pv} on {array}",
                claim_key(&pvc.metadata)
            );
        }
        Ok(_) => {}
        Err(e) => {
            ctx.metrics.provision_done(false, e.reason);
            ctx.events.publish(
                &object,
                Kind::Warning,
                events::PROVISIONING_FAILED,
                &e.message,
            );
            log::warn!(
                "claim {}: provisioning failed: {}",
                claim_key(&pvc.metadata),
                e.message
            );
        }
    }
    if let Ok(ClaimOutcome::Provisioned { .. }) = &result {
        let backend = class
            .parameters
            .as_ref()
            .and_then(|p| p.get("backend"))
            .map_or("block", String::as_str);
        ctx.metrics
            .provision_duration
            .get_or_create(&crate::serve::metrics::BackendLabels {
                backend: backend.to_owned(),
            })
            .observe(started.elapsed().as_secs_f64());
    }
    result
}

/// Where the volume ended up: the array, its size, whether an earlier attempt made it, and the
/// adopted object's name when the claim took one over.
struct Placement<'a> {
    array: &'a Array,
    capacity: u64,
    reused: bool,
    adopted: Option<String>,
}

/// Held by a pass adopting an array object, from its check until its PV exists ([`provision`]).
static ADOPTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Carries out the plan: the claim's source checked ([`crate::decide::source`]); the array
/// volume found from an earlier attempt, or made now (created blank on the array placement
/// chooses, copied from a snapshot or a claim on the array holding it, or an existing object
/// adopted); then the PV.
async fn provision(
    pvc: &PersistentVolumeClaim,
    class: &k8s_openapi::api::storage::v1::StorageClass,
    pv_name: &str,
    ctx: &Context,
) -> Result<ClaimOutcome, ProvisionError> {
    let plan = plan_volume(pvc, class, &ctx.settings.name_prefix, pv_name)
        .map_err(|e| fail(e.reason(), e.to_string()))?;
    let source = claim_source(pvc)
        .and_then(|s| check_backend(&s, plan.params.backend).map(|()| s))
        .map_err(|e| fail("claim", e.to_string()))?;
    let array_name = &plan.array_name;

    ctx.events.publish(
        &pvc.object_ref(&()),
        Kind::Normal,
        events::PROVISIONING,
        &format!(
            "External provisioner is provisioning volume for claim \"{}\"",
            claim_key(&pvc.metadata)
        ),
    );

    let arrays: Vec<&Array> = ctx.arrays.of(plan.params.backend).collect();
    // Two claims adopting one object at once: the check that no PV names it (a PV list from the
    // API, not the cache) and this claim's PV create run under one lock, so the second claim sees
    // the first one's PV and is refused. Adoption is rare; the lock costs nothing elsewhere.
    let _adopting = match &source {
        Source::Adopt(_) => Some(ADOPTING.lock().await),
        _ => None,
    };
    let placement = if let Source::Adopt(object) = &source {
        let found = source::object_to_adopt(ctx, pvc, class, &plan, &arrays, object).await?;
        Placement {
            array: found.array,
            capacity: found.size,
            reused: false,
            adopted: Some(found.object),
        }
    } else {
        match find_existing(ctx, &arrays, array_name, pv_name).await? {
            Some((array, size)) => {
                log::info!(
                    "claim {}: {array_name} already exists on {} (earlier attempt); reusing it",
                    claim_key(&pvc.metadata),
                    array.endpoint
                );
                // A copy the earlier attempt made but did not finish yet.
                let capacity = match &source {
                    Source::Snapshot(_) | Source::Clone(_) | Source::Replica(_) => {
                        let earlier = Earlier {
                            array,
                            size,
                            source: &source,
                        };
                        copy::finish_earlier(ctx, pvc, &plan, &arrays, earlier, pv_name).await?
                    }
                    Source::Blank | Source::Adopt(_) => size,
                };
                Placement {
                    array,
                    capacity,
                    reused: true,
                    adopted: None,
                }
            }
            None => {
                ctx.attempts.begin(pv_name, |pv| ctx.pv_cached(pv));
                let (array, capacity) = match &source {
                    Source::Snapshot(snapshot) => {
                        let found =
                            source::snapshot_to_restore(ctx, pvc, &plan, &arrays, snapshot).await?;
                        copy::restore(ctx, found, &plan).await?
                    }
                    Source::Clone(claim) => {
                        let found =
                            source::volume_to_clone(ctx, pvc, &plan, &arrays, claim).await?;
                        copy::clone(ctx, found, &plan, pv_name).await?
                    }
                    Source::Replica(r) => {
                        let (found, message) =
                            replica::replica_to_restore(pvc, &plan, &arrays, r, ctx.clock.now())
                                .await?;
                        ctx.events.publish(
                            &pvc.object_ref(&()),
                            Kind::Normal,
                            events::RESTORING_REPLICA,
                            &message,
                        );
                        log::info!("claim {}: {message}", claim_key(&pvc.metadata));
                        copy::restore(ctx, found, &plan).await?
                    }
                    Source::Blank | Source::Adopt(_) => match &plan.params.protection_group {
                        Some(group) => {
                            let holding = replication::arrays_holding(&arrays, group).await?;
                            create_blank(ctx, &plan, &holding).await?
                        }
                        None => create_blank(ctx, &plan, &arrays).await?,
                    },
                };
                Placement {
                    array,
                    capacity,
                    reused: false,
                    adopted: None,
                }
            }
        }
    };
    let array = placement.array;
    if let (Some(group), None) = (&plan.params.protection_group, &placement.adopted) {
        replication::join(array, group, array_name).await?;
    }
    let array_id = array.id().await.map_err(|e| {
        fail(
            "array",
            format!("cannot read the id of {}: {e}", array.describe()),
        )
    })?;
    let nfs_endpoint = match plan.params.backend {
        Backend::File => Some(array.nfs_endpoint().await.map_err(|e| {
            fail(
                "array",
                format!("cannot find an NFS endpoint of {}: {e}", array.describe()),
            )
        })?),
        Backend::Block => None,
    };
    let pv = build_pv(&PvInputs {
        provisioner: &ctx.identity.provisioner,
        driver: &ctx.identity.driver,
        claim: pvc,
        class,
        params: &plan.params,
        settings: &ctx.settings,
        access_modes: &plan.access_modes,
        shared: plan.shared,
        placed: Placed {
            array_endpoint: &array.endpoint,
            array_id: &array_id,
            nfs_endpoint: nfs_endpoint.as_deref(),
            capacity: placement.capacity,
        },
        adopted: placement.adopted.as_deref(),
    });
    let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
    match pvs.create(&PostParams::default(), &pv).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {
            return Ok(ClaimOutcome::AlreadyProvisioned);
        }
        Err(e) => {
            // The array volume stays: the next pass finds it by name and retries the PV.
            return Err(fail(
                "kubernetes",
                format!("cannot create PV {pv_name}: {e}"),
            ));
        }
    }
    let described = array.describe();
    Ok(ClaimOutcome::Provisioned {
        pv: pv_name.to_owned(),
        array: match source {
            Source::Blank => described,
            other => format!("{described} from {}", other.describe()),
        },
        reused: placement.reused,
    })
}

/// A new, empty volume or file system on the array placement chooses.
async fn create_blank<'a>(
    ctx: &Context,
    plan: &Plan<'_>,
    arrays: &[&'a Array],
) -> Result<(&'a Array, u64), ProvisionError> {
    let array_name = &plan.array_name;
    let mut spaces = Vec::with_capacity(arrays.len());
    for a in arrays {
        spaces.push(a.space().await.map_err(|e| e.to_string()));
    }
    let candidates: Vec<Candidate<'_>> = arrays
        .iter()
        .zip(spaces)
        .map(|(a, space)| Candidate::new(&a.endpoint, &a.labels, space))
        .collect();
    let kind = plan.params.backend.array_kind();
    let chosen = choose_array(kind, &candidates, plan.selector, plan.size)
        .map_err(|e| fail("placement", e.to_string()))?;
    let array = arrays[chosen];
    let created = match plan.new_volume(&ctx.settings) {
        NewVolume::Block(qos) => array.create_volume(array_name, plan.size, qos).await,
        NewVolume::File(fs) => array.create_file_system(fs).await,
    };
    let capacity = match created {
        Ok(size) => {
            array.charge(size);
            size
        }
        // Created by a pass that raced this one (e.g. across a leader change).
        Err(ArrayError::AlreadyExists { .. }) => read_back(array, array_name).await?,
        Err(e) => {
            return Err(fail(
                "array",
                format!(
                    "cannot create {array_name} ({}) on {}: {e}",
                    format_bytes(plan.size),
                    array.describe()
                ),
            ));
        }
    };
    Ok((array, capacity))
}

/// The size of a volume a create or copy said exists already.
pub(crate) async fn read_back(array: &Array, array_name: &str) -> Result<u64, ProvisionError> {
    match array.lookup(array_name).await {
        Ok(Lookup::Live { size }) => Ok(size),
        Ok(other) => Err(fail(
            "array",
            format!(
                "{array_name} on {} is {other:?} after create said it exists",
                array.endpoint
            ),
        )),
        Err(e) => Err(fail("array", format!("cannot read back {array_name}: {e}"))),
    }
}

/// The array holding `name` from an earlier attempt, if one may have made it: then the name is
/// looked up on every array of the backend, and any array that cannot answer stops the pass
/// (creating elsewhere could duplicate a volume that array holds).
async fn find_existing<'a>(
    ctx: &Context,
    arrays: &[&'a Array],
    name: &str,
    pv_name: &str,
) -> Result<Option<(&'a Array, u64)>, ProvisionError> {
    if !ctx.attempts.begun(pv_name) {
        let glob = names::array_glob(&ctx.settings.name_prefix);
        let held = futures::future::join_all(
            arrays
                .iter()
                .map(|array| ctx.attempts.held_before(array, &glob, name)),
        )
        .await;
        if !held.contains(&true) {
            return Ok(None);
        }
    }
    // Every array is asked at once: one round trip, not one per array, before each create.
    let answers = futures::future::join_all(arrays.iter().map(|array| array.lookup(name))).await;
    let mut found: Option<(&Array, u64)> = None;
    for (array, answer) in arrays.iter().zip(answers) {
        match answer {
            Ok(Lookup::Absent) => {}
            Ok(Lookup::Live { size }) => {
                if let Some((first, _)) = found {
                    return Err(fail(
                        "array",
                        format!(
                            "{name} exists on both {} and {}; resolve by hand",
                            first.endpoint, array.endpoint
                        ),
                    ));
                }
                found = Some((array, size));
            }
            Ok(Lookup::Destroyed) => {
                return Err(fail(
                    "array",
                    format!(
                        "{name} exists on {} in destroyed state; recover or eradicate it on the array",
                        array.endpoint
                    ),
                ));
            }
            Err(e) => {
                return Err(fail(
                    "array",
                    format!(
                        "cannot check {} for an existing {name}: {e}",
                        array.describe()
                    ),
                ));
            }
        }
    }
    Ok(found)
}
