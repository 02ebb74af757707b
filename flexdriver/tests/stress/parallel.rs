//! Fifty call-outs at once on one node, then the same mix with drivers killed between the steps
//! of mount and unmount: the node stays consistent and the last unmount leaves nothing.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::thread;

use flashvol_flexdriver::runtime::crash::{BLOCK_MOUNT_STEPS, FILE_MOUNT_STEPS, UNMOUNT_STEPS};

use crate::support::*;
use crate::{
    Call, Kind, Pod, Volume, assert_all_released, assert_consistent, create_volumes, loaded_fabric,
    options_for, pod_uid, pv_name, run_parallel, serials_of,
};

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
