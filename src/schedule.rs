//! When `engine serve` starts a flow's next run: its schedule, and the backoff after failures;
//! and the schedule as people read it (serve's log, the console).
//!
//! Pure functions of the schedule, the clock and the count of failures in a row; the loop in
//! `serve` sleeps until the instant they return.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::model::{Schedule, ScheduleKind};
use crate::time::format_span;

/// The schedule as people read it: `every 5m`, or a cron's description and its pattern,
/// `at 02:00 (\`0 2 * * *\`, Asia/Shanghai)`.
pub fn readable(schedule: &Schedule) -> String {
    match &schedule.when {
        ScheduleKind::Every(every) => format!(
            "every {}",
            format_span(chrono::Duration::from_std(*every).unwrap_or_default())
        ),
        ScheduleKind::Cron(cron) => {
            // croner writes a sentence (`At 02:00.`); it follows `every 5m`'s lowercase here.
            let described = cron.describe();
            let described = described.trim().trim_end_matches('.');
            let mut chars = described.chars();
            let described = match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect::<String>(),
                None => String::new(),
            };
            format!(
                "{described} (`{}`, {})",
                cron.pattern.as_str(),
                schedule.time_zone
            )
        }
    }
}

/// The next start as a wall-clock time in the schedule's time zone, named:
/// `2024-05-02 02:00:00 (Asia/Shanghai)`; `never` for a cron that never matches again.
pub fn next_start_text(
    schedule: &Schedule,
    last_start: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> String {
    let next = next_start(schedule, last_start, now);
    if next == DateTime::<Utc>::MAX_UTC {
        return "never".to_string();
    }
    format!(
        "{} ({})",
        next.with_timezone(&schedule.time_zone)
            .format("%Y-%m-%d %H:%M:%S"),
        schedule.time_zone
    )
}

/// The first wait after a failed run; each further failure in a row doubles it.
pub const BACKOFF_FIRST: Duration = Duration::from_secs(10);

/// The longest wait after failures.
pub const BACKOFF_CAP: Duration = Duration::from_secs(15 * 60);

/// The next scheduled start after `now`; `last_start` is when the previous run started (an
/// interval counts from it, so that a run longer than the interval is followed at once).
pub fn next_start(
    schedule: &Schedule,
    last_start: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    match &schedule.when {
        ScheduleKind::Every(every) => match last_start {
            None => now,
            Some(last) => (last + chrono::Duration::from_std(*every).unwrap_or_default()).max(now),
        },
        ScheduleKind::Cron(cron) => cron
            .find_next_occurrence(&now.with_timezone(&schedule.time_zone), false)
            .map(|next| next.with_timezone(&Utc))
            // A pattern that never matches again (`0 0 30 2 *`): never.
            .unwrap_or(DateTime::<Utc>::MAX_UTC),
    }
}

/// How long to hold back after `failures` failed runs in a row: nothing after a success, then
/// `BACKOFF_FIRST`, doubled each time, at most `BACKOFF_CAP`.
pub fn backoff(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let factor = 2u32.saturating_pow(failures - 1);
    BACKOFF_FIRST.saturating_mul(factor).min(BACKOFF_CAP)
}

/// When the next run starts: the schedule's next start, but not before the backoff after the
/// last failure has passed.
pub fn next_run(
    schedule: &Schedule,
    last_start: Option<DateTime<Utc>>,
    failures: u32,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let scheduled = next_start(schedule, last_start, now);
    let held = now + chrono::Duration::from_std(backoff(failures)).unwrap_or_default();
    if failures > 0 {
        scheduled.max(held)
    } else {
        scheduled
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn every(secs: u64) -> Schedule {
        Schedule {
            when: ScheduleKind::Every(Duration::from_secs(secs)),
            time_zone: chrono_tz::Asia::Shanghai,
        }
    }

    fn cron(pattern: &str) -> Schedule {
        Schedule {
            when: ScheduleKind::Cron(Box::new(croner::Cron::from_str(pattern).unwrap())),
            time_zone: chrono_tz::Asia::Shanghai,
        }
    }

    #[test]
    fn next_start_follows_the_schedule() {
        let now = at("2024-05-01T10:00:30Z");
        let cases: &[(Schedule, Option<&str>, &str)] = &[
            // The first run of an interval starts at once.
            (every(60), None, "2024-05-01T10:00:30Z"),
            (
                every(60),
                Some("2024-05-01T10:00:00Z"),
                "2024-05-01T10:01:00Z",
            ),
            // A run longer than the interval is followed at once, not skipped ahead.
            (
                every(10),
                Some("2024-05-01T09:00:00Z"),
                "2024-05-01T10:00:30Z",
            ),
            (cron("*/5 * * * *"), None, "2024-05-01T10:05:00Z"),
            // 02:00 in Shanghai is 18:00 UTC the day before.
            (cron("0 2 * * *"), None, "2024-05-01T18:00:00Z"),
        ];
        for (schedule, last, expected) in cases {
            assert_eq!(
                next_start(schedule, last.map(at), now),
                at(expected),
                "{schedule:?} after {last:?}"
            );
        }
    }

    #[test]
    fn a_schedule_reads_as_words_with_its_next_start_in_its_time_zone() {
        let now = at("2024-05-01T10:00:30Z");
        let utc = |mut schedule: Schedule| {
            schedule.time_zone = chrono_tz::UTC;
            schedule
        };
        let cases: &[(Schedule, Option<&str>, &str, &str)] = &[
            (
                every(300),
                None,
                "every 5m",
                "2024-05-01 18:00:30 (Asia/Shanghai)",
            ),
            (
                every(90),
                Some("2024-05-01T10:00:00Z"),
                "every 1m30s",
                "2024-05-01 18:01:30 (Asia/Shanghai)",
            ),
            (
                cron("0 2 * * *"),
                None,
                "at 02:00 (`0 2 * * *`, Asia/Shanghai)",
                "2024-05-02 02:00:00 (Asia/Shanghai)",
            ),
            (
                utc(cron("*/5 * * * *")),
                None,
                "at every 5 minutes (`*/5 * * * *`, UTC)",
                "2024-05-01 10:05:00 (UTC)",
            ),
            (
                cron("0 0 30 2 *"),
                None,
                "at 00:00, on day 30, in February (`0 0 30 2 *`, Asia/Shanghai)",
                "never",
            ),
        ];
        for (schedule, last, words, next) in cases {
            assert_eq!(readable(schedule), *words);
            assert_eq!(
                next_start_text(schedule, last.map(at), now),
                *next,
                "{words}"
            );
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let cases = [
            (0, 0),
            (1, 10),
            (2, 20),
            (3, 40),
            (7, 640),
            (8, 900),
            (40, 900),
        ];
        for (failures, secs) in cases {
            assert_eq!(backoff(failures), Duration::from_secs(secs), "{failures}");
        }
    }

    #[test]
    fn next_run_waits_out_the_backoff_after_failures() {
        let now = at("2024-05-01T10:00:00Z");
        let last = Some(at("2024-05-01T10:00:00Z"));
        assert_eq!(
            next_run(&every(2), last, 0, now),
            at("2024-05-01T10:00:02Z")
        );
        assert_eq!(
            next_run(&every(2), last, 2, now),
            at("2024-05-01T10:00:20Z")
        );
        // A schedule further away than the backoff wins.
        assert_eq!(
            next_run(&every(3600), last, 1, now),
            at("2024-05-01T11:00:00Z")
        );
    }
}
