//! Printing problems for people (rustc/hurl style) and for CI (`--format json`).
//!
//! A [`Diagnostic`] is an [`Error`](crate::error::Error) or a warning made ready to show:
//! `error: …` / `--> file:line:col` / the source line with a caret / `= hint: …` / every
//! `caused by: …`. Source lines are read through a [`SourceCache`], so files already in
//! memory are not read again. Nothing here decides what is an error; it only formats.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Location};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem, ready to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub location: Option<Location>,
    /// Short text printed after the caret (e.g. "did you mean `params`?").
    pub label: Option<String>,
    pub hint: Option<String>,
    pub causes: Vec<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            location: None,
            label: None,
            hint: None,
            causes: Vec::new(),
        }
    }

    pub fn warning(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message)
        }
    }

    pub fn at(mut self, location: Option<Location>) -> Diagnostic {
        self.location = location;
        self
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = Some(label.into());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }
}

impl From<&Error> for Diagnostic {
    fn from(error: &Error) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            message: error.message().to_string(),
            location: error.location().cloned(),
            label: None,
            hint: error.hint().map(str::to_string),
            causes: error.causes(),
        }
    }
}

/// File contents by path, read at most once.
#[derive(Debug, Default)]
pub struct SourceCache {
    files: HashMap<PathBuf, Option<String>>,
}

impl SourceCache {
    pub fn new() -> SourceCache {
        SourceCache::default()
    }

    /// Remember a file's text (so that rendering shows what was checked, not what is on disk now).
    pub fn insert(&mut self, path: &Path, text: String) {
        self.files.insert(path.to_path_buf(), Some(text));
    }

    fn line(&mut self, path: &Path, line: usize) -> Option<String> {
        let index = line.checked_sub(1)?;
        // Located errors name files `engine` reads, all bounded in size; a value map is the largest.
        let text = self.files.entry(path.to_path_buf()).or_insert_with(|| {
            crate::config::file::read_text_for_display(
                path,
                crate::config::file::MAX_VALUE_MAP_BYTES,
            )
        });
        text.as_deref()?.lines().nth(index).map(str::to_string)
    }
}

/// Render one diagnostic for a terminal.
pub fn render(diagnostic: &Diagnostic, sources: &mut SourceCache) -> String {
    let mut out = String::new();
    let heading = match diagnostic.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let _ = writeln!(out, "{heading}: {}", diagnostic.message);
    let snippet = diagnostic.location.as_ref().and_then(|location| {
        let text = sources.line(&location.file, location.line)?;
        Some((location, text))
    });
    let gutter = snippet
        .as_ref()
        .map_or(1, |(location, _)| location.line.to_string().len());
    let pad = " ".repeat(gutter);
    if let Some(location) = &diagnostic.location {
        let _ = writeln!(out, "{pad}--> {location}");
    }
    if let Some((location, text)) = &snippet {
        let (text, column) = excerpt(text, location.column);
        let prefix: String = text.chars().take(column.saturating_sub(1)).collect();
        let underlined: String = text
            .chars()
            .skip(column.saturating_sub(1))
            .take(location.len.max(1))
            .collect();
        let carets = "^".repeat(display_width(&underlined).max(1));
        let label = diagnostic
            .label
            .as_deref()
            .map(|label| format!(" {label}"))
            .unwrap_or_default();
        let _ = writeln!(out, "{pad} |");
        let _ = writeln!(out, "{} | {text}", location.line);
        let _ = writeln!(
            out,
            "{pad} | {}{carets}{label}",
            " ".repeat(display_width(&prefix))
        );
    } else if let Some(label) = &diagnostic.label {
        let _ = writeln!(out, "{pad} = {label}");
    }
    if let Some(hint) = &diagnostic.hint {
        let _ = writeln!(out, "{pad} = hint: {hint}");
    }
    for cause in &diagnostic.causes {
        let _ = writeln!(out, "{pad} = caused by: {cause}");
    }
    out
}

/// Characters of a source line shown before and after the column a diagnostic points at.
const EXCERPT_BEFORE: usize = 60;
const EXCERPT_AFTER: usize = 100;

/// A long source line (a minified JSON file, a runaway line) cut to the part around `column`,
/// with `…` where it was cut; returns the text shown and the column within it.
fn excerpt(text: &str, column: usize) -> (String, usize) {
    let count = text.chars().count();
    if count <= EXCERPT_BEFORE + EXCERPT_AFTER {
        return (text.to_string(), column);
    }
    let start = column.saturating_sub(1).saturating_sub(EXCERPT_BEFORE);
    let end = (column.saturating_sub(1) + EXCERPT_AFTER).min(count);
    let mut shown: String = if start > 0 {
        "…".to_string()
    } else {
        String::new()
    };
    shown.extend(text.chars().skip(start).take(end - start));
    if end < count {
        shown.push('…');
    }
    (shown, column - start + usize::from(start > 0))
}

