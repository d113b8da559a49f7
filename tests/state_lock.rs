//! The state of a flow under pressure: one writer at a time (a second run is refused or
//! waits, a lock left by a killed run is taken over), no new ledger over a file that is not
//! one, private files, a busy database that says who holds it, and quiet exits on a closed pipe.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::sync::Sync;
use crate::support::{Engine, engine_binary, repo_root};

/// A sync whose runs take several seconds: 60 orders, every bill 120 ms in Kingdee.
fn slow_sync() -> Sync {
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "60",
            "--wdt-days",
            "2",
            "--wdt-unknown-sku-share",
            "0",
            "--kingdee-latency-per-bill-ms",
            "120",
        ],
        3,
    );
    sync.set_batch_size(5);
    // One writer: the run lasts about 11 saves × 600 ms, long enough for the other commands
    // to meet its lock however loaded the machine (an adaptive level would finish sooner).
    sync.workspace.edit(
        "mappings/refund.yaml",
        "  concurrency: adaptive",
        "  concurrency: 1 #",
    );
    sync
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
}

/// `engine state --json`.
fn state(sync: &Sync) -> Value {
    let output = sync
        .engine(&["state", "mappings/refund.yaml", "--json"])
        .success();
    serde_json::from_str(&output.stdout).unwrap()
}

/// Start a run in the background and return once it holds the flow's lock.
fn start_holding_run(sync: &Sync) -> Child {
    let mut child = sync.spawn_run(&sync.env(), Stdio::piped());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lock = &state(sync)["lock"];
        if lock["state"] == "held" && lock["holder"]["pid"] == child.id() {
            return child;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the first run ended ({status}) before it was seen holding the lock");
        }
        assert!(Instant::now() < deadline, "no lock seen: {lock}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Orders that must arrive (completed) and the bill numbers that did, asserting none twice.
#[track_caller]
fn completed_and_delivered(sync: &Sync) -> (BTreeSet<String>, BTreeSet<String>) {
    let completed = sync
        .orders()
        .iter()
        .filter(|order| text(&order["status"]) == "80")
        .map(|order| text(&order["order_no"]))
        .collect();
    let numbers: Vec<String> = sync
        .bills()
        .iter()
        .map(|bill| text(&bill["FBillNo"]))
        .collect();
    let delivered: BTreeSet<String> = numbers.iter().cloned().collect();
    assert_eq!(delivered.len(), numbers.len(), "a bill arrived twice");
    (completed, delivered)
}

/// The sum of `written` over the run history.
fn written_in_history(sync: &Sync) -> u64 {
    state(sync)["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run["written"].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn a_second_run_while_one_runs_is_refused_naming_the_first_and_nothing_lands_twice() {
    let sync = slow_sync();
    let first = start_holding_run(&sync);
    let pid = first.id();
    let refused = sync.run(&[]).code(5);
    let refused = refused
        .stderr_contains("error: flow `refund` is locked by pid ")
        .stderr_contains(&format!("pid {pid} on host `"))
        .stderr_contains("running `")
        .stderr_contains("--wait");
    assert!(refused.stderr.contains("refund.lock"), "{}", refused.stderr);
    // Everything else that writes the flow is refused too; looking is allowed.
    sync.engine(&["retry", "mappings/refund.yaml"])
        .code(5)
        .stderr_contains(&format!("pid {pid}"));
    sync.engine(&[
        "state",
        "mappings/refund.yaml",
        "--reset-cursor",
        "2020-01-01 00:00:00",
    ])
    .code(5);
    sync.engine(&["state", "mappings/refund.yaml"])
        .success()
        .stdout_contains(&format!("lock: held by pid {pid} on host `"));
    let output = first.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (completed, delivered) = completed_and_delivered(&sync);
    assert_eq!(delivered, completed);
    let after = state(&sync);
    assert_eq!(after["lock"]["state"], "free", "{after}");
    assert_eq!(after["runs"].as_array().unwrap().len(), 1, "{after}");
    assert_eq!(written_in_history(&sync), delivered.len() as u64);
}

#[test]
fn with_wait_a_second_run_waits_for_the_first_and_runs_after_it() {
    let sync = slow_sync();
    let first = start_holding_run(&sync);
    let pid = first.id();
    let second = sync
        .run(&["--wait", "5m"])
        .success()
        .stderr_contains(&format!("waiting for flow `refund`, locked by pid {pid}"));
    // The first was over when the second started.
    let output = first.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", second.stderr);
    let (completed, delivered) = completed_and_delivered(&sync);
    assert_eq!(delivered, completed);
    let runs = state(&sync)["runs"].as_array().unwrap().clone();
    assert_eq!(runs.len(), 2);
    let time =
        |value: &Value| chrono::DateTime::parse_from_rfc3339(value.as_str().unwrap()).unwrap();
    assert!(
        time(&runs[0]["started"]) >= time(&runs[1]["finished"]),
        "the second run started after the first finished: {runs:?}"
    );
    assert_eq!(written_in_history(&sync), delivered.len() as u64);
}

#[test]
fn a_lock_left_by_a_killed_run_is_taken_over_and_every_order_lands_once() {
    let sync = slow_sync();
    let mut first = start_holding_run(&sync);
    let pid = first.id();
    first.kill().unwrap();
    first.wait().unwrap();
    sync.engine(&["state", "mappings/refund.yaml"])
        .success()
        .stdout_contains(&format!("lock: free (last held by pid {pid} on host `"));
    sync.run(&[]).success().stderr_contains(&format!(
        "took over the lock of flow `refund` left by pid {pid} on host `"
    ));
    let (completed, delivered) = completed_and_delivered(&sync);
    assert_eq!(delivered, completed);
    assert_eq!(state(&sync)["lock"]["state"], "free");
}

#[test]
fn a_waiting_run_gives_up_after_its_time_naming_the_holder() {
    let sync = slow_sync();
    let first = start_holding_run(&sync);
    let pid = first.id();
    sync.run(&["--wait", "1s"])
        .code(5)
        .stderr_contains(&format!(
            "error: flow `refund` is still locked by pid {pid} on host `"
        ))
        .stderr_contains("after waiting 1s");
    assert_eq!(first.wait_with_output().unwrap().status.code(), Some(0));
}

#[test]
fn an_empty_state_file_is_refused_and_nothing_is_sent() {
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "10",
            "--wdt-days",
            "1",
            "--wdt-unknown-sku-share",
            "0",
        ],
        2,
    );
    let path = sync.workspace.path("state/state.db");
    sync.workspace.write("state/state.db", "");
    sync.run(&[])
        .code(4)
        .stderr_contains(&format!(
            "error: the state database `{}` is not an engine ledger: it is empty (0 bytes)",
            path.display()
        ))
        .stderr_contains("move the file away");
    assert_eq!(sync.bills().len(), 0, "nothing was sent");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "left as it was");
    // Only a missing file makes a new ledger.
    std::fs::remove_file(&path).unwrap();
    sync.run(&[]).success();
    assert!(!sync.bills().is_empty());
}

