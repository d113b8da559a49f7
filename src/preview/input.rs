//! The records of a preview's input, read incrementally: one record in memory at a time.
//!
//! The input is a JSON array of records, or a whole response of the source operation whose
//! `records` JSONPath picks them. serde_json's streaming deserializer walks the path's plain
//! field names (`$.response.stockin_list`) skipping every other field unread, then visits
//! the list's elements one by one; only a path that goes on with something other than `[*]`
//! (a filter, an index) holds the value at its plain prefix in memory to apply the rest.
//! A UTF-8 byte-order mark is skipped. A JSON Lines input is read line by line instead
//! (`for_each_input`). Reads the one file; nothing else.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use jsonpath_rust::parser::model::{JpQuery, Segment, Selector};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value as Json;

use crate::config::model::JsonPath;
use crate::config::raw::FileFormat;
use crate::error::{Error, Location, Result};
use crate::preview::elements::{self, Projection, Stop};

/// The longest input line an error quotes.
const MAX_QUOTED_LINE: usize = 200;

/// Like [`for_each_record`], and a JSON Lines file (`.jsonl`, `.ndjson`: a dump, or what a
/// file connector wrote) is read one line at a time by `file::format`.
pub fn for_each_input(
    input: &Path,
    records: Option<&JsonPath>,
    fields: Option<Projection<'_>>,
    each: &mut dyn FnMut(Json) -> Result<()>,
) -> Result<usize> {
    let lines = input
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("jsonl") || ext.eq_ignore_ascii_case("ndjson"));
    if !lines {
        return for_each_record(input, records, fields, each);
    }
    let mut count = 0;
    let mut failed = None;
    let read = crate::file::format::for_each_record(input, FileFormat::Jsonl, &mut |_, record| {
        count += 1;
        each(record).map_err(|err| {
            failed = Some(err);
            Error::usage("stopped by the preview")
        })
    });
    if let Some(err) = failed {
        return Err(err);
    }
    // A line that cannot be read is the input's fault (exit 2), as a bad JSON array is.
    read.map_err(|err| {
        let mut usage = Error::usage(err.message());
        if let Some(location) = err.location() {
            usage = usage.with_location(location.clone());
        }
        usage
    })?;
    Ok(count)
}

/// Call `each` with every record of `input` in order; returns how many there were.
/// `each` failing stops the reading and its error is returned. With `fields`, the records of
/// an input that is an array may hold only those top-level fields (an optimisation: records
/// read from a response or JSON Lines come whole).
pub fn for_each_record(
    input: &Path,
    records: Option<&JsonPath>,
    fields: Option<Projection<'_>>,
    each: &mut dyn FnMut(Json) -> Result<()>,
) -> Result<usize> {
    let file = File::open(input).map_err(|err| {
        Error::usage(format!("cannot read the input `{}`", input.display())).with_source(err)
    })?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    skip_byte_order_mark(&mut reader).map_err(|err| {
        Error::usage(format!("cannot read the input `{}`", input.display())).with_source(err)
    })?;
    if first_non_blank(&mut reader).map_err(|err| {
        Error::usage(format!("cannot read the input `{}`", input.display())).with_source(err)
    })? == Some(b'[')
    {
        return array_of_records(input, &mut reader, fields, each);
    }
    let plan = records.map(Plan::of);
    let mut sink = Sink {
        each,
        count: 0,
        failed: None,
    };
    let mut deserializer = serde_json::Deserializer::from_reader(reader);
    let shape = Top {
        plan: plan.as_ref(),
        sink: &mut sink,
    }
    .deserialize(&mut deserializer)
    .and_then(|shape| deserializer.end().map(|()| shape));
    if let Some(failed) = sink.failed {
        return Err(failed);
    }
    let shape = shape.map_err(|err| not_json(input, err))?;
    match shape {
        Shape::Array => Ok(sink.count),
        Shape::Object if sink.count > 0 => Ok(sink.count),
        Shape::Object => {
            let path = records.map_or("", |p| p.text.as_str());
            Err(
                Error::usage(format!("`{}` has no records at `{path}`", input.display()))
                    .with_hint(
                        "give a JSON array of records, or a whole response of the source operation",
                    ),
            )
        }
        Shape::Other => Err(Error::usage(format!(
            "`{}` holds neither records nor a response",
            input.display()
        ))),
    }
}

