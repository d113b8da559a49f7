//! The ledger: one row per (flow, record key), read and written by [`Store`].
//!
//! Writes of several keys run in one IMMEDIATE transaction: all of them land or none does,
//! and a second process waits for the write lock up front instead of failing halfway. The
//! rule that a done key is never downgraded is kept twice: by the `WHERE` clauses here, so the
//! intent reads in the code, and by the schema's triggers, so no other path can break it.
//! A key not yet written keeps its source: the source of its kept record (the usual case: the
//! record sent, packed once) or, when that is not the one, a row of `sources` beside its
//! ledger row, packed like a kept document (see `packing`), written with the row (here, or by
//! `kept::keep_packed` before a kept row it shared changes) and dropped by the schema's
//! triggers when the key is done or its row goes away.
//!
//! A row names its flow by the flow's number in `flows` (schema 8), the other tables by name.
//! The statements run for each record of a batch bind that number, looked up once a
//! transaction ([`flow_id`]); the others look it up by name inside the statement.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{
    Connection, OptionalExtension, Row, ToSql, Transaction, TransactionBehavior, params,
};

use crate::diagnostic::{MAX_RECORD_TEXT, cut_text};
use crate::error::{Error, ErrorKind, Result};
use crate::state::packing::{Doc, Packed, Packer};
use crate::state::{Durability, Entry, Nanos, Outcome, Pending, Status, Store, kept};

/// The columns of an [`Entry`], read from `ledger AS l` and its kept source, `sources AS s`.
pub(super) const ENTRY_COLUMNS: &str = "l.key, l.status, l.hash, l.target_id, \
     CASE l.target_number WHEN '' THEN l.key ELSE l.target_number END AS target_number, \
     l.attempts, l.last_error, l.error_field, s.source, \
     COALESCE(s.dictionary, sk.dictionary) AS source_dictionary, \
     COALESCE(s.packed, sk.packed) AS source_packed, l.modified, l.first_seen, l.updated, \
     l.done_at";

/// The ledger joined with the sources it still keeps, and with the kept row of a key not yet
/// written that keeps no source of its own: its source is the kept one (see [`keep_source`]).
pub(super) const ENTRY_TABLES: &str = "ledger AS l LEFT JOIN sources AS s ON s.flow = ?1 AND s.key = l.key \
     LEFT JOIN kept AS sk ON s.key IS NULL AND l.done_at IS NULL AND sk.id = l.kept";

impl Store {
    /// The ledger row of one key.
    pub fn entry(&self, flow: &str, key: &str) -> Result<Option<Entry>> {
        let mut entries = self.entries(flow, &[key.to_string()])?;
        Ok(entries.remove(key))
    }

    /// The ledger rows of many keys, by key; keys without a row are absent.
    pub fn entries(&self, flow: &str, keys: &[String]) -> Result<HashMap<String, Entry>> {
        // The keys go in as one JSON array, so any number of them fits in one statement
        // (SQLite caps the number of `?` parameters, not the length of one).
        let entries = self.select_entries(
            flow,
            &format!(
                "SELECT {ENTRY_COLUMNS} FROM {ENTRY_TABLES}
                 WHERE l.flow_id = (SELECT id FROM flows WHERE name = ?1)
                   AND l.key IN (SELECT value FROM json_each(?2))"
            ),
            Some(keys),
            "read",
        )?;
        Ok(entries
            .into_iter()
            .map(|entry| (entry.key.clone(), entry))
            .collect())
    }

    /// Keys left in flight by a crash, a timeout or a dropped connection, oldest first. The
    /// runner resolves them (looks them up in the target) before anything is resent.
    pub fn in_flight(&self, flow: &str) -> Result<Vec<Entry>> {
        self.select_entries(
            flow,
            &format!(
                // `status <> 'done'` lets SQLite use the index, which holds only such rows.
                "SELECT {ENTRY_COLUMNS} FROM {ENTRY_TABLES}
                 WHERE l.flow_id = (SELECT id FROM flows WHERE name = ?1)
                   AND l.status <> 'done' AND l.status = 'in_flight'
                 ORDER BY l.first_seen, l.key"
            ),
            None,
            "list the in-flight records",
        )
    }

