//! RWO fencing: before this node connects a volume that is not shared, the volume is
//! disconnected from every other host this driver created (name ending in `-flashvol`), so a
//! dead or partitioned node can no longer write to it. Hosts an administrator made are never
//! touched (README.md, "RWO fencing: the trade-off").

use super::{Fa, hosts};
use crate::node::initiators::is_flashvol_host;
use crate::runtime::error::Result;

/// The host names whose connections to an RWO volume must go before this node connects: other
/// hosts this driver created. Hosts an administrator made are never touched.
pub fn hosts_to_fence<'a>(connected: &'a [String], this_host: &str) -> Vec<&'a str> {
    connected
        .iter()
        .map(String::as_str)
        .filter(|h| *h != this_host && is_flashvol_host(h))
        .collect()
}

/// Disconnects `volume` from the hosts [`hosts_to_fence`] picks; already gone is fine.
pub fn fence(fa: &Fa, volume: &str, this_host: &str) -> Result<()> {
    let vol = volume.to_owned();
    let connections = fa.call(&format!("listing connections of {volume}"), move |c| {
        c.list_volume_connections(&vol)
    })?;
    let connected: Vec<String> = connections.into_iter().map(|c| c.host).collect();
    for host in hosts_to_fence(&connected, this_host) {
        log::warn!(
            "fencing: disconnecting RWO volume {volume} from host {host} on {}",
            fa.endpoint
        );
        hosts::disconnect(fa, host, volume)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fencing_spares_this_host_and_hosts_flashvol_did_not_create() {
        let connected: Vec<String> = ["w1-flashvol", "w2-flashvol", "backup-server", "esx-01"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(hosts_to_fence(&connected, "w1-flashvol"), ["w2-flashvol"]);
    }
}
