//! Which array gets a new volume: label selection, then free capacity.
//!
//! Owns the pure placement rules; the free space figures come from the caller (cached array
//! queries). The claim's `spec.selector` (matchLabels and matchExpressions with `In`, `NotIn`,
//! `Exists`, `DoesNotExist`) filters arrays by their `Labels` from `pure.json`; among the arrays
//! left with room for the volume, the one with the most free bytes wins, ties going to the one
//! listed first in `pure.json` so the choice is deterministic.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::decide::quantity::format_bytes;

/// A selector that cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid claim selector: {0}")]
pub struct SelectorError(pub String);

/// Checks a selector's shape: known operators, values present exactly when the operator needs them.
pub fn validate_selector(selector: &LabelSelector) -> Result<(), SelectorError> {
    for req in selector.match_expressions.iter().flatten() {
        let values = req.values.as_deref().unwrap_or_default();
        match req.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => {
                return Err(SelectorError(format!(
                    "{} {} needs at least one value",
                    req.key, req.operator
                )));
            }
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                return Err(SelectorError(format!(
                    "{} {} takes no values",
                    req.key, req.operator
                )));
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => {
                return Err(SelectorError(format!(
                    "{}: unknown operator {other:?} (expected In, NotIn, Exists or DoesNotExist)",
                    req.key
                )));
            }
        }
    }
    Ok(())
}

/// Whether `labels` satisfy a (validated) selector. An empty selector matches everything.
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions_ok = selector.match_expressions.iter().flatten().all(|req| {
        let values = req.values.as_deref().unwrap_or_default();
        let value = labels.get(&req.key);
        match req.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    labels_ok && expressions_ok
}

/// A selector as text for messages and the PV's `labels` option: `k=v,k2 in (a,b)`.
pub fn describe_selector(selector: Option<&LabelSelector>) -> String {
    let Some(selector) = selector else {
        return String::new();
    };
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for req in selector.match_expressions.iter().flatten() {
        let values = req.values.as_deref().unwrap_or_default().join(",");
        parts.push(match req.operator.as_str() {
            "Exists" => req.key.clone(),
            "DoesNotExist" => format!("!{}", req.key),
            op => format!("{} {} ({values})", req.key, op.to_ascii_lowercase()),
        });
    }
    parts.join(",")
}

/// Free space as placement sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Free bytes as the array last reported them.
    pub free: u64,
    /// Bytes of volumes this process created here since that report.
    pub placed: u64,
}

/// One array of the requested backend, as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// Management endpoint, for messages.
    pub endpoint: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    /// Free bytes, or why they are unknown (array unreachable).
    pub free: Result<u64, String>,
    /// Bytes placed on it since `free` was read: lowers its rank, not whether a volume fits.
    pub placed: u64,
}

impl<'a> Candidate<'a> {
    /// An array with its space as last read, or why that could not be read: an unreachable
    /// array stays a candidate, so a refusal can say it was unavailable.
    pub fn new(
        endpoint: &'a str,
        labels: &'a BTreeMap<String, String>,
        space: Result<Space, String>,
    ) -> Self {
        Self {
            endpoint,
            labels,
            placed: space.as_ref().map_or(0, |s| s.placed),
            free: space.map(|s| s.free),
        }
    }
}

/// Why no array was chosen; the text goes into a `ProvisioningFailed` event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    #[error("no {kind} is configured in pure.json")]
    NoneConfigured { kind: &'static str },
    #[error(
        "no {kind} matches the claim's selector {selector:?} (arrays and their labels: {arrays})"
    )]
    NoMatch {
        kind: &'static str,
        selector: String,
        arrays: String,
    },
    #[error("no {kind} has room for {size}: {details}")]
    NoSpace {
        kind: &'static str,
        size: String,
        details: String,
    },
}

