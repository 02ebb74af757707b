//! One session (and one connection per thread) for many calls and threads, re-established once when lost (by one thread for all),
//! across a simulator restart; REST versions negotiated, compared numerically and renegotiated
//! once when refused, arrays too old to page and arrays without a 1.x version.

use flashvol_common::ArrayError;
use flashvol_common::flasharray::Qos;

use crate::support::Sim;
use crate::{GIB, client};

#[test]
fn one_session_serves_many_calls_and_threads() {
    let sim = Sim::flasharray();
    let fa = client(&sim);
    std::thread::scope(|scope| {
        for t in 0..8 {
            let fa = &fa;
            scope.spawn(move || {
                for i in 0..5 {
                    fa.create_volume(&format!("t{t}-{i}"), GIB, &Qos::default())
                        .expect("create");
                    fa.get_volume(&format!("t{t}-{i}")).expect("get");
                }
            });
        }
    });
    assert_eq!(fa.stats().authentications, 1);
    assert_eq!(sim.authentications(), 1);
    // Each thread keeps its connection for its next call.
    assert!(
        sim.connections() <= 8 + 1,
        "{} connections",
        sim.connections()
    );
    assert_eq!(fa.list_volumes("t*", false).expect("list").len(), 40);
    // version + login + 80 calls + the list
    assert!(fa.stats().calls >= 83, "{:?}", fa.stats());
}

#[test]
fn a_lost_session_is_re_established_once_transparently() {
    let sim = Sim::flasharray();
    let fa = client(&sim);
    fa.create_volume("v", GIB, &Qos::default()).expect("create");
    assert_eq!(fa.stats().authentications, 1);

    sim.expire_sessions();
    assert_eq!(fa.get_volume("v").expect("get after expiry").name, "v");
    assert_eq!(fa.stats().authentications, 2);
    assert_eq!(sim.authentications(), 2);
    fa.get_volume("v").expect("get again");
    assert_eq!(fa.stats().authentications, 2);
}

#[test]
fn threads_that_lose_the_session_together_log_in_once() {
    let sim = Sim::flasharray();
    let fa = client(&sim);
    fa.create_volume("shared", GIB, &Qos::default())
        .expect("create");
    sim.expire_sessions();
    let barrier = std::sync::Barrier::new(8);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            let (fa, barrier) = (&fa, &barrier);
            scope.spawn(move || {
                barrier.wait();
                fa.get_volume("shared").expect("get after expiry");
            });
        }
    });
    assert_eq!(fa.stats().authentications, 2);
    assert_eq!(sim.authentications(), 2);
}

#[test]
fn arrays_older_than_rest_1_7_are_listed_without_paging() {
    let sim = Sim::flasharray();
    sim.set_versions(&["1.5", "1.6"]);
    let fa = client(&sim).with_page_size(2);
    for i in 0..5 {
        fa.create_volume(&format!("k8s-pvc-{i}"), GIB, &Qos::default())
            .expect("create");
    }
    assert_eq!(fa.list_volumes("k8s-pvc-*", false).expect("list").len(), 5);
    assert_eq!(sim.calls("GET volume"), 1);
    assert_eq!(fa.api_version().as_deref(), Some("1.6"));
}

#[test]
fn the_client_carries_on_across_a_simulator_restart() {
    let mut sim = Sim::flasharray();
    let fa = client(&sim);
    let before = fa
        .create_volume("survivor", GIB, &Qos::default())
        .expect("create");
    sim.handle.restart().expect("restart");
    let after = fa.get_volume("survivor").expect("get after restart");
    assert_eq!(after.serial, before.serial);
    fa.create_volume("newcomer", GIB, &Qos::default())
        .expect("create after restart");
    assert!(fa.stats().authentications <= 2, "{:?}", fa.stats());
}

#[test]
fn a_refused_version_is_renegotiated_once() {
    let sim = Sim::flasharray();
    let fa = client(&sim);
    fa.array_info().expect("first call");
    assert_eq!(fa.api_version().as_deref(), Some("1.19"));
    sim.set_versions(&["1.9", "1.10", "1.17"]);
    fa.array_info().expect("call after the array dropped 1.19");
    assert_eq!(fa.api_version().as_deref(), Some("1.17"));
    assert_eq!(sim.calls("GET api_version"), 2);
}

#[test]
fn versions_compare_numerically_so_1_10_beats_1_9() {
    let sim = Sim::flasharray();
    sim.set_versions(&["1.2", "1.9", "1.10"]);
    let fa = client(&sim);
    fa.array_info().expect("call");
    assert_eq!(fa.api_version().as_deref(), Some("1.10"));
}

#[test]
fn an_array_without_a_1x_version_is_a_bad_reply() {
    let sim = Sim::flasharray();
    sim.set_versions(&["2.0", "2.1"]);
    let fa = client(&sim);
    let err = fa.array_info().expect_err("no usable version");
    assert!(matches!(err, ArrayError::BadReply { .. }), "{err:?}");
    assert!(err.to_string().contains("2.1"), "{err}");
}
