//! `engine run` against both sandboxes: the refund flow end to end, incremental, exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::Output;
use crate::support::sync::Sync;
use crate::support::workspace::Workspace;

mod options;
mod resilience;

/// SKUs the Kingdee sandbox knows.
fn known_skus() -> BTreeSet<String> {
    engine::sim::catalog::skus()
        .into_iter()
        .map(|sku| sku.spec_no)
        .collect()
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
}

/// Orders the flow must deliver (completed, every SKU known) and those it must park (completed, some SKU unknown).
pub(crate) fn eligible_and_unknown(orders: &[Value]) -> (BTreeSet<String>, BTreeSet<String>) {
    let known = known_skus();
    let mut eligible = BTreeSet::new();
    let mut unknown = BTreeSet::new();
    for order in orders {
        if text(&order["status"]) != "80" {
            continue;
        }
        let all_known = order["details_list"]
            .as_array()
            .unwrap()
            .iter()
            .all(|line| known.contains(&text(&line["spec_no"])));
        let key = text(&order["order_no"]);
        if all_known {
            eligible.insert(key);
        } else {
            unknown.insert(key);
        }
    }
    (eligible, unknown)
}

/// Bill numbers in Kingdee, asserting none is there twice.
#[track_caller]
pub(crate) fn bill_numbers(sync: &Sync) -> BTreeSet<String> {
    let bills = sync.bills();
    let numbers: Vec<String> = bills.iter().map(|bill| text(&bill["FBillNo"])).collect();
    let unique: BTreeSet<String> = numbers.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        numbers.len(),
        "a bill arrived twice: {numbers:?}"
    );
    unique
}

/// The keys `engine failed` lists with `status` (`failed`, `conflict` or `in_flight`).
fn listed_keys(sync: &Sync, statuses: &[&str]) -> BTreeSet<String> {
    let output = sync
        .engine(&["failed", "mappings/refund.yaml", "--json"])
        .success();
    let listed: Vec<Value> = serde_json::from_str(&output.stdout).unwrap();
    listed
        .iter()
        .filter(|entry| statuses.contains(&text(&entry["status"]).as_str()))
        .map(|entry| text(&entry["key"]))
        .collect()
}

/// The run's environment, logging in to Kingdee with the password instead of the app signature.
fn password_login(sync: &Sync) -> BTreeMap<String, String> {
    let mut env = sync.env();
    env.remove("KINGDEE_APP_ID");
    env.remove("KINGDEE_APP_SECRET");
    env
}

fn parked_keys(sync: &Sync) -> BTreeSet<String> {
    listed_keys(sync, &["failed", "conflict"])
}

#[test]
fn the_readmes_first_command_runs_the_bundled_flow_on_the_sandboxes() {
    let workspace = Workspace::with_bundle();
    let output = workspace
        .engine()
        .args(["run", "mappings/refund.yaml", "--sandbox"])
        .run()
        .code(1);
    for expected in [
        "sandboxes: WDT at http://127.0.0.1:",
        // The first run starts in 2024: the empty stretch is one line.
        "windows 1–",
        ": nothing modified",
        "180 read: 180 new, 0 seen before; 170 written, 0 already written, 10 parked",
        "字段“物料编码”的值“",
        "the Kingdee sandbox now holds 170 sales return bill(s)",
        // `failed`/`retry` would find nothing in the throwaway state: the run says how to keep it.
        "parked records live in this run's throwaway state",
    ] {
        assert!(
            output.stderr.contains(expected),
            "{expected:?} missing from:\n{}",
            output.stderr
        );
    }
    assert!(
        !workspace.path("mappings/.engine").exists(),
        "a sandbox run keeps no state next to the flow"
    );
}

#[test]
fn a_full_sync_lands_exactly_the_eligible_orders_and_parks_the_rest() {
    let sync = Sync::start(&["--wdt-orders", "300", "--wdt-days", "10"], 12);
    let output = sync.run(&[]).code(1);
    assert!(
        output
            .stderr
            .contains("parked records are listed by `engine failed"),
        "{}",
        output.stderr
    );
    let orders = sync.orders();
    let (eligible, unknown) = eligible_and_unknown(&orders);
    assert!(
        eligible.len() > 200 && !unknown.is_empty(),
        "the sandbox data has both kinds: {} / {}",
        eligible.len(),
        unknown.len()
    );
    assert_eq!(bill_numbers(&sync), eligible);
    assert_eq!(parked_keys(&sync), unknown);
}

