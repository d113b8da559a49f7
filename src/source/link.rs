//! The `link` strategy: follow the `Link: <url>; rel="next"` header (RFC 8288), as GitHub
//! (page numbers in the URL) and Shopify (an opaque `page_info`) give it. The window ends on
//! an answer without one, or when `has_more` is false; a URL met twice fails it, and so does
//! a URL off the connector's origin (see `next_url`). Page numbers in links shift like `page`
//! when a record read leaves the window, so once the last link is read every URL before it is
//! read again, last first, as `paging` does: a record that slid onto a page already read is met
//! (opaque keyset links only cost the extra requests). Pure.

use crate::source::next_url::on_origin;
use crate::source::strategy::{Answer, Chain, Next, Pager, Reread};

#[derive(Debug)]
pub struct Link {
    base_url: String,
    chain: Chain,
    reread: Reread,
}

impl Link {
    pub fn new(base_url: &str) -> Link {
        Link {
            base_url: base_url.to_string(),
            chain: Chain::new("next link", true),
            reread: Reread::default(),
        }
    }
}

impl Pager for Link {
    fn next(&self) -> Next {
        self.reread.next(&self.chain)
    }

    fn observe(&mut self, answer: &Answer) {
        if self.reread.took(&self.chain) {
            return;
        }
        let url = next_of(answer.headers)
            .map(|url| on_origin(&self.base_url, answer.url, &url))
            .transpose();
        self.chain.step(answer, url, Next::Url);
        self.reread.after(&self.chain);
    }
}

/// The target of the first `rel="next"` link among the `link` headers (names lowercase).
pub fn next_of(headers: &[(String, String)]) -> Option<String> {
    headers
        .iter()
        .filter(|(name, _)| name == "link")
        .flat_map(|(_, value)| links(value))
        .find(|(_, rels)| rels.iter().any(|rel| rel.eq_ignore_ascii_case("next")))
        .map(|(url, _)| url)
}

/// Every `<target>; param…` of one `Link` value, with its `rel` values.
fn links(value: &str) -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let target = rest[open + 1..open + close].trim().to_string();
        rest = &rest[open + close + 1..];
        // The parameters run to the next comma outside quotes.
        let mut end = rest.len();
        let mut quoted = false;
        for (index, c) in rest.char_indices() {
            match c {
                '"' => quoted = !quoted,
                ',' if !quoted => {
                    end = index;
                    break;
                }
                _ => {}
            }
        }
        let rels = rest[..end]
            .split(';')
            .filter_map(|param| {
                let (name, value) = param.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("rel")
                    .then(|| value.trim().trim_matches('"').to_string())
            })
            .flat_map(|rels| {
                rels.split_whitespace()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        found.push((target, rels));
        rest = &rest[end..];
    }
    found
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::source::strategy::tests::answer;

    fn link(value: &str) -> Vec<(String, String)> {
        vec![("link".to_string(), value.to_string())]
    }

    #[test]
    fn the_next_link_is_found_among_the_others() {
        let cases = [
            (
                r#"<https://api.github.com/x?page=2>; rel="next", <https://api.github.com/x?page=5>; rel="last""#,
                Some("https://api.github.com/x?page=2"),
            ),
            (
                r#"<https://s.test/a.json?page_info=abc>; rel="previous", <https://s.test/a.json?page_info=def>; rel="next""#,
                Some("https://s.test/a.json?page_info=def"),
            ),
            (r#"</x?a=1,2>; title="a, b"; rel=next"#, Some("/x?a=1,2")),
            (r#"</x?p=2>; rel="prefetch next""#, Some("/x?p=2")),
            (r#"</x?p=1>; rel="prev", </x?p=9>; rel="last""#, None),
            ("", None),
        ];
        for (value, expected) in cases {
            assert_eq!(next_of(&link(value)).as_deref(), expected, "{value}");
        }
    }

    #[test]
    fn links_are_followed_until_there_is_no_next_one() {
        let mut pager = Link::new("http://127.0.0.1:9");
        let body = json!([]);
        let first = link("<http://127.0.0.1:9/items?page=2>; rel=\"next\"");
        pager.observe(&answer(&first, &body, &[1], None, None));
        assert_eq!(
            pager.next(),
            Next::Url("http://127.0.0.1:9/items?page=2".into())
        );
        pager.observe(&answer(&first, &body, &[2], None, None));
        assert!(matches!(pager.next(), Next::Failed(why) if why.contains("second time")));
        let mut pager = Link::new("http://127.0.0.1:9");
        pager.observe(&answer(&[], &body, &[1], None, None));
        assert_eq!(pager.next(), Next::Done);
    }

    #[test]
    fn after_the_last_link_every_page_before_it_is_read_again_last_first() {
        // A record leaving the window while page 2 is read moves the next one onto page 1,
        // already read: reading pages 2 and 1 again (page 3 is the last) meets it.
        let mut pager = Link::new("http://127.0.0.1:9");
        let body = json!([]);
        let to = |page: u32| {
            link(&format!(
                "<http://127.0.0.1:9/items?page={page}>; rel=\"next\""
            ))
        };
        let url = |page: u32| Next::Url(format!("http://127.0.0.1:9/items?page={page}"));
        pager.observe(&answer(&to(2), &body, &[1], None, None));
        pager.observe(&answer(&to(3), &body, &[2], None, None));
        pager.observe(&answer(&[], &body, &[3], None, None));
        let mut again = Vec::new();
        while pager.next() != Next::Done {
            again.push(pager.next());
            pager.observe(&answer(&[], &body, &[9], None, None));
        }
        assert_eq!(again, vec![url(2), Next::First]);
    }
}
