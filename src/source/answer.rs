//! What an answer of the source holds: its records list, moved out or checked for shape, and
//! its count. Pure; `reader` calls it on each answer.

use jsonpath_rust::parser::model::{JpQuery, Segment, Selector};
use serde_json::Value as Json;

use crate::config::model::{JsonPath, PagingStrategy};

/// Whether a strategy's pager reads the body at paths of the connector's choosing (a cursor,
/// a next URL), which may point into the records: their records stay in the body it sees.
/// The others read only the answer's usual signals beside the records list.
pub fn reads_body_paths(strategy: &PagingStrategy) -> bool {
    matches!(
        strategy,
        PagingStrategy::Cursor { .. } | PagingStrategy::NextUrl { .. }
    )
}

/// For a records path of plain names ending in a wildcard (`$.response.stockin_list[*]`) over
/// a list: the list's items, moved out of `body` (an empty list left in their place), in the
/// order `path.select` gives them. `None` for any other path or shape (then they are copied).
pub fn take_list(path: &JsonPath, body: &mut Json) -> Option<Vec<Json>> {
    let (Segment::Selector(Selector::Wildcard), parents) = path.query.segments.split_last()? else {
        return None;
    };
    let mut node = body;
    for segment in parents {
        let Segment::Selector(Selector::Name(name)) = segment else {
            return None;
        };
        node = node.as_object_mut()?.get_mut(name.as_str())?;
    }
    match node {
        Json::Array(items) => Some(std::mem::take(items)),
        _ => None,
    }
}

/// Whether the records `path` selects in `body` are each a JSON object. A response of another
/// shape (the list an object, a record a string) is refused with what is wrong and where: read
/// as records, it would be parked under made-up keys or skipped, never delivered. `Ok`: how
/// many there are.
pub fn check_records(path: &JsonPath, body: &Json) -> std::result::Result<usize, String> {
    // For `….list[*]` the list itself must be a list (or null; absent is judged by `fetch`).
    if let Some((lists, list_text)) = lists_of(path, body) {
        // Absent, while the answer holds records elsewhere: `records` is wrong, and reading
        // nothing would skip them all.
        if lists.is_empty()
            && let Some((found, count)) = list_of_objects(body, "$", 3)
        {
            return Err(format!(
                "`{list_text}` is not in the answer, which holds a list of {count} object(s) at `{found}` (is `records: {}` right?)",
                path.text
            ));
        }
        for list in lists {
            if !matches!(list, Json::Array(_) | Json::Null) {
                return Err(format!(
                    "`{list_text}` is {}, not a list of records (records are read at `{}`)",
                    kind_of(list),
                    path.text
                ));
            }
        }
    }
    let records = path.select(body);
    if let Some((index, record)) = records.iter().enumerate().find(|(_, r)| !r.is_object()) {
        return Err(format!(
            "record {index} at `{}` is {}, not an object",
            path.text,
            kind_of(record)
        ));
    }
    Ok(records.len())
}

/// For a `….list[*]` records path: what its list part (`$.items`) finds in `body`, and that
/// part as written.
fn lists_of<'b, 'p>(path: &'p JsonPath, body: &'b Json) -> Option<(Vec<&'b Json>, &'p str)> {
    let (Segment::Selector(Selector::Wildcard), parents) = path.query.segments.split_last()? else {
        return None;
    };
    let lists = jsonpath_rust::query::js_path_process(&JpQuery::new(parents.to_vec()), body)
        .map(|found| found.into_iter().map(|r| r.val).collect())
        .unwrap_or_default();
    let text = path
        .text
        .strip_suffix("[*]")
        .or_else(|| path.text.strip_suffix(".*"))
        .unwrap_or(&path.text);
    Some((lists, text))
}

/// The list part of a `….list[*]` records path (`$.items`) when it finds nothing in `body`
/// (neither a list nor null): the answer does not hold its records list at all.
pub fn absent_list(path: &JsonPath, body: &Json) -> Option<String> {
    lists_of(path, body)
        .filter(|(lists, _)| lists.is_empty())
        .map(|(_, text)| text.to_string())
}

/// The first non-empty list of objects in `value` (itself, or `depth` levels of object keys
/// down), as a JSONPath and its length.
fn list_of_objects(value: &Json, at: &str, depth: u8) -> Option<(String, usize)> {
    match value {
        Json::Array(items) if !items.is_empty() && items.iter().all(Json::is_object) => {
            Some((at.to_string(), items.len()))
        }
        Json::Object(fields) if depth > 0 => fields
            .iter()
            .find_map(|(name, inner)| list_of_objects(inner, &format!("{at}.{name}"), depth - 1)),
        _ => None,
    }
}

fn kind_of(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    }
}

