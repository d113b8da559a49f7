//! Sending alerts: the one IO part of `alert`, bounded in time and never failing the run.
//!
//! Every (alert, channel) pair is sent concurrently, each attempt within [`ATTEMPT_TIMEOUT`],
//! at most [`ATTEMPTS`] attempts when the receiver is busy or unreachable (an answer that
//! refuses the message is not retried), and the whole lot within [`DEADLINE`]. What happened
//! comes back as [`Report`]s that name the channel and the receiver's host only: webhook
//! URLs carry tokens, so neither URLs nor secrets are ever put in a report, and no redirect is
//! followed. At most [`MAX_ANSWER`] bytes of an answer are read.

use std::time::Duration;

use chrono::Utc;
use tokio::task::JoinSet;

use crate::alert::compile::Alerts;
use crate::alert::message::{self, Alert, Answer, Outgoing, Resolved};
use crate::alert::raw::{ChannelKind, EventKind};
use crate::request::Env;
use crate::secret::Secret;

/// One attempt's time limit.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(4);
/// Attempts per message when the receiver is busy or unreachable.
pub const ATTEMPTS: u32 = 3;
/// Pause before the second and third attempts.
const BACKOFF: [Duration; 2] = [Duration::from_millis(300), Duration::from_secs(1)];
/// The most of an answer read (more is not read at all).
const MAX_ANSWER: usize = 64 * 1024;
/// Everything sent after a run, at most this long.
pub const DEADLINE: Duration = Duration::from_secs(12);

/// What became of one alert on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub channel: String,
    /// `host[:port]` of the receiver, or empty when the channel was skipped before resolving.
    pub host: String,
    pub event: EventKind,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    NotSent(String),
    /// Environment variables the channel needs are unset.
    Skipped(Vec<String>),
}

impl Report {
    /// The line printed on stderr.
    pub fn line(&self) -> String {
        let event = self.event.as_str();
        let at = if self.host.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.host)
        };
        match &self.outcome {
            Outcome::Sent => format!("alert `{event}` sent to `{}`{at}", self.channel),
            Outcome::NotSent(reason) => {
                format!(
                    "alert `{event}` not sent to `{}`{at}: {reason}",
                    self.channel
                )
            }
            Outcome::Skipped(vars) => format!(
                "alert `{event}` not sent to `{}`: environment variable{} {} not set",
                self.channel,
                if vars.len() == 1 { "" } else { "s" },
                vars.iter()
                    .map(|v| format!("`{v}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

fn host_of(url: &reqwest::Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_string(),
        _ => String::new(),
    }
}

/// Send `alerts` to the channels their rules name; wait at most [`DEADLINE`].
pub async fn send(config: &Alerts, alerts: &[Alert], env: &Env) -> Vec<Report> {
    // rustls needs one crypto provider per process; installing it again is a no-op.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .connect_timeout(ATTEMPT_TIMEOUT)
        // A webhook URL carries its token and a channel its headers and signature: a redirect
        // would take them (and, in `Referer`, the URL) to wherever it points, so none is
        // followed; a 3xx is a refusal like any other non-2xx.
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .user_agent(concat!("engine/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(client) => client,
        Err(_) => return Vec::new(),
    };
    let mut reports = Vec::new();
    let mut tasks = JoinSet::new();
    for alert in alerts {
        let event = alert.event.kind();
        for channel in config.channels_for(&alert.flow, event) {
            let report = |host: String, outcome| Report {
                channel: channel.name.clone(),
                host,
                event,
                outcome,
            };
            let missing = config.missing_env(channel, env);
            if !missing.is_empty() {
                reports.push(report(String::new(), Outcome::Skipped(missing)));
                continue;
            }
            let resolved = config.settings(channel, env).and_then(|settings| {
                let url = reqwest::Url::parse(&settings.url)
                    .ok()
                    .filter(|url| matches!(url.scheme(), "http" | "https"))
                    .ok_or("the URL is not an http(s) URL once its variables are read")?;
                Ok(Resolved {
                    kind: channel.kind,
                    url,
                    secret: settings.secret.filter(|s| !s.is_empty()).map(Secret::new),
                    headers: settings.headers,
                })
            });
            let resolved = match resolved {
                Ok(resolved) => resolved,
                Err(reason) => {
                    reports.push(report(String::new(), Outcome::NotSent(reason.to_string())));
                    continue;
                }
            };
            let host = host_of(&resolved.url);
            let (client, alert, pending) =
                (client.clone(), alert.clone(), report(host, Outcome::Sent));
            tasks.spawn(async move {
                let outcome = deliver(&client, &resolved, &alert).await;
                Report { outcome, ..pending }
            });
        }
    }
    let collect = async {
        let mut done = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            if let Ok(report) = joined {
                done.push(report);
            }
        }
        done
    };
    match tokio::time::timeout(DEADLINE, collect).await {
        Ok(done) => reports.extend(done),
        Err(_) => reports.push(Report {
            channel: "*".into(),
            host: String::new(),
            event: alerts.first().map_or(EventKind::Failed, |a| a.event.kind()),
            outcome: Outcome::NotSent(format!(
                "gave up after {}s: some alerts may not have been sent",
                DEADLINE.as_secs()
            )),
        }),
    }
    reports.sort_by(|a, b| (a.event, &a.channel).cmp(&(b.event, &b.channel)));
    reports
}

/// One message to one receiver, retried while it is busy or unreachable.
async fn deliver(client: &reqwest::Client, channel: &Resolved, alert: &Alert) -> Outcome {
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if let Some(pause) = attempt.checked_sub(1).and_then(|i| BACKOFF.get(i as usize)) {
            tokio::time::sleep(*pause).await;
        }
        // Signed afresh for each attempt: the receivers refuse old timestamps.
        let request = message::outgoing(channel, alert, Utc::now());
        match attempt_once(client, channel.kind, request).await {
            Answer::Delivered => return Outcome::Sent,
            Answer::Refused(reason) => return Outcome::NotSent(reason),
            Answer::Retry(reason) => last = reason,
        }
    }
    Outcome::NotSent(format!("{last} after {ATTEMPTS} attempts"))
}

async fn attempt_once(client: &reqwest::Client, kind: ChannelKind, request: Outgoing) -> Answer {
    let mut builder = client.post(request.url).body(request.body);
    for (name, value) in request.headers {
        builder = builder.header(name, value);
    }
    let response = match builder.send().await {
        Ok(response) => response,
        // The error's own text would quote the URL, token included: say what kind it was.
        Err(err) if err.is_timeout() => return Answer::Retry("timed out".into()),
        Err(err) if err.is_connect() => return Answer::Retry("cannot connect".into()),
        Err(_) => return Answer::Retry("the request failed".into()),
    };
    let status = response.status().as_u16();
    message::classify(kind, status, &answer_body(response).await)
}

/// The first [`MAX_ANSWER`] bytes of an answer: a robot's answer is a line of JSON, and an
/// endless one must not fill the memory within the attempt's time.
async fn answer_body(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_ANSWER - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_ANSWER {
            break;
        }
    }
    body
}
