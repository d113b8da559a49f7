//! Runs that meet trouble: refused credentials and logins, expiring sessions, server errors,
//! conflicts and dropped answers, refusals looked up together, kills and SIGTERM. Every order
//! lands once or stays in flight for the next run; none lands twice.

use super::*;

#[test]
fn refused_credentials_stop_the_run_and_move_no_cursor() {
    let sync = Sync::start(&["--wdt-orders", "10", "--wdt-days", "3"], 4);
    let output = sync
        .workspace
        .engine()
        .args(["run", "mappings/refund.yaml"])
        .envs(&sync.env())
        .env("WDT_APP_SECRET", "wrong")
        .run()
        .code(4);
    assert!(
        output.stderr.contains("Illegal request") || output.stderr.contains("Invalid signature"),
        "{}",
        output.stderr
    );
    assert!(
        !output.stderr.contains("wrong"),
        "the secret never appears: {}",
        output.stderr
    );
    let state = sync
        .engine(&["state", "mappings/refund.yaml", "--json"])
        .success();
    let state: Value = serde_json::from_str(&state.stdout).unwrap();
    assert_eq!(state["cursor"], Value::Null);
    assert_eq!(state["runs"][0]["outcome"], "failed");

    let mut env = password_login(&sync);
    env.insert("KINGDEE_PASSWORD".into(), "not-the-password".into());
    let output = sync
        .workspace
        .engine()
        .args(["run", "mappings/refund.yaml"])
        .envs(&env)
        .run()
        .code(4);
    assert!(
        output
            .stderr
            .contains("Kingdee refused the login of user `apiuser`"),
        "{}",
        output.stderr
    );
    assert!(sync.bills().is_empty());

    // A wrong app secret is only found out when the first batch is sent, after the empty
    // windows before the orders were read: the cursor still does not move.
    let mut env = sync.env();
    env.insert(
        "REFUND_SYNC_START".into(),
        (chrono::Utc::now() - chrono::Duration::days(100)).to_rfc3339(),
    );
    env.insert("KINGDEE_APP_SECRET".into(), "0".repeat(32));
    sync.workspace
        .engine()
        .args(["run", "mappings/refund.yaml"])
        .envs(&env)
        .run()
        .code(4);
    let state = sync
        .engine(&["state", "mappings/refund.yaml", "--json"])
        .success();
    let state: Value = serde_json::from_str(&state.stdout).unwrap();
    assert_eq!(state["cursor"], Value::Null, "{state}");
}

#[test]
fn a_user_not_allowed_to_call_the_webapi_stops_the_run_and_parks_nothing() {
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "30",
            "--wdt-days",
            "3",
            "--kingdee-webapi-allowed",
            "false",
        ],
        4,
    );
    let output = sync.run(&[]).code(4);
    assert!(
        output.stderr.contains("当前用户未指定允许调用WebAPI接口"),
        "Kingdee's own message: {}",
        output.stderr
    );
    assert!(parked_keys(&sync).is_empty(), "no record is blamed");
    assert!(
        !listed_keys(&sync, &["in_flight"]).is_empty(),
        "the batch refused as a whole is listed as in flight, for the next run to look up"
    );
    let state = sync
        .engine(&["state", "mappings/refund.yaml", "--json"])
        .success();
    let state: Value = serde_json::from_str(&state.stdout).unwrap();
    assert_eq!(state["cursor"], Value::Null, "{state}");
    assert_eq!(state["runs"][0]["outcome"], "failed");

    sync.post_kingdee("/_sim/users/apiuser", json!({"webapi_allowed": true}));
    let output = sync.run(&[]).code(1);
    let (eligible, unknown) = eligible_and_unknown(&sync.orders());
    assert!(
        // Settled first by the recovery, then read again and found in the ledger: written
        // once, and seen again as already written.
        output.stderr.contains(&format!(
            "{} written, {} already written, {} parked",
            eligible.len(),
            eligible.len(),
            unknown.len()
        )),
        "what the earlier run left in flight counts in this run's summary: {}",
        output.stderr
    );
    assert_eq!(bill_numbers(&sync), eligible);
    assert_eq!(parked_keys(&sync), unknown);
}

#[test]
fn a_password_session_that_expires_mid_run_is_renewed_transparently() {
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "60",
            "--wdt-days",
            "3",
            "--wdt-unknown-sku-share",
            "0",
            "--kingdee-latency-ms",
            "150",
        ],
        4,
    );
    sync.set_batch_size(5);
    sync.workspace.edit(
        "mappings/refund.yaml",
        "  concurrency: adaptive",
        "  concurrency: 1",
    );
    let env = password_login(&sync);
    let child = sync.spawn_run(&env, Stdio::piped());
    // Kill every session twice while the run writes its batches: once a bill has arrived (the
    // run is logged in), and again once another has (it logged in again).
    let mut arrived = 0;
    for _ in 0..2 {
        sync.wait_until("another bill", |sync| sync.bills().len() > arrived);
        arrived = sync.bills().len();
        sync.post_kingdee("/_sim/sessions/expire", json!({}));
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("session lost (会话信息已丢失，请重新登录); logging in again"),
        "{stderr}"
    );
    let (eligible, _) = eligible_and_unknown(&sync.orders());
    assert_eq!(bill_numbers(&sync), eligible);
}

