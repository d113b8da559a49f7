//! Reading a file source: the files its `path` names, record by record.
//!
//! Each window of the run selects its files and lines: without `source.window` every line of
//! every file (the ledger skips what was written); with it, under `since: file_time` the files
//! modified within the window, read whole, and under `since: record_time` the lines of every
//! file whose `key.modified` falls within it. Records are keyed and de-duplicated as the HTTP
//! reader does (`source::reader`) and sent on one at a time through the bounded channel, so a
//! file is never held in memory whole. Without `key.modified` only the last copy of a key in
//! name order is sent on: a window's files are read twice, first for where each key's last copy
//! is (an entry per key). A bad line stops the run naming the file and the line;
//! the cursor stays before the window. Runs on a blocking thread (the files are read with
//! plain, blocking IO).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value as Json;
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
        let mut files = Vec::new();
        for file in source_files(spec)? {
            if let Some(window) = within
                && spec.since == FileSince::FileTime
            {
                let modified =
                    std::fs::metadata(&file)
                        .and_then(|m| arrived(&m))
                        .map_err(|err| {
                            Error::new(ErrorKind::Io, format!("cannot read `{}`", file.display()))
                                .with_source(err)
                        })?;
                if !select::changed_within(modified, window) {
                    continue;
                }
            }
            files.push(file);
        }
        // Without `key.modified` nothing says which copy of a key is the newest but the name
        // order: only the last copy is sent on, so an earlier one can neither overtake it nor
        // hold it back while in flight.
        let last = match flow.key.modified {
            Some(_) => None,
            None => Some(last_copies(flow, spec, &files)?),
        };
        for (at, file) in files.iter().enumerate() {
            let reading = Reading {
                index,
                within,
                file: at,
                last: last.as_ref(),
            };
            read_file(flow, spec, file, &reading, &mut seen, out)?;
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
fn source_files(spec: &FileConnector) -> Result<Vec<PathBuf>> {
    let text = spec.path.to_string_lossy();
    let pattern = Pattern::parse(&text).map_err(Error::config)?;
    let glob = pattern.glob();
    let files = select::files(Path::new(&glob))?;
    if files.is_empty() && !naming::has_glob(&glob) {
        if Path::new(&glob).exists() {
            return Err(Error::new(
                ErrorKind::Io,
                format!(
                    "the source file `{glob}` is not a regular file (a folder, a device or a pipe)"
                ),
            )
            .with_hint(
                "name a file, or a glob such as `dumps/*.jsonl` for the files of a folder",
            ));
        }
        return Err(Error::new(
            ErrorKind::Io,
            format!("the source file `{glob}` does not exist"),
        )
        .with_hint("the path is relative to the connector file; a glob such as `dumps/*.jsonl` may match no file yet"));
    }
    Ok(files)
}

/// Where, in a window's files, a record being read is.
struct Reading<'a> {
    /// The window.
    index: usize,
    within: Option<&'a Window>,
    /// The file, among the window's.
    file: usize,
    /// Where the last copy of each key is (see [`last_copies`]), when only it is sent on.
    last: Option<&'a HashMap<String, (usize, u64)>>,
}

/// What tells two copies of a key apart: `key.modified`, or without it the content. A later
/// dump (read in a later window) with a changed record is then not a repeat of the earlier one:
/// it goes on to `on_change` like any changed record, while an identical copy is a repeat.
fn version(modified: &Option<String>, record: &Json) -> Option<String> {
    match modified {
        Some(_) => modified.clone(),
        None => Some(crate::record::content_hash(record)),
    }
}

/// The file (among `files`) and line of the last copy of each key, read once ahead of the
/// records: a small entry per key, never the records.
fn last_copies(
    flow: &Flow,
    spec: &FileConnector,
    files: &[PathBuf],
) -> Result<HashMap<String, (usize, u64)>> {
    let mut last = HashMap::new();
    for (at, file) in files.iter().enumerate() {
        crate::file::format::for_each_record(file, spec.format, &mut |line, record| {
            let (key, _, _) = key_or_stand_in(flow, &Arc::new(record), None);
            last.insert(key, (at, line));
            Ok(())
        })?;
    }
    Ok(last)
}

fn read_file(
    flow: &Flow,
    spec: &FileConnector,
    file: &Path,
    reading: &Reading,
    seen: &mut Seen,
    out: &mpsc::Sender<Read>,
) -> Result<()> {
    let zone = flow.source.connector.time_zone;
    let by_record = spec.since == FileSince::RecordTime;
    let index = reading.index;
    crate::file::format::for_each_record(file, spec.format, &mut |line, record| {
        let record = Arc::new(record);
        let (key, modified, keyed) = key_or_stand_in(flow, &record, None);
        if let Some(last) = reading.last
            && last.get(&key).is_some_and(|at| *at != (reading.file, line))
        {
            // An earlier copy of a key copied again later: the later one is sent.
            seen.duplicates += 1;
            return Ok(());
        }
        if let Some(window) = reading.within.filter(|_| by_record) {
            let before = modified
                .as_deref()
                .and_then(|text| parse_instant_in(text, zone).ok())
                .is_some_and(|instant| instant < window.start);
            if before || modified_after(window, modified.as_deref(), zone) {
                return Ok(());
            }
        }
        if seen.admit(&key, &version(&modified, &record), false) {
            let record = SourceRecord {
                record,
                text: None,
                key,
                modified,
                keyed,
                window: Some(index),
            };
            if out.blocking_send(Read::Record(record)).is_err() {
                return Err(stopped());
            }
        }
        Ok(())
    })
}

