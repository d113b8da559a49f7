//! Writing a file target exactly once.
//!
//! A batch's keys are marked in flight in the ledger first; then its records are written to a
//! temporary file beside the target (a copy of the file so far under `append` and `per_run`,
//! and under `replace` once this run has written), which is flushed to disk and renamed over
//! the target; only then are the keys marked done. A crash before the rename leaves the file
//! as it was; after it, the records are in the file and still in flight, and the next run
//! finds them there by key ([`FileTarget::lookup`] reads the files) instead of writing them
//! twice. Batches are written one at a time. A record whose fields the file's CSV columns do
//! not hold is parked with the field's name, never written with a field lost.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::{Value as Json, json};

use crate::config::model::{FieldPath, FileConnector, Flow};
use crate::config::raw::{FileFormat, FileMode};
use crate::error::{Error, ErrorKind, Result};
use crate::file::format;
use crate::file::naming::Pattern;
use crate::file::select;
use crate::state::{Doc, Outcome, Pending, RunKind, Store};
use crate::target::writer::{Found, Outgoing, Settled};
use crate::time::Clock;

/// The suffix of the temporary file a write renames over its target; never read as data.
pub const TEMPORARY_SUFFIX: &str = ".engine-tmp";

pub struct FileTarget {
    pub flow: Arc<Flow>,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    spec: FileConnector,
    /// The file this run writes (under `per_run`, named by the run's start).
    pub file: PathBuf,
    written: Mutex<Written>,
}

/// What this run has written so far.
#[derive(Default)]
struct Written {
    /// Under `replace`: the file holds records to keep, this run's (later batches add to
    /// them) or those of an earlier run that did not end cleanly (see [`unclean_before`]).
    replaced: bool,
    /// The CSV columns in use, once known.
    columns: Option<Vec<FieldPath>>,
}

/// One batch's records as the file receives them.
struct Prepared {
    lines: Vec<String>,
    rows: Vec<Vec<String>>,
    header: Option<Vec<FieldPath>>,
}

impl FileTarget {
    /// The target of `flow` (a file connector) for a run that started at `started`.
    pub fn new(
        flow: Arc<Flow>,
        store: Store,
        clock: Arc<dyn Clock>,
        started: DateTime<Utc>,
    ) -> Result<FileTarget> {
        let spec = flow
            .target
            .connector
            .files
            .clone()
            .expect("a file target has a file connector");
        let pattern = Pattern::parse(&spec.path.to_string_lossy()).map_err(Error::config)?;
        let replaced = spec.mode == FileMode::Replace && unclean_before(&store, &flow.name)?;
        Ok(FileTarget {
            file: PathBuf::from(pattern.name(started)),
            flow,
            store,
            clock,
            spec,
            written: Mutex::new(Written {
                replaced,
                columns: None,
            }),
        })
    }

    /// Where records go, for the run's header line.
    pub fn describe(&self) -> String {
        let mode = match self.spec.mode {
            FileMode::Append => "appended to",
            FileMode::PerRun => "a new file per run",
            FileMode::Replace => "replaced by each run",
        };
        format!("{} ({mode})", self.file.display())
    }

    /// What a dry run prints for `batch`: the file and the records it would receive.
    pub fn body(&self, batch: &[Outgoing]) -> Json {
        let records: Vec<Json> = batch.iter().map(|o| o.mapped.target()).collect();
        json!({"file": self.file.display().to_string(), "records": records})
    }

    /// Look keys up in every file this target has written: those not in the map are not there.
    pub async fn lookup(&self, keys: &[String]) -> Result<HashMap<String, Found>> {
        let files = self.files()?;
        let wanted: std::collections::HashSet<String> = keys.iter().cloned().collect();
        let key_field = self.flow.key.target.clone();
        let format = self.spec.format;
        tokio::task::spawn_blocking(move || {
            let mut found = HashMap::new();
            for file in files {
                let name = display_name(&file);
                format::for_each_record(&file, format, &mut |_, record| {
                    if let Some(key) = record.get(&key_field).and_then(key_text)
                        && wanted.contains(&key)
                    {
                        found.insert(
                            key,
                            Found {
                                id: Some(name.clone()),
                                number: None,
                            },
                        );
                    }
                    Ok(())
                })?;
            }
            Ok(found)
        })
        .await
        .map_err(|err| Error::new(ErrorKind::Io, "a file lookup stopped").with_source(err))?
    }

