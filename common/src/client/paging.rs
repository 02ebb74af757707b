//! Following paging tokens to the end, for both arrays: `limit` then `token=<t>` until a page
//! comes back empty or without a token. The arrays differ only in where the next token is
//! (FlashArray: the `x-next-token` header; FlashBlade: `pagination_info.continuation_token`),
//! so each client passes a closure that fetches one page and returns its items and that token.

use std::collections::HashSet;

use crate::client::wire::bad_reply;
use crate::error::Result;

/// A guard against an array that hands out fresh paging tokens forever.
const MAX_PAGES: usize = 100_000;

/// Collects every page. `fetch(token)` fetches the page after `token` (the first page for
/// `None`). A token the array hands out twice would loop forever, so it is a `BadReply`.
pub(crate) fn collect_pages<T>(
    endpoint: &str,
    operation: &str,
    mut fetch: impl FnMut(Option<&str>) -> Result<(Vec<T>, Option<String>)>,
) -> Result<Vec<T>> {
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    let mut seen = HashSet::new();
    for _ in 0..MAX_PAGES {
        let (batch, next) = fetch(token.as_deref())?;
        let last = batch.is_empty();
        items.extend(batch);
        match next.filter(|t| !t.is_empty()) {
            Some(next) if !last => {
                if !seen.insert(next.clone()) {
                    return Err(bad_reply(
                        endpoint,
                        operation,
                        "the array repeated a paging token",
                    ));
                }
                token = Some(next);
            }
            _ => return Ok(items),
        }
    }
    Err(bad_reply(
        endpoint,
        operation,
        format!("more than {MAX_PAGES} pages"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_tokens_until_an_empty_page_or_no_token() {
        let pages = [
            (vec![1, 2], Some("a")),
            (vec![3], Some("b")),
            (vec![], Some("c")),
        ];
        let mut asked = Vec::new();
        let all = collect_pages("ep", "list", |token| {
            asked.push(token.map(str::to_owned));
            let (items, next) = &pages[asked.len() - 1];
            Ok((items.clone(), next.map(str::to_owned)))
        })
        .expect("pages");
        assert_eq!(all, vec![1, 2, 3]);
        assert_eq!(asked, vec![None, Some("a".into()), Some("b".into())]);

        let one = collect_pages("ep", "list", |_| Ok((vec![7], None))).expect("one page");
        assert_eq!(one, vec![7]);
    }

    #[test]
    fn a_repeated_token_is_a_bad_reply_not_a_loop() {
        let err = collect_pages("ep", "list", |_| Ok((vec![1], Some("same".to_owned()))))
            .expect_err("refused");
        assert!(err.to_string().contains("repeated a paging token"), "{err}");
    }
}
