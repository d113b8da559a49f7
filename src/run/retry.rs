//! `engine retry`: parked records sent again, re-mapped with the flow as it is now.
//!
//! What an interrupted run or retry left in flight (and any update left under way) is recovered
//! first, as a run does. A parked record that was written before (a conflict) is never sent
//! again as a new record: under `on_change: update` or `upsert` its change is sent as an update
//! (say, once `allow_unaudit` is set); otherwise, or when its content is what the target holds,
//! a lookup acknowledges it.

use std::collections::HashSet;
use std::sync::Arc;

use crate::config::model::Flow;
use crate::error::{Error, Result};
use crate::record;
use crate::request::Env;
use crate::run::batch::chunk;
use crate::run::progress::Progress;
use crate::run::recover::recover;
use crate::run::settle::tell_refused_but_there;
use crate::run::{Options, Summary, recorded, writer};
use crate::state::{Entry, Outcome, RunKind, Source, Store};
use crate::target::writer::{Outgoing, Settled};

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
    let updates_under_way = store.pending_updates(&flow.name)?;
    if parked.is_empty() && in_flight.is_empty() && updates_under_way.is_empty() {
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
    let recovery = recover(&writer, progress).await?;
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
    let mut changed: Vec<Outgoing> = Vec::new();
    let sends_changes = flow.target.on_change.sends_changes();
    for entry in parked {
        summary.read += 1;
        // A change parked as a conflict by a refused update keeps its source with the key.
        let kept = match (&entry.source, entry.done_at) {
            (None, Some(_)) => store.kept(&flow.name, &entry.key)?.map(|kept| kept.source),
            _ => None,
        };
        let Some(source) = entry.source.clone().or(kept) else {
            progress.notice(format!(
                "record `{}` has no stored source record; it cannot be retried",
                entry.key
            ));
            continue;
        };
        match record::map(flow, Arc::new(source.clone())) {
            Ok(mapped)
                if entry.done_at.is_some()
                    && sends_changes
                    && entry.hash.as_deref() != Some(mapped.hash.as_str()) =>
            {
                changed.push(Outgoing {
                    mapped,
                    source: Source::from(source),
                    window: None,
                })
            }
            Ok(mapped) if entry.done_at.is_some() => {
                acknowledge.push((entry.key.clone(), mapped.hash))
            }
            Ok(mapped) => outgoing.push(Outgoing {
                mapped,
                source: Source::from(source),
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
    if !changed.is_empty() {
        for settled in writer.update_changes(changed).await? {
            match settled {
                Settled::Written { .. } => {
                    summary.written += 1;
                    progress.written(1);
                }
                Settled::Failed { key, message } => {
                    summary.failed += 1;
                    progress.failed(&key, &message);
                }
                other => unreachable!("an update ends written or parked, not {other:?}"),
            }
        }
    }
    for batch in chunk(outgoing, flow.target.batch_size.max(1) as usize) {
        for settled in writer.write_now(batch).await? {
            match settled {
                Settled::Written { key, note, .. } => {
                    summary.written += 1;
                    progress.written(1);
                    tell_refused_but_there(progress, &key, &note);
                }
                Settled::Refused(_) => unreachable!("`write_now` looks refusals up"),
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
