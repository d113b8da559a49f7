use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;

use crate::error::ErrorKind;
use crate::state::schema;
use crate::state::{Doc, Source};
use crate::state::{
    Entry, Outcome, Pending, Run, RunKind, RunSummary, Status, Store, SuccessHistory,
};

const FLOW: &str = "refund";

/// `seconds` after a fixed instant, so tests never read the clock.
fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(seconds)
}

fn keys(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|key| key.to_string()).collect()
}

fn pending(key: &str, hash: &str) -> Pending<'static> {
    Pending {
        key: key.to_string(),
        hash: hash.to_string(),
        source: Source::from(json!({ "order_no": key, "hash": hash })),
        target: Some(Doc::from(json!({ "FBillNo": key }))),
        modified: Some("2024-01-01 08:00:00".to_string()),
    }
}

fn done(key: &str, target_id: Option<&str>) -> Outcome {
    Outcome::Done {
        key: key.to_string(),
        target_id: target_id.map(str::to_string),
        target_number: target_id.map(|id| format!("NO{id}")),
        hash: None,
    }
}

fn failed(key: &str, message: &str) -> Outcome {
    Outcome::Failed {
        key: key.to_string(),
        message: message.to_string(),
        field: Some("FMaterialId".to_string()),
        hash: None,
        source: None,
        modified: None,
    }
}

fn conflict(key: &str, hash: &str) -> Outcome {
    Outcome::Conflict {
        key: key.to_string(),
        message: "changed after it was written".to_string(),
        hash: Some(hash.to_string()),
        source: Some(json!({ "order_no": key, "hash": hash })),
        modified: None,
    }
}

fn released(key: &str) -> Outcome {
    Outcome::Released {
        key: key.to_string(),
    }
}

/// One line saying everything a test cares about in a ledger row.
fn describe(entry: Option<Entry>) -> String {
    let Some(entry) = entry else {
        return "absent".to_string();
    };
    let text = |value: Option<String>| value.unwrap_or_else(|| "-".to_string());
    format!(
        "{} attempts={} hash={} id={} number={} error={} field={} source={} written={}",
        entry.status,
        entry.attempts,
        text(entry.hash),
        text(entry.target_id),
        text(entry.target_number),
        text(entry.last_error),
        text(entry.error_field),
        text(entry.source.map(|source| source["hash"].to_string())),
        if entry.done_at.is_some() { "yes" } else { "no" },
    )
}

fn assert_send_sync_clone<T: Send + Sync + Clone>() {}

#[test]
fn store_can_be_shared_between_threads() {
    assert_send_sync_clone::<Store>();
}

#[test]
fn status_and_run_kind_round_trip_through_their_text() {
    for (status, text) in [
        (Status::InFlight, "in_flight"),
        (Status::Done, "done"),
        (Status::Failed, "failed"),
        (Status::Conflict, "conflict"),
    ] {
        assert_eq!(status.to_string(), text);
        assert_eq!(text.parse::<Status>().unwrap(), status);
    }
    for (kind, text) in [
        (RunKind::Run, "run"),
        (RunKind::DryRun, "dry_run"),
        (RunKind::Backfill, "backfill"),
        (RunKind::Retry, "retry"),
    ] {
        assert_eq!(kind.to_string(), text);
        assert_eq!(text.parse::<RunKind>().unwrap(), kind);
    }
    let err = "inflight".parse::<Status>().unwrap_err();
    assert_eq!(err.message(), "unknown record status `inflight`");
    assert_eq!(err.kind(), ErrorKind::State);
    let err = "dry-run".parse::<RunKind>().unwrap_err();
    assert_eq!(err.message(), "unknown run kind `dry-run`");
}

