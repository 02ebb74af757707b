//! Hostile configuration: arbitrary JSON and structure-aware mutations of a valid pure.json
//! through `Config::parse`, and arbitrary PV option maps through `VolumeOptions::from_options`.
//! Never a panic; every refusal names the file (or the option key); the API tokens, which carry
//! a recognisable marker, never appear in an error message nor in a parsed config's `Debug`.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::collections::BTreeMap;
use std::path::Path;

use flashvol_common::config::{Config, ConfigError};
use flashvol_common::options::{self, VolumeOptions};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use serde_json::{Value, json};

const CONFIG_PATH: &str = "/etc/pure/fuzzed-pure.json";
const TOKEN_MARKER: &str = "TOKMARK";

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(RunnerConfig {
        cases,
        failure_persistence: None,
        ..RunnerConfig::default()
    })
}

fn json_value() -> impl Strategy<Value = Value> + Clone {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,24}".prop_map(Value::from),
        proptest::sample::select(
            &[
                "10.0.0.1",
                "[fd00::1]:8443",
                "https://array.example.com",
                "host:99999",
                "",
                " ",
                "xfs",
                "iscsi",
                "fc",
                "10.0.0.0/33",
                "*(rw,no_root_squash)",
            ][..]
        )
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid pure.json with every section filled in, tokens carrying the marker.
fn valid_document(fa_token: &str, fb_token: &str) -> Value {
    json!({
        "FlashArrays": [
            {"MgmtEndPoint": "10.0.0.1", "APIToken": fa_token, "Labels": {"rack": "22", "zone": 1}},
            {"MgmtEndPoint": "[fd00::2]:8443", "APIToken": format!("{fa_token}-2")}
        ],
        "FlashBlades": [
            {"MgmtEndPoint": "fb.example.com", "APIToken": fb_token, "NfsEndPoint": "10.1.0.1",
             "Labels": {"tier": "file"}}
        ],
        "flashvol": {
            "namePrefix": "k8s",
            "tls": {"caFile": "/etc/pure/ca.pem", "insecureSkipVerify": false},
            "connectTimeoutSeconds": 5,
            "requestTimeoutSeconds": 30,
            "retries": 3,
            "block": {"fsType": "xfs", "mkfsOptions": "-K", "mountOptions": "discard",
                      "sanType": "iscsi", "iscsiAllowedCidrs": ["10.0.0.0/24"],
                      "iscsiLoginTimeoutSeconds": 20, "preemptRwoAttachments": true},
            "file": {"exportRules": "*(rw,no_root_squash)", "hardLimit": true,
                     "snapshotDirectory": false, "mountOptions": "nfsvers=3"},
            "eradicateOnDelete": false
        },
        "node": {"nodeName": "n1"}
    })
}

/// One edit somewhere in the document, chosen by a path of indices into the tree.
#[derive(Debug, Clone)]
enum Mutation {
    Replace(Vec<usize>, Value),
    Remove(Vec<usize>),
    Insert(Vec<usize>, String, Value),
    RenameKey(Vec<usize>, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let path = proptest::collection::vec(any::<usize>(), 0..5);
    let key = prop_oneof![
        ".{0,12}",
        proptest::sample::select(
            &[
                "apitoken",
                "MGMTENDPOINT",
                "labels",
                "nfsendpoint",
                "FLASHVOL",
                "tls",
                "block",
                "file",
                "unknown",
            ][..]
        )
        .prop_map(String::from),
    ];
    prop_oneof![
        3 => (path.clone(), json_value()).prop_map(|(p, v)| Mutation::Replace(p, v)),
        1 => path.clone().prop_map(Mutation::Remove),
        1 => (path.clone(), key.clone(), json_value()).prop_map(|(p, k, v)| Mutation::Insert(p, k, v)),
        1 => (path, key).prop_map(|(p, k)| Mutation::RenameKey(p, k)),
    ]
}

/// Whether a value is, or holds, an API token (tokens must stay where they are: a mutation that
/// copied a token into, say, an endpoint field would make its echo in an error legitimate).
fn holds_token(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains(TOKEN_MARKER),
        Value::Array(items) => items.iter().any(holds_token),
        Value::Object(map) => map.values().any(holds_token),
        _ => false,
    }
}

