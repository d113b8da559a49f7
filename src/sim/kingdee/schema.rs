//! The metadata of form `SAL_RETURNSTOCK` (销售退货单) as far as the sandbox models it: which
//! field keys exist, on which level (head, `SubHeadEntity` 财务信息, `FEntity` 明细信息), of
//! which kind, with which Chinese caption (used in the real error messages).
//!
//! Field keys follow the official template (spec §3.4) and are matched case-insensitively.
//! Keys a packet sends that are not listed here are kept verbatim but never validated. Pure
//! data, no IO.

use chrono::NaiveDateTime;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use self::Kind::{Base, Bool, Date, FreeBase, Text};
use self::Level::{Entry, Head, SubHead};
use crate::sim::kingdee::basedata::Table;

/// The form the sandbox can save.
pub const FORM_ID: &str = "SAL_RETURNSTOCK";
/// Its display name, used in messages.
pub const FORM_NAME: &str = "销售退货单";
/// The entry entity key (used in `FEntity_FEntryId` and `FEntity.FMaterialId`).
pub const ENTRY_KEY: &str = "FEntity";
/// The sub-header key.
pub const SUB_HEAD_KEY: &str = "SubHeadEntity";
/// The caption of the entry entity, in entry-level messages.
pub const ENTRY_CAPTION: &str = "明细信息";

/// Where a field lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Head,
    SubHead,
    Entry,
}

/// What a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A reference `{"FNumber": code}` into a seeded table.
    Base(Table),
    /// A reference into a table the sandbox does not model (departments, lots, …): kept as
    /// given, never verified.
    FreeBase,
    Text,
    Date,
    Decimal,
    Bool,
}

/// One field of the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub key: &'static str,
    pub caption: &'static str,
    pub level: Level,
    pub kind: Kind,
}

const fn field(key: &'static str, caption: &'static str, level: Level, kind: Kind) -> Field {
    Field {
        key,
        caption,
        level,
        kind,
    }
}

/// Every modelled field. System fields (`FID`, `FDocumentStatus`, entry ids, dates of
/// creation and approval) are not here: the store sets them.
pub const FIELDS: &[Field] = &[
    field("FBillNo", "单据编号", Head, Text),
    field("FDate", "日期", Head, Date),
    field("FBillTypeID", "单据类型", Head, Base(Table::BillTypes)),
    field("FSaleOrgId", "销售组织", Head, Base(Table::Organisations)),
    field("FStockOrgId", "库存组织", Head, Base(Table::Organisations)),
    field("FRetcustId", "退货客户", Head, Base(Table::Customers)),
    field("FReceiveCustId", "收货方", Head, Base(Table::Customers)),
    field("FSettleCustId", "结算方", Head, Base(Table::Customers)),
    field("FPayCustId", "付款方", Head, Base(Table::Customers)),
    field("FOwnerIdHead", "货主", Head, Base(Table::Organisations)),
    field("FOwnerTypeIdHead", "货主类型", Head, Text),
    field("FHeadNote", "备注", Head, Text),
    field("FSaledeptid", "销售部门", Head, FreeBase),
    field("FSalesManId", "销售员", Head, FreeBase),
    field("FStockDeptId", "库存部门", Head, FreeBase),
    field("FStockerId", "仓管员", Head, FreeBase),
    field("FReturnReason", "退货原因", Head, FreeBase),
    field(
        "FSettleCurrId",
        "结算币别",
        SubHead,
        Base(Table::Currencies),
    ),
    field(
        "FSettleOrgId",
        "结算组织",
        SubHead,
        Base(Table::Organisations),
    ),
    field("FLocalCurrId", "本位币", SubHead, Base(Table::Currencies)),
    field(
        "FExchangeTypeId",
        "汇率类型",
        SubHead,
        Base(Table::ExchangeTypes),
    ),
    field("FExchangeRate", "汇率", SubHead, Kind::Decimal),
    field("FSettleTypeId", "结算方式", SubHead, FreeBase),
    field("FThirdBillNo", "第三方单据编号", SubHead, Text),
    field("FThirdBillId", "第三方单据内码", SubHead, Text),
    field("FThirdSrcType", "第三方来源", SubHead, Text),
    field("FRowType", "产品类型", Entry, Text),
    field("FMaterialId", "物料编码", Entry, Base(Table::Materials)),
    field("FUnitID", "库存单位", Entry, Base(Table::Units)),
    field("FSalUnitID", "销售单位", Entry, Base(Table::Units)),
    field("FPriceUnitId", "计价单位", Entry, Base(Table::Units)),
    field("FRealQty", "实退数量", Entry, Kind::Decimal),
    field("FSalUnitQty", "销售数量", Entry, Kind::Decimal),
    field("FSalBaseQty", "销售基本数量", Entry, Kind::Decimal),
    field("FPriceBaseQty", "计价基本数量", Entry, Kind::Decimal),
    field("FInventoryQty", "库存数量", Entry, Kind::Decimal),
    field("FPrice", "单价", Entry, Kind::Decimal),
    field("FTaxPrice", "含税单价", Entry, Kind::Decimal),
    field("FEntryTaxRate", "税率%", Entry, Kind::Decimal),
    field("FDiscountRate", "折扣率%", Entry, Kind::Decimal),
    field("FAllAmount", "价税合计", Entry, Kind::Decimal),
    field("FIsFree", "是否赠品", Entry, Bool),
    field("FReturnType", "退货类型", Entry, Base(Table::ReturnTypes)),
    field("FOwnerTypeId", "货主类型", Entry, Text),
    field("FOwnerId", "货主", Entry, Base(Table::Organisations)),
    field("FStockId", "仓库", Entry, Base(Table::Stocks)),
    field("FStocklocId", "仓位", Entry, FreeBase),
    field(
        "FStockstatusId",
        "库存状态",
        Entry,
        Base(Table::StockStatuses),
    ),
    field("FLot", "批号", Entry, FreeBase),
    field("FProduceDate", "生产日期", Entry, Date),
    field("FExpiryDate", "有效期至", Entry, Date),
    field("FDeliveryDate", "退货日期", Entry, Date),
    field("FMtoNo", "计划跟踪号", Entry, Text),
    field("FNote", "备注", Entry, Text),
];