pub fn count_of(value: &Json) -> Option<u64> {
    match value {
        Json::Number(n) => n.as_u64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> JsonPath {
        JsonPath::of(text)
    }

    #[test]
    fn a_records_list_that_is_not_in_the_answer_is_told_apart_from_an_empty_one() {
        let records = path("$.response.stockin_list[*]");
        let absent = |body: Json| absent_list(&records, &body);
        assert_eq!(
            absent(serde_json::json!({"response": {}})),
            Some("$.response.stockin_list".to_string())
        );
        assert_eq!(
            absent(serde_json::json!({"error": "quota exceeded"})),
            Some("$.response.stockin_list".to_string())
        );
        for present in [
            serde_json::json!({"response": {"stockin_list": []}}),
            serde_json::json!({"response": {"stockin_list": null}}),
            serde_json::json!({"response": {"stockin_list": [{"order_no": "RK1"}]}}),
        ] {
            assert_eq!(absent(present), None);
        }
        assert_eq!(absent_list(&path("$.data"), &serde_json::json!({})), None);
    }

    #[test]
    fn records_are_objects_in_a_list_or_the_response_is_refused() {
        let records = path("$.response.stockin_list[*]");
        let ok = |body: Json| check_records(&records, &body);
        let refused = |body: Json| check_records(&records, &body).unwrap_err();
        assert_eq!(
            ok(
                serde_json::json!({"response": {"stockin_list": [{"order_no": "RK1"}, {"order_no": "RK2"}]}})
            ),
            Ok(2)
        );
        for empty in [
            serde_json::json!({"response": {"stockin_list": []}}),
            serde_json::json!({"response": {"stockin_list": null}}),
            serde_json::json!({"response": {}}),
            serde_json::json!({"response": {"errors": [], "codes": [1, 2]}}),
        ] {
            assert_eq!(ok(empty), Ok(0));
        }
        // Absent, while records sit elsewhere: a wrong `records` path, not an empty answer.
        assert_eq!(
            refused(serde_json::json!({"response": {"stock_list": [{"order_no": "RK1"}]}})),
            "`$.response.stockin_list` is not in the answer, which holds a list of 1 object(s) at `$.response.stock_list` (is `records: $.response.stockin_list[*]` right?)"
        );
        assert_eq!(
            refused(serde_json::json!([{"order_no": "RK1"}, {"order_no": "RK2"}])),
            "`$.response.stockin_list` is not in the answer, which holds a list of 2 object(s) at `$` (is `records: $.response.stockin_list[*]` right?)"
        );
        assert_eq!(
            refused(serde_json::json!({"response": {"stockin_list": {"a": {"order_no": "RK1"}}}})),
            "`$.response.stockin_list` is an object, not a list of records (records are read at `$.response.stockin_list[*]`)"
        );
        assert_eq!(
            refused(serde_json::json!({"response": {"stockin_list": "RK1,RK2"}})),
            "`$.response.stockin_list` is a string, not a list of records (records are read at `$.response.stockin_list[*]`)"
        );
        assert_eq!(
            refused(
                serde_json::json!({"response": {"stockin_list": [{"order_no": "RK1"}, "RK2"]}})
            ),
            "record 1 at `$.response.stockin_list[*]` is a string, not an object"
        );
        // A path without a wildcard: every value it selects must be a record.
        assert_eq!(
            check_records(&path("$.data"), &serde_json::json!({"data": [1]})).unwrap_err(),
            "record 0 at `$.data` is a list, not an object"
        );
    }

    #[test]
    fn records_are_moved_out_of_the_answer_in_the_order_the_path_selects_them() {
        let body = serde_json::json!({
            "response": {"total_count": 3, "stockin_list": [{"order_no": "RK1"}, {"order_no": "RK2"}, {"order_no": "RK3"}]},
            "has_more": false
        });
        for text in [
            "$.response.stockin_list[*]",
            "$['response']['stockin_list'][*]",
            "$.response.stockin_list.*",
        ] {
            let records = path(text);
            let selected: Vec<Json> = records.select(&body).into_iter().cloned().collect();
            let mut answer = body.clone();
            let taken = take_list(&records, &mut answer).expect(text);
            assert_eq!(taken, selected, "{text}");
            assert_eq!(taken.len(), 3);
            // What the pager sees beside the records is unchanged; the list is left empty.
            assert_eq!(answer["response"]["stockin_list"], serde_json::json!([]));
            assert_eq!(answer["response"]["total_count"], 3);
            assert_eq!(answer["has_more"], false);
        }
        let mut top = serde_json::json!([{"id": 1}, {"id": 2}]);
        assert_eq!(take_list(&path("$[*]"), &mut top).map(|r| r.len()), Some(2));
        assert_eq!(top, serde_json::json!([]));
        // Other paths and shapes are copied as the path selects them, the answer untouched.
        for (text, body) in [
            ("$.response.stockin_list[0]", body.clone()),
            ("$..stockin_list[*]", body.clone()),
            (
                "$.response.stockin_list[?@.order_no == 'RK1']",
                body.clone(),
            ),
            ("$.response.missing[*]", body.clone()),
            ("$.response[*]", body.clone()),
            (
                "$.response.stockin_list[*]",
                serde_json::json!({"response": {"stockin_list": null}}),
            ),
        ] {
            let mut answer = body.clone();
            assert_eq!(take_list(&path(text), &mut answer), None, "{text}");
            assert_eq!(answer, body, "{text}");
        }
        // A cursor or a next URL may be read from inside the records: they stay in the answer.
        let from = path("$.data[-1:].id");
        assert!(reads_body_paths(&PagingStrategy::Cursor {
            from: crate::config::model::CursorFrom::Body(from),
            has_more: None,
        }));
        assert!(!reads_body_paths(&PagingStrategy::Offset));
    }
}
