//! Who may call: the data centre, its users and third-party apps, sessions, the login
//! services, and the decision whether a business call is authorised (spec §2, §7.3, §7.4).
//!
//! Login services (`ValidateUser`, `LoginByAppSecret`, `LoginBySign`) answer a `LoginResult`
//! and open a session; business calls are authorised by a live session (cookie or header
//! `kdservice-sessionid`, no signature checked), else by the SDK's app signature, verified
//! with the very functions of [`crate::sign::kingdee`] the engine signs with, which also opens
//! a session. Everything is a pure function of (request, now, state); ids come from the
//! caller's [`Random`].

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::secret::Secret;
use crate::sign::kingdee::{self as sign, AppData, header};
use crate::sim::kingdee::random::Random;

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
    fn header(&self, name: &str) -> Option<&str> {
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

/// The parameters of a login service by meaning; each service reads the ones it takes.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoginParams<'a> {
    pub acct_id: Option<&'a str>,
    pub username: Option<&'a str>,
    pub password: Option<&'a str>,
    pub app_id: Option<&'a str>,
    pub app_secret: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub sign: Option<&'a str>,
    pub lcid: Option<&'a str>,
}

/// The body of a login service and the session it opened.
#[derive(Debug, Clone, PartialEq)]
pub struct LoginOutcome {
    pub body: Value,
    pub session: Option<NewSession>,
}

pub const WRONG_DATACENTER: &str = "当前尝试登录的数据中心无法获取到";
pub const WRONG_PASSWORD: &str = "用户名或密码错误！";
/// **[I]**: T-EXP reports the lock-out, not its wording.
pub const LOCKED_OUT: &str = "密码错误次数过多，用户已被锁定，请联系系统管理员解锁！";
pub const NOT_WHITELISTED: &str = "当前用户未指定允许调用WebAPI接口";
pub const THIRTY_PASSPORT: &str = "Fail to verify thirty passport";

fn login_failure(message: &str, message_code: &str) -> LoginOutcome {
    LoginOutcome {
        body: json!({
            "Message": message,
            "MessageCode": message_code,
            "LoginResultType": 0,
            "Context": null,
            "KDSVCSessionId": null,
            "FormId": null,
            "RedirectFormParam": null,
            "FormInputObject": null,
            "ErrorStackTrace": null,
            "Lcid": 0,
            "AccessToken": null,
            "CustomParam": null,
            "KdAccessResult": null,
            "IsSuccessByAPI": false,
        }),
        session: None,
    }
}

