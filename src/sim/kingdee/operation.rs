//! `DynamicFormService.Submit`, `Audit` and `UnAudit` for `SAL_RETURNSTOCK`: a bill's status
//! rules (spec §5.1, §4.2).
//!
//! A call names its bills by `Ids` (`"1,2"`, a number, or an array) or by `Numbers` (an
//! array); `DIndex` is the position in that list. Each bill is judged alone: Submit moves A/D
//! to B, Audit B to C, UnAudit C to D; any other move is refused with MsgCode 11, an unknown
//! bill with MsgCode 10. The refusals and success messages other than Audit's are the
//! sandbox's choice **[I]**. [`read_targets`] and [`apply`] are pure; `operation_call` puts
//! the faults around them.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::sim::kingdee::basedata::Table;
use crate::sim::kingdee::bills::{BillStore, DocumentStatus};
use crate::sim::kingdee::body::{FormCall, scalar_text};
use crate::sim::kingdee::envelope::{self, ErrorItem, MsgCode, SuccessEntity};
use crate::sim::kingdee::schema;

/// One status-changing operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Submit,
    Audit,
    UnAudit,
}

impl Operation {
    /// The operation's name in messages (提交, 审核, 反审核).
    pub fn caption(self) -> &'static str {
        match self {
            Operation::Submit => "提交",
            Operation::Audit => "审核",
            Operation::UnAudit => "反审核",
        }
    }

    /// The status a bill in `from` moves to, or why it may not: the end of the refusal
    /// message after 「单据编号为“X”的销售退货单，」.
    pub fn transition(self, from: DocumentStatus) -> Result<DocumentStatus, &'static str> {
        use DocumentStatus::{Audited, Created, Reaudit, Submitted};
        match (self, from) {
            (Operation::Submit, Created | Reaudit) => Ok(Submitted),
            (Operation::Submit, Submitted) => Err("单据已经提交！"),
            (Operation::Submit, Audited) => Err("单据已经审核！"),
            (Operation::Audit, Submitted) => Ok(Audited),
            (Operation::Audit, Audited) => Err("单据已经审核！"),
            (Operation::Audit, Created | Reaudit) => Err("单据未提交，不能审核！"),
            (Operation::UnAudit, Audited) => Ok(Reaudit),
            (Operation::UnAudit, _) => Err("单据不是已审核状态，不能反审核！"),
        }
    }
}

/// How a call names one bill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An `FID`, as sent.
    Id(String),
    /// An `FBillNo`.
    Number(String),
}

impl Target {
    /// The bill's number for messages: its `FBillNo` if it exists, else what was sent.
    pub fn bill_no(&self, store: &BillStore) -> String {
        match self {
            Target::Id(id) => id
                .parse()
                .ok()
                .and_then(|fid| store.by_fid(fid))
                .map_or_else(|| id.clone(), |bill| bill.bill_no.clone()),
            Target::Number(number) => number.clone(),
        }
    }

    fn fid(&self, store: &BillStore) -> Option<u64> {
        match self {
            Target::Id(id) => id.parse().ok().filter(|fid| store.by_fid(*fid).is_some()),
            Target::Number(number) => store.by_number(number).map(|bill| bill.fid),
        }
    }

    fn not_found(&self) -> String {
        let name = schema::FORM_NAME;
        match self {
            Target::Id(id) => format!("内码为“{id}”的{name}不存在，或者已被删除"),
            Target::Number(number) => format!("单据编号为“{number}”的{name}不存在，或者已被删除"),
        }
    }
}

fn get_ci<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(key))
        .map(|(_, value)| value)
}

/// `Ids` as a comma-separated string, a number or an array; `Numbers` as an array or one
/// string. Empty parts are skipped.
fn list(value: Option<&Value>, split_commas: bool) -> Vec<String> {
    let parts: Vec<String> = match value {
        Some(Value::Array(items)) => items.iter().filter_map(scalar_text).collect(),
        Some(Value::String(text)) if split_commas => text.split(',').map(str::to_string).collect(),
        Some(other) => scalar_text(other).into_iter().collect(),
        None => Vec::new(),
    };
    parts
        .into_iter()
        .map(|part| part.trim().to_string())
        .filter(|part| !part.is_empty())
        .collect()
}

