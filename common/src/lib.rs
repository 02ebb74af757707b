//! flashvol-common: what the flex driver and the provisioner share.
//!
//! - [`config`]: PSO's `pure.json` plus flashvol's settings and PSO's `PURE_*` environment.
//! - [`flasharray`] and [`flashblade`]: blocking REST 1.x clients for Pure's arrays.
//! - [`options`]: the `flexVolume.options` keys of our PVs, written by one side and read by the other.
//! - [`names`]: PV, array object and device names derived from a claim.

mod client;
pub mod config;
pub mod error;
pub mod flasharray;
pub mod flashblade;
pub mod names;
pub mod options;

pub use error::ArrayError;