    /// Parked records (status failed or conflict), oldest first; `keys` empty means all.
    pub fn parked(&self, flow: &str, keys: &[String]) -> Result<Vec<Entry>> {
        let (filter, keys) = if keys.is_empty() {
            ("", None)
        } else {
            ("AND l.key IN (SELECT value FROM json_each(?2))", Some(keys))
        };
        self.select_entries(
            flow,
            &format!(
                "SELECT {ENTRY_COLUMNS} FROM {ENTRY_TABLES}
                 WHERE l.flow_id = (SELECT id FROM flows WHERE name = ?1)
                   AND l.status <> 'done' AND l.status IN ('failed', 'conflict')
                 {filter}
                 ORDER BY l.first_seen, l.key"
            ),
            keys,
            "list the parked records",
        )
    }

    /// The first `limit` records parked since `since` (oldest first, as [`Store::parked`]), each
    /// with its reason: what an alert quotes after a run. Only these rows are read, and none of
    /// their sources, so it costs the same however many records are parked.
    pub fn parked_since(
        &self,
        flow: &str,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(String, Option<String>)>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let connection = self.lock();
        let failed = || self.failed(format!("list the records of flow `{flow}` parked by a run"));
        // `updated` is integer nanoseconds since the epoch (`Nanos`).
        let mut statement = connection
            .prepare_cached(
                "SELECT key, last_error FROM ledger
                 WHERE flow_id = (SELECT id FROM flows WHERE name = ?1)
                   AND status IN ('failed', 'conflict') AND updated >= ?2
                 ORDER BY first_seen, key LIMIT ?3",
            )
            .map_err(failed())?;
        let rows = statement
            .query_map(params![flow, Nanos(since), limit], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .map_err(failed())?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(failed())
    }

    /// Up to `limit` ledger rows whose key contains `text` (all rows when it is empty), the
    /// most recently updated first: the console's search.
    pub fn search(&self, flow: &str, text: &str, limit: usize) -> Result<Vec<Entry>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.select_entries(
            flow,
            &format!(
                "SELECT {ENTRY_COLUMNS} FROM {ENTRY_TABLES}
                 WHERE l.flow_id = (SELECT id FROM flows WHERE name = ?1)
                   AND instr(l.key, (SELECT value FROM json_each(?2))) > 0
                 ORDER BY l.updated DESC, l.key LIMIT {limit}"
            ),
            Some(&[text.to_string()]),
            "search the",
        )
    }

    /// The number of ledger rows of `flow` by status; every status is present, zero when it
    /// has no rows, so callers can print a fixed table.
    pub fn counts(&self, flow: &str) -> Result<BTreeMap<Status, u64>> {
        let connection = self.lock();
        let failed = || self.failed(format!("count the records of flow `{flow}`"));
        let mut statement = connection
            .prepare_cached(
                "SELECT status, COUNT(*) FROM ledger
                 WHERE flow_id = (SELECT id FROM flows WHERE name = ?1) GROUP BY status",
            )
            .map_err(failed())?;
        let rows = statement
            .query_map([flow], |row| Ok((row.get::<_, Status>(0)?, row.get(1)?)))
            .map_err(failed())?;
        let mut counts: BTreeMap<Status, u64> =
            Status::ALL.into_iter().map(|status| (status, 0)).collect();
        for row in rows {
            let (status, count) = row.map_err(failed())?;
            counts.insert(status, count);
        }
        Ok(counts)
    }

    /// Before a write is sent: mark these keys in flight (attempts + 1, hash, source and
    /// modified replaced; the source and the mapped record kept), all in one transaction.
    ///
    /// Refuses, and marks none of them, if any key is already done (even when reported as a
    /// conflict since): sending it again could create a second copy in the target.
    pub fn mark_in_flight(
        &self,
        flow: &str,
        records: &[Pending],
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write(flow, "mark records in flight", Durability::Full, |tx| {
            // The batch's documents are packed one after another, then stored: compressing
            // them in a row keeps zstd's tables in the cache (packed between statements, each
            // document took twice as long). A dictionary trained on the way reads the
            // documents packed before it from the ledger, so those are stored first.
            let named = (flow, flow_id(tx, flow)?);
            let mut packer = self.packer();
            let mut packed = Vec::with_capacity(records.len());
            let mut stored = 0;
            for (at, record) in records.iter().enumerate() {
                if at > stored && packer.trains_next(tx, flow)? {
                    if let Err(refusal) =
                        mark_packed(tx, named, &records[stored..at], &packed, now)?
                    {
                        return Ok(Err(refusal));
                    }
                    packed.clear();
                    stored = at;
                }
                packed.push(packer.pack(
                    tx,
                    flow,
                    (&record.source).into(),
                    record.target.as_ref().map(Doc::borrowed),
                )?);
            }
            mark_packed(tx, named, &records[stored..], &packed, now)
        })
    }

