//! The business side of `stockin_order_query_refund`: validating the query parameters
//! (spec §8.5), selecting orders and cutting a page (spec §8.6).
//!
//! Both the Qimen router and the direct `openapi2` endpoint end here once the caller is
//! authenticated. Selection is evaluated against the current orders on every request — no
//! snapshot, no cursor — so an order whose `modified` changes between two page requests
//! shifts the later pages exactly as on the real service. Pure: no clock, no IO.

use chrono::NaiveDateTime;

use crate::sim::wdt::codes::{self, WdtError};
use crate::sim::wdt::data::{Order, STATUS_DONE, STATUSES, parse_wall_clock};
use crate::sim::wdt::params::{Params, get};

/// The limits of the query, from the sandbox's options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Longest allowed `end_time − start_time`, in days (30 documented).
    pub max_window_days: u32,
    /// Largest `page_size` (100 documented).
    pub max_page_size: u32,
    /// `page_size` when absent (40 documented).
    pub default_page_size: u32,
    /// Clamp an out-of-range `page_size` into range instead of failing [U].
    pub clamp_page_size: bool,
}

impl Default for Rules {
    fn default() -> Rules {
        Rules {
            max_window_days: 30,
            max_page_size: 100,
            default_page_size: 40,
            clamp_page_size: false,
        }
    }
}

/// A validated query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Inclusive bounds on `modified`; absent only when an order number was given.
    pub start: Option<NaiveDateTime>,
    pub end: Option<NaiveDateTime>,
    pub status: i64,
    pub shop_no: Option<String>,
    pub warehouse_no: Option<String>,
    pub stockin_no: Option<String>,
    pub src_order_no: Option<String>,
    pub page_no: usize,
    pub page_size: usize,
}

/// Validate the business parameters; the first failure wins, in the order of spec §8.5.
pub fn parse(params: &Params, rules: &Rules) -> Result<Query, WdtError> {
    let owned = |key: &str| get(params, key).map(str::to_string);
    let stockin_no = owned("stockin_no");
    let src_order_no = owned("src_order_no");
    let start_text = get(params, "start_time");
    let end_text = get(params, "end_time");
    let has_range = start_text.is_some() && end_text.is_some();
    if !has_range && stockin_no.is_none() && src_order_no.is_none() {
        return Err(codes::range_or_number_required());
    }
    // With an order number, a lone bound still narrows the search rather than being ignored.
    let start = parse_bound(start_text, "start_time")?;
    let end = parse_bound(end_text, "end_time")?;
    if let (Some(start), Some(end)) = (start, end) {
        if end < start {
            return Err(codes::end_before_start());
        }
        if (end - start).num_seconds() > i64::from(rules.max_window_days) * 86_400 {
            return Err(codes::window_too_long(rules.max_window_days));
        }
    }
    let page_size = match get(params, "page_size") {
        None => rules.default_page_size as usize,
        Some(text) => {
            let invalid = || codes::invalid_page_size(rules.max_page_size);
            let size: i64 = text.trim().parse().map_err(|_| invalid())?;
            let max = i64::from(rules.max_page_size);
            if rules.clamp_page_size {
                size.clamp(1, max) as usize
            } else if (1..=max).contains(&size) {
                size as usize
            } else {
                return Err(invalid());
            }
        }
    };
    let page_no = match get(params, "page_no") {
        None => 0,
        Some(text) => text
            .trim()
            .parse::<usize>()
            .map_err(|_| codes::invalid_page_no())?,
    };
    let status = match get(params, "status") {
        None => STATUS_DONE,
        Some(text) => text
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|status| STATUSES.contains(status))
            .ok_or_else(codes::invalid_status)?,
    };
    Ok(Query {
        start,
        end,
        status,
        shop_no: owned("shop_no"),
        warehouse_no: owned("warehouse_no"),
        stockin_no,
        src_order_no,
        page_no,
        page_size,
    })
}

fn parse_bound(text: Option<&str>, name: &str) -> Result<Option<NaiveDateTime>, WdtError> {
    text.map(|text| parse_wall_clock(text.trim()).ok_or_else(|| codes::invalid_time(name)))
        .transpose()
}

impl Query {
    /// Whether an order belongs to the result set.
    pub fn matches(&self, order: &Order) -> bool {
        let Some(modified) = order.modified_at() else {
            return false;
        };
        let equal = |filter: &Option<String>, value: &str| {
            filter.as_deref().is_none_or(|wanted| wanted == value)
        };
        self.start.is_none_or(|start| start <= modified)
            && self.end.is_none_or(|end| modified <= end)
            && order.status == self.status
            && equal(&self.shop_no, &order.shop_no)
            && equal(&self.warehouse_no, &order.warehouse_no)
            && equal(&self.stockin_no, &order.order_no)
            && equal(&self.src_order_no, &order.src_order_no)
    }

