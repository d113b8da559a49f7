//! An answer's body parsed lean: its records list's items kept as their text and parsed only
//! for the fields a flow reads (`source::lean` decides when; `projected` parses the fields).
//!
//! A lean answer is accepted exactly when the whole answer would parse: an answer holding a
//! record where skipping its fields could accept what a whole parse refuses
//! (`projected::risky`), or serde_json's raw-value name, is parsed whole, and so is one whose
//! lean parse fails for any reason; the whole parse's verdict is then the answer's.

use std::sync::Arc;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value as Json;
use serde_json::value::RawValue;

use crate::projected::{parse_read_fields, risky, visit_json_scalars};
use crate::record::Fields;

/// How to read an operation's answers lean: where the records list is, and what of each record
/// to parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lean {
    /// The names leading to the records list from the body's root.
    pub list: Vec<String>,
    /// What of each record to parse.
    pub fields: Fields,
}

/// An answer parsed, lean or whole.
#[derive(Debug)]
pub struct Parsed {
    pub body: Json,
    /// The text of each item of the records list, in order, when the list was read lean (its
    /// items in `body` then hold only the flow's fields); `None`: parsed whole.
    pub texts: Option<Vec<Arc<str>>>,
}

/// Parse an answer, lean when `lean` says how and the answer allows it (else whole, with
/// serde_json's own verdict).
pub fn parse(lean: Option<&Lean>, bytes: &[u8]) -> serde_json::Result<Parsed> {
    // serde_json's own value reader gives this name a meaning that a projection does not.
    let raw_value_token = || memchr::memmem::find(bytes, RAW_VALUE_TOKEN).is_some();
    // Checked as UTF-8 once, as a whole (SIMD), the answer is read as text: serde_json then
    // checks no string or record's text again. An answer that is not UTF-8 is parsed whole.
    let lean = lean.filter(|_| !raw_value_token());
    let text = || simdutf8::basic::from_utf8(bytes).ok();
    if let Some((lean, text)) = lean.and_then(|lean| Some((lean, text()?))) {
        let mut texts = None;
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let along = Along {
            lean,
            depth: 0,
            texts: &mut texts,
        };
        let parsed = along
            .deserialize(&mut deserializer)
            .and_then(|body| deserializer.end().map(|()| body));
        if let Ok(body) = parsed {
            return Ok(Parsed { body, texts });
        }
    }
    serde_json::from_slice(bytes).map(|body| Parsed { body, texts: None })
}

/// The name serde_json's `Value` reader takes as a raw value's (`raw_value` feature).
const RAW_VALUE_TOKEN: &[u8] = b"$serde_json::private::RawValue";

/// A value at `depth` names down the records list: built as serde_json builds it, except the
/// value at the list's path, whose items are read lean when it is a list.
struct Along<'l, 't> {
    lean: &'l Lean,
    depth: usize,
    texts: &'t mut Option<Vec<Arc<str>>>,
}