#[test]
fn every_bill_carries_its_orders_values() {
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "40",
            "--wdt-days",
            "5",
            "--wdt-unknown-sku-share",
            "0",
        ],
        6,
    );
    sync.run(&[]).success();
    let orders: BTreeMap<String, Value> = sync
        .orders()
        .into_iter()
        .map(|o| (text(&o["order_no"]), o))
        .collect();
    let customers: BTreeMap<&str, &str> = engine::sim::catalog::SHOPS
        .iter()
        .map(|s| (s.shop_no, s.customer))
        .collect();
    let stocks: BTreeMap<&str, &str> = engine::sim::catalog::WAREHOUSES
        .iter()
        .map(|w| (w.warehouse_no, w.stock))
        .collect();
    let bills = sync.bills();
    assert!(!bills.is_empty());
    for bill in &bills {
        let order = &orders[&text(&bill["FBillNo"])];
        let number = |field: &Value| text(field.get("FNumber").unwrap_or(field));
        assert_eq!(
            number(&bill["FRetcustId"]),
            customers[text(&order["shop_no"]).as_str()]
        );
        assert_eq!(number(&bill["FBillTypeID"]), "XSTHD01_SYS");
        assert_eq!(number(&bill["FSaleOrgId"]), "100");
        assert_eq!(text(&bill["FDate"])[..10], text(&order["check_time"])[..10]);
        assert_eq!(
            text(&bill["FDocumentStatus"]),
            "C",
            "IsAutoSubmitAndAudit audits the bill"
        );
        let lines = bill["FEntity"].as_array().unwrap();
        let details = order["details_list"].as_array().unwrap();
        assert_eq!(lines.len(), details.len());
        for (line, detail) in lines.iter().zip(details) {
            assert_eq!(number(&line["FMaterialId"]), text(&detail["spec_no"]));
            assert_eq!(
                number(&line["FStockId"]),
                stocks[text(&order["warehouse_no"]).as_str()]
            );
            let qty: f64 = text(&line["FRealQty"]).parse().unwrap();
            let num: f64 = text(&detail["num"]).parse().unwrap();
            assert_eq!(qty, num, "FRealQty of {}", text(&bill["FBillNo"]));
        }
    }
}

#[test]
fn a_second_run_sends_nothing_and_new_orders_arrive_incrementally() {
    // Three of the sixty orders have an SKU Kingdee does not know: parked by the first run.
    let sync = Sync::start(&["--wdt-orders", "60", "--wdt-days", "5"], 6);
    sync.workspace
        .edit("mappings/refund.yaml", "    lag: 5s ", "    lag: 0s ");
    sync.run(&[]).code(1);
    let first = bill_numbers(&sync);
    let saves = |sync: &Sync| sync.kingdee("/_sim/stats").to_string();
    let before = saves(&sync);
    // Read again from the start: every order is met again, none is sent, not even the parked
    // ones (the same bills would be refused again; `engine retry` is for them).
    let output = sync
        .run(&["--since", &sync.workspace.read(".start")])
        .success();
    assert!(output.stderr.contains(" 0 written"), "{}", output.stderr);
    assert!(
        output
            .stderr
            .contains("3 record(s) parked earlier were read again unchanged and not sent"),
        "{}",
        output.stderr
    );
    assert_eq!(
        saves(&sync).matches("BatchSave").count(),
        before.matches("BatchSave").count()
    );
    assert_eq!(bill_numbers(&sync), first, "nothing new, nothing twice");

    // Five new orders and one changed order.
    sync.post_wdt("/_sim/generate", json!({"count": 5}));
    let changed = first.iter().next().unwrap().clone();
    sync.post_wdt(
        &format!("/_sim/orders/{changed}/touch"),
        json!({"refund_remark": "客户补充说明"}),
    );
    std::thread::sleep(Duration::from_millis(1100));
    let output = sync.run(&[]).success();
    let after = bill_numbers(&sync);
    let (eligible, _) = eligible_and_unknown(&sync.orders());
    assert_eq!(after, eligible, "the new orders arrived, none twice");
    assert!(after.len() > first.len(), "{}", output.stderr);
}

