//! The state of each flow, kept in an embedded SQLite file: the cursor, the ledger of record
//! keys, and the run history.
//!
//! The ledger is the exactly-once guarantee. Before a batch is sent its keys are marked in
//! flight; after the target answers each key becomes done (with the target's id and number),
//! failed or conflict (parked, with the reason and the source record so `retry` can resend
//! it). Once the target has confirmed a key it stays confirmed: the database itself refuses
//! to downgrade, delete or re-mark it (see `schema`). Every change of more than one row is one
//! transaction (one per batch), so a crash leaves the state as it was before the change or
//! after it.
//!
//! The ledger row stays slim: a source record is kept only while its key is in flight or
//! parked, as the source of the key's kept record (below) or, when it is another one (a flow
//! that keeps no records, a record refused with another source), in its own table (`sources`);
//! hashes are bytes and times integers, so a ledger row is about 140 bytes,
//! and the pages that dropped sources free are reused by the next batches and given back to
//! the file system at the end of each run (incremental auto-vacuum). Beside it, `kept` holds
//! every key's newest source and the record last sent for `engine resend`, packed against a
//! dictionary trained per flow (`packing`, about 370 bytes for the bundled flow's orders);
//! `updates` the updates under way, each step recorded before it is sent, so that a written
//! key is never marked in flight again.
//!
//! Durability, in WAL mode: in-flight marks commit with `synchronous = FULL`, everything else
//! with `NORMAL`. A process crash loses no commit at either level. A power cut may lose the
//! last `NORMAL` commits, but a WAL only ever loses its tail, and a send's in-flight mark was
//! synced (with everything before it) before the send: the state read back is one the run
//! passed through, with every record sent since still in flight, and the runner looks every
//! in-flight key up in the target before resending it. So exactly once holds and a power cut
//! costs lookups, not duplicates. `NORMAL` for the marks would not: a lost mark makes a sent
//! record look unsent, and it would be sent again unlooked-up. The price is one disk sync per
//! batch.
//!
//! `open` refuses to take any existing file but an engine ledger and creates a new one whole;
//! `lock` keeps one writer per flow.
//!
//! This module is storage only: it does not decide when the cursor may move, what to do with
//! a key left in flight, or whether a changed record is a conflict; the runner does. It does
//! no IO but its own files (the database, its folder, the flows' lock files), and takes the
//! clock as a parameter.

mod kept;
mod ledger;
pub mod lock;
mod open;
mod packing;
mod schema;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_order;
#[cfg(test)]
mod tests_row;
#[cfg(test)]
mod tests_slim;
#[cfg(test)]
mod tests_updates;
mod updates;

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, ToSql, params};

use crate::error::{Error, ErrorKind, Result};

pub use kept::{Kept, Seen, WrittenFilter};
pub use packing::Doc;
pub use updates::{PendingUpdate, Step, UpdateEnd};

/// How long a statement waits for another process holding the write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How many prepared statements a store keeps: every statement its code prepares cached, with
/// room to spare.
const STATEMENTS: usize = 64;

/// The name of an in-memory store in error messages.
const IN_MEMORY: &str = ":memory:";

/// Where a ledger row is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// Sent (or about to be sent) and not confirmed yet.
    InFlight,
    /// Confirmed by the target.
    Done,
    /// Rejected by the target, or could not be mapped: parked until `retry`.
    Failed,
    /// Parked because it clashes with what the target has (e.g. changed after it was written).
    Conflict,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::InFlight,
        Status::Done,
        Status::Failed,
        Status::Conflict,
    ];

    /// The text stored in the database and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InFlight => "in_flight",
            Status::Done => "done",
            Status::Failed => "failed",
            Status::Conflict => "conflict",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = Error;

    fn from_str(text: &str) -> Result<Status> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| Error::new(ErrorKind::State, format!("unknown record status `{text}`")))
    }
}

/// What kind of command a run was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunKind {
    Run,
    DryRun,
    Backfill,
    Retry,
}

impl RunKind {
    pub const ALL: [RunKind; 4] = [
        RunKind::Run,
        RunKind::DryRun,
        RunKind::Backfill,
        RunKind::Retry,
    ];

