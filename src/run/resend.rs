//! `engine resend`: records already written, mapped again with the flow as it is now, and
//! those whose mapped content changed sent through the flow's write mode.
//!
//! The ledger keeps each written key's newest source record and the mapped record last sent
//! (`state::kept`), so this reads no source API: it maps the kept source, compares the content
//! hash with the ledger's, prints a per-field diff of each change ([`diff`], pure) on stdout
//! and, unless a dry run, sends the changed records as updates (`target::update`, under
//! `on_change: update` or `upsert`; any other mode is refused with a hint). Updates an earlier
//! command left under way, and records left in flight, are finished first, as a run does. The
//! caller holds the flow's lock.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use tokio::task::JoinSet;

use crate::config::model::{Concurrency, Flow};
use crate::error::{Error, ErrorKind, Result};
use crate::record;
use crate::request::Env;
use crate::run::progress::Progress;
use crate::run::recover::recover;
use crate::run::sink::Sink;
use crate::run::{Options, writer};
use crate::state::{Entry, Kept, Source, Store, WrittenFilter};
use crate::target::writer::{Outgoing, Settled};

/// What `engine resend` was asked.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Only these keys (none: every written key).
    pub keys: Vec<String>,
    /// Only keys first written at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Only keys first written before this instant.
    pub until: Option<DateTime<Utc>>,
    /// Print the diffs, send nothing.
    pub dry_run: bool,
}

/// What a resend did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resent {
    /// Written records mapped again.
    pub mapped: u64,
    pub unchanged: u64,
    pub changed: u64,
    /// Written before the ledger kept sources (schema 3), or kept damaged: nothing to map.
    pub not_kept: u64,
    /// Their kept source cannot be mapped with the flow as it is now.
    pub unmappable: u64,
    /// Changed records the target took.
    pub updated: u64,
    /// Changed records parked as conflicts (the target refused the change).
    pub parked: u64,
    /// Records and updates an earlier command left unfinished, settled first.
    pub recovered: u64,
}

/// One field that differs between two mapped records.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// `FHeadNote`, `FRetcustId.FNumber`, `FEntity[2].FRealQty`.
    pub path: String,
    /// `None`: the field was not there.
    pub old: Option<Json>,
    pub new: Option<Json>,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |value: &Option<Json>| {
            value
                .as_ref()
                .map_or_else(|| "(none)".to_string(), Json::to_string)
        };
        write!(
            f,
            "{}: {} → {}",
            self.path,
            show(&self.old),
            show(&self.new)
        )
    }
}

/// Every field that differs between `old` and `new`, in the order of `old` (fields only in
/// `new` after): objects field by field, lists (repeated sections) line by line by index.
pub fn diff(old: &Json, new: &Json) -> Vec<Change> {
    let mut changes = Vec::new();
    walk(String::new(), Some(old), Some(new), &mut changes);
    changes
}

fn walk(path: String, old: Option<&Json>, new: Option<&Json>, out: &mut Vec<Change>) {
    let field = |name: &str| match path.is_empty() {
        true => name.to_string(),
        false => format!("{path}.{name}"),
    };
    match (old, new) {
        (Some(Json::Object(old)), Some(Json::Object(new))) => {
            for (name, value) in old {
                walk(field(name), Some(value), new.get(name), out);
            }
            for (name, value) in new.iter().filter(|(name, _)| !old.contains_key(*name)) {
                walk(field(name), None, Some(value), out);
            }
        }
        (Some(Json::Array(old)), Some(Json::Array(new))) => {
            for index in 0..old.len().max(new.len()) {
                walk(
                    format!("{path}[{index}]"),
                    old.get(index),
                    new.get(index),
                    out,
                );
            }
        }
        (old, new) if old == new => {}
        (old, new) => out.push(Change {
            path: if path.is_empty() {
                "(record)".to_string()
            } else {
                path
            },
            old: old.cloned(),
            new: new.cloned(),
        }),
    }
}