/// The bills a call names, in order, or the failure envelope of a call that names none or
/// the wrong form. `Ids` win when both are given **[I]**.
pub fn read_targets(call: &FormCall) -> Result<Vec<Target>, Value> {
    let fail = |code, message: String| envelope::failure(code, None, message);
    let formid = match call.formid.as_deref().map(str::trim) {
        None | Some("") => return Err(fail(MsgCode::FormIdEmpty, "表单标识formid不能为空".into())),
        Some(formid) => formid,
    };
    if !formid.eq_ignore_ascii_case(schema::FORM_ID) {
        let message = match Table::parse(formid) {
            Some(_) => format!("沙箱不支持对业务对象“{formid}”执行此操作"),
            None => format!("标识为“{formid}”的业务对象不存在，或者被删除"),
        };
        return Err(fail(MsgCode::Exception, message));
    }
    let ids = list(get_ci(&call.data, "Ids"), true);
    let targets: Vec<Target> = if ids.is_empty() {
        list(get_ci(&call.data, "Numbers"), false)
            .into_iter()
            .map(Target::Number)
            .collect()
    } else {
        ids.into_iter().map(Target::Id).collect()
    };
    if targets.is_empty() {
        return Err(fail(
            MsgCode::ParameterError,
            "data数据包中的参数Ids和Numbers不能同时为空".into(),
        ));
    }
    Ok(targets)
}

/// What a call did, for the envelope and the statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationOutcome {
    pub body: Value,
    /// Bills whose status changed.
    pub done: usize,
    /// Bills refused or not found.
    pub refused: usize,
}

