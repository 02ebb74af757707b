//! kubelet runs call-outs in parallel: many mounts and unmounts at once, on distinct volumes and
//! on volumes shared by several pods, must all succeed and leave a consistent node.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use std::thread;

use support::*;

fn uid(i: usize) -> String {
    format!("9c1c2a8e-0000-4000-8000-{i:012}")
}

#[test]
fn two_dozen_parallel_calls_on_shared_and_distinct_volumes() {
    if skip_unless_root() {
        return;
    }
    let fab = Fabric::new();
    // 4 block volumes shared by 4 pods each, 4 block volumes with one pod, 4 file systems.
    let mut jobs: Vec<(String, String, String)> = Vec::new(); // (pv, pod dir, options)
    for v in 0..8 {
        let pv = format!("pvc-d{v}111111-2222-4333-8444-555555555555");
        fab.create_block_volume(&pv, GIB);
        let pods = if v < 4 { 4 } else { 1 };
        for p in 0..pods {
            let pod = fab.pod_dir(&uid(v * 10 + p), &pv);
            jobs.push((
                pv.clone(),
                pod.display().to_string(),
                block_options(&fab, &pv, &[]),
            ));
        }
    }
    for f in 0..4 {
        let pv = format!("pvc-e{f}111111-2222-4333-8444-555555555555");
        fab.create_file_system(&pv);
        let pod = fab.pod_dir(&uid(100 + f), &pv);
        jobs.push((
            pv.clone(),
            pod.display().to_string(),
            file_options(&fab, &pv, &[]),
        ));
    }
    assert!(jobs.len() >= 24);

    thread::scope(|s| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|(_, pod, opts)| {
                s.spawn(|| {
                    fab.flex(&["mount", pod, opts])
                        .assert_success()
                        .status()
                        .to_owned()
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().expect("no panic"), "Success");
        }
    });

    for (pv, pod, _) in &jobs {
        assert!(
            fab.mounted_at(std::path::Path::new(pod)).is_some(),
            "{pod} mounted"
        );
        if pv.starts_with("pvc-d") {
            let staged = fab
                .mounts()
                .iter()
                .filter(|m| m.mount_point == fab.staging_dir(pv))
                .count();
            assert_eq!(staged, 1, "{pv} staged exactly once");
        }
    }
    // Pods of one shared volume see each other's writes.
    let shared: Vec<&(String, String, String)> =
        jobs.iter().filter(|j| j.0.starts_with("pvc-d0")).collect();
    write_payload(std::path::Path::new(&shared[0].1), "peer", 2);
    assert!(std::path::Path::new(&shared[3].1).join("peer").exists());
    assert_eq!(
        fab.log_text().matches("formatting k8s-").count(),
        8,
        "each volume formatted once"
    );
    let hosts = fab.fa_client().list_hosts().expect("hosts");
    assert_eq!(
        hosts.len(),
        1,
        "one host registered despite parallel first mounts"
    );

    thread::scope(|s| {
        for (_, pod, _) in &jobs {
            s.spawn(|| {
                fab.flex(&["unmount", pod]).assert_success();
            });
        }
    });
    assert!(fab.mounts().is_empty(), "left: {:?}", fab.mounts());
    for v in 0..8 {
        let vol = format!("k8s-pvc-d{v}111111-2222-4333-8444-555555555555");
        assert!(
            fab.hosts_connected_to(&vol).is_empty(),
            "{vol} disconnected"
        );
    }
}
