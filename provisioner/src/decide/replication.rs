//! Pure decisions for replicated classes (StorageClass parameter `protectionGroup`): which arrays
//! may take a new volume of the class (those where the administrator's group is live), and what a
//! failed join means (the group is gone: remove the new volume; the array did not answer: keep it
//! and try again). flashvol never creates, targets or schedules protection groups.
//!
//! No I/O: [`crate::reconcile::replication`] asks the arrays and acts on these answers.

use flashvol_common::ArrayError;

/// Whether an array has the class's protection group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupPresence {
    Live,
    Destroyed,
    Absent,
}

/// Why a replicated class's claim cannot be provisioned; the text becomes the
/// `ProvisioningFailed` event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplicationError {
    #[error(
        "StorageClass parameter protectionGroup: protection group {group} is not live on any FlashArray ({detail}); an array administrator must create it (and its targets and schedule), flashvol only adds volumes to it; no volume was created"
    )]
    NoGroup { group: String, detail: String },
    #[error(
        "protection group {group} {state} on {array}, so {volume} cannot join it; {volume} was removed from {array} (destroyed and eradicated) so nothing is left behind; an array administrator must {fix}"
    )]
    GroupGone {
        group: String,
        state: &'static str,
        array: String,
        volume: String,
        fix: &'static str,
    },
    #[error(
        "cannot add {volume} to protection group {group} on {array}: {error}; the volume stays and joins on the next attempt"
    )]
    JoinLater {
        group: String,
        volume: String,
        array: String,
        error: String,
    },
}

/// The arrays (indices into `presences`, each `(array, presence)`) where a new volume of the class
/// may go: those where the group is live. None is a [`ReplicationError::NoGroup`] naming each
/// array's answer.
pub fn arrays_with_group(
    group: &str,
    presences: &[(String, GroupPresence)],
) -> Result<Vec<usize>, ReplicationError> {
    let live: Vec<usize> = presences
        .iter()
        .enumerate()
        .filter(|(_, (_, p))| *p == GroupPresence::Live)
        .map(|(i, _)| i)
        .collect();
    if !live.is_empty() {
        return Ok(live);
    }
    let detail = if presences.is_empty() {
        "no FlashArray is configured".to_owned()
    } else {
        presences
            .iter()
            .map(|(array, p)| match p {
                GroupPresence::Destroyed => format!("destroyed on {array}"),
                _ => format!("absent on {array}"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(ReplicationError::NoGroup {
        group: group.to_owned(),
        detail,
    })
}

/// What a failed join means: a missing or destroyed group removes the new volume
/// ([`ReplicationError::GroupGone`]; the caller removes it before it reports), anything else keeps
/// the volume for the next attempt ([`ReplicationError::JoinLater`]).
pub fn join_failure(
    group: &str,
    volume: &str,
    array: &str,
    error: &ArrayError,
) -> ReplicationError {
    let gone = |state, fix| ReplicationError::GroupGone {
        group: group.to_owned(),
        state,
        array: array.to_owned(),
        volume: volume.to_owned(),
        fix,
    };
    match error {
        ArrayError::NotFound { .. } => gone("does not exist", "create it there"),
        ArrayError::Destroyed { .. } => {
            gone("is destroyed (pending eradication)", "recover it there")
        }
        other => ReplicationError::JoinLater {
            group: group.to_owned(),
            volume: volume.to_owned(),
            array: array.to_owned(),
            error: other.to_string(),
        },
    }
}

impl ReplicationError {
    /// The new volume must be removed: its group is gone.
    pub fn rolls_back(&self) -> bool {
        matches!(self, ReplicationError::GroupGone { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presences(list: &[(&str, GroupPresence)]) -> Vec<(String, GroupPresence)> {
        list.iter().map(|(a, p)| ((*a).to_owned(), *p)).collect()
    }

    #[test]
    fn only_arrays_where_the_group_is_live_take_new_volumes() {
        let found = arrays_with_group(
            "daily",
            &presences(&[
                ("fa1", GroupPresence::Absent),
                ("fa2", GroupPresence::Live),
                ("fa3", GroupPresence::Destroyed),
            ]),
        );
        assert_eq!(found, Ok(vec![1]));
    }

    #[test]
    fn no_live_group_anywhere_names_each_arrays_answer_and_creates_nothing() {
        let err = arrays_with_group(
            "daily",
            &presences(&[
                ("fa1", GroupPresence::Absent),
                ("fa3", GroupPresence::Destroyed),
            ]),
        )
        .expect_err("no array");
        let text = err.to_string();
        assert!(text.contains("absent on fa1, destroyed on fa3"), "{text}");
        assert!(text.contains("no volume was created"), "{text}");
        assert!(
            arrays_with_group("daily", &[])
                .expect_err("none")
                .to_string()
                .contains("no FlashArray")
        );
    }

    #[test]
    fn a_missing_or_destroyed_group_rolls_the_volume_back_anything_else_retries() {
        let missing = ArrayError::NotFound {
            endpoint: "fa1".into(),
            object: "daily".into(),
            message: "Protection group does not exist.".into(),
        };
        let err = join_failure("daily", "k8s-pvc-1", "FlashArray fa1", &missing);
        assert!(err.rolls_back());
        assert!(
            err.to_string().contains("does not exist on FlashArray fa1"),
            "{err}"
        );
        assert!(err.to_string().contains("nothing is left behind"), "{err}");
        let destroyed = ArrayError::Destroyed {
            endpoint: "fa1".into(),
            object: "daily".into(),
            message: "Protection group has been destroyed.".into(),
        };
        let err = join_failure("daily", "k8s-pvc-1", "fa1", &destroyed);
        assert!(
            err.rolls_back() && err.to_string().contains("recover it"),
            "{err}"
        );
        let down = ArrayError::Transport {
            endpoint: "fa1".into(),
            message: "connection refused".into(),
            timed_out: false,
            tls: false,
        };
        let err = join_failure("daily", "k8s-pvc-1", "fa1", &down);
        assert!(!err.rolls_back());
        assert!(
            err.to_string().contains("joins on the next attempt"),
            "{err}"
        );
    }
}
