//! Kingdee K/3 Cloud sessions: the official SDK's app signature, or a password login.
//!
//! App signature (preferred): every request carries the SDK's v2 headers; the server opens
//! a session and sets `kdservice-sessionid`/`ASP.NET_SessionId` cookies, which are sent back
//! (as cookie and header) until it says the session is lost (MsgCode 1), after which the
//! next request goes out freshly signed without them. Password: `AuthService.ValidateUser`
//! opens the session, and a lost session means logging in again. Logging in is serialised:
//! concurrent writers that all saw the same session die trigger one login, not one each.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde_json::{Value as Json, json};

use crate::auth::Generation;
use crate::config::model::KingdeeMode;
use crate::config::raw::HttpMethod;
use crate::error::{Error, ErrorKind, Result};
use crate::http::transport::{Body, Request, Response, SendError, Transport, join_url};
use crate::secret::Secret;
use crate::sign::kingdee::{self as sign, AppCredentials};

/// The path of the password login, relative to the site root.
const VALIDATE_USER: &str = "Kingdee.BOS.WebApi.ServicesStub.AuthService.ValidateUser.common.kdsvc";
const SESSION_COOKIE: &str = "kdservice-sessionid";
const ASP_COOKIE: &str = "ASP.NET_SessionId";

#[derive(Debug)]
pub struct Credentials {
    pub mode: KingdeeMode,
    pub acct_id: String,
    pub username: String,
    pub app_id: String,
    pub app_secret: Secret,
    pub password: Secret,
    pub lcid: u32,
    pub org_num: u64,
}

#[derive(Debug, Default)]
struct State {
    /// Cookies the server set (name → value).
    cookies: BTreeMap<String, String>,
    generation: Generation,
}

#[derive(Debug)]
pub struct Session {
    credentials: Credentials,
    state: Mutex<State>,
    login: tokio::sync::Mutex<()>,
}

impl Session {
    pub fn new(credentials: Credentials) -> Session {
        Session {
            credentials,
            state: Mutex::new(State::default()),
            login: tokio::sync::Mutex::new(()),
        }
    }

    pub fn mode(&self) -> KingdeeMode {
        self.credentials.mode
    }

    pub async fn start(&self, transport: &Transport, base_url: &str) -> Result<()> {
        if self.credentials.mode == KingdeeMode::Password {
            let used = self.state.lock().expect("session lock").generation;
            self.reauthenticate(transport, base_url, used).await?;
        }
        Ok(())
    }

    pub fn apply(&self, request: &mut Request, now: DateTime<Utc>) -> Result<Generation> {
        let state = self.state.lock().expect("session lock");
        if let Some(session_id) = state.cookies.get(SESSION_COOKIE) {
            request
                .headers
                .push((SESSION_COOKIE.into(), session_id.clone()));
        }
        if !state.cookies.is_empty() {
            let cookie = state
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            request.headers.push(("Cookie".into(), cookie));
        }
        if self.credentials.mode == KingdeeMode::AppSignature {
            let url = reqwest::Url::parse(&request.url).map_err(|err| {
                Error::config(format!("`{}` is not a URL", request.url)).with_source(err)
            })?;
            // The SDK signs the path as written and encodes it itself; the URL holds it
            // encoded already (a virtual directory with a space or Chinese characters).
            let path = percent_encoding::percent_decode_str(url.path())
                .decode_utf8_lossy()
                .into_owned();
            let timestamp = now.timestamp().to_string();
            let credentials = AppCredentials {
                acct_id: &self.credentials.acct_id,
                username: &self.credentials.username,
                app_id: &self.credentials.app_id,
                app_secret: self.credentials.app_secret.expose(),
                lcid: self.credentials.lcid,
                org_num: self.credentials.org_num,
            };
            // The SDK sends the timestamp as the nonce too.
            for (name, value) in sign::v2_headers(&credentials, &path, &timestamp, &timestamp) {
                request.headers.push((name.to_string(), value));
            }
        }
        Ok(state.generation)
    }

    pub fn observe(&self, response: &Response) {
        let mut state = self.state.lock().expect("session lock");
        for header in &response.set_cookies {
            if let Some((name, value)) = cookie(header)
                && (name == SESSION_COOKIE || name == ASP_COOKIE)
                && !value.is_empty()
            {
                state.cookies.insert(name, value);
            }
        }
    }

