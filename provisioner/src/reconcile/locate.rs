//! Which configured array holds a PV's volume, by the one rule of [`flashvol_common::locate`] (the
//! driver follows it too): the PV's array id, else its endpoint, else (PSO 2.x PVs name no array)
//! a search by name on every array of its backend. Asked through the provisioner's arrays with the
//! one search loop ([`crate::snapshot::array_ops::locate_volume_lookup`]); used by delete, which skips
//! the question to an array the PV names (its destroy finds out anyway), and by resize, which
//! needs the answer (the object's size).

use flashvol_common::locate::{LocateError, Problem};
use flashvol_common::options::VolumeOptions;

use crate::arrays::{Array, Lookup};
use crate::reconcile::context::Context;
use crate::snapshot::array_ops::locate_volume_lookup;

/// Where a PV's volume is.
pub struct Located<'a> {
    pub array: &'a Array,
    /// What the array answered when asked for the volume; `None` when it was not asked.
    pub lookup: Option<Lookup>,
}

/// The array holding the PV's volume; `None` when it is on no array (already gone). With
/// `ask_named_array: false` an array the PV names is not asked whether it holds the volume.
pub async fn locate<'a>(
    opts: &VolumeOptions,
    ctx: &'a Context,
    ask_named_array: bool,
) -> Result<Option<Located<'a>>, LocateError> {
    let arrays: Vec<&Array> = ctx.arrays.of(opts.backend).collect();
    let found = locate_volume_lookup(
        &arrays,
        &opts.array_volume,
        opts.backend,
        opts.array.as_ref(),
        ask_named_array,
    )
    .await;
    match found {
        Ok((located, lookup)) => Ok(Some(Located {
            array: arrays[located.array()],
            lookup,
        })),
        Err(LocateError {
            problem: Problem::NotFound { .. },
            ..
        }) => Ok(None),
        Err(e) => Err(e),
    }
}
