//! A JSON object parsed for some of its fields: the others are checked and skipped, not
//! built. `preview` reads its input so, and a run's reader reads each record of an answer so
//! (`source::lean`): a flow that reads twenty of a record's 170 fields builds twenty.

use std::borrow::Cow;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value as Json;

use crate::record::{Fields, Need};

mod skim;

/// The scalar methods of a `Visitor` whose value is a [`Json`]: scalars as serde_json's own
/// `Value` reads them.
macro_rules! visit_json_scalars {
    () => {
        fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<serde_json::Value, E> {
            Ok(serde_json::Value::Bool(v))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<serde_json::Value, E> {
            Ok(serde_json::Value::from(v))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<serde_json::Value, E> {
            Ok(serde_json::Value::from(v))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<serde_json::Value, E> {
            Ok(serde_json::Value::from(v))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<serde_json::Value, E> {
            Ok(serde_json::Value::String(v.to_string()))
        }
        fn visit_string<E: serde::de::Error>(self, v: String) -> Result<serde_json::Value, E> {
            Ok(serde_json::Value::String(v))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<serde_json::Value, E> {
            Ok(serde_json::Value::Null)
        }
    };
}
pub(crate) use visit_json_scalars;

/// What of a record to parse: these fields, and whether what is skipped must be checked as a
/// whole parse checks it (see [`parse_fields`]).
#[derive(Debug, Clone, Copy)]
pub struct Projection<'f> {
    pub fields: &'f Fields,
    pub exact: bool,
}

/// The JSON element in `bytes` with only `fields` kept, if it is an object (any other element
/// is parsed whole); a field whose need is [`Need::Items`] keeps only those fields of its
/// list's object items. The other fields are checked and skipped, not built: a reader that
/// needs a record's key and modified time parses two fields of seventy. A malformed element
/// fails with the whole parse's error, at the same place. serde_json skips a value without
/// some checks it makes when it builds one: UTF-8 in strings, so an element that is not UTF-8
/// is parsed whole. With `exact`, so is an element that could hold a lone surrogate escape, a
/// number too large for an `f64` or nesting deeper than 128 ([`risky`], about 1 µs for 4 KB):
/// it is then valid exactly when serde_json would parse it whole. The element must be at most
/// 16 levels below the top of its document (a records list's path).
pub fn parse_fields(bytes: &[u8], projection: Projection<'_>) -> serde_json::Result<Json> {
    if bytes.first() != Some(&b'{')
        || projection.exact && risky(bytes)
        || simdutf8::basic::from_utf8(bytes).is_err()
    {
        return serde_json::from_slice(bytes);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    match deserializer
        .deserialize_map(Projected(projection.fields))
        .and_then(|value| deserializer.end().map(|()| value))
    {
        Ok(value) => Ok(value),
        Err(_) => serde_json::from_slice(bytes),
    }
}

/// [`parse_fields`] without the checks for a text serde_json has read as a raw value (as
/// `&str`) and [`risky`] found plain: the fields not kept are stepped over, not parsed again
/// ([`skim`]). A text of any other shape is parsed whole, with serde_json's verdict. Only for
/// such a text: what is stepped over is not checked (`{"b": tru, "a": 1}` gives `{"a": 1}`).
pub(crate) fn parse_read_fields(text: &str, fields: &Fields) -> serde_json::Result<Json> {
    match skim::project(text.as_bytes(), fields) {
        Ok(value) => Ok(value),
        Err(skim::Unexpected) => serde_json::from_str(text),
    }
}

/// Whether serde_json might refuse `text` parsed whole although it accepts it skipped: it
/// holds a `\u` escape of a surrogate that is not half of a pair, a number with an exponent
/// (digits after `:`, `,`, `[` or a blank, then `e` or `E`), 64 digits or points in a row at a
/// multiple of 64 (every run of 127 digits has them; serde_json refuses a number from 309),
/// or more than 100 opening brackets (each a possible level of nesting). A false alarm (such a
/// text inside a string) only costs a whole parse. Read 64 bytes at a time ([`block`]).
pub(crate) fn risky(text: &[u8]) -> bool {
    let (mut brackets, mut carry) = (0, 0u64);
    let mut look = |block: Block, at: usize| {
        brackets += block.open.count_ones();
        // An `e` just after a digit or a point.
        let mut after_number = block.e & (block.number << 1 | carry);
        while after_number != 0 {
            if exponent(text, at + after_number.trailing_zeros() as usize) {
                return true;
            }
            after_number &= after_number - 1;
        }
        carry = block.number >> 63;
        brackets > 100 || block.number == u64::MAX
    };
    let mut blocks = text.chunks_exact(64);
    for (i, bytes) in (&mut blocks).enumerate() {
        if look(block(bytes.try_into().expect("64 bytes")), 64 * i) {
            return true;
        }
    }
    let mut last = [0u8; 64];
    last[..blocks.remainder().len()].copy_from_slice(blocks.remainder());
    look(block(&last), text.len() - blocks.remainder().len())
        || memchr::memchr(b'\\', text).is_some() && lone_surrogate(text)
}

/// Where the bytes [`risky`] looks for are in 64 bytes, one bit per byte (bit `i` for byte `i`).
#[derive(Debug, PartialEq, Eq)]
struct Block {
    /// `e` or `E`.
    e: u64,
    /// A digit or `.`.
    number: u64,
    /// `{` or `[`.
    open: u64,
}

/// The [`Block`] of `bytes`: SSE2 compares, 16 bytes at a time.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn block(bytes: &[u8; 64]) -> Block {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8, _mm_sub_epi8,
    };
    let mut block = Block {
        e: 0,
        number: 0,
        open: 0,
    };
    for (i, lane) in bytes.chunks_exact(16).enumerate() {
        // SAFETY: SSE2 is enabled for this build (the `cfg` above), and the load reads the 16
        // bytes `lane` borrows (unaligned loads are allowed).
        unsafe {
            let v = _mm_loadu_si128(lane.as_ptr().cast());
            let mask = |found| u64::from(_mm_movemask_epi8(found) as u16) << (16 * i);
            let is = |byte: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(byte as i8));
            // `E` and `e` are the bytes that are `e` with bit 5 set.
            let lower = _mm_or_si128(v, _mm_set1_epi8(0x20));
            block.e |= mask(_mm_cmpeq_epi8(lower, _mm_set1_epi8(b'e' as i8)));
            // A digit is a byte that minus `0` is at most 9, unsigned.
            let offset = _mm_sub_epi8(v, _mm_set1_epi8(b'0' as i8));
            let digit = _mm_cmpeq_epi8(_mm_min_epu8(offset, _mm_set1_epi8(9)), offset);
            block.number |= mask(_mm_or_si128(digit, is(b'.')));
            block.open |= mask(_mm_or_si128(is(b'{'), is(b'[')));
        }
    }
    block
}

/// The [`Block`] of `bytes`, a byte at a time.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
fn block_by_bytes(bytes: &[u8; 64]) -> Block {
    let mask = |test: fn(u8) -> bool| {
        bytes
            .iter()
            .enumerate()
            .fold(0u64, |mask, (i, &b)| mask | (u64::from(test(b)) << i))
    };
    Block {
        e: mask(|b| b == b'e' || b == b'E'),
        number: mask(|b| b.is_ascii_digit() || b == b'.'),
        open: mask(|b| b == b'{' || b == b'['),
    }
}

/// The [`Block`] of `bytes`.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
fn block(bytes: &[u8; 64]) -> Block {
    block_by_bytes(bytes)
}

/// Whether `text` holds a `\u` escape of a surrogate that is not half of a pair.
fn lone_surrogate(text: &[u8]) -> bool {
    // 'h' for a high surrogate, 'l' for a low one.
    let half = |at: usize| match (text.get(at + 2), text.get(at + 3)) {
        (Some(b'd' | b'D'), Some(b'8'..=b'9' | b'a'..=b'b' | b'A'..=b'B')) => Some(b'h'),
        (Some(b'd' | b'D'), Some(b'c'..=b'f' | b'C'..=b'F')) => Some(b'l'),
        _ => None,
    };
    let mut high_at = None;
    for at in memchr::memmem::find_iter(text, b"\\u") {
        // A backslash after an odd run of them is a text backslash (`\\\\u`), not an escape.
        let backslashes = text[..at].iter().rev().take_while(|b| **b == b'\\').count();
        if backslashes % 2 == 1 {
            continue;
        }
        let paired = high_at.is_some_and(|high| high + 6 == at);
        match (half(at), paired) {
            (Some(b'h'), _) if high_at.is_some() => return true,
            (Some(b'h'), _) => high_at = Some(at),
            (Some(_), true) => high_at = None,
            (Some(_), false) => return true,
            (None, _) if high_at.is_some() => return true,
            (None, _) => {}
        }
    }
    high_at.is_some()
}

/// Whether the `e` or `E` at `at` may be a number's exponent: digits (and a point) before it,
/// and before them a minus sign or what comes before a value.
fn exponent(text: &[u8], at: usize) -> bool {
    let before = &text[..at];
    let digits = before
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_digit() || **b == b'.')
        .count();
    if digits == 0 {
        return false;
    }
    let start = at - digits;
    let start = match start.checked_sub(1).map(|i| text[i]) {
        Some(b'-') => start - 1,
        _ => start,
    };
    match start.checked_sub(1).map(|i| text[i]) {
        None => true,
        Some(byte) => matches!(byte, b':' | b',' | b'[' | b' ' | b'\t' | b'\n' | b'\r'),
    }
}

/// An object with only some of its fields.
struct Projected<'f>(&'f Fields);

