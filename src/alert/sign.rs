//! The signatures of alert receivers: pure functions of a secret and a timestamp.
//!
//! DingTalk and Feishu both sign `timestamp + "\n" + secret` with HMAC-SHA256 and base64,
//! but with the roles swapped: DingTalk keys the HMAC with the secret and hashes that string,
//! Feishu keys it with that string and hashes nothing. DingTalk's timestamp is in
//! milliseconds and travels in the query (URL-encoded there by the caller); Feishu's is in
//! seconds and travels in the JSON body. The generic webhook signs `timestamp + "." + body`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// DingTalk "加签": base64(HMAC-SHA256(key = secret, message = `{timestamp_ms}\n{secret}`)),
/// before URL encoding.
pub fn dingtalk(secret: &str, timestamp_ms: i64) -> String {
    let message = format!("{timestamp_ms}\n{secret}");
    BASE64.encode(hmac_sha256(secret.as_bytes(), message.as_bytes()))
}

/// Feishu "签名校验": base64(HMAC-SHA256(key = `{timestamp_s}\n{secret}`, message = empty)).
pub fn feishu(secret: &str, timestamp_s: i64) -> String {
    let key = format!("{timestamp_s}\n{secret}");
    BASE64.encode(hmac_sha256(key.as_bytes(), b""))
}

/// Generic webhook: `sha256=` and the lower-case hex of HMAC-SHA256(key = secret,
/// message = `{timestamp_s}.{body}`), so that a replayed body with a new time does not verify.
pub fn webhook(secret: &str, timestamp_s: i64, body: &[u8]) -> String {
    let mut message = format!("{timestamp_s}.").into_bytes();
    message.extend_from_slice(body);
    format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), &message))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values computed independently with Python 3:
    //   base64.b64encode(hmac.new(b"SECabc", b"1700000000000\nSECabc", sha256).digest())
    //   base64.b64encode(hmac.new(b"1700000000\nfs-secret", b"", sha256).digest())
    //   "sha256=" + hmac.new(b"k", b"1700000000.{}", sha256).hexdigest()
    #[test]
    fn signatures_match_independent_computations() {
        for (got, expected) in [
            (dingtalk("SECabc", 1_700_000_000_000), DINGTALK),
            (feishu("fs-secret", 1_700_000_000), FEISHU),
            (webhook("k", 1_700_000_000, b"{}"), WEBHOOK),
        ] {
            assert_eq!(got, expected);
        }
    }

    #[test]
    fn dingtalk_and_feishu_differ_for_the_same_inputs() {
        // The order of key and message is the whole difference between the two schemes.
        assert_ne!(dingtalk("s", 1), feishu("s", 1));
    }

    const DINGTALK: &str = "jcUpW0QmtKduN03n4JqQ0PBosVjqnM8gU7fIIvsDmCM=";
    const FEISHU: &str = "ognpFOmraex6LA29Ao14dsiNmmjE3YO4x5e/SX8n9Bw=";
    const WEBHOOK: &str = "sha256=c6ef4734033cee2367414a0939385eca0397754aa7a59716da7463a9298b5146";
}
