//! The master data both sandboxes share: shops, warehouses, goods, and their Kingdee codes.
//!
//! The WDT sandbox generates refund stock-ins from this catalogue; the Kingdee sandbox seeds
//! its base-data tables (customers, stocks, materials, units, …) from the same lists; the
//! bundled flow's value maps (`mappings/value_maps/*.csv`) translate one into the other. A test
//! keeps those three in agreement. Goods in [`unknown_skus`] exist in WDT but deliberately
//! not in Kingdee: they are the records a correct sync must park, not lose.
//!
//! Pure data, no IO.

/// A WDT shop and the Kingdee customer its refunds are booked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shop {
    pub shop_no: &'static str,
    pub shop_name: &'static str,
    pub shop_id: &'static str,
    pub platform_id: &'static str,
    /// `FNumber` of the Kingdee customer (BD_Customer).
    pub customer: &'static str,
    pub customer_name: &'static str,
}

/// A WDT warehouse and the Kingdee stock (BD_STOCK) that receives its returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Warehouse {
    pub warehouse_no: &'static str,
    pub warehouse_name: &'static str,
    pub warehouse_id: &'static str,
    /// `FNumber` of the Kingdee stock.
    pub stock: &'static str,
    pub stock_name: &'static str,
}

/// A WDT unit name and the Kingdee unit (BD_UNIT) it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unit {
    pub wdt_name: &'static str,
    /// `FNumber` of the Kingdee unit.
    pub number: &'static str,
    pub name: &'static str,
}

/// One sellable SKU (WDT `spec_no` = Kingdee material `FNumber`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sku {
    pub spec_id: String,
    pub spec_no: String,
    pub spec_name: String,
    pub spec_code: String,
    pub goods_no: String,
    pub goods_name: String,
    pub barcode: String,
    /// The WDT unit name (`goods_unit`); see [`UNITS`] for the Kingdee unit.
    pub unit: &'static str,
    pub brand_no: &'static str,
    pub brand_name: &'static str,
    /// Retail price in fen (1/100 yuan), to keep generated money exact.
    pub price_fen: i64,
}

pub const SHOPS: &[Shop] = &[
    Shop {
        shop_no: "SHOP01",
        shop_name: "天猫旗舰店",
        shop_id: "568",
        platform_id: "1",
        customer: "CUST0001",
        customer_name: "天猫旗舰店客户",
    },
    Shop {
        shop_no: "SHOP02",
        shop_name: "京东专营店",
        shop_id: "569",
        platform_id: "3",
        customer: "CUST0002",
        customer_name: "京东专营店客户",
    },
    Shop {
        shop_no: "SHOP03",
        shop_name: "拼多多官方店",
        shop_id: "570",
        platform_id: "32",
        customer: "CUST0003",
        customer_name: "拼多多官方店客户",
    },
    Shop {
        shop_no: "SHOP04",
        shop_name: "抖音小店",
        shop_id: "571",
        platform_id: "69",
        customer: "CUST0004",
        customer_name: "抖音小店客户",
    },
    Shop {
        shop_no: "SHOP05",
        shop_name: "唯品会特卖",
        shop_id: "572",
        platform_id: "7",
        customer: "CUST0005",
        customer_name: "唯品会客户",
    },
    Shop {
        shop_no: "SHOP06",
        shop_name: "上海线下门店",
        shop_id: "573",
        platform_id: "0",
        customer: "CUST0006",
        customer_name: "上海门店零售客户",
    },
];

pub const WAREHOUSES: &[Warehouse] = &[
    Warehouse {
        warehouse_no: "WH01",
        warehouse_name: "上海主仓",
        warehouse_id: "116",
        stock: "CK001",
        stock_name: "上海成品仓",
    },
    Warehouse {
        warehouse_no: "WH02",
        warehouse_name: "广州仓",
        warehouse_id: "117",
        stock: "CK002",
        stock_name: "广州成品仓",
    },
    Warehouse {
        warehouse_no: "WH03",
        warehouse_name: "退货仓",
        warehouse_id: "118",
        stock: "CK003",
        stock_name: "退货待检仓",
    },
    Warehouse {
        warehouse_no: "WH04",
        warehouse_name: "北京仓",
        warehouse_id: "119",
        stock: "CK004",
        stock_name: "北京成品仓",
    },
];

