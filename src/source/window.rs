//! Time windows: which `LAST_SYNC_TIME`..`CURRENT_TIME` ranges a run reads.
//!
//! A run reads from its cursor (minus a lookback, for rows committed late) to now minus a
//! lag (for rows still being written), sliced into windows the API accepts. Windows are
//! closed intervals that share their boundary second, so nothing falls between two of them;
//! a record on a boundary is read twice and dropped the second time by key. Times are whole
//! seconds, as the APIs write them. Pure: the clock is a parameter.

use chrono::{DateTime, Duration, DurationRound, Utc};

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
}