/// Picks the index (into `candidates`) of the array for a volume of `size` bytes.
pub fn choose_array(
    kind: &'static str,
    candidates: &[Candidate<'_>],
    selector: Option<&LabelSelector>,
    size: u64,
) -> Result<usize, PlacementError> {
    if candidates.is_empty() {
        return Err(PlacementError::NoneConfigured { kind });
    }
    let matching: Vec<usize> = (0..candidates.len())
        .filter(|&i| selector.is_none_or(|s| selector_matches(s, candidates[i].labels)))
        .collect();
    if matching.is_empty() {
        let mut arrays = String::new();
        for c in candidates {
            let labels = c
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            let _ = write!(
                arrays,
                "{}{} [{labels}]",
                if arrays.is_empty() { "" } else { "; " },
                c.endpoint
            );
        }
        return Err(PlacementError::NoMatch {
            kind,
            selector: describe_selector(selector),
            arrays,
        });
    }
    // Among the arrays the volume fits on, the most free bytes after what was just placed wins;
    // `max_by_key` keeps the last maximum, so iterate in reverse to keep the first-listed array
    // on a tie.
    let best = matching
        .iter()
        .rev()
        .filter_map(|&i| match candidates[i].free {
            Ok(free) if free >= size => Some((free.saturating_sub(candidates[i].placed), i)),
            _ => None,
        })
        .max_by_key(|(rank, _)| *rank)
        .map(|(_, i)| i);
    best.ok_or_else(|| PlacementError::NoSpace {
        kind,
        size: format_bytes(size),
        details: matching
            .iter()
            .map(|&i| {
                let c = &candidates[i];
                match &c.free {
                    Ok(free) => format!("{} has {} free", c.endpoint, format_bytes(*free)),
                    Err(why) => format!("{} is unavailable ({why})", c.endpoint),
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| (*v).to_owned()).collect()),
        }
    }

    fn selector(
        match_labels: &[(&str, &str)],
        exprs: Vec<LabelSelectorRequirement>,
    ) -> LabelSelector {
        LabelSelector {
            match_labels: (!match_labels.is_empty()).then(|| labels(match_labels)),
            match_expressions: (!exprs.is_empty()).then_some(exprs),
        }
    }

    #[test]
    fn selector_operators() {
        let l = labels(&[("rack", "22"), ("env", "prod")]);
        let yes = [
            selector(&[("rack", "22")], vec![]),
            selector(&[], vec![expr("env", "In", &["dev", "prod"])]),
            selector(&[], vec![expr("env", "NotIn", &["dev"])]),
            selector(&[], vec![expr("zone", "NotIn", &["a"])]),
            selector(&[], vec![expr("rack", "Exists", &[])]),
            selector(&[], vec![expr("zone", "DoesNotExist", &[])]),
            LabelSelector::default(),
        ];
        for s in &yes {
            assert!(selector_matches(s, &l), "{s:?}");
        }
        let no = [
            selector(&[("rack", "23")], vec![]),
            selector(&[], vec![expr("env", "In", &["dev"])]),
            selector(&[], vec![expr("env", "NotIn", &["prod"])]),
            selector(&[], vec![expr("zone", "Exists", &[])]),
            selector(&[], vec![expr("rack", "DoesNotExist", &[])]),
            selector(&[("rack", "22")], vec![expr("env", "In", &["dev"])]),
        ];
        for s in &no {
            assert!(!selector_matches(s, &l), "{s:?}");
        }
    }

    #[test]
    fn malformed_selectors_are_refused() {
        assert!(validate_selector(&selector(&[], vec![expr("a", "In", &[])])).is_err());
        assert!(validate_selector(&selector(&[], vec![expr("a", "Exists", &["x"])])).is_err());
        let err = validate_selector(&selector(&[], vec![expr("a", "Gt", &["1"])]))
            .expect_err("must be refused");
        assert!(err.to_string().contains("Gt"), "{err}");
        assert!(
            validate_selector(&selector(&[("a", "b")], vec![expr("c", "NotIn", &["d"])])).is_ok()
        );
    }

    #[test]
    fn most_free_space_wins_and_ties_go_to_the_first_listed() {
        let none = BTreeMap::new();
        let c = |endpoint, free: u64| Candidate {
            endpoint,
            labels: &none,
            free: Ok(free),
            placed: 0,
        };
        let arrays = [c("a", 100), c("b", 300), c("c", 300), c("d", 200)];
        assert_eq!(choose_array("FlashArray", &arrays, None, 10), Ok(1));
        assert_eq!(choose_array("FlashArray", &arrays, None, 300), Ok(1));
    }

    #[test]
    fn bytes_placed_since_the_last_read_lower_the_rank_but_never_block_a_fit() {
        let none = BTreeMap::new();
        let c = |endpoint, free: u64, placed: u64| Candidate {
            endpoint,
            labels: &none,
            free: Ok(free),
            placed,
        };
        // "a" has more free space but was just given 150 bytes: "b" ranks higher.
        let arrays = [c("a", 300, 150), c("b", 200, 0)];
        assert_eq!(choose_array("FlashArray", &arrays, None, 10), Ok(1));
        // Thin arrays take more than they have free: a volume still fits on "a" by its own figure.
        let arrays = [c("a", 300, 1000)];
        assert_eq!(choose_array("FlashArray", &arrays, None, 250), Ok(0));
    }

    #[test]
    fn selector_narrows_the_candidates_before_space_counts() {
        let fast = labels(&[("tier", "fast")]);
        let slow = labels(&[("tier", "slow")]);
        let arrays = [
            Candidate {
                endpoint: "big",
                labels: &slow,
                free: Ok(1000),
                placed: 0,
            },
            Candidate {
                endpoint: "small",
                labels: &fast,
                free: Ok(10),
                placed: 0,
            },
        ];
        let s = selector(&[("tier", "fast")], vec![]);
        assert_eq!(choose_array("FlashArray", &arrays, Some(&s), 5), Ok(1));
        let err = choose_array("FlashArray", &arrays, Some(&s), 50).expect_err("must be refused");
        assert!(
            matches!(&err, PlacementError::NoSpace { details, .. } if details.contains("small has 10 free") && !details.contains("big")),
            "{err}"
        );
    }

    #[test]
    fn no_match_and_no_arrays_say_why() {
        let slow = labels(&[("tier", "slow")]);
        let arrays = [Candidate {
            endpoint: "a1",
            labels: &slow,
            free: Ok(1000),
            placed: 0,
        }];
        let s = selector(&[], vec![expr("tier", "In", &["fast"])]);
        let err = choose_array("FlashBlade", &arrays, Some(&s), 5)
            .expect_err("must be refused")
            .to_string();
        assert!(
            err.contains("tier in (fast)") && err.contains("a1 [tier=slow]"),
            "{err}"
        );
        let err = choose_array("FlashBlade", &[], None, 5)
            .expect_err("must be refused")
            .to_string();
        assert!(err.contains("no FlashBlade is configured"), "{err}");
    }

    #[test]
    fn an_array_is_a_candidate_with_its_space_or_why_it_is_unknown() {
        let none = BTreeMap::new();
        let space = Space {
            free: 300,
            placed: 100,
        };
        assert_eq!(
            Candidate::new("a", &none, Ok(space)),
            Candidate {
                endpoint: "a",
                labels: &none,
                free: Ok(300),
                placed: 100,
            }
        );
        assert_eq!(
            Candidate::new("b", &none, Err("connection refused".into())),
            Candidate {
                endpoint: "b",
                labels: &none,
                free: Err("connection refused".into()),
                placed: 0,
            }
        );
    }

    #[test]
    fn unreachable_arrays_are_skipped_and_reported() {
        let none = BTreeMap::new();
        let arrays = [
            Candidate {
                endpoint: "down",
                labels: &none,
                free: Err("connection refused".into()),
                placed: 0,
            },
            Candidate {
                endpoint: "up",
                labels: &none,
                free: Ok(50),
                placed: 0,
            },
        ];
        assert_eq!(choose_array("FlashArray", &arrays, None, 10), Ok(1));
        let err = choose_array("FlashArray", &arrays, None, 100)
            .expect_err("must be refused")
            .to_string();
        assert!(
            err.contains("down is unavailable (connection refused)")
                && err.contains("up has 50 free"),
            "{err}"
        );
    }
}
