//! The settle stage: how each record ended, counted and shown, and the cursor moved.
//!
//! It receives, in order, which batches went to a writer, which windows were read to the end
//! and how each batch ended, and keeps the `tracker` up to date with them: the cursor moves past
//! a window only once every record read in it is written or parked, and not at all after a
//! run-level failure. It sees the ledger's cursor and the progress output, never a client or a
//! record's content.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::run::Summary;
use crate::run::progress::Progress;
use crate::run::stage::ToSettle;
use crate::run::tracker::Tracker;
use crate::state::Store;
use crate::target::writer::Settled;
use crate::time::Clock;

pub struct SettleStage {
    pub flow_name: String,
    pub store: Store,
    pub progress: Arc<Progress>,
    pub tracker: Tracker,
    /// Whether this run moves the cursor (not a dry run, a backfill or a source without windows).
    pub move_cursor: bool,
    pub clock: Arc<dyn Clock>,
}

impl SettleStage {
    /// Settle outcomes until the writers are done; the summary holds what was written, parked
    /// or left unresolved. A writer's run-level failure is returned once everything under way
    /// has been settled.
    pub async fn run(mut self, mut input: mpsc::Receiver<ToSettle>) -> Result<Summary> {
        let mut summary = Summary::default();
        let mut fatal: Option<Error> = None;
        while let Some(message) = input.recv().await {
            match message {
                ToSettle::Dispatched(windows) => {
                    for window in windows.into_iter().flatten() {
                        self.tracker.add(window);
                    }
                }
                ToSettle::WindowRead(index) => self.tracker.read(index),
                ToSettle::Written(Ok(settled)) => {
                    for (settled, window) in settled {
                        self.count(&mut summary, settled, window);
                    }
                }
                ToSettle::Written(Err(err)) => {
                    fatal.get_or_insert(err);
                }
            }
            if self.move_cursor
                && fatal.is_none()
                && let Some(to) = self.tracker.advance()
            {
                self.store
                    .advance_cursor(&self.flow_name, to, self.clock.now())?;
                self.progress.cursor(to);
            }
        }
        match fatal {
            Some(err) => Err(err),
            None => Ok(summary),
        }
    }

    fn count(&mut self, summary: &mut Summary, settled: Settled, window: Option<usize>) {
        match settled {
            Settled::Written { key, note, .. } => {
                summary.written += 1;
                self.progress.written(1);
                tell_refused_but_there(&self.progress, &key, &note);
            }
            Settled::Failed { key, message } => {
                summary.failed += 1;
                self.progress.failed(&key, &message);
            }
            Settled::Unresolved { key, sends } => {
                // Its window stays open: the cursor must not pass it.
                summary.unresolved += 1;
                self.progress.notice(format!("record `{key}` was sent {sends} times without a clear answer and is not in the target; it stays in flight and the next run checks it first"));
                return;
            }
        }
        if let Some(window) = window {
            self.tracker.settle(window);
        }
    }
}

/// A record the target refused but holds all the same counts as written (it is never sent
/// again); what the target said is worth a look.
pub fn tell_refused_but_there(progress: &Progress, key: &str, note: &Option<String>) {
    if let Some(note) = note {
        progress.notice(format!(
            "record `{key}` is in the target although this send was refused ({note}); counted as written, check it there if the message is not about a duplicate"
        ));
    }
}
