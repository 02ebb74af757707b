//! Plumbing shared by the FlashArray and FlashBlade clients; the clients themselves live in
//! [`crate::flasharray`] and [`crate::flashblade`].
//!
//! - [`call`]: one API call (method, resource, parameters, retry and error intent).
//! - [`transport`]: one `ureq` agent per client (TLS trust, timeouts, connection reuse) and the
//!   retry policy: which failures are worth another attempt and how long to wait.
//! - [`classify`]: turns an error reply of either array into an [`crate::ArrayError`] variant.
//! - [`paging`]: following paging tokens to the last page, for both arrays.
//! - [`session`]: version negotiation, login, the credential on every request, one new login or
//!   renegotiation when the array asks: one loop, parameterised by each array's rules.
//! - [`version`]: REST version negotiation (numeric dotted compare).
//! - [`wire`]: decoding success replies without ever panicking, and encoding names into URLs.

pub(crate) mod call;
pub(crate) mod classify;
pub(crate) mod paging;
pub(crate) mod session;
pub(crate) mod transport;
pub(crate) mod version;
pub(crate) mod wire;
