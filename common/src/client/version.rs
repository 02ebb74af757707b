//! REST API version negotiation. Versions are compared as numeric dotted tuples, never as strings
//! or floats: "1.10" is newer than "1.9", and FlashBlade also offers three-part versions ("1.8.1").

/// `"1.19"` → `[1, 19]`; `None` for anything that is not dot-separated decimal numbers.
pub(crate) fn parse(version: &str) -> Option<Vec<u32>> {
    version
        .trim()
        .split('.')
        .map(|part| {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                None
            } else {
                part.parse().ok()
            }
        })
        .collect()
}

/// The newest 1.x version the array offers that is not newer than `newest_supported`.
/// Entries that do not parse (and 2.x and later) are ignored.
pub(crate) fn pick<'a>(
    offered: impl IntoIterator<Item = &'a str>,
    newest_supported: &[u32],
) -> Option<String> {
    offered
        .into_iter()
        .filter_map(|text| parse(text).map(|parsed| (parsed, text)))
        .filter(|(parsed, _)| parsed.first() == Some(&1) && parsed.as_slice() <= newest_supported)
        .max_by(|(a, _), (b, _)| a.cmp(b))
        .map(|(_, text)| text.trim().to_owned())
}

/// Whether `version` is at least `minimum` (false when it does not parse).
pub(crate) fn at_least(version: &str, minimum: &[u32]) -> bool {
    parse(version).is_some_and(|parsed| parsed.as_slice() >= minimum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_is_newer_than_nine() {
        assert_eq!(pick(["1.9", "1.10", "1.2"], &[1, 19]), Some("1.10".into()));
    }

    #[test]
    fn versions_newer_than_supported_and_2x_are_ignored() {
        let offered = ["1.0", "1.17", "1.19", "1.20", "2.0", "2.36"];
        assert_eq!(pick(offered, &[1, 19]), Some("1.19".into()));
    }

    #[test]
    fn three_part_versions_sort_between_their_neighbours() {
        assert_eq!(pick(["1.8", "1.8.1"], &[1, 12]), Some("1.8.1".into()));
        assert_eq!(pick(["1.8.1", "1.9"], &[1, 12]), Some("1.9".into()));
        assert_eq!(pick(["1.12", "1.13"], &[1, 12]), Some("1.12".into()));
    }

    #[test]
    fn garbage_entries_are_skipped_and_nothing_usable_is_none() {
        assert_eq!(
            pick(["x", "1.", ".1", "1.a", "", "1.3"], &[1, 19]),
            Some("1.3".into())
        );
        assert_eq!(pick(["2.0", "0.9", "banana"], &[1, 19]), None);
        assert_eq!(pick([], &[1, 19]), None);
    }

    #[test]
    fn at_least_compares_numerically() {
        assert!(at_least("1.10", &[1, 7]));
        assert!(at_least("1.7", &[1, 7]));
        assert!(!at_least("1.6", &[1, 7]));
        assert!(!at_least("nonsense", &[1, 7]));
    }
}
