//! Benchmarks that print numbers: how fast `engine` maps and syncs, and how much memory it
//! needs as the number of records grows.
//!
//! `cargo bench --bench sync` runs every case at its default sizes; `cargo bench --bench sync --
//! <case> <sizes…>` runs one case at the sizes given, e.g. `-- slow 100000`. The cases:
//!
//! - `map`: mapping alone, as `engine preview` does it, on a large input (default 1,000 and
//!   10,000): once as the command (its start-up included; peak memory), and in this process.
//! - `sync`: both sandboxes (`engine sim all`) with that many orders, the bundled flow run once
//!   with `engine run` as a separate process (default 1,000 and 10,000).
//! - `slow`: the same against a slow target (Kingdee answers a save after 100 ms + 5 ms per bill)
//!   and the sandbox's default share of unknown SKUs and other statuses, so reading outpaces
//!   writing by far (default 5,000 and 20,000). Peak memory must not grow with the size: the
//!   reader waits for the writers.
//! - `api`: issue #13's measurement: the slow target, and every WDT page answered after 200 ms
//!   (default 20,000). The run is bound by the APIs; it prints how close it comes.
//!
//! Each sync prints records per second, the engine's peak resident memory (VmHWM from /proc),
//! its CPU time per order read (utime + stime from /proc, last seen before it exits), the
//! ledger's bytes per row (`engine::state::footprint`) and wall time ÷ the API-bound limit,
//! with the formula: max(pages × page latency, save time ÷ concurrency), the save time being
//! the saves' `latency + per bill × bills` from the Kingdee sandbox's counts, the pages the
//! fewest that hold the records read, the concurrency the highest level the run reached (the
//! strictest choice); and wall time ÷ the saves' part alone. `map` also prints
//! its time in this process ÷ a serde_json parse + serialise round trip of the same input in
//! this process, each the best of three runs or more (as many as fit in a second). The
//! sandboxes' rate limits are switched off: this measures the engine, not WDT's 60 calls a
//! minute.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "../support/mod.rs"]
mod support;

use support::sandbox::SandboxProcess;
use support::workspace::Workspace;
use support::{engine_binary as engine, repo_root as repo};

/// Peak resident memory of a process so far, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// CPU time (user + system) of a process so far, in clock ticks (100 a second on Linux).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// CPU time (user + system) of this process's children that have ended and been waited for.
fn children_cpu() -> Duration {
    // SAFETY: `getrusage` only writes the struct it is given, which is zeroed and ours.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage), 0);
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// What `measure` saw of a finished command.
struct Measured {
    elapsed: Duration,
    peak_kib: u64,
    /// CPU time last seen in /proc before it exited (up to one poll, 5 ms, of it unseen).
    cpu: Duration,
    /// CPU time the kernel counted for it, all of it (`getrusage` once it was waited for).
    cpu_exact: Duration,
    stderr: String,
}

/// Run a command to completion, measuring its wall time, peak RSS and CPU time.
fn measure(command: &mut Command) -> Measured {
    // Only this child ends and is waited for in between: the sandboxes end after.
    let children_before = children_cpu();
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
            .join("\n")
    });
    let mut peak = 0;
    let mut ticks = 0;
    loop {
        if let Some(kib) = peak_rss_kib(pid) {
            peak = peak.max(kib);
        }
        if let Some(now) = cpu_ticks(pid) {
            ticks = ticks.max(now);
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Measured {
        elapsed: started.elapsed(),
        peak_kib: peak,
        cpu: Duration::from_millis(ticks * 10),
        cpu_exact: children_cpu() - children_before,
        stderr: reader.join().unwrap(),
    }
}

/// Sandbox switches of the `sync` case beyond the number of orders: every order valid.
const FAST_TARGET: &[&str] = &[
    "--wdt-unknown-sku-share",
    "0",
    "--wdt-other-status-share",
    "0",
];

/// Sandbox switches of the `slow` case: a save takes 100 ms + 5 ms per bill; 5% of the orders
/// have unknown SKUs (parked), 10% another status (not read).
const SLOW_TARGET: &[&str] = &[
    "--kingdee-latency-ms",
    SAVE_LATENCY_MS,
    "--kingdee-latency-per-bill-ms",
    SAVE_LATENCY_PER_BILL_MS,
];
const SAVE_LATENCY_MS: &str = "100";
const SAVE_LATENCY_PER_BILL_MS: &str = "5";

/// Sandbox switches of the `api` case, issue #13's measurement: the slow target, and every
/// WDT page taking 200 ms.
const API_BOUND: &[&str] = &[
    "--kingdee-latency-ms",
    SAVE_LATENCY_MS,
    "--kingdee-latency-per-bill-ms",
    SAVE_LATENCY_PER_BILL_MS,
    "--wdt-latency-ms",
    PAGE_LATENCY_MS,
];
const PAGE_LATENCY_MS: &str = "200";
/// Records per WDT page in the bundled flow.
const PAGE_SIZE: f64 = 100.0;

/// The Kingdee sandbox's counts: (saves, bills).
fn saves_and_bills(sandbox: &SandboxProcess) -> (u64, u64) {
    let url = sandbox.var("KINGDEE_URL");
    let root = &url[..url[8..].find('/').map_or(url.len(), |i| i + 8)];
    support::install_crypto();
    let stats: Value = reqwest::blocking::get(format!("{root}/_sim/stats"))
        .unwrap()
        .json()
        .unwrap();
    let saves = stats["requests"]["DynamicFormService.BatchSave"]
        .as_object()
        .map_or(0, |outcomes| {
            outcomes.values().filter_map(Value::as_u64).sum()
        });
    (saves, stats["bills_total"].as_u64().unwrap_or(0))
}

/// The concurrency of a run: the summary's highest adaptive level, else the flow's number.
fn concurrency_of(stderr: &str, flow: &str) -> f64 {
    let adaptive = stderr
        .lines()
        .find(|l| l.starts_with("concurrency ") && l.contains("highest "))
        .and_then(|l| {
            l.split("highest ")
                .nth(1)?
                .trim_end_matches(')')
                .parse()
                .ok()
        });
    let fixed = flow
        .lines()
        .find_map(|l| l.trim().strip_prefix("concurrency: "))
        .and_then(|v| v.split_whitespace().next()?.parse().ok());
    adaptive.or(fixed).unwrap_or(1.0)
}

/// Bytes per ledger row of the state database under `dir`.
fn ledger(dir: &std::path::Path) -> String {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|e| e == "db"))
        .and_then(|path| engine::state::footprint(&path).ok())
        .map_or_else(|| "ledger ?".to_string(), |f| f.to_string())
}

