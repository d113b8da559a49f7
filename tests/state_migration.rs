//! A ledger written before the slim ledger (schema version 1, each source kept in its ledger
//! row) opens, migrates and goes on: every row, status, target id, hash, parked source and
//! run kept, and a run on it sends nothing twice.

use std::collections::BTreeSet;
use std::path::Path;

use rusqlite::Connection;
use rusqlite::types::Value as Sql;
use serde_json::{Value, json};

use crate::support::sync::Sync;

/// The schema of version 1, as engine releases before the slim ledger created it.
const SCHEMA_V1: &str = include_str!("fixtures/state/schema_v1.sql");

/// The columns both schema versions have, as version 1 wrote them (since version 4 hashes are
/// bytes and times integer nanoseconds, since version 8 a target number that is the key is
/// `''`); the source, which version 2 keeps in `sources` and version 4 packs, is read by the
/// engine's own `Store` in [`tables`].
const LEDGER: &str = "SELECT flow, key, status, \
     CASE typeof(hash) WHEN 'blob' THEN lower(hex(hash)) ELSE hash END, target_id, \
     CASE target_number WHEN '' THEN key ELSE target_number END, attempts, last_error, \
     error_field, NULL AS source, modified, \
     strftime('%Y-%m-%dT%H:%M:%S.', first_seen / 1000000000, 'unixepoch') \
         || printf('%09dZ', first_seen % 1000000000), \
     strftime('%Y-%m-%dT%H:%M:%S.', updated / 1000000000, 'unixepoch') \
         || printf('%09dZ', updated % 1000000000), \
     strftime('%Y-%m-%dT%H:%M:%S.', done_at / 1000000000, 'unixepoch') \
         || printf('%09dZ', done_at % 1000000000) \
     FROM (SELECT f.name AS flow, l.* FROM ledger AS l JOIN flows AS f ON f.id = l.flow_id) \
     ORDER BY flow, key";

/// The same columns from a version 1 ledger.
const LEDGER_V1: &str = "SELECT flow, key, status, hash, target_id, target_number, attempts, \
     last_error, error_field, source, modified, first_seen, updated, done_at FROM ledger \
     ORDER BY flow, key";

fn rows(connection: &Connection, sql: &str) -> Vec<Vec<Sql>> {
    let mut statement = connection.prepare(sql).unwrap();
    let columns = statement.column_count();
    statement
        .query_map([], |row| {
            (0..columns)
                .map(|i| row.get::<_, Sql>(i))
                .collect::<rusqlite::Result<Vec<Sql>>>()
        })
        .unwrap()
        .collect::<rusqlite::Result<Vec<_>>>()
        .unwrap()
}

/// The ledger, the cursors and the runs, whole.
fn tables(connection: &Connection, ledger: &str) -> [Vec<Vec<Sql>>; 3] {
    [
        rows(connection, ledger),
        rows(connection, "SELECT * FROM cursors ORDER BY flow"),
        rows(connection, "SELECT * FROM runs ORDER BY id"),
    ]
}

/// [`tables`] of the current ledger at `path`, each source as the engine reads it (JSON text).
fn current_tables(path: &Path) -> [Vec<Vec<Sql>>; 3] {
    let mut tables = tables(&Connection::open(path).unwrap(), LEDGER);
    let store = engine::state::Store::open(path).unwrap();
    for row in &mut tables[0] {
        let (Sql::Text(flow), Sql::Text(key)) = (&row[0], &row[1]) else {
            panic!("a ledger row without flow and key: {row:?}");
        };
        let entry = store.entry(flow, key).unwrap().unwrap();
        row[9] = entry
            .source
            .map_or(Sql::Null, |source| Sql::Text(source.to_string()));
    }
    tables
}

fn schema_version(connection: &Connection) -> u32 {
    connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap()
}

/// Rewrite the ledger at `path`, whose rows are `ledger` (as [`current_tables`] reads them), as
/// engine releases before version 2 wrote it.
fn write_as_version_1(path: &Path, ledger: &[Vec<Sql>]) {
    let current = path.with_extension("v2");
    std::fs::rename(path, &current).unwrap();
    let old = Connection::open(path).unwrap();
    old.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
        .unwrap();
    old.execute_batch(SCHEMA_V1).unwrap();
    old.pragma_update(None, "user_version", 1).unwrap();
    for row in ledger {
        old.execute(
            "INSERT INTO ledger (flow, key, status, hash, target_id, target_number, attempts,
                 last_error, error_field, source, modified, first_seen, updated, done_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            rusqlite::params_from_iter(row),
        )
        .unwrap();
    }
    old.execute("ATTACH ?1 AS current", [current.to_str().unwrap()])
        .unwrap();
    old.execute_batch(
        "INSERT INTO cursors SELECT * FROM current.cursors;
         INSERT INTO runs SELECT * FROM current.runs;
         DETACH current;",
    )
    .unwrap();
    drop(old);
    std::fs::remove_file(&current).unwrap();
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
}

