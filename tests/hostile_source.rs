//! `engine run` against a WDT that lies (`support::hostile_wdt`) and with a cursor, start or
//! range that cannot be read: every record arrives, or the run fails loudly with the cursor
//! where it was. Never an exit 0 that skipped a record.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::support::Output;
use crate::support::hostile_wdt::{Behaviour, HostileWdt, ListShape};
use crate::support::sync::Sync;

fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
}

/// The Kingdee sandbox behind the bundled flow, and a hostile WDT in front of it serving the
/// WDT sandbox's orders.
struct Hostile {
    sync: Sync,
    wdt: HostileWdt,
}

impl Hostile {
    /// `orders` refund stock-ins over the last five days, every SKU known to Kingdee.
    fn start(orders: usize, behaviour: Behaviour) -> Hostile {
        let count = orders.to_string();
        let sync = Sync::start(
            &[
                "--wdt-orders",
                &count,
                "--wdt-days",
                "5",
                "--wdt-unknown-sku-share",
                "0",
            ],
            6,
        );
        let wdt = HostileWdt::start(sync.orders(), behaviour);
        Hostile { sync, wdt }
    }

    fn env(&self) -> BTreeMap<String, String> {
        let mut env = self.sync.env();
        env.insert("WDT_QIMEN_URL".into(), self.wdt.url.clone());
        env
    }

    fn engine(&self, args: &[&str]) -> Output {
        self.sync
            .workspace
            .engine()
            .args(args.iter().copied())
            .envs(&self.env())
            .run()
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["run", "mappings/refund.yaml"];
        all.extend_from_slice(args);
        self.engine(&all)
    }

    fn state(&self) -> Value {
        serde_json::from_str(
            &self
                .engine(&["state", "mappings/refund.yaml", "--json"])
                .success()
                .stdout,
        )
        .unwrap()
    }

    /// Completed orders: those the flow must deliver.
    fn eligible(&self) -> BTreeSet<String> {
        self.sync
            .orders()
            .iter()
            .filter(|order| text(&order["status"]) == "80")
            .map(|order| text(&order["order_no"]))
            .collect()
    }

    /// Bill numbers in Kingdee, asserting none is there twice.
    #[track_caller]
    fn bills(&self) -> BTreeSet<String> {
        let numbers: Vec<String> = self
            .sync
            .bills()
            .iter()
            .map(|bill| text(&bill["FBillNo"]))
            .collect();
        let unique: BTreeSet<String> = numbers.iter().cloned().collect();
        assert_eq!(unique.len(), numbers.len(), "a bill arrived twice");
        unique
    }
}

#[test]
fn a_total_count_smaller_than_the_records_listed_does_not_stop_the_read() {
    // 0 and 1 with a full page listed, and exactly one page's worth with more behind it.
    for total in [0, 1, 100] {
        let hostile = Hostile::start(
            220,
            Behaviour {
                total: Some(total),
                ..Behaviour::default()
            },
        );
        let eligible = hostile.eligible();
        assert!(
            eligible.len() > 150,
            "more than a page of orders: {}",
            eligible.len()
        );
        let output = hostile.run(&[]).success();
        assert!(
            output
                .stderr
                .contains(&format!("more than the total of {total} the API gives")),
            "total {total}: {}",
            output.stderr
        );
        assert!(
            output.stderr.contains(&format!(
                "{} read: {} new, 0 seen before; {} written",
                eligible.len(),
                eligible.len(),
                eligible.len()
            )),
            "total {total}: {}",
            output.stderr
        );
        assert_eq!(hostile.bills(), eligible, "total {total}");
        assert!(hostile.state()["cursor"].is_string());
    }
}

#[test]
fn an_empty_page_before_the_total_fails_the_window_within_a_few_requests() {
    let hostile = Hostile::start(150, Behaviour::default());
    let orders = hostile.sync.orders();
    // 10^12 records counted, none listed: not 100,000 requests but a failed window.
    hostile.wdt.set_orders(Vec::new());
    hostile.wdt.set(Behaviour {
        total: Some(1_000_000_000_000),
        ..Behaviour::default()
    });
    let output = hostile.run(&[]).code(4);
    assert!(
        output
            .stderr
            .contains("wdt_qimen answered `stockin_refund_query` for 20")
            && output
                .stderr
                .contains("page 0 held 0 record(s) although the total says 1000000000000"),
        "{}",
        output.stderr
    );
    assert!(
        output.stderr.contains("the cursor stays before it"),
        "{}",
        output.stderr
    );
    assert!(hostile.state()["cursor"].is_null());
    let pages = hostile.wdt.take_pages();
    assert!(pages.len() <= 8, "requests made: {pages:?}");
    // A full first page, a total promising eleven pages, the last ones empty.
    hostile.wdt.set_orders(orders);
    hostile.wdt.set(Behaviour {
        total: Some(1_050),
        ..Behaviour::default()
    });
    let output = hostile.run(&[]).code(4);
    assert!(
        output
            .stderr
            .contains("page 10 held 0 record(s) although the total says 1050"),
        "{}",
        output.stderr
    );
    assert!(hostile.state()["cursor"].is_null());
    // Page 9 is asked for early, as page 10's answer arrives; page 10 turns out empty, the
    // plan reads page 0 again (after page 9's answer, dropped unread).
    let pages = hostile.wdt.take_pages();
    assert_eq!(pages, [0, 10, 9].repeat(4), "requests made");
    // A count no window can page through fails at once.
    hostile.wdt.set(Behaviour {
        total: Some(1_000_000_000_000),
        ..Behaviour::default()
    });
    let output = hostile.run(&[]).code(4);
    assert!(
        output
            .stderr
            .contains("the total 1000000000000 needs 10000000001 pages"),
        "{}",
        output.stderr
    );
    assert_eq!(hostile.wdt.take_pages(), vec![0]);
    assert!(hostile.state()["cursor"].is_null());
    // Once WDT counts right, every order arrives once.
    hostile.wdt.set(Behaviour::default());
    hostile.run(&[]).success();
    assert_eq!(hostile.bills(), hostile.eligible());
}