    /// The text stored in the database and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Run => "run",
            RunKind::DryRun => "dry_run",
            RunKind::Backfill => "backfill",
            RunKind::Retry => "retry",
        }
    }
}

impl fmt::Display for RunKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunKind {
    type Err = Error;

    fn from_str(text: &str) -> Result<RunKind> {
        RunKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| Error::new(ErrorKind::State, format!("unknown run kind `{text}`")))
    }
}

/// How hard a commit is pushed to disk (SQLite's `PRAGMA synchronous`, in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// The log is synced at checkpoints only: a power cut may lose the last commits, a
    /// crash of the process loses none.
    Normal,
    /// The log is synced at every commit: once committed, the change survives a power cut,
    /// and so does every change committed before it.
    Full,
}

impl Durability {
    fn as_str(self) -> &'static str {
        match self {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        }
    }
}

/// One row of the ledger: what the engine knows about one record key of one flow.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub status: Status,
    /// The content hash of the mapped target record last sent or written.
    pub hash: Option<String>,
    pub target_id: Option<String>,
    pub target_number: Option<String>,
    /// How many times the record was marked in flight (sent or about to be).
    pub attempts: u32,
    pub last_error: Option<String>,
    /// The target field the last error is about, when the target said.
    pub error_field: Option<String>,
    /// The source record, kept while the key is not done so `retry` can resend it.
    pub source: Option<serde_json::Value>,
    /// The source record's last-modified text.
    pub modified: Option<String>,
    pub first_seen: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    /// When the target first confirmed the key. Once set it is never cleared, and the key is
    /// never sent as a new record again, even while reported as a conflict.
    pub done_at: Option<DateTime<Utc>>,
}

/// A source record as the ledger is given it: parsed, or the JSON text it was read as. A reader
/// that parses only the fields a flow reads (`source::lean`) keeps the text for the rest; the
/// ledger packs that text as it is, and it reads back as the record parsed whole.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Json(Arc<serde_json::Value>),
    /// One JSON value's text (valid JSON: it was read from an answer that parsed).
    Text(Arc<str>),
}

impl Source {
    /// The record parsed whole.
    pub fn whole(&self) -> Result<serde_json::Value> {
        match self {
            Source::Json(json) => Ok((**json).clone()),
            Source::Text(text) => serde_json::from_str(text).map_err(|err| {
                Error::new(
                    ErrorKind::State,
                    "a source record read could not be parsed again",
                )
                .with_source(err)
            }),
        }
    }
}

impl From<serde_json::Value> for Source {
    fn from(json: serde_json::Value) -> Source {
        Source::Json(Arc::new(json))
    }
}

/// A record about to be sent. The bills are borrowed where the caller still holds them (a
/// writer's batch), and the sources shared: a deep copy of each per send cost more than the
/// ledger's own work on them.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending<'a> {
    pub key: String,
    /// The content hash of the mapped target record being sent.
    pub hash: String,
    pub source: Source,
    /// The mapped target record being sent (its compact text, as sent, where the caller has
    /// it), kept with the source for `engine resend`; `None` when the flow keeps no records
    /// (`target.keep_records: false`).
    pub target: Option<Doc<'a>>,
    pub modified: Option<String>,
}

/// What became of one key, after a write or after a lookup of keys left in flight.
///
/// In `Failed` and `Conflict`, a `None` hash, source or modified keeps what the ledger has.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The target confirmed the key. Clears the kept source and the last error.
    Done {
        key: String,
        target_id: Option<String>,
        target_number: Option<String>,
        hash: Option<String>,
    },
    /// Rejected by the target, or never sent because it could not be mapped (then the key
    /// may have no row yet: one is created). Ignored for a key that is already done.
    Failed {
        key: String,
        message: String,
        field: Option<String>,
        hash: Option<String>,
        source: Option<serde_json::Value>,
        modified: Option<String>,
    },
    /// Parked because it clashes with the target. On a done key the status becomes
    /// `conflict` but the key stays written (`done_at`, target id, number and hash are kept).
    Conflict {
        key: String,
        message: String,
        hash: Option<String>,
        source: Option<serde_json::Value>,
        modified: Option<String>,
    },
    /// An in-flight key the target turned out not to have: the in-flight mark goes away so
    /// the record is sent again. A first attempt loses its row (as if never sent); a key that
    /// was parked before goes back to `failed` with its source and last error, so it is not
    /// forgotten behind the cursor. Ignored unless the key is in flight.
    Released { key: String },
}

