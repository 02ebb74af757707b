//! The whole program in-process: two replicas started through [`crate::app::run_with`] against
//! the fake API served over HTTP, with leader election, the rate-limited client, the HTTP
//! endpoints and graceful shutdown all real.

use std::net::SocketAddr;

use clap::Parser;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::PersistentVolume;
use tokio::sync::oneshot;

use crate::app::run_with;
use crate::args::Args;
use crate::tests::fake_kube::serve_http;
use crate::tests::fixtures::{class, free_port, http_get, pvc};
use crate::tests::reconcile::{Harness, TIB, fa, wait_for};

fn args(h: &Harness, http: SocketAddr) -> Args {
    let config = h.config.path.display().to_string();
    let http = http.to_string();
    Args::try_parse_from([
        "flashvol-provisioner",
        "--config",
        &config,
        "--http-address",
        &http,
        "--leader-election-namespace",
        "flashvol",
        "--lease-duration-seconds",
        "3",
        "--renew-deadline-seconds",
        "2",
        "--retry-period-seconds",
        "1",
        "--orphan-collection=false",
    ])
    .expect("flags")
}

fn holder(h: &Harness) -> Option<String> {
    h.fake
        .get::<Lease>(Some("flashvol"), "pure-provisioner")
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|s| !s.is_empty())
}

/// Volumes named like ours on the first `arrays` FlashArrays, destroyed ones included.
fn array_volumes(h: &Harness, arrays: usize) -> usize {
    (0..arrays)
        .map(|i| {
            flashvol_common::flasharray::FlashArray::new(
                &h.config.arrays.flash_arrays[i],
                &h.config.settings.client,
            )
            .expect("client")
            .list_volumes("k8s-pvc-*", true)
            .expect("list")
            .len()
        })
        .sum()
}

fn pv_creates(h: &Harness) -> usize {
    h.fake
        .requests()
        .iter()
        .filter(|(m, p)| m == "POST" && p == "/api/v1/persistentvolumes")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_replica_leads_and_the_standby_takes_over_when_it_shuts_down() {
    let h = Harness::start(&[fa(TIB, &[])], "");
    let api = serve_http(h.fake.clone()).await;
    let kube_config = kube::Config::new(format!("http://{api}").parse().expect("url"));
    h.add_class(class("pure", "pure-provisioner", &[]));

    let (http_a, http_b) = (free_port(), free_port());
    let (stop_a, stopped_a) = oneshot::channel::<()>();
    let (stop_b, stopped_b) = oneshot::channel::<()>();
    let a = tokio::spawn(run_with(
        args(&h, http_a),
        h.config.clone(),
        kube_config.clone(),
        async {
            let _ = stopped_a.await;
        },
    ));
    wait_for("replica a to take the lease", || holder(&h).is_some()).await;
    let leader_a = holder(&h).expect("holder");
    let b = tokio::spawn(run_with(
        args(&h, http_b),
        h.config.clone(),
        kube_config,
        async {
            let _ = stopped_b.await;
        },
    ));

    let first = pvc("first", "pure", "1Gi");
    h.add_claim(&first);
    wait_for("the leader to provision", || h.pv_of(&first).is_some()).await;
    let mut standby = String::new();
    for _ in 0..100 {
        standby = http_get(http_b, "/readyz").await;
        if standby.starts_with("HTTP/1.1 200") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(standby.ends_with("standing by"), "{standby}");
    assert!(http_get(http_a, "/readyz").await.ends_with("ready"));
    assert_eq!(holder(&h).as_deref(), Some(leader_a.as_str()));
    assert_eq!(pv_creates(&h), 1, "only the leader acted");
    let metrics = http_get(http_a, "/metrics").await;
    assert!(metrics.contains("flashvol_leader 1"), "{metrics}");

    // Graceful shutdown releases the lease: b leads at once, without waiting for expiry.
    let _ = stop_a.send(());
    a.await.expect("join").expect("a exits cleanly");
    wait_for("replica b to take over", || {
        holder(&h).is_some_and(|x| x != leader_a)
    })
    .await;
    let second = pvc("second", "pure", "1Gi");
    h.add_claim(&second);
    wait_for("the new leader to provision", || h.pv_of(&second).is_some()).await;
    // The new leader may re-send the first claim's PV create before its cache holds that PV
    // (the API answers AlreadyExists); what must hold is one PV and one volume per claim.
    assert_eq!(h.fake.list::<PersistentVolume>().len(), 2);
    assert_eq!(array_volumes(&h, 1), 2, "one array volume per claim");

    let _ = stop_b.send(());
    b.await.expect("join").expect("b exits cleanly");
    assert_eq!(holder(&h), None, "released on shutdown");
}

/// A burst of claims with the default rate limit and worker count: every claim gets exactly one
/// PV and exactly one array volume. Prints the rate seen (not asserted: timing depends on the
/// machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_claims_gets_one_volume_and_one_pv_each() {
    const CLAIMS: usize = 200;
    let h = Harness::start(&[fa(TIB, &[]), fa(TIB, &[])], "");
    let api = serve_http(h.fake.clone()).await;
    let kube_config = kube::Config::new(format!("http://{api}").parse().expect("url"));
    h.add_class(class("pure", "pure-provisioner", &[]));
    let http = free_port();
    let mut flags = args(&h, http);
    flags.leader_election = false;
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(run_with(flags, h.config.clone(), kube_config, async {
        let _ = stopped.await;
    }));
    let started = std::time::Instant::now();
    for i in 0..CLAIMS {
        h.add_claim(&pvc(&format!("burst-{i}"), "pure", "1Gi"));
    }
    for _ in 0..1200 {
        if h.fake.list::<PersistentVolume>().len() == CLAIMS {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let took = started.elapsed();
    assert_eq!(h.fake.list::<PersistentVolume>().len(), CLAIMS);
    println!(
        "{CLAIMS} claims provisioned in {took:?} ({:.0} claims/s) with the default QPS/burst/workers",
        CLAIMS as f64 / took.as_secs_f64()
    );
    // The counter moves just after each PV create returns.
    let want =
        format!(r#"flashvol_provisions_total{{outcome="success",reason="created"}} {CLAIMS}"#);
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = http_get(http, "/metrics").await;
        if metrics.contains(&want) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(metrics.contains(&want), "{metrics}");
    let _ = stop.send(());
    running.await.expect("join").expect("clean exit");
    assert_eq!(
        h.fake.list::<PersistentVolume>().len(),
        CLAIMS,
        "one PV per claim"
    );
    assert_eq!(array_volumes(&h, 2), CLAIMS, "one array volume per claim");
}
