//! The write stage: batches handed to at most `target.concurrency` writers at once.
//!
//! Under `concurrency: adaptive` the number of writers is the `concurrency::Controller`'s
//! limit, fed with each write's round trip and whether the target pushed back (an error, a
//! record whose outcome stayed unknown, or any retry the target's client waited for since the
//! last write ended: busy answers, throttling, 5xx, timeouts).
//!
//! A batch is taken from the channel only when a writer is free — the concurrency permit is
//! taken before the batch is dispatched — so while the target is slow the batches wait in the
//! batch stage, which waits on the mapping, which waits on the reader. Each batch goes through
//! `target::writer` (exactly once: in flight, sent, outcomes, lookups) and its outcome goes on
//! to the settle stage; changed versions of written records go through `target::update` the
//! same way, one record per call. This stage sees the writer and the batches, never the source or the
//! mapping. After a writer's run-level failure it takes no further batch, lets the writers
//! under way finish, and stops. A dry run only turns each batch into its request body.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::error::{Error, ErrorKind, Result};
use crate::run::Summary;
use crate::run::concurrency::{Controller, Outcome};
use crate::run::progress::Progress;
use crate::run::stage::{InFlight, ToSettle, ToWrite, send};
use crate::target::writer::{Outgoing, Settled, Writer};

/// How a batch ended, each record with its window.
type Written = Result<Vec<(Settled, Option<usize>)>>;

/// A batch's end, with how long it took and whether the target pushed back.
type Timed = (Written, Duration, Outcome);

/// What the write stage asks of a writer. A run uses `target::writer::Writer`; the trait lets
/// the stage's back-pressure be tested without a target.
pub trait BatchWriter: Send + Sync + 'static {
    /// The request body of `batch` (a dry run prints it).
    fn body(&self, batch: &[Outgoing]) -> Result<Json>;
    /// Write `batch` exactly once; an error stops the run.
    fn write(&self, batch: Vec<Outgoing>) -> impl Future<Output = Result<Vec<Settled>>> + Send;
    /// Send `batch`, changed versions of written records, as updates; an error stops the run.
    fn update(&self, batch: Vec<Outgoing>) -> impl Future<Output = Result<Vec<Settled>>> + Send {
        async move {
            Err(Error::new(
                ErrorKind::State,
                format!("this writer sends no updates ({} asked)", batch.len()),
            ))
        }
    }
    /// Retries waited for so far by every write: the target pushing back.
    fn pauses(&self) -> u64 {
        0
    }
}

impl BatchWriter for Writer {
    fn body(&self, batch: &[Outgoing]) -> Result<Json> {
        Writer::body(self, batch)
    }

    fn write(&self, batch: Vec<Outgoing>) -> impl Future<Output = Result<Vec<Settled>>> + Send {
        Writer::write(self, batch)
    }

    fn update(&self, batch: Vec<Outgoing>) -> impl Future<Output = Result<Vec<Settled>>> + Send {
        crate::target::update::update_batch(self, batch)
    }

    fn pauses(&self) -> u64 {
        self.client.pauses()
    }
}

pub struct WriteStage<W> {
    pub writer: Arc<W>,
    pub concurrency: Controller,
    pub in_flight: InFlight,
    pub dry_run: bool,
    pub progress: Arc<Progress>,
}

impl<W: BatchWriter> WriteStage<W> {
    /// Write batches until the batch stage is done; the summary holds a dry run's bodies.
    pub async fn run(
        mut self,
        mut input: mpsc::Receiver<ToWrite>,
        out: mpsc::Sender<ToSettle>,
    ) -> Result<Summary> {
        let started = Instant::now();
        let mut writers: JoinSet<Timed> = JoinSet::new();
        let mut shown = self.concurrency.describe();
        let mut pauses = self.writer.pauses();
        self.progress.concurrency(&shown);
        let mut bodies: Vec<Json> = Vec::new();
        let mut open = true;
        while open || !writers.is_empty() {
            tokio::select! {
                Some(joined) = writers.join_next(), if !writers.is_empty() => {
                    let (written, rtt, outcome) = joined.map_err(|err| {
                        Error::new(ErrorKind::State, "a writer stopped unexpectedly").with_source(err)
                    })?;
                    // A retry waited for since the last write ended: the target pushed back.
                    let total = self.writer.pauses();
                    let outcome = if total > pauses { Outcome::PushedBack } else { outcome };
                    pauses = total;
                    self.concurrency.finished(started.elapsed(), rtt, outcome);
                    if self.concurrency.describe() != shown {
                        shown = self.concurrency.describe();
                        self.progress.concurrency(&shown);
                    }
                    if written.is_err() && open {
                        // Reading stops: no further batch is taken; the batch stage finds the
                        // channel closed and stops too.
                        open = false;
                        input.close();
                    }
                    send(&out, ToSettle::Written(written)).await?;
                }
                item = input.recv(), if open && writers.len() < self.concurrency.limit() => match item {
                    Some(ToWrite::Batch(batch)) if self.dry_run => bodies.push(self.writer.body(&batch)?),
                    Some(ToWrite::Batch(batch)) => {
                        send(&out, ToSettle::Dispatched(batch.iter().map(|o| o.window).collect())).await?;
                        writers.spawn(timed(write(Arc::clone(&self.writer), self.in_flight.clone(), batch)));
                        self.concurrency.started(writers.len());
                    }
                    Some(ToWrite::Updates(batch)) => {
                        send(&out, ToSettle::Dispatched(batch.iter().map(|o| o.window).collect())).await?;
                        writers.spawn(timed(update(Arc::clone(&self.writer), self.in_flight.clone(), batch)));
                        self.concurrency.started(writers.len());
                    }
                    Some(ToWrite::WindowRead(index)) => send(&out, ToSettle::WindowRead(index)).await?,
                    None => open = false,
                },
            }
        }
        let concurrency = (!self.dry_run).then(|| self.concurrency.report()).flatten();
        Ok(Summary {
            bodies,
            concurrency,
            ..Summary::default()
        })
    }
}

