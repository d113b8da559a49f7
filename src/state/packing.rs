//! How the ledger packs a kept document (schema version 4): `{"source": …, "sent": …}` as one
//! zstd frame, compressed against a dictionary trained on the flow's own documents.
//!
//! Documents of one flow share most of their text (field names, shops, warehouses, SKUs, fixed
//! values), which a document alone cannot exploit: a 4.7 KB record and its bill pack to about
//! 1,700 B alone (zlib), 370 B against a dictionary. Each flow gets its first dictionary once
//! [`SAMPLES`] documents are kept: trained on the newest of them (zstd's `ZDICT`), stored once
//! in `dictionaries`, and the rows packed before it are packed again with it, in the same
//! transaction. A new dictionary is trained only when compression gets poor: when a window of
//! [`WINDOW`] documents packs to more than [`POOR`] times the ratio the dictionary's first
//! window reached. Rows already written keep theirs.
//!
//! Every row names how it was packed (its `dictionary` column): NULL for the zlib documents
//! written before version 4, [`NO_DICTIONARY`] for zstd without one, else the dictionary's id.
//! Dictionaries are never changed or deleted, so every row ever written stays readable. Frames
//! carry zstd's checksum, so a damaged row is an error, never a different document.
//!
//! This module compresses and trains; it reads and writes only `dictionaries` and the packed
//! columns of the rows it packs again. Callers hold the store's connection.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};

use chrono::{SecondsFormat, Utc};
use flate2::read::ZlibDecoder;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value as Json;
use zstd::zstd_safe::{CCtx, CParameter, DCtx, DDict, FrameFormat};

use crate::state::{Kept, Source};

/// The `dictionary` of a row packed with zstd but without a dictionary.
pub(crate) const NO_DICTIONARY: i64 = 0;

/// zstd's level. On the sandbox's orders and their bills (4.7 KB a document), against a
/// dictionary trained on 100 of them: level 1 packs to 388 B, 2 to 412 B, 3 to 372-387 B and 4
/// to 377 B, each in about 8 µs; 5 to 370-374 B in 21 µs (5,000 documents). Level 3 is the
/// smallest of the cheap ones and costs each record 13 µs less than 5; the larger dictionary
/// ([`DICTIONARY_BYTES`]) wins back the bytes 5 saved. (Schema 3's zlib: 1,776 B in 90-110 µs.)
const LEVEL: i32 = 3;

/// How many of a flow's newest kept documents a dictionary is trained on.
const SAMPLES: usize = 200;

/// The largest dictionary: a fifteenth of [`SAMPLES`] documents of the bundled flow. Larger
/// ones (over a tenth of the samples) learn the samples by heart and pack new documents worse.
/// At level 3, against the sandbox's first documents: 100 samples and 32 KB pack to 387 B,
/// 200 and 64 KB to 372 B (trained in 44 ms instead of 30), 500 and 64 KB to 365 B (104 ms).
const DICTIONARY_BYTES: usize = 64 * 1024;

/// How many documents packed with a dictionary make one measure of its ratio.
const WINDOW: usize = 500;

/// A window packing to more than this many times the dictionary's first ratio gets a new one.
const POOR: f64 = 1.5;

/// The four bytes that open a zstd frame. Rows store their frame without them (zstd's
/// magicless format: 4 bytes a row less; schema 8), and get them back to be unpacked; rows
/// packed before still have them. A stored frame starts with its header's first byte, which
/// has the checksum bit (`0x04`) set since every frame carries a checksum, so it never begins
/// as the magic (`0x28`) does.
const MAGIC: [u8; 4] = 0xFD2F_B528_u32.to_le_bytes();

/// The largest document unpacked: a damaged size field must not allocate without bound.
const LARGEST_DOCUMENT: u64 = 256 * 1024 * 1024;

/// A packed document and how it was packed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Packed {
    /// [`NO_DICTIONARY`] or the id of the dictionary in `dictionaries`.
    pub dictionary: i64,
    pub bytes: Vec<u8>,
}

