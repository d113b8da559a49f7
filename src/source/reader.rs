//! Reading one window of the source: pages requested as the pagination strategy says, records keyed
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

use crate::config::model::{Flow, Pagination, PagingStrategy};
use crate::error::{Error, ErrorKind, Result};
use crate::http::arrival::Arrival;
use crate::http::client::{Client, Payload, Reading};
use crate::http::envelope::{self, Verdict};
use crate::http::lean::Lean;
use crate::http::transport::join_url;
use crate::record::{self, Keys};
use crate::request::{self, Env, Placeholders};
use crate::source::answer::{absent_list, check_records, count_of, reads_body_paths, take_list};
use crate::source::early::{Early, Fetching, until_answered};
use crate::source::strategy::{self, Answer, Next};
use crate::source::window::{self, Window};
use crate::state::Source;
use crate::template::TemplateId;
use crate::time::wall_clock;
use crate::tree::EvalError;

/// A source record on its way to the target.
#[derive(Debug, Clone)]
pub struct SourceRecord {
    /// The record as the flow's templates see it: with only the fields the flow reads when it
    /// was read lean (then `text` holds it whole).
    pub record: Arc<Json>,
    /// The record's JSON text as the answer held it, when `record` holds only some fields.
    pub text: Option<Arc<str>>,
    pub key: String,
    pub modified: Option<String>,
    pub keyed: Keyed,
    /// Index of the window it was read in (the cursor waits for every record of a window).
    pub window: Option<usize>,
}

/// How a record's key was read.
#[derive(Debug, Clone, PartialEq)]
pub enum Keyed {
    /// By the flow's key templates (`record::keys_of`); `not_a_time`: why its last-modified
    /// value is not a time, if it is not.
    Read { not_a_time: Option<Box<EvalError>> },
    /// It could not be: the key is a stand-in, and mapping the record fails on its key.
    StandIn,
}

impl SourceRecord {
    /// The record's key and last-modified time as read, for the mapping (`record::map_keyed`);
    /// `None` under a stand-in key.
    pub fn keys(&self) -> Option<Keys> {
        match &self.keyed {
            Keyed::Read { not_a_time } => Some(Keys {
                key: self.key.clone(),
                modified: self.modified.clone(),
                not_a_time: not_a_time.clone(),
            }),
            Keyed::StandIn => None,
        }
    }

    /// The record whole, as the ledger keeps it.
    pub fn source(&self) -> Source {
        match &self.text {
            Some(text) => Source::Text(Arc::clone(text)),
            None => Source::Json(Arc::clone(&self.record)),
        }
    }
}

/// What the reader sends on.
#[derive(Debug)]
pub enum Read {
    Record(SourceRecord),
    /// The window is closing: the records that follow, up to its `WindowDone`, are those of
    /// its last planned page and of the re-reads after it (the counted pass's last look at
    /// its first page), which seldom bring anything new. The run waits for them: they may go
    /// at once, in smaller pieces.
    Closing,
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

/// Keys seen in the current and the previous window, each with the version last seen.
///
/// This is the only state of a run that grows with the records of one window, so it keeps a
/// 128-bit fingerprint of each key and of its version (32 bytes, about 40 in the map) instead
/// of the texts: 3.6 MB for 90,000 records in one window rather than about 12. Two keys sharing
/// a fingerprint is a chance of about one in 10^28 per window of 90,000 keys (fewer than 2^128
/// ÷ 90,000² pairs).
#[derive(Debug, Default)]
pub struct Seen {
    current: HashMap<u128, u128>,
    previous: HashMap<u128, u128>,
    pub duplicates: u64,
}

impl Seen {
    pub fn next_window(&mut self) {
        self.previous = std::mem::take(&mut self.current);
    }

