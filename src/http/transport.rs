//! One HTTP attempt: reqwest over rustls, HTTP/1.1, pooled connections, timeouts.
//!
//! The only judgement made here is the one exactly-once depends on: whether a failed attempt
//! certainly never reached the server ([`SendError::NotSent`]: refused connection, unknown
//! host, connect timeout) or may have been processed ([`SendError::MaybeSent`]: timeout after
//! sending, connection dropped before the answer). Error texts never contain the URL, so no
//! query parameter can leak into a log.

use std::time::Duration;

use crate::config::model::Http;
use crate::config::raw::HttpMethod;
use crate::error::{Error, ErrorKind, Result};

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
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The request never reached the server: repeating it is always safe.
    NotSent(String),
    /// The server may have processed the request: a write must be verified, not repeated.
    MaybeSent(String),
}

/// A pooled HTTP client for one connector.
#[derive(Debug, Clone)]
pub struct Transport {
    client: reqwest::Client,
}

impl Transport {
    pub fn new(http: &Http) -> Result<Transport> {
        // rustls needs one crypto provider per process; installing it again is a no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(http.timeout.to_std().unwrap_or(Duration::from_secs(60)))
            .connect_timeout(
                http.connect_timeout
                    .to_std()
                    .unwrap_or(Duration::from_secs(10)),
            )
            .user_agent(concat!("engine/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(8)
            .build()
            .map_err(|err| {
                Error::new(ErrorKind::Network, "cannot set up the HTTP client")
                    .with_source(err.without_url())
            })?;
        Ok(Transport { client })
    }

    pub async fn send(&self, request: &Request) -> Result<Response, SendError> {
        let method = match request.method {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Post => reqwest::Method::POST,
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
        let body = response.bytes().await.map_err(classify)?.to_vec();
        Ok(Response {
            status,
            set_cookies,
            retry_after,
            body,
        })
    }
}

fn classify(err: reqwest::Error) -> SendError {
    let not_sent = err.is_connect() || err.is_builder();
    let err = err.without_url();
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
        let http = Http {
            timeout: chrono::Duration::seconds(5),
            connect_timeout: chrono::Duration::seconds(5),
            rate_limit: None,
            retry: crate::config::model::Retry {
                attempts: 1,
                initial_backoff: chrono::Duration::seconds(1),
                max_backoff: chrono::Duration::seconds(1),
                ..crate::config::model::Retry::default()
            },
        };
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
        match Transport::new(&http).unwrap().send(&request).await {
            Err(SendError::NotSent(message)) => assert!(!message.contains("secret"), "{message}"),
            other => panic!("expected NotSent, got {other:?}"),
        }
    }
}
