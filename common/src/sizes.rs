//! How large an array object may be, how a requested size becomes what the array allocates, and
//! how an object grows: the one rule the provisioner (provisioning and resizing claims) and the
//! flex driver (`expandfs`, which grows the array object when the provisioner has not yet)
//! share, so neither side grows a volume the other would have refused.
//!
//! The arrays' own limits, and where they come from:
//! - FlashArray volume: a positive multiple of 512 bytes, at most 4 PiB (REST 1.x `size`, as the
//!   `purestorage` SDK documents it; `/work/shared/research/array-api.md` §2.3). Purity refuses
//!   a shrink unless asked to truncate.
//! - FlashBlade file system: `provisioned` is a byte count in a signed 64-bit field for which
//!   Pure documents no maximum (`FileSystem.provisioned` in `purity_fb` 1.12 and py-pure-client's
//!   FlashBlade REST 2.x models: "the provisioned size of the file system, in bytes"; an empty
//!   value means unlimited). With `hard_limit_enabled`, the hard limit is that same size.
//!
//! flashvol's own bound sits under both: no claim may ask for more than 4 PiB on either backend,
//! so a typo like `10Ei` is refused with a clear event instead of being sent to an array.

use crate::options::Backend;

/// 4 PiB: the largest FlashArray volume, and the largest claim flashvol serves on either backend.
pub const MAX_VOLUME_BYTES: u64 = 4 << 50;

/// FlashArray volumes are sized in 512-byte sectors.
pub const FLASHARRAY_SECTOR: u64 = 512;

/// Smallest volume flashvol creates: 1 MiB. The arrays accept less, but a file system does not fit.
pub const MIN_VOLUME_BYTES: u64 = 1 << 20;

/// The size the array allocates for a request of `requested` bytes.
///
/// FlashArray: a multiple of 512 bytes, at least 1 MiB. FlashBlade: at least 1 MiB, otherwise
/// exact (file systems are sized in bytes).
pub fn allocated_size(backend: Backend, requested: u64) -> u64 {
    let at_least = requested.max(MIN_VOLUME_BYTES);
    match backend {
        Backend::Block => at_least.div_ceil(FLASHARRAY_SECTOR) * FLASHARRAY_SECTOR,
        Backend::File => at_least,
    }
}

/// Renders a byte count the way Kubernetes shows capacities: the largest binary suffix that
/// divides it exactly, so `10Gi` stays `10Gi` and odd sizes stay exact.
pub fn format_bytes(bytes: u64) -> String {
    const SUFFIXES: [(&str, u32); 6] = [
        ("Ei", 60),
        ("Pi", 50),
        ("Ti", 40),
        ("Gi", 30),
        ("Mi", 20),
        ("Ki", 10),
    ];
    for (suffix, shift) in SUFFIXES {
        let unit = 1u64 << shift;
        if bytes >= unit && bytes % unit == 0 {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    bytes.to_string()
}

/// What an array object needs to hold `wanted` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Growth {
    /// It holds that much already (or more: objects never shrink).
    Enough { current: u64 },
    /// Grow it from `from` to `to` bytes (`to` is what the array allocates for the request).
    Grow { from: u64, to: u64 },
}

impl Growth {
    /// Bytes the array object gains.
    pub fn added(&self) -> u64 {
        match *self {
            Growth::Enough { .. } => 0,
            Growth::Grow { from, to } => to - from,
        }
    }

    /// Whether the array has room for the growth: the rule placement applies to a new volume
    /// (its size must fit in the array's free bytes), applied to the bytes added.
    pub fn fits(self, free: u64) -> Result<Self, GrowthRefusal> {
        let added = self.added();
        if added > free {
            return Err(GrowthRefusal::NoRoom { added, free });
        }
        Ok(self)
    }
}

/// Why an array object is not grown; the text goes into events and driver replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GrowthRefusal {
    #[error(
        "{} is over the {} limit of {} (refused, nothing changed)",
        format_bytes(*.wanted), format_bytes(MAX_VOLUME_BYTES), limit_of(*.backend)
    )]
    TooLarge { wanted: u64, backend: Backend },
    #[error(
        "growing needs {} more but the array has {} free (refused, nothing changed)",
        format_bytes(*.added), format_bytes(*.free)
    )]
    NoRoom { added: u64, free: u64 },
}

