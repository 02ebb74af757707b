//! This node as a host on a FlashArray, and its connections: find the host by the node's
//! initiators or create it, fence RWO volumes away from other flashvol hosts, connect.

use flashvol_common::ArrayError;
use flashvol_common::config::SanType;
use flashvol_common::flasharray::{Host, Initiators};

use crate::array::Fa;
use crate::node::Node;
use crate::node::initiators::{host_name_for, is_flashvol_host, read_fc_wwns};
use crate::node::locks;
use crate::runtime::error::{FlexError, Result};

/// The initiators this node registers with, for the configured SAN type.
pub fn node_initiators(node: &Node) -> Result<Initiators> {
    match node.config.settings.block.san_type {
        SanType::Iscsi => Ok(Initiators {
            iqns: vec![node.iqn()?],
            ..Initiators::default()
        }),
        SanType::Fc => {
            let wwns = read_fc_wwns(&node.settings.sysfs_root);
            if wwns.is_empty() {
                return Err(FlexError::Refused(format!(
                    "SAN type is FC but no FC port was found under {}/class/fc_host",
                    node.settings.sysfs_root.display()
                )));
            }
            Ok(Initiators {
                wwns,
                ..Initiators::default()
            })
        }
    }
}

/// The host holding any of these initiators.
pub fn find_host<'a>(hosts: &'a [Host], mine: &Initiators) -> Option<&'a Host> {
    hosts.iter().find(|h| {
        h.iqns
            .iter()
            .any(|i| mine.iqns.iter().any(|m| m.eq_ignore_ascii_case(i)))
            || h.wwns
                .iter()
                .any(|w| mine.wwns.iter().any(|m| m.eq_ignore_ascii_case(w)))
    })
}

