//! `ExecuteBillQuery`, `BillQuery` and `View` over the saved bills and the base-data forms
//! (spec §5, §7.6).
//!
//! `FieldKeys` are resolved before anything is read (unknown key → MsgCode 9), then rows are
//! built — one per bill when every key (of the fields, the filter and the order) is a head
//! key, one per entry row as soon as one is an entry key — filtered, ordered (`FID ASC` by
//! default) and paged (`StartRow`, `Limit` ≤ 10000, `TopRowCount` as an absolute end row).
//! The answers are `[[v, …], …]` for `ExecuteBillQuery` and `[{key: v}, …]` for `BillQuery`;
//! errors are the caller's to wrap. Pure functions of (data, store, base data).

use std::cmp::Ordering;

use serde_json::{Map, Value, json};

use crate::sim::kingdee::basedata::{BaseData, Record, Table};
use crate::sim::kingdee::bills::{Bill, BillStore, EntryRow};
use crate::sim::kingdee::body::scalar_text;
use crate::sim::kingdee::envelope::{self, MsgCode};
use crate::sim::kingdee::filter::{self, Expr, Scalar};
use crate::sim::kingdee::schema::{self, Cell, DATE_TIME_FORMAT, Field, Kind, Level, decimal_json};

/// The most rows one call may ask for (spec §5.1).
pub const MAX_LIMIT: i64 = 10_000;

/// A query error: the MsgCode and message of the envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub code: MsgCode,
    pub message: String,
}

impl QueryError {
    fn new(code: MsgCode, message: impl Into<String>) -> QueryError {
        QueryError {
            code,
            message: message.into(),
        }
    }

    /// The bare error envelope (`BillQuery`'s form; `ExecuteBillQuery` wraps it).
    pub fn envelope(&self) -> Value {
        envelope::failure(self.code, None, self.message.clone())
    }
}

/// Which part of a field a key reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Value,
    Id,
    Number,
    Name,
}

/// A resolved column of `SAL_RETURNSTOCK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BillColumn {
    Fid,
    BillNo,
    DocumentStatus,
    CreateDate,
    ModifyDate,
    ApproveDate,
    EntryId,
    EntrySeq,
    Field(&'static Field, Part),
}

impl BillColumn {
    fn is_entry(self) -> bool {
        match self {
            BillColumn::EntryId | BillColumn::EntrySeq => true,
            BillColumn::Field(field, _) => field.level == Level::Entry,
            _ => false,
        }
    }
}

/// A resolved column of a base-data form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BaseColumn {
    Id,
    Number,
    Name,
    ForbidStatus,
    DocumentStatus,
    OrgNumber,
    BaseUnit(Part),
}

fn resolve_bill_key(key: &str) -> Option<BillColumn> {
    let lower = key.trim().to_ascii_lowercase();
    let system = match lower.as_str() {
        "fid" => Some(BillColumn::Fid),
        "fbillno" => Some(BillColumn::BillNo),
        "fdocumentstatus" => Some(BillColumn::DocumentStatus),
        "fcreatedate" => Some(BillColumn::CreateDate),
        "fmodifydate" => Some(BillColumn::ModifyDate),
        "fapprovedate" => Some(BillColumn::ApproveDate),
        "fentity_fentryid" | "fentryid" => Some(BillColumn::EntryId),
        "fentity_fseq" | "fseq" => Some(BillColumn::EntrySeq),
        _ => None,
    };
    if system.is_some() {
        return system;
    }
    let (name, part) = match lower.split_once('.') {
        None => (lower.as_str(), None),
        Some((name, "fnumber")) => (name, Some(Part::Number)),
        Some((name, "fname")) => (name, Some(Part::Name)),
        Some((name, "fid")) => (name, Some(Part::Id)),
        Some(_) => return None,
    };
    let field = schema::field_named(name)?;
    let part = match (field.kind, part) {
        (Kind::Base(_) | Kind::FreeBase, None) => Part::Id,
        (Kind::Base(_) | Kind::FreeBase, Some(part)) => part,
        (_, None) => Part::Value,
        (_, Some(_)) => return None,
    };
    Some(BillColumn::Field(field, part))
}

fn resolve_base_key(table: Table, key: &str) -> Option<BaseColumn> {
    let lower = key.trim().to_ascii_lowercase();
    if lower == table.id_key().to_ascii_lowercase() {
        return Some(BaseColumn::Id);
    }
    match lower.as_str() {
        "fnumber" => Some(BaseColumn::Number),
        "fname" => Some(BaseColumn::Name),
        "fforbidstatus" => Some(BaseColumn::ForbidStatus),
        "fdocumentstatus" => Some(BaseColumn::DocumentStatus),
        "fuseorgid.fnumber" | "fcreateorgid.fnumber" => Some(BaseColumn::OrgNumber),
        "fbaseunitid" if table == Table::Materials => Some(BaseColumn::BaseUnit(Part::Id)),
        "fbaseunitid.fnumber" if table == Table::Materials => {
            Some(BaseColumn::BaseUnit(Part::Number))
        }
        "fbaseunitid.fname" if table == Table::Materials => Some(BaseColumn::BaseUnit(Part::Name)),
        _ => None,
    }
}

