//! The controllers driven by watches on the fake API.

use super::*;

/// The controllers with `workers` workers on the harness's fake API, once their caches synced.
async fn run_synced_controllers(h: &Harness, workers: u16) -> tokio::task::JoinHandle<()> {
    use crate::controller::{self, CacheState, RunOptions};
    let mut ctx = h.context();
    let watches = controller::watches(h.fake.client());
    ctx.classes = Some(watches.classes.clone());
    ctx.volumes = Some(watches.volumes.clone());
    let caches = Arc::new(CacheState::default());
    let options = RunOptions {
        workers,
        orphan_interval: None,
        orphan_grace: Duration::from_secs(3600),
        array_poll_interval: Duration::from_secs(3600),
    };
    let task = tokio::spawn(controller::run(
        Arc::new(ctx),
        watches,
        options,
        Arc::clone(&caches),
    ));
    wait_for("caches synced", || {
        caches.synced.load(std::sync::atomic::Ordering::Relaxed)
    })
    .await;
    task
}

/// Class `pure` and the controllers with one worker, the array answering after `latency_ms`:
/// every claim that comes while a pass runs waits for its turn.
async fn one_worker_on_a_slow_array(h: &Harness, latency_ms: u64) -> tokio::task::JoinHandle<()> {
    h.add_class(class("pure", "pure-provisioner", &[]));
    let task = run_synced_controllers(h, 1).await;
    h.sims[0].set_faults(flashvol_arraysim::Faults {
        latency_ms,
        ..Default::default()
    });
    task
}

