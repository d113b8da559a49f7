//! `ExecuteBillQuery`, `BillQuery` and `View` over the saved bills and the base-data forms
//! (spec §5, §7.6).
//!
//! `FieldKeys` are resolved before anything is read (unknown key → MsgCode 9), then rows are
//! built — one per bill when every key (of the fields, the filter and the order) is a head
//! key, one per entry row as soon as one is an entry key — filtered, ordered (`FID ASC` by
//! default) and paged (`StartRow`, `Limit` ≤ 10000, `TopRowCount` as an absolute end row).
//! The answers are `[[v, …], …]` for `ExecuteBillQuery` and `[{key: v}, …]` for `BillQuery`;
//! errors are the caller's to wrap. Pure functions of (data, store, base data).
//!
//! [`request`] reads and resolves the `data` object, [`columns`] knows the keys and reads
//! values, [`select`] chooses the page of rows; this module projects them into the answer.

mod columns;
mod request;
mod select;
mod view;

use serde_json::{Map, Value};

use crate::sim::kingdee::basedata::BaseData;
use crate::sim::kingdee::bills::BillStore;
use crate::sim::kingdee::envelope::{self, MsgCode};
use crate::sim::kingdee::filter::Scalar;
use crate::sim::kingdee::query::columns::{scalar_json, value};

pub use view::view;

/// The most rows one call may ask for (spec §5.1).
pub const MAX_LIMIT: i64 = 10_000;

/// A query error: the MsgCode and message of the envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub code: MsgCode,
    pub message: String,
}

impl QueryError {
    pub(super) fn new(code: MsgCode, message: impl Into<String>) -> QueryError {
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
    let request = request::parse(data)?;
    let rows = select::select(&request, store, basedata);
    Ok(QueryResult {
        rows: rows
            .iter()
            .map(|row| {
                request
                    .columns
                    .iter()
                    .map(|column| value(*column, *row, basedata))
                    .collect()
            })
            .collect(),
        keys: request.keys,
    })
}

#[cfg(test)]
mod tests;