fn cell_scalar(cell: Option<&Cell>, kind: Kind, part: Part) -> Scalar {
    match (cell, part) {
        (Some(Cell::Base { id, .. }), Part::Id) => Scalar::Integer(*id as i64),
        (Some(Cell::Base { number, .. }), Part::Number) => Scalar::Text(number.clone()),
        (Some(Cell::Base { name, .. }), Part::Name) => Scalar::Text(name.clone()),
        (Some(Cell::Text(text)), _) => Scalar::Text(text.clone()),
        (Some(Cell::Decimal(decimal)), _) => Scalar::Decimal(*decimal),
        (Some(Cell::Date(date)), _) => Scalar::Date(*date),
        (Some(Cell::Bool(flag)), _) => Scalar::Bool(*flag),
        (None, Part::Id) => Scalar::Integer(0),
        (None, Part::Value) => match kind {
            Kind::Decimal => Scalar::Decimal(rust_decimal::Decimal::ZERO),
            Kind::Text => Scalar::Text(String::new()),
            Kind::Bool => Scalar::Bool(false),
            _ => Scalar::Null,
        },
        _ => Scalar::Null,
    }
}

fn bill_value(column: BillColumn, bill: &Bill, entry: Option<&EntryRow>) -> Scalar {
    let date = |instant: chrono::DateTime<chrono::Utc>| {
        Scalar::Date(instant.with_timezone(&crate::time::SHANGHAI).naive_local())
    };
    match column {
        BillColumn::Fid => Scalar::Integer(bill.fid as i64),
        BillColumn::BillNo => Scalar::Text(bill.bill_no.clone()),
        BillColumn::DocumentStatus => Scalar::Text(bill.status.code().to_string()),
        BillColumn::CreateDate => date(bill.created),
        BillColumn::ModifyDate => date(bill.modified),
        BillColumn::ApproveDate => bill.approved.map_or(Scalar::Null, date),
        BillColumn::EntryId => {
            entry.map_or(Scalar::Null, |row| Scalar::Integer(row.entry_id as i64))
        }
        BillColumn::EntrySeq => entry.map_or(Scalar::Null, |row| Scalar::Integer(row.seq as i64)),
        BillColumn::Field(field, part) => {
            let cell = match field.level {
                Level::Head => bill.head.get(field.key),
                Level::SubHead => bill.sub_head.get(field.key),
                Level::Entry => match entry {
                    Some(row) => row.fields.get(field.key),
                    None => return Scalar::Null,
                },
            };
            cell_scalar(cell, field.kind, part)
        }
    }
}

fn base_value(column: BaseColumn, record: &Record, basedata: &BaseData) -> Scalar {
    match column {
        BaseColumn::Id => Scalar::Integer(record.id as i64),
        BaseColumn::Number => Scalar::Text(record.number.clone()),
        BaseColumn::Name => Scalar::Text(record.name.clone()),
        BaseColumn::ForbidStatus => Scalar::Text(if record.forbidden { "B" } else { "A" }.into()),
        BaseColumn::DocumentStatus => Scalar::Text("C".into()),
        BaseColumn::OrgNumber => Scalar::Text("100".into()),
        BaseColumn::BaseUnit(part) => {
            let unit = record
                .base_unit
                .as_deref()
                .and_then(|unit| basedata.get(Table::Units, unit));
            match (unit, part) {
                (Some(unit), Part::Id) => Scalar::Integer(unit.id as i64),
                (Some(unit), Part::Number) => Scalar::Text(unit.number.clone()),
                (Some(unit), _) => Scalar::Text(unit.name.clone()),
                (None, Part::Id) => Scalar::Integer(0),
                (None, _) => Scalar::Null,
            }
        }
    }
}

/// A query result value as K3Cloud writes it in JSON.
pub fn scalar_json(scalar: &Scalar) -> Value {
    match scalar {
        Scalar::Null => Value::Null,
        Scalar::Integer(integer) => json!(integer),
        Scalar::Decimal(decimal) => decimal_json(*decimal),
        Scalar::Text(text) => json!(text),
        Scalar::Date(date) => json!(date.format(DATE_TIME_FORMAT).to_string()),
        Scalar::Bool(flag) => json!(flag),
    }
}

