//! Schema version 3: a version 2 ledger migrates whole, every key keeps its newest source and
//! the record last sent, and updates under way keep "done stays done".

use chrono::{DateTime, Duration, TimeZone, Utc};
use rusqlite::Connection;
use serde_json::json;

use crate::state::schema;
use crate::state::tests_slim::{rows, written_at_version};
use crate::state::{Doc, Source};
use crate::state::{
    Kept, Outcome, Pending, PendingUpdate, Seen, Status, Step, Store, UpdateEnd, WrittenFilter,
};

const FLOW: &str = "refund";

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(seconds)
}

#[test]
fn a_version_2_ledger_migrates_whole_and_keeps_nothing_it_did_not_have() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    written_at_version(&path, 2, |tx| {
        tx.execute_batch(
            "INSERT INTO ledger (flow, key, status, hash, target_id, target_number, attempts,
                                 first_seen, updated, done_at)
             VALUES ('refund', 'A', 'done', 'hA', '1', 'A', 1, '2024-01-01T00:00:00.000000000Z',
                     '2024-01-01T00:00:01.000000000Z', '2024-01-01T00:00:01.000000000Z'),
                    ('refund', 'B', 'failed', 'hB', NULL, NULL, 2, '2024-01-01T00:00:00.000000000Z',
                     '2024-01-01T00:00:02.000000000Z', NULL);
             INSERT INTO sources (flow, key, source) VALUES ('refund', 'B', '{\"order_no\":\"B\"}');
             INSERT INTO cursors (flow, value, updated)
             VALUES ('refund', '2024-01-01T00:01:40.000000000Z', '2024-01-01T00:01:40.000000000Z');",
        )
        .unwrap();
    });
    let old = Connection::open(&path).unwrap();
    let ledger = rows(&old, "SELECT * FROM ledger ORDER BY flow, key");
    let sources = rows(&old, "SELECT * FROM sources ORDER BY flow, key");
    assert_eq!(
        rows(&old, "PRAGMA table_info(ledger)").len(),
        13,
        "`SELECT *` is the columns of LEDGER_COLUMNS_AS_TEXT"
    );
    drop(old);

    // Every migration since version 2 (version 3 keeps records, version 4 packs them).
    let (store, applied) = Store::open_counting_migrations(&path).unwrap();
    assert_eq!(applied, schema::LATEST as usize - 2);
    assert_eq!(store.schema_version().unwrap(), schema::LATEST);
    {
        let connection = store.lock();
        assert_eq!(
            rows(&connection, super::tests_slim::LEDGER_COLUMNS_AS_TEXT),
            ledger
        );
        assert_eq!(
            rows(
                &connection,
                "SELECT flow, key, source FROM sources ORDER BY flow, key"
            ),
            sources
        );
        assert!(rows(&connection, "SELECT * FROM kept").is_empty());
        assert!(rows(&connection, "SELECT * FROM updates").is_empty());
    }
    assert_eq!(store.cursor(FLOW).unwrap(), Some(at(100)));
    // The written key is listed for a resend, without kept content (read again, it gets some).
    let written = store.written(FLOW, &WrittenFilter::default()).unwrap();
    assert_eq!(written.len(), 1);
    assert_eq!((written[0].0.key.as_str(), &written[0].1), ("A", &None));
    assert!(
        store
            .mark_in_flight(FLOW, &[pending("A", "h2")], at(5))
            .is_err(),
        "the migrated written key stays written"
    );
}

fn pending(key: &str, hash: &str) -> Pending<'static> {
    Pending {
        key: key.to_string(),
        hash: hash.to_string(),
        source: Source::from(json!({ "order_no": key, "memo": hash })),
        target: Some(Doc::from(json!({ "FBillNo": key, "FHeadNote": hash }))),
        modified: None,
    }
}

fn written(store: &Store, key: &str, hash: &str) {
    store
        .mark_in_flight(FLOW, &[pending(key, hash)], at(0))
        .unwrap();
    store
        .record_outcomes(
            FLOW,
            &[Outcome::Done {
                key: key.to_string(),
                target_id: Some("100".to_string()),
                target_number: Some(key.to_string()),
                hash: Some(hash.to_string()),
            }],
            at(1),
        )
        .unwrap();
}

