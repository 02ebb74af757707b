//! Decoding success replies and encoding names into URLs.
//!
//! Every reply is external input: decoding never panics, tolerates extra keys, and a malformed,
//! truncated or unexpected body becomes [`ArrayError::BadReply`] naming the operation and, through
//! serde's message, the missing or mistyped field.

use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer};
use serde_json::Value;

use crate::error::{ArrayError, Result};

pub(crate) fn bad_reply(endpoint: &str, operation: &str, detail: impl Into<String>) -> ArrayError {
    ArrayError::BadReply {
        endpoint: endpoint.to_owned(),
        operation: operation.to_owned(),
        detail: detail.into(),
    }
}

/// Parses a whole body as `T`.
pub(crate) fn decode<T: DeserializeOwned>(
    endpoint: &str,
    operation: &str,
    body: &[u8],
) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| bad_reply(endpoint, operation, describe(&e, body)))
}

/// Converts an already parsed value to `T`.
pub(crate) fn from_value<T: DeserializeOwned>(
    endpoint: &str,
    operation: &str,
    value: Value,
) -> Result<T> {
    serde_json::from_value(value).map_err(|e| bad_reply(endpoint, operation, e.to_string()))
}

/// Some FlashArray calls answer with a dict on one release and a one-element list on another
/// (`GET array?space=true`): accept both.
pub(crate) fn dict_or_first<T: DeserializeOwned>(
    endpoint: &str,
    operation: &str,
    body: &[u8],
) -> Result<T> {
    let value: Value = decode(endpoint, operation, body)?;
    let item = match value {
        Value::Array(items) => items
            .into_iter()
            .next()
            .ok_or_else(|| bad_reply(endpoint, operation, "empty list"))?,
        other => other,
    };
    from_value(endpoint, operation, item)
}

fn describe(error: &serde_json::Error, body: &[u8]) -> String {
    if body.iter().all(u8::is_ascii_whitespace) {
        "empty body".to_owned()
    } else if error.is_eof() {
        format!("truncated JSON ({error})")
    } else {
        error.to_string()
    }
}

/// For optional list fields an array may send as `null`.
pub(crate) fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> std::result::Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// A ratio an array reports for information only (data reduction): kept when it is a positive
/// finite number, else (absent, `null`, a string, zero or negative) treated as not reported, so
/// an odd figure never fails the space query that placement depends on.
pub(crate) fn positive_ratio(ratio: Option<Value>) -> Option<f64> {
    ratio
        .as_ref()
        .and_then(Value::as_f64)
        .filter(|r| r.is_finite() && *r > 0.0)
}

/// A limit that may be `null`, `""` (unlimited) or a number of units.
pub(crate) fn optional_limit<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<u64>, D::Error> {
    use serde::de::Error;
    match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("limit {s:?} is not a number"))),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("limit {n} is not a non-negative integer"))),
        Some(other) => Err(D::Error::custom(format!("limit {other} is not a number"))),
    }
}

/// Percent-encodes an object name for use as one URL path segment. Names are never empty and
/// never contain control characters; anything else is encoded rather than refused, so that the
/// array, not the client, decides what a valid name is.
pub(crate) fn path_segment(endpoint: &str, what: &str, name: &str) -> Result<String> {
    check_name(endpoint, what, name)?;
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~:".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    Ok(out)
}