fn sync(case: &str, target: &[&str], orders: usize) {
    let orders_text = orders.to_string();
    let mut args = vec![
        "all",
        "--wdt-orders",
        &orders_text,
        "--wdt-days",
        "20",
        "--wdt-rate-limit",
        "0",
    ];
    args.extend_from_slice(target);
    let sandbox = SandboxProcess::start(&args);
    let workspace = Workspace::with_bundle();
    let connector = "mappings/connectors/wdt_qimen.yaml";
    workspace.write(
        connector,
        workspace.read(connector).replace(
            "rate_limit: { requests: 50, per: 60s }",
            "rate_limit: { requests: 100000, per: 60s }",
        ),
    );
    let start = (chrono::Utc::now() - chrono::Duration::days(21)).to_rfc3339();
    let Measured {
        elapsed,
        peak_kib: peak,
        cpu,
        cpu_exact,
        stderr,
    } = measure(
        Command::new(engine())
            .args(["run", "mappings/refund.yaml"])
            .current_dir(workspace.root())
            .envs(&sandbox.env)
            .env("REFUND_SYNC_START", start)
            .env("ENGINE_STATE_DIR", workspace.path("state")),
    );
    let (saves, bills) = saves_and_bills(&sandbox);
    drop(sandbox);
    let written = stderr
        .lines()
        .find(|l| l.contains(" written, "))
        .unwrap_or("?")
        .to_string();
    let records: f64 = written
        .split(" read")
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0.0);
    println!(
        "{case:<6} {orders:>6} orders: {written}; {:.2} s, {:.0} records/s, peak RSS {:.1} MiB",
        elapsed.as_secs_f64(),
        records / elapsed.as_secs_f64(),
        peak as f64 / 1024.0
    );
    if target == SLOW_TARGET || target == API_BOUND {
        let (fixed, per_bill): (f64, f64) = (
            SAVE_LATENCY_MS.parse().unwrap(),
            SAVE_LATENCY_PER_BILL_MS.parse().unwrap(),
        );
        let page: f64 = if target == API_BOUND {
            PAGE_LATENCY_MS.parse().unwrap()
        } else {
            0.0
        };
        // The fewest pages that hold the records read (one window here), not the pages the
        // engine chose to read: a re-read is the engine's cost.
        let pages = (records / PAGE_SIZE).floor() + 1.0;
        let concurrency = concurrency_of(&stderr, &workspace.read("mappings/refund.yaml"));
        let reads = pages * page / 1000.0;
        let writes = (saves as f64 * fixed + bills as f64 * per_bill) / concurrency / 1000.0;
        let limit = reads.max(writes);
        println!(
            "       API-bound limit = max(pages × {page} ms, (saves × {fixed} ms + bills × {per_bill} ms) ÷ concurrency) = max({pages} × {page}, ({saves} × {fixed} + {bills} × {per_bill}) ÷ {concurrency}) = max({reads:.2}, {writes:.2}) = {limit:.2} s (saves only: the lookups are not counted); wall ÷ limit = {:.3}; wall ÷ the saves' part alone = {:.2}",
            elapsed.as_secs_f64() / limit,
            elapsed.as_secs_f64() / writes
        );
    }
    println!(
        "       CPU {:.0} µs per order read (getrusage; /proc, polled: {:.0} µs); {}",
        cpu_exact.as_secs_f64() * 1e6 / records.max(1.0),
        cpu.as_secs_f64() * 1e6 / records.max(1.0),
        ledger(&workspace.path("state"))
    );
}