/// This node's host on `fa`, created if needed. Serialised per node by the host lock, so two
/// concurrent mounts do not both create it.
pub fn ensure_host(node: &Node, fa: &Fa) -> Result<String> {
    let mine = node_initiators(node)?;
    let _host_lock = locks::acquire(
        &locks::host_lock_path(&node.settings.locks_dir),
        node.lock_wait(),
    )?;
    let hosts = fa.call("listing hosts", |c| c.list_hosts())?;
    if let Some(h) = find_host(&hosts, &mine) {
        return Ok(h.name.clone());
    }
    let name = host_name_for(&node.settings.node_name);
    let (create_name, create_initiators) = (name.clone(), mine.clone());
    match fa.call(&format!("creating host {name}"), move |c| {
        c.create_host(&create_name, &create_initiators)
    }) {
        Ok(h) => {
            log::info!("created host {} on {}", h.name, fa.endpoint);
            Ok(h.name)
        }
        Err(FlexError::Array {
            source: ArrayError::AlreadyExists { .. },
            ..
        }) => Err(FlexError::Refused(format!(
            "a host named {name} already exists on FlashArray {} without this node's initiators \
             ({}); another node may have the same name, or this node's initiator changed: \
             remove the stale host or set node.nodeName",
            fa.endpoint,
            mine.iqns
                .iter()
                .chain(&mine.wwns)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        Err(FlexError::Array {
            source: ArrayError::InUse { .. },
            ..
        }) => {
            // Registered meanwhile by someone else: take what is there now.
            let hosts = fa.call("listing hosts", |c| c.list_hosts())?;
            find_host(&hosts, &mine)
                .map(|h| h.name.clone())
                .ok_or_else(|| {
                    FlexError::Refused(format!(
                        "this node's initiator is in use on FlashArray {} but no host lists it",
                        fa.endpoint
                    ))
                })
        }
        Err(e) => Err(e),
    }
}

/// The host names whose connections to an RWO volume must go before this node connects: other
/// hosts this driver created. Hosts an administrator made are never touched.
pub fn hosts_to_fence<'a>(connected: &'a [String], this_host: &str) -> Vec<&'a str> {
    connected
        .iter()
        .map(String::as_str)
        .filter(|h| *h != this_host && is_flashvol_host(h))
        .collect()
}

pub fn fence(fa: &Fa, volume: &str, this_host: &str) -> Result<()> {
    let vol = volume.to_owned();
    let connections = fa.call(&format!("listing connections of {volume}"), move |c| {
        c.list_volume_connections(&vol)
    })?;
    let hosts: Vec<String> = connections.into_iter().map(|c| c.host).collect();
    for host in hosts_to_fence(&hosts, this_host) {
        log::warn!(
            "fencing: disconnecting RWO volume {volume} from host {host} on {}",
            fa.endpoint
        );
        let (h, v) = (host.to_owned(), volume.to_owned());
        match fa.call(&format!("disconnecting {volume} from {host}"), move |c| {
            c.disconnect_host(&h, &v)
        }) {
            Ok(())
            | Err(FlexError::Array {
                source: ArrayError::NotConnected { .. } | ArrayError::NotFound { .. },
                ..
            }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Connects the volume to the host; an existing connection is fine. Returns the LUN.
pub fn connect(fa: &Fa, host: &str, volume: &str) -> Result<u32> {
    let (h, v) = (host.to_owned(), volume.to_owned());
    match fa.call(&format!("connecting {volume} to {host}"), move |c| {
        c.connect_host(&h, &v, None)
    }) {
        Ok(conn) => Ok(conn.lun),
        Err(FlexError::Array {
            source: ArrayError::AlreadyExists { .. },
            ..
        }) => {
            let h = host.to_owned();
            let conns = fa.call(&format!("listing connections of {host}"), move |c| {
                c.list_host_connections(&h)
            })?;
            conns
                .into_iter()
                .find(|c| c.volume == volume)
                .map(|c| c.lun)
                .ok_or_else(|| FlexError::Refused(format!(
                    "FlashArray {} says {volume} is already connected to {host}, but does not list the connection",
                    fa.endpoint
                )))
        }
        Err(e) => Err(e),
    }
}

/// Disconnects; already disconnected (or gone) is fine.
pub fn disconnect(fa: &Fa, host: &str, volume: &str) -> Result<()> {
    let (h, v) = (host.to_owned(), volume.to_owned());
    match fa.call(&format!("disconnecting {volume} from {host}"), move |c| {
        c.disconnect_host(&h, &v)
    }) {
        Ok(())
        | Err(FlexError::Array {
            source: ArrayError::NotConnected { .. } | ArrayError::NotFound { .. },
            ..
        }) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, iqns: &[&str], wwns: &[&str]) -> Host {
        Host {
            name: name.into(),
            iqns: iqns.iter().map(|s| (*s).into()).collect(),
            wwns: wwns.iter().map(|s| (*s).into()).collect(),
            nqns: Vec::new(),
            hgroup: None,
        }
    }

    #[test]
    fn the_host_is_found_by_any_of_the_nodes_initiators() {
        let hosts = [
            host("esx1", &["iqn.1998-01.com.vmware:esx1"], &[]),
            host("w1-flashvol", &["iqn.1993-08.org.debian:01:W1"], &[]),
            host("fc1", &[], &["21000024FF3A4B5C"]),
        ];
        let by_iqn = Initiators {
            iqns: vec!["iqn.1993-08.org.debian:01:w1".into()],
            ..Initiators::default()
        };
        assert_eq!(
            find_host(&hosts, &by_iqn).map(|h| h.name.as_str()),
            Some("w1-flashvol")
        );
        let by_wwn = Initiators {
            wwns: vec!["21000024ff3a4b5c".into()],
            ..Initiators::default()
        };
        assert_eq!(
            find_host(&hosts, &by_wwn).map(|h| h.name.as_str()),
            Some("fc1")
        );
        assert!(find_host(&hosts, &Initiators::default()).is_none());
    }

    #[test]
    fn fencing_spares_this_host_and_hosts_flashvol_did_not_create() {
        let connected: Vec<String> = ["w1-flashvol", "w2-flashvol", "backup-server", "esx-01"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(hosts_to_fence(&connected, "w1-flashvol"), ["w2-flashvol"]);
    }
}
