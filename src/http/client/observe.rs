//! What became of each request a client sent, for whoever counts them: the [`Outcome`] of an
//! answer (pure, from its verdict) and the [`CallObserver`] a client tells. Metrics implement
//! the observer (`serve::calls`); the client knows nothing of them.

use std::time::Duration;

use crate::http::envelope::Verdict;

/// What became of one request sent (one attempt of a call), as metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// An answer the caller reads: success, or per-record results.
    Ok,
    /// A definite failure of the call (the envelope's message, no record processed).
    Failed,
    /// Refused as a whole (the envelope's `fatal`).
    Refused,
    /// A transient refusal (the envelope's `retryable`): busy, a conflict.
    Busy,
    /// Called too often (the envelope's `throttled`, or HTTP 429).
    Throttled,
    /// The session was gone: logged in again.
    SessionLost,
    /// HTTP 5xx or 408, or a 2xx that is not JSON, on a read: tried again.
    ServerError,
    /// An answer that is not JSON (and not 2xx).
    BadResponse,
    /// A write whose outcome is unknown (no answer, a 5xx, cut off): looked up by the writer.
    Uncertain,
    /// The server could not be reached or gave no answer to a read.
    NetworkError,
    /// A read cut off by `http.call_timeout`.
    Timeout,
}

impl Outcome {
    /// The `outcome` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Refused => "refused",
            Outcome::Busy => "busy",
            Outcome::Throttled => "throttled",
            Outcome::SessionLost => "session_lost",
            Outcome::ServerError => "server_error",
            Outcome::BadResponse => "bad_response",
            Outcome::Uncertain => "uncertain",
            Outcome::NetworkError => "network_error",
            Outcome::Timeout => "timeout",
        }
    }
}

/// Told of every request a client sends and every wait for its rate limit.
pub trait CallObserver: Send + Sync {
    /// A request of `operation` to `connector` ended with `outcome` after `took` (the request
    /// alone, not the waits before it; logins are not counted).
    fn request(&self, connector: &str, operation: &str, outcome: Outcome, took: Duration);
    /// A call of `connector` waited `waited` for its rate limit or a throttling pause.
    fn rate_limit_wait(&self, connector: &str, waited: Duration);
}

/// What a request's answer was, beside its verdict.
#[derive(Debug, Clone, Copy)]
pub(super) struct Seen {
    /// Called too often (the verdict, or HTTP 429).
    pub throttled: bool,
    /// A 5xx, 408 or unparsable 2xx that is not an answer in the API's own terms.
    pub transient: bool,
    /// A read (repeating it is harmless), not a write.
    pub idempotent: bool,
}

/// The outcome metrics count for an answered request (`verdict`: none when the body is not JSON).
pub(super) fn outcome(verdict: Option<&Verdict>, seen: Seen) -> Outcome {
    if seen.throttled {
        return Outcome::Throttled;
    }
    if seen.transient {
        return match seen.idempotent {
            true => Outcome::ServerError,
            false => Outcome::Uncertain,
        };
    }
    match verdict {
        None => Outcome::BadResponse,
        Some(Verdict::Success) => Outcome::Ok,
        Some(Verdict::Failed { .. }) => Outcome::Failed,
        Some(Verdict::Reauth { .. }) => Outcome::SessionLost,
        Some(Verdict::Retryable { .. }) => Outcome::Busy,
        Some(Verdict::Throttled { .. }) => Outcome::Throttled,
        Some(Verdict::Fatal { .. }) => Outcome::Refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_counted_by_what_the_client_made_of_it() {
        let message = || "m".to_string();
        let seen = |throttled, transient, idempotent| Seen {
            throttled,
            transient,
            idempotent,
        };
        let cases = [
            (
                Some(Verdict::Success),
                seen(false, false, true),
                Outcome::Ok,
            ),
            (
                Some(Verdict::Success),
                seen(true, false, false),
                Outcome::Throttled,
            ),
            // A 5xx to a read is tried again; to a write it is looked up.
            (None, seen(false, true, true), Outcome::ServerError),
            (None, seen(false, true, false), Outcome::Uncertain),
            (None, seen(false, false, true), Outcome::BadResponse),
            (
                Some(Verdict::Retryable {
                    code: None,
                    message: message(),
                }),
                seen(false, false, false),
                Outcome::Busy,
            ),
            (
                Some(Verdict::Fatal {
                    code: None,
                    message: message(),
                }),
                seen(false, false, true),
                Outcome::Refused,
            ),
            (
                Some(Verdict::Failed {
                    code: None,
                    message: message(),
                }),
                seen(false, false, false),
                Outcome::Failed,
            ),
            (
                Some(Verdict::Reauth { message: message() }),
                seen(false, false, true),
                Outcome::SessionLost,
            ),
            (
                Some(Verdict::Throttled {
                    code: None,
                    message: message(),
                }),
                seen(true, false, true),
                Outcome::Throttled,
            ),
        ];
        for (verdict, seen, expected) in cases {
            assert_eq!(
                outcome(verdict.as_ref(), seen),
                expected,
                "{verdict:?} {seen:?}"
            );
        }
    }
}
