//! `DynamicFormService.Save` and `BatchSave` for `SAL_RETURNSTOCK` (spec §3, §4, §7.5).
//!
//! A call is validated packet by packet (`DIndex` = index in `Model`): options are read
//! (booleans as JSON booleans or `"true"`/`"false"`), base-data references resolved against
//! [`BaseData`] (`IsVerifyBaseDataField`), defaults filled in, required fields checked with the
//! real messages, `FBillNo` uniqueness enforced against the table and earlier packets of the
//! same call, `ValidateRepeatJson` honoured, and `FID` ≠ 0 routed to the update path. Then the
//! packets without errors are saved (independent mode) or, in atomic mode, all or none.
//! [`save`] is a pure function of (call, store, base data, config, now) that mutates only the
//! store; the envelope it returns is exactly what goes on the wire.

use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use crate::sim::kingdee::basedata::{BaseData, Lookup, Table};
use crate::sim::kingdee::bills::{
    Bill, BillStore, DocumentStatus, EntryRow, Fields, canonical_json,
};
use crate::sim::kingdee::body::{FormCall, scalar_text};
use crate::sim::kingdee::envelope::{self, ErrorItem, MsgCode, SuccessEntity};
use crate::sim::kingdee::faults::BatchMode;
use crate::sim::kingdee::schema::{
    self, Cell, DATE_TIME_FORMAT, ENTRY_CAPTION, ENTRY_KEY, Field, Kind, Level, SUB_HEAD_KEY,
    decimal_json,
};
use crate::time;

/// Behaviours of the save path that the spec marks as inferred, fixed at start-up.
#[derive(Debug, Clone)]
pub struct SaveConfig {
    /// The message for a missing or forbidden base-data code with verification on;
    /// `{caption}`, `{code}` and `{key}` are replaced.
    pub basedata_message: String,
    /// The MsgCode such an error gives the envelope.
    pub basedata_code: MsgCode,
    /// Settlement currency filled in when a packet has none (empty: none, so it is required).
    pub default_settle_currency: Option<String>,
    /// Whether a missing `FDate` is an error rather than today.
    pub date_required: bool,
    /// Whether `FBillNo` must be unique.
    pub unique_bill_no: bool,
    pub batch_mode: BatchMode,
}

impl Default for SaveConfig {
    fn default() -> SaveConfig {
        SaveConfig {
            basedata_message: DEFAULT_BASEDATA_MESSAGE.to_string(),
            basedata_code: MsgCode::FieldNotFound,
            default_settle_currency: Some("PRE001".to_string()),
            date_required: false,
            unique_bill_no: true,
            batch_mode: BatchMode::Independent,
        }
    }
}

/// The default message for base data that is missing or forbidden **[I]**.
pub const DEFAULT_BASEDATA_MESSAGE: &str = "字段“{caption}”的值“{code}”在系统中不存在或已禁用";

/// `Save` takes one packet (`Model` object), `BatchSave` several (`Model` array).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveKind {
    Save,
    BatchSave,
}

/// What a call did, for the envelope and the statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct SaveOutcome {
    pub body: Value,
    pub packets: usize,
    pub created: usize,
    pub updated: usize,
    pub rejected: usize,
    pub duplicates: usize,
}

impl SaveOutcome {
    fn failed(body: Value) -> SaveOutcome {
        SaveOutcome {
            body,
            packets: 0,
            created: 0,
            updated: 0,
            rejected: 0,
            duplicates: 0,
        }
    }

    /// Whether anything was written.
    pub fn committed(&self) -> bool {
        self.created + self.updated > 0
    }
}

/// The options of `data` that change what a save does (spec §3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    verify_base_data: bool,
    validate: bool,
    auto_submit_and_audit: bool,
    validate_repeat_json: bool,
    delete_entry: bool,
    need_return_fields: Vec<String>,
    need_update_fields: Vec<String>,
}

fn get_ci<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(key))
        .map(|(_, value)| value)
}

/// .NET's `Convert.ToBoolean` accepts `true`/`false` in any case and nothing else; its
/// message is what the server would report.
fn option_bool(data: &Map<String, Value>, key: &str, default: bool) -> Result<bool, String> {
    match get_ci(data, key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(flag)) => Ok(*flag),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(default),
        Some(Value::String(text)) => match text.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(format!(
                "参数{key}的值“{text}”无效：String was not recognized as a valid Boolean."
            )),
        },
        Some(Value::Number(number)) => Ok(number.as_f64() != Some(0.0)),
        Some(other) => Err(format!(
            "参数{key}的值“{other}”无效：String was not recognized as a valid Boolean."
        )),
    }
}