/// An array of records, split element by element and each parsed from its bytes (see
/// `elements`): several times faster than serde_json's reading from a stream.
fn array_of_records(
    input: &Path,
    reader: &mut impl BufRead,
    fields: Option<Projection<'_>>,
    each: &mut dyn FnMut(Json) -> Result<()>,
) -> Result<usize> {
    elements::for_each_element(reader, fields, each).map_err(|stop| match stop {
        Stop::Consumer(err) => err,
        Stop::Io(err) => {
            Error::usage(format!("cannot read the input `{}`", input.display())).with_source(err)
        }
        Stop::Invalid {
            message,
            line,
            column,
        } => located(
            input,
            line,
            column,
            std::io::Error::other(format!("{message} at line {line} column {column}")),
        ),
    })
}

/// The first byte that is not blank, left unread; `None` for a blank input.
fn first_non_blank(reader: &mut impl BufRead) -> std::io::Result<Option<u8>> {
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(None);
        }
        match buffer
            .iter()
            .position(|byte| !matches!(byte, b' ' | b'\t' | b'\n' | b'\r'))
        {
            Some(at) => {
                let byte = buffer[at];
                reader.consume(at);
                return Ok(Some(byte));
            }
            None => {
                let size = buffer.len();
                reader.consume(size);
            }
        }
    }
}

// Editors on Windows save UTF-8 with a byte-order mark; JSON itself has none.
pub(crate) fn skip_byte_order_mark(reader: &mut impl BufRead) -> std::io::Result<()> {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let mut start = [0u8; 3];
    let mut filled = 0;
    // `fill_buf` may return fewer than three bytes at a time; peek until three or the end.
    while filled < 3 {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(());
        }
        let take = (3 - filled).min(buffer.len());
        start[filled..filled + take].copy_from_slice(&buffer[..take]);
        if start[..filled + take] != BOM[..filled + take] {
            // Not a BOM: nothing consumed beyond what matched, and what matched is a prefix of
            // the BOM, which no JSON text starts with.
            return Ok(());
        }
        reader.consume(take);
        filled += take;
    }
    Ok(())
}

fn not_json(input: &Path, err: serde_json::Error) -> Error {
    located(input, err.line(), err.column(), err)
}

/// The input is not valid JSON at `line`, `column` (1-based), for the reason `source` gives.
fn located(
    input: &Path,
    line: usize,
    column: usize,
    source: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    // API responses are often one long line: quoting it under a caret would flood the terminal.
    let quotable = line_length(input, line).is_some_and(|n| n <= MAX_QUOTED_LINE);
    let error = if quotable {
        Error::usage(format!("`{}` is not valid JSON", input.display()))
            .with_location(Location::new(input, line, column, 1))
    } else {
        Error::usage(format!(
            "`{}` is not valid JSON (line {line}, column {column})",
            input.display()
        ))
    };
    error.with_source(source)
}

/// The length in bytes of line `number` (1-based) of `path`, counted without holding it.
fn line_length(path: &Path, number: usize) -> Option<usize> {
    let mut reader = BufReader::new(File::open(path).ok()?);
    let mut line = 1;
    let mut length = 0;
    loop {
        let buffer = reader.fill_buf().ok()?;
        if buffer.is_empty() {
            return (line == number).then_some(length);
        }
        let size = buffer.len();
        for &byte in buffer {
            if byte == b'\n' {
                if line == number {
                    return Some(length);
                }
                line += 1;
            } else if line == number {
                length += 1;
            }
        }
        reader.consume(size);
    }
}

/// Where the records are in a response: the path's leading plain field names, then the rest.
#[derive(Debug)]
struct Plan {
    prefix: Vec<String>,
    rest: Rest,
}

#[derive(Debug)]
enum Rest {
    /// The path ends at the prefix: the value there is the one record.
    Nothing,
    /// `[*]`: each element (or field value) of the value there is a record.
    Each,
    /// Anything else, applied to the value there.
    Query(JpQuery),
}

