//! This node on a FlashArray: its host entry, found by the node's initiators as the driver finds
//! it (and not another node's), with its connections; and the SAN ports the driver would use.

use flashvol_common::ArrayError;
use flashvol_common::config::SanType;
use flashvol_common::flasharray::{FlashArray, Host, Initiators, Port};

use super::{call, skip_rest};
use crate::array::Array;
use crate::array::hosts::find_host;
use crate::doctor::Finding;
use crate::node::initiators::{host_name_for, is_flashvol_host};
use crate::node::san::iscsi_targets;

pub const FLASHARRAY_ONLY: &[&str] = &["arrays.host", "arrays.san_ports"];

/// This node on a FlashArray: its host entry and the SAN ports the driver would use.
pub fn flasharray(
    subject: &str,
    fa: Option<&Array<FlashArray>>,
    initiators: &Result<Initiators, String>,
    node_name: &str,
    san: SanType,
    allowed: &[ipnet::IpNet],
) -> Vec<Finding> {
    let Some(fa) = fa else {
        return skip_rest(FLASHARRAY_ONLY, "not logged in (see arrays.token)")
            .into_iter()
            .map(|f| f.about(subject))
            .collect();
    };
    let host = match initiators {
        Err(e) => Finding::skip(
            "arrays.host",
            format!("not checked: this node has no usable initiator ({e})"),
        ),
        Ok(mine) => {
            let hosts = call(fa, "listing hosts", |c| c.list_hosts());
            let connections = hosts.as_ref().ok().and_then(|hosts| {
                let name = find_host(hosts, mine)?.name.clone();
                Some(
                    call(fa, "listing the host's connections", move |c| {
                        c.list_host_connections(&name)
                    })
                    .map(|c| c.len()),
                )
            });
            judge_host(&hosts, mine, node_name, connections)
        }
    };
    let ports = call(fa, "listing ports", |c| c.list_ports());
    vec![
        host.about(subject),
        judge_ports(&ports, san, allowed).about(subject),
    ]
}

/// Whether the driver will find or create the right host for this node.
fn judge_host(
    hosts: &Result<Vec<Host>, ArrayError>,
    mine: &Initiators,
    node_name: &str,
    connections: Option<Result<usize, ArrayError>>,
) -> Finding {
    const ID: &str = "arrays.host";
    let hosts = match hosts {
        Ok(h) => h,
        Err(e) => {
            return Finding::fail(
                ID,
                format!("cannot list hosts: {e}"),
                "check the API token's role (storage_admin)",
            );
        }
    };
    let initiators: Vec<&str> = mine
        .iqns
        .iter()
        .chain(&mine.wwns)
        .map(String::as_str)
        .collect();
    let own_name = host_name_for(node_name);
    match find_host(hosts, mine) {
        Some(h) if h.name == own_name || !is_flashvol_host(&h.name) => {
            let connected = match connections {
                Some(Ok(n)) => format!(", {n} volume(s) connected"),
                Some(Err(e)) => format!(", connections unknown ({e})"),
                None => String::new(),
            };
            let whose = if h.name == own_name {
                ""
            } else {
                ", a host an administrator created: the driver uses it"
            };
            Finding::pass(
                ID,
                format!(
                    "this node is host {} ({}){whose}{connected}",
                    h.name,
                    initiators.join(", ")
                ),
            )
        }
        Some(h) => Finding::fail(
            ID,
            format!(
                "this node's initiator {} belongs to host {}, which flashvol created for another node (this node's would be {own_name}): two nodes share an initiator name (a cloned image?), or this node was renamed",
                initiators.join(", "),
                h.name
            ),
            format!(
                "give every node its own initiator name (echo \"InitiatorName=$(iscsi-iname)\" > /etc/iscsi/initiatorname.iscsi; systemctl restart iscsid); if this node was renamed, remove host {} from the array once its volumes are unmounted",
                h.name
            ),
        ),
        None if hosts.iter().any(|h| h.name == own_name) => Finding::fail(
            ID,
            format!(
                "host {own_name} exists without this node's initiator ({}): the driver refuses to mount (another node with the same name, or a changed initiator)",
                initiators.join(", ")
            ),
            format!(
                "remove the stale host {own_name} from the array, or set node.nodeName (chart flexDriver.nodeSettings) to a unique name"
            ),
        ),
        None => Finding::pass(
            ID,
            format!(
                "not registered yet: the first mount creates host {own_name} with {}",
                initiators.join(", ")
            ),
        ),
    }
}