fn option_list(data: &Map<String, Value>, key: &str) -> Vec<String> {
    match get_ci(data, key) {
        Some(Value::Array(items)) => items.iter().filter_map(scalar_text).collect(),
        Some(Value::String(text)) => text
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn parse_options(data: &Map<String, Value>) -> Result<Options, String> {
    Ok(Options {
        verify_base_data: option_bool(data, "IsVerifyBaseDataField", false)?,
        validate: option_bool(data, "ValidateFlag", true)?,
        auto_submit_and_audit: option_bool(data, "IsAutoSubmitAndAudit", false)?,
        validate_repeat_json: option_bool(data, "ValidateRepeatJson", false)?,
        delete_entry: option_bool(data, "IsDeleteEntry", true)?,
        need_return_fields: option_list(data, "NeedReturnFields"),
        need_update_fields: option_list(data, "NeedUpDateFields"),
    })
}

/// Field values a packet provided; `None` means "sent, but empty" (it clears on update).
type Provided = BTreeMap<&'static str, Option<Cell>>;

#[derive(Debug, Clone, Default)]
struct DraftRow {
    entry_id: u64,
    fields: Provided,
    extra: Map<String, Value>,
}

/// A packet after reading, before defaults and checks.
#[derive(Debug, Clone, Default)]
struct Draft {
    fid: u64,
    head: Provided,
    sub_head: Provided,
    entries: Option<Vec<DraftRow>>,
    extra: Map<String, Value>,
}

/// Reads one packet; errors go to `errors` with the packet's `DIndex`.
struct PacketReader<'a> {
    basedata: &'a BaseData,
    config: &'a SaveConfig,
    options: &'a Options,
    dindex: usize,
    errors: Vec<ErrorItem>,
    /// Whether a base-data reference failed verification.
    verification_failed: bool,
}

fn caption_message(field: &Field, detail: &str, row: Option<usize>) -> String {
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
    fn error(&mut self, code: MsgCode, field_name: Option<&str>, message: String) {
        self.errors
            .push(ErrorItem::new(code, field_name, message, self.dindex));
    }

    fn read(&mut self, packet: &Value) -> Draft {
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

fn parse_date(text: &str) -> Option<NaiveDateTime> {
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

/// The bill a packet describes, with defaults filled in.
#[derive(Debug, Clone)]
struct Candidate {
    fid: u64,
    head: Fields,
    sub_head: Fields,
    rows: Vec<(u64, Fields, Map<String, Value>)>,
    extra: Map<String, Value>,
}

fn apply(target: &mut Fields, provided: &Provided, only: &[String]) {
    for (key, cell) in provided {
        if !only.is_empty()
            && !only.iter().any(|name| {
                let bare = name.rsplit('.').next().unwrap_or(name);
                bare.eq_ignore_ascii_case(key)
            })
        {
            continue;
        }
        match cell {
            Some(cell) => {
                target.insert(key, cell.clone());
            }
            None => {
                target.remove(key);
            }
        }
    }
}

fn new_candidate(draft: &Draft) -> Candidate {
    let mut candidate = Candidate {
        fid: 0,
        head: Fields::new(),
        sub_head: Fields::new(),
        rows: Vec::new(),
        extra: draft.extra.clone(),
    };
    apply(&mut candidate.head, &draft.head, &[]);
    apply(&mut candidate.sub_head, &draft.sub_head, &[]);
    for row in draft.entries.iter().flatten() {
        let mut fields = Fields::new();
        apply(&mut fields, &row.fields, &[]);
        // A new bill gets new entry ids whatever the packet says.
        candidate.rows.push((0, fields, row.extra.clone()));
    }
    candidate
}

/// The update path: the stored bill with the packet's fields laid over it. With
/// `IsDeleteEntry` (the default) rows the packet does not mention are deleted (spec §6.11).
fn updated_candidate(existing: &Bill, draft: &Draft, options: &Options) -> Candidate {
    let only = &options.need_update_fields;
    let mut candidate = Candidate {
        fid: existing.fid,
        head: existing.head.clone(),
        sub_head: existing.sub_head.clone(),
        rows: Vec::new(),
        extra: existing.extra.clone(),
    };
    candidate
        .head
        .insert("FBillNo", Cell::Text(existing.bill_no.clone()));
    apply(&mut candidate.head, &draft.head, only);
    apply(&mut candidate.sub_head, &draft.sub_head, only);
    candidate.extra.extend(draft.extra.clone());
    let old_rows: Vec<(u64, Fields, Map<String, Value>)> = existing
        .entries
        .iter()
        .map(|row| (row.entry_id, row.fields.clone(), row.extra.clone()))
        .collect();
    match &draft.entries {
        None => candidate.rows = old_rows,
        Some(rows) => {
            let mentioned: HashSet<u64> = rows.iter().map(|row| row.entry_id).collect();
            if !options.delete_entry {
                candidate.rows = old_rows
                    .iter()
                    .filter(|(id, _, _)| !mentioned.contains(id))
                    .cloned()
                    .collect();
            }
            for row in rows {
                let old = old_rows
                    .iter()
                    .find(|(id, _, _)| *id == row.entry_id && *id != 0);
                let (id, mut fields, mut extra) = match old {
                    Some(old) => old.clone(),
                    None => (0, Fields::new(), Map::new()),
                };
                apply(&mut fields, &row.fields, only);
                extra.extend(row.extra.clone());
                candidate.rows.push((id, fields, extra));
            }
        }
    }
    candidate
}

/// Defaults the real product fills from the organisation or material **[I]** (spec §3.4).
fn fill_defaults(
    candidate: &mut Candidate,
    basedata: &BaseData,
    config: &SaveConfig,
    today: NaiveDate,
) {
    if !config.date_required && !candidate.head.contains_key("FDate") {
        let midnight = today.and_hms_opt(0, 0, 0).expect("midnight exists");
        candidate.head.insert("FDate", Cell::Date(midnight));
    }
    if let Some(customer) = candidate.head.get("FRetcustId").cloned() {
        for key in ["FReceiveCustId", "FSettleCustId", "FPayCustId"] {
            candidate
                .head
                .entry(key)
                .or_insert_with(|| customer.clone());
        }
    }
    if let Some(sale_org) = candidate.head.get("FSaleOrgId").cloned() {
        candidate.sub_head.entry("FSettleOrgId").or_insert(sale_org);
    }
    let base = |table: Table, number: &str| {
        basedata.get(table, number).map(|record| Cell::Base {
            number: record.number.clone(),
            id: record.id,
            name: record.name.clone(),
        })
    };
    if !candidate.sub_head.contains_key("FSettleCurrId")
        && let Some(cell) = config
            .default_settle_currency
            .as_deref()
            .and_then(|number| base(Table::Currencies, number))
    {
        candidate.sub_head.insert("FSettleCurrId", cell);
    }
    if let Some(currency) = candidate.sub_head.get("FSettleCurrId").cloned() {
        candidate.sub_head.entry("FLocalCurrId").or_insert(currency);
    }
    let stock_org = candidate.head.get("FStockOrgId").cloned();
    for (_, fields, _) in &mut candidate.rows {
        fields
            .entry("FRowType")
            .or_insert_with(|| Cell::Text("Standard".to_string()));
        if !fields.contains_key("FUnitID") {
            let unit = fields
                .get("FMaterialId")
                .and_then(Cell::number)
                .and_then(|material| basedata.get(Table::Materials, material))
                .and_then(|material| material.base_unit.clone())
                .and_then(|unit| base(Table::Units, &unit));
            if let Some(unit) = unit {
                fields.insert("FUnitID", unit);
            }
        }
        if let Some(unit) = fields.get("FUnitID").cloned() {
            fields.entry("FSalUnitID").or_insert_with(|| unit.clone());
            fields.entry("FPriceUnitId").or_insert(unit);
        }
        if let Some(quantity) = fields.get("FRealQty").cloned() {
            fields.entry("FSalUnitQty").or_insert(quantity);
        }
        fields
            .entry("FOwnerTypeId")
            .or_insert_with(|| Cell::Text("BD_OwnerOrg".to_string()));
        if let Some(org) = &stock_org {
            fields.entry("FOwnerId").or_insert_with(|| org.clone());
        }
        if let Some(cell) = base(Table::ReturnTypes, "THLX01_SYS") {
            fields.entry("FReturnType").or_insert(cell);
        }
        if let Some(cell) = base(Table::StockStatuses, "KCZT01_SYS") {
            fields.entry("FStockstatusId").or_insert(cell);
        }
        if let (Some(Cell::Decimal(quantity)), Some(Cell::Decimal(price))) =
            (fields.get("FRealQty"), fields.get("FTaxPrice"))
        {
            let amount = (quantity * price).round_dp(2);
            fields.insert("FAllAmount", Cell::Decimal(amount));
        }
    }
}

const HEAD_REQUIRED: &[&str] = &[
    "FBillTypeID",
    "FDate",
    "FSaleOrgId",
    "FStockOrgId",
    "FRetcustId",
];
const SUB_HEAD_REQUIRED: &[&str] = &["FSettleCurrId", "FSettleOrgId"];
const ENTRY_REQUIRED: &[&str] = &["FMaterialId", "FUnitID", "FRealQty", "FStockId"];

/// Required fields, with the real message patterns (spec §4.2).
fn check_required(candidate: &Candidate, reader: &mut PacketReader<'_>) {
    for (fields, keys, level) in [
        (&candidate.head, HEAD_REQUIRED, Level::Head),
        (&candidate.sub_head, SUB_HEAD_REQUIRED, Level::SubHead),
    ] {
        for key in keys {
            let field = schema::field_at(level, key).expect("required fields are in the schema");
            if !fields.contains_key(key) {
                reader.error(
                    MsgCode::ValidationFailed,
                    Some(field.key),
                    format!("字段“{}”是必填项", field.caption),
                );
            }
        }
    }
    if candidate.rows.is_empty() {
        reader.error(
            MsgCode::ValidationFailed,
            Some(ENTRY_KEY),
            format!("单据体“{ENTRY_CAPTION}”至少需要录入一行分录"),
        );
    }
    for (index, (_, fields, _)) in candidate.rows.iter().enumerate() {
        for key in ENTRY_REQUIRED {
            let field =
                schema::field_at(Level::Entry, key).expect("required fields are in the schema");
            let present = match fields.get(key) {
                // A quantity of zero is "not entered" for a required quantity.
                Some(Cell::Decimal(quantity)) => *quantity > Decimal::ZERO,
                Some(_) => true,
                None => false,
            };
            if !present {
                reader.error(
                    MsgCode::ValidationFailed,
                    Some(field.key),
                    format!(
                        "单据体实体【{ENTRY_CAPTION}】第【{}】行分录，【{}】字段必录",
                        index + 1,
                        field.caption
                    ),
                );
            }
        }
    }
}

/// Why a bill in `status` may not be saved again: submitted (B) and audited (C) bills are
/// locked; created (A) and un-audited (D) ones may be changed and keep their status.
pub fn locked_status(status: DocumentStatus) -> Option<&'static str> {
    match status {
        DocumentStatus::Created | DocumentStatus::Reaudit => None,
        DocumentStatus::Submitted => Some("已提交"),
        DocumentStatus::Audited => Some("已审核"),
    }
}

/// A packet that passed every check, waiting for the commit.
struct Prepared {
    dindex: usize,
    candidate: Candidate,
    hash: String,
    status: Option<DocumentStatus>,
}

/// Run a `Save` or `BatchSave` call against the store.
pub fn save(
    store: &mut BillStore,
    basedata: &BaseData,
    config: &SaveConfig,
    kind: SaveKind,
    call: &FormCall,
    now: DateTime<Utc>,
) -> SaveOutcome {
    let fail = |code, message: String| SaveOutcome::failed(envelope::failure(code, None, message));
    let formid = match call.formid.as_deref().map(str::trim) {
        None | Some("") => return fail(MsgCode::FormIdEmpty, "表单标识formid不能为空".to_string()),
        Some(formid) => formid,
    };
    if !formid.eq_ignore_ascii_case(schema::FORM_ID) {
        let message = match Table::parse(formid) {
            Some(_) => format!("沙箱不支持通过接口保存业务对象“{formid}”"),
            None => format!("标识为“{formid}”的业务对象不存在，或者被删除"),
        };
        return fail(MsgCode::Exception, message);
    }
    let options = match parse_options(&call.data) {
        Ok(options) => options,
        Err(message) => return fail(MsgCode::Exception, message),
    };
    let packets: Vec<Value> = match (kind, get_ci(&call.data, "Model")) {
        (_, None | Some(Value::Null)) => {
            return fail(
                MsgCode::ParameterError,
                "data数据包中的参数Model必传。".to_string(),
            );
        }
        (SaveKind::Save, Some(model @ Value::Object(_))) => vec![model.clone()],
        (SaveKind::Save, Some(_)) => {
            return fail(
                MsgCode::ParameterError,
                "Save接口的参数Model必须是JSON对象".to_string(),
            );
        }
        (SaveKind::BatchSave, Some(Value::Array(models))) if models.is_empty() => {
            return fail(
                MsgCode::ParameterError,
                "data数据包中的参数Model不能为空".to_string(),
            );
        }
        (SaveKind::BatchSave, Some(Value::Array(models))) => models.clone(),
        (SaveKind::BatchSave, Some(_)) => {
            return fail(
                MsgCode::ParameterError,
                "BatchSave接口的参数Model必须是数组".to_string(),
            );
        }
    };

    let today = time::format_shanghai(now, time::DATE);
    let today = NaiveDate::parse_from_str(&today, time::DATE).expect("we formatted it");
    let mut errors = Vec::new();
    let mut prepared = Vec::new();
    let mut reserved_numbers: HashSet<String> = HashSet::new();
    let mut reserved_hashes: HashSet<String> = HashSet::new();
    let mut duplicates = 0;
    let mut rejected = 0;
    for (dindex, packet) in packets.iter().enumerate() {
        let mut reader = PacketReader {
            basedata,
            config,
            options: &options,
            dindex,
            errors: Vec::new(),
            verification_failed: false,
        };
        let draft = reader.read(packet);
        let mut status = None;
        let candidate = if draft.fid == 0 {
            Some(new_candidate(&draft))
        } else {
            match store.by_fid(draft.fid) {
                None => {
                    reader.error(
                        MsgCode::DataNotFound,
                        Some("FID"),
                        format!(
                            "内码为“{}”的{}不存在，或者已被删除",
                            draft.fid,
                            schema::FORM_NAME
                        ),
                    );
                    None
                }
                Some(existing) if locked_status(existing.status).is_some() => {
                    let locked = locked_status(existing.status).unwrap_or_default();
                    reader.error(
                        MsgCode::NotOperable,
                        None,
                        format!(
                            "单据编号为“{}”的{}{locked}，不允许修改",
                            existing.bill_no,
                            schema::FORM_NAME
                        ),
                    );
                    None
                }
                Some(_) if options.auto_submit_and_audit => {
                    reader.error(
                        MsgCode::ValidationFailed,
                        None,
                        "更新单据时参数IsAutoSubmitAndAudit不能为true".to_string(),
                    );
                    None
                }
                Some(existing) => {
                    status = Some(existing.status);
                    Some(updated_candidate(existing, &draft, &options))
                }
            }
        };
        let hash = canonical_json(packet);
        if let Some(mut candidate) = candidate {
            fill_defaults(&mut candidate, basedata, config, today);
            // Verification fails while the packet is read, before any validator runs, so a
            // packet with unresolvable references reports only those [I].
            if options.validate && !reader.verification_failed {
                check_required(&candidate, &mut reader);
            }
            if let Some(Cell::Text(number)) = candidate.head.get("FBillNo") {
                let taken = store
                    .by_number(number)
                    .is_some_and(|bill| bill.fid != candidate.fid)
                    || reserved_numbers.contains(number);
                if config.unique_bill_no && taken {
                    duplicates += 1;
                    reader.error(
                        MsgCode::ValidationFailed,
                        Some("FBillNo"),
                        format!("违反字段唯一性要求：编码唯一。[{number}]在当前系统中已经被使用。"),
                    );
                }
            }
            if options.validate_repeat_json
                && (store.seen_packet(&hash) || reserved_hashes.contains(&hash))
            {
                reader.error(
                    MsgCode::ValidationFailed,
                    None,
                    "数据包重复：与已成功保存过的数据包完全相同（ValidateRepeatJson）".to_string(),
                );
            }
            if reader.errors.is_empty() {
                if let Some(Cell::Text(number)) = candidate.head.get("FBillNo") {
                    reserved_numbers.insert(number.clone());
                }
                reserved_hashes.insert(hash.clone());
                prepared.push(Prepared {
                    dindex,
                    candidate,
                    hash,
                    status,
                });
            }
        }
        if !reader.errors.is_empty() {
            rejected += 1;
        }
        errors.extend(reader.errors);
    }

    if config.batch_mode == BatchMode::Atomic && !errors.is_empty() {
        rejected = packets.len();
        prepared.clear();
    }
    let mut saved = Vec::new();
    let mut return_data = Vec::new();
    let (mut created, mut updated) = (0, 0);
    for item in prepared {
        let bill = commit(
            store,
            item.candidate,
            item.status,
            &options,
            &reserved_numbers,
            now,
            item.hash,
        );
        match item.status {
            None => created += 1,
            Some(_) => updated += 1,
        }
        return_data.push(need_return_data(&bill, &options.need_return_fields));
        saved.push(SuccessEntity {
            id: bill.fid,
            number: bill.bill_no.clone(),
            dindex: item.dindex,
        });
    }

    let status = envelope::response_status(&errors, &saved);
    let body = match kind {
        SaveKind::BatchSave => {
            json!({"Result": {"ResponseStatus": status, "NeedReturnData": return_data}})
        }
        SaveKind::Save => match saved.first() {
            Some(entity) if errors.is_empty() => json!({"Result": {
                "ResponseStatus": status,
                "Id": entity.id,
                "Number": entity.number,
                "NeedReturnData": return_data,
            }}),
            _ => json!({"Result": {
                "ResponseStatus": status,
                "Id": "",
                "Number": "",
                "NeedReturnData": [],
            }}),
        },
    };
    SaveOutcome {
        body,
        packets: packets.len(),
        created,
        updated,
        rejected,
        duplicates,
    }
}

fn commit(
    store: &mut BillStore,
    candidate: Candidate,
    existing_status: Option<DocumentStatus>,
    options: &Options,
    reserved_numbers: &HashSet<String>,
    now: DateTime<Utc>,
    hash: String,
) -> Bill {
    let mut head = candidate.head;
    let bill_no = match head.remove("FBillNo") {
        Some(Cell::Text(number)) => number,
        _ => store.next_auto_number(reserved_numbers),
    };
    let (fid, created) = match existing_status {
        Some(_) => {
            let existing = store
                .by_fid(candidate.fid)
                .expect("checked before the commit");
            (existing.fid, existing.created)
        }
        None => (store.next_fid(), now),
    };
    let status = match existing_status {
        Some(status) => status,
        None if options.auto_submit_and_audit => DocumentStatus::Audited,
        None => DocumentStatus::Created,
    };
    let entries = candidate
        .rows
        .into_iter()
        .enumerate()
        .map(|(index, (entry_id, fields, extra))| EntryRow {
            entry_id: if entry_id == 0 {
                store.next_entry_id()
            } else {
                entry_id
            },
            seq: index as u32 + 1,
            fields,
            extra,
        })
        .collect();
    let bill = Bill {
        fid,
        bill_no,
        status,
        head,
        sub_head: candidate.sub_head,
        entries,
        extra: candidate.extra,
        created,
        modified: now,
        approved: (status == DocumentStatus::Audited).then_some(now),
    };
    store.put(bill.clone(), hash);
    bill
}

fn cell_return_json(cell: &Cell) -> Value {
    match cell {
        Cell::Base { number, .. } => json!({"FNumber": number}),
        Cell::Text(text) => json!(text),
        Cell::Date(date) => json!(date.format(DATE_TIME_FORMAT).to_string()),
        Cell::Decimal(decimal) => decimal_json(*decimal),
        Cell::Bool(flag) => json!(flag),
    }
}

/// One `NeedReturnData` object: the requested head keys, and entry keys (`FEntity.FMaterialId`,
/// `FENTITY_FENTRYID`) under `FEntity` with each row's `FEntryID` **[I]**.
fn need_return_data(bill: &Bill, fields: &[String]) -> Value {
    let mut object = Map::new();
    let mut entry_keys: Vec<&'static str> = Vec::new();
    let mut want_entries = false;
    for name in fields {
        let bare = name
            .strip_prefix("FEntity.")
            .or_else(|| name.strip_prefix("FENTITY."))
            .or_else(|| name.strip_prefix("FEntity_"))
            .or_else(|| name.strip_prefix("FENTITY_"))
            .unwrap_or(name);
        if name.eq_ignore_ascii_case("FID") {
            object.insert(name.clone(), json!(bill.fid));
        } else if name.eq_ignore_ascii_case("FBillNo") {
            object.insert(name.clone(), json!(bill.bill_no));
        } else if name.eq_ignore_ascii_case("FDocumentStatus") {
            object.insert(name.clone(), json!(bill.status.code()));
        } else if bare.eq_ignore_ascii_case("FEntryID") {
            want_entries = true;
        } else if let Some(field) = schema::field_named(bare) {
            match field.level {
                Level::Entry => {
                    want_entries = true;
                    entry_keys.push(field.key);
                }
                Level::Head => {
                    let value = bill
                        .head
                        .get(field.key)
                        .map_or(Value::Null, cell_return_json);
                    object.insert(name.clone(), value);
                }
                Level::SubHead => {
                    let value = bill
                        .sub_head
                        .get(field.key)
                        .map_or(Value::Null, cell_return_json);
                    object.insert(name.clone(), value);
                }
            }
        }
    }
    if want_entries {
        let rows: Vec<Value> = bill
            .entries
            .iter()
            .map(|row| {
                let mut line = Map::new();
                line.insert("FEntryID".into(), json!(row.entry_id));
                for key in &entry_keys {
                    let value = row.fields.get(key).map_or(Value::Null, cell_return_json);
                    line.insert(key.to_string(), value);
                }
                Value::Object(line)
            })
            .collect();
        object.insert(ENTRY_KEY.into(), Value::Array(rows));
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 1, 2, 0, 0).unwrap()
    }

    /// A packet every check accepts.
    fn packet(bill_no: &str, material: &str) -> Value {
        json!({
            "FBillTypeID": {"FNUMBER": "XSTHD01_SYS"},
            "FBillNo": bill_no,
            "FDate": "2024-03-01",
            "FSaleOrgId": {"FNumber": "100"},
            "FStockOrgId": {"FNumber": 100},
            "FRetcustId": {"FNumber": "CUST0001"},
            "FHeadNote": "退货",
            "SubHeadEntity": {"FSettleOrgId": {"FNumber": "100"}},
            "FEntity": [{
                "FMaterialId": {"FNumber": material},
                "FRealQty": "2",
                "FTaxPrice": 59.9,
                "FEntryTaxRate": "13",
                "FStockId": {"FNumber": "CK001"},
                "FNote": "line",
            }],
        })
    }

    fn call(formid: &str, data: Value) -> FormCall {
        let Value::Object(data) = data else { panic!() };
        FormCall {
            formid: Some(formid.to_string()),
            data,
        }
    }

    fn batch(store: &mut BillStore, config: &SaveConfig, data: Value) -> SaveOutcome {
        save(
            store,
            &BaseData::seeded(),
            config,
            SaveKind::BatchSave,
            &call("SAL_RETURNSTOCK", data),
            now(),
        )
    }

    fn errors(outcome: &SaveOutcome) -> Vec<(Option<String>, String, u64)> {
        outcome.body["Result"]["ResponseStatus"]["Errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|error| {
                (
                    error["FieldName"].as_str().map(str::to_string),
                    error["Message"].as_str().unwrap().to_string(),
                    error["DIndex"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn a_good_batch_saves_every_bill_with_the_documented_envelope() {
        let mut store = BillStore::default();
        let outcome = batch(
            &mut store,
            &SaveConfig::default(),
            json!({"NeedReturnFields": ["FBillNo"], "Model": [packet("RT-1", "TX-RED-M"), packet("RT-2", "WY-BLK-L")]}),
        );
        assert_eq!(
            outcome.body.to_string(),
            r#"{"Result":{"ResponseStatus":{"IsSuccess":true,"Errors":[],"SuccessEntitys":[{"Id":100001,"Number":"RT-1","DIndex":0},{"Id":100002,"Number":"RT-2","DIndex":1}],"SuccessMessages":[],"MsgCode":0},"NeedReturnData":[{"FBillNo":"RT-1"},{"FBillNo":"RT-2"}]}}"#
        );
        assert_eq!(outcome.created, 2);
        let bill = store.by_number("RT-1").unwrap();
        assert_eq!(bill.status, DocumentStatus::Created);
        let row = &bill.entries[0];
        assert_eq!((row.entry_id, row.seq), (100001, 1));
        assert_eq!(
            row.fields["FUnitID"].number(),
            Some("Pcs"),
            "unit from the material"
        );
        assert_eq!(
            row.fields["FAllAmount"],
            Cell::Decimal(Decimal::new(11980, 2))
        );
        assert_eq!(bill.sub_head["FSettleCurrId"].number(), Some("PRE001"));
        assert_eq!(
            bill.head["FStockOrgId"].number(),
            Some("100"),
            "numeric code"
        );
    }

    #[test]
    fn an_unknown_material_fails_only_its_own_packet() {
        let mut store = BillStore::default();
        let outcome = batch(
            &mut store,
            &SaveConfig::default(),
            json!({"Model": [packet("RT-1", "TX-RED-M"), packet("RT-2", "XPWY-PNK-M"), packet("RT-3", "WJ-STD")]}),
        );
        let status = &outcome.body["Result"]["ResponseStatus"];
        assert_eq!(status["IsSuccess"], false);
        assert_eq!(status["ErrorCode"], 500);
        assert_eq!(status["MsgCode"], 11);
        assert_eq!(
            errors(&outcome),
            vec![
                (
                    Some("FMaterialId".into()),
                    "单据体实体【明细信息】第【1】行分录，【物料编码】字段必录".into(),
                    1
                ),
                (
                    Some("FUnitID".into()),
                    "单据体实体【明细信息】第【1】行分录，【库存单位】字段必录".into(),
                    1
                ),
            ]
        );
        let saved: Vec<u64> = status["SuccessEntitys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entity| entity["DIndex"].as_u64().unwrap())
            .collect();
        assert_eq!(saved, vec![0, 2]);
        assert_eq!(store.bills().len(), 2);
        assert_eq!((outcome.created, outcome.rejected), (2, 1));
    }

    #[test]
    fn verification_reports_the_reference_itself_with_msg_code_9() {
        let mut store = BillStore::default();
        for (material, verify) in [("XPWY-PNK-M", json!(true)), ("FORBID-001", json!("true"))] {
            let outcome = batch(
                &mut store,
                &SaveConfig::default(),
                json!({"IsVerifyBaseDataField": verify, "Model": [packet("RT-9", material)]}),
            );
            assert_eq!(outcome.body["Result"]["ResponseStatus"]["MsgCode"], 9);
            assert_eq!(
                errors(&outcome),
                vec![(
                    Some("FMaterialId".into()),
                    format!("字段“物料编码”的值“{material}”在系统中不存在或已禁用"),
                    0
                )]
            );
        }
        assert!(store.bills().is_empty());
    }

    #[test]
    fn missing_head_fields_give_the_head_message() {
        let mut store = BillStore::default();
        let mut bad = packet("RT-1", "TX-RED-M");
        bad.as_object_mut().unwrap().remove("FRetcustId");
        bad["FSaleOrgId"] = json!({"FNumber": "999"});
        bad["SubHeadEntity"] = json!({});
        let outcome = batch(
            &mut store,
            &SaveConfig {
                default_settle_currency: None,
                ..SaveConfig::default()
            },
            json!({"Model": [bad]}),
        );
        assert_eq!(
            errors(&outcome),
            vec![
                (
                    Some("FSaleOrgId".into()),
                    "字段“销售组织”是必填项".into(),
                    0
                ),
                (
                    Some("FRetcustId".into()),
                    "字段“退货客户”是必填项".into(),
                    0
                ),
                (
                    Some("FSettleCurrId".into()),
                    "字段“结算币别”是必填项".into(),
                    0
                ),
                (
                    Some("FSettleOrgId".into()),
                    "字段“结算组织”是必填项".into(),
                    0
                ),
            ]
        );
    }

    #[test]
    fn validate_flag_false_skips_required_checks() {
        let mut store = BillStore::default();
        let outcome = batch(
            &mut store,
            &SaveConfig::default(),
            json!({"ValidateFlag": "false", "Model": [{"FBillNo": "RT-EMPTY"}]}),
        );
        assert_eq!(outcome.created, 1, "{}", outcome.body);
    }

    #[test]
    fn bill_numbers_are_unique_across_the_table_and_the_call() {
        let mut store = BillStore::default();
        batch(
            &mut store,
            &SaveConfig::default(),
            json!({"Model": [packet("RT-1", "TX-RED-M")]}),
        );
        let outcome = batch(
            &mut store,
            &SaveConfig::default(),
            json!({"Model": [packet("RT-1", "TX-RED-M"), packet("RT-2", "TX-RED-M"), packet("RT-2", "TX-RED-L")]}),
        );
        assert_eq!(
            errors(&outcome),
            vec![
                (
                    Some("FBillNo".into()),
                    "违反字段唯一性要求：编码唯一。[RT-1]在当前系统中已经被使用。".into(),
                    0
                ),
                (
                    Some("FBillNo".into()),
                    "违反字段唯一性要求：编码唯一。[RT-2]在当前系统中已经被使用。".into(),
                    2
                ),
            ]
        );
        assert_eq!(outcome.body["Result"]["ResponseStatus"]["MsgCode"], 11);
        assert_eq!((outcome.created, outcome.duplicates), (1, 2));
    }

    #[test]
    fn atomic_mode_saves_nothing_when_one_packet_fails() {
        let mut store = BillStore::default();
        let config = SaveConfig {
            batch_mode: BatchMode::Atomic,
            ..SaveConfig::default()
        };
        let outcome = batch(
            &mut store,
            &config,
            json!({"Model": [packet("RT-1", "TX-RED-M"), packet("RT-2", "NOPE")]}),
        );
        assert_eq!(
            outcome.body["Result"]["ResponseStatus"]["SuccessEntitys"],
            json!([])
        );
        assert!(store.bills().is_empty());
        assert_eq!(outcome.rejected, 2);
        let outcome = batch(
            &mut store,
            &config,
            json!({"Model": [packet("RT-1", "TX-RED-M")]}),
        );
        assert_eq!(
            outcome.body["Result"]["ResponseStatus"]["SuccessEntitys"][0]["Id"],
            100001
        );
    }

    #[test]
    fn auto_submit_and_audit_gives_status_c_and_auto_numbers_fill_gaps() {
        let mut store = BillStore::default();
        let mut unnumbered = packet("", "TX-RED-M");
        unnumbered.as_object_mut().unwrap().remove("FBillNo");
        batch(
            &mut store,
            &SaveConfig::default(),
            json!({"IsAutoSubmitAndAudit": true, "Model": [unnumbered]}),
        );
        let bill = &store.bills()[0];
        assert_eq!(bill.status, DocumentStatus::Audited);
        assert_eq!(bill.bill_no, "XSTH00000001");
    }

    #[test]
    fn save_has_top_level_id_and_number() {
        let mut store = BillStore::default();
        let good = save(
            &mut store,
            &BaseData::seeded(),
            &SaveConfig::default(),
            SaveKind::Save,
            &call(
                "SAL_RETURNSTOCK",
                json!({"Model": packet("RT-1", "TX-RED-M")}),
            ),
            now(),
        );
        assert_eq!(
            good.body.to_string(),
            r#"{"Result":{"ResponseStatus":{"IsSuccess":true,"Errors":[],"SuccessEntitys":[{"Id":100001,"Number":"RT-1","DIndex":0}],"SuccessMessages":[],"MsgCode":0},"Id":100001,"Number":"RT-1","NeedReturnData":[{}]}}"#
        );
        let bad = save(
            &mut store,
            &BaseData::seeded(),
            &SaveConfig::default(),
            SaveKind::Save,
            &call(
                "SAL_RETURNSTOCK",
                json!({"Model": packet("RT-1", "TX-RED-M")}),
            ),
            now(),
        );
        assert_eq!(bad.body["Result"]["Id"], "");
        assert_eq!(bad.body["Result"]["Number"], "");
        assert_eq!(bad.body["Result"]["ResponseStatus"]["MsgCode"], 11);
    }

    #[test]
    fn call_level_errors_use_their_msg_codes() {
        let mut store = BillStore::default();
        for (formid, data, code, message) in [
            (
                "NO_SUCH_FORM",
                json!({"Model": []}),
                4,
                "标识为“NO_SUCH_FORM”的业务对象不存在，或者被删除",
            ),
            (
                "SAL_RETURNSTOCK",
                json!({}),
                8,
                "data数据包中的参数Model必传。",
            ),
            (
                "SAL_RETURNSTOCK",
                json!({"Model": {}}),
                8,
                "BatchSave接口的参数Model必须是数组",
            ),
            (
                "SAL_RETURNSTOCK",
                json!({"IsVerifyBaseDataField": "yes", "Model": []}),
                4,
                "参数IsVerifyBaseDataField的值“yes”无效：String was not recognized as a valid Boolean.",
            ),
            ("", json!({"Model": []}), 5, "表单标识formid不能为空"),
        ] {
            let outcome = batch_with_form(&mut store, formid, data);
            let status = &outcome.body["Result"]["ResponseStatus"];
            assert_eq!(status["MsgCode"], code, "{formid}");
            assert_eq!(status["Errors"][0]["Message"], message, "{formid}");
        }
    }

    fn batch_with_form(store: &mut BillStore, formid: &str, data: Value) -> SaveOutcome {
        save(
            store,
            &BaseData::seeded(),
            &SaveConfig::default(),
            SaveKind::BatchSave,
            &call(formid, data),
            now(),
        )
    }

    #[test]
    fn validate_repeat_json_rejects_an_identical_packet() {
        let mut store = BillStore::default();
        let mut unnumbered = packet("", "TX-RED-M");
        unnumbered.as_object_mut().unwrap().remove("FBillNo");
        let data = json!({"ValidateRepeatJson": true, "Model": [unnumbered]});
        assert_eq!(
            batch(&mut store, &SaveConfig::default(), data.clone()).created,
            1
        );
        let again = batch(&mut store, &SaveConfig::default(), data);
        assert_eq!(again.created, 0);
        assert_eq!(again.body["Result"]["ResponseStatus"]["MsgCode"], 11);
    }

    #[test]
    fn an_update_merges_fields_and_replaces_rows() {
        let mut store = BillStore::default();
        batch(
            &mut store,
            &SaveConfig::default(),
            json!({"Model": [packet("RT-1", "TX-RED-M")]}),
        );
        let update = json!({"Model": [{
            "FID": "100001",
            "FHeadNote": "改",
            "FEntity": [{"FMaterialId": {"FNumber": "WJ-STD"}, "FRealQty": 1, "FStockId": {"FNumber": "CK002"}}],
        }]});
        let outcome = batch(&mut store, &SaveConfig::default(), update);
        assert_eq!(outcome.updated, 1, "{}", outcome.body);
        let bill = store.by_fid(100001).unwrap();
        assert_eq!(bill.bill_no, "RT-1");
        assert_eq!(bill.head["FHeadNote"], Cell::Text("改".into()));
        assert_eq!(bill.entries.len(), 1);
        assert_eq!(
            bill.entries[0].fields["FMaterialId"].number(),
            Some("WJ-STD")
        );

        let unknown = batch(
            &mut store,
            &SaveConfig::default(),
            json!({"Model": [{"FID": 5}]}),
        );
        assert_eq!(unknown.body["Result"]["ResponseStatus"]["MsgCode"], 10);
    }

    #[test]
    fn an_audited_bill_cannot_be_updated() {
        let mut store = BillStore::default();
        batch(
            &mut store,
            &SaveConfig::default(),
            json!({"IsAutoSubmitAndAudit": "true", "Model": [packet("RT-1", "TX-RED-M")]}),
        );
        let outcome = batch(
            &mut store,
            &SaveConfig::default(),
            json!({"Model": [{"FID": 100001, "FHeadNote": "x"}]}),
        );
        assert_eq!(outcome.body["Result"]["ResponseStatus"]["MsgCode"], 12);
        assert_eq!(
            errors(&outcome)[0].1,
            "单据编号为“RT-1”的销售退货单已审核，不允许修改"
        );
    }

    #[test]
    fn a_save_by_fid_is_allowed_in_a_and_d_and_refused_in_b_and_c() {
        for (status, refusal) in [
            (DocumentStatus::Created, None),
            (DocumentStatus::Reaudit, None),
            (
                DocumentStatus::Submitted,
                Some("单据编号为“RT-1”的销售退货单已提交，不允许修改"),
            ),
            (
                DocumentStatus::Audited,
                Some("单据编号为“RT-1”的销售退货单已审核，不允许修改"),
            ),
        ] {
            let mut store = BillStore::default();
            batch(
                &mut store,
                &SaveConfig::default(),
                json!({"Model": [packet("RT-1", "TX-RED-M")]}),
            );
            store.by_fid_mut(100001).unwrap().status = status;
            let outcome = batch(
                &mut store,
                &SaveConfig::default(),
                json!({"Model": [{"FID": 100001, "FHeadNote": "改"}]}),
            );
            let bill = store.by_fid(100001).unwrap();
            assert_eq!(bill.status, status, "the status is kept");
            match refusal {
                None => {
                    assert_eq!(outcome.updated, 1, "{status:?}: {}", outcome.body);
                    assert_eq!(bill.head["FHeadNote"], Cell::Text("改".into()));
                }
                Some(message) => {
                    let response = &outcome.body["Result"]["ResponseStatus"];
                    assert_eq!(response["MsgCode"], 12, "{status:?}");
                    assert_eq!(errors(&outcome), vec![(None, message.to_string(), 0)]);
                    assert_eq!(bill.head["FHeadNote"], Cell::Text("退货".into()));
                }
            }
            let auto = batch(
                &mut store,
                &SaveConfig::default(),
                json!({"IsAutoSubmitAndAudit": true, "Model": [{"FID": 100001, "FHeadNote": "x"}]}),
            );
            assert_eq!(
                auto.updated, 0,
                "{status:?}: IsAutoSubmitAndAudit on an update"
            );
        }
    }

    #[test]
    fn quantities_accept_numbers_and_numeric_strings_and_reject_text() {
        for (text, expected) in [
            ("2", Some(Decimal::new(2, 0))),
            (" 2.50 ", Some(Decimal::new(250, 2))),
            ("1e2", Some(Decimal::new(100, 0))),
            ("abc", None),
        ] {
            assert_eq!(parse_decimal(text), expected, "{text}");
        }
        let mut store = BillStore::default();
        let mut bad = packet("RT-1", "TX-RED-M");
        bad["FEntity"][0]["FRealQty"] = json!("two");
        let outcome = batch(&mut store, &SaveConfig::default(), json!({"Model": [bad]}));
        assert_eq!(
            errors(&outcome)[0].1,
            "单据体实体【明细信息】第【1】行分录，字段“实退数量”的值“two”不是有效的数字"
        );
    }

    #[test]
    fn need_return_data_reads_head_and_entry_keys() {
        let mut store = BillStore::default();
        let outcome = batch(
            &mut store,
            &SaveConfig::default(),
            json!({"NeedReturnFields": ["FID", "FBillNo", "FSaleOrgId", "FEntity.FMaterialId", "FENTITY_FENTRYID"], "Model": [packet("RT-1", "TX-RED-M")]}),
        );
        assert_eq!(
            outcome.body["Result"]["NeedReturnData"][0],
            json!({"FID": 100001, "FBillNo": "RT-1", "FSaleOrgId": {"FNumber": "100"}, "FEntity": [{"FEntryID": 100001, "FMaterialId": {"FNumber": "TX-RED-M"}}]})
        );
    }
}
