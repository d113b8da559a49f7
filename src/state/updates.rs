//! Updates under way (schema version 3): a changed record on its way to a key the target
//! already holds, one row per key, with the step about to be sent.
//!
//! The ledger row of the key stays done throughout (an update never marks a written key in
//! flight, so "done stays done" holds), and the new content hash waits here until the target
//! took it. Each step is written, synced, before its call is sent, so after a crash the row
//! says where to go on: an update is sent again, an action that may have happened is sent
//! again too (its `already` makes that harmless). `finish_update` ends the row and applies its
//! result to the ledger and the kept content in one transaction.

use std::fmt;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::Value as Json;

use crate::error::{Error, ErrorKind, Result};
use crate::state::kept::{self, keep_packed};
use crate::state::ledger::{Hash, number_as_stored};
use crate::state::packing::{Doc, Packed, Packer};
use crate::state::{Durability, Nanos, Store, Time};

/// Where an update is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The update operation, first try.
    Update,
    /// The write operation of a flow under `on_change: upsert`.
    Upsert,
    /// The n-th `unaudit` action (0-based).
    Unaudit(usize),
    /// The update again, once the record is un-audited.
    UpdateAfterUnaudit,
    /// The n-th `reaudit` action (0-based).
    Reaudit(usize),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Update => f.write_str("update"),
            Step::Upsert => f.write_str("upsert"),
            Step::Unaudit(n) => write!(f, "unaudit:{n}"),
            Step::UpdateAfterUnaudit => f.write_str("update_after_unaudit"),
            Step::Reaudit(n) => write!(f, "reaudit:{n}"),
        }
    }
}

impl Step {
    /// The step stored as `text`.
    pub fn parse(text: &str) -> Option<Step> {
        let numbered = |prefix: &str| text.strip_prefix(prefix).and_then(|n| n.parse().ok());
        match text {
            "update" => Some(Step::Update),
            "upsert" => Some(Step::Upsert),
            "update_after_unaudit" => Some(Step::UpdateAfterUnaudit),
            _ => numbered("unaudit:")
                .map(Step::Unaudit)
                .or_else(|| numbered("reaudit:").map(Step::Reaudit)),
        }
    }
}

/// One update under way.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingUpdate {
    pub key: String,
    /// The content hash of `record`.
    pub hash: String,
    pub step: Step,
    /// The mapped record being sent.
    pub record: Json,
    pub source: Json,
    pub modified: Option<String>,
    /// The target's refusal of the update after un-auditing, kept while the record is audited
    /// again; the change is then parked with it.
    pub refused: Option<String>,
    /// How many steps were sent so far.
    pub sends: u32,
}

/// How an update ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateEnd {
    /// The target holds the new content: it becomes the ledger's (hash, kept record), and a key
    /// parked as a conflict is done again.
    Applied {
        target_id: Option<String>,
        target_number: Option<String>,
    },
    /// The target refused the change: the key is parked as a `conflict` with the message,
    /// still written, with the hash of what the target holds.
    Refused { message: String },
    /// The content was applied but a later step was refused (e.g. the record could not be
    /// audited again): new hash, and parked as a `conflict` with the message.
    AppliedThenRefused { message: String },
}

