//! What one attempt's answer says, and what the call does about it: the body parsed (lean when
//! the reader allows it), the envelope's verdict, a throttle or a transient failure; then a
//! lost session is logged in again, a retryable one waited for, a refusal as a whole ended.
//! The attempt loop itself (`Client::attempts`) sends and repeats.

use std::sync::Arc;

use serde_json::Value as Json;

use crate::auth::Generation;
use crate::config::model::Operation;
use crate::config::raw::OperationKind;
use crate::error::{Error, ErrorKind};
use crate::http::envelope::{self, Verdict};
use crate::http::lean;
use crate::http::retry::backoff;
use crate::http::transport::Response;

use super::{Call, CallError, Client, REAUTH_LIMIT, Reply};

/// An answer, read.
pub(super) struct Answer {
    pub status: u16,
    /// The body (`Err`: not JSON, and not a text refusal about one record).
    pub parsed: Result<Arc<Json>, serde_json::Error>,
    pub texts: Option<Vec<Arc<str>>>,
    /// The envelope's verdict on a parsed body (or a 401 a token strategy renews on).
    pub verdict: Option<Verdict>,
    /// Why the API asked to be called less often, if it did (its envelope, or HTTP 429).
    pub throttled: Option<String>,
    /// A failure another attempt may not meet (HTTP 5xx or 408 not answered in the API's own
    /// terms, or a 2xx whose body is not JSON).
    pub transient: bool,
}

/// What the attempt loop does after a verdict.
pub(super) enum Next {
    /// Send again; `counted`: as another attempt (a wait for a retryable answer), or not (a
    /// session logged in anew).
    Again {
        counted: bool,
    },
    Done(Reply),
}

impl Client {
    /// Read `response` to `call`.
    pub(super) fn read_answer(&self, call: &Call<'_>, response: &Response) -> Answer {
        let status = response.status;
        // To a token strategy, 401 means the token is gone, whatever the body says.
        let unauthorized = status == 401 && self.auth.renews_on_401();
        let mut texts = None;
        let parsed = match unauthorized {
            true => Ok(Arc::new(Json::Null)),
            false => lean::parse(call.lean, &response.body)
                .map(|parsed| {
                    texts = parsed.texts;
                    Arc::new(parsed.body)
                })
                .or_else(|err| refusal_text(call.operation, status, &response.body).ok_or(err)),
        };
        let envelope = call
            .operation
            .envelope
            .as_ref()
            .expect("every operation has an envelope after compiling");
        let verdict = match unauthorized {
            true => Some(Verdict::Reauth {
                message: "HTTP 401 Unauthorized".into(),
            }),
            false => parsed.as_ref().ok().map(|body| {
                envelope::classify(envelope, call.envelopes, status, &response.headers, body)
            }),
        };
        let throttled = match &verdict {
            Some(Verdict::Throttled { code, message }) => Some(match code {
                Some(code) => format!("{message} ({code})"),
                None => message.clone(),
            }),
            _ if status == 429 => Some(format!("answered HTTP 429: {}", snippet(&response.body))),
            _ => None,
        };
        // A server error that still answers in the API's own terms (the session is gone, or
        // per-record results: some servers send Kingdee's `ErrorCode: 500` as the HTTP
        // status) is an answer, not a transient failure.
        let answered = matches!(verdict, Some(Verdict::Reauth { .. }))
            || parsed.as_ref().is_ok_and(|body| {
                call.operation
                    .results
                    .as_ref()
                    .is_some_and(|results| results.mentions_records(body))
            });
        let transient = !answered
            && (status >= 500
                || status == 408
                || (parsed.is_err() && (200..300).contains(&status)));
        Answer {
            status,
            parsed,
            texts,
            verdict,
            throttled,
            transient,
        }
    }