#[test]
fn a_written_key_keeps_its_newest_source_and_the_record_last_sent() {
    let store = Store::in_memory().unwrap();
    written(&store, "A", "h1");
    let sent = json!({ "FBillNo": "A", "FHeadNote": "h1" });
    assert_eq!(
        store.kept(FLOW, "A").unwrap(),
        Some(Kept {
            source: json!({ "order_no": "A", "memo": "h1" }),
            sent: Some(sent.clone()),
        }),
        "kept once done, unlike `sources`"
    );
    // Read again changed (under `on_change: skip`): the newer source, the same record sent.
    let newer = json!({ "order_no": "A", "memo": "changed" });
    store
        .keep_seen(
            FLOW,
            &[Seen {
                key: "A".to_string(),
                source: newer.clone().into(),
                sent: None,
            }],
        )
        .unwrap();
    assert_eq!(
        store.kept(FLOW, "A").unwrap(),
        Some(Kept {
            source: newer,
            sent: Some(sent)
        })
    );
    // A key the ledger does not know keeps nothing.
    store
        .keep_seen(
            FLOW,
            &[Seen {
                key: "Z".to_string(),
                source: json!({}).into(),
                sent: None,
            }],
        )
        .unwrap();
    assert_eq!(store.kept(FLOW, "Z").unwrap(), None);
}

#[test]
fn a_damaged_kept_copy_stops_no_run_and_no_resend_and_is_kept_anew_when_read_again() {
    let store = Store::in_memory().unwrap();
    written(&store, "A", "h1");
    written(&store, "B", "h1");
    // A zero-length blob, a cut header, zeros: what a damaged disk or a hand edit leaves.
    for packed in [&b""[..], b"\x78\x9c", &[0; 10]] {
        store
            .lock()
            .execute(
                "UPDATE kept SET packed = ?1 WHERE id = (SELECT kept FROM ledger WHERE key = 'A')",
                [packed],
            )
            .unwrap();
        let written = store.written(FLOW, &WrittenFilter::default()).unwrap();
        let kept: Vec<(&str, bool)> = written
            .iter()
            .map(|(entry, kept)| (entry.key.as_str(), kept.is_some()))
            .collect();
        assert_eq!(kept, [("A", false), ("B", true)], "{packed:?}");
        let newer = json!({ "order_no": "A", "memo": "read again" });
        store
            .keep_seen(
                FLOW,
                &[Seen {
                    key: "A".to_string(),
                    source: newer.clone().into(),
                    sent: None,
                }],
            )
            .unwrap();
        assert_eq!(
            store.kept(FLOW, "A").unwrap(),
            Some(Kept {
                source: newer,
                sent: None
            })
        );
    }
}

fn update(key: &str, hash: &str, step: Step) -> PendingUpdate {
    PendingUpdate {
        key: key.to_string(),
        hash: hash.to_string(),
        step,
        record: json!({ "FBillNo": key, "FHeadNote": hash }),
        source: json!({ "order_no": key, "memo": hash }),
        modified: None,
        refused: None,
        sends: 0,
    }
}

