//! Command line (every flag also settable by a `FLASHVOL_*` environment variable) and the
//! program's start-up: configuration, clients, leader election, controllers, HTTP server,
//! graceful shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{ArgAction, Parser};
use tokio::sync::watch;

use flashvol_common::config::Config;

use crate::arrays::ArraySet;
use crate::context::{Context, Identity, SystemClock};
use crate::controller::{self, CacheState, RunOptions};
use crate::events::Recorder;
use crate::http::{Health, router};
use crate::leader::{LeaderElector, LeaderState, LeaseTiming};
use crate::metrics::Metrics;
use crate::ratelimit::RateLimitLayer;

/// Dynamic provisioner for `pure-provisioner` StorageClasses: FlashArray volumes and FlashBlade
/// file systems as flex PVs.
#[derive(Debug, Clone, Parser)]
#[command(name = "flashvol-provisioner", version)]
pub struct Args {
    /// pure.json (Secret pure-provisioner-secret, key pure.json). Default: $PURE_DISCOVERY_CONF,
    /// else /etc/pure/pure.json.
    #[arg(long, env = "FLASHVOL_CONFIG")]
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
        if self.provisioner_name.trim().is_empty() || self.driver.trim().is_empty() {
            bail!("--provisioner-name and --driver must not be empty");
        }
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

fn lease_namespace(flag: Option<&str>) -> String {
    flag.map(str::to_owned)
        .or_else(|| {
            std::env::var("POD_NAMESPACE")
                .ok()
                .filter(|s| !s.is_empty())
        })
        .or_else(|| {
            std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "default".into())
}

/// This replica's identity: `$POD_NAME` (or the host name) plus a per-process suffix, so a
/// restarted pod never mistakes its predecessor's lease for its own.
fn identity() -> String {
    let host = std::env::var("POD_NAME")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_owned())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "flashvol-provisioner".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{host}_{:x}{:x}", std::process::id(), nanos)
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                log::warn!("cannot listen for SIGTERM: {e}");
                futures::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = term => {},
    }
    log::info!("shutting down");
}

/// The program.
pub async fn run(args: Args) -> anyhow::Result<()> {
    args.validate()?;
    let env = |k: &str| std::env::var(k).ok();
    let path = args
        .config
        .clone()
        .unwrap_or_else(|| Config::default_path(env));
    let config = Config::load(&path, env)?;
    log::info!(
        "config {}: {} FlashArray(s), {} FlashBlade(s), name prefix {:?}",
        path.display(),
        config.arrays.flash_arrays.len(),
        config.arrays.flash_blades.len(),
        config.settings.name_prefix
    );
    if config.arrays.flash_arrays.is_empty() && config.arrays.flash_blades.is_empty() {
        log::warn!("no arrays configured: every claim will fail with ProvisioningFailed");
    }
    let kube_config = kube::Config::infer()
        .await
        .context("Kubernetes client configuration")?;
    run_with(args, config, kube_config, shutdown_signal()).await
}

