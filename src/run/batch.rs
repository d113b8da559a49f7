//! The batch stage: records checked against the ledger, then grouped into batches to write.
//!
//! Records are taken in groups of `batch_size` (a group also ends with its window, so a
//! window's last records do not wait for the next window's, and when the reader says the
//! window is closing: see `Read::Closing`). A group cut short so, and any group of a closing
//! window, is a tail: sent in a few smaller pieces side by side, since the run waits for it
//! (`tail_piece`). For each group the ledger is read
//! once: a record already written and unchanged is skipped, one parked earlier for this very
//! version stays parked, one that cannot be mapped is parked, a changed one follows the flow's
//! `on_change` (skipped, parked as a conflict, or passed on as an update), and the rest go on
//! in batches. The newest source of a written record read again is kept in the ledger, so that
//! `engine resend` maps what the source holds now. Of two versions of one key only the newest goes
//! on, and a key still on its way to the target is not sent again. This stage sees the ledger
//! and the flow's name and batching settings; it never sees a client. The decisions are pure
//! functions (`decide_mapped`, `decide_unmappable`), tested below.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value as Json;
use tokio::sync::mpsc;

use crate::config::raw::OnChange;
use crate::error::Result;
use crate::record::{Failure, Mapped};
use crate::run::Summary;
use crate::run::progress::Progress;
use crate::run::stage::{InFlight, ToBatch, ToWrite, send};
use crate::source::reader::SourceRecord;
use crate::state::{Entry, Outcome, Seen, Status, Store};
use crate::target::writer::Outgoing;
use crate::time::Clock;

pub struct BatchStage {
    pub flow_name: String,
    pub on_change: OnChange,
    /// The flow's file, under `on_change: skip`: the summary names it in the hint to resend
    /// the changed records it skipped.
    pub resend_hint: Option<String>,
    /// Keep each record's newest source in the ledger for `engine resend`
    /// (`target.keep_records`).
    pub keep_records: bool,
    pub batch_size: usize,
    pub store: Store,
    pub progress: Arc<Progress>,
    pub in_flight: InFlight,
    /// Park nothing and mark nothing in flight: the batches only become request bodies.
    pub dry_run: bool,
    pub clock: Arc<dyn Clock>,
}

/// Records waiting to be checked against the ledger together.
type Group = Vec<(SourceRecord, std::result::Result<Mapped, Failure>)>;

impl BatchStage {
    /// Check and batch records until the mapping is done; the summary holds what was
    /// skipped, parked or left parked here.
    pub async fn run(
        self,
        mut input: mpsc::Receiver<ToBatch>,
        out: mpsc::Sender<ToWrite>,
    ) -> Result<Summary> {
        let mut summary = Summary {
            resend_hint: self.resend_hint.clone(),
            ..Summary::default()
        };
        let mut group: Group = Vec::with_capacity(self.batch_size);
        // Between a window's `Closing` and its end, every group is a tail. (If a later answer
        // changes the reader's plan, a total found too small, the pages read after it go as
        // tails too: more calls, nothing lost.)
        let mut closing = false;
        while let Some(item) = input.recv().await {
            match item {
                ToBatch::Record { record, mapped } => {
                    group.push((record, mapped));
                    if group.len() >= self.batch_size {
                        self.dispatch(std::mem::take(&mut group), &mut summary, &out, closing)
                            .await?;
                    }
                }
                ToBatch::Closing => {
                    self.dispatch(std::mem::take(&mut group), &mut summary, &out, true)
                        .await?;
                    closing = true;
                }
                ToBatch::WindowRead(index) => {
                    closing = false;
                    self.dispatch(std::mem::take(&mut group), &mut summary, &out, true)
                        .await?;
                    send(&out, ToWrite::WindowRead(index)).await?;
                }
            }
        }
        self.dispatch(group, &mut summary, &out, true).await?;
        Ok(summary)
    }

