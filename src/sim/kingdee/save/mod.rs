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
//!
//! In data-flow order: `options` reads the call's switches, `read` a packet into a draft,
//! `candidate` turns it into the bill it describes (defaults, required fields), this module
//! routes `FID`s and checks uniqueness, and `commit` writes the bill and its `NeedReturnData`.

mod candidate;
mod commit;
mod options;
mod read;

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};

use crate::sim::kingdee::basedata::{BaseData, Table};
use crate::sim::kingdee::bills::{BillStore, DocumentStatus, canonical_json};
use crate::sim::kingdee::body::FormCall;
use crate::sim::kingdee::envelope::{self, ErrorItem, MsgCode, SuccessEntity};
use crate::sim::kingdee::faults::BatchMode;
use crate::sim::kingdee::save::candidate::{
    Candidate, check_required, fill_defaults, new_candidate, updated_candidate,
};
use crate::sim::kingdee::save::commit::{commit, need_return_data};
use crate::sim::kingdee::save::options::{Options, get_ci, parse_options};
use crate::sim::kingdee::save::read::{Draft, PacketReader};
use crate::sim::kingdee::schema::{self, Cell};
use crate::time;

pub use crate::sim::kingdee::save::read::parse_decimal;

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
    let (options, packets) = match read_call(kind, call) {
        Ok(read) => read,
        Err(outcome) => return outcome,
    };
    let today = time::format_shanghai(now, time::DATE);
    let today = NaiveDate::parse_from_str(&today, time::DATE).expect("we formatted it");
    let context = Context {
        store,
        basedata,
        config,
        options: &options,
        today,
    };
    let mut checked = Checked::default();
    for (dindex, packet) in packets.iter().enumerate() {
        context.check_packet(&mut checked, dindex, packet);
    }
    if config.batch_mode == BatchMode::Atomic && !checked.errors.is_empty() {
        checked.rejected = packets.len();
        checked.prepared.clear();
    }
    let mut saved = Vec::new();
    let mut return_data = Vec::new();
    let (mut created, mut updated) = (0, 0);
    for item in checked.prepared {
        let bill = commit(
            store,
            item.candidate,
            item.status,
            &options,
            &checked.reserved_numbers,
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
    SaveOutcome {
        body: answer(kind, &checked.errors, &saved, return_data),
        packets: packets.len(),
        created,
        updated,
        rejected: checked.rejected,
        duplicates: checked.duplicates,
    }
}

/// The form, the options and the packets of a call, or the outcome of a call refused whole.
fn read_call(kind: SaveKind, call: &FormCall) -> Result<(Options, Vec<Value>), SaveOutcome> {
    let fail = |code, message: String| SaveOutcome::failed(envelope::failure(code, None, message));
    let formid = match call.formid.as_deref().map(str::trim) {
        None | Some("") => {
            return Err(fail(
                MsgCode::FormIdEmpty,
                "表单标识formid不能为空".to_string(),
            ));
        }
        Some(formid) => formid,
    };
    if !formid.eq_ignore_ascii_case(schema::FORM_ID) {
        let message = match Table::parse(formid) {
            Some(_) => format!("沙箱不支持通过接口保存业务对象“{formid}”"),
            None => format!("标识为“{formid}”的业务对象不存在，或者被删除"),
        };
        return Err(fail(MsgCode::Exception, message));
    }
    let options = parse_options(&call.data).map_err(|message| fail(MsgCode::Exception, message))?;
    let packets: Vec<Value> = match (kind, get_ci(&call.data, "Model")) {
        (_, None | Some(Value::Null)) => {
            return Err(fail(
                MsgCode::ParameterError,
                "data数据包中的参数Model必传。".to_string(),
            ));
        }
        (SaveKind::Save, Some(model @ Value::Object(_))) => vec![model.clone()],
        (SaveKind::Save, Some(_)) => {
            return Err(fail(
                MsgCode::ParameterError,
                "Save接口的参数Model必须是JSON对象".to_string(),
            ));
        }
        (SaveKind::BatchSave, Some(Value::Array(models))) if models.is_empty() => {
            return Err(fail(
                MsgCode::ParameterError,
                "data数据包中的参数Model不能为空".to_string(),
            ));
        }
        (SaveKind::BatchSave, Some(Value::Array(models))) => models.clone(),
        (SaveKind::BatchSave, Some(_)) => {
            return Err(fail(
                MsgCode::ParameterError,
                "BatchSave接口的参数Model必须是数组".to_string(),
            ));
        }
    };
    Ok((options, packets))
}

/// What the packets of one call are checked against.
struct Context<'a> {
    store: &'a BillStore,
    basedata: &'a BaseData,
    config: &'a SaveConfig,
    options: &'a Options,
    today: NaiveDate,
}

