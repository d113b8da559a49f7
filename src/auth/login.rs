//! The declarative `login` strategy: one request (its fields resolved from `env` at the
//! run's start) whose answer yields a token, from a JSONPath of the body or a cookie it sets;
//! every call then carries it in a header, a query parameter or a cookie. The token lives in
//! a [`TokenCache`]: logged in lazily before the first call, and once more (single-flight)
//! when the API answers 401 or the envelope's `reauth` holds.
//!
//! Reading the answer ([`read_login`]) and placing the token ([`place`]) are pure. Every
//! resolved login field counts as a secret for messages: an answer quoting one is redacted.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value as Json};

use crate::auth::token::{Issued, TokenCache, redact};
use crate::auth::{Authorize, Generation, endpoint};
use crate::config::model::{LoginToken, PlaceIn, Placement};
use crate::config::raw::HttpMethod;
use crate::error::{Error, ErrorKind, Result};
use crate::http::client::snippet;
use crate::http::transport::{Body, Request, Response, SendError, Transport};
use crate::secret::Secret;

/// The resolved login request.
#[derive(Debug)]
pub struct LoginRequest {
    pub method: HttpMethod,
    pub path: String,
    pub form: Vec<(String, Secret)>,
    pub json: Vec<(String, Secret)>,
}

#[derive(Debug)]
pub struct Session {
    request: LoginRequest,
    token: LoginToken,
    send: Placement,
    connector: String,
    cache: TokenCache,
}

/// The token in a login answer, or why there is none (`who` names the login).
pub fn read_login(
    response: &Response,
    token: &LoginToken,
    who: &str,
    secrets: &[&str],
) -> Result<Issued> {
    let quoted = || redact(&snippet(&response.body), secrets);
    let status = response.status;
    if status >= 500 || status == 429 || status == 408 {
        return Err(Error::new(
            ErrorKind::Network,
            format!("{who} answered HTTP {status}: {}", quoted()),
        ));
    }
    if !(200..300).contains(&status) {
        return Err(Error::new(
            ErrorKind::Auth,
            format!("{who} was refused (HTTP {status}): {}", quoted()),
        )
        .with_hint("check the login fields the connector reads from the environment"));
    }
    let found = match token {
        LoginToken::Body(path) => serde_json::from_slice::<Json>(&response.body)
            .ok()
            .and_then(|body| {
                path.select(&body).first().and_then(|value| match value {
                    Json::String(text) => Some(text.clone()),
                    Json::Number(number) => Some(number.to_string()),
                    _ => None,
                })
            }),
        LoginToken::Cookie(name) => response.set_cookies.iter().find_map(|header| {
            let pair = header.split(';').next()?;
            let (key, value) = pair.split_once('=')?;
            (key.trim() == name).then(|| value.trim().to_string())
        }),
    };
    match found.filter(|token| !token.is_empty()) {
        Some(token) => Ok(Issued {
            token: Secret::new(token),
            lifetime: None,
        }),
        None => {
            let place = match token {
                LoginToken::Body(path) => format!("at `{}`", path.text),
                LoginToken::Cookie(name) => format!("in cookie `{name}`"),
            };
            Err(Error::new(
                ErrorKind::Auth,
                format!("{who} answered without a token {place}: {}", quoted()),
            )
            .with_hint("the login failed, or `auth.token` points elsewhere than the answer holds the token"))
        }
    }
}

/// Put `token` where `send` says.
pub fn place(request: &mut Request, send: &Placement, token: &Secret) {
    let value = format!("{}{}{}", send.prefix, token.expose(), send.suffix);
    match send.location {
        PlaceIn::Header => request.headers.push((send.name.clone(), value)),
        PlaceIn::Query => request.query.push((send.name.clone(), value)),
        PlaceIn::Cookie => {
            let pair = format!("{}={value}", send.name);
            match request
                .headers
                .iter_mut()
                .find(|(name, _)| name.eq_ignore_ascii_case("cookie"))
            {
                Some((_, cookies)) => *cookies = format!("{cookies}; {pair}"),
                None => request.headers.push(("Cookie".into(), pair)),
            }
        }
    }
}

impl Session {
    pub fn new(
        request: LoginRequest,
        token: LoginToken,
        send: Placement,
        connector: &str,
    ) -> Session {
        Session {
            request,
            token,
            send,
            connector: connector.to_string(),
            cache: TokenCache::default(),
        }
    }

    pub fn stale(&self) -> Option<Generation> {
        self.cache.stale(Instant::now())
    }

    /// Where the login request goes, as configured (a URL, or a path on the base URL).
    pub fn path(&self) -> &str {
        &self.request.path
    }

