//! `engine serve`: flows on their schedules, one run at a time, stopped cleanly by SIGTERM.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::run::{bill_numbers, eligible_and_unknown};
use crate::support::prometheus::{self, Sample};
use crate::support::sync::Sync;
use crate::support::workspace::Workspace;

/// The finished runs in `engine state --json`, as (started, finished), oldest first.
fn finished_runs(sync: &Sync) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let output = sync
        .engine(&["state", "mappings/refund.yaml", "--json"])
        .success();
    let state: Value = serde_json::from_str(&output.stdout).unwrap();
    let time = |v: &Value| {
        DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .with_timezone(&Utc)
    };
    let mut runs: Vec<_> = state["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|run| !run["finished"].is_null())
        .map(|run| (time(&run["started"]), time(&run["finished"])))
        .collect();
    runs.sort();
    runs
}

/// Poll until `done` holds; the deadline only keeps a broken build from hanging the suite.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn serve_runs_the_flow_on_its_schedule_one_run_at_a_time_and_stops_cleanly_on_sigterm() {
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "20",
            "--wdt-days",
            "2",
            "--wdt-unknown-sku-share",
            "0",
        ],
        3,
    );
    sync.workspace
        .edit("mappings/refund.yaml", "    lag: 5s ", "    lag: 0s ");
    let flow = sync.workspace.read("mappings/refund.yaml");
    sync.workspace.write(
        "mappings/refund.yaml",
        format!("{flow}\nschedule: {{ every: 2s }}\n"),
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let serve = Command::new(crate::support::engine_binary())
        .args(["serve", "mappings/refund.yaml", "--listen", &listen])
        .env("ENGINE_SERVE_TOKEN", "s3cret")
        .current_dir(sync.workspace.root())
        .envs(&sync.env())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("engine serve starts");
    wait_until("two runs", || finished_runs(&sync).len() >= 2);
    let first = bill_numbers(&sync);
    assert!(!first.is_empty());

    // New orders between cycles arrive with the next ones, none twice.
    sync.post_wdt("/_sim/generate", json!({"count": 5}));
    let runs_then = finished_runs(&sync).len();
    wait_until("two more runs", || {
        finished_runs(&sync).len() >= runs_then + 2
    });
    wait_until("the new orders", || {
        bill_numbers(&sync) == eligible_and_unknown(&sync.orders()).0
    });

    // Metrics: what the runs wrote is what arrived; every request needs the token.
    let http = reqwest::blocking::Client::new();
    let url = format!("http://{listen}/metrics");
    assert_eq!(http.get(&url).send().unwrap().status().as_u16(), 401);
    let text = http
        .get(&url)
        .bearer_auth("s3cret")
        .send()
        .unwrap()
        .text()
        .unwrap();
    let bills = bill_numbers(&sync);
    assert_eq!(
        series(&text, "engine_records_written_total{flow=\"refund\"}"),
        bills.len() as f64,
        "{text}"
    );
    assert!(
        series(&text, "engine_runs_total{flow=\"refund\",outcome=\"ok\"}") >= 4.0,
        "{text}"
    );
    assert_eq!(
        series(&text, "engine_records_in_flight{flow=\"refund\"}"),
        0.0,
        "{text}"
    );
    // The API calls of the runs, counted as they happened: every run read WDT at least once.
    let samples = prometheus::parse(&text);
    let ok_calls = |connector: &str| {
        prometheus::sum(
            &samples,
            "engine_api_calls_total",
            &[("connector", connector), ("outcome", "ok")],
        )
    };
    assert!(
        ok_calls("wdt_qimen") >= series(&text, "engine_runs_total{flow=\"refund\",outcome=\"ok\"}"),
        "{text}"
    );
    assert!(ok_calls("kingdee_k3cloud") >= 1.0, "{text}");
    // The console is served beside the metrics, behind the same token.
    let console = format!("http://{listen}/");
    assert_eq!(http.get(&console).send().unwrap().status().as_u16(), 401);
    let page = http
        .get(format!("{console}?token=s3cret"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains("refund"), "{page}");
    // The schedule parsed, with its next start in the flow's time zone, not the YAML as written.
    assert!(page.contains("every 2s · 下次 next 20"), "{page}");
    assert!(page.contains(" (Asia/Shanghai)"), "{page}");
    assert!(!page.contains("{ every: 2s }"), "{page}");

    let killed = Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = serve.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("flow `refund` (mappings/refund.yaml) runs every 2s"),
        "{stderr}"
    );
    assert!(stderr.contains("engine serve stopped"), "{stderr}");

    let bills = bill_numbers(&sync);
    assert!(bills.len() > first.len(), "{stderr}");
    assert_eq!(bills, eligible_and_unknown(&sync.orders()).0, "{stderr}");
    let runs = finished_runs(&sync);
    for pair in runs.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "runs overlap: {pair:?}");
    }
}

