//! JSON Lines and CSV: one record as a line or a row, and the records of a file streamed.
//!
//! Writing: a JSON Lines line is the mapped record as compact JSON; a CSV row has one cell
//! per column, each a field path of the mapped record (a text as it is, a number or boolean
//! as written, `null` or a missing field empty, a list or an object as JSON text), quoted as
//! RFC 4180 says by the `csv` crate. Reading: one line or row in memory at a time; a line
//! that is not a JSON object, or a row with the wrong number of cells, is an error naming the
//! file and the line. A UTF-8 byte-order mark is skipped (`preview::input`'s).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use serde_json::{Map, Value as Json};

use crate::config::model::FieldPath;
use crate::config::raw::FileFormat;
use crate::error::{Error, ErrorKind, Location, Result};
use crate::preview::input::skip_byte_order_mark;

/// The text of one CSV cell for `value`.
pub fn cell(value: Option<&Json>) -> String {
    match value {
        None | Some(Json::Null) => String::new(),
        Some(Json::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// The columns of a record without `columns:`: its top-level keys, in mapping order.
pub fn top_level_columns(record: &Json) -> Vec<FieldPath> {
    match record {
        Json::Object(fields) => fields
            .keys()
            .map(|key| FieldPath {
                text: key.clone(),
                segments: vec![key.clone()],
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A top-level field of `record` that none of `columns` writes (it would be lost).
pub fn unwritten_field<'a>(record: &'a Json, columns: &[FieldPath]) -> Option<&'a str> {
    let Json::Object(fields) = record else {
        return None;
    };
    fields
        .iter()
        .filter(|(_, value)| !value.is_null())
        .map(|(key, _)| key.as_str())
        .find(|key| !columns.iter().any(|c| c.segments[0] == *key))
}

/// The CSV row of `record`.
pub fn row(record: &Json, columns: &[FieldPath]) -> Vec<String> {
    columns.iter().map(|c| cell(c.select(record))).collect()
}

/// Write rows (and the header first, when given) to `out` as CSV.
pub fn write_csv(
    out: impl Write,
    header: Option<&[FieldPath]>,
    rows: &[Vec<String>],
) -> std::io::Result<()> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(out);
    if let Some(header) = header {
        writer.write_record(header.iter().map(|c| c.text.as_str()))?;
    }
    for row in rows {
        writer.write_record(row)?;
    }
    writer.flush()
}

/// One JSON Lines line for `record` (its compact JSON text), its newline included.
pub fn jsonl_line(record: &str) -> String {
    let mut line = String::with_capacity(record.len() + 1);
    line.push_str(record);
    line.push('\n');
    line
}

/// Call `each` with the line number and record of every line or row of `path`, in order.
/// Blank JSON Lines lines are skipped; a CSV row's cells are texts named by the header.
pub fn for_each_record(
    path: &Path,
    format: FileFormat,
    each: &mut dyn FnMut(u64, Json) -> Result<()>,
) -> Result<()> {
    let cannot = |err: std::io::Error| {
        Error::new(ErrorKind::Io, format!("cannot read `{}`", path.display())).with_source(err)
    };
    let file = File::open(path).map_err(cannot)?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    skip_byte_order_mark(&mut reader).map_err(cannot)?;
    match format {
        FileFormat::Jsonl => each_jsonl(path, reader, each),
        FileFormat::Csv => each_csv(path, reader, each),
    }
}

fn bad_line(path: &Path, line: u64, column: usize, what: String) -> Error {
    Error::new(
        ErrorKind::Io,
        format!("`{}` line {line}: {what}", path.display()),
    )
    .with_location(Location::new(path, line as usize, column.max(1), 1))
    .with_hint(
        "fix or remove the line, then run again: nothing after it was read, and the cursor stays",
    )
}

fn each_jsonl(
    path: &Path,
    mut reader: impl BufRead,
    each: &mut dyn FnMut(u64, Json) -> Result<()>,
) -> Result<()> {
    let mut text = String::new();
    let mut number = 0u64;
    loop {
        text.clear();
        let read = reader.read_line(&mut text).map_err(|err| {
            bad_line(path, number + 1, 1, "not UTF-8 text".to_string()).with_source(err)
        })?;
        if read == 0 {
            return Ok(());
        }
        number += 1;
        let line = text.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Json>(line) {
            Ok(record @ Json::Object(_)) => each(number, record)?,
            Ok(other) => {
                let kind = match other {
                    Json::Array(_) => "a list",
                    Json::String(_) => "a text",
                    Json::Number(_) => "a number",
                    Json::Bool(_) => "a boolean",
                    _ => "null",
                };
                return Err(bad_line(
                    path,
                    number,
                    1,
                    format!("{kind}, not a JSON object (a record)"),
                ));
            }
            Err(err) => {
                // serde_json says "at line 1": the line of the line, not of the file.
                let text = err.to_string();
                let what = text.split(" at line ").next().unwrap_or(&text);
                return Err(bad_line(
                    path,
                    number,
                    err.column(),
                    format!("not JSON: {what} (column {})", err.column()),
                ));
            }
        }
    }
}

fn each_csv(
    path: &Path,
    mut reader: impl BufRead,
    each: &mut dyn FnMut(u64, Json) -> Result<()>,
) -> Result<()> {
    // The csv crate counts the `\n` of a CRLF row ending only when it reads the next row, so
    // in a CRLF file (RFC 4180's, and what a file target writes) every row after the header
    // is reported one line early.
    let crlf = reader.fill_buf().is_ok_and(|start| {
        start
            .iter()
            .position(|b| *b == b'\n')
            .is_some_and(|end| end > 0 && start[end - 1] == b'\r')
    });
    let late =
        |position: &csv::Position| position.line() + u64::from(crlf && position.record() > 0);
    let mut csv = csv::ReaderBuilder::new().from_reader(reader);
    let csv_error = |err: csv::Error| {
        let line = err.position().map_or(1, late);
        let what = match err.kind() {
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => format!("{len} cells where the header has {expected_len}"),
            csv::ErrorKind::Utf8 { .. } => "not UTF-8 text".to_string(),
            _ => err.to_string(),
        };
        bad_line(path, line, 1, what)
    };
    let header: Vec<String> = csv
        .headers()
        .map_err(csv_error)?
        .iter()
        .map(str::to_string)
        .collect();
    if let Some((at, name)) = (header.iter().enumerate()).find(|(i, n)| header[..*i].contains(n)) {
        return Err(bad_line(
            path,
            1,
            1,
            format!(
                "column `{name}` is named twice in the header (cell {})",
                at + 1
            ),
        ));
    }
    let mut row = csv::StringRecord::new();
    while csv.read_record(&mut row).map_err(csv_error)? {
        let line = row.position().map_or(0, late);
        let record: Map<String, Json> = header
            .iter()
            .zip(row.iter())
            .map(|(name, value)| (name.clone(), Json::String(value.to_string())))
            .collect();
        each(line, Json::Object(record))?;
    }
    Ok(())
}

/// The header of an existing CSV file (`None`: the file is empty).
pub fn csv_header(path: &Path) -> Result<Option<Vec<String>>> {
    let cannot = |err: std::io::Error| {
        Error::new(ErrorKind::Io, format!("cannot read `{}`", path.display())).with_source(err)
    };
    let mut reader = BufReader::new(File::open(path).map_err(cannot)?);
    skip_byte_order_mark(&mut reader).map_err(cannot)?;
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(reader);
    let mut header = csv::StringRecord::new();
    match csv.read_record(&mut header) {
        Ok(true) => Ok(Some(header.iter().map(str::to_string).collect())),
        Ok(false) => Ok(None),
        Err(err) => Err(Error::new(
            ErrorKind::Io,
            format!("cannot read the header of `{}`: {err}", path.display()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn columns(texts: &[&str]) -> Vec<FieldPath> {
        texts.iter().map(|t| FieldPath::parse(t)).collect()
    }

    fn csv_text(header: &[&str], records: &[Json]) -> String {
        let columns = columns(header);
        let rows: Vec<Vec<String>> = records.iter().map(|r| row(r, &columns)).collect();
        let mut out = Vec::new();
        write_csv(&mut out, Some(&columns), &rows).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_cells_are_quoted_as_rfc_4180_says_and_nested_values_are_json_text() {
        let table: &[(Json, &str)] = &[
            (json!({"a": "plain"}), "plain"),
            (json!({"a": "with, comma"}), "\"with, comma\""),
            (json!({"a": "say \"hi\""}), "\"say \"\"hi\"\"\""),
            (json!({"a": "two\nlines"}), "\"two\nlines\""),
            (json!({"a": 12.50}), "12.5"),
            (json!({"a": true}), "true"),
            (json!({"a": null}), "\"\""),
            (json!({}), "\"\""),
            (json!({"a": "中文"}), "中文"),
            (
                json!({"a": {"b": [1, "x"]}}),
                "\"{\"\"b\"\":[1,\"\"x\"\"]}\"",
            ),
        ];
        for (record, cell) in table {
            assert_eq!(
                csv_text(&["a"], std::slice::from_ref(record)),
                format!("a\r\n{cell}\r\n"),
                "{record}"
            );
        }
    }

    #[test]
    fn a_column_is_a_field_path_into_the_mapped_record() {
        let record =
            json!({"no": "RK1", "customer": {"name": "张三"}, "lines": [{"qty": 2}, {"qty": 3}]});
        assert_eq!(
            row(
                &record,
                &columns(&["no", "customer.name", "lines.1.qty", "lines.5.qty", "no.x"])
            ),
            ["RK1", "张三", "3", "", ""]
        );
        assert_eq!(
            top_level_columns(&record)
                .iter()
                .map(|c| c.text.as_str())
                .collect::<Vec<_>>(),
            ["no", "customer", "lines"]
        );
        assert_eq!(
            unwritten_field(&record, &columns(&["no", "lines.0.qty"])),
            Some("customer")
        );
        assert_eq!(
            unwritten_field(&record, &columns(&["no", "customer.name", "lines"])),
            None
        );
        assert_eq!(
            unwritten_field(&json!({"no": "RK1", "x": null}), &columns(&["no"])),
            None
        );
    }

    fn read(text: &str, format: FileFormat) -> Result<Vec<(u64, Json)>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in");
        std::fs::write(&path, text).unwrap();
        let mut records = Vec::new();
        for_each_record(&path, format, &mut |line, record| {
            records.push((line, record));
            Ok(())
        })?;
        Ok(records)
    }

    #[test]
    fn what_is_written_reads_back_and_lines_are_numbered_as_in_an_editor() {
        let written = csv_text(
            &["no", "note"],
            &[
                json!({"no": "RK1", "note": "a,\"b\"\nc"}),
                json!({"no": "RK2"}),
            ],
        );
        assert_eq!(
            read(&written, FileFormat::Csv).unwrap(),
            vec![
                (2, json!({"no": "RK1", "note": "a,\"b\"\nc"})),
                (4, json!({"no": "RK2", "note": ""}))
            ]
        );
        let lines = "\u{feff}{\"no\": \"RK1\"}\n\n{\"no\": \"RK2\"}\r\n";
        assert_eq!(
            read(lines, FileFormat::Jsonl).unwrap(),
            vec![(1, json!({"no": "RK1"})), (3, json!({"no": "RK2"}))]
        );
    }

    #[test]
    fn a_bad_line_is_named_by_file_and_line() {
        let table: &[(&str, FileFormat, &str)] = &[
            (
                "{\"no\": 1}\n{\"no\": \n",
                FileFormat::Jsonl,
                "line 2: not JSON",
            ),
            (
                "{\"no\": 1}\n[1]\n",
                FileFormat::Jsonl,
                "line 2: a list, not a JSON object",
            ),
            (
                "no,qty\nRK1,1\nRK2\n",
                FileFormat::Csv,
                "line 3: 1 cells where the header has 2",
            ),
        ];
        let crlf = "no,qty\r\nRK1,1\r\nRK2\r\n";
        let crlf_case = [(
            crlf,
            FileFormat::Csv,
            "line 3: 1 cells where the header has 2",
        )];
        for (text, format, message) in table.iter().chain(&crlf_case) {
            let err = read(text, *format).unwrap_err();
            assert!(err.message().contains(message), "{text}: {}", err.message());
            assert!(err.message().contains("/in` line"), "{}", err.message());
        }
    }

    /// A header that names a column twice would keep one of the two cells and drop the other.
    #[test]
    fn a_csv_header_naming_a_column_twice_is_refused_at_line_1() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        std::fs::write(&path, "id,phone,phone\r\nA,111,222\r\n").unwrap();
        let mut records = Vec::new();
        let result = for_each_record(&path, FileFormat::Csv, &mut |_, r| {
            records.push(r);
            Ok(())
        });
        let error = result.expect_err(&format!("read as {records:?}"));
        assert!(
            error.message().contains("column `phone` is named twice"),
            "{}",
            error.message()
        );
    }
}
