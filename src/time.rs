//! Time as the APIs speak it: wall-clock strings in a connector's time zone, spans like
//! `30d`, and the clock as a parameter.
//!
//! Both WDT and Kingdee exchange naive `yyyy-MM-dd HH:mm:ss` strings meant as Beijing time;
//! other APIs speak UTC or another zone ([`Zone`], a connector's `time_zone`). Everything
//! inside `engine` is a UTC instant; this module converts at the edges. A time is read from a
//! naive wall-clock text (in a zone), ISO 8601 / RFC 3339 with `Z` or an offset, or epoch
//! seconds (10 digits) or milliseconds (13 digits). It does no IO except [`SystemClock`],
//! which reads the system time.

use std::fmt::Display;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The time zone of both APIs (no daylight saving since 1991, so local times are unambiguous).
pub const SHANGHAI: Tz = chrono_tz::Asia::Shanghai;

/// The wall-clock format of WDT parameters and records, and of `--since`/`--until`.
pub const WALL_CLOCK: &str = "%Y-%m-%d %H:%M:%S";

/// The date format Kingdee expects in `FDate`.
pub const DATE: &str = "%Y-%m-%d";

/// Where "now" comes from; pure code takes an instant, IO code takes a clock.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that always says the same instant, for tests.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// A time zone an API speaks: a named zone (daylight saving included) or a fixed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    Named(Tz),
    Fixed(FixedOffset),
}

/// The zone of a connector that names none (and of WDT and Kingdee).
pub const DEFAULT_ZONE: Zone = Zone::Named(SHANGHAI);

impl Zone {
    /// `UTC`, `Z`, an IANA name (`Asia/Shanghai`, `Europe/Berlin`) or an offset (`+08:00`,
    /// `-0530`, `+08`).
    pub fn parse(text: &str) -> Result<Zone, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("utc") || text == "Z" {
            return Ok(Zone::Fixed(FixedOffset::east_opt(0).expect("zero offset")));
        }
        if let Some(sign) = text.strip_prefix(['+', '-']).map(|_| &text[..1]) {
            let digits: String = text[1..].chars().filter(|c| *c != ':').collect();
            let valid = matches!(digits.len(), 2 | 4) && digits.chars().all(|c| c.is_ascii_digit());
            let (hours, minutes) = if valid {
                let hours: i32 = digits[..2].parse().unwrap_or(99);
                let minutes: i32 = match &digits[2..] {
                    "" => 0,
                    minutes => minutes.parse().unwrap_or(99),
                };
                (hours, minutes)
            } else {
                (99, 99)
            };
            let seconds = (hours * 3600 + minutes * 60) * if sign == "-" { -1 } else { 1 };
            return (hours <= 18 && minutes < 60)
                .then(|| FixedOffset::east_opt(seconds))
                .flatten()
                .map(Zone::Fixed)
                .ok_or_else(|| {
                    format!(
                        "`{text}` is not a time zone offset: write it like `+08:00` or `-05:30`"
                    )
                });
        }
        text.parse::<Tz>().map(Zone::Named).map_err(|_| {
            format!("`{text}` is not a time zone: write `UTC`, an IANA name such as `Asia/Shanghai`, or an offset such as `+08:00`")
        })
    }

    /// How the zone is written in a connector.
    pub fn name(&self) -> String {
        match self {
            Zone::Named(tz) => tz.name().to_string(),
            Zone::Fixed(offset) if offset.local_minus_utc() == 0 => "UTC".to_string(),
            Zone::Fixed(offset) => offset.to_string(),
        }
    }

    /// The instant a wall-clock time in this zone means. A time that occurs twice (when clocks
    /// go back) is the first; one that never occurs (when clocks go forward) is read an hour on.
    pub fn from_local(&self, naive: NaiveDateTime) -> DateTime<Utc> {
        fn resolve<Z: TimeZone>(zone: &Z, naive: NaiveDateTime) -> DateTime<Utc> {
            zone.from_local_datetime(&naive)
                .earliest()
                .or_else(|| {
                    zone.from_local_datetime(&(naive + Duration::hours(1)))
                        .earliest()
                })
                .map_or_else(|| naive.and_utc(), |local| local.with_timezone(&Utc))
        }
        match self {
            Zone::Named(tz) => resolve(tz, naive),
            Zone::Fixed(offset) => resolve(offset, naive),
        }
    }

    /// `instant` in this zone, formatted with parsed chrono `items`.
    pub fn format_items<'a>(
        &self,
        instant: DateTime<Utc>,
        items: &'a [Item<'a>],
    ) -> Box<dyn Display + 'a> {
        match self {
            Zone::Named(tz) => Box::new(
                instant
                    .with_timezone(tz)
                    .format_with_items(items.iter().cloned()),
            ),
            Zone::Fixed(offset) => Box::new(
                instant
                    .with_timezone(offset)
                    .format_with_items(items.iter().cloned()),
            ),
        }
    }

    /// `instant` in this zone with a chrono format string known to be valid.
    pub fn format(&self, instant: DateTime<Utc>, format: &str) -> String {
        // The wall clock is the usual format (a key's modified time, every record): parsed once.
        static WALL_CLOCK_ITEMS: std::sync::LazyLock<Vec<Item<'static>>> =
            std::sync::LazyLock::new(|| StrftimeItems::new(WALL_CLOCK).collect());
        if format == WALL_CLOCK {
            return self.format_items(instant, &WALL_CLOCK_ITEMS).to_string();
        }
        let items: Vec<Item> = StrftimeItems::new(format).collect();
        self.format_items(instant, &items).to_string()
    }
}

