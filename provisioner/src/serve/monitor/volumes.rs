//! Our volumes per array, counted from the PV cache (no array call): what `flashvol_volumes`
//! shows.
//!
//! A PV is ours when its `provisioned-by` annotation names us. Its array is the configured one
//! its `arrayEndpoint` option names (the rule of [`same_endpoint`]: host case-blind, port 443
//! when not written); PSO's PVs, which carry no endpoint, and PVs naming an array no longer in
//! `pure.json` count under `unknown`.

use std::collections::BTreeMap;

use flashvol_common::locate::same_endpoint;

use crate::k8s::cache::CachedVolume;

/// The label of PVs whose array is not a configured one.
pub const UNKNOWN_ARRAY: &str = "unknown";

/// Our PVs per configured array (every one listed, zeros included) and under [`UNKNOWN_ARRAY`].
pub fn count_by_array<'a>(
    volumes: impl IntoIterator<Item = &'a CachedVolume>,
    provisioner: &str,
    arrays: &[&'a str],
) -> BTreeMap<&'a str, i64> {
    let mut counts: BTreeMap<&str, i64> = arrays
        .iter()
        .copied()
        .chain([UNKNOWN_ARRAY])
        .map(|a| (a, 0))
        .collect();
    for pv in volumes {
        if pv.provisioned_by.as_deref() != Some(provisioner) {
            continue;
        }
        let array = pv
            .array_endpoint
            .as_deref()
            .and_then(|named| {
                // Our own PVs carry the endpoint exactly as configured: no parsing for them.
                (arrays.iter().find(|a| **a == named))
                    .or_else(|| arrays.iter().find(|a| same_endpoint(a, named)))
            })
            .copied()
            .unwrap_or(UNKNOWN_ARRAY);
        *counts.entry(array).or_default() += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pv(provisioned_by: &str, endpoint: Option<&str>) -> CachedVolume {
        CachedVolume {
            provisioned_by: Some(provisioned_by.into()),
            array_endpoint: endpoint.map(str::to_owned),
            ..Default::default()
        }
    }

    #[test]
    fn our_pvs_are_counted_on_the_array_they_name_and_others_are_skipped() {
        let volumes = [
            pv("pure-provisioner", Some("10.0.0.5")),
            pv("pure-provisioner", Some("10.0.0.5:443")),
            pv("pure-provisioner", Some("FA-2.example.com")),
            pv("pure-provisioner", None),
            pv("pure-provisioner", Some("10.9.9.9")),
            pv("someone-else", Some("10.0.0.5")),
        ];
        let counts = count_by_array(
            &volumes,
            "pure-provisioner",
            &["10.0.0.5", "fa-2.example.com", "10.0.0.7"],
        );
        assert_eq!(
            counts.into_iter().collect::<Vec<_>>(),
            [
                ("10.0.0.5", 2),
                ("10.0.0.7", 0),
                ("fa-2.example.com", 1),
                ("unknown", 2)
            ]
        );
    }
}