/// A dictionary, digested for compressing and for decompressing.
struct Dictionary {
    id: i64,
    /// A context that compresses with this dictionary (loaded once, with [`DICTIONARY_TABLES`]).
    encoder: Mutex<CCtx<'static>>,
    decoder: DDict<'static>,
}

/// The sizes (log2) of the hash and chain tables of a dictionary's digest. zstd sizes them for
/// inputs of any size (a 64 KB dictionary at level 3 gets a digest of about 470 KB, looked up
/// at random for each position of a document: cache misses made compressing cost twice what
/// it costs in a loop); documents of a few KB lose almost nothing with 2^14 and 2^13 entries
/// (96 KB): the sandbox's orders pack 0.2% larger, about a byte each, and compressing takes a
/// fifth less of a run's CPU.
const DICTIONARY_TABLES: (u32, u32) = (14, 13);

impl Dictionary {
    fn new(id: i64, bytes: &[u8]) -> Dictionary {
        let mut encoder = compressor();
        let (hash, chain) = DICTIONARY_TABLES;
        for parameter in [CParameter::HashLog(hash), CParameter::ChainLog(chain)] {
            encoder
                .set_parameter(parameter)
                .expect("a valid zstd parameter");
        }
        encoder
            .load_dictionary(bytes)
            .expect("a dictionary zstd trained loads");
        Dictionary {
            id,
            encoder: Mutex::new(encoder),
            decoder: DDict::create(bytes),
        }
    }
}

/// A compression context with the ledger's settings.
fn compressor() -> CCtx<'static> {
    let mut compressor = CCtx::create();
    for parameter in [
        CParameter::CompressionLevel(LEVEL),
        CParameter::ChecksumFlag(true),
        CParameter::ContentSizeFlag(true),
        // The row names its dictionary.
        CParameter::DictIdFlag(false),
        // The row says it is a zstd frame: see [`MAGIC`].
        CParameter::Format(FrameFormat::Magicless),
    ] {
        compressor
            .set_parameter(parameter)
            .expect("a valid zstd parameter");
    }
    compressor
}

/// What the packer knows of one flow.
#[derive(Default)]
struct Flow {
    /// The dictionary new documents are packed with.
    current: Option<Arc<Dictionary>>,
    /// The current dictionary's first ratio (packed ÷ raw bytes), once measured.
    baseline: Option<f64>,
    /// Documents of the flow packed without a dictionary (at least).
    without: usize,
    /// Train when `without` reaches this; doubled after a training that could not be made.
    train_at: usize,
    /// The window being measured: raw and packed bytes, documents.
    window: (u64, u64, usize),
    /// The last window packed poorly: train a new dictionary before the next document.
    retrain: bool,
}

/// Packs and unpacks documents; one per store, used while holding its connection.
pub(crate) struct Packer {
    dictionaries: HashMap<i64, Arc<Dictionary>>,
    flows: HashMap<String, Flow>,
    compressor: CCtx<'static>,
    decompressor: DCtx<'static>,
    /// A document's text and its frame, reused from one document to the next: growing a new
    /// buffer to 5 KB for each cost more allocations than the rest of the packing.
    text: Vec<u8>,
    frame: Vec<u8>,
}

impl std::fmt::Debug for Packer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packer")
            .field(
                "dictionaries",
                &self.dictionaries.keys().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// A zstd error as a database conversion error, which is how a bad row surfaces.
fn zstd_error(code: usize) -> rusqlite::Error {
    let name = zstd::zstd_safe::get_error_name(code);
    bad_row(format!("zstd: {name}").into())
}

fn bad_row(err: Box<dyn std::error::Error + Send + Sync>) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, err)
}

/// A record to pack: parsed, or its JSON text (valid JSON: the text an answer was read as, or
/// a mapped record's [`Compact`](crate::record::Compact) text).
#[derive(Debug, Clone, PartialEq)]
pub enum Doc<'a> {
    Json(Cow<'a, Json>),
    Text(&'a str),
}

impl Doc<'_> {
    /// The same document, borrowed.
    pub fn borrowed(&self) -> Doc<'_> {
        match self {
            Doc::Json(json) => Doc::Json(Cow::Borrowed(json)),
            Doc::Text(text) => Doc::Text(text),
        }
    }
}

