//! `engine run`: read the source, map, write the target, move the cursor — exactly once.
//!
//! A run first settles what an earlier run left in flight (`recover`: looked up in the target;
//! found is written, not found is sent again). Then it is a pipeline of five stages, each a
//! task with its own module, joined by bounded channels (`stage`): `read` walks the time
//! windows page by page, `map` maps each record, `batch` checks the ledger (already written:
//! skipped; changed since: the flow's `on_change`; unmappable: parked) and groups the rest
//! into batches, `write` hands each batch to a free writer (at most `target.concurrency`; a
//! batch waits for a free writer, and everything before it waits in turn), and `settle`
//! counts the outcomes and moves the cursor past a window once every record of it is written
//! or parked (`tracker`). This module only plans the windows, starts the stages and collects
//! what they report; it never calls back into them. A run-level failure (refused credentials,
//! an API unreachable through every retry) stops reading, lets the writers under way finish,
//! and returns the error: nothing is lost, the next run picks up from there.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinHandle};

use crate::auth;
use crate::config::model::{Concurrency, Flow};
use crate::error::{Error, ErrorKind, Result};
use crate::file::target::FileTarget;
use crate::http::client::{CallObserver, Client, Notify};
use crate::http::retry::Sleeper;
use crate::request::{self, Env};
use crate::run::concurrency::{Controller, Mode};
use crate::source::window::{self, Window};
use crate::state::{RunKind, RunSummary, Store};
use crate::target::writer::Writer;
use crate::time::{self, Clock, wall_clock};

mod batch;
pub mod commands;
pub mod concurrency;
mod map;
pub mod progress;
mod read;
mod recover;
pub mod resend;
mod retry;
mod settle;
mod sink;
mod stage;
mod summary;
pub mod tracker;
mod write;

use batch::BatchStage;
use map::MapStage;
use progress::Progress;
use read::{Input, ReadStage};
pub use retry::retry;
use settle::SettleStage;
use sink::Sink;
use stage::{Capacities, InFlight};
pub use summary::{Summary, describe};
use tracker::Tracker;
use write::WriteStage;

/// How a run is asked to behave.
pub struct Options {
    /// Fetch and map, print what would be sent; write nothing, move nothing.
    pub dry_run: bool,
    /// Re-sync this range instead of continuing from the cursor (the cursor does not move).
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub store: PathBuf,
    pub sleeper: Sleeper,
    pub clock: Arc<dyn Clock>,
    /// Told of every API request and rate-limit wait (metrics), if anyone counts them.
    pub calls: Option<Arc<dyn CallObserver>>,
}

/// Run `flow` once.
pub async fn run(
    flow: Arc<Flow>,
    env: Env,
    options: Options,
    progress: Arc<Progress>,
) -> Result<Summary> {
    let store = Store::open(&options.store)?;
    let now = options.clock.now();
    let kind = match (
        options.dry_run,
        options.since.is_some() || options.until.is_some(),
    ) {
        (true, _) => RunKind::DryRun,
        (false, true) => RunKind::Backfill,
        (false, false) => RunKind::Run,
    };
    let run_id = store.start_run(&flow.name, kind, now)?;
    let cursor_before = store.cursor(&flow.name)?;
    let result = tokio::select! {
        result = execute(Arc::clone(&flow), env, &options, &store, Arc::clone(&progress)) => result,
        signal = interrupted() => Err(Error::new(
            ErrorKind::Interrupted,
            format!("interrupted by {signal}"),
        )
        .with_hint("what was written is recorded; records whose write was under way stay in flight and the next run or `engine retry` looks them up first")),
    };
    progress.finish();
    let failed = result
        .as_ref()
        .is_err_and(|err| err.kind() != ErrorKind::Interrupted);
    if failed && store.cursor(&flow.name)? != cursor_before {
        // A run that fails moves no cursor, not even past the windows it completed: the
        // records it wrote are in the ledger, so the next run reads them again for nothing
        // but sends none of them twice. (An interrupted run keeps what it completed.)
        store.restore_cursor(&flow.name, cursor_before, options.clock.now())?;
        progress.line(match cursor_before {
            Some(before) => format!(
                "the cursor stays at {}, where this run started",
                wall_clock(before)
            ),
            None => "the cursor stays unset, as before this run".to_string(),
        });
    }
    store.finish_run(run_id, &recorded(&result, &progress), options.clock.now())?;
    result
}