#[cfg(unix)]
#[test]
fn the_state_folder_database_and_lock_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "5",
            "--wdt-days",
            "1",
            "--wdt-unknown-sku-share",
            "0",
        ],
        2,
    );
    sync.run(&[]).success();
    assert_eq!(mode(&sync.workspace.path("state")), 0o700);
    assert_eq!(mode(&sync.workspace.path("state/state.db")), 0o600);
    assert_eq!(mode(&sync.workspace.path("state/refund.lock")), 0o600);
}

#[test]
fn a_state_database_kept_busy_by_another_process_names_it() {
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "5",
            "--wdt-days",
            "1",
            "--wdt-unknown-sku-share",
            "0",
        ],
        2,
    );
    sync.run(&[]).success();
    let path = sync.workspace.path("state/state.db");
    let mut connection = rusqlite::Connection::open(&path).unwrap();
    let _write = connection
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    let output = sync
        .engine(&[
            "state",
            "mappings/refund.yaml",
            "--reset-cursor",
            "2020-01-01 00:00:00",
        ])
        .code(4)
        .stderr_contains(&format!(
            "cannot reset the cursor of flow `refund` in the state database `{}`: it is locked by \
             another process (it is open in pid {}",
            path.display(),
            std::process::id()
        ));
    assert!(!output.stderr.contains("migrate"), "{}", output.stderr);
}

/// `engine ARGS…` with its stdout a pipe whose reading end is closed before it starts (closed
/// after the spawn, a fast command could have written everything into the pipe first and
/// exited 0), and its state in `state_dir`.
fn with_stdout_closed(args: &[&str], state_dir: &std::path::Path) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = Command::new(engine_binary())
        .args(args)
        .current_dir(repo_root())
        .env("ENGINE_STATE_DIR", state_dir)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn every_command_stops_quietly_with_141_when_its_output_is_closed() {
    // A state folder of its own: a fixed one under the temporary folder is shared with any
    // other copy of the suite running at once, which may remove it mid-command.
    let state_dir = tempfile::tempdir().unwrap();
    for args in [
        &["check", "mappings/", "--format", "json"][..],
        &["schema", "flow"],
        &[
            "preview",
            "mappings/refund.yaml",
            "--input",
            "mappings/samples/refund_orders.json",
        ],
        &["failed", "mappings/refund.yaml", "--json"],
        &["state", "mappings/refund.yaml", "--json"],
    ] {
        let (code, stderr) = with_stdout_closed(args, state_dir.path());
        assert_eq!(code, Some(141), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("internal error"), "{args:?}: {stderr}");
        assert!(!stderr.contains("backtrace"), "{args:?}: {stderr}");
    }
}

#[test]
fn help_for_run_and_retry_offers_to_wait_for_the_lock() {
    for command in ["run", "retry"] {
        Engine::new()
            .args([command, "--help"])
            .run()
            .success()
            .stdout_contains("--wait [<DURATION>]");
    }
}