#[test]
fn an_order_changed_after_it_was_written_is_a_conflict_once_then_acknowledged_by_retry() {
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "20",
            "--wdt-days",
            "3",
            "--wdt-unknown-sku-share",
            "0",
        ],
        4,
    );
    sync.workspace.edit(
        "mappings/refund.yaml",
        "  on_change: skip ",
        "  on_change: conflict ",
    );
    sync.workspace
        .edit("mappings/refund.yaml", "    lag: 5s ", "    lag: 0s ");
    sync.run(&[]).success();
    let written = bill_numbers(&sync);
    let changed = written.iter().next().unwrap().clone();
    sync.post_wdt(
        &format!("/_sim/orders/{changed}/touch"),
        json!({"refund_remark": "客户补充说明"}),
    );
    std::thread::sleep(Duration::from_millis(1100));
    let output = sync.run(&[]).code(1);
    assert!(output.stderr.contains("1 conflicts"), "{}", output.stderr);
    assert_eq!(parked_keys(&sync), BTreeSet::from([changed.clone()]));
    // Read again (the lookback): the conflict is not reported twice, nothing is sent.
    let output = sync
        .run(&["--since", &sync.workspace.read(".start")])
        .success();
    assert!(
        output
            .stderr
            .contains("1 record(s) parked earlier were read again unchanged and not sent"),
        "{}",
        output.stderr
    );
    sync.engine(&["retry", "mappings/refund.yaml"]).success();
    assert!(parked_keys(&sync).is_empty());
    assert_eq!(
        bill_numbers(&sync),
        written,
        "the first version stays, once"
    );
    assert_eq!(sync.bills().len(), written.len());
}

#[test]
fn an_order_changed_while_a_killed_run_left_it_in_flight_is_a_conflict_not_dropped() {
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "10",
            "--wdt-days",
            "3",
            "--wdt-unknown-sku-share",
            "0",
            // The bills are committed, then the answer takes 1 s a bill: a kill meanwhile
            // leaves them saved and the ledger holding them in flight.
            "--kingdee-latency-per-bill-ms",
            "1000",
        ],
        4,
    );
    sync.workspace.edit(
        "mappings/refund.yaml",
        "  on_change: skip ",
        "  on_change: conflict ",
    );
    sync.workspace
        .edit("mappings/refund.yaml", "    lag: 5s ", "    lag: 0s ");
    let mut child = sync.spawn_run(&sync.env(), Stdio::null());
    sync.wait_until("a saved bill", |sync| !sync.bills().is_empty());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !listed_keys(&sync, &["in_flight"]).is_empty(),
        "the killed run left bills in flight"
    );
    let saved = bill_numbers(&sync);
    let changed = saved.iter().next().unwrap().clone();
    sync.post_wdt(
        &format!("/_sim/orders/{changed}/touch"),
        json!({"refund_remark": "客户补充说明"}),
    );
    std::thread::sleep(Duration::from_millis(1100));
    sync.put_kingdee("/_sim/faults", json!({"latency_per_bill_ms": 0}));
    // The recovery finds the saved bills; the order's newer version, read by this run, is
    // then a change to a written bill, which `on_change: conflict` reports.
    let output = sync.run(&[]).code(1);
    assert!(output.stderr.contains("1 conflicts"), "{}", output.stderr);
    assert_eq!(parked_keys(&sync), BTreeSet::from([changed]));
    let (eligible, _) = eligible_and_unknown(&sync.orders());
    assert_eq!(bill_numbers(&sync), eligible, "every order once");
    assert_eq!(sync.bills().len(), eligible.len());
}

#[test]
fn a_flow_without_a_lookup_parks_refused_records_and_goes_on() {
    let sync = Sync::start(&["--wdt-orders", "40", "--wdt-days", "3"], 4);
    sync.workspace.edit(
        "mappings/refund.yaml",
        "  lookup: bill_query ",
        "  # lookup: bill_query ",
    );
    sync.run(&[]).code(1);
    let (eligible, unknown) = eligible_and_unknown(&sync.orders());
    assert_eq!(bill_numbers(&sync), eligible);
    assert_eq!(parked_keys(&sync), unknown);
}

