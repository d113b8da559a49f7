//! Who may call: the data centre, its users and third-party apps, sessions, the login
//! services, and the decision whether a business call is authorised (spec §2, §7.3, §7.4).
//!
//! Login services (`ValidateUser`, `LoginByAppSecret`, `LoginBySign`) answer a `LoginResult`
//! and open a session; business calls are authorised by a live session (cookie or header
//! `kdservice-sessionid`, no signature checked), else by the SDK's app signature, verified
//! with the very functions of [`crate::sign::kingdee`] the engine signs with, which also opens
//! a session. Everything is a pure function of (request, now, state); ids come from the
//! caller's [`Random`].
//!
//! [`login`] holds the login services, [`signature`] the app-signature check; this module
//! holds the data centre itself, its sessions and the decision on a business call.

mod login;
mod signature;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::secret::Secret;
use crate::sign::kingdee::header;
use crate::sim::kingdee::random::Random;

pub use login::LoginParams;
pub use signature::SignatureFailure;

/// A user of the data centre.
#[derive(Debug, Clone)]
pub struct User {
    pub username: String,
    pub password: Secret,
    /// In 「允许调用WebAPI接口用户」: without it every business call fails with MsgCode 11.
    pub webapi_allowed: bool,
    pub locked: bool,
    pub failed_logins: u32,
}

/// A third-party app (第三方系统登录授权).
#[derive(Debug, Clone)]
pub struct App {
    pub client_id: String,
    /// The decoded client secret the `X-Api-Signature` HMAC is keyed with.
    pub client_secret: Secret,
    /// `client_id + "_" + encoded client secret`.
    pub app_id: String,
    pub app_secret: Secret,
    pub allowed_users: Vec<String>,
}

/// One open session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// `kdservice-sessionid` (= `KDSVCSessionId`).
    pub sid: String,
    /// `ASP.NET_SessionId` (= `Context.SessionId`).
    pub asp_id: String,
    pub username: String,
    pub lcid: u32,
    pub created: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

/// The ids a new session sends back as cookies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub sid: String,
    pub asp_id: String,
}

impl NewSession {
    /// The two `Set-Cookie` values (spec §7.3).
    pub fn set_cookies(&self) -> [String; 2] {
        [
            format!("kdservice-sessionid={}; path=/", self.sid),
            format!("ASP.NET_SessionId={}; path=/; HttpOnly", self.asp_id),
        ]
    }
}

/// The data centre, its users, apps and sessions.
#[derive(Debug, Clone)]
pub struct Auth {
    pub acct_id: String,
    pub datacenter_name: String,
    pub lcids: Vec<u32>,
    pub users: Vec<User>,
    pub apps: Vec<App>,
    /// Failed password logins in a row that lock a user.
    pub lockout_after: u32,
    /// Gateway mode: reject signed calls whose timestamp is further off than this (HTTP 519).
    pub gateway_skew: Option<Duration>,
    sessions: HashMap<String, Session>,
    pub sessions_created: u64,
}

/// The credentials and headers of a business call that matter for authorisation.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// `kdservice-sessionid` from the cookie, then from the header.
    pub session_ids: Vec<String>,
    /// Request headers by lower-case name.
    pub headers: BTreeMap<String, String>,
}

impl Credentials {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(|value| value.trim())
    }
}

/// The verdict on a business call.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Go ahead as `username`; set cookies if a session was opened for this call.
    Granted {
        username: String,
        new_session: Option<NewSession>,
    },
    /// MsgCode 1. A failed signature still gets a (useless) session id, as on a real server.
    SessionLost { shell: Option<NewSession> },
    /// Wrong acct id in `X-Kd-Appdata`: a non-200 plain-text answer.
    ThirtyPassport,
    /// Authenticated, but not on the WebAPI whitelist: MsgCode 11.
    NotWhitelisted,
    /// Gateway mode refused the call: HTTP 519 with this body.
    Gateway(Value),
}

