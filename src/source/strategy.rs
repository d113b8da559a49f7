//! Pagination strategies: one small trait, "the next request from the last answer".
//!
//! Each strategy of `pagination.strategy` is compiled into one [`Pager`]: numbered pages and
//! offsets (`numbered`, over the drift-safe plan of `paging`), tokens (`cursor`), `Link`
//! headers (`link`), URLs in the body (`next_url`) and a single answer (`single`). A pager
//! never fetches: the reader asks it what to request, fetches, and tells it what came back.
//! Whatever the strategy, an answer that signals more records than the pager follows (a
//! `rel="next"` nobody follows, a total above the records met, a full page where one answer
//! should hold everything) fails the window rather than ending it: a window ended early would
//! move the cursor past records never read. Pure.

use std::collections::HashSet;

use serde_json::Value as Json;

use crate::config::model::{Pagination, PagingStrategy};
use crate::source::paging::MAX_PAGES;
use crate::source::{cursor, link, next_url, numbered, single};

/// A token or URL as messages show it (a URL without its query, a long token cut).
fn shown_token(token: &str) -> String {
    if token.contains("://") || token.starts_with('/') {
        return next_url::shown(token);
    }
    let mut shown: String = token.chars().take(60).collect();
    if shown.len() < token.len() {
        shown.push('…');
    }
    shown
}

/// What the reader requests next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// The operation's request for page number `n` (`page`, `offset`).
    Page(u32),
    /// The operation's own first request (the chained strategies).
    First,
    /// The operation's request carrying this token in `{{PAGINATION_CURSOR}}`.
    Cursor(String),
    /// A GET of this URL, already checked to be on the connector's origin.
    Url(String),
    Done,
    /// The window cannot be read completely: the reader fails it, the cursor stays before it.
    Failed(String),
}

/// One answer, as the pager sees it.
#[derive(Debug, Clone)]
pub struct Answer<'a> {
    /// The URL the answer came from (relative next links resolve against it), if known.
    pub url: Option<&'a str>,
    pub headers: &'a [(String, String)],
    pub body: &'a Json,
    /// Records on the page.
    pub count: usize,
    /// The total the answer gives, if any.
    pub total: Option<u64>,
    /// Hashes of the page's record keys.
    pub keys: Vec<u64>,
    /// The operation's `has_more` expression, evaluated, when it has one.
    pub has_more: Option<bool>,
}

/// A pagination strategy at work on one window.
pub trait Pager: Send {
    fn next(&self) -> Next;
    fn observe(&mut self, answer: &Answer);
    /// Things to tell the user since the last call, about the window `span`.
    fn notices(&mut self, _span: &str) -> Vec<String> {
        Vec::new()
    }
    /// Whether the window, once done, was read completely (see `paging`).
    fn settled(&self) -> bool {
        true
    }
    /// The request after the one in flight (the last [`Pager::next`]), if the pager can tell
    /// it before reading that one's answer: numbered pages read in a planned order. The
    /// reader may send it early (`early`); `next` still decides.
    fn predicted(&self) -> Option<Next> {
        None
    }
    /// Whether the next request ([`Pager::next`]) is the pass's last look at a page it read
    /// already (a counted pass ends on its first page again), which seldom brings anything
    /// new: the page just observed was the window's last (`Read::Closing`).
    fn closing(&self) -> bool {
        false
    }
}

/// The pager for one window of an operation paginated by `pagination`; `page_size` is the
/// flow's, `base_url` the connector's (URLs to follow must stay on its origin).
pub fn pager(pagination: &Pagination, page_size: u32, base_url: &str) -> Box<dyn Pager> {
    match &pagination.strategy {
        PagingStrategy::Page { first_page, .. } => {
            Box::new(numbered::Numbered::new(*first_page, page_size))
        }
        PagingStrategy::Offset => Box::new(numbered::Numbered::new(0, page_size)),
        PagingStrategy::Cursor { from, .. } => Box::new(cursor::Cursor::new(from.clone())),
        PagingStrategy::Link { .. } => Box::new(link::Link::new(base_url)),
        PagingStrategy::NextUrl { path, .. } => {
            Box::new(next_url::NextUrl::new(path.clone(), base_url))
        }
        PagingStrategy::None => Box::new(single::Single::new(pagination.max_page_size)),
    }
}

/// The requests of a chain of URLs, and once the last is read, those before it again, last
/// first: URLs that encode a position (GitHub's `page=2`) shift like page numbers when a record
/// already read leaves the window, and the downward re-read meets what slid back (as `paging`
/// does); opaque keyset URLs only cost the extra requests.
#[derive(Debug, Default)]
pub struct Reread {
    visited: Vec<Next>,
    queue: Option<Vec<Next>>,
}

