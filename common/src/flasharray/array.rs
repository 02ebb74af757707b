//! The array as a whole: `GET array` (name, id, version), its space, and its target ports.

use serde::{Deserialize, Serialize};

use super::FlashArray;
use crate::client::call::Call;
use crate::client::transport::Method;
use crate::client::wire;
use crate::error::Result;

/// `GET array`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ArrayInfo {
    pub array_name: String,
    pub id: String,
    pub version: String,
    #[serde(default)]
    pub revision: String,
}

/// `GET array?space=true`: capacity, used and provisioned bytes, data reduction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArraySpace {
    pub capacity: u64,
    /// Used (physical) bytes, the array's `total`.
    pub used: u64,
    /// Sum of provisioned volume sizes, when the array reports it.
    pub provisioned: Option<u64>,
    /// Data reduction ratio (`data_reduction`), when reported as a positive number.
    pub data_reduction: Option<f64>,
}

impl ArraySpace {
    pub fn free(&self) -> u64 {
        self.capacity.saturating_sub(self.used)
    }
}

/// A target port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub name: String,
    pub iqn: Option<String>,
    /// `ip:port`, IPv6 as `[addr]:port`.
    pub portal: Option<String>,
    pub wwn: Option<String>,
    pub nqn: Option<String>,
}

impl FlashArray {
    /// `GET array`.
    pub fn array_info(&self) -> Result<ArrayInfo> {
        self.call_json(&Call::new(Method::Get, "array".into(), "array"))
    }

    /// `GET array?space=true`.
    pub fn space(&self) -> Result<ArraySpace> {
        #[derive(Deserialize)]
        struct SpaceWire {
            capacity: u64,
            total: u64,
            #[serde(default)]
            provisioned: Option<u64>,
            #[serde(default)]
            data_reduction: Option<serde_json::Value>,
        }
        let call = Call::new(Method::Get, "array".into(), "array").query("space", "true");
        let reply = self.execute(&call)?;
        let space: SpaceWire = wire::dict_or_first(self.endpoint(), &call.label(), &reply.body)?;
        Ok(ArraySpace {
            capacity: space.capacity,
            used: space.total,
            provisioned: space.provisioned,
            data_reduction: wire::positive_ratio(space.data_reduction),
        })
    }

    /// Target ports (`GET port`): iSCSI ports have `iqn` and `portal`, FC ports `wwn`.
    pub fn list_ports(&self) -> Result<Vec<Port>> {
        #[derive(Deserialize)]
        struct PortWire {
            name: String,
            #[serde(default)]
            iqn: Option<String>,
            #[serde(default)]
            portal: Option<String>,
            #[serde(default)]
            wwn: Option<String>,
            #[serde(default)]
            nqn: Option<String>,
        }
        let non_empty = |value: Option<String>| value.filter(|v| !v.is_empty());
        let ports: Vec<PortWire> =
            self.call_json(&Call::new(Method::Get, "port".into(), "port"))?;
        Ok(ports
            .into_iter()
            .map(|p| Port {
                name: p.name,
                iqn: non_empty(p.iqn),
                portal: non_empty(p.portal),
                wwn: non_empty(p.wwn),
                nqn: non_empty(p.nqn),
            })
            .collect())
    }
}