#[test]
fn the_cursor_moves_forward_only_unless_reset() {
    enum Step {
        Advance(i64, bool),
        Reset(i64),
    }
    let store = Store::in_memory().unwrap();
    assert_eq!(store.cursor(FLOW).unwrap(), None);
    for (step, expected) in [
        (Step::Advance(100, true), 100),
        (Step::Advance(50, false), 100),
        (Step::Advance(100, false), 100),
        (Step::Advance(200, true), 200),
        (Step::Reset(10), 10),
        (Step::Advance(5, false), 10),
        (Step::Advance(20, true), 20),
        (Step::Reset(3_000), 3_000),
    ] {
        match step {
            Step::Advance(to, moved) => {
                assert_eq!(
                    store.advance_cursor(FLOW, at(to), at(9)).unwrap(),
                    moved,
                    "{to}"
                );
            }
            Step::Reset(to) => store.reset_cursor(FLOW, at(to), at(9)).unwrap(),
        }
        assert_eq!(store.cursor(FLOW).unwrap(), Some(at(expected)));
    }
    // Each flow has its own cursor.
    assert_eq!(store.cursor("orders").unwrap(), None);
    assert!(store.advance_cursor("orders", at(1), at(9)).unwrap());
    assert_eq!(store.cursor("orders").unwrap(), Some(at(1)));
    assert_eq!(store.cursor(FLOW).unwrap(), Some(at(3_000)));
}

#[test]
fn the_cursor_keeps_sub_second_precision_and_compares_it() {
    let store = Store::in_memory().unwrap();
    let base = at(0);
    let later = base + Duration::nanoseconds(1);
    assert!(store.advance_cursor(FLOW, base, base).unwrap());
    assert!(store.advance_cursor(FLOW, later, base).unwrap());
    assert!(
        !store
            .advance_cursor(FLOW, base + Duration::milliseconds(-500), base)
            .unwrap()
    );
    assert_eq!(store.cursor(FLOW).unwrap(), Some(later));
}

