//! What a run shows while it works: a live status line on a terminal, plain lines in a log.
//!
//! Counters are kept here (atomics, shared by the concurrent writers); the status line shows
//! the current window, page and counts, and anything worth a line of its own (a failed
//! record, a retry, a cursor move) is printed above it. Without a terminal every event is a
//! plain line on stderr, so a scheduler's log tells the story; a stretch of windows in which
//! nothing was modified (a first run from a date long ago) is one line, not two per window.
//! With `--log-format json` every event is instead one JSON object per line on stderr (`event`,
//! `flow`, `ts`, and the event's fields), for log shippers.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::diagnostic::{MAX_RECORD_TEXT, cut_text};
use crate::source::reader::ReadProgress;
use crate::source::window::Window;
use crate::time::wall_clock;

/// Counts of a run.
#[derive(Debug, Default)]
pub struct Counts {
    pub read: AtomicU64,
    pub written: AtomicU64,
    pub skipped: AtomicU64,
    pub failed: AtomicU64,
}

#[derive(Debug, Default)]
struct Place {
    window: String,
    page: String,
    cursor: String,
    /// The write concurrency: `· concurrency 4 (adaptive, max 16)`.
    concurrency: String,
    /// Plain lines: the current window's line, printed with its first page unless empty.
    unprinted_window: Option<String>,
    /// Plain lines: consecutive empty windows not reported yet (first, last, start, end).
    empty: Option<(usize, usize, DateTime<Utc>, DateTime<Utc>)>,
    /// The current window (index, start, end).
    current: Option<(usize, DateTime<Utc>, DateTime<Utc>)>,
}

impl Place {
    /// The line for the empty windows not reported yet, if any.
    fn take_empty(&mut self) -> Option<String> {
        let (first, last, start, end) = self.empty.take()?;
        let which = if first == last {
            format!("window {}", first + 1)
        } else {
            format!("windows {}–{}", first + 1, last + 1)
        };
        Some(format!(
            "{which} {} .. {}: nothing modified",
            wall_clock(start),
            wall_clock(end)
        ))
    }
}

/// How a run's events are written: for people, or one JSON object per line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

pub struct Progress {
    /// In JSON mode: the flow's name, put in every event.
    json: Option<String>,
    bar: Option<ProgressBar>,
    pub counts: Counts,
    place: Mutex<Place>,
    started: Instant,
}

