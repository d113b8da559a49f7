//! `--env-file FILE`: environment variables from a dotenv file, and the file `engine sim`
//! writes for them.
//!
//! The format is the common dotenv subset: `KEY=value` lines, an optional `export ` before
//! the name, values bare (a ` #` starts a comment), in single quotes (taken literally) or in
//! double quotes (with `\n`, `\t`, `\"`, `\\` escapes); quoted values may span lines; blank
//! lines and `#` lines are skipped; a later line for the same name wins. Nothing is expanded:
//! a `$` in a password stays a `$`. Variables of the real environment win over the file's,
//! as with docker compose and the dotenv libraries: an `export` in the shell is the more
//! deliberate, more local choice.
//!
//! The values are secrets: no error, note or debug output of this module shows one, not even
//! the source line of a bad line (an error names the file, line, column and variable). The
//! parser is pure; [`load`], [`write`] and [`remove`] are the only IO.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};
use crate::request::Env;

/// The first line of a file `engine sim --env-file` writes; only such a file is overwritten
/// or removed, so a user's own `.env` cannot be lost to a sandbox.
pub const WRITTEN_BY_SIM: &str =
    "# written by `engine sim`: the sandboxes' variables; removed when they stop";

/// The longest env file read.
pub const MAX_ENV_FILE: u64 = 1 << 20;

/// A line the parser could not read: where, and what is wrong (never the line itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// The variables of a dotenv text, the last line for a name winning.
pub fn parse(text: &str) -> std::result::Result<Env, LineError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .collect();
    let mut vars = Env::new();
    let mut index = 0;
    while index < lines.len() {
        match parse_entry(&lines, index)? {
            Some((name, value, next)) => {
                vars.insert(name, value);
                index = next;
            }
            None => index += 1,
        }
    }
    Ok(vars)
}

/// The entry starting at `lines[index]`: its name, value and the index of the line after
/// it; `None` for a blank or comment line.
fn parse_entry(
    lines: &[&str],
    index: usize,
) -> std::result::Result<Option<(String, String, usize)>, LineError> {
    let line = lines[index];
    let error = |column: usize, message: String| LineError {
        line: index + 1,
        column,
        message,
    };
    let trimmed = line.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(None);
    }
    let mut column = line.chars().count() - trimmed.chars().count() + 1;
    let mut rest = trimmed;
    if let Some(after) = rest.strip_prefix("export")
        && after.starts_with([' ', '\t'])
    {
        let after = after.trim_start();
        column += rest.chars().count() - after.chars().count();
        rest = after;
    }
    let name_length = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let name = &rest[..name_length];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(error(
            column,
            "expected a variable name (letters, digits and `_`, not starting with a digit)"
                .to_string(),
        ));
    }
    column += name_length;
    let after_name = &rest[name_length..];
    let spaced = after_name.trim_start_matches([' ', '\t']);
    column += after_name.len() - spaced.len();
    let Some(value_text) = spaced.strip_prefix('=') else {
        return Err(error(column, format!("expected `=` after `{name}`")));
    };
    column += 1;
    let value_start = value_text.trim_start_matches([' ', '\t']);
    column += value_text.len() - value_start.len();
    let (value, next) = match value_start.chars().next() {
        Some(quote @ ('\'' | '"')) => {
            let (value, end_line, tail) = quoted(lines, index, &value_start[1..], quote)
                .ok_or_else(|| {
                    error(
                        column,
                        format!("the value of `{name}` opens a quote {quote} that is never closed"),
                    )
                })?;
            let tail = tail.trim_start();
            if !(tail.is_empty() || tail.starts_with('#')) {
                return Err(LineError {
                    line: end_line + 1,
                    column: lines[end_line].chars().count() - tail.chars().count() + 1,
                    message: format!(
                        "unexpected text after the quoted value of `{name}` (a comment starts with ` #`)"
                    ),
                });
            }
            (value, end_line + 1)
        }
        _ => (bare(value_start).to_string(), index + 1),
    };
    Ok(Some((name.to_string(), value, next)))
}

/// A bare value: up to a `#` that follows a blank, without trailing blanks.
fn bare(text: &str) -> &str {
    let mut end = text.len();
    let mut previous_blank = true;
    for (at, c) in text.char_indices() {
        if c == '#' && previous_blank {
            end = at;
            break;
        }
        previous_blank = c == ' ' || c == '\t';
    }
    text[..end].trim_end()
}