impl<'a> From<&'a Json> for Doc<'a> {
    fn from(json: &'a Json) -> Doc<'a> {
        Doc::Json(Cow::Borrowed(json))
    }
}

impl From<Json> for Doc<'static> {
    fn from(json: Json) -> Doc<'static> {
        Doc::Json(Cow::Owned(json))
    }
}

impl<'a> From<&'a Source> for Doc<'a> {
    fn from(source: &'a Source) -> Doc<'a> {
        match source {
            Source::Json(json) => Doc::Json(Cow::Borrowed(json)),
            Source::Text(text) => Doc::Text(text),
        }
    }
}

/// The document's text, `{"source": …, "sent": …}`, in place of what `text` held. What is
/// given as text is written as it is: it parses back to the same record.
pub(crate) fn document(text: &mut Vec<u8>, source: Doc<'_>, sent: Option<Doc<'_>>) {
    text.clear();
    text.extend_from_slice(b"{\"source\":");
    write_doc(text, source);
    text.extend_from_slice(b",\"sent\":");
    match sent {
        Some(sent) => write_doc(text, sent),
        None => text.extend_from_slice(b"null"),
    }
    text.push(b'}');
}

fn write_doc(text: &mut Vec<u8>, doc: Doc<'_>) {
    match doc {
        // Writing to a Vec cannot fail.
        Doc::Json(json) => serde_json::to_writer(&mut *text, &*json).expect("JSON into memory"),
        Doc::Text(json) => text.extend_from_slice(json.as_bytes()),
    }
}