fn judge_ports(
    ports: &Result<Vec<Port>, ArrayError>,
    san: SanType,
    allowed: &[ipnet::IpNet],
) -> Finding {
    const ID: &str = "arrays.san_ports";
    let ports = match ports {
        Ok(p) => p,
        Err(e) => {
            return Finding::fail(
                ID,
                format!("cannot list ports: {e}"),
                "check the array's health and the token's role",
            );
        }
    };
    match san {
        SanType::Iscsi => {
            let targets = iscsi_targets(ports, allowed);
            if targets.is_empty() {
                let cidrs: Vec<String> = allowed.iter().map(ToString::to_string).collect();
                Finding::fail(
                    ID,
                    if cidrs.is_empty() {
                        "the array reports no iSCSI port".to_owned()
                    } else {
                        format!(
                            "no iSCSI portal within flashvol.block.iscsiAllowedCidrs ({})",
                            cidrs.join(", ")
                        )
                    },
                    "configure iSCSI on the array, or widen iscsiAllowedCidrs (chart flasharray.iSCSIAllowedCIDR)",
                )
            } else {
                let portals: Vec<&str> = targets.iter().map(|t| t.portal.as_str()).collect();
                Finding::pass(
                    ID,
                    format!(
                        "iSCSI portals the driver logs in to: {}",
                        portals.join(", ")
                    ),
                )
            }
        }
        SanType::Fc => {
            let wwns: Vec<&str> = ports.iter().filter_map(|p| p.wwn.as_deref()).collect();
            if wwns.is_empty() {
                Finding::fail(
                    ID,
                    "the array reports no FC port",
                    "configure FC on the array, or use SAN type ISCSI",
                )
            } else {
                Finding::pass(ID, format!("FC target ports: {}", wwns.join(", ")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    fn host(name: &str, iqn: &str) -> Host {
        Host {
            name: name.into(),
            iqns: vec![iqn.into()],
            wwns: Vec::new(),
            nqns: Vec::new(),
            hgroup: None,
        }
    }

    fn mine(iqn: &str) -> Initiators {
        Initiators {
            iqns: vec![iqn.into()],
            ..Initiators::default()
        }
    }

    #[test]
    fn an_initiator_on_another_nodes_host_fails_naming_it() {
        let hosts = Ok(vec![host("node-b-flashvol", "iqn.x:a")]);
        let f = judge_host(&hosts, &mine("iqn.x:a"), "node-a", None);
        assert_eq!(f.status, Status::Fail);
        assert!(
            f.saw.contains("node-b-flashvol") && f.saw.contains("node-a-flashvol"),
            "{}",
            f.saw
        );
    }

    #[test]
    fn own_and_administrator_hosts_pass_and_a_stale_namesake_fails() {
        let own = Ok(vec![host("node-a-flashvol", "iqn.x:a")]);
        let f = judge_host(&own, &mine("iqn.x:a"), "node-a", Some(Ok(2)));
        assert_eq!(f.status, Status::Pass);
        assert!(f.saw.contains("2 volume(s)"), "{}", f.saw);
        let admin = Ok(vec![host("esx-1", "iqn.x:a")]);
        assert_eq!(
            judge_host(&admin, &mine("iqn.x:a"), "node-a", None).status,
            Status::Pass
        );
        let stale = Ok(vec![host("node-a-flashvol", "iqn.x:old")]);
        assert_eq!(
            judge_host(&stale, &mine("iqn.x:a"), "node-a", None).status,
            Status::Fail
        );
        let none = Ok(vec![]);
        let f = judge_host(&none, &mine("iqn.x:a"), "node-a", None);
        assert!(
            f.status == Status::Pass && f.saw.contains("not registered yet"),
            "{}",
            f.saw
        );
    }

    #[test]
    fn iscsi_ports_outside_the_allowed_cidrs_fail() {
        let ports = Ok(vec![Port {
            name: "CT0.ETH4".into(),
            iqn: Some("iqn.2010-06.com.purestorage:flasharray.1".into()),
            portal: Some("10.0.0.1:3260".into()),
            wwn: None,
            nqn: None,
        }]);
        assert_eq!(
            judge_ports(&ports, SanType::Iscsi, &[]).status,
            Status::Pass
        );
        let elsewhere = ["192.168.0.0/16".parse().expect("cidr")];
        assert_eq!(
            judge_ports(&ports, SanType::Iscsi, &elsewhere).status,
            Status::Fail
        );
        assert_eq!(judge_ports(&ports, SanType::Fc, &[]).status, Status::Fail);
    }
}
