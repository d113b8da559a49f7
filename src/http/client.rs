//! Calling a connector's operations: prepare, sign, rate-limit, send, classify, retry.
//!
//! Reads are idempotent: network failures, HTTP 5xx and `retryable` envelopes are retried
//! with backoff. A write that may have been processed (a timeout, a dropped connection, a
//! 5xx) is never repeated here: it comes back as [`CallError::Uncertain`] and the writer
//! verifies it by looking the records up; a `retryable` answer to a write comes back as a
//! reply, because some of its records may have been saved. A `throttled` answer (or HTTP 429)
//! was not processed: every call waits, then it is repeated, writes included, unless its
//! `Retry-After` asks for more than `http.retry.max_retry_after`: then the call fails at once,
//! saying what the server asked. A lost session means the request was not processed: the
//! strategy logs in again and the request is sent again. Every call passes the connector's
//! rate limit, shared by all concurrent callers. A call, its retries and waits included, ends
//! within `http.call_timeout` (a reader's call that another request was sent early on waits
//! beyond it for that request to end, itself within its own `call_timeout`: see `arrival`);
//! failures that no retry can change (a TLS certificate refused, a redirect away from the base
//! URL, an answer over `http.max_response_bytes`) end it at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use serde_json::Value as Json;

use crate::auth::{self, Authenticator, Generation};
use crate::config::model::{Connector, Operation, Retry};
use crate::config::raw::Encoding;
use crate::error::{Error, ErrorKind};
use crate::http::arrival::Arrival;
use crate::http::envelope::Verdict;
use crate::http::lean::Lean;
use crate::http::proxy::Proxies;
use crate::http::ratelimit::RateLimiter;
use crate::http::retry::{Jitter, Sleeper, backoff};
use crate::http::transport::{Body, Request, Response, SendError, Transport, join_url};
use crate::request::{Env, Parts};
use crate::template::TemplateSet;
use crate::time::{Clock, format_span};
use answer::Next;
pub(crate) use answer::snippet;
pub use observe::{CallObserver, Outcome};
use observe::{Seen, outcome};

/// What a call carries.
#[derive(Debug, Clone)]
pub enum Payload {
    /// Parameters, sent as the operation's `encoding` says (form or query).
    Fields(serde_json::Map<String, Json>),
    /// A JSON body.
    Json(Json),
    /// A JSON body, serialised already (a write's: its records written where they are lent).
    Serialised(Vec<u8>),
    /// A GET of this full URL, as an API gave it for the next page (its origin already
    /// checked against `base_url` by the pager); the operation's path and parameters are not sent.
    Url(String),
}

/// A response the API gave a verdict on (success or a definite failure).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// The response headers, names in lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Arc<Json>,
    /// The text of each record of a body parsed lean (see `lean`): the records in `body` then
    /// hold only the fields the flow reads. `None`: parsed whole.
    pub texts: Option<Vec<Arc<str>>>,
    pub verdict: Verdict,
}

/// Why a call produced no reply.
#[derive(Debug)]
pub enum CallError {
    /// The API could not be reached, or kept refusing transiently, through every retry.
    /// Nothing was processed (or, for reads, it does not matter).
    Unavailable(Error),
    /// A write may have been processed: verify before sending it again.
    Uncertain(Error),
    /// The credentials are refused.
    Auth(Error),
    /// The API refused the call as a whole (the envelope's `fatal`): nothing was processed and
    /// no record could change that.
    Refused(Error),
}

impl CallError {
    pub fn into_error(self) -> Error {
        match self {
            CallError::Unavailable(err)
            | CallError::Uncertain(err)
            | CallError::Auth(err)
            | CallError::Refused(err) => err,
        }
    }
}

/// The origin of `url` (`scheme://host[:port]`), or nothing when it cannot be parsed.
fn origin_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .map(|url| url.origin().ascii_serialization())
        .unwrap_or_default()
}

/// Reports something worth telling the user while a call goes on (a retry, a wait).
pub type Notify = Arc<dyn Fn(String) + Send + Sync>;

/// Where a call is in its retries.
#[derive(Debug, Clone, Copy)]
struct RetryState {
    attempt: u32,
    attempts: u32,
    idempotent: bool,
    deadline: Instant,
}

