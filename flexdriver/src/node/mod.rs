//! This node: its settings, its tools and everything the driver does to it (devices, SAN
//! sessions, file systems and mounts, the records and locks it keeps). [`Node`] is what a
//! call-out carries: the settings file (arrays, defaults, the node section) and the tools.

pub mod devices;
pub mod initiators;
pub mod locks;
pub mod mountinfo;
pub mod mounts;
pub mod namespaces;
pub mod record;
pub mod san;
pub mod settings;
pub mod superblock;
pub mod tools;

use std::time::Duration;

use flashvol_common::config::{Config, SanType};
use flashvol_common::flasharray::Initiators;

use crate::runtime::error::{FlexError, Result};
use settings::NodeSettings;
use tools::Tools;

pub struct Node {
    pub config: Config,
    pub settings: NodeSettings,
    pub tools: Tools,
}

impl Node {
    pub fn new(config: Config, settings: NodeSettings) -> Self {
        let tools = Tools::new(settings.tools.clone());
        Self {
            config,
            settings,
            tools,
        }
    }

    pub fn deadlines(&self) -> settings::Deadlines {
        self.settings.deadlines
    }

    pub fn lock_wait(&self) -> Duration {
        self.settings.deadlines.lock_wait
    }

    /// This node's IQN, validated.
    pub fn iqn(&self) -> Result<String> {
        let path = &self.settings.iscsi_initiator_file;
        let text = std::fs::read_to_string(path).map_err(|e| {
            FlexError::io("cannot read the iSCSI initiator name from", path.clone(), e)
        })?;
        initiators::parse_initiator_file(&text, path)
    }

    /// The initiators this node registers with, for the configured SAN type.
    pub fn initiators(&self) -> Result<Initiators> {
        match self.config.settings.block.san_type {
            SanType::Iscsi => Ok(Initiators {
                iqns: vec![self.iqn()?],
                ..Initiators::default()
            }),
            SanType::Fc => {
                let wwns = initiators::read_fc_wwns(&self.settings.sysfs_root);
                if wwns.is_empty() {
                    return Err(FlexError::Refused(format!(
                        "SAN type is FC but no FC port was found under {}/class/fc_host",
                        self.settings.sysfs_root.display()
                    )));
                }
                Ok(Initiators {
                    wwns,
                    ..Initiators::default()
                })
            }
        }
    }
}
