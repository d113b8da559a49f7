//! The `cursor` strategy: each answer gives a token (at a JSONPath of the body, or in a
//! header) that the next request sends in `{{PAGINATION_CURSOR}}`. The window ends when the
//! token is absent or empty, or `has_more` is false; a token met twice fails the window
//! rather than looping. Pure.

use serde_json::Value as Json;

use crate::config::model::CursorFrom;
use crate::source::strategy::{Answer, Chain, Next, Pager};

#[derive(Debug)]
pub struct Cursor {
    from: CursorFrom,
    chain: Chain,
}

impl Cursor {
    pub fn new(from: CursorFrom) -> Cursor {
        Cursor {
            from,
            chain: Chain::new("cursor", false),
        }
    }
}

impl Pager for Cursor {
    fn next(&self) -> Next {
        self.chain.next()
    }

    fn observe(&mut self, answer: &Answer) {
        let token = token_of(&self.from, answer);
        self.chain.step(answer, token, Next::Cursor);
    }
}

/// The next token in `answer`, if any; a token that is not text or a number is refused.
fn token_of(from: &CursorFrom, answer: &Answer) -> Result<Option<String>, String> {
    match from {
        CursorFrom::Header(name) => Ok(answer
            .headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.clone())),
        CursorFrom::Body(path) => match path.select(answer.body).first() {
            None | Some(Json::Null) => Ok(None),
            Some(Json::String(token)) => Ok(Some(token.clone())),
            Some(Json::Number(token)) => Ok(Some(token.to_string())),
            Some(other) => Err(format!(
                "the cursor at `{}` is `{other}`, not a text or a number",
                path.text
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::model::JsonPath;
    use crate::source::strategy::tests::answer;

    fn body_path(text: &str) -> CursorFrom {
        CursorFrom::Body(JsonPath::of(text))
    }

    #[test]
    fn tokens_come_from_the_body_or_a_header() {
        let mut cursor = Cursor::new(body_path("$.paging.next.after"));
        let body = json!({"paging": {"next": {"after": 20}}});
        cursor.observe(&answer(&[], &body, &[1], None, None));
        assert_eq!(cursor.next(), Next::Cursor("20".into()));
        let last = json!({"results": []});
        cursor.observe(&answer(&[], &last, &[2], None, None));
        assert_eq!(cursor.next(), Next::Done);

        let mut cursor = Cursor::new(CursorFrom::Header("x-next".into()));
        let headers = vec![("x-next".to_string(), "t2".to_string())];
        cursor.observe(&answer(&headers, &last, &[1], None, None));
        assert_eq!(cursor.next(), Next::Cursor("t2".into()));

        let mut cursor = Cursor::new(body_path("$.next"));
        let odd = json!({"next": {"a": 1}});
        cursor.observe(&answer(&[], &odd, &[1], None, None));
        assert!(matches!(cursor.next(), Next::Failed(why) if why.contains("not a text")));
    }

    #[test]
    fn the_last_records_id_is_a_keyset_cursor() {
        let body = json!({"data": [{"id": "a"}, {"id": "b"}], "has_more": true});
        for text in ["$.data[-1:].id", "$.data[-1].id"] {
            let mut cursor = Cursor::new(body_path(text));
            cursor.observe(&answer(&[], &body, &[1, 2], None, Some(true)));
            assert_eq!(cursor.next(), Next::Cursor("b".into()), "{text}");
        }
    }

    #[test]
    fn a_link_header_the_cursor_does_not_follow_fails_the_last_page() {
        let mut cursor = Cursor::new(body_path("$.next"));
        let headers = vec![("link".to_string(), "</x?p=2>; rel=\"next\"".to_string())];
        let body = json!({});
        cursor.observe(&answer(&headers, &body, &[1], None, None));
        assert!(matches!(cursor.next(), Next::Failed(why) if why.contains("rel=\"next\"")));
    }
}