/// The [`Kept`] a document's text holds.
fn parse(text: &[u8]) -> rusqlite::Result<Kept> {
    let mut document: Json = serde_json::from_slice(text).map_err(|err| bad_row(Box::new(err)))?;
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

impl Default for Packer {
    fn default() -> Packer {
        Packer {
            dictionaries: HashMap::new(),
            flows: HashMap::new(),
            compressor: compressor(),
            decompressor: DCtx::create(),
            text: Vec::new(),
            frame: Vec::new(),
        }
    }
}

impl Packer {
    /// Forget what was learnt from the database: after a transaction rolled back, a dictionary
    /// it trained (and the counts it moved) never happened, and a row packed with that
    /// dictionary's id would later be read with another one.
    pub(crate) fn forget(&mut self) {
        self.dictionaries.clear();
        self.flows.clear();
    }

    /// Pack `source` and `sent` for `flow`, training the flow's dictionary first when it is due
    /// (which writes `dictionaries` and packs earlier rows again: `db` is the transaction's).
    pub(crate) fn pack(
        &mut self,
        db: &Connection,
        flow: &str,
        source: Doc<'_>,
        sent: Option<Doc<'_>>,
    ) -> rusqlite::Result<Packed> {
        let dictionary = self.dictionary_for(db, flow)?;
        let mut text = std::mem::take(&mut self.text);
        document(&mut text, source, sent);
        let bytes = self.compress(&text, dictionary.as_deref());
        let raw = text.len();
        self.text = text;
        let bytes = bytes?;
        let state = self.flows.get_mut(flow).expect("loaded by dictionary_for");
        match &dictionary {
            None => state.without += 1,
            Some(dictionary) => {
                let (raw_bytes, packed, documents) = &mut state.window;
                *raw_bytes += raw as u64;
                *packed += bytes.len() as u64;
                *documents += 1;
                if *documents >= WINDOW {
                    let ratio = *packed as f64 / (*raw_bytes).max(1) as f64;
                    state.window = (0, 0, 0);
                    match state.baseline {
                        None => {
                            state.baseline = Some(ratio);
                            db.prepare_cached("UPDATE dictionaries SET ratio = ?2 WHERE id = ?1")?
                                .execute(params![dictionary.id, ratio])?;
                        }
                        Some(baseline) => state.retrain = ratio > baseline * POOR,
                    }
                }
            }
        }
        Ok(Packed {
            dictionary: dictionary.map_or(NO_DICTIONARY, |d| d.id),
            bytes,
        })
    }

    /// The document packed as `dictionary` says (`None`: zlib, before schema version 4).
    pub(crate) fn unpack(
        &mut self,
        db: &Connection,
        dictionary: Option<i64>,
        bytes: &[u8],
    ) -> rusqlite::Result<Kept> {
        parse(&self.unpack_text(db, dictionary, bytes)?)
    }

    fn unpack_text(
        &mut self,
        db: &Connection,
        dictionary: Option<i64>,
        bytes: &[u8],
    ) -> rusqlite::Result<Vec<u8>> {
        let Some(dictionary) = dictionary else {
            let mut text = Vec::new();
            ZlibDecoder::new(bytes)
                .read_to_end(&mut text)
                .map_err(|err| bad_row(Box::new(err)))?;
            return Ok(text);
        };
        let bytes = match bytes.starts_with(&MAGIC) {
            true => Cow::Borrowed(bytes),
            false => Cow::Owned([&MAGIC, bytes].concat()),
        };
        let bytes = &bytes[..];
        let size = match zstd::zstd_safe::get_frame_content_size(bytes) {
            Ok(Some(size)) if size <= LARGEST_DOCUMENT => size as usize,
            _ => return Err(bad_row("not a zstd frame of a known size".into())),
        };
        let mut text = Vec::with_capacity(size);
        let result = if dictionary == NO_DICTIONARY {
            self.decompressor.decompress(&mut text, bytes)
        } else {
            let dictionary = self.load(db, dictionary)?;
            self.decompressor
                .decompress_using_ddict(&mut text, bytes, &dictionary.decoder)
        };
        result.map_err(zstd_error)?;
        Ok(text)
    }

    fn compress(
        &mut self,
        text: &[u8],
        dictionary: Option<&Dictionary>,
    ) -> rusqlite::Result<Vec<u8>> {
        let out = &mut self.frame;
        out.clear();
        out.reserve(zstd::zstd_safe::compress_bound(text.len()));
        match dictionary {
            Some(dictionary) => {
                let mut encoder = dictionary.encoder.lock().expect("an encoder lock");
                encoder.compress2(out, text)
            }
            None => self.compressor.compress2(out, text),
        }
        .map_err(zstd_error)?;
        // The frame is a tenth of the buffer: the row gets a copy of its own size.
        Ok(out.as_slice().to_vec())
    }

    /// The dictionary with this id, from memory or from the database.
    fn load(&mut self, db: &Connection, id: i64) -> rusqlite::Result<Arc<Dictionary>> {
        if let Some(dictionary) = self.dictionaries.get(&id) {
            return Ok(Arc::clone(dictionary));
        }
        let bytes: Vec<u8> = db
            .prepare_cached("SELECT bytes FROM dictionaries WHERE id = ?1")?
            .query_row([id], |row| row.get(0))
            .optional()?
            .ok_or_else(|| bad_row(format!("no dictionary `{id}`").into()))?;
        let dictionary = Arc::new(Dictionary::new(id, &bytes));
        self.dictionaries.insert(id, Arc::clone(&dictionary));
        Ok(dictionary)
    }

    /// Whether packing `flow`'s next document trains a dictionary first (on the documents
    /// the ledger holds: a caller packing several before storing them stores them first).
    pub(crate) fn trains_next(&mut self, db: &Connection, flow: &str) -> rusqlite::Result<bool> {
        if !self.flows.contains_key(flow) {
            let state = self.load_flow(db, flow)?;
            self.flows.insert(flow.to_string(), state);
        }
        let state = &self.flows[flow];
        Ok(match &state.current {
            None => state.without >= state.train_at,
            Some(_) => state.retrain,
        })
    }

    /// The dictionary to pack `flow`'s next document with, trained now if it is due.
    fn dictionary_for(
        &mut self,
        db: &Connection,
        flow: &str,
    ) -> rusqlite::Result<Option<Arc<Dictionary>>> {
        if self.trains_next(db, flow)? {
            let first = self.flows[flow].current.is_none();
            match self.train(db, flow)? {
                Some(dictionary) => {
                    let state = self.flows.get_mut(flow).expect("loaded above");
                    *state = Flow {
                        current: Some(Arc::clone(&dictionary)),
                        train_at: state.train_at,
                        ..Flow::default()
                    };
                    if first {
                        self.pack_again(db, flow, &dictionary)?;
                    }
                }
                None => {
                    let state = self.flows.get_mut(flow).expect("loaded above");
                    state.retrain = false;
                    state.train_at = state.train_at.max(state.without) * 2;
                }
            }
        }
        Ok(self.flows[flow].current.clone())
    }

    /// The flow's newest dictionary, or how many documents it packed without one.
    fn load_flow(&mut self, db: &Connection, flow: &str) -> rusqlite::Result<Flow> {
        let newest = db
            .prepare_cached(
                "SELECT id, ratio FROM dictionaries WHERE flow = ?1 ORDER BY id DESC LIMIT 1",
            )?
            .query_row([flow], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, Option<f64>>(1)?))
            })
            .optional()?;
        if let Some((id, baseline)) = newest {
            return Ok(Flow {
                current: Some(self.load(db, id)?),
                baseline,
                train_at: SAMPLES,
                ..Flow::default()
            });
        }
        let without: usize = db
            .prepare_cached(
                "SELECT COUNT(*) FROM (SELECT 1 FROM ledger AS l JOIN kept AS k ON k.id = l.kept
                                       WHERE l.flow_id = (SELECT id FROM flows WHERE name = ?1) LIMIT ?2)",
            )?
            .query_row(params![flow, SAMPLES as i64], |row| row.get::<_, i64>(0))?
            as usize;
        Ok(Flow {
            without,
            train_at: SAMPLES,
            ..Flow::default()
        })
    }

    /// Train a dictionary on the flow's newest kept documents and store it; `None` when there
    /// are too few of them or zstd could not make one (then the flow goes on without).
    fn train(&mut self, db: &Connection, flow: &str) -> rusqlite::Result<Option<Arc<Dictionary>>> {
        let rows: Vec<(Option<i64>, Vec<u8>)> = db
            .prepare_cached(
                "SELECT k.dictionary, k.packed FROM ledger AS l JOIN kept AS k ON k.id = l.kept
                 WHERE l.flow_id = (SELECT id FROM flows WHERE name = ?1)
                 ORDER BY k.id DESC LIMIT ?2",
            )?
            .query_map(params![flow, SAMPLES as i64], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        if rows.len() < SAMPLES {
            return Ok(None);
        }
        let mut samples = Vec::new();
        let mut sizes = Vec::with_capacity(rows.len());
        for (dictionary, packed) in rows {
            let text = self.unpack_text(db, dictionary, &packed)?;
            sizes.push(text.len());
            samples.extend_from_slice(&text);
        }
        let Some(bytes) = train_on(&samples, &sizes) else {
            return Ok(None);
        };
        db.prepare_cached(
            "INSERT INTO dictionaries (flow, samples, made, bytes) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            flow,
            sizes.len() as i64,
            Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true),
            bytes
        ])?;
        let id = db.last_insert_rowid();
        let dictionary = Arc::new(Dictionary::new(id, &bytes));
        self.dictionaries.insert(id, Arc::clone(&dictionary));
        Ok(Some(dictionary))
    }

    /// Pack the flow's rows packed without a dictionary again, with its first one. Kept rows
    /// move to new ids at the end of `kept`: rewritten in place, a few large rows shrunk to
    /// small ones would leave their pages mostly empty for good.
    fn pack_again(
        &mut self,
        db: &Connection,
        flow: &str,
        dictionary: &Dictionary,
    ) -> rusqlite::Result<()> {
        let kept: Vec<(String, i64, Vec<u8>)> = db
            .prepare(
                "SELECT l.key, k.id, k.packed FROM ledger AS l JOIN kept AS k ON k.id = l.kept
                 WHERE l.flow_id = (SELECT id FROM flows WHERE name = ?1) AND k.dictionary = 0
                 ORDER BY k.id",
            )?
            .query_map([flow], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (key, id, packed) in kept {
            let text = self.unpack_text(db, Some(NO_DICTIONARY), &packed)?;
            let bytes = self.compress(&text, Some(dictionary))?;
            db.prepare_cached("DELETE FROM kept WHERE id = ?1")?
                .execute([id])?;
            db.prepare_cached("INSERT INTO kept (dictionary, packed) VALUES (?1, ?2)")?
                .execute(params![dictionary.id, bytes])?;
            db.prepare_cached(
                "UPDATE ledger SET kept = ?3 WHERE flow_id = (SELECT id FROM flows WHERE name = ?1) AND key = ?2",
            )?
                .execute(params![flow, key, db.last_insert_rowid()])?;
        }
        for table in ["sources", "updates"] {
            let rows: Vec<(i64, Vec<u8>)> = db
                .prepare(&format!(
                    "SELECT rowid, packed FROM {table} WHERE flow = ?1 AND dictionary = 0"
                ))?
                .query_map([flow], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut update = db.prepare(&format!(
                "UPDATE {table} SET dictionary = ?2, packed = ?3 WHERE rowid = ?1"
            ))?;
            for (rowid, packed) in rows {
                let text = self.unpack_text(db, Some(NO_DICTIONARY), &packed)?;
                let bytes = self.compress(&text, Some(dictionary))?;
                update.execute(params![rowid, dictionary.id, bytes])?;
            }
        }
        Ok(())
    }
}

/// A dictionary of at most [`DICTIONARY_BYTES`] and a tenth of the samples, or `None` when
/// zstd cannot make one (too little or too uniform text).
///
/// Trained by zstd's fastCover with fixed parameters: segments of [`SEGMENT`] bytes (or the
/// samples' average size, if smaller), dmers of 8 bytes, 2^16 frequency counters. zstd's own
/// `ZDICT_trainFromBuffer` tries five segment sizes with 2^20 counters each and keeps the
/// best: on the sandbox's first 200 documents it took 46 ms (about 2% of a 20,000-order run's
/// CPU, each time a ledger starts) and chose 2,000 bytes; these parameters take 7 ms and pack
/// the next 17,800 documents to 373.6 B instead of 375.6 B.
fn train_on(samples: &[u8], sizes: &[usize]) -> Option<Vec<u8>> {
    use zstd::zstd_safe::zstd_sys;
    let capacity = (samples.len() / 10).min(DICTIONARY_BYTES);
    if capacity < 1024 || sizes.is_empty() {
        return None;
    }
    debug_assert_eq!(
        sizes.iter().sum::<usize>(),
        samples.len(),
        "the samples' lengths"
    );
    let average = samples.len() / sizes.len();
    let parameters = zstd_sys::ZDICT_fastCover_params_t {
        k: average.clamp(64, SEGMENT) as u32,
        d: 8,
        f: 16,
        steps: 0,
        nbThreads: 0,
        splitPoint: 0.0,
        accel: 1,
        shrinkDict: 0,
        shrinkDictMaxRegression: 0,
        zParams: zstd_sys::ZDICT_params_t {
            compressionLevel: LEVEL,
            notificationLevel: 0,
            dictID: 0,
        },
    };
    let mut bytes = vec![0u8; capacity];
    // SAFETY: `bytes` has `capacity` writable bytes; `samples` holds the concatenated samples
    // whose lengths `sizes` lists (they sum to its length), `sizes.len()` of them; zstd reads
    // only these and writes at most `capacity` bytes, returning their number or an error code.
    let written = unsafe {
        zstd_sys::ZDICT_trainFromBuffer_fastCover(
            bytes.as_mut_ptr().cast(),
            capacity,
            samples.as_ptr().cast(),
            sizes.as_ptr(),
            u32::try_from(sizes.len()).ok()?,
            parameters,
        )
    };
    // SAFETY: a pure function of the code.
    if unsafe { zstd_sys::ZDICT_isError(written) } != 0 {
        return None;
    }
    bytes.truncate(written);
    Some(bytes)
}

/// The longest segment fastCover picks for a dictionary (its `k`): see [`train_on`].
const SEGMENT: usize = 2000;

#[cfg(test)]
mod tests;