fn mapping(records: usize) {
    let samples: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(repo().join("mappings/samples/refund_orders.json")).unwrap(),
    )
    .unwrap();
    let valid: Vec<&Value> = samples
        .iter()
        .filter(|o| o["shop_no"] != "SHOP99")
        .collect();
    let input: Vec<Value> = (0..records)
        .map(|i| {
            let mut order = valid[i % valid.len()].clone();
            order["order_no"] = Value::String(format!("RK{i:010}"));
            order
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("input.json");
    std::fs::write(&file, serde_json::to_vec(&input).unwrap()).unwrap();
    let Measured {
        elapsed,
        peak_kib: peak,
        ..
    } = measure(
        Command::new(engine())
            .args(["preview", "mappings/refund.yaml", "--input"])
            .arg(&file)
            .current_dir(repo()),
    );
    // The mapping in this process, as `engine preview` runs it (parse, map, build bodies, print
    // to nowhere), against serde_json alone on the same file (parse, then serialise); each the
    // best of three or more (`best_of`), so a moment of load on the machine does not decide
    // the ratio. The mapping
    // is measured with the flow loaded once (the records' cost), and with the flow's loading
    // (its files read, checked and compiled: a constant, whatever the records).
    let flow = repo().join("mappings/refund.yaml");
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let mut previewer = engine::preview::Previewer::load(&flow).expect("the flow loads");
    let mapped = best_of(3, || {
        let code = previewer
            .preview_to(&file, engine::preview::Format::Json, &env, std::io::sink())
            .expect("the preview runs");
        assert_eq!(code.code(), 0, "every record maps");
    });
    let loaded_and_mapped = best_of(3, || {
        let code = engine::preview::preview_to(
            &flow,
            &file,
            engine::preview::Format::Json,
            &env,
            std::io::sink(),
        )
        .expect("the preview runs");
        assert_eq!(code.code(), 0, "every record maps");
    });
    let serde = best_of(3, || {
        let text = std::fs::read(&file).unwrap();
        let parsed: Value = serde_json::from_slice(&text).unwrap();
        let round_trip = serde_json::to_vec(&parsed).unwrap();
        assert!(!round_trip.is_empty());
    });
    println!(
        "map    {records:>6} orders: {:.2} s, {:.0} records/s (parse, map, build bodies, print); `engine preview` as a command {:.2} s, peak RSS {:.1} MiB",
        mapped.as_secs_f64(),
        records as f64 / mapped.as_secs_f64(),
        elapsed.as_secs_f64(),
        peak as f64 / 1024.0
    );
    println!(
        "       mapping ÷ serde_json round trip, both in this process, best of 3 or more = {:.3} s ÷ {:.3} s = {:.2} (with the flow's loading: {:.3} s, {:.2})",
        mapped.as_secs_f64(),
        serde.as_secs_f64(),
        mapped.as_secs_f64() / serde.as_secs_f64(),
        loaded_and_mapped.as_secs_f64(),
        loaded_and_mapped.as_secs_f64() / serde.as_secs_f64()
    );
}

/// The shortest of `runs` runs of `work`.
/// The shortest of at least `runs` runs of `work`, and of as many more as fit in a second (at
/// most 50): a small input maps in 30 ms, and three runs that short can all land in a moment of
/// load (one bench read 1.40 for 1,000 records where reruns read 0.96-1.00).
fn best_of(runs: usize, mut work: impl FnMut()) -> Duration {
    let started = Instant::now();
    let mut best = Duration::MAX;
    for run in 0.. {
        if run >= runs && (run >= 50 || started.elapsed() >= Duration::from_secs(1)) {
            break;
        }
        let began = Instant::now();
        work();
        best = best.min(began.elapsed());
    }
    best
}

fn main() {
    // `cargo bench` passes `--bench`; anything else is a case or a size.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let case = args
        .first()
        .filter(|a| a.parse::<usize>().is_err())
        .cloned();
    let sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let sizes_or = |default: &[usize]| {
        if sizes.is_empty() {
            default.to_vec()
        } else {
            sizes.clone()
        }
    };
    let run = |name: &str| case.as_deref().is_none_or(|c| c == name);
    if let Some(case) = &case
        && !["map", "sync", "slow", "api"].contains(&case.as_str())
    {
        panic!("unknown case `{case}`: map, sync, slow or api");
    }
    if run("map") {
        for size in sizes_or(&[1_000, 10_000]) {
            mapping(size);
        }
    }
    if run("sync") {
        for size in sizes_or(&[1_000, 10_000]) {
            sync("sync", FAST_TARGET, size);
        }
    }
    if run("slow") {
        for size in sizes_or(&[5_000, 20_000]) {
            sync("slow", SLOW_TARGET, size);
        }
    }
    if run("api") {
        for size in sizes_or(&[20_000]) {
            sync("api", API_BOUND, size);
        }
    }
}