impl<'de> Visitor<'de> for Projected<'_> {
    type Value = Json;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut kept = serde_json::Map::with_capacity(self.0.len());
        while let Some(key) = map.next_key_seed(Key)? {
            // A few names, mostly of different lengths: a scan beats hashing or ordering.
            let need = self.0.iter().find(|(name, _)| name.as_bytes() == &*key);
            let Some((name, need)) = need else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let value = match need {
                Need::Whole => map.next_value::<Json>()?,
                Need::Items(fields) => map.next_value_seed(Shaped {
                    fields,
                    level: Level::List,
                })?,
            };
            kept.insert(name.clone(), value);
        }
        Ok(Json::Object(kept))
    }
}

/// Where a [`Shaped`] value is: a list whose object items are projected, or one of its items.
#[derive(Clone, Copy)]
enum Level {
    List,
    Item,
}

/// A value parsed whole, except that a list's object items (at [`Level::List`]) keep only
/// `fields`.
struct Shaped<'f> {
    fields: &'f Fields,
    level: Level,
}

impl<'de> DeserializeSeed<'de> for Shaped<'_> {
    type Value = Json;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Shaped<'_> {
    type Value = Json;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        if let Level::Item = self.level {
            return Json::deserialize(SeqAccessDeserializer::new(seq));
        }
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(Shaped {
            fields: self.fields,
            level: Level::Item,
        })? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Json, A::Error> {
        match self.level {
            Level::Item => Projected(self.fields).visit_map(map),
            Level::List => Json::deserialize(MapAccessDeserializer::new(map)),
        }
    }

    visit_json_scalars!();
    fn visit_none<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Json, D::Error> {
        Json::deserialize(deserializer)
    }
}

