//! The slim ledger (schema version 2): a ledger written by version 1 migrates whole, sources
//! live only while needed, rows stay small and delete churn does not grow the file.

use std::path::Path;

use chrono::{DateTime, Duration, TimeZone, Utc};
use rusqlite::Connection;
use rusqlite::types::Value;
use serde_json::json;

use crate::state::schema;
use crate::state::{Doc, Source};
use crate::state::{Outcome, Pending, RunKind, RunSummary, Status, Store, footprint};

const FLOW: &str = "refund";

/// The schema of version 1, as engine releases before the slim ledger created it.
const SCHEMA_V1: &str = include_str!("../../tests/fixtures/state/schema_v1.sql");

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(seconds)
}

fn time(seconds: i64) -> String {
    at(seconds).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// A database at schema `version`, as that version's engine made it (incremental auto-vacuum
/// on), with the rows `fill` writes in the same transaction.
pub(super) fn written_at_version(
    path: &Path,
    version: usize,
    fill: impl FnOnce(&rusqlite::Transaction<'_>),
) {
    let mut connection = Connection::open(path).unwrap();
    connection
        .pragma_update(None, "auto_vacuum", "INCREMENTAL")
        .unwrap();
    let tx = connection.transaction().unwrap();
    for script in &schema::MIGRATIONS[..version] {
        tx.execute_batch(script).unwrap();
    }
    tx.pragma_update(None, "user_version", version).unwrap();
    fill(&tx);
    tx.commit().unwrap();
}

/// Every row of a query, as SQLite values, so that tables can be compared whole.
pub(super) fn rows(connection: &Connection, sql: &str) -> Vec<Vec<Value>> {
    let mut statement = connection.prepare(sql).unwrap();
    let columns = statement.column_count();
    statement
        .query_map([], |row| {
            (0..columns)
                .map(|i| row.get::<_, Value>(i))
                .collect::<rusqlite::Result<Vec<Value>>>()
        })
        .unwrap()
        .collect::<rusqlite::Result<Vec<_>>>()
        .unwrap()
}

/// The columns both schema versions have, in order.
const LEDGER_COLUMNS: &str = "SELECT flow, key, status, hash, target_id, target_number, \
     attempts, last_error, error_field, modified, first_seen, updated, done_at \
     FROM ledger ORDER BY flow, key";

/// Today's ledger with the columns of versions 4 to 7, each row naming its flow (since version
/// 8 a row holds its flow's number in `flows`): a table for the `FROM` of a test's query.
macro_rules! ledger_by_name {
    () => {
        "(SELECT f.name AS flow, l.key, l.status, l.hash, l.target_id, l.target_number, \
         l.attempts, l.last_error, l.error_field, l.modified, l.first_seen, l.updated, \
         l.done_at, l.kept FROM ledger AS l JOIN flows AS f ON f.id = l.flow_id) AS ledger"
    };
}
pub(super) use ledger_by_name;

/// The same columns from today's ledger, as versions before 4 wrote them (hashes as hex text,
/// times as RFC 3339 text with nanoseconds).
pub(super) const LEDGER_COLUMNS_AS_TEXT: &str = concat!(
    "SELECT flow, key, status, \
     CASE typeof(hash) WHEN 'blob' THEN lower(hex(hash)) ELSE hash END AS hash, target_id, \
     target_number, attempts, last_error, error_field, modified, \
     strftime('%Y-%m-%dT%H:%M:%S.', first_seen / 1000000000, 'unixepoch') \
         || printf('%09dZ', first_seen % 1000000000) AS first_seen, \
     strftime('%Y-%m-%dT%H:%M:%S.', updated / 1000000000, 'unixepoch') \
         || printf('%09dZ', updated % 1000000000) AS updated, \
     strftime('%Y-%m-%dT%H:%M:%S.', done_at / 1000000000, 'unixepoch') \
         || printf('%09dZ', done_at % 1000000000) AS done_at \
     FROM ",
    ledger_by_name!(),
    " ORDER BY flow, key"
);

const RUNS: &str = "SELECT * FROM runs ORDER BY id";

fn source_v1(key: &str) -> serde_json::Value {
    json!({ "order_no": key, "lines": [{ "sku": "S1" }] })
}

/// A ledger as version 1 wrote it: every status, a written key reported as a conflict since,
/// a key in flight after it had been parked, two flows, a finished and a crashed run.
fn write_version_1(path: &Path) {
    let connection = Connection::open(path).unwrap();
    connection
        .pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
        .unwrap();
    connection.execute_batch(SCHEMA_V1).unwrap();
    connection.pragma_update(None, "user_version", 1).unwrap();
    let source = |key: &str| source_v1(key).to_string();
    let ledger = [
        // flow, key, status, hash, id, number, attempts, error, field, source, done_at
        (
            FLOW,
            "A",
            "done",
            "hA",
            Some("1"),
            Some("NO1"),
            1,
            None,
            None,
            None,
            Some(3),
        ),
        (
            FLOW,
            "B",
            "in_flight",
            "hB",
            None,
            None,
            2,
            Some("refused before"),
            None,
            Some(source("B")),
            None,
        ),
        (
            FLOW,
            "C",
            "failed",
            "hC",
            None,
            None,
            1,
            Some("unknown material"),
            Some("FMaterialId"),
            Some(source("C")),
            None,
        ),
        (
            FLOW,
            "D",
            "conflict",
            "hD",
            Some("4"),
            Some("NO4"),
            1,
            Some("changed after it was written"),
            None,
            Some(source("D")),
            Some(3),
        ),
        (
            FLOW,
            "E",
            "conflict",
            "hE",
            None,
            None,
            1,
            Some("clashes"),
            None,
            Some(source("E")),
            None,
        ),
        (
            FLOW,
            "F",
            "in_flight",
            "hF",
            None,
            None,
            1,
            None,
            None,
            Some(source("F")),
            None,
        ),
        (
            "orders",
            "A",
            "done",
            "hZ",
            Some("9"),
            None,
            3,
            None,
            None,
            None,
            Some(5),
        ),
    ];
    for (flow, key, status, hash, id, number, attempts, error, field, source, done_at) in ledger {
        connection
            .execute(
                "INSERT INTO ledger (flow, key, status, hash, target_id, target_number, attempts,
                     last_error, error_field, source, modified, first_seen, updated, done_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, '2024-01-01 08:00:00', ?11,
                         ?12, ?13)",
                rusqlite::params![
                    flow,
                    key,
                    status,
                    hash,
                    id,
                    number,
                    attempts,
                    error,
                    field,
                    source,
                    time(1),
                    time(4),
                    done_at.map(time),
                ],
            )
            .unwrap();
    }
    connection
        .execute(
            "INSERT INTO cursors (flow, value, updated) VALUES (?1, ?2, ?3)",
            rusqlite::params![FLOW, time(100), time(5)],
        )
        .unwrap();
    connection
        .execute_batch(&format!(
            "INSERT INTO runs (flow, kind, started, finished, outcome, window_from, window_to,
                               read, written, skipped, failed, message)
             VALUES ('{FLOW}', 'run', '{}', '{}', 'partial', '{}', '{}', 6, 2, 0, 2, 'parked');
             INSERT INTO runs (flow, kind, started) VALUES ('{FLOW}', 'retry', '{}');",
            time(0),
            time(5),
            time(-100),
            time(100),
            time(6),
        ))
        .unwrap();
}

