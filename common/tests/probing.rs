//! What an array tells before any login (`hello`: the REST version and its clock), and how a
//! failed TLS handshake is reported: what `flashvol-flex doctor` needs to tell an unreachable
//! array, an untrusted certificate, an unusable REST version and a refused token apart.

mod support;

use std::time::{Duration, SystemTime};

use flashvol_common::ArrayError;
use flashvol_common::config::ClientSettings;
use flashvol_common::flasharray::FlashArray;
use flashvol_common::flashblade::FlashBlade;
use support::Sim;

/// How far apart the simulator's `Date` and this clock may be: same machine, whole seconds.
const SAME_CLOCK: Duration = Duration::from_secs(60);

fn apart(a: SystemTime, b: SystemTime) -> Duration {
    a.duration_since(b).unwrap_or_else(|e| e.duration())
}

#[test]
fn hello_tells_a_flasharrays_version_and_clock_without_logging_in() {
    let sim = Sim::flasharray();
    let fa = FlashArray::new(&sim.fa_config("sim-token-fa"), &sim.settings()).expect("client");
    let hello = fa.hello().expect("hello");
    assert_eq!(
        (hello.version.as_str(), hello.newest_supported.as_str()),
        ("1.19", "1.19")
    );
    let clock = hello.clock.expect("the simulator sends Date");
    assert!(
        apart(clock, SystemTime::now()) < SAME_CLOCK,
        "Date read as {clock:?}"
    );
    assert_eq!(fa.stats().authentications, 0, "hello needs no login");
    assert_eq!(fa.api_version(), None, "hello leaves the session alone");
}

#[test]
fn hello_tells_a_flashblades_version_and_clock_without_logging_in() {
    let sim = Sim::flashblade();
    let fb = FlashBlade::new(&sim.fb_config("sim-token-fb"), &sim.settings()).expect("client");
    let hello = fb.hello().expect("hello");
    assert_eq!(
        (hello.version.as_str(), hello.newest_supported.as_str()),
        ("1.12", "1.12")
    );
    let clock = hello.clock.expect("the simulator sends Date");
    assert!(
        apart(clock, SystemTime::now()) < SAME_CLOCK,
        "Date read as {clock:?}"
    );
    assert_eq!(fb.stats().authentications, 0, "hello needs no login");
}

#[test]
fn an_untrusted_certificate_is_a_tls_failure_and_is_not_retried() {
    let sim = Sim::flasharray();
    let no_ca = ClientSettings {
        ca_file: None,
        retries: 2,
        ..sim.settings()
    };
    let fa = FlashArray::new(&sim.fa_config("sim-token-fa"), &no_ca).expect("client");
    match fa
        .hello()
        .expect_err("a self-signed certificate is refused")
    {
        ArrayError::Transport {
            tls,
            timed_out,
            message,
            ..
        } => {
            assert!(tls && !timed_out, "{message}");
            assert!(message.starts_with("TLS: "), "{message}");
        }
        other => panic!("expected a TLS transport error, got {other:?}"),
    }
    assert_eq!(
        fa.stats().calls,
        1,
        "it would fail the same way again: one attempt"
    );
}
