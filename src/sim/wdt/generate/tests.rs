//! The generator's properties: determinism, exact shares and amounts, consistent numbers,
//! and every documented field present with its type.

use std::collections::HashSet;

use super::*;
use crate::sim::wdt::data::parse_wall_clock;

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
            let line =
                amount(&detail.src_price) * amount(&detail.num) / 10_000 - amount(&detail.discount);
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
