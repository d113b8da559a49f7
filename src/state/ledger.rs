//! The ledger: one row per (flow, record key), read and written by [`Store`].
//!
//! Writes of several keys run in one IMMEDIATE transaction: all of them land or none does,
//! and a second process waits for the write lock up front instead of failing halfway. The
//! rule that a done key is never downgraded is kept twice: by the `WHERE` clauses here, so the
//! intent reads in the code, and by the schema's triggers, so no other path can break it.
//! A key's source is kept in `sources` beside its row, written here with the row and dropped
//! by the schema's triggers when the key is done or its row goes away.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{Row, ToSql, Transaction, TransactionBehavior, params};

use crate::error::{Error, ErrorKind, Result};
use crate::state::{Durability, Entry, Outcome, Pending, Status, Store, Time, kept};

/// The columns of an [`Entry`], read from `ledger AS l` and its kept source, `sources AS s`.
pub(super) const ENTRY_COLUMNS: &str = "l.key, l.status, l.hash, l.target_id, l.target_number, \
     l.attempts, l.last_error, l.error_field, s.source, l.modified, l.first_seen, l.updated, \
     l.done_at";

/// The ledger joined with the sources it still keeps.
pub(super) const ENTRY_TABLES: &str =
    "ledger AS l LEFT JOIN sources AS s ON s.flow = l.flow AND s.key = l.key";

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
                 WHERE l.flow = ?1 AND l.key IN (SELECT value FROM json_each(?2))"
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
                 WHERE l.flow = ?1 AND l.status <> 'done' AND l.status = 'in_flight'
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
                 WHERE l.flow = ?1 AND l.status <> 'done' AND l.status IN ('failed', 'conflict')
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
        // `updated` is RFC 3339 with nanoseconds in UTC (`Time`): as text it sorts by time.
        let mut statement = connection
            .prepare_cached(
                "SELECT key, last_error FROM ledger
                 WHERE flow = ?1 AND status IN ('failed', 'conflict') AND updated >= ?2
                 ORDER BY first_seen, key LIMIT ?3",
            )
            .map_err(failed())?;
        let rows = statement
            .query_map(params![flow, Time(since), limit], |row| {
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
                 WHERE l.flow = ?1 AND instr(l.key, (SELECT value FROM json_each(?2))) > 0
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
            .prepare_cached("SELECT status, COUNT(*) FROM ledger WHERE flow = ?1 GROUP BY status")
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
            let mut statement = tx.prepare_cached(
                "INSERT INTO ledger (flow, key, status, hash, attempts, modified, first_seen,
                                     updated)
                 VALUES (?1, ?2, 'in_flight', ?3, 1, ?4, ?5, ?5)
                 ON CONFLICT (flow, key) DO UPDATE SET
                     status = 'in_flight',
                     hash = excluded.hash,
                     attempts = ledger.attempts + 1,
                     modified = excluded.modified,
                     updated = excluded.updated
                 WHERE ledger.done_at IS NULL",
            )?;
            for record in records {
                let changed = statement.execute(params![
                    flow,
                    record.key,
                    record.hash,
                    record.modified,
                    Time(now),
                ])?;
                if changed == 0 {
                    return Ok(Err(Error::new(
                        ErrorKind::State,
                        format!(
                            "record `{}` of flow `{flow}` is already in the target; \
                             refusing to mark it in flight again",
                            record.key
                        ),
                    )));
                }
                keep_source(tx, flow, &record.key, &record.source)?;
                if let Some(target) = &record.target {
                    let packed = kept::pack(&record.source, Some(target));
                    kept::keep_packed(tx, flow, &record.key, &packed)?;
                }
            }
            Ok(Ok(()))
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
            for outcome in outcomes {
                record_outcome(tx, flow, outcome, now)?;
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
        // one; every other write of the store runs at whatever level the last one left.
        connection
            .pragma_update(None, "synchronous", durability.as_str())
            .map_err(failed())?;
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(failed())?;
        // Returning early drops `tx`, which rolls it back.
        change(&tx).map_err(failed())??;
        tx.commit().map_err(failed())
    }

    fn select_entries(
        &self,
        flow: &str,
        sql: &str,
        keys: Option<&[String]>,
        action: &str,
    ) -> Result<Vec<Entry>> {
        let connection = self.lock();
        let failed = || self.failed(format!("{action} ledger rows of flow `{flow}`"));
        let mut statement = connection.prepare_cached(sql).map_err(failed())?;
        let rows = match keys {
            Some(keys) => {
                let keys = serde_json::to_string(keys).expect("a list of strings is JSON");
                statement.query_map(params![flow, keys], entry_from_row)
            }
            None => statement.query_map(params![flow], entry_from_row),
        }
        .map_err(failed())?;
        rows.collect::<rusqlite::Result<Vec<Entry>>>()
            .map_err(failed())
    }
}

