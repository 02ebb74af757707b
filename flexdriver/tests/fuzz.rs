//! Hostile input: random argv, option maps, pod paths and settings, thrown at the parsing
//! functions directly (many cases, fast) and at the built binary (fewer cases, real processes).
//! Whatever the input, the driver never panics, kubelet always gets exactly one JSON reply with a
//! valid status on stdout and nothing on stderr, the exit code matches the status, and the API
//! tokens of the settings file appear neither in the reply nor in the log.
//!
//! Nothing real can be touched: pod dirs live in a temp dir, every tool is `/bin/false`, and the
//! arrays are on a closed local port.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::process::Command;

use flashvol_flexdriver::kubelet::invocation::{self, Invocation};
use flashvol_flexdriver::kubelet::layout::PodVolume;
use flashvol_flexdriver::kubelet::request::{self, MountRequest};
use flashvol_flexdriver::node::settings::NodeSettings;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use serde_json::{Value, json};
use support::{flex_binary, one_json_document};

const FA_TOKEN: &str = "FUZZTOKEN-fa-2b7d91c4-secret";
const FB_TOKEN: &str = "FUZZTOKEN-fb-8e03a5f6-secret";
const TOKEN_MARKER: &str = "FUZZTOKEN";

/// The keys kubelet and the provisioner put in a mount call's options.
const OPTION_KEYS: &[&str] = &[
    "backend",
    "volumeName",
    "namespace",
    "arrayVolume",
    "arrayEndpoint",
    "arrayId",
    "accessMode",
    "createOptions",
    "mountOptions",
    "nfsEndpoint",
    "kubernetes.io/fsType",
    "kubernetes.io/readwrite",
    "kubernetes.io/pvOrVolumeName",
    "kubernetes.io/mounterArgs.FsGroup",
    "kubernetes.io/fsGroup",
    "kubernetes.io/secret/token",
    "kubernetes.io/pod.name",
    "labels",
    "volumeMode",
];

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(RunnerConfig {
        cases,
        // Failing inputs are printed (shrunk) in the test output; no regression files in the tree.
        failure_persistence: None,
        ..RunnerConfig::default()
    })
}

// ---------------------------------------------------------------- generators

fn invalid_utf8() -> impl Strategy<Value = OsString> {
    (
        proptest::collection::vec(any::<u8>(), 0..16),
        0xf8u8..=0xff,
        proptest::collection::vec(any::<u8>(), 0..16),
    )
        .prop_map(|(mut a, bad, b)| {
            a.push(bad); // never valid in UTF-8
            a.extend(b);
            OsString::from_vec(a)
        })
}

/// Arbitrary JSON, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,24}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    proptest::sample::select(OPTION_KEYS).prop_map(String::from),
                    ".{0,12}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Values a kubelet key might hold: plausible, empty, padded, hostile.
fn option_value() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(
            &[
                "block",
                "file",
                "BLOCK",
                " file ",
                "nfs",
                "xfs",
                "ext4",
                "rw",
                "ro",
                "shared",
                "pvc-0a1b2c3d-1111-4222-8333-444455556666",
                "k8s",
                "1000",
                "-1",
                "4294967296",
                "",
                "   ",
                "../../etc",
                "a/b",
                "rw,nosuid",
                "nfsvers=3,,",
                "127.0.0.1:1",
                "[::1]:1",
            ][..]
        )
        .prop_map(String::from),
        ".{0,40}",
        "[a-z0-9-]{60,70}",
        (1usize..4096).prop_map(|n| "x".repeat(n)),
    ]
}

/// A kubelet option map: known keys with random values, plus random keys.
fn option_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    proptest::collection::btree_map(
        prop_oneof![
            3 => proptest::sample::select(OPTION_KEYS).prop_map(String::from),
            1 => ".{0,16}",
        ],
        option_value(),
        0..10,
    )
}

/// The mount call's JSON argument: well-formed maps, wrong types, random JSON, broken text,
/// deep nesting, huge documents.
fn options_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => option_map().prop_map(|m| serde_json::to_string(&m).unwrap()),
        2 => json_value().prop_map(|v| v.to_string()),
        1 => (proptest::sample::select(OPTION_KEYS), json_value())
            .prop_map(|(k, v)| json!({ "backend": "block", "volumeName": "pvc-1", k: v }).to_string()),
        1 => ".{0,64}",
        1 => (1usize..20_000).prop_map(|depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth))),
        1 => (1usize..20_000).prop_map(|depth| "{\"a\":".repeat(depth)),
        1 => (1usize..100_000).prop_map(|n| format!("{{\"backend\":\"file\",\"volumeName\":\"{}\"}}", "v".repeat(n))),
        1 => option_map().prop_map(|m| {
            let mut t = serde_json::to_string(&m).unwrap();
            let mut cut = t.len() / 2;
            while !t.is_char_boundary(cut) {
                cut -= 1;
            }
            t.truncate(cut);
            t
        }),
    ]
}

