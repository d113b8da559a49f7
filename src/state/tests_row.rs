//! How a ledger row spells what it holds. Its flow by number (schema version 8): a row holds
//! its flow's id in `flows`, not its name; a version 7 ledger of several flows migrates whole,
//! and the triggers that reach other tables by flow name still find their rows. A target
//! number that is the record's key, as `''`.

use rusqlite::Connection;
use rusqlite::types::Value;
use serde_json::json;

use crate::state::tests_order::{at, pending};
use crate::state::tests_slim::{ledger_by_name, rows, written_at_version};
use crate::state::{Outcome, PendingUpdate, Step, Store, UpdateEnd, schema};

const CRM: &str = "customers_to_crm_with_a_long_name";

/// An update of `key` of `flow` as a `sqlite3` user (or an older engine) would insert it.
fn insert_update(connection: &Connection, flow: &str, key: &str) -> rusqlite::Result<usize> {
    connection.execute(
        "INSERT INTO updates (flow, key, hash, step, packed, started, updated)
         VALUES (?1, ?2, 'h', 'update', x'00', 't', 't')",
        [flow, key],
    )
}

#[test]
fn a_version_7_ledger_of_two_flows_migrates_whole_and_its_triggers_still_reach_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    written_at_version(&path, 7, |tx| {
        // Stored in an order that is neither flow nor key order.
        // D's empty number was typed in by hand: the engine never stored one.
        for (flow, key, status, done_at, number) in [
            ("refund", "C", "in_flight", None, None),
            (CRM, "A", "done", Some(3), Some("A")),
            ("refund", "A", "done", Some(2), Some("XSTH-1")),
            ("refund", "D", "done", Some(2), Some("")),
            ("refund", "B", "failed", None, None),
            (CRM, "B", "failed", None, None),
        ] {
            tx.execute(
                "INSERT INTO ledger (flow, key, status, hash, attempts, first_seen, updated,
                                     done_at, target_number)
                 VALUES (?1, ?2, ?3, x'0123', 1, 1, 1, ?4, ?5)",
                rusqlite::params![flow, key, status, done_at, number],
            )
            .unwrap();
        }
        for (flow, key) in [("refund", "B"), ("refund", "C"), (CRM, "B")] {
            tx.execute(
                "INSERT INTO sources (flow, key, source) VALUES (?1, ?2, ?3)",
                rusqlite::params![flow, key, json!({ "flow": flow, "key": key }).to_string()],
            )
            .unwrap();
        }
    });
    let old = Connection::open(&path).unwrap();
    // Every row as it was, but for D's empty number, which becomes no number: since version 8
    // an empty number stands for the key.
    let before = rows(
        &old,
        "SELECT flow, key, status, hash, target_id, NULLIF(target_number, ''), attempts,
                last_error, error_field, modified, first_seen, updated, done_at, kept
         FROM ledger ORDER BY flow, key",
    );
    let stored = rows(&old, "SELECT flow, key FROM ledger ORDER BY rowid");
    drop(old);

    let (store, applied) = Store::open_counting_migrations(&path).unwrap();
    assert_eq!(applied, schema::MIGRATIONS.len() - 7);
    {
        let connection = store.lock();
        // Every row, in the order it was stored, under its flow's name.
        let after = rows(
            &connection,
            concat!("SELECT * FROM ", ledger_by_name!(), " ORDER BY flow, key"),
        );
        assert_eq!(after, before);
        let order = "SELECT f.name, l.key FROM ledger AS l JOIN flows AS f ON f.id = l.flow_id
                     ORDER BY l.rowid";
        assert_eq!(rows(&connection, order), stored);
        assert_eq!(
            rows(&connection, "SELECT id, name FROM flows ORDER BY id"),
            [
                vec![Value::Integer(1), Value::Text(CRM.to_string())],
                vec![Value::Integer(2), Value::Text("refund".to_string())],
            ]
        );
        // A statement still naming the flow by name fails, never matches nothing.
        let old = connection.prepare("SELECT key FROM ledger WHERE flow = 'refund'");
        assert!(
            old.unwrap_err()
                .to_string()
                .contains("no such column: flow")
        );
        // An update needs a written key of its own flow.
        insert_update(&connection, CRM, "A").unwrap();
        let refused = insert_update(&connection, CRM, "B").unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("needs a key the target confirmed")
        );
        let refused = insert_update(&connection, "refund", "X").unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("needs a key the target confirmed")
        );
        // D is written in `refund` only.
        insert_update(&connection, "refund", "D").unwrap();
        let refused = insert_update(&connection, CRM, "D").unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("needs a key the target confirmed")
        );
    }
    let source = |flow: &str, key: &str| store.entry(flow, key).unwrap().unwrap().source;
    assert_eq!(source(CRM, "B"), Some(json!({ "flow": CRM, "key": "B" })));
    assert_eq!(store.entry(CRM, "C").unwrap(), None);
    let number = |flow: &str, key: &str| store.entry(flow, key).unwrap().unwrap().target_number;
    assert_eq!(number(CRM, "A").as_deref(), Some("A"));
    assert_eq!(number("refund", "A").as_deref(), Some("XSTH-1"));
    assert_eq!(number("refund", "D"), None);

    // Written, and released: each takes its own source with it, and no other flow's.
    store
        .record_outcomes(
            "refund",
            &[
                Outcome::Done {
                    key: "B".to_string(),
                    target_id: Some("7".to_string()),
                    target_number: None,
                    hash: None,
                },
                Outcome::Released {
                    key: "C".to_string(),
                },
            ],
            at(5),
        )
        .unwrap();
    assert_eq!(source("refund", "B"), None);
    assert_eq!(store.entry("refund", "C").unwrap(), None);
    assert_eq!(
        rows(&store.lock(), "SELECT flow, key FROM sources"),
        [vec![Value::Text(CRM.to_string()), Value::Text("B".into())]]
    );
    assert_eq!(source(CRM, "B"), Some(json!({ "flow": CRM, "key": "B" })));
}

