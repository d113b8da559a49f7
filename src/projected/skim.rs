//! [`parse_fields`](super::parse_fields) for a text serde_json has already read: a record of an
//! answer, taken as a raw value (which checks what a skip checks: structure, escapes, control
//! characters) and as `&str` (UTF-8), and found not [`risky`](super::risky). Such a text needs no
//! second check where it is skipped, so the fields a flow does not read are stepped over by
//! looking for quotes and brackets (`memchr`), not parsed, and a name is compared as the bytes
//! it is when it holds no escape. The fields kept are parsed by serde_json, as before.
//!
//! Anything unexpected (a text that was not so read) is an error, never a guess: the caller
//! then parses the text whole and has serde_json's verdict.

use std::borrow::Cow;

use serde_json::Value as Json;

use crate::record::{Fields, Need};

/// The text does not have the shape a checked JSON text has.
#[derive(Debug)]
pub(super) struct Unexpected;

type Skimmed<T> = Result<T, Unexpected>;

/// The object `text` with only `fields` kept, as [`Projected`](super::Projected) keeps them;
/// a field whose need is [`Need::Items`] keeps only those fields of its list's object items.
pub(super) fn project(text: &[u8], fields: &Fields) -> Skimmed<Json> {
    let mut skim = Skim { text, at: 0 };
    let value = skim.object(fields)?;
    skim.blanks();
    match skim.at == text.len() {
        true => Ok(value),
        false => Err(Unexpected),
    }
}

/// A position in a checked JSON text.
struct Skim<'t> {
    text: &'t [u8],
    at: usize,
}

impl<'t> Skim<'t> {
    fn blanks(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.text.get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte after blanks, taken.
    fn next(&mut self) -> Skimmed<u8> {
        self.blanks();
        let byte = *self.text.get(self.at).ok_or(Unexpected)?;
        self.at += 1;
        Ok(byte)
    }

    fn peek(&mut self) -> Skimmed<u8> {
        self.blanks();
        self.text.get(self.at).copied().ok_or(Unexpected)
    }

    /// The object starting here, with only `fields` kept.
    fn object(&mut self, fields: &Fields) -> Skimmed<Json> {
        if self.next()? != b'{' {
            return Err(Unexpected);
        }
        // A few names, mostly of different lengths: a scan of their bytes beats a search of
        // the map by text.
        let names: Vec<(&[u8], (&String, &Need))> = fields
            .iter()
            .map(|field| (field.0.as_bytes(), field))
            .collect();
        let mut kept = serde_json::Map::with_capacity(fields.len());
        if self.peek()? == b'}' {
            self.at += 1;
            return Ok(Json::Object(kept));
        }
        loop {
            if self.next()? != b'"' {
                return Err(Unexpected);
            }
            let name = self.name()?;
            if self.next()? != b':' {
                return Err(Unexpected);
            }
            let need = names
                .iter()
                .find(|(bytes, _)| *bytes == &*name)
                .map(|(_, field)| *field);
            match need {
                None => self.skip()?,
                Some((name, need)) => {
                    let value = match need {
                        Need::Whole => self.whole()?,
                        Need::Items(fields) => self.items(fields)?,
                    };
                    kept.insert(name.clone(), value);
                }
            }
            match self.next()? {
                b',' => continue,
                b'}' => return Ok(Json::Object(kept)),
                _ => return Err(Unexpected),
            }
        }
    }

    /// The name whose opening quote was just taken: its bytes, unescaped.
    fn name(&mut self) -> Skimmed<Cow<'t, [u8]>> {
        let start = self.at;
        let (end, escaped) = string_end(self.text, start)?;
        self.at = end + 1;
        if !escaped {
            return Ok(Cow::Borrowed(&self.text[start..end]));
        }
        let name: String =
            serde_json::from_slice(&self.text[start - 1..=end]).map_err(|_| Unexpected)?;
        // A control character escaped in a name (`"a\n"`): [`super::parse_fields`] parses
        // such a record whole, and so does this.
        if name.bytes().any(|byte| byte < 0x20) {
            return Err(Unexpected);
        }
        Ok(Cow::Owned(name.into_bytes()))
    }

