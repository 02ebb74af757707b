//! The command line: every flag, also settable by a `FLASHVOL_*` environment variable, its
//! checks across flags, and PSO's glog flags that are accepted and dropped.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::bail;
use clap::{ArgAction, Parser};

use flashvol_common::config::Config;

/// Dynamic provisioner for `pure-provisioner` StorageClasses: FlashArray volumes and FlashBlade
/// file systems as flex PVs.
#[derive(Debug, Clone, Parser)]
#[command(name = "flashvol-provisioner", version)]
pub struct Args {
    #[command(flatten)]
    pub instance: Instance,

    /// Kubernetes API requests per second (token bucket refill; 0 = unlimited).
    #[arg(long, env = "FLASHVOL_KUBE_API_QPS", default_value_t = 200.0)]
    pub kube_api_qps: f64,

    /// Kubernetes API burst (token bucket size).
    #[arg(long, env = "FLASHVOL_KUBE_API_BURST", default_value_t = 400)]
    pub kube_api_burst: u32,

    /// Concurrent reconciles, for claims and for PVs each.
    #[arg(long, env = "FLASHVOL_WORKERS", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: u16,

    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "FLASHVOL_HTTP_ADDRESS", default_value = "0.0.0.0:8080")]
    pub http_address: SocketAddr,

    /// Run leader election so only one replica acts.
    #[arg(long, env = "FLASHVOL_LEADER_ELECTION", default_value_t = true, action = ArgAction::Set)]
    pub leader_election: bool,

    /// Namespace of the Lease. Default: $POD_NAMESPACE, else the service account's namespace,
    /// else `default`.
    #[arg(long, env = "FLASHVOL_LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,

    /// Name of the Lease.
    #[arg(
        long,
        env = "FLASHVOL_LEADER_ELECTION_NAME",
        default_value = "pure-provisioner"
    )]
    pub leader_election_name: String,

    /// Lease duration in seconds: how long a dead leader blocks a standby.
    #[arg(long, env = "FLASHVOL_LEASE_DURATION_SECONDS", default_value_t = 15)]
    pub lease_duration_seconds: u64,

    /// A leader that cannot renew within this many seconds stops acting (must be shorter than
    /// the lease duration).
    #[arg(long, env = "FLASHVOL_RENEW_DEADLINE_SECONDS", default_value_t = 10)]
    pub renew_deadline_seconds: u64,

    /// Seconds between lease attempts.
    #[arg(long, env = "FLASHVOL_RETRY_PERIOD_SECONDS", default_value_t = 2)]
    pub retry_period_seconds: u64,

    /// Destroy (never eradicate) `<prefix>-pvc-*` array volumes that no PV or claim refers to.
    #[arg(long, env = "FLASHVOL_ORPHAN_COLLECTION", default_value_t = true, action = ArgAction::Set)]
    pub orphan_collection: bool,

    /// Seconds between orphan collector rounds.
    #[arg(long, env = "FLASHVOL_ORPHAN_INTERVAL_SECONDS", default_value_t = 600)]
    pub orphan_interval_seconds: u64,

    /// Minimum age, in seconds, of an orphan before it is destroyed.
    #[arg(long, env = "FLASHVOL_ORPHAN_GRACE_SECONDS", default_value_t = 3600)]
    pub orphan_grace_seconds: u64,

    /// How long, in seconds, an array's free space is cached for placement.
    #[arg(long, env = "FLASHVOL_SPACE_CACHE_SECONDS", default_value_t = 10)]
    pub space_cache_seconds: u64,

    /// Debug logging (PSO's `app.debug` passes this flag). RUST_LOG overrides.
    #[arg(long, env = "FLASHVOL_DEBUG", default_value_t = false, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub debug: bool,
}

/// Which provisioner this is and where its arrays are: what the provisioner and the snapshot CLI
/// (`kubectl exec` into the same container, [`crate::snapshot`]) both read. The chart sets them
/// through the environment, so a command run in the pod sees what the provisioner sees.
#[derive(Debug, Clone, clap::Args)]
pub struct Instance {
    /// pure.json; unset, [`Config::default_path`] picks it. The help text is built from the same
    /// constants, so PSO's variable is named once, in `flashvol-common`.
    #[arg(
        long,
        env = "FLASHVOL_CONFIG",
        help = format!(
            "pure.json (Secret pure-provisioner-secret, key pure.json). Default: {}",
            Config::default_path_help()
        )
    )]
    pub config: Option<PathBuf>,

    /// Provisioner name that StorageClasses name in `provisioner:`.
    #[arg(
        long,
        env = "FLASHVOL_PROVISIONER_NAME",
        default_value = "pure-provisioner"
    )]
    pub provisioner_name: String,

    /// Flex driver name written into PVs (`flexVolume.driver`).
    #[arg(long, env = "FLASHVOL_DRIVER", default_value = "pure/flex")]
    pub driver: String,
}

