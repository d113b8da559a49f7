//! The one error type of `engine`, and the exit-code table scripts rely on.
//!
//! An [`Error`] is a kind (which decides the exit code), a human message (lowercase, no
//! trailing period, offending values in backticks), an optional location in a config file,
//! an optional hint saying what to do, and an optional source chain. It never carries a
//! secret: callers format messages from names and public values only.
//!
//! Rendering for people lives in `diagnostic`; this module only holds the data.

use std::fmt;
use std::path::{Path, PathBuf};

/// What failed, coarsely: enough to pick an exit code and a heading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The command line itself is wrong.
    Usage,
    /// A flow, connector, value-map or schema file is invalid.
    Config,
    /// A single record could not be mapped or written; the run goes on.
    Record,
    /// Reading or writing local files failed.
    Io,
    /// The remote API could not be reached or answered garbage, even after retries.
    Network,
    /// The remote API refused the credentials.
    Auth,
    /// The remote API answered with an error that is not about one record.
    Api,
    /// The state database failed.
    State,
    /// The user stopped the command (Ctrl-C, SIGTERM).
    Interrupted,
    /// Another process holds the flow's lock (one writer per flow); nothing was done.
    Locked,
}

impl ErrorKind {
    /// The process exit code for an error of this kind.
    pub fn exit_code(self) -> ExitCode {
        match self {
            ErrorKind::Usage => ExitCode::Usage,
            ErrorKind::Config => ExitCode::Config,
            ErrorKind::Record => ExitCode::Partial,
            ErrorKind::Locked => ExitCode::Locked,
            ErrorKind::Io
            | ErrorKind::Network
            | ErrorKind::Auth
            | ErrorKind::Api
            | ErrorKind::State
            | ErrorKind::Interrupted => ExitCode::Fatal,
        }
    }
}

/// The documented exit codes (see the README's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Everything worked.
    Ok = 0,
    /// The run finished, but some records failed and were parked (or a preview had record errors).
    Partial = 1,
    /// The command line was wrong.
    Usage = 2,
    /// A configuration file is invalid (`engine check` found errors).
    Config = 3,
    /// The run stopped: credentials refused, API unreachable, state unwritable. No cursor moved.
    Fatal = 4,
    /// Another `engine` holds the flow's lock (named in the message): nothing was done.
    Locked = 5,
    /// Standard output was closed early (`engine … | head`): 128 + SIGPIPE, as the shell
    /// reports a Unix tool stopped by a closed pipe.
    ClosedPipe = 141,
}

impl ExitCode {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// A position in a text file; lines and columns are 1-based, columns count characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// How many characters the caret should underline (at least 1 when rendered).
    pub len: usize,
}

impl Location {
    pub fn new(file: impl Into<PathBuf>, line: usize, column: usize, len: usize) -> Location {
        Location {
            file: file.into(),
            line,
            column,
            len,
        }
    }

    /// A location that names only a file (no line known, e.g. a missing file).
    pub fn file_only(file: impl Into<PathBuf>) -> Location {
        Location {
            file: file.into(),
            line: 0,
            column: 0,
            len: 0,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file.display())
        } else {
            write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
        }
    }
}

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The error type used everywhere in `engine`.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    location: Option<Location>,
    hint: Option<String>,
    source: Option<Source>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            location: None,
            hint: None,
            source: None,
        }
    }

    pub fn config(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Config, message)
    }

    pub fn usage(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Usage, message)
    }

    /// An IO error about `path`, keeping the OS error as the source.
    pub fn io(action: &str, path: &Path, source: std::io::Error) -> Error {
        Error::new(
            ErrorKind::Io,
            format!("cannot {action} `{}`", path.display()),
        )
        .with_source(source)
    }

    pub fn with_location(mut self, location: Location) -> Error {
        self.location = Some(location);
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Error {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_source(mut self, source: impl Into<Source>) -> Error {
        self.source = Some(source.into());
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn location(&self) -> Option<&Location> {
        self.location.as_ref()
    }

    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// The messages of the source chain, outermost first.
    pub fn causes(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut next: Option<&(dyn std::error::Error + 'static)> = self
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static));
        while let Some(err) = next {
            out.push(err.to_string());
            next = err.source();
        }
        out
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(location) = &self.location {
            write!(f, " (at {location})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

/// Suggest the closest candidate to `given`, for "did you mean" hints on closed vocabularies.
pub fn did_you_mean<'a>(
    given: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let given_lower = given.to_lowercase();
    let allowed = (given.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter_map(|candidate| {
            let lower = candidate.to_lowercase();
            // Damerau-Levenshtein catches swapped letters (`nmu` → `num`); Jaro-Winkler catches
            // longer names with a shared prefix (`conector` → `connector`).
            let distance = strsim::damerau_levenshtein(&given_lower, &lower);
            let similarity = strsim::jaro_winkler(&given_lower, &lower);
            (distance <= allowed || similarity > 0.88).then_some((distance, -similarity, candidate))
        })
        .min_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)))
        .map(|(_, _, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_you_mean_picks_the_closest_candidate_above_the_threshold() {
        let keys = ["params", "operation", "connector"];
        assert_eq!(did_you_mean("paramz", keys), Some("params"));
        assert_eq!(did_you_mean("conector", keys), Some("connector"));
        assert_eq!(did_you_mean("xyz", keys), None);
        assert_eq!(did_you_mean("nmu", ["num2", "num", "unit"]), Some("num"));
        assert_eq!(
            did_you_mean("FNotes", ["FNote", "FNoteX", "FDate"]),
            Some("FNote")
        );
    }

    #[test]
    fn causes_walk_the_source_chain() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = Error::io("read", Path::new("a.yaml"), io);
        assert_eq!(err.message(), "cannot read `a.yaml`");
        assert_eq!(err.causes(), vec!["no such file".to_string()]);
        assert_eq!(err.kind().exit_code(), ExitCode::Fatal);
    }
}
