//! FlashArray array-wide endpoints: identity, space (capacity from the spec, used = allocated
//! bytes of backing files unless `/_sim/space` sets it), performance counters, and the target ports clients discover.

use serde_json::{Value, json};

use super::model::FaState;
use super::{Ctx, FaError, FaResult, paginate};
use crate::api::Params;
use crate::backing::{allocated_bytes, volume_path};

pub fn get_array(ctx: &Ctx<'_>, state: &FaState, params: &Params) -> FaResult {
    if params.flag("space")? {
        return Ok(json!([space(ctx, state)]).into());
    }
    if let Some(action) = params.string("action")? {
        if action != "monitor" {
            return Err(FaError::bad(format!("Unknown action {action}."), "array"));
        }
        return Ok(json!([{
            "time": crate::clock::iso8601(ctx.now),
            "writes_per_sec": 0, "reads_per_sec": 0, "input_per_sec": 0, "output_per_sec": 0,
            "usec_per_read_op": 0, "usec_per_write_op": 0, "san_usec_per_read_op": 0,
            "san_usec_per_write_op": 0, "queue_depth": 0,
        }])
        .into());
    }
    Ok(json!({
        "array_name": ctx.spec.name,
        "id": state.array_id,
        "revision": "202011101558+ab2e7e5",
        "version": "6.1.0",
    })
    .into())
}

fn space(ctx: &Ctx<'_>, state: &FaState) -> Value {
    let (mut volumes, mut snapshots, mut provisioned) = (0u64, 0u64, 0u64);
    for volume in state.volumes.values() {
        let allocated = allocated_bytes(&volume_path(&ctx.spec.state_dir, &volume.serial));
        if volume.is_snapshot() {
            snapshots += allocated;
        } else {
            volumes += allocated;
            if volume.destroyed_at.is_none() {
                provisioned += volume.size;
            }
        }
    }
    let thin = if provisioned == 0 {
        0.0
    } else {
        1.0 - (volumes.min(provisioned) as f64 / provisioned as f64)
    };
    // A test's "filled" figure replaces the volumes' share, so total = volumes + snapshots holds.
    let volumes = ctx
        .space
        .used(volumes + snapshots)
        .saturating_sub(snapshots);
    let reduction = ctx.space.data_reduction();
    json!({
        "hostname": ctx.spec.name,
        "capacity": ctx.capacity,
        "provisioned": provisioned,
        "volumes": volumes,
        "snapshots": snapshots,
        "shared_space": 0,
        "system": 0,
        "total": volumes + snapshots,
        "parity": 1.0,
        "data_reduction": reduction,
        "total_reduction": reduction,
        "thin_provisioning": thin,
    })
}

pub fn list_ports(ctx: &Ctx<'_>, state: &FaState, params: &Params) -> FaResult {
    let iqn = target_iqn(&state.array_id);
    let iscsi = ctx.spec.iscsi_portals.iter().enumerate().map(|(i, portal)| {
        json!({"name": format!("CT{}.ETH{}", i % 2, 4 + i / 2), "iqn": iqn, "portal": portal, "wwn": null, "nqn": null, "failover": null})
    });
    let fc = ctx.fc_wwns.iter().enumerate().map(|(i, wwn)| {
        json!({"name": format!("CT{}.FC{}", i % 2, i / 2), "iqn": null, "portal": null, "wwn": wwn, "nqn": null, "failover": null})
    });
    paginate(iscsi.chain(fc).collect(), params)
}

/// The array's iSCSI target name, derived from its id like a real array's.
pub fn target_iqn(array_id: &str) -> String {
    let short: String = array_id
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(16)
        .collect();
    format!("iqn.2010-06.com.purestorage:flasharray.{short}")
}
