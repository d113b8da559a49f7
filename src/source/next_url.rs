//! The `next_url` strategy: each answer gives the next page's URL at a JSONPath of the body;
//! the window ends when it is absent or empty, or `has_more` is false. A URL is only followed
//! on the connector's own origin (scheme, host and port of `base_url`): a next URL elsewhere
//! fails the window, so credentials never leave. Once the last URL is read, those before it are
//! read again, last first ([`Reread`]): a URL that encodes a position shifts like `offset`.
//! Pure.

use serde_json::Value as Json;

use crate::config::model::JsonPath;
use crate::source::strategy::{Answer, Chain, Next, Pager, Reread};

#[derive(Debug)]
pub struct NextUrl {
    path: JsonPath,
    base_url: String,
    chain: Chain,
    reread: Reread,
}

impl NextUrl {
    pub fn new(path: JsonPath, base_url: &str) -> NextUrl {
        NextUrl {
            path,
            base_url: base_url.to_string(),
            chain: Chain::new("next URL", false),
            reread: Reread::default(),
        }
    }
}

impl Pager for NextUrl {
    fn next(&self) -> Next {
        self.reread.next(&self.chain)
    }

    fn observe(&mut self, answer: &Answer) {
        if self.reread.took(&self.chain) {
            return;
        }
        let url = match self.path.select(answer.body).first() {
            None | Some(Json::Null) => Ok(None),
            Some(Json::String(url)) if url.trim().is_empty() => Ok(None),
            Some(Json::String(url)) => on_origin(&self.base_url, answer.url, url).map(Some),
            Some(other) => Err(format!(
                "the next URL at `{}` is `{other}`, not a text",
                self.path.text
            )),
        };
        self.chain.step(answer, url, Next::Url);
        self.reread.after(&self.chain);
    }
}

/// `url` as messages show it: without its query, which may carry a credential the API echoes
/// (an `access_token`, a signature); a long one is cut.
pub fn shown(url: &str) -> String {
    let bare = url.split(['?', '#']).next().unwrap_or_default();
    let mut shown: String = bare.chars().take(120).collect();
    if shown.len() < bare.len() {
        shown.push('…');
    }
    if bare.len() < url.len() {
        shown.push_str("?…");
    }
    shown
}

/// `url` (absolute, or relative to the URL `from` of the answer that gave it, as RFC 3986
/// resolves it: `?after=2` and `items?after=2` keep that answer's path; without `from`,
/// relative to `base_url`) as an absolute URL, if it is on the origin of `base_url`; else why
/// it is not followed.
pub fn on_origin(base_url: &str, from: Option<&str>, url: &str) -> Result<String, String> {
    let base = reqwest::Url::parse(base_url)
        .map_err(|err| format!("the connector's `base_url` is not a URL: {err}"))?;
    let against = from
        .and_then(|from| reqwest::Url::parse(from).ok())
        .unwrap_or_else(|| base.clone());
    let next = against
        .join(url.trim())
        .map_err(|err| format!("the next page's URL `{}` is not a URL: {err}", shown(url)))?;
    if next.origin() != base.origin() {
        return Err(format!(
            "the next page's URL `{}` is on another origin than the connector's `{}`: requests never leave it, so its credentials cannot",
            shown(url),
            base.origin().ascii_serialization()
        ));
    }
    Ok(next.to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::source::strategy::tests::answer;

    #[test]
    fn urls_are_followed_on_the_connectors_origin_only() {
        let base = "https://api.test/v1";
        let cases = [
            (
                "https://api.test/v1/items?after=2",
                Ok("https://api.test/v1/items?after=2"),
            ),
            ("/v1/items?after=2", Ok("https://api.test/v1/items?after=2")),
            ("https://API.test:443/v1/x", Ok("https://api.test/v1/x")),
            ("http://api.test/v1/x", Err("another origin")),
            ("https://evil.test/v1/x", Err("another origin")),
            ("https://api.test:8443/v1/x", Err("another origin")),
            ("//evil.test/x", Err("another origin")),
        ];
        for (url, expected) in cases {
            match (on_origin(base, None, url), expected) {
                (Ok(found), Ok(expected)) => assert_eq!(found, expected, "{url}"),
                (Err(why), Err(part)) => assert!(why.contains(part), "{url}: {why}"),
                (found, expected) => panic!("{url}: {found:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn a_relative_next_url_keeps_the_path_of_the_answer_that_gave_it() {
        let base = "https://api.test/api/v2";
        let from = Some("https://api.test/api/v2/items?limit=5");
        for (url, expected) in [
            ("?after=2", "https://api.test/api/v2/items?after=2"),
            ("items?after=2", "https://api.test/api/v2/items?after=2"),
            (
                "/api/v2/items?after=2",
                "https://api.test/api/v2/items?after=2",
            ),
        ] {
            assert_eq!(on_origin(base, from, url).as_deref(), Ok(expected), "{url}");
        }
        let elsewhere = on_origin(base, from, "https://evil.test/api/v2/items").unwrap_err();
        assert!(elsewhere.contains("another origin"), "{elsewhere}");
    }

    #[test]
    fn urls_in_messages_show_no_query() {
        assert_eq!(
            shown("https://api.test/x?access_token=s3cret&page=2"),
            "https://api.test/x?…"
        );
        assert_eq!(shown("/x"), "/x");
        let why =
            on_origin("https://api.test", None, "https://evil.test/x?key=s3cret").unwrap_err();
        assert!(!why.contains("s3cret"), "{why}");
    }

    #[test]
    fn the_next_url_is_read_from_the_body_until_it_is_absent() {
        let path = JsonPath {
            text: "$.links.next".into(),
            query: jsonpath_rust::parser::parse_json_path("$.links.next").unwrap(),
        };
        let mut pager = NextUrl::new(path, "http://127.0.0.1:9/api");
        assert_eq!(pager.next(), Next::First);
        let body = json!({"links": {"next": "/api/items?cursor=b"}});
        pager.observe(&answer(&[], &body, &[1], None, None));
        assert_eq!(
            pager.next(),
            Next::Url("http://127.0.0.1:9/api/items?cursor=b".into())
        );
        let away = json!({"links": {"next": "http://127.0.0.2:9/api/items?cursor=c"}});
        pager.observe(&answer(&[], &away, &[2], None, None));
        assert!(matches!(pager.next(), Next::Failed(why) if why.contains("another origin")));
        let mut pager = NextUrl::new(
            JsonPath {
                text: "$.next".into(),
                query: jsonpath_rust::parser::parse_json_path("$.next").unwrap(),
            },
            "http://127.0.0.1:9/api",
        );
        let last = json!({"next": null});
        pager.observe(&answer(&[], &last, &[1], None, None));
        assert_eq!(pager.next(), Next::Done);
    }
}
