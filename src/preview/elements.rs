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
        for &byte in bytes {
            if byte == b'\n' {
                self.line += 1;
                self.column = 0;
            } else {
                self.column += 1;
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
/// must be `[`); returns how many there were.
pub fn for_each_element<E>(
    reader: &mut impl BufRead,
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
        let (bytes, last) = scanner.element()?;
        let value: Json = serde_json::from_slice(&bytes).map_err(|err| {
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

    /// The bytes of the element starting here, and whether it was the array's last; its
    /// separator (`,` or `]`) is consumed.
    fn element<E>(&mut self) -> Result<(Vec<u8>, bool), Stop<E>> {
        let mut depth = 0usize;
        let mut in_string = false;
        let mut escaped = false;
        let mut scanned = 0;
        loop {
            let window = &self.buffer[self.at..];
            while scanned < window.len() {
                let byte = window[scanned];
                if in_string {
                    if escaped {
                        escaped = false;
                    } else if byte == b'\\' {
                        escaped = true;
                    } else if byte == b'"' {
                        in_string = false;
                    }
                } else {
                    match byte {
                        b'"' => in_string = true,
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' if depth > 0 => depth -= 1,
                        b']' | b',' if depth == 0 => {
                            let element = window[..scanned].to_vec();
                            self.take(scanned + 1);
                            return Ok((element, byte == b']'));
                        }
                        _ => {}
                    }
                }
                scanned += 1;
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
        match for_each_element(&mut reader, &mut each) {
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