/// The program after start-up checks, with the Kubernetes configuration and the shutdown
/// trigger given (tests run replicas in-process against a fake API server).
pub async fn run_with(
    args: Args,
    config: Config,
    kube_config: kube::Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    let arrays = ArraySet::from_config(
        &config,
        Duration::from_secs(args.space_cache_seconds),
        Arc::clone(&metrics),
    )
    .context("array clients")?;

    let client = kube::client::ClientBuilder::try_from(kube_config.clone())?
        .with_layer(&RateLimitLayer::new(args.kube_api_qps, args.kube_api_burst))
        .build();
    // Lease traffic gets its own client: a flood of provisioning must never delay renewals.
    let lease_client = kube::Client::try_from(kube_config)?;

    let identity = identity();
    let watches = controller::watches(client.clone());
    let ctx = Arc::new(Context {
        arrays,
        settings: config.settings.clone(),
        identity: Identity {
            provisioner: args.provisioner_name.clone(),
            driver: args.driver.clone(),
        },
        clock: Arc::new(SystemClock),
        events: Recorder::new(client.clone(), &args.provisioner_name, &identity),
        metrics: Arc::clone(&metrics),
        claim_backoff: Context::default_backoff(),
        volume_backoff: Context::default_backoff(),
        classes: Some(watches.classes.clone()),
        volumes: Some(watches.volumes.clone()),
        retained: Default::default(),
        finished: Default::default(),
        client,
    });

    let caches = Arc::new(CacheState::default());
    let (leader_tx, leader_rx) = watch::channel(LeaderState::Starting);
    let elector = args.leader_election.then(|| {
        LeaderElector::new(
            lease_client,
            &lease_namespace(args.leader_election_namespace.as_deref()),
            &args.leader_election_name,
            &identity,
            LeaseTiming {
                lease_duration: Duration::from_secs(args.lease_duration_seconds),
                renew_deadline: Duration::from_secs(args.renew_deadline_seconds),
                retry_period: Duration::from_secs(args.retry_period_seconds),
            },
            Arc::clone(&ctx.clock),
        )
    });

    let listener = tokio::net::TcpListener::bind(args.http_address)
        .await
        .with_context(|| format!("cannot listen on {}", args.http_address))?;
    let app = router(Health {
        metrics: Arc::clone(&metrics),
        caches: Arc::clone(&caches),
        leader: elector.is_some().then(|| leader_rx.clone()),
    });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            log::error!("HTTP server: {e}");
        }
    });
    log::info!(
        "serving /metrics, /healthz, /readyz on {}",
        args.http_address
    );

    let options = RunOptions {
        workers: args.workers,
        orphan_interval: args
            .orphan_collection
            .then(|| Duration::from_secs(args.orphan_interval_seconds)),
        orphan_grace: Duration::from_secs(args.orphan_grace_seconds),
    };
    tokio::pin!(shutdown);

    let Some(elector) = elector else {
        metrics.leader.set(1);
        tokio::select! {
            () = controller::run(Arc::clone(&ctx), watches, options, caches) => bail!("controllers stopped"),
            () = &mut shutdown => return Ok(()),
        }
    };
    let lease_name = args.leader_election_name.clone();
    let elector = Arc::new(elector);
    let campaign = tokio::spawn({
        let elector = Arc::clone(&elector);
        async move { elector.run(leader_tx).await }
    });
    let mut rx = leader_rx;
    log::info!("leader election on lease {lease_name} as {identity}; standing by until elected");
    let became_leader = async {
        while *rx.borrow_and_update() != LeaderState::Leading {
            if rx.changed().await.is_err() {
                return false;
            }
        }
        true
    };
    tokio::select! {
        leading = became_leader => if !leading { bail!("leader election stopped") },
        () = &mut shutdown => {
            campaign.abort();
            return Ok(());
        }
    }
    metrics.leader.set(1);
    let lost = async {
        while *rx.borrow_and_update() == LeaderState::Leading {
            if rx.changed().await.is_err() {
                break;
            }
        }
    };
    let outcome = tokio::select! {
        () = controller::run(Arc::clone(&ctx), watches, options, caches) => Err(anyhow::anyhow!("controllers stopped")),
        () = lost => Err(anyhow::anyhow!("lost the leader lease; exiting so no two replicas act at once")),
        () = &mut shutdown => Ok(()),
    };
    campaign.abort();
    metrics.leader.set(0);
    if outcome.is_ok() {
        match elector.release().await {
            Ok(()) => log::info!("released lease {lease_name}"),
            Err(e) => log::warn!("cannot release lease {lease_name}: {e}"),
        }
    }
    outcome
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

    #[tokio::test]
    async fn an_invalid_config_stops_start_up_with_the_key_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pure.json");
        std::fs::write(&path, r#"{"FlashArrays":[{"MgmtEndPoint":"10.0.0.5"}]}"#).expect("write");
        let path_text = path.display().to_string();
        let err = run(parse(&["--config", &path_text]))
            .await
            .expect_err("must be refused");
        let text = format!("{err:#}");
        assert!(
            text.contains("FlashArrays[0].APIToken") && text.contains(&path_text),
            "{text}"
        );
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
