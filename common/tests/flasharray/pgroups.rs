//! Protection groups and replication as the provisioner uses them: joining an administrator's
//! group (idempotent; missing and destroyed groups classified), and on a target array the
//! replicated snapshots of a source array's group, their transfer state, their volume snapshots
//! and the replication connections.

use flashvol_common::ArrayError;
use flashvol_common::flasharray::Qos;
use serde_json::json;

use crate::support::Sim;
use crate::{GIB, client};

#[test]
fn joining_a_group_is_idempotent_and_a_missing_or_destroyed_group_is_classified() {
    let sim = Sim::flasharray();
    let fa = client(&sim);
    fa.create_volume("k8s-pvc-a", GIB, &Qos::default())
        .expect("create");
    let missing = fa.add_to_protection_group("daily", "k8s-pvc-a");
    assert!(
        matches!(missing, Err(ArrayError::NotFound { .. })),
        "{missing:?}"
    );
    // The administrator's group, made with the array's own call.
    let created = sim.fa_call("POST", "pgroup/daily", json!({}));
    assert_eq!(created["name"], "daily");
    fa.add_to_protection_group("daily", "k8s-pvc-a")
        .expect("join");
    fa.add_to_protection_group("daily", "k8s-pvc-a")
        .expect("join again: already a member counts as done");
    let group = fa.get_protection_group("daily").expect("get");
    assert_eq!(group.volumes, ["k8s-pvc-a"]);
    assert_eq!(group.source.as_deref(), Some("sim-fa"));
    assert!(!group.destroyed);
    sim.fa_call("DELETE", "pgroup/daily", json!({}));
    assert!(fa.get_protection_group("daily").expect("pending").destroyed);
    let absent = fa.get_protection_group("weekly");
    assert!(
        matches!(absent, Err(ArrayError::NotFound { .. })),
        "{absent:?}"
    );
    let destroyed = fa.add_to_protection_group("daily", "k8s-pvc-a");
    assert!(
        matches!(destroyed, Err(ArrayError::Destroyed { .. })),
        "{destroyed:?}"
    );
}

#[test]
fn a_target_lists_replicated_snapshots_with_transfer_state_and_their_volumes() {
    let sim = Sim::flasharray();
    let fa = client(&sim);
    for progress in [1.0, 0.5] {
        sim.admin(
            "POST",
            "replicated-snapshots",
            Some(
                json!({"source_array": "site-a", "pgroup": "daily", "progress": progress,
                        "volumes": [{"name": "k8s-pvc-a", "size": GIB}]}),
            ),
        );
    }
    let snapshots = fa.list_pgroup_snapshots("site-a:daily").expect("list");
    let names: Vec<&str> = snapshots.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["site-a:daily.1", "site-a:daily.2"]);
    assert!(snapshots[0].is_complete() && !snapshots[1].is_complete());
    assert!(snapshots[0].created.is_some());
    let volumes = fa
        .list_pgroup_snapshot_volumes("site-a:daily.1")
        .expect("volumes");
    assert_eq!(volumes.len(), 1);
    assert_eq!(volumes[0].name, "site-a:daily.1.k8s-pvc-a");
    assert_eq!(volumes[0].source.as_deref(), Some("site-a:k8s-pvc-a"));
    assert_eq!(volumes[0].size, GIB);
    let absent = fa.list_pgroup_snapshots("site-b:daily");
    assert!(
        matches!(absent, Err(ArrayError::NotFound { .. })),
        "{absent:?}"
    );
    let connections = fa.list_array_connections().expect("connections");
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0].array_name, "site-a");
    assert!(connections[0].connected);
}