#[test]
fn the_version_1_fixture_is_the_first_migration() {
    let fixture: String = SCHEMA_V1
        .lines()
        .skip_while(|line| line.starts_with("--"))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_eq!(fixture, schema::MIGRATIONS[0]);
}

#[test]
fn a_version_1_ledger_migrates_keeping_every_row_status_id_hash_source_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    write_version_1(&path);
    let old = Connection::open(&path).unwrap();
    let (ledger, runs) = (rows(&old, LEDGER_COLUMNS), rows(&old, RUNS));
    let sources = rows(
        &old,
        "SELECT flow, key, source FROM ledger WHERE source IS NOT NULL ORDER BY flow, key",
    );
    let auto_vacuum: u32 = old
        .pragma_query_value(None, "auto_vacuum", |row| row.get(0))
        .unwrap();
    assert_eq!(auto_vacuum, 0, "version 1 files have no auto-vacuum");
    drop(old);

    let (store, applied) = Store::open_counting_migrations(&path).unwrap();
    // Every migration since version 1.
    assert_eq!(applied, schema::LATEST as usize - 1);
    assert_eq!(store.schema_version().unwrap(), schema::LATEST);
    {
        let connection = store.lock();
        assert_eq!(rows(&connection, LEDGER_COLUMNS_AS_TEXT), ledger);
        assert_eq!(rows(&connection, RUNS), runs);
        assert_eq!(
            rows(
                &connection,
                "SELECT flow, key, source FROM sources ORDER BY flow, key"
            ),
            sources
        );
        let auto_vacuum: u32 = connection
            .pragma_query_value(None, "auto_vacuum", |row| row.get(0))
            .unwrap();
        assert_eq!(
            auto_vacuum, 2,
            "incremental auto-vacuum is on after the migration"
        );
    }
    assert_eq!(store.cursor(FLOW).unwrap(), Some(at(100)));
    // Each listed key with its status, and whether it came with its source.
    let listed = |entries: Vec<crate::state::Entry>| -> Vec<(String, Status, bool)> {
        entries
            .into_iter()
            .map(|entry| {
                let kept = entry.source == Some(source_v1(&entry.key));
                (entry.key, entry.status, kept)
            })
            .collect()
    };
    assert_eq!(
        listed(store.in_flight(FLOW).unwrap()),
        [
            ("B".to_string(), Status::InFlight, true),
            ("F".to_string(), Status::InFlight, true)
        ]
    );
    assert_eq!(
        listed(store.parked(FLOW, &[]).unwrap()),
        [
            ("C".to_string(), Status::Failed, true),
            ("D".to_string(), Status::Conflict, true),
            ("E".to_string(), Status::Conflict, true)
        ]
    );
    // What was written stays written: neither the done key nor the written conflict can be
    // marked in flight again.
    for key in ["A", "D"] {
        let pending = Pending {
            key: key.to_string(),
            hash: "h".to_string(),
            source: Source::from(json!({})),
            target: Some(Doc::from(json!({ "FBillNo": key }))),
            modified: None,
        };
        assert!(
            store.mark_in_flight(FLOW, &[pending], at(10)).is_err(),
            "{key}"
        );
    }
    drop(store);
    let (_, applied) = Store::open_counting_migrations(&path).unwrap();
    assert_eq!(applied, 0);
}

