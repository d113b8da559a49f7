//! Verifying the SDK's app-signature headers (spec §2.2, "server-side verification recipe")
//! with the very functions of [`crate::sign::kingdee`] the engine signs with, and the public
//! gateway's timestamp window. Pure: it reads the data centre and opens no session.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::sign::kingdee::{self as sign, AppData, header};
use crate::sim::kingdee::auth::{Auth, Credentials};

impl Auth {
    /// The public gateway's timestamp check (off unless `gateway_skew` is set).
    pub(super) fn gateway_refusal(
        &self,
        credentials: &Credentials,
        now: DateTime<Utc>,
    ) -> Option<Value> {
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
    use chrono::Duration;

    use super::*;
    use crate::sim::kingdee::auth::Decision;
    use crate::sim::kingdee::auth::tests::*;
    use crate::sim::kingdee::random::Random;

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