/// What the checks of a call have found so far.
#[derive(Default)]
struct Checked {
    errors: Vec<ErrorItem>,
    prepared: Vec<Prepared>,
    /// Bill numbers and packet hashes of earlier packets of the call.
    reserved_numbers: HashSet<String>,
    reserved_hashes: HashSet<String>,
    duplicates: usize,
    rejected: usize,
}

impl Context<'_> {
    /// Read and check one packet; a packet without errors is prepared for the commit.
    fn check_packet(&self, checked: &mut Checked, dindex: usize, packet: &Value) {
        let mut reader = PacketReader {
            basedata: self.basedata,
            config: self.config,
            options: self.options,
            dindex,
            errors: Vec::new(),
            verification_failed: false,
        };
        let draft = reader.read(packet);
        let hash = canonical_json(packet);
        if let Some((mut candidate, status)) = self.candidate(&mut reader, &draft) {
            fill_defaults(&mut candidate, self.basedata, self.config, self.today);
            // Verification fails while the packet is read, before any validator runs, so a
            // packet with unresolvable references reports only those [I].
            if self.options.validate && !reader.verification_failed {
                check_required(&candidate, &mut reader);
            }
            self.check_unique(checked, &mut reader, &candidate, &hash);
            if reader.errors.is_empty() {
                if let Some(Cell::Text(number)) = candidate.head.get("FBillNo") {
                    checked.reserved_numbers.insert(number.clone());
                }
                checked.reserved_hashes.insert(hash.clone());
                checked.prepared.push(Prepared {
                    dindex,
                    candidate,
                    hash,
                    status,
                });
            }
        }
        if !reader.errors.is_empty() {
            checked.rejected += 1;
        }
        checked.errors.extend(reader.errors);
    }

    /// The bill a packet describes: new (`FID` 0), or the stored one it updates with that
    /// bill's status, unless the update is refused.
    fn candidate(
        &self,
        reader: &mut PacketReader<'_>,
        draft: &Draft,
    ) -> Option<(Candidate, Option<DocumentStatus>)> {
        if draft.fid == 0 {
            return Some((new_candidate(draft), None));
        }
        let Some(existing) = self.store.by_fid(draft.fid) else {
            reader.error(
                MsgCode::DataNotFound,
                Some("FID"),
                format!(
                    "内码为“{}”的{}不存在，或者已被删除",
                    draft.fid,
                    schema::FORM_NAME
                ),
            );
            return None;
        };
        if let Some(locked) = locked_status(existing.status) {
            reader.error(
                MsgCode::NotOperable,
                None,
                format!(
                    "单据编号为“{}”的{}{locked}，不允许修改",
                    existing.bill_no,
                    schema::FORM_NAME
                ),
            );
            return None;
        }
        if self.options.auto_submit_and_audit {
            reader.error(
                MsgCode::ValidationFailed,
                None,
                "更新单据时参数IsAutoSubmitAndAudit不能为true".to_string(),
            );
            return None;
        }
        Some((
            updated_candidate(existing, draft, self.options),
            Some(existing.status),
        ))
    }

    /// `FBillNo` uniqueness against the table and the call, and `ValidateRepeatJson`.
    fn check_unique(
        &self,
        checked: &mut Checked,
        reader: &mut PacketReader<'_>,
        candidate: &Candidate,
        hash: &str,
    ) {
        if let Some(Cell::Text(number)) = candidate.head.get("FBillNo") {
            let taken = self
                .store
                .by_number(number)
                .is_some_and(|bill| bill.fid != candidate.fid)
                || checked.reserved_numbers.contains(number);
            if self.config.unique_bill_no && taken {
                checked.duplicates += 1;
                reader.error(
                    MsgCode::ValidationFailed,
                    Some("FBillNo"),
                    format!("违反字段唯一性要求：编码唯一。[{number}]在当前系统中已经被使用。"),
                );
            }
        }
        if self.options.validate_repeat_json
            && (self.store.seen_packet(hash) || checked.reserved_hashes.contains(hash))
        {
            reader.error(
                MsgCode::ValidationFailed,
                None,
                "数据包重复：与已成功保存过的数据包完全相同（ValidateRepeatJson）".to_string(),
            );
        }
    }
}

/// The envelope: `BatchSave` carries `NeedReturnData`; `Save` also `Id` and `Number` (empty
/// unless the packet was saved).
fn answer(
    kind: SaveKind,
    errors: &[ErrorItem],
    saved: &[SuccessEntity],
    return_data: Vec<Value>,
) -> Value {
    let status = envelope::response_status(errors, saved);
    match kind {
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
    }
}

#[cfg(test)]
mod tests;
