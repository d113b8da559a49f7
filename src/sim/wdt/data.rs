//! The refund stock-in records the WDT sandbox serves, and the deterministic generator that
//! invents them from the shared [`catalog`].
//!
//! A record carries every field of the brief's response table and of spec §8.7, always
//! present (empty string when there is no value), typed as WDT types them: ids, money and
//! quantities are strings (`"2.0000"`, `"59.9000"`, four decimals), `status`,
//! `process_status`, `defect`, `stock_type` and `trans_from_wt` are integers, `logistics_id`
//! may be null, and "no date" is `9999-12-01 00:00:00`. Fields the sandbox does not model
//! (inserted through `/_sim/orders`) are kept in `extra` and served as they came.
//!
//! Money is computed in integer units of 0.0001 yuan, never in floating point. The generator
//! is a pure function of its seed, its settings and the instant it is anchored to: it does
//! no IO and reads no clock.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate, NaiveDateTime};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::sim::catalog::{self, Shop, Sku, Warehouse};
use crate::sim::wdt::random::{below, between, chance, pick, shuffle, stream, weighted};
use crate::time::WALL_CLOCK;

/// WDT's "no date" value.
pub const NO_DATE: &str = "9999-12-01 00:00:00";

/// The status codes of a refund stock-in (spec §4.1).
pub const STATUSES: [i64; 5] = [10, 20, 30, 60, 80];
/// 已完成: the only status the query returns by default.
pub const STATUS_DONE: i64 = 80;

/// One refund stock-in order (`stockin_list[]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Order {
    pub stockin_id: String,
    pub order_no: String,
    pub stockin_no: String,
    /// Defaults to 80 when an inserted order omits it.
    #[serde(default = "status_done")]
    pub status: i64,
    pub process_status: i64,
    pub refund_id: String,
    pub refund_no: String,
    pub src_order_no: String,
    pub src_order_id: String,
    pub trade_no: String,
    pub trade_type: String,
    pub order_type: String,
    pub order_type_name: String,
    pub shop_id: String,
    pub shop_no: String,
    pub shop_name: String,
    pub shop_remark: String,
    pub platform_id: String,
    pub warehouse_id: String,
    pub warehouse_no: String,
    pub warehouse_name: String,
    pub logistics_id: Option<String>,
    pub logistics_type: String,
    pub logistics_no: String,
    pub logistics_name: String,
    pub logistics_code: String,
    pub created_time: String,
    pub check_time: String,
    pub stockin_time: String,
    pub modified: String,
    pub creator_name: String,
    pub stockin_operator_name: String,
    pub check_operator_name: String,
    pub refund_operator_name: String,
    pub operator_id: String,
    pub check_operator_id: String,
    pub remark: String,
    pub refund_remark: String,
    pub stockin_reason: String,
    pub reason_id: String,
    pub buyer_nick: String,
    pub nick_name: String,
    pub customer_no: String,
    pub customer_name: String,
    pub goods_amount: String,
    pub total_price: String,
    pub post_fee: String,
    pub other_fee: String,
    pub actual_refund_amount: String,
    pub post_share_type: String,
    pub goods_type_count: String,
    pub note_count: String,
    pub flag_id: String,
    pub flag_name: String,
    pub fa_status: String,
    pub wms_outer_no: String,
    pub wms_status: String,
    pub wms_result: String,
    pub trans_from_wt: i64,
    pub details_list: Vec<Detail>,
    /// Fields the sandbox does not model, kept from `/_sim/orders` and served verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One line of a refund stock-in (`details_list[]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Detail {
    pub rec_id: String,
    pub stockin_id: String,
    pub src_order_detail_id: String,
    pub org_stockin_detail_id: String,
    pub src_order_type: String,
    pub spec_id: String,
    pub spec_no: String,
    pub spec_name: String,
    pub spec_code: String,
    pub goods_no: String,
    pub goods_name: String,
    pub barcode: String,
    pub brand_no: String,
    pub brand_name: String,
    pub prop2: String,
    pub goods_unit: String,
    pub base_unit_id: String,
    pub unit_id: String,
    pub unit_ratio: String,
    pub goods_count: String,
    pub num: String,
    pub num2: String,
    pub expect_num: String,
    pub right_num: String,
    pub adjust_num: String,
    pub src_price: String,
    pub tax_price: String,
    pub tax: String,
    pub tax_amount: String,
    pub discount: String,
    pub cost_price: String,
    pub cost_price2: String,
    pub total_cost: String,
    pub stockin_price: String,
    pub right_price: String,
    pub adjust_price: String,
    pub right_cost: String,
    pub actual_refund_amount: String,
    pub share_post_cost: String,
    pub share_post_total: String,
    pub batch_id: String,
    pub batch_no: String,
    pub batch_remark: String,
    pub production_date: String,
    pub expire_date: String,
    pub validity_days: String,
    pub position_id: String,
    pub position_no: String,
    pub defect: i64,
    pub stock_type: i64,
    pub oid: String,
    pub tid: String,
    pub platform_id: String,
    pub remark: String,
    pub created: String,
    pub modified: String,
    /// Fields the sandbox does not model, kept from `/_sim/orders` and served verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn status_done() -> i64 {
    STATUS_DONE
}