/// One call's fixed parts, as [`Client::attempts`] repeats it.
struct Call<'a> {
    operation: &'a Operation,
    envelopes: &'a TemplateSet,
    parts: &'a Parts,
    idempotent: bool,
    deadline: Instant,
    arrival: Option<&'a Arrival>,
    after: Option<&'a Arrival>,
    lean: Option<&'a Lean>,
}

/// What a reader adds to a call. `arrival` is told when an answer is in (HTTP 2xx, read whole,
/// before it is parsed) and withdrawn when another attempt follows or the answer is not a
/// success (see `arrival`); `after` is the arrival this call was sent on, if any: once that is
/// withdrawn, this call makes no further attempt. A reader sends its next request on the
/// arrival, while it reads this answer. `lean`: how to parse the answer lean (see `lean`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Reading<'a> {
    pub arrival: Option<&'a Arrival>,
    pub after: Option<&'a Arrival>,
    pub lean: Option<&'a Lean>,
}

/// A connector, resolved for one run.
pub struct Client {
    pub name: String,
    base_url: String,
    headers: Vec<(String, String)>,
    transport: Transport,
    /// The transport of a token or login endpoint on another origin than `base_url`, with
    /// the proxy (or none) the environment names for that origin: `NO_PROXY` holds for it too.
    auth_transport: Option<Transport>,
    auth: Authenticator,
    limiter: RateLimiter,
    retry: Retry,
    call_timeout: Duration,
    jitter: Jitter,
    sleeper: Sleeper,
    clock: Arc<dyn Clock>,
    notify: Notify,
    /// Retries waited for so far (busy, throttled, 5xx, timeouts): the target pushing back,
    /// which the adaptive write concurrency answers.
    pauses: AtomicU64,
    observer: Option<Arc<dyn CallObserver>>,
}

/// How many times in a row one call answers a lost session by logging in again. Sessions
/// that die fast (a short server lifetime, concurrent callers sharing one) can take a few;
/// credentials the server never accepts fail at the login itself, or here.
const REAUTH_LIMIT: u32 = 5;

impl Client {
    /// Resolve `connector` (its templates are in `templates`) with the environment.
    pub fn new(
        connector: &Connector,
        templates: &TemplateSet,
        env: &Env,
        sleeper: Sleeper,
        clock: Arc<dyn Clock>,
        notify: Notify,
    ) -> crate::error::Result<Client> {
        let name = connector.name.clone();
        let base_url = auth::setting(
            &connector.base_url,
            templates,
            env,
            &format!("`base_url` of connector `{name}`"),
        )?;
        if !base_url.starts_with("http://") && !base_url.starts_with("https://") {
            let error = Error::config(format!(
                "`base_url` of connector `{name}` is `{base_url}`, not an http(s) URL"
            ));
            return Err(match base_url.get(..7) {
                Some(scheme) if scheme.eq_ignore_ascii_case("file://") => {
                    error.with_hint(crate::file::FILE_URL_HINT)
                }
                _ => error,
            });
        }
        let mut headers = Vec::new();
        for (header, leaf) in &connector.headers {
            headers.push((
                header.clone(),
                auth::setting(
                    leaf,
                    templates,
                    env,
                    &format!("header `{header}` of connector `{name}`"),
                )?,
            ));
        }
        let auth = Authenticator::resolve(&connector.auth, templates, env, &name)?;
        let proxies = Proxies::from_env(env);
        let auth_transport = match auth.endpoint_url() {
            Some(url) if origin_of(url) != origin_of(&base_url) => {
                Some(Transport::new(&connector.http, url, &proxies)?)
            }
            _ => None,
        };
        let seed = clock.now().timestamp_nanos_opt().unwrap_or_default() as u64;
        Ok(Client {
            transport: Transport::new(&connector.http, &base_url, &proxies)?,
            auth_transport,
            limiter: RateLimiter::new(connector.http.rate_limit),
            retry: connector.http.retry,
            call_timeout: connector
                .http
                .call_timeout
                .to_std()
                .unwrap_or(Duration::from_secs(300)),
            jitter: Jitter::new(seed),
            name,
            base_url,
            headers,
            auth,
            sleeper,
            clock,
            notify,
            pauses: AtomicU64::new(0),
            observer: None,
        })
    }

