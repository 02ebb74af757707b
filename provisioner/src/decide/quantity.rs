//! Kubernetes resource quantities (`10Gi`, `1.5G`, `100M`, `1e9`) as whole numbers.
//!
//! Owns parsing only: no Kubernetes objects here. A fractional result is rounded up, as
//! `resource.Quantity.Value()` does, so a claim never gets less than it asked for.

/// The size rules (limits, allocation, growth) are shared with the flex driver, in
/// `flashvol_common::sizes`; they are re-exported here for the decisions that take quantities.
pub use flashvol_common::sizes::{
    FLASHARRAY_SECTOR, MAX_VOLUME_BYTES, MIN_VOLUME_BYTES, allocated_size, format_bytes,
};

/// A quantity that is not a non-negative number with a known suffix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a valid quantity: {problem}")]
pub struct QuantityError {
    pub text: String,
    pub problem: String,
}

/// Parses a Kubernetes quantity into a whole number, rounding a fraction up.
///
/// Accepted: optional `+`, digits with an optional `.fraction`, then one of the binary suffixes
/// `Ki Mi Gi Ti Pi Ei`, the decimal suffixes `k M G T P E` (or none), or an exponent `e<n>`/`E<n>`.
/// Negative values and the sub-unit suffixes `m`, `u`, `n` are refused: sizes, IOPS and bandwidth
/// are whole, non-negative amounts.
pub fn parse_quantity(text: &str) -> Result<u64, QuantityError> {
    let fail = |problem: &str| QuantityError {
        text: text.to_owned(),
        problem: problem.to_owned(),
    };
    let s = text.trim();
    if s.starts_with('-') {
        return Err(fail("must not be negative"));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let number_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return Err(fail("expected a number"));
    }
    if fraction.contains('.') {
        return Err(fail("more than one decimal point"));
    }
    // value = digits / 10^fraction_len * base^exp: kept as an exact fraction in u128.
    let digits = format!("{whole}{fraction}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 30 {
        return Err(fail("too many digits"));
    }
    let mantissa: u128 = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|_| fail("expected a number"))?
    };
    let mut numerator = mantissa;
    // Decimal places of the denominator: the fraction's digits plus a negative exponent's.
    let mut scale = u32::try_from(fraction.len()).unwrap_or(u32::MAX);
    let multiplier: u128 = match suffix {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "Ei" => 1 << 60,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "E" => 1_000_000_000_000_000_000,
        "m" | "u" | "n" => return Err(fail("fractional units (m, u, n) are not allowed here")),
        other => {
            let exp = other
                .strip_prefix(['e', 'E'])
                .and_then(|e| e.parse::<i32>().ok())
                .ok_or_else(|| {
                    fail("unknown suffix (use Ki, Mi, Gi, Ti, Pi, Ei, k, M, G, T, P, E or e<n>)")
                })?;
            if !(-30..=30).contains(&exp) {
                return Err(fail("exponent out of range"));
            }
            if exp < 0 {
                scale = scale.saturating_add(exp.unsigned_abs());
                1
            } else {
                10u128.pow(exp as u32)
            }
        }
    };
    // 10^38 is the largest power of ten in a u128; anything finer is not a size.
    let denominator = 10u128
        .checked_pow(scale)
        .ok_or_else(|| fail("too many decimal places"))?;
    numerator = numerator
        .checked_mul(multiplier)
        .ok_or_else(|| fail("too large"))?;
    let value = numerator.div_ceil(denominator);
    u64::try_from(value).map_err(|_| fail("too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_decimal_and_exponent_suffixes() {
        for (text, want) in [
            ("1Gi", 1u64 << 30),
            ("10Gi", 10 << 30),
            ("512Mi", 512 << 20),
            ("1Ki", 1024),
            ("1G", 1_000_000_000),
            ("100M", 100_000_000),
            ("5k", 5_000),
            ("1e9", 1_000_000_000),
            ("1E3", 1_000),
            ("+2Ti", 2 << 40),
            ("4Pi", 4 << 50),
            ("123", 123),
            ("0", 0),
            (" 7Mi ", 7 << 20),
        ] {
            assert_eq!(parse_quantity(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn fractions_round_up_never_down() {
        assert_eq!(parse_quantity("1.5Gi"), Ok(3 << 29));
        assert_eq!(parse_quantity("0.5Ki"), Ok(512));
        assert_eq!(parse_quantity("1.0001k"), Ok(1001), "1000.1 rounds up");
        assert_eq!(parse_quantity("1e-1"), Ok(1), "0.1 rounds up to 1");
        assert_eq!(parse_quantity(".5"), Ok(1));
    }

    #[test]
    fn refuses_what_is_not_a_size() {
        for bad in [
            "", "Gi", "-1Gi", "1.2.3", "1Gb", "1 Gi", "10x", "500m", "1e99", "ten", "1Zi",
        ] {
            let err = parse_quantity(bad).expect_err("must be refused");
            assert_eq!(err.text, bad, "{bad}");
        }
        assert!(
            parse_quantity("100Ei")
                .expect_err("must be refused")
                .problem
                .contains("too large")
        );
    }
}