#[test]
fn a_write_left_in_flight_is_listed_and_settled_by_retry() {
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "20",
            "--wdt-days",
            "3",
            "--wdt-unknown-sku-share",
            "0",
            "--kingdee-webapi-allowed",
            "false",
        ],
        4,
    );
    // Kingdee refuses the call as a whole: the batch stays in flight.
    sync.run(&[]).code(4);
    let (eligible, _) = eligible_and_unknown(&sync.orders());
    let in_flight = listed_keys(&sync, &["in_flight"]);
    assert_eq!(in_flight, eligible, "every record of the batch is listed");
    let listing = sync.engine(&["failed", "mappings/refund.yaml"]).success();
    let count = eligible.len();
    assert!(
        listing
            .stdout
            .contains(&format!("{count} record(s) of flow `refund` in flight")),
        "{}",
        listing.stdout
    );
    sync.post_kingdee("/_sim/users/apiuser", json!({"webapi_allowed": true}));
    let output = sync.engine(&["retry", "mappings/refund.yaml"]).success();
    assert!(
        output.stderr.contains(&format!(
            "{count} record(s) were in flight when an earlier run stopped"
        )),
        "{}",
        output.stderr
    );
    assert!(listed_keys(&sync, &["in_flight"]).is_empty());
    assert_eq!(bill_numbers(&sync), in_flight);
    // The next run finds them written and sends nothing twice.
    sync.run(&[]).success();
    assert_eq!(bill_numbers(&sync), eligible);
    assert_eq!(sync.bills().len(), eligible.len());
}

#[test]
fn a_range_longer_than_thirty_days_is_read_in_slices() {
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "120",
            "--wdt-days",
            "75",
            "--wdt-unknown-sku-share",
            "0",
        ],
        80,
    );
    let output = sync.run(&[]).success();
    assert!(
        output.stderr.contains("in 3 window(s)"),
        "{}",
        output.stderr
    );
    let (eligible, _) = eligible_and_unknown(&sync.orders());
    assert_eq!(bill_numbers(&sync), eligible);
}

#[test]
fn orders_that_move_between_pages_while_paging_are_not_lost() {
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "400",
            "--wdt-days",
            "5",
            "--wdt-unknown-sku-share",
            "0",
            "--wdt-drift-rate",
            "0.5",
        ],
        6,
    );
    sync.workspace.edit(
        "mappings/refund.yaml",
        "  page_size: 100\n",
        "  page_size: 20\n",
    );
    // A second of lag: an order bumped while paging leaves the window (its new time is after
    // the window's end) instead of moving inside it.
    sync.workspace
        .edit("mappings/refund.yaml", "    lag: 5s ", "    lag: 1s ");
    sync.run(&[]).success();
    // Orders bumped while paging now carry a later time: the next run reads them.
    std::thread::sleep(Duration::from_millis(1100));
    sync.run(&[]).success();
    let (eligible, _) = eligible_and_unknown(&sync.orders());
    assert_eq!(bill_numbers(&sync), eligible);
    let drifted = sync.wdt("/_sim/stats").to_string();
    assert!(
        drifted.contains("drift"),
        "the sandbox moved orders while they were paged: {drifted}"
    );
}

