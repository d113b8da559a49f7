//! One HTTP attempt: reqwest over rustls, HTTP/1.1, pooled connections, time and size limits.
//!
//! The judgement exactly-once depends on is made here: whether a failed attempt certainly
//! never reached the server ([`SendError::NotSent`]: refused connection, unknown host, connect
//! timeout) or may have been processed ([`SendError::MaybeSent`]: timeout after sending,
//! connection dropped before the answer), or failed for a reason no retry changes
//! ([`SendError::permanent`]: a TLS certificate refused, a redirect away from the connector's
//! origin, an answer over `http.max_response_bytes`). A request never leaves its origin: only
//! a 307 or 308 to the same scheme, host and port is followed (at most
//! [`MAX_REDIRECTS`] times), since those keep the method and body; any other redirect is a
//! permanent failure naming the status and the origin it pointed to. One attempt, the body
//! included, ends within `http.timeout`; the body is read piece by piece and stops at the
//! size limit. Error texts never contain a URL's path or query, so no parameter can leak
//! into a log.

use std::time::Duration;

use crate::config::model::Http;
use crate::config::raw::HttpMethod;
use crate::error::{Error, ErrorKind, Result};
use crate::http::proxy::{Proxies, Proxy};

/// How many same-origin 307/308 redirects one request follows.
pub const MAX_REDIRECTS: usize = 3;

/// A request ready to send.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: HttpMethod,
    pub url: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

#[derive(Debug, Clone)]
pub enum Body {
    None,
    Form(Vec<(String, String)>),
    /// Serialised JSON.
    Json(Vec<u8>),
}

/// What came back.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Every `Set-Cookie` header, unparsed (one per header, never split on commas).
    pub set_cookies: Vec<String>,
    /// `Retry-After` in seconds, when the server sent one (the date form is ignored).
    pub retry_after: Option<u64>,
    /// Every header, names in lowercase, in the order sent (for paging and envelopes).
    pub headers: Vec<(String, String)>,
    /// The body, without a UTF-8 byte order mark in front (JSON has none; some gateways add one).
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The request never reached the server: repeating it is always safe.
    NotSent(String),
    /// The server may have processed the request: a write must be verified, not repeated.
    MaybeSent(String),
    /// The TLS handshake failed (the reason): the next one fails the same way.
    Tls(String),
    /// A redirect that is not followed (the message names the status and where it pointed).
    Redirect(String),
    /// The answer was longer than `http.max_response_bytes` (this many bytes).
    TooLarge(u64),
}

impl SendError {
    /// The error of a failure no retry changes, for the request `what` names (e.g.
    /// "connector `x` operation `y`"); a transient failure comes back as it is. Its kind is
    /// [`ErrorKind::Api`], which nothing repeats.
    pub fn permanent(self, what: &str) -> Result<Error, SendError> {
        Ok(match self {
            SendError::NotSent(_) | SendError::MaybeSent(_) => return Err(self),
            SendError::Tls(reason) => Error::new(
                ErrorKind::Api,
                format!("{what}: the TLS handshake failed: {reason}"),
            )
            .with_hint(TLS_HINT),
            SendError::Redirect(message) => Error::new(ErrorKind::Api, format!("{what} {message}"))
                .with_hint("if the API has moved, set the connector's base URL to its new address"),
            SendError::TooLarge(limit) => Error::new(
                ErrorKind::Api,
                format!("response of {what} exceeds {}", size(limit)),
            )
            .with_hint("raise the connector's `http.max_response_bytes` if answers this large are expected, or ask for smaller pages"),
        })
    }
}

const TLS_HINT: &str = "engine trusts the system's certificate authorities; for a private one, set SSL_CERT_FILE to a PEM file holding it (on Linux this file replaces the system's list: append your CA to a copy of /etc/ssl/certs/ca-certificates.crt to keep both)";