impl Order {
    /// `modified` as a wall-clock time; `None` if someone stored garbage (inserts are checked).
    pub fn modified_at(&self) -> Option<NaiveDateTime> {
        parse_wall_clock(&self.modified)
    }

    /// Set `modified` on the order and every line, as WDT does when a stock-in is edited.
    pub fn touch(&mut self, modified: NaiveDateTime) {
        let text = modified.format(WALL_CLOCK).to_string();
        for detail in &mut self.details_list {
            detail.modified = text.clone();
        }
        self.modified = text;
    }
}

/// Parse `yyyy-MM-dd HH:mm:ss` strictly (Asia/Shanghai wall-clock time, no zone).
pub fn parse_wall_clock(text: &str) -> Option<NaiveDateTime> {
    if text.len() != 19 {
        return None;
    }
    NaiveDateTime::parse_from_str(text, WALL_CLOCK).ok()
}

/// An amount in units of 0.0001 yuan (or 0.0001 of a piece) as WDT prints it: `"59.9000"`.
pub fn decimal4(units: i64) -> String {
    let sign = if units < 0 { "-" } else { "" };
    let units = units.unsigned_abs();
    format!("{sign}{}.{:04}", units / 10_000, units % 10_000)
}

/// Units of 0.0001 per fen (0.01 yuan).
const PER_FEN: i64 = 100;
/// Units of 0.0001 per whole piece.
const PER_PIECE: i64 = 10_000;

/// How many generated orders get an unknown SKU or a status other than 80.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shares {
    /// Share of orders with at least one SKU from [`catalog::unknown_skus`].
    pub unknown_sku: f64,
    /// Share of orders in status 10/20/30/60, which the default query does not return.
    pub other_status: f64,
}

struct Customer {
    number: String,
    name: String,
    /// Digits that make the customer's platform nickname.
    handle: u64,
}

struct Carrier {
    id: &'static str,
    code: &'static str,
    name: &'static str,
}

const CARRIERS: &[Carrier] = &[
    Carrier {
        id: "1",
        code: "SF",
        name: "顺丰速运",
    },
    Carrier {
        id: "2",
        code: "ZTO",
        name: "中通快递",
    },
    Carrier {
        id: "3",
        code: "YTO",
        name: "圆通速递",
    },
    Carrier {
        id: "4",
        code: "JTSD",
        name: "极兔速递",
    },
    Carrier {
        id: "5",
        code: "YUNDA",
        name: "韵达快递",
    },
];

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "林", "高", "罗",
];
const GIVEN_NAMES: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明",
    "超", "秀英", "霞", "平", "刚", "桂英", "晨", "宇", "欣怡", "子涵", "浩然", "梓萱", "俊杰",
    "雨桐",
];
/// Warehouse staff: `(operator id, name)`.
const STAFF: &[(&str, &str)] = &[
    ("12", "王磊"),
    ("15", "李静"),
    ("21", "张伟"),
    ("23", "刘洋"),
    ("31", "陈晨"),
    ("34", "赵敏"),
];
const REFUND_REASONS: &[&str] = &[
    "七天无理由退货",
    "尺码不合适",
    "质量问题",
    "发错货",
    "颜色与描述不符",
    "不想要了",
];
const ORDER_REMARKS: &[&str] = &[
    "部分残次",
    "外包装破损",
    "按原价退款",
    "已联系客户",
    "赠品未退回",
];

/// What is decided about an order before it gets numbers.
struct Plan {
    created: NaiveDateTime,
    /// Check and stock-in time; `None` while the order is not completed.
    stocked: Option<NaiveDateTime>,
    modified: NaiveDateTime,
    status: i64,
    unknown_sku: bool,
}