/// The value of the series `name{labels}` in Prometheus text.
fn series(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn run_writes_its_metrics_file_for_the_textfile_collector() {
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "20",
            "--wdt-days",
            "2",
            "--wdt-unknown-sku-share",
            "0",
        ],
        3,
    );
    sync.workspace
        .edit("mappings/refund.yaml", "    lag: 5s ", "    lag: 0s ");
    let file = sync.workspace.path("refund.prom");
    sync.run(&["--metrics-file", &file.display().to_string()])
        .success();
    let text = std::fs::read_to_string(&file).unwrap();
    let bills = bill_numbers(&sync);
    assert!(!bills.is_empty());
    assert_eq!(
        series(&text, "engine_records_written_total{flow=\"refund\"}"),
        bills.len() as f64
    );
    assert_eq!(
        series(&text, "engine_runs_total{flow=\"refund\",outcome=\"ok\"}"),
        1.0
    );
    assert_eq!(
        series(&text, "engine_run_duration_seconds_count{flow=\"refund\"}"),
        1.0
    );
    // Written beside the file, then renamed: no temporary file is left.
    let names: Vec<_> = std::fs::read_dir(sync.workspace.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".tmp"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn serve_refuses_to_listen_off_loopback_without_a_token() {
    let workspace = Workspace::with_bundle();
    let flow = workspace.read("mappings/refund.yaml");
    workspace.write(
        "mappings/refund.yaml",
        format!("{flow}\nschedule: {{ every: 5m }}\n"),
    );
    workspace
        .engine()
        .args(["serve", "--listen", "0.0.0.0:0"])
        .run()
        .code(2)
        .stderr_contains("`--listen 0.0.0.0:0` is not a loopback address: a token is required");
}

#[test]
fn serve_skips_flows_without_a_schedule_and_refuses_when_none_has_one() {
    let workspace = Workspace::with_bundle();
    workspace
        .engine()
        .args(["serve"])
        .run()
        .code(2)
        .stderr_contains(
            "flow `refund` (mappings/refund.yaml) has no `schedule:`; serve does not run it",
        )
        .stderr_contains("error: no flow to serve: none declares a `schedule:`");
}

#[test]
fn check_refuses_a_bad_schedule() {
    let workspace = Workspace::with_bundle();
    let flow = workspace.read("mappings/refund.yaml");
    for (schedule, message) in [
        ("{ every: 2x }", "`2x` is not an interval of at least `1s`"),
        (
            "{ cron: \"61 * * * *\" }",
            "`61 * * * *` is not a cron expression",
        ),
        (
            "{ every: 5m, cron: \"0 2 * * *\" }",
            "`schedule` needs exactly one of `every` and `cron`",
        ),
        (
            "{ every: 5m, time_zone: Mars/Olympus }",
            "`Mars/Olympus` is not a time zone",
        ),
    ] {
        workspace.write(
            "mappings/refund.yaml",
            format!("{flow}\nschedule: {schedule}\n"),
        );
        workspace
            .engine()
            .args(["check", "mappings/refund.yaml"])
            .run()
            .code(3)
            .stderr_contains(message);
    }
}

#[test]
fn log_format_json_writes_one_object_per_event_with_event_flow_and_ts() {
    let sync = Sync::start(&["--wdt-orders", "30", "--wdt-days", "2"], 3);
    sync.workspace
        .edit("mappings/refund.yaml", "    lag: 5s ", "    lag: 0s ");
    let output = sync.run(&["--log-format", "json"]).code(1);
    let events: Vec<Value> = output
        .stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    for event in &events {
        assert_eq!(event["flow"], "refund", "{event}");
        assert!(
            event["event"].is_string() && event["ts"].is_string(),
            "{event}"
        );
    }
    let names: std::collections::BTreeSet<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    for name in ["run_start", "window", "page", "batch", "parked", "run_end"] {
        assert!(names.contains(name), "{name} in {names:?}");
    }
    let parked = events.iter().find(|e| e["event"] == "parked").unwrap();
    assert!(
        parked["key"].is_string() && parked["reason"].is_string(),
        "{parked}"
    );
    let end = events.last().unwrap();
    assert_eq!(end["event"], "run_end");
    assert_eq!(
        end["written"].as_u64().unwrap() as usize,
        bill_numbers(&sync).len()
    );

    // retry speaks the same language.
    let output = sync
        .engine(&["retry", "mappings/refund.yaml", "--log-format", "json"])
        .code(1);
    for line in output.stderr.lines() {
        let event: Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert_eq!(event["flow"], "refund", "{event}");
    }
}

#[test]
fn metrics_count_api_calls_by_outcome_with_latency_histograms_and_rate_limit_waits() {
    // One WDT request in three is refused as too frequent (`1012`): throttled, then waited out.
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "40",
            "--wdt-days",
            "2",
            "--wdt-unknown-sku-share",
            "0",
            "--wdt-rate-limit-rate",
            "0.3",
        ],
        3,
    );
    sync.workspace
        .edit("mappings/refund.yaml", "    lag: 5s ", "    lag: 0s ");
    // Pages of 5: a dozen requests, so that the seeded fault strikes some.
    sync.workspace
        .edit("mappings/refund.yaml", "  page_size: 100", "  page_size: 5");
    let file = sync.workspace.path("refund.prom");
    sync.run(&["--metrics-file", &file.display().to_string()])
        .success();
    let samples = prometheus::parse(&std::fs::read_to_string(&file).unwrap());
    let calls = |with: &[(&str, &str)]| prometheus::sum(&samples, "engine_api_calls_total", with);

    // Every request the WDT sandbox answered is counted once, the refused ones as throttled.
    let stats = sync.wdt("/_sim/stats");
    let refused =
        stats["injected_rate_limit"].as_u64().unwrap() + stats["rate_limited"].as_u64().unwrap();
    assert!(refused > 0, "the fault was on: {stats}");
    let wdt = ("connector", "wdt_qimen");
    assert_eq!(
        calls(&[wdt]),
        stats["requests"].as_u64().unwrap() as f64,
        "{stats}"
    );
    assert_eq!(calls(&[wdt, ("outcome", "throttled")]), refused as f64);
    assert_eq!(
        calls(&[
            wdt,
            ("operation", "stockin_refund_query"),
            ("outcome", "ok")
        ]),
        stats["ok"].as_u64().unwrap() as f64
    );
    // Kingdee's saves all went through.
    let saves = calls(&[
        ("connector", "kingdee_k3cloud"),
        ("operation", "batch_save"),
    ]);
    assert!(saves > 0.0);
    assert_eq!(
        calls(&[
            ("connector", "kingdee_k3cloud"),
            ("operation", "batch_save"),
            ("outcome", "ok")
        ]),
        saves
    );

    // A histogram per connector and operation: cumulative buckets up to +Inf = count = calls.
    let pairs: BTreeSet<(String, String)> = samples
        .iter()
        .filter(|s| s.name == "engine_api_calls_total")
        .map(|s| {
            (
                s.label("connector").to_string(),
                s.label("operation").to_string(),
            )
        })
        .collect();
    for (connector, operation) in &pairs {
        let of =
            |s: &&Sample| s.label("connector") == connector && s.label("operation") == operation;
        let buckets: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.name == "engine_api_call_duration_seconds_bucket")
            .filter(of)
            .collect();
        assert!(buckets.len() > 2, "{connector} {operation}");
        assert!(
            buckets.windows(2).all(|w| w[0].value <= w[1].value),
            "{buckets:?}"
        );
        let last = buckets.last().unwrap();
        assert_eq!(last.label("le"), "+Inf");
        let count = prometheus::sum(
            &samples,
            "engine_api_call_duration_seconds_count",
            &[("connector", connector), ("operation", operation)],
        );
        assert_eq!(last.value, count);
        assert_eq!(
            count,
            calls(&[("connector", connector), ("operation", operation)])
        );
        let sum = prometheus::sum(
            &samples,
            "engine_api_call_duration_seconds_sum",
            &[("connector", connector), ("operation", operation)],
        );
        assert!(sum > 0.0, "{connector} {operation}");
    }

    // Each refusal held every WDT call: the next one waited.
    assert!(prometheus::sum(&samples, "engine_rate_limit_waits_total", &[wdt]) >= 1.0);
    assert!(prometheus::sum(&samples, "engine_rate_limit_wait_seconds_total", &[wdt]) > 0.0);
}

