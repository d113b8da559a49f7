//! What a run can be asked for beside a plain sync: a dry run, a backfill over a range, and
//! `engine state` showing and resetting the cursor.

use super::*;

#[test]
fn a_dry_run_prints_the_bodies_and_changes_nothing() {
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "15",
            "--wdt-days",
            "3",
            "--wdt-unknown-sku-share",
            "0",
        ],
        4,
    );
    let output = sync.run(&["--dry-run"]).success();
    assert!(
        output.stdout.contains("\"formid\": \"SAL_RETURNSTOCK\""),
        "{}",
        output.stdout
    );
    assert!(
        output
            .stderr
            .contains("nothing was written and the cursor did not move")
    );
    assert!(sync.bills().is_empty());
    let state: Value = serde_json::from_str(
        &sync
            .engine(&["state", "mappings/refund.yaml", "--json"])
            .success()
            .stdout,
    )
    .unwrap();
    assert_eq!(state["cursor"], Value::Null);
}

#[test]
fn a_dry_run_prints_its_bodies_as_one_json_array_or_json_lines_as_preview_does() {
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "15",
            "--wdt-days",
            "3",
            "--wdt-unknown-sku-share",
            "0",
        ],
        4,
    );
    sync.set_batch_size(4);
    let output = sync.run(&["--dry-run"]).success();
    let array: Vec<Value> = serde_json::from_str(&output.stdout)
        .unwrap_or_else(|err| panic!("not one JSON array ({err}):\n{}", output.stdout));
    assert!(array.len() > 1, "several batches: {}", output.stdout);
    assert!(
        output.stderr.contains(&format!(
            "dry run: {} request(s) would be sent",
            array.len()
        )),
        "{}",
        output.stderr
    );
    let output = sync.run(&["--dry-run", "--format", "jsonl"]).success();
    let lines: Vec<Value> = output
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    // The same bodies (batches may be built in another order by concurrent writers).
    let sorted = |bodies: &[Value]| {
        let mut texts: Vec<String> = bodies.iter().map(Value::to_string).collect();
        texts.sort();
        texts
    };
    assert_eq!(sorted(&lines), sorted(&array));
    // Logs for machines go to stderr; the bodies stay what `--format` says.
    let output = sync.run(&["--dry-run", "--log-format", "json"]).success();
    let logged: Vec<Value> = serde_json::from_str(&output.stdout).unwrap();
    assert_eq!(sorted(&logged), sorted(&array));
}

#[test]
fn a_backfill_keeps_the_cursor_and_duplicates_nothing() {
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "50",
            "--wdt-days",
            "3",
            "--wdt-unknown-sku-share",
            "0",
        ],
        4,
    );
    sync.run(&[]).success();
    let state = |sync: &Sync| -> Value {
        serde_json::from_str(
            &sync
                .engine(&["state", "mappings/refund.yaml", "--json"])
                .success()
                .stdout,
        )
        .unwrap()
    };
    let cursor = state(&sync)["cursor"].clone();
    assert!(cursor.is_string());
    let bills = bill_numbers(&sync);
    let since = (chrono::Utc::now() - chrono::Duration::days(4)).to_rfc3339();
    let output = sync.run(&["--since", &since]).success();
    assert!(
        output
            .stderr
            .contains(&format!("{} already written", bills.len())),
        "{}",
        output.stderr
    );
    // Read again, it is no new work, and the summary says so.
    let n = bills.len();
    assert!(
        output.stderr.contains(&format!(
            "{n} read: 0 new, {n} seen before; 0 written, {n} already written"
        )),
        "{}",
        output.stderr
    );
    assert_eq!(state(&sync)["cursor"], cursor);
    assert_eq!(bill_numbers(&sync), bills);
}

#[test]
fn state_shows_the_cursor_counts_and_runs_and_the_cursor_can_be_reset() {
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "30",
            "--wdt-days",
            "3",
            "--wdt-unknown-sku-share",
            "0",
        ],
        4,
    );
    sync.run(&[]).success();
    let output = sync.engine(&["state", "mappings/refund.yaml"]).success();
    assert!(output.stdout.contains("cursor: "), "{}", output.stdout);
    assert!(
        output.stdout.contains(" written, 0 parked as failed"),
        "{}",
        output.stdout
    );
    assert!(output.stdout.contains("run       "), "{}", output.stdout);
    sync.engine(&[
        "state",
        "mappings/refund.yaml",
        "--reset-cursor",
        "2024-01-01 00:00:00",
    ])
    .success();
    let state: Value = serde_json::from_str(
        &sync
            .engine(&["state", "mappings/refund.yaml", "--json"])
            .success()
            .stdout,
    )
    .unwrap();
    assert_eq!(state["cursor"], "2023-12-31T16:00:00+00:00");
}