/// The counts and outcome of a finished run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// `ok`, `partial` or `failed`.
    pub outcome: String,
    pub window_from: Option<DateTime<Utc>>,
    pub window_to: Option<DateTime<Utc>>,
    pub read: u64,
    pub written: u64,
    pub skipped: u64,
    pub failed: u64,
    pub message: Option<String>,
}

/// The outcomes a [`RunSummary`] may have.
pub const RUN_OUTCOMES: [&str; 3] = ["ok", "partial", "failed"];

/// One run in the history.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub id: i64,
    pub kind: RunKind,
    pub started: DateTime<Utc>,
    /// `None` while the run goes on, and forever for a run that crashed.
    pub finished: Option<DateTime<Utc>>,
    pub summary: Option<RunSummary>,
}

/// The state database. Cloning shares the one connection.
#[derive(Debug, Clone)]
pub struct Store {
    connection: Arc<Mutex<Connection>>,
    /// Packs kept documents; locked only while holding the connection.
    packer: Arc<Mutex<packing::Packer>>,
    /// The file's path (or `:memory:`), for error messages.
    name: Arc<str>,
}

impl Store {
    /// Open the ledger at `path` and migrate it, or create it (and its folders) if there is no
    /// file; an existing file that is not an engine ledger is refused (see `open`).
    pub fn open(path: &Path) -> Result<Store> {
        Store::open_counting_migrations(path).map(|(store, _)| store)
    }

    /// An in-memory store for unit tests.
    pub fn in_memory() -> Result<Store> {
        let connection = Connection::open_in_memory().map_err(|source| {
            Error::new(
                ErrorKind::State,
                "cannot create an in-memory state database",
            )
            .with_source(source)
        })?;
        Store::from_connection(connection, IN_MEMORY).map(|(store, _)| store)
    }

    fn open_counting_migrations(path: &Path) -> Result<(Store, usize)> {
        let created = open::ensure_exists(path)?;
        let connection = open::open_existing(path)?;
        let (store, applied) = Store::from_connection(connection, &path.display().to_string())?;
        Ok((store, created + applied))
    }

    fn from_connection(mut connection: Connection, name: &str) -> Result<(Store, usize)> {
        let failed = |source: rusqlite::Error| open::database_error(name, "configure", source);
        // Another process (a second `engine` started by mistake, or `sqlite3`) waits for the
        // lock instead of failing at once.
        connection.busy_timeout(BUSY_TIMEOUT).map_err(failed)?;
        // The store's statements stay prepared (`prepare_cached`). rusqlite keeps 16, about as
        // many as one batch uses (the read of its keys, the marks, the packer's, the
        // outcomes'); past that each batch evicts and parses some again.
        connection.set_prepared_statement_cache_capacity(STATEMENTS);
        // Pages freed by deleted sources go back to the file system at the end of a run (see
        // `finish_run`). This takes effect only on a file without tables yet, so it must come
        // before the journal mode, which writes the file's header; an older file is converted
        // once after its migration (`vacuum_once`). On a file with tables the pragma would
        // wait for the write lock, so it is only sent to a new one.
        if schema::version(&connection).map_err(failed)? == 0 {
            connection
                .pragma_update(None, "auto_vacuum", "INCREMENTAL")
                .map_err(failed)?;
        }
        // WAL lets readers (`engine state` while a run goes on) work beside the writer. An
        // in-memory database answers `memory` and keeps its own journal, which is fine for
        // tests. Commits are synced as the module's `//!` explains: in-flight marks FULL, the
        // rest NORMAL.
        let _mode: String = connection
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(failed)?;
        connection
            .pragma_update(None, "synchronous", Durability::Normal.as_str())
            .map_err(failed)?;
        // Off by default in SQLite; on so that any reference a later migration adds is kept.
        connection
            .pragma_update(None, "foreign_keys", true)
            .map_err(failed)?;
        let applied = schema::migrate(&mut connection, name)?;
        schema::vacuum_once(&connection, name)?;
        let store = Store {
            connection: Arc::new(Mutex::new(connection)),
            packer: Arc::default(),
            name: name.into(),
        };
        Ok((store, applied))
    }

