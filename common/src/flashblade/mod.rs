//! Blocking client for the FlashBlade REST 1.x API (what Pure's `purity_fb` 1.12 SDK speaks).
//!
//! REST calls wrapped (paths under `/api/<version>/`; names travel in the query string, `names=`
//! to read, `name=` to change, except on create where the name is in the body):
//!
//! | method | call |
//! |---|---|
//! | [`FlashBlade::hello`] | `GET /api/api_version` (no login): the version to speak, the array's `Date` |
//! | [`FlashBlade::array_info`], [`FlashBlade::space`] | `GET arrays`, `GET arrays/space` (`free = capacity - space.total_physical`) |
//! | [`FlashBlade::create_file_system`] | `POST file-systems` `{"name","provisioned","hard_limit_enabled","snapshot_directory_enabled","fast_remove_directory_enabled","nfs":{...}}` |
//! | [`FlashBlade::get_file_system`], [`FlashBlade::list_file_systems`] | `GET file-systems?names=<n>` / `?filter=name='<glob>'`, paged |
//! | [`FlashBlade::resize_file_system`], [`FlashBlade::set_export_rules`], [`FlashBlade::set_hard_limit`] | `PATCH file-systems?name=<n>` |
//! | [`FlashBlade::destroy_file_system`], [`FlashBlade::recover_file_system`] | `PATCH` `{"destroyed":true}` with NFS/SMB/HTTP off in the same body / `{"destroyed":false}` then NFS back on |
//! | [`FlashBlade::eradicate_file_system`] | `DELETE file-systems?name=<n>` |
//! | [`FlashBlade::create_snapshot`], [`FlashBlade::list_snapshots`], [`FlashBlade::get_snapshot`] | `POST file-system-snapshots?sources=<fs>` [`{"suffix"}`], `GET file-system-snapshots?names_or_sources=<fs>` / `?names=<snapshot>` |
//! | [`FlashBlade::destroy_snapshot`], [`FlashBlade::eradicate_snapshot`] | `PATCH`/`DELETE file-system-snapshots?name=<snap>` |
//! | [`FlashBlade::data_vips`] | `GET network-interfaces`, kept when enabled with `data` in `services` |
//!
//! Any 2xx is success, as for the SDK. Replies are the envelope
//! `{"items": [...], "pagination_info": {"continuation_token": ...}}`; lists send `limit` and
//! follow `token` until the array gives no continuation token.
//!
//! **Session** (one loop for both arrays, in `client/session.rs`). Construction touches no network.
//! The first call discovers the version (`GET /api/api_version` → `versions`, the newest ≤ 1.12,
//! compared numerically) and logs in (`POST /api/login` with header `api-token` → reply header
//! `x-auth-token`, sent on every later call), once for all threads sharing the client. The SDK
//! never logs in again by itself; we do, once, on 401 or 403 (an expired token), then replay the
//! request; a second refusal is [`ArrayError::Auth`](crate::ArrayError::Auth).
//!
//! **Retries** (mechanics in `client/transport.rs`, same policy as the FlashArray client): GETs
//! and the PATCH/DELETE calls that converge when repeated (resize, rules, hard limit, destroy,
//! recover, eradicate) get at most `ClientSettings::retries` extra attempts after a transport
//! failure or a 5xx, pausing 100 ms, 400 ms, ...; creates are never retried blindly, and
//! timeouts are not retried.
//!
//! The API token is only ever put in the login header; it is not in `Debug` output, and array
//! messages that echo it are redacted.
//!
//! One file per resource family: `array` (the blade, its space and data VIPs), `file_systems`,
//! `snapshots`.

mod array;
mod file_systems;
mod snapshots;

use std::fmt;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::client::call::Call;
use crate::client::paging;
use crate::client::session::{CredentialKind, Rules, Session};
use crate::client::transport::Reply;
use crate::client::wire::{self, bad_reply, null_as_empty};
use crate::config::{ClientSettings, FlashBladeConfig};
use crate::error::Result;

pub use crate::client::session::{CallStats, Hello};
pub use array::{BladeInfo, BladeSpace, NetworkInterface};
pub use file_systems::{FileSystem, NewFileSystem, Nfs};
pub use snapshots::FsSnapshot;

/// The newest FlashBlade REST version this client speaks.
const NEWEST_REST_VERSION: &[u32] = &[1, 12];
const DEFAULT_PAGE_SIZE: usize = 1000;

