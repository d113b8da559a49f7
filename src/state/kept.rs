//! What the ledger keeps of each key's content (schema version 3): the newest source record
//! read and the mapped record last sent, so that `engine resend` can map the source again with
//! the flow as it is now and show what would change, without reading the source API.
//!
//! Both travel as one document, `{"source": …, "sent": …}`, packed by `packing` (the mapped
//! record repeats much of its source, so one stream compresses them better than two, and the
//! checksum catches a damaged row). Unlike `sources`, which lives only while a key is in flight
//! or parked, a kept row stays for as long as its ledger row, which names it (`ledger.kept`).
//! Rows are written here beside the ledger's, in the same transactions.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::Value as Json;

use crate::error::Result;
use crate::state::packing::{Doc, Packed, Packer};
use crate::state::{Durability, Entry, Nanos, Source, Store};

/// A key's kept content.
#[derive(Debug, Clone, PartialEq)]
pub struct Kept {
    /// The newest version of the source record read.
    pub source: Json,
    /// The mapped record last sent (what the target holds once the key is done); `None` when
    /// the key was never sent since the ledger began keeping it.
    pub sent: Option<Json>,
}

/// One key's newest source record, to keep beside its ledger row.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub key: String,
    pub source: Source,
    /// The mapped record the target holds, when known to be this one (the record was read
    /// again unchanged); `None` keeps what was kept.
    pub sent: Option<Json>,
}

/// Keep `packed` for a key that has a ledger row (a key without one keeps nothing): in the
/// key's kept row, or in a new one the ledger row then names.
pub(crate) fn keep_packed(
    tx: &Transaction<'_>,
    flow: &str,
    key: &str,
    packed: &Packed,
) -> rusqlite::Result<()> {
    let row: Option<Option<i64>> = tx
        .prepare_cached(
            "SELECT kept FROM ledger WHERE flow_id = (SELECT id FROM flows WHERE name = ?1) AND key = ?2",
        )?
        .query_row(params![flow, key], |row| row.get(0))
        .optional()?;
    let Some(kept) = row else {
        return Ok(());
    };
    if let Some(id) = kept {
        // A key not yet written whose source is this kept row's (it keeps none of its own)
        // gets its own copy before the row changes. (A row packed before schema 4, without a
        // dictionary, was never a key's source.)
        tx.prepare_cached(
            "INSERT INTO sources (flow, key, dictionary, packed)
             SELECT ?1, ?2, k.dictionary, k.packed FROM kept AS k
             WHERE k.id = ?3 AND k.dictionary IS NOT NULL
                AND EXISTS (SELECT 1 FROM ledger
                            WHERE flow_id = (SELECT id FROM flows WHERE name = ?1)
                              AND key = ?2 AND done_at IS NULL)
                AND NOT EXISTS (SELECT 1 FROM sources WHERE flow = ?1 AND key = ?2)",
        )?
        .execute(params![flow, key, id])?;
        let changed = tx
            .prepare_cached("UPDATE kept SET dictionary = ?2, packed = ?3 WHERE id = ?1")?
            .execute(params![id, packed.dictionary, packed.bytes])?;
        if changed == 1 {
            return Ok(());
        }
    }
    tx.prepare_cached("INSERT INTO kept (dictionary, packed) VALUES (?1, ?2)")?
        .execute(params![packed.dictionary, packed.bytes])?;
    tx.prepare_cached(
        "UPDATE ledger SET kept = ?3 WHERE flow_id = (SELECT id FROM flows WHERE name = ?1) AND key = ?2",
    )?
        .execute(params![flow, key, tx.last_insert_rowid()])?;
    Ok(())
}

