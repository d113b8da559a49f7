//! What a request to the sandbox carries, reduced to parameters: the URL query and the body
//! merged into one map, plus the raw body when it is not a form.
//!
//! Clients send Qimen parameters every way the gateway allows (spec §2.1): all in the query
//! of a GET, all in a form body, system parameters in the query and business ones in the
//! body, or a JSON body with every parameter in the query. This module decodes all of them
//! the same way; it knows nothing about signatures or WDT. Pure, no IO.

use std::collections::BTreeMap;

use percent_encoding::percent_decode;

/// The decoded parameters of one request, by key. Empty values are kept: whether they count
/// is the signer's business.
pub type Params = BTreeMap<String, String>;

/// One HTTP request as the server received it, before any interpretation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Incoming {
    /// `GET` or `POST`.
    pub http_method: String,
    /// The raw query string, without `?`.
    pub query: String,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// The merged parameters and the raw body that takes part in a Qimen sign.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decoded {
    pub params: Params,
    /// A body that is not a form (JSON, XML, …); empty when there is none or it was a form.
    pub raw_body: Vec<u8>,
}

/// Merge query and body parameters; on a key in both, the body wins (spec §8.1). A body that
/// is not `application/x-www-form-urlencoded` contributes no parameters and is returned raw.
pub fn decode(incoming: &Incoming) -> Decoded {
    let mut params: Params = parse_form(incoming.query.as_bytes()).into_iter().collect();
    let mut raw_body = Vec::new();
    if is_form(incoming.content_type.as_deref(), &incoming.body) {
        params.extend(parse_form(&incoming.body));
    } else {
        raw_body = incoming.body.clone();
    }
    Decoded { params, raw_body }
}

/// Whether a body is a form. A body without a content type counts as a form unless it looks
/// like JSON or XML, because some hand-written clients forget the header.
fn is_form(content_type: Option<&str>, body: &[u8]) -> bool {
    if body.is_empty() {
        return true;
    }
    match content_type {
        Some(content_type) => content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded"),
        None => !matches!(
            body.iter().find(|b| !b.is_ascii_whitespace()),
            Some(b'{' | b'[' | b'<')
        ),
    }
}

/// Decode `application/x-www-form-urlencoded` text: `&`-separated `key=value`, `+` is a space,
/// percent escapes are UTF-8 (invalid sequences become U+FFFD). A later duplicate key wins.
pub fn parse_form(text: &[u8]) -> Vec<(String, String)> {
    text.split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = match pair.iter().position(|b| *b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &b""[..]),
            };
            (decode_component(key), decode_component(value))
        })
        .collect()
}

fn decode_component(raw: &[u8]) -> String {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    percent_decode(&spaced).decode_utf8_lossy().into_owned()
}

/// A parameter's value, treating an empty value like an absent one.
pub fn get<'a>(params: &'a Params, key: &str) -> Option<&'a str> {
    params
        .get(key)
        .map(String::as_str)
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming(query: &str, content_type: Option<&str>, body: &str) -> Incoming {
        Incoming {
            http_method: "POST".to_string(),
            query: query.to_string(),
            content_type: content_type.map(str::to_string),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn forms_decode_plus_percent_escapes_and_utf8() {
        assert_eq!(
            parse_form(
                b"a=1&start_time=2024-01-01+00%3A00%3A00&shop_no=%E5%BA%97%E9%93%BA01&flag&=x"
            ),
            vec![
                ("a".to_string(), "1".to_string()),
                ("start_time".to_string(), "2024-01-01 00:00:00".to_string()),
                ("shop_no".to_string(), "店铺01".to_string()),
                ("flag".to_string(), String::new()),
                (String::new(), "x".to_string()),
            ]
        );
    }

    #[test]
    fn query_and_form_body_merge_and_the_body_wins() {
        let form = "application/x-www-form-urlencoded; charset=UTF-8";
        let decoded = decode(&incoming(
            "method=m&sid=query",
            Some(form),
            "sid=body&page_no=1",
        ));
        assert_eq!(decoded.params["method"], "m");
        assert_eq!(decoded.params["sid"], "body");
        assert_eq!(decoded.params["page_no"], "1");
        assert!(decoded.raw_body.is_empty());
    }

    #[test]
    fn a_json_body_is_raw_and_contributes_no_parameters() {
        for content_type in [Some("application/json;charset=utf-8"), None] {
            let decoded = decode(&incoming("method=m", content_type, r#"{"sid":"x"}"#));
            assert_eq!(decoded.params.len(), 1, "{content_type:?}");
            assert_eq!(decoded.raw_body, br#"{"sid":"x"}"#);
        }
    }

    #[test]
    fn a_form_without_content_type_still_counts() {
        let decoded = decode(&incoming("", None, "sid=a"));
        assert_eq!(decoded.params["sid"], "a");
    }

    #[test]
    fn empty_values_read_as_absent() {
        let params: Params = parse_form(b"a=&b=1").into_iter().collect();
        assert_eq!(get(&params, "a"), None);
        assert_eq!(get(&params, "b"), Some("1"));
        assert_eq!(get(&params, "c"), None);
    }
}