    /// Whether this copy of a record is new (and remember it).
    /// `expected` says the page is a deliberate re-read, whose repeats are not worth counting.
    pub fn admit(&mut self, key: &str, modified: &Option<String>, expected: bool) -> bool {
        let (key, version) = (fingerprint(key), fingerprint(modified));
        let repeated = [&self.current, &self.previous]
            .iter()
            .any(|seen| seen.get(&key) == Some(&version));
        if repeated {
            if !expected {
                self.duplicates += 1;
            }
            return false;
        }
        self.current.insert(key, version);
        true
    }
}

/// Two independent 64-bit SipHashes of `value` (std's, with fixed keys: the same in every run).
fn fingerprint(value: &(impl Hash + ?Sized)) -> u128 {
    let half = |seed: u8| {
        let mut hasher = DefaultHasher::new();
        seed.hash(&mut hasher);
        value.hash(&mut hasher);
        hasher.finish()
    };
    (u128::from(half(0)) << 64) | u128::from(half(1))
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
/// `text`: the record's whole text, when `record` holds only the fields the flow reads (the
/// stand-in is derived from the whole record, however it was read).
pub fn key_or_stand_in(
    flow: &Flow,
    record: &Arc<Json>,
    text: Option<&str>,
) -> (String, Option<String>, Keyed) {
    match record::keys_of(flow, record) {
        Ok(keys) => (
            keys.key,
            keys.modified,
            Keyed::Read {
                not_a_time: keys.not_a_time,
            },
        ),
        Err(_) => {
            let whole = text.and_then(|text| serde_json::from_str::<Json>(text).ok());
            let hash = record::content_hash(whole.as_ref().unwrap_or(record));
            (format!("?{}", &hash[..12]), None, Keyed::StandIn)
        }
    }
}

pub struct Reader<'a> {
    pub flow: &'a Flow,
    /// How to read the answers lean (`source::lean`), if they can be.
    pub lean: Option<&'a Lean>,
    pub client: &'a Client,
    pub env: &'a Env,
    pub progress: &'a dyn ReadProgress,
}

impl Reader<'_> {
    /// Read window `index`, sending every new record to `out`.
    ///
    /// Once a page is observed, the pager knows the next request: it is sent while this
    /// page's records wait for room in `out`, so a mapping that pushes back does not hold up
    /// the API; a pager that knows it before (numbered pages in a planned order) has it sent
    /// as soon as this page's answer arrives, before it is parsed (`early`). The server still
    /// sees the requests one at a time and in the pager's order (the next is sent only after
    /// the answer before it has arrived whole), which the drift argument of `paging` needs;
    /// an early answer the pager does not then ask for is dropped unread.
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
        let pagination = operation
            .pagination
            .as_ref()
            .expect("a read operation declares its pagination (checked when compiling)");
        let mut pager = strategy::pager(pagination, source.page_size, self.client.base_url());
        let span = span_of(window);
        // Pages read before in this window: their records coming back is the plan, not a duplicate.
        let mut fetched = std::collections::HashSet::new();
        let mut number = 0u32;
        let Some(mut current) = self.planned(pager.next(), window, &mut number)? else {
            return self
                .close_window(index, window, pager.settled(), stats, out)
                .await;
        };
        // An early request still out when the pages end (the plan changed, or the window
        // failed) is waited for and its answer dropped: the server answered it, and the next
        // window's first request must not overlap it.
        let mut early: Option<Early<'_, Fetched>> = None;
        let read: Result<()> = async {
            let arrival = Arc::new(Arrival::default());
            early = self.early(&*pager, window, &arrival);
            let told = early.as_ref().map(|_| arrival);
            let fetching = self.fetching(window, current.clone(), told, None);
            let mut answer = until_answered(fetching, early.as_mut()).await?;
            loop {
                let (request, page) = current;
                let keyed = self.take_records(answer, index, page, &mut *pager, &span)?;
                stats.pages += 1;
                let reread = !fetched.insert(request_key(&request));
                let next = self.planned(pager.next(), window, &mut number);
                let closing = matches!(next, Ok(Some(_))) && pager.closing();
                let (records, seen) = (&mut stats.records, &mut *seen);
                let sending = async move {
                    if closing && out.send(Read::Closing).await.is_err() {
                        return Err(stopped());
                    }
                    self.send_on(keyed, window, reread, out, seen, records)
                        .await
                };
                let next = match next {
                    Ok(Some(next)) => next,
                    Ok(None) => return sending.await,
                    Err(err) => {
                        sending.await?;
                        return Err(err);
                    }
                };
                // The request sent early, if it is the one wanted; else a fresh one, after the
                // early one's answer (if it went out) is in and dropped.
                let (fetching, arrival) = match early.take() {
                    Some(early) if early.is_for(&next.0) => early.into_parts(),
                    stale => {
                        let arrival = Arc::new(Arrival::default());
                        // Told of its answer only if a request is to be sent on it.
                        let told = pager.predicted().map(|_| Arc::clone(&arrival));
                        let fresh = self.fetching(window, next.clone(), told, None);
                        let fetching: Fetching<'_, Fetched> = match stale {
                            Some(stale) => Box::pin(async move {
                                stale.finish().await;
                                fresh.await
                            }),
                            None => fresh,
                        };
                        (fetching, arrival)
                    }
                };
                early = self.early(&*pager, window, &arrival);
                let answering = until_answered(fetching, early.as_mut());
                (_, answer) = tokio::try_join!(sending, answering)?;
                current = next;
            }
        }
        .await;
        if let Some(stale) = early.take() {
            stale.finish().await;
        }
        read?;
        self.close_window(index, window, pager.settled(), stats, out)
            .await
    }

    /// The request `next` and its page number (for messages), counting requests in `number`;
    /// `None` when the window is done.
    fn planned(&self, next: Next, window: Window, number: &mut u32) -> Result<Option<(Next, u32)>> {
        let page = match &next {
            Next::Done => return Ok(None),
            Next::Failed(why) => return Err(self.window_failed(window, why)),
            Next::Page(page) => *page,
            _ => *number,
        };
        *number += 1;
        Ok(Some((next, page)))
    }

    /// Key the records of `answer` and show the answer to the pager; the records are moved
    /// out of the answer when the pager cannot need them after (see `movable`).
    fn take_records(
        &self,
        answer: Fetched,
        index: usize,
        page: u32,
        pager: &mut dyn strategy::Pager,
        span: &str,
    ) -> Result<Vec<SourceRecord>> {
        let Fetched {
            url,
            mut body,
            texts,
            total,
            headers,
            has_more,
        } = answer;
        let operation = self.flow.source.operation();
        // A lean answer's pager reads no body paths (`lean::plan`).
        let movable = texts.is_some()
            || operation
                .pagination
                .as_ref()
                .is_some_and(|p| !reads_body_paths(&p.strategy));
        let records: Vec<Arc<Json>> = match &operation.records {
            None => Vec::new(),
            Some(path) => match movable.then(|| take_list(path, &mut body)).flatten() {
                Some(records) => records.into_iter().map(Arc::new).collect(),
                None => path
                    .select(&body)
                    .into_iter()
                    .map(|r| Arc::new(r.clone()))
                    .collect(),
            },
        };
        let texts: Vec<Option<Arc<str>>> = match texts {
            None => vec![None; records.len()],
            Some(texts) if texts.len() == records.len() => texts.into_iter().map(Some).collect(),
            Some(texts) => {
                return Err(Error::new(
                    ErrorKind::State,
                    format!(
                        "an answer read lean held {} records and {} texts",
                        records.len(),
                        texts.len()
                    ),
                ));
            }
        };
        let mut keys = Vec::with_capacity(records.len());
        let mut keyed = Vec::with_capacity(records.len());
        for (record, text) in records.into_iter().zip(texts) {
            let (key, modified, how) = key_or_stand_in(self.flow, &record, text.as_deref());
            let mut hasher = DefaultHasher::new();
            key.hash(&mut hasher);
            keys.push(hasher.finish());
            keyed.push(SourceRecord {
                record,
                text,
                key,
                modified,
                keyed: how,
                window: Some(index),
            });
        }
        self.progress.page(page, keyed.len(), total);
        pager.observe(&Answer {
            url: Some(&url),
            headers: &headers,
            body: &body,
            count: keyed.len(),
            total,
            keys,
            has_more,
        });
        for notice in pager.notices(span) {
            self.progress.notice(notice);
        }
        Ok(keyed)
    }

    /// Send on the new records of a page (`reread`: a planned re-read), counting them.
    async fn send_on(
        &self,
        keyed: Vec<SourceRecord>,
        window: Window,
        reread: bool,
        out: &mpsc::Sender<Read>,
        seen: &mut Seen,
        sent: &mut u64,
    ) -> Result<()> {
        let zone = self.flow.source.connector.time_zone;
        let open_ended = self
            .flow
            .source
            .window
            .as_ref()
            .is_some_and(|w| w.open_ended);
        for record in keyed {
            // Without an upper bound the API also answers what changed after the window:
            // that is the next window's (or run's) to read, so the cursor stays honest.
            if open_ended && window::modified_after(&window, record.modified.as_deref(), zone) {
                continue;
            }
            if seen.admit(&record.key, &record.modified, reread) {
                *sent += 1;
                if out.send(Read::Record(record)).await.is_err() {
                    return Err(stopped());
                }
            }
        }
        Ok(())
    }

    /// The window's pages are read: tell the rest of the run, unless it did not settle (the
    /// pager's `settled`).
    async fn close_window(
        &self,
        index: usize,
        window: Window,
        settled: bool,
        mut stats: WindowStats,
        out: &mpsc::Sender<Read>,
    ) -> Result<WindowStats> {
        if !settled {
            // Its records went on, but the window is not known to be complete: leaving it
            // unread keeps the cursor before it.
            stats.unsettled = true;
            return Ok(stats);
        }
        if out.send(Read::WindowDone { index, window }).await.is_err() {
            return Err(stopped());
        }
        Ok(stats)
    }
}

