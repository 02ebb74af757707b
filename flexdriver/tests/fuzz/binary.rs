//! The built binary under random argv and settings (fewer cases, real processes), in a sandbox
//! whose arrays listen nowhere and whose tools all fail: one valid reply, the exit code matching
//! its status, nothing mounted, and no token in the reply or the log.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::process::Command;

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::support::{flex_binary, one_json_document};
use crate::{
    FA_TOKEN, FB_TOKEN, TOKEN_MARKER, invalid_utf8, json_value, node_section, options_text,
    path_under, runner,
};

/// A settings file whose arrays listen nowhere and whose tools all fail.
struct Sandbox {
    dir: tempfile::TempDir,
    settings: PathBuf,
    node: Value,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("flexfuzz")
            .tempdir()
            .unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(
            root.join("initiatorname.iscsi"),
            "InitiatorName=iqn.2026-11.io.flashvol:fuzz\n",
        )
        .unwrap();
        let node = json!({
            "nodeName": "fuzz-node",
            "logFile": root.join("flex.log"),
            "logLevel": "trace",
            "locksDir": root.join("locks"),
            "deviceDir": root.join("dev/disk/by-id"),
            "mapperDir": root.join("dev/mapper"),
            "sysfsRoot": root.join("sys"),
            "iscsiInitiatorFile": root.join("initiatorname.iscsi"),
            "deadlines": {"arrayCallSeconds": 2, "lockWaitSeconds": 2, "mountSeconds": 2},
            "tools": {"iscsiadm": "/bin/false", "multipath": "/bin/false",
                      "multipathd": "/bin/false", "blkid": "/bin/false",
                      "mkfsXfs": "/bin/false", "mkfsExt4": "/bin/false",
                      "mkfsExt3": "/bin/false", "mount": "/bin/false"},
        });
        let sandbox = Self {
            settings: root.join("flashvol.json"),
            dir,
            node,
        };
        sandbox.write_settings(&sandbox.node);
        sandbox
    }

    fn root(&self) -> PathBuf {
        self.dir.path().canonicalize().unwrap()
    }

    fn write_settings(&self, node: &Value) {
        // Port 1 on loopback: connections are refused at once.
        let doc = json!({
            "FlashArrays": [{"MgmtEndPoint": "127.0.0.1:1", "APIToken": FA_TOKEN}],
            "FlashBlades": [{"MgmtEndPoint": "127.0.0.2:1", "APIToken": FB_TOKEN,
                             "NfsEndPoint": "127.0.0.3"}],
            "flashvol": {"retries": 0, "connectTimeoutSeconds": 1, "requestTimeoutSeconds": 2},
            "node": node,
        });
        std::fs::write(&self.settings, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    }

    /// Runs the binary and checks everything kubelet relies on; returns the reply.
    fn run(&self, args: &[OsString]) -> Result<Value, TestCaseError> {
        // An argv string cannot hold NUL (exec would refuse it), so kubelet can never send one.
        let args: Vec<OsString> = args
            .iter()
            .map(|a| OsString::from_vec(a.as_bytes().iter().copied().filter(|b| *b != 0).collect()))
            .collect();
        let output = Command::new(flex_binary())
            .args(&args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("FLASHVOL_FLEX_CONFIG", &self.settings)
            .output()
            .map_err(|e| TestCaseError::fail(format!("cannot run the driver: {e}")))?;
        prop_assert!(
            output.status.code().is_some(),
            "killed by a signal: {:?} for {args:?}",
            output.status
        );
        let outcome = one_json_document(output);
        let status = outcome.status().to_owned();
        let code = outcome.output.status.code();
        match status.as_str() {
            "Success" | "Not supported" => prop_assert_eq!(code, Some(0), "{}", outcome.reply),
            "Failure" => prop_assert_eq!(code, Some(1), "{}", outcome.reply),
            other => {
                return Err(TestCaseError::fail(format!(
                    "invalid status {other:?}: {}",
                    outcome.reply
                )));
            }
        }
        let message = outcome.message();
        prop_assert!(
            !message.contains("internal error"),
            "the driver panicked on {args:?}: {message}"
        );
        prop_assert!(
            !outcome.reply.to_string().contains(TOKEN_MARKER),
            "a token reached kubelet: {}",
            outcome.reply
        );
        if status == "Failure" {
            prop_assert!(!message.trim().is_empty(), "a Failure without a message");
        }
        Ok(outcome.reply)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.root().join("flex.log")).unwrap_or_default()
    }

    fn mounts_under_root(&self) -> usize {
        let root = self.root();
        flashvol_flexdriver::node::mountinfo::read()
            .unwrap()
            .iter()
            .filter(|m| m.mount_point.starts_with(&root))
            .count()
    }
}