#[test]
fn orders_that_move_to_the_end_of_the_window_or_repeat_on_a_page_are_not_lost() {
    // An order bumped to the window's last second stays in the window but lands on a page a
    // downward reader has already read; a page that lists an order twice hides nothing but
    // must not count twice. Bill-number uniqueness is off, so a duplicate would show.
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "300",
            "--wdt-days",
            "5",
            "--wdt-unknown-sku-share",
            "0",
            "--wdt-drift-rate",
            "0.05",
            "--wdt-drift-to",
            "end",
            "--wdt-duplicate-rate",
            "0.2",
            "--wdt-rate-limit",
            "0",
            "--kingdee-allow-duplicate-bill-no",
        ],
        6,
    );
    sync.workspace.edit(
        "mappings/refund.yaml",
        "  page_size: 100\n",
        "  page_size: 20\n",
    );
    sync.workspace.edit(
        "mappings/connectors/wdt_qimen.yaml",
        "rate_limit: { requests: 50, per: 60s }",
        "rate_limit: { requests: 5000, per: 60s }",
    );
    let output = sync.run(&[]).success();
    let (eligible, _) = eligible_and_unknown(&sync.orders());
    assert_eq!(bill_numbers(&sync), eligible, "{}", output.stderr);
    assert_eq!(sync.bills().len(), eligible.len(), "no bill twice");
    assert!(
        output.stderr.contains("reading it again"),
        "a pass met fewer orders than the total and read the window again: {}",
        output.stderr
    );
    let stats = sync.wdt("/_sim/stats");
    assert!(stats["drifted"].as_u64().unwrap() > 0, "{stats}");
    assert!(stats["duplicated"].as_u64().unwrap() > 0, "{stats}");
}

#[test]
fn parked_records_are_listed_and_delivered_by_retry_once_master_data_is_fixed() {
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "80",
            "--wdt-days",
            "5",
            "--wdt-unknown-sku-share",
            "0.2",
        ],
        6,
    );
    sync.run(&[]).code(1);
    let (_, unknown) = eligible_and_unknown(&sync.orders());
    let failed = sync.engine(&["failed", "mappings/refund.yaml"]).success();
    for key in &unknown {
        assert!(
            failed.stdout.contains(key.as_str()),
            "{key} is listed:\n{}",
            failed.stdout
        );
    }
    assert!(
        failed.stdout.contains("物料编码"),
        "the reason is Kingdee's own message:\n{}",
        failed.stdout
    );
    for sku in engine::sim::catalog::unknown_skus() {
        sync.post_kingdee(
            "/_sim/basedata/materials",
            json!({"FNumber": sku.spec_no, "FName": sku.goods_name, "BaseUnit": "Pcs"}),
        );
    }
    let retried = sync.engine(&["retry", "mappings/refund.yaml"]).success();
    assert!(
        retried.stderr.contains(&format!(
            "{} parked retried: {} written, 0 still parked",
            unknown.len(),
            unknown.len()
        )),
        "{}",
        retried.stderr
    );
    let (eligible, unknown_now) = eligible_and_unknown(&sync.orders());
    let everything: BTreeSet<String> = eligible.union(&unknown_now).cloned().collect();
    assert_eq!(bill_numbers(&sync), everything);
    assert!(parked_keys(&sync).is_empty());
    sync.engine(&["retry", "mappings/refund.yaml"])
        .success()
        .stderr_contains("no parked records to retry");
}

#[test]
fn bad_source_records_are_parked_with_their_reasons() {
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "20",
            "--wdt-days",
            "3",
            "--wdt-unknown-sku-share",
            "0",
        ],
        4,
    );
    let orders: Vec<Value> = sync
        .orders()
        .into_iter()
        .filter(|o| text(&o["status"]) == "80")
        .collect();
    let mut unknown_shop = orders[0].clone();
    unknown_shop["order_no"] = json!("RK-BAD-SHOP");
    unknown_shop["shop_no"] = json!("SHOP99");
    let mut bad_quantity = orders[1].clone();
    bad_quantity["order_no"] = json!("RK-BAD-QTY");
    bad_quantity["details_list"][0]["num"] = json!("两件");
    for order in [&mut unknown_shop, &mut bad_quantity] {
        order["stockin_id"] = json!(format!("9{}", text(&order["stockin_id"])));
        order.as_object_mut().unwrap().remove("modified");
    }
    sync.post_wdt("/_sim/orders", json!([unknown_shop, bad_quantity]));
    // The injected orders are modified now: read them without waiting for the lag.
    sync.workspace
        .edit("mappings/refund.yaml", "    lag: 5s ", "    lag: 0s ");
    std::thread::sleep(Duration::from_millis(1100));
    let output = sync.run(&[]).code(1);
    assert!(
        output
            .stderr
            .contains("`SHOP99` is not in value map `shop_customer`"),
        "{}",
        output.stderr
    );
    assert!(
        output.stderr.contains("`两件` is not a decimal number"),
        "{}",
        output.stderr
    );
    assert_eq!(
        parked_keys(&sync),
        BTreeSet::from(["RK-BAD-QTY".to_string(), "RK-BAD-SHOP".to_string()])
    );
    assert_eq!(
        bill_numbers(&sync).len(),
        eligible_and_unknown(&sync.orders()).0.len() - 2
    );
}

