//! Hostile input: random argv, option maps, pod paths and settings, thrown at the parsing
//! functions directly (many cases, fast) and at the built binary (fewer cases, real processes).
//! Whatever the input, the driver never panics, kubelet always gets exactly one JSON reply with a
//! valid status on stdout and nothing on stderr, the exit code matches the status, and the API
//! tokens of the settings file appear neither in the reply nor in the log.
//!
//! Nothing real can be touched: pod dirs live in a temp dir, every tool is `/bin/false`, and the
//! arrays are on a closed local port.
//!
//! One test binary: the tokens and the generators of hostile input are here, shared by `parsing`
//! (the library's parsing functions) and `binary` (the built driver in a sandbox).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

// Shared by every test binary of this crate, so it lives beside them, not in this directory.
#[path = "../support/mod.rs"]
mod support;

mod binary;
mod parsing;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use serde_json::{Value, json};

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