    /// After a write, or after a lookup that resolved keys left in flight: apply every
    /// outcome in one transaction.
    pub fn record_outcomes(
        &self,
        flow: &str,
        outcomes: &[Outcome],
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write(flow, "record write outcomes", Durability::Normal, |tx| {
            let named = (flow, flow_id(tx, flow)?);
            let mut packer = self.packer();
            for outcome in outcomes {
                record_outcome(tx, &mut packer, named, outcome, now)?;
            }
            Ok(Ok(()))
        })
    }

    /// Run `change` in one IMMEDIATE transaction and commit it only if it returns `Ok(Ok)`,
    /// synced to disk as `durability` says (see the module's `//!` for why only in-flight marks
    /// need `Full`). The outer result is a database error, the inner one a refusal decided by
    /// `change`; either way nothing is committed.
    pub(super) fn write(
        &self,
        flow: &str,
        action: &str,
        durability: Durability,
        change: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<Result<()>>,
    ) -> Result<()> {
        let mut connection = self.lock();
        let failed = || self.failed(format!("{action} for flow `{flow}`"));
        // SQLite refuses to change the level inside a transaction, so it is set before each
        // one; every other write of the store runs at whatever level the last one left. (A
        // pragma does its work while it is prepared, and SQLite prepares it again at each run:
        // keeping the statement prepared saves nothing.)
        connection
            .pragma_update(None, "synchronous", durability.as_str())
            .map_err(failed())?;
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(failed())?;
        // Returning early drops `tx`, which rolls it back; the packer then forgets what it
        // learnt inside it.
        let result = match change(&tx) {
            Ok(Ok(())) => tx.commit().map_err(failed()),
            Ok(Err(refusal)) => Err(refusal),
            Err(err) => Err(failed()(err)),
        };
        if result.is_err() {
            self.packer().forget();
        }
        result
    }

    fn select_entries(
        &self,
        flow: &str,
        sql: &str,
        keys: Option<&[String]>,
        action: &str,
    ) -> Result<Vec<Entry>> {
        let connection = self.lock();
        let mut packer = self.packer();
        let failed = || self.failed(format!("{action} ledger rows of flow `{flow}`"));
        let mut statement = connection.prepare_cached(sql).map_err(failed())?;
        let read = |row: &Row<'_>| entry_from_row(row, &mut packer, &connection);
        let rows = match keys {
            Some(keys) => {
                let keys = serde_json::to_string(keys).expect("a list of strings is JSON");
                statement.query_map(params![flow, keys], read)
            }
            None => statement.query_map(params![flow], read),
        }
        .map_err(failed())?;
        rows.collect::<rusqlite::Result<Vec<Entry>>>()
            .map_err(failed())
    }
}

