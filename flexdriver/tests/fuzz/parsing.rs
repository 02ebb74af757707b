//! The library's parsing functions under random input (many cases, fast): argv, option JSON,
//! mount requests, the loggable form of options, pod paths and node settings are valid or refused
//! with a reason, never a panic, and secrets never reach what is logged.

use std::ffi::OsString;
use std::path::PathBuf;

use flashvol_flexdriver::kubelet::invocation::{self, Invocation};
use flashvol_flexdriver::kubelet::layout::PodVolume;
use flashvol_flexdriver::kubelet::request::{self, MountRequest};
use flashvol_flexdriver::node::settings::NodeSettings;
use proptest::prelude::*;
use serde_json::Value;

use crate::{
    OPTION_KEYS, invalid_utf8, node_section, option_map, options_text, path_under, runner,
};

#[test]
fn argv_parsing_never_panics_and_explains_every_refusal() {
    let arg = prop_oneof![
        proptest::sample::select(
            &[
                "init",
                "mount",
                "unmount",
                "expandfs",
                "collect",
                "attach",
                "/x/y",
                "pure/flex",
                "{}",
                "",
                "42"
            ][..]
        )
        .prop_map(OsString::from),
        ".{0,40}".prop_map(OsString::from),
        invalid_utf8(),
        options_text().prop_map(OsString::from),
    ];
    let argv = proptest::collection::vec(arg, 0..7);
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
                Ok(Invocation::ExpandFs(call)) => {
                    prop_assert_eq!(args.len(), 6);
                    prop_assert!(call.mount_path.is_absolute());
                    prop_assert!(call.device_path.is_none_or(|d| d.is_absolute()));
                }
                Ok(Invocation::Collect { kubelet_root, .. }) => {
                    prop_assert_eq!(args.len(), 3);
                    prop_assert!(kubelet_root.is_absolute());
                }
                Ok(Invocation::NotSupported(call)) => {
                    prop_assert!(
                        !["init", "mount", "unmount", "expandfs", "collect"]
                            .contains(&call.as_str())
                    );
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
