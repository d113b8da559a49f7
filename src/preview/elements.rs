//! The elements of a JSON array read from a stream, each parsed from its own bytes.
//!
//! serde_json parses a reader byte by byte through `io::Read`, at about ten times the cost of
//! parsing a slice. For the common input, a top-level array of records, the bytes of each
//! element are found first by a scan that only tracks strings and nesting, and the element is
//! then parsed as a slice. One element's bytes are in memory at a time (plus the read buffer).
//! A malformed input is reported at its line and column in the whole input, as serde_json
//! would. Reads only the reader it is given.

use std::io::{BufRead, ErrorKind as IoErrorKind};

use serde_json::Value as Json;

pub use crate::projected::{Projection, parse_fields};

/// Why reading the elements stopped early.
#[derive(Debug)]
pub enum Stop<E> {
    /// The input is not a valid JSON array: what is wrong and where (1-based line and column).
    Invalid {
        message: String,
        line: usize,
        column: usize,
    },
    Io(std::io::Error),
    /// The consumer refused an element.
    Consumer(E),
}

/// Where the scan is in the input, for locating errors.
#[derive(Debug, Clone, Copy)]
struct Position {
    line: usize,
    /// Bytes since the start of the line.
    column: usize,
}

impl Position {
    fn advance(&mut self, bytes: &[u8]) {
        match memchr::memrchr(b'\n', bytes) {
            None => self.column += bytes.len(),
            Some(last) => {
                self.line += memchr::memchr_iter(b'\n', bytes).count();
                self.column = bytes.len() - last - 1;
            }
        }
    }
}

fn invalid<E>(message: impl Into<String>, at: Position) -> Stop<E> {
    Stop::Invalid {
        message: message.into(),
        line: at.line,
        column: at.column + 1,
    }
}

/// Call `each` with every element of the JSON array `reader` holds (its first non-blank byte
/// must be `[`); returns how many there were. With `fields`, an object element keeps only
/// those top-level fields (see [`parse_fields`]).
pub fn for_each_element<E>(
    reader: &mut impl BufRead,
    fields: Option<Projection<'_>>,
    each: &mut dyn FnMut(Json) -> Result<(), E>,
) -> Result<usize, Stop<E>> {
    let mut scanner = Scanner {
        reader,
        buffer: Vec::with_capacity(1 << 16),
        at: 0,
        position: Position { line: 1, column: 0 },
        done: false,
    };
    match scanner.next_blank_skipped()? {
        Some(b'[') => scanner.take(1),
        _ => return Err(invalid("expected `[`", scanner.position)),
    }
    let mut count = 0;
    if scanner.next_blank_skipped()? == Some(b']') {
        scanner.take(1);
        return scanner.finish(count);
    }
    loop {
        scanner.next_blank_skipped()?;
        let start = scanner.position;
        let (length, last) = scanner.element()?;
        let bytes = &scanner.buffer[scanner.at..scanner.at + length];
        let value: Result<Json, _> = match fields {
            Some(projection) => parse_fields(bytes, projection),
            None => serde_json::from_slice(bytes),
        };
        // The element and its separator.
        scanner.take(length + 1);
        let value = value.map_err(|err| {
            let (line, column) = if err.line() <= 1 {
                (start.line, start.column + err.column())
            } else {
                (start.line + err.line() - 1, err.column())
            };
            Stop::Invalid {
                message: without_position(&err),
                line,
                column,
            }
        })?;
        count += 1;
        each(value).map_err(Stop::Consumer)?;
        if last {
            return scanner.finish(count);
        }
    }
}

/// serde_json's message without its ` at line L column C`, which counts from the element.
fn without_position(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_string()
}

struct Scanner<'r, R> {
    reader: &'r mut R,
    /// Bytes read and not yet consumed, from `at` on.
    buffer: Vec<u8>,
    at: usize,
    position: Position,
    done: bool,
}