/// Map the written records of `flow` again and send those that changed (see the module).
pub async fn resend(
    flow: Arc<Flow>,
    env: Env,
    options: Options,
    request: Request,
    progress: Arc<Progress>,
) -> Result<Resent> {
    if let (Some(since), Some(until)) = (request.since, request.until)
        && since >= until
    {
        return Err(Error::usage(format!(
            "no record can be first written from `{}` (`--since`) to `{}` (`--until`): the range is empty or runs backwards",
            crate::time::wall_clock(since),
            crate::time::wall_clock(until)
        ))
        .with_hint("give `--since` before `--until`"));
    }
    if !flow.target.keep_records {
        return Err(Error::usage(format!(
            "flow `{}` keeps no records to send again (`target.keep_records: false`)",
            flow.name
        ))
        .with_hint(format!(
            "remove `keep_records: false` under `target:` in {}: from the next run on, each record written or read again is kept",
            flow.file.display()
        )));
    }
    if !request.dry_run && !flow.target.on_change.sends_changes() {
        return Err(Error::usage(format!(
            "flow `{}` does not send changed records (`on_change: {}`)",
            flow.name,
            flow.target.on_change.as_str()
        ))
        .with_hint(format!(
            "set `on_change: update` with `update: <operation>` (or `on_change: upsert`) under `target:` in {}; `engine resend {} --dry-run` shows the changes meanwhile",
            flow.file.display(),
            flow.file.display()
        )));
    }
    let store = Store::open(&options.store)?;
    let filter = WrittenFilter {
        keys: request.keys.clone(),
        since: request.since,
        until: request.until,
    };
    let written = store.written(&flow.name, &filter)?;
    let found: std::collections::HashSet<&str> = written
        .iter()
        .map(|(entry, _)| entry.key.as_str())
        .collect();
    let unknown: Vec<String> = request
        .keys
        .iter()
        .filter(|key| !found.contains(key.as_str()))
        .map(|key| format!("`{key}`"))
        .collect();
    if !unknown.is_empty() {
        return Err(Error::usage(format!(
            "no written record with key {}",
            unknown.join(", ")
        ))
        .with_hint("`engine resend` sends records already in the target; `engine retry` sends parked ones"));
    }
    let mut resent = Resent::default();
    let writer = match request.dry_run {
        true => None,
        false => {
            let writer = writer(&flow, &env, &options, &store, &progress).await?;
            let recovery = recover(&writer, &progress).await?;
            resent.recovered = recovery.keys.len() as u64;
            resent.updated += recovery.written;
            resent.parked += recovery.failed;
            Some(writer)
        }
    };
    // What the recovery finished is read as it is now.
    let written = store.written(&flow.name, &filter)?;
    let changed = remap(&flow, written, &mut resent, &progress);
    if let Some(writer) = writer {
        send_changes(&flow, writer, changed, &mut resent, &progress).await?;
    }
    progress.finish();
    Ok(resent)
}

/// Map each kept source again; print and return the records whose content changed.
fn remap(
    flow: &Flow,
    written: Vec<(Entry, Option<Kept>)>,
    resent: &mut Resent,
    progress: &Progress,
) -> Vec<Outgoing> {
    let mut changed: Vec<Outgoing> = Vec::new();
    for (entry, kept) in written {
        let Some(kept) = kept else {
            resent.not_kept += 1;
            continue;
        };
        resent.mapped += 1;
        let mapped = match record::map(flow, Arc::new(kept.source.clone())) {
            Ok(mapped) => mapped,
            Err(failure) => {
                resent.unmappable += 1;
                progress.notice(format!(
                    "record `{}` cannot be mapped with the flow as it is now: {}",
                    entry.key, failure.error.message
                ));
                continue;
            }
        };
        if entry.hash.as_deref() == Some(mapped.hash.as_str()) {
            resent.unchanged += 1;
            continue;
        }
        resent.changed += 1;
        println!("{}", entry.key);
        match &kept.sent {
            Some(sent) => {
                for change in diff(sent, &mapped.target()) {
                    println!("  {change}");
                }
            }
            None => println!("  (the content last sent is not kept: the whole record is sent)"),
        }
        changed.push(Outgoing {
            mapped,
            source: Source::from(kept.source),
            window: None,
        });
    }
    changed
}