fn record_outcome(
    tx: &Transaction<'_>,
    flow: &str,
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
            tx.prepare_cached(
                "INSERT INTO ledger (flow, key, status, hash, target_id, target_number,
                                     first_seen, updated, done_at)
                 VALUES (?1, ?2, 'done', ?3, ?4, ?5, ?6, ?6, ?6)
                 ON CONFLICT (flow, key) DO UPDATE SET
                     status = 'done',
                     hash = COALESCE(excluded.hash, ledger.hash),
                     target_id = COALESCE(excluded.target_id, ledger.target_id),
                     target_number = COALESCE(excluded.target_number, ledger.target_number),
                     last_error = NULL,
                     error_field = NULL,
                     updated = excluded.updated,
                     done_at = COALESCE(ledger.done_at, excluded.done_at)",
            )?
            .execute(params![
                flow,
                key,
                hash,
                target_id,
                target_number,
                Time(now)
            ])?;
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
                "INSERT INTO ledger (flow, key, status, hash, last_error, error_field, modified,
                                     first_seen, updated)
                 VALUES (?1, ?2, 'failed', ?3, ?4, ?5, ?6, ?7, ?7)
                 ON CONFLICT (flow, key) DO UPDATE SET
                     status = 'failed',
                     hash = COALESCE(excluded.hash, ledger.hash),
                     last_error = excluded.last_error,
                     error_field = excluded.error_field,
                     modified = COALESCE(excluded.modified, ledger.modified),
                     updated = excluded.updated
                 WHERE ledger.done_at IS NULL",
            )?
            .execute(params![
                flow,
                key,
                hash,
                message,
                field,
                modified,
                Time(now)
            ])?;
            if let Some(source) = source {
                keep_source(tx, flow, key, source)?;
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
                "INSERT INTO ledger (flow, key, status, hash, last_error, modified, first_seen,
                                     updated)
                 VALUES (?1, ?2, 'conflict', ?3, ?4, ?5, ?6, ?6)
                 ON CONFLICT (flow, key) DO UPDATE SET
                     status = 'conflict',
                     hash = CASE WHEN ledger.done_at IS NULL
                                 THEN COALESCE(excluded.hash, ledger.hash)
                                 ELSE ledger.hash END,
                     last_error = excluded.last_error,
                     error_field = NULL,
                     modified = COALESCE(excluded.modified, ledger.modified),
                     updated = excluded.updated",
            )?
            .execute(params![flow, key, hash, message, modified, Time(now)])?;
            if let Some(source) = source {
                keep_source(tx, flow, key, source)?;
            }
        }
        Outcome::Released { key } => {
            // A first attempt disappears, as if never sent, and is read again from the source.
            // A key parked before (it has a last error) would not be read again once the
            // cursor passed it, so it goes back to failed and `retry` still finds it.
            tx.prepare_cached(
                "DELETE FROM ledger
                 WHERE flow = ?1 AND key = ?2 AND status = 'in_flight'
                   AND done_at IS NULL AND last_error IS NULL",
            )?
            .execute(params![flow, key])?;
            tx.prepare_cached(
                "UPDATE ledger SET status = 'failed', updated = ?3
                 WHERE flow = ?1 AND key = ?2 AND status = 'in_flight' AND done_at IS NULL",
            )?
            .execute(params![flow, key, Time(now)])?;
        }
    }
    Ok(())
}

/// Keep (or replace) the source of a key that is not done; a done key keeps none, so a late
/// failure report for a written key stores nothing.
fn keep_source(
    tx: &Transaction<'_>,
    flow: &str,
    key: &str,
    source: &serde_json::Value,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO sources (flow, key, source)
         SELECT ?1, ?2, ?3
         WHERE EXISTS (SELECT 1 FROM ledger WHERE flow = ?1 AND key = ?2 AND status <> 'done')
         ON CONFLICT (flow, key) DO UPDATE SET source = excluded.source",
    )?
    .execute(params![flow, key, Json(source)])?;
    Ok(())
}

pub(super) fn entry_from_row(row: &Row<'_>) -> rusqlite::Result<Entry> {
    Ok(Entry {
        key: row.get("key")?,
        status: row.get("status")?,
        hash: row.get("hash")?,
        target_id: row.get("target_id")?,
        target_number: row.get("target_number")?,
        attempts: row.get("attempts")?,
        last_error: row.get("last_error")?,
        error_field: row.get("error_field")?,
        source: row.get::<_, Option<JsonText>>("source")?.map(|json| json.0),
        modified: row.get("modified")?,
        first_seen: row.get::<_, Time>("first_seen")?.0,
        updated: row.get::<_, Time>("updated")?.0,
        done_at: row.get::<_, Option<Time>>("done_at")?.map(|time| time.0),
    })
}

/// A source record written as JSON text, which `sqlite3` users can query with `->>`.
struct Json<'a>(&'a serde_json::Value);

impl ToSql for Json<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        serde_json::to_string(self.0)
            .map(ToSqlOutput::from)
            .map_err(|err| rusqlite::Error::ToSqlConversionFailure(Box::new(err)))
    }
}

/// A source record read back from JSON text.
struct JsonText(serde_json::Value);

impl FromSql for JsonText {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<JsonText> {
        serde_json::from_str(value.as_str()?)
            .map(JsonText)
            .map_err(|err| FromSqlError::Other(Box::new(err)))
    }
}