impl<R: BufRead> Scanner<'_, R> {
    /// Read more into the buffer; false at the end of the input.
    fn fill(&mut self) -> Result<bool, Stop<std::convert::Infallible>> {
        if self.done {
            return Ok(false);
        }
        if self.at > 0 {
            self.buffer.drain(..self.at);
            self.at = 0;
        }
        loop {
            let chunk = match self.reader.fill_buf() {
                Ok(chunk) => chunk,
                Err(err) if err.kind() == IoErrorKind::Interrupted => continue,
                Err(err) => return Err(Stop::Io(err)),
            };
            if chunk.is_empty() {
                self.done = true;
                return Ok(false);
            }
            let size = chunk.len();
            self.buffer.extend_from_slice(chunk);
            self.reader.consume(size);
            return Ok(true);
        }
    }

    /// The next byte that is not blank (left unconsumed), or `None` at the end.
    fn next_blank_skipped<E>(&mut self) -> Result<Option<u8>, Stop<E>> {
        loop {
            while let Some(&byte) = self.buffer.get(self.at) {
                if !matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
                    return Ok(Some(byte));
                }
                self.take(1);
            }
            if !self.fill().map_err(widen)? {
                return Ok(None);
            }
        }
    }

    fn take(&mut self, n: usize) {
        self.position.advance(&self.buffer[self.at..self.at + n]);
        self.at += n;
    }

    /// The length of the element starting here (its bytes are then at the start of the
    /// buffer), and whether it was the array's last. Nothing is consumed. Most of the input is
    /// read 64 bytes at a time ([`Block`]); a block holding a backslash, and the input's last
    /// bytes, byte by byte, skipping a string to its next quote or backslash at once.
    fn element<E>(&mut self) -> Result<(usize, bool), Stop<E>> {
        let mut depth = 0usize;
        let mut in_string = false;
        let mut escaped = false;
        let mut scanned = 0;
        loop {
            let window = &self.buffer[self.at..];
            while scanned < window.len() {
                if escaped {
                    // The byte after a backslash (the block before ended with it).
                    escaped = false;
                    scanned += 1;
                    continue;
                }
                let mut bytewise_until = window.len();
                if let Some(block) = window[scanned..].first_chunk::<BLOCK>() {
                    let block = Block::of(block);
                    if block.backslash == 0 {
                        match block.walk(&mut depth, &mut in_string) {
                            Some((offset, last)) => return Ok((scanned + offset, last)),
                            None => {
                                scanned += BLOCK;
                                continue;
                            }
                        }
                    }
                    bytewise_until = scanned + BLOCK;
                }
                while scanned < bytewise_until {
                    if escaped {
                        escaped = false;
                        scanned += 1;
                        continue;
                    }
                    if in_string {
                        match memchr::memchr2(b'"', b'\\', &window[scanned..]) {
                            None => scanned = window.len(),
                            Some(found) => {
                                scanned += found;
                                if window[scanned] == b'\\' {
                                    escaped = true;
                                } else {
                                    in_string = false;
                                }
                                scanned += 1;
                            }
                        }
                        continue;
                    }
                    match window[scanned] {
                        b'"' => in_string = true,
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' if depth > 0 => depth -= 1,
                        byte @ (b']' | b',') if depth == 0 => return Ok((scanned, byte == b']')),
                        _ => {}
                    }
                    scanned += 1;
                }
            }
            if !self.fill().map_err(widen)? {
                self.take(self.buffer.len() - self.at);
                // As serde_json does, an early end is reported at the last byte read.
                return Err(Stop::Invalid {
                    message: "EOF while parsing a list".to_string(),
                    line: self.position.line,
                    column: self.position.column.max(1),
                });
            }
        }
    }

    /// After the closing `]`: only blanks may follow.
    fn finish<E>(&mut self, count: usize) -> Result<usize, Stop<E>> {
        match self.next_blank_skipped()? {
            None => Ok(count),
            Some(_) => Err(invalid("trailing characters", self.position)),
        }
    }
}