/// A byte count for people: `64 MiB`, `1.5 KiB`, `100 bytes`.
pub fn size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, scale) in UNITS {
        if bytes >= scale {
            let value = bytes as f64 / scale as f64;
            return if bytes.is_multiple_of(scale) {
                format!("{} {unit}", bytes / scale)
            } else {
                format!("{value:.1} {unit}")
            };
        }
    }
    format!("{bytes} bytes")
}

/// A pooled HTTP client for one connector.
#[derive(Debug, Clone)]
pub struct Transport {
    client: reqwest::Client,
    timeout: Duration,
    max_response_bytes: u64,
    proxy: Option<Proxy>,
}

impl Transport {
    /// A client for requests to `base_url`, through the proxy `proxies` name for it, if any.
    pub fn new(http: &Http, base_url: &str, proxies: &Proxies) -> Result<Transport> {
        // rustls needs one crypto provider per process; installing it again is a no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let proxy = proxies.for_url(base_url)?;
        let mut builder = reqwest::Client::builder()
            .connect_timeout(
                http.connect_timeout
                    .to_std()
                    .unwrap_or(Duration::from_secs(10)),
            )
            .redirect(reqwest::redirect::Policy::custom(follow_within_origin))
            .user_agent(concat!("engine/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(8);
        // The proxy is decided here, once, so that what the run header says is what happens.
        builder = match &proxy {
            Some(proxy) => builder.proxy(proxy.reqwest()),
            None => builder.no_proxy(),
        };
        let client = builder.build().map_err(|err| {
            Error::new(ErrorKind::Network, "cannot set up the HTTP client")
                .with_source(err.without_url())
        })?;
        Ok(Transport {
            client,
            timeout: http.timeout.to_std().unwrap_or(Duration::from_secs(60)),
            max_response_bytes: http.max_response_bytes,
            proxy,
        })
    }

    /// The proxy requests go through (`scheme://host:port`, no credentials), if any.
    pub fn proxy(&self) -> Option<&str> {
        self.proxy.as_ref().map(|proxy| proxy.shown.as_str())
    }

    pub async fn send(&self, request: &Request) -> Result<Response, SendError> {
        match tokio::time::timeout(self.timeout, self.attempt(request)).await {
            Ok(result) => result,
            Err(_) => Err(SendError::MaybeSent(format!(
                "no complete answer within {} (`http.timeout`)",
                crate::time::format_span(
                    chrono::Duration::from_std(self.timeout).unwrap_or_default()
                )
            ))),
        }
    }

    async fn attempt(&self, request: &Request) -> Result<Response, SendError> {
        let method = match request.method {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Post => reqwest::Method::POST,
            HttpMethod::Put => reqwest::Method::PUT,
            HttpMethod::Patch => reqwest::Method::PATCH,
            HttpMethod::Delete => reqwest::Method::DELETE,
        };
        let mut builder = self.client.request(method, &request.url);
        if !request.query.is_empty() {
            builder = builder.query(&request.query);
        }
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        builder = match &request.body {
            Body::None => builder,
            Body::Form(fields) => builder.form(fields),
            Body::Json(bytes) => builder
                .header("Content-Type", "application/json")
                .body(bytes.clone()),
        };
        let response = builder.send().await.map_err(classify)?;
        let status = response.status().as_u16();
        if response.status().is_redirection() {
            return Err(SendError::Redirect(not_followed(&response)));
        }
        let set_cookies = response
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok().map(str::to_string))
            .collect();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse().ok());
        let headers = response
            .headers()
            .iter()
            .filter_map(|(name, value)| {
                Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
            })
            .collect();
        let mut body = read_body(response, self.max_response_bytes).await?;
        if body.starts_with(BOM) {
            body.drain(..BOM.len());
        }
        Ok(Response {
            status,
            set_cookies,
            retry_after,
            headers,
            body,
        })
    }
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The body, piece by piece, never holding more than `limit` bytes.
async fn read_body(mut response: reqwest::Response, limit: u64) -> Result<Vec<u8>, SendError> {
    let declared = response.content_length().unwrap_or(0);
    if declared > limit {
        return Err(SendError::TooLarge(limit));
    }
    let mut body = Vec::with_capacity(declared as usize);
    while let Some(chunk) = response.chunk().await.map_err(classify)? {
        let len = body.len() + chunk.len();
        if len as u64 > limit {
            return Err(SendError::TooLarge(limit));
        }
        if len > body.capacity() {
            // Grow by doubling, as `Vec` does, but never past the limit.
            let capacity = len.max(body.capacity() * 2).min(limit as usize);
            body.reserve_exact(capacity - body.len());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `scheme://host:port` of a URL (the port spelled out even when it is the default).
pub fn origin(url: &reqwest::Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or_default()
    )
}

/// The redirect policy: 307 and 308 keep the method and the body, so they are followed within
/// the origin of the first request; anything else comes back as the redirect response.
fn follow_within_origin(attempt: reqwest::redirect::Attempt<'_>) -> reqwest::redirect::Action {
    let first = attempt.previous().first().map(origin);
    let same_origin = first.as_deref() == Some(origin(attempt.url()).as_str());
    let keeps_body = matches!(attempt.status().as_u16(), 307 | 308);
    if same_origin && keeps_body && attempt.previous().len() <= MAX_REDIRECTS {
        attempt.follow()
    } else {
        attempt.stop()
    }
}

/// Why a redirect response was not followed, naming where it pointed (its origin only).
fn not_followed(response: &reqwest::Response) -> String {
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| response.url().join(value).ok());
    let Some(location) = location else {
        return format!("answered HTTP {status}, a redirect without a usable `Location`");
    };
    let to = origin(&location);
    if to != origin(response.url()) {
        format!(
            "answered HTTP {status}, a redirect to `{to}`, another origin: requests are never sent away from the connector's base URL"
        )
    } else if matches!(status, 307 | 308) {
        format!("answered HTTP {status} again after {MAX_REDIRECTS} redirects within `{to}`")
    } else {
        format!(
            "answered HTTP {status}, a redirect within `{to}` that would turn the request into a GET without its body: only 307 and 308 are followed"
        )
    }
}

fn classify(err: reqwest::Error) -> SendError {
    let not_sent = err.is_connect() || err.is_builder();
    let err = err.without_url();
    if let Some(reason) = tls_failure(&err) {
        return SendError::Tls(reason);
    }
    let mut message = err.to_string();
    let mut next = std::error::Error::source(&err);
    while let Some(cause) = next {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        next = cause.source();
    }
    if not_sent {
        SendError::NotSent(message)
    } else {
        SendError::MaybeSent(message)
    }
}

/// The TLS error somewhere in `err`'s causes: a certificate that is not trusted, a protocol
/// the server does not speak. The same handshake fails the same way next time.
fn tls_failure(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(err);
    while let Some(cause) = next {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        // An IO error's `source` is its inner error's source, skipping the inner error itself
        // (rustls's, wrapped in one or two IO errors on the way up).
        next = match cause
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => cause.source(),
        };
    }
    None
}

/// `base` and `path` joined with exactly one slash (an empty path is the base itself).
pub fn join_url(base: &str, path: &str) -> String {
    if path.is_empty() {
        return base.to_string();
    }
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_join_with_one_slash() {
        assert_eq!(
            join_url("http://h/k3cloud/", "Kingdee.X.common.kdsvc"),
            "http://h/k3cloud/Kingdee.X.common.kdsvc"
        );
        assert_eq!(
            join_url("http://h/k3cloud", "/Kingdee.X.common.kdsvc"),
            "http://h/k3cloud/Kingdee.X.common.kdsvc"
        );
        assert_eq!(join_url("http://h/router/qm", ""), "http://h/router/qm");
    }

    #[tokio::test]
    async fn a_refused_connection_is_known_not_sent() {
        let http = Http::default();
        // Bind a port, then close it: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let request = Request {
            method: HttpMethod::Post,
            url: format!("http://127.0.0.1:{port}/x?secret=s"),
            query: Vec::new(),
            headers: Vec::new(),
            body: Body::None,
        };
        match Transport::new(&http, &request.url, &Proxies::none())
            .unwrap()
            .send(&request)
            .await
        {
            Err(SendError::NotSent(message)) => assert!(!message.contains("secret"), "{message}"),
            other => panic!("expected NotSent, got {other:?}"),
        }
    }