pub const UNITS: &[Unit] = &[
    Unit {
        wdt_name: "件",
        number: "Pcs",
        name: "件",
    },
    Unit {
        wdt_name: "个",
        number: "Pcs",
        name: "件",
    },
    Unit {
        wdt_name: "双",
        number: "Pair",
        name: "双",
    },
    Unit {
        wdt_name: "套",
        number: "Set",
        name: "套",
    },
    Unit {
        wdt_name: "盒",
        number: "Box",
        name: "盒",
    },
];

/// Kingdee organisation that sells, stocks, settles and owns everything in the sandbox.
pub const ORGANISATIONS: &[(&str, &str)] = &[("100", "总公司"), ("101", "上海分公司")];
pub const CURRENCIES: &[(&str, &str)] = &[
    ("PRE001", "人民币"),
    ("PRE002", "香港元"),
    ("PRE007", "美元"),
];
pub const BILL_TYPES: &[(&str, &str)] = &[
    ("XSTHD01_SYS", "标准销售退货单"),
    ("XSTHD06_SYS", "现销退货单"),
];
pub const RETURN_TYPES: &[(&str, &str)] = &[("THLX01_SYS", "退货"), ("THLX02_SYS", "补货")];
pub const STOCK_STATUSES: &[(&str, &str)] = &[("KCZT01_SYS", "可用"), ("KCZT02_SYS", "待检")];
pub const EXCHANGE_TYPES: &[(&str, &str)] = &[("HLTX01_SYS", "固定汇率")];

struct Goods {
    goods_no: &'static str,
    name: &'static str,
    code: &'static str,
    unit: &'static str,
    brand: (&'static str, &'static str),
    price_fen: i64,
    specs: &'static [(&'static str, &'static str)],
}

const APPAREL_SPECS: &[(&str, &str)] = &[
    ("RED-M", "红色 M"),
    ("RED-L", "红色 L"),
    ("BLK-M", "黑色 M"),
    ("BLK-L", "黑色 L"),
    ("WHT-XL", "白色 XL"),
];
const SHOE_SPECS: &[(&str, &str)] = &[
    ("BLK-39", "黑色 39"),
    ("BLK-41", "黑色 41"),
    ("WHT-40", "白色 40"),
    ("WHT-42", "白色 42"),
];
const ONE_SIZE: &[(&str, &str)] = &[("STD", "标准"), ("GRY", "灰色")];

const GOODS: &[Goods] = &[
    Goods {
        goods_no: "G1001",
        name: "纯棉短袖T恤",
        code: "TX",
        unit: "件",
        brand: ("B01", "森屿"),
        price_fen: 5_990,
        specs: APPAREL_SPECS,
    },
    Goods {
        goods_no: "G1002",
        name: "加绒连帽卫衣",
        code: "WY",
        unit: "件",
        brand: ("B01", "森屿"),
        price_fen: 13_800,
        specs: APPAREL_SPECS,
    },
    Goods {
        goods_no: "G1003",
        name: "直筒牛仔裤",
        code: "NZK",
        unit: "件",
        brand: ("B02", "蓝湾"),
        price_fen: 19_900,
        specs: APPAREL_SPECS,
    },
    Goods {
        goods_no: "G2001",
        name: "轻跑运动鞋",
        code: "YDX",
        unit: "双",
        brand: ("B03", "迅步"),
        price_fen: 32_900,
        specs: SHOE_SPECS,
    },
    Goods {
        goods_no: "G2002",
        name: "帆布休闲鞋",
        code: "FBX",
        unit: "双",
        brand: ("B03", "迅步"),
        price_fen: 12_900,
        specs: SHOE_SPECS,
    },
    Goods {
        goods_no: "G3001",
        name: "羊毛混纺围巾",
        code: "WJ",
        unit: "个",
        brand: ("B04", "暖冬"),
        price_fen: 8_850,
        specs: ONE_SIZE,
    },
    Goods {
        goods_no: "G3002",
        name: "运动袜三双装",
        code: "WZ",
        unit: "套",
        brand: ("B03", "迅步"),
        price_fen: 2_990,
        specs: ONE_SIZE,
    },
    Goods {
        goods_no: "G4001",
        name: "保温杯礼盒",
        code: "BWB",
        unit: "盒",
        brand: ("B05", "清泉"),
        price_fen: 15_600,
        specs: ONE_SIZE,
    },
];