pub const NOT_WHITELISTED: &str = "当前用户未指定允许调用WebAPI接口";
pub const THIRTY_PASSPORT: &str = "Fail to verify thirty passport";

impl Auth {
    pub fn new(acct_id: &str, datacenter_name: &str) -> Auth {
        Auth {
            acct_id: acct_id.to_string(),
            datacenter_name: datacenter_name.to_string(),
            lcids: vec![2052, 1033, 3076],
            users: Vec::new(),
            apps: Vec::new(),
            lockout_after: 5,
            gateway_skew: None,
            sessions: HashMap::new(),
            sessions_created: 0,
        }
    }

    pub fn user(&self, username: &str) -> Option<&User> {
        self.users.iter().find(|user| user.username == username)
    }

    pub fn user_mut(&mut self, username: &str) -> Option<&mut User> {
        self.users.iter_mut().find(|user| user.username == username)
    }

    fn open_session(
        &mut self,
        username: &str,
        lcid: u32,
        now: DateTime<Utc>,
        random: &mut Random,
    ) -> Session {
        let session = Session {
            sid: random.hex_id(32),
            asp_id: random.alphanumeric_id(24),
            username: username.to_string(),
            lcid,
            created: now,
            last_seen: now,
        };
        self.sessions.insert(session.sid.clone(), session.clone());
        self.sessions_created += 1;
        session
    }

    /// `AuthService.Logout`: close the caller's session, if any.
    pub fn logout(&mut self, session_ids: &[String]) -> Value {
        for sid in session_ids {
            self.sessions.remove(sid);
        }
        json!({"LogoutResultType": 1, "Message": "注销成功"})
    }

    /// Close every session now.
    pub fn expire_all(&mut self) -> usize {
        let count = self.sessions.len();
        self.sessions.clear();
        count
    }

    /// Sessions not idle longer than `ttl`.
    pub fn live_sessions(&self, now: DateTime<Utc>, ttl: Duration) -> usize {
        self.sessions
            .values()
            .filter(|session| now - session.last_seen <= ttl)
            .count()
    }

    /// The live session `sid` names, touched; an expired one is removed.
    fn live_session(&mut self, sid: &str, now: DateTime<Utc>, ttl: Duration) -> Option<Session> {
        let session = self.sessions.get_mut(sid)?;
        if now - session.last_seen > ttl {
            self.sessions.remove(sid);
            return None;
        }
        session.last_seen = now;
        Some(session.clone())
    }

    fn whitelisted(&self, username: &str) -> bool {
        self.user(username).is_some_and(|user| user.webapi_allowed)
    }

    /// Decide on a business call to `path_and_query` (spec §7.4).
    pub fn authorise(
        &mut self,
        credentials: &Credentials,
        path_and_query: &str,
        now: DateTime<Utc>,
        ttl: Duration,
        random: &mut Random,
    ) -> Decision {
        if let Some(refusal) = self.gateway_refusal(credentials, now) {
            return Decision::Gateway(refusal);
        }
        for sid in &credentials.session_ids {
            if let Some(session) = self.live_session(sid, now, ttl) {
                if !self.whitelisted(&session.username) {
                    return Decision::NotWhitelisted;
                }
                return Decision::Granted {
                    username: session.username,
                    new_session: None,
                };
            }
        }
        if credentials.header(header::CLIENT_ID).is_none() {
            return Decision::SessionLost { shell: None };
        }
        match self.verify_signature(credentials, path_and_query) {
            Err(SignatureFailure::WrongAcct) => Decision::ThirtyPassport,
            Err(SignatureFailure::Invalid) => Decision::SessionLost {
                shell: Some(NewSession {
                    sid: random.hex_id(32),
                    asp_id: random.alphanumeric_id(24),
                }),
            },
            Ok((username, lcid)) => {
                if !self.whitelisted(&username) {
                    return Decision::NotWhitelisted;
                }
                let session = self.open_session(&username, lcid, now, random);
                Decision::Granted {
                    username,
                    new_session: Some(NewSession {
                        sid: session.sid,
                        asp_id: session.asp_id,
                    }),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