#[test]
fn a_source_is_kept_only_while_its_key_is_in_flight_or_parked() {
    let store = Store::in_memory().unwrap();
    let pending = |key: &str| Pending {
        key: key.to_string(),
        hash: "h".to_string(),
        source: Source::from(json!({ "order_no": key })),
        target: Some(Doc::from(json!({ "FBillNo": key }))),
        modified: None,
    };
    store
        .mark_in_flight(FLOW, &[pending("A"), pending("B"), pending("C")], at(0))
        .unwrap();
    let failed = |key: &str| Outcome::Failed {
        key: key.to_string(),
        message: "refused".to_string(),
        field: None,
        hash: None,
        source: Some(json!({ "order_no": key, "again": true })),
        modified: None,
    };
    store
        .record_outcomes(
            FLOW,
            &[
                Outcome::Done {
                    key: "A".to_string(),
                    target_id: Some("1".to_string()),
                    target_number: None,
                    hash: None,
                },
                failed("B"),
                Outcome::Released {
                    key: "C".to_string(),
                },
            ],
            at(1),
        )
        .unwrap();
    // A late failure report for the written key keeps no source either.
    store.record_outcomes(FLOW, &[failed("A")], at(2)).unwrap();
    let kept = rows(&store.lock(), "SELECT key FROM sources ORDER BY key");
    assert_eq!(kept, [vec![Value::Text("B".to_string())]]);
    assert_eq!(
        store.entry(FLOW, "B").unwrap().unwrap().source,
        Some(json!({ "order_no": "B", "again": true }))
    );
}