fn record_outcome(
    tx: &Transaction<'_>,
    packer: &mut Packer,
    (flow, id): (&str, i64),
    outcome: &Outcome,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    match outcome {
        Outcome::Done {
            key,
            target_id,
            target_number,
            hash,
        } => {
            // A `None` id, number or hash (e.g. a lookup that found the bill by number only)
            // keeps what an earlier confirmation recorded. The schema drops the kept source.
            // The key was marked in flight, so its row is updated in place (one search of the
            // ledger where the upsert below makes two); a key without a row gets one.
            let values = params![
                id,
                key,
                hash.as_deref().map(Hash),
                target_id,
                number_as_stored(key, target_number.as_deref()),
                Nanos(now)
            ];
            let changed = tx
                .prepare_cached(
                    "UPDATE ledger SET
                         status = 'done',
                         hash = COALESCE(?3, hash),
                         target_id = COALESCE(?4, target_id),
                         target_number = COALESCE(?5, target_number),
                         last_error = NULL,
                         error_field = NULL,
                         updated = ?6,
                         done_at = COALESCE(done_at, ?6)
                     WHERE flow_id = ?1 AND key = ?2",
                )?
                .execute(values)?;
            if changed == 1 {
                return Ok(());
            }
            tx.prepare_cached(
                "INSERT INTO ledger (flow_id, key, status, hash, target_id, target_number,
                                     first_seen, updated, done_at)
                 VALUES (?1, ?2, 'done', ?3, ?4, ?5, ?6, ?6, ?6)
                 ON CONFLICT (flow_id, key) DO UPDATE SET
                     status = 'done',
                     hash = COALESCE(excluded.hash, ledger.hash),
                     target_id = COALESCE(excluded.target_id, ledger.target_id),
                     target_number = COALESCE(excluded.target_number, ledger.target_number),
                     last_error = NULL,
                     error_field = NULL,
                     updated = excluded.updated,
                     done_at = COALESCE(ledger.done_at, excluded.done_at)",
            )?
            .execute(values)?;
        }
        Outcome::Failed {
            key,
            message,
            field,
            hash,
            source,
            modified,
        } => {
            // A failure reported for a key already done (e.g. a resend after a timeout that
            // the target rejects as a duplicate) changes nothing: the key is written.
            tx.prepare_cached(
                "INSERT INTO ledger (flow_id, key, status, hash, last_error, error_field, modified,
                                     first_seen, updated)
                 VALUES (?1, ?2, 'failed', ?3, ?4, ?5, ?6, ?7, ?7)
                 ON CONFLICT (flow_id, key) DO UPDATE SET
                     status = 'failed',
                     hash = COALESCE(excluded.hash, ledger.hash),
                     last_error = excluded.last_error,
                     error_field = excluded.error_field,
                     modified = COALESCE(excluded.modified, ledger.modified),
                     updated = excluded.updated
                 WHERE ledger.done_at IS NULL",
            )?
            .execute(params![
                id,
                key,
                hash.as_deref().map(Hash),
                cut_text(message, MAX_RECORD_TEXT),
                field,
                modified,
                Nanos(now)
            ])?;
            if let Some(source) = source {
                keep_given_source(tx, packer, flow, key, source)?;
            }
        }
        Outcome::Conflict {
            key,
            message,
            hash,
            source,
            modified,
        } => {
            // On a written key the hash stays the one of the written content, so the next run
            // still compares the source against what the target has.
            tx.prepare_cached(
                "INSERT INTO ledger (flow_id, key, status, hash, last_error, modified, first_seen,
                                     updated)
                 VALUES (?1, ?2, 'conflict', ?3, ?4, ?5, ?6, ?6)
                 ON CONFLICT (flow_id, key) DO UPDATE SET
                     status = 'conflict',
                     hash = CASE WHEN ledger.done_at IS NULL
                                 THEN COALESCE(excluded.hash, ledger.hash)
                                 ELSE ledger.hash END,
                     last_error = excluded.last_error,
                     error_field = NULL,
                     modified = COALESCE(excluded.modified, ledger.modified),
                     updated = excluded.updated",
            )?
            .execute(params![
                id,
                key,
                hash.as_deref().map(Hash),
                message,
                modified,
                Nanos(now)
            ])?;
            if let Some(source) = source {
                keep_given_source(tx, packer, flow, key, source)?;
            }
        }
        Outcome::Released { key } => {
            // A first attempt disappears, as if never sent, and is read again from the source.
            // A key parked before (it has a last error) would not be read again once the
            // cursor passed it, so it goes back to failed and `retry` still finds it.
            tx.prepare_cached(
                "DELETE FROM ledger
                 WHERE flow_id = ?1 AND key = ?2 AND status = 'in_flight'
                   AND done_at IS NULL AND last_error IS NULL",
            )?
            .execute(params![id, key])?;
            tx.prepare_cached(
                "UPDATE ledger SET status = 'failed', updated = ?3
                 WHERE flow_id = ?1 AND key = ?2 AND status = 'in_flight' AND done_at IS NULL",
            )?
            .execute(params![id, key, Nanos(now)])?;
        }
    }
    Ok(())
}

/// The number `flows` gives `flow`, given one now (in the caller's transaction) if it has
/// none yet: what the statements run for each record bind where the ledger names its flow.
/// The other statements look the number up by name themselves.
fn flow_id(tx: &Transaction<'_>, flow: &str) -> rusqlite::Result<i64> {
    let known = tx
        .prepare_cached("SELECT id FROM flows WHERE name = ?1")?
        .query_row([flow], |row| row.get(0))
        .optional()?;
    match known {
        Some(id) => Ok(id),
        None => {
            tx.prepare_cached("INSERT INTO flows (name) VALUES (?1)")?
                .execute([flow])?;
            Ok(tx.last_insert_rowid())
        }
    }
}

