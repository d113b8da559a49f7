//! Reading a query's `data` object into a [`Request`]: the form, the `FieldKeys`, the
//! `FilterString` (text or condition array, parsed by [`filter`]), the `OrderString` and the
//! paging numbers, every key resolved to a column before any row is read. Errors carry the
//! MsgCode and message K/3 Cloud answers with; nothing here reads the bills.

use serde_json::{Map, Value};

use crate::sim::kingdee::body::scalar_text;
use crate::sim::kingdee::envelope::MsgCode;
use crate::sim::kingdee::filter::{self, Expr};
use crate::sim::kingdee::query::columns::{Column, Source, resolve, source};
use crate::sim::kingdee::query::{MAX_LIMIT, QueryError};

/// Keys, lower-cased, with the columns they resolve to.
type KeyedColumns = Vec<(String, Column)>;

/// A query with its keys resolved.
pub(super) struct Request {
    pub source: Source,
    /// `FieldKeys` as the caller spelled them.
    pub keys: Vec<String>,
    pub columns: Vec<Column>,
    pub filter: Option<Expr>,
    /// The filter's keys, lower-cased, with their columns.
    pub filter_columns: KeyedColumns,
    /// `(column, descending)`, most significant first.
    pub order: Vec<(Column, bool)>,
    pub start: i64,
    pub limit: i64,
    pub top: i64,
}

/// Read and resolve a query `data` object.
pub(super) fn parse(data: &Map<String, Value>) -> Result<Request, QueryError> {
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
    let (keys, columns) = field_keys(data, source)?;
    let (filter, filter_columns) = filter_string(data, source)?;
    let order = order_string(data, source)?;
    let start = integer_option(data, "StartRow")?;
    let limit = integer_option(data, "Limit")?;
    let top = integer_option(data, "TopRowCount")?;
    if limit > MAX_LIMIT {
        return Err(QueryError::new(
            MsgCode::ParameterError,
            format!("参数Limit的值不能大于{MAX_LIMIT}"),
        ));
    }
    Ok(Request {
        source,
        keys,
        columns,
        filter,
        filter_columns,
        order,
        start,
        limit,
        top,
    })
}

/// `FieldKeys`, as an array or a comma-separated text, each resolved (MsgCode 9 if unknown).
fn field_keys(
    data: &Map<String, Value>,
    source: Source,
) -> Result<(Vec<String>, Vec<Column>), QueryError> {
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
    Ok((keys, columns))
}

/// `FilterString`, as text or a condition array, parsed and with its keys resolved.
fn filter_string(
    data: &Map<String, Value>,
    source: Source,
) -> Result<(Option<Expr>, KeyedColumns), QueryError> {
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
    Ok((filter, filter_columns))
}

/// `OrderString`: `key [ASC|DESC], …`, each key resolved.
fn order_string(
    data: &Map<String, Value>,
    source: Source,
) -> Result<Vec<(Column, bool)>, QueryError> {
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
    Ok(order)
}

pub(super) fn get_ci<'a>(data: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
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