/// Parse a time the way a user or an API writes it, naive texts in Asia/Shanghai (see
/// [`parse_instant_in`]).
pub fn parse_instant(text: &str) -> Result<DateTime<Utc>, String> {
    parse_instant_in(text, DEFAULT_ZONE)
}

/// Parse a time: `2024-01-01 00:00:00`, `2024-01-01T00:00:00` or `2024-01-01` (in `zone`),
/// ISO 8601 / RFC 3339 with `Z` or an offset (`+08:00`, `+0800`), or epoch seconds (10
/// digits) or milliseconds (13 digits).
pub fn parse_instant_in(text: &str, zone: Zone) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    // The common case first (WDT writes every time so, and a mapping reads one or two per
    // record): the forms tried before it cannot match a text without an offset.
    if is_wall_clock_shaped(text)
        && let Ok(naive) = NaiveDateTime::parse_from_str(text, WALL_CLOCK)
    {
        return Ok(zone.from_local(naive));
    }
    parse_any_instant_in(text, zone)
}

/// [`parse_instant_in`] trying every form in turn (on a trimmed text).
fn parse_any_instant_in(text: &str, zone: Zone) -> Result<DateTime<Utc>, String> {
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Ok(instant.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(instant) = DateTime::parse_from_str(text, format) {
            return Ok(instant.with_timezone(&Utc));
        }
    }
    if text.bytes().all(|b| b.is_ascii_digit()) && matches!(text.len(), 10 | 13) {
        let number: i64 = text.parse().unwrap_or_default();
        let instant = if text.len() == 13 {
            Utc.timestamp_millis_opt(number)
        } else {
            Utc.timestamp_opt(number, 0)
        };
        if let Some(instant) = instant.single() {
            return Ok(instant);
        }
    }
    for format in [
        WALL_CLOCK,
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(zone.from_local(naive));
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, DATE) {
        return Ok(zone.from_local(date.and_hms_opt(0, 0, 0).expect("midnight exists")));
    }
    Err(format!(
        "`{text}` is not a time: expected `yyyy-MM-dd HH:mm:ss` ({}), `yyyy-MM-dd`, RFC 3339 or epoch seconds",
        zone.name()
    ))
}

