//! This node as a host on a FlashArray, and its connections: find the host by the node's
//! initiators or create it (once per node, under the host-registration lock), connect and
//! disconnect volumes.

use flashvol_common::ArrayError;
use flashvol_common::flasharray::{Host, Initiators};

use super::Fa;
use crate::node::Node;
use crate::node::initiators::host_name_for;
use crate::node::locks;
use crate::runtime::error::{FlexError, Result};

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

/// This node's host on `fa` (the one holding `mine`, this node's initiators), created if needed.
/// Serialised per node by the host lock, so two concurrent mounts do not both create it.
pub fn ensure_host(node: &Node, fa: &Fa, mine: &Initiators) -> Result<String> {
    let _host_lock = locks::acquire(
        &locks::host_lock_path(&node.settings.locks_dir),
        node.lock_wait(),
    )?;
    let hosts = fa.call("listing hosts", |c| c.list_hosts())?;
    if let Some(h) = find_host(&hosts, mine) {
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
            find_host(&hosts, mine)
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
}