#[test]
fn a_records_list_of_the_wrong_shape_fails_the_call_and_parks_nothing() {
    for (shape, wrong) in [
        (
            ListShape::Object,
            "`$.response.stockin_list` is an object, not a list of records",
        ),
        (
            ListShape::Strings,
            "record 0 at `$.response.stockin_list[*]` is a string, not an object",
        ),
    ] {
        let hostile = Hostile::start(
            20,
            Behaviour {
                shape,
                ..Behaviour::default()
            },
        );
        let output = hostile.run(&[]).code(4);
        assert!(
            output
                .stderr
                .contains("wdt_qimen answered `stockin_refund_query` for ")
                && output.stderr.contains("with a response of the wrong shape")
                && output.stderr.contains(wrong),
            "{shape:?}: {}",
            output.stderr
        );
        assert!(hostile.state()["cursor"].is_null(), "{shape:?}");
        let failed = hostile
            .engine(&["failed", "mappings/refund.yaml", "--json"])
            .success();
        assert_eq!(failed.stdout.trim(), "[]", "{shape:?}: nothing parked");
        assert!(hostile.bills().is_empty(), "{shape:?}");
        // Once WDT answers properly, everything arrives.
        hostile.wdt.set(Behaviour::default());
        hostile.run(&[]).success();
        assert_eq!(hostile.bills(), hostile.eligible(), "{shape:?}");
    }
}

#[test]
fn a_cursor_or_start_in_the_future_is_refused_and_a_backwards_range_is_a_usage_error() {
    let hostile = Hostile::start(30, Behaviour::default());
    let workspace = &hostile.sync.workspace;
    let start = workspace.read(".start");
    workspace.write(".start", "2099-01-01 00:00:00");
    hostile.run(&[]).code(3).stderr_contains(
        "`source.window.start` of flow `refund` is `2099-01-01 00:00:00`, in the future",
    );
    workspace.write(".start", start);
    hostile
        .engine(&[
            "state",
            "mappings/refund.yaml",
            "--reset-cursor",
            "2099-01-01 00:00:00",
        ])
        .code(2)
        .stderr_contains("`--reset-cursor 2099-01-01 00:00:00` is in the future");
    assert!(hostile.state()["cursor"].is_null());
    hostile.run(&[]).success();
    let cursor = text(&hostile.state()["cursor"]);
    // A cursor stored in the future (by an older version, or a clock set wrong) stops the run.
    let store = engine::state::Store::open(&workspace.path("state/state.db")).unwrap();
    let future = engine::time::parse_instant("2099-01-01 00:00:00").unwrap();
    store
        .reset_cursor("refund", future, chrono::Utc::now())
        .unwrap();
    drop(store);
    let output = hostile.run(&[]).code(4);
    assert!(
        output
            .stderr
            .contains("the cursor of flow `refund` is `2099-01-01 00:00:00`, in the future")
            && output
                .stderr
                .contains("engine state mappings/refund.yaml --reset-cursor"),
        "{}",
        output.stderr
    );
    assert!(!output.stderr.contains("nothing to read yet"));
    hostile
        .engine(&["state", "mappings/refund.yaml", "--reset-cursor", &cursor])
        .success();
    hostile.run(&[]).success();
    assert_eq!(hostile.bills(), hostile.eligible());
    // Backfills: backwards is a usage error, a range into the future ends at now minus the lag.
    hostile
        .run(&[
            "--since",
            "2024-05-02 00:00:00",
            "--until",
            "2024-05-01 00:00:00",
        ])
        .code(2)
        .stderr_contains("the range is empty or runs backwards");
    hostile
        .run(&["--since", "2099-01-01 00:00:00"])
        .code(2)
        .stderr_contains("the range is empty or runs backwards");
    let since = (chrono::Utc::now() - chrono::Duration::days(6)).to_rfc3339();
    let output = hostile
        .run(&["--since", &since, "--until", "2099-01-01 00:00:00"])
        .success();
    assert!(
        output.stderr.contains(
            "`--until` 2099-01-01 00:00:00 is later than now minus the lag: reading up to"
        ) && output.stderr.contains("in 1 window(s)"),
        "{}",
        output.stderr
    );
    assert_eq!(hostile.bills(), hostile.eligible());
}

#[test]
fn a_page_refused_as_too_frequent_is_asked_again_alone_and_the_early_page_is_not_used() {
    // Pages are read downwards, and the next page is asked for as soon as the answer before it
    // arrives; a page refused as too frequent (WDT's 1012, in an HTTP 200) is tried again only
    // once the page sent early on its answer has ended (one query at a time), and that early
    // answer is dropped: page 2 is read again after page 3's retry.
    let hostile = Hostile::start(600, Behaviour::default());
    hostile.wdt.throttle_once(Some(3), 100);
    hostile.run(&[]).success();
    let (most, log) = hostile.wdt.concurrency();
    assert_eq!(most, 1, "queries answered at once: {log:?}");
    let throttled = log
        .iter()
        .position(|l| l == "end 3 (1012)")
        .expect("page 3 refused once");
    let after: Vec<&str> = log[throttled + 1..].iter().map(String::as_str).collect();
    let retried = after
        .iter()
        .position(|l| *l == "start 3")
        .expect("page 3 asked again");
    assert!(
        after[retried..].contains(&"start 2"),
        "page 2 read after page 3's retry: {log:?}"
    );
    assert_eq!(hostile.bills(), hostile.eligible());
}
