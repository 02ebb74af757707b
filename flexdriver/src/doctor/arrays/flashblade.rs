//! Where NFS mounts of a FlashBlade's file systems go: its configured `NfsEndPoint`, else the
//! first data VIP it reports (the driver's rule).

use flashvol_common::ArrayError;
use flashvol_common::flashblade::{FlashBlade, NetworkInterface};

use super::call;
use crate::array::Array;
use crate::doctor::Finding;

pub const FLASHBLADE_ONLY: &[&str] = &["arrays.nfs_endpoint"];

/// Where NFS mounts of this blade's file systems go.
pub fn flashblade(fb: Option<&Array<FlashBlade>>, configured: Option<&str>) -> Finding {
    const ID: &str = "arrays.nfs_endpoint";
    let Some(fb) = fb else {
        return Finding::skip(ID, "not checked: not logged in (see arrays.token)");
    };
    match configured {
        Some(ep) => Finding::pass(ID, format!("NFS mounts go to NfsEndPoint {ep}")),
        None => judge_vips(&call(fb, "listing data VIPs", |c| c.data_vips())),
    }
}

fn judge_vips(vips: &Result<Vec<NetworkInterface>, ArrayError>) -> Finding {
    const ID: &str = "arrays.nfs_endpoint";
    match vips {
        Ok(v) if !v.is_empty() => Finding::pass(
            ID,
            format!(
                "no NfsEndPoint configured; NFS mounts go to the data VIP {}",
                v[0].address
            ),
        ),
        Ok(_) => Finding::fail(
            ID,
            "no NfsEndPoint configured and the blade reports no data VIP",
            "set NfsEndPoint for this FlashBlade in pure.json, or create a data VIP on it",
        ),
        Err(e) => Finding::fail(
            ID,
            format!("cannot list data VIPs: {e}"),
            "set NfsEndPoint for this FlashBlade in pure.json",
        ),
    }
}
