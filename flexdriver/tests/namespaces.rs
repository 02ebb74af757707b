//! The release guard against a real second mount namespace: a process started with `unshare -m`
//! binds the pod's volume elsewhere, as a container runtime does, and keeps appending and
//! fsyncing numbers to a file on it, printing an ack for each. kubelet's `unmount` for the pod
//! answers Failure and changes nothing while that namespace exists; once its processes are gone
//! the volume is released, and a new pod finds every acknowledged number on the volume.
//!
//! A test binary of its own: the unshared namespace gets copies of every mount of the machine, so
//! tests running beside it in the same binary could see their own volumes held by it. The process
//! drops those copies at once (as a container drops the host's tree), before it says it is ready.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use std::os::unix::process::CommandExt;
use support::*;

const UID_A: &str = "5e1c2a8e-0000-4000-8000-00000000000a";
const UID_B: &str = "5e1c2a8e-0000-4000-8000-00000000000b";

/// The "container": binds the pod dir at $HOLD, drops the other copies under $PREFIX (never
/// $HOLD or one of its ancestors), then writes, fsyncs and acknowledges numbers until killed.
const CONTAINER: &str = r#"
set -e
mount --bind "$POD" "$HOLD"
for m in $(awk '{ print $5 }' /proc/self/mountinfo | grep "^$PREFIX/" | sort -r); do
    case "$HOLD/" in "$m"/*) continue ;; esac
    umount -l "$m" 2>/dev/null || true
done
echo ready
i=0
while true; do
    i=$((i + 1))
    echo "$i" >> "$HOLD/acks"
    sync "$HOLD/acks"
    echo "ack=$i"
    sleep 0.02
done
"#;

#[test]
fn a_volume_is_released_only_after_the_namespace_holding_it_is_gone_and_keeps_every_acknowledged_write()
 {
    if skip_unless_root() {
        return;
    }
    let fab = Fabric::new();
    let pv = "pvc-5a111111-2222-4333-8444-555555555555";
    let serial = fab.create_block_volume(pv, GIB);
    let opts = block_options(&fab, pv, &[]);
    let pod = fab.pod_dir(UID_A, pv);
    let pod_s = pod.to_str().unwrap();
    fab.flex(&["mount", pod_s, &opts]).assert_success();
    let hold = fab.root().join("container-data");
    std::fs::create_dir(&hold).unwrap();

    let mut container = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", CONTAINER])
        .env("POD", &pod)
        .env("HOLD", &hold)
        .env("PREFIX", fab.root().parent().unwrap())
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let group = nix::unistd::Pid::from_raw(-i32::try_from(container.id()).unwrap());
    let (lines, acks) = mpsc::channel();
    let stdout = container.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let next = |acks: &mpsc::Receiver<String>| {
        acks.recv_timeout(std::time::Duration::from_secs(30))
            .expect("the container keeps writing")
    };
    assert_eq!(next(&acks), "ready");
    let ack = |line: String| -> u64 { line.strip_prefix("ack=").unwrap().parse().unwrap() };
    while ack(next(&acks)) < 5 {}

    let out = fab.flex(&["unmount", pod_s]);
    out.assert_failure();
    assert!(
        out.message().contains("other mount namespace(s), e.g. pid")
            && out.message().contains("container-data"),
        "{}",
        out.message()
    );
    assert!(fab.mounted_at(&pod).is_some(), "the pod dir stays mounted");
    assert!(fab.mounted_at(&fab.staging_dir(pv)).is_some());
    assert!(fab.record_path(pv).exists());
    assert!(!fab.hosts_connected_to(&format!("k8s-{pv}")).is_empty());
    assert!(!fab.device_deleted(&serial), "the device stays");
    // The container goes on writing after the refusal.
    let refused_at = ack(next(&acks));
    while ack(next(&acks)) < refused_at + 5 {}

    nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL).unwrap();
    container.wait().unwrap();
    let last_ack = acks.into_iter().map(ack).max().unwrap_or(refused_at + 5);
    // Its processes are gone, and with them the namespace.
    fab.flex(&["unmount", pod_s]).assert_success();
    assert!(fab.mounts().is_empty(), "{:?}", fab.mounts());
    assert!(fab.hosts_connected_to(&format!("k8s-{pv}")).is_empty());
    assert!(fab.device_deleted(&serial));

    let next_pod = fab.pod_dir(UID_B, pv);
    fab.flex(&["mount", next_pod.to_str().unwrap(), &opts])
        .assert_success();
    let written: Vec<u64> = std::fs::read_to_string(next_pod.join("acks"))
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(
        written,
        (1..=written.len() as u64).collect::<Vec<_>>(),
        "written in order"
    );
    assert!(
        written.len() as u64 >= last_ack,
        "acknowledged up to {last_ack}, on the volume up to {}",
        written.len()
    );
    fab.flex(&["unmount", next_pod.to_str().unwrap()])
        .assert_success();
}