fn compare_scalars(a: &Scalar, b: &Scalar) -> Ordering {
    match (a, b) {
        (Scalar::Null, Scalar::Null) => Ordering::Equal,
        (Scalar::Null, _) => Ordering::Less,
        (_, Scalar::Null) => Ordering::Greater,
        (Scalar::Integer(a), Scalar::Integer(b)) => a.cmp(b),
        (Scalar::Decimal(a), Scalar::Decimal(b)) => a.cmp(b),
        (Scalar::Text(a), Scalar::Text(b)) => a.cmp(b),
        (Scalar::Date(a), Scalar::Date(b)) => a.cmp(b),
        (Scalar::Bool(a), Scalar::Bool(b)) => a.cmp(b),
        _ => Ordering::Equal,
    }
}

/// What a query reads: the bill table, or one base-data table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Bills,
    Base(Table),
}

fn source(form_id: &str) -> Option<Source> {
    if form_id.eq_ignore_ascii_case(schema::FORM_ID) {
        return Some(Source::Bills);
    }
    Table::ALL
        .into_iter()
        .find(|table| table.form_id().eq_ignore_ascii_case(form_id))
        .map(Source::Base)
}

#[derive(Debug, Clone, Copy)]
enum Column {
    Bill(BillColumn),
    Base(BaseColumn),
}

fn resolve(source: Source, key: &str) -> Option<Column> {
    match source {
        Source::Bills => resolve_bill_key(key).map(Column::Bill),
        Source::Base(table) => resolve_base_key(table, key).map(Column::Base),
    }
}

/// One result row before projection.
#[derive(Debug, Clone, Copy)]
enum Row<'a> {
    Bill(&'a Bill, Option<&'a EntryRow>),
    Base(&'a Record),
}

fn value(column: Column, row: Row<'_>, basedata: &BaseData) -> Scalar {
    match (column, row) {
        (Column::Bill(column), Row::Bill(bill, entry)) => bill_value(column, bill, entry),
        (Column::Base(column), Row::Base(record)) => base_value(column, record, basedata),
        _ => Scalar::Null,
    }
}

fn get_ci<'a>(data: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    data.iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(key))
        .map(|(_, value)| value)
}

fn integer_option(data: &Map<String, Value>, key: &str) -> Result<i64, QueryError> {
    match get_ci(data, key) {
        None | Some(Value::Null) => Ok(0),
        Some(value) => {
            let text = scalar_text(value).unwrap_or_default();
            if text.trim().is_empty() {
                return Ok(0);
            }
            text.trim().parse::<i64>().map(|n| n.max(0)).map_err(|_| {
                QueryError::new(
                    MsgCode::ParameterError,
                    format!("参数{key}的值“{text}”不是有效的整数"),
                )
            })
        }
    }
}

fn get_real_express_error(detail: &str) -> QueryError {
    QueryError::new(
        MsgCode::Exception,
        format!("GetRealExpress error: {detail}"),
    )
}

/// The columns a query projects, and its rows as scalars.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub keys: Vec<String>,
    pub rows: Vec<Vec<Scalar>>,
}

impl QueryResult {
    /// `ExecuteBillQuery`'s answer: rows as arrays.
    pub fn to_arrays(&self) -> Value {
        Value::Array(
            self.rows
                .iter()
                .map(|row| Value::Array(row.iter().map(scalar_json).collect()))
                .collect(),
        )
    }

    /// `BillQuery`'s answer: rows as objects keyed as the caller spelled the keys.
    pub fn to_objects(&self) -> Value {
        Value::Array(
            self.rows
                .iter()
                .map(|row| {
                    let object: Map<String, Value> = self
                        .keys
                        .iter()
                        .zip(row)
                        .map(|(key, value)| (key.clone(), scalar_json(value)))
                        .collect();
                    Value::Object(object)
                })
                .collect(),
        )
    }
}

