//! Each configured array, through the driver's own clients: reachable (a TCP connection to the
//! management port), TLS verified against the configured trust (or the insecure setting
//! flagged), a REST version this driver speaks, the API token accepted; on a FlashArray this
//! node's host entry (found by the node's initiators as the driver finds it, not another node's)
//! and the SAN ports the driver would use; on a FlashBlade an NFS address. Only reads: no host is
//! created, nothing is connected. Each array is checked on its own thread under its own deadline.
//!
//! - [`probe`](mod@probe): one array, step by step: TCP, TLS and REST version, token (both kinds).
//! - [`flasharray`]: this node's host entry and the SAN ports the driver would use.
//! - [`flashblade`]: the address NFS mounts go to.

pub mod flasharray;
pub mod flashblade;
pub mod probe;

use std::time::Duration;

use flashvol_common::ArrayError;
use flashvol_common::config::Endpoint;
use flashvol_common::flasharray::FlashArray;
use flashvol_common::flashblade::FlashBlade;

use super::clock;
use super::{Context, Finding, Loaded, skip_all};
use crate::array::{Array, ArrayKind};
use crate::node::Node;
use crate::node::settings::NodeSettings;
use crate::runtime::deadline;
use crate::runtime::error::FlexError;
use flasharray::FLASHARRAY_ONLY;
use flashblade::FLASHBLADE_ONLY;
use probe::{ConfiguredCa, probe};

pub const IDS: &[&str] = &[
    "arrays.reachable",
    "arrays.tls",
    "arrays.rest_version",
    "arrays.token",
    "arrays.host",
    "arrays.san_ports",
    "arrays.nfs_endpoint",
];

/// The checks of every array, then of each kind.
const COMMON: &[&str] = &[
    "arrays.reachable",
    "arrays.tls",
    "arrays.rest_version",
    "arrays.token",
];

pub fn check(ctx: &Context, loaded: &Loaded) -> Vec<Finding> {
    let arrays = &loaded.config.arrays;
    if arrays.flash_arrays.is_empty() && arrays.flash_blades.is_empty() {
        let mut skipped = skip_all(IDS, "no arrays configured");
        skipped.extend(skip_all(clock::IDS, "no arrays configured"));
        return skipped;
    }
    // The CA file is a host path, like every path in the settings; messages name it so, and
    // whether it is the installer's copy of the chart's CA.
    let mut settings = loaded.config.settings.client.clone();
    let configured_ca = settings
        .ca_file
        .clone()
        .map(|path| ConfiguredCa::new(path, &ctx.driver));
    settings.ca_file = settings.ca_file.map(|f| ctx.host.path(&f));
    let node = Node::new(loaded.config.clone(), rerooted(ctx, loaded));
    let initiators = node.initiators().map_err(|e| e.to_string());
    let limits = ctx.limits;
    let mut jobs: Vec<std::thread::JoinHandle<Vec<Finding>>> = Vec::new();
    for config in &arrays.flash_arrays {
        let (config, settings, node_name) = (
            config.clone(),
            settings.clone(),
            loaded.node.node_name.clone(),
        );
        let (initiators, block) = (initiators.clone(), loaded.config.settings.block.clone());
        let ca = configured_ca.clone();
        let subject = subject_of(&config.mgmt_endpoint);
        jobs.push(std::thread::spawn(move || {
            bounded_array(&subject, FLASHARRAY_ONLY, limits.array, move || {
                let (mut findings, fa) = probe::<FlashArray>(
                    &config.mgmt_endpoint,
                    &config,
                    &settings,
                    ca.as_ref(),
                    &limits,
                );
                findings.extend(flasharray::flasharray(
                    &subject_of(&config.mgmt_endpoint),
                    fa.as_ref(),
                    &initiators,
                    &node_name,
                    block.san_type,
                    &block.iscsi_allowed_cidrs,
                ));
                findings
            })
        }));
    }
    for config in &arrays.flash_blades {
        let (config, settings, ca) = (config.clone(), settings.clone(), configured_ca.clone());
        let subject = subject_of(&config.mgmt_endpoint);
        jobs.push(std::thread::spawn(move || {
            bounded_array(&subject, FLASHBLADE_ONLY, limits.array, move || {
                let (mut findings, fb) = probe::<FlashBlade>(
                    &config.mgmt_endpoint,
                    &config,
                    &settings,
                    ca.as_ref(),
                    &limits,
                );
                findings.push(
                    flashblade::flashblade(fb.as_ref(), config.nfs_endpoint.as_deref())
                        .about(subject_of(&config.mgmt_endpoint)),
                );
                findings
            })
        }));
    }
    let mut findings: Vec<Finding> = jobs
        .into_iter()
        .flat_map(|job| job.join().unwrap_or_default())
        .collect();
    // The clock findings come from the same replies; the report shows them in their own family.
    findings.sort_by_key(|f| f.family());
    findings
}

/// The node settings with the paths the initiators come from seen through the host root.
fn rerooted(ctx: &Context, loaded: &Loaded) -> NodeSettings {
    let mut node = loaded.node.clone();
    node.iscsi_initiator_file = ctx.host.path(&node.iscsi_initiator_file);
    node.sysfs_root = ctx.host.path(&node.sysfs_root);
    node
}

/// One array's checks under `limit`; when they do not finish, each fails saying so.
fn bounded_array(
    subject: &str,
    kind_only: &'static [&'static str],
    limit: Duration,
    work: impl FnOnce() -> Vec<Finding> + Send + 'static,
) -> Vec<Finding> {
    deadline::within(subject, limit, work).unwrap_or_else(|e| {
        COMMON
            .iter()
            .chain(kind_only)
            .chain(clock::IDS)
            .map(|id| {
                Finding::fail(
                    id,
                    format!("{e}: the array answers too slowly"),
                    "check the array's load and the network between this node and it",
                )
                .about(subject)
            })
            .collect()
    })
}

/// An array call under the array's deadline, its error as the array client gave it.
fn call<K: ArrayKind, T: Send + 'static>(
    array: &Array<K>,
    step: &str,
    work: impl FnOnce(&K) -> Result<T, ArrayError> + Send + 'static,
) -> Result<T, ArrayError> {
    array.call(step, work).map_err(|e| match e {
        FlexError::Array { source, .. } => source,
        other => ArrayError::Transport {
            endpoint: array.endpoint.clone(),
            message: other.to_string(),
            timed_out: true,
            tls: false,
        },
    })
}

fn skip_rest(ids: &[&'static str], why: &str) -> Vec<Finding> {
    skip_all(ids, &format!("not checked: {why}"))
}

/// How findings name an array: its MgmtEndPoint as configured.
fn subject_of(endpoint: &Endpoint) -> String {
    endpoint.to_string()
}
