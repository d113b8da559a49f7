//! A flow's `schedule:`, for `engine serve`: an interval or a cron expression, and the time
//! zone the cron expression is read in.

use crate::config::model::{Schedule, ScheduleKind};
use crate::config::raw::RawSchedule;
use crate::config::yaml::{Document, YamlPath};
use crate::time;

use super::Compiler;

/// `schedule:`: one of `every` and `cron`, and a time zone chrono-tz knows.
pub(super) fn compile_schedule(
    cx: &mut Compiler,
    doc: &Document,
    raw: &RawSchedule,
) -> Option<Schedule> {
    let path = YamlPath::root().key("schedule");
    let time_zone = match raw.time_zone.as_deref() {
        None => chrono_tz::Asia::Shanghai,
        Some(name) => match name.parse::<chrono_tz::Tz>() {
            Ok(tz) => tz,
            Err(_) => {
                cx.error(
                    format!("`{name}` is not a time zone"),
                    doc.locate(&path.key("time_zone")),
                    Some("write an IANA name such as `Asia/Shanghai` or `UTC`".to_string()),
                );
                return None;
            }
        },
    };
    let when = match (&raw.every, &raw.cron) {
        (Some(every), None) => {
            let span = time::parse_span(every).ok().and_then(|s| s.to_std().ok());
            match span {
                Some(span) if span >= std::time::Duration::from_secs(1) => {
                    ScheduleKind::Every(span)
                }
                _ => {
                    cx.error(
                        format!("`{every}` is not an interval of at least `1s`"),
                        doc.locate(&path.key("every")),
                        Some("write it like `30s`, `5m` or `1h`".to_string()),
                    );
                    return None;
                }
            }
        }
        (None, Some(cron)) => {
            let parsed = croner::parser::CronParser::builder()
                .seconds(croner::parser::Seconds::Optional)
                .build()
                .parse(cron);
            match parsed {
                Ok(parsed) => ScheduleKind::Cron(Box::new(parsed)),
                Err(err) => {
                    cx.error(
                        format!("`{cron}` is not a cron expression: {err}"),
                        doc.locate(&path.key("cron")),
                        Some("write five fields (minute hour day month weekday), such as `*/10 * * * *`".to_string()),
                    );
                    return None;
                }
            }
        }
        _ => {
            cx.error(
                "`schedule` needs exactly one of `every` and `cron`",
                doc.locate(&path),
                Some(
                    "e.g. `schedule: { every: 5m }` or `schedule: { cron: \"0 2 * * *\" }`"
                        .to_string(),
                ),
            );
            return None;
        }
    };
    Some(Schedule { when, time_zone })
}