/// Keep (or replace) the source of a key that is not done; a done key keeps none, so a late
/// failure report for a written key stores nothing. A key not done that has no row here has
/// its kept row's source (which, replaced later, first leaves its content here: see
/// `kept::keep_packed`).
fn keep_source(
    tx: &Transaction<'_>,
    flow: &str,
    key: &str,
    packed: &Packed,
) -> rusqlite::Result<()> {
    put_source(
        tx,
        "INSERT INTO sources (flow, key, dictionary, packed)
         SELECT ?1, ?2, ?3, ?4
         WHERE EXISTS (SELECT 1 FROM ledger
                       WHERE flow_id = (SELECT id FROM flows WHERE name = ?1) AND key = ?2
                         AND status <> 'done')
         ON CONFLICT (flow, key) DO UPDATE SET
             source = NULL, dictionary = excluded.dictionary, packed = excluded.packed",
        (flow, key, packed),
    )
}

/// Mark `records` in flight with their documents `packed` (by position): see
/// [`Store::mark_in_flight`]. The inner error refuses a key already written.
fn mark_packed(
    tx: &Transaction<'_>,
    (flow, id): (&str, i64),
    records: &[Pending],
    packed: &[Packed],
    now: DateTime<Utc>,
) -> rusqlite::Result<Result<()>> {
    // A new key (the usual case) costs two statements: its kept row, and its ledger row
    // naming it; its source is then the kept one (a flow that keeps no records writes the
    // source in `sources` instead). A key with a row is seen by the second inserting nothing.
    // (One upsert `RETURNING` the kept row did both, but SQLite buffers what `RETURNING`
    // returns in a temporary table, opened for every row.)
    let mut existing = tx
        .prepare_cached("SELECT done_at IS NOT NULL FROM ledger WHERE flow_id = ?1 AND key = ?2")?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO ledger (flow_id, key, status, hash, attempts, modified, first_seen, updated,
                             kept)
         VALUES (?1, ?2, 'in_flight', ?3, 1, ?4, ?5, ?5, ?6)
         ON CONFLICT (flow_id, key) DO NOTHING",
    )?;
    let mut again = tx.prepare_cached(
        "UPDATE ledger SET status = 'in_flight', hash = ?3, attempts = attempts + 1,
                           modified = ?4, updated = ?5
         WHERE flow_id = ?1 AND key = ?2 AND done_at IS NULL",
    )?;
    let mut insert_kept =
        tx.prepare_cached("INSERT INTO kept (dictionary, packed) VALUES (?1, ?2)")?;
    let mut drop_kept = tx.prepare_cached("DELETE FROM kept WHERE id = ?1")?;
    for (record, packed) in records.iter().zip(packed) {
        // The source to resend is the kept one when the flow keeps records: packed once,
        // stored once.
        let hash = Hash(&record.hash);
        let kept = match record.target {
            Some(_) => Some(insert_kept.insert(params![packed.dictionary, packed.bytes])?),
            None => None,
        };
        let inserted = insert.execute(params![
            id,
            record.key,
            hash,
            record.modified,
            Nanos(now),
            kept
        ])? == 1;
        if !inserted {
            // The key has a row: unless it is written, it is marked again, and its kept row,
            // if it has one, replaced in place.
            if let Some(kept_id) = kept {
                drop_kept.execute([kept_id])?;
            }
            let done: bool = existing.query_row(params![id, record.key], |row| row.get(0))?;
            if done {
                return Ok(Err(Error::new(
                    ErrorKind::State,
                    format!(
                        "record `{}` of flow `{flow}` is already in the target; \
                         refusing to mark it in flight again",
                        record.key
                    ),
                )));
            }
            again.execute(params![id, record.key, hash, record.modified, Nanos(now)])?;
            if record.target.is_some() {
                // The kept row is the key's source from now on.
                kept::keep_packed(tx, flow, &record.key, packed)?;
                tx.prepare_cached("DELETE FROM sources WHERE flow = ?1 AND key = ?2")?
                    .execute(params![flow, record.key])?;
            }
        }
        if record.target.is_none() {
            mark_source(tx, flow, &record.key, packed)?;
        }
    }
    Ok(Ok(()))
}

/// Keep the source of a key just marked in flight that keeps no record, as [`keep_source`]
/// does without asking whether the key is done: it was just marked in flight, so it is not.
fn mark_source(
    tx: &Transaction<'_>,
    flow: &str,
    key: &str,
    packed: &Packed,
) -> rusqlite::Result<()> {
    put_source(
        tx,
        "INSERT INTO sources (flow, key, dictionary, packed) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (flow, key) DO UPDATE SET
             source = NULL, dictionary = excluded.dictionary, packed = excluded.packed",
        (flow, key, packed),
    )
}

