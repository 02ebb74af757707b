//! The FlashArray client against the in-process simulator: every operation's success and error
//! paths, session loss and re-authentication, version renegotiation, restarts, faults, timeouts
//! and TLS trust.

mod support;

use std::time::{Duration, Instant};

use flashvol_arraysim::{DEFAULT_CAPACITY, FaultAction, FaultRule, Faults};
use flashvol_common::ArrayError;
use flashvol_common::config::ClientSettings;
use flashvol_common::flasharray::{FlashArray, HostChange, Initiators, Qos};
use support::Sim;

const TOKEN: &str = "sim-token-fa";
const GIB: u64 = 1 << 30;

fn client(sim: &Sim) -> FlashArray {
    FlashArray::new(&sim.fa_config(TOKEN), &sim.settings()).expect("client")
}

fn rule(method: &str, path: &str, count: u32, action: FaultAction) -> Faults {
    Faults {
        rules: vec![FaultRule {
            method: Some(method.into()),
            path: path.into(),
            count,
            action,
        }],
        ..Faults::default()
    }
}

fn iqn(n: u32) -> Initiators {
    Initiators {
        iqns: vec![format!("iqn.1993-08.org.debian:01:node{n}")],
        ..Initiators::default()
    }
}

#[test]
fn array_info_and_space_describe_the_array() {
    let sim = Sim::flasharray();
    let fa = client(&sim);
    let info = fa.array_info().expect("array info");
    assert_eq!(info.array_name, "sim-fa");
    assert!(!info.id.is_empty() && !info.version.is_empty());
    let space = fa.space().expect("space");
    assert_eq!(space.capacity, DEFAULT_CAPACITY);
    assert!(space.used <= space.capacity);
    assert_eq!(space.free(), space.capacity - space.used);
    assert_eq!(fa.api_version().as_deref(), Some("1.19"));
    assert_eq!(fa.endpoint(), sim.handle.endpoint());
}