    /// The schema version of the database (the number of migrations applied).
    pub fn schema_version(&self) -> Result<u32> {
        schema::version(&self.lock()).map_err(self.failed("read the schema version".to_string()))
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A thread that panicked while holding the lock cannot have left a change half done:
        // an open transaction rolls back when it is dropped during unwinding. So the
        // connection behind a poisoned lock is consistent and can be used.
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The packer, taken after the connection's lock (never before, so the two cannot deadlock).
    fn packer(&self) -> MutexGuard<'_, packing::Packer> {
        // A panic while the packer was held rolled its transaction back, and with it any
        // dictionary trained inside: the packer forgets what it learnt, as after a refusal.
        self.packer.lock().unwrap_or_else(|poisoned| {
            let mut packer = poisoned.into_inner();
            packer.forget();
            self.packer.clear_poison();
            packer
        })
    }

    /// Wrap a database error as "cannot {action} in the state database `{name}`".
    fn failed(&self, action: String) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
        move |source| open::database_error(&self.name, &action, source)
    }

    /// The instant up to which every record of `flow` has been written or parked.
    pub fn cursor(&self, flow: &str) -> Result<Option<DateTime<Utc>>> {
        self.lock()
            .query_row("SELECT value FROM cursors WHERE flow = ?1", [flow], |row| {
                row.get::<_, Time>(0)
            })
            .optional()
            .map(|time| time.map(|time| time.0))
            .map_err(self.failed(format!("read the cursor of flow `{flow}`")))
    }

    /// Move the cursor forward only; a value at or before the current cursor is ignored
    /// (returns false).
    pub fn advance_cursor(
        &self,
        flow: &str,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        // Times are stored as fixed-width UTC text, so comparing the text compares the
        // instants, and the check and the write are one statement.
        let changed = self
            .lock()
            .execute(
                "INSERT INTO cursors (flow, value, updated) VALUES (?1, ?2, ?3)
                 ON CONFLICT (flow) DO UPDATE SET value = excluded.value, updated = excluded.updated
                 WHERE excluded.value > cursors.value",
                params![flow, Time(to), Time(now)],
            )
            .map_err(self.failed(format!("advance the cursor of flow `{flow}`")))?;
        Ok(changed == 1)
    }

    /// Set the cursor to any instant, earlier or later (the user's explicit reset).
    pub fn reset_cursor(&self, flow: &str, to: DateTime<Utc>, now: DateTime<Utc>) -> Result<()> {
        self.lock()
            .execute(
                "INSERT INTO cursors (flow, value, updated) VALUES (?1, ?2, ?3)
                 ON CONFLICT (flow) DO UPDATE SET value = excluded.value, updated = excluded.updated",
                params![flow, Time(to), Time(now)],
            )
            .map_err(self.failed(format!("reset the cursor of flow `{flow}`")))?;
        Ok(())
    }

    /// Put the cursor back where it was (`None`: as if the flow never ran).
    pub fn restore_cursor(
        &self,
        flow: &str,
        to: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        match to {
            Some(to) => self.reset_cursor(flow, to, now),
            None => {
                self.lock()
                    .execute("DELETE FROM cursors WHERE flow = ?1", params![flow])
                    .map_err(self.failed(format!("restore the cursor of flow `{flow}`")))?;
                Ok(())
            }
        }
    }

    /// Record the start of a run; returns its id for [`Store::finish_run`].
    pub fn start_run(&self, flow: &str, kind: RunKind, now: DateTime<Utc>) -> Result<i64> {
        let connection = self.lock();
        connection
            .execute(
                "INSERT INTO runs (flow, kind, started) VALUES (?1, ?2, ?3)",
                params![flow, kind, Time(now)],
            )
            .map_err(self.failed(format!("record a run of flow `{flow}`")))?;
        Ok(connection.last_insert_rowid())
    }

    /// Record the end of a run that was started and not finished yet.
    pub fn finish_run(&self, run_id: i64, summary: &RunSummary, now: DateTime<Utc>) -> Result<()> {
        if !RUN_OUTCOMES.contains(&summary.outcome.as_str()) {
            return Err(Error::new(
                ErrorKind::State,
                format!(
                    "unknown run outcome `{}`: expected `ok`, `partial` or `failed`",
                    summary.outcome
                ),
            ));
        }
        let changed = self
            .lock()
            .execute(
                "UPDATE runs SET finished = ?2, outcome = ?3, window_from = ?4, window_to = ?5,
                     read = ?6, written = ?7, skipped = ?8, failed = ?9, message = ?10
                 WHERE id = ?1 AND finished IS NULL",
                params![
                    run_id,
                    Time(now),
                    summary.outcome,
                    summary.window_from.map(Time),
                    summary.window_to.map(Time),
                    summary.read,
                    summary.written,
                    summary.skipped,
                    summary.failed,
                    summary.message,
                ],
            )
            .map_err(self.failed(format!("finish run `{run_id}`")))?;
        if changed == 0 {
            return Err(Error::new(
                ErrorKind::State,
                format!("run `{run_id}` does not exist or has already finished"),
            ));
        }
        self.release_free_pages()
    }

    /// Give the pages that deleted sources left empty back to the file system. At the end of
    /// a run, because during one the next batches' sources fill those pages again.
    fn release_free_pages(&self) -> Result<()> {
        let connection = self.lock();
        let failed = || self.failed("release free pages".to_string());
        let mut statement = connection
            .prepare("PRAGMA incremental_vacuum")
            .map_err(failed())?;
        // The pragma frees pages one step at a time: it must be stepped to the end.
        let mut rows = statement.query([]).map_err(failed())?;
        while rows.next().map_err(failed())?.is_some() {}
        Ok(())
    }

    /// The last `limit` runs of `flow`, newest first.
    pub fn runs(&self, flow: &str, limit: usize) -> Result<Vec<Run>> {
        let connection = self.lock();
        let failed = || self.failed(format!("read the runs of flow `{flow}`"));
        let mut statement = connection
            .prepare_cached(
                "SELECT id, kind, started, finished, outcome, window_from, window_to,
                        read, written, skipped, failed, message
                 FROM runs WHERE flow = ?1 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(failed())?;
        // SQLite limits are signed; a limit beyond i64 means "all" anyway.
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = statement
            .query_map(params![flow, limit], run_from_row)
            .map_err(failed())?;
        rows.collect::<rusqlite::Result<Vec<Run>>>()
            .map_err(failed())
    }
}

