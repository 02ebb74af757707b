//! flashvol-arraysim: HTTPS simulator of Pure FlashArray and FlashBlade REST 1.x, faithful enough
//! for Pure's own Python SDKs, with persistent state, sparse-file/directory data backing, fault
//! injection and an admin API under `/_sim/`. `SimHandle` runs one array in-process for tests.

mod admin;
mod api;
mod backing;
pub mod cli;
mod clock;
mod commit;
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

    /// What an array administrator does outside flashvol (make or destroy a protection group):
    /// one FlashArray REST call `<method> /api/1.19/<path>` with a JSON body, in a fresh session,
    /// over HTTPS pinned to the simulator's CA. The reply body, or the status and body on failure.
    pub fn administer(
        &self,
        method: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let base = format!("https://{}/api/1.19", self.spec.listen);
        let login = serde_json::json!({"api_token": self.spec.api_token}).to_string();
        let agent = self.agent()?;
        let reply = agent
            .post(format!("{base}/auth/session"))
            .content_type("application/json")
            .send(login)
            .map_err(|e| format!("login: {e}"))?;
        let cookie = reply
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .ok_or("login set no session cookie")?
            .to_owned();
        self.https_call(
            &agent,
            method,
            &format!("{base}/{path}"),
            Some(&cookie),
            body,
        )
    }

    /// One call of the admin API (`<method> /_sim/<route>`), e.g. delivering a replicated
    /// snapshot (`POST replicated-snapshots`). The reply body, or the status and body on failure.
    pub fn admin(
        &self,
        method: &str,
        route: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let url = format!("{}/{route}", self.admin_url());
        self.https_call(&self.agent()?, method, &url, None, body)
    }

    fn agent(&self) -> Result<ureq::Agent, String> {
        let pem = std::fs::read(&self.tls.ca_cert).map_err(|e| e.to_string())?;
        let cert = ureq::tls::Certificate::from_pem(&pem).map_err(|e| e.to_string())?;
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::new_with_certs(&[cert]))
            .build();
        Ok(ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .build()
            .new_agent())
    }

    fn https_call(
        &self,
        agent: &ureq::Agent,
        method: &str,
        url: &str,
        cookie: Option<&str>,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let cookie = cookie.unwrap_or_default();
        let body = body.to_string();
        let sent = match method {
            "GET" => agent.get(url).header("cookie", cookie).call(),
            "DELETE" => agent.delete(url).header("cookie", cookie).call(),
            "PUT" => agent
                .put(url)
                .header("cookie", cookie)
                .content_type("application/json")
                .send(body),
            "POST" => agent
                .post(url)
                .header("cookie", cookie)
                .content_type("application/json")
                .send(body),
            other => return Err(format!("unsupported method {other}")),
        };
        let mut reply = sent.map_err(|e| format!("{method} {url}: {e}"))?;
        let status = reply.status().as_u16();
        let text = reply
            .body_mut()
            .read_to_string()
            .map_err(|e| e.to_string())?;
        let value = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        if status == 200 {
            Ok(value)
        } else {
            Err(format!("{method} {url}: HTTP {status}: {value}"))
        }
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