/// Refuses empty names and names with control characters, before anything is sent.
pub(crate) fn check_name(endpoint: &str, what: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(ArrayError::InvalidInput {
            endpoint: endpoint.to_owned(),
            message: format!("{what} name is empty"),
        });
    }
    if name.chars().any(char::is_control) {
        return Err(ArrayError::InvalidInput {
            endpoint: endpoint.to_owned(),
            message: format!("{what} name {name:?} contains control characters"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Thing {
        name: String,
        size: u64,
        #[serde(default, deserialize_with = "null_as_empty")]
        tags: Vec<String>,
        #[serde(default, deserialize_with = "optional_limit")]
        limit: Option<u64>,
    }

    fn kind_of<T>(r: Result<T>) -> String {
        match r {
            Ok(_) => "ok".into(),
            Err(ArrayError::BadReply { detail, .. }) => detail,
            Err(other) => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn informational_ratios_are_kept_only_when_positive_numbers() {
        let ratio = |text: &str| positive_ratio(Some(serde_json::from_str(text).expect("json")));
        assert_eq!(ratio("3.5"), Some(3.5));
        assert_eq!(ratio("1"), Some(1.0));
        for odd in ["0", "-1.5", "null", "\"4.0\"", "{}"] {
            assert_eq!(ratio(odd), None, "{odd}");
        }
        assert_eq!(positive_ratio(None), None);
    }

    #[test]
    fn missing_fields_are_named() {
        let detail = kind_of(decode::<Thing>("a", "get thing", br#"{"name": "x"}"#));
        assert!(detail.contains("size"), "{detail}");
    }

    #[test]
    fn malformed_truncated_and_empty_bodies_are_bad_replies() {
        assert!(
            kind_of(decode::<Thing>("a", "op", br#"{"name": "x", "si"#)).starts_with("truncated")
        );
        assert_eq!(kind_of(decode::<Thing>("a", "op", b"  ")), "empty body");
        assert!(kind_of(decode::<Thing>("a", "op", b"<html>")).contains("expected value"));
        let detail = kind_of(decode::<Thing>("a", "op", br#"{"name": "x", "size": -5}"#));
        assert!(detail.contains("invalid value"), "{detail}");
        let detail = kind_of(decode::<Thing>("a", "op", br#"["not", "an", "object"]"#));
        assert!(detail.contains("invalid type"), "{detail}");
    }

    #[test]
    fn extra_keys_nulls_and_empty_limits_are_tolerated() {
        let body = br#"{"name": "x", "size": 5, "tags": null, "limit": "", "new_key": {"a": 1}}"#;
        let thing: Thing = decode("a", "op", body).expect("decodes");
        assert_eq!(
            (
                thing.name.as_str(),
                thing.size,
                thing.tags.len(),
                thing.limit
            ),
            ("x", 5, 0, None)
        );
        let thing: Thing =
            decode("a", "op", br#"{"name": "x", "size": 5, "limit": 1048576}"#).expect("decodes");
        assert_eq!(thing.limit, Some(1_048_576));
        assert!(
            kind_of(decode::<Thing>(
                "a",
                "op",
                br#"{"name": "x", "size": 5, "limit": true}"#
            ))
            .contains("limit")
        );
    }

    #[test]
    fn dict_or_one_element_list_both_decode() {
        let dict: Thing = dict_or_first("a", "op", br#"{"name": "x", "size": 1}"#).expect("dict");
        let list: Thing = dict_or_first("a", "op", br#"[{"name": "x", "size": 1}]"#).expect("list");
        assert_eq!(dict.name, list.name);
        assert_eq!(
            kind_of(dict_or_first::<Thing>("a", "op", b"[]")),
            "empty list"
        );
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(
            path_segment("a", "volume", "k8s-pvc-1.snap").expect("ok"),
            "k8s-pvc-1.snap"
        );
        assert_eq!(path_segment("a", "volume", "pod::v").expect("ok"), "pod::v");
        assert_eq!(
            path_segment("a", "volume", "vg/v 1?").expect("ok"),
            "vg%2Fv%201%3F"
        );
        assert_eq!(path_segment("a", "volume", "é").expect("ok"), "%C3%A9");
    }

    #[test]
    fn empty_and_control_character_names_are_refused() {
        assert!(matches!(
            path_segment("a", "volume", ""),
            Err(ArrayError::InvalidInput { .. })
        ));
        assert!(matches!(
            check_name("a", "host", "h\n1"),
            Err(ArrayError::InvalidInput { .. })
        ));
    }
}