    /// Act on the verdict of a parsed answer that is neither a throttle nor transient.
    /// `attempt` of `attempts`, `reauths` so far (counted here), and the session `generation`
    /// the request went out on.
    pub(super) async fn on_verdict(
        &self,
        call: &Call<'_>,
        (answer, response): (Answer, Response),
        (attempt, attempts): (u32, u32),
        reauths: &mut u32,
        generation: Generation,
    ) -> Result<Next, CallError> {
        let status = answer.status;
        let Ok(body) = answer.parsed else {
            return Err(CallError::Unavailable(
                Error::new(
                    ErrorKind::Api,
                    format!(
                        "{} answered HTTP {status}: {}",
                        self.name,
                        snippet(&response.body)
                    ),
                )
                .with_hint("check the connector's base URL and the operation's path"),
            ));
        };
        let reply = |verdict| Reply {
            status,
            headers: response.headers,
            body,
            texts: answer.texts,
            verdict,
        };
        match answer.verdict.expect("a parsed body has a verdict") {
            Verdict::Reauth { message } => {
                *reauths += 1;
                if *reauths > REAUTH_LIMIT {
                    return Err(CallError::Auth(
                        Error::new(ErrorKind::Auth, format!("{} refused the session again after logging in anew: {message}", self.name))
                            .with_hint("check the credentials (user name, app id and secret, or password) and that the user may call the WebAPI"),
                    ));
                }
                (self.notify)(format!(
                    "{}: session lost ({message}); logging in again",
                    self.name
                ));
                if *reauths > 1 {
                    // Lost again at once: give the server a moment before the next session.
                    self.sleeper
                        .sleep(backoff(&self.retry, *reauths - 1, self.jitter.next()))
                        .await;
                }
                if let Some(arrival) = call.arrival {
                    // The early request went out on the lost session: it ends first.
                    arrival.withdraw().await;
                }
                self.login(Some(generation), call.deadline).await?;
                if !call.idempotent {
                    // "Session lost" should mean the call was not carried out, but a site
                    // that saved and then answered so would get a second copy from a blind
                    // resend: the writer looks its records up first, on the new session.
                    return Err(CallError::Uncertain(Error::new(
                        ErrorKind::Api,
                        format!("{} answered a write with `{message}`", self.name),
                    )));
                }
                Ok(Next::Again { counted: false })
            }
            verdict @ Verdict::Retryable { .. } if !call.idempotent => {
                // A write refused as busy may still have saved some of its records (a
                // conflict on one bill): the caller reads the reply record by record.
                Ok(Next::Done(reply(verdict)))
            }
            Verdict::Retryable { code, message } => {
                let what = match code {
                    Some(code) => format!("{message} ({code})"),
                    None => message,
                };
                if attempt < attempts {
                    self.pause_within(call.deadline, attempt, &what).await?;
                    return Ok(Next::Again { counted: true });
                }
                Err(CallError::Unavailable(Error::new(
                    ErrorKind::Network,
                    format!(
                        "{} kept answering `{what}` through {attempts} attempts",
                        self.name
                    ),
                )))
            }
            Verdict::Fatal { code, message } => {
                let code = code.map(|c| format!(" ({c})")).unwrap_or_default();
                Err(CallError::Refused(
                    Error::new(
                        ErrorKind::Api,
                        format!(
                            "{} refused `{}` as a whole: {message}{code}",
                            self.name, call.operation.name
                        ),
                    )
                    .with_hint("this concerns the connection, the user's permissions or the account, not one record; fix it on the API's side and run again (no record was parked, the cursor did not move)"),
                ))
            }
            verdict => Ok(Next::Done(reply(verdict))),
        }
    }
}

/// Some answers about one record come without a JSON body: a write refused as invalid or a
/// duplicate (400, 409, 422), a one-record write's success with an empty body (`201` with only
/// a `Location`), a lookup's "no such record" (404, 410). Their text (`null` when empty) is the
/// body the envelope, `results` and `rows.not_found` read. Any other answer without JSON (a
/// wrong URL, a refused credential, a 2xx cut short) still fails the call.
pub(super) fn refusal_text(operation: &Operation, status: u16, body: &[u8]) -> Option<Arc<Json>> {
    let about_a_record = match operation.kind {
        OperationKind::Write if (200..300).contains(&status) => {
            operation.batch.is_none() && body.trim_ascii().is_empty()
        }
        OperationKind::Write => matches!(status, 400 | 409 | 422),
        OperationKind::Lookup => matches!(status, 404 | 410),
        _ => false,
    };
    if !about_a_record {
        return None;
    }
    // Kept as the parked record's message, and a text body may echo the whole request (with
    // its personal data): capped as `snippet` caps what errors quote.
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let mut kept: String = text.chars().take(REFUSAL_CHARS).collect();
    if kept.len() < text.len() {
        kept.push('…');
    }
    Some(Arc::new(match kept.is_empty() {
        true => Json::Null,
        false => Json::String(kept),
    }))
}

/// The most characters of a text refusal kept as a record's message.
pub(super) const REFUSAL_CHARS: usize = 300;

/// The start of a body, for messages.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "an empty body".to_string();
    }
    let mut short: String = text.chars().take(160).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    format!("`{}`", short.replace('\n', " "))
}