/// Applies one edit: `path` (indices taken modulo the container sizes) leads to a container; its
/// last index picks the child to replace, remove or rename.
fn apply(doc: &mut Value, mutation: &Mutation) {
    fn walk<'a>(v: &'a mut Value, path: &[usize]) -> &'a mut Value {
        let Some((first, rest)) = path.split_first() else {
            return v;
        };
        let len = match v {
            Value::Array(a) => a.len(),
            Value::Object(m) => m.len(),
            _ => 0,
        };
        if len == 0 {
            return v;
        }
        let i = first % len;
        let descend = !rest.is_empty()
            && match &*v {
                Value::Array(a) => a[i].is_array() || a[i].is_object(),
                Value::Object(m) => m
                    .values()
                    .nth(i)
                    .is_some_and(|c| c.is_array() || c.is_object()),
                _ => false,
            };
        if !descend {
            return v;
        }
        match v {
            Value::Array(a) => walk(&mut a[i], rest),
            Value::Object(m) => walk(m.values_mut().nth(i).unwrap(), rest),
            other => other,
        }
    }
    let (path, last) = match mutation {
        Mutation::Replace(p, _)
        | Mutation::Remove(p)
        | Mutation::Insert(p, ..)
        | Mutation::RenameKey(p, _) => (p.as_slice(), p.last().copied().unwrap_or(0)),
    };
    let target = walk(doc, path.split_last().map_or(&[][..], |(_, init)| init));
    match (target, mutation) {
        (Value::Object(m), Mutation::Replace(_, v)) if !m.is_empty() => {
            let key = m.keys().nth(last % m.len()).unwrap().clone();
            if !holds_token(&m[&key]) || key.eq_ignore_ascii_case("APIToken") {
                m.insert(key, v.clone());
            }
        }
        (Value::Array(a), Mutation::Replace(_, v)) if !a.is_empty() => {
            let i = last % a.len();
            if !holds_token(&a[i]) {
                a[i] = v.clone();
            }
        }
        (Value::Object(m), Mutation::Remove(_)) if !m.is_empty() => {
            let key = m.keys().nth(last % m.len()).unwrap().clone();
            m.remove(&key);
        }
        (Value::Array(a), Mutation::Remove(_)) if !a.is_empty() => {
            let i = last % a.len();
            a.remove(i);
        }
        (Value::Object(m), Mutation::Insert(_, k, v)) => {
            m.insert(k.clone(), v.clone());
        }
        (Value::Array(a), Mutation::Insert(_, _, v)) => a.push(v.clone()),
        (Value::Object(m), Mutation::RenameKey(_, k)) if !m.is_empty() => {
            let key = m.keys().nth(last % m.len()).unwrap().clone();
            if let Some(v) = m.remove(&key) {
                // A token renamed into another field would be echoed legitimately; keep it a token.
                if !holds_token(&v) || k.eq_ignore_ascii_case("APIToken") {
                    m.insert(k.clone(), v);
                }
            }
        }
        _ => {}
    }
}

#[track_caller]
fn check_outcome(result: &Result<Config, ConfigError>) -> Result<(), TestCaseError> {
    match result {
        Ok(config) => {
            let shown = format!("{config:?}");
            prop_assert!(
                !shown.contains(TOKEN_MARKER),
                "Debug shows a token: {shown}"
            );
            prop_assert_eq!(config.path.as_path(), Path::new(CONFIG_PATH));
        }
        Err(e) => {
            let display = e.to_string();
            let debug = format!("{e:?}");
            prop_assert!(
                display.contains(CONFIG_PATH),
                "error does not name the file: {display}"
            );
            prop_assert!(!display.contains(TOKEN_MARKER), "token in error: {display}");
            prop_assert!(
                !debug.contains(TOKEN_MARKER),
                "token in error Debug: {debug}"
            );
        }
    }
    Ok(())
}

#[test]
fn arbitrary_json_is_parsed_or_refused_naming_the_file() {
    runner(2048)
        .run(&json_value(), |doc| {
            let result = Config::parse(Path::new(CONFIG_PATH), &doc.to_string());
            check_outcome(&result)
        })
        .unwrap();
}

#[test]
fn arbitrary_text_is_parsed_or_refused_naming_the_file() {
    let text = prop_oneof![
        ".{0,200}",
        proptest::collection::vec(any::<u8>(), 0..200)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        (1usize..20_000).prop_map(|d| "[".repeat(d)),
        (1usize..20_000).prop_map(|d| "{\"FlashArrays\":".repeat(d)),
    ];
    runner(1024)
        .run(&text, |text| {
            check_outcome(&Config::parse(Path::new(CONFIG_PATH), &text))
        })
        .unwrap();
}