    /// Tell `observer` of every request and rate-limit wait of this client.
    pub fn observed_by(mut self, observer: Option<Arc<dyn CallObserver>>) -> Client {
        self.observer = observer;
        self
    }

    /// Tell the observer, if any, that a request of `operation` started at `started` ended so.
    fn observe(&self, operation: &str, outcome: Outcome, started: Instant) {
        if let Some(observer) = &self.observer {
            observer.request(&self.name, operation, outcome, started.elapsed());
        }
    }

    /// Wait for the rate limit, telling the observer how long that took.
    async fn acquire(&self) {
        let waited = self.limiter.acquire(&self.sleeper).await;
        if let (Some(observer), false) = (&self.observer, waited.is_zero()) {
            observer.rate_limit_wait(&self.name, waited);
        }
    }

    /// Retries waited for so far, by every call of this client.
    pub fn pauses(&self) -> u64 {
        self.pauses.load(Ordering::Relaxed)
    }

    /// Where the connector's requests go, for the run header: its origin, and the proxy; and
    /// the same for a token or login endpoint on another origin.
    pub fn route(&self) -> String {
        let way = |transport: &Transport| match transport.proxy() {
            Some(proxy) => format!(" via proxy {proxy}"),
            None => ", direct".to_string(),
        };
        let mut route = format!(
            "`{}` at {}{}",
            self.name,
            origin_of(&self.base_url),
            way(&self.transport)
        );
        if let (Some(transport), Some(url)) = (&self.auth_transport, self.auth.endpoint_url()) {
            route += &format!("; its login at {}{}", origin_of(url), way(transport));
        }
        route
    }

    /// Log in, for strategies that need a session before the first call.
    pub async fn start(&self) -> Result<(), CallError> {
        let deadline = Instant::now() + self.call_timeout;
        match tokio::time::timeout_at(deadline, self.login(None, deadline)).await {
            Ok(result) => result,
            Err(_) => Err(CallError::Unavailable(self.overdue("log in", None))),
        }
    }

