//! What `engine serve` itself says on stderr (the flows it runs, skipped ticks, backoffs, its
//! address, its stop): a line for people, or with `--log-format json` one JSON object per line
//! shaped as a run's events (`event`, `ts`, `flow` when the line is about one, the event's
//! fields and `text`, the line people read), so that a log shipper reads a serve session whole.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value as Json};

use crate::run::progress::LogFormat;

/// Where serve's own lines go.
#[derive(Debug, Clone, Copy)]
pub struct ServeLog {
    pub format: LogFormat,
}

impl ServeLog {
    /// Say `text`, as event `event` (about `flow`, if any, with `fields`) in JSON.
    pub fn say(&self, event: &str, flow: Option<&str>, fields: Json, text: &str) {
        match self.format {
            LogFormat::Text => eprintln!("{text}"),
            LogFormat::Json => eprintln!("{}", line(event, flow, fields, text, Utc::now())),
        }
    }
}

/// One JSON line of `event` at `now`.
fn line(event: &str, flow: Option<&str>, fields: Json, text: &str, now: DateTime<Utc>) -> Json {
    let mut object = Map::new();
    object.insert("event".into(), event.into());
    if let Some(flow) = flow {
        object.insert("flow".into(), flow.into());
    }
    object.insert("ts".into(), now.to_rfc3339().into());
    if let Json::Object(fields) = fields {
        object.extend(fields);
    }
    object.insert("text".into(), text.into());
    Json::Object(object)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_line_is_one_object_with_event_ts_flow_fields_and_text() {
        let now = DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let cases = [
            (
                line(
                    "skip",
                    Some("re\"fund"),
                    json!({"tick": "x"}),
                    "skipped\nnow",
                    now,
                ),
                r#"{"event":"skip","flow":"re\"fund","ts":"2024-05-01T10:00:00+00:00","tick":"x","text":"skipped\nnow"}"#,
            ),
            (
                line("stopped", None, json!({}), "engine serve stopped", now),
                r#"{"event":"stopped","ts":"2024-05-01T10:00:00+00:00","text":"engine serve stopped"}"#,
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(value.to_string(), expected);
        }
    }
}
