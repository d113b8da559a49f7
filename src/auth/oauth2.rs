//! OAuth2 client credentials (RFC 6749 §4.4): a bearer token from the token endpoint,
//! cached in a [`TokenCache`], renewed before it expires and when the API refuses it.
//!
//! The token request goes through the connector's transport, so it follows the same rules
//! as API calls (no redirect away from the endpoint's origin, the same timeouts). Building
//! the request and reading the answer are pure ([`token_request`], [`read_token`]); the
//! client id is named in errors, the secret never: an answer that quotes it is redacted.

use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value as Json;

use crate::auth::token::{Issued, TokenCache, redact};
use crate::auth::{Authorize, Generation, endpoint};
use crate::config::raw::HttpMethod;
use crate::error::{Error, ErrorKind, Result};
use crate::http::client::snippet;
use crate::http::transport::{Body, Request, Response, SendError, Transport};
use crate::secret::Secret;

#[derive(Debug)]
pub struct Credentials {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub scope: Option<String>,
    pub audience: Option<String>,
    /// `client_secret_basic` rather than `client_secret_post`.
    pub basic: bool,
}

#[derive(Debug)]
pub struct ClientCredentials {
    credentials: Credentials,
    connector: String,
    cache: TokenCache,
}

/// The token request for `credentials`, sent to `url`.
pub fn token_request(credentials: &Credentials, url: String) -> Request {
    let mut form = vec![("grant_type".to_string(), "client_credentials".to_string())];
    let mut headers = vec![("Accept".to_string(), "application/json".to_string())];
    if credentials.basic {
        // RFC 6749 §2.3.1: both parts are form-encoded before they are joined. The unreserved
        // `-._~` stay as written, so the usual secrets (letters, digits, `-._~`) reach a server
        // that does not decode them (many do not) unchanged.
        const ENCODED: &AsciiSet = &NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'.')
            .remove(b'_')
            .remove(b'~');
        let encode = |text: &str| utf8_percent_encode(text, ENCODED).to_string();
        let pair = format!(
            "{}:{}",
            encode(&credentials.client_id),
            encode(credentials.client_secret.expose())
        );
        let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
        headers.push(("Authorization".into(), format!("Basic {encoded}")));
    } else {
        form.push(("client_id".into(), credentials.client_id.clone()));
        form.push((
            "client_secret".into(),
            credentials.client_secret.expose().to_string(),
        ));
    }
    for (name, value) in [
        ("scope", &credentials.scope),
        ("audience", &credentials.audience),
    ] {
        if let Some(value) = value.as_ref().filter(|v| !v.is_empty()) {
            form.push((name.into(), value.clone()));
        }
    }
    Request {
        method: HttpMethod::Post,
        url,
        query: Vec::new(),
        headers,
        body: Body::Form(form),
    }
}

/// The token in the endpoint's answer, or why there is none (`who` names the endpoint).
/// A refusal is an auth error; a server failure is a network error, which is retried.
pub fn read_token(response: &Response, who: &str, secret: &Secret) -> Result<Issued> {
    let quoted = || redact(&snippet(&response.body), &[secret.expose()]);
    let status = response.status;
    if status >= 500 || status == 429 || status == 408 {
        return Err(Error::new(
            ErrorKind::Network,
            format!("{who} answered HTTP {status}: {}", quoted()),
        ));
    }
    let body: Option<Json> = serde_json::from_slice(&response.body).ok();
    if !(200..300).contains(&status) {
        let reason = body
            .as_ref()
            .and_then(|b| {
                let error = b.get("error")?.as_str()?;
                let description = b.get("error_description").and_then(Json::as_str);
                Some(match description {
                    Some(text) => format!("`{error}`: {text}"),
                    None => format!("`{error}`"),
                })
            })
            .map(|reason| redact(&reason, &[secret.expose()]))
            .unwrap_or_else(quoted);
        return Err(Error::new(
            ErrorKind::Auth,
            format!("{who} refused the client credentials (HTTP {status}): {reason}"),
        )
        .with_hint("check the client id and secret, the scope, and `client_auth` (`client_secret_post` or `client_secret_basic`)"));
    }
    let token = body
        .as_ref()
        .and_then(|b| b.get("access_token"))
        .and_then(Json::as_str)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(Error::new(
            ErrorKind::Auth,
            format!("{who} answered without an `access_token`: {}", quoted()),
        ));
    };
    let lifetime = body
        .as_ref()
        .and_then(|b| b.get("expires_in"))
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_f64().map(|f| f.max(0.0) as u64))
                .or_else(|| v.as_str()?.trim().parse().ok())
        });
    Ok(Issued {
        token: Secret::new(token),
        lifetime: lifetime.map(Duration::from_secs),
    })
}

impl ClientCredentials {
    pub fn new(credentials: Credentials, connector: &str) -> ClientCredentials {
        ClientCredentials {
            credentials,
            connector: connector.to_string(),
            cache: TokenCache::default(),
        }
    }

    pub fn stale(&self) -> Option<Generation> {
        self.cache.stale(Instant::now())
    }