/// A field name's bytes (borrowed from the input unless it holds an escape). serde_json checks
/// a name read as text for UTF-8 (a good share of the parse); the bytes of an element already
/// found UTF-8 need no second check. A name is refused where serde_json would refuse it as
/// text: an unescaped name holding a control character, an escaped one that is not UTF-8 (a
/// lone surrogate). An escaped one holding a control character (`\u0001`, which serde_json
/// takes) is refused too, so that the element is parsed whole, with serde_json's verdict.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, [u8]>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_bytes(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, [u8]>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a field name")
    }

    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
        if v.iter().any(|byte| *byte < 0x20) {
            return Err(E::custom("a control character in a field name"));
        }
        Ok(Cow::Borrowed(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        if v.iter().any(|byte| *byte < 0x20) || std::str::from_utf8(v).is_err() {
            return Err(E::custom("a field name serde_json may refuse"));
        }
        Ok(Cow::Owned(v.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_that_a_skip_may_accept_and_a_whole_parse_refuse_is_told_apart() {
        let risky_texts = [
            r#"{"a": "\ud800"}"#,
            r#"{"a": "\udc00"}"#,
            r#"{"a": "\ud83d\ud83d\ude00"}"#,
            r#"{"a": "\ud83d x"}"#,
            r#"{"a": "\ud83d\u0041"}"#,
            r#"{"a": 1e999}"#,
            r#"{"a": [-2.5E3]}"#,
            r#"{"a":1e5}"#,
            r#"{"a": "\\ud83d\ude00"}"#,
            r#"{"a": "\\\ud800"}"#,
        ];
        for text in risky_texts {
            assert!(risky(text.as_bytes()), "{text}");
        }
        let digits = format!(r#"{{"a": {}}}"#, "9".repeat(300));
        let deep = format!(r#"{{"a": {}{}}}"#, "[".repeat(101), "]".repeat(101));
        assert!(risky(digits.as_bytes()));
        assert!(risky(deep.as_bytes()));
        let plain = [
            r#"{"a": "\ud83d\ude00", "b": "\u00e9\u4e2d"}"#,
            r#"{"a": "SKU1E5", "b": "2e", "c": 12.5, "d": -3}"#,
            r#"{"name": "remark", "e": [1, 2, 3]}"#,
            r#"{"a": "\\ud800 is text", "b": "\\\\ud800 too"}"#,
        ];
        for text in plain {
            assert!(!risky(text.as_bytes()), "{text}");
        }
        let fields: Fields = [("a".to_string(), Need::Whole)].into_iter().collect();
        for text in risky_texts
            .iter()
            .map(|t| t.to_string())
            .chain([digits, deep])
        {
            let text = text.replace(r#"{"a""#, r#"{"z": 0, "a""#);
            let whole = serde_json::from_str::<Json>(&text).map_err(|e| e.to_string());
            let projection = Projection {
                fields: &fields,
                exact: true,
            };
            let parsed = parse_fields(text.as_bytes(), projection).map_err(|e| e.to_string());
            assert_eq!(parsed, whole, "{text}");
        }
    }

    /// [`risky`] a byte at a time, for comparison.
    fn risky_by_bytes(text: &[u8]) -> bool {
        lone_surrogate(text)
            || text.iter().filter(|b| matches!(b, b'{' | b'[')).count() > 100
            || (1..text.len()).any(|at| {
                matches!(text[at], b'e' | b'E')
                    && (text[at - 1].is_ascii_digit() || text[at - 1] == b'.')
                    && exponent(text, at)
            })
            || text
                .chunks_exact(64)
                .any(|block| block.iter().all(|b| b.is_ascii_digit() || *b == b'.'))
    }

    #[test]
    fn the_blocks_find_what_a_byte_at_a_time_finds() {
        // A small xorshift: the same texts every run.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"0123456789eE.-:, [{]}\"\\udDc8x\x20\x80\xff";
        let mut risky_seen = 0;
        for _ in 0..20_000 {
            let len = (next() % 200) as usize;
            let text: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let mut bytes = [0u8; 64];
            bytes[..len.min(64)].copy_from_slice(&text[..len.min(64)]);
            assert_eq!(block(&bytes), block_by_bytes(&bytes), "{bytes:?}");
            assert_eq!(
                risky(&text),
                risky_by_bytes(&text),
                "{:?}",
                String::from_utf8_lossy(&text)
            );
            risky_seen += usize::from(risky(&text));
        }
        assert!(risky_seen > 1_000 && risky_seen < 19_000, "{risky_seen}");
        let digits = "7".repeat(127);
        assert!(risky(format!("[{digits}]").as_bytes()));
    }
}
