//! The ledger in the order keys were first marked (schema version 7): a version 6 ledger, kept
//! in key order, migrates whole; from then on a batch's rows sit together, whatever order
//! their keys have.

use rusqlite::Connection;
use serde_json::json;

use crate::state::schema;
use crate::state::tests_slim::{ledger_by_name, written_at_version};
use crate::state::{Doc, Outcome, Pending, Source, Store};

const FLOW: &str = "refund";

pub(super) fn at(seconds: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
}

/// A record of `key` to mark in flight, with a source and a mapped record to keep.
pub(super) fn pending(key: &str) -> Pending<'_> {
    Pending {
        key: key.to_string(),
        hash: "h".to_string(),
        source: Source::from(json!({ "order_no": key })),
        target: Some(Doc::from(json!({ "FBillNo": key }))),
        modified: None,
    }
}

/// The ledger's keys in the order its rows are stored.
fn stored_order(connection: &Connection) -> Vec<String> {
    let mut statement = connection
        .prepare("SELECT key FROM ledger ORDER BY rowid")
        .unwrap();
    statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

#[test]
fn a_version_6_ledger_migrates_whole_into_the_order_its_keys_were_first_seen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    written_at_version(&path, 6, |tx| {
        tx.execute(
            "INSERT INTO kept (dictionary, packed) VALUES (0, x'0102')",
            [],
        )
        .unwrap();
        // Key order and first-seen order differ.
        for (key, status, first_seen, done_at, kept) in [
            ("A", "done", 3, Some(4), Some(1)),
            ("B", "failed", 1, None, None),
            ("C", "in_flight", 2, None, None),
        ] {
            tx.execute(
                "INSERT INTO ledger (flow, key, status, hash, attempts, first_seen, updated,
                                     done_at, kept)
                 VALUES ('refund', ?1, ?2, x'0123', 1, ?3, ?3, ?4, ?5)",
                rusqlite::params![key, status, first_seen, done_at, kept],
            )
            .unwrap();
        }
    });
    let ledger = |connection: &Connection, ledger: &str| {
        let mut statement = connection
            .prepare(&format!("SELECT * FROM {ledger} ORDER BY flow, key"))
            .unwrap();
        let columns = statement.column_count();
        statement
            .query_map([], |row| {
                (0..columns)
                    .map(|i| row.get::<_, rusqlite::types::Value>(i))
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .unwrap()
            .collect::<rusqlite::Result<Vec<_>>>()
            .unwrap()
    };
    let before = ledger(&Connection::open(&path).unwrap(), "ledger");

    let (store, applied) = Store::open_counting_migrations(&path).unwrap();
    assert_eq!(applied, schema::MIGRATIONS.len() - 6);
    let connection = store.lock();
    assert_eq!(ledger(&connection, ledger_by_name!()), before);
    assert_eq!(stored_order(&connection), ["B", "C", "A"]);
    // A key is still one row, and a written key is still never downgraded.
    let twice = connection.execute(
        "INSERT INTO ledger (flow_id, key, status, first_seen, updated)
         VALUES (1, 'B', 'failed', 5, 5)",
        [],
    );
    assert!(
        twice
            .unwrap_err()
            .to_string()
            .contains("UNIQUE constraint failed"),
        "a second row for a key"
    );
    connection
        .execute("UPDATE ledger SET status = 'failed' WHERE key = 'A'", [])
        .unwrap();
    let status: String = connection
        .query_row("SELECT status FROM ledger WHERE key = 'A'", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(status, "done");
}

#[test]
fn a_batch_s_rows_are_stored_together_in_the_order_they_were_marked() {
    let store = Store::in_memory().unwrap();
    let first = ["RK05", "RK01", "RK09"];
    let second = ["RK03", "RK07"];
    store
        .mark_in_flight(FLOW, &first.map(pending), at(0))
        .unwrap();
    store
        .mark_in_flight(FLOW, &second.map(pending), at(1))
        .unwrap();
    let done = |key: &str| Outcome::Done {
        key: key.to_string(),
        target_id: Some("1".to_string()),
        target_number: None,
        hash: None,
    };
    store
        .record_outcomes(FLOW, &first.map(done), at(2))
        .unwrap();
    // Marked again (not yet written): the row stays where it was.
    store
        .mark_in_flight(FLOW, &[pending("RK03")], at(3))
        .unwrap();
    assert_eq!(
        stored_order(&store.lock()),
        ["RK05", "RK01", "RK09", "RK03", "RK07"]
    );
}
