//! Reading one packet of `Model` into a [`Draft`]: base-data references resolved against
//! [`BaseData`] (with `IsVerifyBaseDataField`, a missing one is an error), dates, numbers and
//! booleans parsed, unmodelled keys kept verbatim. Errors carry the packet's `DIndex`.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::sim::kingdee::basedata::{BaseData, Lookup, Table};
use crate::sim::kingdee::body::scalar_text;
use crate::sim::kingdee::envelope::{ErrorItem, MsgCode};
use crate::sim::kingdee::save::SaveConfig;
use crate::sim::kingdee::save::options::{Options, get_ci};
use crate::sim::kingdee::schema::{
    self, Cell, DATE_TIME_FORMAT, ENTRY_CAPTION, ENTRY_KEY, Field, Kind, Level, SUB_HEAD_KEY,
};

/// Field values a packet provided; `None` means "sent, but empty" (it clears on update).
pub(super) type Provided = BTreeMap<&'static str, Option<Cell>>;

#[derive(Debug, Clone, Default)]
pub(super) struct DraftRow {
    pub(super) entry_id: u64,
    pub(super) fields: Provided,
    pub(super) extra: Map<String, Value>,
}

/// A packet after reading, before defaults and checks.
#[derive(Debug, Clone, Default)]
pub(super) struct Draft {
    pub(super) fid: u64,
    pub(super) head: Provided,
    pub(super) sub_head: Provided,
    pub(super) entries: Option<Vec<DraftRow>>,
    pub(super) extra: Map<String, Value>,
}

/// Reads one packet; errors go to `errors` with the packet's `DIndex`.
pub(super) struct PacketReader<'a> {
    pub(super) basedata: &'a BaseData,
    pub(super) config: &'a SaveConfig,
    pub(super) options: &'a Options,
    pub(super) dindex: usize,
    pub(super) errors: Vec<ErrorItem>,
    /// Whether a base-data reference failed verification.
    pub(super) verification_failed: bool,
}

pub(super) fn caption_message(field: &Field, detail: &str, row: Option<usize>) -> String {
    match row {
        None => format!("字段“{}”{detail}", field.caption),
        Some(row) => format!(
            "单据体实体【{ENTRY_CAPTION}】第【{}】行分录，字段“{}”{detail}",
            row + 1,
            field.caption
        ),
    }
}

