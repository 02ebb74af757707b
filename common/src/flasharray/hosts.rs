//! Hosts (a node's initiators) and their private connections to volumes: `host/<name>`,
//! `host/<host>/volume/<volume>`, `volume/<volume>/host`.

use serde::Deserialize;
use serde_json::json;

use super::FlashArray;
use crate::client::call::Call;
use crate::client::transport::Method;
use crate::client::wire::null_as_empty;
use crate::error::Result;

/// Initiators of a host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Initiators {
    pub iqns: Vec<String>,
    pub wwns: Vec<String>,
    pub nqns: Vec<String>,
}

/// A host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub iqns: Vec<String>,
    /// Upper-case hex, no colons, as the array reports them.
    pub wwns: Vec<String>,
    pub nqns: Vec<String>,
    pub hgroup: Option<String>,
}

/// Changes to a host's initiator lists (`PUT host/<h>`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostChange {
    pub add: Initiators,
    pub remove: Initiators,
}

/// A private host-volume connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub host: String,
    pub volume: String,
    pub lun: u32,
}

impl FlashArray {
    /// `POST host/<name>` with the non-empty initiator lists. An initiator of another host is
    /// [`ArrayError::InUse`]. Not retried.
    pub fn create_host(&self, name: &str, initiators: &Initiators) -> Result<Host> {
        let mut body = json!({});
        for (key, list) in [
            ("iqnlist", &initiators.iqns),
            ("wwnlist", &initiators.wwns),
            ("nqnlist", &initiators.nqns),
        ] {
            if !list.is_empty() {
                body[key] = json!(list);
            }
        }
        let call = Call::new(Method::Post, self.host_path(name)?, name).body(body);
        self.call_json::<HostWire>(&call).map(Host::from)
    }

    /// `GET host/<name>`.
    pub fn get_host(&self, name: &str) -> Result<Host> {
        let call = Call::new(Method::Get, self.host_path(name)?, name);
        self.call_json::<HostWire>(&call).map(Host::from)
    }

    /// Every host (`GET host`); the flex driver finds its node by initiator here, on every block
    /// mount and unmount. One unpaged request on every REST version, as the SDK's `list_hosts()`
    /// sends it: paged, every listing would cost a second request, because the last page still
    /// carries `x-next-token` and only an empty page ends the list. A host list stays small (the
    /// array caps the number of hosts), far below the client's 64 MiB reply limit.
    pub fn list_hosts(&self) -> Result<Vec<Host>> {
        let call = Call::new(Method::Get, "host".into(), "host");
        Ok(self
            .call_json::<Vec<HostWire>>(&call)?
            .into_iter()
            .map(Host::from)
            .collect())
    }

    /// Adds and removes initiators: one `PUT host/<name>` per non-empty list
    /// (`addiqnlist`, `remiqnlist`, ...; one list per request is the form every Purity release
    /// accepts), then reads the host back. Not retried (adding twice is an error on the array).
    pub fn modify_host(&self, name: &str, change: &HostChange) -> Result<Host> {
        let path = self.host_path(name)?;
        let lists = [
            ("addiqnlist", &change.add.iqns),
            ("addwwnlist", &change.add.wwns),
            ("addnqnlist", &change.add.nqns),
            ("remiqnlist", &change.remove.iqns),
            ("remwwnlist", &change.remove.wwns),
            ("remnqnlist", &change.remove.nqns),
        ];
        for (key, list) in lists {
            if !list.is_empty() {
                let call = Call::new(Method::Put, path.clone(), name).body(json!({ key: list }));
                self.execute(&call)?;
            }
        }
        self.get_host(name)
    }

    /// `DELETE host/<name>`; refused with [`ArrayError::HasConnections`] while volumes are
    /// connected. Retried.
    pub fn delete_host(&self, name: &str) -> Result<()> {
        let call = Call::new(Method::Delete, self.host_path(name)?, name)
            .idempotent()
            .destroying();
        self.execute(&call).map(drop)
    }

