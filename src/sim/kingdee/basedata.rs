//! The sandbox's base data (基础资料): organisations, customers, materials, stocks, units,
//! currencies, bill types, return types, stock statuses and exchange-rate types.
//!
//! Seeded from [`crate::sim::catalog`] so that codes line up with the WDT sandbox and the
//! bundled value maps: each shop's customer, each warehouse's stock, every catalogue SKU as a
//! material (number = `spec_no`, base unit = the Kingdee unit of its WDT unit). On top of
//! that a few records a flow never maps to (extra customers) and one forbidden record per
//! table a test may need (a forbidden material, customer and stock: 「禁用也是不存在」).
//! `catalog::unknown_skus()` are deliberately absent. Codes are matched exactly
//! (case-sensitive) **[I]**. Pure data; the server adds records through [`BaseData::upsert`].

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use crate::sim::catalog;

/// One base-data table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Table {
    Organisations,
    Customers,
    Materials,
    Stocks,
    Units,
    Currencies,
    BillTypes,
    ReturnTypes,
    StockStatuses,
    ExchangeTypes,
}

impl Table {
    pub const ALL: [Table; 10] = [
        Table::Organisations,
        Table::Customers,
        Table::Materials,
        Table::Stocks,
        Table::Units,
        Table::Currencies,
        Table::BillTypes,
        Table::ReturnTypes,
        Table::StockStatuses,
        Table::ExchangeTypes,
    ];

    /// The name used by the inspection endpoints (`/_sim/basedata/{name}`).
    pub fn name(self) -> &'static str {
        match self {
            Table::Organisations => "organisations",
            Table::Customers => "customers",
            Table::Materials => "materials",
            Table::Stocks => "stocks",
            Table::Units => "units",
            Table::Currencies => "currencies",
            Table::BillTypes => "bill_types",
            Table::ReturnTypes => "return_types",
            Table::StockStatuses => "stock_statuses",
            Table::ExchangeTypes => "exchange_types",
        }
    }

    /// The K3Cloud form id of the table (what `ExecuteBillQuery` takes as `FormId`).
    pub fn form_id(self) -> &'static str {
        match self {
            Table::Organisations => "ORG_Organizations",
            Table::Customers => "BD_Customer",
            Table::Materials => "BD_MATERIAL",
            Table::Stocks => "BD_STOCK",
            Table::Units => "BD_UNIT",
            Table::Currencies => "BD_Currency",
            Table::BillTypes => "BOS_BillType",
            Table::ReturnTypes => "SAL_ReturnType",
            Table::StockStatuses => "BD_StockStatus",
            Table::ExchangeTypes => "BD_RateType",
        }
    }

    /// The primary-key field of the form (`FMaterialId` for BD_MATERIAL, …).
    pub fn id_key(self) -> &'static str {
        match self {
            Table::Organisations => "FOrgID",
            Table::Customers => "FCUSTID",
            Table::Materials => "FMATERIALID",
            Table::Stocks => "FStockId",
            Table::Units => "FUNITID",
            Table::Currencies => "FCURRENCYID",
            Table::BillTypes => "FBILLTYPEID",
            Table::ReturnTypes => "FENTRYID",
            Table::StockStatuses => "FStockStatusId",
            Table::ExchangeTypes => "FRATETYPEID",
        }
    }

    /// Find a table by its inspection name or its form id, case-insensitively.
    pub fn parse(text: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|table| {
            table.name().eq_ignore_ascii_case(text) || table.form_id().eq_ignore_ascii_case(text)
        })
    }
}

/// One base-data record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    /// The internal id (内码) a query returns for the bare field key.
    pub id: u64,
    /// The code (`FNumber`).
    pub number: String,
    pub name: String,
    /// Disabled (禁用) records count as missing when a save verifies base data.
    pub forbidden: bool,
    /// Materials only: the `FNumber` of the base unit, the default of an entry's `FUnitID`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_unit: Option<String>,
}

