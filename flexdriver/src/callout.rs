//! One call-out from start to reply: `init` answers from constants; `mount` and `unmount` load
//! the settings, take the volume lock and hand over to the block or file flow, then collect
//! leftover volumes of the same kubelet root; `expandfs` loads the settings, takes the volume
//! lock and hands over to the expand flow; `collect` (the node installer's) only collects.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use flashvol_common::config::Config;
use flashvol_common::options::Backend;

use crate::flow::block;
use crate::flow::collect::{self, Sweep};
use crate::flow::expand::{self, ExpandRequest};
use crate::flow::file;
use crate::flow::release;
use crate::kubelet::invocation::{ExpandFs, Invocation};
use crate::kubelet::layout::{DriverArea, PodVolume, StagedVolume};
use crate::kubelet::reply::{Capabilities, Reply};
use crate::kubelet::request::{self, MountRequest};
use crate::node::Node;
use crate::node::locks;
use crate::node::mountinfo;
use crate::node::mounts;
use crate::node::settings::{self, NodeSettings};
use crate::runtime::crash::step_done;
use crate::runtime::error::{FlexError, Result};
use crate::runtime::logger;
use crate::runtime::stdio;

/// `attach: false`: everything happens on the node in mount/unmount, because on RKE1 and
/// OpenShift 4 the controller manager cannot run flex drivers. `fsGroup: false`: ownership is
/// applied to the volume root in mount instead of kubelet's recursive walk (see `node::mounts`).
/// `requiresFSResize: true`: after a claim grows, kubelet calls `expandfs` (the controller manager
/// never calls a flex driver; it raises the PV's capacity by itself).
/// `supportsMetrics: true`: kubelet reports `kubelet_volume_stats_*` for our volumes from a
/// `statfs` of the pod's volume dir, with no call-out. That `statfs` runs in a goroutine of its
/// own per pod, every minute; on an NFS mount whose server hangs (`hard`, the default) it blocks
/// until the server answers, which freezes that pod's volume metrics at their last value (kubelet
/// itself, and every other pod, carry on), exactly as for kubelet's in-tree NFS volumes. A `soft`
/// mount option (`flashvol.file.mountOptions`) turns the hang into an error after
/// `timeo`×`retrans`, at the price of I/O errors in the pod during an outage.
pub const CAPABILITIES: Capabilities = Capabilities {
    attach: false,
    selinux_relabel: true,
    supports_metrics: true,
    fs_group: false,
    requires_fs_resize: true,
};

/// What the process environment provides.
pub struct Environment {
    pub config_path: PathBuf,
    pub log_level: Option<String>,
}

impl Environment {
    pub fn from_process() -> Self {
        let exe = std::env::current_exe().ok();
        Self {
            config_path: settings::settings_path(
                std::env::var(settings::ENV_CONFIG).ok(),
                exe.as_deref(),
            ),
            log_level: std::env::var(settings::ENV_LOG).ok(),
        }
    }
}

pub fn run(invocation: Invocation, env: &Environment) -> Reply {
    match invocation {
        Invocation::Init => Reply {
            capabilities: Some(CAPABILITIES),
            ..Reply::success()
        },
        Invocation::NotSupported(call) => Reply::not_supported(&call),
        Invocation::Mount { pod_dir, options } => finish(
            "mount",
            &pod_dir,
            load_node(env).and_then(|n| mount(&n, &pod_dir, &options)),
        ),
        Invocation::Unmount { pod_dir } => finish(
            "unmount",
            &pod_dir,
            load_node(env).and_then(|n| unmount(&n, &pod_dir)),
        ),
        Invocation::ExpandFs(call) => match load_node(env).and_then(|n| expand_fs(&n, &call)) {
            Ok(done) => {
                log::info!("expandfs {}: {done}", call.mount_path.display());
                Reply::success_with(done)
            }
            Err(e) => finish("expandfs", &call.mount_path, Err(e)),
        },
        Invocation::Collect {
            kubelet_root,
            driver,
        } => match load_node(env).and_then(|n| collect_leftovers(&n, &kubelet_root, &driver)) {
            Ok(reply) => reply,
            Err(e) => {
                log::error!("collect {}: {e}", kubelet_root.display());
                Reply::failure(e.to_string())
            }
        },
    }
}

fn finish(call: &str, pod_dir: &Path, outcome: Result<()>) -> Reply {
    match outcome {
        Ok(()) => Reply::success(),
        Err(e) => {
            log::error!("{call} {}: {e}", pod_dir.display());
            Reply::failure(e.to_string())
        }
    }
}

/// Reads the settings file and starts logging to the file it names.
pub fn load_node(env: &Environment) -> Result<Node> {
    let config = Config::load(&env.config_path, |k| std::env::var(k).ok())
        .map_err(|e| FlexError::Settings(e.to_string()))?;
    let node_settings = NodeSettings::parse(
        config.node.as_ref(),
        &settings::kernel_host_name(),
        env.log_level.as_deref(),
    )?;
    if let Ok(log_file) = logger::init(&node_settings.log_file, node_settings.log_level) {
        stdio::redirect_stderr_to(&log_file);
    }
    Ok(Node::new(config, node_settings))
}

