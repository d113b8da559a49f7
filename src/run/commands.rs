//! The commands around a run: `run` (with `--sandbox`), `state`, `failed`, `retry` and `resend`.
//!
//! Each loads the flow (refusing an invalid one with the same diagnostics as `check`), finds
//! the state database, calls into `run`, and prints for people (stderr) or scripts (stdout).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::alert;
use crate::check;
use crate::config::{self, model::Flow};
use crate::error::{Error, ErrorKind, ExitCode, Result};
use crate::http::retry::Sleeper;
use crate::preview;
use crate::request::Env;
use crate::run::progress::{LogFormat, Progress};
use crate::run::{self, Options, Summary};
use crate::sim;
use crate::state::lock::{self, FlowLock, Holder, LockState, Wait};
use crate::state::{Status, Store};
use crate::time::{self, SystemClock, wall_clock};

/// The state database of a flow: `<state dir>/state.db`, the state dir being the one given,
/// else `.engine/` next to the flow file.
pub fn store_path(flow_file: &Path, state_dir: Option<&Path>) -> PathBuf {
    let dir = match state_dir {
        Some(dir) => dir.to_path_buf(),
        None => flow_file.parent().unwrap_or(Path::new(".")).join(".engine"),
    };
    dir.join("state.db")
}

/// Take the flow's lock for a command that writes its state or its target (see
/// `state::lock`), saying so when it has to wait or takes over a lock left by a killed run.
pub fn take_lock(flow: &Flow, store: &Path, wait: Wait) -> Result<FlowLock> {
    take_lock_saying(flow, store, wait, |line| eprintln!("{line}"))
}

/// `take_lock`, its lines said by `say` (`engine serve` logs them its way).
pub fn take_lock_saying(
    flow: &Flow,
    store: &Path,
    wait: Wait,
    say: impl Fn(String),
) -> Result<FlowLock> {
    let path = lock::lock_path(store.parent().unwrap_or(Path::new(".")), &flow.name);
    let holder = Holder::this_process(Utc::now());
    let lock = FlowLock::acquire(&path, &flow.name, &holder, wait, |current| {
        say(format!(
            "waiting for flow `{}`, locked by {}",
            flow.name,
            current.map_or_else(|| "another process".to_string(), Holder::describe)
        ));
    })?;
    if let Some(left) = &lock.taken_over {
        say(format!(
            "took over the lock of flow `{}` left by {}, which ended without releasing it",
            flow.name,
            left.describe()
        ));
    }
    Ok(lock)
}

/// A line before the run's progress exists (waiting for the lock): as it is, or a `notice`
/// event of `flow` with `--log-format json`.
fn say_line(format: LogFormat, flow: &str, line: String) {
    match format {
        LogFormat::Text => eprintln!("{line}"),
        LogFormat::Json => Progress::for_format(format, flow).notice(line),
    }
}

/// The flow of `flow_file`, refused with the diagnostics of `check` when invalid.
pub fn load(flow_file: &Path) -> Result<Arc<Flow>> {
    let loaded = config::load_flow(flow_file);
    match loaded.value {
        Some(flow) => Ok(Arc::new(flow)),
        None => Err(check::load_failure(&loaded)),
    }
}

/// What `engine run` was asked.
pub struct RunRequest {
    pub flow: PathBuf,
    pub dry_run: bool,
    /// How a dry run prints the bodies it would send.
    pub bodies_format: preview::Format,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub state_dir: Option<PathBuf>,
    pub sandbox: bool,
    pub keep_sandbox: bool,
    /// How long to wait for the flow's lock.
    pub wait: Wait,
    /// Send the alerts of `alerts.yaml` after the run.
    pub alerts: bool,
    /// Write the run's metrics there (Prometheus text, atomically).
    pub metrics_file: Option<PathBuf>,
    pub log_format: LogFormat,
}