/// A quoted value opened on `lines[index]` (`first` follows the quote): its text, the line
/// it closes on and what follows the closing quote there; `None` when it never closes.
fn quoted<'a>(
    lines: &[&'a str],
    index: usize,
    first: &'a str,
    quote: char,
) -> Option<(String, usize, &'a str)> {
    let mut value = String::new();
    let mut line = index;
    let mut text = first;
    loop {
        let mut chars = text.char_indices();
        while let Some((at, c)) = chars.next() {
            if c == quote {
                return Some((value, line, &text[at + 1..]));
            }
            if c == '\\' && quote == '"' {
                match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, 'r')) => value.push('\r'),
                    Some((_, 't')) => value.push('\t'),
                    Some((_, escaped @ ('"' | '\\' | '$'))) => value.push(escaped),
                    Some((_, other)) => {
                        value.push('\\');
                        value.push(other);
                    }
                    None => value.push('\\'),
                }
                continue;
            }
            value.push(c);
        }
        line += 1;
        text = lines.get(line)?;
        value.push('\n');
    }
}

/// The text of a file holding `vars`, read back by [`parse`] to the same values.
pub fn render(vars: &BTreeMap<String, String>) -> String {
    let mut out = format!("{WRITTEN_BY_SIM}\n");
    for (name, value) in vars {
        let mut quoted = String::with_capacity(value.len() + 2);
        for c in value.chars() {
            match c {
                '"' => quoted.push_str("\\\""),
                '\\' => quoted.push_str("\\\\"),
                '\n' => quoted.push_str("\\n"),
                '\r' => quoted.push_str("\\r"),
                '\t' => quoted.push_str("\\t"),
                c => quoted.push(c),
            }
        }
        out.push_str(&format!("{name}=\"{quoted}\"\n"));
    }
    out
}

/// The variables of the dotenv file `path`.
pub fn load(path: &Path) -> Result<Env> {
    use std::io::Read as _;
    let cannot = |err: std::io::Error| {
        Error::usage(format!("cannot read the env file `{}`", path.display())).with_source(err)
    };
    // Read whatever the path is (`<(vault read …)` is a pipe), but never without end.
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_ENV_FILE + 1).read_to_string(&mut text))
        .map_err(cannot)?;
    if text.len() as u64 > MAX_ENV_FILE {
        return Err(Error::usage(format!(
            "the env file `{}` is longer than {}",
            path.display(),
            crate::http::transport::size(MAX_ENV_FILE)
        ))
        .with_hint("an env file holds a few `KEY=value` lines: check the path"));
    }
    parse(&text).map_err(|err| {
        Error::usage(format!(
            "`{}:{}:{}`: {}",
            path.display(),
            err.line,
            err.column
        ,
            err.message
        ))
        .with_hint("lines are `KEY=value`, `export KEY=value` or `# a comment`; the line is not shown because it may hold a secret")
    })
}

/// The process environment with `file`'s variables added where the process has none, and
/// the names whose value in the process differs from the file's (the file's is ignored).
pub fn merge(process: Env, file: Env) -> (Env, Vec<String>) {
    let mut merged = process;
    let mut overridden = Vec::new();
    for (name, value) in file {
        match merged.get(&name) {
            Some(current) if *current != value => overridden.push(name),
            Some(_) => {}
            None => {
                merged.insert(name, value);
            }
        }
    }
    (merged, overridden)
}

/// Write `vars` to `path` for `--env-file`, readable by the owner only (0600). The file
/// appears whole (written beside it, then renamed), so a command started at the same time
/// reads either nothing or all of it. A file not written by `engine sim` is not overwritten.
pub fn write(path: &Path, vars: &BTreeMap<String, String>) -> Result<()> {
    if path.exists() && !written_by_sim(path) {
        return Err(Error::usage(format!(
            "`{}` exists and was not written by `engine sim`: it is left alone",
            path.display()
        ))
        .with_hint("give another file (for example `sandbox.env`), or remove this one"));
    }
    let io_error = |err: std::io::Error| {
        Error::new(
            ErrorKind::Io,
            format!("cannot write the env file `{}`", path.display()),
        )
        .with_source(err)
    };
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = std::path::PathBuf::from(temporary);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&temporary).and_then(|mut file| {
        use std::io::Write;
        file.write_all(render(vars).as_bytes())?;
        file.sync_all()
    });
    if let Err(err) = written.and_then(|()| std::fs::rename(&temporary, path)) {
        let _ = std::fs::remove_file(&temporary);
        return Err(io_error(err));
    }
    Ok(())
}