fn argv_for(root: PathBuf) -> impl Strategy<Value = Vec<OsString>> {
    let pod = path_under(root.join("kubelet"))
        .prop_map(OsString::from)
        .boxed();
    let random_arg = prop_oneof![
        ".{0,40}".prop_map(OsString::from),
        invalid_utf8(),
        options_text().prop_map(OsString::from),
        (1usize..120_000).prop_map(|n| OsString::from("A".repeat(n))),
    ]
    .boxed();
    prop_oneof![
        // Well-shaped mounts and unmounts with hostile content.
        3 => (pod.clone(), options_text()).prop_map(|(p, o)| vec!["mount".into(), p, o.into()]),
        1 => pod.clone().prop_map(|p| vec!["unmount".into(), p]),
        // Right call, wrong arity or wrong kinds of argument.
        1 => (proptest::sample::select(&["init", "mount", "unmount"][..]),
              proptest::collection::vec(prop_oneof![random_arg.clone(), pod], 0..4))
            .prop_map(|(c, rest)| {
                let rest: Vec<OsString> = rest
                    .into_iter()
                    // A relative or foreign absolute path must never reach unmount: keep any
                    // path-looking argument inside the sandbox.
                    .filter(|a| !a.to_string_lossy().starts_with('/') || a.to_string_lossy().contains("flexfuzz"))
                    .collect();
                std::iter::once(OsString::from(c)).chain(rest).collect()
            }),
        // Random call-outs.
        1 => proptest::collection::vec(random_arg, 0..4).prop_filter(
            "mount and unmount are covered above",
            |v| v.first().is_none_or(|c| c != "mount" && c != "unmount"),
        ),
    ]
}

#[test]
fn the_binary_answers_random_argv_with_one_valid_reply_and_no_token() {
    let sandbox = Sandbox::new();
    runner(384)
        .run(&argv_for(sandbox.root()), |args| {
            sandbox.run(&args)?;
            Ok(())
        })
        .unwrap();
    assert_eq!(sandbox.mounts_under_root(), 0, "nothing was mounted");
    let log = sandbox.log_text();
    assert!(!log.is_empty(), "the trace log was written");
    assert!(!log.contains(TOKEN_MARKER), "a token reached the log");
}

#[test]
fn the_binary_answers_random_settings_with_one_valid_reply_and_no_token() {
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    let pod =
        root.join("kubelet/pods/0f1e2d3c-0000-4000-8000-000000000001/volumes/pure~flex/pvc-1");
    let mount_opts = r#"{"backend":"block","volumeName":"pvc-1","kubernetes.io/fsType":"xfs"}"#;
    let case = (node_section(root.clone()), any::<bool>());
    runner(192)
        .run(&case, |(node, mount)| {
            sandbox.write_settings(&node);
            let args: Vec<OsString> = if mount {
                vec!["mount".into(), pod.clone().into(), mount_opts.into()]
            } else {
                vec!["unmount".into(), pod.clone().into()]
            };
            let reply = sandbox.run(&args)?;
            // The arrays are unreachable, so a mount can never succeed.
            if mount {
                prop_assert_eq!(reply["status"].as_str(), Some("Failure"));
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(sandbox.mounts_under_root(), 0);
    assert!(!sandbox.log_text().contains(TOKEN_MARKER));
}

#[test]
fn an_unreadable_or_hostile_settings_file_gets_a_failure_naming_it() {
    let sandbox = Sandbox::new();
    let pod: OsString = sandbox
        .root()
        .join("kubelet/pods/0f1e2d3c-0000-4000-8000-000000000002/volumes/pure~flex/pvc-2")
        .into();
    let texts = prop_oneof![
        json_value().prop_map(|v| v.to_string()),
        ".{0,200}",
        Just(String::new()),
        (1usize..50_000).prop_map(|d| "[".repeat(d)),
    ];
    runner(256)
        .run(&texts, |mut text| {
            // An object that happens to parse gets the sandbox's node section: with the defaults
            // the driver would lock and log under /run and /var/log of this machine.
            if let Ok(Value::Object(mut doc)) = serde_json::from_str::<Value>(&text) {
                doc.insert("node".into(), sandbox.node.clone());
                text = Value::Object(doc).to_string();
            }
            std::fs::write(&sandbox.settings, &text).unwrap();
            let reply = sandbox.run(&[OsString::from("unmount"), pod.clone()])?;
            if reply["status"] == "Failure" {
                let message = reply["message"].as_str().unwrap_or_default();
                prop_assert!(
                    message.contains(&*sandbox.settings.to_string_lossy())
                        || message.contains("node"),
                    "the failure does not say which settings are wrong: {message}"
                );
            }
            Ok(())
        })
        .unwrap();
    // init needs no settings at all.
    std::fs::write(&sandbox.settings, "{not json").unwrap();
    let reply = sandbox.run(&[OsString::from("init")]).unwrap();
    assert_eq!(reply["status"], "Success");
}