pub async fn run(request: RunRequest, mut env: Env) -> Result<ExitCode> {
    let flow = load(&request.flow)?;
    // Every missing variable at once, before the lock or the state folder is made (with
    // `--sandbox`, once the sandboxes gave theirs).
    if !request.sandbox {
        check::require_env(&flow, &env, check::Needs::Everything)?;
    }
    let alerts = alert::Hook::load(&request.flow, request.alerts)?;
    // A fresh sandbox holds nothing yet; a fresh ledger goes with it.
    let sandbox_dir = (request.sandbox && request.state_dir.is_none())
        .then(|| std::env::temp_dir().join(format!("engine-sandbox-{}", std::process::id())));
    let state_dir = request.state_dir.clone().or(sandbox_dir.clone());
    let store = store_path(&request.flow, state_dir.as_deref());
    // A dry run writes neither the ledger nor the target (only its line in the run history),
    // so it runs beside a real one.
    let _lock = match request.dry_run {
        true => None,
        false => Some(take_lock_saying(&flow, &store, request.wait, |line| {
            say_line(request.log_format, &flow.name, line)
        })?),
    };
    let progress = Arc::new(Progress::for_format(request.log_format, &flow.name));
    let sandboxes = if request.sandbox {
        let common = sim::CommonOptions::default();
        let sandboxes = sim::Sandboxes::start(
            &common,
            Some(&sim::wdt::WdtOptions::default()),
            Some(&sim::kingdee::KingdeeOptions::default()),
        )
        .await?;
        let vars = sandboxes.env();
        progress.line(format!(
            "sandboxes: WDT at {}, Kingdee at {}",
            vars.get("WDT_QIMEN_URL").map_or("?", String::as_str),
            vars.get("KINGDEE_URL").map_or("?", String::as_str)
        ));
        env.extend(vars);
        check::require_env(&flow, &env, check::Needs::Everything)?;
        Some(sandboxes)
    } else {
        None
    };
    let metrics = request
        .metrics_file
        .as_ref()
        .map(|_| crate::serve::metrics::Metrics::default());
    let options = Options {
        dry_run: request.dry_run,
        since: request.since,
        until: request.until,
        store: store.clone(),
        sleeper: Sleeper::Tokio,
        clock: Arc::new(SystemClock),
        calls: metrics.as_ref().map(|metrics| metrics.call_observer()),
    };
    let started = std::time::Instant::now();
    let printing = Printing {
        throwaway_state: sandbox_dir.is_some(),
        bodies: request.bodies_format,
    };
    let result = sync(
        &flow,
        &request.flow,
        &env,
        options,
        &alerts,
        Arc::clone(&progress),
        printing,
    )
    .await;
    if let (Some(file), Some(metrics)) = (&request.metrics_file, &metrics) {
        let outcome = crate::serve::metrics::outcome(&result);
        metrics.finished(&flow.name, outcome, started.elapsed(), &progress, &store);
        metrics.write_file(file)?;
    }
    if let Some(sandboxes) = &sandboxes {
        report_sandbox(sandboxes).await;
        // Stopped during the run: the signal was for the whole command, not a second one to wait for.
        let interrupted = matches!(&result, Err(err) if err.kind() == ErrorKind::Interrupted);
        if request.keep_sandbox && !interrupted {
            eprintln!("the sandboxes keep running; press Ctrl-C to stop");
            crate::cli::shutdown_signal().await;
        }
    }
    if let Some(dir) = sandbox_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

/// How `sync` prints what is not an event.
#[derive(Debug, Clone, Copy)]
pub struct Printing {
    /// The state is thrown away after the run (`--sandbox`): say so where parked records are.
    pub throwaway_state: bool,
    /// How a dry run prints its bodies on stdout.
    pub bodies: preview::Format,
}

/// One sync of a loaded flow whose lock the caller holds (unless a dry run): the pipeline, its
/// summary on stderr, the alerts. `engine run` and each tick of `engine serve` go through it.
pub async fn sync(
    flow: &Arc<Flow>,
    flow_file: &Path,
    env: &Env,
    options: Options,
    alerts: &alert::Hook,
    progress: Arc<Progress>,
    printing: Printing,
) -> Result<ExitCode> {
    let dry_run = options.dry_run;
    let store = options.store.clone();
    let started = Utc::now();
    progress.event("run_start", json!({"dry_run": dry_run}));
    if !progress.is_json() {
        progress.line(format!(
            "running flow `{}` ({})",
            flow.name,
            flow.description.as_deref().unwrap_or_default()
        ));
    }
    let result = run::run(
        Arc::clone(flow),
        env.clone(),
        options,
        Arc::clone(&progress),
    )
    .await;
    if let (true, Ok(summary)) = (dry_run, &result) {
        preview::print_bodies(printing.bodies, &summary.bodies)?;
    }
    if progress.is_json() {
        progress.event("run_end", run_end(&result));
        let reports = alerts
            .after(&flow.name, &store, started, &result, env)
            .await;
        say_alerts(&progress, reports);
        return result.map(|summary| {
            match summary.failed + summary.conflicts + summary.unresolved + summary.unsettled {
                0 => ExitCode::Ok,
                _ => ExitCode::Partial,
            }
        });
    }
    let code = match &result {
        Ok(summary) => {
            if dry_run {
                eprintln!(
                    "dry run: {} request(s) would be sent; nothing was written and the cursor did not move",
                    summary.bodies.len()
                );
            }
            for line in run::describe(summary) {
                eprintln!("{line}");
            }
            if summary.failed + summary.conflicts > 0 && printing.throwaway_state {
                // The sandboxes and this run's ledger end with the process: `failed` and
                // `retry` would find nothing, so say how to keep both.
                eprintln!(
                    "parked records live in this run's throwaway state; to list and retry them, keep the sandboxes and the state: `engine sim all --env-file sandbox.env &`, then `engine run {} --env-file sandbox.env`, `engine failed …` and `engine retry …` with the same --env-file (the README's tour, step 5)",
                    flow_file.display()
                );
            } else if summary.failed + summary.conflicts > 0 {
                eprintln!(
                    "parked records are listed by `engine failed {}` and resent by `engine retry {}`",
                    flow_file.display(),
                    flow_file.display()
                );
            }
            // Records still in flight are not delivered yet: not a clean run either.
            if summary.failed + summary.conflicts + summary.unresolved + summary.unsettled > 0 {
                ExitCode::Partial
            } else {
                ExitCode::Ok
            }
        }
        Err(_) => ExitCode::Fatal,
    };
    let reports = alerts
        .after(&flow.name, &store, started, &result, env)
        .await;
    say_alerts(&progress, reports);
    result.map(|_| code)
}

/// What became of the alerts of a run: a line each, or an `alert` event in JSON.
fn say_alerts(progress: &Progress, reports: Vec<alert::send::Report>) {
    for report in reports {
        match progress.is_json() {
            true => progress.event(
                "alert",
                json!({
                    "alert": report.event.as_str(),
                    "channel": report.channel,
                    "host": report.host,
                    "sent": report.outcome == alert::send::Outcome::Sent,
                    "text": report.line(),
                }),
            ),
            false => eprintln!("{}", report.line()),
        }
    }
}

/// The `run_end` event of `--log-format json`.
fn run_end(result: &Result<Summary>) -> serde_json::Value {
    match result {
        Ok(summary) => json!({
            "outcome": summary.outcome().to_string(),
            "read": summary.read,
            "written": summary.written,
            "skipped": summary.skipped,
            "parked": summary.failed + summary.conflicts,
            "in_flight": summary.unresolved + summary.unsettled,
        }),
        Err(err) => json!({"outcome": "failed", "error": err.message()}),
    }
}

/// After a sandbox run: what arrived in the Kingdee sandbox, and how to look.
async fn report_sandbox(sandboxes: &sim::Sandboxes) {
    let Some(kingdee) = &sandboxes.kingdee else {
        return;
    };
    let root = format!("http://{}", kingdee.addr);
    let bills: Option<serde_json::Value> = async {
        reqwest::get(format!("{root}/_sim/bills"))
            .await
            .ok()?
            .json()
            .await
            .ok()
    }
    .await;
    let bills = bills.as_ref().and_then(|b| {
        b.as_array()
            .or_else(|| b.get("bills").and_then(|b| b.as_array()))
    });
    if let Some(bills) = bills {
        eprintln!(
            "the Kingdee sandbox now holds {} sales return bill(s)",
            bills.len()
        );
        if let Some(first) = bills.first() {
            let number = first.get("FBillNo").and_then(|v| v.as_str()).unwrap_or("?");
            let status = first
                .get("FDocumentStatus")
                .and_then(|v| v.as_str())
                .unwrap_or("?");
            eprintln!(
                "  e.g. {number} (status {status}); add --keep-sandbox and `curl {root}/_sim/bills` to see them all"
            );
        }
    }
}

/// `engine state FLOW [--reset-cursor TIME]`.
pub fn state(
    flow_file: &Path,
    state_dir: Option<&Path>,
    reset_cursor: Option<&str>,
    json_format: bool,
) -> Result<ExitCode> {
    let flow = load(flow_file)?;
    let path = store_path(flow_file, state_dir);
    let lock_path = lock::lock_path(path.parent().unwrap_or(Path::new(".")), &flow.name);
    let store = Store::open(&path)?;
    if let Some(text) = reset_cursor {
        // A naive time is Asia/Shanghai, as every time the CLI prints; RFC 3339 says its zone.
        let to = time::parse_instant(text).map_err(Error::usage)?;
        let now = Utc::now();
        if to > now {
            // Every run would say "nothing to read yet" until then, and what is modified
            // before it would never be read.
            return Err(Error::usage(format!(
                "`--reset-cursor {text}` is in the future (now is `{}`): the next runs would read nothing until then and never read what is modified before",
                wall_clock(now)
            ))
            .with_hint("give a time in the past: the next run reads from it (minus the lookback)"));
        }
        // The cursor is the running command's to move: a reset under it would be undone.
        let _lock = take_lock(&flow, &path, Wait::No)?;
        store.reset_cursor(&flow.name, to, now)?;
        eprintln!(
            "cursor of `{}` set to {} ({})",
            flow.name,
            wall_clock(to),
            to.to_rfc3339()
        );
    }
    let cursor = store.cursor(&flow.name)?;
    let counts = store.counts(&flow.name)?;
    let runs = store.runs(&flow.name, 10)?;
    let lock = FlowLock::probe(&lock_path)?;
    if json_format {
        let value = json!({
            "flow": flow.name,
            "state": path.display().to_string(),
            "lock": lock_json(&lock, &lock_path),
            "cursor": cursor.map(|c| c.to_rfc3339()),
            "counts": counts.iter().map(|(status, n)| (status.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "runs": runs.iter().map(|run| json!({
                "id": run.id,
                "kind": run.kind.to_string(),
                "started": run.started.to_rfc3339(),
                "finished": run.finished.map(|f| f.to_rfc3339()),
                "outcome": run.summary.as_ref().map(|s| s.outcome.clone()),
                "read": run.summary.as_ref().map(|s| s.read),
                "written": run.summary.as_ref().map(|s| s.written),
                "skipped": run.summary.as_ref().map(|s| s.skipped),
                "failed": run.summary.as_ref().map(|s| s.failed),
                "message": run.summary.as_ref().and_then(|s| s.message.clone()),
            })).collect::<Vec<_>>(),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&value).expect("JSON serialises")
        );
        return Ok(ExitCode::Ok);
    }
    println!(
        "flow `{}` ({}), state in {}",
        flow.name,
        flow_file.display(),
        path.display()
    );
    println!("lock: {}", lock_line(&lock));
    match cursor {
        Some(cursor) => println!("cursor: {} (Asia/Shanghai)", wall_clock(cursor)),
        None => println!("cursor: none yet (the first run starts at `source.window.start`)"),
    }
    let count = |status: Status| counts.get(&status).copied().unwrap_or(0);
    println!(
        "records: {} written, {} parked as failed, {} conflicts, {} in flight",
        count(Status::Done),
        count(Status::Failed),
        count(Status::Conflict),
        count(Status::InFlight)
    );
    let updates = store.pending_updates(&flow.name)?;
    if let Some(first) = updates.first() {
        println!(
            "updates under way: {} (record `{}` at step `{}`); the next run, retry or resend finishes them",
            updates.len(),
            first.key,
            first.step
        );
    }
    print_runs(&runs);
    Ok(ExitCode::Ok)
}

/// The run history as `engine state` shows it.
fn print_runs(runs: &[crate::state::Run]) {
    if runs.is_empty() {
        println!("no runs yet");
    } else {
        println!("last runs:");
    }
    for run in runs {
        let finished = match run.finished {
            Some(finished) => wall_clock(finished),
            None => "did not finish".to_string(),
        };
        match &run.summary {
            Some(summary) => println!(
                "  #{:<4} {:<9} {} → {}  {:<8} read {}, written {}, skipped {}, parked {}{}",
                run.id,
                run.kind.to_string(),
                wall_clock(run.started),
                finished,
                summary.outcome,
                summary.read,
                summary.written,
                summary.skipped,
                summary.failed,
                summary
                    .message
                    .as_ref()
                    .map(|m| format!(" — {m}"))
                    .unwrap_or_default()
            ),
            None => println!(
                "  #{:<4} {:<9} {} → {finished}",
                run.id,
                run.kind.to_string(),
                wall_clock(run.started)
            ),
        }
    }
}

/// The flow's lock as `engine state --json` shows it.
fn lock_json(lock: &LockState, file: &Path) -> serde_json::Value {
    let (state, holder) = match lock {
        LockState::Free => ("free", None),
        LockState::Left(holder) => ("left", Some(holder)),
        LockState::Held(holder) => ("held", holder.as_ref()),
    };
    json!({
        "state": state,
        "holder": holder.map(Holder::to_json),
        "file": file.display().to_string(),
    })
}

/// The flow's lock as `engine state` says it.
fn lock_line(lock: &LockState) -> String {
    match lock {
        LockState::Free => "free".to_string(),
        LockState::Left(holder) => format!(
            "free (last held by {}, which ended without releasing it)",
            holder.describe()
        ),
        LockState::Held(Some(holder)) => format!("held by {}", holder.describe()),
        LockState::Held(None) => "held by a process that is starting".to_string(),
    }
}

/// `engine failed FLOW`: the parked records with their reasons.
pub fn failed(flow_file: &Path, state_dir: Option<&Path>, json_format: bool) -> Result<ExitCode> {
    let flow = load(flow_file)?;
    let store = Store::open(&store_path(flow_file, state_dir))?;
    let parked = store.parked(&flow.name, &[])?;
    // Records whose write an interrupted run left unconfirmed: not parked, but not written
    // either as far as the ledger knows; the next run or retry looks them up first.
    let in_flight = store.in_flight(&flow.name)?;
    if json_format {
        let value: Vec<serde_json::Value> = parked
            .iter()
            .chain(&in_flight)
            .map(|entry| {
                json!({
                    "key": entry.key,
                    "status": entry.status.to_string(),
                    "attempts": entry.attempts,
                    "reason": entry.last_error,
                    "field": entry.error_field,
                    "first_seen": entry.first_seen.to_rfc3339(),
                    "updated": entry.updated.to_rfc3339(),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&value).expect("JSON serialises")
        );
        return Ok(ExitCode::Ok);
    }
    if !in_flight.is_empty() {
        println!(
            "{} record(s) of flow `{}` in flight, their writes not confirmed; `engine retry` or the next run looks them up first: {}",
            in_flight.len(),
            flow.name,
            in_flight
                .iter()
                .map(|entry| crate::diagnostic::cut_text(&entry.key, 200))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if parked.is_empty() {
        println!("no parked records for flow `{}`", flow.name);
        return Ok(ExitCode::Ok);
    }
    println!("{} parked record(s) of flow `{}`:", parked.len(), flow.name);
    for entry in &parked {
        let field = entry
            .error_field
            .as_ref()
            .map(|f| format!(" [{f}]"))
            .unwrap_or_default();
        println!(
            "{}  {}  attempts {}  last {}{}",
            crate::diagnostic::cut_text(&entry.key, 200),
            entry.status,
            entry.attempts,
            wall_clock(entry.updated),
            field
        );
        println!(
            "    {}",
            entry.last_error.as_deref().unwrap_or("no reason recorded")
        );
    }
    println!(
        "fix the master data or the mapping, then: engine retry {} [KEY…]",
        flow_file.display()
    );
    Ok(ExitCode::Ok)
}

/// `engine retry FLOW [KEY…]`.
pub async fn retry(
    flow_file: &Path,
    state_dir: Option<&Path>,
    keys: Vec<String>,
    wait: Wait,
    env: Env,
    alerts: bool,
    log_format: LogFormat,
) -> Result<ExitCode> {
    let flow = load(flow_file)?;
    check::require_env(&flow, &env, check::Needs::Target)?;
    let alerts = alert::Hook::load(flow_file, alerts)?;
    let store = store_path(flow_file, state_dir);
    let _lock = take_lock_saying(&flow, &store, wait, |line| {
        say_line(log_format, &flow.name, line)
    })?;
    let progress = Arc::new(Progress::for_format(log_format, &flow.name));
    let options = Options {
        dry_run: false,
        since: None,
        until: None,
        store: store.clone(),
        sleeper: Sleeper::Tokio,
        clock: Arc::new(SystemClock),
        calls: None,
    };
    let started = Utc::now();
    progress.event("run_start", json!({"retry": true}));
    let result = run::retry(
        Arc::clone(&flow),
        env.clone(),
        options,
        keys,
        Arc::clone(&progress),
    )
    .await;
    progress.event("run_end", run_end(&result));
    let reports = alerts
        .after(&flow.name, &store, started, &result, &env)
        .await;
    say_alerts(&progress, reports);
    let summary: Summary = result?;
    if progress.is_json() {
        return Ok(if summary.failed + summary.unresolved > 0 {
            ExitCode::Partial
        } else {
            ExitCode::Ok
        });
    }
    let in_flight = if summary.recovered > 0 {
        format!(" and {} left in flight", summary.recovered)
    } else {
        String::new()
    };
    eprintln!(
        "{} parked{in_flight} retried: {} written, {} still parked",
        summary.read, summary.written, summary.failed
    );
    if summary.unresolved > 0 {
        eprintln!(
            "{} record(s) still in flight without a clear answer: the next run or retry checks them first",
            summary.unresolved
        );
    }
    Ok(if summary.failed + summary.unresolved > 0 {
        ExitCode::Partial
    } else {
        ExitCode::Ok
    })
}

/// `engine resend FLOW [KEY…] [--since T --until T] [--dry-run]`.
pub async fn resend(
    flow_file: &Path,
    state_dir: Option<&Path>,
    request: run::resend::Request,
    wait: Wait,
    env: Env,
) -> Result<ExitCode> {
    let flow = load(flow_file)?;
    if !request.dry_run {
        check::require_env(&flow, &env, check::Needs::Target)?;
    }
    let store = store_path(flow_file, state_dir);
    // A dry run reads the ledger only; a resend writes the target and the ledger.
    let _lock = match request.dry_run {
        true => None,
        false => Some(take_lock(&flow, &store, wait)?),
    };
    let progress = Arc::new(Progress::for_format(LogFormat::Text, &flow.name));
    let options = Options {
        dry_run: request.dry_run,
        since: None,
        until: None,
        store,
        sleeper: Sleeper::Tokio,
        clock: Arc::new(SystemClock),
        calls: None,
    };
    let dry_run = request.dry_run;
    let resent = run::resend::resend(Arc::clone(&flow), env, options, request, progress).await?;
    for line in run::resend::describe(&resent, &flow_file.display().to_string(), dry_run) {
        eprintln!("{line}");
    }
    Ok(if resent.parked + resent.unmappable > 0 {
        ExitCode::Partial
    } else {
        ExitCode::Ok
    })
}