#[test]
fn outcomes_move_a_key_through_the_ledger() {
    enum Step {
        Mark(&'static str),
        Apply(Outcome),
    }
    use Step::{Apply, Mark};
    let cases: Vec<(&str, Vec<Step>, &str)> = vec![
        (
            "marking sends the first attempt",
            vec![Mark("h1")],
            "in_flight attempts=1 hash=h1 id=- number=- error=- field=- source=\"h1\" written=no",
        ),
        (
            "marking again counts attempts and replaces the content",
            vec![Mark("h1"), Mark("h2")],
            "in_flight attempts=2 hash=h2 id=- number=- error=- field=- source=\"h2\" written=no",
        ),
        (
            "done keeps id and number, clears the source",
            vec![Mark("h1"), Apply(done("A", Some("100")))],
            "done attempts=1 hash=h1 id=100 number=NO100 error=- field=- source=- written=yes",
        ),
        (
            "failed keeps the message, field and source",
            vec![Mark("h1"), Apply(failed("A", "unknown material"))],
            "failed attempts=1 hash=h1 id=- number=- error=unknown material field=FMaterialId source=\"h1\" written=no",
        ),
        (
            "a retry that succeeds clears the error",
            vec![
                Mark("h1"),
                Apply(failed("A", "unknown material")),
                Mark("h1"),
                Apply(done("A", Some("7"))),
            ],
            "done attempts=2 hash=h1 id=7 number=NO7 error=- field=- source=- written=yes",
        ),
        (
            "a record that could not be mapped is parked without a row before",
            vec![Apply(Outcome::Failed {
                key: "A".to_string(),
                message: "missing customer".to_string(),
                field: None,
                hash: None,
                source: Some(json!({ "hash": "s" })),
                modified: None,
            })],
            "failed attempts=0 hash=- id=- number=- error=missing customer field=- source=\"s\" written=no",
        ),
        (
            "released removes a first attempt",
            vec![Mark("h1"), Apply(released("A"))],
            "absent",
        ),
        (
            "released parks a retried key again instead of forgetting it",
            vec![
                Mark("h1"),
                Apply(failed("A", "unknown material")),
                Mark("h1"),
                Apply(released("A")),
            ],
            "failed attempts=2 hash=h1 id=- number=- error=unknown material field=FMaterialId source=\"h1\" written=no",
        ),
        (
            "released leaves a key that is not in flight alone",
            vec![Mark("h1"), Apply(failed("A", "bad")), Apply(released("A"))],
            "failed attempts=1 hash=h1 id=- number=- error=bad field=FMaterialId source=\"h1\" written=no",
        ),
        (
            "a failure after done is ignored",
            vec![
                Mark("h1"),
                Apply(done("A", Some("100"))),
                Apply(failed("A", "duplicate")),
            ],
            "done attempts=1 hash=h1 id=100 number=NO100 error=- field=- source=- written=yes",
        ),
        (
            "a release after done is ignored",
            vec![
                Mark("h1"),
                Apply(done("A", Some("100"))),
                Apply(released("A")),
            ],
            "done attempts=1 hash=h1 id=100 number=NO100 error=- field=- source=- written=yes",
        ),
        (
            "a conflict after done keeps the written hash, id and number",
            vec![
                Mark("h1"),
                Apply(done("A", Some("100"))),
                Apply(conflict("A", "h2")),
            ],
            "conflict attempts=1 hash=h1 id=100 number=NO100 error=changed after it was written field=- source=\"h2\" written=yes",
        ),
        (
            "a failure after a conflict on a written key is still ignored",
            vec![
                Mark("h1"),
                Apply(done("A", Some("100"))),
                Apply(conflict("A", "h2")),
                Apply(failed("A", "bad")),
            ],
            "conflict attempts=1 hash=h1 id=100 number=NO100 error=changed after it was written field=- source=\"h2\" written=yes",
        ),
        (
            "done again without an id keeps the first id",
            vec![
                Mark("h1"),
                Apply(done("A", Some("100"))),
                Apply(conflict("A", "h2")),
                Apply(done("A", None)),
            ],
            "done attempts=1 hash=h1 id=100 number=NO100 error=- field=- source=- written=yes",
        ),
        (
            "a conflict on a key never written takes the new hash",
            vec![Mark("h1"), Apply(conflict("A", "h2"))],
            "conflict attempts=1 hash=h2 id=- number=- error=changed after it was written field=- source=\"h2\" written=no",
        ),
    ];
    for (name, steps, expected) in cases {
        let store = Store::in_memory().unwrap();
        for (i, step) in steps.into_iter().enumerate() {
            let now = at(i as i64);
            match step {
                Mark(hash) => store
                    .mark_in_flight(FLOW, &[pending("A", hash)], now)
                    .unwrap(),
                Apply(outcome) => store.record_outcomes(FLOW, &[outcome], now).unwrap(),
            }
        }
        assert_eq!(
            describe(store.entry(FLOW, "A").unwrap()),
            expected,
            "{name}"
        );
    }
}

#[test]
fn timestamps_record_first_seen_updated_and_done() {
    let store = Store::in_memory().unwrap();
    store
        .mark_in_flight(FLOW, &[pending("A", "h1")], at(1))
        .unwrap();
    store
        .record_outcomes(FLOW, &[failed("A", "bad")], at(2))
        .unwrap();
    store
        .mark_in_flight(FLOW, &[pending("A", "h1")], at(3))
        .unwrap();
    store
        .record_outcomes(FLOW, &[done("A", Some("1"))], at(4))
        .unwrap();
    store
        .record_outcomes(FLOW, &[conflict("A", "h2")], at(5))
        .unwrap();
    let entry = store.entry(FLOW, "A").unwrap().unwrap();
    assert_eq!(
        (entry.first_seen, entry.updated, entry.done_at),
        (at(1), at(5), Some(at(4)))
    );
    assert_eq!(entry.modified.as_deref(), Some("2024-01-01 08:00:00"));
}

#[test]
fn marking_a_written_key_in_flight_is_refused_and_marks_nothing() {
    let store = Store::in_memory().unwrap();
    store
        .mark_in_flight(FLOW, &[pending("A", "h1")], at(0))
        .unwrap();
    store
        .record_outcomes(FLOW, &[done("A", Some("1"))], at(1))
        .unwrap();
    for written in [None, Some(conflict("A", "h2"))] {
        if let Some(outcome) = written {
            store.record_outcomes(FLOW, &[outcome], at(2)).unwrap();
        }
        let err = store
            .mark_in_flight(FLOW, &[pending("B", "h1"), pending("A", "h2")], at(3))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::State);
        assert_eq!(
            err.message(),
            "record `A` of flow `refund` is already in the target; refusing to mark it in flight again"
        );
        assert_eq!(store.entry(FLOW, "B").unwrap(), None);
        assert_eq!(store.entry(FLOW, "A").unwrap().unwrap().attempts, 1);
    }
}