/// A path component: Kubernetes-like, odd, or hostile.
fn component() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9][a-z0-9-]{0,40}",
        proptest::sample::select(
            &[
                "pods",
                "volumes",
                "pure~flex",
                "pure~",
                "~flex",
                "a~b~c",
                ".",
                "..",
                "",
                "pvc-1",
                "with space",
                "new\nline",
                "ünïcødé",
            ][..]
        )
        .prop_map(String::from),
        ".{0,20}".prop_filter("no separators", |s| !s.contains('/') && !s.contains('\0')),
    ]
}

/// Absolute paths under `root`, some with the kubelet layout, some without.
fn path_under(root: PathBuf) -> impl Strategy<Value = PathBuf> {
    let kubelet_like = (component(), component(), component()).prop_map({
        let root = root.clone();
        move |(uid, driver, pv)| {
            let driver = if driver.contains('~') {
                driver
            } else {
                format!("pure~{driver}")
            };
            root.join("pods")
                .join(uid)
                .join("volumes")
                .join(driver)
                .join(pv)
        }
    });
    let anything = proptest::collection::vec(component(), 0..8).prop_map(move |parts| {
        let mut p = root.clone();
        for part in parts.iter().filter(|p| !p.is_empty() && *p != "..") {
            p.push(part);
        }
        p
    });
    prop_oneof![3 => kubelet_like, 1 => anything]
}

// ---------------------------------------------------------------- library level

