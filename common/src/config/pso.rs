//! PSO 2.x's array lists, `FlashArrays` and `FlashBlades`, read as PSO's Go code read them: keys
//! match case-insensitively (`NfsEndPoint` and `NFSEndPoint` both work), Helm's `toJson` numbers in
//! `Labels` are kept as text. Unlike PSO, an unknown key is an error naming it (a misspelt
//! `NfsEndpont` silently lost the NFS endpoint in PSO), and an array listed twice is refused.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::endpoint::{ApiToken, Endpoint};

/// One FlashArray from `pure.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlashArrayConfig {
    pub mgmt_endpoint: Endpoint,
    pub api_token: ApiToken,
    pub labels: BTreeMap<String, String>,
}

/// One FlashBlade from `pure.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlashBladeConfig {
    pub mgmt_endpoint: Endpoint,
    pub api_token: ApiToken,
    /// The data VIP to mount from. When absent, a data VIP is discovered from the array.
    pub nfs_endpoint: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// The arrays of `pure.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Arrays {
    pub flash_arrays: Vec<FlashArrayConfig>,
    pub flash_blades: Vec<FlashBladeConfig>,
}

/// A problem at a key: (`FlashArrays[0].APIToken`, `is required`).
pub(super) type FieldError = (String, String);

impl Arrays {
    /// Refuses an array listed twice in one list (the same host and port, however written).
    pub(super) fn check_unique(&self) -> Result<(), FieldError> {
        check_unique(
            self.flash_arrays.iter().map(|a| &a.mgmt_endpoint),
            "FlashArrays",
        )?;
        check_unique(
            self.flash_blades.iter().map(|a| &a.mgmt_endpoint),
            "FlashBlades",
        )
    }
}

/// `FlashArrays` (`key` as the user spelt it): a list of objects, or `null` for none.
pub(super) fn parse_flash_arrays(
    key: &str,
    value: Value,
) -> Result<Vec<FlashArrayConfig>, FieldError> {
    parse_list(key, value, parse_flash_array)
}

/// `FlashBlades` (`key` as the user spelt it): a list of objects, or `null` for none.
pub(super) fn parse_flash_blades(
    key: &str,
    value: Value,
) -> Result<Vec<FlashBladeConfig>, FieldError> {
    parse_list(key, value, parse_flash_blade)
}

fn parse_list<T>(
    key: &str,
    value: Value,
    parse_one: fn(&str, Map<String, Value>) -> Result<T, FieldError>,
) -> Result<Vec<T>, FieldError> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                let at = format!("{key}[{i}]");
                match item {
                    Value::Object(fields) => parse_one(&at, fields),
                    _ => Err((at, "must be an object".into())),
                }
            })
            .collect(),
        _ => Err((key.to_owned(), "must be a list".into())),
    }
}

/// Takes the fields of one array entry, matching names case-insensitively as Go did.
struct Fields {
    at: String,
    fields: Map<String, Value>,
}

impl Fields {
    fn new(at: &str, fields: Map<String, Value>, known: &[&str]) -> Result<Self, FieldError> {
        for key in fields.keys() {
            if !known.iter().any(|k| k.eq_ignore_ascii_case(key)) {
                return Err((
                    format!("{at}.{key}"),
                    format!("unknown key (expected one of {})", known.join(", ")),
                ));
            }
        }
        Ok(Self {
            at: at.to_owned(),
            fields,
        })
    }

    fn take(&mut self, name: &str) -> Option<(String, Value)> {
        let key = self
            .fields
            .keys()
            .find(|k| k.eq_ignore_ascii_case(name))?
            .clone();
        self.fields.remove_entry(&key)
    }

    fn string(&mut self, name: &str, required: bool) -> Result<Option<String>, FieldError> {
        match self.take(name) {
            None | Some((_, Value::Null)) if required => {
                Err((format!("{}.{name}", self.at), "is required".into()))
            }
            None | Some((_, Value::Null)) => Ok(None),
            Some((key, Value::String(s))) => {
                if s.trim().is_empty() && required {
                    Err((format!("{}.{key}", self.at), "must not be empty".into()))
                } else {
                    Ok(Some(s.trim().to_owned()))
                }
            }
            Some((key, _)) => Err((format!("{}.{key}", self.at), "must be a string".into())),
        }
    }

    fn endpoint(&mut self, name: &str) -> Result<Endpoint, FieldError> {
        let raw = self.string(name, true)?.unwrap_or_default();
        raw.parse()
            .map_err(|problem| (format!("{}.{name}", self.at), problem))
    }

    fn token(&mut self) -> Result<ApiToken, FieldError> {
        Ok(ApiToken::new(
            self.string("APIToken", true)?.unwrap_or_default(),
        ))
    }

