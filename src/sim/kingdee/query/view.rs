//! `View` (`{"Number": …}` or `{"Id": …}`): one saved bill in the view layout **[I]**. It
//! reads the store and answers a whole envelope; the row queries are in the parent module.

use serde_json::{Map, Value, json};

use crate::sim::kingdee::bills::{BillStore, Fields};
use crate::sim::kingdee::body::scalar_text;
use crate::sim::kingdee::envelope::{self, MsgCode};
use crate::sim::kingdee::query::request::get_ci;
use crate::sim::kingdee::schema::{self, Cell, DATE_TIME_FORMAT, decimal_json};

fn view_reference(cell: &Cell) -> Value {
    match cell {
        Cell::Base { number, id, name } => json!({
            "Id": id,
            "Number": number,
            "Name": [{"Key": 2052, "Value": name}],
        }),
        Cell::Text(text) => json!(text),
        Cell::Date(date) => json!(date.format(DATE_TIME_FORMAT).to_string()),
        Cell::Decimal(decimal) => decimal_json(*decimal),
        Cell::Bool(flag) => json!(flag),
    }
}

fn view_fields(fields: &Fields, object: &mut Map<String, Value>) {
    for (key, cell) in fields {
        let name = key.strip_prefix('F').unwrap_or(key);
        object.insert(name.to_string(), view_reference(cell));
    }
}

/// `View` (`{"Number": …}` or `{"Id": …}`): the bill in the view layout **[I]** — keys
/// without their `F`, references as `{Id, Number, Name}`, the finance sub-header as
/// `SAL_RETURNSTOCKFIN` and the entries as `SAL_RETURNSTOCKENTRY`.
pub fn view(formid: Option<&str>, data: &Map<String, Value>, store: &BillStore) -> Value {
    let formid = formid.unwrap_or_default();
    if !formid.eq_ignore_ascii_case(schema::FORM_ID) {
        return envelope::failure(
            MsgCode::Exception,
            None,
            format!("标识为“{formid}”的业务对象不存在，或者被删除"),
        );
    }
    let id = get_ci(data, "Id")
        .and_then(scalar_text)
        .and_then(|id| id.trim().parse::<u64>().ok())
        .filter(|id| *id != 0);
    let number = get_ci(data, "Number")
        .and_then(scalar_text)
        .filter(|number| !number.is_empty());
    let bill = match (id, &number) {
        (Some(id), _) => store.by_fid(id),
        (None, Some(number)) => store.by_number(number),
        (None, None) => None,
    };
    let Some(bill) = bill else {
        let what = match (id, number) {
            (Some(id), _) => format!("内码为“{id}”"),
            (None, Some(number)) => format!("编号为“{number}”"),
            (None, None) => "未指定编号或内码".to_string(),
        };
        return envelope::failure(
            MsgCode::DataNotFound,
            None,
            format!("{}{what}的数据不存在，或者已被删除", schema::FORM_NAME),
        );
    };
    let mut result = Map::new();
    result.insert("Id".into(), json!(bill.fid));
    result.insert("BillNo".into(), json!(bill.bill_no));
    result.insert("DocumentStatus".into(), json!(bill.status.code()));
    view_fields(&bill.head, &mut result);
    let mut finance = Map::new();
    finance.insert("Id".into(), json!(bill.fid));
    view_fields(&bill.sub_head, &mut finance);
    result.insert("SAL_RETURNSTOCKFIN".into(), json!([finance]));
    let entries: Vec<Value> = bill
        .entries
        .iter()
        .map(|row| {
            let mut entry = Map::new();
            entry.insert("Id".into(), json!(row.entry_id));
            entry.insert("Seq".into(), json!(row.seq));
            view_fields(&row.fields, &mut entry);
            Value::Object(entry)
        })
        .collect();
    result.insert("SAL_RETURNSTOCKENTRY".into(), Value::Array(entries));
    json!({"Result": {
        "ResponseStatus": envelope::response_status(&[], &[]),
        "Result": Value::Object(result),
    }})
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::view;
    use crate::sim::kingdee::query::tests::store;

    #[test]
    fn view_finds_by_number_or_id() {
        let store = store();
        let Value::Object(data) = json!({"CreateOrgId": 0, "Number": "RT-2", "Id": ""}) else {
            panic!()
        };
        let found = view(Some("SAL_RETURNSTOCK"), &data, &store);
        assert_eq!(found["Result"]["ResponseStatus"]["IsSuccess"], true);
        assert_eq!(found["Result"]["Result"]["BillNo"], "RT-2");
        assert_eq!(
            found["Result"]["Result"]["SAL_RETURNSTOCKENTRY"][1]["MaterialId"]["Number"],
            "WJ-STD"
        );
        let Value::Object(data) = json!({"Id": 100003}) else {
            panic!()
        };
        assert_eq!(
            view(Some("SAL_RETURNSTOCK"), &data, &store)["Result"]["Result"]["BillNo"],
            "RT-3"
        );
        let Value::Object(data) = json!({"Number": "RT-9"}) else {
            panic!()
        };
        let missing = view(Some("SAL_RETURNSTOCK"), &data, &store);
        assert_eq!(missing["Result"]["ResponseStatus"]["MsgCode"], 10);
    }
}