    /// The files this target may have written: this run's, and under `per_run` every run's.
    fn files(&self) -> Result<Vec<PathBuf>> {
        match self.spec.mode {
            FileMode::PerRun => {
                let pattern =
                    Pattern::parse(&self.spec.path.to_string_lossy()).map_err(Error::config)?;
                select::files(Path::new(&pattern.glob()))
            }
            _ => Ok(if self.file.exists() {
                vec![self.file.clone()]
            } else {
                Vec::new()
            }),
        }
    }

    /// Write one batch exactly once; a record the file cannot hold whole is parked.
    pub async fn write(self: &Arc<Self>, batch: Vec<Outgoing>) -> Result<Vec<Settled>> {
        let flow_name = &self.flow.name;
        let keep = self.flow.target.keep_records;
        let pending: Vec<Pending> = batch
            .iter()
            .map(|o| Pending {
                key: o.mapped.key.clone(),
                hash: o.mapped.hash.clone(),
                source: o.source.clone(),
                target: keep.then(|| Doc::Text(o.mapped.text.text())),
                modified: o.mapped.modified.clone(),
            })
            .collect();
        self.store
            .mark_in_flight(flow_name, &pending, self.clock.now())?;
        let target = Arc::clone(self);
        let (outcomes, settled) = tokio::task::spawn_blocking(move || target.write_file(&batch))
            .await
            .map_err(|err| Error::new(ErrorKind::Io, "a file write stopped").with_source(err))??;
        self.store
            .record_outcomes(flow_name, &outcomes, self.clock.now())?;
        Ok(settled)
    }

    fn write_file(&self, batch: &[Outgoing]) -> Result<(Vec<Outcome>, Vec<Settled>)> {
        let mut written = self.written.lock().expect("file target lock");
        let keep = match self.spec.mode {
            FileMode::Append | FileMode::PerRun => self.file.exists(),
            FileMode::Replace => written.replaced && self.file.exists(),
        };
        let prepared = self.prepare(batch, keep, &mut written)?;
        let mut outcomes = Vec::new();
        let mut settled = Vec::new();
        let name = display_name(&self.file);
        for (outgoing, refusal) in batch.iter().zip(&prepared.1) {
            let key = outgoing.mapped.key.clone();
            match refusal {
                None => {
                    outcomes.push(Outcome::Done {
                        key: key.clone(),
                        target_id: Some(name.clone()),
                        target_number: None,
                        hash: Some(outgoing.mapped.hash.clone()),
                    });
                    settled.push(Settled::Written {
                        key,
                        id: Some(name.clone()),
                        number: None,
                        note: None,
                    });
                }
                Some((message, field)) => {
                    outcomes.push(Outcome::Failed {
                        key: key.clone(),
                        message: message.clone(),
                        field: Some(field.clone()),
                        hash: Some(outgoing.mapped.hash.clone()),
                        source: Some(outgoing.source.whole()?),
                        modified: outgoing.mapped.modified.clone(),
                    });
                    settled.push(Settled::Failed {
                        key,
                        message: message.clone(),
                    });
                }
            }
        }
        let prepared = prepared.0;
        if prepared.lines.is_empty() && prepared.rows.is_empty() {
            return Ok((outcomes, settled));
        }
        self.replace_file(keep, &prepared)?;
        written.replaced = true;
        Ok((outcomes, settled))
    }

