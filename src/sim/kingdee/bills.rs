//! The saved `SAL_RETURNSTOCK` bills and the counters that number them.
//!
//! A [`Bill`] holds resolved field values ([`Cell`]s keyed by the schema's canonical keys),
//! plus whatever unmodelled keys the packet carried, verbatim. `FID` and `FEntryID` come from
//! counters starting at 100001; a bill saved without `FBillNo` is numbered `XSTH` + 8 digits
//! **[I]**. The store only stores: validation lives in `save`, reading in `query`. Pure data.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::sim::kingdee::schema::{Cell, ENTRY_KEY, SUB_HEAD_KEY};

/// Field values by canonical key.
pub type Fields = BTreeMap<&'static str, Cell>;

/// 单据状态 (spec §5.1): A 创建 (saved), B 审核中 (submitted), C 已审核 (audited), D 重新审核
/// (un-audited). The moves between them live in `operation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentStatus {
    Created,
    Submitted,
    Audited,
    Reaudit,
}

impl DocumentStatus {
    pub fn code(self) -> &'static str {
        match self {
            DocumentStatus::Created => "A",
            DocumentStatus::Submitted => "B",
            DocumentStatus::Audited => "C",
            DocumentStatus::Reaudit => "D",
        }
    }
}

/// One entry row (明细信息).
#[derive(Debug, Clone, PartialEq)]
pub struct EntryRow {
    pub entry_id: u64,
    /// 1-based row number.
    pub seq: u32,
    pub fields: Fields,
    /// Keys the sandbox does not model, as received.
    pub extra: Map<String, Value>,
}

/// One saved bill.
#[derive(Debug, Clone, PartialEq)]
pub struct Bill {
    pub fid: u64,
    pub bill_no: String,
    pub status: DocumentStatus,
    pub head: Fields,
    pub sub_head: Fields,
    pub entries: Vec<EntryRow>,
    pub extra: Map<String, Value>,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    pub approved: Option<DateTime<Utc>>,
}

impl Bill {
    /// The bill as `GET /_sim/bills` shows it.
    pub fn to_inspection_json(&self) -> Value {
        let fields = |fields: &Fields| -> Map<String, Value> {
            fields
                .iter()
                .map(|(key, cell)| (key.to_string(), cell.to_inspection_json()))
                .collect()
        };
        let mut head = Map::new();
        head.insert("FID".into(), json!(self.fid));
        head.insert("FBillNo".into(), json!(self.bill_no));
        head.insert("FDocumentStatus".into(), json!(self.status.code()));
        for (key, value) in fields(&self.head) {
            head.entry(key).or_insert(value);
        }
        head.insert(SUB_HEAD_KEY.into(), Value::Object(fields(&self.sub_head)));
        let lines: Vec<Value> = self
            .entries
            .iter()
            .map(|row| {
                let mut line = Map::new();
                line.insert("FEntryID".into(), json!(row.entry_id));
                line.insert("FSeq".into(), json!(row.seq));
                line.extend(fields(&row.fields));
                if !row.extra.is_empty() {
                    line.insert("Extra".into(), Value::Object(row.extra.clone()));
                }
                Value::Object(line)
            })
            .collect();
        head.insert(ENTRY_KEY.into(), Value::Array(lines));
        if !self.extra.is_empty() {
            head.insert("Extra".into(), Value::Object(self.extra.clone()));
        }
        head.insert("CreateDate".into(), json!(self.created.to_rfc3339()));
        head.insert("ModifyDate".into(), json!(self.modified.to_rfc3339()));
        Value::Object(head)
    }
}

/// The bill table and its counters.
#[derive(Debug, Clone)]
pub struct BillStore {
    /// In `FID` order.
    bills: Vec<Bill>,
    /// The `FID`s of the bills holding each number (several when bill-number uniqueness is
    /// off): a save checks its number against every bill, so a lookup may not walk them all.
    numbers: HashMap<String, BTreeSet<u64>>,
    next_fid: u64,
    next_entry_id: u64,
    next_auto_number: u64,
    /// Canonical hashes of every packet saved, for `ValidateRepeatJson`.
    packet_hashes: HashSet<String>,
}

impl Default for BillStore {
    fn default() -> BillStore {
        BillStore {
            bills: Vec::new(),
            numbers: HashMap::new(),
            next_fid: 100_001,
            next_entry_id: 100_001,
            next_auto_number: 1,
            packet_hashes: HashSet::new(),
        }
    }
}

impl BillStore {
    /// All bills in `FID` order.
    pub fn bills(&self) -> &[Bill] {
        &self.bills
    }

    pub fn by_fid(&self, fid: u64) -> Option<&Bill> {
        let at = self
            .bills
            .binary_search_by_key(&fid, |bill| bill.fid)
            .ok()?;
        Some(&self.bills[at])
    }

    /// The bill with this number (the first saved, when several hold it).
    pub fn by_number(&self, bill_no: &str) -> Option<&Bill> {
        let fid = self.numbers.get(bill_no)?.first()?;
        self.by_fid(*fid)
    }

