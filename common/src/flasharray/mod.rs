//! Blocking client for the FlashArray REST 1.x API (what Pure's `purestorage` 1.19 SDK speaks).
//!
//! REST calls wrapped (paths under `/api/<version>/`):
//!
//! | method | call |
//! |---|---|
//! | [`FlashArray::hello`] | `GET /api/api_version` (no login): the version to speak, the array's `Date` |
//! | [`FlashArray::array_info`], [`FlashArray::space`] | `GET array`, `GET array?space=true` (a dict or a one-element list) |
//! | [`FlashArray::create_volume`], [`FlashArray::copy_volume`] | `POST volume/<n>` `{"size", QoS}` / `{"source", "overwrite"}` |
//! | [`FlashArray::get_volume`], [`FlashArray::get_qos`] | `GET volume/<n>?pending=true`, `GET volume/<n>?qos=true` |
//! | [`FlashArray::list_volumes`] | `GET volume?names=<glob>[&pending=true]`, paged |
//! | [`FlashArray::extend_volume`], [`FlashArray::set_qos`], [`FlashArray::rename_volume`], [`FlashArray::recover_volume`] | `PUT volume/<n>` `{"size","truncate":false}` / limits / `{"name"}` / `{"action":"recover"}` |
//! | [`FlashArray::destroy_volume`], [`FlashArray::eradicate_volume`] | `DELETE volume/<n>[?eradicate=true]` |
//! | [`FlashArray::create_snapshot`], [`FlashArray::list_snapshots`] | `POST volume` `{"source":[v],"snap":true,"suffix"}`, `GET volume/<v>?snap=true&pending=true` |
//! | [`FlashArray::create_host`], [`FlashArray::get_host`], [`FlashArray::list_hosts`], [`FlashArray::modify_host`], [`FlashArray::delete_host`] | `POST/GET/PUT/DELETE host/<h>`, `GET host` (not paged) |
//! | [`FlashArray::connect_host`], [`FlashArray::disconnect_host`] | `POST/DELETE host/<h>/volume/<v>` |
//! | [`FlashArray::list_host_connections`], [`FlashArray::list_volume_connections`], [`FlashArray::list_volume_host_groups`] | `GET host/<h>/volume?private=true`, `GET volume/<v>/host`, `GET volume/<v>/hgroup` |
//! | [`FlashArray::list_ports`] | `GET port` |
//! | [`FlashArray::get_protection_group`], [`FlashArray::add_to_protection_group`] | `GET pgroup/<g>?pending=true`, `PUT pgroup/<g>` `{"addvollist":[v]}` (a member already: done) |
//! | [`FlashArray::list_pgroup_snapshots`], [`FlashArray::list_pgroup_snapshot_volumes`] | `GET pgroup/<g>?snap=true&transfer=true`, `GET volume/<g>.<n>?snap=true&pgroup=true` |
//! | [`FlashArray::list_array_connections`] | `GET array/connection` |
//!
//! GET and DELETE parameters travel in the query string, POST and PUT parameters as JSON bodies.
//! Success is exactly HTTP 200, as for the SDK.
//!
//! **Session** (one loop for both arrays, in `client/session.rs`). Construction touches no network
//! (the flex driver builds a client per call). The first call negotiates the version (`GET
//! /api/api_version`, the newest 1.x up to 1.19, compared numerically) and logs in (`POST
//! auth/session` with the API token → cookie `session`), once for all threads sharing the client.
//! Any `Set-Cookie` on a reply updates the jar. A 401 means the session expired (idle timeout,
//! array restart): log in again once, unless another thread already did, and replay the request;
//! a second 401 is [`ArrayError::Auth`](crate::ArrayError::Auth). HTTP 450 means the array no
//! longer serves our version: renegotiate once and replay.
//!
//! **Retries** (mechanics in `client/transport.rs`): GETs and the PUT/DELETE calls whose
//! repetition converges (extend, QoS, destroy, eradicate, disconnect, delete host) get at most
//! `ClientSettings::retries` extra attempts, pausing 100 ms, 400 ms, 1.6 s (capped at 2 s), after
//! a transport failure (refused, reset, DNS) or a 5xx. Creates, connects, renames, recovers and
//! host changes are never retried: a retry after a lost reply would fail with "already exists"
//! and hide what happened, so the error surfaces and callers look the object up. A timeout is not
//! retried either, so `request_timeout` bounds each request. Each method's documentation says
//! whether it is retried.
//!
//! **Lists** are paged (`limit`, `token`, next token in `x-next-token`) on REST ≥ 1.7, so a large
//! array is listed completely without one huge reply. Hosts are the exception: see
//! [`FlashArray::list_hosts`].
//!
//! The API token is only ever put in the login body; it is not in `Debug` output, and array
//! messages that echo it are redacted.
//!
//! One file per resource family: `array` (the array, its space and ports), `volumes` (volumes,
//! snapshots, copies, QoS), `hosts` (hosts and their connections to volumes), `pgroups`
//! (protection group membership, replicated snapshots, array connections).

mod array;
mod hosts;
mod pgroups;
mod volumes;

use std::fmt;

use serde::de::DeserializeOwned;

use crate::client::call::Call;
use crate::client::session::{CredentialKind, Rules, Session};
use crate::client::transport::Reply;
use crate::client::wire::{self, path_segment};
use crate::client::{paging, version};
use crate::config::{ClientSettings, FlashArrayConfig};
use crate::error::Result;