/// A child process killed (and reaped) when the test ends, whatever happens.
struct Reaped(Option<Child>);

impl Reaped {
    fn id(&self) -> u32 {
        self.0.as_ref().unwrap().id()
    }

    /// SIGTERM, then wait for the exit; the status.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let child = self.0.as_mut().unwrap();
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let mut status = None;
        wait_until("the process to exit after SIGTERM", || {
            status = child.try_wait().unwrap();
            status.is_some()
        });
        self.0 = None;
        status.unwrap()
    }
}

impl Reaped {
    /// Wait for the process to end by itself; the status.
    fn wait(&mut self) -> std::process::ExitStatus {
        let child = self.0.as_mut().unwrap();
        let mut status = None;
        wait_until("the process to exit", || {
            status = child.try_wait().unwrap();
            status.is_some()
        });
        self.0 = None;
        status.unwrap()
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The lines a child writes on stderr, collected as they come.
fn collect_stderr(child: &mut Child) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

#[test]
fn serve_skips_ticks_while_another_command_holds_the_flow_says_so_and_logs_only_json() {
    let sync = Sync::start(&["--wdt-orders", "20", "--wdt-days", "2"], 3);
    let flow = sync.workspace.read("mappings/refund.yaml");
    sync.workspace.write(
        "mappings/refund.yaml",
        format!("{flow}\nschedule: {{ every: 1s }}\n"),
    );
    let mut holder = hold_the_lock(&sync);
    // serve's runs fail at once (WDT is not there), so that a backoff is logged too.
    let mut env = sync.env();
    env.insert(
        "WDT_QIMEN_URL".into(),
        format!("http://127.0.0.1:{}/router", free_port()),
    );
    let listen = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(crate::support::engine_binary())
        .args([
            "serve",
            "--listen",
            &listen,
            "--log-format",
            "json",
            "--no-alerts",
        ])
        .current_dir(sync.workspace.root())
        .envs(&env)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = collect_stderr(&mut child);
    let mut serve = Reaped(Some(child));
    let events = || -> Vec<Value> {
        lines
            .lock()
            .unwrap()
            .iter()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
            .collect()
    };
    let has = |name: &str| events().iter().any(|e| e["event"] == name);
    wait_until("a skipped tick", || has("skip"));

    // Reported as it happened: a log event naming the holder, a metric, and no run.
    let skip = events().into_iter().find(|e| e["event"] == "skip").unwrap();
    assert_eq!(skip["flow"], "refund", "{skip}");
    let reason = skip["reason"].as_str().unwrap();
    assert!(reason.contains(&format!("pid {}", holder.id())), "{skip}");
    let text = reqwest::blocking::get(format!("http://{listen}/metrics"))
        .unwrap()
        .text()
        .unwrap();
    let samples = prometheus::parse(&text);
    assert!(
        prometheus::sum(&samples, "engine_lock_skips_total", &[("flow", "refund")]) >= 1.0,
        "{text}"
    );
    assert_eq!(
        prometheus::sum(&samples, "engine_runs_total", &[("flow", "refund")]),
        0.0,
        "{text}"
    );
    assert!(!has("run_start"), "no run while the lock is held");

    // Once the other command ends, the next tick runs (and fails, and backs off).
    holder.terminate();
    wait_until("a backoff after the failed run", || has("backoff"));
    assert_eq!(serve.terminate().code(), Some(0));
    wait_until("the last line", || has("stopped"));

    let events = events();
    for event in &events {
        assert!(
            event["event"].is_string() && event["ts"].is_string(),
            "{event}"
        );
    }
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    for name in [
        "scheduled",
        "listening",
        "skip",
        "run_start",
        "run_end",
        "backoff",
        "stopping",
        "stopped",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    let scheduled = events.iter().find(|e| e["event"] == "scheduled").unwrap();
    assert_eq!(scheduled["flow"], "refund");
    assert_eq!(scheduled["schedule"], "every 1s");
    let end = events.iter().find(|e| e["event"] == "run_end").unwrap();
    assert_eq!(end["outcome"], "failed", "{end}");
}

/// Another command holding the flow's lock until it is stopped: a sandbox run on the sync's
/// state folder that stays up (and keeps the lock) after its run.
fn hold_the_lock(sync: &Sync) -> Reaped {
    let state_dir = sync.workspace.path("state").display().to_string();
    let mut child = Command::new(crate::support::engine_binary())
        .args(["run", "mappings/refund.yaml", "--sandbox", "--keep-sandbox"])
        .args(["--state-dir", &state_dir])
        .current_dir(sync.workspace.root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let said = collect_stderr(&mut child);
    let holder = Reaped(Some(child));
    wait_until("the other command's run to end", || {
        let said = said.lock().unwrap();
        said.iter()
            .any(|line| line.contains("the sandboxes keep running"))
    });
    wait_until("the other command holding the lock", || {
        let output = sync
            .engine(&["state", "mappings/refund.yaml", "--json"])
            .success();
        let state: Value = serde_json::from_str(&output.stdout).unwrap();
        state["lock"]["state"] == "held" && state["lock"]["holder"]["pid"] == holder.id()
    });
    holder
}

#[test]
fn a_run_waiting_for_the_lock_with_json_logs_says_so_in_json() {
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "20",
            "--wdt-days",
            "2",
            "--wdt-unknown-sku-share",
            "0",
        ],
        3,
    );
    sync.workspace
        .edit("mappings/refund.yaml", "    lag: 5s ", "    lag: 0s ");
    let mut holder = hold_the_lock(&sync);
    let mut child = Command::new(crate::support::engine_binary())
        .args([
            "run",
            "mappings/refund.yaml",
            "--wait",
            "5m",
            "--log-format",
            "json",
        ])
        .current_dir(sync.workspace.root())
        .envs(&sync.env())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = collect_stderr(&mut child);
    let mut waiting = Reaped(Some(child));
    let events = || -> Vec<Value> {
        lines
            .lock()
            .unwrap()
            .iter()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
            .collect()
    };
    wait_until("the waiting notice", || {
        events().iter().any(|e| {
            e["event"] == "notice"
                && e["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("waiting for flow `refund`, locked by pid"))
        })
    });
    holder.terminate();
    let status = waiting.wait();
    assert_eq!(status.code(), Some(0), "{:?}", lines.lock().unwrap());
    wait_until("the run's end", || {
        events().iter().any(|e| e["event"] == "run_end")
    });
    for event in events() {
        assert_eq!(event["flow"], "refund", "{event}");
    }
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