impl Record {
    /// The record as the inspection endpoint shows it.
    pub fn to_json(&self) -> Value {
        let mut value = json!({
            "Id": self.id,
            "FNumber": self.number,
            "FName": self.name,
            "Forbidden": self.forbidden,
        });
        if let Some(unit) = &self.base_unit {
            value["BaseUnit"] = json!(unit);
        }
        value
    }
}

/// The result of looking a code up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    Found(&'a Record),
    Forbidden(&'a Record),
    Missing,
}

/// All base-data tables.
#[derive(Debug, Clone)]
pub struct BaseData {
    tables: BTreeMap<Table, BTreeMap<String, Record>>,
    next_id: u64,
}

/// A material no catalogue SKU maps to, disabled: saving it fails with verification on.
pub const FORBIDDEN_MATERIAL: &str = "FORBID-001";
/// A customer no shop maps to, disabled.
pub const FORBIDDEN_CUSTOMER: &str = "CUST0900";
/// A stock no warehouse maps to, disabled.
pub const FORBIDDEN_STOCK: &str = "CK099";

impl BaseData {
    /// An empty set of tables.
    pub fn empty() -> BaseData {
        BaseData {
            tables: Table::ALL
                .into_iter()
                .map(|table| (table, BTreeMap::new()))
                .collect(),
            next_id: 100_001,
        }
    }

    /// The tables every sandbox starts with, built from the shared catalogue.
    pub fn seeded() -> BaseData {
        let mut data = BaseData::empty();
        for (number, name) in catalog::ORGANISATIONS {
            data.upsert(Table::Organisations, number, Some(name), false, None);
        }
        for shop in catalog::SHOPS {
            data.upsert(
                Table::Customers,
                shop.customer,
                Some(shop.customer_name),
                false,
                None,
            );
        }
        for (number, name) in [("CUST0099", "零售散客"), ("CUST0100", "线下批发客户")] {
            data.upsert(Table::Customers, number, Some(name), false, None);
        }
        data.upsert(
            Table::Customers,
            FORBIDDEN_CUSTOMER,
            Some("已停用客户"),
            true,
            None,
        );
        for unit in catalog::UNITS {
            data.upsert(Table::Units, unit.number, Some(unit.name), false, None);
        }
        for sku in catalog::skus() {
            let unit = catalog::unit_number(sku.unit).expect("every catalogue unit is mapped");
            data.upsert(
                Table::Materials,
                &sku.spec_no,
                Some(&format!("{} {}", sku.goods_name, sku.spec_name)),
                false,
                Some(unit),
            );
        }
        data.upsert(
            Table::Materials,
            FORBIDDEN_MATERIAL,
            Some("停用物料"),
            true,
            Some("Pcs"),
        );
        for warehouse in catalog::WAREHOUSES {
            data.upsert(
                Table::Stocks,
                warehouse.stock,
                Some(warehouse.stock_name),
                false,
                None,
            );
        }
        data.upsert(Table::Stocks, FORBIDDEN_STOCK, Some("已停用仓"), true, None);
        for (table, rows) in [
            (Table::Currencies, catalog::CURRENCIES),
            (Table::BillTypes, catalog::BILL_TYPES),
            (Table::ReturnTypes, catalog::RETURN_TYPES),
            (Table::StockStatuses, catalog::STOCK_STATUSES),
            (Table::ExchangeTypes, catalog::EXCHANGE_TYPES),
        ] {
            for (number, name) in rows {
                data.upsert(table, number, Some(name), false, None);
            }
        }
        data
    }