/// A field of `level` by key, case-insensitively.
pub fn field_at(level: Level, key: &str) -> Option<&'static Field> {
    FIELDS
        .iter()
        .find(|field| field.level == level && field.key.eq_ignore_ascii_case(key))
}

/// A field of any level by key, case-insensitively (head fields first).
pub fn field_named(key: &str) -> Option<&'static Field> {
    FIELDS
        .iter()
        .find(|field| field.key.eq_ignore_ascii_case(key))
}

/// A stored field value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// A resolved base-data reference (`id` 0 and empty `name` for unmodelled tables).
    Base {
        number: String,
        id: u64,
        name: String,
    },
    Text(String),
    Date(NaiveDateTime),
    Decimal(Decimal),
    Bool(bool),
}

/// How K3Cloud writes dates in query results and views.
pub const DATE_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

impl Cell {
    /// The cell as the inspection endpoint shows it: base data as `{FNumber, FName}`,
    /// decimals as exact strings.
    pub fn to_inspection_json(&self) -> Value {
        match self {
            Cell::Base { number, name, .. } => json!({"FNumber": number, "FName": name}),
            Cell::Text(text) => json!(text),
            Cell::Date(date) => json!(date.format(DATE_TIME_FORMAT).to_string()),
            Cell::Decimal(decimal) => json!(decimal.normalize().to_string()),
            Cell::Bool(flag) => json!(flag),
        }
    }

    /// The base-data code, if this is a reference.
    pub fn number(&self) -> Option<&str> {
        match self {
            Cell::Base { number, .. } => Some(number),
            _ => None,
        }
    }
}

/// A decimal as a JSON number. Only for output: the value was parsed exactly, and JSON
/// numbers are what K3Cloud's query results carry; amounts of up to 15 significant digits
/// round-trip exactly through the shortest representation.
pub fn decimal_json(decimal: Decimal) -> Value {
    use rust_decimal::prelude::ToPrimitive;
    let normal = decimal.normalize();
    if normal.scale() == 0
        && let Some(integer) = normal.to_i64()
    {
        return json!(integer);
    }
    normal.to_f64().map_or(Value::Null, |float| json!(float))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_keys_are_unique_per_level_and_found_case_insensitively() {
        for (index, field) in FIELDS.iter().enumerate() {
            let first = FIELDS
                .iter()
                .position(|other| other.level == field.level && other.key == field.key);
            assert_eq!(first, Some(index), "{} twice", field.key);
        }
        assert_eq!(field_at(Entry, "fmaterialid").unwrap().caption, "物料编码");
        assert_eq!(field_at(Head, "FBILLTYPEID").unwrap().key, "FBillTypeID");
        assert!(field_at(Head, "FMaterialId").is_none());
        assert_eq!(field_named("FSettleOrgId").unwrap().level, SubHead);
    }

    #[test]
    fn decimals_become_json_numbers_without_noise() {
        use std::str::FromStr;
        for (text, json_text) in [
            ("2", "2"),
            ("2.000", "2"),
            ("59.90", "59.9"),
            ("0.1", "0.1"),
            ("113.0", "113"),
        ] {
            let decimal = Decimal::from_str(text).unwrap();
            assert_eq!(decimal_json(decimal).to_string(), json_text, "{text}");
        }
    }
}