/// Goods sold in WDT whose SKUs were never created as Kingdee materials.
const UNKNOWN_GOODS: &[Goods] = &[
    Goods {
        goods_no: "G9001",
        name: "新品联名卫衣(未建档)",
        code: "XPWY",
        unit: "件",
        brand: ("B01", "森屿"),
        price_fen: 25_900,
        specs: &[("PNK-M", "粉色 M"), ("PNK-L", "粉色 L")],
    },
    Goods {
        goods_no: "G9002",
        name: "赠品帆布袋(未建档)",
        code: "ZPD",
        unit: "个",
        brand: ("B05", "清泉"),
        price_fen: 990,
        specs: &[("STD", "标准")],
    },
];

fn skus_of(goods: &[Goods], id_base: u64) -> Vec<Sku> {
    let mut out = Vec::new();
    for item in goods {
        for (spec_code, spec_name) in item.specs {
            let index = out.len() as u64;
            let barcode_stem = format!("690{:09}", id_base % 1_000 * 1_000 + index);
            out.push(Sku {
                spec_id: (2_758_410_743_714_938_000 + id_base + index).to_string(),
                spec_no: format!("{}-{}", item.code, spec_code),
                spec_name: spec_name.to_string(),
                spec_code: spec_code.to_string(),
                goods_no: item.goods_no.to_string(),
                goods_name: item.name.to_string(),
                barcode: format!("{barcode_stem}{}", ean13_check_digit(&barcode_stem)),
                unit: item.unit,
                brand_no: item.brand.0,
                brand_name: item.brand.1,
                price_fen: item.price_fen,
            });
        }
    }
    out
}

/// Every SKU that exists both in WDT and as a Kingdee material.
pub fn skus() -> Vec<Sku> {
    skus_of(GOODS, 100)
}

/// SKUs that exist in WDT only: a bill with one of them must be rejected by Kingdee.
pub fn unknown_skus() -> Vec<Sku> {
    skus_of(UNKNOWN_GOODS, 900)
}

pub fn shop(shop_no: &str) -> Option<&'static Shop> {
    SHOPS.iter().find(|shop| shop.shop_no == shop_no)
}

pub fn warehouse(warehouse_no: &str) -> Option<&'static Warehouse> {
    WAREHOUSES
        .iter()
        .find(|warehouse| warehouse.warehouse_no == warehouse_no)
}

/// The Kingdee unit number for a WDT unit name.
pub fn unit_number(wdt_name: &str) -> Option<&'static str> {
    UNITS
        .iter()
        .find(|unit| unit.wdt_name == wdt_name)
        .map(|unit| unit.number)
}

fn ean13_check_digit(stem: &str) -> u32 {
    let sum: u32 = stem
        .chars()
        .filter_map(|c| c.to_digit(10))
        .enumerate()
        .map(|(i, d)| if i % 2 == 0 { d } else { d * 3 })
        .sum();
    (10 - sum % 10) % 10
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn sku_codes_are_unique_and_unknown_ones_are_disjoint() {
        let known: HashSet<String> = skus().into_iter().map(|sku| sku.spec_no).collect();
        let unknown: HashSet<String> = unknown_skus().into_iter().map(|sku| sku.spec_no).collect();
        assert_eq!(known.len(), skus().len());
        assert!(known.is_disjoint(&unknown));
        assert!(known.contains("TX-RED-M"));
    }

    #[test]
    fn every_sku_unit_has_a_kingdee_unit() {
        for sku in skus().iter().chain(unknown_skus().iter()) {
            assert!(unit_number(sku.unit).is_some(), "{}", sku.spec_no);
        }
    }

    #[test]
    fn barcodes_carry_a_valid_ean13_check_digit() {
        // 4006381333931 is a published EAN-13.
        assert_eq!(ean13_check_digit("400638133393"), 1);
        for sku in skus() {
            assert_eq!(sku.barcode.len(), 13);
        }
    }
}