    /// A server with a few routes that redirect or answer, and the answers `path` gets with a
    /// size limit of `limit` bytes.
    async fn fetch(path: &str, limit: u64) -> Result<Response, SendError> {
        use axum::Router;
        use axum::http::{StatusCode, header};
        use axum::response::IntoResponse;
        use axum::routing::post;

        let redirect = |status: u16, to: &'static str| {
            move || async move {
                (
                    StatusCode::from_u16(status).unwrap(),
                    [(header::LOCATION, to)],
                    "",
                )
                    .into_response()
            }
        };
        let app = Router::new()
            .route("/answer", post(|| async { "\u{FEFF}{\"ok\": true}" }))
            .route("/kilobyte", post(|| async { "x".repeat(1024) }))
            .route("/moved", post(redirect(307, "/answer")))
            .route("/moved-for-good", post(redirect(308, "/moved")))
            .route("/found", post(redirect(302, "/answer")))
            .route("/loop", post(redirect(307, "/loop")))
            .route(
                "/away",
                post(redirect(307, "http://127.0.0.1:9/answer?token=t")),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let http = Http {
            max_response_bytes: limit,
            ..Http::default()
        };
        let request = Request {
            method: HttpMethod::Post,
            url: join_url(&base, path),
            query: Vec::new(),
            headers: Vec::new(),
            body: Body::Json(b"{}".to_vec()),
        };
        Transport::new(&http, &base, &Proxies::none())
            .unwrap()
            .send(&request)
            .await
    }