/// A source of about 3 KB, like a WDT refund order with its lines.
fn realistic_source(key: &str) -> serde_json::Value {
    let lines: Vec<serde_json::Value> = (0..8)
        .map(|i| {
            json!({
                "spec_no": format!("SKU-{i:04}"), "goods_name": "商品名称（规格）示例",
                "num": 1, "price": "129.00", "refund_amount": "129.00", "remark": "x".repeat(120),
            })
        })
        .collect();
    json!({ "order_no": key, "shop_no": "SHOP01", "status": 80, "details_list": lines })
}

/// The Kingdee bill mapped from [`realistic_source`].
fn realistic_bill(key: &str) -> serde_json::Value {
    let lines: Vec<serde_json::Value> = (0..8)
        .map(|i| {
            json!({
                "FMaterialId": {"FNumber": format!("SKU-{i:04}")}, "FRealQty": 1,
                "FTaxPrice": "129.00", "FStockId": {"FNumber": "CK01"},
                "FStockstatusId": {"FNumber": "KCZT01_SYS"}, "FEntryNote": "x".repeat(120),
            })
        })
        .collect();
    json!({
        "FBillNo": key, "FDate": "2026-11-15 17:36:29", "FBillTypeID": {"FNUMBER": "XSTHD01_SYS"},
        "FSaleOrgId": {"FNumber": "100"}, "FRetcustId": {"FNumber": "CUST01"},
        "FHeadNote": "旺店通退货入库单", "FEntity": lines,
    })
}

/// Run `batches` batches of 50 through the ledger as a run does, 3 of each 50 refused
/// (parked with its source), and finish the run.
/// `batches` of 50 records written (one in 20 parked); `keep`: the flow keeps records.
fn churn_keeping(store: &Store, first: usize, batches: usize, keep: bool) {
    let run = store.start_run(FLOW, RunKind::Run, at(0)).unwrap();
    for batch in 0..batches {
        let keys: Vec<String> = (0..50)
            .map(|i| format!("RK{:010}", first + batch * 50 + i))
            .collect();
        let pending: Vec<Pending> = keys
            .iter()
            .map(|key| Pending {
                key: key.clone(),
                hash: "0123456789abcdef0123456789abcdef".to_string(),
                source: Source::from(realistic_source(key)),
                target: keep.then(|| Doc::from(realistic_bill(key))),
                modified: Some("2026-11-15 17:36:29".to_string()),
            })
            .collect();
        store.mark_in_flight(FLOW, &pending, Utc::now()).unwrap();
        let outcomes: Vec<Outcome> = keys
            .iter()
            .enumerate()
            .map(|(i, key)| match i % 20 {
                0 => Outcome::Failed {
                    key: key.clone(),
                    message: "字段“物料编码”的值“SKU-0001”在系统中不存在".to_string(),
                    field: Some("FMaterialId".to_string()),
                    hash: None,
                    source: None,
                    modified: None,
                },
                _ => Outcome::Done {
                    key: key.clone(),
                    target_id: Some("100058".to_string()),
                    target_number: Some(key.clone()),
                    hash: None,
                },
            })
            .collect();
        store.record_outcomes(FLOW, &outcomes, Utc::now()).unwrap();
    }
    store.finish_run(run, &summary(), Utc::now()).unwrap();
}

fn churn(store: &Store, first: usize, batches: usize) {
    churn_keeping(store, first, batches, true);
}

#[test]
fn without_kept_records_rows_stay_under_600_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = Store::open(&path).unwrap();
    churn_keeping(&store, 0, 60, false);
    let footprint = footprint(&path).unwrap();
    assert_eq!(footprint.rows, 3000);
    assert!(footprint.bytes_per_row() <= 600, "{footprint}");
    assert_eq!(store.kept(FLOW, "RK0000000001").unwrap(), None);
}

