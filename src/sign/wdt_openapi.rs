//! The signature of WDT's own `openapi2` HTTP API (spec `wdt_qimen.md` §3.3), the direct
//! alternative to the Qimen router.
//!
//! Every parameter except `sign` is written as `%02d-key:%04d-value`, where the numbers are
//! the lengths of key and value; the pieces are sorted by key bytes and joined with `;`, the
//! app secret is appended, and the sign is the lowercase hex MD5 of that text. The widths are
//! minimum widths: a value longer than 9999 prints its real length.
//!
//! The length unit is the trap: WDT's PHP server counts Unicode characters (`iconv_strlen`),
//! some third-party ports count UTF-8 bytes. Both agree on ASCII; a Chinese `shop_no` tells
//! them apart, so the unit is a parameter. Pure, no IO.

use std::fmt;
use std::str::FromStr;

use md5::{Digest, Md5};

/// How lengths in the signed text are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LengthUnit {
    /// Unicode scalar values, as WDT's PHP server (`iconv_strlen(…, 'UTF-8')`) counts.
    #[default]
    Chars,
    /// UTF-8 bytes, as some third-party clients count.
    Bytes,
}

impl LengthUnit {
    pub fn as_str(self) -> &'static str {
        match self {
            LengthUnit::Chars => "chars",
            LengthUnit::Bytes => "bytes",
        }
    }

    fn length(self, text: &str) -> usize {
        match self {
            LengthUnit::Chars => text.chars().count(),
            LengthUnit::Bytes => text.len(),
        }
    }
}

impl fmt::Display for LengthUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LengthUnit {
    type Err = String;

    fn from_str(text: &str) -> Result<LengthUnit, String> {
        match text {
            "chars" => Ok(LengthUnit::Chars),
            "bytes" => Ok(LengthUnit::Bytes),
            _ => Err(format!(
                "`{text}` is not a length unit: expected `chars` or `bytes`"
            )),
        }
    }
}

/// The signed text without the secret: `06-appkey:0008-test2-xx;08-end_time:…`.
pub fn canonical_string<I, K, V>(params: I, unit: LengthUnit) -> String
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut pairs: Vec<(K, V)> = params
        .into_iter()
        .filter(|(key, _)| key.as_ref() != "sign")
        .collect();
    pairs.sort_by(|a, b| a.0.as_ref().as_bytes().cmp(b.0.as_ref().as_bytes()));
    pairs
        .iter()
        .map(|(key, value)| {
            let (key, value) = (key.as_ref(), value.as_ref());
            format!(
                "{:02}-{key}:{:04}-{value}",
                unit.length(key),
                unit.length(value)
            )
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// The lowercase hex sign of these parameters.
pub fn sign<I, K, V>(params: I, app_secret: &str, unit: LengthUnit) -> String
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut text = canonical_string(params, unit);
    text.push_str(app_secret);
    hex::encode(Md5::digest(text.as_bytes()))
}

/// Whether `given` is the right sign; hex case is ignored.
pub fn verify<I, K, V>(params: I, app_secret: &str, unit: LengthUnit, given: &str) -> bool
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    sign(params, app_secret, unit).eq_ignore_ascii_case(given.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFICIAL: [(&str, &str); 7] = [
        ("appkey", "test2-xx"),
        ("end_time", "2016-08-01 13:00:00"),
        ("page_no", "0"),
        ("page_size", "40"),
        ("sid", "test2"),
        ("start_time", "2016-08-01 12:00:00"),
        ("timestamp", "1470042310"),
    ];

    const CHINESE_SHOP: [(&str, &str); 8] = [
        ("appkey", "test2-xx"),
        ("end_time", "2024-01-01 23:59:59"),
        ("page_no", "0"),
        ("page_size", "40"),
        ("shop_no", "店铺01"),
        ("sid", "test2"),
        ("start_time", "2024-01-01 00:00:00"),
        ("timestamp", "1704081600"),
    ];

    #[test]
    fn the_official_example() {
        assert_eq!(
            canonical_string(OFFICIAL, LengthUnit::Chars),
            "06-appkey:0008-test2-xx;08-end_time:0019-2016-08-01 13:00:00;07-page_no:0001-0;\
             09-page_size:0002-40;03-sid:0005-test2;10-start_time:0019-2016-08-01 12:00:00;\
             09-timestamp:0010-1470042310"
        );
        for unit in [LengthUnit::Chars, LengthUnit::Bytes] {
            assert_eq!(
                sign(OFFICIAL, "12345", unit),
                "ad4e6fe037ea6e3ba4768317be9d1309"
            );
        }
    }

    #[test]
    fn non_ascii_values_tell_the_length_units_apart() {
        assert!(
            canonical_string(CHINESE_SHOP, LengthUnit::Chars).contains("07-shop_no:0004-店铺01")
        );
        assert!(
            canonical_string(CHINESE_SHOP, LengthUnit::Bytes).contains("07-shop_no:0008-店铺01")
        );
        assert_eq!(
            sign(CHINESE_SHOP, "12345", LengthUnit::Chars),
            "3373599a4b1ec371526878dc679cd513"
        );
        assert_eq!(
            sign(CHINESE_SHOP, "12345", LengthUnit::Bytes),
            "b54361144d2ab6e51cbb5953728e3e6b"
        );
    }

    #[test]
    fn sign_is_excluded_order_is_irrelevant_and_case_is_ignored() {
        let mut params: Vec<(&str, &str)> = OFFICIAL.to_vec();
        params.reverse();
        params.push(("sign", "anything"));
        assert!(verify(
            params.clone(),
            "12345",
            LengthUnit::Chars,
            "AD4E6FE037EA6E3BA4768317BE9D1309"
        ));
        assert!(!verify(
            params,
            "54321",
            LengthUnit::Chars,
            "ad4e6fe037ea6e3ba4768317be9d1309"
        ));
    }

    #[test]
    fn widths_are_minimum_widths() {
        let long = "x".repeat(10_000);
        assert_eq!(
            canonical_string([("remark", long.as_str())], LengthUnit::Chars),
            format!("06-remark:10000-{long}")
        );
    }

    #[test]
    fn length_units_parse_and_print() {
        for unit in [LengthUnit::Chars, LengthUnit::Bytes] {
            assert_eq!(unit.to_string().parse::<LengthUnit>(), Ok(unit));
        }
        assert!("runes".parse::<LengthUnit>().is_err());
    }
}
