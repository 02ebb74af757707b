//! The simulator's transport-neutral request and reply: what the HTTPS layer hands to the array
//! personalities and the admin API, and what they hand back. Also the parameter bag FlashArray
//! clients fill from the query string and/or a JSON body.

use serde_json::{Map, Value};

/// What a reply says when the simulator itself failed (its state dir, a backing file). The cause
/// names files under the state dir, so it goes to the log only: no reply shows an internal path.
pub const INTERNAL_ERROR: &str =
    "Internal error: the simulator could not store the change (its log says why).";

/// One HTTP request, already read in full.
#[derive(Debug, Clone, Default)]
pub struct ApiRequest {
    pub method: String,
    /// Percent-decoded path, e.g. `/api/1.19/volume/pvc-1`.
    pub path: String,
    /// Percent-decoded query pairs in order.
    pub query: Vec<(String, String)>,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ApiRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case("cookie"))
            .flat_map(|(_, value)| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
    }

    /// Path segments after `prefix`, e.g. `["volume", "pvc-1"]`.
    pub fn segments_after<'a>(&'a self, prefix: &str) -> Option<Vec<&'a str>> {
        let rest = self.path.strip_prefix(prefix)?;
        Some(rest.split('/').filter(|s| !s.is_empty()).collect())
    }

    /// The JSON body: `None` when empty or the literal `null`.
    pub fn json_body(&self) -> Result<Option<Value>, String> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        match serde_json::from_slice::<Value>(&self.body) {
            Ok(Value::Null) => Ok(None),
            Ok(value) => Ok(Some(value)),
            Err(error) => Err(format!("Request body is not valid JSON: {error}.")),
        }
    }
}

/// One HTTP reply.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ApiReply {
    pub fn json(status: u16, value: &Value) -> ApiReply {
        ApiReply {
            status,
            headers: vec![("content-type".to_string(), "application/json".to_string())],
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }

    pub fn empty(status: u16) -> ApiReply {
        ApiReply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> ApiReply {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// Parameters merged from the query string and a JSON object body (the body wins).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params(pub Map<String, Value>);

impl Params {
    pub fn from_request(request: &ApiRequest) -> Result<Params, String> {
        let mut map = Map::new();
        for (key, value) in &request.query {
            map.insert(key.clone(), Value::String(value.clone()));
        }
        match request.json_body()? {
            None => {}
            Some(Value::Object(body)) => map.extend(body),
            Some(_) => return Err("Request body must be a JSON object.".to_string()),
        }
        Ok(Params(map))
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.get(key).is_some_and(|value| !value.is_null())
    }

    /// A boolean given as JSON `true`/`false` or a case-insensitive `true`/`false` string.
    pub fn flag(&self, key: &str) -> Result<bool, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(value)) => Ok(*value),
            Some(Value::String(text)) => parse_bool(text).ok_or_else(|| invalid(key)),
            Some(_) => Err(invalid(key)),
        }
    }

    pub fn string(&self, key: &str) -> Result<Option<String>, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(invalid(key)),
        }
    }

    /// A list given as a JSON array of strings or a comma-separated string.
    pub fn list(&self, key: &str) -> Result<Option<Vec<String>>, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(split_csv(text))),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| invalid(key))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(invalid(key)),
        }
    }

    /// A non-negative integer given as a JSON number or a decimal string.
    pub fn unsigned(&self, key: &str) -> Result<Option<u64>, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(number)) => number.as_u64().map(Some).ok_or_else(|| invalid(key)),
            Some(Value::String(text)) => text.trim().parse().map(Some).map_err(|_| invalid(key)),
            Some(_) => Err(invalid(key)),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }
}

fn invalid(key: &str) -> String {
    format!("Invalid value for parameter {key}.")
}

pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

pub fn split_csv(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Decodes `%XX` escapes (and `+` as space when `plus_is_space`); invalid escapes stay literal.
pub fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(byte) => {
                        out.push(byte);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse_query(raw: Option<&str>) -> Vec<(String, String)> {
    raw.unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key, true), percent_decode(value, true))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str, body: &str) -> ApiRequest {
        ApiRequest {
            query: parse_query(Some(query)),
            body: body.as_bytes().to_vec(),
            ..ApiRequest::default()
        }
    }

    #[test]
    fn body_parameters_override_query_parameters() {
        let params =
            Params::from_request(&request("names=a%2Cb&pending=True", r#"{"names":["c"]}"#))
                .expect("params");
        assert_eq!(
            params.list("names").expect("list"),
            Some(vec!["c".to_string()])
        );
        assert!(params.flag("pending").expect("flag"));
    }

    #[test]
    fn null_and_empty_bodies_mean_no_parameters() {
        assert_eq!(
            Params::from_request(&request("", "null")).expect("null"),
            Params::default()
        );
        assert_eq!(
            Params::from_request(&request("", "")).expect("empty"),
            Params::default()
        );
        assert!(Params::from_request(&request("", "[1]")).is_err());
        assert!(Params::from_request(&request("", "{bad")).is_err());
    }

    #[test]
    fn percent_escapes_decode_and_bad_escapes_stay_literal() {
        assert_eq!(percent_decode("name%3D%27x%2A%27", false), "name='x*'");
        assert_eq!(percent_decode("100%", false), "100%");
        assert_eq!(percent_decode("a+b", true), "a b");
    }

    #[test]
    fn cookie_is_found_among_several() {
        let req = ApiRequest {
            headers: vec![("Cookie".to_string(), "a=1; session=xyz".to_string())],
            ..ApiRequest::default()
        };
        assert_eq!(req.cookie("session"), Some("xyz"));
    }
}
