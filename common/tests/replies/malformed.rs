//! Malformed, truncated and unexpected replies, fixed and random: never a panic, always a named
//! `BadReply` (or a value), never the token in what the error shows; paging that never ends is
//! refused too.

use flashvol_common::ArrayError;
use flashvol_common::flasharray::Qos;

use crate::support::scripted::{Canned, Scripted, Seen};
use crate::{TOKEN, bad_reply_detail, fa_session, fb_session, flasharray, flashblade};

#[test]
fn malformed_flasharray_replies_are_bad_replies_naming_the_problem() {
    let server = Scripted::start(|seen| {
        fa_session(seen).unwrap_or_else(|| match (seen.path(), seen.query()) {
            ("/api/1.19/array", "") => Canned::json(200, r#"{"array_name": "fa", "id": "#),
            ("/api/1.19/array", _) => Canned::json(200, "[]"),
            ("/api/1.19/volume/v", q) if q.contains("qos") => {
                Canned::json(200, r#"{"name": "v", "bandwidth_limit": true}"#)
            }
            ("/api/1.19/volume/v", _) => {
                Canned::json(200, r#"{"name": "v", "size": "big", "serial": "S"}"#)
            }
            ("/api/1.19/volume/v/host", _) => Canned::json(200, r#"[{"host": "h", "name": "v"}]"#),
            ("/api/1.19/host", _) => Canned::json(200, r#"{"name": "not a list"}"#),
            ("/api/1.19/port", _) => Canned::json(200, "<html>gateway</html>"),
            ("/api/1.19/host/h/volume/v", _) => Canned::json(200, ""),
            _ => Canned::json(404, r#"[{"msg": "no such route"}]"#),
        })
    });
    let fa = flasharray(&server);
    assert!(bad_reply_detail(fa.array_info()).starts_with("truncated JSON"));
    assert_eq!(bad_reply_detail(fa.space()), "empty list");
    assert!(bad_reply_detail(fa.get_volume("v")).contains("invalid type"));
    assert!(bad_reply_detail(fa.get_qos("v")).contains("limit"));
    assert!(bad_reply_detail(fa.list_volume_connections("v")).contains("lun"));
    assert!(bad_reply_detail(fa.list_hosts()).contains("invalid type"));
    assert!(bad_reply_detail(fa.list_ports()).contains("expected value"));
    assert_eq!(
        bad_reply_detail(fa.connect_host("h", "v", None)),
        "empty body"
    );
    let err = fa.get_host("nowhere").expect_err("404");
    assert!(
        matches!(err, ArrayError::Api { status: 404, .. }),
        "{err:?}"
    );
    assert_eq!(
        fa.stats().authentications,
        1,
        "bad replies do not disturb the session"
    );
}

#[test]
fn malformed_flashblade_replies_are_bad_replies_naming_the_problem() {
    let server = Scripted::start(|seen| {
        fb_session(seen).unwrap_or_else(|| match seen.path() {
            "/api/1.12/arrays" => Canned::json(200, r#"{"items": []}"#),
            "/api/1.12/arrays/space" => Canned::json(200, r#"{"items": [{"capacity": 10}]}"#),
            "/api/1.12/file-systems" => Canned::json(200, r#"{"items": "nope"}"#),
            "/api/1.12/network-interfaces" => {
                Canned::json(200, r#"{"items": [{"address": "10.0.0.1"}]}"#)
            }
            "/api/1.12/file-system-snapshots" => Canned::json(200, "{\"items\": [{\"name\""),
            _ => Canned::json(404, r#"{"errors": [{"message": "no such route"}]}"#),
        })
    });
    let fb = flashblade(&server);
    assert_eq!(bad_reply_detail(fb.array_info()), "no items in the reply");
    assert!(bad_reply_detail(fb.space()).contains("space"));
    assert!(bad_reply_detail(fb.get_file_system("fs")).contains("invalid type"));
    assert!(bad_reply_detail(fb.data_vips()).contains("name"));
    assert!(bad_reply_detail(fb.list_snapshots("fs")).starts_with("truncated JSON"));
    assert_eq!(fb.api_version().as_deref(), Some("1.12"));
}

#[test]
fn a_paging_token_that_repeats_is_a_bad_reply_not_an_endless_loop() {
    let server = Scripted::start(|seen| {
        fa_session(seen).unwrap_or_else(|| {
            Canned::json(200, r#"[{"name": "v", "size": 1, "serial": "S"}]"#)
                .with_header("x-next-token", "same")
        })
    });
    let detail = bad_reply_detail(flasharray(&server).list_volumes("v*", false));
    assert!(detail.contains("repeated"), "{detail}");
}

/// What the scripted server answers to every non-login call in the property below.
type Reply = std::sync::Arc<std::sync::Mutex<(u16, Vec<u8>)>>;

fn random_reply_server(reply: &Reply, session: fn(&Seen) -> Option<Canned>) -> Scripted {
    let reply = std::sync::Arc::clone(reply);
    Scripted::start(move |seen| {
        session(seen).unwrap_or_else(|| {
            let (status, body) = reply.lock().map(|r| r.clone()).unwrap_or_default();
            Canned {
                status,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body,
            }
        })
    })
}

/// Reply bodies: arbitrary JSON built from the arrays' own field names, valid replies with one
/// field broken, truncations, and raw bytes.
fn reply_body() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    use serde_json::Value;
    const FIELDS: &[&str] = &[
        "name",
        "size",
        "serial",
        "created",
        "source",
        "time_remaining",
        "host",
        "lun",
        "iqn",
        "wwn",
        "nqn",
        "hgroup",
        "wwns",
        "iqns",
        "items",
        "continuation_token",
        "total_item_count",
        "pagination_info",
        "capacity",
        "total",
        "space",
        "provisioned",
        "destroyed",
        "nfs",
        "enabled",
        "rules",
        "address",
        "services",
        "id",
        "bandwidth_limit",
        "iops_limit",
        "version",
        "versions",
        "array_name",
        "errors",
        "msg",
        "message",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e20f64..1e20).prop_map(Value::from),
        ".{0,16}".prop_map(Value::from),
        Just(Value::from("k8s-pvc-1")),
    ];
    let json = leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            proptest::collection::btree_map(
                prop_oneof![4 => proptest::sample::select(FIELDS).prop_map(String::from), 1 => ".{0,8}"],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    prop_oneof![
        4 => json.clone().prop_map(|v| serde_json::to_vec(&v).unwrap_or_default()),
        2 => (json.clone(), proptest::sample::select(FIELDS)).prop_map(|(v, field)| {
            // A plausible list reply (both dialects) whose items carry the random value.
            serde_json::to_vec(&serde_json::json!({"items": [{ field: v.clone() }], "total_item_count": 1}))
                .unwrap_or_default()
        }),
        1 => (json, any::<prop::sample::Index>()).prop_map(|(v, cut)| {
            let text = serde_json::to_vec(&serde_json::json!([v])).unwrap_or_default();
            text[..cut.index(text.len() + 1).min(text.len())].to_vec()
        }),
        1 => proptest::collection::vec(any::<u8>(), 0..256),
    ]
}

#[test]
fn random_reply_bodies_are_errors_or_values_never_panics_and_never_show_the_token() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let reply: Reply = std::sync::Arc::new(std::sync::Mutex::new((200, Vec::new())));
    let fa_server = random_reply_server(&reply, fa_session);
    let fb_server = random_reply_server(&reply, fb_session);
    let fa = flasharray(&fa_server);
    let fb = flashblade(&fb_server);
    // 5xx would only add the clients' retry pauses; 401/403 are the re-login paths tested above.
    let status = proptest::sample::select(&[200u16, 200, 200, 400, 404, 409][..]);
    let mut runner = TestRunner::new(Config {
        // Each case makes 18 HTTPS calls: 32 cases (576 random replies) take about 20 s on a
        // loaded 2-core machine.
        cases: 32,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&(status, reply_body()), |(status, body)| {
            *reply.lock().map_err(|_| TestCaseError::fail("poisoned"))? = (status, body);
            let outcomes: Vec<Result<String, ArrayError>> = vec![
                fa.array_info().map(|v| format!("{v:?}")),
                fa.space().map(|v| format!("{v:?}")),
                fa.get_volume("v").map(|v| format!("{v:?}")),
                fa.list_volumes("k8s-pvc-*", false)
                    .map(|v| format!("{v:?}")),
                fa.create_volume("v", 1 << 30, &Qos::default())
                    .map(|v| format!("{v:?}")),
                fa.get_qos("v").map(|v| format!("{v:?}")),
                fa.list_hosts().map(|v| format!("{v:?}")),
                fa.connect_host("h", "v", None).map(|v| format!("{v:?}")),
                fa.list_volume_connections("v").map(|v| format!("{v:?}")),
                fa.list_ports().map(|v| format!("{v:?}")),
                fa.destroy_volume("v").map(|v| format!("{v:?}")),
                fb.array_info().map(|v| format!("{v:?}")),
                fb.space().map(|v| format!("{v:?}")),
                fb.get_file_system("fs").map(|v| format!("{v:?}")),
                fb.list_file_systems("k8s-pvc-*").map(|v| format!("{v:?}")),
                fb.data_vips().map(|v| format!("{v:?}")),
                fb.list_snapshots("fs").map(|v| format!("{v:?}")),
                fb.destroy_file_system("fs").map(|v| format!("{v:?}")),
            ];
            for outcome in outcomes {
                if let Err(e) = outcome {
                    let text = format!("{e} {e:?}");
                    prop_assert!(!text.contains(TOKEN), "token in {text}");
                    prop_assert!(!e.to_string().trim().is_empty());
                }
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    // Every reply was read on the sessions opened at the start: bad bodies never force a login.
    assert_eq!(fa.stats().authentications, 1);
}