/// When a file last changed or arrived: its modification time, or on Unix its status change
/// time when later (a copy that keeps an old mtime, `cp -p`, `rsync -t`, `tar x`, is new here).
#[cfg(unix)]
fn arrived(metadata: &std::fs::Metadata) -> std::io::Result<std::time::SystemTime> {
    use std::os::unix::fs::MetadataExt;
    let changed = std::time::UNIX_EPOCH
        + std::time::Duration::new(
            u64::try_from(metadata.ctime()).unwrap_or(0),
            u32::try_from(metadata.ctime_nsec()).unwrap_or(0),
        );
    Ok(metadata.modified()?.max(changed))
}

/// When a file last changed: elsewhere the modification time is all there is.
#[cfg(not(unix))]
fn arrived(metadata: &std::fs::Metadata) -> std::io::Result<std::time::SystemTime> {
    metadata.modified()
}

fn stopped() -> Error {
    Error::new(ErrorKind::State, "the run stopped while reading")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{Duration, Utc};
    use serde_json::json;

    use super::*;
    use crate::config;
    use crate::run::progress::Progress;

    fn flow(dir: &Path, window: bool) -> Arc<Flow> {
        let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
        std::fs::create_dir_all(dir.join("connectors")).unwrap();
        write(
            "connectors/dump.yaml",
            "name: dump\nfile: { path: ../dumps/*.jsonl, format: jsonl }\n",
        );
        write(
            "connectors/out.yaml",
            "name: out\nfile: { path: ../out.jsonl, format: jsonl }\n",
        );
        let window = if window {
            "  window: { start: \"2020-01-01 00:00:00\", lag: 0s, lookback: 0s }\n"
        } else {
            ""
        };
        write(
            "flow.yaml",
            &format!(
                "source:\n  connector: dump\n  operation: read\n{window}target: {{ connector: out, operation: write }}\nkey: {{ source: \"{{{{ id }}}}\", target: id }}\nmapping: {{ id: \"{{{{ id }}}}\", name: \"{{{{ name }}}}\" }}\n"
            ),
        );
        std::fs::create_dir_all(dir.join("dumps")).unwrap();
        let loaded = config::load_flow(&dir.join("flow.yaml"));
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        Arc::new(loaded.value.unwrap())
    }

    fn names(flow: &Flow, windows: &[Window], windowed: bool) -> Vec<serde_json::Value> {
        let (tx, mut rx) = mpsc::channel(100);
        read(flow, windows, windowed, &tx, &Progress::plain()).unwrap();
        drop(tx);
        let mut out = Vec::new();
        while let Ok(read) = rx.try_recv() {
            if let Read::Record(r) = read {
                out.push((*r.record).clone());
            }
        }
        out
    }

    /// A dump copied in with its old modification time (`cp -p`, `rsync -t`, `tar x`, `unzip`)
    /// after the cursor passed that time is read: it arrived within the window.
    #[test]
    fn a_file_delivered_with_an_old_mtime_is_read_in_the_window_it_arrived() {
        let dir = tempfile::tempdir().unwrap();
        let flow = flow(dir.path(), true);
        let file = dir.path().join("dumps/part-001.jsonl");
        std::fs::write(&file, "{\"id\": \"A\", \"name\": \"Ann\"}\n").unwrap();
        // Delivered now, but with the mtime the exporter gave it yesterday.
        let yesterday = std::time::SystemTime::now() - std::time::Duration::from_secs(86_400);
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(yesterday)
            .unwrap();
        // Then a run starts, its cursor at `now - 1h`: it reads [now - 1h, now). (Taken before
        // the delivery, `now` could precede the file's status change on a loaded machine.)
        let now = Utc::now();
        let window = Window {
            start: now - Duration::hours(1),
            end: now,
        };
        assert_eq!(names(&flow, &[window], true).len(), 1, "A was never read");
    }

    /// Copies of a key in files of two windows (a dump delivered, then a later one): a changed
    /// copy is new, an identical one a repeat.
    #[test]
    fn without_key_modified_a_copy_with_other_content_is_not_a_repeat_in_the_next_window() {
        let ann = json!({"id": "A", "name": "Ann"});
        let anne = json!({"id": "A", "name": "Anne (changed)"});
        let mut seen = Seen::default();
        assert!(seen.admit("A", &version(&None, &ann), false));
        seen.next_window();
        assert!(seen.admit("A", &version(&None, &anne), false), "dropped");
        assert!(!seen.admit("A", &version(&None, &anne), false));
        assert_eq!(seen.duplicates, 1);
    }

    /// Two dumps hold the same key with different content (a later export of a changed
    /// record): without `key.modified`, the content tells the copies apart, and the later one
    /// goes on to be written (or sent through `on_change`), never dropped as a repeat.
    #[test]
    fn a_later_dump_with_changed_content_for_a_key_is_read_not_dropped_as_a_repeat() {
        let dir = tempfile::tempdir().unwrap();
        let flow = flow(dir.path(), false);
        std::fs::write(
            dir.path().join("dumps/part-001.jsonl"),
            "{\"id\": \"A\", \"name\": \"Ann\"}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("dumps/part-002.jsonl"),
            "{\"id\": \"A\", \"name\": \"Anne (changed)\"}\n",
        )
        .unwrap();
        let read = names(
            &flow,
            &[Window {
                start: chrono::DateTime::<Utc>::MIN_UTC,
                end: chrono::DateTime::<Utc>::MAX_UTC,
            }],
            false,
        );
        assert_eq!(
            read,
            vec![json!({"id": "A", "name": "Anne (changed)"})],
            "the last copy is the one sent on"
        );
    }
}
