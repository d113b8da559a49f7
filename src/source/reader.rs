//! Reading one window of the source: pages requested as the paging plan says, records keyed
//! and de-duplicated, sent on to the rest of the run through a bounded channel.
//!
//! A record can arrive twice within a run: on the boundary second two windows share, or when
//! a window is read again. Only exact repeats (same key, same last-modified) are dropped here;
//! a record whose content changed goes on and the ledger decides. Only the keys of the
//! current and the previous window are remembered, so memory does not grow with the run.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use serde_json::Value as Json;
use tokio::sync::mpsc;

use crate::config::model::Flow;
use crate::error::{Error, ErrorKind, Result};
use crate::http::client::{Client, Payload};
use crate::http::envelope::Verdict;
use crate::record;
use crate::request::{self, Env, Placeholders};
use crate::source::paging::{Next, Notice, Observed, Plan};
use crate::source::window::Window;
use crate::time::wall_clock;

/// A source record on its way to the target.
#[derive(Debug, Clone)]
pub struct SourceRecord {
    pub record: Arc<Json>,
    pub key: String,
    pub modified: Option<String>,
    /// Index of the window it was read in (the cursor waits for every record of a window).
    pub window: Option<usize>,
}

/// What the reader sends on.
#[derive(Debug)]
pub enum Read {
    Record(SourceRecord),
    /// Every record of window `index` has been sent.
    WindowDone {
        index: usize,
        window: Window,
    },
}

/// Things the reader reports as it goes.
pub trait ReadProgress: Send + Sync {
    fn window(&self, index: usize, count: usize, window: Window);
    fn page(&self, page: u32, records: usize, total: Option<u64>);
    fn notice(&self, message: String);
}

/// Keys seen in the current and the previous window.
#[derive(Debug, Default)]
pub struct Seen {
    current: HashMap<String, Option<String>>,
    previous: HashMap<String, Option<String>>,
    pub duplicates: u64,
}

impl Seen {
    pub fn next_window(&mut self) {
        self.previous = std::mem::take(&mut self.current);
    }

    /// Whether this copy of a record is new (and remember it).
    /// `expected` says the page is a deliberate re-read, whose repeats are not worth counting.
    pub fn admit(&mut self, key: &str, modified: &Option<String>, expected: bool) -> bool {
        let repeated = [&self.current, &self.previous]
            .iter()
            .any(|seen| seen.get(key) == Some(modified));
        if repeated {
            if !expected {
                self.duplicates += 1;
            }
            return false;
        }
        self.current.insert(key.to_string(), modified.clone());
        true
    }
}

/// Totals of one window.
#[derive(Debug, Clone, Copy, Default)]
pub struct WindowStats {
    pub pages: u32,
    pub records: u64,
    /// The window kept changing while it was read and was left open (see `paging`).
    pub unsettled: bool,
}

/// A record's key, or a stand-in derived from its content when the key cannot be read
/// (such a record is parked under that stand-in, never lost).
pub fn key_or_stand_in(
    flow: &Flow,
    record: &Arc<Json>,
) -> (String, Option<String>, Option<String>) {
    match record::key_of(flow, record) {
        Ok((key, modified)) => (key, modified, None),
        Err(err) => (
            format!("?{}", &record::content_hash(record)[..12]),
            None,
            Some(err.message),
        ),
    }
}

pub struct Reader<'a> {
    pub flow: &'a Flow,
    pub client: &'a Client,
    pub env: &'a Env,
    pub progress: &'a dyn ReadProgress,
}

