//! What Purity accepts in volume parameters: names, snapshot suffixes, sizes and QoS limits, with
//! the error each refusal gets.

use serde_json::Value;

use super::FaError;
use crate::api::Params;

/// Largest volume Purity accepts: 4 PiB.
const MAX_SIZE: u64 = 4 << 50;
const MIN_BANDWIDTH: u64 = 1 << 20;
const MAX_BANDWIDTH: u64 = 512 << 30;
const MIN_IOPS: u64 = 100;
const MAX_IOPS: u64 = 100_000_000;

/// Volume names: 1–63 of letters, digits, `-` and `_`, starting with a letter or digit; an
/// optional `pod::` prefix follows the same rules.
pub fn validate_volume_name(name: &str) -> Result<(), FaError> {
    let bare = name
        .rsplit_once("::")
        .map(|(pod, vol)| (Some(pod), vol))
        .unwrap_or((None, name));
    let valid = crate::names::is_valid_object_name;
    if valid(bare.1) && bare.0.is_none_or(valid) {
        Ok(())
    } else {
        Err(FaError::bad(
            "Volume name is invalid: use 1-63 letters, digits, '-' or '_', starting with a letter or digit.",
            name,
        ))
    }
}

pub(super) fn validate_suffix(suffix: &str) -> Result<(), FaError> {
    if crate::names::is_valid_suffix(suffix) {
        Ok(())
    } else {
        Err(FaError::bad(
            "Snapshot suffix is invalid: use 1-63 letters, digits or '-'.",
            suffix,
        ))
    }
}

/// `size` as integer bytes or a string with an `S`/`K`/`M`/`G`/`T`/`P` suffix (powers of 2, `S` =
/// 512-byte sectors); must be a positive multiple of 512 up to 4 PiB.
pub fn parse_size(value: &Value, ctx: &str) -> Result<u64, FaError> {
    let invalid = || {
        FaError::bad(
            "Invalid size: give bytes (a multiple of 512) or a number with S, K, M, G, T or P.",
            ctx,
        )
    };
    let bytes = match value {
        Value::Number(n) => n.as_u64().ok_or_else(invalid)?,
        Value::String(text) => parse_size_text(text).ok_or_else(invalid)?,
        _ => return Err(invalid()),
    };
    if bytes == 0 || bytes % 512 != 0 {
        return Err(invalid());
    }
    if bytes > MAX_SIZE {
        return Err(FaError::bad("Volume size exceeds the maximum of 4P.", ctx));
    }
    Ok(bytes)
}

fn parse_size_text(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, shift) = match text.chars().last()?.to_ascii_uppercase() {
        'S' => (&text[..text.len() - 1], 9),
        'K' => (&text[..text.len() - 1], 10),
        'M' => (&text[..text.len() - 1], 20),
        'G' => (&text[..text.len() - 1], 30),
        'T' => (&text[..text.len() - 1], 40),
        'P' => (&text[..text.len() - 1], 50),
        c if c.is_ascii_digit() => (text, 0),
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(1u64 << shift)
}

/// `bandwidth_limit` in bytes/s, parsed as [`parse_limit`] says.
pub(super) fn bandwidth_limit(params: &Params) -> Result<Option<Option<u64>>, FaError> {
    parse_limit(params, "bandwidth_limit", MIN_BANDWIDTH, MAX_BANDWIDTH)
}

/// `iops_limit`, parsed as [`parse_limit`] says.
pub(super) fn iops_limit(params: &Params) -> Result<Option<Option<u64>>, FaError> {
    parse_limit(params, "iops_limit", MIN_IOPS, MAX_IOPS)
}

/// A QoS limit: absent → `None`; `""`/`null` → `Some(None)` (clear); a number in range → `Some(Some(n))`.
fn parse_limit(
    params: &Params,
    key: &str,
    min: u64,
    max: u64,
) -> Result<Option<Option<u64>>, FaError> {
    if !params.0.contains_key(key) {
        return Ok(None);
    }
    let value = match params.get(key) {
        None | Some(Value::Null) => return Ok(Some(None)),
        Some(Value::String(text)) if text.is_empty() => return Ok(Some(None)),
        Some(Value::String(text)) => parse_size_text(text),
        Some(Value::Number(n)) => n.as_u64(),
        Some(_) => None,
    };
    match value {
        Some(limit) if (min..=max).contains(&limit) => Ok(Some(Some(limit))),
        _ => Err(FaError::bad(
            format!("Invalid {key}: must be between {min} and {max}."),
            key,
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn sizes_accept_bytes_and_binary_suffixes() {
        assert_eq!(parse_size(&json!(10737418240u64), "v"), Ok(10 << 30));
        assert_eq!(parse_size(&json!("10G"), "v"), Ok(10 << 30));
        assert_eq!(parse_size(&json!("2s"), "v"), Ok(1024));
        assert_eq!(parse_size(&json!("1P"), "v"), Ok(1 << 50));
        assert!(parse_size(&json!(1000), "v").is_err());
        assert!(parse_size(&json!("5P"), "v").is_err());
        assert!(parse_size(&json!("ten"), "v").is_err());
        assert!(parse_size(&json!(0), "v").is_err());
    }

    #[test]
    fn volume_names_follow_purity_rules() {
        assert!(validate_volume_name("k8s-pvc-0f9e8d7c").is_ok());
        assert!(validate_volume_name("pod1::vol_1").is_ok());
        assert!(validate_volume_name("-leading").is_err());
        assert!(validate_volume_name("has.dot").is_err());
        assert!(validate_volume_name(&"x".repeat(64)).is_err());
    }
}
