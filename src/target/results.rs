//! Per-record outcomes of a write call, read from the response by position in the batch.
//!
//! Kingdee's BatchSave answers with `SuccessEntitys` and `Errors`, each item carrying the
//! record's position (`DIndex`); the connector's `results` section says where those are and
//! which fields hold what. A record that appears in neither list (all-or-nothing mode rolled
//! it back, or the response is cut short) is `Unknown`: it must be looked up, never resent
//! blindly. A record listed as saved is `Done` even if errors follow for it (it exists, e.g.
//! saved but not audited); those errors travel along as a note. Pure.

use serde_json::Value as Json;

use crate::config::model::Results;

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

/// The outcome of each of the `batch_len` records of a write, in batch order.
pub fn classify(results: &Results, response: &Json, batch_len: usize) -> Vec<RecordResult> {
    let mut saved: Vec<Option<(Option<String>, Option<String>)>> = vec![None; batch_len];
    let mut errors: Vec<Vec<(String, Option<String>)>> = vec![Vec::new(); batch_len];
    for item in results.successes.select(response) {
        if let Some(index) = index_of(item, &results.index).filter(|i| *i < batch_len) {
            let number = results
                .number
                .as_ref()
                .and_then(|field| text(item.get(field)));
            saved[index] = Some((text(item.get(&results.id)), number));
        }
    }
    for item in results.errors.select(response) {
        if let Some(index) = index_of(item, &results.index).filter(|i| *i < batch_len) {
            let message = text(item.get(&results.message))
                .unwrap_or_else(|| "the target rejected the record without a message".to_string());
            let field = results
                .field
                .as_ref()
                .and_then(|field| text(item.get(field)));
            errors[index].push((message, field));
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

fn index_of(item: &Json, field: &str) -> Option<usize> {
    match item.get(field)? {
        Json::Number(n) => n.as_u64().map(|n| n as usize),
        Json::String(s) => s.trim().parse().ok(),
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
        JsonPath {
            text: text.to_string(),
            query: jsonpath_rust::parser::parse_json_path(text).unwrap(),
        }
    }

    fn kingdee() -> Results {
        Results {
            successes: path("$.Result.ResponseStatus.SuccessEntitys[*]"),
            errors: path("$.Result.ResponseStatus.Errors[*]"),
            index: "DIndex".into(),
            id: "Id".into(),
            number: Some("Number".into()),
            message: "Message".into(),
            field: Some("FieldName".into()),
        }
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
            classify(&kingdee(), &response, 3),
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
        let results = classify(&kingdee(), &response, 3);
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
            classify(&kingdee(), &response, 1),
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
            classify(&kingdee(), &response, 2),
            vec![RecordResult::Unknown, RecordResult::Unknown]
        );
        assert_eq!(
            classify(&kingdee(), &json!("<html>"), 1),
            vec![RecordResult::Unknown]
        );
    }
}
