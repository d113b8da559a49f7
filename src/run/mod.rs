//! `engine run`: read the source, map, write the target, move the cursor — exactly once.
//!
//! A run first settles what an earlier run left in flight (looked up in the target: found is
//! written, not found is sent again). Then a reader task walks the time windows page by page
//! and streams records through a bounded channel; this task maps them, checks the ledger
//! (already written: skipped; changed since: the flow's `on_change`), batches them and hands
//! the batches to concurrent writers, as many as `target.concurrency`. Records that cannot be
//! mapped or that the target rejects are parked with their reason. The cursor moves past a
//! window only once every record of it is written or parked. A run-level failure (refused
//! credentials, an API unreachable through every retry) stops reading, lets the writers in
//! flight finish, and returns the error: nothing is lost, the next run picks up from there.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::auth;
use crate::config::model::Flow;
use crate::config::raw::OnChange;
use crate::error::{Error, ErrorKind, Result};
use crate::http::client::{Client, Notify};
use crate::http::retry::Sleeper;
use crate::record;
use crate::request::{self, Env};
use crate::source::reader::{Read, Reader, Seen, SourceRecord};
use crate::source::window::{self, Window};
use crate::state::{Entry, Outcome, RunKind, RunSummary, Status, Store};
use crate::target::writer::{Outgoing, Settled, Writer};
use crate::time::{self, Clock, wall_clock};

pub mod commands;
pub mod progress;
pub mod tracker;

use progress::Progress;
use tracker::Tracker;

/// What a writer task returns: the window of each record of its batch, and how they ended.
type WriterResult = (Vec<Option<usize>>, Result<Vec<Settled>>);

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
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub range: Option<Window>,
    pub windows: usize,
    pub read: u64,
    pub duplicates: u64,
    pub written: u64,
    /// Already written earlier and unchanged (or changed, under `on_change: skip`).
    pub skipped: u64,
    pub changed: u64,
    pub failed: u64,
    pub conflicts: u64,
    /// Parked by an earlier run and read again unchanged: left for `engine retry`.
    pub still_parked: u64,
    /// In-flight records of an earlier run settled at the start.
    pub recovered: u64,
    /// Records whose outcome stayed unknown: still in flight, checked first by the next run.
    pub unresolved: u64,
    /// Windows that kept changing while they were read: the cursor stays before the first.
    pub unsettled: u64,
    pub cursor_before: Option<DateTime<Utc>>,
    pub cursor_after: Option<DateTime<Utc>>,
    /// Request bodies a dry run would have sent.
    pub bodies: Vec<Json>,
}

impl Summary {
    pub fn outcome(&self) -> &'static str {
        if self.failed + self.conflicts + self.unresolved + self.unsettled > 0 {
            "partial"
        } else {
            "ok"
        }
    }
}