/// The kept content of one key, read with the connection of `db`.
pub(crate) fn kept_in(
    db: &Connection,
    packer: &mut Packer,
    flow: &str,
    key: &str,
) -> rusqlite::Result<Option<Kept>> {
    let row: Option<(Option<i64>, Vec<u8>)> = db
        .prepare_cached(
            "SELECT k.dictionary, k.packed FROM ledger AS l JOIN kept AS k ON k.id = l.kept
             WHERE l.flow_id = (SELECT id FROM flows WHERE name = ?1) AND l.key = ?2",
        )?
        .query_row(params![flow, key], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    row.map(|(dictionary, packed)| packer.unpack(db, dictionary, &packed))
        .transpose()
}

/// Keep `source` as the newest source of `key`, with `sent` if given, else the one kept.
pub(crate) fn keep_source_in(
    tx: &Transaction<'_>,
    packer: &mut Packer,
    flow: &str,
    key: &str,
    source: Doc<'_>,
    sent: Option<&Json>,
) -> rusqlite::Result<()> {
    let packed = match sent {
        Some(sent) => packer.pack(tx, flow, source, Some(sent.into()))?,
        None => {
            // A damaged kept copy (it only serves `engine resend`'s diff) is replaced rather
            // than stop every run that reads the key again.
            let earlier = kept_in(tx, packer, flow, key)
                .ok()
                .flatten()
                .and_then(|kept| kept.sent);
            packer.pack(tx, flow, source, earlier.as_ref().map(Doc::from))?
        }
    };
    keep_packed(tx, flow, key, &packed)
}

/// Which written keys [`Store::written`] lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WrittenFilter {
    /// Only these keys (none: every written key).
    pub keys: Vec<String>,
    /// Only keys first written at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Only keys first written before this instant.
    pub until: Option<DateTime<Utc>>,
}

impl Store {
    /// Keep the newest source of records read again (and the mapped record, when the target
    /// holds that very content), in one transaction.
    pub fn keep_seen(&self, flow: &str, seen: &[Seen]) -> Result<()> {
        if seen.is_empty() {
            return Ok(());
        }
        self.write(flow, "keep source records", Durability::Normal, |tx| {
            let mut packer = self.packer();
            for record in seen {
                keep_source_in(
                    tx,
                    &mut packer,
                    flow,
                    &record.key,
                    (&record.source).into(),
                    record.sent.as_ref(),
                )?;
            }
            Ok(Ok(()))
        })
    }

    /// The kept content of `key`.
    pub fn kept(&self, flow: &str, key: &str) -> Result<Option<Kept>> {
        let connection = self.lock();
        kept_in(&connection, &mut self.packer(), flow, key)
            .map_err(self.failed(format!("read the kept record `{key}` of flow `{flow}`")))
    }

    /// The keys the target confirmed (done, or done and parked since), oldest first, each
    /// with its kept content: what `engine resend` maps again. A damaged kept copy counts as
    /// none (the next run reading the key keeps it anew), so one bad row blocks no resend.
    pub fn written(
        &self,
        flow: &str,
        filter: &WrittenFilter,
    ) -> Result<Vec<(Entry, Option<Kept>)>> {
        let keys = serde_json::to_string(&filter.keys).expect("a list of strings is JSON");
        let connection = self.lock();
        let mut packer = self.packer();
        let failed = || self.failed(format!("list the written records of flow `{flow}`"));
        let mut statement = connection
            .prepare_cached(&format!(
                "SELECT {}, k.dictionary, k.packed FROM {} LEFT JOIN kept AS k ON k.id = l.kept
                 WHERE l.flow_id = (SELECT id FROM flows WHERE name = ?1)
                   AND l.done_at IS NOT NULL
                   AND (json_array_length(?2) = 0 OR l.key IN (SELECT value FROM json_each(?2)))
                   AND (?3 IS NULL OR l.done_at >= ?3) AND (?4 IS NULL OR l.done_at < ?4)
                 ORDER BY l.done_at, l.key",
                super::ledger::ENTRY_COLUMNS,
                super::ledger::ENTRY_TABLES
            ))
            .map_err(failed())?;
        let rows = statement
            .query_map(
                params![flow, keys, filter.since.map(Nanos), filter.until.map(Nanos)],
                |row| {
                    let entry = super::ledger::entry_from_row(row, &mut packer, &connection)?;
                    let kept = row.get::<_, Option<Vec<u8>>>("packed")?.and_then(|bytes| {
                        // A damaged kept copy is no kept copy: resend skips it.
                        let dictionary = row.get("dictionary").ok()?;
                        packer.unpack(&connection, dictionary, &bytes).ok()
                    });
                    Ok((entry, kept))
                },
            )
            .map_err(failed())?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(failed())
    }
}