    pub fn lookup(&self, table: Table, number: &str) -> Lookup<'_> {
        match self.tables[&table].get(number) {
            Some(record) if record.forbidden => Lookup::Forbidden(record),
            Some(record) => Lookup::Found(record),
            None => Lookup::Missing,
        }
    }

    /// A record by code whether forbidden or not.
    pub fn get(&self, table: Table, number: &str) -> Option<&Record> {
        self.tables[&table].get(number)
    }

    /// The records of one table, ordered by code.
    pub fn records(&self, table: Table) -> impl Iterator<Item = &Record> {
        self.tables[&table].values()
    }

    /// Add a record, or update (and so re-enable or disable) an existing one, keeping its id.
    pub fn upsert(
        &mut self,
        table: Table,
        number: &str,
        name: Option<&str>,
        forbidden: bool,
        base_unit: Option<&str>,
    ) -> &Record {
        let next_id = &mut self.next_id;
        let record = self
            .tables
            .get_mut(&table)
            .expect("every table exists")
            .entry(number.to_string())
            .or_insert_with(|| {
                let id = *next_id;
                *next_id += 1;
                Record {
                    id,
                    number: number.to_string(),
                    name: name.unwrap_or(number).to_string(),
                    forbidden,
                    base_unit: None,
                }
            });
        if let Some(name) = name {
            record.name = name.to_string();
        }
        record.forbidden = forbidden;
        if let Some(unit) = base_unit {
            record.base_unit = Some(unit.to_string());
        }
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogue_code_a_flow_maps_to_resolves() {
        let data = BaseData::seeded();
        let found = |table, number: &str| matches!(data.lookup(table, number), Lookup::Found(_));
        for shop in catalog::SHOPS {
            assert!(found(Table::Customers, shop.customer), "{}", shop.customer);
        }
        for warehouse in catalog::WAREHOUSES {
            assert!(found(Table::Stocks, warehouse.stock), "{}", warehouse.stock);
        }
        for sku in catalog::skus() {
            assert!(found(Table::Materials, &sku.spec_no), "{}", sku.spec_no);
            let material = data.get(Table::Materials, &sku.spec_no).unwrap();
            let unit = material.base_unit.as_deref().unwrap();
            assert_eq!(Some(unit), catalog::unit_number(sku.unit));
            assert!(found(Table::Units, unit), "{unit}");
        }
        for (number, _) in catalog::ORGANISATIONS {
            assert!(found(Table::Organisations, number));
        }
        for number in [
            "PRE001",
            "XSTHD01_SYS",
            "THLX01_SYS",
            "KCZT01_SYS",
            "HLTX01_SYS",
        ] {
            let table = Table::ALL
                .into_iter()
                .find(|table| data.get(*table, number).is_some());
            assert!(table.is_some(), "{number}");
        }
    }

    #[test]
    fn unknown_skus_are_missing_and_forbidden_records_are_forbidden() {
        let data = BaseData::seeded();
        for sku in catalog::unknown_skus() {
            assert_eq!(data.lookup(Table::Materials, &sku.spec_no), Lookup::Missing);
        }
        for (table, number) in [
            (Table::Materials, FORBIDDEN_MATERIAL),
            (Table::Customers, FORBIDDEN_CUSTOMER),
            (Table::Stocks, FORBIDDEN_STOCK),
        ] {
            assert!(matches!(data.lookup(table, number), Lookup::Forbidden(_)));
        }
        assert_eq!(data.lookup(Table::Materials, "tx-red-m"), Lookup::Missing);
    }

    #[test]
    fn upsert_adds_and_reenables_keeping_the_id() {
        let mut data = BaseData::seeded();
        let id = data.get(Table::Materials, FORBIDDEN_MATERIAL).unwrap().id;
        data.upsert(Table::Materials, FORBIDDEN_MATERIAL, None, false, None);
        let record = data.get(Table::Materials, FORBIDDEN_MATERIAL).unwrap();
        assert_eq!((record.id, record.forbidden), (id, false));
        assert_eq!(record.name, "停用物料");
        let added = data
            .upsert(
                Table::Materials,
                "XPWY-PNK-M",
                Some("新品"),
                false,
                Some("Pcs"),
            )
            .clone();
        assert!(added.id > id);
        assert_eq!(
            data.lookup(Table::Materials, "XPWY-PNK-M"),
            Lookup::Found(&added)
        );
    }

    #[test]
    fn tables_parse_from_names_and_form_ids() {
        assert_eq!(Table::parse("materials"), Some(Table::Materials));
        assert_eq!(Table::parse("BD_MATERIAL"), Some(Table::Materials));
        assert_eq!(Table::parse("bd_customer"), Some(Table::Customers));
        assert_eq!(Table::parse("nope"), None);
    }
}