/// Everything a run shares between its tasks.
struct Shared {
    flow: Arc<Flow>,
    store: Store,
    writer: Arc<Writer>,
    progress: Arc<Progress>,
    dry_run: bool,
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

/// The target client and the writer over it, ready to write (logged in unless `dry_run`).
async fn writer(
    flow: &Arc<Flow>,
    env: &Env,
    options: &Options,
    store: &Store,
    progress: &Arc<Progress>,
) -> Result<Arc<Writer>> {
    let client = Arc::new(Client::new(
        &flow.target.connector,
        &flow.templates,
        env,
        options.sleeper.clone(),
        Arc::clone(&options.clock),
        notifier(progress),
    )?);
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
    Ok(Arc::new(Writer {
        flow: Arc::clone(flow),
        client,
        store: store.clone(),
        env: env.clone(),
        inputs,
        lookup_inputs,
        clock: Arc::clone(&options.clock),
    }))
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
    let notify = notifier(&progress);
    let source = Client::new(
        &flow.source.connector,
        &flow.templates,
        &env,
        options.sleeper.clone(),
        Arc::clone(&options.clock),
        Arc::clone(&notify),
    )?;
    progress.line(format!("source {}", source.route()));
    let writer = writer(&flow, &env, options, store, &progress).await?;
    let shared = Shared {
        flow: Arc::clone(&flow),
        store: store.clone(),
        writer,
        progress: Arc::clone(&progress),
        dry_run: options.dry_run,
    };
    let mut summary = Summary {
        cursor_before: store.cursor(&flow.name)?,
        ..Summary::default()
    };
    // Keys settled by the recovery are not sent again when this run reads them.
    let mut recovered = HashSet::new();
    if !options.dry_run {
        let recovery = recover(&shared).await?;
        summary.recovered = recovery.keys.len() as u64;
        summary.written += recovery.written;
        summary.failed += recovery.failed;
        summary.unresolved += recovery.unresolved;
        recovered = recovery.keys;
    }

    // Which windows to read.
    let now = options.clock.now();
    let backfill = options.since.is_some() || options.until.is_some();
    let windows = match &flow.source.window {
        None => Vec::new(),
        Some(config) => {
            let initial = auth::setting(
                &config.start,
                &flow.templates,
                &env,
                "`source.window.start`",
            )?;
            let initial = time::parse_instant_in(&initial, flow.source.connector.time_zone)
                .map_err(|message| Error::config(format!("`source.window.start`: {message}")))?;
            let ask = window::Ask {
                cursor: summary.cursor_before,
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
            let range = planned.range;
            summary.range = range;
            range
                .map(|range| window::slice(range, config.max_span))
                .unwrap_or_default()
        }
    };
    summary.windows = windows.len();
    if flow.source.window.is_some() && windows.is_empty() {
        progress.line("nothing to read yet: the window since the last run has not passed the lag");
        return Ok(summary);
    }

    // The reader task: windows in order, records into a bounded channel.
    let capacity = (flow.source.page_size.max(1) as usize * 2).clamp(64, 1_000);
    let (sender, mut receiver) = mpsc::channel::<Read>(capacity);
    let reader = {
        let flow = Arc::clone(&flow);
        let progress = Arc::clone(&progress);
        let env = env.clone();
        let windows = windows.clone();
        tokio::spawn(async move {
            let reader = Reader {
                flow: &flow,
                client: &source,
                env: &env,
                progress: &*progress,
            };
            let mut seen = Seen::default();
            let mut unsettled = 0;
            if windows.is_empty() {
                // A source without time windows is read once, as one window.
                let whole = Window {
                    start: DateTime::<Utc>::MIN_UTC,
                    end: DateTime::<Utc>::MAX_UTC,
                };
                let stats = reader.read_window(0, 1, whole, &sender, &mut seen).await?;
                unsettled += u64::from(stats.unsettled);
            }
            for (index, window) in windows.iter().enumerate() {
                let stats = reader
                    .read_window(index, windows.len(), *window, &sender, &mut seen)
                    .await?;
                unsettled += u64::from(stats.unsettled);
            }
            Ok::<(u64, u64), Error>((seen.duplicates, unsettled))
        })
    };

    // Map, batch and write as records arrive.
    let tracked = if windows.is_empty() {
        vec![Window {
            start: DateTime::<Utc>::MIN_UTC,
            end: DateTime::<Utc>::MIN_UTC,
        }]
    } else {
        windows.clone()
    };
    let mut tracker = Tracker::new(tracked);
    let semaphore = Arc::new(Semaphore::new(flow.target.concurrency.max(1) as usize));
    let mut writers: JoinSet<WriterResult> = JoinSet::new();
    let mut pending: Vec<SourceRecord> = Vec::new();
    let mut in_flight: HashSet<String> = recovered;
    let mut fatal: Option<Error> = None;
    let batch_size = flow.target.batch_size.max(1) as usize;
    let move_cursor = !options.dry_run && !backfill && flow.source.window.is_some();
    let mut reading = true;
    while reading || !writers.is_empty() {
        tokio::select! {
            item = receiver.recv(), if reading && fatal.is_none() => match item {
                Some(Read::Record(record)) => {
                    progress.read(1);
                    summary.read += 1;
                    pending.push(record);
                    if pending.len() >= batch_size {
                        dispatch(&shared, std::mem::take(&mut pending), &mut summary, &mut tracker, &mut in_flight, &semaphore, &mut writers).await?;
                    }
                }
                Some(Read::WindowDone { index, .. }) => {
                    dispatch(&shared, std::mem::take(&mut pending), &mut summary, &mut tracker, &mut in_flight, &semaphore, &mut writers).await?;
                    tracker.read(index);
                }
                None => {
                    dispatch(&shared, std::mem::take(&mut pending), &mut summary, &mut tracker, &mut in_flight, &semaphore, &mut writers).await?;
                    reading = false;
                }
            },
            Some(joined) = writers.join_next(), if !writers.is_empty() => {
                let (windows_of, result) = joined.map_err(|err| Error::new(ErrorKind::State, "a writer stopped unexpectedly").with_source(err))?;
                match result {
                    Ok(settled) => {
                        for (outcome, window) in settled.iter().zip(&windows_of) {
                            match outcome {
                                Settled::Written { key, note, .. } => {
                                    summary.written += 1;
                                    progress.written(1);
                                    tell_refused_but_there(&progress, key, note);
                                    in_flight.remove(key);
                                }
                                Settled::Failed { key, message } => {
                                    summary.failed += 1;
                                    progress.failed(key, message);
                                    in_flight.remove(key);
                                }
                                Settled::Unresolved { key, sends } => {
                                    // Its window stays open: the cursor must not pass it.
                                    summary.unresolved += 1;
                                    progress.notice(format!("record `{key}` was sent {sends} times without a clear answer and is not in the target; it stays in flight and the next run checks it first"));
                                    in_flight.remove(key);
                                    continue;
                                }
                            }
                            if let Some(window) = window {
                                tracker.settle(*window);
                            }
                        }
                    }
                    Err(err) => {
                        if fatal.is_none() {
                            fatal = Some(err);
                        }
                        reading = false;
                    }
                }
            }
        }
        if fatal.is_some() {
            reading = false;
        }
        if move_cursor
            && fatal.is_none()
            && let Some(to) = tracker.advance()
        {
            store.advance_cursor(&flow.name, to, options.clock.now())?;
            progress.cursor(to);
        }
    }
    drop(receiver);
    let read_result = reader.await.map_err(|err| {
        Error::new(ErrorKind::State, "the reader stopped unexpectedly").with_source(err)
    })?;
    if let Some(err) = fatal {
        return Err(err);
    }
    (summary.duplicates, summary.unsettled) = read_result?;
    summary.cursor_after = store.cursor(&flow.name)?;
    Ok(summary)
}

/// Check the ledger for `records`, map the ones to write and hand them to writers.
async fn dispatch(
    shared: &Shared,
    records: Vec<SourceRecord>,
    summary: &mut Summary,
    tracker: &mut Tracker,
    in_flight: &mut HashSet<String>,
    semaphore: &Arc<Semaphore>,
    writers: &mut JoinSet<WriterResult>,
) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let flow = &shared.flow;
    let newest = newest_versions(&records);
    let keys: Vec<String> = records.iter().map(|r| r.key.clone()).collect();
    let ledger = shared.store.entries(&flow.name, &keys)?;
    let mut outgoing: Vec<Outgoing> = Vec::new();
    let mut parked: Vec<Outcome> = Vec::new();
    for (record, newest) in records.into_iter().zip(newest) {
        if !newest || in_flight.contains(&record.key) {
            summary.duplicates += 1;
            continue;
        }
        let entry = ledger.get(&record.key);
        match record::map(flow, Arc::clone(&record.record)) {
            Err(failure) => {
                let message = format!(
                    "{} (in `{}` at {})",
                    failure.error.message, failure.error.target, failure.error.location
                );
                if entry.is_some_and(|e| e.done_at.is_some()) {
                    // Already written; its newer copy cannot be mapped. Leave the written one alone.
                    summary.skipped += 1;
                    shared.progress.notice(format!("record `{}` is already written; its new version cannot be mapped: {message}", record.key));
                    continue;
                }
                if entry.is_some_and(|e| parked_unchanged(e, None, &record.record)) {
                    summary.still_parked += 1;
                    continue;
                }
                summary.failed += 1;
                shared.progress.failed(&record.key, &message);
                if !shared.dry_run {
                    parked.push(Outcome::Failed {
                        key: record.key.clone(),
                        message,
                        field: failure.error.missing_field.clone(),
                        hash: None,
                        source: Some((*record.record).clone()),
                        modified: record.modified.clone(),
                    });
                }
            }
            Ok(mapped) => match entry {
                Some(entry) if parked_unchanged(entry, Some(&mapped.hash), &record.record) => {
                    // The same bill was refused before: sending it again would be refused again.
                    // `engine retry` sends it once the master data is fixed.
                    summary.still_parked += 1;
                }
                Some(entry)
                    if entry.status == Status::Done
                        && entry.hash.as_deref() == Some(mapped.hash.as_str()) =>
                {
                    summary.skipped += 1;
                    shared.progress.skipped(1);
                }
                Some(entry) if entry.status == Status::Conflict && entry.done_at.is_some() => {
                    // Written, then parked as a conflict: a person decides (`engine retry`
                    // acknowledges it); it is never sent again.
                    summary.still_parked += 1;
                }
                Some(entry) if entry.done_at.is_some() => {
                    summary.changed += 1;
                    match flow.target.on_change {
                        OnChange::Skip => {
                            summary.skipped += 1;
                            shared.progress.skipped(1);
                        }
                        OnChange::Conflict => {
                            summary.conflicts += 1;
                            let message = "the source changed after the record was written; the target keeps the first version".to_string();
                            shared.progress.failed(&record.key, &message);
                            if !shared.dry_run {
                                parked.push(Outcome::Conflict {
                                    key: record.key.clone(),
                                    message,
                                    hash: Some(mapped.hash.clone()),
                                    source: Some((*record.record).clone()),
                                    modified: record.modified.clone(),
                                });
                            }
                        }
                    }
                }
                _ => outgoing.push(Outgoing {
                    mapped,
                    source: Arc::clone(&record.record),
                    window: record.window,
                }),
            },
        }
    }
    if !parked.is_empty() {
        shared
            .store
            .record_outcomes(&flow.name, &parked, Utc::now())?;
    }
    if shared.dry_run {
        let inputs = &shared.writer.inputs;
        for batch in outgoing.chunks(flow.target.batch_size.max(1) as usize) {
            let targets: Vec<Json> = batch.iter().map(|o| o.mapped.target.clone()).collect();
            let body =
                request::write_body(flow, inputs, targets, &shared.writer.env).map_err(|err| {
                    Error::config(format!("cannot build the request body: {}", err.message))
                        .with_location(err.location)
                })?;
            summary.bodies.push(body);
        }
        return Ok(());
    }
    for batch in chunk(outgoing, flow.target.batch_size.max(1) as usize) {
        let windows: Vec<Option<usize>> = batch.iter().map(|o| o.window).collect();
        for outgoing in &batch {
            in_flight.insert(outgoing.mapped.key.clone());
            if let Some(window) = outgoing.window {
                tracker.add(window);
            }
        }
        let writer = Arc::clone(&shared.writer);
        let semaphore = Arc::clone(semaphore);
        writers.spawn(async move {
            let _permit = semaphore
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            (windows, writer.write(batch).await)
        });
    }
    Ok(())
}

/// Whether `entry` is parked for this very version of the record: the same mapped content
/// (`hash`), or, when it cannot be mapped (as before: `None`), the same source record.
fn parked_unchanged(entry: &Entry, hash: Option<&String>, source: &Json) -> bool {
    matches!(entry.status, Status::Failed | Status::Conflict)
        && entry.hash.as_ref() == hash
        && (hash.is_some() || entry.source.as_ref() == Some(source))
}

/// Which of `records` go on: two versions of one record can arrive together (an order modified
/// while its window was read, met again on a re-read), and only the last, the newest, may be
/// sent. Sending both would make two bills wherever the target does not refuse a repeated key.
fn newest_versions(records: &[SourceRecord]) -> Vec<bool> {
    let last_of: HashMap<&str, usize> = records
        .iter()
        .enumerate()
        .map(|(index, record)| (record.key.as_str(), index))
        .collect();
    records
        .iter()
        .enumerate()
        .map(|(index, record)| last_of[record.key.as_str()] == index)
        .collect()
}

/// A record the target refused but holds all the same counts as written (it is never sent
/// again); what the target said is worth a look.
fn tell_refused_but_there(progress: &Progress, key: &str, note: &Option<String>) {
    if let Some(note) = note {
        progress.notice(format!(
            "record `{key}` is in the target although this send was refused ({note}); counted as written, check it there if the message is not about a duplicate"
        ));
    }
}

fn chunk<T>(items: Vec<T>, size: usize) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        out.push(items.by_ref().take(size).collect());
    }
    out
}