/// The first Ctrl-C or SIGTERM. Stopping a run at any point is safe by design (it is what a
/// crash does); this only lets the run say so and record itself as failed.
async fn interrupted() -> &'static str {
    // A signal that cannot be listened for never arrives.
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = ctrl_c => return "Ctrl-C",
                _ = terminate.recv() => return "SIGTERM",
            }
        }
    }
    ctrl_c.await;
    "Ctrl-C"
}

/// What the run history keeps of a run's result.
fn recorded(result: &Result<Summary>, progress: &Progress) -> RunSummary {
    match result {
        Ok(summary) => RunSummary {
            outcome: summary.outcome().to_string(),
            window_from: summary.range.map(|r| r.start),
            window_to: summary.range.map(|r| r.end),
            read: summary.read,
            written: summary.written,
            skipped: summary.skipped,
            failed: summary.failed + summary.conflicts,
            message: None,
        },
        Err(err) => {
            // The counts so far, from the progress counters the tasks shared.
            let count = |counter: &std::sync::atomic::AtomicU64| {
                counter.load(std::sync::atomic::Ordering::Relaxed)
            };
            RunSummary {
                outcome: "failed".to_string(),
                window_from: None,
                window_to: None,
                read: count(&progress.counts.read),
                written: count(&progress.counts.written),
                skipped: count(&progress.counts.skipped),
                failed: count(&progress.counts.failed),
                message: Some(err.message().to_string()),
            }
        }
    }
}

/// The target client and the writer over it, ready to write (logged in unless `dry_run`);
/// or the files of a file target.
async fn writer(
    flow: &Arc<Flow>,
    env: &Env,
    options: &Options,
    store: &Store,
    progress: &Arc<Progress>,
) -> Result<Arc<Sink>> {
    if flow.target.connector.files.is_some() {
        let target = FileTarget::new(
            Arc::clone(flow),
            store.clone(),
            Arc::clone(&options.clock),
            options.clock.now(),
        )?;
        progress.line(format!("target {}", target.describe()));
        return Ok(Arc::new(Sink::File(Arc::new(target))));
    }
    let client = Arc::new(
        Client::new(
            &flow.target.connector,
            &flow.templates,
            env,
            options.sleeper.clone(),
            Arc::clone(&options.clock),
            notifier(progress),
        )?
        .observed_by(options.calls.clone()),
    );
    progress.line(format!("target {}", client.route()));
    let config_error = |what: &str, err: crate::tree::EvalError| {
        Error::config(format!("{what}: {}", err.message)).with_location(err.location)
    };
    let inputs = request::target_inputs(flow, env)
        .map_err(|err| config_error("cannot evaluate the target's params", err))?;
    let lookup_inputs = request::lookup_inputs(flow, env)
        .map_err(|err| config_error("cannot evaluate the lookup's params", err))?;
    if !options.dry_run {
        client.start().await.map_err(|err| err.into_error())?;
    }
    Ok(Arc::new(Sink::Http(Box::new(Writer {
        flow: Arc::clone(flow),
        client,
        store: store.clone(),
        env: env.clone(),
        inputs,
        lookup_inputs,
        clock: Arc::clone(&options.clock),
    }))))
}

fn notifier(progress: &Arc<Progress>) -> Notify {
    let progress = Arc::clone(progress);
    Arc::new(move |message| progress.notice(message))
}