    /// Log in again unless the session of generation `used` was already replaced.
    pub async fn reauthenticate(
        &self,
        transport: &Transport,
        base_url: &str,
        used: Generation,
    ) -> Result<()> {
        self.cache
            .renew(used, || self.login(transport, base_url))
            .await
    }

    async fn login(&self, transport: &Transport, base_url: &str) -> Result<Issued> {
        let who = format!("the login of connector `{}`", self.connector);
        let url = endpoint(base_url, &self.request.path, &who)?;
        let pairs = |fields: &[(String, Secret)]| {
            fields
                .iter()
                .map(|(name, value)| (name.clone(), value.expose().to_string()))
                .collect::<Vec<_>>()
        };
        let body = if !self.request.json.is_empty() {
            let object: Map<String, Json> = pairs(&self.request.json)
                .into_iter()
                .map(|(name, value)| (name, Json::String(value)))
                .collect();
            Body::Json(serde_json::to_vec(&object).expect("JSON serialises"))
        } else if !self.request.form.is_empty() {
            Body::Form(pairs(&self.request.form))
        } else {
            Body::None
        };
        let request = Request {
            method: self.request.method,
            url,
            query: Vec::new(),
            headers: vec![("Accept".into(), "application/json".into())],
            body,
        };
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
        let secrets: Vec<&str> = self
            .request
            .form
            .iter()
            .chain(&self.request.json)
            .map(|(_, value)| value.expose())
            .collect();
        read_login(&response, &self.token, &who, &secrets)
    }
}

impl Authorize for Session {
    fn authorize(&self, request: &mut Request, _now: DateTime<Utc>) -> Result<Generation> {
        let (token, generation) = self.cache.current();
        if let Some(token) = token {
            place(request, &self.send, &token);
        }
        Ok(generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::JsonPath;

    fn answer(status: u16, cookies: &[&str], body: &str) -> Response {
        Response {
            status,
            set_cookies: cookies.iter().map(|c| c.to_string()).collect(),
            retry_after: None,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn path(text: &str) -> LoginToken {
        LoginToken::Body(JsonPath::of(text))
    }

    #[test]
    fn the_token_is_read_from_the_body_or_a_cookie() {
        let cases = [
            (
                path("$.data.token"),
                answer(200, &[], r#"{"data":{"token":"t1"}}"#),
                Some("t1"),
            ),
            (
                path("$.data.token"),
                answer(200, &[], r#"{"data":{}}"#),
                None,
            ),
            (path("$.id"), answer(200, &[], r#"{"id":42}"#), Some("42")),
            (
                LoginToken::Cookie("SID".into()),
                answer(200, &["a=b; Path=/", "SID=s9; HttpOnly"], "{}"),
                Some("s9"),
            ),
            (
                LoginToken::Cookie("SID".into()),
                answer(200, &["SID=; Max-Age=0"], "{}"),
                None,
            ),
        ];
        for (token, response, expected) in cases {
            let got = read_login(&response, &token, "x", &[]).ok();
            assert_eq!(
                got.map(|i| i.token.expose().to_string()).as_deref(),
                expected
            );
        }
    }

    #[test]
    fn a_refused_login_names_its_status_but_not_the_password() {
        let response = answer(403, &[], r#"{"msg":"bad password hunter2"}"#);
        let err = read_login(&response, &path("$.t"), "the login", &["hunter2"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth);
        assert!(err.message().contains("HTTP 403"), "{}", err.message());
        assert!(!format!("{err} {err:?}").contains("hunter2"));
    }

    #[test]
    fn the_token_goes_in_a_header_a_parameter_or_a_cookie() {
        let token = Secret::new("t1");
        let placement = |location, name: &str, prefix: &str| Placement {
            location,
            name: name.into(),
            prefix: prefix.into(),
            suffix: String::new(),
        };
        let mut request = Request {
            method: HttpMethod::Get,
            url: "http://h/x".into(),
            query: Vec::new(),
            headers: vec![("Cookie".into(), "lang=en".into())],
            body: Body::None,
        };
        place(
            &mut request,
            &placement(PlaceIn::Header, "Authorization", "Bearer "),
            &token,
        );
        place(
            &mut request,
            &placement(PlaceIn::Query, "token", ""),
            &token,
        );
        place(&mut request, &placement(PlaceIn::Cookie, "SID", ""), &token);
        assert_eq!(
            request.headers,
            [
                ("Cookie".to_string(), "lang=en; SID=t1".to_string()),
                ("Authorization".to_string(), "Bearer t1".to_string())
            ]
        );
        assert_eq!(request.query, [("token".to_string(), "t1".to_string())]);
    }
}