    /// Step over the value starting here (after blanks).
    fn skip(&mut self) -> Skimmed<()> {
        self.blanks();
        let start = self.at;
        match *self.text.get(start).ok_or(Unexpected)? {
            b'"' => self.at = string_end(self.text, start + 1)?.0 + 1,
            b'{' | b'[' => self.at = nested_end(self.text, start)?,
            _ => {
                let len = self.text[start..]
                    .iter()
                    .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t'))
                    .unwrap_or(self.text.len() - start);
                if len == 0 {
                    return Err(Unexpected);
                }
                self.at = start + len;
            }
        }
        Ok(())
    }

    /// The value starting here, parsed whole as serde_json parses it.
    fn whole(&mut self) -> Skimmed<Json> {
        self.blanks();
        let mut values = serde_json::Deserializer::from_slice(&self.text[self.at..]).into_iter();
        let value = values.next().ok_or(Unexpected)?.map_err(|_| Unexpected)?;
        self.at += values.byte_offset();
        Ok(value)
    }

    /// The value starting here, whose need is [`Need::Items`]: a list's object items keep
    /// only `fields`; anything else (the list's other items, a value that is not a list) is
    /// parsed whole.
    fn items(&mut self, fields: &Fields) -> Skimmed<Json> {
        if self.peek()? != b'[' {
            return self.whole();
        }
        self.at += 1;
        let mut items = Vec::new();
        if self.peek()? == b']' {
            self.at += 1;
            return Ok(Json::Array(items));
        }
        loop {
            let item = match self.peek()? {
                b'{' => self.object(fields)?,
                _ => self.whole()?,
            };
            items.push(item);
            match self.next()? {
                b',' => continue,
                b']' => return Ok(Json::Array(items)),
                _ => return Err(Unexpected),
            }
        }
    }
}

/// Where the string whose text starts at `from` (after its opening quote) ends: the index of
/// its closing quote, and whether it holds an escape.
fn string_end(text: &[u8], from: usize) -> Skimmed<(usize, bool)> {
    let mut at = from;
    let mut escaped = false;
    loop {
        let rest = text.get(at..).ok_or(Unexpected)?;
        at += memchr::memchr2(b'"', b'\\', rest).ok_or(Unexpected)?;
        if text[at] == b'"' {
            return Ok((at, escaped));
        }
        // A backslash and the character it escapes (`\u` is followed by hex digits only).
        escaped = true;
        at += 2;
    }
}