    /// Log in (at the start, or anew after the session of `generation` was lost), repeating
    /// a login that failed for a transient reason: logging in changes nothing. Refused
    /// credentials and permanent failures are not repeated.
    async fn login(&self, lost: Option<Generation>, deadline: Instant) -> Result<(), CallError> {
        let attempts = self.retry.attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.acquire().await;
            let transport = self.auth_transport.as_ref().unwrap_or(&self.transport);
            let result = match lost {
                None => self.auth.start(transport, &self.base_url).await,
                Some(generation) => {
                    self.auth
                        .reauthenticate(transport, &self.base_url, generation)
                        .await
                }
            };
            match result {
                Ok(()) => return Ok(()),
                Err(err) if err.kind() == ErrorKind::Auth => return Err(CallError::Auth(err)),
                Err(err) if err.kind() == ErrorKind::Network && attempt < attempts => {
                    self.pause_within(deadline, attempt, err.message()).await?
                }
                Err(err) => return Err(CallError::Unavailable(err)),
            }
        }
    }

    /// The call did not `what` within `http.call_timeout` (`why`: the last failure).
    fn overdue(&self, what: &str, why: Option<&str>) -> Error {
        let why = why
            .map(|why| format!("; the last: {why}"))
            .unwrap_or_default();
        Error::new(
            ErrorKind::Network,
            format!(
                "{} did not {what} within {} (`http.call_timeout`){why}",
                self.name,
                format_span(chrono::Duration::from_std(self.call_timeout).unwrap_or_default())
            ),
        )
        .with_hint("the API answers too slowly or not at all; if it is only slow, raise the connector's `http.call_timeout` and `http.timeout`")
    }

    /// Wait before retry number `attempt`, unless the wait would end after `deadline`: then
    /// the call gives up now, with `why`.
    async fn pause_within(
        &self,
        deadline: Instant,
        attempt: u32,
        why: &str,
    ) -> Result<(), CallError> {
        let wait = backoff(&self.retry, attempt, self.jitter.next());
        if Instant::now() + wait >= deadline {
            let what = format!("succeed in {attempt} attempt(s)");
            return Err(CallError::Unavailable(self.overdue(&what, Some(why))));
        }
        self.pauses.fetch_add(1, Ordering::Relaxed);
        (self.notify)(format!(
            "{}: {why}; retrying in {:.1}s",
            self.name,
            wait.as_secs_f64()
        ));
        self.sleeper.sleep(wait).await;
        Ok(())
    }

    /// The connector's base URL (the origin a followed next-page URL must stay on).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn prepare(&self, operation: &Operation, parts: &Parts, payload: &Payload) -> Request {
        let mut headers = self.headers.clone();
        headers.extend(parts.headers.iter().cloned());
        if let Payload::Url(url) = payload {
            return Request {
                method: crate::config::raw::HttpMethod::Get,
                url: url.clone(),
                query: Vec::new(),
                headers,
                body: Body::None,
            };
        }
        let mut request = Request {
            method: operation.method,
            url: join_url(&self.base_url, &parts.path),
            query: parts.query.clone(),
            headers,
            body: Body::None,
        };
        match payload {
            Payload::Fields(fields) => {
                let fields: Vec<(String, String)> = fields
                    .iter()
                    .filter_map(|(k, v)| field_text(v).map(|v| (k.clone(), v)))
                    .collect();
                match operation.encoding {
                    Encoding::Form => request.body = Body::Form(fields),
                    Encoding::Query | Encoding::Json => request.query.extend(fields),
                }
            }
            Payload::Json(json) => {
                request.body = Body::Json(serde_json::to_vec(json).expect("JSON serialises"))
            }
            Payload::Serialised(bytes) => request.body = Body::Json(bytes.clone()),
            Payload::Url(_) => {}
        }
        request
    }

    /// The API said it is called too often, for the `nth` time in a row in this call: hold
    /// every call of this connector. The waits double from `initial_backoff` up to
    /// `throttle_wait` (a refusal that is a passing burst costs seconds; a quota that is used
    /// up is waited out), a longer `Retry-After` wins, plus up to a fifth more so that
    /// concurrent callers do not all come back in the same instant. The next `acquire` waits.
    /// A `Retry-After` above `max_retry_after`, or a wait past `deadline`, ends the call.
    fn throttle(
        &self,
        nth: u32,
        retry_after: Option<u64>,
        why: &str,
        deadline: Instant,
    ) -> Result<(), Error> {
        let ceiling = self
            .retry
            .throttle_wait
            .to_std()
            .unwrap_or(Duration::from_secs(30));
        let initial = self
            .retry
            .initial_backoff
            .to_std()
            .unwrap_or(Duration::from_secs(1));
        // A server may ask for a longer pause, within reason: an hour-long `Retry-After` is
        // not waited out eight times over, nor once.
        let asked = Duration::from_secs(retry_after.unwrap_or(0));
        let cap = self.retry.max_retry_after.to_std().unwrap_or_default();
        if asked > cap {
            return Err(Error::new(
                ErrorKind::Network,
                format!(
                    "{} refused the call for now ({why}) and asks to wait {}s (`Retry-After`), longer than `http.retry.max_retry_after` ({}) allows: not waiting",
                    self.name,
                    asked.as_secs(),
                    format_span(self.retry.max_retry_after)
                ),
            )
            .with_hint("run again later, or raise the connector's `http.retry.max_retry_after`"));
        }
        let base = initial
            .saturating_mul(2u32.saturating_pow(nth.saturating_sub(1).min(20)))
            .min(ceiling)
            .max(asked);
        let wait = base.saturating_add(base.mul_f64(self.jitter.next() / 5.0));
        if Instant::now() + wait >= deadline {
            let what = format!("succeed before the next {:.1}s wait", wait.as_secs_f64());
            return Err(self.overdue(&what, Some(why)));
        }
        self.limiter.hold(wait);
        (self.notify)(format!(
            "{}: {why}; every call waits {:.1}s",
            self.name,
            wait.as_secs_f64()
        ));
        Ok(())
    }

    /// Attempts in all the connector allows a call (`http.retry.attempts`).
    pub fn retry_attempts(&self) -> u32 {
        self.retry.attempts.max(1)
    }

    /// Wait before retry number `attempt` (1-based), telling the user why.
    pub async fn pause(&self, attempt: u32, why: &str) {
        let wait = backoff(&self.retry, attempt, self.jitter.next());
        self.pauses.fetch_add(1, Ordering::Relaxed);
        (self.notify)(format!(
            "{}: {why}; retrying in {:.1}s",
            self.name,
            wait.as_secs_f64()
        ));
        self.sleeper.sleep(wait).await;
    }

    /// An attempt that got no answer: wait and return to try again, or end the call.
    async fn after_failed_send(
        &self,
        err: SendError,
        operation: &Operation,
        state: RetryState,
    ) -> Result<(), CallError> {
        let RetryState {
            attempt,
            attempts,
            idempotent,
            deadline,
        } = state;
        let (message, what) = match err {
            SendError::NotSent(message) => (message, "cannot be reached"),
            SendError::MaybeSent(message) if !idempotent => {
                return Err(CallError::Uncertain(Error::new(
                    ErrorKind::Network,
                    format!("{} gave no answer: {message}", self.name),
                )));
            }
            SendError::MaybeSent(message) => (message, "gave no answer"),
            permanent => {
                let what = format!("connector `{}` operation `{}`", self.name, operation.name);
                let err = permanent
                    .permanent(&what)
                    .expect("transient failures are handled above");
                return Err(CallError::Unavailable(err));
            }
        };
        if attempt < attempts {
            return self.pause_within(deadline, attempt, &message).await;
        }
        Err(CallError::Unavailable(Error::new(
            ErrorKind::Network,
            format!("{} {what} after {attempts} attempts: {message}", self.name),
        )))
    }

    /// Call `operation` once, with retries as the module documentation describes: its path,
    /// query and headers as `parts` says (see `request`), `payload` as its encoding says.
    /// `idempotent` says whether repeating a possibly processed request is harmless.
    pub async fn call(
        &self,
        operation: &Operation,
        envelopes: &TemplateSet,
        parts: &Parts,
        payload: Payload,
        idempotent: bool,
    ) -> Result<Reply, CallError> {
        self.call_announced(
            operation,
            envelopes,
            parts,
            payload,
            idempotent,
            Reading::default(),
        )
        .await
    }

    /// [`Client::call`] for a reader (see [`Reading`]).
    pub async fn call_announced(
        &self,
        operation: &Operation,
        envelopes: &TemplateSet,
        parts: &Parts,
        payload: Payload,
        idempotent: bool,
        reading: Reading<'_>,
    ) -> Result<Reply, CallError> {
        let Reading {
            arrival,
            after,
            lean,
        } = reading;
        let deadline = Instant::now() + self.call_timeout;
        let call = Call {
            operation,
            envelopes,
            parts,
            idempotent,
            deadline,
            arrival,
            after,
            lean,
        };
        let attempts = self.attempts(call, payload);
        let result = match tokio::time::timeout_at(deadline, attempts).await {
            Ok(result) => result,
            Err(_) => Err(self.cut_off(operation, idempotent)),
        };
        if let Some(arrival) = arrival {
            match &result {
                Ok(reply) if reply.verdict == Verdict::Success => {}
                // Failed or refused: nothing sent on its answer is used (the caller waits for
                // it to end before going on).
                Ok(_) => arrival.spoil(),
                Err(_) => arrival.withdraw().await,
            }
        }
        result
    }

    /// A call of `operation` that `http.call_timeout` cut off.
    fn cut_off(&self, operation: &Operation, idempotent: bool) -> CallError {
        let err = self.overdue(&format!("answer `{}`", operation.name), None);
        // A write cut off in flight may have been processed.
        match idempotent {
            true => CallError::Unavailable(err),
            false => CallError::Uncertain(err),
        }
    }

    /// Send `request` once, within the call's deadline: its response, or `None` to try again
    /// (a network failure, waited for) when another attempt is allowed.
    async fn send_once(
        &self,
        call: &Call<'_>,
        request: &Request,
        (attempt, attempts): (u32, u32),
    ) -> Result<Option<Response>, CallError> {
        let (operation, idempotent) = (call.operation, call.idempotent);
        let sent = Instant::now();
        match tokio::time::timeout_at(call.deadline, self.transport.send(request)).await {
            Ok(Ok(response)) => Ok(Some(response)),
            Ok(Err(err)) => {
                let outcome = match err {
                    SendError::MaybeSent(_) if !idempotent => Outcome::Uncertain,
                    _ => Outcome::NetworkError,
                };
                self.observe(&operation.name, outcome, sent);
                let retry = RetryState {
                    attempt,
                    attempts,
                    idempotent,
                    deadline: call.deadline,
                };
                self.after_failed_send(err, operation, retry).await?;
                Ok(None)
            }
            Err(_) => {
                let outcome = match idempotent {
                    true => Outcome::Timeout,
                    false => Outcome::Uncertain,
                };
                self.observe(&operation.name, outcome, sent);
                Err(self.cut_off(operation, idempotent))
            }
        }
    }

    async fn attempts(&self, call: Call<'_>, payload: Payload) -> Result<Reply, CallError> {
        let Call {
            operation,
            parts,
            idempotent,
            deadline,
            arrival,
            after,
            ..
        } = call;
        let attempts = self.retry.attempts.max(1);
        let throttle_limit = self.retry.throttle_attempts.max(1);
        let mut attempt = 0;
        let mut reauths = 0;
        let mut throttles = 0;
        let mut sent_before = false;
        loop {
            attempt += 1;
            if sent_before && let Some(arrival) = arrival {
                // Another attempt: what went out on the last answer came too early; it ends
                // before this attempt is sent.
                arrival.withdraw().await;
            }
            sent_before = true;
            self.acquire().await;
            if let Some(stale) = self.auth.stale() {
                // No token yet, or one about to expire: renew it (once for all callers).
                self.login(Some(stale), deadline).await?;
            }
            if after.is_some_and(|after| !after.usable()) {
                // Sent on an answer that was then tried again (checked after the waits of the
                // rate limit and the login, right before sending): nothing goes out.
                return Err(CallError::Unavailable(Error::new(
                    ErrorKind::Network,
                    format!("{}: an early request withdrawn", self.name),
                )));
            }
            let mut request = self.prepare(operation, parts, &payload);
            let generation = self
                .auth
                .apply(&mut request, self.clock.now())
                .map_err(CallError::Unavailable)?;
            let unavailable = |what: String| {
                CallError::Unavailable(Error::new(
                    ErrorKind::Network,
                    format!("{} {what}", self.name),
                ))
            };
            let sent = Instant::now();
            let Some(response) = self.send_once(&call, &request, (attempt, attempts)).await? else {
                continue;
            };
            self.auth.observe(&response);
            if let Some(arrival) = arrival.filter(|_| (200..300).contains(&response.status)) {
                arrival.arrive();
                // Let the task waiting for it send its request before this answer is parsed.
                tokio::task::yield_now().await;
            }
            let answer = self.read_answer(&call, &response);
            let seen = Seen {
                throttled: answer.throttled.is_some(),
                transient: answer.transient,
                idempotent,
            };
            self.observe(
                &operation.name,
                outcome(answer.verdict.as_ref(), seen),
                sent,
            );
            if let Some(why) = answer.throttled {
                // A refusal for calling too often was not processed: repeating is safe.
                throttles += 1;
                if throttles > throttle_limit {
                    return Err(unavailable(format!(
                        "kept answering `{why}` through {throttles} waits"
                    )));
                }
                self.throttle(throttles, response.retry_after, &why, deadline)
                    .map_err(CallError::Unavailable)?;
                attempt -= 1;
                continue;
            }
            if answer.transient {
                let status = answer.status;
                let message = format!("answered HTTP {status}: {}", snippet(&response.body));
                if !idempotent {
                    return Err(CallError::Uncertain(Error::new(
                        ErrorKind::Api,
                        format!("{} {message}", self.name),
                    )));
                }
                if attempt < attempts {
                    self.pause_within(deadline, attempt, &message).await?;
                    continue;
                }
                return Err(unavailable(format!(
                    "{message} (after {attempts} attempts)"
                )));
            }
            let verdict = self
                .on_verdict(
                    &call,
                    (answer, response),
                    (attempt, attempts),
                    &mut reauths,
                    generation,
                )
                .await?;
            match verdict {
                Next::Again { counted: true } => {}
                Next::Again { counted: false } => attempt -= 1,
                Next::Done(reply) => return Ok(reply),
            }
        }
    }
}

/// A JSON value as a form or query field (`None` drops it).
fn field_text(value: &Json) -> Option<String> {
    match value {
        Json::Null => None,
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        other => Some(other.to_string()),
    }
}

mod answer;
mod observe;
#[cfg(test)]
mod tests;
