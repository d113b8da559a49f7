//! Per-record outcomes of a write call.
//!
//! A batch answer lists items, matched to the batch's records by position (Kingdee's
//! BatchSave: `SuccessEntitys` and `Errors`, each item carrying `DIndex`), by the record key
//! the item echoes, or by order in one `items` list. A record that appears in no list
//! (all-or-nothing mode rolled it back, or the response is cut short) is `Unknown`: it must be
//! looked up, never resent blindly. A record listed as saved is `Done` even if errors follow
//! for it (it exists, e.g. saved but not audited); those errors travel along as a note.
//!
//! A one-record write's answer is its record's result: a success is `Done` with the id and
//! number its `results` expressions read; a duplicate (`status == 409` unless the connector
//! says otherwise) or any other refusal is `Failed` with the envelope's message, which the
//! writer looks up before it parks the record. Pure.

use std::sync::Arc;

use serde_json::Value as Json;

use crate::config::model::{BatchResults, MatchedBy, OneResults, ResultLists};
use crate::http::envelope::{Verdict, response_scope};
use crate::template::{TemplateId, TemplateSet};

/// What happened to one record of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordResult {
    Done {
        id: Option<String>,
        number: Option<String>,
        note: Option<String>,
    },
    Failed {
        message: String,
        field: Option<String>,
    },
    Unknown,
}

/// The outcome of each record of a batch whose keys are `keys`, in batch order.
pub fn classify(results: &BatchResults, response: &Json, keys: &[String]) -> Vec<RecordResult> {
    let batch_len = keys.len();
    let mut saved: Vec<Option<(Option<String>, Option<String>)>> = vec![None; batch_len];
    let mut errors: Vec<Vec<(String, Option<String>)>> = vec![Vec::new(); batch_len];
    let position = |item: &Json, order: usize| -> Option<usize> {
        match &results.matched_by {
            MatchedBy::Index(field) => index_of(item, field),
            MatchedBy::Key(field) => {
                let key = text(item.get(field))?;
                keys.iter().position(|k| *k == key)
            }
            MatchedBy::Order => Some(order),
        }
        .filter(|i| *i < batch_len)
    };
    let mut save = |item: &Json, at: usize| {
        let number = (results.number.as_ref()).and_then(|field| text(item.get(field)));
        saved[at] = Some((text(item.get(&results.id)), number));
    };
    let mut refuse = |item: &Json, at: usize| {
        let message = text(item.get(&results.message))
            .unwrap_or_else(|| "the target rejected the record without a message".to_string());
        let field = (results.field.as_ref()).and_then(|field| text(item.get(field)));
        errors[at].push((message, field));
    };
    match &results.lists {
        ResultLists::Split { successes, errors } => {
            for (order, item) in successes.select(response).into_iter().enumerate() {
                if let Some(at) = position(item, order) {
                    save(item, at);
                }
            }
            for (order, item) in errors.select(response).into_iter().enumerate() {
                if let Some(at) = position(item, order) {
                    refuse(item, at);
                }
            }
        }
        ResultLists::Items(items) => {
            let items = items.select(response);
            // Matched by order, a list of another length cannot say which item is whose.
            if results.matched_by == MatchedBy::Order && items.len() != batch_len {
                return vec![RecordResult::Unknown; batch_len];
            }
            for (order, item) in items.into_iter().enumerate() {
                let Some(at) = position(item, order) else {
                    continue;
                };
                if text(item.get(&results.id)).is_some() {
                    save(item, at);
                } else if text(item.get(&results.message)).is_some() {
                    refuse(item, at);
                }
            }
        }
    }
    saved
        .into_iter()
        .zip(errors)
        .map(|(saved, errors)| {
            let message = (!errors.is_empty()).then(|| {
                errors
                    .iter()
                    .map(|(m, _)| m.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            });
            match (saved, message) {
                (Some((id, number)), note) => RecordResult::Done { id, number, note },
                (None, Some(message)) => RecordResult::Failed {
                    message,
                    field: errors.iter().find_map(|(_, f)| f.clone()),
                },
                (None, None) => RecordResult::Unknown,
            }
        })
        .collect()
}

/// One record's answer, as the client got it.
pub struct Answer<'a> {
    pub status: u16,
    pub headers: &'a [(String, String)],
    pub body: &'a Arc<Json>,
    pub verdict: &'a Verdict,
}

