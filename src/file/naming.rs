//! A file connector's `path`: the `{time}` placeholder of a `per_run` target, and the glob a
//! source (or a target's lookup) matches files with.
//!
//! `{time}` (or `{time:<strftime>}`) is replaced by a run's start time in UTC; read back, it
//! matches any text, so the files of every run are found by one glob. Pure: no file is read.

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Utc};

/// The default format of `{time}`: sortable, and free of characters a file name may not hold.
pub const DEFAULT_TIME_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// A `path` cut at its `{time}` placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    before: String,
    /// The strftime format of `{time}`, when the path has one.
    time: Option<String>,
    after: String,
}

impl Pattern {
    /// Read `text`; an error says what is wrong with its placeholder.
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let Some(start) = text.find("{time") else {
            return Ok(Pattern {
                before: text.to_string(),
                time: None,
                after: String::new(),
            });
        };
        let rest = &text[start + "{time".len()..];
        let Some(end) = rest.find('}') else {
            return Err("`{time` is not closed by `}`".to_string());
        };
        let format = match &rest[..end] {
            "" => DEFAULT_TIME_FORMAT.to_string(),
            spec => match spec.strip_prefix(':') {
                Some(format) if !format.is_empty() => format.to_string(),
                _ => {
                    return Err(format!(
                        "`{{time{spec}}}` is not a placeholder: write `{{time}}` or `{{time:<strftime format>}}`"
                    ));
                }
            },
        };
        if StrftimeItems::new(&format).any(|item| matches!(item, Item::Error)) {
            return Err(format!("`{format}` is not a strftime time format"));
        }
        if format.contains('/') || format.contains('\\') {
            return Err(format!(
                "the time format `{format}` writes a folder separator into the file name"
            ));
        }
        let after = rest[end + 1..].to_string();
        if after.contains("{time") {
            return Err("`{time}` may appear only once".to_string());
        }
        Ok(Pattern {
            before: text[..start].to_string(),
            time: Some(format),
            after,
        })
    }

    /// Whether the path names a new file per run.
    pub fn has_time(&self) -> bool {
        self.time.is_some()
    }

    /// The file name of a run that started at `time`.
    pub fn name(&self, time: DateTime<Utc>) -> String {
        match &self.time {
            Some(format) => format!("{}{}{}", self.before, time.format(format), self.after),
            None => self.before.clone(),
        }
    }

    /// The glob matching the files of every run (`{time}` as `*`).
    pub fn glob(&self) -> String {
        match &self.time {
            Some(_) => format!("{}*{}", self.before, self.after),
            None => self.before.clone(),
        }
    }
}

/// Whether `text` holds a glob metacharacter (`*`, `?`, `[`, `{`) outside `{time}`.
pub fn has_glob(text: &str) -> bool {
    let mut rest = text.to_string();
    while let Some(start) = rest.find("{time") {
        match rest[start..].find('}') {
            Some(end) => rest.replace_range(start..start + end + 1, ""),
            None => break,
        }
    }
    rest.contains(['*', '?', '[', '{'])
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_run_names_its_file_by_its_time_and_a_glob_finds_every_run() {
        let time = Utc.with_ymd_and_hms(2026, 12, 5, 10, 4, 9).unwrap();
        let table: &[(&str, &str, &str)] = &[
            ("out/refunds.csv", "out/refunds.csv", "out/refunds.csv"),
            (
                "out/refunds-{time}.csv",
                "out/refunds-20261205T100409Z.csv",
                "out/refunds-*.csv",
            ),
            (
                "out/{time:%Y-%m-%d_%H%M%S}.jsonl",
                "out/2026-12-05_100409.jsonl",
                "out/*.jsonl",
            ),
        ];
        for (text, name, glob) in table {
            let pattern = Pattern::parse(text).unwrap();
            assert_eq!(pattern.name(time), *name, "{text}");
            assert_eq!(pattern.glob(), *glob, "{text}");
            assert_eq!(pattern.has_time(), text.contains("{time"), "{text}");
        }
    }

    #[test]
    fn a_bad_placeholder_is_refused_with_what_is_wrong() {
        let table: &[(&str, &str)] = &[
            ("out/{time.csv", "`{time` is not closed by `}`"),
            ("out/{timestamp}.csv", "`{timestamp}` is not a placeholder"),
            ("out/{time:}.csv", "`{time:}` is not a placeholder"),
            ("out/{time:%Q}.csv", "`%Q` is not a strftime time format"),
            ("out/{time:%Y/%m}.csv", "writes a folder separator"),
            ("out/{time}-{time}.csv", "may appear only once"),
        ];
        for (text, message) in table {
            let err = Pattern::parse(text).unwrap_err();
            assert!(err.contains(message), "{text}: {err}");
        }
    }

    #[test]
    fn glob_characters_outside_the_placeholder_are_found() {
        assert!(!has_glob("out/refunds-{time}.csv"));
        assert!(!has_glob("out/refunds-{time:%Y%m%d}.csv"));
        assert!(has_glob("dumps/*.jsonl"));
        assert!(has_glob("dumps/**/part-?.csv"));
        assert!(has_glob("dumps/{a,b}.csv"));
    }
}