/// The Kingdee bill the bundled flow maps from a sandbox order (as `mappings/refund.yaml`).
fn bill_of(order: &serde_json::Value) -> serde_json::Value {
    let text = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_string();
    let number = |value: &serde_json::Value| text(value).parse::<f64>().unwrap_or_default();
    let lines: Vec<serde_json::Value> = order["details_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| {
            json!({
                "FRowType": "Standard", "FMaterialId": {"FNumber": line["spec_no"]},
                "FUnitID": {"FNumber": "Pcs"}, "FRealQty": number(&line["num"]),
                "FTaxPrice": number(&line["tax_price"]), "FEntryTaxRate": 13,
                "FStockId": {"FNumber": format!("CK00{}", text(&order["warehouse_no"]).len())},
                "FStockstatusId": {"FNumber": "KCZT01_SYS"},
                "FReturnType": {"FNumber": "THLX01_SYS"}, "FOwnerTypeId": "BD_OwnerOrg",
                "FOwnerId": {"FNumber": "100"}, "FNote": line["remark"],
            })
        })
        .collect();
    json!({
        "FBillTypeID": {"FNUMBER": "XSTHD01_SYS"}, "FBillNo": order["order_no"],
        "FDate": text(&order["check_time"]).get(..10), "FSaleOrgId": {"FNumber": "100"},
        "FStockOrgId": {"FNumber": "100"},
        "FRetcustId": {"FNumber": format!("CUST{}", text(&order["shop_no"]))},
        "FHeadNote": format!(
            "旺店通退货入库单 {}，退换单 {}：{}",
            text(&order["order_no"]), text(&order["src_order_no"]), text(&order["refund_remark"])
        ),
        "SubHeadEntity": {
            "FSettleCurrId": {"FNumber": "PRE001"}, "FSettleOrgId": {"FNumber": "100"},
            "FThirdBillNo": order["order_no"],
        },
        "FEntity": lines,
    })
}

#[test]
fn with_kept_records_rows_stay_under_600_bytes_in_steady_state() {
    // The orders the sandbox serves the benchmark, and the bills mapped from them: each kept
    // document is about 4.7 KB of JSON. Two runs of 3,000: the second measures what a row
    // costs once the flow has its dictionary (64 KB) and its first documents packed again,
    // which the first run's 3,000 rows share.
    let until = chrono::NaiveDate::from_ymd_opt(2026, 11, 20)
        .unwrap()
        .and_hms_opt(12, 0, 0)
        .unwrap();
    let orders: Vec<serde_json::Value> = crate::sim::wdt::sample_orders(7, 6000, until)
        .iter()
        .map(|order| serde_json::to_value(order).unwrap())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = Store::open(&path).unwrap();
    let mut run = store.start_run(FLOW, RunKind::Run, at(0)).unwrap();
    let mut first = None;
    for (batch, orders) in orders.chunks(50).enumerate() {
        if batch == 60 {
            store.finish_run(run, &summary(), Utc::now()).unwrap();
            first = Some(footprint(&path).unwrap());
            run = store.start_run(FLOW, RunKind::Run, at(1)).unwrap();
        }
        let pending: Vec<Pending> = orders
            .iter()
            .enumerate()
            .map(|(i, order)| Pending {
                key: order["order_no"].as_str().unwrap().to_string(),
                hash: format!(
                    "{:032x}",
                    (batch * 50 + i) as u128 * 0x9e37_79b9_7f4a_7c15_f39c
                ),
                source: Source::from(order.clone()),
                target: Some(Doc::from(bill_of(order))),
                modified: order["modified"].as_str().map(str::to_string),
            })
            .collect();
        store.mark_in_flight(FLOW, &pending, Utc::now()).unwrap();
        let outcomes: Vec<Outcome> = pending
            .iter()
            .enumerate()
            .map(|(i, record)| match i % 20 {
                // One in twenty refused and parked with the source sent, as the writer reports
                // the sandbox's unknown SKUs.
                0 => Outcome::Failed {
                    key: record.key.clone(),
                    message: "字段“物料编码”的值“SKU-0001”在系统中不存在".to_string(),
                    field: Some("FMaterialId".to_string()),
                    hash: None,
                    source: Some(record.source.whole().unwrap()),
                    modified: None,
                },
                _ => Outcome::Done {
                    key: record.key.clone(),
                    target_id: Some(format!("{}", 100_000 + batch * 50 + i)),
                    target_number: Some(record.key.clone()),
                    hash: None,
                },
            })
            .collect();
        store.record_outcomes(FLOW, &outcomes, Utc::now()).unwrap();
    }
    store.finish_run(run, &summary(), Utc::now()).unwrap();
    let (first, both) = (first.unwrap(), footprint(&path).unwrap());
    assert_eq!((first.rows, both.rows), (3000, 6000));
    let steady = (both.bytes - first.bytes) / (both.rows - first.rows);
    assert!(steady <= 600, "{steady} bytes a row from {first} to {both}");
    // Every key keeps its source and bill, the first ones (packed before the flow had a
    // dictionary, then packed again with it) as the last.
    for order in [&orders[0], &orders[2999], &orders[5999]] {
        let key = order["order_no"].as_str().unwrap();
        let kept = store.kept(FLOW, key).unwrap().unwrap();
        assert_eq!(kept.source, *order);
        assert_eq!(kept.sent, Some(bill_of(order)));
    }
    let parked = store.parked(FLOW, &[]).unwrap();
    assert_eq!(parked.len(), 360);
    assert_eq!(parked[0].source.as_ref(), Some(&orders[0]));
}

