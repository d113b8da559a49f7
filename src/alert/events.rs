//! Which events a finished run raises: pure functions of its outcome and the run history.
//!
//! A run that stopped raises `failed`; one that parked records raises one `parked` with the
//! count and the first reasons (never one per record); unsettled windows raise `unsettled`;
//! and a flow whose last success is older than `stale_after` raises `stale` once when it
//! crosses the line and once per further `stale_after`, so a cron job every five minutes
//! does not page every five minutes.

use chrono::{DateTime, Duration, Utc};

use crate::alert::message::Event;

/// What a run ended with, as far as alerts care.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEnd {
    /// The run stopped with this error text.
    Failed(String),
    Finished {
        /// Records parked by this run (failed and conflicts).
        parked: u64,
        /// Reasons of the records parked by this run, (key, reason), as many as known.
        reasons: Vec<(String, String)>,
        unsettled: u64,
    },
}

/// The events of a run's end, `max_reasons` reasons quoted at most.
pub fn run_events(end: &RunEnd, max_reasons: usize) -> Vec<Event> {
    match end {
        RunEnd::Failed(error) => vec![Event::Failed {
            error: error.clone(),
        }],
        RunEnd::Finished {
            parked,
            reasons,
            unsettled,
        } => {
            let mut events = Vec::new();
            if *parked > 0 {
                events.push(Event::Parked {
                    count: *parked,
                    reasons: reasons.iter().take(max_reasons).cloned().collect(),
                });
            }
            if *unsettled > 0 {
                events.push(Event::Unsettled {
                    windows: *unsettled,
                });
            }
            events
        }
    }
}

/// The run history the `stale` check reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct History {
    pub last_success: Option<DateTime<Utc>>,
    pub first_run: Option<DateTime<Utc>>,
    /// When the previous check happened (the end of the run before this one), if any.
    pub previous_check: Option<DateTime<Utc>>,
}

/// The `stale` event due at `now`, if any: when the time since the last success (or the
/// first run) has entered a new multiple of `after` since the previous check.
pub fn stale(history: &History, now: DateTime<Utc>, after: Duration) -> Option<Event> {
    let since = history.last_success.or(history.first_run)?;
    let periods =
        |at: DateTime<Utc>| (at - since).num_seconds().max(0) / after.num_seconds().max(1);
    let now_periods = periods(now);
    if now_periods == 0 {
        return None;
    }
    if let Some(previous) = history.previous_check
        && previous >= since
        && periods(previous) >= now_periods
    {
        return None;
    }
    Some(Event::Stale {
        since,
        succeeded_before: history.last_success.is_some(),
        after,
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(hour: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap() + Duration::hours(hour)
    }

    #[test]
    fn stale_fires_once_per_span_past_the_line() {
        let six = Duration::hours(6);
        for (last, first, previous, now, fires) in [
            (Some(0), Some(0), Some(5), 5, false),  // not stale yet
            (Some(0), Some(0), Some(5), 7, true),   // crosses the line
            (Some(0), Some(0), Some(7), 8, false),  // already said
            (Some(0), Some(0), Some(11), 13, true), // a further span
            (None, Some(0), None, 7, true),         // never succeeded since the first run
            (None, None, None, 100, false),         // never ran: nothing to measure
            (Some(0), Some(0), None, 30, true),     // no previous check
            (Some(10), Some(0), Some(9), 17, true), // a success resets the clock
            (Some(10), Some(0), Some(12), 15, false),
        ] {
            let history = History {
                last_success: last.map(at),
                first_run: first.map(at),
                previous_check: previous.map(at),
            };
            assert_eq!(
                stale(&history, at(now), six).is_some(),
                fires,
                "{history:?} at {now}h"
            );
        }
    }

    #[test]
    fn a_run_raises_one_parked_event_with_the_first_reasons() {
        let reasons: Vec<(String, String)> = (0..8)
            .map(|i| (format!("K{i}"), format!("reason {i}")))
            .collect();
        let events = run_events(
            &RunEnd::Finished {
                parked: 8,
                reasons,
                unsettled: 2,
            },
            3,
        );
        assert_eq!(events.len(), 2);
        match &events[0] {
            Event::Parked { count, reasons } => {
                assert_eq!(*count, 8);
                assert_eq!(reasons.len(), 3);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(events[1], Event::Unsettled { windows: 2 });
        let clean = RunEnd::Finished {
            parked: 0,
            reasons: Vec::new(),
            unsettled: 0,
        };
        assert!(run_events(&clean, 5).is_empty());
        assert_eq!(
            run_events(&RunEnd::Failed("boom".into()), 5),
            vec![Event::Failed {
                error: "boom".into()
            }]
        );
    }
}