#[test]
fn the_database_itself_never_downgrades_a_written_key() {
    let store = Store::in_memory().unwrap();
    store
        .mark_in_flight(FLOW, &[pending("A", "h1"), pending("B", "h1")], at(0))
        .unwrap();
    store
        .record_outcomes(FLOW, &[done("A", Some("1"))], at(1))
        .unwrap();
    let expected_a = describe(store.entry(FLOW, "A").unwrap());
    // Whatever a future code path or a user at the `sqlite3` prompt writes, the triggers skip
    // changes that would make a written key sendable again, and leave other rows alone.
    for sql in [
        "UPDATE ledger SET status = 'failed' WHERE key = 'A'",
        "UPDATE ledger SET status = 'in_flight', done_at = NULL WHERE key = 'A'",
        "UPDATE ledger SET done_at = NULL, status = 'conflict' WHERE key = 'A'",
        "UPDATE ledger SET status = 'failed'",
        "DELETE FROM ledger WHERE key = 'A'",
        "DELETE FROM ledger",
    ] {
        store.lock().execute_batch(sql).unwrap();
        assert_eq!(
            describe(store.entry(FLOW, "A").unwrap()),
            expected_a,
            "{sql}"
        );
    }
    // The other row was updated and then deleted by the statements above.
    assert_eq!(store.entry(FLOW, "B").unwrap(), None);
    store
        .lock()
        .execute_batch("UPDATE ledger SET status = 'conflict' WHERE key = 'A'")
        .unwrap();
    assert_eq!(
        store.entry(FLOW, "A").unwrap().unwrap().status,
        Status::Conflict
    );
}

#[test]
fn listings_and_counts_by_status() {
    let store = Store::in_memory().unwrap();
    for (i, key) in ["E", "D", "C", "B", "A"].into_iter().enumerate() {
        store
            .mark_in_flight(FLOW, &[pending(key, "h")], at(i as i64))
            .unwrap();
    }
    store
        .mark_in_flight("orders", &[pending("Z", "h")], at(0))
        .unwrap();
    store
        .record_outcomes(
            FLOW,
            &[
                done("E", Some("1")),
                failed("D", "unknown material"),
                conflict("B", "h2"),
                failed("A", "missing customer"),
            ],
            at(10),
        )
        .unwrap();

    let listed = |entries: Vec<Entry>| -> Vec<String> {
        entries.into_iter().map(|entry| entry.key).collect()
    };
    assert_eq!(listed(store.in_flight(FLOW).unwrap()), ["C"]);
    // Oldest first: D was seen before B, and B before A.
    assert_eq!(listed(store.parked(FLOW, &[]).unwrap()), ["D", "B", "A"]);
    assert_eq!(
        listed(
            store
                .parked(FLOW, &keys(&["A", "C", "E", "D", "nope"]))
                .unwrap()
        ),
        ["D", "A"]
    );
    assert_eq!(
        store.counts(FLOW).unwrap(),
        BTreeMap::from([
            (Status::InFlight, 1),
            (Status::Done, 1),
            (Status::Failed, 2),
            (Status::Conflict, 1),
        ])
    );
    assert_eq!(
        store.counts("empty").unwrap(),
        Status::ALL.into_iter().map(|status| (status, 0)).collect()
    );
    assert_eq!(listed(store.in_flight("orders").unwrap()), ["Z"]);
}