    /// Check `group` against the ledger and pass on what is to be written. A tail (`tail`: a
    /// group of a closing window, or cut short by its end) goes in pieces side by side (see
    /// [`tail_piece`]).
    async fn dispatch(
        &self,
        group: Group,
        summary: &mut Summary,
        out: &mpsc::Sender<ToWrite>,
        tail: bool,
    ) -> Result<()> {
        if group.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = group.iter().map(|(r, _)| r.key.clone()).collect();
        let newest = newest_versions(&keys);
        let ledger = self.store.entries(&self.flow_name, &keys)?;
        let mut outgoing: Vec<Outgoing> = Vec::new();
        let mut updates: Vec<Outgoing> = Vec::new();
        let mut parked: Vec<Outcome> = Vec::new();
        let mut seen: Vec<Seen> = Vec::new();
        for ((record, mapped), newest) in group.into_iter().zip(newest) {
            if !newest || self.in_flight.contains(&record.key) {
                continue;
            }
            let entry = ledger.get(&record.key);
            match mapped {
                Ok(mapped) => {
                    let decision = decide_mapped(entry, &mapped.hash, self.on_change);
                    if !self.dry_run {
                        seen.extend(kept_version(decision, &record, &mapped));
                    }
                    let out = Out {
                        outgoing: &mut outgoing,
                        updates: &mut updates,
                        parked: &mut parked,
                    };
                    self.apply_mapped(decision, record, mapped, summary, out)?;
                }
                Err(failure) => {
                    // Rare: the record is parsed whole to be compared and kept.
                    let source = record.source().whole()?;
                    let decision = decide_unmappable(entry, &source);
                    let unmapped = Unmapped {
                        record,
                        source,
                        failure: &failure,
                    };
                    self.apply_unmappable(decision, unmapped, summary, &mut parked);
                }
            }
        }
        if !parked.is_empty() {
            self.store
                .record_outcomes(&self.flow_name, &parked, self.clock.now())?;
        }
        if self.keep_records {
            self.store.keep_seen(&self.flow_name, &seen)?;
        }
        // One record per call, one after the other within a piece: a few pieces run beside
        // the batches, at most `concurrency` calls in all.
        for piece in chunk(updates, UPDATES_PER_TASK) {
            self.in_flight
                .insert(piece.iter().map(|o| o.mapped.key.as_str()));
            send(out, ToWrite::Updates(piece)).await?;
        }
        let size = match tail {
            true => tail_piece(outgoing.len(), self.batch_size),
            false => self.batch_size,
        };
        for batch in chunk(outgoing, size) {
            if !self.dry_run {
                self.in_flight
                    .insert(batch.iter().map(|o| o.mapped.key.as_str()));
            }
            send(out, ToWrite::Batch(batch)).await?;
        }
        Ok(())
    }

    fn apply_mapped(
        &self,
        decision: Mappable,
        record: SourceRecord,
        mapped: Mapped,
        summary: &mut Summary,
        out: Out<'_>,
    ) -> Result<()> {
        let Out {
            outgoing,
            updates,
            parked,
        } = out;
        match decision {
            Mappable::Write => outgoing.push(Outgoing {
                mapped,
                source: record.source(),
                window: record.window,
            }),
            Mappable::Update => {
                summary.changed += 1;
                if self.dry_run {
                    self.progress.notice(format!(
                        "record `{}` changed since it was written: a run would send it as an update",
                        record.key
                    ));
                } else {
                    summary.updates += 1;
                    updates.push(Outgoing {
                        mapped,
                        source: record.source(),
                        window: record.window,
                    });
                }
            }
            Mappable::Skip { changed } => {
                summary.changed += u64::from(changed);
                summary.skipped += 1;
                self.progress.skipped(1);
            }
            Mappable::StillParked => summary.still_parked += 1,
            Mappable::Conflict => {
                summary.changed += 1;
                summary.conflicts += 1;
                let message = "the source changed after the record was written; the target keeps the first version".to_string();
                self.progress.failed(&record.key, &message);
                if !self.dry_run {
                    let source = record.source().whole()?;
                    parked.push(Outcome::Conflict {
                        key: record.key,
                        message,
                        hash: Some(mapped.hash),
                        source: Some(source),
                        modified: record.modified,
                    });
                }
            }
        }
        Ok(())
    }

    fn apply_unmappable(
        &self,
        decision: Unmappable,
        unmapped: Unmapped<'_>,
        summary: &mut Summary,
        parked: &mut Vec<Outcome>,
    ) {
        let Unmapped {
            record,
            source,
            failure,
        } = unmapped;
        let error = &failure.error;
        // A key or last-modified error belongs to no target field: only its place is named.
        let message = if error.target.is_empty() {
            format!("{} (at {})", error.message, error.location)
        } else {
            format!(
                "{} (in `{}` at {})",
                error.message, error.target, error.location
            )
        };
        match decision {
            Unmappable::AlreadyWritten => {
                summary.skipped += 1;
                self.progress.notice(format!(
                    "record `{}` is already written; its new version cannot be mapped: {message}",
                    record.key
                ));
            }
            Unmappable::StillParked => summary.still_parked += 1,
            Unmappable::Park => {
                summary.failed += 1;
                self.progress.failed(&record.key, &message);
                if !self.dry_run {
                    parked.push(Outcome::Failed {
                        key: record.key,
                        message,
                        field: failure.error.missing_field.clone(),
                        hash: None,
                        source: Some(source),
                        modified: record.modified,
                    });
                }
            }
        }
    }
}

/// Changed records per task of the write stage.
const UPDATES_PER_TASK: usize = 10;