impl Reread {
    pub fn next(&self, chain: &Chain) -> Next {
        match &self.queue {
            Some(queue) => queue.last().cloned().unwrap_or(Next::Done),
            None => chain.next(),
        }
    }

    /// Whether this answer is one of the re-read (the chain does not see it).
    pub fn took(&mut self, chain: &Chain) -> bool {
        match &mut self.queue {
            Some(queue) => {
                queue.pop();
                true
            }
            None => {
                self.visited.push(chain.next());
                false
            }
        }
    }

    /// After the chain took an answer: when it is done, read the requests before the last again.
    pub fn after(&mut self, chain: &Chain) {
        if chain.next() == Next::Done && self.visited.len() > 1 {
            let before_last = self.visited.len() - 1;
            self.queue = Some(self.visited[..before_last].to_vec());
        }
    }
}

/// The bookkeeping every chained strategy shares: tokens met (a token twice is a loop),
/// records met (a total above them is a window cut short), pages read (bounded).
#[derive(Debug)]
pub struct Chain {
    /// What a token is called in messages: `cursor`, `next URL`.
    what: &'static str,
    /// Whether `Link: rel="next"` is what this strategy follows.
    follows_link: bool,
    next: Next,
    tokens: HashSet<String>,
    met: HashSet<u64>,
    total: Option<u64>,
    pages: u32,
    /// The keys of the last page, when it held any (to notice an API ignoring the token).
    last_keys: Vec<u64>,
}

impl Chain {
    pub fn new(what: &'static str, follows_link: bool) -> Chain {
        Chain {
            what,
            follows_link,
            next: Next::First,
            tokens: HashSet::new(),
            met: HashSet::new(),
            total: None,
            pages: 0,
            last_keys: Vec::new(),
        }
    }

    pub fn next(&self) -> Next {
        self.next.clone()
    }

    /// Take in `answer`, whose token for the next page is `token` (`Err`: the token cannot be
    /// followed, with why); `request` makes the next request from a token.
    pub fn step(
        &mut self,
        answer: &Answer,
        token: Result<Option<String>, String>,
        request: fn(String) -> Next,
    ) {
        self.pages += 1;
        self.met.extend(answer.keys.iter().copied());
        if answer.total.is_some() {
            self.total = answer.total;
        }
        let token = match token {
            Ok(token) => token.filter(|token| !token.trim().is_empty()),
            Err(why) => {
                self.next = Next::Failed(why);
                return;
            }
        };
        let what = self.what;
        let repeated = !answer.keys.is_empty() && answer.keys == self.last_keys;
        self.last_keys = answer.keys.clone();
        if repeated && token.is_some() && answer.has_more != Some(false) {
            self.next = Next::Failed(format!(
                "a page repeated the one before it: the API seems to ignore the {what}, so the pages behind it cannot be read"
            ));
            return;
        }
        self.next = match (token, answer.has_more) {
            // No token where the pagination looks, on the window's first page: if the answer
            // signals more elsewhere, that place is what is wrong, and ending here would skip
            // every page behind this one.
            (None, None) if self.tokens.is_empty() => {
                match unfollowed_more(answer, self.follows_link, true)
                    .or_else(|| header_total_above(answer))
                {
                    Some(why) => Next::Failed(format!(
                        "{why}, but the pagination finds no {what} where it reads it: the window would end after its first page (check where `pagination` reads the {what}, or declare `has_more`)"
                    )),
                    None => self.finish(answer),
                }
            }
            (_, Some(false)) | (None, None) => self.finish(answer),
            (None, Some(true)) => Next::Failed(format!(
                "an answer says more records follow (`has_more`) but gives no next {what}"
            )),
            (Some(token), _) if !self.tokens.insert(token.clone()) => Next::Failed(format!(
                "the {what} `{}` came back a second time: following it again would loop",
                shown_token(&token)
            )),
            (Some(_), _) if self.pages >= MAX_PAGES => Next::Failed(format!(
                "pages went on past the most one window may read ({MAX_PAGES})"
            )),
            (Some(token), _) => request(token),
        };
    }

    /// The last answer says nothing more follows: unless something else in it does.
    fn finish(&self, answer: &Answer) -> Next {
        if let Some(why) = unfollowed_more(answer, self.follows_link, false) {
            return Next::Failed(why);
        }
        match self.total {
            Some(total) if total > self.met.len() as u64 => Next::Failed(format!(
                "the total says {total} record(s) but the window's pages held {}",
                self.met.len()
            )),
            _ => Next::Done,
        }
    }
}

