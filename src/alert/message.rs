//! What an alert says and how each receiver wants it: pure, no IO, the clock a parameter.
//!
//! An [`Alert`] (one event of one run of one flow) becomes a bilingual title and markdown
//! text (Chinese first: the people paged read Chinese), then the request body of a channel
//! kind with its signature, and a receiver's answer becomes [`Answer`]. Message texts are
//! cut to fit the receivers' limits (WeCom markdown: 4096 bytes).

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value as Json, json};

use crate::alert::raw::{ChannelKind, EventKind};
use crate::alert::sign;
use crate::secret::Secret;
use crate::time::wall_clock;

/// The longest text sent (bytes): WeCom's markdown limit, with room to spare.
const MAX_TEXT_BYTES: usize = 3800;
/// The longest reason quoted for one parked record (characters).
const MAX_REASON_CHARS: usize = 200;

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The run stopped with this error.
    Failed { error: String },
    /// `count` records were parked in the run; `reasons` are the first few (key, reason).
    Parked {
        count: u64,
        reasons: Vec<(String, String)>,
    },
    /// Windows that kept changing while they were read.
    Unsettled { windows: u64 },
    /// No successful run since `since` (the last success, or the first run if none).
    Stale {
        since: DateTime<Utc>,
        succeeded_before: bool,
        after: Duration,
    },
}

impl Event {
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Failed { .. } => EventKind::Failed,
            Event::Parked { .. } => EventKind::Parked,
            Event::Unsettled { .. } => EventKind::Unsettled,
            Event::Stale { .. } => EventKind::Stale,
        }
    }
}

/// One event of one flow, at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub flow: String,
    /// The flow file as the user named it, for the commands the message suggests.
    pub flow_file: String,
    pub at: DateTime<Utc>,
    pub event: Event,
}

/// The title and markdown text of an alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub title: String,
    pub text: String,
}

