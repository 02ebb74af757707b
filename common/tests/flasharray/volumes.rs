//! Volumes, snapshots and copies: every operation's success and error paths, QoS, renames, and
//! listing across pages and globs; plus what the array says about itself.

use flashvol_arraysim::DEFAULT_CAPACITY;
use flashvol_common::ArrayError;
use flashvol_common::flasharray::{Qos, Volume};

use crate::support::Sim;
use crate::{GIB, client};

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
    let listed = fa.list_snapshots("src").expect("list");
    assert_eq!(listed.len(), 2, "destroyed snapshots are listed too");
    assert!(
        listed
            .iter()
            .any(|s| s.name == "src.s1" && s.is_destroyed())
    );
    fa.eradicate_volume("src.s1").expect("eradicate snapshot");
    assert_eq!(fa.list_snapshots("src").expect("list").len(), 1);
}

#[test]
fn a_volume_with_snapshots_is_destroyed_recovered_and_eradicated_with_them() {
    // What a real array does (Pure's REST 1.x reference for `DELETE volume`: "If destroying or
    // eradicating a volume, its snapshots are also destroyed or eradicated").
    let sim = Sim::flasharray();
    let fa = client(&sim);
    fa.create_volume("src", GIB, &Qos::default())
        .expect("create");
    fa.create_snapshot("src", Some("s1")).expect("snapshot");
    fa.destroy_volume("src").expect("destroy the volume");
    assert!(
        fa.list_snapshots("src")
            .expect("list")
            .iter()
            .all(Volume::is_destroyed)
    );
    let copy = fa.copy_volume("src.s1", "copy", false);
    assert!(matches!(copy, Err(ArrayError::NotFound { .. })), "{copy:?}");
    fa.recover_volume("src").expect("recover");
    assert!(
        !fa.list_snapshots("src").expect("list")[0].is_destroyed(),
        "recovered with the volume"
    );
    fa.destroy_volume("src").expect("destroy again");
    fa.eradicate_volume("src").expect("eradicate");
    assert!(fa.list_volumes("src*", true).expect("list").is_empty());
}

#[test]
fn host_groups_of_a_volume_are_listed() {
    let sim = Sim::flasharray();
    let fa = client(&sim);
    fa.create_volume("v", GIB, &Qos::default()).expect("create");
    assert!(fa.list_volume_host_groups("v").expect("list").is_empty());
    let missing = fa.list_volume_host_groups("nope");
    assert!(
        matches!(missing, Err(ArrayError::NotFound { .. })),
        "{missing:?}"
    );
}