#[test]
fn volume_lifecycle_create_get_extend_destroy_recover_eradicate() {
    let sim = Sim::flasharray();
    let fa = client(&sim);
    let created = fa
        .create_volume("k8s-pvc-a", GIB, &Qos::default())
        .expect("create");
    assert_eq!((created.name.as_str(), created.size), ("k8s-pvc-a", GIB));
    assert_eq!(created.serial.len(), 24);
    assert!(created.serial.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(!created.is_destroyed());

    let again = fa.create_volume("k8s-pvc-a", GIB, &Qos::default());
    assert!(
        matches!(again, Err(ArrayError::AlreadyExists { .. })),
        "{again:?}"
    );

    let got = fa.get_volume("k8s-pvc-a").expect("get");
    assert_eq!(got.serial, created.serial);

    let grown = fa.extend_volume("k8s-pvc-a", 2 * GIB).expect("extend");
    assert_eq!(
        (grown.size, grown.serial.as_str()),
        (2 * GIB, created.serial.as_str())
    );
    let shrink = fa.extend_volume("k8s-pvc-a", GIB);
    assert!(
        matches!(shrink, Err(ArrayError::Api { status: 400, .. })),
        "{shrink:?}"
    );

    fa.destroy_volume("k8s-pvc-a").expect("destroy");
    match fa.get_volume("k8s-pvc-a") {
        Err(ArrayError::Destroyed { object, .. }) => assert_eq!(object, "k8s-pvc-a"),
        other => panic!("expected Destroyed, got {other:?}"),
    }
    let again = fa.destroy_volume("k8s-pvc-a");
    let reuse = fa.create_volume("k8s-pvc-a", GIB, &Qos::default());
    assert!(
        matches!(reuse, Err(ArrayError::Destroyed { .. })),
        "name held by the trash: {reuse:?}"
    );
    assert!(
        matches!(again, Err(ArrayError::Destroyed { .. })),
        "{again:?}"
    );
    assert!(
        fa.list_volumes("k8s-pvc-a", false)
            .expect("live list")
            .is_empty()
    );
    let pending = fa.list_volumes("k8s-pvc-a", true).expect("pending list");
    assert_eq!(pending.len(), 1);
    assert!(pending[0].is_destroyed());

    fa.recover_volume("k8s-pvc-a").expect("recover");
    assert!(
        !fa.get_volume("k8s-pvc-a")
            .expect("recovered")
            .is_destroyed()
    );

    let live = fa.eradicate_volume("k8s-pvc-a");
    assert!(live.is_err(), "eradicating a live volume must fail");
    fa.destroy_volume("k8s-pvc-a").expect("destroy again");
    fa.eradicate_volume("k8s-pvc-a").expect("eradicate");
    assert!(matches!(
        fa.get_volume("k8s-pvc-a"),
        Err(ArrayError::NotFound { .. })
    ));
    assert!(matches!(
        fa.destroy_volume("k8s-pvc-a"),
        Err(ArrayError::NotFound { .. })
    ));
    assert!(matches!(
        fa.recover_volume("nope"),
        Err(ArrayError::NotFound { .. })
    ));
}

#[test]
fn rename_moves_the_volume_to_its_new_name() {
    let sim = Sim::flasharray();
    let fa = client(&sim);
    let created = fa
        .create_volume("old-name", GIB, &Qos::default())
        .expect("create");
    fa.rename_volume("old-name", "new-name").expect("rename");
    assert!(matches!(
        fa.get_volume("old-name"),
        Err(ArrayError::NotFound { .. })
    ));
    assert_eq!(
        fa.get_volume("new-name").expect("renamed").serial,
        created.serial
    );
    let missing = fa.rename_volume("nope", "other");
    assert!(
        matches!(missing, Err(ArrayError::NotFound { .. })),
        "{missing:?}"
    );
}

#[test]
fn qos_limits_are_set_read_back_and_cleared() {
    let sim = Sim::flasharray();
    let fa = client(&sim);
    let limits = Qos {
        bandwidth_limit: Some(100 << 20),
        iops_limit: Some(5_000),
    };
    fa.create_volume("q1", GIB, &limits)
        .expect("create with QoS");
    assert_eq!(fa.get_qos("q1").expect("qos"), limits);

    fa.set_qos("q1", &Qos::default()).expect("clear");
    assert_eq!(fa.get_qos("q1").expect("cleared"), Qos::default());

    let bandwidth_only = Qos {
        bandwidth_limit: Some(1 << 20),
        iops_limit: None,
    };
    fa.set_qos("q1", &bandwidth_only).expect("set");
    assert_eq!(fa.get_qos("q1").expect("qos"), bandwidth_only);
    assert!(matches!(
        fa.get_qos("missing"),
        Err(ArrayError::NotFound { .. })
    ));
    assert!(matches!(
        fa.set_qos("missing", &limits),
        Err(ArrayError::NotFound { .. })
    ));
}

#[test]
fn list_volumes_follows_every_page_and_matches_globs() {
    let sim = Sim::flasharray();
    let fa = client(&sim).with_page_size(3);
    for i in 0..7 {
        fa.create_volume(&format!("k8s-pvc-{i}"), GIB, &Qos::default())
            .expect("create");
    }
    fa.create_volume("other-vol", GIB, &Qos::default())
        .expect("create other");
    let before = sim.calls("GET volume");

    let mut names: Vec<String> = fa
        .list_volumes("k8s-pvc-*", false)
        .expect("list")
        .into_iter()
        .map(|v| v.name)
        .collect();
    names.sort();
    let expected: Vec<String> = (0..7).map(|i| format!("k8s-pvc-{i}")).collect();
    assert_eq!(names, expected);
    // 7 items at 3 per page: 3 pages with items, and at most one final empty page.
    let pages = sim.calls("GET volume") - before;
    assert!((3..=4).contains(&pages), "{pages} pages");

    assert_eq!(fa.list_volumes("", false).expect("all").len(), 8);
    assert!(
        fa.list_volumes("nothing-*", false)
            .expect("no match")
            .is_empty()
    );
    assert!(
        fa.list_volumes("k8s-pvc-missing", false)
            .expect("exact miss")
            .is_empty()
    );
}

#[test]
fn snapshots_and_copies() {
    let sim = Sim::flasharray();
    let fa = client(&sim);
    fa.create_volume("src", GIB, &Qos::default())
        .expect("create");
    let snap = fa.create_snapshot("src", Some("s1")).expect("snapshot");
    assert_eq!(snap.name, "src.s1");
    assert_eq!(snap.source.as_deref(), Some("src"));
    let numbered = fa.create_snapshot("src", None).expect("numbered snapshot");
    assert!(numbered.name.starts_with("src."), "{}", numbered.name);
    let again = fa.create_snapshot("src", Some("s1"));
    assert!(
        matches!(again, Err(ArrayError::AlreadyExists { .. })),
        "{again:?}"
    );
    let missing = fa.create_snapshot("nope", Some("s1"));
    assert!(
        matches!(missing, Err(ArrayError::NotFound { .. })),
        "{missing:?}"
    );

    let mut names: Vec<String> = fa
        .list_snapshots("src")
        .expect("list")
        .into_iter()
        .map(|s| s.name)
        .collect();
    names.sort();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"src.s1".to_string()));

    let clone = fa.copy_volume("src.s1", "clone", false).expect("copy");
    assert_eq!((clone.name.as_str(), clone.size), ("clone", GIB));
    assert_ne!(clone.serial, snap.serial);
    let onto = fa.copy_volume("src", "clone", false);
    assert!(
        matches!(onto, Err(ArrayError::AlreadyExists { .. })),
        "{onto:?}"
    );
    fa.copy_volume("src", "clone", true).expect("overwrite");
    let from_nothing = fa.copy_volume("nope", "clone2", false);
    assert!(
        matches!(from_nothing, Err(ArrayError::NotFound { .. })),
        "{from_nothing:?}"
    );

    fa.destroy_volume("src.s1").expect("destroy snapshot");
    fa.eradicate_volume("src.s1").expect("eradicate snapshot");
    assert_eq!(fa.list_snapshots("src").expect("list").len(), 1);
}