    #[tokio::test]
    async fn redirects_are_followed_only_within_the_origin_and_keeping_the_body() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("/answer", Ok(r#"{"ok": true}"#)),
            ("/moved", Ok(r#"{"ok": true}"#)),
            ("/moved-for-good", Ok(r#"{"ok": true}"#)),
            (
                "/found",
                Err(
                    "a redirect within `http://127.0.0.1:PORT` that would turn the request into a GET",
                ),
            ),
            ("/loop", Err("answered HTTP 307 again after 3 redirects")),
            (
                "/away",
                Err("answered HTTP 307, a redirect to `http://127.0.0.1:9`, another origin"),
            ),
        ];
        for (path, expected) in cases {
            let got = fetch(path, 1 << 20).await;
            match (expected, got) {
                (Ok(body), Ok(response)) => {
                    assert_eq!(String::from_utf8_lossy(&response.body), *body, "{path}")
                }
                (Err(message), Err(SendError::Redirect(got))) => {
                    let port = got
                        .split("127.0.0.1:")
                        .nth(1)
                        .unwrap_or("")
                        .split('`')
                        .next();
                    let expected = message.replace("PORT", port.unwrap_or_default());
                    assert!(got.contains(&expected), "{path}: {got}");
                    assert!(!got.contains("token"), "{path}: {got}");
                }
                (expected, got) => panic!("{path}: expected {expected:?}, got {got:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_body_may_be_as_long_as_the_limit_and_no_longer() {
        assert_eq!(fetch("/kilobyte", 1024).await.unwrap().body.len(), 1024);
        assert_eq!(
            fetch("/kilobyte", 1023).await.unwrap_err(),
            SendError::TooLarge(1023)
        );
    }

    #[test]
    fn sizes_read_like_the_limits_people_set() {
        for (bytes, shown) in [
            (64 << 20, "64 MiB"),
            (1 << 20, "1 MiB"),
            (1536, "1.5 KiB"),
            (100, "100 bytes"),
            (3 << 30, "3 GiB"),
        ] {
            assert_eq!(size(bytes), shown);
        }
    }
}