/// An alert quotes the first reasons of the records a run parked: read without the others
/// (or any source), a ledger with thousands parked costs a run's end nothing.
#[test]
fn the_reasons_of_records_parked_since_a_run_started_the_oldest_first_at_most_limit() {
    let store = Store::in_memory().unwrap();
    for (i, key) in ["D", "C", "B", "A"].into_iter().enumerate() {
        store
            .mark_in_flight(FLOW, &[pending(key, "h")], at(i as i64))
            .unwrap();
    }
    store
        .record_outcomes(FLOW, &[failed("D", "an earlier run")], at(5))
        .unwrap();
    store
        .record_outcomes(
            FLOW,
            &[
                failed("C", "unknown material"),
                done("B", Some("1")),
                failed("A", "missing customer"),
            ],
            at(10),
        )
        .unwrap();
    let reason = |key: &str, why: &str| (key.to_string(), Some(why.to_string()));
    assert_eq!(
        store.parked_since(FLOW, at(10), 5).unwrap(),
        [
            reason("C", "unknown material"),
            reason("A", "missing customer")
        ]
    );
    assert_eq!(
        store.parked_since(FLOW, at(0), 2).unwrap(),
        [
            reason("D", "an earlier run"),
            reason("C", "unknown material")
        ]
    );
    assert_eq!(store.parked_since(FLOW, at(11), 5).unwrap(), []);
    assert_eq!(store.parked_since("orders", at(0), 5).unwrap(), []);
}

#[test]
fn entries_reads_more_keys_than_sqlite_allows_parameters() {
    let store = Store::in_memory().unwrap();
    let records: Vec<Pending> = (0..1_000)
        .map(|i| pending(&format!("K{i:05}"), "h"))
        .collect();
    store.mark_in_flight(FLOW, &records, at(0)).unwrap();
    // 40 000 keys, past SQLite's limit of 32 766 bound parameters; every third one exists.
    let wanted: Vec<String> = (0..40_000)
        .step_by(3)
        .map(|i| format!("K{i:05}"))
        .chain((0..30_000).map(|i| format!("missing{i}")))
        .collect();
    let entries = store.entries(FLOW, &wanted).unwrap();
    assert_eq!(entries.len(), 334);
    assert_eq!(entries["K00999"].status, Status::InFlight);
    assert!(!entries.contains_key("K00001"));
    assert!(store.entries(FLOW, &[]).unwrap().is_empty());
    assert!(store.entries("orders", &wanted).unwrap().is_empty());
}

fn summary(outcome: &str) -> RunSummary {
    RunSummary {
        outcome: outcome.to_string(),
        window_from: Some(at(0)),
        window_to: Some(at(60)),
        read: 10,
        written: 7,
        skipped: 1,
        failed: 2,
        message: Some("2 records parked".to_string()),
    }
}

#[test]
fn runs_are_listed_newest_first_and_unfinished_ones_show() {
    let store = Store::in_memory().unwrap();
    let first = store.start_run(FLOW, RunKind::Run, at(0)).unwrap();
    store.finish_run(first, &summary("partial"), at(5)).unwrap();
    let crashed = store.start_run(FLOW, RunKind::Backfill, at(10)).unwrap();
    let other_flow = store.start_run("orders", RunKind::Run, at(11)).unwrap();
    let last = store.start_run(FLOW, RunKind::Retry, at(20)).unwrap();
    let mut last_summary = summary("ok");
    last_summary.window_from = None;
    last_summary.window_to = None;
    last_summary.message = None;
    store.finish_run(last, &last_summary, at(21)).unwrap();

    assert_eq!(
        store.runs(FLOW, 10).unwrap(),
        vec![
            Run {
                id: last,
                kind: RunKind::Retry,
                started: at(20),
                finished: Some(at(21)),
                summary: Some(last_summary),
            },
            Run {
                id: crashed,
                kind: RunKind::Backfill,
                started: at(10),
                finished: None,
                summary: None,
            },
            Run {
                id: first,
                kind: RunKind::Run,
                started: at(0),
                finished: Some(at(5)),
                summary: Some(summary("partial")),
            },
        ]
    );
    let ids = |runs: Vec<Run>| -> Vec<i64> { runs.into_iter().map(|run| run.id).collect() };
    assert_eq!(ids(store.runs(FLOW, 2).unwrap()), [last, crashed]);
    assert_eq!(ids(store.runs(FLOW, 0).unwrap()), Vec::<i64>::new());
    assert_eq!(ids(store.runs("orders", usize::MAX).unwrap()), [other_flow]);
}