impl PacketReader<'_> {
    pub(super) fn error(&mut self, code: MsgCode, field_name: Option<&str>, message: String) {
        self.errors
            .push(ErrorItem::new(code, field_name, message, self.dindex));
    }

    pub(super) fn read(&mut self, packet: &Value) -> Draft {
        let mut draft = Draft::default();
        let Value::Object(packet) = packet else {
            self.error(
                MsgCode::ParameterError,
                None,
                "Model中的数据包必须是JSON对象".to_string(),
            );
            return draft;
        };
        for (key, value) in packet {
            if key.eq_ignore_ascii_case("FID") {
                draft.fid = self.read_id(key, value);
            } else if key.eq_ignore_ascii_case(SUB_HEAD_KEY) {
                if let Value::Object(sub_head) = value {
                    for (key, value) in sub_head {
                        match schema::field_at(Level::SubHead, key) {
                            Some(field) => {
                                let cell = self.read_value(field, value, None);
                                draft.sub_head.insert(field.key, cell);
                            }
                            None => {
                                draft
                                    .extra
                                    .insert(format!("{SUB_HEAD_KEY}.{key}"), value.clone());
                            }
                        }
                    }
                }
            } else if key.eq_ignore_ascii_case(ENTRY_KEY) {
                draft.entries = self.read_entries(value);
            } else {
                match schema::field_at(Level::Head, key) {
                    Some(field) => {
                        let cell = self.read_value(field, value, None);
                        draft.head.insert(field.key, cell);
                    }
                    None => {
                        draft.extra.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        draft
    }

    fn read_entries(&mut self, value: &Value) -> Option<Vec<DraftRow>> {
        let rows = match value {
            Value::Null => return None,
            Value::Array(rows) => rows,
            _ => {
                self.error(
                    MsgCode::ValidationFailed,
                    Some(ENTRY_KEY),
                    format!("单据体“{ENTRY_CAPTION}”({ENTRY_KEY})必须是数组"),
                );
                return None;
            }
        };
        let mut out = Vec::new();
        for (index, row) in rows.iter().enumerate() {
            let mut draft_row = DraftRow::default();
            let Value::Object(row) = row else {
                self.error(
                    MsgCode::ValidationFailed,
                    Some(ENTRY_KEY),
                    format!(
                        "单据体实体【{ENTRY_CAPTION}】第【{}】行分录必须是JSON对象",
                        index + 1
                    ),
                );
                continue;
            };
            for (key, value) in row {
                if key.eq_ignore_ascii_case("FEntryID") {
                    draft_row.entry_id = self.read_id(key, value);
                    continue;
                }
                match schema::field_at(Level::Entry, key) {
                    Some(field) => {
                        let cell = self.read_value(field, value, Some(index));
                        draft_row.fields.insert(field.key, cell);
                    }
                    None => {
                        draft_row.extra.insert(key.clone(), value.clone());
                    }
                }
            }
            out.push(draft_row);
        }
        Some(out)
    }

    fn read_id(&mut self, key: &str, value: &Value) -> u64 {
        match value {
            Value::Null => 0,
            Value::Number(number) => number.as_u64().unwrap_or(0),
            Value::String(text) if text.trim().is_empty() => 0,
            Value::String(text) => text.trim().parse().unwrap_or_else(|_| {
                self.error(
                    MsgCode::ParameterError,
                    Some(key),
                    format!("字段{key}的值“{text}”不是有效的内码"),
                );
                0
            }),
            other => {
                self.error(
                    MsgCode::ParameterError,
                    Some(key),
                    format!("字段{key}的值“{other}”不是有效的内码"),
                );
                0
            }
        }
    }

    fn read_value(
        &mut self,
        field: &'static Field,
        value: &Value,
        row: Option<usize>,
    ) -> Option<Cell> {
        if value.is_null() {
            return None;
        }
        match field.kind {
            Kind::Base(table) => self.read_reference(field, table, value),
            Kind::FreeBase => {
                let Value::Object(object) = value else {
                    return None;
                };
                let number = object.values().find_map(scalar_text)?;
                (!number.is_empty()).then_some(Cell::Base {
                    number,
                    id: 0,
                    name: String::new(),
                })
            }
            Kind::Text => scalar_text(value)
                .filter(|text| !text.is_empty())
                .map(Cell::Text),
            Kind::Date => {
                let text = scalar_text(value).filter(|text| !text.trim().is_empty())?;
                match parse_date(&text) {
                    Some(date) => Some(Cell::Date(date)),
                    None => {
                        let message =
                            caption_message(field, &format!("的值“{text}”不是有效的日期"), row);
                        self.error(MsgCode::ValidationFailed, Some(field.key), message);
                        None
                    }
                }
            }
            Kind::Decimal => {
                let text = scalar_text(value).filter(|text| !text.trim().is_empty())?;
                match parse_decimal(&text) {
                    Some(decimal) => Some(Cell::Decimal(decimal)),
                    None => {
                        let message =
                            caption_message(field, &format!("的值“{text}”不是有效的数字"), row);
                        self.error(MsgCode::ValidationFailed, Some(field.key), message);
                        None
                    }
                }
            }
            Kind::Bool => match value {
                Value::Bool(flag) => Some(Cell::Bool(*flag)),
                Value::String(text) if text.eq_ignore_ascii_case("true") => Some(Cell::Bool(true)),
                Value::String(text) if text.eq_ignore_ascii_case("false") => {
                    Some(Cell::Bool(false))
                }
                Value::Number(number) => Some(Cell::Bool(number.as_f64() != Some(0.0))),
                other => {
                    let message =
                        caption_message(field, &format!("的值“{other}”不是有效的布尔值"), row);
                    self.error(MsgCode::ValidationFailed, Some(field.key), message);
                    None
                }
            },
        }
    }

    /// A base-data reference is an object keyed `FNumber` (any case). Anything else (a bare
    /// string, an object without a code) counts as empty **[I]**.
    fn read_reference(
        &mut self,
        field: &'static Field,
        table: Table,
        value: &Value,
    ) -> Option<Cell> {
        let Value::Object(object) = value else {
            return None;
        };
        let code = get_ci(object, "FNumber").and_then(scalar_text)?;
        let code = code.trim().to_string();
        if code.is_empty() {
            return None;
        }
        match self.basedata.lookup(table, &code) {
            Lookup::Found(record) => Some(Cell::Base {
                number: record.number.clone(),
                id: record.id,
                name: record.name.clone(),
            }),
            Lookup::Missing | Lookup::Forbidden(_) => {
                if self.options.verify_base_data {
                    let message = self
                        .config
                        .basedata_message
                        .replace("{caption}", field.caption)
                        .replace("{code}", &code)
                        .replace("{key}", field.key);
                    self.error(self.config.basedata_code, Some(field.key), message);
                    self.verification_failed = true;
                }
                None
            }
        }
    }
}

pub(super) fn parse_date(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    for format in [
        DATE_TIME_FORMAT,
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y/%m/%d %H:%M:%S",
    ] {
        if let Ok(date) = NaiveDateTime::parse_from_str(text, format) {
            return Some(date);
        }
    }
    ["%Y-%m-%d", "%Y/%m/%d"].into_iter().find_map(|format| {
        NaiveDate::parse_from_str(text, format)
            .ok()
            .and_then(|date| date.and_hms_opt(0, 0, 0))
    })
}

/// Quantities and prices arrive as JSON numbers or numeric strings; both parse exactly.
pub fn parse_decimal(text: &str) -> Option<Decimal> {
    let text = text.trim();
    Decimal::from_str(text)
        .or_else(|_| Decimal::from_scientific(text))
        .ok()
}
