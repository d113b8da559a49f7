//! `engine serve`: one long-running process that runs each flow on the `schedule:` its file
//! declares.
//!
//! Each scheduled flow gets one task that sleeps until its next start (`schedule`), takes the
//! flow's lock without waiting (a tick whose flow another command holds is skipped, and said
//! so), and runs it through `run::commands::sync`, the very function `engine run` uses. Runs
//! of one flow never overlap: the task waits for its run to end before it looks at the clock
//! again, and the lock keeps other processes out. On Ctrl-C or SIGTERM no new run starts; a
//! run under way is interrupted as `engine run` is (what was written is recorded, writes under
//! way stay in flight for the next run to look up), and the process exits with 0.
//!
//! This module only schedules; it reads no records and writes no state of its own.

pub mod calls;
pub mod http;
pub mod log;
pub mod metrics;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use serde_json::json;
use tokio::sync::watch;

use crate::alert;
use crate::check;
use crate::config::model::{Flow, Schedule};
use crate::error::{Error, ErrorKind, ExitCode, Result};
use crate::http::retry::Sleeper;
use crate::request::Env;
use crate::run::Options;
use crate::run::commands::{self, load, store_path, take_lock_saying};
use crate::run::progress::{LogFormat, Progress};
use crate::schedule;
use crate::secret::Secret;
use crate::serve::log::ServeLog;
use crate::serve::metrics::Metrics;
use crate::state::lock::Wait;
use crate::time::{SystemClock, wall_clock};

/// What `engine serve` was asked.
pub struct ServeRequest {
    /// Flow files; none means every flow in `mappings/`.
    pub flows: Vec<PathBuf>,
    pub state_dir: Option<PathBuf>,
    /// Send the alerts of `alerts.yaml` after each run.
    pub alerts: bool,
    /// Where the HTTP server (`/metrics`) listens.
    pub listen: SocketAddr,
    /// The bearer token every request needs (required off loopback).
    pub token: Option<Secret>,
    pub log_format: LogFormat,
}

/// A flow `serve` runs.
struct Served {
    file: PathBuf,
    flow: Arc<Flow>,
    schedule: Schedule,
    alerts: alert::Hook,
}

pub async fn serve(request: ServeRequest, env: Env) -> Result<ExitCode> {
    http::require_token(request.listen, request.token.as_ref())?;
    let files = match request.flows.is_empty() {
        true => flows_in(Path::new("mappings"))?,
        false => request.flows.clone(),
    };
    let log = ServeLog {
        format: request.log_format,
    };
    let served = scheduled_flows(files, &env, log, request.alerts)?;
    if served.is_empty() {
        return Err(
            Error::usage("no flow to serve: none declares a `schedule:`")
                .with_hint("add e.g. `schedule: { every: 5m }` to a flow file"),
        );
    }
    let (stop, stopped) = watch::channel(false);
    let metrics = Arc::new(Metrics::default());
    let server_stop = {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    let state = http::AppState {
        metrics: Arc::clone(&metrics),
    };
    let console = crate::console::ConsoleState {
        flows: served.iter().map(|flow| flow.file.clone()).collect(),
        state_dir: request.state_dir.clone(),
        env: Arc::new(env.clone()),
        token: request
            .token
            .as_ref()
            .map(|token| Arc::new(Secret::new(token.expose().to_string()))),
    };
    let bound = http::listen(
        request.listen,
        request.token.clone(),
        state,
        Some(console),
        server_stop,
    )
    .await?;
    log.say(
        "listening",
        None,
        json!({"url": format!("http://{bound}")}),
        &format!("listening on http://{bound} (GET /metrics; the console at /)"),
    );
    let mut tasks = Vec::new();
    for flow in served {
        let store = store_path(&flow.file, request.state_dir.as_deref());
        metrics.register(&flow.flow.name);
        tasks.push(tokio::spawn(serve_flow(
            flow,
            store,
            env.clone(),
            log,
            Arc::clone(&metrics),
            stopped.clone(),
        )));
    }
    let all_done = async {
        for task in tasks {
            // A task that panicked has said so on stderr; the others still finish.
            let _ = task.await;
        }
    };
    tokio::pin!(all_done);
    tokio::select! {
        _ = &mut all_done => {}
        _ = crate::cli::shutdown_signal() => {
            log.say(
                "stopping",
                None,
                json!({}),
                "stopping: no new runs start; runs under way end as `engine run` does",
            );
            let _ = stop.send(true);
            all_done.await;
        }
    }
    log.say("stopped", None, json!({}), "engine serve stopped");
    Ok(ExitCode::Ok)
}

/// Load every flow file; keep those with a `schedule:`, say which run when and which not.
fn scheduled_flows(
    files: Vec<PathBuf>,
    env: &Env,
    log: ServeLog,
    alerts: bool,
) -> Result<Vec<Served>> {
    let mut served = Vec::new();
    for file in files {
        let flow = load(&file)?;
        let Some(schedule) = flow.schedule.clone() else {
            log.say(
                "not_scheduled",
                Some(&flow.name),
                json!({"file": file.display().to_string()}),
                &format!(
                    "flow `{}` ({}) has no `schedule:`; serve does not run it",
                    flow.name,
                    file.display()
                ),
            );
            continue;
        };
        check::require_env(&flow, env, check::Needs::Everything)?;
        log.say(
            "scheduled",
            Some(&flow.name),
            json!({"file": file.display().to_string(), "schedule": schedule::readable(&schedule)}),
            &format!(
                "flow `{}` ({}) runs {}",
                flow.name,
                file.display(),
                schedule::readable(&schedule)
            ),
        );
        let alerts = alert::Hook::load(&file, alerts)?;
        served.push(Served {
            file,
            flow,
            schedule,
            alerts,
        });
    }
    Ok(served)
}

/// The flow files of a folder: its `*.yaml` files but `alerts.yaml`, sorted.
fn flows_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|err| {
        Error::usage(format!("cannot read `{}`: {err}", dir.display()))
            .with_hint("name the flow files, or run from the folder that holds `mappings/`")
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.is_file()
                && path
                    .extension()
                    .is_some_and(|ext| ext == "yaml" || ext == "yml")
                && path.file_name().is_some_and(|name| name != "alerts.yaml")
        })
        .collect();
    files.sort();
    Ok(files)
}

