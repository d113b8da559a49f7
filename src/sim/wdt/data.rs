//! The refund stock-in records the WDT sandbox serves, as types, and the value formats they
//! share (wall-clock times, four-decimal amounts). The generator that invents them is
//! [`generate`](super::generate).
//!
//! A record carries every field of the brief's response table and of spec §8.7, always
//! present (empty string when there is no value), typed as WDT types them: ids, money and
//! quantities are strings (`"2.0000"`, `"59.9000"`, four decimals), `status`,
//! `process_status`, `defect`, `stock_type` and `trans_from_wt` are integers, `logistics_id`
//! may be null, and "no date" is `9999-12-01 00:00:00`. Fields the sandbox does not model
//! (inserted through `/_sim/orders`) are kept in `extra` and served as they came.
//!
//! Amounts are integer units of 0.0001 yuan, printed by [`decimal4`], never floating point.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
///
/// Every query parses the `modified` of every order, so the usual spelling is read digit by
/// digit (chrono's format parser cost the sandbox tens of milliseconds a page at 20,000
/// orders, on top of its configured latency); anything else goes to chrono, which decides.
pub fn parse_wall_clock(text: &str) -> Option<NaiveDateTime> {
    if text.len() != 19 {
        return None;
    }
    digits_of(text.as_bytes()).or_else(|| NaiveDateTime::parse_from_str(text, WALL_CLOCK).ok())
}

/// `yyyy-MM-dd HH:mm:ss` with every field in range, or `None` (then chrono judges the text).
fn digits_of(text: &[u8]) -> Option<NaiveDateTime> {
    let number = |from: usize, to: usize| {
        text[from..to].iter().try_fold(0u32, |n, b| {
            b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
        })
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b' '), (13, b':'), (16, b':')];
    if separators.iter().any(|&(at, sep)| text[at] != sep) {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(
        i32::try_from(number(0, 4)?).ok()?,
        number(5, 7)?,
        number(8, 10)?,
    )?;
    date.and_hms_opt(number(11, 13)?, number(14, 16)?, number(17, 19)?)
}

/// An amount in units of 0.0001 yuan (or 0.0001 of a piece) as WDT prints it: `"59.9000"`.
pub fn decimal4(units: i64) -> String {
    let sign = if units < 0 { "-" } else { "" };
    let units = units.unsigned_abs();
    format!("{sign}{}.{:04}", units / 10_000, units % 10_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_clock_times_parse_as_chrono_parses_them() {
        for text in [
            "2024-01-01 10:00:00",
            "2024-02-29 23:59:59",
            "2023-02-29 10:00:00",
            "2024-13-01 10:00:00",
            "2024-01-01 24:00:00",
            "2024-01-01 23:59:60",
            "2024-01-01T10:00:00",
            "2024/01/01 10:00:00",
            "2024-1-01 10:00:00 ",
            "+024-01-01 10:00:00",
            "2024-01-01 10:00",
            "",
        ] {
            let chrono = (text.len() == 19)
                .then(|| NaiveDateTime::parse_from_str(text, WALL_CLOCK).ok())
                .flatten();
            assert_eq!(parse_wall_clock(text), chrono, "{text:?}");
        }
        assert!(parse_wall_clock("2024-01-01 10:00:00").is_some());
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