fn mount(node: &Node, pod_dir: &Path, options: &BTreeMap<String, String>) -> Result<()> {
    log::info!(
        "mount {} {:?}",
        pod_dir.display(),
        request::loggable(options)
    );
    let vol = PodVolume::parse(pod_dir)?;
    let req = MountRequest::from_options(options, &node.config.settings.name_prefix)?;
    let lock = locks::acquire(
        &locks::volume_lock_path(&node.settings.locks_dir, &vol.pv_name),
        node.lock_wait(),
    )?;
    step_done("volume-locked");
    let outcome = match req.volume.backend {
        Backend::Block => block::mount(node, &vol, &req),
        Backend::File => file::mount(node, &vol, &req),
    };
    drop(lock);
    collect_after_call(node, &vol);
    outcome
}

/// kubelet's `expandfs`: the claim (and so the PV) grew. Checks what the arguments mean (a
/// volume this driver stages under a kubelet root, the PV kubelet names, no shrink), then runs
/// the expand flow under the volume lock.
fn expand_fs(node: &Node, call: &ExpandFs) -> Result<String> {
    log::info!(
        "expandfs {} {} bytes (was {}) {:?}",
        call.mount_path.display(),
        call.new_bytes,
        call.old_bytes,
        request::loggable(&call.options)
    );
    let vol = StagedVolume::parse(&call.mount_path)?;
    let req = MountRequest::from_options(&call.options, &node.config.settings.name_prefix)?;
    if let Some(named) = call
        .options
        .get(request::PV_OR_VOLUME_NAME)
        .filter(|n| !n.is_empty())
        && named != &vol.pv_name
    {
        return Err(FlexError::Request(format!(
            "expandfs: the options name PV {named} but {} is {}'s",
            call.mount_path.display(),
            vol.pv_name
        )));
    }
    if call.new_bytes == 0 {
        return Err(FlexError::Request(
            "expandfs: the new size is 0 bytes".into(),
        ));
    }
    if call.new_bytes < call.old_bytes {
        return Err(FlexError::Refused(format!(
            "expandfs: volumes never shrink (new size {} bytes is below the old {}); nothing changed",
            call.new_bytes, call.old_bytes
        )));
    }
    let _lock = locks::acquire(
        &locks::volume_lock_path(&node.settings.locks_dir, &vol.pv_name),
        node.lock_wait(),
    )?;
    step_done("volume-locked");
    expand::expand(
        node,
        &vol,
        &ExpandRequest {
            request: &req,
            new_bytes: call.new_bytes,
        },
    )
}

/// Works from the path alone: whatever is mounted at the pod dir goes; then, if that was the
/// last user of a staged block volume, the volume is released. When the volume would be released
/// but its file system is still mounted elsewhere (a container that outlived its pod), nothing is
/// touched and the answer is Failure: kubelet retries until the container is gone.
///
/// File volumes have nothing to release: no device, no connection. An NFS mount that a container
/// still holds keeps its own superblock and server connection after the pod dir's mount goes,
/// and its writes still reach the FlashBlade, so the pod dir is unmounted at once.
fn unmount(node: &Node, pod_dir: &Path) -> Result<()> {
    log::info!("unmount {}", pod_dir.display());
    let vol = PodVolume::parse(pod_dir)?;
    let lock = locks::acquire(
        &locks::volume_lock_path(&node.settings.locks_dir, &vol.pv_name),
        node.lock_wait(),
    )?;
    step_done("volume-locked");
    let outcome = unbind_and_release(node, &vol);
    drop(lock);
    collect_after_call(node, &vol);
    outcome
}

fn unbind_and_release(node: &Node, vol: &PodVolume) -> Result<()> {
    let area = vol.area();
    release::ensure_last_unbind_is_safe(
        node,
        &area,
        &vol.pv_name,
        &vol.pod_dir,
        &release::mount_table()?,
    )?;
    // Stacked mounts (a retried mount after a crash on an old kubelet) all go.
    for _ in 0..16 {
        if mountinfo::mounted_at(&release::mount_table()?, &vol.pod_dir).is_none() {
            break;
        }
        mounts::unmount(&vol.pod_dir, node.deadlines().mount)?;
    }
    step_done("unbound");
    release::release_if_unused(node, &area, &vol.pv_name)
}

/// After a call, with its volume lock released: leftovers of the same kubelet root.
fn collect_after_call(node: &Node, vol: &PodVolume) {
    collect::sweep(node, &vol.area(), Some(&vol.pv_name), Sweep::AfterCall);
}

/// `collect`: every leftover under `kubelet_root`, answered with the PVs collected.
fn collect_leftovers(node: &Node, kubelet_root: &Path, driver: &str) -> Result<Reply> {
    let area = DriverArea::new(kubelet_root, driver)?;
    let collected = collect::sweep(node, &area, None, Sweep::Installer);
    Ok(Reply {
        message: Some(if collected.is_empty() {
            collect::NOTHING_COLLECTED.to_owned()
        } else {
            format!("collected {}", collected.join(", "))
        }),
        ..Reply::success()
    })
}