    /// `POST host/<host>/volume/<volume>` (`{"lun":N}` when given, else the array picks).
    /// An existing connection is [`ArrayError::AlreadyExists`]. Not retried.
    pub fn connect_host(&self, host: &str, volume: &str, lun: Option<u32>) -> Result<Connection> {
        #[derive(Deserialize)]
        struct Connected {
            name: String,
            vol: String,
            lun: u32,
        }
        let body = lun.map_or_else(|| json!({}), |lun| json!({ "lun": lun }));
        let call = Call::new(Method::Post, self.connection_path(host, volume)?, volume).body(body);
        let connected: Connected = self.call_json(&call)?;
        Ok(Connection {
            host: connected.name,
            volume: connected.vol,
            lun: connected.lun,
        })
    }

    /// `DELETE host/<host>/volume/<volume>`; a pair that is not connected is
    /// [`ArrayError::NotConnected`]. Retried.
    pub fn disconnect_host(&self, host: &str, volume: &str) -> Result<()> {
        let call =
            Call::new(Method::Delete, self.connection_path(host, volume)?, volume).idempotent();
        self.execute(&call).map(drop)
    }

    /// Private connections of a host (`GET host/<host>/volume?private=true`).
    pub fn list_host_connections(&self, host: &str) -> Result<Vec<Connection>> {
        #[derive(Deserialize)]
        struct Row {
            name: String,
            vol: String,
            lun: u32,
        }
        let resource = format!("{}/volume", self.host_path(host)?);
        let call = Call::new(Method::Get, resource, host).query("private", "true");
        let rows: Vec<Row> = self.call_json(&call)?;
        Ok(rows
            .into_iter()
            .map(|row| Connection {
                host: row.name,
                volume: row.vol,
                lun: row.lun,
            })
            .collect())
    }

    /// Hosts a volume is privately connected to (`GET volume/<volume>/host`).
    pub fn list_volume_connections(&self, volume: &str) -> Result<Vec<Connection>> {
        #[derive(Deserialize)]
        struct Row {
            host: String,
            name: String,
            lun: u32,
        }
        let resource = format!("{}/host", self.volume_path(volume)?);
        let rows: Vec<Row> = self.call_json(&Call::new(Method::Get, resource, volume))?;
        Ok(rows
            .into_iter()
            .map(|row| Connection {
                host: row.host,
                volume: row.name,
                lun: row.lun,
            })
            .collect())
    }

    /// Host groups a volume is connected to (`GET volume/<volume>/hgroup`).
    pub fn list_volume_host_groups(&self, volume: &str) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Row {
            hgroup: String,
        }
        let resource = format!("{}/hgroup", self.volume_path(volume)?);
        let rows: Vec<Row> = self.call_json(&Call::new(Method::Get, resource, volume))?;
        Ok(rows.into_iter().map(|row| row.hgroup).collect())
    }
}

#[derive(Deserialize)]
struct HostWire {
    name: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    iqn: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    wwn: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    nqn: Vec<String>,
    #[serde(default)]
    hgroup: Option<String>,
}

impl From<HostWire> for Host {
    fn from(wire: HostWire) -> Self {
        Host {
            name: wire.name,
            iqns: wire.iqn,
            wwns: wire.wwn,
            nqns: wire.nqn,
            hgroup: wire.hgroup.filter(|g| !g.is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::wire;

    #[test]
    fn host_replies_tolerate_null_and_missing_lists() {
        let body = br#"{"name": "h", "iqn": null, "wwn": ["5001500150015000"], "hgroup": ""}"#;
        let host = Host::from(wire::decode::<HostWire>("a", "op", body).expect("host"));
        assert_eq!(host.iqns.len() + host.nqns.len(), 0);
        assert_eq!(host.wwns, ["5001500150015000"]);
        assert_eq!(host.hgroup, None);
    }
}