#[test]
fn argv_parsing_never_panics_and_explains_every_refusal() {
    let arg = prop_oneof![
        proptest::sample::select(&["init", "mount", "unmount", "attach", "/x/y", "{}", ""][..])
            .prop_map(OsString::from),
        ".{0,40}".prop_map(OsString::from),
        invalid_utf8(),
        options_text().prop_map(OsString::from),
    ];
    let argv = proptest::collection::vec(arg, 0..5);
    runner(4096)
        .run(&argv, |args| {
            match invocation::parse(&args) {
                Ok(Invocation::Init) => prop_assert_eq!(args.len(), 1),
                Ok(Invocation::Mount { pod_dir, .. }) => {
                    prop_assert_eq!(args.len(), 3);
                    prop_assert!(pod_dir.is_absolute());
                }
                Ok(Invocation::Unmount { pod_dir }) => {
                    prop_assert_eq!(args.len(), 2);
                    prop_assert!(pod_dir.is_absolute());
                }
                Ok(Invocation::NotSupported(call)) => {
                    prop_assert!(!["init", "mount", "unmount"].contains(&call.as_str()));
                }
                Err(e) => prop_assert!(!e.to_string().trim().is_empty()),
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn option_json_is_accepted_only_as_an_object_of_strings() {
    runner(2048)
        .run(&options_text(), |text| {
            let as_json: Option<Value> = serde_json::from_str(&text).ok();
            let all_strings =
                matches!(&as_json, Some(Value::Object(m)) if m.values().all(Value::is_string));
            match invocation::parse_options(&text) {
                Ok(map) => {
                    prop_assert!(all_strings, "accepted {text:?}");
                    let Some(Value::Object(m)) = as_json else {
                        unreachable!()
                    };
                    prop_assert_eq!(map.len(), m.len());
                }
                Err(e) => {
                    prop_assert!(!all_strings, "refused a valid object {text:?}: {e}");
                    prop_assert!(!e.to_string().is_empty());
                }
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn mount_requests_from_random_options_are_valid_or_refused_by_key() {
    runner(4096)
        .run(&option_map(), |opts| {
            match MountRequest::from_options(&opts, "k8s") {
                Ok(req) => {
                    // What reaches the array and the file system is always a safe name.
                    prop_assert!(flashvol_common::options::is_valid_array_name(
                        &req.volume.array_volume
                    ));
                }
                Err(e) => {
                    let msg = e.to_string();
                    prop_assert!(
                        OPTION_KEYS.iter().any(|k| msg.contains(k)) || msg.contains("fsGroup"),
                        "error names no option: {msg}"
                    );
                }
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn secret_options_never_reach_the_loggable_form() {
    let case = (option_map(), "[a-zA-Z0-9+/=]{0,64}");
    runner(1024)
        .run(&case, |(mut opts, secret)| {
            opts.insert(
                "kubernetes.io/secret/token".into(),
                format!("SECRETMARK{secret}"),
            );
            opts.insert(
                "kubernetes.io/secret/other".into(),
                format!("SECRETMARK{secret}=="),
            );
            let shown = format!("{:?}", request::loggable(&opts));
            prop_assert!(!shown.contains("SECRETMARK"), "{shown}");
            Ok(())
        })
        .unwrap();
}

#[test]
fn pod_paths_parse_only_with_the_kubelet_layout_and_safe_names() {
    let root = PathBuf::from("/var/lib/kubelet");
    runner(4096)
        .run(&path_under(root.clone()), |path| {
            if let Ok(vol) = PodVolume::parse(&path) {
                prop_assert_eq!(&vol.kubelet_root, &root);
                for name in [&vol.pv_name, &vol.pod_uid, &vol.vendor, &vol.driver] {
                    prop_assert!(!name.is_empty() && name != "." && name != "..");
                    prop_assert!(!name.contains('/'));
                }
                // The derived paths stay inside the kubelet root.
                prop_assert!(vol.staging_dir().starts_with(&root));
                prop_assert!(vol.record_path().starts_with(&root));
            }
            Ok(())
        })
        .unwrap();
}

/// A `"node"` section with the paths pinned to `root` and everything else random.
fn node_section(root: PathBuf) -> impl Strategy<Value = Value> {
    let level = prop_oneof![
        proptest::sample::select(
            &[
                "trace", "debug", "info", "warn", "error", "off", "TRACE", " info "
            ][..]
        )
        .prop_map(Value::from),
        json_value(),
    ];
    let seconds = prop_oneof![
        (-10.0f64..5000.0).prop_map(Value::from),
        json_value(),
        Just(json!(0)),
        Just(json!(1e300)),
    ];
    let seconds_key = proptest::sample::select(
        &[
            "arrayCallSeconds",
            "lockWaitSeconds",
            "iscsiadmSeconds",
            "deviceWaitSeconds",
            "mkfsSeconds",
            "mountSeconds",
            "noSuchSeconds",
        ][..],
    );
    (
        level,
        proptest::collection::btree_map(seconds_key, seconds, 0..4),
        prop_oneof![json_value(), "[a-z0-9.-]{1,63}".prop_map(Value::from)],
        proptest::option::of((".{1,12}", json_value())),
    )
        .prop_map(move |(level, deadlines, node_name, extra)| {
            let mut node = json!({
                "nodeName": node_name,
                "logFile": root.join("flex.log"),
                "logLevel": level,
                "locksDir": root.join("locks"),
                "deviceDir": root.join("dev/disk/by-id"),
                "mapperDir": root.join("dev/mapper"),
                "sysfsRoot": root.join("sys"),
                "iscsiInitiatorFile": root.join("initiatorname.iscsi"),
                "deadlines": deadlines,
                "tools": {"iscsiadm": "/bin/false", "multipath": "/bin/false",
                          "multipathd": "/bin/false", "blkid": "/bin/false",
                          "mkfsXfs": "/bin/false", "mkfsExt4": "/bin/false",
                          "mkfsExt3": "/bin/false", "mount": "/bin/false"},
            });
            if let Some((k, v)) = extra {
                node[k] = v;
            }
            node
        })
}

#[test]
fn node_settings_from_random_sections_are_valid_or_refused_with_a_reason() {
    let root = PathBuf::from("/tmp/flashvol-fuzz-never-created");
    runner(2048)
        .run(&node_section(root), |section| {
            match NodeSettings::parse(Some(&section), "fallback-host", None) {
                Ok(s) => {
                    prop_assert!(!s.node_name.trim().is_empty());
                    let d = s.deadlines;
                    for limit in [
                        d.array_call,
                        d.lock_wait,
                        d.iscsiadm,
                        d.device_wait,
                        d.mkfs,
                        d.mount,
                    ] {
                        prop_assert!(limit.as_secs_f64() >= 0.1 && limit.as_secs_f64() <= 3600.0);
                    }
                }
                Err(e) => prop_assert!(e.to_string().contains("node"), "{e}"),
            }
            Ok(())
        })
        .unwrap();
}

// ---------------------------------------------------------------- the built binary

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
