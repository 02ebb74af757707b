//! The `flashvol-arraysim` binary: `--config` serves several arrays from one process and prints
//! one JSON line per array; bad flags fail with a message naming the problem.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_flashvol-arraysim");

#[test]
fn config_file_serves_several_arrays_from_one_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("sims.json");
    std::fs::write(
        &config,
        r#"{"state_root": "state", "arrays": [
            {"kind": "flasharray", "name": "fa-a", "listen": "127.0.0.1:0", "capacity": "1T"},
            {"kind": "flashblade", "name": "fb-a", "listen": "127.0.0.1:0", "api_token": "T-fb", "data_vips": ["10.1.1.1"]}
        ]}"#,
    )
    .expect("write config");
    let mut child = Command::new(BINARY)
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let lines: Vec<Value> = BufReader::new(stdout)
        .lines()
        .take(2)
        .map(|line| serde_json::from_str(&line.expect("line")).expect("JSON line"))
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["kind"], "flasharray");
    assert_eq!(lines[1]["name"], "fb-a");
    assert_ne!(lines[0]["endpoint"], lines[1]["endpoint"]);
    assert!(dir.path().join("state/fa-a/state.json").exists());
    assert!(dir.path().join("state/fb-a/tls/ca.pem").exists());
}

#[test]
fn invalid_arguments_fail_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = Command::new(BINARY)
        .args(["flasharray", "--state-dir"])
        .arg(dir.path())
        .args(["--error-rate", "3"])
        .output()
        .expect("binary runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("error_rate"));

    let output = Command::new(BINARY)
        .args([
            "flasharray",
            "--state-dir",
            "/tmp/x",
            "--fail-next",
            "GET:/x",
        ])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("METHOD:PATH:COUNT"));

    let output = Command::new(BINARY).output().expect("runs");
    assert!(!output.status.success());
}