/// How much disk a state database takes per ledger row: the measure of a slim ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// The database file and its write-ahead log, after a checkpoint.
    pub bytes: u64,
    /// Ledger rows, of every flow.
    pub rows: u64,
}

impl Footprint {
    /// Bytes per ledger row (0 for an empty ledger).
    pub fn bytes_per_row(&self) -> u64 {
        self.bytes.checked_div(self.rows).unwrap_or(0)
    }
}

impl fmt::Display for Footprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ledger {} bytes/row ({} bytes for {} rows, incl. the write-ahead log)",
            self.bytes_per_row(),
            self.bytes,
            self.rows
        )
    }
}

/// The [`Footprint`] of the existing state database at `path`, after copying its write-ahead
/// log into it (as closing it after a run does); for the benchmark and for tests.
pub fn footprint(path: &Path) -> Result<Footprint> {
    let connection = open::open_existing(path)?;
    let (store, _) = Store::from_connection(connection, &path.display().to_string())?;
    let rows = {
        let connection = store.lock();
        let failed = || store.failed("measure".to_string());
        let mut statement = connection
            .prepare("PRAGMA wal_checkpoint(TRUNCATE)")
            .map_err(failed())?;
        let mut checkpoint = statement.query([]).map_err(failed())?;
        while checkpoint.next().map_err(failed())?.is_some() {}
        connection
            .query_row("SELECT COUNT(*) FROM ledger", [], |row| row.get(0))
            .map_err(failed())?
    };
    let size = |path: &Path| std::fs::metadata(path).map_or(0, |meta| meta.len());
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    Ok(Footprint {
        bytes: size(path) + size(Path::new(&wal)),
        rows,
    })
}