fn summary() -> RunSummary {
    RunSummary {
        outcome: "partial".to_string(),
        window_from: None,
        window_to: None,
        read: 0,
        written: 0,
        skipped: 0,
        failed: 0,
        message: None,
    }
}

#[test]
// Schema 3 keeps every key's newest source and the record last sent (zlib, about 600 bytes
// for this 3 KB order and its bill): the slim ledger's 600 bytes a row became 1,400.
fn rows_stay_under_1400_bytes_and_deleted_sources_leave_no_free_pages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = Store::open(&path).unwrap();
    churn(&store, 0, 20);
    let first = footprint(&path).unwrap();
    churn(&store, 1000, 40);
    let second = footprint(&path).unwrap();
    assert_eq!((first.rows, second.rows), (1000, 3000));
    for footprint in [first, second] {
        assert!(footprint.bytes_per_row() <= 1_400, "{footprint}");
    }
    let free: u64 = store
        .lock()
        .pragma_query_value(None, "freelist_count", |row| row.get(0))
        .unwrap();
    assert_eq!(free, 0, "the end of a run gives the free pages back");
    // Retries that send the parked records again and again, each replacing and keeping its
    // source, leave the file as large as it was.
    let parked = store.parked(FLOW, &[]).unwrap();
    assert_eq!(parked.len(), 180);
    for attempt in 0..5 {
        let run = store.start_run(FLOW, RunKind::Retry, at(attempt)).unwrap();
        let pending: Vec<Pending> = parked
            .iter()
            .map(|entry| Pending {
                key: entry.key.clone(),
                hash: entry.hash.clone().unwrap(),
                source: Source::from(realistic_source(&entry.key)),
                target: Some(Doc::from(realistic_bill(&entry.key))),
                modified: entry.modified.clone(),
            })
            .collect();
        store.mark_in_flight(FLOW, &pending, at(attempt)).unwrap();
        let refused: Vec<Outcome> = parked
            .iter()
            .map(|entry| Outcome::Failed {
                key: entry.key.clone(),
                message: "still unknown".to_string(),
                field: None,
                hash: None,
                source: None,
                modified: None,
            })
            .collect();
        store.record_outcomes(FLOW, &refused, at(attempt)).unwrap();
        store.finish_run(run, &summary(), at(attempt)).unwrap();
    }
    let after_retries = footprint(&path).unwrap();
    assert!(
        after_retries.bytes <= second.bytes,
        "{after_retries} after {second}"
    );
    assert!(
        footprint(&dir.path().join("missing.db")).is_err(),
        "a missing file is not measured"
    );
    assert!(!dir.path().join("missing.db").exists());
}