#[test]
fn a_password_login_that_meets_server_errors_is_repeated() {
    // Half of all Kingdee calls, logins included, answer HTTP 500.
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "40",
            "--wdt-days",
            "3",
            "--wdt-unknown-sku-share",
            "0",
            "--kingdee-error-rate",
            "0.5",
            "--seed",
            "2",
        ],
        4,
    );
    let env = password_login(&sync);
    let output = sync
        .spawn_run(&env, Stdio::piped())
        .wait_with_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("answered the login of user") && stderr.contains("with HTTP 500; retrying"),
        "a login was refused and repeated: {stderr}"
    );
    let (eligible, _) = eligible_and_unknown(&sync.orders());
    assert_eq!(bill_numbers(&sync), eligible);
}

/// Regression (issue 13): every batch with a refused record looked it up on its own, on the
/// writers' critical path. Refusals are now gathered across batches and looked up together, up
/// to the lookup's `max_keys`, and still parked with the target's message when not found.
#[test]
fn refusals_of_many_batches_are_looked_up_together_up_to_max_keys() {
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "300",
            "--wdt-days",
            "3",
            "--wdt-unknown-sku-share",
            "0.15",
            "--wdt-other-status-share",
            "0",
        ],
        4,
    );
    sync.set_batch_size(5);
    sync.workspace.edit(
        "mappings/connectors/kingdee_k3cloud.yaml",
        "      max_keys: 100\n",
        "      max_keys: 10\n",
    );
    let output = sync.run(&[]).code(1);
    let (eligible, unknown) = eligible_and_unknown(&sync.orders());
    assert_eq!(bill_numbers(&sync), eligible);
    assert_eq!(parked_keys(&sync), unknown, "{}", output.stderr);
    assert!(
        output.stderr.contains("字段“物料编码”的值“"),
        "parked with the target's message: {}",
        output.stderr
    );
    let stats = sync.kingdee("/_sim/stats");
    let lookups = stats["requests"]["DynamicFormService.ExecuteBillQuery"]["ok"]
        .as_u64()
        .unwrap_or(0);
    let saves = ["ok", "partial"]
        .iter()
        .map(|answer| {
            stats["requests"]["DynamicFormService.BatchSave"][answer]
                .as_u64()
                .unwrap_or(0)
        })
        .sum::<u64>();
    let gathered = (unknown.len() as u64).div_ceil(10);
    assert!(
        unknown.len() > 20 && saves > 3 * gathered + 3,
        "enough batches refused to tell: {} parked, {saves} saves",
        unknown.len()
    );
    // ceil(parked ÷ max_keys), and one more when the cursor waited on a part of them.
    assert!(
        (gathered..=gathered + 1).contains(&lookups),
        "{lookups} lookups for {} parked records in {saves} saves: {stats}",
        unknown.len()
    );
}

#[test]
fn bills_saved_beside_a_conflict_are_not_sent_again() {
    // A conflict locks one bill of a batch and the others are saved; Kingdee would accept a
    // second copy of any of them (no bill-number uniqueness), so a resent neighbour would show.
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "80",
            "--wdt-days",
            "3",
            "--wdt-unknown-sku-share",
            "0",
            "--kingdee-conflict-rate",
            "0.5",
            "--kingdee-conflict-scope",
            "bill",
            "--kingdee-allow-duplicate-bill-no",
        ],
        4,
    );
    sync.set_batch_size(10);
    // A bill locked on every one of its sends stays in flight (exit 1): which one depends on how
    // the concurrent calls meet the sandbox's seeded draws. The next run settles it.
    let output = run_until_settled(&sync, 3);
    let (eligible, _) = eligible_and_unknown(&sync.orders());
    assert_eq!(bill_numbers(&sync), eligible);
    assert_eq!(sync.bills().len(), eligible.len(), "no bill twice");
    let stats = sync.kingdee("/_sim/stats");
    assert!(
        stats["conflicts_injected"].as_u64().unwrap() > 0,
        "conflicts happened: {stats} {}",
        output.stderr
    );
}

#[test]
fn faults_on_both_sides_are_retried_and_nothing_lands_twice() {
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "150",
            "--wdt-days",
            "4",
            "--wdt-unknown-sku-share",
            "0",
            "--wdt-error-rate",
            "0.2",
            "--wdt-rate-limit-rate",
            "0.2",
            "--kingdee-error-rate",
            "0.2",
            "--kingdee-conflict-rate",
            "0.2",
            "--kingdee-commit-then-drop-rate",
            "0.3",
        ],
        5,
    );
    sync.set_batch_size(10);
    // Under this many faults a batch can fail every send; its records then stay in flight
    // (exit 1) and the next run settles them. Nothing may ever land twice.
    run_until_settled(&sync, 3);
    let (eligible, _) = eligible_and_unknown(&sync.orders());
    assert_eq!(bill_numbers(&sync), eligible);
    let stats = sync.kingdee("/_sim/stats").to_string();
    assert!(
        stats.contains("drop"),
        "connections were dropped after commit: {stats}"
    );
}

