//! Reading a file source: the files its `path` names, record by record.
//!
//! Each window of the run selects its files and lines: without `source.window` every line of
//! every file (the ledger skips what was written); with it, under `since: file_time` the files
//! modified within the window, read whole, and under `since: record_time` the lines of every
//! file whose `key.modified` falls within it. Records are keyed and de-duplicated as the HTTP
//! reader does (`source::reader`) and sent on one at a time through the bounded channel, so a
//! file is never held in memory whole. A bad line stops the run naming the file and the line;
//! the cursor stays before the window. Runs on a blocking thread (the files are read with
//! plain, blocking IO).

use std::path::Path;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::config::model::{FileConnector, Flow};
use crate::config::raw::FileSince;
use crate::error::{Error, ErrorKind, Result};
use crate::file::naming::{self, Pattern};
use crate::file::select;
use crate::source::reader::{Read, ReadProgress, Seen, SourceRecord, key_or_stand_in};
use crate::source::window::{Window, modified_after};
use crate::time::parse_instant_in;

/// What reading a file source found: repeats dropped.
pub struct FileRead {
    pub duplicates: u64,
}

/// Read `windows` (one whole window when the flow has none) and send every new record on.
pub fn read(
    flow: &Flow,
    windows: &[Window],
    windowed: bool,
    out: &mpsc::Sender<Read>,
    progress: &dyn ReadProgress,
) -> Result<FileRead> {
    let spec = flow
        .source
        .connector
        .files
        .as_ref()
        .expect("a file source has a file connector");
    let mut seen = Seen::default();
    for (index, window) in windows.iter().enumerate() {
        if windowed {
            progress.window(index, windows.len(), *window);
        }
        seen.next_window();
        let within = windowed.then_some(window);
        for file in source_files(spec)? {
            if let Some(window) = within
                && spec.since == FileSince::FileTime
            {
                let modified = std::fs::metadata(&file)
                    .and_then(|m| m.modified())
                    .map_err(|err| {
                        Error::new(ErrorKind::Io, format!("cannot read `{}`", file.display()))
                            .with_source(err)
                    })?;
                if !select::changed_within(modified, window) {
                    continue;
                }
            }
            read_file(flow, spec, &file, index, within, &mut seen, out)?;
        }
        if out
            .blocking_send(Read::WindowDone {
                index,
                window: *window,
            })
            .is_err()
        {
            return Err(stopped());
        }
    }
    Ok(FileRead {
        duplicates: seen.duplicates,
    })
}

/// The files of the source, in name order. A plain path that does not exist is an error (a
/// misspelt name must not read as "no records"); a glob may match nothing yet.
fn source_files(spec: &FileConnector) -> Result<Vec<std::path::PathBuf>> {
    let text = spec.path.to_string_lossy();
    let pattern = Pattern::parse(&text).map_err(Error::config)?;
    let glob = pattern.glob();
    let files = select::files(Path::new(&glob))?;
    if files.is_empty() && !naming::has_glob(&glob) {
        return Err(Error::new(
            ErrorKind::Io,
            format!("the source file `{glob}` does not exist"),
        )
        .with_hint("the path is relative to the connector file; a glob such as `dumps/*.jsonl` may match no file yet"));
    }
    Ok(files)
}

fn read_file(
    flow: &Flow,
    spec: &FileConnector,
    file: &Path,
    index: usize,
    within: Option<&Window>,
    seen: &mut Seen,
    out: &mpsc::Sender<Read>,
) -> Result<()> {
    let zone = flow.source.connector.time_zone;
    let by_record = spec.since == FileSince::RecordTime;
    crate::file::format::for_each_record(file, spec.format, &mut |_, record| {
        let record = Arc::new(record);
        let (key, modified, _) = key_or_stand_in(flow, &record);
        if let Some(window) = within.filter(|_| by_record) {
            let before = modified
                .as_deref()
                .and_then(|text| parse_instant_in(text, zone).ok())
                .is_some_and(|instant| instant < window.start);
            if before || modified_after(window, modified.as_deref(), zone) {
                return Ok(());
            }
        }
        if seen.admit(&key, &modified, false) {
            let record = SourceRecord {
                record,
                key,
                modified,
                window: Some(index),
            };
            if out.blocking_send(Read::Record(record)).is_err() {
                return Err(stopped());
            }
        }
        Ok(())
    })
}

fn stopped() -> Error {
    Error::new(ErrorKind::State, "the run stopped while reading")
}