/// What the recovery of an earlier run's in-flight records did.
#[derive(Debug, Default)]
struct Recovery {
    /// The keys it handled: the run does not send them again when it reads them.
    keys: HashSet<String>,
    /// Found in the target, or sent again and written.
    written: u64,
    failed: u64,
    /// Still without a clear answer: they stay in flight for the next run.
    unresolved: u64,
}

/// Settle what an earlier run left in flight: look it up, then send again what is not there.
async fn recover(shared: &Shared) -> Result<Recovery> {
    let flow = &shared.flow;
    let entries = shared.store.in_flight(&flow.name)?;
    let mut recovery = Recovery {
        keys: entries.iter().map(|e| e.key.clone()).collect(),
        ..Recovery::default()
    };
    if entries.is_empty() {
        return Ok(recovery);
    }
    shared.progress.line(format!(
        "{} record(s) were in flight when an earlier run stopped; checking the target first",
        entries.len()
    ));
    if flow.target.lookup.is_none() {
        let outcomes: Vec<Outcome> = entries
            .iter()
            .map(|entry| Outcome::Failed {
                key: entry.key.clone(),
                message: "a write was interrupted and the flow has no `target.lookup` to check whether it arrived; check the target, then `engine retry`".to_string(),
                field: None,
                hash: entry.hash.clone(),
                source: entry.source.clone(),
                modified: entry.modified.clone(),
            })
            .collect();
        shared
            .store
            .record_outcomes(&flow.name, &outcomes, Utc::now())?;
        for outcome in &outcomes {
            if let Outcome::Failed { key, message, .. } = outcome {
                shared.progress.failed(key, message);
            }
        }
        recovery.failed = outcomes.len() as u64;
        return Ok(recovery);
    }
    let keys: Vec<String> = entries.iter().map(|e| e.key.clone()).collect();
    let found = shared.writer.lookup(&keys).await?;
    let mut outcomes = Vec::new();
    let mut resend: Vec<Outgoing> = Vec::new();
    for entry in &entries {
        if let Some(found) = found.get(&entry.key) {
            outcomes.push(Outcome::Done {
                key: entry.key.clone(),
                target_id: found.id.clone(),
                target_number: found.number.clone(),
                hash: entry.hash.clone(),
            });
            continue;
        }
        let Some(source) = entry.source.clone() else {
            outcomes.push(Outcome::Released {
                key: entry.key.clone(),
            });
            continue;
        };
        match record::map(flow, Arc::new(source.clone())) {
            Ok(mapped) => resend.push(Outgoing {
                mapped,
                source: Arc::new(source),
                window: None,
            }),
            Err(failure) => outcomes.push(Outcome::Failed {
                key: entry.key.clone(),
                message: failure.error.message.clone(),
                field: failure.error.missing_field.clone(),
                hash: None,
                source: Some(source),
                modified: entry.modified.clone(),
            }),
        }
    }
    shared
        .store
        .record_outcomes(&flow.name, &outcomes, Utc::now())?;
    let written_earlier = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Done { .. }))
        .count();
    recovery.written += written_earlier as u64;
    shared.progress.written(written_earlier as u64);
    for outcome in &outcomes {
        if let Outcome::Failed { key, message, .. } = outcome {
            recovery.failed += 1;
            shared.progress.failed(key, message);
        }
    }
    let resent = resend.len();
    for batch in chunk(resend, flow.target.batch_size.max(1) as usize) {
        for settled in shared.writer.write(batch).await? {
            match settled {
                Settled::Written { key, note, .. } => {
                    recovery.written += 1;
                    shared.progress.written(1);
                    tell_refused_but_there(&shared.progress, &key, &note);
                }
                Settled::Failed { key, message } => {
                    recovery.failed += 1;
                    shared.progress.failed(&key, &message);
                }
                Settled::Unresolved { key, .. } => {
                    recovery.unresolved += 1;
                    shared.progress.notice(format!(
                        "record `{key}` is still unresolved; it stays in flight"
                    ));
                }
            }
        }
    }
    shared.progress.line(format!(
        "{written_earlier} of them had arrived; {resent} sent again"
    ));
    Ok(recovery)
}