/// Run the flow until it exits 0, at most `most` times: a run may end with 1 only for records
/// left in flight after every send met a fault, and after each run no bill is in Kingdee twice.
/// The last run's output.
fn run_until_settled(sync: &Sync, most: usize) -> Output {
    for runs in 1..=most {
        let output = sync.run(&[]);
        let bills = sync.bills();
        let numbers = bill_numbers(sync);
        assert_eq!(
            bills.len(),
            numbers.len(),
            "no bill twice: {}",
            output.stderr
        );
        match output.code {
            0 => return output,
            1 if runs < most => assert!(
                output.stderr.contains("still in flight"),
                "{}",
                output.stderr
            ),
            other => panic!("run {runs} ended with {other}: {}", output.stderr),
        }
    }
    unreachable!("the last run returns or panics")
}

/// 200 orders over four days, 20 ms per saved bill and batches of 10, so that a kill lands
/// mid-run; `unknown_share` of the orders carry an unknown SKU.
fn slow_sync(unknown_share: &str) -> Sync {
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "200",
            "--wdt-days",
            "4",
            "--wdt-unknown-sku-share",
            unknown_share,
            "--kingdee-latency-per-bill-ms",
            "20",
        ],
        5,
    );
    sync.set_batch_size(10);
    sync
}

/// Kill three runs, each once Kingdee has saved 25 more bills (mid-run, however fast the
/// engine is: a kill after a fixed time found the work done once the engine got faster), then
/// let the sandbox answer at full speed.
fn kill_three_runs_then_lift_the_latency(sync: &Sync) {
    let saved = || sync.kingdee("/_sim/stats")["bills_total"].as_u64().unwrap();
    for _ in 0..3 {
        let before = saved();
        let mut child = sync.spawn_run(&sync.env(), Stdio::null());
        let started = std::time::Instant::now();
        while saved() < before + 25 {
            assert!(
                child.try_wait().unwrap().is_none(),
                "the run ended before it saved 25 bills"
            );
            assert!(started.elapsed() < Duration::from_secs(60), "no progress");
            std::thread::sleep(Duration::from_millis(10));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        bill_numbers(sync);
    }
    sync.put_kingdee("/_sim/faults", json!({"latency_per_bill_ms": 0}));
}

#[test]
fn killed_at_random_moments_and_run_again_every_order_lands_exactly_once() {
    let sync = slow_sync("0");
    kill_three_runs_then_lift_the_latency(&sync);
    sync.run(&[]).success();
    let (eligible, _) = eligible_and_unknown(&sync.orders());
    assert_eq!(bill_numbers(&sync), eligible);
}

#[test]
fn killed_while_refusals_wait_for_their_lookup_every_order_lands_once_and_the_rest_are_parked() {
    // Refusals wait in flight to be looked up together (at the end of this one-window run), so
    // a kill leaves some in flight: the next run looks them up first and parks them.
    let sync = slow_sync("0.2");
    kill_three_runs_then_lift_the_latency(&sync);
    let output = sync.run(&[]).code(1);
    let (eligible, unknown) = eligible_and_unknown(&sync.orders());
    assert_eq!(bill_numbers(&sync), eligible, "{}", output.stderr);
    assert_eq!(sync.bills().len(), eligible.len());
    assert_eq!(parked_keys(&sync), unknown, "{}", output.stderr);
    assert!(listed_keys(&sync, &["in_flight"]).is_empty());
}

#[test]
fn a_run_stopped_by_sigterm_says_so_and_a_rerun_finishes_the_job() {
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "60",
            "--wdt-days",
            "3",
            "--wdt-unknown-sku-share",
            "0",
            "--kingdee-latency-per-bill-ms",
            "40",
        ],
        4,
    );
    sync.set_batch_size(5);
    let child = sync.spawn_run(&sync.env(), Stdio::piped());
    // Stopped once it writes: before, it may not listen for the signal yet.
    sync.wait_until("the run's first bill", |sync| !sync.bills().is_empty());
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    let state = sync
        .engine(&["state", "mappings/refund.yaml", "--json"])
        .success();
    let state: Value = serde_json::from_str(&state.stdout).unwrap();
    assert_eq!(state["runs"][0]["outcome"], "failed", "{state}");
    assert!(sync.bills().len() < 60, "stopped before the end");
    sync.run(&[]).success();
    let (eligible, _) = eligible_and_unknown(&sync.orders());
    assert_eq!(bill_numbers(&sync), eligible);
    assert_eq!(sync.bills().len(), eligible.len());
}