/// Bill numbers in Kingdee, asserting none is there twice.
#[track_caller]
fn bill_numbers(sync: &Sync) -> BTreeSet<String> {
    let numbers: Vec<String> = sync
        .bills()
        .iter()
        .map(|bill| text(&bill["FBillNo"]))
        .collect();
    let unique: BTreeSet<String> = numbers.iter().cloned().collect();
    assert_eq!(unique.len(), numbers.len(), "a bill arrived twice");
    unique
}

/// The keys `engine failed` lists with `status`.
fn listed(sync: &Sync, status: &str) -> BTreeSet<String> {
    let output = sync
        .engine(&["failed", "mappings/refund.yaml", "--json"])
        .success();
    let listed: Vec<Value> = serde_json::from_str(&output.stdout).unwrap();
    listed
        .iter()
        .filter(|entry| entry["status"] == status)
        .map(|entry| text(&entry["key"]))
        .collect()
}

#[test]
fn a_ledger_of_schema_version_1_migrates_whole_and_a_run_on_it_sends_nothing_twice() {
    // Three of the sixty orders have an SKU Kingdee does not know: parked by the first run.
    let sync = Sync::start(&["--wdt-orders", "60", "--wdt-days", "5"], 6);
    sync.workspace
        .edit("mappings/refund.yaml", "    lag: 5s ", "    lag: 0s ");
    sync.run(&[]).code(1);
    let written = bill_numbers(&sync);
    let parked = listed(&sync, "failed");
    assert_eq!(parked.len(), 3);
    // Sent again while Kingdee refuses every call, the parked records stay in flight.
    sync.post_kingdee("/_sim/users/apiuser", json!({"webapi_allowed": false}));
    sync.engine(&["retry", "mappings/refund.yaml"]).code(4);
    assert_eq!(listed(&sync, "in_flight"), parked);

    let path = sync.workspace.path("state/state.db");
    let before = current_tables(&path);
    assert!(
        before[0].iter().any(|row| row[9] != Sql::Null),
        "sources are kept"
    );
    write_as_version_1(&path, &before[0]);
    {
        let old = Connection::open(&path).unwrap();
        assert_eq!(schema_version(&old), 1);
        assert_eq!(tables(&old, LEDGER_V1), before);
    }

    // Any command opens and migrates it; nothing is lost.
    sync.engine(&["state", "mappings/refund.yaml"]).success();
    let migrated = Connection::open(&path).unwrap();
    // The latest version (3 since the ledger keeps sources for `engine resend`, 4 since it
    // packs them against a dictionary, 5 since its status check builds no temporary table, 6
    // since a source that is the kept record's has no row of its own, 7 since the ledger is
    // stored in the order its keys were first marked, 8 since a row names its flow by number).
    assert_eq!(schema_version(&migrated), 8);
    drop(migrated);
    assert_eq!(current_tables(&path), before);

    // Read everything again: the written orders are skipped; the ones left in flight are
    // looked up, found missing, sent again from their migrated sources and parked again.
    sync.post_kingdee("/_sim/users/apiuser", json!({"webapi_allowed": true}));
    let output = sync
        .run(&["--since", &sync.workspace.read(".start")])
        .code(1);
    for expected in [
        "3 record(s) were in flight when an earlier run stopped; checking the target first",
        &format!("0 written, {} already written, 3 parked", written.len()),
    ] {
        assert!(
            output.stderr.contains(expected),
            "{expected:?}: {}",
            output.stderr
        );
    }
    let stats = sync.kingdee("/_sim/stats");
    assert_eq!(stats["bills_created"], json!(written.len()), "{stats}");
    assert_eq!(stats["duplicates_rejected"], json!(0), "{stats}");
    assert_eq!(bill_numbers(&sync), written);
    assert_eq!(listed(&sync, "failed"), parked);
    assert!(listed(&sync, "in_flight").is_empty());
}
