//! The blade as a whole: `GET arrays` (name, id, version), its space, and its data VIPs.

use serde::Deserialize;

use super::FlashBlade;
use crate::client::call::Call;
use crate::client::transport::Method;
use crate::client::wire::{null_as_empty, positive_ratio};
use crate::error::Result;

/// `GET arrays`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BladeInfo {
    pub name: String,
    pub id: String,
    pub version: String,
}

/// `GET arrays/space`. FlashBlade reports no provisioned total there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BladeSpace {
    pub capacity: u64,
    /// `space.total_physical`.
    pub used: u64,
    /// `space.data_reduction`, when reported as a positive number.
    pub data_reduction: Option<f64>,
}

impl BladeSpace {
    pub fn free(&self) -> u64 {
        self.capacity.saturating_sub(self.used)
    }
}

/// A network interface (data VIPs have `services` containing `data`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInterface {
    pub name: String,
    pub address: String,
    pub services: Vec<String>,
    pub enabled: bool,
}

impl FlashBlade {
    /// `GET arrays`.
    pub fn array_info(&self) -> Result<BladeInfo> {
        #[derive(Deserialize)]
        struct ArrayWire {
            name: String,
            id: String,
            #[serde(default)]
            version: Option<String>,
        }
        let call = Call::new(Method::Get, "arrays".into(), "arrays");
        let array: ArrayWire = self.first_item(&call)?;
        Ok(BladeInfo {
            name: array.name,
            id: array.id,
            version: array.version.unwrap_or_default(),
        })
    }

    /// `GET arrays/space`: `used` is `space.total_physical`.
    pub fn space(&self) -> Result<BladeSpace> {
        #[derive(Deserialize)]
        struct SpaceWire {
            capacity: u64,
            space: Physical,
        }
        #[derive(Deserialize)]
        struct Physical {
            total_physical: u64,
            #[serde(default)]
            data_reduction: Option<serde_json::Value>,
        }
        let call = Call::new(Method::Get, "arrays/space".into(), "arrays");
        let space: SpaceWire = self.first_item(&call)?;
        Ok(BladeSpace {
            capacity: space.capacity,
            used: space.space.total_physical,
            data_reduction: positive_ratio(space.space.data_reduction),
        })
    }

    /// Enabled interfaces whose services include `data` (`GET network-interfaces`).
    pub fn data_vips(&self) -> Result<Vec<NetworkInterface>> {
        #[derive(Deserialize)]
        struct InterfaceWire {
            name: String,
            #[serde(default)]
            address: Option<String>,
            #[serde(default, deserialize_with = "null_as_empty")]
            services: Vec<String>,
            /// Arrays before the field existed only had enabled interfaces.
            #[serde(default)]
            enabled: Option<bool>,
        }
        let call = Call::new(
            Method::Get,
            "network-interfaces".into(),
            "network-interfaces",
        );
        let interfaces: Vec<InterfaceWire> = self.call_all_pages(&call)?;
        Ok(interfaces
            .into_iter()
            .filter_map(|i| {
                let address = i.address.filter(|a| !a.is_empty())?;
                let vip = NetworkInterface {
                    name: i.name,
                    address,
                    services: i.services,
                    enabled: i.enabled.unwrap_or(true),
                };
                (vip.enabled && vip.services.iter().any(|s| s == "data")).then_some(vip)
            })
            .collect())
    }
}
