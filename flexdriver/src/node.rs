//! Everything a call-out needs about this node: the settings file (arrays, defaults, the node
//! section) and the tools.

use std::time::Duration;

use flashvol_common::config::Config;

use crate::error::{FlexError, Result};
use crate::process::Tools;
use crate::settings::NodeSettings;

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

    pub fn deadlines(&self) -> crate::settings::Deadlines {
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
        crate::initiators::parse_initiator_file(&text, path)
    }
}
