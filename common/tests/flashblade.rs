//! The FlashBlade client against the in-process simulator: every operation's success and error
//! paths, token loss and re-login, faults and token hygiene.

mod support;

use flashvol_arraysim::{DEFAULT_CAPACITY, FaultAction, FaultRule, Faults};
use flashvol_common::ArrayError;
use flashvol_common::flashblade::{FlashBlade, NewFileSystem};
use support::Sim;

const TOKEN: &str = "sim-token-fb";
const GIB: u64 = 1 << 30;

fn client(sim: &Sim) -> FlashBlade {
    FlashBlade::new(&sim.fb_config(TOKEN), &sim.settings()).expect("client")
}

fn new_fs(name: &str) -> NewFileSystem {
    NewFileSystem {
        name: name.into(),
        provisioned: GIB,
        hard_limit: true,
        snapshot_directory: true,
        nfs_rules: "*(rw,no_root_squash)".into(),
        nfs_v3: true,
        nfs_v4_1: true,
    }
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

#[test]
fn array_info_and_space_describe_the_blade() {
    let sim = Sim::flashblade();
    let fb = client(&sim);
    let info = fb.array_info().expect("info");
    assert_eq!(info.name, "sim-fb");
    assert!(!info.id.is_empty());
    let space = fb.space().expect("space");
    assert_eq!(space.capacity, DEFAULT_CAPACITY);
    assert_eq!(space.free(), space.capacity - space.used);
    assert_eq!(fb.api_version().as_deref(), Some("1.12"));
}

#[test]
fn file_system_is_created_with_the_requested_settings() {
    let sim = Sim::flashblade();
    let fb = client(&sim);
    let fs = fb.create_file_system(&new_fs("k8s-pvc-1")).expect("create");
    assert_eq!((fs.name.as_str(), fs.provisioned), ("k8s-pvc-1", GIB));
    assert!(fs.hard_limit_enabled && fs.snapshot_directory_enabled && !fs.destroyed);
    assert_eq!(fs.nfs.rules, "*(rw,no_root_squash)");
    assert!(fs.nfs.v3_enabled && fs.nfs.v4_1_enabled);
    assert!(fs.created.is_some());
    assert_eq!(fb.get_file_system("k8s-pvc-1").expect("get"), fs);

    let dup = fb.create_file_system(&new_fs("k8s-pvc-1"));
    assert!(
        matches!(dup, Err(ArrayError::AlreadyExists { .. })),
        "{dup:?}"
    );
    let missing = fb.get_file_system("nope");
    assert!(
        matches!(missing, Err(ArrayError::NotFound { .. })),
        "{missing:?}"
    );
}

#[test]
fn file_system_settings_change_in_place() {
    let sim = Sim::flashblade();
    let fb = client(&sim);
    fb.create_file_system(&new_fs("fs")).expect("create");
    assert_eq!(
        fb.resize_file_system("fs", 3 * GIB)
            .expect("resize")
            .provisioned,
        3 * GIB
    );
    let rules = "10.0.0.0/24(rw,no_root_squash)";
    assert_eq!(
        fb.set_export_rules("fs", rules).expect("rules").nfs.rules,
        rules
    );
    assert!(
        !fb.set_hard_limit("fs", false)
            .expect("hard limit off")
            .hard_limit_enabled
    );
    let now = fb.get_file_system("fs").expect("get");
    assert_eq!(
        (
            now.provisioned,
            now.nfs.rules.as_str(),
            now.hard_limit_enabled
        ),
        (3 * GIB, rules, false)
    );
    assert!(now.nfs.v3_enabled, "changing rules keeps the protocols");

    for result in [
        fb.resize_file_system("ghost", GIB),
        fb.set_export_rules("ghost", rules),
        fb.set_hard_limit("ghost", true),
    ] {
        assert!(
            matches!(result, Err(ArrayError::NotFound { .. })),
            "{result:?}"
        );
    }
}

#[test]
fn destroy_turns_protocols_off_recover_turns_nfs_back_on_eradicate_removes() {
    let sim = Sim::flashblade();
    let fb = client(&sim);
    fb.create_file_system(&new_fs("fs")).expect("create");
    let live = fb.eradicate_file_system("fs");
    assert!(live.is_err(), "eradicating a live file system must fail");

    fb.destroy_file_system("fs").expect("destroy");
    let destroyed = fb.get_file_system("fs").expect("still listed");
    assert!(destroyed.destroyed);
    assert!(destroyed.time_remaining.is_some_and(|ms| ms > 0));
    assert!(!destroyed.nfs.v3_enabled && !destroyed.nfs.v4_1_enabled);

    let recovered = fb.recover_file_system("fs").expect("recover");
    assert!(!recovered.destroyed && recovered.time_remaining.is_none());
    assert!(recovered.nfs.v3_enabled && recovered.nfs.v4_1_enabled);

    fb.destroy_file_system("fs").expect("destroy again");
    fb.eradicate_file_system("fs").expect("eradicate");
    assert!(matches!(
        fb.get_file_system("fs"),
        Err(ArrayError::NotFound { .. })
    ));
    let gone = fb.eradicate_file_system("fs");
    assert!(matches!(gone, Err(ArrayError::NotFound { .. })), "{gone:?}");
    let gone = fb.destroy_file_system("fs");
    assert!(matches!(gone, Err(ArrayError::NotFound { .. })), "{gone:?}");
}

#[test]
fn list_file_systems_follows_every_page_and_matches_globs() {
    let sim = Sim::flashblade();
    let fb = client(&sim).with_page_size(2);
    for i in 0..5 {
        fb.create_file_system(&new_fs(&format!("k8s-pvc-{i}")))
            .expect("create");
    }
    fb.create_file_system(&new_fs("other"))
        .expect("create other");
    fb.destroy_file_system("k8s-pvc-4").expect("destroy one");
    let before = sim.calls("GET file-systems");

    let mut listed = fb.list_file_systems("k8s-pvc-*").expect("list");
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<&str> = listed.iter().map(|fs| fs.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "k8s-pvc-0",
            "k8s-pvc-1",
            "k8s-pvc-2",
            "k8s-pvc-3",
            "k8s-pvc-4"
        ]
    );
    assert!(listed[4].destroyed, "destroyed file systems are listed too");
    let pages = sim.calls("GET file-systems") - before;
    assert!((3..=4).contains(&pages), "{pages} pages");

    assert_eq!(fb.list_file_systems("").expect("all").len(), 6);
    assert_eq!(fb.list_file_systems("other").expect("exact").len(), 1);
    assert!(
        fb.list_file_systems("missing")
            .expect("exact miss")
            .is_empty()
    );
    assert!(
        fb.list_file_systems("nothing-*")
            .expect("glob miss")
            .is_empty()
    );
    let quoted = fb.list_file_systems("it's-*");
    assert!(
        matches!(quoted, Err(ArrayError::InvalidInput { .. })),
        "{quoted:?}"
    );
}