impl Store {
    /// Start an update of `update.key` at `update.step` (synced before anything is sent).
    /// Refused when the key is not written, or when an update of it is already under way.
    pub fn begin_update(
        &self,
        flow: &str,
        update: &PendingUpdate,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write(flow, "start an update", Durability::Full, |tx| {
            let under_way: bool = tx
                .prepare_cached("SELECT 1 FROM updates WHERE flow = ?1 AND key = ?2")?
                .query_row(params![flow, update.key], |_| Ok(true))
                .optional()?
                .unwrap_or(false);
            if under_way {
                return Ok(Err(Error::new(
                    ErrorKind::State,
                    format!(
                        "record `{}` of flow `{flow}` has an update under way already",
                        update.key
                    ),
                )));
            }
            let packed =
                self.packer()
                    .pack(tx, flow, (&update.source).into(), Some((&update.record).into()))?;
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO updates (flow, key, hash, step, dictionary, packed, modified,
                                          refused, sends, started, updated)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
                )?
                .execute(params![
                    flow,
                    update.key,
                    update.hash,
                    update.step.to_string(),
                    packed.dictionary,
                    packed.bytes,
                    update.modified,
                    update.refused,
                    update.sends,
                    Time(now),
                ]);
            match inserted {
                Ok(_) => Ok(Ok(())),
                Err(rusqlite::Error::SqliteFailure(_, Some(message)))
                    if message.contains("confirmed") =>
                {
                    Ok(Err(Error::new(
                        ErrorKind::State,
                        format!(
                            "record `{}` of flow `{flow}` is not in the target yet; refusing to update it",
                            update.key
                        ),
                    )))
                }
                Err(err) => Err(err),
            }
        })
    }

    /// Move an update to `step` (synced before that step is sent), with the refusal met on the
    /// way, if any.
    pub fn update_step(
        &self,
        flow: &str,
        key: &str,
        step: Step,
        refused: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write(flow, "record an update's step", Durability::Full, |tx| {
            tx.prepare_cached(
                "UPDATE updates SET step = ?3, refused = COALESCE(?4, refused), sends = sends + 1,
                                    updated = ?5
                 WHERE flow = ?1 AND key = ?2",
            )?
            .execute(params![flow, key, step.to_string(), refused, Time(now)])?;
            Ok(Ok(()))
        })
    }

    /// End the update of `key` as `end` says, in one transaction with the ledger and the kept
    /// content. Nothing happens for a key with no update under way.
    pub fn finish_update(
        &self,
        flow: &str,
        key: &str,
        end: &UpdateEnd,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write(flow, "finish an update", Durability::Normal, |tx| {
            let Some((hash, dictionary, packed)) = tx
                .prepare_cached(
                    "SELECT hash, dictionary, packed FROM updates WHERE flow = ?1 AND key = ?2",
                )?
                .query_row(params![flow, key], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, Option<i64>>(1)?,
                        row.get::<_, Vec<u8>>(2)?,
                    ))
                })
                .optional()?
            else {
                return Ok(Ok(()));
            };
            let mut packer = self.packer();
            // The status moves between done and conflict only: the schema's triggers keep a
            // written key written whatever is asked here.
            let (status, message, applied, id, number) = match end {
                UpdateEnd::Applied {
                    target_id,
                    target_number,
                } => (
                    "done",
                    None,
                    true,
                    target_id.as_deref(),
                    target_number.as_deref(),
                ),
                UpdateEnd::Refused { message } => ("conflict", Some(message), false, None, None),
                UpdateEnd::AppliedThenRefused { message } => {
                    ("conflict", Some(message), true, None, None)
                }
            };
            tx.prepare_cached(
                "UPDATE ledger SET status = ?3,
                     hash = CASE WHEN ?5 THEN ?6 ELSE hash END,
                     target_id = COALESCE(?7, target_id),
                     target_number = COALESCE(?8, target_number),
                     last_error = ?4, error_field = NULL, updated = ?9
                 WHERE flow_id = (SELECT id FROM flows WHERE name = ?1)
                   AND key = ?2 AND done_at IS NOT NULL",
            )?
            .execute(params![
                flow,
                key,
                status,
                message,
                applied,
                Hash(&hash),
                id,
                number_as_stored(key, number),
                Nanos(now)
            ])?;
            match (applied, dictionary) {
                (true, Some(dictionary)) => keep_packed(
                    tx,
                    flow,
                    key,
                    &Packed {
                        dictionary,
                        bytes: packed,
                    },
                )?,
                (true, None) => {
                    // Begun before schema version 4 (zlib): packed again as kept rows are now.
                    let update = packer.unpack(tx, None, &packed)?;
                    let packed = packer.pack(
                        tx,
                        flow,
                        (&update.source).into(),
                        update.sent.as_ref().map(Doc::from),
                    )?;
                    keep_packed(tx, flow, key, &packed)?;
                }
                (false, _) => {
                    // The newest source is kept, beside what the target still holds.
                    let source = packer.unpack(tx, dictionary, &packed)?.source;
                    kept::keep_source_in(tx, &mut packer, flow, key, (&source).into(), None)?;
                }
            }
            tx.prepare_cached("DELETE FROM updates WHERE flow = ?1 AND key = ?2")?
                .execute(params![flow, key])?;
            Ok(Ok(()))
        })
    }

    /// The updates under way of `flow`, oldest first.
    pub fn pending_updates(&self, flow: &str) -> Result<Vec<PendingUpdate>> {
        let connection = self.lock();
        let mut packer = self.packer();
        let failed = || self.failed(format!("list the updates under way of flow `{flow}`"));
        let mut statement = connection
            .prepare_cached(
                "SELECT key, hash, step, dictionary, packed, modified, refused, sends FROM updates
                 WHERE flow = ?1 ORDER BY started, key",
            )
            .map_err(failed())?;
        let rows = statement
            .query_map(params![flow], |row| {
                update_from_row(row, &mut packer, &connection)
            })
            .map_err(failed())?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(failed())
    }
}

fn update_from_row(
    row: &Row<'_>,
    packer: &mut Packer,
    db: &Connection,
) -> rusqlite::Result<PendingUpdate> {
    let step: String = row.get("step")?;
    let kept = packer.unpack(
        db,
        row.get("dictionary")?,
        &row.get::<_, Vec<u8>>("packed")?,
    )?;
    Ok(PendingUpdate {
        key: row.get("key")?,
        hash: row.get("hash")?,
        step: Step::parse(&step).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Text,
                format!("unknown update step `{step}`").into(),
            )
        })?,
        record: kept.sent.unwrap_or_default(),
        source: kept.source,
        modified: row.get("modified")?,
        refused: row.get("refused")?,
        sends: row.get("sends")?,
    })
}
