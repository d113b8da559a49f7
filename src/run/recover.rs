//! Recovery: what an earlier run or retry left in flight, settled before anything new is sent.
//!
//! A record marked in flight may or may not have reached the target. Each is looked up by key:
//! found is written; not found is sent again (re-mapped from the source the ledger kept), or,
//! without a stored source, released. A flow without a lookup cannot tell, so its in-flight
//! records are parked for a person to check, and the run that follows sends no version of
//! them. A key settled here that the run reads again is decided by the ledger like any other:
//! the same content is skipped, a newer version follows `on_change`. Before them, updates an earlier run left under way are finished from
//! the step they were at (`target::update`); one that cannot be finished stops the run.

use std::collections::HashSet;
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::record;
use crate::run::batch::chunk;
use crate::run::progress::Progress;
use crate::run::settle::tell_refused_but_there;
use crate::run::sink::Sink;
use crate::state::{Entry, Outcome, Source};
use crate::target::update::{Updated, Updater};
use crate::target::writer::{Outgoing, Settled};

/// What the recovery of an earlier run's in-flight records did.
#[derive(Debug, Default)]
pub struct Recovery {
    /// The keys it handled.
    pub keys: HashSet<String>,
    /// The keys it could not settle (the flow has no lookup, so they are parked; or still
    /// unresolved, so they stay in flight): the target may hold them or not, so the run sends
    /// no version of them when it reads them again. Every other
    /// key it handled is settled in the ledger, which decides as for any record read.
    pub unverified: HashSet<String>,
    /// Found in the target, or sent again and written.
    pub written: u64,
    pub failed: u64,
    /// Still without a clear answer: they stay in flight for the next run.
    pub unresolved: u64,
}

/// Settle what an earlier run left in flight: look it up, then send again what is not there.
pub async fn recover(writer: &Sink, progress: &Progress) -> Result<Recovery> {
    let flow = writer.flow();
    let mut recovery = finish_updates(writer, progress).await?;
    let entries = writer.store().in_flight(&flow.name)?;
    recovery.keys.extend(entries.iter().map(|e| e.key.clone()));
    if entries.is_empty() {
        return Ok(recovery);
    }
    progress.line(format!(
        "{} record(s) were in flight when an earlier run stopped; checking the target first",
        entries.len()
    ));
    if !writer.can_look_up() {
        recovery.failed += park_unverifiable(writer, progress, &entries)?;
        recovery.unverified = entries.iter().map(|e| e.key.clone()).collect();
        return Ok(recovery);
    }
    let keys: Vec<String> = entries.iter().map(|e| e.key.clone()).collect();
    let found = writer.lookup(&keys).await?;
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
                source: Source::from(source),
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
    writer
        .store()
        .record_outcomes(&flow.name, &outcomes, writer.clock().now())?;
    let written_earlier = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Done { .. }))
        .count();
    recovery.written += written_earlier as u64;
    progress.written(written_earlier as u64);
    for outcome in &outcomes {
        if let Outcome::Failed { key, message, .. } = outcome {
            recovery.failed += 1;
            progress.failed(key, message);
        }
    }
    let resent = resend.len();
    for batch in chunk(resend, flow.target.batch_size.max(1) as usize) {
        for settled in writer.write_now(batch).await? {
            match settled {
                Settled::Written { key, note, .. } => {
                    recovery.written += 1;
                    progress.written(1);
                    tell_refused_but_there(progress, &key, &note);
                }
                Settled::Refused(_) => unreachable!("`write_now` looks refusals up"),
                Settled::Failed { key, message } => {
                    recovery.failed += 1;
                    progress.failed(&key, &message);
                }
                Settled::Unresolved { key, .. } => {
                    recovery.unresolved += 1;
                    progress.notice(format!(
                        "record `{key}` is still unresolved; it stays in flight"
                    ));
                    recovery.unverified.insert(key);
                }
            }
        }
    }
    progress.line(format!(
        "{written_earlier} of them had arrived; {resent} sent again"
    ));
    Ok(recovery)
}

/// Finish the updates an earlier run left under way, each from its step.
async fn finish_updates(sink: &Sink, progress: &Progress) -> Result<Recovery> {
    let flow = sink.flow();
    let pending = sink.store().pending_updates(&flow.name)?;
    let mut recovery = Recovery {
        keys: pending.iter().map(|p| p.key.clone()).collect(),
        ..Recovery::default()
    };
    if pending.is_empty() {
        return Ok(recovery);
    }
    let updater = match sink.http() {
        Some(writer) => Updater::new(writer)?,
        None => None,
    };
    let Some(updater) = updater else {
        return Err(Error::new(
            ErrorKind::State,
            format!(
                "{} update(s) of flow `{}` are under way (record `{}` first) but the flow no longer sends changes (`on_change: {}`)",
                pending.len(),
                flow.name,
                pending[0].key,
                flow.target.on_change.as_str()
            ),
        )
        .with_hint("set `on_change: update` (or `upsert`) again so that the next run finishes them"));
    };
    progress.line(format!(
        "{} update(s) were under way when an earlier run stopped; finishing them first",
        pending.len()
    ));
    for ended in updater.resume_all().await? {
        match ended {
            Updated::Applied { .. } => {
                recovery.written += 1;
                progress.written(1);
            }
            Updated::Parked { key, message } => {
                recovery.failed += 1;
                progress.failed(&key, &message);
            }
        }
    }
    Ok(recovery)
}

/// Without a lookup an interrupted write cannot be checked: its records are parked for a
/// person to look in the target. Returns how many.
fn park_unverifiable(writer: &Sink, progress: &Progress, entries: &[Entry]) -> Result<u64> {
    let flow = writer.flow();
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
    writer
        .store()
        .record_outcomes(&flow.name, &outcomes, writer.clock().now())?;
    for outcome in &outcomes {
        if let Outcome::Failed { key, message, .. } = outcome {
            progress.failed(key, message);
        }
    }
    Ok(outcomes.len() as u64)
}