/// Where the object or list starting at `from` ends: the index after its closing bracket.
fn nested_end(text: &[u8], from: usize) -> Skimmed<usize> {
    let mut depth = 0usize;
    let mut at = from;
    while let Some(&byte) = text.get(at) {
        match byte {
            b'"' => at = string_end(text, at + 1)?.0,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Ok(at + 1);
                }
            }
            _ => {}
        }
        at += 1;
    }
    Err(Unexpected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projected::{Projection, parse_fields};

    fn fields(names: &[&str], items: Option<(&str, &[&str])>) -> Fields {
        let mut fields: Fields = names.iter().map(|n| (n.to_string(), Need::Whole)).collect();
        if let Some((list, inner)) = items {
            let inner = inner.iter().map(|n| (n.to_string(), Need::Whole)).collect();
            fields.insert(list.to_string(), Need::Items(inner));
        }
        fields
    }

    /// What serde_json's own projection gives, for comparison.
    fn by_serde(text: &str, fields: &Fields) -> Json {
        let projection = Projection {
            fields,
            exact: false,
        };
        parse_fields(text.as_bytes(), projection).unwrap()
    }

    #[test]
    fn a_skimmed_record_keeps_what_serde_json_keeps() {
        let fields = fields(
            &["a", "é", "k\"q", "n", "dup"],
            Some(("lines", &["sku", "q"])),
        );
        let texts = [
            r#"{}"#,
            r#"{ "a" : 1 , "b" : [1, {"x": "]}"}, "\"}"], "n": null }"#,
            r#"{"z": "a \\\" quoted \\\\", "a": "\u00e9\ud83d\ude00", "\u00e9": true}"#,
            r#"{"k\"q": -1.5e-3, "n": [], "dup": 1, "dup": {"x": [2]}}"#,
            r#"{"lines": [{"sku": "A", "q": 2, "x": {"deep": [[]]}}, 3, [1, 2], {"q": {"a": 1}}]}"#,
            r#"{"lines": {"sku": "A"}, "a": 18446744073709551615, "b": 1.0}"#,
            r#"{"lines": [], "n": "x"}"#,
            r#"{"lines": "no list", "a": false}"#,
            "{\"a\":\t\r\n{\"b\" :\"c\"}\n}",
        ];
        for text in texts {
            let skimmed = project(text.as_bytes(), &fields).unwrap();
            assert_eq!(skimmed, by_serde(text, &fields), "{text}");
        }
        // A name holding an escaped control character: the record is parsed whole, as
        // `parse_fields` parses it.
        for text in [
            r#"{"a\n": 0, "x": 1, "a": 2}"#,
            r#"{"lines": [{"\u0000": 1}]}"#,
        ] {
            assert!(project(text.as_bytes(), &fields).is_err(), "{text}");
            let read = crate::projected::parse_read_fields(text, &fields).unwrap();
            assert_eq!(read, by_serde(text, &fields), "{text}");
        }
    }

    /// Random records (names from a small set, so that some repeat and some are read; values
    /// nested, with escapes and wide characters), written compact and pretty: skimmed, each
    /// keeps what serde_json's projection keeps.
    #[test]
    fn random_records_skim_to_what_serde_json_keeps() {
        // A small xorshift: the same records every run.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |below: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % below
        };
        const NAMES: [&str; 7] = ["a", "b", "lines", "q\"x", "é", "sku", ""];
        const TEXTS: [&str; 8] = [
            "",
            "plain",
            "q\"uo\\te",
            "]}{[,:",
            "退货 😀",
            "\u{1}\n\t",
            "a text longer than sixteen bytes, \"quoted\" and \\ escaped past them",
            "sixteen bytes ab\"c",
        ];
        fn value(next: &mut dyn FnMut(u64) -> u64, depth: u32) -> Json {
            match next(if depth > 3 { 5 } else { 7 }) {
                0 => Json::Null,
                1 => Json::Bool(next(2) == 1),
                2 => Json::from(next(1 << 40) as i64 - (1 << 39)),
                3 => Json::from(next(1000) as f64 / 8.0 - 60.0),
                4 => Json::from(TEXTS[next(TEXTS.len() as u64) as usize]),
                5 => Json::Array((0..next(4)).map(|_| value(next, depth + 1)).collect()),
                _ => Json::Object(
                    (0..next(5))
                        .map(|_| {
                            let name = NAMES[next(NAMES.len() as u64) as usize].to_string();
                            (name, value(next, depth + 1))
                        })
                        .collect(),
                ),
            }
        }
        let fields = fields(&["a", "é", "q\"x"], Some(("lines", &["sku", "a", ""])));
        let mut kept = 0;
        for _ in 0..3_000 {
            let mut record = serde_json::Map::new();
            for _ in 0..next(8) {
                let name = NAMES[next(NAMES.len() as u64) as usize].to_string();
                record.insert(name, value(&mut next, 0));
            }
            let record = Json::Object(record);
            for text in [
                serde_json::to_string(&record).unwrap(),
                serde_json::to_string_pretty(&record).unwrap(),
            ] {
                let skimmed = project(text.as_bytes(), &fields).unwrap();
                assert_eq!(skimmed, by_serde(&text, &fields), "{text}");
                kept += skimmed.as_object().unwrap().len();
            }
        }
        assert!(kept > 3_000, "{kept}");
    }

    #[test]
    fn a_text_of_another_shape_is_unexpected_never_guessed() {
        let fields = fields(&["a"], None);
        let texts = [
            "",
            "[1]",
            r#"{"a": 1"#,
            r#"{"a" 1}"#,
            r#"{"a": 1,}"#,
            r#"{"a": "1}"#,
            r#"{"a": [1}"#,
            r#"{"a": 1} x"#,
            r#"{"a": }"#,
            r#"{a: 1}"#,
            r#"{"a": 1 "b": 2}"#,
            r#"{"a": tru}"#,
            r#"{"a": "\"}"#,
        ];
        for text in texts {
            let skimmed = project(text.as_bytes(), &fields);
            assert!(skimmed.is_err(), "{text}: {skimmed:?}");
        }
        // What is stepped over is not checked again: that is the caller's promise.
        assert!(project(br#"{"b": tru, "a": 1}"#, &fields).is_ok());
    }
}
