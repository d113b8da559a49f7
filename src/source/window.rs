//! Time windows: which `LAST_SYNC_TIME`..`CURRENT_TIME` ranges a run reads.
//!
//! A run reads from its cursor (minus a lookback, for rows committed late) to now minus a
//! lag (for rows still being written), sliced into windows the API accepts. Windows are
//! closed intervals that share their boundary second, so nothing falls between two of them;
//! a record on a boundary is read twice and dropped the second time by key. Times are whole
//! seconds, as the APIs write them. A start or cursor in the future is refused, never waited
//! for: a run would read nothing until then, and what is modified before it would never be read.
//! Pure: the clock is a parameter.

use std::path::Path;

use chrono::{DateTime, Duration, DurationRound, Utc};

use crate::error::{Error, ErrorKind};
use crate::time::{Zone, parse_instant_in, wall_clock};

/// One closed window `[start, end]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The range one run reads, or `None` when there is nothing new to read yet.
///
/// `cursor` is where the previous run stopped (`None` before the first run, which starts at
/// `initial`); the range begins `lookback` before it and ends `lag` before `now`. The
/// arithmetic saturates at the ends of time rather than overflowing: compiled spans are
/// bounded (`time::SPAN_LIMITS`), so only a cursor near year ±262,000 could reach them.
pub fn run_range(
    cursor: Option<DateTime<Utc>>,
    initial: DateTime<Utc>,
    lookback: Duration,
    lag: Duration,
    now: DateTime<Utc>,
) -> Option<Window> {
    let start = match cursor {
        Some(cursor) => cursor
            .checked_sub_signed(lookback)
            .unwrap_or(DateTime::<Utc>::MIN_UTC),
        None => initial,
    };
    let end = now
        .checked_sub_signed(lag)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let window = Window {
        start: floor_second(start),
        end: floor_second(end),
    };
    (window.start < window.end).then_some(window)
}

/// Whether a record last modified at `modified` (a `key.modified` text, naive in `zone`) was
/// modified after `window` ends. A window read without an upper bound gets such records too;
/// they belong to a later window or run, which starts at most at this window's end. A record
/// without a readable time is not after the window (it is kept, never lost).
pub fn modified_after(window: &Window, modified: Option<&str>, zone: Zone) -> bool {
    modified
        .and_then(|text| parse_instant_in(text, zone).ok())
        .is_some_and(|instant| instant > window.end)
}

/// What a run asks to read: from its cursor (or the flow's start), or a backfill's bounds.
#[derive(Debug, Clone, Copy)]
pub struct Ask {
    pub cursor: Option<DateTime<Utc>>,
    /// `source.window.start`: where the first run begins.
    pub initial: DateTime<Utc>,
    /// `--since` / `--until`: a backfill, which does not use or move the cursor.
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub lookback: Duration,
    pub lag: Duration,
}

/// The range a run reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    /// `None`: nothing new to read yet (the lag has not passed since the cursor).
    pub range: Option<Window>,
    /// The `--until` asked for, when it was later than now minus the lag and the range was
    /// cut there: records modified later may still be being written, and a range into the
    /// future would only request empty windows.
    pub clamped_until: Option<DateTime<Utc>>,
}

/// Why a run refuses to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The stored cursor is later than now.
    CursorInFuture { cursor: DateTime<Utc> },
    /// `source.window.start` is later than now (and is used: no cursor yet, or a backfill
    /// without `--since`).
    StartInFuture { start: DateTime<Utc> },
    /// A backfill from `start` to `end` (after cutting `--until` to now minus the lag) that
    /// is empty or runs backwards.
    Backwards {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        since_given: bool,
        until_given: bool,
    },
}