/// Whether `text` is laid out as `yyyy-MM-dd HH:mm:ss`, all ASCII digits in their places.
fn is_wall_clock_shaped(text: &str) -> bool {
    text.len() == 19
        && text.bytes().enumerate().all(|(at, byte)| match at {
            4 | 7 => byte == b'-',
            10 => byte == b' ',
            13 | 16 => byte == b':',
            _ => byte.is_ascii_digit(),
        })
}

/// `yyyy-MM-dd HH:mm:ss` in `zone`.
pub fn wall_clock_in(instant: DateTime<Utc>, zone: Zone) -> String {
    zone.format(instant, WALL_CLOCK)
}

/// Interpret a naive wall-clock time as Asia/Shanghai.
pub fn from_shanghai(naive: NaiveDateTime) -> DateTime<Utc> {
    SHANGHAI
        .from_local_datetime(&naive)
        .single()
        .expect("Asia/Shanghai has no ambiguous or skipped local times since 1991")
        .with_timezone(&Utc)
}

/// Format an instant as Asia/Shanghai wall-clock time with a chrono format string.
pub fn format_shanghai(instant: DateTime<Utc>, format: &str) -> String {
    instant.with_timezone(&SHANGHAI).format(format).to_string()
}

/// `yyyy-MM-dd HH:mm:ss` in Asia/Shanghai.
pub fn wall_clock(instant: DateTime<Utc>) -> String {
    format_shanghai(instant, WALL_CLOCK)
}

/// The longest span [`parse_span`] reads at all (about 100 years): beyond it a span is a
/// mistake, and chrono's arithmetic would overflow.
pub const SPAN_CEILING_DAYS: i64 = 36_600;

/// The longest value of each span setting, by its key. A span longer than its setting's
/// maximum is a configuration error (located, naming the maximum), so that no arithmetic on
/// times can overflow and no wait or window is absurd. Settings not listed take `DEFAULT`.
pub const SPAN_LIMITS: &[(&str, &str)] = &[
    // `source.window`: a run ends at most a week in the past and re-reads at most a month.
    ("lag", "7d"),
    ("lookback", "30d"),
    // A window of an API's time field (the operation's and the flow's): about ten years.
    ("max_span", "3660d"),
    // `http`: waits for one call and between calls.
    ("timeout", "1h"),
    ("connect_timeout", "10m"),
    ("per", "1d"),
    ("initial_backoff", "1h"),
    ("max_backoff", "1d"),
    ("throttle_wait", "1d"),
    ("DEFAULT", "366d"),
];

/// The longest span the setting named `key` accepts (see [`SPAN_LIMITS`]).
pub fn span_limit(key: &str) -> Duration {
    let text = SPAN_LIMITS
        .iter()
        .find(|(name, _)| *name == key)
        .or_else(|| SPAN_LIMITS.iter().find(|(name, _)| *name == "DEFAULT"))
        .map_or("366d", |(_, limit)| limit);
    parse_span(text).unwrap_or_else(|_| Duration::days(366))
}

/// Parse a span such as `30d`, `12h`, `10m`, `90s` or a combination like `1h30m`, at most
/// [`SPAN_CEILING_DAYS`] long.
pub fn parse_span(text: &str) -> Result<Duration, String> {
    let invalid = || {
        format!(
            "`{text}` is not a time span: write it like `30d`, `12h`, `10m`, `90s`, `500ms` or `1h30m`"
        )
    };
    let too_long =
        || format!("`{text}` is far too long a time span: spans go up to {SPAN_CEILING_DAYS}d");
    let ceiling = Duration::days(SPAN_CEILING_DAYS);
    let mut total = Duration::zero();
    let mut digits = String::new();
    let mut any = false;
    let mut chars = text.trim().chars().peekable();
    while let Some(ch) = chars.next() {
        if ch.is_ascii_digit() {
            digits.push(ch);
            continue;
        }
        if digits.is_empty() {
            return Err(invalid());
        }
        // Any amount past the ceiling is refused before chrono sees it (it panics on overflow).
        let amount: i64 = digits.parse().unwrap_or(i64::MAX);
        digits.clear();
        let unit_millis: i64 = match ch {
            'd' => 86_400_000,
            'h' => 3_600_000,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1
            }
            'm' => 60_000,
            's' => 1_000,
            _ => return Err(invalid()),
        };
        let unit = amount
            .checked_mul(unit_millis)
            .filter(|millis| *millis <= ceiling.num_milliseconds())
            .map(Duration::milliseconds)
            .ok_or_else(too_long)?;
        total = total
            .checked_add(&unit)
            .filter(|total| *total <= ceiling)
            .ok_or_else(too_long)?;
        any = true;
    }
    if !digits.is_empty() || !any {
        return Err(invalid());
    }
    Ok(total)
}