/// A record that could not be mapped, parsed whole.
struct Unmapped<'a> {
    record: SourceRecord,
    source: Json,
    failure: &'a Failure,
}

/// Where the records of a group go.
struct Out<'a> {
    outgoing: &'a mut Vec<Outgoing>,
    updates: &'a mut Vec<Outgoing>,
    parked: &'a mut Vec<Outcome>,
}

/// What the ledger keeps of a written record read again: its newest source, and the mapped
/// record too when the target holds that very content (unchanged). `None` for a record that
/// is not written, or goes to the target now (the update keeps it when it ends).
fn kept_version(decision: Mappable, record: &SourceRecord, mapped: &Mapped) -> Option<Seen> {
    let sent = match decision {
        Mappable::Skip { changed: false } => Some(mapped.target()),
        Mappable::Skip { changed: true } | Mappable::Conflict | Mappable::StillParked => None,
        Mappable::Write | Mappable::Update => return None,
    };
    Some(Seen {
        key: record.key.clone(),
        source: record.source(),
        sent,
    })
}

/// What becomes of a record that was mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mappable {
    Write,
    /// Written before and changed since, under `on_change: update` or `upsert`.
    Update,
    /// Written before and unchanged, or `changed` under `on_change: skip`.
    Skip {
        changed: bool,
    },
    /// Refused before for this very content (sending it again would be refused again), or
    /// written and then parked as a conflict (a person decides; `engine retry` acknowledges it).
    StillParked,
    /// Written before and changed since, under `on_change: conflict`.
    Conflict,
}

/// What becomes of a record that could not be mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unmappable {
    /// Written before: the written version is left alone.
    AlreadyWritten,
    /// Parked before, and the source record is the same.
    StillParked,
    Park,
}

fn decide_mapped(entry: Option<&Entry>, hash: &str, on_change: OnChange) -> Mappable {
    let Some(entry) = entry else {
        return Mappable::Write;
    };
    if parked_unchanged(entry, Some(hash), None) {
        Mappable::StillParked
    } else if entry.status == Status::Done && entry.hash.as_deref() == Some(hash) {
        Mappable::Skip { changed: false }
    } else if entry.status == Status::Conflict && entry.done_at.is_some() {
        Mappable::StillParked
    } else if entry.done_at.is_some() {
        match on_change {
            OnChange::Skip => Mappable::Skip { changed: true },
            OnChange::Conflict => Mappable::Conflict,
            OnChange::Update | OnChange::Upsert => Mappable::Update,
        }
    } else {
        Mappable::Write
    }
}

fn decide_unmappable(entry: Option<&Entry>, source: &Json) -> Unmappable {
    match entry {
        Some(entry) if entry.done_at.is_some() => Unmappable::AlreadyWritten,
        Some(entry) if parked_unchanged(entry, None, Some(source)) => Unmappable::StillParked,
        _ => Unmappable::Park,
    }
}

/// Whether `entry` is parked for this very version of the record: the same mapped content
/// (`hash`), or, when it cannot be mapped (as before: `None`), the same source record.
fn parked_unchanged(entry: &Entry, hash: Option<&str>, source: Option<&Json>) -> bool {
    matches!(entry.status, Status::Failed | Status::Conflict)
        && entry.hash.as_deref() == hash
        && (hash.is_some() || entry.source.as_ref() == source)
}

/// Which of the records with these `keys` go on: two versions of one record can arrive
/// together (an order modified while its window was read, met again on a re-read), and only
/// the last, the newest, may be sent. Sending both would make two bills wherever the target
/// does not refuse a repeated key.
fn newest_versions(keys: &[String]) -> Vec<bool> {
    let last_of: HashMap<&str, usize> = keys
        .iter()
        .enumerate()
        .map(|(index, key)| (key.as_str(), index))
        .collect();
    keys.iter()
        .enumerate()
        .map(|(index, key)| last_of[key.as_str()] == index)
        .collect()
}

/// The records that end a window (its last page's, see `Read::Closing`, or those left when it
/// ends) are the last the run and its cursor wait for. A save costs a fixed part plus a part
/// per record (Kingdee: about 100 ms + 5 ms a bill), so they go in up to [`TAIL_PIECES`]
/// pieces of at least [`TAIL_PIECE`] records, written side by side: a last batch of 100 takes
/// the time of one of 25, for three saves more. The size of a piece for `records` records.
fn tail_piece(records: usize, batch_size: usize) -> usize {
    let pieces = (records / TAIL_PIECE).clamp(1, TAIL_PIECES);
    records.div_ceil(pieces).clamp(1, batch_size.max(1))
}

/// The most pieces a tail is cut into.
const TAIL_PIECES: usize = 4;
/// The fewest records in a piece of a tail.
const TAIL_PIECE: usize = 25;

