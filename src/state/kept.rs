//! What the ledger keeps of each key's content (schema version 3): the newest source record
//! read and the mapped record last sent, so that `engine resend` can map the source again with
//! the flow as it is now and show what would change, without reading the source API.
//!
//! Both travel as one document, `{"source": …, "sent": …}`, compressed with zlib (the mapped
//! record repeats much of its source, so one stream compresses them better than two, and the
//! checksum catches a damaged row). Unlike `sources`, which lives only while a key is in flight
//! or parked, a kept row stays for as long as its ledger row. Rows are written here beside the
//! ledger's, in the same transactions.

use std::cell::RefCell;
use std::io::Read;

use chrono::{DateTime, Utc};
use flate2::read::ZlibDecoder;
use flate2::{Compress, Compression, FlushCompress, Status};
use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;
use serde_json::Value as Json;

use crate::error::Result;
use crate::state::{Durability, Entry, Store, Time};

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
    pub source: Json,
    /// The mapped record the target holds, when known to be this one (the record was read
    /// again unchanged); `None` keeps what was kept.
    pub sent: Option<Json>,
}

thread_local! {
    /// One compressor per thread, reset between documents: a new one zeroes tables of several
    /// hundred KB, which made packing most of a run's CPU.
    static COMPRESSOR: RefCell<Compress> = RefCell::new(Compress::new(Compression::fast(), true));
}

/// `source` and `sent` as one compressed (zlib) document.
pub(crate) fn pack(source: &Json, sent: Option<&Json>) -> Vec<u8> {
    #[derive(Serialize)]
    struct Document<'a> {
        source: &'a Json,
        sent: Option<&'a Json>,
    }
    // Writing to a Vec cannot fail.
    let text = serde_json::to_vec(&Document { source, sent }).expect("JSON into memory");
    COMPRESSOR.with(|compressor| {
        let mut compressor = compressor.borrow_mut();
        compressor.reset();
        let mut out = Vec::with_capacity(text.len() / 2 + 64);
        loop {
            let read = compressor.total_in() as usize;
            let status = compressor
                .compress_vec(&text[read..], &mut out, FlushCompress::Finish)
                .expect("compressing into memory");
            if status == Status::StreamEnd {
                return out;
            }
            out.reserve(out.capacity().max(1024));
        }
    })
}

/// The document [`pack`] made.
pub(crate) fn unpack(bytes: &[u8]) -> rusqlite::Result<Kept> {
    let mut text = Vec::new();
    let bad = |err: Box<dyn std::error::Error + Send + Sync>| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, err)
    };
    ZlibDecoder::new(bytes)
        .read_to_end(&mut text)
        .map_err(|err| bad(Box::new(err)))?;
    let mut document: Json = serde_json::from_slice(&text).map_err(|err| bad(Box::new(err)))?;
    let sent = document
        .get_mut("sent")
        .map(Json::take)
        .filter(|sent| !sent.is_null());
    let source = document
        .get_mut("source")
        .map(Json::take)
        .unwrap_or_default();
    Ok(Kept { source, sent })
}

/// Keep `packed` for a key that has a ledger row (a key without one keeps nothing).
pub(crate) fn keep_packed(
    tx: &Transaction<'_>,
    flow: &str,
    key: &str,
    packed: &[u8],
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO kept (flow, key, packed)
         SELECT ?1, ?2, ?3
         WHERE EXISTS (SELECT 1 FROM ledger WHERE flow = ?1 AND key = ?2)
         ON CONFLICT (flow, key) DO UPDATE SET packed = excluded.packed",
    )?
    .execute(params![flow, key, packed])?;
    Ok(())
}

/// The packed content kept for one key, read within a transaction.
fn packed_in(tx: &Transaction<'_>, flow: &str, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    tx.prepare_cached("SELECT packed FROM kept WHERE flow = ?1 AND key = ?2")?
        .query_row(params![flow, key], |row| row.get::<_, Vec<u8>>(0))
        .optional()
}

/// Keep `source` as the newest source of `key`, with `sent` if given, else the one kept.
pub(crate) fn keep_source_in(
    tx: &Transaction<'_>,
    flow: &str,
    key: &str,
    source: &Json,
    sent: Option<&Json>,
) -> rusqlite::Result<()> {
    let packed = match sent {
        Some(sent) => pack(source, Some(sent)),
        None => {
            // A damaged kept copy (it only serves `engine resend`'s diff) is replaced rather
            // than stop every run that reads the key again.
            let earlier = packed_in(tx, flow, key)?
                .and_then(|bytes| unpack(&bytes).ok())
                .and_then(|kept| kept.sent);
            pack(source, earlier.as_ref())
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
            for record in seen {
                keep_source_in(tx, flow, &record.key, &record.source, record.sent.as_ref())?;
            }
            Ok(Ok(()))
        })
    }

    /// The kept content of `key`.
    pub fn kept(&self, flow: &str, key: &str) -> Result<Option<Kept>> {
        let connection = self.lock();
        connection
            .prepare_cached("SELECT packed FROM kept WHERE flow = ?1 AND key = ?2")
            .and_then(|mut statement| {
                statement
                    .query_row(params![flow, key], |row| row.get::<_, Vec<u8>>(0))
                    .optional()
            })
            .and_then(|bytes| bytes.map(|bytes| unpack(&bytes)).transpose())
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
        let failed = || self.failed(format!("list the written records of flow `{flow}`"));
        let mut statement = connection
            .prepare_cached(&format!(
                "SELECT {}, k.packed FROM {} LEFT JOIN kept AS k ON k.flow = l.flow AND k.key = l.key
                 WHERE l.flow = ?1 AND l.done_at IS NOT NULL
                   AND (json_array_length(?2) = 0 OR l.key IN (SELECT value FROM json_each(?2)))
                   AND (?3 IS NULL OR l.done_at >= ?3) AND (?4 IS NULL OR l.done_at < ?4)
                 ORDER BY l.done_at, l.key",
                super::ledger::ENTRY_COLUMNS,
                super::ledger::ENTRY_TABLES
            ))
            .map_err(failed())?;
        let rows = statement
            .query_map(
                params![flow, keys, filter.since.map(Time), filter.until.map(Time)],
                |row| {
                    let entry = super::ledger::entry_from_row(row)?;
                    let kept = row
                        .get::<_, Option<Vec<u8>>>("packed")?
                        .and_then(|bytes| unpack(&bytes).ok());
                    Ok((entry, kept))
                },
            )
            .map_err(failed())?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(failed())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_packed_document_unpacks_to_what_was_packed() {
        let source = json!({"order_no": "RK1", "memo": "退货", "lines": [{"num": 1}]});
        let sent = json!({"FBillNo": "RK1", "FHeadNote": "退货"});
        let cases = [(source.clone(), Some(sent)), (source, None)];
        for (source, sent) in cases {
            let packed = pack(&source, sent.as_ref());
            assert_eq!(unpack(&packed).unwrap(), Kept { source, sent });
        }
        assert!(unpack(b"not zlib").is_err(), "a damaged row is an error");
    }

    #[test]
    fn a_realistic_record_packs_to_a_fraction_of_its_text() {
        let lines: Vec<Json> = (0..8)
            .map(|i| json!({"spec_no": format!("SKU-{i:04}"), "goods_name": "商品名称（规格）示例", "num": 1, "price": "129.00"}))
            .collect();
        let source = json!({"order_no": "RK0001", "details_list": lines});
        let text = source.to_string().len() * 2;
        let packed = pack(&source, Some(&source)).len();
        assert!(
            packed * 4 < text,
            "{packed} bytes packed for {text} of text"
        );
    }
}