/// The outcome of a one-record write from its answer. A duplicate is a refusal (whatever the
/// envelope thought of it): the writer looks it up and finds it written.
pub fn classify_one(
    results: &OneResults,
    templates: &TemplateSet,
    answer: &Answer,
) -> RecordResult {
    let scope = response_scope(answer.status, answer.headers, answer.body);
    let text = |id: TemplateId| -> Option<String> { id_text(&templates.eval(id, &scope).ok()?) };
    let duplicate = is_duplicate(results, templates, answer);
    let refusal = |code: &Option<String>, message: &str| {
        let code = code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default();
        format!("{message}{code}")
    };
    match answer.verdict {
        Verdict::Success if !duplicate => {
            let id = results.id.map(text);
            match id {
                // A success without the id `results.id` reads (an error envelope in a 200
                // under `success: status < 300`) is not known to be written: it is looked up.
                Some(None) => RecordResult::Unknown,
                id => RecordResult::Done {
                    id: id.flatten(),
                    number: results.number.and_then(text),
                    note: None,
                },
            }
        }
        Verdict::Failed { code, message }
        | Verdict::Retryable { code, message }
        | Verdict::Fatal { code, message }
        | Verdict::Throttled { code, message } => RecordResult::Failed {
            message: refusal(code, message),
            field: None,
        },
        Verdict::Success => RecordResult::Failed {
            message: format!(
                "the target answered HTTP {} and holds this record already",
                answer.status
            ),
            field: None,
        },
        Verdict::Reauth { .. } => RecordResult::Unknown,
    }
}

/// Whether the answer refuses the record as one the target holds already (`duplicate`,
/// `status == 409` by default).
pub fn is_duplicate(results: &OneResults, templates: &TemplateSet, answer: &Answer) -> bool {
    match results.duplicate {
        Some(id) => {
            let scope = response_scope(answer.status, answer.headers, answer.body);
            templates.eval(id, &scope).is_ok_and(|v| v.is_true())
        }
        None => answer.status == 409,
    }
}