/// The generator: a seeded stream plus the counters that keep numbers unique across batches.
pub struct Generator {
    rng: ChaCha8Rng,
    /// The next serial; every id of an order is derived from it, so ids grow with creation.
    serial: u64,
    /// The last sequence number used per creation day, for `RK`/`RT`/`TK` numbers.
    day_sequences: BTreeMap<NaiveDate, u32>,
    customers: Vec<Customer>,
    skus: Vec<Sku>,
    unknown_skus: Vec<Sku>,
}

/// The stream of the data generator (faults use other streams of the same seed).
const GENERATOR_STREAM: u64 = 0x5744_5444_4154_4131;

impl Generator {
    pub fn new(seed: u64) -> Generator {
        let mut rng = stream(seed, GENERATOR_STREAM);
        let customers = (0..150)
            .map(|index| Customer {
                number: format!("KH{:06}", 100 + index * 7 + below(&mut rng, 7)),
                name: format!(
                    "{}{}",
                    pick(&mut rng, SURNAMES),
                    pick(&mut rng, GIVEN_NAMES)
                ),
                handle: 10_000_000 + below(&mut rng, 90_000_000),
            })
            .collect();
        Generator {
            rng,
            serial: 1,
            day_sequences: BTreeMap::new(),
            customers,
            skus: catalog::skus(),
            unknown_skus: catalog::unknown_skus(),
        }
    }

    /// The initial data set: `count` orders whose `modified` lies within `days` days up to and
    /// including `until` (Asia/Shanghai wall-clock time), numbered in creation order.
    pub fn initial(
        &mut self,
        count: usize,
        days: u32,
        until: NaiveDateTime,
        shares: Shares,
    ) -> Vec<Order> {
        let span = i64::from(days) * 86_400;
        let modified: Vec<NaiveDateTime> = (0..count)
            .map(|_| until - Duration::seconds(between(&mut self.rng, 0, span)))
            .collect();
        self.batch(&modified, shares, &|_| false)
    }

    /// `count` new orders modified at `now`; `taken` says which order numbers already exist.
    pub fn fresh(
        &mut self,
        count: usize,
        now: NaiveDateTime,
        shares: Shares,
        taken: &dyn Fn(&str) -> bool,
    ) -> Vec<Order> {
        self.batch(&vec![now; count], shares, taken)
    }

    fn batch(
        &mut self,
        modified: &[NaiveDateTime],
        shares: Shares,
        taken: &dyn Fn(&str) -> bool,
    ) -> Vec<Order> {
        let count = modified.len();
        // Exact counts rather than coin flips, so a sync's expected losses are predictable:
        // the first slots of a shuffled order get another status, the next ones an unknown
        // SKU. The two sets are disjoint, so every unknown-SKU order is visible by default.
        let other_status = share_count(count, shares.other_status);
        let unknown = share_count(count, shares.unknown_sku).min(count - other_status);
        let mut slots: Vec<usize> = (0..count).collect();
        shuffle(&mut self.rng, &mut slots);
        let mut plans: Vec<Plan> = modified
            .iter()
            .map(|&modified| Plan {
                created: modified,
                stocked: None,
                modified,
                status: STATUS_DONE,
                unknown_sku: false,
            })
            .collect();
        for (rank, &slot) in slots.iter().enumerate() {
            if rank < other_status {
                plans[slot].status = *pick(&mut self.rng, &STATUSES[..4]);
            } else if rank < other_status + unknown {
                plans[slot].unknown_sku = true;
            }
        }
        for plan in &mut plans {
            if plan.status == STATUS_DONE {
                // Checked a little before the last modification, often at the same second.
                let lag = if chance(&mut self.rng, 0.3) {
                    0
                } else {
                    between(&mut self.rng, 1, 900)
                };
                let stocked = plan.modified - Duration::seconds(lag);
                plan.stocked = Some(stocked);
                plan.created = stocked - Duration::seconds(between(&mut self.rng, 600, 3 * 86_400));
            } else {
                plan.created =
                    plan.modified - Duration::seconds(between(&mut self.rng, 0, 3 * 86_400));
            }
        }
        // Numbers follow creation order, as in the ERP.
        plans.sort_by_key(|plan| plan.created);
        plans
            .into_iter()
            .map(|plan| self.build(plan, taken))
            .collect()
    }

    /// A fresh `stockin_id`, for orders inserted without one.
    pub fn next_stockin_id(&mut self) -> String {
        let serial = self.serial;
        self.serial += 1;
        stockin_id_of(serial)
    }