/// The range a run reads, or why it must not read.
pub fn plan(ask: Ask, now: DateTime<Utc>) -> Result<Planned, Refused> {
    let start = match (ask.since, ask.until, ask.cursor) {
        (None, None, Some(cursor)) if cursor > now => {
            return Err(Refused::CursorInFuture { cursor });
        }
        (None, None, Some(_)) => None,
        (Some(since), _, _) => Some(since),
        (None, _, _) if ask.initial > now => {
            return Err(Refused::StartInFuture { start: ask.initial });
        }
        (None, _, _) => Some(ask.initial),
    };
    if ask.since.is_none() && ask.until.is_none() {
        return Ok(Planned {
            range: run_range(ask.cursor, ask.initial, ask.lookback, ask.lag, now),
            clamped_until: None,
        });
    }
    let start = start.expect("a backfill starts at --since or the flow's start");
    let latest = floor_second(now - ask.lag);
    let (end, clamped_until) = match ask.until {
        Some(until) if until > latest => (latest, Some(until)),
        Some(until) => (until, None),
        None => (latest, None),
    };
    if start >= end {
        return Err(Refused::Backwards {
            start,
            end,
            since_given: ask.since.is_some(),
            until_given: ask.until.is_some(),
        });
    }
    Ok(Planned {
        range: Some(Window { start, end }),
        clamped_until,
    })
}

impl Refused {
    /// The error a run of flow `flow` (in `file`) stops with.
    pub fn into_error(self, flow: &str, file: &Path, now: DateTime<Utc>) -> Error {
        let now_text = wall_clock(now);
        match self {
            Refused::CursorInFuture { cursor } => Error::new(
                ErrorKind::State,
                format!(
                    "the cursor of flow `{flow}` is `{}`, in the future (now is `{now_text}`): a run would read nothing until then and never read what is modified before",
                    wall_clock(cursor)
                ),
            )
            .with_hint(format!(
                "set it to where the next run should read from, in the past: `engine state {} --reset-cursor \"{now_text}\"` (or earlier)",
                file.display()
            )),
            Refused::StartInFuture { start } => Error::config(format!(
                "`source.window.start` of flow `{flow}` is `{}`, in the future (now is `{now_text}`): the first run would read nothing until then and never read what is modified before",
                wall_clock(start)
            ))
            .with_hint(format!(
                "set it in {} (or the environment variable it reads) to where the first run should begin, in the past",
                file.display()
            )),
            Refused::Backwards {
                start,
                end,
                since_given,
                until_given,
            } => Error::usage(format!(
                "nothing to re-sync from `{}` ({}) to `{}` ({}): the range is empty or runs backwards",
                wall_clock(start),
                if since_given {
                    "`--since`"
                } else {
                    "`source.window.start`"
                },
                wall_clock(end),
                if until_given {
                    "`--until`, at most now minus the lag"
                } else {
                    "now minus the lag"
                },
            ))
            .with_hint("give `--since` before `--until`, both in the past"),
        }
    }
}

/// Slice `range` into windows of less than `max_span` each (an API that allows "30 days"
/// accepts `00:00:00`..`29 days 23:59:59` everywhere, but not always the full 30 days).
pub fn slice(range: Window, max_span: Duration) -> Vec<Window> {
    let step = (max_span - Duration::seconds(1)).max(Duration::seconds(1));
    let mut windows = Vec::new();
    let mut start = range.start;
    while start < range.end {
        let end = start
            .checked_add_signed(step)
            .map_or(range.end, |end| end.min(range.end));
        windows.push(Window { start, end });
        start = end;
    }
    windows
}

