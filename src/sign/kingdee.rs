//! Kingdee K/3 Cloud WebAPI signatures: the official SDK's app-signature "Auth-Version 2.0"
//! headers, its client-secret obfuscation (`DecodeAppSecret`), and the `LoginBySign` sign.
//!
//! Everything here is a pure function of its inputs; the timestamp and nonce are parameters.
//! The algorithms follow the official Python SDK (`kingdee-cdp-webapi-sdk` 8.2.0,
//! `core/webapi_client.py` `BuildHeader`, `util/encode_util.py`, `util/hmac_util.py`) as
//! described in `specs/kingdee_k3cloud.md` §2.2, and are tested against the worked example of
//! §2.3. The engine signs its requests with [`v2_headers`]; the Kingdee sandbox verifies with
//! the same building blocks, so the two cannot drift apart.
//!
//! Secrets are plain `&str` here: callers holding a [`crate::secret::Secret`] expose it only
//! at the call.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

/// The value of `X-Api-Auth-Version` the SDK sends.
pub const AUTH_VERSION: &str = "2.0";

/// The value of `x-api-signheaders` the SDK sends (note: the canonical string lists the two
/// headers the other way round, sorted by name).
pub const SIGN_HEADERS: &str = "x-api-timestamp,x-api-nonce";

/// The SDK's built-in XOR key for client secrets, already rot13-decoded
/// (`rot13("0054s397p6234378o09pn7q3r5qropr7")`).
pub const DEFAULT_XOR_KEY: &str = "0054f397c6234378b09ca7d3e5debce7";

/// Header names, spelled as the SDK sends them (HTTP header names are case-insensitive).
pub mod header {
    pub const CLIENT_ID: &str = "X-Api-ClientID";
    pub const AUTH_VERSION: &str = "X-Api-Auth-Version";
    pub const TIMESTAMP: &str = "x-api-timestamp";
    pub const NONCE: &str = "x-api-nonce";
    pub const SIGN_HEADERS: &str = "x-api-signheaders";
    pub const SIGNATURE: &str = "X-Api-Signature";
    pub const APP_KEY: &str = "X-Kd-Appkey";
    pub const APP_DATA: &str = "X-Kd-Appdata";
    pub const KD_SIGNATURE: &str = "X-Kd-Signature";
    /// The session id, sent as a header once a session is known (and as a cookie).
    pub const SESSION_ID: &str = "kdservice-sessionid";
}

/// Python's `urllib.parse.quote(path, safe='')`: everything but `A-Za-z0-9_.-~` is
/// percent-encoded with upper-case hex, `/` included.
const PATH_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');

/// The XOR key an `x-kdapi-secpwd` setting yields: `rot13` of its first 32 characters.
///
/// The SDK interleaves random digits and drops them again, so only the first 32 characters
/// matter. Returns `None` for a shorter value (the SDK's key would then contain its random
/// digits, which no server could reproduce).
pub fn xor_key_from_secpwd(secpwd: &str) -> Option<String> {
    let head: String = secpwd.chars().take(32).collect();
    if head.chars().count() < 32 {
        return None;
    }
    Some(rot13(&head))
}

fn rot13(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'a'..='z' => (((c as u8 - b'a') + 13) % 26 + b'a') as char,
            'A'..='Z' => (((c as u8 - b'A') + 13) % 26 + b'A') as char,
            _ => c,
        })
        .collect()
}

/// The SDK's `DecodeAppSecret` with its default key: the part of an `app_id` after `_`
/// becomes the client secret the HMAC of `X-Api-Signature` is keyed with.
///
/// Like the SDK, an input that is not exactly 32 characters of base64 yields an empty string.
/// XOR is its own inverse, so the same function also encodes a client secret (see
/// [`encode_client_secret`]).
pub fn decode_app_secret(encoded: &str) -> String {
    decode_app_secret_with_key(encoded, DEFAULT_XOR_KEY)
}

/// [`decode_app_secret`] with an explicit XOR key (see [`xor_key_from_secpwd`]).
pub fn decode_app_secret_with_key(encoded: &str, xor_key: &str) -> String {
    if encoded.chars().count() != 32 {
        return String::new();
    }
    let Ok(raw) = BASE64.decode(encoded) else {
        return String::new();
    };
    let key = xor_key.as_bytes();
    if key.len() < raw.len() {
        return String::new();
    }
    let mixed: Vec<u8> = raw.iter().zip(key).map(|(byte, k)| byte ^ k).collect();
    BASE64.encode(mixed)
}

/// The inverse of [`decode_app_secret`]: the 32-character text that goes after `_` in an
/// `app_id` for a given client secret.
pub fn encode_client_secret(client_secret: &str) -> String {
    decode_app_secret(client_secret)
}

