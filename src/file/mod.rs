//! The file connector: JSON Lines and CSV files as a flow's source or target, instead of an API.
//!
//! `naming` is the `{time}` placeholder of a `per_run` target's path, `select` the files a path
//! or glob names, `format` one record as a line or a row and the records of a file streamed
//! (all three pure or reading only); `source` reads a source's files window by window, and
//! `target` writes batches exactly once (in flight, a temporary file flushed and renamed over
//! the target, done; a lookup reads the files). The run reaches them through one dispatch at
//! each end of the pipeline (`run::read`, `run::sink`); nothing here sends a request.

pub mod format;
pub mod naming;
pub mod select;
pub mod source;
pub mod target;

/// The hint of a `file://` base URL, at `check` and at run time.
pub const FILE_URL_HINT: &str = "to read or write JSON Lines or CSV files, make it a file connector: replace `base_url` (and `auth`, `envelope`, `operations`) with `file: { path: …, format: jsonl }` (see \"File connector\" in docs/connectors.md)";
