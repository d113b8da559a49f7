//! The settle stage: how each record ended, counted and shown, and the cursor moved.
//!
//! It receives, in order, which batches went to a writer, which windows were read to the end
//! and how each batch ended, and keeps the `tracker` up to date with them: the cursor moves past
//! a window only once every record read in it is written or parked, and not at all after a
//! run-level failure. Records the target refused outright come back still in flight (the
//! refusal may be a "duplicate" of an earlier send whose answer was lost): this stage gathers
//! them across batches and has them looked up together (`Verifier`), one lookup at a time while
//! the writers go on — when the lookup's `max_keys` are gathered, when the cursor would
//! otherwise wait on them, and at the end of the input; at most `2 × max_keys` wait beside the
//! lookup under way, then this stage takes no further outcome until it is back. Each is then
//! written (found) or parked (not found), and only then leaves the in-flight keys and settles
//! in the tracker. It sees the ledger's cursor, the progress output and the lookup, never a
//! record's content.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::error::{Error, ErrorKind, Result};
use crate::run::Summary;
use crate::run::progress::Progress;
use crate::run::stage::{InFlight, ToSettle};
use crate::run::tracker::Tracker;
use crate::state::Store;
use crate::target::writer::{Refused, Settled, Writer};
use crate::time::Clock;

/// What the settle stage asks of the target: look refused records up together. A run uses
/// `target::writer::Writer`; the trait lets the gathering be tested without a target.
pub trait Verifier: Send + Sync + 'static {
    /// The most keys one lookup call takes: refusals are gathered up to this many.
    fn max_keys(&self) -> usize;
    /// Look `refused` up and record each as written or parked; an error leaves them in flight.
    fn verify(&self, refused: Vec<Refused>) -> impl Future<Output = Result<Vec<Settled>>> + Send;
}

impl Verifier for Writer {
    fn max_keys(&self) -> usize {
        Writer::max_keys(self)
    }

    fn verify(&self, refused: Vec<Refused>) -> impl Future<Output = Result<Vec<Settled>>> + Send {
        Writer::verify(self, refused)
    }
}

/// How a lookup of gathered refusals ended, each record with its window.
type Verified = Result<Vec<(Settled, Option<usize>)>>;

pub struct SettleStage<V> {
    pub flow_name: String,
    pub store: Store,
    pub progress: Arc<Progress>,
    pub tracker: Tracker,
    /// Whether this run moves the cursor (not a dry run, a backfill or a source without windows).
    pub move_cursor: bool,
    pub clock: Arc<dyn Clock>,
    pub verifier: Arc<V>,
    /// The keys on their way: a refusal's key leaves it once its lookup is recorded.
    pub in_flight: InFlight,
}