/// When a flow last completed a run, and when it first ran: what the `stale` alert measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SuccessHistory {
    /// The end of the last `run` whose outcome was `ok` or `partial` (parked records and
    /// unsettled windows have their own alerts).
    pub last_success: Option<DateTime<Utc>>,
    /// The start of the first `run`.
    pub first_run: Option<DateTime<Utc>>,
}

impl Store {
    /// The [`SuccessHistory`] of `flow`. Read-only.
    pub fn success_history(&self, flow: &str) -> Result<SuccessHistory> {
        let connection = self.lock();
        connection
            .query_row(
                "SELECT MAX(CASE WHEN outcome IN ('ok', 'partial') THEN finished END), MIN(started)
                 FROM runs WHERE flow = ?1 AND kind = 'run'",
                [flow],
                |row| {
                    Ok(SuccessHistory {
                        last_success: row.get::<_, Option<Time>>(0)?.map(|t| t.0),
                        first_run: row.get::<_, Option<Time>>(1)?.map(|t| t.0),
                    })
                },
            )
            .map_err(self.failed(format!("read the run history of flow `{flow}`")))
    }
}

fn run_from_row(row: &Row<'_>) -> rusqlite::Result<Run> {
    let finished: Option<Time> = row.get("finished")?;
    let summary = match finished {
        None => None,
        Some(_) => Some(RunSummary {
            outcome: row.get("outcome")?,
            window_from: row.get::<_, Option<Time>>("window_from")?.map(|t| t.0),
            window_to: row.get::<_, Option<Time>>("window_to")?.map(|t| t.0),
            read: row.get("read")?,
            written: row.get("written")?,
            skipped: row.get("skipped")?,
            failed: row.get("failed")?,
            message: row.get("message")?,
        }),
    };
    Ok(Run {
        id: row.get("id")?,
        kind: row.get("kind")?,
        started: row.get::<_, Time>("started")?.0,
        finished: finished.map(|t| t.0),
        summary,
    })
}

/// An instant as the ledger stores it since schema version 4: integer nanoseconds since the
/// Unix epoch (UTC), 8 bytes instead of 30, exact so that what is read is what was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Nanos(DateTime<Utc>);

impl ToSql for Nanos {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        self.0
            .timestamp_nanos_opt()
            .map(ToSqlOutput::from)
            .ok_or_else(|| {
                rusqlite::Error::ToSqlConversionFailure(
                    format!("`{}` is beyond the year 2262", self.0).into(),
                )
            })
    }
}

impl FromSql for Nanos {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Nanos> {
        Ok(Nanos(DateTime::from_timestamp_nanos(value.as_i64()?)))
    }
}

/// An instant as the database stores it: RFC 3339 UTC text with nanoseconds, fixed width so
/// that text order is time order, and exact so that what is read is what was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Time(DateTime<Utc>);

impl ToSql for Time {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(
            self.0.to_rfc3339_opts(SecondsFormat::Nanos, true),
        ))
    }
}

impl FromSql for Time {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Time> {
        let text = value.as_str()?;
        DateTime::parse_from_rfc3339(text)
            .map(|time| Time(time.with_timezone(&Utc)))
            .map_err(|err| FromSqlError::Other(Box::new(err)))
    }
}

impl ToSql for Status {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for Status {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Status> {
        value
            .as_str()?
            .parse()
            .map_err(|err: Error| FromSqlError::Other(Box::new(err)))
    }
}

impl ToSql for RunKind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for RunKind {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<RunKind> {
        value
            .as_str()?
            .parse()
            .map_err(|err: Error| FromSqlError::Other(Box::new(err)))
    }
}