#[test]
fn a_flow_first_written_gets_the_next_number_and_a_flow_never_written_reads_empty() {
    let store = Store::in_memory().unwrap();
    for flow in ["refund", CRM, "refund"] {
        store.mark_in_flight(flow, &[pending("A")], at(0)).unwrap();
    }
    let connection = store.lock();
    assert_eq!(
        rows(
            &connection,
            "SELECT f.name, l.key FROM ledger AS l JOIN flows AS f ON f.id = l.flow_id
             ORDER BY l.rowid"
        ),
        [
            vec![Value::Text("refund".into()), Value::Text("A".into())],
            vec![Value::Text(CRM.into()), Value::Text("A".into())],
        ]
    );
    // The first flow is 1, which SQLite stores in no byte.
    assert_eq!(
        rows(&connection, "SELECT id FROM flows WHERE name = 'refund'"),
        [vec![Value::Integer(1)]]
    );
    drop(connection);
    assert!(store.in_flight("orders").unwrap().is_empty());
    assert!(store.entry("orders", "A").unwrap().is_none());
    assert_eq!(store.counts("orders").unwrap().values().sum::<u64>(), 0);
    assert_eq!(store.in_flight(CRM).unwrap().len(), 1);
    // Reading a flow never written gives it no number.
    assert_eq!(
        rows(&store.lock(), "SELECT COUNT(*) FROM flows"),
        [vec![Value::Integer(2)]]
    );
}

#[test]
fn a_target_number_that_is_the_key_is_stored_empty_and_read_back_as_the_key() {
    let store = Store::in_memory().unwrap();
    let done = |key: &str, number: Option<&str>| Outcome::Done {
        key: key.to_string(),
        target_id: Some("7".to_string()),
        target_number: number.map(str::to_string),
        hash: None,
    };
    store
        .mark_in_flight("refund", &[pending("RK1"), pending("RK2")], at(0))
        .unwrap();
    store
        .record_outcomes(
            "refund",
            &[done("RK1", Some("RK1")), done("RK2", Some("XSTH-2"))],
            at(1),
        )
        .unwrap();
    let stored = "SELECT key, target_number FROM ledger ORDER BY key";
    assert_eq!(
        rows(&store.lock(), stored),
        [
            vec![Value::Text("RK1".into()), Value::Text(String::new())],
            vec![Value::Text("RK2".into()), Value::Text("XSTH-2".into())],
        ]
    );
    let number = |key: &str| store.entry("refund", key).unwrap().unwrap().target_number;
    assert_eq!(number("RK1").as_deref(), Some("RK1"));
    assert_eq!(number("RK2").as_deref(), Some("XSTH-2"));
    // A later confirmation without a number, or with an empty one, keeps the number known.
    store
        .record_outcomes("refund", &[done("RK1", None), done("RK2", Some(""))], at(2))
        .unwrap();
    assert_eq!(number("RK1").as_deref(), Some("RK1"));
    assert_eq!(number("RK2").as_deref(), Some("XSTH-2"));
    // Every reader of entries reads it back so: the console's search too.
    let found: Vec<Option<String>> = store
        .search("refund", "RK", 10)
        .unwrap()
        .into_iter()
        .map(|entry| entry.target_number)
        .collect();
    assert_eq!(found, [Some("RK1".into()), Some("XSTH-2".into())]);
}

/// An update's end stores its number as an outcome does.
#[test]
fn an_update_that_gives_the_key_as_the_number_stores_it_empty_too() {
    let store = Store::in_memory().unwrap();
    store
        .mark_in_flight("refund", &[pending("RK1")], at(0))
        .unwrap();
    let done = Outcome::Done {
        key: "RK1".to_string(),
        target_id: Some("7".to_string()),
        target_number: Some("XSTH-1".to_string()),
        hash: Some("h1".to_string()),
    };
    store.record_outcomes("refund", &[done], at(1)).unwrap();
    let stored = |store: &Store| {
        rows(&store.lock(), "SELECT target_number FROM ledger")
            .concat()
            .pop()
            .unwrap()
    };
    assert_eq!(stored(&store), Value::Text("XSTH-1".into()));
    for (number, expected) in [("RK1", ""), ("XSTH-9", "XSTH-9")] {
        let update = PendingUpdate {
            key: "RK1".to_string(),
            hash: format!("h-{number}"),
            step: Step::Update,
            record: json!({ "FBillNo": number }),
            source: json!({ "order_no": "RK1" }),
            modified: None,
            refused: None,
            sends: 0,
        };
        store.begin_update("refund", &update, at(2)).unwrap();
        let applied = UpdateEnd::Applied {
            target_id: None,
            target_number: Some(number.to_string()),
        };
        store
            .finish_update("refund", "RK1", &applied, at(3))
            .unwrap();
        assert_eq!(stored(&store), Value::Text(expected.into()), "{number}");
        let entry = store.entry("refund", "RK1").unwrap().unwrap();
        assert_eq!(entry.target_number.as_deref(), Some(number));
    }
}
