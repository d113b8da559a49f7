//! Writing a checked packet into the store (numbers, `FID`, entry ids, the status) and the
//! `NeedReturnData` object the answer carries for it.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::sim::kingdee::bills::{Bill, BillStore, DocumentStatus, EntryRow};
use crate::sim::kingdee::save::candidate::Candidate;
use crate::sim::kingdee::save::options::Options;
use crate::sim::kingdee::schema::{self, Cell, DATE_TIME_FORMAT, ENTRY_KEY, Level, decimal_json};

pub(super) fn commit(
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

pub(super) fn cell_return_json(cell: &Cell) -> Value {
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
pub(super) fn need_return_data(bill: &Bill, fields: &[String]) -> Value {
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
