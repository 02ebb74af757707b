//! Both clients against a scripted HTTPS server, for what the simulator never sends: malformed,
//! truncated and unexpected replies (never a panic, always a named `BadReply`), missing session
//! headers, rotating cookies, endless paging, repeated refusals, tokens echoed back, and an
//! array's self-signed certificate used as the CA file.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use flashvol_common::ArrayError;
use flashvol_common::config::{ApiToken, ClientSettings, FlashArrayConfig, FlashBladeConfig};
use flashvol_common::flasharray::{FlashArray, Qos};
use flashvol_common::flashblade::FlashBlade;
use support::scripted::{Canned, Scripted, Seen};

const TOKEN: &str = "scripted-token-5f1e";
const SESSION: &str = "session=s1; Path=/; HttpOnly; Secure";

fn settings(server: &Scripted) -> ClientSettings {
    ClientSettings {
        ca_file: Some(server.cert_file()),
        insecure_skip_verify: false,
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        retries: 2,
    }
}

fn flasharray(server: &Scripted) -> FlashArray {
    let config = FlashArrayConfig {
        mgmt_endpoint: server.endpoint().parse().expect("endpoint"),
        api_token: ApiToken::new(TOKEN),
        labels: BTreeMap::new(),
    };
    FlashArray::new(&config, &settings(server)).expect("client")
}

fn flashblade(server: &Scripted) -> FlashBlade {
    let config = FlashBladeConfig {
        mgmt_endpoint: server.endpoint().parse().expect("endpoint"),
        api_token: ApiToken::new(TOKEN),
        nfs_endpoint: None,
        labels: BTreeMap::new(),
    };
    FlashBlade::new(&config, &settings(server)).expect("client")
}