#[test]
fn an_update_goes_step_by_step_and_its_end_moves_the_hash_of_a_key_that_stays_written() {
    let store = Store::in_memory().unwrap();
    written(&store, "A", "h1");
    written(&store, "B", "h1");
    store
        .begin_update(FLOW, &update("A", "h2", Step::Update), at(2))
        .unwrap();
    assert!(
        store
            .begin_update(FLOW, &update("A", "h3", Step::Update), at(2))
            .is_err(),
        "one update per key at a time"
    );
    store
        .update_step(FLOW, "A", Step::Unaudit(0), None, at(3))
        .unwrap();
    store
        .update_step(FLOW, "A", Step::Reaudit(1), Some("refused"), at(4))
        .unwrap();
    let under_way = store.pending_updates(FLOW).unwrap();
    assert_eq!(under_way.len(), 1);
    assert_eq!(
        (
            under_way[0].step,
            under_way[0].refused.as_deref(),
            under_way[0].sends
        ),
        (Step::Reaudit(1), Some("refused"), 2)
    );
    // While it is under way the key is done, with the hash the target had.
    let entry = store.entry(FLOW, "A").unwrap().unwrap();
    assert_eq!(
        (entry.status, entry.hash.as_deref()),
        (Status::Done, Some("h1"))
    );
    store
        .finish_update(
            FLOW,
            "A",
            &UpdateEnd::Applied {
                target_id: None,
                target_number: None,
            },
            at(5),
        )
        .unwrap();
    let entry = store.entry(FLOW, "A").unwrap().unwrap();
    assert_eq!(
        (entry.status, entry.hash.as_deref()),
        (Status::Done, Some("h2"))
    );
    assert_eq!(entry.target_id.as_deref(), Some("100"));
    assert_eq!(
        store.kept(FLOW, "A").unwrap().unwrap().sent,
        Some(json!({ "FBillNo": "A", "FHeadNote": "h2" }))
    );
    assert!(store.pending_updates(FLOW).unwrap().is_empty());

    // Refused: parked as a conflict, still written, with the hash the target holds.
    store
        .begin_update(FLOW, &update("B", "h2", Step::Update), at(6))
        .unwrap();
    store
        .finish_update(
            FLOW,
            "B",
            &UpdateEnd::Refused {
                message: "已审核，不允许修改".to_string(),
            },
            at(7),
        )
        .unwrap();
    let entry = store.entry(FLOW, "B").unwrap().unwrap();
    assert_eq!(
        (
            entry.status,
            entry.hash.as_deref(),
            entry.last_error.as_deref()
        ),
        (Status::Conflict, Some("h1"), Some("已审核，不允许修改"))
    );
    assert!(entry.done_at.is_some());
    let kept = store.kept(FLOW, "B").unwrap().unwrap();
    assert_eq!(
        kept.source,
        json!({ "order_no": "B", "memo": "h2" }),
        "the newest source"
    );
    assert_eq!(
        kept.sent,
        Some(json!({ "FBillNo": "B", "FHeadNote": "h1" }))
    );
    // A key that was never written cannot have an update.
    store
        .mark_in_flight(FLOW, &[pending("C", "h1")], at(8))
        .unwrap();
    let err = store
        .begin_update(FLOW, &update("C", "h2", Step::Update), at(8))
        .unwrap_err();
    assert!(
        err.message().contains("not in the target"),
        "{}",
        err.message()
    );
}

#[test]
fn steps_round_trip_through_their_text() {
    for step in [
        Step::Update,
        Step::Upsert,
        Step::Unaudit(0),
        Step::UpdateAfterUnaudit,
        Step::Reaudit(12),
    ] {
        assert_eq!(Step::parse(&step.to_string()), Some(step));
    }
    assert_eq!(Step::parse("unaudit:x"), None);
}