fn parse_lcid(text: Option<&str>) -> Option<u32> {
    match text.map(str::trim) {
        None | Some("") => Some(2052),
        Some(text) => text.parse().ok(),
    }
}

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

    fn login_success(&self, session: &Session) -> LoginOutcome {
        LoginOutcome {
            body: json!({
                "Message": null,
                "MessageCode": "CheckPasswordPolicy",
                "LoginResultType": 1,
                "Context": {
                    "UserLocale": "zh-CN",
                    "LogLocale": "",
                    "DBid": self.acct_id,
                    "DatabaseType": 3,
                    "SessionId": session.asp_id,
                    "UseLanguages": [{"LocaleId": 2052, "LocaleName": "中文(简体/中国)", "Alias": "CN"}],
                    "UserId": 100001,
                    "UserName": session.username,
                    "CustomName": self.datacenter_name,
                    "DisplayVersion": "8.x (engine sim)",
                    "DataCenterName": self.datacenter_name,
                    "UserToken": session.sid,
                    "CurrentOrganizationInfo": {"ID": 1, "AcctOrgType": "1", "Name": "总公司", "FunctionIds": [101, 102, 103, 104]},
                    "IsCH_ZH_AutoTrans": false,
                    "ClientType": 32,
                },
                "KDSVCSessionId": session.sid,
                "FormId": null,
                "RedirectFormParam": null,
                "FormInputObject": null,
                "ErrorStackTrace": null,
                "Lcid": session.lcid,
                "AccessToken": null,
                "CustomParam": null,
                "KdAccessResult": null,
                "IsSuccessByAPI": true,
            }),
            session: Some(NewSession {
                sid: session.sid.clone(),
                asp_id: session.asp_id.clone(),
            }),
        }
    }

    /// `AuthService.ValidateUser` with `[acctID, username, password, lcid]`.
    pub fn validate_user(
        &mut self,
        params: &LoginParams<'_>,
        now: DateTime<Utc>,
        random: &mut Random,
    ) -> LoginOutcome {
        if params.acct_id != Some(self.acct_id.as_str()) {
            return login_failure(WRONG_DATACENTER, "");
        }
        let lockout_after = self.lockout_after;
        let Some(user) = params.username.and_then(|name| self.user_mut(name)) else {
            return login_failure(WRONG_PASSWORD, "CheckPasswordPolicy");
        };
        if user.locked {
            return login_failure(LOCKED_OUT, "CheckPasswordPolicy");
        }
        if params.password != Some(user.password.expose()) {
            user.failed_logins += 1;
            if user.failed_logins >= lockout_after {
                user.locked = true;
            }
            return login_failure(WRONG_PASSWORD, "CheckPasswordPolicy");
        }
        user.failed_logins = 0;
        let username = user.username.clone();
        self.finish_login(&username, params.lcid, now, random)
    }

    fn finish_login(
        &mut self,
        username: &str,
        lcid: Option<&str>,
        now: DateTime<Utc>,
        random: &mut Random,
    ) -> LoginOutcome {
        match parse_lcid(lcid).filter(|lcid| self.lcids.contains(lcid)) {
            Some(lcid) => {
                let session = self.open_session(username, lcid, now, random);
                self.login_success(&session)
            }
            None => login_failure(
                &format!("当前数据中心不支持语言“{}”", lcid.unwrap_or_default()),
                "",
            ),
        }
    }

    fn app_by_id(&self, app_id: Option<&str>) -> Option<&App> {
        let app_id = app_id?;
        self.apps.iter().find(|app| app.app_id == app_id)
    }

    fn app_user_allowed(&self, app: &App, username: &str) -> bool {
        self.user(username).is_some() && app.allowed_users.iter().any(|name| name == username)
    }

    /// `AuthService.LoginByAppSecret` with `[acctID, username, appId, appSecret, lcid]`.
    pub fn login_by_app_secret(
        &mut self,
        params: &LoginParams<'_>,
        now: DateTime<Utc>,
        random: &mut Random,
    ) -> LoginOutcome {
        if params.acct_id != Some(self.acct_id.as_str()) {
            return login_failure(WRONG_DATACENTER, "");
        }
        let Some(app) = self
            .app_by_id(params.app_id)
            .filter(|app| Some(app.app_secret.expose()) == params.app_secret)
        else {
            return login_failure("第三方系统登录授权验证失败：应用ID或应用密钥不正确", "");
        };
        let username = params.username.unwrap_or_default();
        if !self.app_user_allowed(app, username) {
            return login_failure(&format!("用户“{username}”未被授权使用该第三方应用"), "");
        }
        self.finish_login(username, params.lcid, now, random)
    }

    /// `AuthService.LoginBySign` with `[acctID, username, appId, timestamp, sign, lcid]`,
    /// `sign` as [`sign::login_by_sign`] computes it.
    pub fn login_by_sign(
        &mut self,
        params: &LoginParams<'_>,
        now: DateTime<Utc>,
        random: &mut Random,
    ) -> LoginOutcome {
        if params.acct_id != Some(self.acct_id.as_str()) {
            return login_failure(WRONG_DATACENTER, "");
        }
        let username = params.username.unwrap_or_default();
        let Some(app) = self.app_by_id(params.app_id) else {
            return login_failure("第三方系统登录授权验证失败：应用ID不正确", "");
        };
        let expected = sign::login_by_sign(
            &self.acct_id,
            username,
            &app.app_id,
            app.app_secret.expose(),
            params.timestamp.unwrap_or_default(),
        );
        let given = params.sign.unwrap_or_default().to_ascii_lowercase();
        if !sign::signatures_equal(&expected, &given) {
            return login_failure("第三方系统登录授权验证失败：签名不正确", "");
        }
        if !self.app_user_allowed(app, username) {
            return login_failure(&format!("用户“{username}”未被授权使用该第三方应用"), "");
        }
        self.finish_login(username, params.lcid, now, random)
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

    /// The public gateway's timestamp check (off unless `gateway_skew` is set).
    fn gateway_refusal(&self, credentials: &Credentials, now: DateTime<Utc>) -> Option<Value> {
        let skew = self.gateway_skew?;
        if credentials
            .header(header::CLIENT_ID)
            .is_none_or(|id| id.is_empty())
        {
            return Some(
                json!({"errcode": 4002, "description": "Unauthorized, errDescEn: APP_ID is empty[GW]"}),
            );
        }
        let timestamp = credentials.header(header::TIMESTAMP).unwrap_or_default();
        let fresh = timestamp
            .parse::<i64>()
            .ok()
            .is_some_and(|seconds| (now.timestamp() - seconds).abs() <= skew.num_seconds());
        (!fresh).then(|| {
            json!({
                "errcode": 4006,
                "description": format!("Unauthorized, errDescEn: X-Api-TimeStamp is invalid: {timestamp}[GW]"),
            })
        })
    }

    /// Verify the SDK's app-signature headers (spec §2.2, "server-side verification recipe").
    /// Returns the user and lcid the request acts as.
    pub fn verify_signature(
        &self,
        credentials: &Credentials,
        path_and_query: &str,
    ) -> Result<(String, u32), SignatureFailure> {
        let app_data = credentials
            .header(header::APP_DATA)
            .and_then(AppData::parse)
            .ok_or(SignatureFailure::Invalid)?;
        if app_data.acct_id != self.acct_id {
            return Err(SignatureFailure::WrongAcct);
        }
        let client_id = credentials.header(header::CLIENT_ID).unwrap_or_default();
        let app = self
            .apps
            .iter()
            .find(|app| app.client_id == client_id)
            .ok_or(SignatureFailure::Invalid)?;
        let check = |ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(SignatureFailure::Invalid)
            }
        };
        check(credentials.header(header::AUTH_VERSION) == Some(sign::AUTH_VERSION))?;
        let timestamp = credentials.header(header::TIMESTAMP).unwrap_or_default();
        let nonce = credentials.header(header::NONCE).unwrap_or_default();
        let expected =
            sign::api_signature(app.client_secret.expose(), path_and_query, nonce, timestamp);
        let given = credentials.header(header::SIGNATURE).unwrap_or_default();
        check(sign::signatures_equal(&expected, given))?;
        check(credentials.header(header::APP_KEY) == Some(app.app_id.as_str()))?;
        let expected = sign::kd_signature(&app.app_id, app.app_secret.expose(), &app_data.plain());
        let given = credentials.header(header::KD_SIGNATURE).unwrap_or_default();
        check(sign::signatures_equal(&expected, given))?;
        check(self.app_user_allowed(app, &app_data.username))?;
        // `orgNum` is not validated: a live server accepted 999999 (spec §2.2).
        let lcid = app_data
            .lcid
            .parse::<u32>()
            .ok()
            .filter(|lcid| self.lcids.contains(lcid))
            .ok_or(SignatureFailure::Invalid)?;
        Ok((app_data.username, lcid))
    }
}

