//! Queries end to end over a store of three saved bills: rows, filters, order, paging,
//! errors and base-data forms.

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

use super::*;
use crate::sim::kingdee::basedata::BaseData;
use crate::sim::kingdee::bills::BillStore;
use crate::sim::kingdee::body::FormCall;
use crate::sim::kingdee::save::{SaveConfig, SaveKind, save};

pub(super) fn store() -> BillStore {
    let mut store = BillStore::default();
    let model: Vec<Value> = (1..=3)
        .map(|n| {
            json!({
                "FBillTypeID": {"FNumber": "XSTHD01_SYS"},
                "FBillNo": format!("RT-{n}"),
                "FDate": format!("2024-03-0{n}"),
                "FSaleOrgId": {"FNumber": "100"},
                "FStockOrgId": {"FNumber": "100"},
                "FRetcustId": {"FNumber": "CUST0001"},
                "FEntity": (0..n).map(|line| json!({
                    "FMaterialId": {"FNumber": if line == 0 { "TX-RED-M" } else { "WJ-STD" }},
                    "FRealQty": line + 1,
                    "FTaxPrice": "59.90",
                    "FStockId": {"FNumber": "CK001"},
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let Value::Object(data) = json!({"Model": model}) else {
        panic!()
    };
    let outcome = save(
        &mut store,
        &BaseData::seeded(),
        &SaveConfig::default(),
        SaveKind::BatchSave,
        &FormCall {
            formid: Some("SAL_RETURNSTOCK".into()),
            data,
        },
        Utc.with_ymd_and_hms(2024, 3, 5, 0, 0, 0).unwrap(),
    );
    assert_eq!(outcome.created, 3, "{}", outcome.body);
    store
}

fn query(data: Value) -> Result<Value, QueryError> {
    let Value::Object(data) = data else { panic!() };
    run(&data, &store(), &BaseData::seeded()).map(|result| result.to_arrays())
}

#[test]
fn head_keys_give_one_row_per_bill_and_entry_keys_one_per_entry() {
    assert_eq!(
        query(json!({"FormId": "SAL_RETURNSTOCK", "FieldKeys": "FID,FBillNo,FDocumentStatus,FDate,FRetcustId.FNumber"})).unwrap(),
        json!([
            [100001, "RT-1", "A", "2024-03-01T00:00:00", "CUST0001"],
            [100002, "RT-2", "A", "2024-03-02T00:00:00", "CUST0001"],
            [100003, "RT-3", "A", "2024-03-03T00:00:00", "CUST0001"],
        ])
    );
    assert_eq!(
        query(json!({"FormId": "SAL_RETURNSTOCK", "FieldKeys": "FBillNo,FEntity_FEntryId,FEntity_FSeq,FMaterialId.FNumber,FRealQty,FTaxPrice,FStockId.FNumber", "FilterString": "FBillNo='RT-2'"})).unwrap(),
        json!([
            ["RT-2", 100002, 1, "TX-RED-M", 1, 59.9, "CK001"],
            ["RT-2", 100003, 2, "WJ-STD", 2, 59.9, "CK001"],
        ])
    );
}

#[test]
fn filters_order_and_paging_apply_in_that_order() {
    let keys = |data: Value| -> Vec<Value> {
        query(data)
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row[0].clone())
            .collect()
    };
    let base = json!({"FormId": "SAL_RETURNSTOCK", "FieldKeys": "FBillNo"});
    let with = |extra: Value| {
        let mut data = base.clone();
        data.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        data
    };
    assert_eq!(
        keys(with(json!({"OrderString": "FID DESC"}))),
        vec![json!("RT-3"), json!("RT-2"), json!("RT-1")]
    );
    assert_eq!(
        keys(with(json!({"FilterString": "FDate>='2024-03-02'"}))),
        vec![json!("RT-2"), json!("RT-3")]
    );
    assert_eq!(
        keys(with(json!({"FilterString": "FBillNo in ('RT-1','RT-3')"}))),
        vec![json!("RT-1"), json!("RT-3")]
    );
    assert_eq!(
        keys(with(json!({"StartRow": 1, "Limit": 1}))),
        vec![json!("RT-2")]
    );
    assert_eq!(
        keys(with(
            json!({"StartRow": "1", "TopRowCount": 2, "Limit": 2000})
        )),
        vec![json!("RT-2")]
    );
    assert_eq!(keys(with(json!({"StartRow": 5}))), Vec::<Value>::new());
    assert_eq!(
        keys(with(
            json!({"FilterString": [{"Left": "", "FieldName": "FBillNo", "Compare": "67", "Value": "RT-2", "Right": "", "Logic": "0"}]})
        )),
        vec![json!("RT-2")]
    );
    // An entry key in the filter alone makes rows per entry, as the SQL join would.
    assert_eq!(
        keys(with(
            json!({"FilterString": "FMaterialId.FNumber='WJ-STD'"})
        )),
        vec![json!("RT-2"), json!("RT-3"), json!("RT-3")]
    );
}

#[test]
fn errors_carry_the_documented_codes_and_messages() {
    for (data, code, message) in [
        (
            json!({"FieldKeys": "FID"}),
            MsgCode::ParameterError,
            "data数据包中的参数FormId必传。",
        ),
        (
            json!({"FormId": "SAL_RETURNSTOCK", "FieldKeys": ""}),
            MsgCode::ParameterError,
            "data 数据包中的参数 FieldKeys 的值不能为空",
        ),
        (
            json!({"FormId": "SAL_RETURNSTOCK", "FieldKeys": "FID,FIssueType"}),
            MsgCode::FieldNotFound,
            "元数据中标识为FIssueType的字段不存在",
        ),
        (
            json!({"FormId": "NO_SUCH_FORM", "FieldKeys": "FID"}),
            MsgCode::Exception,
            "标识为“NO_SUCH_FORM”的业务对象不存在，或者被删除",
        ),
        (
            json!({"FormId": "SAL_RETURNSTOCK", "FieldKeys": "FID", "Limit": 10001}),
            MsgCode::ParameterError,
            "参数Limit的值不能大于10000",
        ),
    ] {
        let err = query(data.clone()).unwrap_err();
        assert_eq!((err.code, err.message.as_str()), (code, message), "{data}");
    }
    let err = query(
        json!({"FormId": "SAL_RETURNSTOCK", "FieldKeys": "FID", "FilterString": "FBillNo=="}),
    )
    .unwrap_err();
    assert_eq!(err.code, MsgCode::Exception);
    assert!(
        err.message.starts_with("GetRealExpress error"),
        "{}",
        err.message
    );
    let err = query(
        json!({"FormId": "SAL_RETURNSTOCK", "FieldKeys": "FID", "FilterString": "FNope='x'"}),
    )
    .unwrap_err();
    assert!(
        err.message.starts_with("GetRealExpress error"),
        "{}",
        err.message
    );
}

#[test]
fn base_data_forms_answer_lookups() {
    assert_eq!(
        query(json!({"FormId": "BD_MATERIAL", "FieldKeys": "FNumber,FBaseUnitId.FNumber,FForbidStatus", "FilterString": "FNumber in ('TX-RED-M','FORBID-001')"})).unwrap(),
        json!([["FORBID-001", "Pcs", "B"], ["TX-RED-M", "Pcs", "A"]])
    );
    assert_eq!(
        query(json!({"FormId": "bd_customer", "FieldKeys": "FNumber,FName", "FilterString": "FNumber='CUST0002'"})).unwrap(),
        json!([["CUST0002", "京东专营店客户"]])
    );
    for form in ["BD_STOCK", "ORG_Organizations", "BD_UNIT"] {
        let rows = query(json!({"FormId": form, "FieldKeys": "FNumber"})).unwrap();
        assert!(!rows.as_array().unwrap().is_empty(), "{form}");
    }
}

#[test]
fn bill_query_answers_objects() {
    let Value::Object(data) = json!({"FormId": "SAL_RETURNSTOCK", "FieldKeys": "FID,FBillNo", "FilterString": "FBillNo='RT-1'"})
    else {
        panic!()
    };
    let result = run(&data, &store(), &BaseData::seeded()).unwrap();
    assert_eq!(
        result.to_objects(),
        json!([{"FID": 100001, "FBillNo": "RT-1"}])
    );
}