/// One flow's loop: sleep until the next start, run, repeat, until told to stop.
async fn serve_flow(
    flow: Served,
    store: PathBuf,
    env: Env,
    log: ServeLog,
    metrics: Arc<Metrics>,
    mut stopped: watch::Receiver<bool>,
) {
    let name = flow.flow.name.clone();
    let mut last_start = None;
    let mut failures = 0u32;
    loop {
        let now = Utc::now();
        let next = schedule::next_run(&flow.schedule, last_start, failures, now);
        let wait = (next - now).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
        if *stopped.borrow() {
            return;
        }
        last_start = Some(Utc::now());
        let lock = {
            let (flow, store, name) = (Arc::clone(&flow.flow), store.clone(), name.clone());
            let say = move |text: String| log.say("notice", Some(&name), json!({}), &text);
            tokio::task::spawn_blocking(move || take_lock_saying(&flow, &store, Wait::No, say))
                .await
        };
        let tick = last_start.unwrap_or_else(Utc::now);
        let _lock = match lock {
            Ok(Ok(lock)) => lock,
            Ok(Err(err)) if err.kind() == ErrorKind::Locked => {
                metrics.lock_skipped(&name);
                log.say(
                    "skip",
                    Some(&name),
                    json!({"tick": tick.to_rfc3339(), "reason": err.message()}),
                    &format!(
                        "flow `{name}`: skipped the run of {}: {}",
                        wall_clock(tick),
                        err.message()
                    ),
                );
                continue;
            }
            Ok(Err(err)) => {
                failures += 1;
                log.say(
                    "lock_error",
                    Some(&name),
                    json!({"error": err.message()}),
                    &format!("flow `{name}`: cannot take its lock: {}", err.message()),
                );
                continue;
            }
            Err(_) => return,
        };
        let result = run_once(&flow, &store, &env, log, &metrics).await;
        match result {
            // Parked records are the run's news, not a reason to hold the flow back.
            Ok(_) => failures = 0,
            Err(err) if err.kind() == ErrorKind::Interrupted => return,
            Err(err) => {
                failures += 1;
                let pause = schedule::backoff(failures);
                log.say(
                    "backoff",
                    Some(&name),
                    json!({
                        "failures": failures,
                        "error": err.message(),
                        "wait_seconds": pause.as_secs(),
                    }),
                    &format!(
                        "flow `{name}`: run failed ({failures} in a row): {}; next try in {} at the earliest",
                        err.message(),
                        crate::time::format_span(
                            chrono::Duration::from_std(pause).unwrap_or_default()
                        )
                    ),
                );
            }
        }
    }
}

/// One scheduled run of a flow (its lock already held), counted in the metrics.
async fn run_once(
    flow: &Served,
    store: &Path,
    env: &Env,
    log: ServeLog,
    metrics: &Metrics,
) -> Result<ExitCode> {
    let name = flow.flow.name.as_str();
    let options = Options {
        dry_run: false,
        since: None,
        until: None,
        store: store.to_path_buf(),
        sleeper: Sleeper::Tokio,
        clock: Arc::new(SystemClock),
        calls: Some(metrics.call_observer()),
    };
    let progress = Arc::new(match log.format {
        LogFormat::Text => Progress::plain(),
        LogFormat::Json => Progress::for_format(log.format, name),
    });
    metrics.set_running(name, true);
    let started = std::time::Instant::now();
    let result = commands::sync(
        &flow.flow,
        &flow.file,
        env,
        options,
        &flow.alerts,
        Arc::clone(&progress),
        commands::Printing {
            throwaway_state: false,
            bodies: crate::preview::Format::Json,
        },
    )
    .await;
    metrics.set_running(name, false);
    metrics.finished(
        name,
        metrics::outcome(&result),
        started.elapsed(),
        &progress,
        store,
    );
    result
}