/// A write with its round trip, pushed back when it failed or left a record unresolved.
async fn timed(write: impl Future<Output = Written>) -> Timed {
    let start = Instant::now();
    let written = write.await;
    let pushed_back = match &written {
        Err(_) => true,
        Ok(settled) => settled
            .iter()
            .any(|(s, _)| matches!(s, Settled::Unresolved { .. })),
    };
    let outcome = if pushed_back {
        Outcome::PushedBack
    } else {
        Outcome::Answered
    };
    (written, start.elapsed(), outcome)
}

/// Write one batch; its keys leave the in-flight set once their outcomes are in the ledger.
async fn write<W: BatchWriter>(
    writer: Arc<W>,
    in_flight: InFlight,
    batch: Vec<Outgoing>,
) -> Written {
    let windows: HashMap<String, Option<usize>> = batch
        .iter()
        .map(|o| (o.mapped.key.clone(), o.window))
        .collect();
    let settled = writer.write(batch).await?;
    // A refusal still to verify stays in flight until the settle stage has looked it up.
    in_flight.remove(
        settled
            .iter()
            .filter(|s| !matches!(s, Settled::Refused(_)))
            .map(Settled::key),
    );
    // By key, not position: records sent again come back after the others.
    Ok(settled
        .into_iter()
        .map(|settled| {
            let window = windows.get(settled.key()).copied().flatten();
            (settled, window)
        })
        .collect())
}

/// Send changed records as updates; their keys leave the in-flight set once each has ended.
async fn update<W: BatchWriter>(
    writer: Arc<W>,
    in_flight: InFlight,
    batch: Vec<Outgoing>,
) -> Written {
    let windows: HashMap<String, Option<usize>> = batch
        .iter()
        .map(|o| (o.mapped.key.clone(), o.window))
        .collect();
    let settled = writer.update(batch).await?;
    in_flight.remove(settled.iter().map(Settled::key));
    Ok(settled
        .into_iter()
        .map(|settled| {
            let window = windows.get(settled.key()).copied().flatten();
            (settled, window)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;
    use tokio::sync::Semaphore;

    use super::*;
    use crate::record::Mapped;
    use crate::run::concurrency::Mode;
    use crate::state::Source;

    /// A writer whose calls wait until the test lets them through, saying when they start.
    struct Held {
        gate: Semaphore,
        started: mpsc::UnboundedSender<usize>,
        calls: AtomicUsize,
    }

    impl BatchWriter for Held {
        fn body(&self, _: &[Outgoing]) -> Result<Json> {
            unreachable!("not a dry run")
        }

        async fn write(&self, batch: Vec<Outgoing>) -> Result<Vec<Settled>> {
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            self.started.send(call).expect("the test listens");
            self.gate.acquire().await.expect("open").forget();
            Ok(batch
                .into_iter()
                .map(|o| Settled::Written {
                    key: o.mapped.key,
                    id: None,
                    number: None,
                    note: None,
                })
                .collect())
        }
    }

    fn batch(key: &str, window: usize) -> Vec<Outgoing> {
        vec![Outgoing {
            mapped: Mapped {
                hash: key.to_string(),
                ..Mapped::new(key.to_string(), None, json!({"number": key}), Vec::new())
            },
            source: Source::from(json!({"order_no": key})),
            window: Some(window),
        }]
    }

    /// Regression (issue 13): a batch was handed to a task that only then waited for a
    /// permit, so a slow target let every batch of the run pile up in memory.
    #[tokio::test(flavor = "current_thread")]
    async fn a_batch_waits_for_a_free_writer_so_a_slow_target_holds_the_batches_back() {
        let (started, mut starts) = mpsc::unbounded_channel();
        let writer = Arc::new(Held {
            gate: Semaphore::new(0),
            started,
            calls: AtomicUsize::new(0),
        });
        let (batches, input) = mpsc::channel(1);
        let (out, mut settle) = mpsc::channel(64);
        let stage = tokio::spawn(
            WriteStage {
                writer: Arc::clone(&writer),
                concurrency: Controller::new(Mode::Fixed(2)),
                in_flight: InFlight::default(),
                dry_run: false,
                progress: Arc::new(Progress::plain()),
            }
            .run(input, out),
        );
        for key in ["RK1", "RK2"] {
            batches.send(ToWrite::Batch(batch(key, 0))).await.unwrap();
        }
        assert_eq!(starts.recv().await, Some(0));
        assert_eq!(starts.recv().await, Some(1));
        // Both writers are busy: a third batch waits in the channel, and a fourth finds no room.
        batches.send(ToWrite::Batch(batch("RK3", 0))).await.unwrap();
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert!(
            batches.try_send(ToWrite::Batch(batch("RK4", 0))).is_err(),
            "the stage took a batch while every writer was busy"
        );
        assert_eq!(writer.calls.load(Ordering::SeqCst), 2);
        writer.gate.add_permits(3);
        batches.send(ToWrite::Batch(batch("RK4", 0))).await.unwrap();
        writer.gate.add_permits(1);
        drop(batches);
        stage.await.unwrap().unwrap();
        let mut written = Vec::new();
        while let Some(message) = settle.recv().await {
            if let ToSettle::Written(Ok(settled)) = message {
                written.extend(settled.into_iter().map(|(s, _)| s.key().to_string()));
            }
        }
        written.sort();
        assert_eq!(written, ["RK1", "RK2", "RK3", "RK4"]);
    }
}
