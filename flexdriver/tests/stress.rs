//! Node stress: fifty call-outs at once on one node, mixing block volumes shared by several pods,
//! block volumes with one pod and FlashBlade file systems; the same mix with the driver killed
//! between steps of mount and unmount; and a full cycle at trace level checked for API tokens.
//!
//! After every batch the node must be consistent (each pod dir mounted exactly once, each block
//! volume in use staged exactly once, data written earlier intact) and after the last unmount
//! nothing may be left: no mount, no record, no host connection on the array, no loop device.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;

use flashvol_flexdriver::runtime::crash::{BLOCK_MOUNT_STEPS, FILE_MOUNT_STEPS, UNMOUNT_STEPS};
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

#[test]
fn fifty_parallel_calls_on_shared_and_distinct_volumes_stay_consistent_and_leave_nothing() {
    if skip_unless_root() {
        return;
    }
    let fab = loaded_fabric("debug");
    // 5 block volumes with 4 pods each, 10 block volumes with one pod, 5 file systems with 4 pods
    // each: 50 pods.
    let mut volumes = Vec::new();
    let mut pods = Vec::new();
    let mut add = |kind: Kind, tag: &str, count: usize, per_volume: usize| {
        for i in 0..count {
            volumes.push(Volume {
                pv: pv_name(tag, i),
                kind,
            });
            for _ in 0..per_volume {
                let dir = fab.pod_dir(&pod_uid(pods.len()), &volumes.last().unwrap().pv);
                pods.push(Pod {
                    volume: volumes.len() - 1,
                    dir,
                });
            }
        }
    };
    add(Kind::Block, "a", 5, 4);
    add(Kind::Block, "b", 10, 1);
    add(Kind::File, "c", 5, 4);
    assert_eq!(pods.len(), 50);
    create_volumes(&fab, &volumes);
    let serials = serials_of(&fab, &volumes);

    // 1. Fifty mounts at once.
    let calls: Vec<Call> = (0..pods.len()).map(Call::Mount).collect();
    run_parallel(&fab, &volumes, &pods, &calls);
    let mut mounted = vec![true; pods.len()];
    assert_consistent(&fab, &volumes, &pods, &mounted);
    // One payload per volume, through its first pod.
    let mut sums = BTreeMap::new();
    for (v, _) in volumes.iter().enumerate() {
        let first = pods.iter().find(|p| p.volume == v).unwrap();
        sums.insert(v, write_payload(&first.dir, "payload", v as u8));
    }
    assert_eq!(
        fab.log_text().matches("formatting k8s-").count(),
        15,
        "each block volume formatted once"
    );

    // 2. Fifty mixed calls at once: the even pods leave, every volume gets a new pod (a single
    //    pod's volume is released and taken again in the same instant), five mounted pods are
    //    mounted again (kubelet repeats mounts).
    let mut calls: Vec<Call> = (0..pods.len()).step_by(2).map(Call::Unmount).collect();
    for (v, vol) in volumes.iter().enumerate() {
        let dir = fab.pod_dir(&pod_uid(pods.len()), &vol.pv);
        pods.push(Pod { volume: v, dir });
        mounted.push(true);
        calls.push(Call::Mount(pods.len() - 1));
    }
    calls.extend((1..10).step_by(2).map(Call::Mount));
    assert_eq!(calls.len(), 50);
    run_parallel(&fab, &volumes, &pods, &calls);
    for i in (0..50).step_by(2) {
        mounted[i] = false;
    }
    assert_consistent(&fab, &volumes, &pods, &mounted);
    for (v, sum) in &sums {
        let newest = pods.iter().rev().find(|p| p.volume == *v).unwrap();
        assert_eq!(
            read_checksum(&newest.dir.join("payload")),
            *sum,
            "payload of {} intact",
            volumes[*v].pv
        );
    }

    // 3. Everything still mounted leaves at once.
    let calls: Vec<Call> = (0..pods.len())
        .filter(|&i| mounted[i])
        .map(Call::Unmount)
        .collect();
    run_parallel(&fab, &volumes, &pods, &calls);
    assert_all_released(&fab, &volumes, &serials);
    let hosts = fab.fa_client().list_hosts().expect("hosts");
    assert_eq!(hosts.len(), 1, "one host for the node, registered once");
}

/// Runs one call with a crash point. Returns whether the driver died there; when the step is not
/// on this call's path (a non-last pod's unmount, say) the call completes and must answer.
fn run_crashing(fab: &Fabric, args: &[String], step: &str) -> bool {
    let output = Command::new(flex_binary())
        .args(args)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("FLASHVOL_FLEX_CONFIG", &fab.settings_path)
        .env("FLASHVOL_FABRIC_CONFIG", &fab.fabric_config)
        .env("FLASHVOL_FLEX_CRASH_AFTER", step)
        .output()
        .expect("driver runs");
    if output.status.signal() == Some(6) {
        assert!(
            output.stdout.is_empty() && output.stderr.is_empty(),
            "a crashed call wrote output"
        );
        return true;
    }
    // Not crashed: kubelet's contract still holds (the status may be a Failure, when the call
    // waited on a volume a crashed partner left half-done; the retry settles it).
    let _ = one_json_document(output);
    false
}

