//! Logging in and staying logged in: missing session headers, rotating cookies, a second refusal
//! after logging in again, FlashBlade's 403, and FlashArray's 450 on a version it still offers.

use std::sync::atomic::{AtomicU64, Ordering};

use flashvol_common::ArrayError;

use crate::support::scripted::{Canned, Scripted, Seen};
use crate::{bad_reply_detail, fa_session, fb_session, flasharray, flashblade};

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