/// Version discovery and login as a FlashArray does them; `None` for everything else.
fn fa_session(seen: &Seen) -> Option<Canned> {
    match (seen.method.as_str(), seen.path()) {
        ("GET", "/api/api_version") => {
            Some(Canned::json(200, r#"{"version": ["1.16", "1.19", "2.0"]}"#))
        }
        ("POST", "/api/1.19/auth/session") => Some(
            Canned::json(200, r#"{"username": "pureuser"}"#).with_header("Set-Cookie", SESSION),
        ),
        _ => None,
    }
}

fn fb_session(seen: &Seen) -> Option<Canned> {
    match (seen.method.as_str(), seen.path()) {
        ("GET", "/api/api_version") => {
            Some(Canned::json(200, r#"{"versions": ["1.8.1", "1.12"]}"#))
        }
        ("POST", "/api/login") => Some(
            Canned::json(200, r#"{"username": "pureuser"}"#)
                .with_header("x-auth-token", "fb-session"),
        ),
        _ => None,
    }
}

fn bad_reply_detail<T: std::fmt::Debug>(result: Result<T, ArrayError>) -> String {
    match result {
        Err(ArrayError::BadReply { detail, .. }) => detail,
        other => panic!("expected BadReply, got {other:?}"),
    }
}

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
fn a_login_without_a_session_cookie_is_a_bad_reply() {
    let server = Scripted::start(|seen| match seen.path() {
        "/api/api_version" => Canned::json(200, r#"{"version": ["1.19"]}"#),
        _ => Canned::json(200, r#"{"username": "pureuser"}"#),
    });
    let detail = bad_reply_detail(flasharray(&server).array_info());
    assert!(detail.contains("session cookie"), "{detail}");
}

#[test]
fn a_flashblade_login_without_an_auth_token_header_is_a_bad_reply() {
    let server = Scripted::start(|seen| match seen.path() {
        "/api/api_version" => Canned::json(200, r#"{"versions": ["1.12"]}"#),
        _ => Canned::json(200, r#"{"username": "pureuser"}"#),
    });
    let detail = bad_reply_detail(flashblade(&server).space());
    assert!(detail.contains("x-auth-token"), "{detail}");
}

#[test]
fn the_session_cookie_follows_every_set_cookie() {
    // The array rotates the session on each reply and accepts only the newest one.
    let current = std::sync::Arc::new(AtomicU64::new(1));
    let server = {
        let current = std::sync::Arc::clone(&current);
        Scripted::start(move |seen| {
            if let Some(reply) = fa_session(seen) {
                return reply;
            }
            let expected = format!("session=s{}", current.load(Ordering::SeqCst));
            if seen.header("cookie") != Some(expected.as_str()) {
                return Canned::json(401, r#"[{"msg": "Invalid session."}]"#);
            }
            let next = current.fetch_add(1, Ordering::SeqCst) + 1;
            Canned::json(
                200,
                r#"{"array_name": "fa", "id": "i", "version": "6.1.0"}"#,
            )
            .with_header("Set-Cookie", &format!("session=s{next}; Path=/; HttpOnly"))
        })
    };
    let fa = flasharray(&server);
    for _ in 0..4 {
        fa.array_info().expect("call with the rotated cookie");
    }
    assert_eq!(fa.stats().authentications, 1);
    assert_eq!(current.load(Ordering::SeqCst), 5);
}

#[test]
fn a_second_401_after_logging_in_again_is_an_auth_error() {
    let server = Scripted::start(|seen| {
        fa_session(seen).unwrap_or_else(|| Canned::json(401, r#"[{"msg": "Session expired."}]"#))
    });
    let fa = flasharray(&server);
    let err = fa.list_ports().expect_err("refused twice");
    assert!(matches!(err, ArrayError::Auth { .. }), "{err:?}");
    assert_eq!(fa.stats().authentications, 2);
    assert_eq!(server.count("GET", "/port"), 2);
}

#[test]
fn a_flashblade_403_triggers_exactly_one_new_login() {
    let server = Scripted::start(|seen| {
        fb_session(seen)
            .unwrap_or_else(|| Canned::json(403, r#"{"errors": [{"message": "Forbidden."}]}"#))
    });
    let fb = flashblade(&server);
    let err = fb.data_vips().expect_err("refused twice");
    assert!(matches!(err, ArrayError::Auth { .. }), "{err:?}");
    assert_eq!(fb.stats().authentications, 2);
    assert_eq!(server.count("POST", "/api/login"), 2);
    let sent = server.seen();
    let vips: Vec<&Seen> = sent
        .iter()
        .filter(|s| s.path().ends_with("network-interfaces"))
        .collect();
    assert!(
        vips.iter()
            .all(|s| s.header("x-auth-token") == Some("fb-session"))
    );
}

#[test]
fn http_450_on_a_version_the_array_still_offers_is_an_error_not_a_loop() {
    let server = Scripted::start(|seen| {
        fa_session(seen)
            .unwrap_or_else(|| Canned::json(450, r#"[{"msg": "Unsupported version."}]"#))
    });
    let err = flasharray(&server).array_info().expect_err("450");
    assert!(
        matches!(err, ArrayError::Api { status: 450, .. }),
        "{err:?}"
    );
    assert_eq!(server.count("GET", "/api/api_version"), 2);
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

#[test]
fn requests_carry_parameters_where_the_array_expects_them() {
    let server = Scripted::start(|seen| {
        fa_session(seen).unwrap_or_else(|| match (seen.method.as_str(), seen.path()) {
            ("GET", "/api/1.19/volume") => Canned::json(200, "[]"),
            ("DELETE", _) | ("PUT", _) => Canned::json(200, r#"{"name": "v"}"#),
            _ => Canned::json(200, r#"{"name": "v", "size": 1, "serial": "S"}"#),
        })
    });
    let fa = flasharray(&server);
    fa.list_volumes("k8s-pvc-*", true).expect("list");
    fa.create_volume(
        "v",
        1 << 30,
        &Qos {
            bandwidth_limit: Some(1 << 20),
            iops_limit: None,
        },
    )
    .expect("create");
    fa.eradicate_volume("v").expect("eradicate");
    fa.set_qos("v", &Qos::default()).expect("clear QoS");
    let seen = server.seen();
    let find = |method: &str, path: &str| {
        seen.iter()
            .find(|s| s.method == method && s.path() == path)
            .unwrap_or_else(|| panic!("no {method} {path} in {seen:?}"))
            .clone()
    };
    let login = find("POST", "/api/1.19/auth/session");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&login.body).expect("json")["api_token"],
        TOKEN
    );
    let list = find("GET", "/api/1.19/volume");
    assert!(
        list.query().contains("names=k8s-pvc-%2A") || list.query().contains("names=k8s-pvc-*"),
        "{}",
        list.query()
    );
    assert!(
        list.query().contains("pending=true") && list.query().contains("limit=1000"),
        "{}",
        list.query()
    );
    assert_eq!(list.header("cookie"), Some("session=s1"));
    let create = find("POST", "/api/1.19/volume/v");
    let body: serde_json::Value = serde_json::from_str(&create.body).expect("json body");
    assert_eq!(
        body,
        serde_json::json!({"size": 1u64 << 30, "bandwidth_limit": 1u64 << 20})
    );
    assert_eq!(
        find("DELETE", "/api/1.19/volume/v").query(),
        "eradicate=true"
    );
    let put = find("PUT", "/api/1.19/volume/v");
    let body: serde_json::Value = serde_json::from_str(&put.body).expect("json body");
    assert_eq!(
        body,
        serde_json::json!({"bandwidth_limit": "", "iops_limit": ""})
    );
    assert!(
        seen.iter().all(|s| !s.target.contains(TOKEN)),
        "token never in a URL"
    );
}

#[test]
fn a_token_the_array_echoes_back_is_redacted() {
    let server = Scripted::start(|seen| match seen.path() {
        "/api/api_version" => Canned::json(200, r#"{"version": ["1.19"]}"#),
        _ => Canned::json(
            401,
            &format!(r#"[{{"msg": "Invalid API token {TOKEN}.", "ctx": "{TOKEN}"}}]"#),
        ),
    });
    let fa = flasharray(&server);
    let err = fa.array_info().expect_err("refused");
    assert!(matches!(err, ArrayError::Auth { .. }), "{err:?}");
    for text in [err.to_string(), format!("{err:?}"), format!("{fa:?}")] {
        assert!(!text.contains(TOKEN), "token leaked: {text}");
        assert!(!text.is_empty());
    }
    assert!(err.to_string().contains("<redacted>"), "{err}");
}

#[test]
fn consecutive_calls_reuse_one_connection() {
    let server = Scripted::start(|seen| {
        fa_session(seen).unwrap_or_else(|| {
            Canned::json(
                200,
                r#"{"array_name": "fa", "id": "i", "version": "6.1.0"}"#,
            )
        })
    });
    let fa = flasharray(&server);
    for _ in 0..10 {
        fa.array_info().expect("call");
    }
    // version discovery, login and ten calls over one kept-alive TLS connection
    assert_eq!(fa.stats().calls, 12);
    assert_eq!(server.connections(), 1);
}

#[test]
fn an_arrays_own_self_signed_certificate_works_as_the_ca_file() {
    let server = Scripted::start(|seen| {
        fb_session(seen).unwrap_or_else(|| {
            Canned::json(
                200,
                r#"{"items": [{"name": "fb", "id": "i", "version": "3.3.0"}]}"#,
            )
        })
    });
    assert_eq!(
        flashblade(&server).array_info().expect("trusted").name,
        "fb"
    );
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