    /// PSO's Labels are a map; Helm's `toJson` turns `rack: 22` into a number, so scalars are
    /// accepted and kept as their text.
    fn labels(&mut self) -> Result<BTreeMap<String, String>, FieldError> {
        let Some((key, value)) = self.take("Labels") else {
            return Ok(BTreeMap::new());
        };
        let at = format!("{}.{key}", self.at);
        match value {
            Value::Null => Ok(BTreeMap::new()),
            Value::Object(map) => map
                .into_iter()
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s,
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => return Err((format!("{at}.{k}"), "must be a string".into())),
                    };
                    if k.is_empty() {
                        return Err((at.clone(), "label names must not be empty".into()));
                    }
                    Ok((k, text))
                })
                .collect(),
            _ => Err((at, "must be an object of label names to values".into())),
        }
    }
}

fn parse_flash_array(at: &str, fields: Map<String, Value>) -> Result<FlashArrayConfig, FieldError> {
    let mut f = Fields::new(at, fields, &["MgmtEndPoint", "APIToken", "Labels"])?;
    Ok(FlashArrayConfig {
        mgmt_endpoint: f.endpoint("MgmtEndPoint")?,
        api_token: f.token()?,
        labels: f.labels()?,
    })
}

fn parse_flash_blade(at: &str, fields: Map<String, Value>) -> Result<FlashBladeConfig, FieldError> {
    let mut f = Fields::new(
        at,
        fields,
        &["MgmtEndPoint", "APIToken", "NfsEndPoint", "Labels"],
    )?;
    let mgmt_endpoint = f.endpoint("MgmtEndPoint")?;
    let api_token = f.token()?;
    let nfs_endpoint = f
        .string("NfsEndPoint", false)?
        .filter(|s| !s.is_empty())
        .map(|raw| {
            let ep: Endpoint = raw.parse().map_err(|p| (format!("{at}.NfsEndPoint"), p))?;
            if ep.has_explicit_port() {
                return Err((
                    format!("{at}.NfsEndPoint"),
                    format!("{raw:?}: give the data VIP without a port"),
                ));
            }
            Ok(ep.host().to_owned())
        })
        .transpose()?;
    Ok(FlashBladeConfig {
        mgmt_endpoint,
        api_token,
        nfs_endpoint,
        labels: f.labels()?,
    })
}

fn check_unique<'a>(
    endpoints: impl Iterator<Item = &'a Endpoint>,
    list: &str,
) -> Result<(), FieldError> {
    let mut seen = BTreeSet::new();
    for (i, ep) in endpoints.enumerate() {
        if !seen.insert(ep.authority()) {
            return Err((
                format!("{list}[{i}].MgmtEndPoint"),
                format!("{ep} is listed twice"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_blade(entry: Value) -> Result<FlashBladeConfig, FieldError> {
        let mut blades = parse_flash_blades("FlashBlades", Value::Array(vec![entry]))?;
        Ok(blades.remove(0))
    }

    #[test]
    fn a_data_vip_with_a_port_is_refused() {
        let (key, problem) = one_blade(serde_json::json!(
            {"MgmtEndPoint": "fb", "APIToken": "t", "NfsEndPoint": "10.0.0.9:2049"}
        ))
        .expect_err("refused");
        assert_eq!(key, "FlashBlades[0].NfsEndPoint");
        assert!(problem.contains("without a port"), "{problem}");
    }

    #[test]
    fn labels_keep_scalars_as_text_and_refuse_the_rest() {
        let fas = parse_flash_arrays(
            "FlashArrays",
            serde_json::json!([{"MgmtEndPoint": "a", "APIToken": "t",
                                "Labels": {"rack": 22, "ssd": true, "zone": "b"}}]),
        )
        .expect("valid");
        let labels = &fas[0].labels;
        assert_eq!(
            (
                labels["rack"].as_str(),
                labels["ssd"].as_str(),
                labels["zone"].as_str()
            ),
            ("22", "true", "b")
        );
        let (key, _) = parse_flash_arrays(
            "FlashArrays",
            serde_json::json!([{"MgmtEndPoint": "a", "APIToken": "t", "Labels": {"x": [1]}}]),
        )
        .expect_err("refused");
        assert_eq!(key, "FlashArrays[0].Labels.x");
    }

    #[test]
    fn lists_may_be_null_but_not_scalars() {
        assert!(
            parse_flash_arrays("FlashArrays", Value::Null)
                .expect("null")
                .is_empty()
        );
        assert_eq!(
            parse_flash_arrays("flasharrays", serde_json::json!("a"))
                .expect_err("refused")
                .0,
            "flasharrays"
        );
        assert_eq!(
            parse_flash_arrays("FlashArrays", serde_json::json!([1]))
                .expect_err("refused")
                .0,
            "FlashArrays[0]"
        );
    }
}