    fn next_number(&mut self, day: NaiveDate, taken: &dyn Fn(&str) -> bool) -> (String, u32) {
        let stem = day.format("%y%m%d").to_string();
        let sequence = self.day_sequences.entry(day).or_insert(0);
        loop {
            *sequence += 1;
            if !taken(&format!("RK{stem}{:04}", sequence)) {
                return (stem, *sequence);
            }
        }
    }

    fn build(&mut self, plan: Plan, taken: &dyn Fn(&str) -> bool) -> Order {
        let serial = self.serial;
        self.serial += 1;
        let (stem, sequence) = self.next_number(plan.created.date(), taken);
        let rng = &mut self.rng;
        let stockin_id = stockin_id_of(serial);
        let refund_id = (2_759_192_915_048_661_000 + serial * 5).to_string();
        let order_no = format!("RK{stem}{sequence:04}");
        let trade_day = plan.created - Duration::days(between(rng, 2, 20));
        let trade_no = format!("JY{}{:05}", trade_day.format("%y%m%d"), below(rng, 100_000));

        let shop: &Shop = pick(rng, catalog::SHOPS);
        let warehouse: &Warehouse = &catalog::WAREHOUSES[weighted(rng, &[20, 15, 50, 15])];
        let customer = &self.customers[below(rng, self.customers.len() as u64) as usize];
        let offline = shop.platform_id == "0";
        let nick = if offline {
            String::new()
        } else {
            let prefix = match shop.platform_id {
                "1" => "tb",
                "3" => "jd_",
                "32" => "pdd",
                "69" => "dy",
                _ => "vip",
            };
            format!("{prefix}{}", customer.handle)
        };

        // Logistics: none for the shop counter; online returns mostly carry a tracking number,
        // and like the Y-edition example some have it without a carrier id.
        let (logistics_id, logistics_type, logistics_no, logistics_name, logistics_code) =
            if offline || chance(rng, 0.05) {
                (
                    None,
                    "0".to_string(),
                    String::new(),
                    String::new(),
                    String::new(),
                )
            } else {
                let carrier = pick(rng, CARRIERS);
                let tracking = match carrier.code {
                    "SF" => format!("SF{:013}", below(rng, 10_000_000_000_000)),
                    "ZTO" => format!("7{:014}", below(rng, 100_000_000_000_000)),
                    "YTO" => format!("YT{:013}", below(rng, 10_000_000_000_000)),
                    "JTSD" => format!("JT{:013}", below(rng, 10_000_000_000_000)),
                    _ => format!("43{:011}", below(rng, 100_000_000_000)),
                };
                let id = if chance(rng, 0.2) {
                    None
                } else {
                    Some(carrier.id.to_string())
                };
                (
                    id,
                    carrier.id.to_string(),
                    tracking.clone(),
                    carrier.name.to_string(),
                    tracking,
                )
            };

        // Lines: 1–4 distinct SKUs; an unknown-SKU order swaps one of them for an unknown one.
        let line_count = 1 + weighted(rng, &[55, 25, 12, 8]);
        let mut sku_indexes: Vec<usize> = (0..self.skus.len()).collect();
        shuffle(rng, &mut sku_indexes);
        let mut skus: Vec<&Sku> = sku_indexes[..line_count]
            .iter()
            .map(|&index| &self.skus[index])
            .collect();
        if plan.unknown_sku {
            let line = below(rng, line_count as u64) as usize;
            skus[line] = pick(rng, &self.unknown_skus);
        }
        let taxed = chance(rng, 0.6);
        let tax = if taxed { "0.1300" } else { "0.0000" };
        let tid_base = if offline {
            0
        } else {
            1_000_000_000_000_000 + below(rng, 8_000_000_000_000_000)
        };

        let created = plan.created.format(WALL_CLOCK).to_string();
        let modified = plan.modified.format(WALL_CLOCK).to_string();
        let stocked = plan
            .stocked
            .map(|at| at.format(WALL_CLOCK).to_string())
            .unwrap_or_else(|| NO_DATE.to_string());

        let mut goods_units = 0;
        let mut total_units = 0;
        let mut details = Vec::with_capacity(line_count);
        for (line, sku) in skus.iter().enumerate() {
            let quantity = 1 + weighted(rng, &[70, 22, 8]) as i64;
            let price = sku.price_fen * PER_FEN;
            let gross = price * quantity;
            let discount = if chance(rng, 0.3) {
                // A whole number of fen, so amounts stay exact at two decimals.
                sku.price_fen * quantity * between(rng, 1, 4) * 5 / 100 * PER_FEN
            } else {
                0
            };
            let amount = gross - discount;
            // Half-up to four decimals; `price × quantity` may then differ from `amount` by
            // rounding, as it does in the ERP.
            let unit_price = (2 * amount + quantity) / (2 * quantity);
            let cost = sku.price_fen * between(rng, 40, 60) / 100 * PER_FEN;
            goods_units += gross;
            total_units += amount;

            let defect = i64::from(chance(rng, 0.08));
            let (batch_id, batch_no, production_date, expire_date, validity_days) =
                if chance(rng, 0.25) {
                    let produced = plan.created.date() - Duration::days(between(rng, 30, 400));
                    (
                        (880_000 + below(rng, 100_000)).to_string(),
                        format!("B{}", produced.format("%Y%m%d")),
                        format!("{} 00:00:00", produced.format("%Y-%m-%d")),
                        format!(
                            "{} 00:00:00",
                            (produced + Duration::days(730)).format("%Y-%m-%d")
                        ),
                        "730".to_string(),
                    )
                } else {
                    (
                        "0".to_string(),
                        String::new(),
                        NO_DATE.to_string(),
                        NO_DATE.to_string(),
                        "0".to_string(),
                    )
                };
            let (position_id, position_no) = if chance(rng, 0.5) {
                (
                    (5_000 + below(rng, 1_000)).to_string(),
                    format!(
                        "{}-{:02}-{:02}",
                        pick(rng, &["A", "B", "C"]),
                        between(rng, 1, 20),
                        between(rng, 1, 10)
                    ),
                )
            } else {
                ("0".to_string(), String::new())
            };
            let base_unit_id = catalog::UNITS
                .iter()
                .position(|unit| unit.wdt_name == sku.unit)
                .map(|index| (index + 1).to_string())
                .unwrap_or_default();
            let (oid, tid) = if offline {
                (String::new(), String::new())
            } else {
                (
                    (tid_base + line as u64 + 1).to_string(),
                    tid_base.to_string(),
                )
            };
            let quantity_text = decimal4(quantity * PER_PIECE);
            details.push(Detail {
                rec_id: (2_759_193_026_864_611_000 + serial * 8 + line as u64).to_string(),
                stockin_id: stockin_id.clone(),
                src_order_detail_id: (2_759_192_915_098_992_000 + serial * 8 + line as u64)
                    .to_string(),
                org_stockin_detail_id: "0".to_string(),
                src_order_type: "1".to_string(),
                spec_id: sku.spec_id.clone(),
                spec_no: sku.spec_no.clone(),
                spec_name: sku.spec_name.clone(),
                spec_code: sku.spec_code.clone(),
                goods_no: sku.goods_no.clone(),
                goods_name: sku.goods_name.clone(),
                barcode: sku.barcode.clone(),
                brand_no: sku.brand_no.to_string(),
                brand_name: sku.brand_name.to_string(),
                prop2: String::new(),
                goods_unit: sku.unit.to_string(),
                base_unit_id,
                unit_id: "0".to_string(),
                unit_ratio: decimal4(PER_PIECE),
                goods_count: quantity_text.clone(),
                num: quantity_text.clone(),
                num2: quantity_text.clone(),
                expect_num: quantity_text.clone(),
                right_num: quantity_text,
                adjust_num: decimal4(0),
                src_price: decimal4(price),
                tax_price: decimal4(unit_price),
                tax: tax.to_string(),
                tax_amount: decimal4(amount),
                discount: decimal4(discount),
                cost_price: decimal4(cost),
                cost_price2: decimal4(cost),
                total_cost: decimal4(cost * quantity),
                stockin_price: decimal4(unit_price),
                right_price: decimal4(unit_price),
                adjust_price: decimal4(0),
                right_cost: decimal4(amount),
                actual_refund_amount: decimal4(amount),
                share_post_cost: decimal4(0),
                share_post_total: decimal4(0),
                batch_id,
                batch_no,
                batch_remark: String::new(),
                production_date,
                expire_date,
                validity_days,
                position_id,
                position_no,
                defect,
                stock_type: 1 + defect,
                oid,
                tid,
                platform_id: shop.platform_id.to_string(),
                remark: if defect == 1 {
                    "1件残次".to_string()
                } else {
                    String::new()
                },
                created: created.clone(),
                modified: modified.clone(),
                extra: Map::new(),
            });
        }

        let post_fee = if !offline && chance(rng, 0.15) {
            *pick(rng, &[600, 800, 1_000]) * PER_FEN
        } else {
            0
        };
        let reason = below(rng, REFUND_REASONS.len() as u64) as usize;
        let flagged = chance(rng, 0.1);
        let (operator_id, operator) = *pick(rng, STAFF);
        let (checker_id, checker) = *pick(rng, STAFF);
        let refund_operator = pick(rng, STAFF).1;
        let done = plan.status == STATUS_DONE;
        let remark = if chance(rng, 0.2) {
            pick(rng, ORDER_REMARKS).to_string()
        } else {
            String::new()
        };
        Order {
            stockin_id,
            order_no: order_no.clone(),
            stockin_no: order_no,
            status: plan.status,
            process_status: if done { 90 } else { plan.status },
            refund_id: refund_id.clone(),
            refund_no: format!("TK{stem}{sequence:04}"),
            src_order_no: format!("RT{stem}{sequence:04}"),
            src_order_id: refund_id,
            trade_no,
            trade_type: "1".to_string(),
            order_type: "3".to_string(),
            order_type_name: "退货入库".to_string(),
            shop_id: shop.shop_id.to_string(),
            shop_no: shop.shop_no.to_string(),
            shop_name: shop.shop_name.to_string(),
            shop_remark: String::new(),
            platform_id: shop.platform_id.to_string(),
            warehouse_id: warehouse.warehouse_id.to_string(),
            warehouse_no: warehouse.warehouse_no.to_string(),
            warehouse_name: warehouse.warehouse_name.to_string(),
            logistics_id,
            logistics_type,
            logistics_no,
            logistics_name,
            logistics_code,
            created_time: created,
            check_time: stocked.clone(),
            stockin_time: stocked,
            modified,
            creator_name: if offline {
                operator.to_string()
            } else {
                "系统".to_string()
            },
            stockin_operator_name: if done {
                operator.to_string()
            } else {
                String::new()
            },
            check_operator_name: if done {
                checker.to_string()
            } else {
                String::new()
            },
            refund_operator_name: refund_operator.to_string(),
            operator_id: operator_id.to_string(),
            check_operator_id: if done {
                checker_id.to_string()
            } else {
                "0".to_string()
            },
            remark,
            refund_remark: REFUND_REASONS[reason].to_string(),
            stockin_reason: REFUND_REASONS[reason].to_string(),
            reason_id: (reason + 1).to_string(),
            buyer_nick: nick.clone(),
            nick_name: nick,
            customer_no: customer.number.clone(),
            customer_name: customer.name.clone(),
            goods_amount: decimal4(goods_units),
            total_price: decimal4(total_units),
            post_fee: decimal4(post_fee),
            other_fee: decimal4(0),
            actual_refund_amount: decimal4(total_units + post_fee),
            post_share_type: "0".to_string(),
            goods_type_count: details.len().to_string(),
            note_count: "0".to_string(),
            flag_id: if flagged { "3" } else { "0" }.to_string(),
            flag_name: if flagged { "加急处理" } else { "" }.to_string(),
            fa_status: "0".to_string(),
            wms_outer_no: String::new(),
            wms_status: "0".to_string(),
            wms_result: String::new(),
            trans_from_wt: 0,
            details_list: details,
            extra: Map::new(),
        }
    }
}