    /// Index of the first row of the requested page in the sorted result set.
    pub fn offset(&self) -> usize {
        self.page_no.saturating_mul(self.page_size)
    }
}

/// The sort key of the result set: `modified` ascending, then `stockin_id` ascending. Ids are
/// decimal strings, compared as numbers (shorter first, then digit by digit).
pub fn sort_key(order: &Order) -> (Option<NaiveDateTime>, usize, &str) {
    (
        order.modified_at(),
        order.stockin_id.len(),
        order.stockin_id.as_str(),
    )
}

/// Every matching order, sorted as the service returns them.
pub fn select<'a>(orders: impl IntoIterator<Item = &'a Order>, query: &Query) -> Vec<&'a Order> {
    let mut rows: Vec<&Order> = orders
        .into_iter()
        .filter(|order| query.matches(order))
        .collect();
    // The key parses `modified`: computed once per row, not twice per comparison.
    rows.sort_by_cached_key(|order| sort_key(order));
    rows
}

/// One page of a result set.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<'a> {
    /// How many orders match in all.
    pub total: usize,
    /// The index of the page's first row in the result set.
    pub offset: usize,
    pub rows: Vec<&'a Order>,
}

/// Cut the requested page; past the end it is empty, never an error.
pub fn page<'a>(selected: &[&'a Order], query: &Query) -> Page<'a> {
    let offset = query.offset().min(selected.len());
    let end = offset.saturating_add(query.page_size).min(selected.len());
    Page {
        total: selected.len(),
        offset: query.offset(),
        rows: selected[offset..end].to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const WINDOW: [(&str, &str); 2] = [
        ("start_time", "2024-01-01 00:00:00"),
        ("end_time", "2024-01-01 23:59:59"),
    ];

    fn with_window(extra: &[(&str, &str)]) -> Params {
        let mut all = WINDOW.to_vec();
        all.extend_from_slice(extra);
        params(&all)
    }

    #[test]
    fn validation_errors_come_in_the_documented_order() {
        let rules = Rules::default();
        let cases: Vec<(Params, i64)> = vec![
            (params(&[]), 2900),
            (params(&[("start_time", "2024-01-01 00:00:00")]), 2900),
            (params(&[("start_time", ""), ("end_time", "")]), 2900),
            (
                params(&[
                    ("start_time", "2024-01-01"),
                    ("end_time", "2024-01-02 00:00:00"),
                ]),
                2901,
            ),
            (
                params(&[("start_time", "2024-01-01 00:00:00"), ("end_time", "soon")]),
                2901,
            ),
            (
                params(&[
                    ("start_time", "2024-01-02 00:00:00"),
                    ("end_time", "2024-01-01 00:00:00"),
                ]),
                2902,
            ),
            (
                params(&[
                    ("start_time", "2024-01-01 00:00:00"),
                    ("end_time", "2024-01-31 00:00:01"),
                ]),
                2903,
            ),
            (with_window(&[("page_size", "0")]), 2904),
            (with_window(&[("page_size", "101")]), 2904),
            (with_window(&[("page_size", "ten")]), 2904),
            (with_window(&[("page_no", "-1")]), 2905),
            (with_window(&[("page_no", "1.5")]), 2905),
            (with_window(&[("status", "50")]), 2906),
            (with_window(&[("status", "80,10")]), 2906),
            // The first failure wins: a bad page size is reported before a bad status.
            (with_window(&[("page_size", "0"), ("status", "1")]), 2904),
        ];
        for (given, code) in cases {
            assert_eq!(parse(&given, &rules).unwrap_err().code, code, "{given:?}");
        }
    }

    #[test]
    fn defaults_and_accepted_values() {
        let rules = Rules::default();
        let query = parse(&with_window(&[]), &rules).unwrap();
        assert_eq!((query.page_no, query.page_size, query.status), (0, 40, 80));
        // Exactly 30 days is allowed; so is an order number without any window.
        let thirty = params(&[
            ("start_time", "2024-01-01 00:00:00"),
            ("end_time", "2024-01-31 00:00:00"),
        ]);
        assert!(parse(&thirty, &rules).is_ok());
        let by_number = parse(&params(&[("stockin_no", "RK2401010001")]), &rules).unwrap();
        assert_eq!((by_number.start, by_number.end), (None, None));
        assert!(parse(&params(&[("src_order_no", "RT1")]), &rules).is_ok());
        for status in ["10", "20", "30", "60", "80"] {
            assert!(parse(&with_window(&[("status", status)]), &rules).is_ok());
        }
        let query = parse(
            &with_window(&[("page_size", "100"), ("page_no", "7")]),
            &rules,
        )
        .unwrap();
        assert_eq!((query.page_no, query.page_size), (7, 100));
    }

    #[test]
    fn clamping_is_a_switch() {
        let rules = Rules {
            clamp_page_size: true,
            ..Rules::default()
        };
        assert_eq!(
            parse(&with_window(&[("page_size", "500")]), &rules)
                .unwrap()
                .page_size,
            100
        );
        assert_eq!(
            parse(&with_window(&[("page_size", "0")]), &rules)
                .unwrap()
                .page_size,
            1
        );
        assert!(parse(&with_window(&[("page_size", "x")]), &rules).is_err());
    }

    fn order(no: &str, id: &str, modified: &str, status: i64, shop: &str) -> Order {
        Order {
            order_no: no.to_string(),
            src_order_no: no.replace("RK", "RT"),
            stockin_id: id.to_string(),
            modified: modified.to_string(),
            status,
            shop_no: shop.to_string(),
            warehouse_no: "WH01".to_string(),
            ..Order::default()
        }
    }

    fn numbers(rows: &[&Order]) -> Vec<String> {
        rows.iter().map(|order| order.order_no.clone()).collect()
    }

    #[test]
    fn selection_is_inclusive_filtered_and_ordered() {
        let orders = vec![
            order("RK5", "5", "2024-01-01 10:00:00", 80, "SHOP01"),
            order("RK4", "40", "2024-01-01 10:00:00", 80, "SHOP01"),
            order("RK3", "9", "2024-01-01 10:00:00", 80, "SHOP02"),
            order("RK2", "2", "2024-01-01 00:00:00", 80, "SHOP01"),
            order("RK1", "1", "2024-01-01 23:59:59", 80, "SHOP01"),
            order("RK0", "0", "2024-01-02 00:00:00", 80, "SHOP01"),
            order("RK9", "99", "2024-01-01 12:00:00", 30, "SHOP01"),
        ];
        let rules = Rules::default();
        let all = parse(&with_window(&[]), &rules).unwrap();
        // Both bounds are inclusive; ids order numerically (5 < 9 < 40) within a second.
        assert_eq!(
            numbers(&select(&orders, &all)),
            ["RK2", "RK5", "RK3", "RK4", "RK1"]
        );
        let shop2 = parse(&with_window(&[("shop_no", "SHOP02")]), &rules).unwrap();
        assert_eq!(numbers(&select(&orders, &shop2)), ["RK3"]);
        let cancelled = parse(&with_window(&[("status", "30")]), &rules).unwrap();
        assert_eq!(numbers(&select(&orders, &cancelled)), ["RK9"]);
        let by_number = parse(&params(&[("stockin_no", "RK0")]), &rules).unwrap();
        assert_eq!(numbers(&select(&orders, &by_number)), ["RK0"]);
        let by_refund = parse(&params(&[("src_order_no", "RT4")]), &rules).unwrap();
        assert_eq!(numbers(&select(&orders, &by_refund)), ["RK4"]);
        let elsewhere = parse(&with_window(&[("warehouse_no", "WH02")]), &rules).unwrap();
        assert!(select(&orders, &elsewhere).is_empty());
    }

    #[test]
    fn pages_cut_the_result_set_and_run_dry_past_the_end() {
        let orders: Vec<Order> = (0..5)
            .map(|i| {
                order(
                    &format!("RK{i}"),
                    &i.to_string(),
                    "2024-01-01 10:00:00",
                    80,
                    "S",
                )
            })
            .collect();
        let rules = Rules::default();
        let selected = select(&orders, &parse(&with_window(&[]), &rules).unwrap());
        for (page_no, expected) in [
            ("0", vec!["RK0", "RK1"]),
            ("2", vec!["RK4"]),
            ("3", vec![]),
            ("99", vec![]),
        ] {
            let query = parse(
                &with_window(&[("page_size", "2"), ("page_no", page_no)]),
                &rules,
            )
            .unwrap();
            let cut = page(&selected, &query);
            assert_eq!(cut.total, 5);
            assert_eq!(numbers(&cut.rows), expected, "page {page_no}");
        }
    }
}
