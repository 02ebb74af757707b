//! Node stress: fifty call-outs at once on one node, mixing block volumes shared by several pods,
//! block volumes with one pod and FlashBlade file systems; the same mix with the driver killed
//! between steps of mount and unmount; and a full cycle at trace level checked for API tokens.
//!
//! After every batch the node must be consistent (each pod dir mounted exactly once, each block
//! volume in use staged exactly once, data written earlier intact) and after the last unmount
//! nothing may be left: no mount, no record, no host connection on the array, no loop device.
//!
//! One test binary: the workload shared by the tests (volumes, pods, a parallel batch of calls and
//! the checks after it) is here; `parallel` runs the batches, `tokens` the traced cycles.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

// Shared by every test binary of this crate, so it lives beside them, not in this directory.
#[path = "../support/mod.rs"]
mod support;

mod parallel;
mod tokens;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;

use serde_json::json;
use support::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Block,
    File,
}

#[derive(Debug, Clone)]
struct Volume {
    pv: String,
    kind: Kind,
}

#[derive(Debug, Clone)]
struct Pod {
    volume: usize,
    dir: PathBuf,
}

fn pv_name(tag: &str, i: usize) -> String {
    format!("pvc-{tag}{i:07}-2222-4333-8444-555555555555")
}

fn pod_uid(i: usize) -> String {
    format!("5d1c2a8e-0000-4000-8000-{i:012}")
}

/// Settings for a loaded two-core machine: generous waits, so a slow call is not a failure.
fn loaded_fabric(log_level: &str) -> Fabric {
    Fabric::with(FabricOptions {
        node: json!({
            "logLevel": log_level,
            "deadlines": {"arrayCallSeconds": 60, "deviceWaitSeconds": 120,
                          "lockWaitSeconds": 600, "mkfsSeconds": 300, "mountSeconds": 120},
        }),
        ..FabricOptions::default()
    })
}

fn create_volumes(fab: &Fabric, volumes: &[Volume]) {
    for v in volumes {
        match v.kind {
            Kind::Block => {
                fab.create_block_volume(&v.pv, GIB);
            }
            Kind::File => fab.create_file_system(&v.pv),
        }
    }
}

fn options_for(fab: &Fabric, v: &Volume) -> String {
    match v.kind {
        Kind::Block => block_options(fab, &v.pv, &[]),
        Kind::File => file_options(fab, &v.pv, &[]),
    }
}

#[derive(Debug, Clone)]
enum Call {
    Mount(usize),
    Unmount(usize),
}

/// Runs all calls at once, each as its own driver process, and asserts every one succeeded.
#[track_caller]
fn run_parallel(fab: &Fabric, volumes: &[Volume], pods: &[Pod], calls: &[Call]) {
    thread::scope(|s| {
        let handles: Vec<_> = calls
            .iter()
            .map(|call| {
                s.spawn(move || {
                    let (args, what) = match call {
                        Call::Mount(p) => {
                            let pod = &pods[*p];
                            let opts = options_for(fab, &volumes[pod.volume]);
                            let dir = pod.dir.display().to_string();
                            (
                                vec!["mount".to_owned(), dir.clone(), opts],
                                format!("mount {dir}"),
                            )
                        }
                        Call::Unmount(p) => {
                            let dir = pods[*p].dir.display().to_string();
                            (
                                vec!["unmount".to_owned(), dir.clone()],
                                format!("unmount {dir}"),
                            )
                        }
                    };
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    let out = fab.flex(&args);
                    (what, out.status().to_owned(), out.message())
                })
            })
            .collect();
        for h in handles {
            let (what, status, message) = h.join().expect("no panic");
            assert_eq!(status, "Success", "{what}: {message}");
        }
    });
}

/// Each mounted pod dir exactly once, each unmounted one not at all, each block volume with a
/// mounted pod staged exactly once and backing its pods, each other block volume not staged.
#[track_caller]
fn assert_consistent(fab: &Fabric, volumes: &[Volume], pods: &[Pod], mounted: &[bool]) {
    let table = fab.mounts();
    let count_at = |p: &Path| table.iter().filter(|m| m.mount_point == p).count();
    for (i, pod) in pods.iter().enumerate() {
        let expected = usize::from(mounted[i]);
        assert_eq!(
            count_at(&pod.dir),
            expected,
            "pod {} should be mounted {expected} time(s); table: {table:#?}",
            pod.dir.display()
        );
    }
    for (v, vol) in volumes.iter().enumerate() {
        if vol.kind != Kind::Block {
            continue;
        }
        let in_use = pods
            .iter()
            .enumerate()
            .any(|(i, p)| p.volume == v && mounted[i]);
        let staging = fab.staging_dir(&vol.pv);
        assert_eq!(
            count_at(&staging),
            usize::from(in_use),
            "staging of {} (in use: {in_use})",
            vol.pv
        );
        if in_use {
            let staged_dev = fab.mounted_at(&staging).unwrap().dev;
            for (i, p) in pods.iter().enumerate() {
                if p.volume == v && mounted[i] {
                    assert_eq!(
                        fab.mounted_at(&p.dir).unwrap().dev,
                        staged_dev,
                        "{}",
                        p.dir.display()
                    );
                }
            }
            assert_eq!(
                fab.hosts_connected_to(&format!("k8s-{}", vol.pv)).len(),
                1,
                "{} connected to this node only",
                vol.pv
            );
        }
    }
}

/// Nothing of the volumes is left on the node or on the array.
#[track_caller]
fn assert_all_released(fab: &Fabric, volumes: &[Volume], serials: &BTreeMap<String, String>) {
    assert!(fab.mounts().is_empty(), "mounts left: {:#?}", fab.mounts());
    for v in volumes {
        assert!(!fab.record_path(&v.pv).exists(), "record of {} left", v.pv);
    }
    let state = fab.admin_get(&fab.fa, "state");
    assert_eq!(
        state["connections"].as_array().map(Vec::len),
        Some(0),
        "host connections left on the array: {}",
        state["connections"]
    );
    for (pv, serial) in serials {
        assert!(fab.device_deleted(serial), "device of {pv} not deleted");
    }
    // The kernel (here: the fabric) removes deleted devices; then no loop device may remain on
    // any volume's backing file.
    let out = Command::new(fabric_tool("iscsiadm"))
        .args(["-m", "session", "--rescan"])
        .env("FLASHVOL_FABRIC_CONFIG", &fab.fabric_config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        fab.exposed_luns().is_empty(),
        "LUNs left: {:?}",
        fab.exposed_luns()
    );
    for (name, vol) in state["volumes"].as_object().unwrap() {
        let backing = vol["path"].as_str().unwrap();
        let loops = Command::new("losetup")
            .args(["-j", backing])
            .output()
            .unwrap();
        assert!(
            loops.stdout.is_empty(),
            "loop device left on {name}: {}",
            String::from_utf8_lossy(&loops.stdout)
        );
    }
}

fn serials_of(fab: &Fabric, volumes: &[Volume]) -> BTreeMap<String, String> {
    let state = fab.admin_get(&fab.fa, "state");
    volumes
        .iter()
        .filter(|v| v.kind == Kind::Block)
        .map(|v| {
            let serial = state["volumes"][format!("k8s-{}", v.pv)]["serial"]
                .as_str()
                .unwrap()
                .to_owned();
            (v.pv.clone(), serial)
        })
        .collect()
}