/// The JSON shape of one diagnostic (`--format json`).
#[derive(Debug, Serialize)]
pub struct JsonDiagnostic<'a> {
    pub severity: Severity,
    pub message: &'a str,
    pub file: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub label: Option<&'a str>,
    pub hint: Option<&'a str>,
    pub causes: &'a [String],
}

impl<'a> From<&'a Diagnostic> for JsonDiagnostic<'a> {
    fn from(diagnostic: &'a Diagnostic) -> JsonDiagnostic<'a> {
        let location = diagnostic.location.as_ref();
        JsonDiagnostic {
            severity: diagnostic.severity,
            message: &diagnostic.message,
            file: location.map(|l| l.file.display().to_string()),
            line: location.map(|l| l.line).filter(|line| *line > 0),
            column: location.map(|l| l.column).filter(|column| *column > 0),
            label: diagnostic.label.as_deref(),
            hint: diagnostic.hint.as_deref(),
            causes: &diagnostic.causes,
        }
    }
}

/// Print an error for a person on stderr.
pub fn eprint_error(error: &Error) {
    eprint!(
        "{}",
        render(&Diagnostic::from(error), &mut SourceCache::new())
    );
}

/// How much of a record's key or a parked record's reason is printed or kept: source data can
/// hold a key or a value of many megabytes, which would otherwise be echoed whole.
pub const MAX_RECORD_TEXT: usize = 2_000;

/// `text` cut to its first `max_chars` characters, saying how long it was; whole when shorter.
pub fn cut_text(text: &str, max_chars: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(max_chars) {
        Some((at, _)) => format!(
            "{}… ({} characters in all)",
            &text[..at],
            text.chars().count()
        )
        .into(),
        None => text.into(),
    }
}

/// Columns a string takes in a terminal: East Asian wide characters (CJK, fullwidth forms,
/// most emoji) take two, combining marks none.
pub fn display_width(text: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_location_source_line_caret_label_and_hint() {
        let mut sources = SourceCache::new();
        let path = Path::new("flow.yaml");
        sources.insert(path, "source:\n  paramz:\n    a: 1\n".to_string());
        let diagnostic = Diagnostic::error("unknown key `paramz` in `source`")
            .at(Some(Location::new(path, 2, 3, 6)))
            .with_label("did you mean `params`?")
            .with_hint("the keys of `source` are listed in docs/flows.md");
        let expected = "\
error: unknown key `paramz` in `source`
 --> flow.yaml:2:3
  |
2 |   paramz:
  |   ^^^^^^ did you mean `params`?
  = hint: the keys of `source` are listed in docs/flows.md
";
        assert_eq!(render(&diagnostic, &mut sources), expected);
    }

    #[test]
    fn carets_line_up_under_wide_characters() {
        let mut sources = SourceCache::new();
        let path = Path::new("f.yaml");
        sources.insert(path, "名称: x".to_string());
        let diagnostic = Diagnostic::warning("w").at(Some(Location::new(path, 1, 5, 1)));
        assert!(render(&diagnostic, &mut sources).contains("  |       ^\n"));
        // Fullwidth punctuation, a wide character outside the BMP and an emoji count as two.
        sources.insert(path, "a：𠀋😀 x".to_string());
        let diagnostic = Diagnostic::warning("w").at(Some(Location::new(path, 1, 6, 1)));
        assert!(render(&diagnostic, &mut sources).contains("  |         ^\n"));
    }

    #[test]
    fn long_lines_are_cut_around_the_caret() {
        let mut sources = SourceCache::new();
        let path = Path::new("f.yaml");
        let line = format!("a: {}x{}", "[".repeat(500), "]".repeat(500));
        sources.insert(path, line);
        let diagnostic = Diagnostic::error("e").at(Some(Location::new(path, 1, 504, 1)));
        let rendered = render(&diagnostic, &mut sources);
        let expected_line = format!("1 | …{}x{}…\n", "[".repeat(60), "]".repeat(99));
        assert!(rendered.contains(&expected_line), "{rendered}");
        assert!(
            rendered.contains(&format!("  | {}^\n", " ".repeat(61))),
            "{rendered}"
        );
    }

    #[test]
    fn renders_without_a_location() {
        let diagnostic = Diagnostic::error("no flow files found").with_hint("pass a path");
        assert_eq!(
            render(&diagnostic, &mut SourceCache::new()),
            "error: no flow files found\n  = hint: pass a path\n"
        );
    }
}