async fn execute(
    flow: Arc<Flow>,
    env: Env,
    options: &Options,
    store: &Store,
    progress: Arc<Progress>,
) -> Result<Summary> {
    let source = match &flow.source.connector.files {
        Some(files) => {
            progress.line(format!("source {}", files.path.display()));
            Input::File
        }
        None => {
            let client = Client::new(
                &flow.source.connector,
                &flow.templates,
                &env,
                options.sleeper.clone(),
                Arc::clone(&options.clock),
                notifier(&progress),
            )?
            .observed_by(options.calls.clone());
            progress.line(format!("source {}", client.route()));
            Input::Http(Box::new(client))
        }
    };
    let writer = writer(&flow, &env, options, store, &progress).await?;
    let mut summary = Summary {
        cursor_before: store.cursor(&flow.name)?,
        ..Summary::default()
    };
    // Keys the recovery could not settle are not sent when this run reads them; the others are
    // in the ledger, which decides (an unchanged copy is skipped, a newer one follows
    // `on_change`).
    let mut recovered = Default::default();
    if !options.dry_run {
        let recovery = recover::recover(&writer, &progress).await?;
        summary.recovered = recovery.keys.len() as u64;
        summary.written += recovery.written;
        summary.failed += recovery.failed;
        summary.unresolved += recovery.unresolved;
        recovered = recovery.unverified;
    }
    let backfill = options.since.is_some() || options.until.is_some();
    let (range, windows) = plan(&flow, &env, options, summary.cursor_before, &progress)?;
    summary.range = range;
    summary.windows = windows.len();
    if flow.source.window.is_some() && windows.is_empty() {
        progress.line("nothing to read yet: the window since the last run has not passed the lag");
        return Ok(summary);
    }
    let pipeline = Pipeline {
        flow: Arc::clone(&flow),
        env,
        source,
        writer,
        store: store.clone(),
        progress,
        windows,
        recovered,
        dry_run: options.dry_run,
        move_cursor: !options.dry_run && !backfill && flow.source.window.is_some(),
        clock: Arc::clone(&options.clock),
    };
    summary.add(pipeline.run().await?);
    summary.cursor_after = store.cursor(&flow.name)?;
    Ok(summary)
}

/// What the stages of one run are given, each taking its part.
struct Pipeline {
    flow: Arc<Flow>,
    env: Env,
    source: Input,
    writer: Arc<Sink>,
    store: Store,
    progress: Arc<Progress>,
    windows: Vec<Window>,
    /// Keys the recovery settled: not sent again when read.
    recovered: HashSet<String>,
    dry_run: bool,
    move_cursor: bool,
    clock: Arc<dyn Clock>,
}