impl Instance {
    /// The configuration file: `--config`, else PSO's default ([`Config::default_path`]).
    pub fn config_path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| Config::default_path(|k| std::env::var(k).ok()))
    }

    /// Checks what clap cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.provisioner_name.trim().is_empty() || self.driver.trim().is_empty() {
            bail!("--provisioner-name and --driver must not be empty");
        }
        Ok(())
    }
}

impl Args {
    /// Checks combinations clap cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.leader_election && self.renew_deadline_seconds >= self.lease_duration_seconds {
            bail!(
                "--renew-deadline-seconds ({}) must be shorter than --lease-duration-seconds ({}): a leader must stop before its lease can pass to another replica",
                self.renew_deadline_seconds,
                self.lease_duration_seconds
            );
        }
        if self.retry_period_seconds == 0
            || self.retry_period_seconds >= self.renew_deadline_seconds
        {
            bail!(
                "--retry-period-seconds must be at least 1 and shorter than --renew-deadline-seconds"
            );
        }
        if self.orphan_interval_seconds == 0 {
            bail!(
                "--orphan-interval-seconds must be at least 1 (use --orphan-collection=false to disable)"
            );
        }
        self.instance.validate()?;
        if !self.kube_api_qps.is_finite() || self.kube_api_qps < 0.0 {
            bail!("--kube-api-qps must be zero (unlimited) or positive");
        }
        Ok(())
    }
}

/// PSO's chart started its provisioner with glog flags (`-logtostderr=true -log_file_max_size=32
/// -stderrthreshold=2`); a deployment carried over unchanged must still start. Those flags are
/// dropped (and returned, to be logged); logs always go to stderr here.
pub fn drop_glog_flags(args: impl IntoIterator<Item = String>) -> (Vec<String>, Vec<String>) {
    const GLOG: [&str; 7] = [
        "logtostderr",
        "alsologtostderr",
        "log_file_max_size",
        "stderrthreshold",
        "log_dir",
        "log_file",
        "v",
    ];
    args.into_iter().partition(|arg| {
        let name = arg
            .strip_prefix("--")
            .or_else(|| arg.strip_prefix('-'))
            .map(|rest| rest.split('=').next().unwrap_or_default());
        !(name.is_some_and(|n| GLOG.contains(&n)) && arg.contains('='))
    })
}
#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("flashvol-provisioner").chain(args.iter().copied()))
            .expect("parses")
    }

    #[test]
    fn defaults_do_not_throttle_a_burst_of_claims() {
        let a = parse(&[]);
        assert_eq!(a.kube_api_qps, 200.0);
        assert_eq!(a.kube_api_burst, 400);
        assert_eq!(a.workers, 16);
        assert!(a.leader_election && a.orphan_collection && !a.debug);
        assert_eq!(a.http_address.to_string(), "0.0.0.0:8080");
        a.validate().expect("defaults are consistent");
    }

    #[test]
    fn boolean_flags_take_explicit_values_and_debug_stands_alone() {
        let a = parse(&[
            "--leader-election=false",
            "--orphan-collection",
            "false",
            "--debug",
        ]);
        assert!(!a.leader_election && !a.orphan_collection && a.debug);
    }

    #[test]
    fn the_config_help_names_psos_variable_and_the_default_path() {
        use clap::CommandFactory;
        use flashvol_common::config::{DEFAULT_CONFIG_PATH, env};

        let help = Args::command().render_help().to_string();
        let expected = format!(
            "Default: ${}, else {DEFAULT_CONFIG_PATH}",
            env::DISCOVERY_CONF
        );
        assert!(help.contains(&expected), "{help}");
    }

    #[test]
    fn pso_glog_flags_are_dropped_and_ours_kept() {
        let argv = [
            "x",
            "-logtostderr=true",
            "-log_file_max_size=32",
            "-stderrthreshold=2",
            "--debug",
            "--v=2",
            "--workers=4",
        ]
        .map(String::from);
        let (kept, dropped) = drop_glog_flags(argv);
        assert_eq!(kept, ["x", "--debug", "--workers=4"]);
        assert_eq!(dropped.len(), 4);
        let a = Args::try_parse_from(kept).expect("parses");
        assert!(a.debug && a.workers == 4);
    }

    #[test]
    fn renew_deadline_must_be_shorter_than_the_lease() {
        let err = parse(&["--renew-deadline-seconds", "15"])
            .validate()
            .expect_err("must be refused")
            .to_string();
        assert!(err.contains("renew-deadline"), "{err}");
        assert!(Args::try_parse_from(["x", "--workers", "0"]).is_err());
        assert!(parse(&["--kube-api-qps=-1"]).validate().is_err());
        assert!(
            parse(&["--kube-api-qps=0"]).validate().is_ok(),
            "0 = unlimited"
        );
    }
}