#[test]
fn in_flight_marks_are_synced_at_commit_and_outcomes_at_checkpoints() {
    let store = Store::in_memory().unwrap();
    let level = |store: &Store| -> u32 {
        store
            .lock()
            .pragma_query_value(None, "synchronous", |row| row.get(0))
            .unwrap()
    };
    // The level is set again before each transaction, whatever the one before left.
    for round in 0..2 {
        let pending = Pending {
            key: "A".to_string(),
            hash: "h".to_string(),
            source: Source::from(json!({})),
            target: Some(Doc::from(json!({}))),
            modified: None,
        };
        store
            .mark_in_flight(FLOW, &[pending], at(2 * round))
            .unwrap();
        assert_eq!(level(&store), 2, "FULL");
        store
            .record_outcomes(
                FLOW,
                &[Outcome::Released {
                    key: "A".to_string(),
                }],
                at(2 * round + 1),
            )
            .unwrap();
        assert_eq!(level(&store), 1, "NORMAL");
    }
}

/// Version 5 only rewrites the ledger's status check: a version 4 ledger migrates whole, with
/// its triggers; a status outside the four is still refused; and writing a ledger row no longer
/// builds a temporary b-tree (SQLite's `OpenEphemeral`) to check it.
#[test]
fn a_version_4_ledger_migrates_whole_to_a_status_check_without_a_temporary_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    written_at_version(&path, 4, |tx| {
        tx.execute(
            "INSERT INTO kept (dictionary, packed) VALUES (0, x'0102')",
            [],
        )
        .unwrap();
        for (key, status, done_at, kept) in [
            ("A", "done", Some(2), Some(1)),
            ("B", "failed", None, None),
            ("C", "in_flight", None, None),
            ("D", "conflict", Some(3), None),
        ] {
            tx.execute(
                "INSERT INTO ledger (flow, key, status, hash, attempts, last_error, first_seen,
                                     updated, done_at, kept)
                 VALUES ('refund', ?1, ?2, x'0123', 1, 'e', 1, 2, ?3, ?4)",
                rusqlite::params![key, status, done_at, kept],
            )
            .unwrap();
        }
        for key in ["B", "C"] {
            tx.execute(
                "INSERT INTO sources (flow, key, dictionary, packed) VALUES ('refund', ?1, 0, x'03')",
                [key],
            )
            .unwrap();
        }
    });
    let everything = |connection: &Connection, ledger: &str| {
        [
            format!("{ledger} ORDER BY flow, key"),
            "sources ORDER BY key".to_string(),
            "kept".to_string(),
        ]
        .map(|table| rows(connection, &format!("SELECT * FROM {table}")))
    };
    let before = everything(&Connection::open(&path).unwrap(), "ledger");

    let (store, applied) = Store::open_counting_migrations(&path).unwrap();
    assert_eq!(applied, schema::MIGRATIONS.len() - 4);
    assert_eq!(store.schema_version().unwrap(), schema::LATEST);
    let connection = store.lock();
    assert_eq!(everything(&connection, ledger_by_name!()), before);

    let insert = "INSERT INTO ledger (flow_id, key, status, first_seen, updated)
                  VALUES (1, 'E', ?1, 1, 1)";
    let refused = connection.execute(insert, ["lost"]).unwrap_err();
    assert!(
        refused.to_string().contains("CHECK constraint failed"),
        "{refused}"
    );
    let plan = rows(
        &connection,
        &format!("EXPLAIN {}", insert.replace("?1", "'failed'")),
    );
    assert!(
        !plan
            .iter()
            .any(|row| row[1] == Value::Text("OpenEphemeral".into())),
        "{plan:?}"
    );

    // The triggers came along: a written key is never downgraded, a key written drops its
    // source, and an update needs a written key.
    let status = |key: &str| -> String {
        connection
            .query_row("SELECT status FROM ledger WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .unwrap()
    };
    connection
        .execute("UPDATE ledger SET status = 'failed' WHERE key = 'A'", [])
        .unwrap();
    assert_eq!(status("A"), "done");
    connection
        .execute(
            "UPDATE ledger SET status = 'done', done_at = 5 WHERE key = 'C'",
            [],
        )
        .unwrap();
    assert_eq!(
        rows(&connection, "SELECT key FROM sources"),
        [[Value::Text("B".into())]]
    );
    let update = connection.execute(
        "INSERT INTO updates (flow, key, hash, step, packed, started, updated)
         VALUES ('refund', 'B', 'h', 'update', x'00', 't', 't')",
        [],
    );
    assert!(
        update
            .unwrap_err()
            .to_string()
            .contains("an update needs a key the target confirmed")
    );
}