impl Plan {
    fn of(path: &JsonPath) -> Plan {
        let segments = &path.query.segments;
        let prefix: Vec<String> = segments
            .iter()
            .map_while(|segment| match segment {
                Segment::Selector(Selector::Name(name)) => Some(name.clone()),
                Segment::Selectors(selectors) => match selectors.as_slice() {
                    [Selector::Name(name)] => Some(name.clone()),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        let rest = &segments[prefix.len()..];
        let rest = match rest {
            [] => Rest::Nothing,
            [Segment::Selector(Selector::Wildcard)] => Rest::Each,
            [Segment::Selectors(one)] if matches!(one.as_slice(), [Selector::Wildcard]) => {
                Rest::Each
            }
            rest => Rest::Query(JpQuery::new(rest.to_vec())),
        };
        Plan { prefix, rest }
    }
}

struct Sink<'a> {
    each: &'a mut dyn FnMut(Json) -> Result<()>,
    count: usize,
    /// The error `each` stopped with; the deserializer only carries a placeholder.
    failed: Option<Error>,
}

impl Sink<'_> {
    fn give<E: de::Error>(&mut self, record: Json) -> std::result::Result<(), E> {
        self.count += 1;
        match (self.each)(record) {
            Ok(()) => Ok(()),
            Err(err) => {
                self.failed = Some(err);
                Err(E::custom("stopped by the preview"))
            }
        }
    }

    fn give_selected<E: de::Error>(
        &mut self,
        value: Json,
        rest: &Rest,
    ) -> std::result::Result<(), E> {
        match rest {
            Rest::Nothing => self.give(value),
            Rest::Each => match value {
                Json::Array(items) => items.into_iter().try_for_each(|item| self.give(item)),
                Json::Object(fields) => fields.into_iter().try_for_each(|(_, v)| self.give(v)),
                _ => Ok(()),
            },
            Rest::Query(query) => {
                let selected: Vec<Json> = jsonpath_rust::query::js_path_process(query, &value)
                    .map(|found| found.into_iter().map(|r| r.val.clone()).collect())
                    .unwrap_or_default();
                selected.into_iter().try_for_each(|item| self.give(item))
            }
        }
    }
}

/// What the input is at its top.
enum Shape {
    Array,
    Object,
    Other,
}

/// The whole input: an array of records, or a response to walk.
struct Top<'p, 's, 'a> {
    plan: Option<&'p Plan>,
    sink: &'s mut Sink<'a>,
}

impl<'de> DeserializeSeed<'de> for Top<'_, '_, '_> {
    type Value = Shape;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<Shape, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Top<'_, '_, '_> {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of records or a response")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Shape, A::Error> {
        while let Some(record) = seq.next_element::<Json>()? {
            self.sink.give(record)?;
        }
        Ok(Shape::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> std::result::Result<Shape, A::Error> {
        match self.plan {
            None => {
                IgnoredAny.visit_map(map)?;
            }
            Some(plan) if plan.prefix.is_empty() && !matches!(plan.rest, Rest::Each) => {
                let value = Json::deserialize(de::value::MapAccessDeserializer::new(map))?;
                self.sink.give_selected(value, &plan.rest)?;
            }
            Some(plan) => Walk {
                plan,
                depth: 0,
                sink: self.sink,
            }
            .visit_map(map)?,
        }
        Ok(Shape::Object)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> std::result::Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_unit<E: de::Error>(self) -> std::result::Result<Shape, E> {
        Ok(Shape::Other)
    }
}

/// The value at `plan.prefix[..depth]` of a response.
struct Walk<'p, 's, 'a> {
    plan: &'p Plan,
    depth: usize,
    sink: &'s mut Sink<'a>,
}

