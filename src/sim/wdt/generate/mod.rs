//! The deterministic generator of the WDT sandbox's refund stock-ins: a seeded stream that
//! invents [`Order`]s from the shared [`catalog`] and the [`vocabulary`] lists, numbered in
//! creation order and unique across batches.
//!
//! It is a pure function of its seed, its settings and the instant it is anchored to: it does
//! no IO and reads no clock. Money is computed in integer units of 0.0001 yuan, never in
//! floating point. Every draw happens in a fixed order (order head, logistics, lines, then
//! postage and staff), so a seed always gives the same orders; the record types themselves
//! live in [`data`](super::data).
//!
//! [`vocabulary`]: super::vocabulary

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate, NaiveDateTime};
use rand_chacha::ChaCha8Rng;
use serde_json::Map;

use crate::sim::catalog::{self, Shop, Sku, Warehouse};
use crate::sim::wdt::data::{Detail, NO_DATE, Order, STATUS_DONE, STATUSES, decimal4};
use crate::sim::wdt::random::{below, between, chance, pick, shuffle, stream, weighted};
use crate::sim::wdt::vocabulary::{
    CARRIERS, GIVEN_NAMES, ORDER_REMARKS, REFUND_REASONS, STAFF, SURNAMES,
};
use crate::time::WALL_CLOCK;

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
        let logistics = draw_logistics(rng, offline);

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

        let context = LineContext {
            serial,
            stockin_id: &stockin_id,
            created_day: plan.created.date(),
            offline,
            tid_base,
            tax,
            platform_id: shop.platform_id,
            created: &created,
            modified: &modified,
        };
        let mut goods_units = 0;
        let mut total_units = 0;
        let mut details = Vec::with_capacity(line_count);
        for (line, sku) in skus.iter().enumerate() {
            let drawn = draw_line(rng, sku, line, &context);
            goods_units += drawn.gross;
            total_units += drawn.amount;
            details.push(drawn.detail);
        }
        let head = Head {
            stockin_id,
            order_no,
            stem,
            sequence,
            refund_id,
            trade_no,
            shop,
            warehouse,
            customer,
            offline,
            nick,
            logistics,
            created,
            modified,
            stocked,
        };
        finish(rng, &plan, head, details, (goods_units, total_units))
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

/// An order's shipment back: carrier id, type, tracking number, carrier name and code.
struct Logistics {
    id: Option<String>,
    kind: String,
    number: String,
    name: String,
    code: String,
}

/// What every line of one order shares.
struct LineContext<'a> {
    serial: u64,
    stockin_id: &'a str,
    /// The day the order was created; batches are produced before it.
    created_day: NaiveDate,
    offline: bool,
    tid_base: u64,
    tax: &'static str,
    platform_id: &'static str,
    created: &'a str,
    modified: &'a str,
}

/// One generated line and what it adds to the order's totals.
struct Line {
    detail: Detail,
    /// `price × quantity` before the discount.
    gross: i64,
    amount: i64,
}

/// What is drawn about an order before its lines, handed to [`finish`].
struct Head<'a> {
    stockin_id: String,
    order_no: String,
    stem: String,
    sequence: u32,
    refund_id: String,
    trade_no: String,
    shop: &'static Shop,
    warehouse: &'static Warehouse,
    customer: &'a Customer,
    offline: bool,
    nick: String,
    logistics: Logistics,
    created: String,
    modified: String,
    stocked: String,
}

/// Logistics: none for the shop counter; online returns mostly carry a tracking number, and
/// like the Y-edition example some have it without a carrier id.
fn draw_logistics(rng: &mut ChaCha8Rng, offline: bool) -> Logistics {
    if offline || chance(rng, 0.05) {
        Logistics {
            id: None,
            kind: "0".to_string(),
            number: String::new(),
            name: String::new(),
            code: String::new(),
        }
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
        Logistics {
            id,
            kind: carrier.id.to_string(),
            number: tracking.clone(),
            name: carrier.name.to_string(),
            code: tracking,
        }
    }
}

/// One line of an order: quantity, price, discount, batch and bin, drawn in this order.
fn draw_line(rng: &mut ChaCha8Rng, sku: &Sku, line: usize, context: &LineContext) -> Line {
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

    let defect = i64::from(chance(rng, 0.08));
    let (batch_id, batch_no, production_date, expire_date, validity_days) =
        draw_batch(rng, context.created_day);
    let (position_id, position_no) = draw_position(rng);
    let base_unit_id = catalog::UNITS
        .iter()
        .position(|unit| unit.wdt_name == sku.unit)
        .map(|index| (index + 1).to_string())
        .unwrap_or_default();
    let (oid, tid) = if context.offline {
        (String::new(), String::new())
    } else {
        (
            (context.tid_base + line as u64 + 1).to_string(),
            context.tid_base.to_string(),
        )
    };
    let quantity_text = decimal4(quantity * PER_PIECE);
    let detail = Detail {
        rec_id: (2_759_193_026_864_611_000 + context.serial * 8 + line as u64).to_string(),
        stockin_id: context.stockin_id.to_string(),
        src_order_detail_id: (2_759_192_915_098_992_000 + context.serial * 8 + line as u64)
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
        tax: context.tax.to_string(),
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
        platform_id: context.platform_id.to_string(),
        remark: if defect == 1 {
            "1件残次".to_string()
        } else {
            String::new()
        },
        created: context.created.to_string(),
        modified: context.modified.to_string(),
        extra: Map::new(),
    };
    Line {
        detail,
        gross,
        amount,
    }
}

/// A quarter of lines carry a batch produced before the order:
/// `(batch_id, batch_no, production_date, expire_date, validity_days)`.
fn draw_batch(
    rng: &mut ChaCha8Rng,
    created_day: NaiveDate,
) -> (String, String, String, String, String) {
    if chance(rng, 0.25) {
        let produced = created_day - Duration::days(between(rng, 30, 400));
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
    }
}

/// Half of lines name a bin: `(position_id, position_no)`.
fn draw_position(rng: &mut ChaCha8Rng) -> (String, String) {
    if chance(rng, 0.5) {
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
    }
}

/// The order around its lines: postage, reason, staff and remark are drawn last.
fn finish(
    rng: &mut ChaCha8Rng,
    plan: &Plan,
    head: Head,
    details: Vec<Detail>,
    (goods_units, total_units): (i64, i64),
) -> Order {
    let Head {
        stockin_id,
        order_no,
        stem,
        sequence,
        refund_id,
        trade_no,
        shop,
        warehouse,
        customer,
        offline,
        nick,
        logistics:
            Logistics {
                id: logistics_id,
                kind: logistics_type,
                number: logistics_no,
                name: logistics_name,
                code: logistics_code,
            },
        created,
        modified,
        stocked,
    } = head;
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

#[cfg(test)]
mod tests;