/// Format a span the way [`parse_span`] reads it (largest units first).
pub fn format_span(span: Duration) -> String {
    let mut millis = span.num_milliseconds();
    if millis == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if millis >= size {
            out.push_str(&format!("{}{unit}", millis / size));
            millis %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_clock_times_are_beijing_time() {
        let instant = parse_instant("2024-01-01 08:00:00").unwrap();
        assert_eq!(instant, Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap());
        assert_eq!(wall_clock(instant), "2024-01-01 08:00:00");
    }

    #[test]
    fn instants_parse_from_every_accepted_spelling() {
        let expected = Utc.with_ymd_and_hms(2023, 12, 31, 16, 0, 0).unwrap();
        for text in [
            "2024-01-01 00:00:00",
            "2024-01-01",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00+08:00",
            "2023-12-31T16:00:00Z",
        ] {
            assert_eq!(parse_instant(text).unwrap(), expected, "{text}");
        }
        assert!(
            parse_instant("yesterday")
                .unwrap_err()
                .contains("`yesterday` is not a time")
        );
    }

    #[test]
    fn a_wall_clock_text_reads_as_it_does_after_the_forms_tried_before_it() {
        let utc = Zone::parse("UTC").unwrap();
        for text in [
            "2024-01-01 08:00:00",
            "9999-12-01 00:00:00",
            "0000-01-01 00:00:00",
            "2024-02-29 23:59:59",
            "2024-12-31 23:59:60",
            "2023-02-29 00:00:00",
            "2024-13-01 00:00:00",
            "2024-01-01 24:00:00",
            "2024-01-01 08:00:0x",
            "2024-01-01T08:00:00",
            "2024-01-01 08:00:00Z",
            "+2024-01-01 08:00:00",
        ] {
            for zone in [DEFAULT_ZONE, utc] {
                assert_eq!(
                    parse_instant_in(text, zone),
                    parse_any_instant_in(text, zone),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn instants_parse_in_the_zone_given_and_with_their_own_offsets() {
        let utc = Zone::parse("UTC").unwrap();
        let expected = Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap();
        let table = [
            ("2026-12-01 08:00:00", utc),
            ("2026-12-01T08:00:00", utc),
            ("2026-12-01 16:00:00", DEFAULT_ZONE),
            ("2026-12-01 03:00:00", Zone::parse("-05:00").unwrap()),
            ("2026-12-01 09:00:00", Zone::parse("Europe/Berlin").unwrap()),
            ("2026-12-01T08:00:00Z", DEFAULT_ZONE),
            ("2026-12-01T08:00:00.000Z", DEFAULT_ZONE),
            ("2026-12-01T16:00:00+08:00", utc),
            ("2026-12-01T16:00:00+0800", utc),
            ("2026-12-01 16:00:00+08:00", utc),
            ("1796112000", DEFAULT_ZONE),
            ("1796112000000", utc),
        ];
        for (text, zone) in table {
            assert_eq!(
                parse_instant_in(text, zone),
                Ok(expected),
                "{text} in {zone:?}"
            );
        }
        assert!(parse_instant_in("20261201", utc).is_err());
        assert!(parse_instant_in("12345", utc).is_err());
    }

    #[test]
    fn zones_parse_from_names_and_offsets_and_write_wall_clocks() {
        let instant = Utc.with_ymd_and_hms(2026, 7, 1, 8, 0, 0).unwrap();
        let table = [
            ("UTC", "UTC", "2026-07-01 08:00:00"),
            ("utc", "UTC", "2026-07-01 08:00:00"),
            ("Z", "UTC", "2026-07-01 08:00:00"),
            ("Asia/Shanghai", "Asia/Shanghai", "2026-07-01 16:00:00"),
            ("+08:00", "+08:00", "2026-07-01 16:00:00"),
            ("+0800", "+08:00", "2026-07-01 16:00:00"),
            ("-05:30", "-05:30", "2026-07-01 02:30:00"),
            ("+05", "+05:00", "2026-07-01 13:00:00"),
            // Daylight saving: Berlin is UTC+2 in July.
            ("Europe/Berlin", "Europe/Berlin", "2026-07-01 10:00:00"),
        ];
        for (text, name, wall) in table {
            let zone = Zone::parse(text).unwrap();
            assert_eq!(zone.name(), name, "{text}");
            assert_eq!(wall_clock_in(instant, zone), wall, "{text}");
            assert_eq!(Zone::parse(&zone.name()), Ok(zone), "{text} round trip");
        }
        for bad in ["Mars/Olympus", "+25:00", "+08:75", "+8", "08:00", ""] {
            assert!(Zone::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn local_times_that_clocks_skip_or_repeat_still_read() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        // 2026-03-29 02:30 never happens in Berlin: read an hour on, 03:30 CEST.
        assert_eq!(
            parse_instant_in("2026-03-29 02:30:00", berlin).unwrap(),
            Utc.with_ymd_and_hms(2026, 3, 29, 1, 30, 0).unwrap()
        );
        // 2026-10-25 02:30 happens twice: the first, CEST.
        assert_eq!(
            parse_instant_in("2026-10-25 02:30:00", berlin).unwrap(),
            Utc.with_ymd_and_hms(2026, 10, 25, 0, 30, 0).unwrap()
        );
    }

    #[test]
    fn spans_parse_and_format_round_trip() {
        assert_eq!(parse_span("250ms").unwrap().num_milliseconds(), 250);
        assert_eq!(parse_span("1m500ms").unwrap().num_milliseconds(), 60_500);
        assert_eq!(format_span(Duration::milliseconds(1_500)), "1s500ms");
        for (text, seconds) in [
            ("30d", 30 * 86_400),
            ("1h30m", 5_400),
            ("90s", 90),
            ("2m", 120),
        ] {
            assert_eq!(parse_span(text).unwrap().num_seconds(), seconds, "{text}");
        }
        assert_eq!(format_span(Duration::seconds(5_400)), "1h30m");
        assert!(parse_span("30").is_err());
        assert!(parse_span("3w").is_err());
        assert!(parse_span("").is_err());
        assert!(parse_span("d").is_err());
    }

    #[test]
    fn spans_beyond_the_ceiling_are_refused_without_overflow() {
        for text in [
            "999999999999d",
            "99999999999999999999999d",
            "100000000d",
            "36601d",
            "36600d1s",
            "9223372036854775807ms9223372036854775807ms",
        ] {
            let err = parse_span(text).unwrap_err();
            assert!(err.contains("far too long"), "{text}: {err}");
        }
        assert_eq!(parse_span("36600d").unwrap(), Duration::days(36_600));
    }

    #[test]
    fn every_span_setting_has_a_maximum_within_the_ceiling() {
        for (key, _) in SPAN_LIMITS {
            assert!(span_limit(key) > Duration::zero(), "{key}");
            assert!(
                span_limit(key) <= Duration::days(SPAN_CEILING_DAYS),
                "{key}"
            );
        }
        assert_eq!(span_limit("lag"), Duration::days(7));
        assert_eq!(span_limit("an_unlisted_setting"), Duration::days(366));
    }
}