impl Walk<'_, '_, '_> {
    fn at_records(&self) -> bool {
        self.depth == self.plan.prefix.len()
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<(), D::Error> {
        if self.at_records() && !matches!(self.plan.rest, Rest::Each) {
            let value = Json::deserialize(deserializer)?;
            return self.sink.give_selected(value, &self.plan.rest);
        }
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        if self.at_records() {
            // `[*]` on an object: each field's value is a record.
            while let Some((_, record)) = map.next_entry::<IgnoredAny, Json>()? {
                self.sink.give(record)?;
            }
            return Ok(());
        }
        let wanted = &self.plan.prefix[self.depth];
        while let Some(key) = map.next_key::<String>()? {
            if key == *wanted {
                map.next_value_seed(Walk {
                    plan: self.plan,
                    depth: self.depth + 1,
                    sink: &mut *self.sink,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        if !self.at_records() {
            return IgnoredAny.visit_seq(seq).map(|_| ());
        }
        while let Some(record) = seq.next_element::<Json>()? {
            self.sink.give(record)?;
        }
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> std::result::Result<(), E> {
        Ok(())
    }
}

/// The most of a pipe or device a preview copies (`/dev/zero` or `yes |` would fill the disk).
const MAX_PIPED_INPUT: u64 = 256 << 20;

/// Copy a pipe or other unseekable input to a private temporary file (at most
/// [`MAX_PIPED_INPUT`]), for the two passes a preview reads; a regular file is read where it is.
pub struct Replayable {
    pub path: std::path::PathBuf,
    temporary: bool,
}

impl Replayable {
    pub fn new(input: &Path) -> Result<Replayable> {
        if std::fs::metadata(input).is_ok_and(|m| m.is_file()) || !input.exists() {
            return Ok(Replayable {
                path: input.to_path_buf(),
                temporary: false,
            });
        }
        let cannot = |err: std::io::Error| {
            Error::usage(format!("cannot read the input `{}`", input.display())).with_source(err)
        };
        // A new file of a name nobody can foresee: never one that is there already (a link
        // planted in a shared temporary folder, or one a killed preview left).
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        let path = std::env::temp_dir().join(format!(
            "engine-preview-{}-{nanos}.json",
            std::process::id()
        ));
        let source = File::open(input).map_err(cannot)?;
        let copied = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut copy| std::io::copy(&mut source.take(MAX_PIPED_INPUT + 1), &mut copy));
        let replayable = Replayable {
            path,
            temporary: true,
        };
        if copied.map_err(cannot)? > MAX_PIPED_INPUT {
            return Err(Error::usage(format!(
                "the input `{}` is not a regular file and is longer than {}",
                input.display(),
                crate::http::transport::size(MAX_PIPED_INPUT)
            ))
            .with_hint("save it to a file and preview that file"));
        }
        Ok(replayable)
    }
}

impl Drop for Replayable {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn records_of(text: &str, path: Option<&str>) -> Result<Vec<Json>> {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("input.json");
        std::fs::write(&input, text).unwrap();
        let path = path.map(JsonPath::of);
        let mut records = Vec::new();
        for_each_record(&input, path.as_ref(), None, &mut |record| {
            records.push(record);
            Ok(())
        })?;
        Ok(records)
    }

    #[test]
    fn streaming_finds_what_the_path_selects_in_the_whole_value() {
        let response = json!({
            "code": 0,
            "list": [{"skip": 1}],
            "response": {
                "total": 2,
                "stockin_list": [{"id": "A", "n": [1, 2]}, {"id": "B", "o": {"x": null}}],
                "after": {"stockin_list": [{"id": "X"}]}
            },
            "map": {"a": {"id": "M1"}, "b": {"id": "M2"}}
        });
        for path in [
            "$.response.stockin_list[*]",
            "$['response']['stockin_list'][*]",
            "$.response.stockin_list",
            "$.response.stockin_list[1]",
            "$.response.stockin_list[?@.id == 'B']",
            "$.map[*]",
            "$.map.a",
            "$.missing[*]",
            "$.code",
            "$[*]",
            "$..id",
            "$.response.total[*]",
        ] {
            let query = jsonpath_rust::parser::parse_json_path(path).unwrap();
            let expected: Vec<Json> = jsonpath_rust::query::js_path_process(&query, &response)
                .map(|found| found.into_iter().map(|r| r.val.clone()).collect())
                .unwrap_or_default();
            let text = serde_json::to_string_pretty(&response).unwrap();
            let streamed = records_of(&text, Some(path));
            match streamed {
                Ok(records) => assert_eq!(records, expected, "{path}"),
                Err(err) => assert!(expected.is_empty(), "{path}: {err}"),
            }
        }
    }

    #[test]
    fn an_array_is_the_records_whatever_the_path_and_a_mark_is_skipped() {
        for text in ["[{\"id\": 1}, 2]", "\u{feff}[{\"id\": 1}, 2]"] {
            assert_eq!(
                records_of(text, Some("$.response.list[*]")).unwrap(),
                vec![json!({"id": 1}), json!(2)]
            );
        }
        assert_eq!(records_of("[]", None).unwrap(), Vec::<Json>::new());
    }

    #[test]
    fn bad_inputs_are_refused() {
        for (text, message) in [
            ("[{", "is not valid JSON"),
            ("[1] [2]", "is not valid JSON"),
            ("{}", "has no records at `$.list[*]`"),
            ("{\"list\": []}", "has no records at `$.list[*]`"),
            ("\"text\"", "holds neither records nor a response"),
            ("", "is not valid JSON"),
        ] {
            let err = records_of(text, Some("$.list[*]")).expect_err(text);
            assert!(err.message().contains(message), "{text}: {}", err.message());
        }
    }

    #[test]
    fn the_consumer_stopping_stops_the_reading_with_its_error() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("input.json");
        std::fs::write(&input, "[1, 2, 3]").unwrap();
        let mut seen = 0;
        let err = for_each_record(&input, None, None, &mut |_| {
            seen += 1;
            if seen == 2 {
                return Err(Error::config("enough"));
            }
            Ok(())
        })
        .unwrap_err();
        assert_eq!((err.message(), seen), ("enough", 2));
    }
}
