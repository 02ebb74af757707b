//! Replicated classes on the arrays (StorageClass parameter `protectionGroup`): which FlashArrays
//! hold the administrator's group, and a new volume joining it, removed again when the group is
//! gone so a refused claim leaves no volume behind. The rules are
//! [`crate::decide::replication`]'s.

use flashvol_common::ArrayError;

use crate::arrays::{Array, Client};
use crate::decide::replication::{GroupPresence, arrays_with_group, join_failure};
use crate::reconcile::provision::{ProvisionError, fail};

impl Array {
    /// Whether this FlashArray has the protection group `group`, live or destroyed.
    pub async fn protection_group(&self, group: &str) -> Result<GroupPresence, ArrayError> {
        let group = group.to_owned();
        let found = self
            .call("get_protection_group", move |c| match c {
                Client::FlashArray(fa) => fa.get_protection_group(&group),
                Client::FlashBlade(_) => Err(crate::arrays::wrong_kind("get_protection_group")),
            })
            .await;
        match found {
            Ok(g) if g.destroyed => Ok(GroupPresence::Destroyed),
            Ok(_) => Ok(GroupPresence::Live),
            Err(ArrayError::NotFound { .. }) => Ok(GroupPresence::Absent),
            Err(ArrayError::Destroyed { .. }) => Ok(GroupPresence::Destroyed),
            Err(e) => Err(e),
        }
    }

    /// Puts `volume` into `group`; a member already counts as done.
    pub async fn add_to_protection_group(
        &self,
        group: &str,
        volume: &str,
    ) -> Result<(), ArrayError> {
        let (group, volume) = (group.to_owned(), volume.to_owned());
        self.call("add_to_protection_group", move |c| match c {
            Client::FlashArray(fa) => fa.add_to_protection_group(&group, &volume),
            Client::FlashBlade(_) => Err(crate::arrays::wrong_kind("add_to_protection_group")),
        })
        .await
    }
}

/// The arrays a new volume of a class with `group` may be created on: those where the group is
/// live. An array that cannot answer stops the pass (nothing is created).
pub async fn arrays_holding<'a>(
    arrays: &[&'a Array],
    group: &str,
) -> Result<Vec<&'a Array>, ProvisionError> {
    let mut presences = Vec::with_capacity(arrays.len());
    for array in arrays {
        let presence = array.protection_group(group).await.map_err(|e| {
            fail(
                "array",
                format!(
                    "cannot check {} for protection group {group}: {e}",
                    array.describe()
                ),
            )
        })?;
        presences.push((array.describe(), presence));
    }
    let chosen = arrays_with_group(group, &presences).map_err(|e| fail("class", e.to_string()))?;
    Ok(chosen.into_iter().map(|i| arrays[i]).collect())
}

/// Puts the claim's new `volume` on `array` into `group`. When the group is missing or destroyed
/// the volume is destroyed and eradicated before the claim fails, so nothing is left behind (its
/// name is the claim's, and a destroyed one would block the next attempt). Any other failure
/// keeps the volume: the next pass finds it and joins again.
pub async fn join(array: &Array, group: &str, volume: &str) -> Result<(), ProvisionError> {
    let Err(error) = array.add_to_protection_group(group, volume).await else {
        return Ok(());
    };
    let refusal = join_failure(group, volume, &array.describe(), &error);
    if !refusal.rolls_back() {
        return Err(fail("array", refusal.to_string()));
    }
    if let Err(e) = array.destroy(volume, true).await {
        return Err(fail(
            "array",
            format!("{refusal}; but removing {volume} failed: {e} (the next attempt tries again)"),
        ));
    }
    Err(fail("class", refusal.to_string()))
}