#[test]
fn the_bills_that_arrive_are_snapshotted_field_by_field() {
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "12",
            "--wdt-days",
            "5",
            "--wdt-until",
            "2025-06-30 18:00:00",
            "--seed",
            "7",
        ],
        0,
    );
    sync.workspace.write(".start", "2025-06-20 00:00:00");
    sync.run(&[]).code(1);
    let mut bills = sync.bills();
    bills.sort_by_key(|bill| text(&bill["FBillNo"]));
    // Kingdee numbers its internal ids in the order concurrent batches arrive, and stamps the
    // time it saved: neither is part of the mapping.
    fn without_ids(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for id in [
                    "FID",
                    "FEntryID",
                    "FEntryId",
                    "Id",
                    "ModifyDate",
                    "CreateDate",
                ] {
                    map.remove(id);
                }
                map.values_mut().for_each(without_ids);
            }
            Value::Array(items) => items.iter_mut().for_each(without_ids),
            _ => {}
        }
    }
    bills.iter_mut().for_each(without_ids);
    insta::assert_json_snapshot!(bills);
    let parked = parked_keys(&sync);
    let (eligible, unknown) = eligible_and_unknown(&sync.orders());
    assert_eq!(bill_numbers(&sync), eligible);
    assert_eq!(parked, unknown);
}

/// The window's last page (the one before the counted pass's last look at its first page) is
/// written while that look is on its way, in smaller saves side by side, as are the records
/// waiting to be batched when it comes: a run ends, and its cursor moves, sooner.
#[test]
fn the_last_records_are_written_while_the_first_page_is_read_again() {
    // 230 completed orders, every SKU known: pages 0, 2 (30 orders) and 1, then page 0 again,
    // each answered after 2.5 s. Batches of 50: page 0's two; then, the window closing, page
    // 2's 30 at once, and page 1's two batches in pieces of 25. (Before, page 2's 30 and 20 of
    // page 1 made a batch, 50 more another, and the last 30 waited for the window's end.)
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "230",
            "--wdt-days",
            "5",
            "--wdt-unknown-sku-share",
            "0",
            "--wdt-other-status-share",
            "0",
            "--wdt-latency-ms",
            "2500",
        ],
        6,
    );
    sync.workspace
        .edit("mappings/refund.yaml", "    lag: 5s ", "    lag: 0s ");
    let requests = |sync: &Sync| sync.wdt("/_sim/requests").as_array().unwrap().len();
    let mut run = sync.spawn_run(&sync.env(), Stdio::null());
    // The WDT sandbox logs a request as it arrives and answers it 2.5 s later: the last bills
    // are in about 2.5 s before the run ends, not once the last answer is in, a few
    // milliseconds before the end.
    let mut all_in = None;
    while run.try_wait().unwrap().is_none() {
        if all_in.is_none() && sync.kingdee("/_sim/stats")["bills_total"] == 230 {
            all_in = Some((std::time::Instant::now(), requests(&sync)));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let ended = std::time::Instant::now();
    assert!(run.wait().unwrap().success());
    assert_eq!(requests(&sync), 4, "pages 0, 2, 1 and 0 again");
    assert_eq!(bill_numbers(&sync).len(), 230);
    let (at, sent) = all_in.expect("every bill arrived while the run went on");
    assert_eq!(
        sent, 4,
        "the last bills went after the last request was sent"
    );
    assert!(
        ended - at > Duration::from_secs(1),
        "the last bills went {:?} before the run ended, not while the last page was read",
        ended - at
    );
    let stats = sync.kingdee("/_sim/stats");
    let saves: u64 = stats["requests"]["DynamicFormService.BatchSave"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(saves, 7, "50 × 2, 30, then 25 × 4: {stats}");
}