    /// The lines or rows of `batch`, and for each record why it cannot be written (if so).
    #[allow(clippy::type_complexity)]
    fn prepare(
        &self,
        batch: &[Outgoing],
        keep: bool,
        written: &mut Written,
    ) -> Result<(Prepared, Vec<Option<(String, String)>>)> {
        let mut prepared = Prepared {
            lines: Vec::new(),
            rows: Vec::new(),
            header: None,
        };
        let mut refusals = Vec::with_capacity(batch.len());
        if self.spec.format == FileFormat::Jsonl {
            for outgoing in batch {
                prepared
                    .lines
                    .push(format::jsonl_line(outgoing.mapped.text.text()));
                refusals.push(None);
            }
            return Ok((prepared, refusals));
        }
        let existing = if keep {
            format::csv_header(&self.file)?
        } else {
            None
        };
        let columns = match (&self.spec.columns, &existing) {
            (Some(columns), Some(header)) if columns.iter().map(|c| &c.text).ne(header.iter()) => {
                return Err(Error::new(
                    ErrorKind::Io,
                    format!(
                        "the header of `{}` is not the connector's `columns`",
                        self.file.display()
                    ),
                )
                .with_hint("move the file away (a new one is started with the new columns), or put `columns` back as the header has them"));
            }
            (Some(columns), _) => columns.clone(),
            (None, Some(header)) => header.iter().map(|h| FieldPath::parse(h)).collect(),
            (None, None) => match (&written.columns, batch.first()) {
                (Some(columns), _) if keep => columns.clone(),
                (_, Some(first)) => format::top_level_columns(&first.mapped.target()),
                (_, None) => Vec::new(),
            },
        };
        if existing.is_none() {
            prepared.header = Some(columns.clone());
        }
        let explicit = self.spec.columns.is_some();
        for outgoing in batch {
            let record = &outgoing.mapped.target();
            match format::unwritten_field(record, &columns).filter(|_| !explicit) {
                Some(field) => refusals.push(Some((
                    format!(
                        "field `{field}` is not a column of `{}` (its header was set by the first record written); list the columns under `file.columns` of connector `{}`",
                        display_name(&self.file),
                        self.flow.target.connector.name
                    ),
                    field.to_string(),
                ))),
                None => {
                    prepared.rows.push(format::row(record, &columns));
                    refusals.push(None);
                }
            }
        }
        written.columns = Some(columns);
        Ok((prepared, refusals))
    }