#[test]
fn hosts_are_created_found_by_initiator_modified_and_deleted() {
    let sim = Sim::flasharray();
    let fa = client(&sim);
    let host = fa.create_host("node-1", &iqn(1)).expect("create host");
    assert_eq!(host.iqns, iqn(1).iqns);
    assert!(host.wwns.is_empty() && host.nqns.is_empty());

    let dup = fa.create_host("node-1", &iqn(9));
    assert!(
        matches!(dup, Err(ArrayError::AlreadyExists { .. })),
        "{dup:?}"
    );
    let taken = fa.create_host("node-2", &iqn(1));
    assert!(matches!(taken, Err(ArrayError::InUse { .. })), "{taken:?}");

    let wwn = "5001500150015000".to_string();
    let fc = Initiators {
        wwns: vec![wwn.clone()],
        ..Initiators::default()
    };
    fa.create_host("node-2", &fc).expect("FC host");
    let nvme = Initiators {
        nqns: vec!["nqn.2014-08.org.nvmexpress:uuid:0b8c1a3e".to_string()],
        ..Initiators::default()
    };
    assert_eq!(
        fa.create_host("node-3", &nvme).expect("NVMe host").nqns,
        nvme.nqns
    );
    let hosts = fa.list_hosts().expect("list hosts");
    let by_iqn = hosts
        .iter()
        .find(|h| h.iqns.contains(&iqn(1).iqns[0]))
        .expect("found by IQN");
    assert_eq!(by_iqn.name, "node-1");
    assert!(
        hosts
            .iter()
            .any(|h| h.name == "node-2" && h.wwns.contains(&wwn))
    );

    let change = HostChange {
        add: iqn(3),
        remove: iqn(1),
    };
    let changed = fa.modify_host("node-1", &change).expect("modify");
    assert_eq!(changed.iqns, iqn(3).iqns);
    assert_eq!(fa.get_host("node-1").expect("get").iqns, iqn(3).iqns);
    let unknown = fa.modify_host("ghost", &change);
    assert!(
        matches!(unknown, Err(ArrayError::NotFound { .. })),
        "{unknown:?}"
    );

    fa.delete_host("node-2").expect("delete");
    assert!(matches!(
        fa.get_host("node-2"),
        Err(ArrayError::NotFound { .. })
    ));
    assert!(matches!(
        fa.delete_host("node-2"),
        Err(ArrayError::NotFound { .. })
    ));
}