/// Run one of the statements above for `(flow, key, packed)`.
fn put_source(
    tx: &Transaction<'_>,
    sql: &str,
    (flow, key, packed): (&str, &str, &Packed),
) -> rusqlite::Result<()> {
    tx.prepare_cached(sql)?
        .execute(params![flow, key, packed.dictionary, packed.bytes])?;
    Ok(())
}

/// Keep `source` as the source of a key that is not done: packed on its own, unless the key's
/// source is its kept row's and that is this very record (a refused write reports the source
/// it sent), which stays stored once.
fn keep_given_source(
    tx: &Transaction<'_>,
    packer: &mut Packer,
    flow: &str,
    key: &str,
    source: &serde_json::Value,
) -> rusqlite::Result<()> {
    let shared = tx
        .prepare_cached(
            "SELECT 1 FROM ledger AS l
             WHERE l.flow_id = (SELECT id FROM flows WHERE name = ?1) AND l.key = ?2
               AND l.done_at IS NULL AND l.kept IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM sources AS s WHERE s.flow = ?1 AND s.key = ?2)",
        )?
        .exists(params![flow, key])?;
    if shared
        && kept::kept_in(tx, packer, flow, key)
            .ok()
            .flatten()
            .is_some_and(|kept| kept.source == *source)
    {
        return Ok(());
    }
    keep_source(tx, flow, key, &packer.pack(tx, flow, source.into(), None)?)
}

/// An [`Entry`] from a row of [`ENTRY_COLUMNS`].
pub(super) fn entry_from_row(
    row: &Row<'_>,
    packer: &mut Packer,
    db: &Connection,
) -> rusqlite::Result<Entry> {
    let source = match row.get::<_, Option<Vec<u8>>>("source_packed")? {
        Some(packed) => {
            let dictionary = row.get("source_dictionary")?;
            Some(packer.unpack(db, dictionary, &packed)?.source)
        }
        None => row.get::<_, Option<JsonText>>("source")?.map(|json| json.0),
    };
    Ok(Entry {
        key: row.get("key")?,
        status: row.get("status")?,
        hash: row.get::<_, Option<HashText>>("hash")?.map(|hash| hash.0),
        target_id: row.get("target_id")?,
        target_number: row.get("target_number")?,
        attempts: row.get("attempts")?,
        last_error: row.get("last_error")?,
        error_field: row.get("error_field")?,
        source,
        modified: row.get("modified")?,
        first_seen: row.get::<_, Nanos>("first_seen")?.0,
        updated: row.get::<_, Nanos>("updated")?.0,
        done_at: row.get::<_, Option<Nanos>>("done_at")?.map(|time| time.0),
    })
}

/// A target number as the ledger stores it: `''` when it is the record's key (the usual case
/// where the target is given the key as the document's number: 12 bytes a row less for the
/// bundled flow), else as it is. An empty number is no number: `None`, which keeps the one the
/// ledger has. [`ENTRY_COLUMNS`] reads `''` back as the key.
pub(super) fn number_as_stored<'a>(key: &str, number: Option<&'a str>) -> Option<&'a str> {
    match number {
        Some("") | None => None,
        Some(number) if number == key => Some(""),
        Some(number) => Some(number),
    }
}

/// A content hash as the ledger stores it: its bytes when it is lowercase hex (as the engine
/// writes them, half the size), else its text, so that any text reads back as it was.
pub(super) struct Hash<'a>(pub &'a str);

impl Hash<'_> {
    fn bytes(&self) -> Option<Vec<u8>> {
        let text = self.0.as_bytes();
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        if text.is_empty() || !text.len().is_multiple_of(2) {
            return None;
        }
        text.chunks(2)
            .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
            .collect()
    }
}

impl ToSql for Hash<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.bytes() {
            Some(bytes) => ToSqlOutput::from(bytes),
            None => ToSqlOutput::from(self.0),
        })
    }
}

/// A content hash read back: lowercase hex for bytes, text as it was.
pub(super) struct HashText(pub String);

impl FromSql for HashText {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<HashText> {
        match value {
            ValueRef::Blob(bytes) => Ok(HashText(
                bytes.iter().map(|byte| format!("{byte:02x}")).collect(),
            )),
            other => other.as_str().map(|text| HashText(text.to_string())),
        }
    }
}

/// A source record read back from the JSON text of a row written before schema version 4.
struct JsonText(serde_json::Value);

impl FromSql for JsonText {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<JsonText> {
        serde_json::from_str(value.as_str()?)
            .map(JsonText)
            .map_err(|err| FromSqlError::Other(Box::new(err)))
    }
}
