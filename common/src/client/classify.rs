//! Error replies → [`ArrayError`] variants, so callers match on variants and never on text.
//!
//! FlashArray sends a JSON list `[{"msg": "...", "ctx": "<object>", ...}]`; FlashBlade sends
//! `{"errors": [{"code": n, "context": "<object>", "message": "..."}]}`. Both shapes (and a bare
//! object, or plain text) are accepted from either array: the classification depends only on the
//! status and the message text. The substrings are the ones OpenStack Cinder and Manila match on
//! against real arrays (see `array-api.md` §2.4), compared case-insensitively.

use serde_json::Value;

use crate::error::ArrayError;

/// What the failed request was trying to do, where the same text means different things.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Intent {
    Other,
    /// Destroying or deleting: a refusal that mentions connections means "disconnect first".
    Destroy,
}

/// The longest array text we keep in an error (replies can be large HTML pages from proxies).
const MAX_MESSAGE: usize = 512;

/// The array's messages and the object it named, from an error body of either shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ErrorText {
    pub message: String,
    pub context: Option<String>,
}

/// Reads an error body. Never fails: an undecodable body becomes its (shortened) text.
pub(crate) fn error_text(body: &[u8]) -> ErrorText {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let entries: Vec<&Value> = match &parsed {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(whole @ Value::Object(map)) => match map.get("errors").or_else(|| map.get("error")) {
            Some(Value::Array(items)) => items.iter().collect(),
            _ => vec![whole],
        },
        _ => Vec::new(),
    };
    let text_of = |entry: &Value, keys: &[&str]| {
        keys.iter()
            .find_map(|key| entry.get(*key).and_then(Value::as_str))
            .map(str::to_owned)
    };
    let messages: Vec<String> = entries
        .iter()
        .filter_map(|entry| text_of(entry, &["msg", "message"]))
        .filter(|m| !m.trim().is_empty())
        .collect();
    let context = entries
        .iter()
        .find_map(|entry| text_of(entry, &["ctx", "context"]))
        .filter(|c| !c.is_empty());
    let message = if messages.is_empty() {
        let raw = String::from_utf8_lossy(body);
        let raw = raw.trim();
        if raw.is_empty() {
            "(empty reply)".to_owned()
        } else {
            raw.to_owned()
        }
    } else {
        messages.join("; ")
    };
    ErrorText {
        message: shorten(message),
        context: context.map(shorten),
    }
}

