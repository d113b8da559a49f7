//! What the stages of a run pass each other, and how much of it may wait between them.
//!
//! A run is a pipeline of five tasks — read → map → batch → write → settle — joined by bounded
//! channels. A stage that finds its next channel full waits, so a slow target holds the reader
//! back instead of letting records pile up: what a run holds at once is set by the capacities
//! below (a function of page size, batch size and concurrency), never by the number of records
//! or by how much faster reading is than writing. This module holds only the shared types:
//! the messages, the keys in flight and the capacities; no stage logic.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use crate::error::{Error, ErrorKind, Result};
use crate::record::{Failure, Mapped};
use crate::source::reader::SourceRecord;
use crate::target::writer::{Outgoing, Settled};

/// From map to batch: a record with its mapping (or why it could not be mapped).
// Nearly every message is a record: boxing it to shrink the rare window mark would cost an
// allocation per record.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum ToBatch {
    Record {
        record: SourceRecord,
        mapped: Result<Mapped, Failure>,
    },
    /// Every record of window `index` has been passed on.
    WindowRead(usize),
    /// The window is closing (`Read::Closing`): its last records follow.
    Closing,
}

/// From batch to write.
#[derive(Debug)]
pub enum ToWrite {
    /// Records to send in one call, each with the window it was read in.
    Batch(Vec<Outgoing>),
    /// Changed versions of written records, to send as updates one by one.
    Updates(Vec<Outgoing>),
    /// Every record of window `index` has been decided and its batches passed on.
    WindowRead(usize),
}

/// From write to settle. A batch's `Dispatched` always comes before its `Written`, and every
/// `Dispatched` of a window before its `WindowRead`, so the tracker never sees a window as
/// complete while one of its records is on its way.
#[derive(Debug)]
pub enum ToSettle {
    /// A batch went to a writer: the windows of its records.
    Dispatched(Vec<Option<usize>>),
    WindowRead(usize),
    /// How a batch ended, each record with its window; an error stops the run.
    Written(Result<Vec<(Settled, Option<usize>)>>),
}

/// How many items may wait on each channel of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacities {
    /// Records read and not yet mapped: one page, so the reader fetches the next page while
    /// the previous one is mapped, and no further.
    pub records: usize,
    /// Records mapped and not yet batched: one batch.
    pub mapped: usize,
    /// Batches ready and waiting for a free writer: one.
    pub batches: usize,
    /// Messages to the settle stage: two per batch being written, and a window mark.
    pub outcomes: usize,
}

impl Capacities {
    pub fn new(page_size: u32, batch_size: usize, concurrency: usize) -> Capacities {
        Capacities {
            records: (page_size as usize).clamp(16, 1_000),
            mapped: batch_size.max(1),
            batches: 1,
            outcomes: 2 * concurrency.max(1) + 1,
        }
    }
}

/// Keys on their way to the target in this run (and those the recovery settled): a copy read
/// again meanwhile is dropped rather than sent twice. The batch stage adds a batch's keys before
/// passing it on; a writer removes them once their outcome is in the ledger (a refusal's once
/// the settle stage has looked it up), so the set holds at most `concurrency + 1` batches and
/// `3 × max_keys` refusals beyond the recovered keys.
#[derive(Debug, Clone, Default)]
pub struct InFlight(Arc<Mutex<HashSet<String>>>);

impl InFlight {
    pub fn new(keys: HashSet<String>) -> InFlight {
        InFlight(Arc::new(Mutex::new(keys)))
    }

    pub fn contains(&self, key: &str) -> bool {
        self.0.lock().expect("in-flight lock").contains(key)
    }

    pub fn insert<'a>(&self, keys: impl IntoIterator<Item = &'a str>) {
        let mut set = self.0.lock().expect("in-flight lock");
        set.extend(keys.into_iter().map(str::to_string));
    }

    pub fn remove<'a>(&self, keys: impl IntoIterator<Item = &'a str>) {
        let mut set = self.0.lock().expect("in-flight lock");
        for key in keys {
            set.remove(key);
        }
    }
}

/// The error of a stage whose next stage has stopped: a consequence, never the cause. The
/// orchestrator reports the error of the stage furthest down the pipeline, which is the cause.
pub fn stopped() -> Error {
    Error::new(ErrorKind::State, "the run stopped while reading")
}

/// Send `message` on, or fail with [`stopped`] when the next stage is gone.
pub async fn send<T>(out: &tokio::sync::mpsc::Sender<T>, message: T) -> Result<()> {
    out.send(message).await.map_err(|_| stopped())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacities_follow_page_size_batch_size_and_concurrency_only() {
        let cases = [
            // (page size, batch size, concurrency) → (records, mapped, batches, outcomes)
            ((100, 50, 2), (100, 50, 1, 5)),
            ((0, 0, 0), (16, 1, 1, 3)),
            ((100_000, 200, 8), (1_000, 200, 1, 17)),
        ];
        for ((page, batch, concurrency), (records, mapped, batches, outcomes)) in cases {
            assert_eq!(
                Capacities::new(page, batch, concurrency),
                Capacities {
                    records,
                    mapped,
                    batches,
                    outcomes
                },
                "page {page}, batch {batch}, concurrency {concurrency}"
            );
        }
    }
}