impl Pipeline {
    /// Start the stages, wait for every one to end, and add up what they report.
    async fn run(self) -> Result<Summary> {
        let Pipeline {
            flow,
            env,
            source,
            writer,
            store,
            progress,
            windows,
            recovered,
            dry_run,
            move_cursor,
            clock,
        } = self;
        let batch_size = flow.target.batch_size.max(1) as usize;
        let concurrency = Controller::new(match flow.target.concurrency {
            Concurrency::Fixed(n) => Mode::Fixed(n as usize),
            Concurrency::Adaptive { initial, max } => Mode::Adaptive {
                initial: initial as usize,
                max: max as usize,
            },
        });
        let max_writers = flow.target.concurrency.max() as usize;
        let capacity = Capacities::new(flow.source.page_size, batch_size, max_writers);
        let (read_out, map_in) = mpsc::channel(capacity.records);
        let (map_out, batch_in) = mpsc::channel(capacity.mapped);
        let (batch_out, write_in) = mpsc::channel(capacity.batches);
        let (write_out, settle_in) = mpsc::channel(capacity.outcomes);
        let tracker = Tracker::for_windows(&windows);
        let in_flight = InFlight::new(recovered);
        let mut stages = Stages::default();
        let read = stages.start(
            ReadStage {
                flow: Arc::clone(&flow),
                input: source,
                env,
                windows,
                progress: Arc::clone(&progress),
            }
            .run(read_out),
        );
        let map = stages.start(
            MapStage {
                flow: Arc::clone(&flow),
                progress: Arc::clone(&progress),
            }
            .run(map_in, map_out),
        );
        let batch = stages.start(
            BatchStage {
                flow_name: flow.name.clone(),
                on_change: flow.target.on_change,
                resend_hint: (flow.target.on_change == crate::config::raw::OnChange::Skip
                    && flow.target.keep_records)
                    .then(|| flow.file.display().to_string()),
                keep_records: flow.target.keep_records,
                batch_size,
                store: store.clone(),
                progress: Arc::clone(&progress),
                in_flight: in_flight.clone(),
                dry_run,
                clock: Arc::clone(&clock),
            }
            .run(batch_in, batch_out),
        );
        let write = stages.start(
            WriteStage {
                writer: Arc::clone(&writer),
                concurrency,
                in_flight: in_flight.clone(),
                dry_run,
                progress: Arc::clone(&progress),
            }
            .run(write_in, write_out),
        );
        let settle = stages.start(
            SettleStage {
                flow_name: flow.name.clone(),
                store: store.clone(),
                progress: Arc::clone(&progress),
                tracker,
                move_cursor,
                clock: Arc::clone(&clock),
                verifier: writer,
                in_flight,
            }
            .run(settle_in),
        );
        // Every stage ends: a failed stage closes its channels, so the stages before it fail to
        // send (a consequence) and those after it see the end of their input. The cause is the
        // failure furthest down the pipeline, so the outcomes are taken from the settle stage back.
        let outcomes = [
            finished(settle).await,
            finished(write).await,
            finished(batch).await,
            finished(map).await,
            finished(read).await,
        ];
        let mut summary = Summary::default();
        for outcome in outcomes {
            summary.add(outcome?);
        }
        Ok(summary)
    }
}

/// The range this run reads and the windows it is sliced into (none for a source without
/// time windows, or when nothing is due yet).
fn plan(
    flow: &Flow,
    env: &Env,
    options: &Options,
    cursor: Option<DateTime<Utc>>,
    progress: &Progress,
) -> Result<(Option<Window>, Vec<Window>)> {
    let Some(config) = &flow.source.window else {
        return Ok((None, Vec::new()));
    };
    let now = options.clock.now();
    let initial = auth::setting(&config.start, &flow.templates, env, "`source.window.start`")?;
    let initial = time::parse_instant_in(&initial, flow.source.connector.time_zone)
        .map_err(|message| Error::config(format!("`source.window.start`: {message}")))?;
    let ask = window::Ask {
        cursor,
        initial,
        since: options.since,
        until: options.until,
        lookback: config.lookback,
        lag: config.lag,
    };
    let planned = window::plan(ask, now)
        .map_err(|refused| refused.into_error(&flow.name, &flow.file, now))?;
    if let Some(asked) = planned.clamped_until {
        progress.line(format!(
            "`--until` {} is later than now minus the lag: reading up to {}",
            wall_clock(asked),
            planned
                .range
                .map_or_else(String::new, |range| wall_clock(range.end))
        ));
    }
    let windows = planned
        .range
        .map(|range| window::slice(range, config.max_span))
        .unwrap_or_default();
    Ok((planned.range, windows))
}

/// The stage tasks of a run. Dropped before they end (the run was interrupted), they are
/// stopped where they wait, as a crash would stop them: what is in flight stays in flight.
#[derive(Default)]
struct Stages(Vec<AbortHandle>);

impl Stages {
    fn start<F>(&mut self, stage: F) -> JoinHandle<Result<Summary>>
    where
        F: Future<Output = Result<Summary>> + Send + 'static,
    {
        let handle = tokio::spawn(stage);
        self.0.push(handle.abort_handle());
        handle
    }
}

impl Drop for Stages {
    fn drop(&mut self) {
        for stage in &self.0 {
            stage.abort();
        }
    }
}

async fn finished(stage: JoinHandle<Result<Summary>>) -> Result<Summary> {
    stage.await.map_err(|err| {
        Error::new(ErrorKind::State, "a stage of the run stopped unexpectedly").with_source(err)
    })?
}
