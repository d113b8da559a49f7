//! From a read packet to the bill it describes: a new bill, or the stored one with the
//! packet laid over it (the update path); the defaults the product fills in; and the required
//! fields, checked with the real messages (spec §3.4, §4.2, §6.11).

use std::collections::HashSet;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::sim::kingdee::basedata::{BaseData, Table};
use crate::sim::kingdee::bills::{Bill, Fields};
use crate::sim::kingdee::envelope::MsgCode;
use crate::sim::kingdee::save::SaveConfig;
use crate::sim::kingdee::save::options::Options;
use crate::sim::kingdee::save::read::{Draft, PacketReader, Provided};
use crate::sim::kingdee::schema::{self, Cell, ENTRY_CAPTION, ENTRY_KEY, Level};

/// The bill a packet describes, with defaults filled in.
#[derive(Debug, Clone)]
pub(super) struct Candidate {
    pub(super) fid: u64,
    pub(super) head: Fields,
    pub(super) sub_head: Fields,
    pub(super) rows: Vec<(u64, Fields, Map<String, Value>)>,
    pub(super) extra: Map<String, Value>,
}

pub(super) fn apply(target: &mut Fields, provided: &Provided, only: &[String]) {
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

pub(super) fn new_candidate(draft: &Draft) -> Candidate {
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
pub(super) fn updated_candidate(existing: &Bill, draft: &Draft, options: &Options) -> Candidate {
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
pub(super) fn fill_defaults(
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

pub(super) const HEAD_REQUIRED: &[&str] = &[
    "FBillTypeID",
    "FDate",
    "FSaleOrgId",
    "FStockOrgId",
    "FRetcustId",
];
pub(super) const SUB_HEAD_REQUIRED: &[&str] = &["FSettleCurrId", "FSettleOrgId"];
pub(super) const ENTRY_REQUIRED: &[&str] = &["FMaterialId", "FUnitID", "FRealQty", "FStockId"];

/// Required fields, with the real message patterns (spec §4.2).
pub(super) fn check_required(candidate: &Candidate, reader: &mut PacketReader<'_>) {
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
