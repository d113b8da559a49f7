//! Who may call: the Qimen router's checks (spec §8.3 steps 1–6) and the direct `openapi2`
//! checks (spec §8.4 steps 1–4), as pure functions of the decoded request, the credentials
//! and the current instant.
//!
//! Signatures are verified with [`crate::sign`], the same code the engine signs with. The
//! rate limiter and the business rules come after these checks and live elsewhere
//! (`faults`, `query`); this module decides nothing about data.

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::sign::qimen::{self, SignMethod};
use crate::sign::wdt_openapi::{self, LengthUnit};
use crate::sim::wdt::codes::{self, GatewayCode, WdtError};
use crate::sim::wdt::data::parse_wall_clock;
use crate::sim::wdt::params::{Decoded, Params, get};
use crate::time::from_shanghai;

/// The one Qimen method the sandbox serves.
pub const METHOD: &str = "wdt.stockin.order.query.refund";

/// What the Qimen gateway knows about the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QimenCredentials {
    pub app_key: String,
    pub app_secret: String,
    pub target_app_key: String,
    /// The WDT seller account (`sid`) behind WDT's Qimen app.
    pub sid: String,
    /// Allowed distance between `timestamp` and the server clock [U, 600 s].
    pub skew: Duration,
}

/// Qimen steps 1–5: method, app key, timestamp, sign, target app key. The first failure wins.
pub fn check_qimen(
    decoded: &Decoded,
    now: DateTime<Utc>,
    credentials: &QimenCredentials,
) -> Result<(), GatewayCode> {
    let params = &decoded.params;
    match get(params, "method") {
        None => return Err(codes::MISSING_METHOD),
        Some(method) if method != METHOD => return Err(codes::INVALID_METHOD),
        Some(_) => {}
    }
    match get(params, "app_key") {
        None => return Err(codes::MISSING_APP_KEY),
        Some(app_key) if app_key != credentials.app_key => return Err(codes::INVALID_APP_KEY),
        Some(_) => {}
    }
    let Some(timestamp) = get(params, "timestamp") else {
        return Err(codes::MISSING_TIMESTAMP);
    };
    match parse_qimen_timestamp(timestamp) {
        Some(at) if (now - at).abs() <= credentials.skew => {}
        _ => return Err(codes::INVALID_TIMESTAMP),
    }
    let Some(sign) = get(params, "sign") else {
        return Err(codes::MISSING_SIGNATURE);
    };
    let method = match get(params, "sign_method") {
        None => SignMethod::Md5,
        Some(text) => text
            .parse::<SignMethod>()
            .map_err(|_| codes::INVALID_SIGN_METHOD)?,
    };
    if !qimen::verify(
        params,
        &decoded.raw_body,
        &credentials.app_secret,
        method,
        sign,
    ) {
        return Err(codes::INVALID_SIGNATURE);
    }
    match get(params, "target_app_key") {
        None => Err(codes::MISSING_TARGET_APP_KEY),
        Some(target) if target != credentials.target_app_key => Err(codes::INVALID_TARGET_APP_KEY),
        Some(_) => Ok(()),
    }
}

/// Qimen step 6: the WDT seller account, checked by WDT behind the gateway.
pub fn check_sid<'a>(params: &'a Params, known_sid: &str) -> Result<&'a str, WdtError> {
    match get(params, "sid") {
        Some(sid) if sid == known_sid => Ok(sid),
        _ => Err(codes::seller_not_found()),
    }
}

/// A Qimen `timestamp`: `yyyy-MM-dd HH:mm:ss` in Asia/Shanghai, or epoch milliseconds (what
/// TOP's Python SDK sends).
pub fn parse_qimen_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return Utc.timestamp_millis_opt(text.parse().ok()?).single();
    }
    parse_wall_clock(text).map(from_shanghai)
}

/// Which length units the direct-mode verifier accepts in the sign (spec §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SignLengthPolicy {
    /// Characters only, as WDT's PHP server counts.
    #[default]
    Chars,
    /// UTF-8 bytes only, as some third-party ports count.
    Bytes,
    /// Either: a lenient server.
    Either,
}

