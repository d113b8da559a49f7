//! Value maps: CSV files that translate a source code into a target code.
//!
//! The people who own master data keep these in a spreadsheet: a header row, then rows of
//! source value and target code (more columns are ignored, so a third column can hold a
//! note). Parsing reports every bad row with its line; a file saved by Excel with a BOM is
//! fine, one saved in GBK gets a clear error. Lookups are by exact text after trimming.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::config::raw::MissPolicy;
use crate::error::{Error, Location};

/// Bad rows reported one by one before the rest are counted.
const MAX_ROW_ERRORS: usize = 10;

/// A loaded value map.
#[derive(Debug, Clone)]
pub struct ValueMap {
    pub name: String,
    pub file: PathBuf,
    pub on_missing: MissPolicy,
    pub default: Option<String>,
    entries: HashMap<String, String>,
}

/// All value maps of a flow, by name.
pub type ValueMaps = BTreeMap<String, ValueMap>;

impl ValueMap {
    /// Read and parse `file`; every problem is returned, each located in the CSV file.
    pub fn load(
        name: &str,
        file: &Path,
        on_missing: MissPolicy,
        default: Option<String>,
    ) -> Result<ValueMap, Vec<Error>> {
        if file.is_dir() {
            return Err(vec![
                Error::config(format!(
                    "value map `{name}`: `{}` is a folder, not a CSV file",
                    file.display()
                ))
                .with_location(Location::file_only(file)),
            ]);
        }
        let bytes = crate::config::file::read_bounded(
            file,
            "CSV file",
            crate::config::file::MAX_VALUE_MAP_BYTES,
        )
        .map_err(|err| vec![err])?;
        ValueMap::parse(name, file, &bytes, on_missing, default)
    }

    pub fn parse(
        name: &str,
        file: &Path,
        bytes: &[u8],
        on_missing: MissPolicy,
        default: Option<String>,
    ) -> Result<ValueMap, Vec<Error>> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let text = std::str::from_utf8(bytes).map_err(|err| {
            let (line, column) = crate::config::file::position_of_invalid_utf8(bytes, err);
            vec![
                Error::config(format!("value map `{name}` is not UTF-8 text"))
                    .with_location(Location::new(file, line, column, 1))
                    .with_hint("save it as \"CSV UTF-8\" (Excel) or convert it, e.g. `iconv -f GBK -t UTF-8`"),
            ]
        })?;
        if let Some((line, column)) = unterminated_quote(text) {
            // The csv crate reads an open quote up to the end of the file as one value, which
            // would silently swallow every row after it.
            return Err(vec![
                Error::config(format!(
                    "value map `{name}` has a quote `\"` that is never closed"
                ))
                .with_location(Location::new(file, line, column, 1))
                .with_hint(
                    "every row after it would be read as one value; close the quote or remove it",
                ),
            ]);
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let mut errors = Vec::new();
        let at = |line: u64, column: usize| Location::new(file, line as usize, column, 1);
        let one_column_header = reader.headers().is_ok_and(|h| h.len() < 2);
        match reader.headers() {
            Ok(header) if header.len() >= 2 => {}
            Ok(header) if header.is_empty() || (header.len() == 1 && header[0].is_empty()) => {
                return Err(vec![Error::config(format!("value map `{name}` is empty"))
                    .with_location(Location::new(file, 1, 1, 1))
                    .with_hint("the first row is a header, e.g. `source,target`; then one row per value")]);
            }
            Ok(_) => errors.push(
                Error::config(format!(
                    "the header of value map `{name}` has one column; expected at least two"
                ))
                .with_location(at(1, 1))
                .with_hint("columns: source value, target code (separated by commas)"),
            ),
            Err(err) => return Err(vec![csv_error(name, file, err)]),
        }
        let mut entries = HashMap::new();
        let mut first_seen: HashMap<String, u64> = HashMap::new();
        let (mut rows, mut one_column) = (0, 0);
        for record in reader.records() {
            rows += 1;
            let record = match record {
                Ok(record) => record,
                Err(err) => {
                    errors.push(csv_error(name, file, err));
                    continue;
                }
            };
            let line = record.position().map_or(0, |p| p.line());
            if record.iter().all(str::is_empty) {
                continue;
            }
            if record.len() < 2 {
                one_column += 1;
                errors.push(
                    Error::config(format!("row of value map `{name}` has one column; expected source value and target code"))
                        .with_location(at(line, 1))
                        .with_hint("separate the two values with a comma"),
                );
                continue;
            }
            let (source, target) = (&record[0], &record[1]);
            if source.is_empty() {
                errors.push(
                    Error::config(format!("empty source value in value map `{name}`"))
                        .with_location(at(line, 1)),
                );
                continue;
            }
            if target.is_empty() {
                errors.push(
                    Error::config(format!(
                        "value `{source}` has an empty target code in value map `{name}`"
                    ))
                    .with_location(at(line, source.chars().count() + 2)),
                );
                continue;
            }
            if let Some(first) = first_seen.get(source) {
                errors.push(
                    Error::config(format!(
                        "value `{source}` appears twice in value map `{name}`"
                    ))
                    .with_location(at(line, 1))
                    .with_hint(format!("it is first mapped on line {first}; keep one row")),
                );
                continue;
            }
            first_seen.insert(source.to_string(), line);
            entries.insert(source.to_string(), target.to_string());
        }
        if !errors.is_empty() {
            // Mostly bad rows: the file is something else (a flow, a spreadsheet saved with
            // semicolons); one error says so better than a screenful of row errors.
            if one_column_header && rows >= 4 && one_column * 2 > rows {
                return Err(vec![
                    Error::config(format!(
                        "value map `{name}` does not look like a CSV file: {one_column} of its {rows} rows have no comma"
                    ))
                    .with_location(Location::new(file, 1, 1, 1))
                    .with_hint("a value map is a CSV file: a header row, then one `source,target` row per value, separated by commas"),
                ]);
            }
            if errors.len() > MAX_ROW_ERRORS {
                let more = errors.len() - MAX_ROW_ERRORS;
                // Pointed at the first of the rows not listed, where the reader goes on.
                let first = errors[MAX_ROW_ERRORS]
                    .location()
                    .cloned()
                    .unwrap_or_else(|| Location::file_only(file));
                errors.truncate(MAX_ROW_ERRORS);
                errors.push(
                    Error::config(format!(
                        "value map `{name}` has {more} more bad row{}, from this one on",
                        if more == 1 { "" } else { "s" }
                    ))
                    .with_location(first),
                );
            }
            return Err(errors);
        }
        Ok(ValueMap {
            name: name.to_string(),
            file: file.to_path_buf(),
            on_missing,
            default,
            entries,
        })
    }

