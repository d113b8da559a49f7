//! The login services `ValidateUser`, `LoginByAppSecret` and `LoginBySign` (spec §7.3):
//! each checks its credentials, counts failed passwords towards the lock-out, and on success
//! opens a session and answers a `LoginResult`. Business calls are authorised in the parent
//! module; this one only logs in.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::sign::kingdee as sign;
use crate::sim::kingdee::auth::{App, Auth, NewSession, Session};
use crate::sim::kingdee::random::Random;

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

    pub(super) fn app_user_allowed(&self, app: &App, username: &str) -> bool {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::kingdee::auth::tests::*;
    use crate::sim::kingdee::random::Random;

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
}