impl SignLengthPolicy {
    fn units(self) -> &'static [LengthUnit] {
        match self {
            SignLengthPolicy::Chars => &[LengthUnit::Chars],
            SignLengthPolicy::Bytes => &[LengthUnit::Bytes],
            SignLengthPolicy::Either => &[LengthUnit::Chars, LengthUnit::Bytes],
        }
    }
}

/// What the direct `openapi2` endpoint knows about the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectCredentials {
    pub sid: String,
    pub appkey: String,
    pub appsecret: String,
    /// Allowed distance between `timestamp` and the server clock (300 s documented).
    pub skew: Duration,
    pub length_policy: SignLengthPolicy,
}

/// Direct steps 1–4: required parameters, timestamp, account, sign. The first failure wins.
pub fn check_direct(
    params: &Params,
    now: DateTime<Utc>,
    credentials: &DirectCredentials,
) -> Result<(), WdtError> {
    for name in ["sid", "appkey", "timestamp", "sign"] {
        if get(params, name).is_none() {
            return Err(codes::missing_parameter(name));
        }
    }
    let timestamp = get(params, "timestamp").unwrap_or_default();
    if timestamp.len() != 10 || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(codes::invalid_timestamp_format());
    }
    let seconds: i64 = timestamp
        .parse()
        .map_err(|_| codes::invalid_timestamp_format())?;
    if (now.timestamp() - seconds).abs() > credentials.skew.num_seconds() {
        return Err(codes::timestamp_expired());
    }
    if get(params, "sid") != Some(credentials.sid.as_str())
        || get(params, "appkey") != Some(credentials.appkey.as_str())
    {
        return Err(codes::invalid_app_key());
    }
    let sign = get(params, "sign").unwrap_or_default();
    let signed = credentials
        .length_policy
        .units()
        .iter()
        .any(|&unit| wdt_openapi::verify(params, &credentials.appsecret, unit, sign));
    if signed {
        Ok(())
    } else {
        Err(codes::invalid_sign())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_instant;

    fn now() -> DateTime<Utc> {
        parse_instant("2024-01-01 12:00:00").unwrap()
    }

    fn qimen_credentials() -> QimenCredentials {
        QimenCredentials {
            app_key: "12345678".to_string(),
            app_secret: "test_secret".to_string(),
            target_app_key: "87654321".to_string(),
            sid: "test2".to_string(),
            skew: Duration::seconds(600),
        }
    }

    /// The spec's §2.3 request, signed with `method`.
    fn signed(method: SignMethod, edit: impl FnOnce(&mut Params)) -> Decoded {
        let mut params: Params = [
            ("app_key", "12345678"),
            ("end_time", "2024-01-01 23:59:59"),
            ("format", "json"),
            ("method", METHOD),
            ("page_no", "0"),
            ("page_size", "40"),
            ("sid", "test2"),
            ("start_time", "2024-01-01 00:00:00"),
            ("target_app_key", "87654321"),
            ("timestamp", "2024-01-01 12:00:00"),
            ("v", "2.0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        params.insert("sign_method".to_string(), method.to_string());
        edit(&mut params);
        let sign = qimen::sign(&params, "test_secret", method);
        params.insert("sign".to_string(), sign);
        Decoded {
            params,
            raw_body: Vec::new(),
        }
    }

    #[test]
    fn correctly_signed_requests_pass_with_every_method() {
        for method in SignMethod::ALL {
            assert_eq!(
                check_qimen(&signed(method, |_| {}), now(), &qimen_credentials()),
                Ok(())
            );
        }
        // The spec's own vector, verbatim.
        let decoded = signed(SignMethod::Md5, |_| {});
        assert_eq!(decoded.params["sign"], "C659C284B1E8836251F1AA50BF933259");
        // Without sign_method the gateway assumes md5.
        let mut no_method = signed(SignMethod::Md5, |p| {
            p.remove("sign_method");
        });
        assert_eq!(check_qimen(&no_method, now(), &qimen_credentials()), Ok(()));
        // Lowercase hex is accepted.
        let sign = no_method.params["sign"].to_lowercase();
        no_method.params.insert("sign".to_string(), sign);
        assert_eq!(check_qimen(&no_method, now(), &qimen_credentials()), Ok(()));
    }

    #[test]
    fn each_check_fails_with_its_code_and_the_first_failure_wins() {
        let credentials = qimen_credentials();
        let tamper = |edit: &dyn Fn(&mut Params)| {
            let mut decoded = signed(SignMethod::Md5, |_| {});
            edit(&mut decoded.params);
            check_qimen(&decoded, now(), &credentials).unwrap_err().code
        };
        let resign = |edit: &dyn Fn(&mut Params)| {
            let decoded = signed(SignMethod::Md5, |p| edit(p));
            check_qimen(&decoded, now(), &credentials).unwrap_err().code
        };
        let set = |key: &'static str, value: &'static str| {
            move |p: &mut Params| {
                p.insert(key.to_string(), value.to_string());
            }
        };
        let remove = |key: &'static str| {
            move |p: &mut Params| {
                p.remove(key);
            }
        };
        assert_eq!(resign(&remove("method")), 21);
        assert_eq!(resign(&set("method", "wdt.trade.query")), 22);
        assert_eq!(resign(&remove("app_key")), 28);
        assert_eq!(resign(&set("app_key", "11111111")), 29);
        assert_eq!(resign(&remove("timestamp")), 30);
        assert_eq!(resign(&set("timestamp", "2024-01-01 11:49:59")), 31);
        assert_eq!(resign(&set("timestamp", "2024/01/01 12:00:00")), 31);
        assert_eq!(tamper(&remove("sign")), 24);
        assert_eq!(resign(&set("sign_method", "sha1")), 23);
        assert_eq!(tamper(&set("page_no", "1")), 25);
        assert_eq!(resign(&remove("target_app_key")), 40);
        assert_eq!(resign(&set("target_app_key", "11111111")), 41);
        // Several problems: the method check comes first.
        assert_eq!(
            resign(&|p: &mut Params| {
                p.remove("method");
                p.remove("app_key");
            }),
            21
        );
    }

    #[test]
    fn timestamps_within_the_skew_pass_in_both_spellings() {
        let credentials = qimen_credentials();
        for timestamp in [
            "2024-01-01 11:50:00",
            "2024-01-01 12:10:00",
            "1704081600000",
            "1704082200000",
        ] {
            let decoded = signed(SignMethod::Md5, |p| {
                p.insert("timestamp".to_string(), timestamp.to_string());
            });
            assert_eq!(
                check_qimen(&decoded, now(), &credentials),
                Ok(()),
                "{timestamp}"
            );
        }
        // Ten digits read as milliseconds land in 1970: stale.
        let seconds = signed(SignMethod::Md5, |p| {
            p.insert("timestamp".to_string(), "1704081600".to_string());
        });
        assert_eq!(
            check_qimen(&seconds, now(), &credentials).unwrap_err().code,
            31
        );
    }

    #[test]
    fn a_raw_body_takes_part_in_the_sign() {
        let credentials = qimen_credentials();
        let mut decoded = signed(SignMethod::Md5, |_| {});
        decoded.raw_body = br#"{"x":1}"#.to_vec();
        assert_eq!(
            check_qimen(&decoded, now(), &credentials).unwrap_err().code,
            25
        );
        let unsigned: Params = decoded
            .params
            .iter()
            .filter(|(k, _)| *k != "sign")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let sign =
            qimen::sign_with_body(&unsigned, &decoded.raw_body, "test_secret", SignMethod::Md5);
        decoded.params.insert("sign".to_string(), sign);
        assert_eq!(check_qimen(&decoded, now(), &credentials), Ok(()));
    }

    #[test]
    fn the_sid_must_be_the_known_seller() {
        let decoded = signed(SignMethod::Md5, |_| {});
        assert_eq!(check_sid(&decoded.params, "test2"), Ok("test2"));
        assert_eq!(check_sid(&decoded.params, "other").unwrap_err().code, 1020);
        assert_eq!(check_sid(&Params::new(), "test2").unwrap_err().code, 1020);
    }

    fn direct_credentials(length_policy: SignLengthPolicy) -> DirectCredentials {
        DirectCredentials {
            sid: "test2".to_string(),
            appkey: "test2-xx".to_string(),
            appsecret: "12345".to_string(),
            skew: Duration::seconds(300),
            length_policy,
        }
    }

    /// The spec's non-ASCII vector: `shop_no=店铺01`, timestamp 1704081600.
    fn direct(unit: LengthUnit, edit: impl FnOnce(&mut Params)) -> Params {
        let mut params: Params = [
            ("appkey", "test2-xx"),
            ("end_time", "2024-01-01 23:59:59"),
            ("page_no", "0"),
            ("page_size", "40"),
            ("shop_no", "店铺01"),
            ("sid", "test2"),
            ("start_time", "2024-01-01 00:00:00"),
            ("timestamp", "1704081600"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        edit(&mut params);
        let sign = wdt_openapi::sign(&params, "12345", unit);
        params.insert("sign".to_string(), sign);
        params
    }

    fn direct_now() -> DateTime<Utc> {
        Utc.timestamp_opt(1_704_081_600, 0).unwrap()
    }

    #[test]
    fn direct_mode_verifies_the_length_prefixed_sign() {
        let chars = direct(LengthUnit::Chars, |_| {});
        assert_eq!(chars["sign"], "3373599a4b1ec371526878dc679cd513");
        let bytes = direct(LengthUnit::Bytes, |_| {});
        assert_eq!(bytes["sign"], "b54361144d2ab6e51cbb5953728e3e6b");
        let check = |params: &Params, policy| {
            check_direct(params, direct_now(), &direct_credentials(policy))
        };
        assert_eq!(check(&chars, SignLengthPolicy::Chars), Ok(()));
        assert_eq!(
            check(&bytes, SignLengthPolicy::Chars).unwrap_err().code,
            102
        );
        assert_eq!(check(&bytes, SignLengthPolicy::Bytes), Ok(()));
        assert_eq!(check(&chars, SignLengthPolicy::Either), Ok(()));
        assert_eq!(check(&bytes, SignLengthPolicy::Either), Ok(()));
    }

    #[test]
    fn direct_mode_failures_in_order() {
        let credentials = direct_credentials(SignLengthPolicy::Chars);
        let code = |params: Params| check_direct(&params, direct_now(), &credentials).unwrap_err();
        let missing = code(direct(LengthUnit::Chars, |p| {
            p.remove("appkey");
        }));
        assert_eq!(
            (missing.code, missing.message.as_str()),
            (100, "缺少必要请求参数【 appkey 】")
        );
        let mut unsigned = direct(LengthUnit::Chars, |_| {});
        unsigned.remove("sign");
        assert_eq!(code(unsigned).code, 100);
        let millis = code(direct(LengthUnit::Chars, |p| {
            p.insert("timestamp".to_string(), "1704081600000".to_string());
        }));
        assert_eq!(millis.message, "时间戳格式错误");
        let stale = code(direct(LengthUnit::Chars, |p| {
            p.insert("timestamp".to_string(), "1704081299".to_string());
        }));
        assert_eq!((stale.code, stale.message.as_str()), (103, "时间戳过期"));
        assert_eq!(
            code(direct(LengthUnit::Chars, |p| {
                p.insert("sid".to_string(), "other".to_string());
            }))
            .code,
            101
        );
        let mut tampered = direct(LengthUnit::Chars, |_| {});
        tampered.insert("page_no".to_string(), "1".to_string());
        assert_eq!(code(tampered).code, 102);
    }
}
