//! Fault injection: latency, random 5xx answers, dropped connections and "fail the next N calls of
//! this endpoint" rules. The decision is a pure function of the fault set and one random draw, so
//! the server only applies what `decide` returns.

use serde::{Deserialize, Serialize};

use crate::glob::glob_match;

/// The faults currently injected into the array API (never into the `/_sim/` admin API).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Delay added before answering every API call, in milliseconds.
    pub latency_ms: u64,
    /// Fraction (0.0..=1.0) of API calls answered with HTTP 503.
    pub error_rate: f64,
    /// Fraction (0.0..=1.0) of API calls whose connection is closed without a reply.
    pub drop_rate: f64,
    /// One-shot rules, checked in order before the random faults.
    pub rules: Vec<FaultRule>,
}

/// Fail the next `count` calls whose method and path match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// HTTP method to match (case-insensitive); `*` or absent matches any.
    #[serde(default)]
    pub method: Option<String>,
    /// Request path glob, `*` matching any run of characters, e.g. `/api/*/volume/*`.
    pub path: String,
    /// How many more matching calls fail; the rule is spent at 0.
    pub count: u32,
    #[serde(default)]
    pub action: FaultAction,
}

/// What a matching call gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum FaultAction {
    /// Answer with this HTTP status and an error body in the array's shape.
    Status { status: u16 },
    /// Close the connection without answering.
    Drop,
}

impl Default for FaultAction {
    fn default() -> Self {
        FaultAction::Status { status: 500 }
    }
}

/// The outcome of fault injection for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    None,
    Status(u16),
    Drop,
}

#[derive(Debug, thiserror::Error)]
pub enum FaultSpecError {
    #[error("fault rate {name} must be between 0 and 1, got {value}")]
    Rate { name: &'static str, value: f64 },
    #[error("fault rule status must be 400..=599, got {0}")]
    Status(u16),
    #[error("fault rule path must not be empty")]
    EmptyPath,
    #[error("fault rule {0:?}: expected METHOD:PATH:COUNT[:STATUS|drop]")]
    Syntax(String),
}

impl Faults {
    /// Checks rates and rules; called on every externally supplied fault set.
    pub fn validate(&self) -> Result<(), FaultSpecError> {
        for (name, value) in [
            ("error_rate", self.error_rate),
            ("drop_rate", self.drop_rate),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(FaultSpecError::Rate { name, value });
            }
        }
        for rule in &self.rules {
            if rule.path.is_empty() {
                return Err(FaultSpecError::EmptyPath);
            }
            if let FaultAction::Status { status } = rule.action {
                if !(400..=599).contains(&status) {
                    return Err(FaultSpecError::Status(status));
                }
            }
        }
        Ok(())
    }

    /// Decides the fault for one call and consumes a matching rule. `draw` is uniform in [0, 1).
    pub fn decide(&mut self, method: &str, path: &str, draw: f64) -> Injected {
        if let Some(rule) = self
            .rules
            .iter_mut()
            .find(|rule| rule.count > 0 && rule.matches(method, path))
        {
            rule.count -= 1;
            let action = rule.action;
            self.rules.retain(|rule| rule.count > 0);
            return match action {
                FaultAction::Status { status } => Injected::Status(status),
                FaultAction::Drop => Injected::Drop,
            };
        }
        if draw < self.drop_rate {
            Injected::Drop
        } else if draw < self.drop_rate + self.error_rate {
            Injected::Status(503)
        } else {
            Injected::None
        }
    }
}

impl FaultRule {
    fn matches(&self, method: &str, path: &str) -> bool {
        let method_ok = match self.method.as_deref() {
            None | Some("*") => true,
            Some(wanted) => wanted.eq_ignore_ascii_case(method),
        };
        method_ok && glob_match(&self.path, path)
    }

    /// Parses the CLI form `METHOD:PATH:COUNT[:STATUS|drop]`, e.g. `POST:/api/*/volume/*:2:503`.
    pub fn parse_cli(text: &str) -> Result<FaultRule, FaultSpecError> {
        let syntax = || FaultSpecError::Syntax(text.to_string());
        let parts: Vec<&str> = text.split(':').collect();
        let (method, path, count, action) = match parts.as_slice() {
            [method, path, count] => (*method, *path, *count, None),
            [method, path, count, action] => (*method, *path, *count, Some(*action)),
            _ => return Err(syntax()),
        };
        let count = count.parse().map_err(|_| syntax())?;
        let action = match action {
            None => FaultAction::default(),
            Some(word) if word.eq_ignore_ascii_case("drop") => FaultAction::Drop,
            Some(status) => FaultAction::Status {
                status: status.parse().map_err(|_| syntax())?,
            },
        };
        let rule = FaultRule {
            method: (method != "*").then(|| method.to_string()),
            path: path.to_string(),
            count,
            action,
        };
        Faults {
            rules: vec![rule.clone()],
            ..Faults::default()
        }
        .validate()?;
        Ok(rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(method: Option<&str>, path: &str, count: u32, action: FaultAction) -> FaultRule {
        FaultRule {
            method: method.map(str::to_string),
            path: path.to_string(),
            count,
            action,
        }
    }

    #[test]
    fn rule_fails_exactly_the_next_n_matching_calls() {
        let mut faults = Faults {
            rules: vec![rule(
                Some("post"),
                "/api/*/volume/*",
                2,
                FaultAction::Status { status: 503 },
            )],
            ..Faults::default()
        };
        assert_eq!(
            faults.decide("GET", "/api/1.19/volume/a", 0.9),
            Injected::None
        );
        assert_eq!(
            faults.decide("POST", "/api/1.19/volume/a", 0.9),
            Injected::Status(503)
        );
        assert_eq!(
            faults.decide("POST", "/api/1.19/volume/b", 0.9),
            Injected::Status(503)
        );
        assert_eq!(
            faults.decide("POST", "/api/1.19/volume/c", 0.9),
            Injected::None
        );
        assert!(faults.rules.is_empty());
    }

    #[test]
    fn rates_split_the_draw_between_drop_error_and_success() {
        let mut faults = Faults {
            drop_rate: 0.25,
            error_rate: 0.25,
            ..Faults::default()
        };
        assert_eq!(faults.decide("GET", "/x", 0.1), Injected::Drop);
        assert_eq!(faults.decide("GET", "/x", 0.3), Injected::Status(503));
        assert_eq!(faults.decide("GET", "/x", 0.6), Injected::None);
    }

    #[test]
    fn cli_rule_syntax_is_parsed_and_checked() {
        let parsed = FaultRule::parse_cli("DELETE:/api/*/host/*:1:drop").expect("valid rule");
        assert_eq!(
            parsed,
            rule(Some("DELETE"), "/api/*/host/*", 1, FaultAction::Drop)
        );
        let any = FaultRule::parse_cli("*:/api/login:3").expect("valid rule");
        assert_eq!(
            any,
            rule(None, "/api/login", 3, FaultAction::Status { status: 500 })
        );
        assert!(FaultRule::parse_cli("GET:/x:1:200").is_err());
        assert!(FaultRule::parse_cli("GET:/x").is_err());
        assert!(FaultRule::parse_cli("GET:/x:many").is_err());
    }

    #[test]
    fn rates_outside_zero_to_one_are_rejected() {
        let faults = Faults {
            error_rate: 1.5,
            ..Faults::default()
        };
        assert!(faults.validate().is_err());
    }
}