/// The `stockin_id` of the order with this serial: 19-digit ids that grow with creation.
fn stockin_id_of(serial: u64) -> String {
    (2_759_193_026_822_668_000 + serial * 7).to_string()
}

/// `round(count × share)`, never more than `count`.
fn share_count(count: usize, share: f64) -> usize {
    ((count as f64 * share.clamp(0.0, 1.0)).round() as usize).min(count)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// Every order field of the brief's response table and of spec §8.7.
    pub const ORDER_FIELDS: &[&str] = &[
        "order_no",
        "warehouse_no",
        "warehouse_name",
        "shop_no",
        "shop_remark",
        "src_order_no",
        "process_status",
        "status",
        "stockin_time",
        "created_time",
        "trade_no",
        "trade_type",
        "order_type",
        "order_type_name",
        "goods_amount",
        "actual_refund_amount",
        "total_price",
        "post_fee",
        "other_fee",
        "logistics_type",
        "logistics_no",
        "logistics_name",
        "logistics_code",
        "refund_no",
        "check_time",
        "customer_no",
        "customer_name",
        "nick_name",
        "shop_name",
        "stockin_reason",
        "flag_name",
        "platform_id",
        "stockin_operator_name",
        "check_operator_name",
        "refund_remark",
        "refund_operator_name",
        "stockin_no",
        "wms_outer_no",
        "wms_status",
        "wms_result",
        "warehouse_id",
        "src_order_id",
        "reason_id",
        "fa_status",
        "logistics_id",
        "post_share_type",
        "operator_id",
        "check_operator_id",
        "goods_type_count",
        "note_count",
        "flag_id",
        "details_list",
        "stockin_id",
        "refund_id",
        "shop_id",
        "modified",
        "creator_name",
        "remark",
        "buyer_nick",
        "trans_from_wt",
    ];

    /// Every line field of the brief's response table and of spec §8.7.
    pub const DETAIL_FIELDS: &[&str] = &[
        "stockin_id",
        "remark",
        "goods_count",
        "discount",
        "tax_amount",
        "adjust_price",
        "right_price",
        "tid",
        "src_order_type",
        "adjust_num",
        "modified",
        "rec_id",
        "src_order_detail_id",
        "spec_no",
        "cost_price",
        "production_date",
        "validity_days",
        "expire_date",
        "src_price",
        "tax_price",
        "tax",
        "total_cost",
        "right_num",
        "num",
        "num2",
        "right_cost",
        "brand_no",
        "brand_name",
        "goods_name",
        "prop2",
        "goods_no",
        "spec_name",
        "spec_code",
        "goods_unit",
        "batch_no",
        "batch_remark",
        "position_no",
        "oid",
        "org_stockin_detail_id",
        "spec_id",
        "batch_id",
        "position_id",
        "unit_id",
        "base_unit_id",
        "unit_ratio",
        "expect_num",
        "cost_price2",
        "share_post_cost",
        "share_post_total",
        "created",
        "barcode",
        "stockin_price",
        "actual_refund_amount",
        "defect",
        "stock_type",
        "platform_id",
    ];

    const SHARES: Shares = Shares {
        unknown_sku: 0.05,
        other_status: 0.1,
    };

    fn until() -> NaiveDateTime {
        parse_wall_clock("2024-06-01 12:00:00").unwrap()
    }

    fn orders(seed: u64, count: usize) -> Vec<Order> {
        Generator::new(seed).initial(count, 14, until(), SHARES)
    }

    fn amount(text: &str) -> i64 {
        let (whole, fraction) = text.split_once('.').unwrap();
        assert_eq!(fraction.len(), 4, "{text}");
        whole.parse::<i64>().unwrap() * 10_000 + fraction.parse::<i64>().unwrap()
    }

    #[test]
    fn decimals_have_four_places() {
        for (units, text) in [
            (0, "0.0000"),
            (599_000, "59.9000"),
            (20_000, "2.0000"),
            (1, "0.0001"),
            (-15_000, "-1.5000"),
        ] {
            assert_eq!(decimal4(units), text);
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_orders() {
        assert_eq!(orders(9, 50), orders(9, 50));
        assert_ne!(orders(9, 50), orders(10, 50));
    }

    #[test]
    fn every_documented_field_is_present_with_its_type() {
        for order in orders(1, 60) {
            let json = serde_json::to_value(&order).unwrap();
            for field in ORDER_FIELDS {
                assert!(json.get(field).is_some(), "order lacks {field}");
            }
            for field in ["status", "process_status", "trans_from_wt"] {
                assert!(json[field].is_i64(), "{field} is {}", json[field]);
            }
            assert!(json["logistics_id"].is_null() || json["logistics_id"].is_string());
            for detail in json["details_list"].as_array().unwrap() {
                for field in DETAIL_FIELDS {
                    assert!(detail.get(field).is_some(), "line lacks {field}");
                }
                assert!(detail["defect"].is_i64() && detail["stock_type"].is_i64());
                assert!(detail["num"].is_string() && detail["rec_id"].is_string());
            }
        }
    }

    #[test]
    fn shares_are_exact_and_unknown_skus_only_in_visible_orders() {
        let all = orders(3, 200);
        let unknown: HashSet<String> = catalog::unknown_skus()
            .into_iter()
            .map(|s| s.spec_no)
            .collect();
        let with_unknown: Vec<&Order> = all
            .iter()
            .filter(|order| {
                order
                    .details_list
                    .iter()
                    .any(|d| unknown.contains(&d.spec_no))
            })
            .collect();
        assert_eq!(with_unknown.len(), 10);
        assert!(with_unknown.iter().all(|order| order.status == STATUS_DONE));
        assert_eq!(all.iter().filter(|o| o.status != STATUS_DONE).count(), 20);
    }

    #[test]
    fn orders_refer_only_to_catalogue_master_data() {
        let known: HashSet<String> = catalog::skus()
            .into_iter()
            .chain(catalog::unknown_skus())
            .map(|sku| sku.spec_no)
            .collect();
        for order in orders(4, 100) {
            let shop = catalog::shop(&order.shop_no).expect("catalogue shop");
            assert_eq!(
                (shop.shop_id, shop.shop_name),
                (&*order.shop_id, &*order.shop_name)
            );
            assert!(catalog::warehouse(&order.warehouse_no).is_some());
            assert!((1..=4).contains(&order.details_list.len()));
            for detail in &order.details_list {
                assert!(known.contains(&detail.spec_no), "{}", detail.spec_no);
                assert!(catalog::unit_number(&detail.goods_unit).is_some());
            }
        }
    }

    #[test]
    fn amounts_add_up_exactly() {
        for order in orders(5, 100) {
            let lines: i64 = order
                .details_list
                .iter()
                .map(|d| amount(&d.actual_refund_amount))
                .sum();
            let gross: i64 = order
                .details_list
                .iter()
                .map(|d| amount(&d.src_price) * amount(&d.num) / 10_000)
                .sum();
            assert_eq!(amount(&order.total_price), lines);
            assert_eq!(amount(&order.goods_amount), gross);
            assert_eq!(
                amount(&order.actual_refund_amount),
                lines + amount(&order.post_fee)
            );
            for detail in &order.details_list {
                assert!(["0.1300", "0.0000"].contains(&detail.tax.as_str()));
                assert_eq!(detail.tax_price, detail.stockin_price);
                let line = amount(&detail.src_price) * amount(&detail.num) / 10_000
                    - amount(&detail.discount);
                assert_eq!(amount(&detail.actual_refund_amount), line);
            }
        }
    }

    #[test]
    fn times_and_numbers_are_consistent() {
        let all = orders(6, 200);
        let earliest = until() - Duration::days(14);
        let mut numbers = HashSet::new();
        for order in &all {
            let modified = order.modified_at().unwrap();
            assert!(
                modified <= until() && modified >= earliest,
                "{}",
                order.modified
            );
            assert!(order.created_time <= order.modified);
            if order.status == STATUS_DONE {
                assert!(order.check_time <= order.modified);
                assert_eq!(order.process_status, 90);
            } else {
                assert_eq!(order.check_time, NO_DATE);
            }
            assert!(order.order_no.starts_with("RK") && order.order_no.len() == 12);
            assert_eq!(order.src_order_no, order.order_no.replacen("RK", "RT", 1));
            assert_eq!(order.refund_no, order.order_no.replacen("RK", "TK", 1));
            assert!(order.trade_no.starts_with("JY"));
            assert!(order.customer_no.starts_with("KH") && order.customer_no.len() == 8);
            assert!(numbers.insert(order.order_no.clone()), "{}", order.order_no);
            assert!(
                order
                    .details_list
                    .iter()
                    .all(|d| d.modified == order.modified)
            );
        }
    }

    #[test]
    fn fresh_orders_continue_the_numbering() {
        let mut generator = Generator::new(2);
        let first = generator.initial(30, 1, until(), SHARES);
        let existing: HashSet<String> = first.iter().map(|o| o.order_no.clone()).collect();
        let fresh = generator.fresh(5, until(), SHARES, &|no| existing.contains(no));
        assert_eq!(fresh.len(), 5);
        for order in &fresh {
            assert!(!existing.contains(&order.order_no), "{}", order.order_no);
            assert_eq!(order.modified, "2024-06-01 12:00:00");
        }
        let ids: HashSet<&String> = first.iter().chain(&fresh).map(|o| &o.stockin_id).collect();
        assert_eq!(ids.len(), 35);
    }

    #[test]
    fn unknown_fields_survive_a_round_trip_and_missing_ones_default() {
        let order: Order = serde_json::from_str(
            r#"{"order_no":"RK1","status":80,"logistics_id":null,"details_list":[{"spec_no":"X","odd":true}]}"#,
        )
        .unwrap();
        assert_eq!(order.logistics_id, None);
        let json = serde_json::to_value(&order).unwrap();
        assert_eq!(json["details_list"][0]["odd"], true);
        assert_eq!(json["details_list"][0]["num"], "");
        assert_eq!(json["remark"], "");
        // Modelled fields keep their types: a string status is refused, not coerced.
        assert!(serde_json::from_str::<Order>(r#"{"status":"80"}"#).is_err());
    }
}