/// Version 6 drops the rows that only said "the kept record is the source": each key keeps the
/// source it had, a key marked again still gets its new source, and the next in-flight mark
/// writes no such row.
#[test]
fn a_version_5_ledger_loses_its_source_marks_and_every_key_keeps_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let pending = |key: &str, again: bool| Pending {
        key: key.to_string(),
        hash: "h".to_string(),
        source: Source::from(json!({ "order_no": key, "again": again })),
        target: Some(Doc::from(json!({ "FBillNo": key }))),
        modified: None,
    };
    let failed = |key: &str, source: Option<serde_json::Value>| Outcome::Failed {
        key: key.to_string(),
        message: "refused".to_string(),
        field: None,
        hash: None,
        source,
        modified: None,
    };
    {
        let store = Store::open(&path).unwrap();
        store
            .mark_in_flight(FLOW, &[pending("A", false), pending("B", false)], at(0))
            .unwrap();
        // B refused with another source than the one it was sent with: kept on its own.
        let other = json!({ "order_no": "B", "other": true });
        store
            .record_outcomes(FLOW, &[failed("A", None), failed("B", Some(other))], at(1))
            .unwrap();
        // What version 5 wrote for A: a row saying its source is the kept one. Then version
        // 6's script, on today's tables: it reads only `sources`, unchanged since version 5.
        // (Migrating a whole version 5 file from here would need a version 5 ledger, which
        // today's store cannot write.)
        let connection = store.lock();
        connection
            .execute("INSERT INTO sources (flow, key) VALUES (?1, 'A')", [FLOW])
            .unwrap();
        connection.execute_batch(schema::MIGRATIONS[5]).unwrap();
    }
    let store = Store::open(&path).unwrap();
    let source = |key: &str| store.entry(FLOW, key).unwrap().unwrap().source;
    assert_eq!(
        source("A"),
        Some(json!({ "order_no": "A", "again": false }))
    );
    assert_eq!(source("B"), Some(json!({ "order_no": "B", "other": true })));
    let marks = "SELECT key FROM sources WHERE source IS NULL AND packed IS NULL";
    assert!(rows(&store.lock(), marks).is_empty());

    // Marked again: the new source is the kept one, B's own copy goes, and no mark is written.
    store
        .mark_in_flight(FLOW, &[pending("A", true), pending("B", true)], at(2))
        .unwrap();
    assert_eq!(source("A"), Some(json!({ "order_no": "A", "again": true })));
    assert_eq!(source("B"), Some(json!({ "order_no": "B", "again": true })));
    assert!(rows(&store.lock(), "SELECT key FROM sources").is_empty());
    // Written: no source any more, although the kept record stays.
    store
        .record_outcomes(
            FLOW,
            &[Outcome::Done {
                key: "A".to_string(),
                target_id: Some("1".to_string()),
                target_number: None,
                hash: None,
            }],
            at(3),
        )
        .unwrap();
    assert_eq!(source("A"), None);
    assert!(store.kept(FLOW, "A").unwrap().is_some());
}