/// The `app_id` (应用ID) the Kingdee console hands out: `<client id>_<encoded secret>`.
pub fn app_id(client_id: &str, client_secret: &str) -> String {
    format!("{client_id}_{}", encode_client_secret(client_secret))
}

/// Split an `app_id` into client id and decoded client secret, as the SDK does: exactly one
/// `_`, otherwise both parts are empty.
pub fn client_of_app_id(app_id: &str) -> (String, String) {
    let parts: Vec<&str> = app_id.split('_').collect();
    match parts.as_slice() {
        [client_id, encoded] => (client_id.to_string(), decode_app_secret(encoded)),
        _ => (String::new(), String::new()),
    }
}

/// The path as the SDK puts it into the canonical string: the request path (with the
/// virtual directory, and the query if any) URL-encoded with `/` encoded too.
pub fn encode_path(path_and_query: &str) -> String {
    utf8_percent_encode(path_and_query, PATH_ENCODE_SET).to_string()
}

/// The canonical string `X-Api-Signature` signs.
pub fn api_canonical_string(path_and_query: &str, nonce: &str, timestamp: &str) -> String {
    format!(
        "POST\n{}\n\nx-api-nonce:{nonce}\nx-api-timestamp:{timestamp}\n",
        encode_path(path_and_query)
    )
}

/// The SDK's `HmacSHA256`: base64 of the lower-case hex of HMAC-SHA256 (88 characters).
pub fn hmac_sha256_base64_hex(key: &str, message: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(message.as_bytes());
    let digest = mac.finalize().into_bytes();
    BASE64.encode(hex::encode(digest))
}

/// `X-Api-Signature` for a request to `path_and_query` (e.g.
/// `/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.BatchSave.common.kdsvc`).
pub fn api_signature(
    client_secret: &str,
    path_and_query: &str,
    nonce: &str,
    timestamp: &str,
) -> String {
    hmac_sha256_base64_hex(
        client_secret,
        &api_canonical_string(path_and_query, nonce, timestamp),
    )
}

/// Who the signed request acts as: the plain text behind `X-Kd-Appdata`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppData {
    pub acct_id: String,
    pub username: String,
    pub lcid: String,
    pub org_num: String,
}

impl AppData {
    pub fn new(acct_id: &str, username: &str, lcid: u32, org_num: u64) -> AppData {
        AppData {
            acct_id: acct_id.to_string(),
            username: username.to_string(),
            lcid: lcid.to_string(),
            org_num: org_num.to_string(),
        }
    }

    /// `<acctId>,<userName>,<lcid>,<orgNum>`: what `X-Kd-Signature` signs after the app id.
    pub fn plain(&self) -> String {
        format!(
            "{},{},{},{}",
            self.acct_id, self.username, self.lcid, self.org_num
        )
    }

    /// The `X-Kd-Appdata` header value: base64 of [`AppData::plain`] in UTF-8.
    pub fn header_value(&self) -> String {
        BASE64.encode(self.plain())
    }

    /// Read an `X-Kd-Appdata` header value; `None` when it is not base64 of UTF-8 text with
    /// four comma-separated parts.
    pub fn parse(header_value: &str) -> Option<AppData> {
        let bytes = BASE64.decode(header_value.trim()).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let parts: Vec<&str> = text.split(',').collect();
        match parts.as_slice() {
            [acct_id, username, lcid, org_num] => Some(AppData {
                acct_id: acct_id.to_string(),
                username: username.to_string(),
                lcid: lcid.to_string(),
                org_num: org_num.to_string(),
            }),
            _ => None,
        }
    }
}

/// `X-Kd-Signature`: HMAC keyed with the app secret (应用密钥) over `app_id + app_data_plain`.
pub fn kd_signature(app_id: &str, app_secret: &str, app_data_plain: &str) -> String {
    hmac_sha256_base64_hex(app_secret, &format!("{app_id}{app_data_plain}"))
}

/// Everything needed to sign requests the way the SDK does.
#[derive(Debug, Clone, Copy)]
pub struct AppCredentials<'a> {
    pub acct_id: &'a str,
    pub username: &'a str,
    /// `<client id>_<encoded client secret>`.
    pub app_id: &'a str,
    pub app_secret: &'a str,
    pub lcid: u32,
    pub org_num: u64,
}

