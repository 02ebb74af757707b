//! A replica restore on the arrays (issue 18): which FlashArrays hold replicated snapshots of the
//! claim's `<array>:<group>`, and which snapshot to copy: the newest completed one that contains
//! the volume, by the rules of [`crate::decide::replica`]. Copying and growing are
//! [`crate::reconcile::provision`]'s, as for any restore; nothing here creates anything.

use std::time::SystemTime;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;

use flashvol_common::ArrayError;
use flashvol_common::flasharray::{PgroupSnapshot, Volume};

use crate::arrays::{Array, Client, wrong_kind};
use crate::decide::claim::requested_bytes;
use crate::decide::plan::Plan;
use crate::decide::replica::{Replica, ReplicaError, restorable, restore_message};
use crate::decide::source::{check_placement, check_size};
use crate::reconcile::provision::{ProvisionError, fail};
use crate::reconcile::source::Found;

impl Array {
    /// The replicated snapshots of `group` (`<array>:<group>`) here; `None` when this array
    /// does not hold the group.
    pub async fn replicated_snapshots(
        &self,
        group: &str,
    ) -> Result<Option<Vec<PgroupSnapshot>>, ArrayError> {
        let group = group.to_owned();
        let listed = self
            .call("list_pgroup_snapshots", move |c| match c {
                Client::FlashArray(fa) => fa.list_pgroup_snapshots(&group),
                Client::FlashBlade(_) => Err(wrong_kind("list_pgroup_snapshots")),
            })
            .await;
        match listed {
            Ok(s) => Ok(Some(s)),
            Err(ArrayError::NotFound { .. } | ArrayError::Destroyed { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The volume snapshots of one protection group snapshot.
    pub async fn snapshot_volumes(&self, snapshot: &str) -> Result<Vec<Volume>, ArrayError> {
        let snapshot = snapshot.to_owned();
        self.call("list_pgroup_snapshot_volumes", move |c| match c {
            Client::FlashArray(fa) => fa.list_pgroup_snapshot_volumes(&snapshot),
            Client::FlashBlade(_) => Err(wrong_kind("list_pgroup_snapshot_volumes")),
        })
        .await
    }
}

/// The replicated volume snapshot a claim restores, the array holding it, and the event text that
/// names it and its age. Every array of the backend is asked; one that cannot answer stops the
/// pass (a newer snapshot may be there). Among the arrays holding the replica group, the newest
/// completed snapshot containing the volume wins.
pub async fn replica_to_restore<'a>(
    pvc: &PersistentVolumeClaim,
    plan: &Plan<'_>,
    arrays: &[&'a Array],
    replica: &Replica,
    now: SystemTime,
) -> Result<(Found<'a>, String), ProvisionError> {
    let group = replica.replica_group();
    let claim_fault = |e: ReplicaError| fail("claim", e.to_string());
    let mut asked = Vec::new();
    let mut best: Option<(&'a Array, PgroupSnapshot, Volume, usize, usize)> = None;
    let mut searched = Vec::new();
    for &array in arrays {
        let snapshots = array.replicated_snapshots(&group).await.map_err(|e| {
            fail(
                "array",
                format!(
                    "cannot list replicated snapshots of {group} on {}: {e}",
                    array.describe()
                ),
            )
        })?;
        let Some(snapshots) = snapshots else {
            asked.push(format!("absent on {}", array.describe()));
            continue;
        };
        let (order, in_transfer) = restorable(&snapshots);
        let mut without_volume = 0;
        for snapshot in order {
            let wanted = replica.volume_snapshot(&snapshot.name);
            let volumes = array.snapshot_volumes(&snapshot.name).await.map_err(|e| {
                fail(
                    "array",
                    format!(
                        "cannot list the volumes of {} on {}: {e}",
                        snapshot.name,
                        array.describe()
                    ),
                )
            })?;
            if let Some(volume) = volumes.into_iter().find(|v| v.name == wanted) {
                let newer = best.as_ref().is_none_or(|(_, b, ..)| {
                    crate::decide::replica::created_at(snapshot)
                        > crate::decide::replica::created_at(b)
                });
                if newer {
                    best = Some((array, snapshot.clone(), volume, in_transfer, without_volume));
                }
                break;
            }
            without_volume += 1;
        }
        searched.push(format!(
            "{} on {}: {} completed without the volume, {in_transfer} in transfer",
            group,
            array.describe(),
            without_volume
        ));
    }
    if asked.len() == arrays.len() {
        return Err(claim_fault(ReplicaError::NotReplicatedHere {
            group,
            array: replica.array.clone(),
            asked: if asked.is_empty() {
                "no FlashArray is configured".to_owned()
            } else {
                asked.join(", ")
            },
        }));
    }
    let Some((array, snapshot, volume, in_transfer, without_volume)) = best else {
        return Err(claim_fault(ReplicaError::NoSnapshot {
            group,
            volume: replica.volume.clone(),
            detail: searched.join("; "),
        }));
    };
    let what = format!("replicated snapshot {}", volume.name);
    let requested = requested_bytes(pvc).map_err(|e| fail("claim", e.to_string()))?;
    check_size(requested, volume.size, &what).map_err(|e| fail("claim", e.to_string()))?;
    check_placement(plan.selector, &array.labels, &array.endpoint, &what)
        .map_err(|e| fail("claim", e.to_string()))?;
    let message = restore_message(
        replica,
        &snapshot,
        &array.describe(),
        now,
        in_transfer,
        without_volume,
    );
    Ok((
        Found {
            array,
            object: volume.name,
            size: volume.size,
        },
        message,
    ))
}