/// The bytes a [`Block`] covers.
const BLOCK: usize = 64;

/// Where the bytes that matter to the element scan are in 64 bytes of input, one bit per byte
/// (bit `i` for byte `i`): compared a byte class at a time, which the compiler turns into
/// vector compares, instead of one byte at a time.
struct Block {
    quote: u64,
    backslash: u64,
    open: u64,
    close: u64,
    /// `]` only (a subset of `close`).
    close_list: u64,
    comma: u64,
}

impl Block {
    fn of(bytes: &[u8; BLOCK]) -> Block {
        let [
            quote,
            backslash,
            open_object,
            open_list,
            close_object,
            close_list,
            comma,
        ] = classes(bytes);
        Block {
            quote,
            backslash,
            open: open_object | open_list,
            close: close_object | close_list,
            close_list,
            comma,
        }
    }

    /// Follow the nesting through a block without a backslash (so every quote opens or closes
    /// a string), from `depth` and `in_string` as the block starts, which are left as it ends.
    /// Returns where the element ends in the block, if it does, as the bytewise scan would:
    /// the offset of a `,` or `]` outside strings and at depth 0, and whether it was `]`.
    fn walk(&self, depth: &mut usize, in_string: &mut bool) -> Option<(usize, bool)> {
        // Bit i set: byte i is inside a string (from its opening quote to before its closing
        // one). The prefix XOR of the quotes flips at each quote.
        let mut strings = prefix_xor(self.quote);
        if *in_string {
            strings = !strings;
        }
        if self.quote.count_ones() % 2 == 1 {
            *in_string = !*in_string;
        }
        let outside = !strings;
        let (open, close, comma) = (
            self.open & outside,
            self.close & outside,
            self.comma & outside,
        );
        let mut events = open | close;
        let mut from = 0;
        loop {
            let next = events.trailing_zeros() as usize;
            if *depth == 0 {
                // A comma between here and the next bracket ends the element.
                let before = if next == BLOCK {
                    !0
                } else {
                    (1u64 << next) - 1
                };
                let ending = comma & before & (!0u64).checked_shl(from).unwrap_or(0);
                if ending != 0 {
                    return Some((ending.trailing_zeros() as usize, false));
                }
            }
            if next == BLOCK {
                return None;
            }
            let bit = 1u64 << next;
            events &= !bit;
            if open & bit != 0 {
                *depth += 1;
            } else if *depth > 0 {
                *depth -= 1;
            } else if self.close_list & bit != 0 {
                return Some((next, true));
            }
            from = next as u32 + 1;
        }
    }
}

/// The bytes whose places a [`Block`] marks, in the order [`classes`] returns their masks.
const CLASSES: [u8; 7] = [b'"', b'\\', b'{', b'[', b'}', b']', b','];

/// For each of [`CLASSES`], the mask of where it is in `bytes`: SSE2 compares, 16 bytes at a
/// time.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn classes(bytes: &[u8; BLOCK]) -> [u64; CLASSES.len()] {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8};
    let mut masks = [0u64; CLASSES.len()];
    for (i, lane) in bytes.chunks_exact(16).enumerate() {
        // SAFETY: SSE2 is enabled for this build (the `cfg` above), and the load reads the 16
        // bytes `lane` borrows (unaligned loads are allowed).
        unsafe {
            let lane = _mm_loadu_si128(lane.as_ptr().cast());
            for (mask, byte) in masks.iter_mut().zip(CLASSES) {
                let found = _mm_movemask_epi8(_mm_cmpeq_epi8(lane, _mm_set1_epi8(byte as i8)));
                *mask |= u64::from(found as u16) << (16 * i);
            }
        }
    }
    masks
}