#[test]
fn mutated_pure_json_never_leaks_a_token() {
    let case = (
        "[A-Za-z0-9+/=-]{0,40}",
        "[ -~]{0,20}",
        proptest::collection::vec(mutation(), 1..5),
    );
    runner(4096)
        .run(&case, |(fa_secret, fb_secret, mutations)| {
            let fa_token = format!("{TOKEN_MARKER}{fa_secret}");
            let fb_token = format!("{TOKEN_MARKER}{fb_secret}");
            let mut doc = valid_document(&fa_token, &fb_token);
            for m in &mutations {
                apply(&mut doc, m);
            }
            let result = Config::parse(Path::new(CONFIG_PATH), &doc.to_string());
            check_outcome(&result)
        })
        .unwrap();
}

#[test]
fn the_unmutated_document_parses_and_hides_its_tokens() {
    let doc = valid_document("TOKMARK-a", "TOKMARK-b");
    let config = Config::parse(Path::new(CONFIG_PATH), &doc.to_string()).unwrap();
    assert_eq!(
        config.arrays.flash_arrays[0].api_token.expose(),
        "TOKMARK-a"
    );
    assert_eq!(
        config.arrays.flash_blades[0].api_token.expose(),
        "TOKMARK-b"
    );
    assert!(!format!("{config:?}").contains(TOKEN_MARKER));
}

/// The PV option keys, plus a few that are not.
const OPTION_KEYS: &[&str] = &[
    options::BACKEND,
    options::NAMESPACE,
    options::VOLUME_NAME,
    options::ACCESS_MODE,
    options::LABELS,
    options::VOLUME_MODE,
    options::ARRAY_VOLUME,
    options::ARRAY_ENDPOINT,
    options::ARRAY_ID,
    options::CREATE_OPTIONS,
    options::MOUNT_OPTIONS,
    options::NFS_ENDPOINT,
    "kubernetes.io/fsType",
    "unknownKey",
];

fn option_value() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(
            &[
                "block",
                "file",
                "Block",
                " file ",
                "nfs",
                "",
                "  ",
                "pvc-0a1b2c3d-1111-4222-8333-444455556666",
                "k8s",
                "a-very-long-prefix-that-is-way-too-long-for-an-array-name",
                "../../etc/passwd",
                "a/b",
                "x;rm -rf /",
                "rw,nosuid",
                "nfsvers=3,,",
                "$(reboot)",
                "bind,remount",
            ][..]
        )
        .prop_map(String::from),
        ".{0,40}",
        "[a-z0-9-]{55,75}",
        (1usize..8192).prop_map(|n| "v".repeat(n)),
    ]
}

#[test]
fn volume_options_are_decoded_or_refused_by_key() {
    let map = proptest::collection::btree_map(
        prop_oneof![
            4 => proptest::sample::select(OPTION_KEYS).prop_map(String::from),
            1 => ".{0,16}",
        ],
        option_value(),
        0..10,
    );
    let prefix = prop_oneof![Just("k8s".to_owned()), "[a-z0-9_-]{0,30}", ".{0,10}"];
    runner(4096)
        .run(&(map, prefix), |(opts, prefix)| {
            match VolumeOptions::from_options(&opts, &prefix) {
                Ok(v) => {
                    prop_assert!(options::is_valid_array_name(&v.array_volume));
                    prop_assert!(opts.contains_key(options::BACKEND));
                    if let Some(m) = &v.mount_options {
                        prop_assert!(!m.is_empty());
                    }
                }
                Err(e) => {
                    prop_assert!(
                        OPTION_KEYS.contains(&e.key.as_str()),
                        "error names an unknown key: {e}"
                    );
                    prop_assert!(e.to_string().contains(&e.key));
                    prop_assert!(!e.problem.trim().is_empty());
                }
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn volume_options_written_by_the_provisioner_decode_back() {
    let case = (
        "[a-z0-9]{1,10}",
        "pvc-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        any::<bool>(),
    );
    runner(512)
        .run(&case, |(prefix, pv, block)| {
            let backend = if block {
                options::Backend::Block
            } else {
                options::Backend::File
            };
            let written: BTreeMap<String, String> = options::NewVolumeOptions {
                backend,
                prefix: &prefix,
                pv_name: &pv,
                shared: false,
                labels: "",
                array_endpoint: "10.0.0.1",
                array_id: "",
                create_options: None,
                mount_options: None,
                nfs_endpoint: None,
            }
            .to_options();
            let read = VolumeOptions::from_options(&written, "other").unwrap();
            prop_assert_eq!(read.backend, backend);
            prop_assert_eq!(read.array_volume, format!("{prefix}-{pv}"));
            Ok(())
        })
        .unwrap();
}