/// The app-signature headers for one request, in the SDK's order (without the session id,
/// cookies and content type, which the caller adds).
///
/// `path_and_query` is the request path including the virtual directory; `timestamp` is
/// Unix seconds as text, and the SDK sends the same value as the nonce.
pub fn v2_headers(
    credentials: &AppCredentials<'_>,
    path_and_query: &str,
    timestamp: &str,
    nonce: &str,
) -> Vec<(&'static str, String)> {
    let (client_id, client_secret) = client_of_app_id(credentials.app_id);
    let app_data = AppData::new(
        credentials.acct_id,
        credentials.username,
        credentials.lcid,
        credentials.org_num,
    );
    vec![
        (header::CLIENT_ID, client_id),
        (header::AUTH_VERSION, AUTH_VERSION.to_string()),
        (header::TIMESTAMP, timestamp.to_string()),
        (header::NONCE, nonce.to_string()),
        (header::SIGN_HEADERS, SIGN_HEADERS.to_string()),
        (
            header::SIGNATURE,
            api_signature(&client_secret, path_and_query, nonce, timestamp),
        ),
        (header::APP_KEY, credentials.app_id.to_string()),
        (header::APP_DATA, app_data.header_value()),
        (
            header::KD_SIGNATURE,
            kd_signature(
                credentials.app_id,
                credentials.app_secret,
                &app_data.plain(),
            ),
        ),
    ]
}

/// The `sign` parameter of `AuthService.LoginBySign`: lower-case hex SHA-256 of the five
/// values sorted as plain strings and concatenated without separators.
pub fn login_by_sign(
    acct_id: &str,
    username: &str,
    app_id: &str,
    app_secret: &str,
    timestamp: &str,
) -> String {
    let mut parts = [acct_id, username, app_id, app_secret, timestamp];
    parts.sort_unstable();
    hex::encode(Sha256::digest(parts.concat().as_bytes()))
}

