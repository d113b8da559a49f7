//! Fixtures shared by the auth tests, and the tests of sessions and of the decision on a
//! business call.

use chrono::TimeZone;

use super::*;
use crate::sign::kingdee::{AppCredentials, v2_headers};

pub(super) const PATH: &str =
    "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.BatchSave.common.kdsvc";
pub(super) const APP_ID: &str = "299999_W2bDRxFLQqCZ5Y9P7+7t2dxs0L2/xptH";
pub(super) const APP_SECRET: &str = "0123456789abcdef0123456789abcdef";

pub(super) fn auth() -> Auth {
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

pub(super) fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000, 0).unwrap()
}

pub(super) fn ttl() -> Duration {
    Duration::minutes(20)
}

pub(super) fn signed(acct: &str, user: &str, app_secret: &str, lcid: u32) -> Credentials {
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