#[test]
fn every_host_is_listed_with_one_request_whatever_the_page_size() {
    let sim = Sim::flasharray();
    let fa = client(&sim).with_page_size(2);
    for i in 0..5 {
        fa.create_host(&format!("node-{i}"), &iqn(i))
            .expect("create host");
    }
    let before = sim.calls("GET host");
    let mut names: Vec<String> = fa
        .list_hosts()
        .expect("list hosts")
        .into_iter()
        .map(|h| h.name)
        .collect();
    names.sort();
    assert_eq!(names, ["node-0", "node-1", "node-2", "node-3", "node-4"]);
    assert_eq!(sim.calls("GET host") - before, 1, "not paged");
}

#[test]
fn connections_are_made_listed_refused_and_removed() {
    let sim = Sim::flasharray();
    let fa = client(&sim);
    fa.create_host("node-1", &iqn(1)).expect("host");
    fa.create_volume("v1", GIB, &Qos::default()).expect("v1");
    fa.create_volume("v2", GIB, &Qos::default()).expect("v2");

    let first = fa.connect_host("node-1", "v1", None).expect("connect");
    assert_eq!(
        (first.host.as_str(), first.volume.as_str()),
        ("node-1", "v1")
    );
    assert!(first.lun >= 1);
    let pinned = fa
        .connect_host("node-1", "v2", Some(42))
        .expect("connect with LUN");
    assert_eq!(pinned.lun, 42);
    let again = fa.connect_host("node-1", "v1", None);
    assert!(
        matches!(again, Err(ArrayError::AlreadyExists { .. })),
        "{again:?}"
    );
    let no_host = fa.connect_host("ghost", "v1", None);
    assert!(
        matches!(no_host, Err(ArrayError::NotFound { .. })),
        "{no_host:?}"
    );
    let no_volume = fa.connect_host("node-1", "ghost", None);
    assert!(
        matches!(no_volume, Err(ArrayError::NotFound { .. })),
        "{no_volume:?}"
    );

    let mut on_host = fa
        .list_host_connections("node-1")
        .expect("host connections");
    on_host.sort_by(|a, b| a.volume.cmp(&b.volume));
    assert_eq!(on_host, vec![first.clone(), pinned.clone()]);
    assert_eq!(
        fa.list_volume_connections("v1")
            .expect("volume connections"),
        vec![first]
    );
    assert!(matches!(
        fa.list_host_connections("ghost"),
        Err(ArrayError::NotFound { .. })
    ));
    assert!(matches!(
        fa.list_volume_connections("ghost"),
        Err(ArrayError::NotFound { .. })
    ));

    let busy = fa.destroy_volume("v1");
    assert!(
        matches!(busy, Err(ArrayError::HasConnections { .. })),
        "{busy:?}"
    );
    let busy_host = fa.delete_host("node-1");
    assert!(
        matches!(busy_host, Err(ArrayError::HasConnections { .. })),
        "{busy_host:?}"
    );

    fa.disconnect_host("node-1", "v1").expect("disconnect");
    let twice = fa.disconnect_host("node-1", "v1");
    assert!(
        matches!(twice, Err(ArrayError::NotConnected { .. })),
        "{twice:?}"
    );
    assert!(
        fa.list_volume_connections("v1")
            .expect("none left")
            .is_empty()
    );
    fa.destroy_volume("v1").expect("destroy once disconnected");
}