fn limit_of(backend: Backend) -> &'static str {
    match backend {
        Backend::Block => "FlashArray volumes",
        Backend::File => "flashvol file systems",
    }
}

/// What it takes for an object of `current` bytes to hold `wanted` bytes: nothing, or growing to
/// what the array allocates for `wanted`. Never a shrink; never past [`MAX_VOLUME_BYTES`].
pub fn plan_growth(backend: Backend, current: u64, wanted: u64) -> Result<Growth, GrowthRefusal> {
    if wanted > MAX_VOLUME_BYTES {
        return Err(GrowthRefusal::TooLarge { wanted, backend });
    }
    let to = allocated_size(backend, wanted);
    if to <= current {
        return Ok(Growth::Enough { current });
    }
    Ok(Growth::Grow { from: current, to })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn flasharray_sizes_are_whole_sectors_of_at_least_a_mebibyte() {
        assert_eq!(allocated_size(Backend::Block, 1), 1 << 20);
        assert_eq!(
            allocated_size(Backend::Block, (1 << 20) + 1),
            (1 << 20) + 512
        );
        assert_eq!(allocated_size(Backend::Block, 10 << 30), 10 << 30);
        assert_eq!(allocated_size(Backend::Block, 1_000_000_000), 1_000_000_000);
        assert_eq!(allocated_size(Backend::Block, 1_000_000_001), 1_000_000_512);
        assert_eq!(allocated_size(Backend::File, 1_000_000_001), 1_000_000_001);
        assert_eq!(allocated_size(Backend::File, 10), 1 << 20);
    }

    #[test]
    fn byte_counts_render_as_kubernetes_quantities() {
        assert_eq!(format_bytes(10 << 30), "10Gi");
        assert_eq!(format_bytes(3 << 29), "1536Mi");
        assert_eq!(format_bytes(1_000_000_512), "976563Ki");
        assert_eq!(format_bytes(1_000_000_001), "1000000001");
        assert_eq!(format_bytes(512), "512");
    }

    #[test]
    fn objects_grow_to_what_the_array_allocates_and_never_shrink() {
        assert_eq!(
            plan_growth(Backend::Block, GIB, 3 * GIB),
            Ok(Growth::Grow {
                from: GIB,
                to: 3 * GIB
            })
        );
        assert_eq!(
            plan_growth(Backend::Block, GIB, 2_000_000_001),
            Ok(Growth::Grow {
                from: GIB,
                to: 2_000_000_512
            }),
            "rounded up to a sector"
        );
        assert_eq!(
            plan_growth(Backend::File, GIB, 2_000_000_001),
            Ok(Growth::Grow {
                from: GIB,
                to: 2_000_000_001
            })
        );
        for wanted in [GIB, GIB - 512, 1] {
            assert_eq!(
                plan_growth(Backend::Block, GIB, wanted),
                Ok(Growth::Enough { current: GIB }),
                "{wanted}: never a shrink"
            );
        }
    }

    #[test]
    fn growth_beyond_four_pebibytes_or_the_free_space_is_refused_clearly() {
        assert_eq!(
            plan_growth(Backend::Block, GIB, MAX_VOLUME_BYTES),
            Ok(Growth::Grow {
                from: GIB,
                to: MAX_VOLUME_BYTES
            })
        );
        let too_large =
            plan_growth(Backend::Block, GIB, MAX_VOLUME_BYTES + 1).expect_err("refused");
        assert_eq!(
            too_large.to_string(),
            "4503599627370497 is over the 4Pi limit of FlashArray volumes (refused, nothing changed)"
        );
        assert!(
            plan_growth(Backend::File, GIB, 5 << 50)
                .expect_err("refused")
                .to_string()
                .contains("5Pi is over the 4Pi limit")
        );
        let growth = plan_growth(Backend::Block, GIB, 20 * GIB).expect("planned");
        assert_eq!(growth.added(), 19 * GIB);
        assert_eq!(growth.fits(19 * GIB), Ok(growth));
        assert_eq!(
            growth.fits(8 * GIB).expect_err("no room").to_string(),
            "growing needs 19Gi more but the array has 8Gi free (refused, nothing changed)"
        );
        assert_eq!(
            Growth::Enough { current: GIB }.fits(0),
            Ok(Growth::Enough { current: GIB }),
            "nothing to add always fits"
        );
    }
}
