//! How YAML syntax errors are explained: serde_yaml's complaints turned into located errors
//! in plain words, pointing where a mistake was made (an unclosed quote lines above, a second
//! document) rather than only where the parser noticed it, and the scan that refuses runaway
//! flow nesting before the parser spends time on it. Pure functions of the text.

use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

use crate::config::yaml::Span;
use crate::config::yaml_limits::MAX_DEPTH;
use crate::error::{Error, Location};

pub(super) fn too_deep(location: Location) -> Error {
    Error::config(format!(
        "invalid YAML: nested more than {MAX_DEPTH} levels deep"
    ))
    .with_location(location)
    .with_hint("flows and connectors need a few levels; look for runaway `[` or `{`")
}

/// Where flow collections (`[`, `{`) first nest deeper than `limit` (1-based line and column),
/// skipping quoted text and comments.
pub(super) fn flow_nesting_beyond(text: &str, limit: usize) -> Option<(usize, usize)> {
    let (mut line, mut column, mut depth) = (1, 0, 0usize);
    let mut quote: Option<char> = None;
    let mut comment = false;
    let mut previous = '\n';
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        column += 1;
        if c == '\n' {
            (line, column, comment, previous) = (line + 1, 0, false, c);
            continue;
        }
        match (quote, c) {
            _ if comment => {}
            (Some('"'), '\\') => {
                chars.next();
                column += 1;
            }
            (Some('\''), '\'') if chars.peek() == Some(&'\'') => {
                chars.next();
                column += 1;
            }
            (Some(open), c) if c == open => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') if previous.is_whitespace() => comment = true,
            (None, '[' | '{') => {
                depth += 1;
                if depth > limit {
                    return Some((line, column));
                }
            }
            (None, ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        previous = c;
    }
    None
}

/// serde_yaml's message without its position ("… at line 3 column 1, while …"), which is
/// shown separately.
pub(super) fn strip_position(err: &serde_yaml::Error) -> String {
    let message = err.to_string();
    match err.location() {
        Some(location) => message.replacen(
            &format!(" at line {} column {}", location.line(), location.column()),
            "",
            1,
        ),
        None => message,
    }
}

pub(super) fn span_location(file: &Path, span: Span) -> Location {
    Location::new(file, span.line, span.column, span.len)
}

/// A line whose value starts with a quote: `key: "…`, `- '…`, `"…`.
pub(super) static QUOTED_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^(\s*(?:-\s+)*(?:[^\s#"'][^#"']*?:\s+)?)["']"#).expect("valid regex")
});

/// serde_yaml's words for an integer beyond 64 bits.
pub(super) static HUGE_INTEGER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:(?P<path>[^\s:]+): )?invalid type: integer `(?P<number>-?[0-9]+)` as [ui]128")
        .expect("valid regex")
});

/// How many lines above a YAML error to look for the quote that caused it.
pub(super) const QUOTE_LOOKBACK: usize = 10;

/// The opening quote of a quoted value that does not close on its own line, on one of the
/// lines just above the error at `error_line`: the usual cause of a YAML error a line or two
/// below a missing quote (the value runs on to the next quote, and what follows is garbage).
pub(super) fn unclosed_quote_before(text: &str, error_line: usize) -> Option<Span> {
    let lines: Vec<&str> = text.lines().collect();
    let first = error_line.saturating_sub(QUOTE_LOOKBACK).max(1);
    for line in (first..error_line).rev() {
        let Some(found) = lines.get(line - 1).and_then(|l| QUOTED_VALUE.captures(l)) else {
            continue;
        };
        let prefix = found.get(1).map_or("", |m| m.as_str());
        let rest = &lines[line - 1][prefix.len()..];
        if closes_on_line(rest) {
            return None;
        }
        return Some(Span {
            line,
            column: prefix.chars().count() + 1,
            len: 1,
        });
    }
    None
}

/// Whether a quoted scalar starting at `rest` (its opening quote) closes before the line ends.
pub(super) fn closes_on_line(rest: &str) -> bool {
    let quote = rest.chars().next();
    let len = quoted_len(rest);
    len >= 2 && rest.chars().nth(len - 1) == quote
}

/// The line where a second YAML document starts, for serde_yaml's unlocated complaint: a
/// `---` or `...` line after some content, or a line indented less than the first one
/// (which ends a document whose top level was indented). Line 1 when neither is found.
pub(super) fn second_document_line(text: &str) -> usize {
    let mut base: Option<usize> = None;
    for (index, line) in text.lines().enumerate() {
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let indent = line.len() - content.len();
        match base {
            None if !line.starts_with("---") => base = Some(indent),
            None => {}
            Some(_) if line.starts_with("---") || line.starts_with("...") => return index + 1,
            Some(base) if indent < base => return index + 1,
            Some(_) => {}
        }
    }
    1
}

pub(super) fn syntax_error(file: &Path, text: &str, err: &serde_yaml::Error) -> Error {
    let message = strip_position(err);
    let location = match err.location() {
        Some(location) => Location::new(file, location.line(), location.column(), 1),
        None if message.contains("more than one document") => {
            return Error::config("invalid YAML: a second document starts here")
                .with_location(Location::new(file, second_document_line(text), 1, 1))
                .with_hint("a file holds one YAML document; a `---` line, or a line indented less than the first one, starts another");
        }
        // serde_yaml gives no position: the file as a whole is at fault, from its first line.
        None => Location::new(file, 1, 1, 1),
    };
    Error::config(format!("invalid YAML: {message}"))
        .with_location(location)
        .with_hint("check indentation and quoting; templates that start with `{{` must be quoted")
}

/// Characters of a quoted scalar from its opening quote to its closing quote (or line end).
pub(super) fn quoted_len(rest: &str) -> usize {
    let mut chars = rest.chars();
    let Some(quote) = chars.next() else { return 0 };
    let mut len = 1;
    let mut escaped = false;
    let mut chars = chars.take_while(|c| *c != '\n').peekable();
    while let Some(c) = chars.next() {
        len += 1;
        if escaped {
            escaped = false;
        } else if quote == '"' && c == '\\' {
            escaped = true;
        } else if c == quote {
            if quote == '\'' && chars.peek() == Some(&'\'') {
                chars.next();
                len += 1;
                continue;
            }
            return len;
        }
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml::Document;

    #[test]
    fn a_second_document_is_located_where_it_starts() {
        assert_eq!(second_document_line("a: 1\n---\nb: 2\n"), 2);
        assert_eq!(second_document_line("# c\n  a: 1\nb: 2\n"), 3);
        assert_eq!(second_document_line("---\na: 1\n  b: 2\n"), 1);
        let err =
            Document::parse(Path::new("t.yaml"), "# c\n  a: 1\nb: 2\n".to_string()).unwrap_err();
        assert_eq!(err.message(), "invalid YAML: a second document starts here");
        assert_eq!(err.location().map(|l| l.line), Some(3));
    }
}
