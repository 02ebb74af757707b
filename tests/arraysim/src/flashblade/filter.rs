//! The subset of FlashBlade's `filter` and `sort` syntax clients use: conjunctions (`and`) of
//! `field='glob'`, `field!='glob'`, `field=literal`, bare boolean `field` and `not(field)`, where
//! `field` may be dotted (`nfs.enabled`). Anything else is rejected with a clear message.

use std::cmp::Ordering;

use serde_json::Value;

use crate::glob::glob_match;

#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    terms: Vec<Term>,
}

#[derive(Debug, Clone, PartialEq)]
enum Term {
    Equals {
        field: String,
        value: String,
        negated: bool,
    },
    IsTrue {
        field: String,
        negated: bool,
    },
}

impl Filter {
    pub fn parse(expression: &str) -> Result<Filter, String> {
        let mut terms = Vec::new();
        for raw in split_and(expression) {
            let term = raw.trim();
            if term.is_empty() {
                return Err(format!("Empty term in filter {expression:?}."));
            }
            terms.push(
                parse_term(term).ok_or_else(|| format!("Unsupported filter term {term:?}."))?,
            );
        }
        Ok(Filter { terms })
    }

    pub fn matches(&self, row: &Value) -> bool {
        self.terms.iter().all(|term| match term {
            Term::Equals {
                field,
                value,
                negated,
            } => {
                let actual = lookup(row, field);
                let hit = match actual {
                    Some(Value::String(text)) => glob_match(value, text),
                    Some(Value::Number(n)) => n.to_string() == *value,
                    Some(Value::Bool(b)) => b.to_string() == value.to_ascii_lowercase(),
                    Some(Value::Null) | None => value == "null",
                    Some(_) => false,
                };
                hit != *negated
            }
            Term::IsTrue { field, negated } => {
                (lookup(row, field) == Some(&Value::Bool(true))) != *negated
            }
        })
    }
}

/// Splits on ` and ` outside quotes, case-insensitively.
fn split_and(expression: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut in_quote = false;
    let chars: Vec<char> = expression.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            in_quote = !in_quote;
        }
        let rest: String = chars[i..].iter().take(5).collect();
        if !in_quote && rest.eq_ignore_ascii_case(" and ") {
            parts.push(std::mem::take(&mut current));
            i += 5;
            continue;
        }
        current.push(c);
        i += 1;
    }
    parts.push(current);
    parts
}

fn parse_term(term: &str) -> Option<Term> {
    let is_field = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    };
    if let Some(inner) = term.strip_prefix("not(").and_then(|t| t.strip_suffix(')')) {
        let inner = inner.trim();
        return is_field(inner).then(|| Term::IsTrue {
            field: inner.to_string(),
            negated: true,
        });
    }
    let (field, value, negated) = if let Some((field, value)) = term.split_once("!=") {
        (field, value, true)
    } else if let Some((field, value)) = term.split_once('=') {
        (field, value, false)
    } else {
        return is_field(term).then(|| Term::IsTrue {
            field: term.to_string(),
            negated: false,
        });
    };
    let field = field.trim();
    let value = value.trim();
    let value = value
        .strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .unwrap_or(value);
    if value.contains('\'') || value.contains(' ') {
        return None;
    }
    is_field(field).then(|| Term::Equals {
        field: field.to_string(),
        value: value.to_string(),
        negated,
    })
}

fn lookup<'a>(row: &'a Value, field: &str) -> Option<&'a Value> {
    field.split('.').try_fold(row, |value, key| value.get(key))
}

/// `sort=field` ascending, `sort=field-` descending; rows without the field sort first.
pub fn sort_rows(rows: &mut [Value], sort: &str) {
    let (field, descending) = match sort.strip_suffix('-') {
        Some(field) => (field, true),
        None => (sort, false),
    };
    rows.sort_by(|a, b| {
        let order = compare(lookup(a, field), lookup(b, field));
        if descending { order.reverse() } else { order }
    });
}

fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .unwrap_or(0.0)
            .partial_cmp(&y.as_f64().unwrap_or(0.0))
            .unwrap_or(Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        _ => Ordering::Equal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn name_glob_and_boolean_terms_combine() {
        let row = json!({"name": "k8s-pvc-1", "nfs": {"enabled": true}, "smb": {"enabled": false}, "provisioned": 5});
        let matching =
            Filter::parse("name='k8s-*' and nfs.enabled and not(smb.enabled)").expect("parse");
        assert!(matching.matches(&row));
        assert!(!Filter::parse("name='other*'").expect("parse").matches(&row));
        assert!(Filter::parse("provisioned=5").expect("parse").matches(&row));
        assert!(Filter::parse("name!='x*'").expect("parse").matches(&row));
    }

    #[test]
    fn unsupported_syntax_is_rejected() {
        assert!(Filter::parse("name='a' or name='b'").is_err());
        assert!(Filter::parse("provisioned>5").is_err());
    }

    #[test]
    fn sort_descending_by_number() {
        let mut rows = vec![json!({"p": 1}), json!({"p": 3}), json!({"p": 2})];
        sort_rows(&mut rows, "p-");
        assert_eq!(
            rows,
            vec![json!({"p": 3}), json!({"p": 2}), json!({"p": 1})]
        );
    }
}
