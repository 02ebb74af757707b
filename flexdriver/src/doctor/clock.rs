//! Clock skew between this node and each array, from the `Date` header of the array's
//! unauthenticated `GET /api/api_version` ([`flashvol_common::flasharray::Hello`]). Skew does not
//! stop mounts, but it breaks reading the node's and the array's logs side by side and makes a
//! freshly issued array certificate look "not yet valid".

use std::time::{Duration, SystemTime};

use super::Finding;

pub const IDS: &[&str] = &["clock.skew"];

/// More than this apart means a clock is not synchronised (NTP keeps them within milliseconds).
pub const MAX_SKEW: Duration = Duration::from_secs(10);

/// The array's clock and when this node asked and heard back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// From the `Date` header: whole seconds, rounded down.
    pub array: SystemTime,
    pub sent: SystemTime,
    pub received: SystemTime,
}

/// Seconds the array is ahead of this node (negative: behind), and how sure that is.
pub fn skew(r: &Reading) -> (f64, f64) {
    let secs = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    };
    let round_trip = (secs(r.received) - secs(r.sent)).max(0.0);
    let middle = secs(r.sent) + round_trip / 2.0;
    // The header drops the fraction: the array's clock was up to a second later than it says.
    let skew = secs(r.array) + 0.5 - middle;
    (skew, round_trip / 2.0 + 0.5)
}

pub fn judge(subject: &str, reading: Option<Reading>) -> Finding {
    const ID: &str = "clock.skew";
    let Some(reading) = reading else {
        return Finding::skip(ID, "the array sent no Date header").about(subject);
    };
    let (skew, error) = skew(&reading);
    let way = if skew >= 0.0 { "ahead of" } else { "behind" };
    let saw = format!(
        "the array's clock is {:.1}s {way} this node's (±{error:.1}s)",
        skew.abs()
    );
    if skew.abs() - error > MAX_SKEW.as_secs_f64() {
        Finding::warn(
            ID,
            saw,
            "synchronise this node's clock and the array's with NTP (timedatectl status; the array's NTP servers: purearray list --ntpserver)",
        )
        .about(subject)
    } else {
        Finding::pass(ID, saw).about(subject)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    fn at(secs: u64, millis: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    #[test]
    fn skew_is_measured_from_the_middle_of_the_request() {
        let (s, e) = skew(&Reading {
            array: at(1_000, 0),
            sent: at(1_000, 100),
            received: at(1_000, 300),
        });
        assert!((s - 0.3).abs() < 1e-6, "{s}");
        assert!((e - 0.6).abs() < 1e-6, "{e}");
    }

    #[test]
    fn only_skew_beyond_the_limit_and_the_error_warns() {
        let reading = |array| Reading {
            array,
            sent: at(1_000, 0),
            received: at(1_000, 200),
        };
        assert_eq!(judge("a", Some(reading(at(1_005, 0)))).status, Status::Pass);
        let ahead = judge("a", Some(reading(at(1_030, 0))));
        assert_eq!(ahead.status, Status::Warn);
        assert!(ahead.saw.contains("ahead"), "{}", ahead.saw);
        let behind = judge("a", Some(reading(at(900, 0))));
        assert!(behind.saw.contains("behind"), "{}", behind.saw);
        assert_eq!(judge("a", None).status, Status::Skip);
    }
}