impl<'de> DeserializeSeed<'de> for Along<'_, '_> {
    type Value = Json;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Along<'_, '_> {
    type Value = Json;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let Some(next) = self.lean.list.get(self.depth) else {
            return Json::deserialize(MapAccessDeserializer::new(map));
        };
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = if key == *next {
                if object.contains_key(&key) {
                    // A repeated name: serde_json keeps the last; the texts would not follow.
                    return Err(de::Error::custom("a repeated name on the records' path"));
                }
                map.next_value_seed(Along {
                    lean: self.lean,
                    depth: self.depth + 1,
                    texts: &mut *self.texts,
                })?
            } else {
                map.next_value::<Json>()?
            };
            object.insert(key, value);
        }
        Ok(Json::Object(object))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        if self.depth != self.lean.list.len() {
            return Json::deserialize(SeqAccessDeserializer::new(seq));
        }
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        let mut texts = Vec::with_capacity(items.capacity());
        while let Some(raw) = seq.next_element::<&'de RawValue>()? {
            let text = raw.get();
            // A record a skip could accept where a whole parse refuses: the whole answer is
            // parsed and judged (a record parsed alone would get serde_json's nesting limit
            // afresh, below the levels above it).
            if risky(text.as_bytes()) {
                return Err(de::Error::custom("a record to parse whole"));
            }
            // Read as a raw value and not risky: its skipped fields need no second check.
            let item = parse_read_fields(text, &self.lean.fields);
            items.push(item.map_err(de::Error::custom)?);
            texts.push(Arc::from(text));
        }
        *self.texts = Some(texts);
        Ok(Json::Array(items))
    }

    visit_json_scalars!();
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::projected::{Projection, parse_fields};
    use crate::record::Need;

    fn lean() -> Lean {
        let mut details = Fields::new();
        details.insert("spec_no".to_string(), Need::Whole);
        let mut fields = Fields::new();
        fields.insert("order_no".to_string(), Need::Whole);
        fields.insert("details_list".to_string(), Need::Items(details));
        Lean {
            list: vec!["response".to_string(), "stockin_list".to_string()],
            fields,
        }
    }

    fn order(i: usize) -> Json {
        json!({
            "order_no": format!("RK{i}"),
            "remark": "退货 \u{4e2d} \"quoted\" \\ \u{1}",
            "amount": 12.5,
            "count": i,
            "details_list": [
                {"spec_no": format!("S{i}"), "num": "1.0000", "goods": {"name": "x"}},
                {"spec_no": null, "extra": [1, 2, {"deep": true}]}
            ],
            "nothing": null
        })
    }

    fn body(orders: &[Json]) -> Json {
        json!({"response": {"flag": "success", "total_count": orders.len(), "stockin_list": orders}})
    }

    #[test]
    fn a_lean_answer_is_the_whole_one_with_each_record_cut_to_the_flows_fields() {
        let lean = lean();
        let orders: Vec<Json> = (0..5).map(order).collect();
        for text in [
            serde_json::to_vec(&body(&orders)).unwrap(),
            serde_json::to_vec_pretty(&body(&orders)).unwrap(),
        ] {
            let parsed = parse(Some(&lean), &text).unwrap();
            let texts = parsed.texts.expect("read lean");
            assert_eq!(texts.len(), orders.len());
            for ((text, order), item) in texts
                .iter()
                .zip(&orders)
                .zip(parsed.body["response"]["stockin_list"].as_array().unwrap())
            {
                assert_eq!(serde_json::from_str::<Json>(text).unwrap(), *order);
                let projection = Projection {
                    fields: &lean.fields,
                    exact: true,
                };
                assert_eq!(*item, parse_fields(text.as_bytes(), projection).unwrap());
                assert_eq!(item["order_no"], order["order_no"]);
                assert_eq!(
                    item["details_list"][0]["spec_no"],
                    order["details_list"][0]["spec_no"]
                );
                assert!(item.get("remark").is_none(), "{item}");
            }
            let mut whole: Json = serde_json::from_slice(&text).unwrap();
            whole["response"]["stockin_list"] = json!([]);
            let mut lean_body = parsed.body.clone();
            lean_body["response"]["stockin_list"] = json!([]);
            assert_eq!(lean_body, whole, "the rest of the answer is parsed whole");
        }
    }

    #[test]
    fn a_lean_answer_is_accepted_exactly_when_the_whole_one_parses() {
        let lean = lean();
        // Each one a skipped field that serde_json skips without a check it makes when it
        // builds the value.
        let refused = [
            r#"{"order_no": "RK1", "remark": "\ud800"}"#.to_string(),
            r#"{"order_no": "RK1", "remark": "\udc00 alone"}"#.to_string(),
            r#"{"order_no": "RK1", "amount": 1e999}"#.to_string(),
            format!(r#"{{"order_no": "RK1", "amount": {}}}"#, "9".repeat(400)),
            format!(
                r#"{{"order_no": "RK1", "deep": {}{}}}"#,
                "[".repeat(200),
                "]".repeat(200)
            ),
            // Deep enough only with the levels above the record.
            format!(
                r#"{{"order_no": "RK1", "deep": {}{}}}"#,
                "[".repeat(125),
                "]".repeat(125)
            ),
            // A text backslash before `u`, then a lone low surrogate.
            r#"{"order_no": "RK1", "remark": "\\ud83d\ude00"}"#.to_string(),
            r#"{"order_no": "RK1", "x": {"$serde_json::private::RawValue": 1}}"#.to_string(),
        ];
        for record in refused {
            let text = format!(r#"{{"response": {{"stockin_list": [{record}]}}}}"#);
            let whole = serde_json::from_str::<Json>(&text);
            assert!(whole.is_err(), "{record}");
            let lean = parse(Some(&lean), text.as_bytes());
            assert_eq!(
                lean.map(|p| p.body).map_err(|e| e.to_string()),
                whole.map_err(|e| e.to_string()),
                "{record}"
            );
        }
        // Bytes that are not UTF-8, in a field skipped and in one read: refused as a whole parse
        // refuses them, at the same place.
        for record in [
            &b"{\"order_no\": \"RK1\", \"remark\": \"\xff\"}"[..],
            b"{\"order_no\": \"RK\xc3\"}",
        ] {
            let text = [&b"{\"response\": {\"stockin_list\": ["[..], record, b"]}}"].concat();
            let whole = serde_json::from_slice::<Json>(&text).map_err(|e| e.to_string());
            assert!(whole.is_err());
            let lean = parse(Some(&lean), &text).map(|p| p.body);
            assert_eq!(lean.map_err(|e| e.to_string()), whole);
        }
        // The same checks passing: a surrogate pair, a small exponent, a deep but allowed list.
        let accepted = [
            r#"{"order_no": "RK1", "remark": "\ud83d\ude00"}"#,
            r#"{"order_no": "RK1", "amount": 1e3, "code": "SKU1E5"}"#,
        ];
        for (record, lean_read) in accepted.into_iter().zip([true, false]) {
            let text = format!(r#"{{"response": {{"stockin_list": [{record}]}}}}"#);
            let parsed = parse(Some(&lean), text.as_bytes()).unwrap();
            assert_eq!(parsed.texts.is_some(), lean_read, "{record}");
            if let Some(texts) = parsed.texts {
                assert_eq!(
                    serde_json::from_str::<Json>(&texts[0]).unwrap(),
                    serde_json::from_str::<Json>(record).unwrap()
                );
            } else {
                assert_eq!(parsed.body, serde_json::from_str::<Json>(&text).unwrap());
            }
        }
        // serde_json's raw-value name gives a record another value parsed whole: so it is.
        let text = r#"{"response": {"stockin_list": [{"$serde_json::private::RawValue": "{\"order_no\": \"X\"}"}]}}"#;
        let parsed = parse(Some(&lean), text.as_bytes()).unwrap();
        assert_eq!(parsed.texts, None);
        assert_eq!(parsed.body, serde_json::from_str::<Json>(text).unwrap());
    }

    #[test]
    fn an_answer_that_does_not_fit_the_plan_is_parsed_whole() {
        let lean = lean();
        let orders = [order(1)];
        let cases = [
            json!({"response": {"flag": "failure", "stockin_list": null}}),
            json!({"response": "none"}),
            json!([body(&orders)]),
            json!({"error_response": {"code": 7}}),
        ];
        for body in cases {
            let text = serde_json::to_vec(&body).unwrap();
            let parsed = parse(Some(&lean), &text).unwrap();
            assert_eq!(parsed.body, body);
            assert_eq!(parsed.texts, None);
        }
        // A name on the path given twice: serde_json keeps the last, and so does the parse.
        let text = r#"{"response": {"stockin_list": [{"order_no": "A"}], "stockin_list": [{"order_no": "B", "x": 1}]}}"#;
        let parsed = parse(Some(&lean), text.as_bytes()).unwrap();
        assert_eq!(parsed.body, serde_json::from_str::<Json>(text).unwrap());
        assert_eq!(parsed.texts, None);
        assert!(parse(None, b"{\"response\": ").is_err());
    }
}