/// Apply `operation` to each `(DIndex, target)` on its own, in order.
pub fn apply(
    store: &mut BillStore,
    operation: Operation,
    targets: &[(usize, Target)],
    now: DateTime<Utc>,
) -> OperationOutcome {
    let name = schema::FORM_NAME;
    let mut errors = Vec::new();
    let mut done = Vec::new();
    let mut messages = Vec::new();
    for (dindex, target) in targets {
        let dindex = *dindex;
        let Some(bill) = target.fid(store).and_then(|fid| store.by_fid_mut(fid)) else {
            errors.push(ErrorItem::new(
                MsgCode::DataNotFound,
                None,
                target.not_found(),
                dindex,
            ));
            continue;
        };
        match operation.transition(bill.status) {
            Ok(status) => {
                bill.status = status;
                match status {
                    DocumentStatus::Audited => bill.approved = Some(now),
                    DocumentStatus::Reaudit => bill.approved = None,
                    _ => {}
                }
                let number = &bill.bill_no;
                let caption = operation.caption();
                messages.push(json!({
                    "FieldName": null,
                    "Message": format!("单据编号为“{number}”的{name}，{caption}成功！"),
                    "DIndex": dindex,
                }));
                done.push(SuccessEntity {
                    id: bill.fid,
                    number: bill.bill_no.clone(),
                    dindex,
                });
            }
            Err(reason) => errors.push(ErrorItem::new(
                MsgCode::ValidationFailed,
                None,
                format!("单据编号为“{}”的{name}，{reason}", bill.bill_no),
                dindex,
            )),
        }
    }
    let mut status = envelope::response_status(&errors, &done);
    status["SuccessMessages"] = Value::Array(messages);
    OperationOutcome {
        body: json!({"Result": {"ResponseStatus": status}}),
        done: done.len(),
        refused: errors.len(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::sim::kingdee::bills::{Bill, Fields};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 1, 2, 0, 0).unwrap()
    }

    #[test]
    fn each_operation_moves_only_from_its_statuses() {
        use DocumentStatus::{Audited as C, Created as A, Reaudit as D, Submitted as B};
        use Operation::{Audit, Submit, UnAudit};
        for (operation, from, expected) in [
            (Submit, A, Ok(B)),
            (Submit, D, Ok(B)),
            (Submit, B, Err("单据已经提交！")),
            (Submit, C, Err("单据已经审核！")),
            (Audit, B, Ok(C)),
            (Audit, C, Err("单据已经审核！")),
            (Audit, A, Err("单据未提交，不能审核！")),
            (Audit, D, Err("单据未提交，不能审核！")),
            (UnAudit, C, Ok(D)),
            (UnAudit, A, Err("单据不是已审核状态，不能反审核！")),
            (UnAudit, B, Err("单据不是已审核状态，不能反审核！")),
            (UnAudit, D, Err("单据不是已审核状态，不能反审核！")),
        ] {
            assert_eq!(
                operation.transition(from),
                expected,
                "{operation:?} from {from:?}"
            );
        }
    }

    fn call(formid: &str, data: Value) -> FormCall {
        let Value::Object(data) = data else { panic!() };
        FormCall {
            formid: Some(formid.to_string()),
            data,
        }
    }

    #[test]
    fn targets_come_from_ids_or_numbers_in_every_shape() {
        let id = |text: &str| Target::Id(text.to_string());
        let number = |text: &str| Target::Number(text.to_string());
        for (data, expected) in [
            (json!({"Ids": "1, 2,,3"}), vec![id("1"), id("2"), id("3")]),
            (json!({"Ids": 100001}), vec![id("100001")]),
            (json!({"ids": [1, "2"]}), vec![id("1"), id("2")]),
            (
                json!({"Numbers": ["X,1", "Y"]}),
                vec![number("X,1"), number("Y")],
            ),
            (json!({"Numbers": "X1"}), vec![number("X1")]),
            (json!({"Ids": "", "Numbers": ["X"]}), vec![number("X")]),
            (json!({"Ids": "7", "Numbers": ["X"]}), vec![id("7")]),
        ] {
            assert_eq!(
                read_targets(&call("SAL_RETURNSTOCK", data.clone())),
                Ok(expected),
                "{data}"
            );
        }
        for (formid, data, code) in [
            ("SAL_RETURNSTOCK", json!({}), 8),
            ("SAL_RETURNSTOCK", json!({"Ids": "", "Numbers": []}), 8),
            ("", json!({"Ids": "1"}), 5),
            ("NO_SUCH_FORM", json!({"Ids": "1"}), 4),
        ] {
            let err = read_targets(&call(formid, data)).unwrap_err();
            assert_eq!(err["Result"]["ResponseStatus"]["MsgCode"], code, "{formid}");
        }
    }

    fn store(statuses: &[DocumentStatus]) -> BillStore {
        let mut store = BillStore::default();
        for (index, status) in statuses.iter().enumerate() {
            let fid = store.next_fid();
            let bill = Bill {
                fid,
                bill_no: format!("RT-{}", index + 1),
                status: *status,
                head: Fields::new(),
                sub_head: Fields::new(),
                entries: Vec::new(),
                extra: Map::new(),
                created: now(),
                modified: now(),
                approved: None,
            };
            store.put(bill, format!("hash-{index}"));
        }
        store
    }

    #[test]
    fn each_bill_of_a_call_is_judged_alone() {
        let mut store = store(&[DocumentStatus::Submitted, DocumentStatus::Audited]);
        let targets = [
            (0, Target::Number("RT-1".into())),
            (1, Target::Id("100002".into())),
            (2, Target::Id("5".into())),
        ];
        let outcome = apply(&mut store, Operation::Audit, &targets, now());
        assert_eq!(
            outcome.body.to_string(),
            r#"{"Result":{"ResponseStatus":{"ErrorCode":500,"IsSuccess":false,"Errors":[{"FieldName":null,"Message":"单据编号为“RT-2”的销售退货单，单据已经审核！","DIndex":1},{"FieldName":null,"Message":"内码为“5”的销售退货单不存在，或者已被删除","DIndex":2}],"SuccessEntitys":[{"Id":100001,"Number":"RT-1","DIndex":0}],"SuccessMessages":[{"FieldName":null,"Message":"单据编号为“RT-1”的销售退货单，审核成功！","DIndex":0}],"MsgCode":11}}}"#
        );
        assert_eq!((outcome.done, outcome.refused), (1, 2));
        let audited = store.by_number("RT-1").unwrap();
        assert_eq!(audited.status, DocumentStatus::Audited);
        assert_eq!(audited.approved, Some(now()));
    }

    #[test]
    fn unknown_bills_give_msg_code_10_and_unaudit_clears_the_approval() {
        let mut store = store(&[DocumentStatus::Audited]);
        let missing = apply(
            &mut store,
            Operation::Submit,
            &[(0, Target::Number("NOPE".into()))],
            now(),
        );
        assert_eq!(missing.body["Result"]["ResponseStatus"]["MsgCode"], 10);
        let unaudited = apply(
            &mut store,
            Operation::UnAudit,
            &[(0, Target::Id("100001".into()))],
            now(),
        );
        let status = &unaudited.body["Result"]["ResponseStatus"];
        assert_eq!(status["IsSuccess"], true);
        assert_eq!(status["MsgCode"], 0);
        assert_eq!(
            status["SuccessMessages"][0]["Message"],
            "单据编号为“RT-1”的销售退货单，反审核成功！"
        );
        let bill = store.by_fid(100001).unwrap();
        assert_eq!(
            (bill.status, bill.approved),
            (DocumentStatus::Reaudit, None)
        );
    }
}
