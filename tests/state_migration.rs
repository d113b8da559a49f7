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

/// The columns both schema versions have, the source included (version 2 keeps it in
/// `sources`, read here through the same join the engine reads it with).
const LEDGER: &str = "SELECT l.flow, l.key, l.status, l.hash, l.target_id, l.target_number, \
     l.attempts, l.last_error, l.error_field, s.source, l.modified, l.first_seen, l.updated, \
     l.done_at FROM ledger AS l LEFT JOIN sources AS s USING (flow, key) ORDER BY flow, key";

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

fn schema_version(connection: &Connection) -> u32 {
    connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap()
}

/// Rewrite the ledger at `path` as engine releases before version 2 wrote it.
fn write_as_version_1(path: &Path) {
    let current = path.with_extension("v2");
    std::fs::rename(path, &current).unwrap();
    let old = Connection::open(path).unwrap();
    old.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
        .unwrap();
    old.execute_batch(SCHEMA_V1).unwrap();
    old.pragma_update(None, "user_version", 1).unwrap();
    old.execute("ATTACH ?1 AS current", [current.to_str().unwrap()])
        .unwrap();
    old.execute_batch(
        "INSERT INTO ledger (flow, key, status, hash, target_id, target_number, attempts,
             last_error, error_field, source, modified, first_seen, updated, done_at)
         SELECT l.flow, l.key, l.status, l.hash, l.target_id, l.target_number, l.attempts,
             l.last_error, l.error_field, s.source, l.modified, l.first_seen, l.updated, l.done_at
         FROM current.ledger AS l LEFT JOIN current.sources AS s USING (flow, key);
         INSERT INTO cursors SELECT * FROM current.cursors;
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
    let before = tables(&Connection::open(&path).unwrap(), LEDGER);
    assert!(
        before[0].iter().any(|row| row[9] != Sql::Null),
        "sources are kept"
    );
    write_as_version_1(&path);
    {
        let old = Connection::open(&path).unwrap();
        assert_eq!(schema_version(&old), 1);
        assert_eq!(tables(&old, LEDGER_V1), before);
    }

    // Any command opens and migrates it; nothing is lost.
    sync.engine(&["state", "mappings/refund.yaml"]).success();
    let migrated = Connection::open(&path).unwrap();
    // The latest version (3 since the ledger keeps sources for `engine resend`).
    assert_eq!(schema_version(&migrated), 3);
    assert_eq!(tables(&migrated, LEDGER), before);
    drop(migrated);

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
