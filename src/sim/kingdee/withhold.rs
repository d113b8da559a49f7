//! Packets withheld from a save (or bills from a Submit/Audit/UnAudit): bills another user
//! holds (a network-control conflict, MsgCode 13) and a bill a `missing_entity` mishap silently
//! leaves unsaved. They are taken out of `Model` before the save runs, and the answer's
//! `DIndex` values are moved back to the positions the caller sent, so the caller sees one
//! answer for the whole call.
//!
//! Pure functions over the request's `data` and the answer's JSON.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::sim::kingdee::body::scalar_text;
use crate::sim::kingdee::envelope::{ErrorItem, MsgCode};
use crate::sim::kingdee::faults::{ConflictScope, Faults};
use crate::sim::kingdee::schema;

/// The user a network-control conflict blames **[I]**.
const CONFLICT_HOLDER: &str = "Administrator";

/// The conflict message of spec §4.2 for bill `number` and the `action` tried (保存, 审核, …).
pub fn conflict_message(number: &str, action: &str) -> String {
    format!(
        "“{CONFLICT_HOLDER}”使用业务单据：“{name}”业务操作-“[{name}-{number}-{action}]”冲突，请稍候再使用。",
        name = schema::FORM_NAME
    )
}

/// The bills of a call (their `numbers`, in order) that someone else holds, by position: the
/// first one when `injected` with scope `bill`, and those on the conflict list. `Err` with the
/// number to blame when the whole call is refused: an injected conflict with scope `call` (or
/// a call of one bill), every bill held, or a held bill in a call that is not a batch.
pub fn locked(
    faults: &Faults,
    injected: bool,
    numbers: &[String],
    batch: bool,
) -> Result<Vec<(usize, String)>, String> {
    let mut locked: Vec<(usize, String)> = Vec::new();
    if injected {
        if faults.conflict_scope == ConflictScope::Bill && numbers.len() > 1 {
            locked.push((0, numbers[0].clone()));
        } else {
            return Err(numbers.first().cloned().unwrap_or_default());
        }
    }
    for (position, number) in numbers.iter().enumerate() {
        if faults.conflict_bill_nos.contains(number)
            && !locked.iter().any(|(locked, _)| *locked == position)
        {
            locked.push((position, number.clone()));
        }
    }
    locked.sort();
    if !locked.is_empty() && (locked.len() >= numbers.len() || !batch) {
        return Err(locked[0].1.clone());
    }
    Ok(locked)
}

fn model_mut(data: &mut Map<String, Value>) -> Option<&mut Value> {
    data.iter_mut()
        .find(|(key, _)| key.eq_ignore_ascii_case("Model"))
        .map(|(_, model)| model)
}

/// The packets of a save: the `Model` array, or a single `Model` object.
pub fn packets(data: &Map<String, Value>) -> Vec<&Value> {
    match data
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("Model"))
        .map(|(_, model)| model)
    {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => vec![other],
    }
}

/// A packet's `FBillNo`, or empty.
pub fn bill_no(packet: &Value) -> String {
    packet
        .as_object()
        .and_then(|fields| {
            fields
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case("FBillNo"))
        })
        .and_then(|(_, number)| scalar_text(number))
        .unwrap_or_default()
}

/// Take the packets at `positions` out of a `Model` array; returns the position in the call of
/// every packet left, in order. The caller makes sure some packet is left.
pub fn take_out(data: &mut Map<String, Value>, positions: &BTreeSet<usize>) -> Vec<usize> {
    let Some(Value::Array(items)) = model_mut(data) else {
        return Vec::new();
    };
    let mut kept = Vec::new();
    let mut index = 0;
    items.retain(|_| {
        let keep = !positions.contains(&index);
        if keep {
            kept.push(index);
        }
        index += 1;
        keep
    });
    kept
}

/// Move the `DIndex` of every error and saved entity back to its packet's position in the
/// call (`kept[i]` is the position of the packet saved as `i`).
pub fn restore_positions(body: &mut Value, kept: &[usize]) {
    let Some(status) = body
        .pointer_mut("/Result/ResponseStatus")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for list in ["Errors", "SuccessEntitys"] {
        if let Some(Value::Array(items)) = status.get_mut(list) {
            for item in items {
                if let Some(&position) = item
                    .get("DIndex")
                    .and_then(Value::as_u64)
                    .and_then(|index| kept.get(index as usize))
                {
                    item["DIndex"] = json!(position);
                }
            }
        }
    }
}

/// Add a network-control conflict for each `(position, bill number)` to an answer: the call
/// fails (`IsSuccess` false, `ErrorCode` 500, MsgCode 13) whatever else it saved.
pub fn add_conflicts(body: &mut Value, locked: &[(usize, String)], action: &str) {
    let Some(status) = body
        .pointer_mut("/Result/ResponseStatus")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    // In place, so the envelope keeps its documented key order.
    let errors = status
        .entry("Errors")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !errors.is_array() {
        *errors = Value::Array(Vec::new());
    }
    let errors = errors.as_array_mut().expect("just made an array");
    for (position, number) in locked {
        let item = ErrorItem::new(
            MsgCode::NetworkControlConflict,
            None,
            conflict_message(number, action),
            *position,
        );
        errors.push(item.to_json());
    }
    // A stable sort keeps several errors of one packet in their order.
    errors.sort_by_key(|error| error.get("DIndex").and_then(Value::as_u64).unwrap_or(0));
    status.insert("IsSuccess".into(), json!(false));
    status.insert("ErrorCode".into(), json!(500));
    status.insert(
        "MsgCode".into(),
        json!(MsgCode::NetworkControlConflict.code()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(numbers: &[&str]) -> Map<String, Value> {
        let model: Vec<Value> = numbers.iter().map(|n| json!({"FBillNo": n})).collect();
        json!({"Model": model}).as_object().unwrap().clone()
    }

    #[test]
    fn packets_taken_out_get_their_positions_back_in_the_answer() {
        let mut data = data(&["A", "B", "C", "D"]);
        let kept = take_out(&mut data, &BTreeSet::from([0, 2]));
        assert_eq!(kept, [1, 3]);
        let numbers: Vec<String> = packets(&data).into_iter().map(bill_no).collect();
        assert_eq!(numbers, ["B", "D"]);
        let mut body = json!({"Result": {"ResponseStatus": {
            "IsSuccess": false,
            "Errors": [{"FieldName": "FX", "Message": "m", "DIndex": 1}],
            "SuccessEntitys": [{"Id": 1, "Number": "B", "DIndex": 0}],
            "MsgCode": 11,
        }}});
        restore_positions(&mut body, &kept);
        add_conflicts(
            &mut body,
            &[(0, "A".to_string()), (2, "C".to_string())],
            "保存",
        );
        let status = &body["Result"]["ResponseStatus"];
        assert_eq!(status["SuccessEntitys"][0]["DIndex"], 1);
        let positions: Vec<&Value> = status["Errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["DIndex"])
            .collect();
        assert_eq!(positions, [0, 2, 3]);
        assert_eq!(status["MsgCode"], 13);
        assert_eq!(status["ErrorCode"], 500);
        assert!(
            status["Errors"][1]["Message"]
                .as_str()
                .unwrap()
                .contains("-C-保存]”冲突")
        );
    }

    #[test]
    fn a_single_model_object_is_one_packet() {
        let data = json!({"Model": {"FBillNo": 7}})
            .as_object()
            .unwrap()
            .clone();
        let numbers: Vec<String> = packets(&data).into_iter().map(bill_no).collect();
        assert_eq!(numbers, ["7"]);
    }
}