fn index_of(item: &Json, field: &str) -> Option<usize> {
    match item.get(field)? {
        Json::Number(n) => n.as_u64().map(|n| n as usize),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// What a `results.id`, `results.number` or `rows.*` expression read, as the text of an id: a
/// string that is not blank, or a number. Anything else (`null`, a boolean, a list, an object)
/// names no record, so it is no id rather than its printout (`True`, `[1, 2]`) sent back as a
/// path segment by a later update.
pub fn id_text(value: &minijinja::Value) -> Option<String> {
    match value.kind() {
        minijinja::value::ValueKind::String => value
            .as_str()
            .filter(|text| !text.trim().is_empty())
            .map(str::to_string),
        minijinja::value::ValueKind::Number => Some(value.to_string()),
        _ => None,
    }
}

/// A JSON scalar as text (`null`, empty strings and containers are `None`).
pub fn text(value: Option<&Json>) -> Option<String> {
    match value? {
        Json::String(s) if !s.is_empty() => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::model::JsonPath;

    fn path(text: &str) -> JsonPath {
        JsonPath::of(text)
    }

    fn kingdee() -> BatchResults {
        BatchResults {
            lists: ResultLists::Split {
                successes: path("$.Result.ResponseStatus.SuccessEntitys[*]"),
                errors: path("$.Result.ResponseStatus.Errors[*]"),
            },
            matched_by: MatchedBy::Index("DIndex".into()),
            id: "Id".into(),
            number: Some("Number".into()),
            message: "Message".into(),
            field: Some("FieldName".into()),
        }
    }

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("K{i}")).collect()
    }

    fn done(id: &str, number: &str) -> RecordResult {
        RecordResult::Done {
            id: Some(id.into()),
            number: Some(number.into()),
            note: None,
        }
    }

    #[test]
    fn a_partial_success_is_read_per_record() {
        let response = json!({"Result": {"ResponseStatus": {"IsSuccess": false, "ErrorCode": 500, "MsgCode": 11,
        "SuccessEntitys": [{"Id": 100101, "Number": "RK1", "DIndex": 0}, {"Id": "100103", "Number": "RK3", "DIndex": 2}],
        "Errors": [
            {"FieldName": "FMaterialId", "Message": "字段“物料编码”的值“X”在系统中不存在或已禁用", "DIndex": 1},
            {"FieldName": null, "Message": "第二条错误", "DIndex": "1"}
        ]}}});
        assert_eq!(
            classify(&kingdee(), &response, &keys(3)),
            vec![
                done("100101", "RK1"),
                RecordResult::Failed {
                    message: "字段“物料编码”的值“X”在系统中不存在或已禁用; 第二条错误".into(),
                    field: Some("FMaterialId".into())
                },
                done("100103", "RK3"),
            ]
        );
    }

    #[test]
    fn records_in_neither_list_are_unknown() {
        // All-or-nothing mode: one record failed, the others were rolled back.
        let response = json!({"Result": {"ResponseStatus": {"IsSuccess": false, "SuccessEntitys": [],
            "Errors": [{"FieldName": "FBillNo", "Message": "违反字段唯一性要求", "DIndex": 1}]}}});
        let results = classify(&kingdee(), &response, &keys(3));
        assert_eq!(results[0], RecordResult::Unknown);
        assert_eq!(results[2], RecordResult::Unknown);
        assert!(
            matches!(&results[1], RecordResult::Failed { field: Some(f), .. } if f == "FBillNo")
        );
    }

    #[test]
    fn a_saved_record_with_an_error_is_done_with_a_note() {
        let response = json!({"Result": {"ResponseStatus": {
            "SuccessEntitys": [{"Id": 1, "Number": "RK1", "DIndex": 0}],
            "Errors": [{"Message": "审核失败", "DIndex": 0}]}}});
        assert_eq!(
            classify(&kingdee(), &response, &keys(1)),
            vec![RecordResult::Done {
                id: Some("1".into()),
                number: Some("RK1".into()),
                note: Some("审核失败".into())
            }]
        );
    }

    #[test]
    fn indexes_outside_the_batch_and_garbage_are_ignored() {
        let response = json!({"Result": {"ResponseStatus": {"SuccessEntitys": [{"Id": 1, "DIndex": 7}, {"Id": 2}], "Errors": "nope"}}});
        assert_eq!(
            classify(&kingdee(), &response, &keys(2)),
            vec![RecordResult::Unknown, RecordResult::Unknown]
        );
        assert_eq!(
            classify(&kingdee(), &json!("<html>"), &keys(1)),
            vec![RecordResult::Unknown]
        );
    }

    fn by(lists: ResultLists, matched_by: MatchedBy) -> BatchResults {
        BatchResults {
            lists,
            matched_by,
            id: "id".into(),
            number: None,
            message: "message".into(),
            field: Some("field".into()),
        }
    }

    #[test]
    fn items_echoing_the_key_are_matched_by_key_in_any_order() {
        let results = by(
            ResultLists::Split {
                successes: path("$.created[*]"),
                errors: path("$.failed[*]"),
            },
            MatchedBy::Key("external_id".into()),
        );
        let response = json!({
            "created": [{"external_id": "K2", "id": 12}, {"external_id": "elsewhere", "id": 99}],
            "failed": [{"external_id": "K0", "message": "email is invalid", "field": "email"}]});
        assert_eq!(
            classify(&results, &response, &keys(3)),
            vec![
                RecordResult::Failed {
                    message: "email is invalid".into(),
                    field: Some("email".into())
                },
                RecordResult::Unknown,
                RecordResult::Done {
                    id: Some("12".into()),
                    number: None,
                    note: None
                },
            ]
        );
    }

    #[test]
    fn one_items_list_is_read_by_key_or_by_order() {
        let items = || ResultLists::Items(path("$.results[*]"));
        let response = json!({"results": [
            {"key": "K1", "id": "c-1"},
            {"key": "K0", "message": "name is required"},
            {"key": "K2", "status": "pending"}]});
        let saved = RecordResult::Done {
            id: Some("c-1".into()),
            number: None,
            note: None,
        };
        let refused = RecordResult::Failed {
            message: "name is required".into(),
            field: None,
        };
        let table = [
            (
                MatchedBy::Key("key".into()),
                vec![refused.clone(), saved.clone(), RecordResult::Unknown],
            ),
            // In order: the first item answers the first record, whatever it says.
            (
                MatchedBy::Order,
                vec![saved, refused, RecordResult::Unknown],
            ),
        ];
        for (matched_by, expected) in table {
            assert_eq!(
                classify(&by(items(), matched_by.clone()), &response, &keys(3)),
                expected,
                "{matched_by:?}"
            );
        }
    }

    /// An API that lists only what it created leaves a refused record out: matched by order,
    /// the items after the gap would answer the wrong records (K1 done with K2's id).
    #[test]
    fn items_by_order_of_another_length_than_the_batch_are_all_unknown() {
        let response = json!({"results": [{"id": "c-0"}, {"id": "c-2"}]});
        let results = by(ResultLists::Items(path("$.results[*]")), MatchedBy::Order);
        assert_eq!(
            classify(&results, &response, &keys(3)),
            vec![RecordResult::Unknown; 3]
        );
    }

    #[test]
    fn a_one_record_answer_is_its_records_result() {
        let mut builder = crate::template::Builder::new(
            minijinja::UndefinedBehavior::Chainable,
            Arc::new(crate::value_map::ValueMaps::new()),
        );
        let mut expression = |text: &str| {
            let origin = crate::template::Origin {
                location: crate::error::Location::file_only(std::path::Path::new("t.yaml")),
                path: crate::config::yaml::YamlPath::root(),
            };
            builder.expression(text, origin).unwrap()
        };
        let results = OneResults {
            id: Some(expression(
                "body.id or (headers.location | split('/') | last)",
            )),
            number: None,
            duplicate: None,
        };
        let templates = builder.build();
        let failed = |message: &str| Verdict::Failed {
            code: None,
            message: message.into(),
        };
        let location = vec![("location".to_string(), "/customers/77".to_string())];
        // Status, headers, body, the envelope's verdict, and the record's result.
        type Case<'a> = (u16, &'a [(String, String)], Json, Verdict, RecordResult);
        let table: [Case; 9] = [
            (
                201,
                &[],
                json!({"id": 5}),
                Verdict::Success,
                RecordResult::Done {
                    id: Some("5".into()),
                    number: None,
                    note: None,
                },
            ),
            (
                201,
                &location,
                Json::Null,
                Verdict::Success,
                RecordResult::Done {
                    id: Some("77".into()),
                    number: None,
                    note: None,
                },
            ),
            (
                409,
                &[],
                json!({"message": "external_id taken"}),
                failed("external_id taken"),
                RecordResult::Failed {
                    message: "external_id taken".into(),
                    field: None,
                },
            ),
            (
                422,
                &[],
                json!({}),
                failed("email is invalid"),
                RecordResult::Failed {
                    message: "email is invalid".into(),
                    field: None,
                },
            ),
            // A 2xx without the id `results.id` reads: an error in a 200, looked up.
            (
                200,
                &[],
                json!({"error": "quota exceeded, nothing saved"}),
                Verdict::Success,
                RecordResult::Unknown,
            ),
            // An id that names nothing (a boolean, a list, an object) is no id: looked up,
            // never recorded as `True` or `[1, 2]`.
            (
                201,
                &[],
                json!({"id": true}),
                Verdict::Success,
                RecordResult::Unknown,
            ),
            (
                201,
                &[],
                json!({"id": [1, 2]}),
                Verdict::Success,
                RecordResult::Unknown,
            ),
            (
                201,
                &location,
                json!({"id": {"value": 5}}),
                Verdict::Success,
                RecordResult::Unknown,
            ),
            // A 409 the envelope calls a success is still a duplicate, to be looked up.
            (
                409,
                &[],
                Json::Null,
                Verdict::Success,
                RecordResult::Failed {
                    message: "the target answered HTTP 409 and holds this record already".into(),
                    field: None,
                },
            ),
        ];
        for (status, headers, body, verdict, expected) in table {
            let body = Arc::new(body);
            let answer = Answer {
                status,
                headers,
                body: &body,
                verdict: &verdict,
            };
            assert_eq!(
                classify_one(&results, &templates, &answer),
                expected,
                "{status} {body}"
            );
        }
    }
}