/// Resend parked records (all, or those with the given keys) with the flow as it is now.
pub async fn retry(
    flow: Arc<Flow>,
    env: Env,
    options: Options,
    keys: Vec<String>,
    progress: Arc<Progress>,
) -> Result<Summary> {
    let store = Store::open(&options.store)?;
    let parked = store.parked(&flow.name, &keys)?;
    // Records an interrupted run or retry left in flight are settled first, as a run would.
    let in_flight = store.in_flight(&flow.name)?;
    let known: HashSet<&str> = parked
        .iter()
        .chain(&in_flight)
        .map(|e| e.key.as_str())
        .collect();
    let unknown: Vec<&String> = keys
        .iter()
        .filter(|k| !known.contains(k.as_str()))
        .collect();
    if !unknown.is_empty() {
        return Err(Error::usage(format!(
            "no parked record with key {}",
            unknown
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .with_hint(format!(
            "`engine failed {}` lists the parked records",
            flow.file.display()
        )));
    }
    let cursor = store.cursor(&flow.name)?;
    if parked.is_empty() && in_flight.is_empty() {
        progress.line("no parked records to retry");
        return Ok(Summary {
            cursor_before: cursor,
            cursor_after: cursor,
            ..Summary::default()
        });
    }
    let run_id = store.start_run(&flow.name, RunKind::Retry, options.clock.now())?;
    let result = resend(&flow, &env, &options, &store, &parked, &progress)
        .await
        .map(|mut summary| {
            summary.cursor_before = cursor;
            summary.cursor_after = cursor;
            summary
        });
    progress.finish();
    store.finish_run(run_id, &recorded(&result, &progress), options.clock.now())?;
    result
}

/// Send `parked` records again: re-mapped with the flow as it is now; a conflict (already in
/// the target) is acknowledged after a lookup, never sent a second time.
async fn resend(
    flow: &Arc<Flow>,
    env: &Env,
    options: &Options,
    store: &Store,
    parked: &[Entry],
    progress: &Arc<Progress>,
) -> Result<Summary> {
    let writer = writer(flow, env, options, store, progress).await?;
    let recovery = recover(&Shared {
        flow: Arc::clone(flow),
        store: store.clone(),
        writer: Arc::clone(&writer),
        progress: Arc::clone(progress),
        dry_run: false,
    })
    .await?;
    let mut summary = Summary {
        recovered: recovery.keys.len() as u64,
        written: recovery.written,
        failed: recovery.failed,
        unresolved: recovery.unresolved,
        ..Summary::default()
    };
    let mut outgoing = Vec::new();
    let mut remapped_failures = Vec::new();
    let mut acknowledge: Vec<(String, String)> = Vec::new();
    for entry in parked {
        summary.read += 1;
        let Some(source) = entry.source.clone() else {
            progress.notice(format!(
                "record `{}` has no stored source record; it cannot be retried",
                entry.key
            ));
            continue;
        };
        match record::map(flow, Arc::new(source.clone())) {
            Ok(mapped) if entry.done_at.is_some() => {
                acknowledge.push((entry.key.clone(), mapped.hash))
            }
            Ok(mapped) => outgoing.push(Outgoing {
                mapped,
                source: Arc::new(source),
                window: None,
            }),
            Err(failure) => {
                summary.failed += 1;
                progress.failed(&entry.key, &failure.error.message);
                remapped_failures.push(Outcome::Failed {
                    key: entry.key.clone(),
                    message: failure.error.message.clone(),
                    field: failure.error.missing_field.clone(),
                    hash: None,
                    source: Some(source),
                    modified: entry.modified.clone(),
                });
            }
        }
    }
    store.record_outcomes(&flow.name, &remapped_failures, options.clock.now())?;
    if !acknowledge.is_empty() {
        let keys: Vec<String> = acknowledge.iter().map(|(key, _)| key.clone()).collect();
        let found = writer.lookup(&keys).await?;
        let mut outcomes = Vec::new();
        for (key, hash) in acknowledge {
            match found.get(&key) {
                Some(found) => {
                    summary.written += 1;
                    progress.written(1);
                    outcomes.push(Outcome::Done {
                        key,
                        target_id: found.id.clone(),
                        target_number: found.number.clone(),
                        hash: Some(hash),
                    });
                }
                None => {
                    summary.failed += 1;
                    progress.failed(&key, "the record was written earlier but is no longer in the target; restore or recreate it there by hand");
                }
            }
        }
        store.record_outcomes(&flow.name, &outcomes, options.clock.now())?;
    }
    for batch in chunk(outgoing, flow.target.batch_size.max(1) as usize) {
        for settled in writer.write(batch).await? {
            match settled {
                Settled::Written { key, note, .. } => {
                    summary.written += 1;
                    progress.written(1);
                    tell_refused_but_there(progress, &key, &note);
                }
                Settled::Failed { key, message } => {
                    summary.failed += 1;
                    progress.failed(&key, &message);
                }
                Settled::Unresolved { key, .. } => {
                    summary.unresolved += 1;
                    progress.notice(format!("record `{key}` is still unresolved; it stays in flight and the next run checks it first"));
                }
            }
        }
    }
    Ok(summary)
}

/// Summaries as the user reads them.
pub fn describe(summary: &Summary) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(range) = summary.range {
        lines.push(format!(
            "read {} .. {} in {} window(s)",
            wall_clock(range.start),
            wall_clock(range.end),
            summary.windows
        ));
    }
    lines.push(format!(
        "{} read, {} written, {} already written, {} parked{}{}",
        summary.read,
        summary.written,
        summary.skipped,
        summary.failed,
        if summary.conflicts > 0 {
            format!(", {} conflicts", summary.conflicts)
        } else {
            String::new()
        },
        if summary.duplicates > 0 {
            format!(" ({} repeated copies dropped)", summary.duplicates)
        } else {
            String::new()
        },
    ));
    if summary.unsettled > 0 {
        lines.push(format!(
            "{} window(s) kept changing while they were read: the cursor stays before the first, the next run reads them again",
            summary.unsettled
        ));
    }
    if summary.still_parked > 0 {
        lines.push(format!(
            "{} record(s) parked earlier were read again unchanged and not sent; `engine retry` sends them",
            summary.still_parked
        ));
    }
    if summary.unresolved > 0 {
        lines.push(format!("{} record(s) still in flight after several sends without a clear answer: the next run checks them first", summary.unresolved));
    }
    if summary.recovered > 0 {
        lines.push(format!(
            "{} record(s) left in flight by an earlier run were settled first",
            summary.recovered
        ));
    }
    match (summary.cursor_before, summary.cursor_after) {
        (before, Some(after)) if before != Some(after) => {
            lines.push(format!("cursor moved to {}", wall_clock(after)))
        }
        (_, Some(after)) => lines.push(format!("cursor stays at {}", wall_clock(after))),
        _ => {}
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, modified: &str) -> SourceRecord {
        SourceRecord {
            record: Arc::new(serde_json::json!({"order_no": key, "modified": modified})),
            key: key.to_string(),
            modified: Some(modified.to_string()),
            window: Some(0),
        }
    }

    #[test]
    fn of_two_versions_read_together_only_the_newest_goes_on() {
        let records = vec![
            record("RK1", "2024-01-01 10:00:00"),
            record("RK2", "2024-01-01 10:00:00"),
            record("RK1", "2024-01-01 10:05:00"),
        ];
        assert_eq!(newest_versions(&records), vec![false, true, true]);
    }
}