#[test]
fn finishing_a_run_is_checked() {
    let store = Store::in_memory().unwrap();
    let run = store.start_run(FLOW, RunKind::DryRun, at(0)).unwrap();
    for (run_id, outcome, expected) in [
        (
            run,
            "success",
            "unknown run outcome `success`: expected `ok`, `partial` or `failed`",
        ),
        (
            run + 1,
            "ok",
            "run `2` does not exist or has already finished",
        ),
    ] {
        let err = store
            .finish_run(run_id, &summary(outcome), at(1))
            .unwrap_err();
        assert_eq!((err.kind(), err.message()), (ErrorKind::State, expected));
    }
    store.finish_run(run, &summary("failed"), at(1)).unwrap();
    let err = store.finish_run(run, &summary("ok"), at(2)).unwrap_err();
    assert_eq!(
        err.message(),
        "run `1` does not exist or has already finished"
    );
    let runs = store.runs(FLOW, 1).unwrap();
    assert_eq!(runs[0].summary.as_ref().unwrap().outcome, "failed");
}

#[test]
fn a_batch_that_fails_midway_leaves_nothing_applied() {
    let store = Store::in_memory().unwrap();
    store
        .mark_in_flight(FLOW, &[pending("A", "h1")], at(0))
        .unwrap();
    // The empty key breaks the ledger's `key <> ''` check on the second row of each batch,
    // after the first row was already written inside the transaction.
    let err = store
        .mark_in_flight(
            FLOW,
            &[pending("B", "h1"), pending("", "h1"), pending("C", "h1")],
            at(1),
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::State);
    assert_eq!(
        err.message(),
        "cannot mark records in flight for flow `refund` in the state database `:memory:`"
    );
    assert!(
        err.causes()[0].contains("CHECK constraint failed"),
        "{:?}",
        err.causes()
    );
    assert!(
        store
            .entries(FLOW, &keys(&["B", "C", ""]))
            .unwrap()
            .is_empty()
    );

    let err = store
        .record_outcomes(FLOW, &[done("A", Some("1")), failed("", "bad")], at(2))
        .unwrap_err();
    assert_eq!(
        err.message(),
        "cannot record write outcomes for flow `refund` in the state database `:memory:`"
    );
    assert_eq!(
        describe(store.entry(FLOW, "A").unwrap()),
        "in_flight attempts=1 hash=h1 id=- number=- error=- field=- source=\"h1\" written=no"
    );
    // The connection is usable after the rollback.
    store
        .record_outcomes(FLOW, &[done("A", Some("1"))], at(3))
        .unwrap();
    assert_eq!(
        store.entry(FLOW, "A").unwrap().unwrap().status,
        Status::Done
    );
}

