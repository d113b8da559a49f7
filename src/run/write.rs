//! The write stage: batches handed to at most `target.concurrency` writers at once.
//!
//! A batch is taken from the channel only when a writer is free — the concurrency permit is
//! taken before the batch is dispatched — so while the target is slow the batches wait in the
//! batch stage, which waits on the mapping, which waits on the reader. Each batch goes through
//! `target::writer` (exactly once: in flight, sent, outcomes, lookups) and its outcome goes on
//! to the settle stage. This stage sees the writer and the batches, never the source or the
//! mapping. After a writer's run-level failure it takes no further batch, lets the writers
//! under way finish, and stops. A dry run only turns each batch into its request body.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value as Json;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::error::{Error, ErrorKind, Result};
use crate::run::Summary;
use crate::run::stage::{InFlight, ToSettle, ToWrite, send};
use crate::target::writer::{Outgoing, Settled, Writer};

/// How a batch ended, each record with its window.
type Written = Result<Vec<(Settled, Option<usize>)>>;

pub struct WriteStage {
    pub writer: Arc<Writer>,
    pub concurrency: usize,
    pub in_flight: InFlight,
    pub dry_run: bool,
}

impl WriteStage {
    /// Write batches until the batch stage is done; the summary holds a dry run's bodies.
    pub async fn run(
        self,
        mut input: mpsc::Receiver<ToWrite>,
        out: mpsc::Sender<ToSettle>,
    ) -> Result<Summary> {
        let mut writers: JoinSet<Written> = JoinSet::new();
        let mut bodies: Vec<Json> = Vec::new();
        let mut open = true;
        while open || !writers.is_empty() {
            tokio::select! {
                Some(joined) = writers.join_next(), if !writers.is_empty() => {
                    let written = joined.map_err(|err| {
                        Error::new(ErrorKind::State, "a writer stopped unexpectedly").with_source(err)
                    })?;
                    if written.is_err() && open {
                        // Reading stops: no further batch is taken; the batch stage finds the
                        // channel closed and stops too.
                        open = false;
                        input.close();
                    }
                    send(&out, ToSettle::Written(written)).await?;
                }
                item = input.recv(), if open && writers.len() < self.concurrency.max(1) => match item {
                    Some(ToWrite::Batch(batch)) if self.dry_run => bodies.push(self.writer.body(&batch)?),
                    Some(ToWrite::Batch(batch)) => {
                        send(&out, ToSettle::Dispatched(batch.iter().map(|o| o.window).collect())).await?;
                        writers.spawn(write(Arc::clone(&self.writer), self.in_flight.clone(), batch));
                    }
                    Some(ToWrite::WindowRead(index)) => send(&out, ToSettle::WindowRead(index)).await?,
                    None => open = false,
                },
            }
        }
        Ok(Summary {
            bodies,
            ..Summary::default()
        })
    }
}

/// Write one batch; its keys leave the in-flight set once their outcomes are in the ledger.
async fn write(writer: Arc<Writer>, in_flight: InFlight, batch: Vec<Outgoing>) -> Written {
    let windows: HashMap<String, Option<usize>> = batch
        .iter()
        .map(|o| (o.mapped.key.clone(), o.window))
        .collect();
    let settled = writer.write(batch).await?;
    in_flight.remove(settled.iter().map(Settled::key));
    // By key, not position: records sent again come back after the others.
    Ok(settled
        .into_iter()
        .map(|settled| {
            let window = windows.get(settled.key()).copied().flatten();
            (settled, window)
        })
        .collect())
}