impl Progress {
    /// A status line when stderr is a terminal, else plain lines.
    pub fn for_stderr() -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            json: None,
            bar,
            counts: Counts::default(),
            place: Mutex::new(Place::default()),
            started: Instant::now(),
        }
    }

    /// Plain lines only (tests, `--quiet` pipelines).
    pub fn plain() -> Progress {
        Progress {
            json: None,
            bar: None,
            counts: Counts::default(),
            place: Mutex::new(Place::default()),
            started: Instant::now(),
        }
    }

    /// `for_stderr` in text, one JSON object per event about `flow` in JSON.
    pub fn for_format(format: LogFormat, flow: &str) -> Progress {
        match format {
            LogFormat::Text => Progress::for_stderr(),
            LogFormat::Json => Progress {
                json: Some(flow.to_string()),
                ..Progress::plain()
            },
        }
    }

    pub fn is_json(&self) -> bool {
        self.json.is_some()
    }

    /// In JSON mode, one line `{"event":…, "flow":…, "ts":…, …fields}`; nothing in text mode.
    pub fn event(&self, event: &str, fields: serde_json::Value) {
        let Some(flow) = &self.json else { return };
        let mut object = serde_json::Map::new();
        object.insert("event".into(), event.into());
        object.insert("flow".into(), flow.as_str().into());
        object.insert("ts".into(), Utc::now().to_rfc3339().into());
        if let serde_json::Value::Object(fields) = fields {
            object.extend(fields);
        }
        eprintln!("{}", serde_json::Value::Object(object));
    }

    /// A line of its own.
    pub fn line(&self, text: impl AsRef<str>) {
        if self.is_json() {
            return self.event("message", json!({"text": text.as_ref()}));
        }
        match &self.bar {
            Some(bar) => bar.println(text.as_ref()),
            None => {
                self.flush_plain();
                eprintln!("{}", text.as_ref());
            }
        }
    }

    /// Plain lines: print what was held back (empty windows, the current window's line).
    fn flush_plain(&self) {
        let mut place = self.place.lock().expect("progress lock");
        if let Some(empty) = place.take_empty() {
            eprintln!("{empty}");
        }
        if let Some(window) = place.unprinted_window.take() {
            eprintln!("{window}");
        }
    }

    fn refresh(&self) {
        let Some(bar) = &self.bar else { return };
        let place = self.place.lock().expect("progress lock");
        let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
        bar.set_message(format!(
            "{} {} · read {} · written {} · skipped {} · failed {} {}{} · {:.0}s",
            place.window,
            place.page,
            count(&self.counts.read),
            count(&self.counts.written),
            count(&self.counts.skipped),
            count(&self.counts.failed),
            place.cursor,
            place.concurrency,
            self.started.elapsed().as_secs_f64()
        ));
    }

    /// The write concurrency changed (status line only: a log gets it in the summary).
    pub fn concurrency(&self, level: &str) {
        self.place.lock().expect("progress lock").concurrency = format!(" · concurrency {level}");
        self.refresh();
    }

    pub fn read(&self, records: u64) {
        self.counts.read.fetch_add(records, Ordering::Relaxed);
        self.refresh();
    }

    pub fn written(&self, records: u64) {
        self.counts.written.fetch_add(records, Ordering::Relaxed);
        self.event("batch", json!({"written": records}));
        self.refresh();
    }

    pub fn skipped(&self, records: u64) {
        self.counts.skipped.fetch_add(records, Ordering::Relaxed);
        self.refresh();
    }

    pub fn failed(&self, key: &str, message: &str) {
        self.counts.failed.fetch_add(1, Ordering::Relaxed);
        let (key, message) = (cut_text(key, 200), cut_text(message, MAX_RECORD_TEXT));
        if self.is_json() {
            self.event("parked", json!({"key": key, "reason": message}));
        } else {
            self.line(format!("record `{key}` parked: {message}"));
        }
        self.refresh();
    }

    /// The cursor moved (shown in the status line; the summary says where it ended).
    pub fn cursor(&self, to: DateTime<Utc>) {
        self.place.lock().expect("progress lock").cursor = format!("· cursor {}", wall_clock(to));
        self.refresh();
    }

    pub fn notice(&self, message: impl AsRef<str>) {
        if self.is_json() {
            return self.event("notice", json!({"text": message.as_ref()}));
        }
        self.line(format!("note: {}", message.as_ref()));
    }

    /// Stop the status line (before the summary is printed).
    pub fn finish(&self) {
        match &self.bar {
            Some(bar) => bar.finish_and_clear(),
            None => self.flush_plain(),
        }
    }
}

impl ReadProgress for Progress {
    fn window(&self, index: usize, count: usize, window: Window) {
        if self.is_json() {
            let (from, to) = (window.start.to_rfc3339(), window.end.to_rfc3339());
            return self.event(
                "window",
                json!({"index": index + 1, "count": count, "from": from, "to": to}),
            );
        }
        let text = format!(
            "window {}/{count} {} .. {}",
            index + 1,
            wall_clock(window.start),
            wall_clock(window.end)
        );
        {
            let mut place = self.place.lock().expect("progress lock");
            if self.bar.is_none() {
                // Held back until its first page says whether the window is empty.
                if let Some(window) = place.unprinted_window.replace(text.clone()) {
                    eprintln!("{window}");
                }
            }
            place.current = Some((index, window.start, window.end));
            place.window = text;
            place.page.clear();
        }
        self.refresh();
    }

    fn page(&self, page: u32, records: usize, total: Option<u64>) {
        if self.is_json() {
            return self.event(
                "page",
                json!({"page": page, "records": records, "total": total}),
            );
        }
        let shown = total.map(|t| format!(" of {t}")).unwrap_or_default();
        let text = format!("page {page}: {records} records{shown}");
        if self.bar.is_none() {
            let mut place = self.place.lock().expect("progress lock");
            let empty = records == 0 && total.unwrap_or(0) == 0;
            match (empty, place.unprinted_window.is_some(), place.current) {
                (true, true, Some((index, start, end))) => {
                    place.unprinted_window = None;
                    place.empty = Some(match place.empty {
                        Some((first, _, from, _)) => (first, index, from, end),
                        None => (index, index, start, end),
                    });
                }
                _ => {
                    if let Some(empty) = place.take_empty() {
                        eprintln!("{empty}");
                    }
                    if let Some(window) = place.unprinted_window.take() {
                        eprintln!("{window}");
                    }
                    eprintln!("  {text}");
                }
            }
        }
        self.place.lock().expect("progress lock").page = format!("· {text}");
        self.refresh();
    }

    fn notice(&self, message: String) {
        Progress::notice(self, message);
    }
}
