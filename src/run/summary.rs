//! What a run did: the counts each stage reports, added up, and the lines people read.

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use crate::source::window::Window;
use crate::time::wall_clock;

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub range: Option<Window>,
    pub windows: usize,
    pub read: u64,
    pub duplicates: u64,
    pub written: u64,
    /// Already written earlier and unchanged (or changed, under `on_change: skip`).
    pub skipped: u64,
    /// Written earlier and changed since (whatever `on_change` made of them).
    pub changed: u64,
    /// Changed records sent as updates (counted as written once the target took them).
    pub updates: u64,
    /// Under `on_change: skip`, the flow's file, to name in the hint to `engine resend`.
    pub resend_hint: Option<String>,
    pub failed: u64,
    pub conflicts: u64,
    /// Parked by an earlier run and read again unchanged: left for `engine retry`.
    pub still_parked: u64,
    /// In-flight records of an earlier run settled at the start.
    pub recovered: u64,
    /// Records whose outcome stayed unknown: still in flight, checked first by the next run.
    pub unresolved: u64,
    /// Windows that kept changing while they were read: the cursor stays before the first.
    pub unsettled: u64,
    pub cursor_before: Option<DateTime<Utc>>,
    pub cursor_after: Option<DateTime<Utc>>,
    /// The write concurrency at the end, and its highest level when adaptive.
    pub concurrency: Option<String>,
    /// Request bodies a dry run would have sent.
    pub bodies: Vec<Json>,
}

impl Summary {
    /// Add the counts (and bodies) one stage reports; the range, windows and cursors are the
    /// orchestrator's and stay.
    pub fn add(&mut self, stage: Summary) {
        self.read += stage.read;
        self.duplicates += stage.duplicates;
        self.written += stage.written;
        self.skipped += stage.skipped;
        self.changed += stage.changed;
        self.updates += stage.updates;
        if stage.resend_hint.is_some() {
            self.resend_hint = stage.resend_hint;
        }
        self.failed += stage.failed;
        self.conflicts += stage.conflicts;
        self.still_parked += stage.still_parked;
        self.recovered += stage.recovered;
        self.unresolved += stage.unresolved;
        self.unsettled += stage.unsettled;
        self.bodies.extend(stage.bodies);
        if stage.concurrency.is_some() {
            self.concurrency = stage.concurrency;
        }
    }

    /// Records read that the ledger knew already: written before (and unchanged, or changed
    /// under `on_change: skip`), parked before and unchanged, or changed since they were
    /// written (a conflict).
    pub fn seen_before(&self) -> u64 {
        self.skipped + self.still_parked + self.conflicts
    }

    /// Records read for the first time: the run's new work.
    pub fn new_records(&self) -> u64 {
        self.read.saturating_sub(self.seen_before())
    }

    pub fn outcome(&self) -> &'static str {
        if self.failed + self.conflicts + self.unresolved + self.unsettled > 0 {
            "partial"
        } else {
            "ok"
        }
    }
}

/// Summaries as the user reads them.
pub fn describe(summary: &Summary) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(range) = summary.range {
        lines.push(format!(
            "read {} .. {} in {} window(s)",
            wall_clock(range.start),
            wall_clock(range.end),
            summary.windows
        ));
    }
    // New work first: a run that re-reads its lookback reads records it wrote before, which
    // are not news.
    lines.push(format!(
        "{} read: {} new, {} seen before; {} written, {} already written, {} parked{}{}",
        summary.read,
        summary.new_records(),
        summary.seen_before(),
        summary.written,
        summary.skipped,
        summary.failed,
        if summary.conflicts > 0 {
            format!(", {} conflicts", summary.conflicts)
        } else {
            String::new()
        },
        if summary.duplicates > 0 {
            format!(" ({} repeated copies dropped)", summary.duplicates)
        } else {
            String::new()
        },
    ));
    if summary.updates > 0 {
        lines.push(format!(
            "{} record(s) changed since they were written were sent as updates",
            summary.updates
        ));
    }
    if let Some(flow_file) = summary.resend_hint.as_ref().filter(|_| summary.changed > 0) {
        lines.push(format!(
            "{} record(s) changed since they were written and were skipped (`on_change: skip`); `engine resend {flow_file} --dry-run` shows what changed, and `engine resend {flow_file}` sends them under `on_change: update` or `upsert`",
            summary.changed
        ));
    }
    if let Some(concurrency) = &summary.concurrency {
        lines.push(format!("concurrency {concurrency}"));
    }
    if summary.unsettled > 0 {
        lines.push(format!(
            "{} window(s) kept changing while they were read: the cursor stays before the first, the next run reads them again",
            summary.unsettled
        ));
    }
    if summary.still_parked > 0 {
        lines.push(format!(
            "{} record(s) parked earlier were read again unchanged and not sent; `engine retry` sends them",
            summary.still_parked
        ));
    }
    if summary.unresolved > 0 {
        lines.push(format!("{} record(s) still in flight after several sends without a clear answer: the next run checks them first", summary.unresolved));
    }
    if summary.recovered > 0 {
        lines.push(format!(
            "{} record(s) left in flight by an earlier run were settled first",
            summary.recovered
        ));
    }
    match (summary.cursor_before, summary.cursor_after) {
        (before, Some(after)) if before != Some(after) => {
            lines.push(format!("cursor moved to {}", wall_clock(after)))
        }
        (_, Some(after)) => lines.push(format!("cursor stays at {}", wall_clock(after))),
        _ => {}
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_line_tells_new_records_from_records_seen_before() {
        let cases = [
            (
                Summary {
                    read: 180,
                    written: 170,
                    failed: 10,
                    ..Summary::default()
                },
                "180 read: 180 new, 0 seen before; 170 written, 0 already written, 10 parked",
            ),
            // A run that only re-read its lookback did no new work.
            (
                Summary {
                    read: 30,
                    skipped: 30,
                    ..Summary::default()
                },
                "30 read: 0 new, 30 seen before; 0 written, 30 already written, 0 parked",
            ),
            (
                Summary {
                    read: 42,
                    written: 11,
                    failed: 1,
                    skipped: 27,
                    still_parked: 2,
                    conflicts: 1,
                    changed: 1,
                    duplicates: 3,
                    ..Summary::default()
                },
                "42 read: 12 new, 30 seen before; 11 written, 27 already written, 1 parked, 1 conflicts (3 repeated copies dropped)",
            ),
        ];
        for (summary, line) in cases {
            assert_eq!(describe(&summary)[0], line);
        }
    }
}
