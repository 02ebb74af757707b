//! What fails and how: a wrong token (never shown), server errors and dropped connections retried
//! for reads but never for creates, a slow array timed out within the deadline, TLS trusted only
//! through the configured CA, and empty names refused before anything is sent.

use std::time::{Duration, Instant};

use flashvol_arraysim::{FaultAction, Faults};
use flashvol_common::ArrayError;
use flashvol_common::config::ClientSettings;
use flashvol_common::flasharray::{FlashArray, Qos};

use crate::support::Sim;
use crate::{GIB, TOKEN, client, iqn, rule};

#[test]
fn a_wrong_token_is_an_auth_error_that_never_shows_the_token() {
    let sim = Sim::flasharray();
    let secret = "wrong-token-0123456789";
    let fa = FlashArray::new(&sim.fa_config(secret), &sim.settings()).expect("client");
    let err = fa.array_info().expect_err("refused");
    assert!(matches!(err, ArrayError::Auth { .. }), "{err:?}");
    assert!(!err.is_transient());
    assert_eq!(fa.stats().authentications, 1);
    for text in [err.to_string(), format!("{err:?}"), format!("{fa:?}")] {
        assert!(!text.contains(secret), "token leaked: {text}");
    }
    let good = client(&sim);
    good.array_info().expect("good token");
    assert!(!format!("{good:?}").contains(TOKEN));
}

#[test]
fn gets_are_retried_through_server_errors() {
    let sim = Sim::flasharray();
    let fa = client(&sim);
    fa.create_volume("v", GIB, &Qos::default()).expect("create");
    let before = sim.calls("GET volume/{name}");
    sim.faults(rule(
        "GET",
        "/api/*/volume/v",
        2,
        FaultAction::Status { status: 503 },
    ));
    assert_eq!(fa.get_volume("v").expect("get through two 503s").name, "v");
    assert_eq!(sim.calls("GET volume/{name}") - before, 3);
}

#[test]
fn retries_are_bounded_and_the_last_server_error_surfaces() {
    let sim = Sim::flasharray();
    let fa = client(&sim);
    fa.array_info().expect("log in");
    sim.faults(rule(
        "GET",
        "/api/*/array",
        10,
        FaultAction::Status { status: 500 },
    ));
    let err = fa.array_info().expect_err("keeps failing");
    assert!(
        matches!(err, ArrayError::Api { status: 500, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(
        sim.calls("GET array"),
        1 + 3,
        "one call, then 1 + retries(2) attempts"
    );
}

#[test]
fn dropped_connections_are_retried_for_gets() {
    let sim = Sim::flasharray();
    let fa = client(&sim);
    fa.array_info().expect("log in");
    sim.faults(rule("GET", "/api/*/port", 1, FaultAction::Drop));
    assert!(!fa.list_ports().expect("ports after a drop").is_empty());
    assert_eq!(sim.calls("GET port"), 2);
}

#[test]
fn creates_are_never_retried_blindly() {
    let sim = Sim::flasharray();
    let fa = client(&sim);
    fa.array_info().expect("log in");
    sim.faults(rule(
        "POST",
        "/api/*/volume/*",
        1,
        FaultAction::Status { status: 503 },
    ));
    let err = fa
        .create_volume("once", GIB, &Qos::default())
        .expect_err("503");
    assert!(
        matches!(err, ArrayError::Api { status: 503, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(sim.calls("POST volume/{name}"), 1);

    sim.faults(rule("POST", "/api/*/host/*", 1, FaultAction::Drop));
    let err = fa.create_host("h", &iqn(1)).expect_err("dropped");
    assert!(
        matches!(
            err,
            ArrayError::Transport {
                timed_out: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(sim.calls("POST host/{name}"), 1);
}

#[test]
fn a_slow_array_times_out_within_the_deadline() {
    let sim = Sim::flasharray();
    let deadline = Duration::from_millis(600);
    let settings = ClientSettings {
        request_timeout: deadline,
        ..sim.settings()
    };
    let fa = FlashArray::new(&sim.fa_config(TOKEN), &settings).expect("client");
    fa.array_info().expect("log in");
    sim.faults(Faults {
        latency_ms: 3_000,
        ..Faults::default()
    });
    let started = Instant::now();
    let err = fa.get_volume("whatever").expect_err("timeout");
    let took = started.elapsed();
    assert!(
        matches!(
            err,
            ArrayError::Transport {
                timed_out: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());
    // Not retried: one deadline, plus scheduling slack on a loaded machine.
    assert!(
        took >= deadline && took < deadline + Duration::from_secs(1),
        "took {took:?}"
    );
    sim.faults(Faults::default());
}

#[test]
fn tls_is_verified_against_the_configured_ca_only() {
    let sim = Sim::flasharray();
    let no_ca = ClientSettings {
        ca_file: None,
        ..sim.settings()
    };
    let fa = FlashArray::new(&sim.fa_config(TOKEN), &no_ca).expect("client");
    let err = fa
        .array_info()
        .expect_err("self-signed certificate refused");
    match &err {
        ArrayError::Transport {
            timed_out, message, ..
        } => {
            assert!(!timed_out);
            assert!(
                message.to_lowercase().contains("certificate") || message.contains("TLS"),
                "{message}"
            );
        }
        other => panic!("expected Transport, got {other:?}"),
    }
    assert_eq!(
        fa.stats().authentications,
        0,
        "nothing was sent before verification"
    );

    let insecure = ClientSettings {
        ca_file: None,
        insecure_skip_verify: true,
        ..sim.settings()
    };
    let fa = FlashArray::new(&sim.fa_config(TOKEN), &insecure).expect("client");
    fa.array_info().expect("insecure opt-in works");
}

#[test]
fn an_unusable_ca_file_is_refused_at_construction_naming_the_file() {
    let sim = Sim::flasharray();
    let dir = tempfile::tempdir().expect("tempdir");
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").expect("write");
    for path in [junk, dir.path().join("missing.pem")] {
        let settings = ClientSettings {
            ca_file: Some(path.clone()),
            ..sim.settings()
        };
        match FlashArray::new(&sim.fa_config(TOKEN), &settings) {
            Err(err @ ArrayError::InvalidInput { .. }) => {
                assert!(
                    err.to_string().contains(&path.display().to_string()),
                    "{err}"
                )
            }
            other => panic!("expected InvalidInput, got {:?}", other.err()),
        }
    }
}

#[test]
fn empty_names_are_refused_before_anything_is_sent() {
    let sim = Sim::flasharray();
    let fa = client(&sim);
    assert!(matches!(
        fa.get_volume(""),
        Err(ArrayError::InvalidInput { .. })
    ));
    assert!(matches!(
        fa.create_host("", &iqn(1)),
        Err(ArrayError::InvalidInput { .. })
    ));
    assert!(matches!(
        fa.rename_volume("a", ""),
        Err(ArrayError::InvalidInput { .. })
    ));
    assert_eq!(fa.stats().calls, 0);
}