fn shorten(mut text: String) -> String {
    if text.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// Classifies a non-success reply. `object` names what the request was about, used when the
/// array does not say (`ctx`/`context`). Authentication statuses become [`ArrayError::Auth`]:
/// callers only get here after their one re-authentication attempt.
pub(crate) fn classify(
    endpoint: &str,
    status: u16,
    body: &[u8],
    object: &str,
    intent: Intent,
) -> ArrayError {
    let ErrorText { message, context } = error_text(body);
    let endpoint = endpoint.to_owned();
    if status == 401 || status == 403 {
        return ArrayError::Auth { endpoint, message };
    }
    if !(400..500).contains(&status) {
        return ArrayError::Api {
            endpoint,
            status,
            message,
        };
    }
    let object = context.unwrap_or_else(|| object.to_owned());
    let lower = message.to_ascii_lowercase();
    let has = |needle: &str| lower.contains(needle);
    if has("cannot be deleted due to existing connections") {
        ArrayError::HasConnections {
            endpoint,
            object,
            message,
        }
    } else if has("is not connected") {
        ArrayError::NotConnected {
            endpoint,
            object,
            message,
        }
    } else if has("already exists") || has("already belongs to") {
        ArrayError::AlreadyExists {
            endpoint,
            object,
            message,
        }
    } else if has("already in use") {
        ArrayError::InUse {
            endpoint,
            object,
            message,
        }
    } else if has("has been destroyed") {
        ArrayError::Destroyed {
            endpoint,
            object,
            message,
        }
    } else if has("does not exist") || has("no such volume or snapshot") {
        ArrayError::NotFound {
            endpoint,
            object,
            message,
        }
    } else if intent == Intent::Destroy && (has("connected") || has("connection")) {
        ArrayError::HasConnections {
            endpoint,
            object,
            message,
        }
    } else {
        ArrayError::Api {
            endpoint,
            status,
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fa(msg: &str) -> Vec<u8> {
        serde_json::json!([{"pure_err_key": "err.friendly", "pure_err_code": 1, "msg": msg, "ctx": "vol1"}])
            .to_string()
            .into_bytes()
    }

    fn fb(message: &str) -> Vec<u8> {
        serde_json::json!({"errors": [{"code": 400, "context": "fs1", "message": message}]})
            .to_string()
            .into_bytes()
    }

    fn kind(status: u16, body: &[u8], intent: Intent) -> &'static str {
        classify("a1", status, body, "obj", intent).kind()
    }

    #[test]
    fn flasharray_messages_map_to_their_variants() {
        let cases = [
            ("Volume already exists.", "already_exists"),
            (
                "Volume 'v' already belongs to protection group 'g'.",
                "already_exists",
            ),
            ("Protection group does not exist.", "not_found"),
            ("Protection group has been destroyed.", "destroyed"),
            ("Connection already exists.", "already_exists"),
            ("The specified IQN is already in use.", "in_use"),
            ("Volume does not exist.", "not_found"),
            ("Host does not exist.", "not_found"),
            ("No such volume or snapshot.", "not_found"),
            ("Volume has been destroyed.", "destroyed"),
            ("Volume is not connected to host.", "not_connected"),
            (
                "Host cannot be deleted due to existing connections.",
                "has_connections",
            ),
            ("Invalid size.", "api"),
        ];
        for (msg, expected) in cases {
            assert_eq!(kind(400, &fa(msg), Intent::Other), expected, "{msg}");
        }
    }

    #[test]
    fn flashblade_messages_map_to_their_variants() {
        assert_eq!(
            kind(400, &fb("File system already exists."), Intent::Other),
            "already_exists"
        );
        assert_eq!(
            kind(400, &fb("File system does not exist."), Intent::Other),
            "not_found"
        );
        assert_eq!(kind(400, &fb("Quota too small."), Intent::Other), "api");
    }

    #[test]
    fn connected_means_has_connections_only_when_destroying() {
        let body = fa("Volume is connected to one or more hosts.");
        assert_eq!(kind(400, &body, Intent::Destroy), "has_connections");
        assert_eq!(kind(400, &body, Intent::Other), "api");
        let plural =
            fa("Volume has host connections and cannot be destroyed; disconnect it first.");
        assert_eq!(kind(400, &plural, Intent::Destroy), "has_connections");
        let not_connected = fa("Volume is not connected to host.");
        assert_eq!(kind(400, &not_connected, Intent::Destroy), "not_connected");
    }

    #[test]
    fn auth_statuses_and_server_errors_ignore_the_text() {
        assert_eq!(
            kind(401, &fa("Volume does not exist."), Intent::Other),
            "auth"
        );
        assert_eq!(kind(403, b"", Intent::Other), "auth");
        let err = classify("a1", 503, &fa("Volume already exists."), "v", Intent::Other);
        assert!(matches!(err, ArrayError::Api { status: 503, .. }));
        assert!(err.is_transient());
    }

    #[test]
    fn the_object_comes_from_the_reply_context_when_present() {
        let err = classify(
            "a1",
            400,
            &fa("Volume does not exist."),
            "asked",
            Intent::Other,
        );
        assert!(matches!(err, ArrayError::NotFound { ref object, .. } if object == "vol1"));
        let bare = br#"[{"msg": "Volume does not exist."}]"#;
        let err = classify("a1", 400, bare, "asked", Intent::Other);
        assert!(matches!(err, ArrayError::NotFound { ref object, .. } if object == "asked"));
    }

    #[test]
    fn undecodable_error_bodies_become_their_text() {
        let cases: [&[u8]; 6] = [
            b"<html>502 Bad Gateway</html>",
            b"",
            b"[{\"msg\": \"trunc",
            b"null",
            b"[1, 2, {\"msg\": 7}]",
            &[0xff, 0xfe, 0x00],
        ];
        for body in cases {
            let text = error_text(body);
            assert!(!text.message.is_empty(), "{body:?}");
        }
        assert_eq!(error_text(b"").message, "(empty reply)");
        assert_eq!(error_text(b"  plain words ").message, "plain words");
    }

    #[test]
    fn several_messages_are_joined_and_long_text_is_shortened() {
        let body = br#"[{"msg": "first"}, {"msg": "second"}]"#;
        assert_eq!(error_text(body).message, "first; second");
        let long = "é".repeat(2000);
        let text = error_text(long.as_bytes()).message;
        assert!(text.len() <= MAX_MESSAGE + '…'.len_utf8());
        assert!(text.ends_with('…'));
    }

    #[test]
    fn a_bare_object_with_msg_is_understood() {
        let body = br#"{"msg": "Host already exists.", "ctx": "h1"}"#;
        let err = classify("a1", 400, body, "x", Intent::Other);
        assert!(matches!(err, ArrayError::AlreadyExists { ref object, .. } if object == "h1"));
    }
}
