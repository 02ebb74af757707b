//! Logging setup: env_logger on stderr, `RUST_LOG` over `--debug`, and a ceiling for the HTTP and
//! TLS libraries.
//!
//! At trace, ureq hex-dumps the raw traffic to the arrays (the FlashBlade `api-token` login
//! header, session cookies). Tokens must never reach the log, so those libraries get at most
//! debug, whatever `RUST_LOG` says.

use log::LevelFilter;

/// Crates whose trace output carries request headers or bodies.
const WIRE_LOGGING_CRATES: &[&str] = &[
    "ureq",
    "ureq_proto",
    "rustls",
    "hyper",
    "hyper_util",
    "h2",
    "tower",
    "kube_client",
];

/// Builds the logger from `filters` (`RUST_LOG` syntax), or `default` when there are none.
pub fn build(filters: Option<&str>, default: LevelFilter) -> env_logger::Logger {
    let builder = |cap: bool| {
        let mut b = env_logger::Builder::new();
        b.filter_level(default).format_timestamp_millis();
        if let Some(f) = filters {
            b.parse_filters(f);
        }
        if cap {
            for krate in WIRE_LOGGING_CRATES {
                b.filter_module(krate, LevelFilter::Debug);
            }
        }
        b
    };
    // Only cap when something asks for trace: below that the libraries follow the filters as given.
    if builder(false).build().filter() == LevelFilter::Trace {
        builder(true).build()
    } else {
        builder(false).build()
    }
}

/// Installs the logger: `RUST_LOG` if set, else info (debug with `--debug`).
pub fn init(debug: bool) {
    let default = if debug {
        LevelFilter::Debug
    } else {
        LevelFilter::Info
    };
    let filters = std::env::var("RUST_LOG")
        .ok()
        .filter(|f| !f.trim().is_empty());
    let logger = build(filters.as_deref(), default);
    let max = logger.filter();
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use log::{Level, Log, Metadata};

    fn enabled(logger: &env_logger::Logger, target: &str, level: Level) -> bool {
        logger.enabled(&Metadata::builder().target(target).level(level).build())
    }

    #[test]
    fn http_libraries_never_log_at_trace_even_when_asked() {
        for filters in [
            "trace",
            "info,ureq_proto=trace",
            "ureq=trace,flashvol_provisioner=trace",
        ] {
            let logger = build(Some(filters), LevelFilter::Info);
            assert!(
                !enabled(&logger, "ureq_proto::util", Level::Trace),
                "{filters}"
            );
            assert!(
                !enabled(&logger, "ureq::unversioned", Level::Trace),
                "{filters}"
            );
        }
        let logger = build(Some("trace"), LevelFilter::Info);
        assert!(enabled(&logger, "ureq_proto::util", Level::Debug));
        assert!(enabled(
            &logger,
            "flashvol_provisioner::reconcile::provision",
            Level::Trace
        ));
    }

    #[test]
    fn below_trace_the_filters_apply_as_given() {
        let logger = build(None, LevelFilter::Info);
        assert!(
            !enabled(&logger, "ureq_proto::util", Level::Debug),
            "no cap raises a library"
        );
        assert!(enabled(
            &logger,
            "flashvol_provisioner::reconcile::provision",
            Level::Info
        ));
        let logger = build(None, LevelFilter::Debug);
        assert!(enabled(
            &logger,
            "flashvol_provisioner::reconcile::provision",
            Level::Debug
        ));
        let logger = build(Some("warn"), LevelFilter::Debug);
        assert!(
            !enabled(
                &logger,
                "flashvol_provisioner::reconcile::provision",
                Level::Info
            ),
            "RUST_LOG wins"
        );
    }
}
