//! The columns a query may name and the values they read: `FieldKeys`, filter and order
//! keys are resolved here against the bill schema or a base-data table (case-insensitive,
//! `….FNumber` / `….FName` / `…_Id` suffixes for references), and a resolved column reads a
//! [`Scalar`] from one row. Nothing here parses a request or decides which rows answer.

use std::cmp::Ordering;

use serde_json::{Value, json};

use crate::sim::kingdee::basedata::{BaseData, Record, Table};
use crate::sim::kingdee::bills::{Bill, EntryRow};
use crate::sim::kingdee::filter::Scalar;
use crate::sim::kingdee::schema::{self, Cell, DATE_TIME_FORMAT, Field, Kind, Level, decimal_json};

/// Which part of a field a key reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    Value,
    Id,
    Number,
    Name,
}

/// A resolved column of `SAL_RETURNSTOCK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BillColumn {
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
    pub(super) fn is_entry(self) -> bool {
        match self {
            BillColumn::EntryId | BillColumn::EntrySeq => true,
            BillColumn::Field(field, _) => field.level == Level::Entry,
            _ => false,
        }
    }
}

/// A resolved column of a base-data form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BaseColumn {
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

pub(super) fn compare_scalars(a: &Scalar, b: &Scalar) -> Ordering {
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
pub(super) enum Source {
    Bills,
    Base(Table),
}

pub(super) fn source(form_id: &str) -> Option<Source> {
    if form_id.eq_ignore_ascii_case(schema::FORM_ID) {
        return Some(Source::Bills);
    }
    Table::ALL
        .into_iter()
        .find(|table| table.form_id().eq_ignore_ascii_case(form_id))
        .map(Source::Base)
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Column {
    Bill(BillColumn),
    Base(BaseColumn),
}

pub(super) fn resolve(source: Source, key: &str) -> Option<Column> {
    match source {
        Source::Bills => resolve_bill_key(key).map(Column::Bill),
        Source::Base(table) => resolve_base_key(table, key).map(Column::Base),
    }
}

/// One result row before projection.
#[derive(Debug, Clone, Copy)]
pub(super) enum Row<'a> {
    Bill(&'a Bill, Option<&'a EntryRow>),
    Base(&'a Record),
}

pub(super) fn value(column: Column, row: Row<'_>, basedata: &BaseData) -> Scalar {
    match (column, row) {
        (Column::Bill(column), Row::Bill(bill, entry)) => bill_value(column, bill, entry),
        (Column::Base(column), Row::Base(record)) => base_value(column, record, basedata),
        _ => Scalar::Null,
    }
}