/// For each of [`CLASSES`], the mask of where it is in `bytes`.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
fn classes(bytes: &[u8; BLOCK]) -> [u64; CLASSES.len()] {
    let mut masks = [0u64; CLASSES.len()];
    for (i, &b) in bytes.iter().enumerate() {
        for (mask, byte) in masks.iter_mut().zip(CLASSES) {
            *mask |= u64::from(b == byte) << i;
        }
    }
    masks
}

/// Each bit the XOR of itself and every lower bit.
fn prefix_xor(mut bits: u64) -> u64 {
    for shift in [1, 2, 4, 8, 16, 32] {
        bits ^= bits << shift;
    }
    bits
}

fn widen<E>(stop: Stop<std::convert::Infallible>) -> Stop<E> {
    match stop {
        Stop::Io(err) => Stop::Io(err),
        Stop::Invalid {
            message,
            line,
            column,
        } => Stop::Invalid {
            message,
            line,
            column,
        },
        Stop::Consumer(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use std::io::BufReader;

    use serde_json::json;

    use super::*;

    /// The elements of `text` read through a tiny buffer (so elements straddle reads), or
    /// the error as `(message start, line, column)`.
    fn elements(text: &str) -> Result<Vec<Json>, (String, usize, usize)> {
        let mut reader = BufReader::with_capacity(3, text.as_bytes());
        let mut out = Vec::new();
        let mut each = |value| -> Result<(), ()> {
            out.push(value);
            Ok(())
        };
        match for_each_element(&mut reader, None, &mut each) {
            Ok(count) => {
                assert_eq!(count, out.len());
                Ok(out)
            }
            Err(Stop::Invalid {
                message,
                line,
                column,
            }) => Err((message.chars().take(12).collect(), line, column)),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn elements_are_split_whatever_their_strings_and_nesting_hold() {
        let text = r#" [ {"a": "x]y,z\"}", "b": [1, [2]]}, 3 ,"s,]" , null, {"c": {"d": []}} ]
"#;
        assert_eq!(
            elements(text),
            Ok(vec![
                json!({"a": "x]y,z\"}", "b": [1, [2]]}),
                json!(3),
                json!("s,]"),
                json!(null),
                json!({"c": {"d": []}}),
            ])
        );
        assert_eq!(elements("[]"), Ok(vec![]));
        assert_eq!(elements(" [\n] \n"), Ok(vec![]));
    }

    /// Arrays of elements whose strings hold every byte the scan looks at, read through
    /// buffers large enough for whole blocks and through tiny ones (byte by byte): the
    /// elements are serde_json's whatever the mix of blocks and bytes, and so is an error.
    #[test]
    fn blocks_and_bytes_split_elements_alike() {
        let pieces = [
            "\"a,b]c\"",
            "\"q\\\"}\"",
            "\"\\\\\"",
            "[1, [2, {}]]",
            "{\"k\": \"v\"}",
            "\"中文,]\"",
            "null",
            "-1.5e3",
            "\"{[\"",
            "\"\\\\]\\\\\"",
            "[]",
            "{}",
            "\"\"",
        ];
        let mut seed = 7u64;
        let mut next = |n: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize % n
        };
        for round in 0..300 {
            let elements: Vec<String> = (0..1 + next(6))
                .map(|_| {
                    let fields: Vec<String> = (0..next(12))
                        .map(|i| format!("\"f{i}\":{}", pieces[next(pieces.len())]))
                        .collect();
                    match next(3) {
                        0 => pieces[next(pieces.len())].to_string(),
                        _ => format!("{{{}}}", fields.join(",")),
                    }
                })
                .collect();
            let mut text = format!("[{}]", elements.join(" ,\n")).into_bytes();
            if round % 10 == 9 {
                // Cut short: an error either way.
                text.truncate(text.len() - 1 - next(text.len() / 2));
            }
            let whole: Result<Vec<Json>, _> = serde_json::from_slice(&text);
            let text = String::from_utf8_lossy(&text);
            for capacity in [3, 1 << 16] {
                let mut reader = BufReader::with_capacity(capacity, text.as_bytes());
                let mut out = Vec::new();
                let read = for_each_element(&mut reader, None, &mut |value| -> Result<(), ()> {
                    out.push(value);
                    Ok(())
                });
                match (&whole, read) {
                    (Ok(values), Ok(_)) => assert_eq!(&out, values, "{text}"),
                    (Err(_), Err(Stop::Invalid { .. })) => {}
                    (whole, read) => panic!("{text}: {whole:?} against {read:?}"),
                }
            }
        }
    }

    #[test]
    fn an_object_keeps_only_the_fields_asked_and_fails_as_a_whole_parse_would() {
        let fields: crate::record::Fields = ["a", "c"]
            .into_iter()
            .map(|name| (name.to_string(), crate::record::Need::Whole))
            .collect();
        let projection = Projection {
            fields: &fields,
            exact: true,
        };
        let parse = |text: &[u8]| parse_fields(text, projection).map_err(|e| e.to_string());
        let whole = |text: &[u8]| serde_json::from_slice::<Json>(text).map_err(|e| e.to_string());
        assert_eq!(
            parse(br#"{"a": 1, "b": {"x": [1, "\u00e9"]}, "c": "\u4e2d", "a\u0062": 2}"#),
            Ok(json!({"a": 1, "c": "中"}))
        );
        // The later of two copies of a field wins, in the first one's place, as for a whole parse.
        assert_eq!(
            parse(br#"{"c": 1, "a": 2, "c": 3}"#).unwrap().to_string(),
            r#"{"c":3,"a":2}"#
        );
        // Names with escapes are read as serde_json reads them; an escaped control character
        // in one sends the element to a whole parse (which takes it).
        let escaped = br#"{"\u0061": 1, "\ud83d\ude00": 2, "c\u0001": 3}"#;
        assert_eq!(parse(escaped), whole(escaped));
        assert_eq!(
            parse(br#"{"\u0061": 1, "\ud83d\ude00": 2, "c": 3}"#),
            Ok(json!({"a": 1, "c": 3}))
        );
        assert_eq!(parse(b"[1, {\"b\": 2}]"), Ok(json!([1, {"b": 2}])));
        assert_eq!(parse(b"\"x\""), Ok(json!("x")));
        // A skipped field is checked all the same: every error is the whole parse's, at the same place.
        for bad in [
            &br#"{"a": 1, "b": [1, 2}"#[..],
            br#"{"a": 1, "b": "x\qy"}"#,
            b"{\"a\": 1, \"b\": \"\x01\"}",
            b"{\"a\": 1, \"b\": \"\xff\xfe\"}",
            br#"{"a": 1, "b": 01}"#,
            br#"{"a": 1, "b": tru}"#,
            br#"{"a": 1, "b": 2} x"#,
            b"{\"a\": 1, \"b\x01\": 2}",
            br#"{"a": 1, "b\ud800": 2}"#,
            br#"{"a": 1, "\udc00": 2}"#,
            b"{\"a\": 1, \"\xff\": 2}",
        ] {
            assert_eq!(parse(bad), whole(bad).map(|_| json!(null)), "{bad:?}");
            assert!(parse(bad).is_err());
        }
    }

    #[test]
    fn a_malformed_array_is_located_in_the_whole_input() {
        // (input, message start, line, column) as serde_json would report on the whole input.
        let cases = [
            ("[{\"a\": 1},\n {\"b\": }]", "expected val", 2, 8),
            ("[{\"a\": 1}", "EOF while pa", 1, 9),
            ("[1, 2] x", "trailing cha", 1, 8),
            ("[1,\n\n  2 3]", "trailing cha", 3, 5),
            ("{}", "expected `[`", 1, 1),
        ];
        for (input, message, line, column) in cases {
            assert_eq!(
                elements(input),
                Err((message.to_string(), line, column)),
                "{input:?}"
            );
        }
    }
}