impl Reader<'_> {
    /// Read window `index`, sending every new record to `out`.
    pub async fn read_window(
        &self,
        index: usize,
        count: usize,
        window: Window,
        out: &mpsc::Sender<Read>,
        seen: &mut Seen,
    ) -> Result<WindowStats> {
        let source = &self.flow.source;
        let operation = source.operation();
        self.progress.window(index, count, window);
        seen.next_window();
        let mut stats = WindowStats::default();
        let (first_page, page_size) = match operation.pagination {
            Some(pagination) => (pagination.first_page, source.page_size),
            None => (0, 0),
        };
        let mut plan = Plan::new(
            first_page,
            if operation.pagination.is_some() {
                page_size
            } else {
                u32::MAX
            },
        );
        // Pages read before in this window: their records coming back is the plan, not a duplicate.
        let mut fetched = std::collections::HashSet::new();
        while let Next::Page(page) = plan.next() {
            let placeholders = Placeholders {
                last_sync_time: Some(wall_clock(window.start)),
                current_time: Some(wall_clock(window.end)),
                page_size: operation.pagination.map(|_| page_size),
                page: operation.pagination.map(|_| page),
            };
            let params =
                request::source_params(self.flow, &placeholders, self.env).map_err(|err| {
                    Error::config(format!(
                        "cannot build the source parameters: {}",
                        err.message
                    ))
                    .with_location(err.location)
                })?;
            let reply = self
                .client
                .call(
                    operation,
                    &self.flow.envelopes,
                    Payload::Fields(params),
                    true,
                )
                .await
                .map_err(|err| err.into_error())?;
            if let Verdict::Failed { code, message } = &reply.verdict {
                let code = code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default();
                return Err(Error::new(
                    ErrorKind::Api,
                    format!(
                        "{} refused `{}` for {} .. {} page {page}: {message}{code}",
                        self.client.name,
                        operation.name,
                        wall_clock(window.start),
                        wall_clock(window.end)
                    ),
                ));
            }
            let records: Vec<Arc<Json>> = operation
                .records
                .as_ref()
                .map(|path| path.select(&reply.body))
                .unwrap_or_default()
                .into_iter()
                .map(|r| Arc::new(r.clone()))
                .collect();
            let total = operation
                .total
                .as_ref()
                .and_then(|path| path.select(&reply.body).first().and_then(|v| count_of(v)));
            let mut keys = Vec::with_capacity(records.len());
            let mut keyed = Vec::with_capacity(records.len());
            for record in records {
                let (key, modified, _) = key_or_stand_in(self.flow, &record);
                let mut hasher = DefaultHasher::new();
                key.hash(&mut hasher);
                keys.push(hasher.finish());
                keyed.push(SourceRecord {
                    record,
                    key,
                    modified,
                    window: Some(index),
                });
            }
            self.progress.page(page, keyed.len(), total);
            stats.pages += 1;
            plan.observe(&Observed {
                page,
                count: keyed.len(),
                total,
                keys,
            });
            let span = format!("{} .. {}", wall_clock(window.start), wall_clock(window.end));
            for notice in plan.take_notices() {
                self.progress.notice(match notice {
                    Notice::Restarted { before, after } => format!("the window {span} grew from {before} to {after} records while being read; reading it again"),
                    Notice::Missed { met, total } => format!("reading the window {span} met {met} of its {total} records (some moved while it was read); reading it again"),
                    Notice::GaveUp { attempts } => format!("the window {span} kept changing through {attempts} reads; the cursor stays before it and the next run reads it again"),
                    Notice::RepeatedPage { page } => format!("page {page} repeated the previous page; the API seems to ignore the page parameter"),
                });
            }
            let reread = !fetched.insert(page);
            for record in keyed {
                if seen.admit(&record.key, &record.modified, reread) {
                    stats.records += 1;
                    if out.send(Read::Record(record)).await.is_err() {
                        return Err(Error::new(
                            ErrorKind::State,
                            "the run stopped while reading",
                        ));
                    }
                }
            }
        }
        if !plan.settled() {
            // Its records went on, but the window is not known to be complete: leaving it
            // unread keeps the cursor before it.
            stats.unsettled = true;
            return Ok(stats);
        }
        if out.send(Read::WindowDone { index, window }).await.is_err() {
            return Err(Error::new(
                ErrorKind::State,
                "the run stopped while reading",
            ));
        }
        Ok(stats)
    }
}

fn count_of(value: &Json) -> Option<u64> {
    match value {
        Json::Number(n) => n.as_u64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_repeats_are_dropped_within_the_current_and_previous_window_only() {
        let mut seen = Seen::default();
        let t1 = Some("2024-01-01 10:00:00".to_string());
        let t2 = Some("2024-01-01 11:00:00".to_string());
        assert!(seen.admit("RK1", &t1, false));
        assert!(!seen.admit("RK1", &t1, false), "the same copy again");
        assert!(seen.admit("RK1", &t2, false), "a changed copy goes on");
        assert!(
            !seen.admit("RK1", &t2, true),
            "a planned re-read is not counted"
        );
        seen.next_window();
        assert!(
            !seen.admit("RK1", &t2, false),
            "the boundary second is shared with the previous window"
        );
        seen.next_window();
        seen.next_window();
        assert!(
            seen.admit("RK1", &t2, false),
            "older windows are forgotten; the ledger remembers"
        );
        assert_eq!(seen.duplicates, 2);
    }
}
