//! flashvol-common: what the flex driver and the provisioner share.
//!
//! - [`config`]: PSO's `pure.json` plus flashvol's settings; [`config::env`] is the one table of
//!   PSO's `PURE_*` environment variables.
//! - [`flasharray`] and [`flashblade`]: blocking REST 1.x clients for Pure's arrays, one file per
//!   resource family; `client` (private) holds what they share: transport and retries, the session
//!   loop, paging, version negotiation, error classification, reply decoding.
//! - [`locate`]: which configured array holds a PV's volume, the one rule for both programs.
//! - [`options`]: the `flexVolume.options` keys of our PVs, written by one side and read by the other.
//! - [`names`]: PV, array object and device names derived from a claim.
//! - [`sizes`]: the arrays' size limits, what they allocate for a request, and how objects grow.
//! - [`error`]: [`ArrayError`], what an array call fails with.

mod client;
pub mod config;
pub mod error;
pub mod flasharray;
pub mod flashblade;
pub mod locate;
pub mod names;
pub mod options;
pub mod sizes;

pub use error::ArrayError;