#[test]
fn snapshots_are_created_listed_destroyed_and_eradicated() {
    let sim = Sim::flashblade();
    let fb = client(&sim);
    fb.create_file_system(&new_fs("fs")).expect("create");
    let snap = fb.create_snapshot("fs", Some("s1")).expect("snapshot");
    assert_eq!(
        (
            snap.name.as_str(),
            snap.source.as_str(),
            snap.suffix.as_str()
        ),
        ("fs.s1", "fs", "s1")
    );
    assert!(!snap.destroyed);
    let dup = fb.create_snapshot("fs", Some("s1"));
    assert!(
        matches!(dup, Err(ArrayError::AlreadyExists { .. })),
        "{dup:?}"
    );
    let orphan = fb.create_snapshot("ghost", Some("s1"));
    assert!(
        matches!(orphan, Err(ArrayError::NotFound { .. })),
        "{orphan:?}"
    );

    assert_eq!(fb.list_snapshots("fs").expect("list"), vec![snap.clone()]);
    assert_eq!(fb.get_snapshot("fs.s1").expect("get"), snap);
    assert!(snap.created.is_some());
    let unknown = fb.get_snapshot("fs.nope");
    assert!(
        matches!(unknown, Err(ArrayError::NotFound { .. })),
        "{unknown:?}"
    );
    let named = fb
        .create_snapshot("fs", None)
        .expect("snapshot the blade names");
    assert!(
        named.name.starts_with("fs.") && named.name != "fs.s1",
        "{named:?}"
    );
    fb.destroy_snapshot(&named.name).expect("destroy");
    fb.eradicate_snapshot(&named.name).expect("eradicate");
    fb.destroy_snapshot("fs.s1").expect("destroy snapshot");
    assert!(fb.list_snapshots("fs").expect("list")[0].destroyed);
    assert!(fb.get_snapshot("fs.s1").expect("get").destroyed);
    fb.eradicate_snapshot("fs.s1").expect("eradicate snapshot");
    assert!(fb.list_snapshots("fs").expect("list").is_empty());
    let gone = fb.eradicate_snapshot("fs.s1");
    assert!(matches!(gone, Err(ArrayError::NotFound { .. })), "{gone:?}");
}

