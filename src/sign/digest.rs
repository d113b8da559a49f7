//! Digests and MACs by name, for the declarative `signature` auth strategy: `md5`, `sha1`,
//! `sha256` over the signed text, or `hmac-md5`, `hmac-sha1`, `hmac-sha256` keyed with the
//! secret; the result as upper- or lower-case hex or base64.
//!
//! Pure: no clock, no IO. The names here are the YAML vocabulary; `config::compile` parses
//! them with [`Algorithm::from_name`] and [`Encoding::from_name`] so a typo fails `check`.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use sha1::Sha1;
use sha2::Sha256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha1,
    Sha256,
    HmacMd5,
    HmacSha1,
    HmacSha256,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    HexUpper,
    HexLower,
    Base64,
}

impl Algorithm {
    pub const NAMES: [&'static str; 6] = [
        "md5",
        "sha1",
        "sha256",
        "hmac-md5",
        "hmac-sha1",
        "hmac-sha256",
    ];

    pub fn from_name(name: &str) -> Option<Algorithm> {
        Some(match name {
            "md5" => Algorithm::Md5,
            "sha1" => Algorithm::Sha1,
            "sha256" => Algorithm::Sha256,
            "hmac-md5" => Algorithm::HmacMd5,
            "hmac-sha1" => Algorithm::HmacSha1,
            "hmac-sha256" => Algorithm::HmacSha256,
            _ => return None,
        })
    }

    /// Whether the algorithm is keyed with the secret (a MAC) rather than a plain digest.
    pub fn keyed(self) -> bool {
        matches!(
            self,
            Algorithm::HmacMd5 | Algorithm::HmacSha1 | Algorithm::HmacSha256
        )
    }
}

impl Encoding {
    pub const NAMES: [&'static str; 3] = ["hex_upper", "hex_lower", "base64"];

    pub fn from_name(name: &str) -> Option<Encoding> {
        Some(match name {
            "hex_upper" => Encoding::HexUpper,
            "hex_lower" => Encoding::HexLower,
            "base64" => Encoding::Base64,
            _ => return None,
        })
    }
}

fn mac<M: Mac + KeyInit>(key: &[u8], text: &[u8]) -> Vec<u8> {
    let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(text);
    mac.finalize().into_bytes().to_vec()
}

/// The signature of `text`: a digest of it, or a MAC keyed with `key`, encoded.
pub fn sign(algorithm: Algorithm, encoding: Encoding, key: &[u8], text: &[u8]) -> String {
    let bytes = match algorithm {
        Algorithm::Md5 => Md5::digest(text).to_vec(),
        Algorithm::Sha1 => Sha1::digest(text).to_vec(),
        Algorithm::Sha256 => Sha256::digest(text).to_vec(),
        Algorithm::HmacMd5 => mac::<Hmac<Md5>>(key, text),
        Algorithm::HmacSha1 => mac::<Hmac<Sha1>>(key, text),
        Algorithm::HmacSha256 => mac::<Hmac<Sha256>>(key, text),
    };
    match encoding {
        Encoding::HexUpper => hex::encode_upper(bytes),
        Encoding::HexLower => hex::encode(bytes),
        Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_algorithm_matches_its_published_test_vector() {
        // RFC 1321, FIPS 180 ("abc"), and RFC 2202 / RFC 4231 test case 2 ("Jefe").
        let what = b"what do ya want for nothing?";
        let cases = [
            (
                Algorithm::Md5,
                b"abc".as_slice(),
                b"".as_slice(),
                "900150983cd24fb0d6963f7d28e17f72",
            ),
            (
                Algorithm::Sha1,
                b"abc",
                b"",
                "a9993e364706816aba3e25717850c26c9cd0d89d",
            ),
            (
                Algorithm::Sha256,
                b"abc",
                b"",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                Algorithm::HmacMd5,
                what,
                b"Jefe",
                "750c783e6ab0b503eaa86e310a5db738",
            ),
            (
                Algorithm::HmacSha1,
                what,
                b"Jefe",
                "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
            ),
            (
                Algorithm::HmacSha256,
                what,
                b"Jefe",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
        ];
        for (algorithm, text, key, expected) in cases {
            assert_eq!(
                sign(algorithm, Encoding::HexLower, key, text),
                expected,
                "{algorithm:?}"
            );
        }
    }

    #[test]
    fn encodings_differ_only_in_how_the_bytes_are_written() {
        assert_eq!(
            sign(Algorithm::Md5, Encoding::HexUpper, b"", b"abc"),
            "900150983CD24FB0D6963F7D28E17F72"
        );
        assert_eq!(
            sign(Algorithm::Md5, Encoding::Base64, b"", b"abc"),
            "kAFQmDzST7DWlj99KOF/cg=="
        );
    }

    #[test]
    fn names_round_trip() {
        for name in Algorithm::NAMES {
            assert!(Algorithm::from_name(name).is_some(), "{name}");
        }
        for name in Encoding::NAMES {
            assert!(Encoding::from_name(name).is_some(), "{name}");
        }
        assert_eq!(Algorithm::from_name("sha-1"), None);
    }
}