/// `items` in consecutive pieces of at most `size`.
pub fn chunk<T>(items: Vec<T>, size: usize) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        out.push(items.by_ref().take(size.max(1)).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    use super::*;

    #[test]
    fn of_two_versions_read_together_only_the_newest_goes_on() {
        let keys = ["RK1", "RK2", "RK1"].map(String::from);
        assert_eq!(newest_versions(&keys), vec![false, true, true]);
    }

    fn entry(status: Status, hash: Option<&str>, done: bool, source: Option<Json>) -> Entry {
        let at = Utc.timestamp_opt(0, 0).unwrap();
        Entry {
            key: "RK1".to_string(),
            status,
            hash: hash.map(str::to_string),
            target_id: None,
            target_number: None,
            attempts: 1,
            last_error: None,
            error_field: None,
            source,
            modified: None,
            first_seen: at,
            updated: at,
            done_at: done.then_some(at),
        }
    }

    #[test]
    fn a_mapped_record_is_written_skipped_or_parked_by_what_the_ledger_knows() {
        let cases = [
            (None, OnChange::Conflict, Mappable::Write),
            (
                Some(entry(Status::Done, Some("h1"), true, None)),
                OnChange::Conflict,
                Mappable::Skip { changed: false },
            ),
            (
                Some(entry(Status::Done, Some("h0"), true, None)),
                OnChange::Skip,
                Mappable::Skip { changed: true },
            ),
            (
                Some(entry(Status::Done, Some("h0"), true, None)),
                OnChange::Conflict,
                Mappable::Conflict,
            ),
            (
                Some(entry(Status::Done, Some("h0"), true, None)),
                OnChange::Update,
                Mappable::Update,
            ),
            (
                Some(entry(Status::Done, Some("h0"), true, None)),
                OnChange::Upsert,
                Mappable::Update,
            ),
            (
                Some(entry(Status::Done, Some("h1"), true, None)),
                OnChange::Update,
                Mappable::Skip { changed: false },
            ),
            // A change parked as a conflict (refused by the target) waits for a person.
            (
                Some(entry(Status::Conflict, Some("h0"), true, None)),
                OnChange::Update,
                Mappable::StillParked,
            ),
            (
                Some(entry(Status::Failed, Some("h1"), false, None)),
                OnChange::Conflict,
                Mappable::StillParked,
            ),
            (
                Some(entry(Status::Failed, Some("h0"), false, None)),
                OnChange::Conflict,
                Mappable::Write,
            ),
            (
                Some(entry(Status::Conflict, Some("h0"), true, None)),
                OnChange::Conflict,
                Mappable::StillParked,
            ),
            (
                Some(entry(Status::InFlight, Some("h1"), false, None)),
                OnChange::Conflict,
                Mappable::Write,
            ),
        ];
        for (entry, on_change, expected) in cases {
            assert_eq!(
                decide_mapped(entry.as_ref(), "h1", on_change),
                expected,
                "{entry:?} under {on_change:?}"
            );
        }
    }

    #[test]
    fn an_unmappable_record_is_parked_unless_written_or_parked_as_it_is() {
        let source = json!({"order_no": "RK1"});
        let other = json!({"order_no": "RK1", "memo": "changed"});
        let cases = [
            (None, Unmappable::Park),
            (
                Some(entry(Status::Done, Some("h1"), true, None)),
                Unmappable::AlreadyWritten,
            ),
            (
                Some(entry(Status::Failed, None, false, Some(source.clone()))),
                Unmappable::StillParked,
            ),
            (
                Some(entry(Status::Failed, None, false, Some(other))),
                Unmappable::Park,
            ),
            (
                Some(entry(
                    Status::Failed,
                    Some("h1"),
                    false,
                    Some(source.clone()),
                )),
                Unmappable::Park,
            ),
        ];
        for (entry, expected) in cases {
            assert_eq!(
                decide_unmappable(entry.as_ref(), &source),
                expected,
                "{entry:?}"
            );
        }
    }

    #[test]
    fn a_tail_goes_in_up_to_four_pieces_of_at_least_25() {
        // (records, batch size) → piece size
        for (records, batch, piece) in [
            (100, 100, 25),
            (99, 100, 33),
            (60, 100, 30),
            (49, 100, 49),
            (50, 100, 25),
            (24, 100, 24),
            (0, 100, 1),
            (9, 10, 9),
            (3, 1, 1),
            (200, 200, 50),
            (120, 50, 30),
        ] {
            assert_eq!(tail_piece(records, batch), piece, "{records} of {batch}");
        }
    }

    #[test]
    fn chunks_keep_order_and_size() {
        assert_eq!(
            chunk(vec![1, 2, 3, 4, 5], 2),
            vec![vec![1, 2], vec![3, 4], vec![5]]
        );
        assert!(chunk(Vec::<u8>::new(), 2).is_empty());
    }
}