/// Run a query `data` object against the bills and base data.
pub fn run(
    data: &Map<String, Value>,
    store: &BillStore,
    basedata: &BaseData,
) -> Result<QueryResult, QueryError> {
    let form_id = get_ci(data, "FormId")
        .and_then(scalar_text)
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| {
            QueryError::new(MsgCode::ParameterError, "data数据包中的参数FormId必传。")
        })?;
    let source = source(form_id.trim()).ok_or_else(|| {
        QueryError::new(
            MsgCode::Exception,
            format!("标识为“{form_id}”的业务对象不存在，或者被删除"),
        )
    })?;
    let keys: Vec<String> = match get_ci(data, "FieldKeys") {
        Some(Value::Array(items)) => items.iter().filter_map(scalar_text).collect(),
        Some(value) => scalar_text(value)
            .unwrap_or_default()
            .split(',')
            .map(|key| key.trim().to_string())
            .filter(|key| !key.is_empty())
            .collect(),
        None => Vec::new(),
    };
    if keys.is_empty() {
        return Err(QueryError::new(
            MsgCode::ParameterError,
            "data 数据包中的参数 FieldKeys 的值不能为空",
        ));
    }
    let columns = keys
        .iter()
        .map(|key| {
            resolve(source, key).ok_or_else(|| {
                QueryError::new(
                    MsgCode::FieldNotFound,
                    format!("元数据中标识为{key}的字段不存在"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;

    let filter_text = match get_ci(data, "FilterString") {
        None | Some(Value::Null) => String::new(),
        Some(Value::Array(conditions)) => {
            filter::conditions_to_string(conditions).map_err(|err| get_real_express_error(&err))?
        }
        Some(value) => scalar_text(value).unwrap_or_default(),
    };
    let filter: Option<Expr> = filter::parse(&filter_text).map_err(|err| {
        get_real_express_error(&format!("过滤条件“{filter_text}”无法解析：{err}"))
    })?;
    let mut filter_columns = Vec::new();
    for key in filter.iter().flat_map(Expr::keys) {
        let column = resolve(source, key)
            .ok_or_else(|| get_real_express_error(&format!("过滤条件中的字段“{key}”不存在")))?;
        filter_columns.push((key.to_ascii_lowercase(), column));
    }

    let order_text = get_ci(data, "OrderString")
        .and_then(scalar_text)
        .unwrap_or_default();
    let mut order = Vec::new();
    for part in order_text
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
    {
        let mut words = part.split_whitespace();
        let key = words.next().unwrap_or_default();
        let descending = match words.next().map(str::to_ascii_lowercase).as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => {
                return Err(get_real_express_error(&format!(
                    "排序条件“{part}”中的“{other}”无法识别"
                )));
            }
        };
        let column = resolve(source, key)
            .ok_or_else(|| get_real_express_error(&format!("排序条件中的字段“{key}”不存在")))?;
        order.push((column, descending));
    }

    let start = integer_option(data, "StartRow")?;
    let limit = integer_option(data, "Limit")?;
    let top = integer_option(data, "TopRowCount")?;
    if limit > MAX_LIMIT {
        return Err(QueryError::new(
            MsgCode::ParameterError,
            format!("参数Limit的值不能大于{MAX_LIMIT}"),
        ));
    }

    let is_entry = |column: &Column| matches!(column, Column::Bill(column) if column.is_entry());
    let per_entry = columns.iter().any(is_entry)
        || filter_columns.iter().any(|(_, column)| is_entry(column))
        || order.iter().any(|(column, _)| is_entry(column));
    let mut rows: Vec<Row<'_>> = match source {
        Source::Bills => store
            .bills()
            .iter()
            .flat_map(|bill| {
                if per_entry && !bill.entries.is_empty() {
                    bill.entries
                        .iter()
                        .map(|row| Row::Bill(bill, Some(row)))
                        .collect::<Vec<_>>()
                } else {
                    vec![Row::Bill(bill, None)]
                }
            })
            .collect(),
        Source::Base(table) => basedata.records(table).map(Row::Base).collect(),
    };
    if let Some(filter) = &filter {
        rows.retain(|row| {
            let lookup = |key: &str| {
                let lower = key.to_ascii_lowercase();
                filter_columns
                    .iter()
                    .find(|(name, _)| *name == lower)
                    .map_or(Scalar::Null, |(_, column)| value(*column, *row, basedata))
            };
            filter.matches(&lookup)
        });
    }
    if !order.is_empty() {
        rows.sort_by(|a, b| {
            order
                .iter()
                .map(|(column, descending)| {
                    let ordering = compare_scalars(
                        &value(*column, *a, basedata),
                        &value(*column, *b, basedata),
                    );
                    if *descending {
                        ordering.reverse()
                    } else {
                        ordering
                    }
                })
                .find(|ordering| *ordering != Ordering::Equal)
                .unwrap_or(Ordering::Equal)
        });
    }
    let start = start as usize;
    let mut end = rows.len();
    if top > 0 {
        end = end.min(top as usize);
    }
    if limit > 0 {
        end = end.min(start.saturating_add(limit as usize));
    }
    let rows = if start < end { &rows[start..end] } else { &[] };
    Ok(QueryResult {
        keys,
        rows: rows
            .iter()
            .map(|row| {
                columns
                    .iter()
                    .map(|column| value(*column, *row, basedata))
                    .collect()
            })
            .collect(),
    })
}

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

fn view_fields(fields: &crate::sim::kingdee::bills::Fields, object: &mut Map<String, Value>) {
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
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::sim::kingdee::body::FormCall;
    use crate::sim::kingdee::save::{SaveConfig, SaveKind, save};

    fn store() -> BillStore {
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