/// How a FlashBlade session runs (see the module header).
static RULES: Rules = Rules {
    credential: CredentialKind::AuthTokenHeader,
    versions_key: "versions",
    newest_version: NEWEST_REST_VERSION,
    success: 200..=299,
    relogin: &[401, 403],
    version_refused: None,
};

/// A FlashBlade. Cheap to construct: login happens on the first call. `Send + Sync`.
pub struct FlashBlade {
    session: Session,
    page_size: usize,
}

/// The `{"items": [...], "pagination_info": {...}}` envelope.
#[derive(Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
struct Envelope<T> {
    #[serde(default = "Vec::new", deserialize_with = "null_as_empty")]
    items: Vec<T>,
    #[serde(default)]
    pagination_info: Option<PaginationInfo>,
}

#[derive(Deserialize)]
struct PaginationInfo {
    #[serde(default)]
    continuation_token: Option<String>,
}

impl FlashBlade {
    /// Builds the client without touching the network. Fails only on unusable settings.
    pub fn new(config: &FlashBladeConfig, settings: &ClientSettings) -> Result<Self> {
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

    /// The management endpoint, as configured.
    pub fn endpoint(&self) -> &str {
        self.session.endpoint()
    }

    /// Logins and HTTP requests so far (every request counts, including version discovery,
    /// logins, retries and each page of a list).
    pub fn stats(&self) -> CallStats {
        self.session.stats()
    }

    // ---- dispatch ----------------------------------------------------------------------------

    /// The items of one reply.
    fn call_items<T: DeserializeOwned>(&self, call: &Call) -> Result<Vec<T>> {
        let reply = self.execute(call)?;
        let envelope: Envelope<T> = wire::decode(self.endpoint(), &call.label(), &reply.body)?;
        Ok(envelope.items)
    }

    /// The first item of a reply that must have one.
    fn first_item<T: DeserializeOwned>(&self, call: &Call) -> Result<T> {
        self.call_items(call)?
            .into_iter()
            .next()
            .ok_or_else(|| bad_reply(self.endpoint(), &call.label(), "no items in the reply"))
    }

    /// Every page: `limit`, then `token=<continuation_token>` until there is none.
    fn call_all_pages<T: DeserializeOwned>(&self, call: &Call) -> Result<Vec<T>> {
        paging::collect_pages(self.endpoint(), &call.label(), |token| {
            let mut page = call.clone().query("limit", self.page_size.to_string());
            if let Some(token) = token {
                page = page.query("token", token.to_owned());
            }
            let reply = self.execute(&page)?;
            let envelope: Envelope<T> = wire::decode(self.endpoint(), &call.label(), &reply.body)?;
            let next = envelope.pagination_info.and_then(|p| p.continuation_token);
            Ok((envelope.items, next))
        })
    }

    /// Sends one call in the session. Success is any 2xx.
    fn execute(&self, call: &Call) -> Result<Reply> {
        self.session.execute(call)
    }
}

impl fmt::Debug for FlashBlade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.session.debug("FlashBlade", f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ApiToken;

    #[test]
    fn envelopes_tolerate_null_items_and_missing_pagination() {
        let e: Envelope<serde_json::Value> =
            wire::decode("b", "op", br#"{"items": null}"#).expect("null");
        assert!(e.items.is_empty() && e.pagination_info.is_none());
        let e: Envelope<serde_json::Value> = wire::decode(
            "b",
            "op",
            br#"{"items": [{"name": "a"}], "pagination_info": {"continuation_token": "t", "total_item_count": 9}}"#,
        )
        .expect("page");
        assert_eq!(
            e.pagination_info
                .and_then(|p| p.continuation_token)
                .as_deref(),
            Some("t")
        );
    }

    #[test]
    fn construction_touches_no_network_and_the_client_is_shareable() {
        fn shared<T: Send + Sync>() {}
        shared::<FlashBlade>();
        let config = FlashBladeConfig {
            mgmt_endpoint: "192.0.2.2:9".parse().expect("endpoint"),
            api_token: ApiToken::new("T-secret"),
            nfs_endpoint: None,
            labels: Default::default(),
        };
        let blade = FlashBlade::new(&config, &ClientSettings::default()).expect("new");
        assert_eq!(blade.stats(), CallStats::default());
        assert!(!format!("{blade:?}").contains("T-secret"));
    }
}