/// Why the first (or only) answer of a window holds fewer records than the window, by a total
/// in a usual header (`X-Total-Count`, `X-Total`) the operation does not read, if it does.
pub fn header_total_above(answer: &Answer) -> Option<String> {
    answer.headers.iter().find_map(|(name, value)| {
        let name = name.to_ascii_lowercase();
        let total = value.trim().parse::<u64>().ok()?;
        (matches!(name.as_str(), "x-total-count" | "x-total" | "total-count")
            && total > answer.count as u64)
            .then(|| {
                format!(
                    "the header `{name}` says {total} record(s) but the answer holds {}",
                    answer.count
                )
            })
    })
}

/// Why `answer` says more records follow than a pager that follows no more sees, if it does:
/// a `Link: rel="next"` (unless `follows_link`), or, when `body_signals`, a body with
/// `has_more: true` or a next token in a well-known place.
pub fn unfollowed_more(answer: &Answer, follows_link: bool, body_signals: bool) -> Option<String> {
    if !follows_link && let Some(url) = link::next_of(answer.headers) {
        return Some(format!(
            "the answer links a next page (`Link: <{}>; rel=\"next\"`), which this pagination does not follow",
            next_url::shown(&url)
        ));
    }
    if !body_signals {
        return None;
    }
    if answer.has_more == Some(true) {
        return Some("the answer says more records follow (`has_more`)".into());
    }
    // A next token in a header (`X-Next-Cursor`, `X-Next-Page`, `Next-Page-Token`).
    if let Some((name, _)) = answer.headers.iter().find(|(name, value)| {
        let name = name.to_ascii_lowercase();
        (name.contains("cursor") || name.contains("next-page") || name.starts_with("x-next"))
            && !value.trim().is_empty()
    }) {
        return Some(format!(
            "the answer gives a next page in the header `{name}`"
        ));
    }
    let Json::Object(body) = answer.body else {
        return None;
    };
    const FLAGS: &[&str] = &["has_more", "hasMore", "more"];
    const TOKENS: &[&str] = &[
        "next_cursor",
        "nextCursor",
        "next_page_token",
        "nextPageToken",
        "next_page",
        "nextPage",
        "next",
        "cursor",
    ];
    let is_true = |value: Option<&Json>| match value {
        Some(Json::Bool(flag)) => *flag,
        Some(Json::String(text)) => text.trim().eq_ignore_ascii_case("true"),
        _ => false,
    };
    if let Some(flag) = FLAGS.iter().find(|flag| is_true(body.get(**flag))) {
        return Some(format!("the answer says `{flag}: true`"));
    }
    let set = |value: Option<&Json>| match value {
        None | Some(Json::Null) | Some(Json::Bool(false)) => false,
        Some(Json::String(s)) => !s.trim().is_empty(),
        Some(Json::Object(o)) => !o.is_empty(),
        Some(_) => true,
    };
    if let Some(token) = TOKENS.iter().find(|token| set(body.get(**token))) {
        return Some(format!("the answer gives a next page at `{token}`"));
    }
    for parent in ["paging", "links", "_links", "pagination", "meta"] {
        if let Some(Json::Object(inner)) = body.get(parent)
            && let Some(token) = TOKENS.iter().find(|token| set(inner.get(**token)))
        {
            return Some(format!(
                "the answer gives a next page at `{parent}.{token}`"
            ));
        }
    }
    None
}

#[cfg(test)]
pub mod tests {
    use serde_json::json;

    use super::*;

    /// An answer of `keys` with `body`, `headers`, `total` and `has_more`.
    /// Response headers, as the transport gives them.
    pub type Headers = [(String, String)];