fn floor_second(instant: DateTime<Utc>) -> DateTime<Utc> {
    instant
        .duration_trunc(Duration::seconds(1))
        .unwrap_or(instant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{parse_instant, wall_clock};

    fn at(text: &str) -> DateTime<Utc> {
        parse_instant(text).unwrap()
    }

    fn shown(windows: &[Window]) -> Vec<(String, String)> {
        windows
            .iter()
            .map(|w| (wall_clock(w.start), wall_clock(w.end)))
            .collect()
    }

    #[test]
    fn records_modified_after_the_window_end_are_told_apart_in_the_api_zone() {
        let window = Window {
            start: at("2026-12-01 08:00:00"),
            end: at("2026-12-01 16:00:00"),
        };
        let utc = Zone::parse("UTC").unwrap();
        let table: &[(Option<&str>, Zone, bool)] = &[
            (
                Some("2026-12-01 16:00:00"),
                crate::time::DEFAULT_ZONE,
                false,
            ),
            (Some("2026-12-01 16:00:01"), crate::time::DEFAULT_ZONE, true),
            (Some("2026-12-01 08:00:00"), utc, false),
            (Some("2026-12-01 08:00:00.500"), utc, true),
            (
                Some("2026-12-01T08:00:01Z"),
                crate::time::DEFAULT_ZONE,
                true,
            ),
            (Some("2026-12-01T16:00:00+08:00"), utc, false),
            (Some("1796112001"), utc, true),
            (Some("1796112000000"), utc, false),
            (Some("not a time"), utc, false),
            (None, utc, false),
        ];
        for (modified, zone, after) in table {
            assert_eq!(
                modified_after(&window, *modified, *zone),
                *after,
                "{modified:?} in {zone:?}"
            );
        }
    }

    #[test]
    fn the_first_run_starts_at_the_initial_time_and_ends_lag_before_now() {
        let range = run_range(
            None,
            at("2024-01-01 00:00:00"),
            Duration::minutes(5),
            Duration::minutes(2),
            at("2024-01-10 12:00:30.700"),
        );
        assert_eq!(
            range,
            Some(Window {
                start: at("2024-01-01 00:00:00"),
                end: at("2024-01-10 11:58:30")
            })
        );
    }

    #[test]
    fn later_runs_start_a_lookback_before_the_cursor() {
        let range = run_range(
            Some(at("2024-01-10 11:58:30")),
            at("2024-01-01 00:00:00"),
            Duration::minutes(5),
            Duration::minutes(2),
            at("2024-01-10 12:30:00"),
        );
        assert_eq!(
            range,
            Some(Window {
                start: at("2024-01-10 11:53:30"),
                end: at("2024-01-10 12:28:00")
            })
        );
    }

    #[test]
    fn nothing_is_read_before_the_lag_has_passed() {
        let range = run_range(
            Some(at("2024-01-10 12:00:00")),
            at("2024-01-01 00:00:00"),
            Duration::zero(),
            Duration::minutes(2),
            at("2024-01-10 12:01:00"),
        );
        assert_eq!(range, None);
    }

    #[test]
    fn long_ranges_are_sliced_under_the_maximum_span_sharing_boundaries() {
        let range = Window {
            start: at("2024-01-01 00:00:00"),
            end: at("2024-03-05 00:00:00"),
        };
        assert_eq!(
            shown(&slice(range, Duration::days(30))),
            vec![
                ("2024-01-01 00:00:00".into(), "2024-01-30 23:59:59".into()),
                ("2024-01-30 23:59:59".into(), "2024-02-29 23:59:58".into()),
                ("2024-02-29 23:59:58".into(), "2024-03-05 00:00:00".into()),
            ]
        );
    }

    #[test]
    fn spans_at_the_ends_of_time_saturate_instead_of_panicking() {
        let huge = Duration::days(100_000_000);
        let cursor = at("2024-01-10 12:00:00");
        let range = run_range(Some(cursor), cursor, huge, Duration::zero(), cursor);
        assert_eq!(range.map(|w| w.start), Some(DateTime::<Utc>::MIN_UTC));
        assert_eq!(
            run_range(None, cursor, Duration::zero(), huge, cursor),
            None
        );
        let near_the_end = Window {
            start: DateTime::<Utc>::MAX_UTC - Duration::days(1),
            end: DateTime::<Utc>::MAX_UTC,
        };
        assert_eq!(slice(near_the_end, huge), vec![near_the_end]);
    }

    #[test]
    fn a_short_range_is_one_window_and_an_empty_one_none() {
        let range = Window {
            start: at("2024-01-01 00:00:00"),
            end: at("2024-01-01 06:00:00"),
        };
        assert_eq!(slice(range, Duration::days(30)), vec![range]);
        let empty = Window {
            start: range.start,
            end: range.start,
        };
        assert_eq!(slice(empty, Duration::days(30)), vec![]);
    }

    fn ask(cursor: Option<&str>, since: Option<&str>, until: Option<&str>) -> Ask {
        Ask {
            cursor: cursor.map(at),
            initial: at("2024-01-01 00:00:00"),
            since: since.map(at),
            until: until.map(at),
            lookback: Duration::minutes(10),
            lag: Duration::seconds(5),
        }
    }

    #[test]
    fn a_run_plans_its_range_or_refuses_a_future_cursor_start_or_backwards_range() {
        let now = at("2024-06-01 12:00:00");
        let range = |start: &str, end: &str| Window {
            start: at(start),
            end: at(end),
        };
        let planned = |range: Option<Window>, clamped: Option<&str>| {
            Ok(Planned {
                range,
                clamped_until: clamped.map(at),
            })
        };
        let cases = [
            (
                "from the cursor",
                ask(Some("2024-06-01 11:00:00"), None, None),
                planned(
                    Some(range("2024-06-01 10:50:00", "2024-06-01 11:59:55")),
                    None,
                ),
            ),
            (
                "a cursor at now is not in the future",
                ask(Some("2024-06-01 12:00:00"), None, None),
                planned(
                    Some(range("2024-06-01 11:50:00", "2024-06-01 11:59:55")),
                    None,
                ),
            ),
            (
                "a cursor in the future",
                ask(Some("2099-01-01 00:00:00"), None, None),
                Err(Refused::CursorInFuture {
                    cursor: at("2099-01-01 00:00:00"),
                }),
            ),
            (
                "a backfill ignores the cursor",
                ask(
                    Some("2099-01-01 00:00:00"),
                    Some("2024-05-01 00:00:00"),
                    Some("2024-05-02 00:00:00"),
                ),
                planned(
                    Some(range("2024-05-01 00:00:00", "2024-05-02 00:00:00")),
                    None,
                ),
            ),
            (
                "--until in the future is cut to now minus the lag",
                ask(
                    None,
                    Some("2024-05-01 00:00:00"),
                    Some("2099-01-01 00:00:00"),
                ),
                planned(
                    Some(range("2024-05-01 00:00:00", "2024-06-01 11:59:55")),
                    Some("2099-01-01 00:00:00"),
                ),
            ),
            (
                "--since after --until",
                ask(
                    None,
                    Some("2024-05-02 00:00:00"),
                    Some("2024-05-01 00:00:00"),
                ),
                Err(Refused::Backwards {
                    start: at("2024-05-02 00:00:00"),
                    end: at("2024-05-01 00:00:00"),
                    since_given: true,
                    until_given: true,
                }),
            ),
            (
                "--since in the future",
                ask(None, Some("2099-01-01 00:00:00"), None),
                Err(Refused::Backwards {
                    start: at("2099-01-01 00:00:00"),
                    end: at("2024-06-01 11:59:55"),
                    since_given: true,
                    until_given: false,
                }),
            ),
        ];
        for (name, asked, expected) in cases {
            assert_eq!(plan(asked, now), expected, "{name}");
        }
        let future_start = Ask {
            initial: at("2099-01-01 00:00:00"),
            ..ask(None, None, None)
        };
        for asked in [
            future_start,
            Ask {
                until: Some(at("2024-05-01 00:00:00")),
                ..future_start
            },
        ] {
            assert_eq!(
                plan(asked, now),
                Err(Refused::StartInFuture {
                    start: at("2099-01-01 00:00:00")
                })
            );
        }
        // With a cursor, the flow's start is not used.
        assert!(
            plan(
                Ask {
                    cursor: Some(at("2024-06-01 11:00:00")),
                    ..future_start
                },
                now
            )
            .is_ok()
        );
    }
}
