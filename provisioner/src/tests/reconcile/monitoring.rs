//! The monitoring side: the array poller against simulated arrays, and the pending-claims and
//! volume gauges counted from caches filled as the watches would fill them.

use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;

use flashvol_arraysim::{Faults, SpaceOverride};

use super::*;
use crate::k8s::cache::{CachedClaim, CachedVolume};
use crate::serve::monitor::{self, poller};

/// A line of the exposition that starts with `prefix`, e.g. a metric and its labels.
fn sample(ctx: &Context, prefix: &str) -> Option<String> {
    ctx.metrics
        .encode()
        .lines()
        .find(|l| l.starts_with(prefix))
        .map(str::to_owned)
}

fn labels(ctx: &Context, index: usize) -> String {
    let array = ctx.arrays.all().nth(index).expect("array");
    format!(
        "{{array=\"{}\",backend=\"{}\"}}",
        array.endpoint,
        array.backend.as_str()
    )
}

#[tokio::test]
async fn a_poll_reads_each_array_once_and_feeds_gauges_and_placement() {
    let h = Harness::start(&[fa(8 * TIB, &[]), fb(4 * TIB, &[])], "");
    let ctx = h.context();
    h.sims[0].set_space(SpaceOverride {
        used: Some(2 * TIB),
        data_reduction: Some(3.5),
    });
    assert_eq!(
        poller::poll_once(&ctx.arrays, &ctx.metrics).await,
        [true, true]
    );
    let (fa_labels, fb_labels) = (labels(&ctx, 0), labels(&ctx, 1));
    let value = |name: &str, labels: &str| sample(&ctx, &format!("flashvol_{name}{labels} "));
    assert_eq!(
        value("array_reachable", &fa_labels).as_deref(),
        Some(format!("flashvol_array_reachable{fa_labels} 1").as_str())
    );
    assert!(
        value("array_capacity_bytes", &fa_labels)
            .is_some_and(|l| l.ends_with(&format!(" {}", 8 * TIB)))
    );
    assert!(
        value("array_used_bytes", &fa_labels)
            .is_some_and(|l| l.ends_with(&format!(" {}", 2 * TIB)))
    );
    assert!(value("array_data_reduction_ratio", &fa_labels).is_some_and(|l| l.ends_with(" 3.5")));
    assert!(value("array_provisioned_bytes", &fa_labels).is_some_and(|l| l.ends_with(" 0")));
    assert!(
        value("array_capacity_bytes", &fb_labels)
            .is_some_and(|l| l.ends_with(&format!(" {}", 4 * TIB)))
    );
    assert_eq!(
        value("array_provisioned_bytes", &fb_labels),
        None,
        "FlashBlade reports no provisioned total"
    );
    assert!(value("array_last_contact_timestamp_seconds", &fb_labels).is_some());

    // The poll refreshed placement's cache: asking for free space makes no call.
    let space_calls = || {
        h.sims[0]
            .stats()
            .calls
            .get("GET array")
            .copied()
            .unwrap_or(0)
    };
    let before = space_calls();
    let array = ctx.arrays.all().next().expect("fa");
    assert_eq!(array.space().await.expect("space").free, 6 * TIB);
    assert_eq!(
        space_calls(),
        before,
        "served from the cache the poll refreshed"
    );
}

#[tokio::test]
async fn an_array_that_fails_the_poll_is_unreachable_and_keeps_its_last_figures() {
    let h = Harness::start(&[fa(8 * TIB, &[]), fa(8 * TIB, &[])], "");
    let ctx = h.context();
    assert_eq!(
        poller::poll_once(&ctx.arrays, &ctx.metrics).await,
        [true, true]
    );
    let contact = |i| {
        sample(
            &ctx,
            &format!(
                "flashvol_array_last_contact_timestamp_seconds{}",
                labels(&ctx, i)
            ),
        )
    };
    let last_contact = contact(1);
    h.sims[1].set_faults(Faults {
        error_rate: 1.0,
        ..Default::default()
    });
    assert_eq!(
        poller::poll_once(&ctx.arrays, &ctx.metrics).await,
        [true, false]
    );
    let (ok, down) = (labels(&ctx, 0), labels(&ctx, 1));
    assert!(
        sample(&ctx, &format!("flashvol_array_reachable{ok} ")).is_some_and(|l| l.ends_with(" 1"))
    );
    assert!(
        sample(&ctx, &format!("flashvol_array_reachable{down} "))
            .is_some_and(|l| l.ends_with(" 0"))
    );
    assert!(
        sample(&ctx, &format!("flashvol_array_capacity_bytes{down} "))
            .is_some_and(|l| l.ends_with(&format!(" {}", 8 * TIB))),
        "the last figures stay"
    );
    assert_eq!(contact(1), last_contact, "no successful call since");
    assert!(
        sample(
            &ctx,
            &format!(
                "flashvol_array_call_errors_total{{array=\"{}\",operation=\"space\"",
                ctx.arrays.all().nth(1).expect("array").endpoint
            )
        )
        .is_some(),
        "the failure is counted with its kind"
    );
    h.sims[1].set_faults(Faults::default());
    assert_eq!(
        poller::poll_once(&ctx.arrays, &ctx.metrics).await,
        [true, true]
    );
    assert!(
        sample(&ctx, &format!("flashvol_array_reachable{down} "))
            .is_some_and(|l| l.ends_with(" 1"))
    );
}