#[test]
fn ports_give_iscsi_targets_and_fc_wwns() {
    let sim = Sim::flasharray();
    let fa = client(&sim);
    let ports = fa.list_ports().expect("ports");
    let iscsi: Vec<_> = ports.iter().filter(|p| p.iqn.is_some()).collect();
    assert_eq!(iscsi.len(), 1);
    assert_eq!(iscsi[0].portal.as_deref(), Some("127.0.0.1:3260"));
    assert!(
        iscsi[0]
            .iqn
            .as_deref()
            .is_some_and(|i| i.starts_with("iqn.2010-06.com.purestorage:flasharray"))
    );
    let mut wwns: Vec<&str> = ports.iter().filter_map(|p| p.wwn.as_deref()).collect();
    wwns.sort();
    assert_eq!(wwns, ["524A937000000000", "524A937000000001"]);
}

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

#[test]
fn a_wrong_token_is_an_auth_error_that_never_shows_the_token() {
    let sim = Sim::flasharray();
    let secret = "wrong-token-0123456789";
    let fa = FlashArray::new(&sim.fa_config(secret), &sim.settings()).expect("client");
    let err = fa.array_info().expect_err("refused");
    assert!(matches!(err, ArrayError::Auth { .. }), "{err:?}");
    assert!(!err.is_transient());
    assert_eq!(fa.stats().authentications, 1);
    for text in [err.to_string(), format!("{err:?}"), format!("{fa:?}")] {
        assert!(!text.contains(secret), "token leaked: {text}");
    }
    let good = client(&sim);
    good.array_info().expect("good token");
    assert!(!format!("{good:?}").contains(TOKEN));
}

#[test]
fn gets_are_retried_through_server_errors() {
    let sim = Sim::flasharray();
    let fa = client(&sim);
    fa.create_volume("v", GIB, &Qos::default()).expect("create");
    let before = sim.calls("GET volume/{name}");
    sim.faults(rule(
        "GET",
        "/api/*/volume/v",
        2,
        FaultAction::Status { status: 503 },
    ));
    assert_eq!(fa.get_volume("v").expect("get through two 503s").name, "v");
    assert_eq!(sim.calls("GET volume/{name}") - before, 3);
}