    /// Replace the session the request with generation `used` carried.
    pub async fn reauthenticate(
        &self,
        transport: &Transport,
        base_url: &str,
        used: Generation,
    ) -> Result<()> {
        let _login = self.login.lock().await;
        if self.state.lock().expect("session lock").generation != used {
            // Someone else already replaced that session.
            return Ok(());
        }
        match self.credentials.mode {
            KingdeeMode::Password => {
                let session = self.validate_user(transport, base_url).await?;
                let mut state = self.state.lock().expect("session lock");
                state.cookies = session;
                state.generation += 1;
            }
            _ => {
                // Drop the dead session; the next request is signed afresh and opens a new one.
                let mut state = self.state.lock().expect("session lock");
                state.cookies.clear();
                state.generation += 1;
            }
        }
        Ok(())
    }

    async fn validate_user(
        &self,
        transport: &Transport,
        base_url: &str,
    ) -> Result<BTreeMap<String, String>> {
        let body = json!({"parameters": [self.credentials.acct_id, self.credentials.username, self.credentials.password.expose(), self.credentials.lcid]});
        let request = Request {
            method: HttpMethod::Post,
            url: join_url(base_url, VALIDATE_USER),
            query: Vec::new(),
            headers: Vec::new(),
            body: Body::Json(serde_json::to_vec(&body).expect("JSON serialises")),
        };
        let who = format!(
            "user `{}` of data centre `{}`",
            self.credentials.username, self.credentials.acct_id
        );
        let response = transport.send(&request).await.map_err(|err| {
            match err.permanent(&format!("the Kingdee login of {who}")) {
                Ok(permanent) => permanent,
                Err(SendError::NotSent(message) | SendError::MaybeSent(message)) => Error::new(
                    ErrorKind::Network,
                    format!("cannot reach Kingdee to log in {who}: {message}"),
                ),
                Err(other) => unreachable!("a permanent failure: {other:?}"),
            }
        })?;
        let unreadable = serde_json::from_slice::<Json>(&response.body).is_err();
        if response.status >= 500
            || response.status == 429
            || (unreadable && (200..300).contains(&response.status))
        {
            // A server error, a rate limit or a cut-off answer is transient: the login, which
            // changes nothing, may be repeated.
            return Err(Error::new(
                ErrorKind::Network,
                if unreadable && response.status < 300 {
                    format!(
                        "Kingdee answered the login of {who} with HTTP {}: {}",
                        response.status,
                        crate::http::client::snippet(&response.body)
                    )
                } else {
                    format!(
                        "Kingdee answered the login of {who} with HTTP {}",
                        response.status
                    )
                },
            ));
        }
        let parsed: Json = serde_json::from_slice(&response.body).map_err(|_| {
            Error::new(ErrorKind::Auth, format!("Kingdee answered the login of {who} with HTTP {} and no JSON", response.status))
                .with_hint("check KINGDEE_URL: it must be the site root including the virtual directory, e.g. http://host/k3cloud/")
        })?;
        let result_type = parsed.get("LoginResultType").map(|v| {
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        });
        if result_type != Some(Some(1)) {
            let message = parsed
                .get("Message")
                .and_then(Json::as_str)
                .unwrap_or("no message");
            return Err(Error::new(
                ErrorKind::Auth,
                format!("Kingdee refused the login of {who}: {message}"),
            )
            .with_hint("check KINGDEE_ACCT_ID, KINGDEE_USERNAME and KINGDEE_PASSWORD"));
        }
        let mut cookies = BTreeMap::new();
        for header in &response.set_cookies {
            if let Some((name, value)) = cookie(header) {
                cookies.insert(name, value);
            }
        }
        if let Some(session_id) = parsed
            .get("KDSVCSessionId")
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty())
        {
            cookies.insert(SESSION_COOKIE.to_string(), session_id.to_string());
        }
        if !cookies.contains_key(SESSION_COOKIE) {
            return Err(Error::new(
                ErrorKind::Auth,
                format!("Kingdee accepted the login of {who} but gave no session id"),
            ));
        }
        cookies.retain(|name, _| name == SESSION_COOKIE || name == ASP_COOKIE);
        Ok(cookies)
    }
}