#[test]
fn written_keys_are_listed_by_key_and_by_when_they_were_first_written() {
    let store = Store::in_memory().unwrap();
    for (key, second) in [("A", 10), ("B", 20), ("C", 30)] {
        store
            .mark_in_flight(FLOW, &[pending(key, "h1")], at(second))
            .unwrap();
        store
            .record_outcomes(
                FLOW,
                &[Outcome::Done {
                    key: key.to_string(),
                    target_id: None,
                    target_number: None,
                    hash: None,
                }],
                at(second),
            )
            .unwrap();
    }
    // In flight, never written: not listed.
    store
        .mark_in_flight(FLOW, &[pending("D", "h1")], at(15))
        .unwrap();
    let listed = |filter: WrittenFilter| -> Vec<String> {
        store
            .written(FLOW, &filter)
            .unwrap()
            .into_iter()
            .map(|(entry, kept)| {
                assert!(kept.is_some(), "{} keeps its content", entry.key);
                entry.key
            })
            .collect()
    };
    let cases = [
        (WrittenFilter::default(), vec!["A", "B", "C"]),
        (
            WrittenFilter {
                keys: vec!["C".to_string(), "A".to_string(), "D".to_string()],
                ..WrittenFilter::default()
            },
            vec!["A", "C"],
        ),
        (
            WrittenFilter {
                since: Some(at(20)),
                ..WrittenFilter::default()
            },
            vec!["B", "C"],
        ),
        (
            WrittenFilter {
                since: Some(at(11)),
                until: Some(at(30)),
                ..WrittenFilter::default()
            },
            vec!["B"],
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(listed(filter.clone()), expected, "{filter:?}");
    }
}

/// `source` and `sent` as schema version 3 packed them: one zlib document.
fn zlib_document(source: &serde_json::Value, sent: Option<&serde_json::Value>) -> Vec<u8> {
    use std::io::Write;
    let text = json!({ "source": source, "sent": sent }).to_string();
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn a_version_3_ledger_migrates_whole_and_its_zlib_documents_stay_readable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let source = |key: &str| json!({ "order_no": key, "memo": "退货" });
    let bill = |key: &str| json!({ "FBillNo": key, "FHeadNote": "退货" });
    written_at_version(&path, 3, |tx| {
        let time = |seconds: i64| at(seconds).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        for (key, status, hash, done) in [
            ("A", "done", "0123456789abcdef0123456789abcdef", true),
            ("B", "failed", "hB", false),
            ("C", "done", "fedcba9876543210fedcba9876543210", true),
        ] {
            tx.execute(
                "INSERT INTO ledger (flow, key, status, hash, target_id, attempts, first_seen,
                                     updated, done_at)
                 VALUES ('refund', ?1, ?2, ?3, '7', 1, ?4, ?5, ?6)",
                rusqlite::params![key, status, hash, time(1), time(2), done.then(|| time(2))],
            )
            .unwrap();
        }
        tx.execute(
            "INSERT INTO sources (flow, key, source) VALUES ('refund', 'B', ?1)",
            [source("B").to_string()],
        )
        .unwrap();
        for key in ["A", "C"] {
            tx.execute(
                "INSERT INTO kept (flow, key, packed) VALUES ('refund', ?1, ?2)",
                rusqlite::params![key, zlib_document(&source(key), Some(&bill(key)))],
            )
            .unwrap();
        }
        // An update of C under way, begun by a version 3 engine.
        tx.execute(
            "INSERT INTO updates (flow, key, hash, step, packed, started, updated)
             VALUES ('refund', 'C', 'c2c2', 'update', ?1, ?2, ?2)",
            rusqlite::params![
                zlib_document(
                    &json!({"order_no": "C", "memo": "改"}),
                    Some(&json!({"FBillNo": "C"}))
                ),
                time(3)
            ],
        )
        .unwrap();
    });
    let old = Connection::open(&path).unwrap();
    let ledger = rows(&old, "SELECT * FROM ledger ORDER BY flow, key");
    drop(old);

    let (store, applied) = Store::open_counting_migrations(&path).unwrap();
    assert_eq!(applied, schema::LATEST as usize - 3);
    assert_eq!(store.schema_version().unwrap(), schema::LATEST);
    assert_eq!(
        rows(&store.lock(), super::tests_slim::LEDGER_COLUMNS_AS_TEXT),
        ledger
    );
    for key in ["A", "C"] {
        let kept = store.kept(FLOW, key).unwrap();
        let expected = Kept {
            source: source(key),
            sent: Some(bill(key)),
        };
        assert_eq!(kept, Some(expected), "{key}");
    }
    assert_eq!(
        store.entry(FLOW, "B").unwrap().unwrap().source,
        Some(source("B"))
    );
    let listed: Vec<String> = store
        .written(FLOW, &WrittenFilter::default())
        .unwrap()
        .into_iter()
        .map(|(entry, kept)| format!("{} {}", entry.key, kept.is_some()))
        .collect();
    assert_eq!(listed, ["A true", "C true"]);
    // The update begun before the migration reads back and ends, its content kept.
    let updates = store.pending_updates(FLOW).unwrap();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].source, json!({"order_no": "C", "memo": "改"}));
    let applied = UpdateEnd::Applied {
        target_id: None,
        target_number: None,
    };
    store.finish_update(FLOW, "C", &applied, at(4)).unwrap();
    let kept = store.kept(FLOW, "C").unwrap().unwrap();
    assert_eq!(kept.sent, Some(json!({"FBillNo": "C"})));
    assert_eq!(
        store.entry(FLOW, "C").unwrap().unwrap().hash.as_deref(),
        Some("c2c2")
    );
    // Written keys stay written; new keys are kept in the new form.
    assert!(
        store
            .mark_in_flight(FLOW, &[pending("A", "h2")], at(5))
            .is_err()
    );
    written(&store, "D", "hD");
    let kept = store.kept(FLOW, "D").unwrap().unwrap();
    assert_eq!(kept.sent.map(Doc::from), pending("D", "hD").target);
}