#[test]
fn state_persists_in_the_file_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join(".engine").join("state.db");
    let (store, applied) = Store::open_counting_migrations(&path).unwrap();
    assert_eq!(applied, schema::LATEST as usize);
    assert_eq!(store.schema_version().unwrap(), schema::LATEST);
    let journal: String = store
        .lock()
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
    store.advance_cursor(FLOW, at(100), at(1)).unwrap();
    store
        .mark_in_flight(FLOW, &[pending("A", "h1"), pending("B", "h1")], at(1))
        .unwrap();
    store
        .record_outcomes(
            FLOW,
            &[done("A", Some("1")), failed("B", "unknown material")],
            at(2),
        )
        .unwrap();
    let run = store.start_run(FLOW, RunKind::Run, at(0)).unwrap();
    store.finish_run(run, &summary("partial"), at(3)).unwrap();
    let before = (
        store.entries(FLOW, &keys(&["A", "B"])).unwrap(),
        store.runs(FLOW, 10).unwrap(),
    );
    drop(store);

    let (store, applied) = Store::open_counting_migrations(&path).unwrap();
    assert_eq!(applied, 0, "an up-to-date file is not migrated again");
    assert_eq!(store.schema_version().unwrap(), schema::LATEST);
    assert_eq!(store.cursor(FLOW).unwrap(), Some(at(100)));
    assert_eq!(
        (
            store.entries(FLOW, &keys(&["A", "B"])).unwrap(),
            store.runs(FLOW, 10).unwrap(),
        ),
        before
    );
    assert_eq!(
        before.0["B"].source,
        Some(json!({ "order_no": "B", "hash": "h1" }))
    );
}

#[test]
fn two_stores_on_one_file_see_each_others_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let writer = Store::open(&path).unwrap();
    let reader = Store::open(&path).unwrap();
    writer
        .mark_in_flight(FLOW, &[pending("A", "h1")], at(0))
        .unwrap();
    assert_eq!(reader.in_flight(FLOW).unwrap().len(), 1);
    // While one connection holds the write lock, the other waits (busy_timeout) instead of
    // failing; here the lock is released before the timeout, so the second write succeeds.
    let held = std::thread::spawn({
        let writer = writer.clone();
        move || {
            let mut connection = writer.lock();
            let tx = connection
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(200));
            tx.commit().unwrap();
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(50));
    reader
        .record_outcomes(FLOW, &[done("A", Some("1"))], at(1))
        .unwrap();
    held.join().unwrap();
    assert_eq!(
        writer.entry(FLOW, "A").unwrap().unwrap().status,
        Status::Done
    );
}

#[test]
fn a_database_from_a_newer_engine_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let newer = schema::LATEST + 1;
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", newer)
        .unwrap();
    let err = Store::open(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::State);
    assert_eq!(
        err.message(),
        format!(
            "the state database `{}` has schema version `{newer}`, newer than version `{}` of this engine",
            path.display(),
            schema::LATEST
        )
    );
    assert!(err.hint().is_some());
}

#[test]
fn the_success_history_counts_completed_runs_only() {
    let store = Store::in_memory().unwrap();
    assert_eq!(
        store.success_history(FLOW).unwrap(),
        SuccessHistory::default()
    );
    let first = store.start_run(FLOW, RunKind::Run, at(0)).unwrap();
    store.finish_run(first, &summary("failed"), at(5)).unwrap();
    let partial = store.start_run(FLOW, RunKind::Run, at(10)).unwrap();
    store
        .finish_run(partial, &summary("partial"), at(15))
        .unwrap();
    // Neither a later failure, a retry nor a dry run counts as the flow succeeding.
    let failed = store.start_run(FLOW, RunKind::Run, at(20)).unwrap();
    store
        .finish_run(failed, &summary("failed"), at(25))
        .unwrap();
    for kind in [RunKind::Retry, RunKind::DryRun] {
        let other = store.start_run(FLOW, kind, at(30)).unwrap();
        store.finish_run(other, &summary("ok"), at(35)).unwrap();
    }
    let other_flow = store.start_run("orders", RunKind::Run, at(40)).unwrap();
    store
        .finish_run(other_flow, &summary("ok"), at(45))
        .unwrap();
    assert_eq!(
        store.success_history(FLOW).unwrap(),
        SuccessHistory {
            last_success: Some(at(15)),
            first_run: Some(at(0)),
        }
    );
}