/// Remove the file [`write`] wrote, when it is still that file: its values point at
/// sandboxes that are gone.
pub fn remove(path: &Path) {
    if written_by_sim(path) {
        let _ = std::fs::remove_file(path);
    }
}

fn written_by_sim(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| text.starts_with(WRITTEN_BY_SIM))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_form_of_line_is_read() {
        for (text, expected) in [
            ("A=1", vars(&[("A", "1")])),
            ("export A=1\n", vars(&[("A", "1")])),
            ("  A = 1  ", vars(&[("A", "1")])),
            ("A=", vars(&[("A", "")])),
            ("# comment\n\n  # indented\r\nB=2\r\n", vars(&[("B", "2")])),
            ("A=x # note", vars(&[("A", "x")])),
            ("A=x#y", vars(&[("A", "x#y")])),
            ("A=#", vars(&[("A", "")])),
            ("A='a $b \\n #c' # note", vars(&[("A", "a $b \\n #c")])),
            (
                "A=\"q\\\"\\\\\\n\\t\\$x\\z\"",
                vars(&[("A", "q\"\\\n\t$x\\z")]),
            ),
            (
                "A=\"line 1\nline 2\"\nB=3",
                vars(&[("A", "line 1\nline 2"), ("B", "3")]),
            ),
            ("A=1\nA=2", vars(&[("A", "2")])),
            ("\u{feff}A=1", vars(&[("A", "1")])),
            ("exported=1", vars(&[("exported", "1")])),
            ("A=p@ss w0rd$", vars(&[("A", "p@ss w0rd$")])),
            ("A=中文 值", vars(&[("A", "中文 值")])),
        ] {
            assert_eq!(parse(text), Ok(expected), "{text:?}");
        }
    }

    #[test]
    fn a_bad_line_is_located_and_never_quoted() {
        for (text, line, column, message) in [
            ("A=1\n=2", 2, 1, "expected a variable name"),
            ("  1A=2", 1, 3, "expected a variable name"),
            ("A B=2", 1, 3, "expected `=` after `A`"),
            ("export A", 1, 9, "expected `=` after `A`"),
            (
                "A=\"secret",
                1,
                3,
                "the value of `A` opens a quote \" that is never closed",
            ),
            (
                "X=1\nA = 'secret\nmore",
                2,
                5,
                "the value of `A` opens a quote ' that is never closed",
            ),
            (
                "A=\"s\" tail",
                1,
                7,
                "unexpected text after the quoted value of `A`",
            ),
            (
                "A=\"s\nt\" tail",
                2,
                4,
                "unexpected text after the quoted value of `A`",
            ),
        ] {
            let err = parse(text).expect_err(text);
            assert_eq!((err.line, err.column), (line, column), "{text:?}: {err:?}");
            assert!(err.message.starts_with(message), "{text:?}: {err:?}");
            assert!(!err.message.contains("secret"), "{text:?}: {err:?}");
        }
    }

    #[test]
    fn a_rendered_file_reads_back_to_the_same_values() {
        let written = vars(&[
            ("PLAIN", "http://127.0.0.1:8701/router"),
            ("QUOTES", "a\"b'c"),
            ("SPECIAL", "back\\slash $HOME #hash\nnew line\ttab"),
            ("EMPTY", ""),
        ]);
        assert_eq!(parse(&render(&written)), Ok(written));
    }

    #[test]
    fn the_real_environment_wins_and_differences_are_named() {
        let (merged, overridden) = merge(
            vars(&[("A", "shell"), ("B", "same"), ("C", "only shell")]),
            vars(&[("A", "file"), ("B", "same"), ("D", "only file")]),
        );
        assert_eq!(
            merged,
            vars(&[
                ("A", "shell"),
                ("B", "same"),
                ("C", "only shell"),
                ("D", "only file")
            ])
        );
        assert_eq!(overridden, vec!["A".to_string()]);
    }
}