impl<V: Verifier> SettleStage<V> {
    /// Settle outcomes until the writers are done and every refusal is looked up; the summary
    /// holds what was written, parked or left unresolved. A writer's run-level failure is
    /// returned once everything under way has been settled.
    pub async fn run(mut self, mut input: mpsc::Receiver<ToSettle>) -> Result<Summary> {
        let mut summary = Summary::default();
        let mut fatal: Option<Error> = None;
        let mut refused: Vec<(Refused, Option<usize>)> = Vec::new();
        let mut verifying: JoinSet<Verified> = JoinSet::new();
        let mut open = true;
        let mut lookup_failed = false;
        // Refusals waiting beside the lookup under way: at most this many, then the stage
        // takes no further outcome until the lookup is back (the writers wait in turn).
        let room = 2 * self.verifier.max_keys();
        loop {
            if lookup_failed {
                // They stay in flight in the ledger; the run fails and the next one looks them up.
                refused.clear();
            }
            if verifying.is_empty() && !lookup_failed && self.due(&refused, open) {
                let verifier = Arc::clone(&self.verifier);
                // At most one call's worth: a fuller call follows rather than a half-empty one.
                let take = refused.len().min(self.verifier.max_keys());
                let gathered: Vec<_> = refused.drain(..take).collect();
                verifying.spawn(verify(verifier, gathered));
            }
            if !open && verifying.is_empty() {
                break;
            }
            tokio::select! {
                Some(joined) = verifying.join_next(), if !verifying.is_empty() => {
                    let verified = joined.map_err(|err| {
                        Error::new(ErrorKind::State, "a lookup stopped unexpectedly").with_source(err)
                    })?;
                    match verified {
                        Ok(settled) => {
                            self.in_flight.remove(settled.iter().map(|(s, _)| s.key()));
                            for (settled, window) in settled {
                                self.count(&mut summary, &mut refused, settled, window);
                            }
                        }
                        Err(err) => {
                            // They stay in flight in the ledger, and so do the refusals still
                            // to come: the next run looks them up first.
                            lookup_failed = true;
                            fatal.get_or_insert(err);
                        }
                    }
                }
                message = input.recv(), if open && refused.len() < room => match message {
                    Some(message) => self.take(message, &mut summary, &mut refused, &mut fatal),
                    None => open = false,
                },
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

    /// Whether the refusals gathered should be looked up now: `max_keys` of them, the end of
    /// the input, or the cursor waiting on them alone.
    fn due(&self, refused: &[(Refused, Option<usize>)], open: bool) -> bool {
        if refused.is_empty() {
            return false;
        }
        if refused.len() >= self.verifier.max_keys() || !open {
            return true;
        }
        let head = self.tracker.head();
        let waiting = refused.iter().filter(|(_, w)| *w == Some(head)).count();
        self.tracker.waits_on(head, waiting as u64)
    }

    fn take(
        &mut self,
        message: ToSettle,
        summary: &mut Summary,
        refused: &mut Vec<(Refused, Option<usize>)>,
        fatal: &mut Option<Error>,
    ) {
        match message {
            ToSettle::Dispatched(windows) => {
                for window in windows.into_iter().flatten() {
                    self.tracker.add(window);
                }
            }
            ToSettle::WindowRead(index) => self.tracker.read(index),
            ToSettle::Written(Ok(settled)) => {
                for (settled, window) in settled {
                    self.count(summary, refused, settled, window);
                }
            }
            ToSettle::Written(Err(err)) => {
                fatal.get_or_insert(err);
            }
        }
    }

    fn count(
        &mut self,
        summary: &mut Summary,
        refused: &mut Vec<(Refused, Option<usize>)>,
        settled: Settled,
        window: Option<usize>,
    ) {
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
            Settled::Refused(record) => {
                // Still in flight: its window stays open until the lookup settles it.
                refused.push((record, window));
                return;
            }
        }
        if let Some(window) = window {
            self.tracker.settle(window);
        }
    }
}

/// Look gathered refusals up, each coming back with its window.
async fn verify<V: Verifier>(verifier: Arc<V>, refused: Vec<(Refused, Option<usize>)>) -> Verified {
    let windows: HashMap<String, Option<usize>> =
        refused.iter().map(|(r, w)| (r.key.clone(), *w)).collect();
    let settled = verifier
        .verify(refused.into_iter().map(|(r, _)| r).collect())
        .await?;
    Ok(settled
        .into_iter()
        .map(|settled| {
            let window = windows.get(settled.key()).copied().flatten();
            (settled, window)
        })
        .collect())
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chrono::{TimeZone, Utc};
    use tokio::sync::Semaphore;

    use super::*;
    use crate::source::window::Window;
    use crate::time::FixedClock;

    /// A lookup that finds the keys it knows, noting each call's keys, each call held until the
    /// test lets it through.
    struct Lookup {
        known: Vec<&'static str>,
        max_keys: usize,
        calls: Mutex<Vec<Vec<String>>>,
        gate: Semaphore,
    }

    impl Verifier for Lookup {
        fn max_keys(&self) -> usize {
            self.max_keys
        }

        async fn verify(&self, refused: Vec<Refused>) -> Result<Vec<Settled>> {
            let keys = refused.iter().map(|r| r.key.clone()).collect();
            self.calls.lock().unwrap().push(keys);
            self.gate.acquire().await.expect("open").forget();
            Ok(refused
                .into_iter()
                .map(|r| match self.known.contains(&r.key.as_str()) {
                    true => written(&r.key),
                    false => Settled::Failed {
                        key: r.key,
                        message: r.message,
                    },
                })
                .collect())
        }
    }

    fn written(key: &str) -> Settled {
        Settled::Written {
            key: key.to_string(),
            id: None,
            number: None,
            note: None,
        }
    }

    fn refused(key: &str) -> Settled {
        Settled::Refused(Refused {
            key: key.to_string(),
            message: "unknown material".to_string(),
            field: None,
            hash: "h".to_string(),
            modified: None,
        })
    }

    fn window(i: i64) -> Window {
        Window {
            start: Utc.timestamp_opt(i * 100, 0).unwrap(),
            end: Utc.timestamp_opt((i + 1) * 100, 0).unwrap(),
        }
    }

    fn stage(lookup: &Arc<Lookup>, store: &Store, in_flight: &InFlight) -> SettleStage<Lookup> {
        SettleStage {
            flow_name: "refund".to_string(),
            store: store.clone(),
            progress: Arc::new(Progress::plain()),
            tracker: Tracker::new(vec![window(0), window(1)]),
            move_cursor: true,
            clock: Arc::new(FixedClock(Utc.timestamp_opt(1_000, 0).unwrap())),
            verifier: Arc::clone(lookup),
            in_flight: in_flight.clone(),
        }
    }

    /// A batch of window 0 went to a writer and ended as `settled`.
    fn batch(settled: Vec<Settled>) -> [ToSettle; 2] {
        [
            ToSettle::Dispatched(vec![Some(0); settled.len()]),
            ToSettle::Written(Ok(settled.into_iter().map(|s| (s, Some(0))).collect())),
        ]
    }

    async fn settle_a_while() {
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn refusals_of_several_batches_are_looked_up_in_one_call_before_the_cursor_moves() {
        let lookup = Arc::new(Lookup {
            known: vec!["RK2"],
            max_keys: 100,
            calls: Mutex::new(Vec::new()),
            gate: Semaphore::new(0),
        });
        let store = Store::in_memory().unwrap();
        let in_flight = InFlight::new(["RK2", "RK3"].map(str::to_string).into());
        let (out, input) = mpsc::channel(16);
        let task = tokio::spawn(stage(&lookup, &store, &in_flight).run(input));
        for message in batch(vec![written("RK1"), refused("RK2")])
            .into_iter()
            .chain(batch(vec![refused("RK3"), written("RK4")]))
        {
            out.send(message).await.unwrap();
        }
        settle_a_while().await;
        assert!(
            lookup.calls.lock().unwrap().is_empty(),
            "window 0 is still being read"
        );
        out.send(ToSettle::WindowRead(0)).await.unwrap();
        settle_a_while().await;
        assert_eq!(*lookup.calls.lock().unwrap(), [["RK2", "RK3"]]);
        assert_eq!(
            store.cursor("refund").unwrap(),
            None,
            "its refusals are not settled yet"
        );
        assert!(in_flight.contains("RK2") && in_flight.contains("RK3"));
        lookup.gate.add_permits(1);
        settle_a_while().await;
        assert_eq!(store.cursor("refund").unwrap(), Some(window(0).end));
        assert!(!in_flight.contains("RK2") && !in_flight.contains("RK3"));
        out.send(ToSettle::WindowRead(1)).await.unwrap();
        drop(out);
        let summary = task.await.unwrap().unwrap();
        assert_eq!((summary.written, summary.failed), (3, 1));
        assert_eq!(store.cursor("refund").unwrap(), Some(window(1).end));
        assert_eq!(lookup.calls.lock().unwrap().len(), 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn while_a_lookup_is_under_way_at_most_twice_max_keys_refusals_wait_beside_it() {
        let lookup = Arc::new(Lookup {
            known: Vec::new(),
            max_keys: 1,
            calls: Mutex::new(Vec::new()),
            gate: Semaphore::new(0),
        });
        let store = Store::in_memory().unwrap();
        let (out, input) = mpsc::channel(16);
        let task = tokio::spawn(stage(&lookup, &store, &InFlight::default()).run(input));
        for key in ["RK1", "RK2", "RK3", "RK4", "RK5"] {
            for message in batch(vec![refused(key)]) {
                out.send(message).await.unwrap();
            }
        }
        settle_a_while().await;
        // RK1 is being looked up, RK2 and RK3 wait: the outcomes of RK4 and RK5 stay queued.
        assert_eq!(lookup.calls.lock().unwrap().len(), 1);
        assert_eq!(out.capacity(), 16 - 4, "the stage went on taking refusals");
        lookup.gate.add_permits(5);
        drop(out);
        let summary = task.await.unwrap().unwrap();
        assert_eq!(summary.failed, 5);
        assert_eq!(lookup.calls.lock().unwrap().len(), 5);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn refusals_are_gathered_up_to_max_keys_and_the_rest_at_the_end_of_the_input() {
        let lookup = Arc::new(Lookup {
            known: Vec::new(),
            max_keys: 2,
            calls: Mutex::new(Vec::new()),
            gate: Semaphore::new(100),
        });
        let store = Store::in_memory().unwrap();
        let (out, input) = mpsc::channel(16);
        let task = tokio::spawn(stage(&lookup, &store, &InFlight::default()).run(input));
        for key in ["RK1", "RK2", "RK3", "RK4", "RK5"] {
            for message in batch(vec![refused(key), written(&format!("{key}-ok"))]) {
                out.send(message).await.unwrap();
            }
        }
        drop(out);
        let summary = task.await.unwrap().unwrap();
        assert_eq!((summary.written, summary.failed), (5, 5));
        let sizes: Vec<usize> = lookup.calls.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, [2, 2, 1]);
        assert_eq!(
            store.cursor("refund").unwrap(),
            None,
            "window 0 was never read to the end"
        );
    }
}