    pub fn answer<'a>(
        headers: &'a [(String, String)],
        body: &'a Json,
        keys: &[u64],
        total: Option<u64>,
        has_more: Option<bool>,
    ) -> Answer<'a> {
        Answer {
            url: None,
            headers,
            body,
            count: keys.len(),
            total,
            keys: keys.to_vec(),
            has_more,
        }
    }

    #[test]
    fn signals_of_more_records_are_found_where_apis_put_them() {
        let link = vec![(
            "link".to_string(),
            "<https://api.test/items?page=2>; rel=\"next\"".to_string(),
        )];
        let none: Vec<(String, String)> = Vec::new();
        type Case<'a> = (&'a [(String, String)], Json, bool, bool);
        let cursor_header = vec![("x-next-cursor".to_string(), "cjAwMjU".to_string())];
        let cases: [Case; 12] = [
            (&cursor_header, json!({}), false, true),
            (&none, json!({"has_more": "true"}), false, true),
            (&none, json!({"has_more": "false"}), false, false),
            (&link, json!({}), false, true),
            (&link, json!({}), true, false),
            (&none, json!({"has_more": true}), false, true),
            (
                &none,
                json!({"has_more": false, "next_cursor": ""}),
                false,
                false,
            ),
            (&none, json!({"next_cursor": "abc"}), false, true),
            (
                &none,
                json!({"paging": {"next": {"after": "20"}}}),
                false,
                true,
            ),
            (&none, json!({"paging": {}}), false, false),
            (&none, json!({"links": {"next": null}}), false, false),
            (&none, json!([{"id": 1}]), false, false),
        ];
        for (headers, body, follows_link, more) in cases {
            let found = unfollowed_more(
                &answer(headers, &body, &[1], None, None),
                follows_link,
                true,
            );
            assert_eq!(found.is_some(), more, "{body} {headers:?}: {found:?}");
        }
    }

    #[test]
    fn a_chain_ends_on_an_absent_token_and_fails_on_a_repeated_one() {
        let body = json!({});
        let mut chain = Chain::new("cursor", false);
        assert_eq!(chain.next(), Next::First);
        chain.step(
            &answer(&[], &body, &[1, 2], Some(4), None),
            Ok(Some("a".into())),
            Next::Cursor,
        );
        assert_eq!(chain.next(), Next::Cursor("a".into()));
        chain.step(
            &answer(&[], &body, &[3], None, None),
            Ok(Some("b".into())),
            Next::Cursor,
        );
        chain.step(
            &answer(&[], &body, &[4], None, None),
            Ok(Some("a".into())),
            Next::Cursor,
        );
        assert!(matches!(chain.next(), Next::Failed(why) if why.contains("`a` came back")));

        let mut chain = Chain::new("cursor", false);
        chain.step(
            &answer(&[], &body, &[1], None, None),
            Ok(Some(" ".into())),
            Next::Cursor,
        );
        assert_eq!(chain.next(), Next::Done, "an empty token ends the window");
        let mut chain = Chain::new("cursor", false);
        chain.step(
            &answer(&[], &body, &[1], None, Some(false)),
            Ok(Some("z".into())),
            Next::Cursor,
        );
        assert_eq!(chain.next(), Next::Done, "`has_more` false ends it");
        let mut chain = Chain::new("cursor", false);
        chain.step(
            &answer(&[], &body, &[1], None, Some(true)),
            Ok(None),
            Next::Cursor,
        );
        assert!(matches!(chain.next(), Next::Failed(why) if why.contains("no next cursor")));
    }

    #[test]
    fn a_first_page_without_the_token_where_the_answer_signals_more_fails_the_chain() {
        // A wrong cursor path finds nothing on the first page: the token the answer gives
        // elsewhere (a header, a usual body key) shows the window is not over.
        let headers = vec![("x-next-cursor".to_string(), "cjAwMjU".to_string())];
        let body = json!({"items": [], "has_more": "true"});
        let plain = json!({"items": []});
        for (headers, body) in [(&headers[..], &plain), (&[][..], &body)] {
            let mut chain = Chain::new("cursor", false);
            chain.step(
                &answer(headers, body, &[1, 2], None, None),
                Ok(None),
                Next::Cursor,
            );
            assert!(
                matches!(chain.next(), Next::Failed(why) if why.contains("the pagination finds no cursor where it reads it")),
                "{body} {headers:?}: {:?}",
                chain.next()
            );
        }
        // Once the path found a token in this window, a last page is believed.
        let mut chain = Chain::new("cursor", false);
        chain.step(
            &answer(&[], &plain, &[1], None, None),
            Ok(Some("a".into())),
            Next::Cursor,
        );
        chain.step(
            &answer(&headers, &plain, &[2], None, None),
            Ok(None),
            Next::Cursor,
        );
        assert_eq!(chain.next(), Next::Done);
        // A first page that signals nothing more ends the window.
        let mut chain = Chain::new("cursor", false);
        chain.step(
            &answer(&[], &plain, &[1], None, None),
            Ok(None),
            Next::Cursor,
        );
        assert_eq!(chain.next(), Next::Done);
    }

    #[test]
    fn a_total_above_the_records_met_fails_the_chain() {
        let body = json!({});
        let mut chain = Chain::new("cursor", false);
        chain.step(
            &answer(&[], &body, &[1, 2], Some(3), None),
            Ok(None),
            Next::Cursor,
        );
        assert_eq!(
            chain.next(),
            Next::Failed("the total says 3 record(s) but the window's pages held 2".into())
        );
        let mut chain = Chain::new("cursor", false);
        chain.step(
            &answer(&[], &body, &[1, 2, 3], Some(2), None),
            Ok(None),
            Next::Cursor,
        );
        assert_eq!(
            chain.next(),
            Next::Done,
            "records that left lower the total"
        );
    }
}