#[test]
fn retries_are_bounded_and_the_last_server_error_surfaces() {
    let sim = Sim::flasharray();
    let fa = client(&sim);
    fa.array_info().expect("log in");
    sim.faults(rule(
        "GET",
        "/api/*/array",
        10,
        FaultAction::Status { status: 500 },
    ));
    let err = fa.array_info().expect_err("keeps failing");
    assert!(
        matches!(err, ArrayError::Api { status: 500, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(
        sim.calls("GET array"),
        1 + 3,
        "one call, then 1 + retries(2) attempts"
    );
}

#[test]
fn dropped_connections_are_retried_for_gets() {
    let sim = Sim::flasharray();
    let fa = client(&sim);
    fa.array_info().expect("log in");
    sim.faults(rule("GET", "/api/*/port", 1, FaultAction::Drop));
    assert!(!fa.list_ports().expect("ports after a drop").is_empty());
    assert_eq!(sim.calls("GET port"), 2);
}

#[test]
fn creates_are_never_retried_blindly() {
    let sim = Sim::flasharray();
    let fa = client(&sim);
    fa.array_info().expect("log in");
    sim.faults(rule(
        "POST",
        "/api/*/volume/*",
        1,
        FaultAction::Status { status: 503 },
    ));
    let err = fa
        .create_volume("once", GIB, &Qos::default())
        .expect_err("503");
    assert!(
        matches!(err, ArrayError::Api { status: 503, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(sim.calls("POST volume/{name}"), 1);

    sim.faults(rule("POST", "/api/*/host/*", 1, FaultAction::Drop));
    let err = fa.create_host("h", &iqn(1)).expect_err("dropped");
    assert!(
        matches!(
            err,
            ArrayError::Transport {
                timed_out: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(sim.calls("POST host/{name}"), 1);
}

#[test]
fn a_slow_array_times_out_within_the_deadline() {
    let sim = Sim::flasharray();
    let deadline = Duration::from_millis(600);
    let settings = ClientSettings {
        request_timeout: deadline,
        ..sim.settings()
    };
    let fa = FlashArray::new(&sim.fa_config(TOKEN), &settings).expect("client");
    fa.array_info().expect("log in");
    sim.faults(Faults {
        latency_ms: 3_000,
        ..Faults::default()
    });
    let started = Instant::now();
    let err = fa.get_volume("whatever").expect_err("timeout");
    let took = started.elapsed();
    assert!(
        matches!(
            err,
            ArrayError::Transport {
                timed_out: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());
    // Not retried: one deadline, plus scheduling slack on a loaded machine.
    assert!(
        took >= deadline && took < deadline + Duration::from_secs(1),
        "took {took:?}"
    );
    sim.faults(Faults::default());
}

#[test]
fn tls_is_verified_against_the_configured_ca_only() {
    let sim = Sim::flasharray();
    let no_ca = ClientSettings {
        ca_file: None,
        ..sim.settings()
    };
    let fa = FlashArray::new(&sim.fa_config(TOKEN), &no_ca).expect("client");
    let err = fa
        .array_info()
        .expect_err("self-signed certificate refused");
    match &err {
        ArrayError::Transport {
            timed_out, message, ..
        } => {
            assert!(!timed_out);
            assert!(
                message.to_lowercase().contains("certificate") || message.contains("TLS"),
                "{message}"
            );
        }
        other => panic!("expected Transport, got {other:?}"),
    }
    assert_eq!(
        fa.stats().authentications,
        0,
        "nothing was sent before verification"
    );

    let insecure = ClientSettings {
        ca_file: None,
        insecure_skip_verify: true,
        ..sim.settings()
    };
    let fa = FlashArray::new(&sim.fa_config(TOKEN), &insecure).expect("client");
    fa.array_info().expect("insecure opt-in works");
}

#[test]
fn an_unusable_ca_file_is_refused_at_construction_naming_the_file() {
    let sim = Sim::flasharray();
    let dir = tempfile::tempdir().expect("tempdir");
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").expect("write");
    for path in [junk, dir.path().join("missing.pem")] {
        let settings = ClientSettings {
            ca_file: Some(path.clone()),
            ..sim.settings()
        };
        match FlashArray::new(&sim.fa_config(TOKEN), &settings) {
            Err(err @ ArrayError::InvalidInput { .. }) => {
                assert!(
                    err.to_string().contains(&path.display().to_string()),
                    "{err}"
                )
            }
            other => panic!("expected InvalidInput, got {:?}", other.err()),
        }
    }
}

#[test]
fn empty_names_are_refused_before_anything_is_sent() {
    let sim = Sim::flasharray();
    let fa = client(&sim);
    assert!(matches!(
        fa.get_volume(""),
        Err(ArrayError::InvalidInput { .. })
    ));
    assert!(matches!(
        fa.create_host("", &iqn(1)),
        Err(ArrayError::InvalidInput { .. })
    ));
    assert!(matches!(
        fa.rename_volume("a", ""),
        Err(ArrayError::InvalidInput { .. })
    ));
    assert_eq!(fa.stats().calls, 0);
}