    /// Write the new file whole beside the target, flush it to disk, and rename it over.
    fn replace_file(&self, keep: bool, prepared: &Prepared) -> Result<()> {
        let file = &self.file;
        let io = |what: &str, err: std::io::Error| {
            Error::new(ErrorKind::Io, format!("cannot {what} `{}`", file.display()))
                .with_source(err)
        };
        let folder = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(folder).map_err(|err| io("create the folder of", err))?;
        let temporary = folder.join(format!(".{}{TEMPORARY_SUFFIX}", display_name(file)));
        if keep {
            std::fs::copy(file, &temporary).map_err(|err| io("copy", err))?;
        } else {
            File::create(&temporary).map_err(|err| io("create a file beside", err))?;
        }
        let out = OpenOptions::new()
            .append(true)
            .open(&temporary)
            .map_err(|err| io("write beside", err))?;
        let mut out = BufWriter::new(out);
        let written = match self.spec.format {
            FileFormat::Jsonl => prepared
                .lines
                .iter()
                .try_for_each(|line| out.write_all(line.as_bytes())),
            FileFormat::Csv => {
                format::write_csv(&mut out, prepared.header.as_deref(), &prepared.rows)
            }
        };
        written
            .and_then(|()| out.flush())
            .map_err(|err| io("write beside", err))?;
        let out = out
            .into_inner()
            .map_err(|err| io("write beside", err.into_error()))?;
        out.sync_all()
            .map_err(|err| io("flush to disk a file beside", err))?;
        drop(out);
        std::fs::rename(&temporary, file).map_err(|err| io("rename a file over", err))?;
        // The rename itself is durable once the folder is flushed (POSIX).
        #[cfg(unix)]
        if let Ok(dir) = File::open(folder) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

/// Whether the last run that wrote to the target did not end cleanly (it failed or crashed
/// after writing, or left records in flight). Its records are in the file and no successful run
/// has delivered them, so under `replace` this run adds to the file instead of replacing it.
/// The newest run, unfinished, is the one building the target (it is recorded first).
fn unclean_before(store: &Store, flow: &str) -> Result<bool> {
    if !store.in_flight(flow)?.is_empty() {
        return Ok(true);
    }
    let runs = store.runs(flow, 50)?;
    let current = usize::from(runs.first().is_some_and(|run| run.finished.is_none()));
    let last_writer = runs.iter().skip(current).find(|run| {
        run.kind != RunKind::DryRun && run.summary.as_ref().is_none_or(|s| s.written > 0)
    });
    Ok(last_writer.is_some_and(|run| {
        run.summary
            .as_ref()
            .is_none_or(|summary| summary.outcome != "ok")
    }))
}

/// A file's name, for the ledger's target id and messages.
fn display_name(file: &Path) -> String {
    file.file_name().map_or_else(
        || file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// A key as text: a JSON Lines field may hold a number.
fn key_text(value: &Json) -> Option<String> {
    match value {
        Json::String(text) if !text.is_empty() => Some(text.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use crate::record;
    use crate::state::RunSummary;
    use crate::state::Source;
    use crate::time::SystemClock;

    /// A flow from `{id}` records to `out.jsonl`, replaced by each run.
    fn replace_flow(dir: &Path) -> Arc<Flow> {
        let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
        std::fs::create_dir_all(dir.join("connectors")).unwrap();
        write("in.jsonl", "");
        write(
            "connectors/people_in.yaml",
            "name: people_in\nfile: { path: ../in.jsonl, format: jsonl }\n",
        );
        write(
            "connectors/people_out.yaml",
            "name: people_out\nfile: { path: ../out.jsonl, format: jsonl, mode: replace }\n",
        );
        write(
            "people.yaml",
            "source: { connector: people_in, operation: read }\ntarget: { connector: people_out, operation: write }\nkey: { source: \"{{ id }}\", target: id }\nmapping: { id: \"{{ id }}\" }\n",
        );
        let loaded = config::load_flow(&dir.join("people.yaml"));
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        Arc::new(loaded.value.unwrap())
    }

    /// One run as `engine run` makes it: recorded, writing `ids`, finished with `outcome`.
    async fn run(flow: &Arc<Flow>, store: &Store, ids: &[&str], outcome: &str) {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let run = store
            .start_run(&flow.name, RunKind::Run, clock.now())
            .unwrap();
        let target = FileTarget::new(Arc::clone(flow), store.clone(), clock, Utc::now());
        let target = Arc::new(target.unwrap());
        for id in ids {
            let source = Arc::new(json!({ "id": id }));
            let outgoing = Outgoing {
                mapped: record::map(flow, Arc::clone(&source)).unwrap(),
                source: Source::Json(source),
                window: None,
            };
            target.write(vec![outgoing]).await.unwrap();
        }
        let summary = RunSummary {
            outcome: outcome.to_string(),
            window_from: None,
            window_to: None,
            read: ids.len() as u64,
            written: ids.len() as u64,
            skipped: 0,
            failed: 0,
            message: None,
        };
        store.finish_run(run, &summary, Utc::now()).unwrap();
    }

    /// A run that failed part-way wrote B; the next run adds C to the file instead of
    /// replacing it, so B is in the file a successful run leaves. The run after that one,
    /// which ended cleanly, replaces the file again.
    #[tokio::test]
    async fn under_replace_a_run_after_a_failed_run_adds_to_the_file_it_left() {
        let dir = tempfile::tempdir().unwrap();
        let flow = replace_flow(dir.path());
        let store = Store::in_memory().unwrap();
        let out = dir.path().join("out.jsonl");
        run(&flow, &store, &["A"], "ok").await;
        run(&flow, &store, &["B"], "failed").await;
        run(&flow, &store, &["C"], "ok").await;
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "{\"id\":\"B\"}\n{\"id\":\"C\"}\n"
        );
        run(&flow, &store, &["D"], "ok").await;
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "{\"id\":\"D\"}\n");
    }

    /// A run killed after writing B, with C in flight (not in the file): the next run finds B
    /// kept, and adds D to it.
    #[tokio::test]
    async fn under_replace_a_run_after_a_crashed_run_adds_to_the_file_it_left() {
        let dir = tempfile::tempdir().unwrap();
        let flow = replace_flow(dir.path());
        let store = Store::in_memory().unwrap();
        let out = dir.path().join("out.jsonl");
        run(&flow, &store, &["A"], "ok").await;
        store
            .start_run(&flow.name, RunKind::Run, Utc::now())
            .unwrap();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let crashed = FileTarget::new(Arc::clone(&flow), store.clone(), clock, Utc::now());
        let crashed = Arc::new(crashed.unwrap());
        let mapped = |id: &str| record::map(&flow, Arc::new(json!({ "id": id }))).unwrap();
        let outgoing = Outgoing {
            source: Source::from(json!({"id": "B"})),
            mapped: mapped("B"),
            window: None,
        };
        crashed.write(vec![outgoing]).await.unwrap();
        let c = mapped("C");
        let pending = Pending {
            key: c.key.clone(),
            hash: c.hash.clone(),
            source: Source::from(json!({"id": "C"})),
            target: Some(Doc::from(c.target())),
            modified: None,
        };
        store
            .mark_in_flight(&flow.name, &[pending], Utc::now())
            .unwrap();
        run(&flow, &store, &["D"], "ok").await;
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "{\"id\":\"B\"}\n{\"id\":\"D\"}\n"
        );
    }
}