/// Why a signed request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureFailure {
    /// The acct id in `X-Kd-Appdata` is not this data centre's.
    WrongAcct,
    /// Anything else: unknown client, bad signature, unknown user, bad lcid.
    Invalid,
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::sign::kingdee::{AppCredentials, v2_headers};

    const PATH: &str =
        "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.BatchSave.common.kdsvc";
    const APP_ID: &str = "299999_W2bDRxFLQqCZ5Y9P7+7t2dxs0L2/xptH";
    const APP_SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn auth() -> Auth {
        let mut auth = Auth::new("65a1b2c3d4e5f6", "demo");
        auth.users.push(User {
            username: "apiuser".into(),
            password: Secret::new("pw"),
            webapi_allowed: true,
            locked: false,
            failed_logins: 0,
        });
        auth.apps.push(App {
            client_id: "299999".into(),
            client_secret: Secret::new("a1b2c3d4e5f60718293a4b5c6d7e8f90"),
            app_id: APP_ID.into(),
            app_secret: Secret::new(APP_SECRET),
            allowed_users: vec!["apiuser".into()],
        });
        auth
    }

    fn now() -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000, 0).unwrap()
    }

    fn ttl() -> Duration {
        Duration::minutes(20)
    }

    fn signed(acct: &str, user: &str, app_secret: &str, lcid: u32) -> Credentials {
        let credentials = AppCredentials {
            acct_id: acct,
            username: user,
            app_id: APP_ID,
            app_secret,
            lcid,
            org_num: 0,
        };
        Credentials {
            session_ids: Vec::new(),
            headers: v2_headers(&credentials, PATH, "1700000000", "1700000000")
                .into_iter()
                .map(|(name, value)| (name.to_ascii_lowercase(), value))
                .collect(),
        }
    }

    #[test]
    fn good_signed_headers_are_accepted_and_open_a_session() {
        let mut auth = auth();
        let mut random = Random::new(1);
        let decision = auth.authorise(
            &signed("65a1b2c3d4e5f6", "apiuser", APP_SECRET, 2052),
            PATH,
            now(),
            ttl(),
            &mut random,
        );
        let Decision::Granted {
            username,
            new_session: Some(session),
        } = decision
        else {
            panic!("{decision:?}")
        };
        assert_eq!(username, "apiuser");
        assert_eq!(session.sid.len(), 32);
        assert_eq!(session.asp_id.len(), 24);
        // The session alone authorises the next call, without any signature.
        let next = Credentials {
            session_ids: vec![session.sid.clone()],
            headers: BTreeMap::new(),
        };
        assert_eq!(
            auth.authorise(&next, PATH, now(), ttl(), &mut random),
            Decision::Granted {
                username: "apiuser".into(),
                new_session: None
            }
        );
    }

    #[test]
    fn bad_signatures_are_rejected_as_the_spec_says() {
        let mut random = Random::new(1);
        let tamper = |name: &str, value: &str| {
            let mut credentials = signed("65a1b2c3d4e5f6", "apiuser", APP_SECRET, 2052);
            credentials
                .headers
                .insert(name.to_ascii_lowercase(), value.to_string());
            credentials
        };
        let cases = [
            (
                "tampered X-Api-Signature",
                tamper("X-Api-Signature", "Tm9wZQ=="),
                "lost",
            ),
            (
                "signed for another path",
                {
                    let mut credentials = signed("65a1b2c3d4e5f6", "apiuser", APP_SECRET, 2052);
                    credentials
                        .headers
                        .insert("x-api-nonce".into(), "1700000001".into());
                    credentials
                },
                "lost",
            ),
            (
                "wrong client id",
                tamper("X-Api-ClientID", "300000"),
                "lost",
            ),
            (
                "wrong app secret",
                signed(
                    "65a1b2c3d4e5f6",
                    "apiuser",
                    "ffffffffffffffffffffffffffffffff",
                    2052,
                ),
                "lost",
            ),
            (
                "unknown user",
                signed("65a1b2c3d4e5f6", "nobody", APP_SECRET, 2052),
                "lost",
            ),
            (
                "unknown lcid",
                signed("65a1b2c3d4e5f6", "apiuser", APP_SECRET, 9999),
                "lost",
            ),
            (
                "wrong auth version",
                tamper("X-Api-Auth-Version", "1.0"),
                "lost",
            ),
            (
                "wrong acct",
                signed("ffffffffffffff", "apiuser", APP_SECRET, 2052),
                "passport",
            ),
        ];
        for (name, credentials, expected) in cases {
            let decision = auth().authorise(&credentials, PATH, now(), ttl(), &mut random);
            let actual = match decision {
                Decision::SessionLost { shell: Some(_) } => "lost",
                Decision::ThirtyPassport => "passport",
                other => panic!("{name}: {other:?}"),
            };
            assert_eq!(actual, expected, "{name}");
        }
        assert_eq!(
            auth().authorise(&Credentials::default(), PATH, now(), ttl(), &mut random),
            Decision::SessionLost { shell: None }
        );
    }

    #[test]
    fn a_signed_call_to_a_different_path_does_not_verify() {
        let auth = auth();
        let credentials = signed("65a1b2c3d4e5f6", "apiuser", APP_SECRET, 2052);
        assert!(auth.verify_signature(&credentials, PATH).is_ok());
        assert_eq!(
            auth.verify_signature(&credentials, &PATH.replace("BatchSave", "Save")),
            Err(SignatureFailure::Invalid)
        );
    }

    #[test]
    fn sessions_expire_after_the_idle_lifetime() {
        let mut auth = auth();
        let mut random = Random::new(1);
        let params = LoginParams {
            acct_id: Some("65a1b2c3d4e5f6"),
            username: Some("apiuser"),
            password: Some("pw"),
            lcid: Some("2052"),
            ..LoginParams::default()
        };
        let login = auth.validate_user(&params, now(), &mut random);
        let sid = login.session.unwrap().sid;
        let credentials = Credentials {
            session_ids: vec![sid],
            headers: BTreeMap::new(),
        };
        let later = now() + Duration::minutes(19);
        assert!(matches!(
            auth.authorise(&credentials, PATH, later, ttl(), &mut random),
            Decision::Granted { .. }
        ));
        // Idle time counts from the last use.
        let much_later = later + Duration::minutes(21);
        assert_eq!(
            auth.authorise(&credentials, PATH, much_later, ttl(), &mut random),
            Decision::SessionLost { shell: None }
        );
    }

    #[test]
    fn password_logins_fail_lock_and_succeed_with_the_documented_bodies() {
        let mut auth = auth();
        let mut random = Random::new(1);
        let mut login = |acct: &str, password: &str| {
            let params = LoginParams {
                acct_id: Some(acct),
                username: Some("apiuser"),
                password: Some(password),
                ..LoginParams::default()
            };
            auth.validate_user(&params, now(), &mut random)
        };
        let wrong_acct = login("nope", "pw");
        assert_eq!(wrong_acct.body["Message"], WRONG_DATACENTER);
        assert_eq!(wrong_acct.body["LoginResultType"], 0);
        let good = login("65a1b2c3d4e5f6", "pw");
        assert_eq!(good.body["LoginResultType"], 1);
        assert_eq!(
            good.body["KDSVCSessionId"],
            good.session.as_ref().unwrap().sid.as_str()
        );
        assert_eq!(
            good.body["Context"]["SessionId"],
            good.session.as_ref().unwrap().asp_id.as_str()
        );
        for _ in 0..4 {
            let wrong = login("65a1b2c3d4e5f6", "bad");
            assert_eq!(wrong.body["Message"], WRONG_PASSWORD);
            assert_eq!(wrong.body["MessageCode"], "CheckPasswordPolicy");
        }
        assert_eq!(
            login("65a1b2c3d4e5f6", "pw").body["LoginResultType"],
            1,
            "reset"
        );
        for _ in 0..5 {
            login("65a1b2c3d4e5f6", "bad");
        }
        assert_eq!(login("65a1b2c3d4e5f6", "pw").body["Message"], LOCKED_OUT);
    }

    #[test]
    fn app_logins_check_the_app_and_the_sign() {
        let mut auth = auth();
        let mut random = Random::new(1);
        let app_login = |secret: &'static str| LoginParams {
            acct_id: Some("65a1b2c3d4e5f6"),
            username: Some("apiuser"),
            app_id: Some(APP_ID),
            app_secret: Some(secret),
            lcid: Some("2052"),
            ..LoginParams::default()
        };
        let ok = auth.login_by_app_secret(&app_login(APP_SECRET), now(), &mut random);
        assert_eq!(ok.body["LoginResultType"], 1);
        let bad = auth.login_by_app_secret(&app_login("nope"), now(), &mut random);
        assert_eq!(bad.body["LoginResultType"], 0);
        let sign = "92f57381f1f7a8b581c2fb8aab5698864a39997508128c3cf086be2e51275a0a";
        for (signature, expected) in [(sign, 1), ("00", 0)] {
            let params = LoginParams {
                acct_id: Some("65a1b2c3d4e5f6"),
                username: Some("apiuser"),
                app_id: Some(APP_ID),
                timestamp: Some("1700000000"),
                sign: Some(signature),
                lcid: Some("2052"),
                ..LoginParams::default()
            };
            let outcome = auth.login_by_sign(&params, now(), &mut random);
            assert_eq!(outcome.body["LoginResultType"], expected, "{signature}");
        }
    }

    #[test]
    fn users_off_the_whitelist_get_not_whitelisted() {
        let mut auth = auth();
        auth.user_mut("apiuser").unwrap().webapi_allowed = false;
        let mut random = Random::new(1);
        let decision = auth.authorise(
            &signed("65a1b2c3d4e5f6", "apiuser", APP_SECRET, 2052),
            PATH,
            now(),
            ttl(),
            &mut random,
        );
        assert_eq!(decision, Decision::NotWhitelisted);
    }

    #[test]
    fn gateway_mode_checks_the_timestamp_window() {
        let mut auth = auth();
        auth.gateway_skew = Some(Duration::minutes(5));
        let mut random = Random::new(1);
        let credentials = signed("65a1b2c3d4e5f6", "apiuser", APP_SECRET, 2052);
        let late = now() + Duration::minutes(6);
        let Decision::Gateway(body) = auth.authorise(&credentials, PATH, late, ttl(), &mut random)
        else {
            panic!()
        };
        assert_eq!(body["errcode"], 4006);
        assert_eq!(
            body["description"],
            "Unauthorized, errDescEn: X-Api-TimeStamp is invalid: 1700000000[GW]"
        );
        let ok = auth.authorise(&credentials, PATH, now(), ttl(), &mut random);
        assert!(matches!(ok, Decision::Granted { .. }));
    }
}