    pub fn get(&self, source: &str) -> Option<&str> {
        self.entries.get(source.trim()).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Where a quoted CSV value opens without ever closing (1-based line and column), read as
/// the csv crate reads it: a quote opens a value only at its start, `""` is a quote inside.
fn unterminated_quote(text: &str) -> Option<(usize, usize)> {
    let (mut line, mut column) = (1, 0);
    let mut at_value_start = true;
    let mut open: Option<(usize, usize)> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        column += 1;
        match c {
            '"' if open.is_some() && chars.peek() == Some(&'"') => {
                chars.next();
                column += 1;
            }
            '"' if open.is_some() => open = None,
            '"' if at_value_start => open = Some((line, column)),
            '\n' => {
                line += 1;
                column = 0;
                at_value_start = open.is_none();
                continue;
            }
            ',' if open.is_none() => {
                at_value_start = true;
                continue;
            }
            _ => {}
        }
        at_value_start = false;
    }
    open
}

fn csv_error(name: &str, file: &Path, err: csv::Error) -> Error {
    let line = err.position().map_or(0, |p| p.line() as usize);
    Error::config(format!("value map `{name}` is not valid CSV"))
        .with_location(Location::new(file, line, 1, 1))
        .with_source(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &[u8]) -> Result<ValueMap, Vec<String>> {
        ValueMap::parse(
            "shops",
            Path::new("shops.csv"),
            text,
            MissPolicy::Error,
            None,
        )
        .map_err(|errors| {
            errors
                .iter()
                .map(|e| format!("{}:{}", e.location().map_or(0, |l| l.line), e.message()))
                .collect()
        })
    }

    #[test]
    fn rows_map_source_to_target_and_extra_columns_are_notes() {
        let map =
            parse("shop_no,customer,note\nSHOP01, CUST0001 ,天猫\nSHOP02,CUST0002\n".as_bytes())
                .unwrap();
        assert_eq!(map.get("SHOP01"), Some("CUST0001"));
        assert_eq!(map.get(" SHOP02 "), Some("CUST0002"));
        assert_eq!(map.get("SHOP03"), None);
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn an_excel_bom_is_ignored() {
        let map = parse(b"\xEF\xBB\xBFshop,customer\nA,B\n").unwrap();
        assert_eq!(map.get("A"), Some("B"));
    }

    #[test]
    fn every_bad_row_is_reported_with_its_line() {
        let errors = parse(b"shop,customer\nA,B\nC\n,D\nE,\nA,F\n").unwrap_err();
        assert_eq!(
            errors,
            vec![
                "3:row of value map `shops` has one column; expected source value and target code",
                "4:empty source value in value map `shops`",
                "5:value `E` has an empty target code in value map `shops`",
                "6:value `A` appears twice in value map `shops`",
            ]
        );
    }

    #[test]
    fn gbk_files_get_a_hint_instead_of_garbage() {
        let errors = parse(b"shop,customer\n\xb5\xea,B\n").unwrap_err();
        assert_eq!(errors, vec!["2:value map `shops` is not UTF-8 text"]);
    }

    #[test]
    fn a_quote_that_is_never_closed_is_an_error_where_it_opens() {
        let errors = parse(b"shop,customer\nA,\"B,x\nC,D\n").unwrap_err();
        assert_eq!(
            errors,
            vec!["2:value map `shops` has a quote `\"` that is never closed"]
        );
        assert_eq!(unterminated_quote("a,\"b\"\"c\"\nx,\"y\nz\"\n"), None);
        assert_eq!(unterminated_quote("a,b\"c\n"), None);
        assert_eq!(unterminated_quote("a,b\n名,\"c\n"), Some((2, 3)));
    }

    #[test]
    fn a_file_that_is_not_csv_gets_one_error() {
        let errors =
            parse(b"name: refund\nsource:\n  connector: x\n  operation: y\nmapping:\n  a: b\n")
                .unwrap_err();
        assert_eq!(
            errors,
            vec![
                "1:value map `shops` does not look like a CSV file: 5 of its 5 rows have no comma"
            ]
        );
    }

    #[test]
    fn many_bad_rows_are_counted_after_the_first_ten() {
        let text = format!("shop,customer\n{}", "X\n".repeat(12));
        let errors = parse(text.as_bytes()).unwrap_err();
        assert_eq!(errors.len(), 11);
        assert_eq!(
            errors[10],
            "12:value map `shops` has 2 more bad rows, from this one on"
        );
    }

    #[test]
    fn an_empty_file_is_an_error() {
        assert_eq!(
            parse(b"").unwrap_err(),
            vec!["1:value map `shops` is empty"]
        );
    }
}
