//! Hosts and connections: created, found by initiator, modified and deleted; every host listed
//! with one request; connections made, listed, refused and removed; the array's ports.

use flashvol_common::ArrayError;
use flashvol_common::flasharray::{HostChange, Initiators, Qos};

use crate::support::Sim;
use crate::{GIB, client, iqn};

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
