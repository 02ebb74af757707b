//! Purity's naming rules, shared by both array personalities.

/// Volume, host and file system names: 1 to 63 letters, digits, `-` or `_`, starting with a
/// letter or digit.
pub fn is_valid_object_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Snapshot suffixes: 1 to 63 letters, digits or `-`.
pub fn is_valid_suffix(suffix: &str) -> bool {
    (1..=63).contains(&suffix.len())
        && suffix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
}
