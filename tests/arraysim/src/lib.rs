//! flashvol-arraysim: HTTPS simulator of Pure FlashArray and FlashBlade REST 1.x, faithful enough
//! for Pure's own Python SDKs, with persistent state, sparse-file/directory data backing, fault
//! injection and an admin API under `/_sim/`. `SimHandle` runs one array in-process for tests.

mod admin;
mod api;
mod backing;
pub mod cli;
mod clock;
pub mod faults;
mod flasharray;
mod flashblade;
mod glob;
mod names;
mod persist;
mod server;
mod sim;
pub mod space;
pub mod spec;
mod stats;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use tokio::sync::oneshot;

pub use faults::{FaultAction, FaultRule, Faults};
pub use space::SpaceOverride;
pub use spec::{DEFAULT_CAPACITY, Kind, SimSpec, TlsFiles};
pub use stats::StatsSnapshot;

use sim::{Controls, Sim};
use tls::TlsMaterial;

/// One simulated array served on its own thread and tokio runtime.
pub struct SimHandle {
    spec: SimSpec,
    controls: Arc<Controls>,
    tls: TlsMaterial,
    running: Option<Running>,
}

struct Running {
    shutdown: oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

impl SimHandle {
    /// Starts serving on its own thread + tokio runtime (usable from plain `#[test]` fns and from
    /// async code); returns once listening.
    pub fn start(mut spec: SimSpec) -> Result<SimHandle> {
        spec.faults.validate().context("invalid initial faults")?;
        std::fs::create_dir_all(&spec.state_dir)
            .with_context(|| format!("creating state dir {}", spec.state_dir.display()))?;
        spec.state_dir = spec
            .state_dir
            .canonicalize()
            .with_context(|| format!("resolving {}", spec.state_dir.display()))?;
        let tls = tls::ensure_material(&spec.state_dir, spec.tls_files.as_ref(), &spec.tls_sans)?;
        let controls = Arc::new(Controls {
            faults: std::sync::Mutex::new(spec.faults.clone()),
            ..Controls::default()
        });
        let mut handle = SimHandle {
            spec,
            controls,
            tls,
            running: None,
        };
        handle.launch()?;
        Ok(handle)
    }

    /// `"127.0.0.1:PORT"`: what clients use as the management endpoint.
    pub fn endpoint(&self) -> String {
        self.spec.listen.to_string()
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.spec.listen
    }

    /// PEM file clients pin to verify the simulator's certificate.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.tls.ca_cert.clone()
    }

    /// `"https://127.0.0.1:PORT/_sim"`.
    pub fn admin_url(&self) -> String {
        format!("https://{}/_sim", self.spec.listen)
    }

    pub fn spec(&self) -> &SimSpec {
        &self.spec
    }

    /// Stops and serves again on the SAME port from the same state dir (state re-read from disk;
    /// faults, stats and API-version overrides are kept).
    pub fn restart(&mut self) -> Result<()> {
        self.halt();
        self.launch()
    }

    pub fn stop(mut self) {
        self.halt();
    }

    /// Replaces the injected faults, like `POST /_sim/faults`.
    pub fn set_faults(&self, faults: Faults) {
        *self
            .controls
            .faults
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = faults;
    }

    /// Replaces the advertised REST versions (`None`: the personality's own), like
    /// `PUT /_sim/api_versions`: an older array.
    pub fn set_api_versions(&self, versions: Option<Vec<String>>) {
        *self
            .controls
            .api_versions
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = versions;
    }

    /// Replaces the space overrides, like `PUT /_sim/space`.
    pub fn set_space(&self, space: SpaceOverride) {
        *self
            .controls
            .space
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = space;
    }

    /// Call counters, like `GET /_sim/stats`.
    pub fn stats(&self) -> StatsSnapshot {
        self.controls.stats.snapshot()
    }

    fn launch(&mut self) -> Result<()> {
        let listener = std::net::TcpListener::bind(self.spec.listen)
            .with_context(|| format!("binding {}", self.spec.listen))?;
        self.spec.listen = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let sim = Arc::new(Sim::open(self.spec.clone(), Arc::clone(&self.controls))?);
        let tls_config = tls::server_config(&self.tls)?;
        let (shutdown, stop_signal) = oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<()>>();
        let name = self.spec.name.clone();
        let thread = std::thread::Builder::new()
            .name(format!("arraysim-{name}"))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = ready_tx.send(Err(error.into()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => listener,
                        Err(error) => {
                            let _ = ready_tx.send(Err(error.into()));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    server::serve(listener, tls_config, sim, stop_signal).await;
                });
                runtime.shutdown_timeout(std::time::Duration::from_secs(5));
            })?;
        ready_rx
            .recv()
            .context("simulator thread ended before listening")??;
        log::info!(
            "{} ({}) listening on https://{}",
            self.spec.name,
            self.spec.kind.label(),
            self.spec.listen
        );
        self.running = Some(Running { shutdown, thread });
        Ok(())
    }

    fn halt(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.shutdown.send(());
            let _ = running.thread.join();
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.halt();
    }
}
