//! What goes over the wire: parameters where each array expects them, a token the array echoes
//! back redacted, one connection for consecutive calls (and one per concurrent caller), and an array's self-signed certificate
//! as the CA file.

use flashvol_common::ArrayError;
use flashvol_common::flasharray::Qos;

use crate::support::scripted::{Canned, Scripted};
use crate::{TOKEN, fa_session, fb_session, flasharray, flashblade};

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

/// A FlashArray that answers every call after the login with its array info.
fn array_info_server() -> Scripted {
    Scripted::start(|seen| {
        fa_session(seen).unwrap_or_else(|| {
            Canned::json(
                200,
                r#"{"array_name": "fa", "id": "i", "version": "6.1.0"}"#,
            )
        })
    })
}

#[test]
fn consecutive_calls_reuse_one_connection() {
    let server = array_info_server();
    let fa = flasharray(&server);
    for _ in 0..10 {
        fa.array_info().expect("call");
    }
    // version discovery, login and ten calls over one kept-alive TLS connection
    assert_eq!(fa.stats().calls, 12);
    assert_eq!(server.connections(), 1);
}

#[test]
fn a_reply_many_times_the_connection_buffer_is_read_whole() {
    const VOLUMES: usize = 4000;
    let list: Vec<String> = (0..VOLUMES)
        .map(|i| {
            format!(r#"{{"name": "k8s-pvc-{i:05}", "size": 1073741824, "serial": "S{i:023}"}}"#)
        })
        .collect();
    let body = format!("[{}]", list.join(","));
    assert!(body.len() > 256 * 1024, "{} bytes", body.len());
    let server =
        Scripted::start(move |seen| fa_session(seen).unwrap_or_else(|| Canned::json(200, &body)));
    let volumes = flasharray(&server)
        .list_volumes("k8s-pvc-*", false)
        .expect("list");
    assert_eq!(volumes.len(), VOLUMES);
    assert_eq!(
        volumes[VOLUMES - 1].name,
        format!("k8s-pvc-{:05}", VOLUMES - 1)
    );
}

#[test]
fn concurrent_calls_keep_their_connections_for_the_next_ones() {
    const CALLERS: usize = 16;
    let server = array_info_server();
    let fa = flasharray(&server);
    fa.array_info().expect("first call logs in");
    let round = std::sync::Barrier::new(CALLERS);
    std::thread::scope(|scope| {
        for _ in 0..CALLERS {
            scope.spawn(|| {
                for _ in 0..10 {
                    round.wait();
                    fa.array_info().expect("call");
                }
            });
        }
    });
    // At most one connection per caller at once; after a round every one of them is idle and
    // kept for the next round, so ten rounds cost no more connections than one.
    let connections = server.connections();
    assert!(
        connections <= CALLERS + 1,
        "{connections} connections for {CALLERS} callers"
    );
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