/// `name=value` of one `Set-Cookie` header (attributes ignored).
fn cookie(header: &str) -> Option<(String, String)> {
    let pair = header.split(';').next()?;
    let (name, value) = pair.split_once('=')?;
    Some((name.trim().to_string(), value.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(mode: KingdeeMode) -> Session {
        Session::new(Credentials {
            mode,
            acct_id: "65a1b2c3d4e5f6".into(),
            username: "apiuser".into(),
            app_id: "299999_W2bDRxFLQqCZ5Y9P7+7t2dxs0L2/xptH".into(),
            app_secret: Secret::new("0123456789abcdef0123456789abcdef"),
            password: Secret::new("pw"),
            lcid: 2052,
            org_num: 0,
        })
    }

    fn request() -> Request {
        Request {
            method: HttpMethod::Post,
            url: "http://erp.example.com/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.BatchSave.common.kdsvc".into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: Body::Json(b"{}".to_vec()),
        }
    }

    fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
        request
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_virtual_directory_that_needs_escaping_is_signed_as_the_sdk_signs_it() {
        // The SDK signs the path as the user wrote it; the URL carries it escaped.
        let mut request = request();
        request.url = "http://erp.example.com/k3%20cloud/%E9%87%91%E8%9D%B6/X.common.kdsvc".into();
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        session(KingdeeMode::AppSignature)
            .apply(&mut request, now)
            .unwrap();
        let credentials = AppCredentials {
            acct_id: "65a1b2c3d4e5f6",
            username: "apiuser",
            app_id: "299999_W2bDRxFLQqCZ5Y9P7+7t2dxs0L2/xptH",
            app_secret: "0123456789abcdef0123456789abcdef",
            lcid: 2052,
            org_num: 0,
        };
        let expected = sign::v2_headers(
            &credentials,
            "/k3 cloud/金蝶/X.common.kdsvc",
            "1700000000",
            "1700000000",
        );
        let signature = |headers: &[(&str, String)]| {
            headers
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("X-Api-Signature"))
                .map(|(_, value)| value.clone())
        };
        assert_eq!(
            header(&request, "X-Api-Signature").map(str::to_string),
            signature(&expected)
        );
    }

    #[test]
    fn app_signature_headers_match_the_sdk_worked_example() {
        let mut request = request();
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        session(KingdeeMode::AppSignature)
            .apply(&mut request, now)
            .unwrap();
        // Spec §2.3.
        assert_eq!(
            header(&request, "X-Api-Signature"),
            Some(
                "NzRiYzUxZWE0ZDVmMTQ0ZjA1ZDQwMzZmNjYwODQ5YjhkMWQ0NjgzMDE5YTliYzI3MTRiYzVkNTI1OGI0MTMxMA=="
            )
        );
        assert_eq!(
            header(&request, "X-Kd-Appdata"),
            Some("NjVhMWIyYzNkNGU1ZjYsYXBpdXNlciwyMDUyLDA=")
        );
        assert_eq!(header(&request, "x-api-nonce"), Some("1700000000"));
        assert_eq!(header(&request, "kdservice-sessionid"), None);
    }

    #[test]
    fn cookies_the_server_sets_are_sent_back_as_cookie_and_header() {
        let session = session(KingdeeMode::AppSignature);
        session.observe(&Response {
            status: 200,
            set_cookies: vec![
                "kdservice-sessionid=abc; path=/".into(),
                "ASP.NET_SessionId=xyz; path=/; HttpOnly".into(),
                "Theme=standard".into(),
            ],
            retry_after: None,
            headers: Vec::new(),
            body: Vec::new(),
        });
        let mut request = request();
        session.apply(&mut request, Utc::now()).unwrap();
        assert_eq!(header(&request, "kdservice-sessionid"), Some("abc"));
        assert_eq!(
            header(&request, "Cookie"),
            Some("ASP.NET_SessionId=xyz; kdservice-sessionid=abc")
        );
    }

    #[tokio::test]
    async fn a_lost_app_session_is_dropped_once_for_concurrent_callers() {
        let session = session(KingdeeMode::AppSignature);
        session.observe(&Response {
            status: 200,
            set_cookies: vec!["kdservice-sessionid=abc".into()],
            retry_after: None,
            headers: Vec::new(),
            body: Vec::new(),
        });
        let generation = session.apply(&mut request(), Utc::now()).unwrap();
        let transport = Transport::new(
            &crate::config::model::Http {
                timeout: chrono::Duration::seconds(1),
                connect_timeout: chrono::Duration::seconds(1),
                ..crate::config::model::Http::default()
            },
            "http://127.0.0.1",
            &crate::http::proxy::Proxies::none(),
        )
        .unwrap();
        session
            .reauthenticate(&transport, "http://unused/", generation)
            .await
            .unwrap();
        session
            .reauthenticate(&transport, "http://unused/", generation)
            .await
            .unwrap();
        let mut request = request();
        assert_eq!(
            session.apply(&mut request, Utc::now()).unwrap(),
            generation + 1
        );
        assert_eq!(header(&request, "kdservice-sessionid"), None);
    }
}