/// Compare two signatures without leaking where they differ through timing.
pub fn signatures_equal(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    // The worked example of specs/kingdee_k3cloud.md §2.3.
    const ACCT: &str = "65a1b2c3d4e5f6";
    const USER: &str = "apiuser";
    const CLIENT_SECRET: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
    const APP_ID: &str = "299999_W2bDRxFLQqCZ5Y9P7+7t2dxs0L2/xptH";
    const APP_SECRET: &str = "0123456789abcdef0123456789abcdef";
    const BATCH_SAVE: &str =
        "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.BatchSave.common.kdsvc";
    const BILL_QUERY: &str =
        "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.ExecuteBillQuery.common.kdsvc";
    const TIME: &str = "1700000000";

    fn credentials() -> AppCredentials<'static> {
        AppCredentials {
            acct_id: ACCT,
            username: USER,
            app_id: APP_ID,
            app_secret: APP_SECRET,
            lcid: 2052,
            org_num: 0,
        }
    }

    #[test]
    fn decode_app_secret_matches_the_decoder_vector_both_ways() {
        assert_eq!(
            decode_app_secret("W2bDRxFLQqCZ5Y9P7+7t2dxs0L2/xptH"),
            CLIENT_SECRET
        );
        assert_eq!(
            encode_client_secret(CLIENT_SECRET),
            "W2bDRxFLQqCZ5Y9P7+7t2dxs0L2/xptH"
        );
        assert_eq!(app_id("299999", CLIENT_SECRET), APP_ID);
        assert_eq!(
            client_of_app_id(APP_ID),
            ("299999".to_string(), CLIENT_SECRET.to_string())
        );
    }

    #[test]
    fn decode_app_secret_rejects_what_the_sdk_rejects() {
        for (input, why) in [
            ("", "empty"),
            ("W2bDRxFLQqCZ5Y9P7+7t2dxs0L2/xpt", "31 characters"),
            ("W2bDRxFLQqCZ5Y9P7+7t2dxs0L2/xptHH", "33 characters"),
            ("W2bDRxFLQqCZ5Y9P7+7t2dxs0L2/xp*H", "not base64"),
        ] {
            assert_eq!(decode_app_secret(input), "", "{why}");
        }
        assert_eq!(client_of_app_id("299999"), (String::new(), String::new()));
        assert_eq!(client_of_app_id("a_b_c"), (String::new(), String::new()));
    }

    #[test]
    fn the_default_key_is_rot13_of_the_sdk_constant() {
        assert_eq!(rot13("0054s397p6234378o09pn7q3r5qropr7"), DEFAULT_XOR_KEY);
        assert_eq!(
            xor_key_from_secpwd("0054s397p6234378o09pn7q3r5qropr7-and-more").as_deref(),
            Some(DEFAULT_XOR_KEY)
        );
        assert_eq!(xor_key_from_secpwd("short"), None);
    }

    #[test]
    fn canonical_strings_match_the_worked_example() {
        assert_eq!(
            api_canonical_string(BATCH_SAVE, TIME, TIME),
            "POST\n%2Fk3cloud%2FKingdee.BOS.WebApi.ServicesStub.DynamicFormService.BatchSave.common.kdsvc\n\nx-api-nonce:1700000000\nx-api-timestamp:1700000000\n"
        );
        assert_eq!(
            api_canonical_string(BILL_QUERY, TIME, TIME),
            "POST\n%2Fk3cloud%2FKingdee.BOS.WebApi.ServicesStub.DynamicFormService.ExecuteBillQuery.common.kdsvc\n\nx-api-nonce:1700000000\nx-api-timestamp:1700000000\n"
        );
    }

    #[test]
    fn path_encoding_is_pythons_quote_with_nothing_safe() {
        for (path, encoded) in [
            ("/k3cloud/A.b_c-d~e", "%2Fk3cloud%2FA.b_c-d~e"),
            ("/a b", "%2Fa%20b"),
            ("/x?y=1&z", "%2Fx%3Fy%3D1%26z"),
            ("/中", "%2F%E4%B8%AD"),
        ] {
            assert_eq!(encode_path(path), encoded, "{path}");
        }
    }

    #[test]
    fn api_signatures_match_the_worked_example() {
        let expected_hex = "74bc51ea4d5f144f05d4036f660849b8d1d4683019a9bc2714bc5d5258b41310";
        assert_eq!(
            BASE64.encode(expected_hex),
            api_signature(CLIENT_SECRET, BATCH_SAVE, TIME, TIME)
        );
        assert_eq!(
            api_signature(CLIENT_SECRET, BATCH_SAVE, TIME, TIME),
            "NzRiYzUxZWE0ZDVmMTQ0ZjA1ZDQwMzZmNjYwODQ5YjhkMWQ0NjgzMDE5YTliYzI3MTRiYzVkNTI1OGI0MTMxMA=="
        );
        assert_eq!(
            api_signature(CLIENT_SECRET, BILL_QUERY, TIME, TIME),
            "ZWFiZmMyMTc2ZjM0MThhMjcwZTQ5Y2EyYjVlZmE1NWRjZGQyYjgwZjk4ZTRiODRhODRkOWUyM2YwZGU5ZWNmYw=="
        );
    }

    #[test]
    fn app_data_and_kd_signature_match_the_worked_example() {
        let app_data = AppData::new(ACCT, USER, 2052, 0);
        assert_eq!(app_data.plain(), "65a1b2c3d4e5f6,apiuser,2052,0");
        assert_eq!(
            app_data.header_value(),
            "NjVhMWIyYzNkNGU1ZjYsYXBpdXNlciwyMDUyLDA="
        );
        assert_eq!(
            AppData::parse("NjVhMWIyYzNkNGU1ZjYsYXBpdXNlciwyMDUyLDA="),
            Some(app_data.clone())
        );
        assert_eq!(AppData::parse("not base64!"), None);
        assert_eq!(AppData::parse(&BASE64.encode("a,b,c")), None);
        assert_eq!(
            kd_signature(APP_ID, APP_SECRET, &app_data.plain()),
            "NDM1ZmVmNjMxYjU0ZGMzNjViOGFmNmE1MzEyZTEyMWQwMzY3ODEzYWU2MDNiZWM3YzRjZWM1MjQ3ODgyNTdiNw=="
        );
    }

    #[test]
    fn v2_headers_are_the_sdks_headers_in_order() {
        let headers = v2_headers(&credentials(), BATCH_SAVE, TIME, TIME);
        let expected = [
            ("X-Api-ClientID", "299999"),
            ("X-Api-Auth-Version", "2.0"),
            ("x-api-timestamp", TIME),
            ("x-api-nonce", TIME),
            ("x-api-signheaders", "x-api-timestamp,x-api-nonce"),
            (
                "X-Api-Signature",
                "NzRiYzUxZWE0ZDVmMTQ0ZjA1ZDQwMzZmNjYwODQ5YjhkMWQ0NjgzMDE5YTliYzI3MTRiYzVkNTI1OGI0MTMxMA==",
            ),
            ("X-Kd-Appkey", APP_ID),
            ("X-Kd-Appdata", "NjVhMWIyYzNkNGU1ZjYsYXBpdXNlciwyMDUyLDA="),
            (
                "X-Kd-Signature",
                "NDM1ZmVmNjMxYjU0ZGMzNjViOGFmNmE1MzEyZTEyMWQwMzY3ODEzYWU2MDNiZWM3YzRjZWM1MjQ3ODgyNTdiNw==",
            ),
        ];
        let actual: Vec<(&str, &str)> = headers
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        assert_eq!(actual, expected);
    }

    #[test]
    fn login_by_sign_matches_the_worked_example() {
        assert_eq!(
            login_by_sign(ACCT, USER, APP_ID, APP_SECRET, TIME),
            "92f57381f1f7a8b581c2fb8aab5698864a39997508128c3cf086be2e51275a0a"
        );
    }

    #[test]
    fn signature_comparison_needs_every_byte() {
        assert!(signatures_equal("abc", "abc"));
        assert!(!signatures_equal("abc", "abd"));
        assert!(!signatures_equal("abc", "abcd"));
    }
}