/// A span as people say it: `7h`, `2d 3h`, `45m`.
fn span(duration: Duration) -> String {
    let minutes = duration.num_minutes().max(0);
    let (days, hours, minutes) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    match (days, hours, minutes) {
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h{m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d{h}h"),
    }
}

fn cut(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// The bilingual title and text of `alert`.
pub fn message(alert: &Alert) -> Message {
    let flow = &alert.flow;
    let file = &alert.flow_file;
    let (title, mut lines) = match &alert.event {
        Event::Failed { error } => (
            format!("【engine】流程 {flow} 运行失败 / run failed"),
            vec![
                format!("错误 / error: {}", cut(error, 600)),
                format!(
                    "光标未移动，下次运行会重读 / the cursor did not move; the next run reads again: `engine state {file}`"
                ),
            ],
        ),
        Event::Parked { count, reasons } => {
            let mut lines = vec![format!(
                "本次运行搁置 {count} 条记录 / {count} record(s) parked in this run:"
            )];
            lines.extend(
                reasons
                    .iter()
                    .map(|(key, reason)| format!("- `{key}`: {}", cut(reason, MAX_REASON_CHARS))),
            );
            let more = count.saturating_sub(reasons.len() as u64);
            if more > 0 {
                lines.push(format!("- 另有 {more} 条 / and {more} more"));
            }
            lines.push(format!(
                "查看 / list: `engine failed {file}`；修正后重发 / resend once fixed: `engine retry {file}`"
            ));
            (
                format!("【engine】流程 {flow} 有 {count} 条记录被搁置 / {count} record(s) parked"),
                lines,
            )
        }
        Event::Unsettled { windows } => (
            format!(
                "【engine】流程 {flow} 有 {windows} 个时间窗口仍在变化 / {windows} window(s) kept changing"
            ),
            vec![format!(
                "读取期间数据一直在变，光标停在其前，下次运行重读 / the source kept changing while it was read; the cursor stays before it and the next run reads it again"
            )],
        ),
        Event::Stale {
            since,
            succeeded_before,
            after,
        } => {
            let late = span(alert.at - *since);
            let last = match succeeded_before {
                true => format!(
                    "上次成功 / last success: {} (Asia/Shanghai)",
                    wall_clock(*since)
                ),
                false => format!(
                    "自首次运行 {} 起从未成功 / never succeeded since the first run at {} (Asia/Shanghai)",
                    wall_clock(*since),
                    wall_clock(*since)
                ),
            };
            (
                format!(
                    "【engine】流程 {flow} 已 {late} 没有成功运行 / no successful run for {late}"
                ),
                vec![
                    last,
                    format!("阈值 / stale_after: {}", span(*after)),
                    format!("查看 / see: `engine state {file}`"),
                ],
            )
        }
    };
    lines.push(format!(
        "时间 / at: {} (Asia/Shanghai)",
        wall_clock(alert.at)
    ));
    let mut text = format!("### {title}\n\n{}", lines.join("\n\n"));
    if text.len() > MAX_TEXT_BYTES {
        let mut end = MAX_TEXT_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    Message { title, text }
}

/// The details of an event for the generic webhook's JSON.
fn details(event: &Event) -> Json {
    match event {
        Event::Failed { error } => json!({ "error": error }),
        Event::Parked { count, reasons } => json!({
            "count": count,
            "reasons": reasons.iter().map(|(key, reason)| json!({ "key": key, "reason": reason })).collect::<Vec<_>>(),
        }),
        Event::Unsettled { windows } => json!({ "windows": windows }),
        Event::Stale {
            since,
            succeeded_before,
            after,
        } => json!({
            "since": since.to_rfc3339(),
            "succeeded_before": succeeded_before,
            "stale_after_seconds": after.num_seconds(),
        }),
    }
}

/// The JSON event a generic webhook receives (documented in `docs/alerts.md`).
pub fn event_json(alert: &Alert) -> Json {
    let message = message(alert);
    json!({
        "source": "engine",
        "event": alert.event.kind().as_str(),
        "flow": alert.flow,
        "flow_file": alert.flow_file,
        "at": alert.at.to_rfc3339(),
        "title": message.title,
        "text": message.text,
        "details": details(&alert.event),
    })
}

/// A request ready to send: where, which headers, which JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub url: reqwest::Url,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A channel with its settings evaluated (secrets in clear: never print this).
pub struct Resolved {
    pub kind: ChannelKind,
    pub url: reqwest::Url,
    pub secret: Option<Secret>,
    pub headers: Vec<(String, String)>,
}

/// The request `channel` is sent for `alert`, signed with the time `now`.
pub fn outgoing(channel: &Resolved, alert: &Alert, now: DateTime<Utc>) -> Outgoing {
    let message = message(alert);
    let mut url = channel.url.clone();
    let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
    let body = match channel.kind {
        ChannelKind::Dingtalk => {
            if let Some(secret) = &channel.secret {
                let timestamp = now.timestamp_millis();
                // `append_pair` URL-encodes the base64 (`+`, `/`, `=`), as DingTalk asks.
                url.query_pairs_mut()
                    .append_pair("timestamp", &timestamp.to_string())
                    .append_pair("sign", &sign::dingtalk(secret.expose(), timestamp));
            }
            json!({ "msgtype": "markdown", "markdown": { "title": message.title, "text": message.text } })
        }
        ChannelKind::Wecom => {
            json!({ "msgtype": "markdown", "markdown": { "content": message.text } })
        }
        ChannelKind::Feishu => {
            // Feishu's text messages do not render markdown: the title line goes without `###`.
            let text = message.text.trim_start_matches("### ").to_string();
            let mut body = json!({ "msg_type": "text", "content": { "text": text } });
            if let Some(secret) = &channel.secret {
                let timestamp = now.timestamp();
                body["timestamp"] = json!(timestamp.to_string());
                body["sign"] = json!(sign::feishu(secret.expose(), timestamp));
            }
            body
        }
        ChannelKind::Webhook => event_json(alert),
    };
    let body = serde_json::to_vec(&body).expect("JSON serialises");
    if channel.kind == ChannelKind::Webhook {
        headers.extend(channel.headers.iter().cloned());
        if let Some(secret) = &channel.secret {
            let timestamp = now.timestamp();
            headers.push(("X-Engine-Timestamp".into(), timestamp.to_string()));
            headers.push((
                "X-Engine-Signature".into(),
                sign::webhook(secret.expose(), timestamp, &body),
            ));
        }
    }
    Outgoing { url, headers, body }
}

/// What a receiver's answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Delivered,
    /// The receiver refused the message; sending it again would not help.
    Refused(String),
    /// Busy or down: worth another attempt.
    Retry(String),
}

/// Classify an answer: HTTP status first, then the robots' `errcode`/`code`.
pub fn classify(kind: ChannelKind, status: u16, body: &[u8]) -> Answer {
    if status == 429 || status >= 500 {
        return Answer::Retry(format!("HTTP {status}"));
    }
    if !(200..300).contains(&status) {
        return Answer::Refused(format!("HTTP {status}"));
    }
    if kind == ChannelKind::Webhook {
        return Answer::Delivered;
    }
    let Ok(json) = serde_json::from_slice::<Json>(body) else {
        return Answer::Refused(format!(
            "the answer is not JSON: `{}`",
            cut(&String::from_utf8_lossy(body), 100)
        ));
    };
    let (code, text) = match kind {
        ChannelKind::Feishu => (
            // Newer bots answer `code`, older ones `StatusCode`.
            json.get("code").or_else(|| json.get("StatusCode")),
            json.get("msg").or_else(|| json.get("StatusMessage")),
        ),
        _ => (json.get("errcode"), json.get("errmsg")),
    };
    let name = if kind == ChannelKind::Feishu {
        "code"
    } else {
        "errcode"
    };
    match code.and_then(Json::as_i64) {
        Some(0) => Answer::Delivered,
        Some(code) => Answer::Refused(format!(
            "{name} {code}: {}",
            text.and_then(Json::as_str).unwrap_or("no message")
        )),
        None => Answer::Refused(format!(
            "the answer has no `{name}`: `{}`",
            cut(&json.to_string(), 100)
        )),
    }
}

#[cfg(test)]
mod tests;