/// Which of `claims` have a PV, in the order they got one, polled until all have or `within`.
async fn pv_order(h: &Harness, claims: &[PersistentVolumeClaim], within: Duration) -> Vec<usize> {
    let mut order: Vec<usize> = Vec::new();
    let deadline = std::time::Instant::now() + within;
    while order.len() < claims.len() && std::time::Instant::now() < deadline {
        for (i, claim) in claims.iter().enumerate() {
            if !order.contains(&i) && h.pv_of(claim).is_some() {
                order.push(i);
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    order
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controllers_act_on_watched_claims_classes_grown_claims_and_released_volumes() {
    use crate::controller::{self, CacheState, RunOptions};
    let h = Harness::start(&[fa(TIB, &[])], "");
    let mut ctx = h.context();
    let watches = controller::watches(h.fake.client());
    ctx.classes = Some(watches.classes.clone());
    ctx.volumes = Some(watches.volumes.clone());
    let ctx = Arc::new(ctx);
    h.add_class(class("pure", "pure-provisioner", &[]));
    let existing = pvc("existing", "pure", "1Gi");
    h.add_claim(&existing);
    let caches = Arc::new(CacheState::default());
    let options = RunOptions {
        workers: 4,
        orphan_interval: None,
        orphan_grace: Duration::from_secs(3600),
        array_poll_interval: Duration::from_secs(3600),
    };
    let task = tokio::spawn(controller::run(
        Arc::clone(&ctx),
        watches,
        options,
        Arc::clone(&caches),
    ));

    wait_for("PV of a claim that existed at start", || {
        h.pv_of(&existing).is_some()
    })
    .await;
    wait_for("caches synced", || {
        caches.synced.load(std::sync::atomic::Ordering::Relaxed)
    })
    .await;
    let added = pvc("added", "pure", "2Gi");
    h.add_claim(&added);
    wait_for("PV of a claim added later", || h.pv_of(&added).is_some()).await;

    // A claim whose class does not exist yet waits, then goes as soon as the class appears.
    let early = pvc("early", "late-class", "1Gi");
    h.add_claim(&early);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(h.pv_of(&early).is_none());
    h.add_class(class("late-class", "pure-provisioner", &[]));
    wait_for("PV once the class exists", || h.pv_of(&early).is_some()).await;

    // A bound claim whose request grows gets a larger array volume.
    let mut bound = h
        .fake
        .get::<PersistentVolumeClaim>(Some("default"), "added")
        .expect("claim");
    let added_pv = h.pv_of(&added).and_then(|p| p.metadata.name).expect("pv");
    bound.spec.get_or_insert_default().volume_name = Some(added_pv);
    bound.status.get_or_insert_default().capacity = Some(std::collections::BTreeMap::from([(
        "storage".to_owned(),
        k8s_openapi::apimachinery::pkg::api::resource::Quantity("2Gi".into()),
    )]));
    bound
        .spec
        .get_or_insert_default()
        .resources
        .get_or_insert_default()
        .requests
        .get_or_insert_default()
        .insert(
            "storage".into(),
            k8s_openapi::apimachinery::pkg::api::resource::Quantity("5Gi".into()),
        );
    h.add_claim(&bound);
    wait_for("the volume of a grown claim to grow", || {
        h.flash_array(0)
            .get_volume(&Harness::volume_name(&added))
            .is_ok_and(|v| v.size == 5 << 30)
    })
    .await;

    let pv = h
        .pv_of(&existing)
        .and_then(|p| p.metadata.name)
        .expect("pv");
    h.release(&pv);
    wait_for("released PV deleted", || {
        h.fake.get::<PersistentVolume>(None, &pv).is_none()
    })
    .await;
    assert!(matches!(
        h.flash_array(0)
            .get_volume(&Harness::volume_name(&existing)),
        Err(flashvol_common::ArrayError::Destroyed { .. })
    ));
    // Metrics are recorded just after the API calls the test watches for.
    wait_for("metrics of 3 provisions, 1 resize and 1 delete", || {
        let metrics = ctx.metrics.encode();
        metrics.contains(r#"flashvol_provisions_total{outcome="success",reason="created"} 3"#)
            && metrics.contains(r#"flashvol_resizes_total{outcome="success",reason="grown"} 1"#)
            && metrics.contains(r#"flashvol_deletes_total{outcome="success",reason="destroyed"} 1"#)
    })
    .await;
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_claims_gets_its_pvs_in_the_order_the_claims_came() {
    let h = Harness::start(&[fa(TIB, &[])], "");
    // Slow enough that the claims pile up behind the first one.
    let task = one_worker_on_a_slow_array(&h, 20).await;
    let claims: Vec<_> = (0..12)
        .map(|i| pvc(&format!("burst-{i:02}"), "pure", "1Gi"))
        .collect();
    for claim in &claims {
        h.add_claim(claim);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let order = pv_order(&h, &claims, Duration::from_secs(60)).await;
    h.sims[0].set_faults(flashvol_arraysim::Faults::default());
    task.abort();
    // First come, first served (kube-runtime's own queue, a set, gave them in no order, e.g.
    // [0, 8, 11, 3, 4, 10, 6, 2, 7, 1, 5, 9]).
    assert_eq!(order, (0..claims.len()).collect::<Vec<_>>(), "order of PVs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_annotated_while_it_waits_for_its_turn_is_provisioned_in_that_turn() {
    let h = Harness::start(&[fa(TIB, &[])], "");
    // The one worker is busy with `first` (its array calls at 200 ms each) while the others
    // come: `late` before the controller-manager has handed it to us, then `next`, then the
    // controller-manager's annotation on `late`.
    let task = one_worker_on_a_slow_array(&h, 200).await;
    let first = pvc("first", "pure", "1Gi");
    h.add_claim(&first);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut late = pvc("late", "pure", "1Gi");
    let handed_over = late.metadata.annotations.take();
    h.add_claim(&late);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let next = pvc("next", "pure", "1Gi");
    h.add_claim(&next);
    tokio::time::sleep(Duration::from_millis(50)).await;
    late.metadata.annotations = handed_over;
    h.add_claim(&late);
    let order = pv_order(&h, &[first, late, next], Duration::from_secs(60)).await;
    h.sims[0].set_faults(flashvol_arraysim::Faults::default());
    task.abort();
    // `late`'s turn came before `next`'s, and the pass works on the claim as it is by then: had
    // it worked on the claim as it was when it started waiting (not ours yet), `late` would have
    // gone to the back of the line, after `next`.
    assert_eq!(order, vec![0, 1, 2], "order of PVs");
}