fn store_of<K>(objects: impl IntoIterator<Item = K>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    let (store, mut writer) = reflector::store::<K>();
    for object in objects {
        writer.apply_watcher_event(&watcher::Event::Apply(object));
    }
    store
}

#[tokio::test]
async fn pending_claims_are_counted_by_reason_and_our_pvs_by_array() {
    let h = Harness::start(&[fa(TIB, &[])], "");
    let ctx = h.context();
    h.add_class(class("pure", "pure-provisioner", &[]));
    h.add_class(class("broken", "pure-provisioner", &[("bogus", "1")]));
    let mut late = class("late", "pure-provisioner", &[]);
    late.volume_binding_mode = Some("WaitForFirstConsumer".into());
    h.add_class(late.clone());

    let done = pvc("done", "pure", "1Gi");
    let failing = pvc("failing", "broken", "1Gi");
    let waiting = pvc("waiting", "late", "1Gi");
    let orphaned = pvc("orphaned", "no-such-class", "1Gi");
    for claim in [&done, &failing, &waiting, &orphaned] {
        h.add_claim(claim);
        let _ = provision_claim(claim, &ctx).await;
    }
    let done_pv = h.pv_of(&done).expect("provisioned");
    let failing_uid = failing.metadata.uid.clone().expect("uid");
    assert_eq!(ctx.last_failures.get(&failing_uid), Some("class"));

    let classes = store_of([
        class("pure", "pure-provisioner", &[]),
        class("broken", "pure-provisioner", &[("bogus", "1")]),
        late,
    ]);
    let claims = store_of([&done, &failing, &waiting, &orphaned].map(CachedClaim::from));
    let mut psos = pv_of_pso();
    psos.metadata.name = Some("pvc-from-pso".into());
    let volumes = store_of([CachedVolume::from(&done_pv), CachedVolume::from(&psos)]);
    monitor::publish_cache_gauges(&ctx, &claims, &classes, &volumes);

    let pending = |class: &str, reason: &str| {
        sample(
            &ctx,
            &format!("flashvol_claims_pending{{class=\"{class}\",reason=\"{reason}\"}} "),
        )
        .and_then(|l| l.rsplit(' ').next().map(str::to_owned))
    };
    assert_eq!(
        pending("pure", "binding").as_deref(),
        Some("1"),
        "done: its PV exists, not bound yet"
    );
    assert_eq!(pending("broken", "class").as_deref(), Some("1"));
    assert_eq!(
        pending("late", "waiting_for_consumer").as_deref(),
        Some("1")
    );
    assert_eq!(pending("", "class_missing").as_deref(), Some("1"));
    assert_eq!(pending("pure", "provisioning").as_deref(), Some("0"));
    assert!(
        sample(
            &ctx,
            "flashvol_claims_pending_oldest_seconds{class=\"broken\",reason=\"class\"}"
        )
        .is_some()
    );
    let endpoint = &ctx.arrays.all().next().expect("array").endpoint;
    assert!(sample(&ctx, &format!("flashvol_volumes{{array=\"{endpoint}\"}} 1")).is_some());
    assert!(
        sample(&ctx, "flashvol_volumes{array=\"unknown\"} 1").is_some(),
        "the PSO PV"
    );

    // The failing claim is deleted: its failure is forgotten at the next count.
    let claims = store_of([&done, &waiting].map(CachedClaim::from));
    monitor::publish_cache_gauges(&ctx, &claims, &classes, &volumes);
    assert_eq!(ctx.last_failures.get(&failing_uid), None);
    assert_eq!(pending("broken", "class").as_deref(), Some("0"));
    assert_eq!(pending("", "class_missing").as_deref(), Some("0"));

    // A class deleted since: its series go.
    let classes = store_of([class("pure", "pure-provisioner", &[])]);
    monitor::publish_cache_gauges(&ctx, &claims, &classes, &volumes);
    assert_eq!(pending("broken", "class"), None);
    assert_eq!(pending("late", "binding"), None);
    assert_eq!(pending("pure", "binding").as_deref(), Some("1"));
}

/// A PV as PSO 2.x wrote it: provisioned by us, no `arrayEndpoint`.
fn pv_of_pso() -> PersistentVolume {
    let mut pv = crate::tests::fixtures::pv_of("pure-provisioner");
    if let Some(options) = pv
        .spec
        .as_mut()
        .and_then(|s| s.flex_volume.as_mut())
        .and_then(|f| f.options.as_mut())
    {
        options.remove(options::ARRAY_ENDPOINT);
    }
    pv
}