#[test]
fn data_vips_are_the_enabled_data_interfaces_only() {
    let sim = Sim::flashblade();
    let fb = client(&sim);
    let vips = fb.data_vips().expect("vips");
    assert_eq!(vips.len(), 1, "{vips:?}");
    assert_eq!(vips[0].address, "127.0.0.1");
    assert!(vips[0].enabled && vips[0].services.iter().any(|s| s == "data"));
}

#[test]
fn a_lost_login_is_re_established_once_transparently() {
    let sim = Sim::flashblade();
    let fb = client(&sim);
    fb.create_file_system(&new_fs("fs")).expect("create");
    assert_eq!(fb.stats().authentications, 1);
    sim.expire_sessions();
    fb.get_file_system("fs").expect("get after expiry");
    assert_eq!(fb.stats().authentications, 2);
    assert_eq!(sim.authentications(), 2);
    fb.get_file_system("fs").expect("again");
    assert_eq!(fb.stats().authentications, 2);
}

#[test]
fn the_client_carries_on_across_a_simulator_restart() {
    let mut sim = Sim::flashblade();
    let fb = client(&sim);
    let before = fb.create_file_system(&new_fs("survivor")).expect("create");
    sim.handle.restart().expect("restart");
    assert_eq!(
        fb.get_file_system("survivor").expect("after restart").id,
        before.id
    );
    fb.create_file_system(&new_fs("newcomer"))
        .expect("create after restart");
}

#[test]
fn one_login_serves_many_threads() {
    let sim = Sim::flashblade();
    let fb = client(&sim);
    std::thread::scope(|scope| {
        for t in 0..6 {
            let fb = &fb;
            scope.spawn(move || {
                for i in 0..4 {
                    let name = format!("t{t}-{i}");
                    fb.create_file_system(&new_fs(&name)).expect("create");
                    fb.get_file_system(&name).expect("get");
                }
            });
        }
    });
    assert_eq!(fb.stats().authentications, 1);
    assert_eq!(sim.authentications(), 1);
    assert_eq!(fb.list_file_systems("t*").expect("list").len(), 24);
}

#[test]
fn a_wrong_token_is_an_auth_error_that_never_shows_the_token() {
    let sim = Sim::flashblade();
    let secret = "T-wrong-0123456789";
    let fb = FlashBlade::new(&sim.fb_config(secret), &sim.settings()).expect("client");
    let err = fb.space().expect_err("refused");
    assert!(matches!(err, ArrayError::Auth { .. }), "{err:?}");
    for text in [err.to_string(), format!("{err:?}"), format!("{fb:?}")] {
        assert!(!text.contains(secret), "token leaked: {text}");
    }
}

#[test]
fn gets_are_retried_through_server_errors_and_creates_are_not() {
    let sim = Sim::flashblade();
    let fb = client(&sim);
    fb.create_file_system(&new_fs("fs")).expect("create");
    let before = sim.calls("GET file-systems");
    sim.faults(rule(
        "GET",
        "/api/*/file-systems",
        2,
        FaultAction::Status { status: 503 },
    ));
    fb.get_file_system("fs").expect("get through two 503s");
    assert_eq!(sim.calls("GET file-systems") - before, 3);

    let before = sim.calls("POST file-systems");
    sim.faults(rule("POST", "/api/*/file-systems", 1, FaultAction::Drop));
    let err = fb.create_file_system(&new_fs("fs2")).expect_err("dropped");
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
    assert_eq!(sim.calls("POST file-systems") - before, 1);
}

#[test]
fn patches_are_retried_through_dropped_connections() {
    let sim = Sim::flashblade();
    let fb = client(&sim);
    fb.create_file_system(&new_fs("fs")).expect("create");
    sim.faults(rule("PATCH", "/api/*/file-systems", 1, FaultAction::Drop));
    assert_eq!(
        fb.resize_file_system("fs", 2 * GIB)
            .expect("resize")
            .provisioned,
        2 * GIB
    );
    assert_eq!(sim.calls("PATCH file-systems"), 2);
}