    /// A bill to change in place; its number is not to be changed (it is indexed).
    pub fn by_fid_mut(&mut self, fid: u64) -> Option<&mut Bill> {
        let at = self
            .bills
            .binary_search_by_key(&fid, |bill| bill.fid)
            .ok()?;
        Some(&mut self.bills[at])
    }

    pub fn next_fid(&mut self) -> u64 {
        let fid = self.next_fid;
        self.next_fid += 1;
        fid
    }

    pub fn next_entry_id(&mut self) -> u64 {
        let id = self.next_entry_id;
        self.next_entry_id += 1;
        id
    }

    /// The next automatic bill number (`XSTH00000001`, …), skipping numbers already taken.
    pub fn next_auto_number(&mut self, taken: &HashSet<String>) -> String {
        loop {
            let number = format!("XSTH{:08}", self.next_auto_number);
            self.next_auto_number += 1;
            if self.by_number(&number).is_none() && !taken.contains(&number) {
                return number;
            }
        }
    }

    pub fn seen_packet(&self, hash: &str) -> bool {
        self.packet_hashes.contains(hash)
    }

    /// Forget every bill, keeping the counters so that no `FID` or number is reused.
    pub fn clear(&mut self) -> usize {
        let count = self.bills.len();
        self.bills.clear();
        self.numbers.clear();
        self.packet_hashes.clear();
        count
    }

    /// Insert a new bill or replace the bill with the same `FID`.
    pub fn put(&mut self, bill: Bill, packet_hash: String) {
        self.packet_hashes.insert(packet_hash);
        (self.numbers.entry(bill.bill_no.clone()).or_default()).insert(bill.fid);
        match self.bills.binary_search_by_key(&bill.fid, |old| old.fid) {
            Ok(at) => {
                let old = std::mem::replace(&mut self.bills[at], bill);
                if old.bill_no != self.bills[at].bill_no
                    && let Some(fids) = self.numbers.get_mut(&old.bill_no)
                {
                    fids.remove(&old.fid);
                    if fids.is_empty() {
                        self.numbers.remove(&old.bill_no);
                    }
                }
            }
            Err(at) => self.bills.insert(at, bill),
        }
    }
}

/// A canonical text of a JSON value (object keys sorted at every depth), so that two packets
/// that differ only in key order count as the same packet.
pub fn canonical_json(value: &Value) -> String {
    fn canonical(value: &Value) -> Value {
        match value {
            Value::Object(object) => {
                let mut keys: Vec<&String> = object.keys().collect();
                keys.sort();
                let mut sorted = Map::new();
                for key in keys {
                    sorted.insert(key.clone(), canonical(&object[key]));
                }
                Value::Object(sorted)
            }
            Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
            other => other.clone(),
        }
    }
    canonical(value).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bill(fid: u64, bill_no: &str) -> Bill {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        Bill {
            fid,
            bill_no: bill_no.to_string(),
            status: DocumentStatus::Created,
            head: Fields::default(),
            sub_head: Fields::default(),
            entries: Vec::new(),
            extra: Map::new(),
            created: at,
            modified: at,
            approved: None,
        }
    }

    #[test]
    fn bills_are_found_by_fid_and_by_number_the_first_saved_when_numbers_repeat() {
        let mut store = BillStore::default();
        store.put(bill(100_002, "RT-2"), "b".into());
        store.put(bill(100_001, "RT-1"), "a".into());
        store.put(bill(100_003, "RT-1"), "c".into());
        let fids: Vec<u64> = store.bills().iter().map(|b| b.fid).collect();
        assert_eq!(fids, [100_001, 100_002, 100_003]);
        assert_eq!(store.by_number("RT-1").unwrap().fid, 100_001);
        assert_eq!(store.by_fid(100_002).unwrap().bill_no, "RT-2");
        assert!(store.by_fid(100_004).is_none() && store.by_number("RT-9").is_none());
        // A bill saved again under another number leaves its old number.
        store.put(bill(100_001, "RT-9"), "d".into());
        assert_eq!(store.by_number("RT-1").unwrap().fid, 100_003);
        assert_eq!(store.by_number("RT-9").unwrap().fid, 100_001);
        store.put(bill(100_003, "RT-3"), "e".into());
        assert!(store.by_number("RT-1").is_none());
        assert_eq!(store.clear(), 3);
        assert!(store.by_number("RT-2").is_none());
    }

    #[test]
    fn canonical_json_ignores_key_order_but_not_values() {
        let a: Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":[1,{"d":2,"c":3}],"x":null}}"#).unwrap();
        let b: Value =
            serde_json::from_str(r#"{"a":{"x":null,"y":[1,{"c":3,"d":2}]},"b":1}"#).unwrap();
        let c: Value =
            serde_json::from_str(r#"{"a":{"x":null,"y":[{"c":3,"d":2},1]},"b":1}"#).unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_ne!(canonical_json(&a), canonical_json(&c));
    }

    #[test]
    fn auto_numbers_skip_numbers_in_use() {
        let mut store = BillStore::default();
        let taken: HashSet<String> = ["XSTH00000001".to_string()].into();
        assert_eq!(store.next_auto_number(&taken), "XSTH00000002");
        assert_eq!(store.next_auto_number(&HashSet::new()), "XSTH00000003");
    }
}
