//! A full block and file cycle (and a failing mount) at debug and trace level: no API token in
//! the log, the replies or the argv of any child the driver ran.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::support::*;
use crate::{pod_uid, pv_name};

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