    /// The token endpoint, as configured (a URL, or a path on the base URL).
    pub fn token_url(&self) -> &str {
        &self.credentials.token_url
    }

    /// Fetch a new token unless the one of generation `used` was already replaced.
    pub async fn reauthenticate(
        &self,
        transport: &Transport,
        base_url: &str,
        used: Generation,
    ) -> Result<()> {
        self.cache
            .renew(used, || self.fetch(transport, base_url))
            .await
    }

    async fn fetch(&self, transport: &Transport, base_url: &str) -> Result<Issued> {
        let who = format!("the token endpoint of connector `{}`", self.connector);
        let url = endpoint(base_url, &self.credentials.token_url, &who)?;
        let request = token_request(&self.credentials, url);
        let response = match transport.send(&request).await {
            Ok(response) => response,
            Err(err) => {
                return Err(match err.permanent(&who) {
                    Ok(permanent) => permanent,
                    Err(SendError::NotSent(why) | SendError::MaybeSent(why)) => {
                        Error::new(ErrorKind::Network, format!("{who}: {why}"))
                    }
                    Err(other) => Error::new(ErrorKind::Network, format!("{who}: {other:?}")),
                });
            }
        };
        read_token(&response, &who, &self.credentials.client_secret)
    }
}

impl Authorize for ClientCredentials {
    fn authorize(&self, request: &mut Request, _now: DateTime<Utc>) -> Result<Generation> {
        let (token, generation) = self.cache.current();
        if let Some(token) = token {
            request
                .headers
                .push(("Authorization".into(), format!("Bearer {}", token.expose())));
        }
        Ok(generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(basic: bool) -> Credentials {
        Credentials {
            token_url: "/oauth/token".into(),
            client_id: "client a".into(),
            client_secret: Secret::new("s3cr&t"),
            scope: Some("read write".into()),
            audience: None,
            basic,
        }
    }

    fn answer(status: u16, body: &str) -> Response {
        Response {
            status,
            set_cookies: Vec::new(),
            retry_after: None,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn credentials_go_in_the_body_or_in_basic_auth() {
        let post = token_request(&credentials(false), "http://h/t".into());
        let Body::Form(form) = &post.body else {
            panic!("a form")
        };
        let names: Vec<_> = form.iter().map(|(n, v)| format!("{n}={v}")).collect();
        assert_eq!(
            names,
            [
                "grant_type=client_credentials",
                "client_id=client a",
                "client_secret=s3cr&t",
                "scope=read write"
            ]
        );
        let basic = token_request(&credentials(true), "http://h/t".into());
        let Body::Form(form) = &basic.body else {
            panic!("a form")
        };
        assert!(form.iter().all(|(n, _)| n != "client_secret"));
        // base64("client%20a:s3cr%26t")
        assert!(basic.headers.contains(&(
            "Authorization".into(),
            "Basic Y2xpZW50JTIwYTpzM2NyJTI2dA==".into()
        )));
        // A secret of letters, digits and `-._~` (Auth0, Okta, Azure) goes as written.
        let usual = Credentials {
            client_id: "app_1.prod".into(),
            client_secret: Secret::new("Ab-9_x.y~Z"),
            ..credentials(true)
        };
        let basic = token_request(&usual, "http://h/t".into());
        let sent = basic
            .headers
            .iter()
            .find_map(|(name, value)| (name == "Authorization").then_some(value))
            .and_then(|value| value.strip_prefix("Basic "))
            .map(|value| {
                base64::engine::general_purpose::STANDARD
                    .decode(value)
                    .unwrap()
            });
        assert_eq!(sent.as_deref(), Some(&b"app_1.prod:Ab-9_x.y~Z"[..]));
    }

    #[test]
    fn answers_are_read_as_a_token_a_refusal_or_a_transient_failure() {
        let secret = Secret::new("s3cr&t");
        let issued = read_token(
            &answer(200, r#"{"access_token":"abc","expires_in":"2"}"#),
            "x",
            &secret,
        )
        .unwrap();
        assert_eq!(issued.token.expose(), "abc");
        assert_eq!(issued.lifetime, Some(Duration::from_secs(2)));
        let cases = [
            (503, "busy", ErrorKind::Network),
            (429, "", ErrorKind::Network),
            (401, r#"{"error":"invalid_client"}"#, ErrorKind::Auth),
            (200, r#"{"token_type":"bearer"}"#, ErrorKind::Auth),
        ];
        for (status, body, kind) in cases {
            let err = read_token(&answer(status, body), "x", &secret).unwrap_err();
            assert_eq!(err.kind(), kind, "{status} {body}");
        }
    }

    #[test]
    fn a_refusal_that_quotes_the_secret_does_not_repeat_it() {
        let secret = Secret::new("s3cr&t");
        let cases = [
            r#"{"error":"invalid_client","error_description":"secret s3cr&t is wrong"}"#,
            "client_secret=s3cr&t rejected",
        ];
        for body in cases {
            let err = read_token(&answer(401, body), "x", &secret).unwrap_err();
            let text = format!("{err} {err:?}");
            assert!(!text.contains("s3cr&t"), "{text}");
            assert!(text.contains("***"), "{text}");
        }
    }
}