#[test]
fn drivers_killed_between_steps_under_concurrency_converge_with_data_intact() {
    if skip_unless_root() {
        return;
    }
    let fab = loaded_fabric("debug");
    let volumes = vec![
        Volume {
            pv: pv_name("d", 0),
            kind: Kind::Block,
        },
        Volume {
            pv: pv_name("d", 1),
            kind: Kind::Block,
        },
        Volume {
            pv: pv_name("e", 0),
            kind: Kind::File,
        },
        Volume {
            pv: pv_name("e", 1),
            kind: Kind::File,
        },
    ];
    // Two pods on the first block volume and on the first file system, one on the others.
    let pods: Vec<Pod> = [0, 0, 1, 2, 2, 3]
        .iter()
        .enumerate()
        .map(|(i, &v)| Pod {
            volume: v,
            dir: fab.pod_dir(&pod_uid(100 + i), &volumes[v].pv),
        })
        .collect();
    create_volumes(&fab, &volumes);
    let serials = serials_of(&fab, &volumes);
    let mount_args = |p: &Pod| {
        vec![
            "mount".to_owned(),
            p.dir.display().to_string(),
            options_for(&fab, &volumes[p.volume]),
        ]
    };
    let unmount_args = |p: &Pod| vec!["unmount".to_owned(), p.dir.display().to_string()];
    let all_mounts: Vec<Call> = (0..pods.len()).map(Call::Mount).collect();
    let all_unmounts: Vec<Call> = (0..pods.len()).map(Call::Unmount).collect();

    let rounds = BLOCK_MOUNT_STEPS.len().max(UNMOUNT_STEPS.len());
    let mut sums: BTreeMap<usize, u64> = BTreeMap::new();
    let (mut mount_crashes, mut unmount_crashes) = (0, 0);
    for round in 0..rounds {
        // Every pod's mount is killed after this round's step, all at once; then kubelet retries.
        let crashed: usize = thread::scope(|s| {
            let handles: Vec<_> = pods
                .iter()
                .map(|p| {
                    let steps = match volumes[p.volume].kind {
                        Kind::Block => BLOCK_MOUNT_STEPS,
                        Kind::File => FILE_MOUNT_STEPS,
                    };
                    let step = steps[round % steps.len()];
                    let args = mount_args(p);
                    let fab = &fab;
                    s.spawn(move || usize::from(run_crashing(fab, &args, step)))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert!(crashed > 0, "round {round}: no mount was killed");
        mount_crashes += crashed;
        run_parallel(&fab, &volumes, &pods, &all_mounts);
        assert_consistent(&fab, &volumes, &pods, &vec![true; pods.len()]);
        for (v, _) in volumes.iter().enumerate() {
            let first = pods.iter().find(|p| p.volume == v).unwrap();
            let last = pods.iter().rev().find(|p| p.volume == v).unwrap();
            match sums.get(&v) {
                None => {
                    sums.insert(v, write_payload(&first.dir, "payload", 40 + v as u8));
                }
                Some(sum) => assert_eq!(
                    read_checksum(&last.dir.join("payload")),
                    *sum,
                    "round {round}: payload of {} intact",
                    volumes[v].pv
                ),
            }
        }

        // Every pod's unmount is killed after this round's step, all at once; then retried.
        let step = UNMOUNT_STEPS[round % UNMOUNT_STEPS.len()];
        let crashed: usize = thread::scope(|s| {
            let handles: Vec<_> = pods
                .iter()
                .map(|p| {
                    let args = unmount_args(p);
                    let fab = &fab;
                    s.spawn(move || usize::from(run_crashing(fab, &args, step)))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert!(
            crashed > 0,
            "round {round}: no unmount was killed after {step}"
        );
        unmount_crashes += crashed;
        run_parallel(&fab, &volumes, &pods, &all_unmounts);
        assert_all_released(&fab, &volumes, &serials);
    }
    assert_eq!(
        fab.log_text().matches("formatting k8s-").count(),
        2,
        "each block volume formatted once despite {mount_crashes} killed mounts and {unmount_crashes} killed unmounts"
    );
}

/// A wrapper that records its argv, then runs the real tool.
fn recording_wrapper(dir: &Path, tool: &str, log: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let real = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{tool} is installed"));
    let path = dir.join(format!("record-{tool}"));
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$0 $*\" >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            real.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The fabric's tokens are `sim-token-fa` and `sim-token-fb`.
const TOKEN_MARKER: &str = "sim-token-";

/// The text a reader of the log sees, plus the bytes of any hex dump in it (the HTTP stack dumps
/// raw traffic at trace level as `6b65 6e3a ...  ken:.`, which splits a token across lines).
fn readable_log(log: &str) -> String {
    let mut dumped = Vec::new();
    for line in log.lines() {
        let Some((_, rest)) = line.split_once("ureq_proto::util: ") else {
            continue;
        };
        for group in rest.split(' ').take_while(|g| g.len() == 4).take(8) {
            for pair in [&group[..2], &group[2..]] {
                if let Ok(b) = u8::from_str_radix(pair, 16) {
                    dumped.push(b);
                }
            }
        }
    }
    format!("{log}\n{}", String::from_utf8_lossy(&dumped))
}

/// Everything one block and one file mount/unmount cycle (plus a failing mount) leaves behind
/// at `level`: the driver log, every reply, and the argv of every child the driver ran.
struct CycleTraces {
    log: String,
    replies: Vec<String>,
    children: Vec<(&'static str, String)>,
}

fn full_cycle(level: &str) -> CycleTraces {
    let wrappers = tempfile::tempdir().unwrap();
    let argv_log = wrappers.path().join("argv.log");
    let fab = Fabric::with(FabricOptions {
        node: json!({
            "logLevel": level,
            "tools": {
                "blkid": recording_wrapper(wrappers.path(), "blkid", &argv_log),
                "mkfsXfs": recording_wrapper(wrappers.path(), "mkfs.xfs", &argv_log),
                "mkfsExt4": recording_wrapper(wrappers.path(), "mkfs.ext4", &argv_log),
            },
        }),
        ..FabricOptions::default()
    });
    let block = pv_name("f", 0);
    let file = pv_name("f", 1);
    fab.create_block_volume(&block, GIB);
    fab.create_file_system(&file);
    let block_pod = fab.pod_dir(&pod_uid(200), &block);
    let file_pod = fab.pod_dir(&pod_uid(201), &file);
    let missing_pod = fab.pod_dir(&pod_uid(202), "pvc-missing");
    let mut replies = Vec::new();
    for (args, expect) in [
        (vec!["init".to_owned()], "Success"),
        (
            vec![
                "mount".to_owned(),
                block_pod.display().to_string(),
                block_options(&fab, &block, &[]),
            ],
            "Success",
        ),
        (
            vec![
                "mount".to_owned(),
                file_pod.display().to_string(),
                file_options(&fab, &file, &[]),
            ],
            "Success",
        ),
        // A failing call logs its error path too.
        (
            vec![
                "mount".to_owned(),
                missing_pod.display().to_string(),
                block_options(&fab, "pvc-missing", &[]),
            ],
            "Failure",
        ),
        (
            vec!["unmount".to_owned(), block_pod.display().to_string()],
            "Success",
        ),
        (
            vec!["unmount".to_owned(), file_pod.display().to_string()],
            "Success",
        ),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = fab.flex(&args); // asserts empty stderr and a single JSON document
        assert_eq!(out.status(), expect, "{args:?}: {}", out.reply);
        replies.push(String::from_utf8_lossy(&out.output.stdout).into_owned());
    }
    assert!(fab.mounts().is_empty());
    let log = fab.log_text();
    assert!(log.contains("formatting k8s-"), "the cycle really ran");
    let read = |p: PathBuf| std::fs::read_to_string(p).unwrap_or_default();
    CycleTraces {
        log,
        replies,
        children: vec![
            ("blkid/mkfs argv", read(argv_log)),
            ("iscsiadm argv", read(fab.state_dir.join("iscsiadm.calls"))),
            ("NFS mount argv", read(fab.state_dir.join("nfs-mounts"))),
        ],
    }
}

#[test]
fn a_full_block_and_file_cycle_at_debug_level_never_reveals_a_token() {
    if skip_unless_root() {
        return;
    }
    let traces = full_cycle("debug");
    assert!(traces.log.contains("DEBUG"), "the log is at debug level");
    assert!(
        !readable_log(&traces.log).contains(TOKEN_MARKER),
        "a token reached the driver log"
    );
    for reply in &traces.replies {
        assert!(
            !reply.contains(TOKEN_MARKER),
            "a token reached kubelet: {reply}"
        );
    }
    for (what, text) in &traces.children {
        assert!(!text.is_empty(), "{what} recorded");
        assert!(!text.contains(TOKEN_MARKER), "a token in {what}: {text}");
    }
}

/// At `trace`, ureq hex-dumps every request and response (the FlashBlade `api-token` login
/// header, the arrays' session cookies): the driver holds libraries to `debug` even then
/// (flexdriver/src/runtime/logger.rs, `effective_level`). This once leaked; it must not again.
#[test]
fn a_full_block_and_file_cycle_at_trace_level_never_reveals_a_token() {
    if skip_unless_root() {
        return;
    }
    let traces = full_cycle("trace");
    assert!(
        traces.log.contains("DEBUG ureq"),
        "libraries log at debug, their ceiling, when the level is trace"
    );
    assert!(
        !readable_log(&traces.log).contains(TOKEN_MARKER),
        "a token reached the driver log"
    );
    for reply in &traces.replies {
        assert!(
            !reply.contains(TOKEN_MARKER),
            "a token reached kubelet: {reply}"
        );
    }
    for (what, text) in &traces.children {
        assert!(!text.contains(TOKEN_MARKER), "a token in {what}: {text}");
    }
}