/// Send `changed` as updates, a few at a time (the flow's write concurrency to begin with).
async fn send_changes(
    flow: &Flow,
    writer: Arc<Sink>,
    changed: Vec<Outgoing>,
    resent: &mut Resent,
    progress: &Progress,
) -> Result<()> {
    let limit = match flow.target.concurrency {
        Concurrency::Fixed(n) => n,
        Concurrency::Adaptive { initial, .. } => initial,
    }
    .max(1) as usize;
    let mut tasks: JoinSet<Result<Vec<Settled>>> = JoinSet::new();
    let mut pieces = changed.into_iter().map(|record| vec![record]);
    loop {
        while tasks.len() < limit
            && let Some(piece) = pieces.next()
        {
            let writer = Arc::clone(&writer);
            tasks.spawn(async move { writer.update_changes(piece).await });
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        let settled = joined.map_err(|err| {
            Error::new(ErrorKind::State, "an update stopped unexpectedly").with_source(err)
        })??;
        for settled in settled {
            match settled {
                Settled::Failed { key, message } => {
                    resent.parked += 1;
                    progress.failed(&key, &message);
                }
                _ => {
                    resent.updated += 1;
                    progress.written(1);
                }
            }
        }
    }
    Ok(())
}

/// A resend's summary as the user reads it.
pub fn describe(resent: &Resent, flow_file: &str, dry_run: bool) -> Vec<String> {
    let mut lines = vec![format!(
        "{} written record(s) mapped again: {} changed, {} unchanged{}",
        resent.mapped,
        resent.changed,
        resent.unchanged,
        match resent.unmappable {
            0 => String::new(),
            n => format!(", {n} cannot be mapped"),
        }
    )];
    if resent.not_kept > 0 {
        lines.push(format!(
            "{} record(s) have no kept source (written before the ledger kept it, or its copy is damaged): `engine run {flow_file} --since …` reads them again and keeps it",
            resent.not_kept
        ));
    }
    if resent.recovered > 0 {
        lines.push(format!(
            "{} record(s) and update(s) left unfinished by an earlier command were settled first",
            resent.recovered
        ));
    }
    if dry_run {
        lines.push(match resent.changed {
            0 => "dry run: nothing to send".to_string(),
            _ => format!("dry run: nothing sent; `engine resend {flow_file}` sends them"),
        });
    } else {
        lines.push(format!(
            "{} updated, {} parked as conflicts{}",
            resent.updated,
            resent.parked,
            match resent.parked {
                0 => String::new(),
                _ => format!(" (`engine failed {flow_file}` lists them)"),
            }
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_diff_names_each_changed_field_and_repeated_lines_by_index() {
        let change = |path: &str, old: Option<Json>, new: Option<Json>| Change {
            path: path.to_string(),
            old,
            new,
        };
        let cases = [
            (json!({"a": 1}), json!({"a": 1}), vec![]),
            (
                json!({"FHeadNote": "old", "FBillNo": "RK1"}),
                json!({"FHeadNote": "new", "FBillNo": "RK1"}),
                vec![change("FHeadNote", Some(json!("old")), Some(json!("new")))],
            ),
            (
                json!({"FRetcustId": {"FNumber": "C1"}}),
                json!({"FRetcustId": {"FNumber": "C2"}}),
                vec![change(
                    "FRetcustId.FNumber",
                    Some(json!("C1")),
                    Some(json!("C2")),
                )],
            ),
            (
                json!({"FEntity": [{"FQty": 1}, {"FQty": 2}]}),
                json!({"FEntity": [{"FQty": 1}, {"FQty": 3}, {"FQty": 4}]}),
                vec![
                    change("FEntity[1].FQty", Some(json!(2)), Some(json!(3))),
                    change("FEntity[2]", None, Some(json!({"FQty": 4}))),
                ],
            ),
            (
                json!({"a": 1, "gone": true}),
                json!({"a": 1, "added": "x"}),
                vec![
                    change("gone", Some(json!(true)), None),
                    change("added", None, Some(json!("x"))),
                ],
            ),
            (
                json!({"a": [1]}),
                json!({"a": {"b": 1}}),
                vec![change("a", Some(json!([1])), Some(json!({"b": 1})))],
            ),
            (
                json!(1),
                json!(2),
                vec![change("(record)", Some(json!(1)), Some(json!(2)))],
            ),
        ];
        for (old, new, expected) in cases {
            assert_eq!(diff(&old, &new), expected, "{old} → {new}");
        }
    }

    #[test]
    fn a_change_prints_as_field_old_arrow_new() {
        let cases = [
            (
                Some(json!("旧")),
                Some(json!("新")),
                r#"FHeadNote: "旧" → "新""#,
            ),
            (None, Some(json!(1)), "FHeadNote: (none) → 1"),
            (Some(json!(1)), None, "FHeadNote: 1 → (none)"),
        ];
        for (old, new, expected) in cases {
            let change = Change {
                path: "FHeadNote".to_string(),
                old,
                new,
            };
            assert_eq!(change.to_string(), expected);
        }
    }
}