fn stopped() -> Error {
    Error::new(ErrorKind::State, "the run stopped while reading")
}

/// What one answer of the source held.
struct Fetched {
    /// The URL requested, without the query.
    url: String,
    total: Option<u64>,
    headers: Vec<(String, String)>,
    /// The answer, its records still in it (the shape checked).
    body: Json,
    /// The records' texts when the answer was read lean.
    texts: Option<Vec<Arc<str>>>,
    has_more: Option<bool>,
}

/// Tells apart the requests of one window (a page number, a cursor, a URL).
fn request_key(request: &Next) -> String {
    match request {
        Next::Page(page) => format!("page {page}"),
        Next::First => "first".to_string(),
        Next::Cursor(token) => format!("cursor {token}"),
        Next::Url(url) => format!("url {url}"),
        Next::Done | Next::Failed(_) => String::new(),
    }
}

impl Reader<'_> {
    /// [`Reader::fetch`] of `request` (and its page number), owned, telling `arrival` (when a
    /// request is to be sent on it); `after`: the arrival it was sent on, if it was sent early.
    fn fetching(
        &self,
        window: Window,
        request: (Next, u32),
        arrival: Option<Arc<Arrival>>,
        after: Option<Arc<Arrival>>,
    ) -> Fetching<'_, Fetched> {
        Box::pin(async move {
            let (request, page) = request;
            let arrivals = (arrival.as_deref(), after.as_deref());
            self.fetch(window, &request, page, arrivals).await
        })
    }

    /// The request the pager predicts after the one in flight, sent when that one's answer
    /// arrives (see `early`).
    fn early(
        &self,
        pager: &dyn strategy::Pager,
        window: Window,
        after: &Arc<Arrival>,
    ) -> Option<Early<'_, Fetched>> {
        let Some(Next::Page(page)) = pager.predicted() else {
            return None;
        };
        Some(Early::new(
            Next::Page(page),
            after,
            move |arrival, after| {
                self.fetching(window, (Next::Page(page), page), Some(arrival), Some(after))
            },
        ))
    }

    /// Fetch `request` of `window` (`page`: its number, for messages), telling the first of
    /// `arrivals` when its answer is in; the second is the arrival it was sent on, if early
    /// (see `Client::call_announced`).
    async fn fetch(
        &self,
        window: Window,
        request: &Next,
        page: u32,
        arrivals: (Option<&Arrival>, Option<&Arrival>),
    ) -> Result<Fetched> {
        let operation = self.flow.source.operation();
        let pagination = operation.pagination.as_ref();
        let page_size = self.flow.source.page_size;
        let numbered = pagination.is_some_and(|p| p.numbered());
        let (payload, parts) = match request {
            Next::Url(url) => (
                Payload::Url(url.clone()),
                request::Parts::literal(operation),
            ),
            _ => {
                let offset = match (pagination.map(|p| &p.strategy), request) {
                    (Some(PagingStrategy::Offset), Next::Page(page)) => {
                        Some(u64::from(*page) * u64::from(page_size))
                    }
                    _ => None,
                };
                let placeholders = Placeholders {
                    last_sync_time: Some(window.start),
                    current_time: Some(window.end),
                    page_size: pagination
                        .filter(|p| numbered || p.max_page_size.is_some())
                        .map(|_| page_size),
                    page: numbered.then_some(page),
                    offset,
                    cursor: match request {
                        Next::Cursor(token) => Some(token.clone()),
                        _ => None,
                    },
                };
                let (params, body, parts) =
                    request::source_request(self.flow, &placeholders, self.env).map_err(|err| {
                        Error::config(format!(
                            "cannot build the source parameters: {}",
                            err.message
                        ))
                        .with_location(err.location)
                    })?;
                match body {
                    Some(body) => (Payload::Json(body), parts),
                    None => (Payload::Fields(params), parts),
                }
            }
        };
        let url = match &payload {
            Payload::Url(url) => url.clone(),
            _ => join_url(self.client.base_url(), &parts.path),
        };
        let reply = self
            .client
            .call_announced(
                operation,
                &self.flow.envelopes,
                &parts,
                payload,
                true,
                Reading {
                    arrival: arrivals.0,
                    after: arrivals.1,
                    lean: self.lean,
                },
            )
            .await
            .map_err(|err| err.into_error())?;
        let called = || {
            format!(
                "{} answered `{}` for {} page {page}",
                self.client.name,
                operation.name,
                span_of(window)
            )
        };
        if let Verdict::Failed { code, message } = &reply.verdict {
            let code = code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default();
            return Err(Error::new(
                ErrorKind::Api,
                format!(
                    "{} refused `{}` for {} page {page}: {message}{code}",
                    self.client.name,
                    operation.name,
                    span_of(window)
                ),
            ));
        }
        if let Some(path) = &operation.records {
            check_records(path, &reply.body).map_err(|shape| {
                Error::new(
                    ErrorKind::Api,
                    format!("{} with a response of the wrong shape: {shape}", called()),
                )
                .with_hint(LEFT_OPEN)
            })?;
        }
        let total = match pagination.and_then(|p| p.total_header.as_ref()) {
            Some(name) => reply
                .headers
                .iter()
                .find(|(header, _)| header == name)
                .and_then(|(_, value)| value.trim().parse().ok()),
            None => operation
                .total
                .as_ref()
                .and_then(|path| path.select(&reply.body).first().and_then(|v| count_of(v))),
        };
        let has_more = pagination.and_then(has_more_of).and_then(|id| {
            let scope = envelope::response_scope(reply.status, &reply.headers, &reply.body);
            // Undefined (a key the answer lacks) is unknown, not false: the token decides.
            match self.flow.envelopes.eval(id, &scope) {
                Ok(value) if !value.is_undefined() && !value.is_none() => Some(value.is_true()),
                _ => None,
            }
        });
        // An answer without its records list is read as empty only when it says so itself:
        // an error answer that the envelope let through looks the same.
        let absent = operation
            .records
            .as_ref()
            .filter(|_| !operation.records_absent_empty)
            .and_then(|path| absent_list(path, &reply.body));
        if let Some(list) = absent
            && !(total == Some(0) || reply.body.is_null())
        {
            return Err(Error::new(
                ErrorKind::Api,
                format!(
                    "{} without `{list}`, and nothing in it says it holds no records (a total of 0): an answer missing its records list is not read as an empty page",
                    called()
                ),
            )
            .with_hint(format!(
                "if the API leaves an empty list out, set `records_absent: empty` on the operation; if this is an error answer, make the envelope's `success` refuse it; {LEFT_OPEN}"
            )));
        }
        Ok(Fetched {
            url,
            texts: reply.texts,
            total,
            headers: reply.headers,
            // The client keeps no other handle on the answer: taken, not copied.
            body: Arc::try_unwrap(reply.body).unwrap_or_else(|shared| (*shared).clone()),
            has_more,
        })
    }

    /// The error a window that cannot be read completely ends the run with.
    fn window_failed(&self, window: Window, why: &str) -> Error {
        let operation = &self.flow.source.operation().name;
        Error::new(
            ErrorKind::Api,
            format!(
                "{} answered `{operation}` for {} inconsistently: {why}",
                self.client.name,
                span_of(window)
            ),
        )
        .with_hint(LEFT_OPEN)
    }
}

/// The `has_more` expression of a chained strategy, if it has one.
fn has_more_of(pagination: &Pagination) -> Option<TemplateId> {
    match &pagination.strategy {
        PagingStrategy::Cursor { has_more, .. }
        | PagingStrategy::Link { has_more }
        | PagingStrategy::NextUrl { has_more, .. } => *has_more,
        _ => None,
    }
}

/// What the user is told when a window fails.
const LEFT_OPEN: &str = "the window is left unread and the cursor stays before it; the next run reads it again (if the API keeps answering so, ask its vendor)";

fn span_of(window: Window) -> String {
    format!("{} .. {}", wall_clock(window.start), wall_clock(window.end))
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