pub use crate::client::session::{CallStats, Hello};
pub use array::{ArrayInfo, ArraySpace, Port};
pub use hosts::{Connection, Host, HostChange, Initiators};
pub use pgroups::{ArrayConnection, Pgroup, PgroupSnapshot};
pub use volumes::{Qos, Volume};

/// The newest FlashArray REST version this client speaks.
const NEWEST_REST_VERSION: &[u32] = &[1, 19];
/// `limit`/`token` paging exists from REST 1.7 on.
const PAGING_SINCE: &[u32] = &[1, 7];
const DEFAULT_PAGE_SIZE: usize = 1000;

/// How a FlashArray session runs (see the module header).
static RULES: Rules = Rules {
    credential: CredentialKind::SessionCookie,
    versions_key: "version",
    newest_version: NEWEST_REST_VERSION,
    success: 200..=200,
    relogin: &[401],
    version_refused: Some(450),
};

/// A FlashArray. Cheap to construct: version negotiation and login happen on the first call.
/// `Send + Sync`: one client can serve many threads; the session is shared.
pub struct FlashArray {
    session: Session,
    page_size: usize,
}

impl FlashArray {
    /// Builds the client without touching the network. Fails only on unusable settings (an
    /// unreadable or non-PEM CA file, zero timeouts), naming the problem.
    pub fn new(config: &FlashArrayConfig, settings: &ClientSettings) -> Result<Self> {
        Ok(Self {
            session: Session::new(&config.mgmt_endpoint, &config.api_token, settings, &RULES)?,
            page_size: DEFAULT_PAGE_SIZE,
        })
    }

    /// Items per page when listing (default 1000); at least 1.
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// `GET /api/api_version` without logging in: the REST version this client would speak and
    /// the array's clock. Retried like a GET; changes nothing in the session (`doctor` uses it to
    /// tell TLS and version trouble from a refused token).
    pub fn hello(&self) -> Result<Hello> {
        self.session.hello()
    }

    /// The REST version in use, once negotiated (by the first call).
    pub fn api_version(&self) -> Option<String> {
        self.session.api_version()
    }

    /// The management endpoint, as configured (for messages and PV options).
    pub fn endpoint(&self) -> &str {
        self.session.endpoint()
    }

    /// Logins and HTTP requests so far (every request counts: version discovery, logins,
    /// retries and each page of a list).
    pub fn stats(&self) -> CallStats {
        self.session.stats()
    }

    // ---- paths -------------------------------------------------------------------------------

    fn volume_path(&self, name: &str) -> Result<String> {
        Ok(format!(
            "volume/{}",
            path_segment(self.endpoint(), "volume", name)?
        ))
    }

    fn host_path(&self, name: &str) -> Result<String> {
        Ok(format!(
            "host/{}",
            path_segment(self.endpoint(), "host", name)?
        ))
    }

    fn connection_path(&self, host: &str, volume: &str) -> Result<String> {
        Ok(format!(
            "{}/volume/{}",
            self.host_path(host)?,
            path_segment(self.endpoint(), "volume", volume)?
        ))
    }

    // ---- dispatch ----------------------------------------------------------------------------

    fn call_json<T: DeserializeOwned>(&self, call: &Call) -> Result<T> {
        let reply = self.execute(call)?;
        wire::decode(self.endpoint(), &call.label(), &reply.body)
    }

    /// A list call, following `x-next-token` until an empty page or no token (REST ≥ 1.7).
    fn call_list<T: DeserializeOwned>(&self, call: &Call) -> Result<Vec<T>> {
        if !version::at_least(&self.session.version()?, PAGING_SINCE) {
            return self.call_json(call);
        }
        paging::collect_pages(self.endpoint(), &call.label(), |token| {
            let mut page = call.clone().query("limit", self.page_size.to_string());
            if let Some(token) = token {
                page = page.query("token", token.to_owned());
            }
            let reply = self.execute(&page)?;
            let batch: Vec<T> = wire::decode(self.endpoint(), &call.label(), &reply.body)?;
            Ok((batch, next_page_token(&reply)))
        })
    }

    /// Sends one call in the session. Success is exactly 200.
    fn execute(&self, call: &Call) -> Result<Reply> {
        self.session.execute(call)
    }
}

impl fmt::Debug for FlashArray {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.session.debug("FlashArray", f)
    }
}

/// The next page's token, if the reply names one.
fn next_page_token(reply: &Reply) -> Option<String> {
    reply
        .header("x-next-token")
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ApiToken;

    #[test]
    fn construction_touches_no_network() {
        // Port 9 (discard) on a TEST-NET address: nothing answers, and nothing must be asked.
        let config = FlashArrayConfig {
            mgmt_endpoint: "192.0.2.1:9".parse().expect("endpoint"),
            api_token: ApiToken::new("t"),
            labels: Default::default(),
        };
        let array = FlashArray::new(&config, &ClientSettings::default()).expect("new");
        assert_eq!(array.stats(), CallStats::default());
        assert_eq!(array.endpoint(), "192.0.2.1:9");
    }

    #[test]
    fn the_client_is_send_and_sync() {
        fn shared<T: Send + Sync>() {}
        shared::<FlashArray>();
    }
}
