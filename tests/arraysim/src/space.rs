//! Space figures a test sets instead of measuring them (`/_sim/space`): an array "filled" to a
//! given used byte count without writing that much data, and a data reduction ratio other than
//! the simulator's honest 1.0. Kept in memory like faults; the reported capacity stays the
//! spec's.

use serde::{Deserialize, Serialize};

/// Overrides of the space an array reports; `None` keeps the measured figure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpaceOverride {
    /// Used (physical) bytes to report instead of the bytes the backing files occupy:
    /// FlashArray `total` (and `volumes`), FlashBlade `space.total_physical`.
    pub used: Option<u64>,
    /// Data reduction ratio to report instead of 1.0 (at least 1.0, as on a real array).
    pub data_reduction: Option<f64>,
}

impl SpaceOverride {
    /// Refuses figures no array reports, naming the field.
    pub fn validate(&self) -> Result<(), String> {
        match self.data_reduction {
            Some(ratio) if !(ratio.is_finite() && ratio >= 1.0) => Err(format!(
                "data_reduction must be a number of at least 1.0, not {ratio}"
            )),
            _ => Ok(()),
        }
    }

    /// The used bytes to report, given what the backing files occupy.
    pub fn used(&self, measured: u64) -> u64 {
        self.used.unwrap_or(measured)
    }

    /// The data reduction ratio to report.
    pub fn data_reduction(&self) -> f64 {
        self.data_reduction.unwrap_or(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_fields_keep_the_measured_figures() {
        let none = SpaceOverride::default();
        assert_eq!(none.used(42), 42);
        assert_eq!(none.data_reduction(), 1.0);
        let set = SpaceOverride {
            used: Some(7),
            data_reduction: Some(3.5),
        };
        assert_eq!(set.used(42), 7);
        assert_eq!(set.data_reduction(), 3.5);
    }

    #[test]
    fn a_ratio_below_one_or_not_finite_is_refused() {
        for bad in [0.5, f64::NAN, f64::INFINITY] {
            let o = SpaceOverride {
                data_reduction: Some(bad),
                ..Default::default()
            };
            assert!(o.validate().is_err(), "{bad}");
        }
        assert!(SpaceOverride::default().validate().is_ok());
    }
}
