//! Writing batches exactly once; a write without `batch:` is a batch of one record, whose
//! answer is its result (a duplicate or a refusal looked up like any other).
//!
//! Before a batch is sent its keys are recorded as in flight. The response is read record by
//! record; every record not confirmed as written (its outcome unknown because the call timed
//! out, the connection dropped or the response did not mention it; or refused, perhaps as a
//! duplicate of its key, whatever field the target blames) is looked up in the target by key
//! before it is parked or sent again: found means written, not found means parked with the
//! target's message (refused) or sent again (unknown, or refused as busy). A reply whose
//! positions cannot be trusted (a saved record's number is another record's key) is looked up
//! whole. Every outcome of a batch is then recorded in one transaction. If the target stays
//! unreachable the records stay in flight and the run stops; the next run looks them up first.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value as Json;

use crate::config::model::{Flow, MatchedBy, Operation, Results, Rows};
use crate::error::{Error, ErrorKind, Result};
use crate::http::client::{CallError, Client, Payload, Reply};
use crate::http::envelope::{Verdict, response_scope};
use crate::record::Mapped;
use crate::request::{self, Env};
use crate::state::{Doc, Outcome, Pending, Source, Store};
use crate::target::results::{self, Answer, RecordResult};
use crate::template;
use crate::template::scope::Scope;
use crate::time::Clock;

/// A mapped record ready to write, with what the ledger keeps about it.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub mapped: Mapped,
    pub source: Source,
    pub window: Option<usize>,
}

impl Outgoing {
    /// This record with `null` for its source: once the ledger keeps the source, the batch
    /// lets it go.
    fn without_source(self) -> Outgoing {
        Outgoing {
            source: Source::from(Json::Null),
            ..self
        }
    }
}

/// How a record ended, for progress and the cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    Written {
        key: String,
        id: Option<String>,
        number: Option<String>,
        /// The target refused this send, yet the record is there (an earlier send whose
        /// answer was lost, a bill saved but not audited, or one made by hand): its message.
        note: Option<String>,
    },
    Failed {
        key: String,
        message: String,
    },
    /// Sent several times without a clear answer and not found in the target: it stays in
    /// flight (holding the cursor) and the next run looks it up first.
    Unresolved {
        key: String,
        sends: u32,
    },
    /// Refused outright by this send and not yet looked up: it stays in flight in the ledger
    /// until [`Writer::verify`] settles it with the refusals of other batches.
    Refused(Refused),
}

/// A record the target refused with a clear per-record message. The refusal may be a
/// "duplicate" of an earlier send whose answer was lost, so it is looked up before it is parked
/// (with the source the ledger kept when it was marked in flight).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub key: String,
    pub message: String,
    pub field: Option<String>,
    pub hash: String,
    pub modified: Option<String>,
}

impl Settled {
    pub fn key(&self) -> &str {
        match self {
            Settled::Written { key, .. }
            | Settled::Failed { key, .. }
            | Settled::Unresolved { key, .. } => key,
            Settled::Refused(refused) => &refused.key,
        }
    }
}

/// Where a record was found in the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub id: Option<String>,
    pub number: Option<String>,
}

/// The fewest sends a record whose outcome stays unknown gets within one batch; the
/// connector's `http.retry.attempts` when that is more. Each resend follows a lookup that did
/// not find the record, and a backoff.
pub const RESEND_ROUNDS: u32 = 3;

pub struct Writer {
    pub flow: Arc<Flow>,
    pub client: Arc<Client>,
    pub store: Store,
    pub env: Env,
    /// The write operation's inputs, evaluated once.
    pub inputs: Json,
    /// The lookup operation's inputs, evaluated once.
    pub lookup_inputs: Json,
    pub clock: Arc<dyn Clock>,
}

impl Writer {
    /// Look keys up in the target. Keys not in the map were not found.
    pub async fn lookup(&self, keys: &[String]) -> Result<HashMap<String, Found>> {
        let mut found = HashMap::new();
        let Some(operation) = self.flow.target.lookup_operation() else {
            return Err(Error::new(ErrorKind::Api, "the outcome of a write is unknown and the flow has no `target.lookup` to verify it")
                .with_hint("add a lookup operation (for Kingdee: `lookup: bill_query`) so uncertain writes can be checked"));
        };
        let rows = operation
            .rows
            .as_ref()
            .expect("lookup operations have rows");
        for chunk in keys.chunks(rows.max_keys as usize) {
            let (body, parts) =
                request::lookup_request(&self.flow, &self.lookup_inputs, chunk, &self.env)
                    .map_err(|err| {
                        Error::config(format!("cannot build the lookup body: {}", err.message))
                            .with_location(err.location)
                    })?;
            let payload = payload(operation, Payload::Json(body), &self.lookup_inputs);
            let reply = self
                .client
                .call(operation, &self.flow.envelopes, &parts, payload, true)
                .await
                .map_err(CallError::into_error)?;
            if says_not_found(&self.flow, rows, &reply) {
                continue;
            }
            self.refused_lookup(operation, &reply)?;
            found.extend(self.rows_found(operation, rows, chunk, &reply.body)?);
        }
        Ok(found)
    }

    /// The error that stops the run when the target refused a lookup. Without `not_found`, a
    /// 404 is never read as "not there", whatever the envelope says: a wrong path would make
    /// every record look absent and be sent twice.
    fn refused_lookup(&self, operation: &Operation, reply: &Reply) -> Result<()> {
        let (code, message) = match &reply.verdict {
            Verdict::Failed { code, message } => (code.clone(), message.clone()),
            _ if reply.status == 404 => (None, "the API answered HTTP 404".to_string()),
            _ => return Ok(()),
        };
        let code = code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default();
        let mut error = Error::new(
            ErrorKind::Api,
            format!(
                "{} refused the lookup `{}` (HTTP {}): {message}{code}",
                self.client.name, operation.name, reply.status
            ),
        );
        if reply.status == 404 {
            error = error.with_hint(format!("if HTTP 404 means the key is not in the target, say so with `rows.not_found: \"status == 404\"` on `{}`", operation.name));
        }
        Err(error)
    }

    /// The keys of `chunk` that the rows of a lookup's answer hold. An answer that cannot say
    /// which keys are absent stops the run, because an absent key is sent again: one without
    /// the list `rows.path` points at (a wrong path selects nothing), and one where a key asked
    /// is absent while rows of other keys (or of no key) came back (a filter the API ignored,
    /// a key it rewrote, a `rows.key` that reads the wrong field). Rows of other keys beside
    /// every key asked are harmless (an API that matches by prefix) and are ignored.
    fn rows_found(
        &self,
        operation: &Operation,
        rows: &Rows,
        chunk: &[String],
        body: &Json,
    ) -> Result<HashMap<String, Found>> {
        let selected = rows.path.select(body);
        if selected.is_empty()
            && let Some(list) = &rows.list
            && !matches!(list.select(body).as_slice(), [Json::Array(_)])
        {
            return Err(Error::new(
                ErrorKind::Api,
                format!(
                    "the answer to the lookup `{}` has no list at `{}`: it cannot say which keys are absent",
                    operation.name, list.text
                ),
            )
            .with_hint("check `rows.path` against what the API answers"));
        }
        let mut found = HashMap::new();
        let mut other: Option<Option<String>> = None;
        for row in selected {
            let ctx = minijinja::Value::from_object(Scope::named(vec![(
                Arc::from("row"),
                template::from_json(row),
            )]));
            let text = |id| results::id_text(&self.flow.envelopes.eval(id, &ctx).ok()?);
            match text(rows.key) {
                Some(key) if chunk.contains(&key) => {
                    let number = rows.number.and_then(text);
                    found.insert(
                        key,
                        Found {
                            id: text(rows.id),
                            number,
                        },
                    );
                }
                key => {
                    other.get_or_insert(key);
                }
            }
        }
        if let Some(key) = other
            && let Some(absent) = chunk.iter().find(|k| !found.contains_key(*k))
        {
            return Err(Error::new(
                ErrorKind::Api,
                format!(
                    "the lookup `{}` answered a row whose key is {}, not a key asked, and no row for `{absent}`: it cannot say whether `{absent}` is in the target",
                    operation.name,
                    key.map_or("empty".to_string(), |k| format!("`{k}`")),
                ),
            )
            .with_hint("check that the lookup filters by key as the API expects, and that `rows.key` reads the key as it was sent"));
        }
        Ok(found)
    }

    /// The body of one write call carrying `batch` (what a dry run prints).
    pub fn body<'a>(&self, batch: impl IntoIterator<Item = &'a Outgoing>) -> Result<Json> {
        write_request(&self.flow, &self.inputs, keyed(batch), &self.env).map(|(body, ..)| body)
    }

    /// The serialised body and the path, query and headers of one write call carrying the
    /// `remaining` records of a batch: their texts are lent to the request, parsed only if a
    /// template reads inside them, and written into the body as they are.
    fn request(&self, remaining: &[(usize, &Outgoing)]) -> Result<(Vec<u8>, request::Parts)> {
        one_record_check(&self.flow, remaining.len())?;
        let (keys, texts) = remaining
            .iter()
            .map(|(_, o)| (o.mapped.key.clone(), o.mapped.text.shared()))
            .unzip();
        request::write_request_serialised(&self.flow, &self.inputs, keys, texts, &self.env)
            .map_err(body_error)
    }

    /// Write one batch; returns how each record ended. Records refused outright come back as
    /// [`Settled::Refused`], still in flight, for the caller to [`verify`](Writer::verify)
    /// together with others; records whose outcome is unknown, or refused as busy, are looked
    /// up here because they may have to be sent again. An error means the run must stop (the
    /// records still unresolved stay in flight in the ledger).
    pub async fn write(&self, batch: Vec<Outgoing>) -> Result<Vec<Settled>> {
        self.write_batch(batch, true).await
    }

    /// Write one batch and look up its refusals at once: never returns [`Settled::Refused`].
    /// For the recovery and `engine retry`, which settle every record before going on.
    pub async fn write_now(&self, batch: Vec<Outgoing>) -> Result<Vec<Settled>> {
        self.write_batch(batch, false).await
    }

    /// Look refused records up together and record each as written (found) or parked with the
    /// target's message (not found); only then do they leave the in-flight state. An error
    /// leaves them in flight: the next run looks them up first.
    pub async fn verify(&self, refused: Vec<Refused>) -> Result<Vec<Settled>> {
        let keys: Vec<String> = refused.iter().map(|r| r.key.clone()).collect();
        let found = self.lookup(&keys).await?;
        let mut outcomes = Vec::with_capacity(refused.len());
        let mut settled = Vec::with_capacity(refused.len());
        for record in refused {
            match found.get(&record.key) {
                Some(found) => {
                    outcomes.push(Outcome::Done {
                        key: record.key.clone(),
                        target_id: found.id.clone(),
                        target_number: found.number.clone(),
                        hash: Some(record.hash),
                    });
                    settled.push(Settled::Written {
                        key: record.key,
                        id: found.id.clone(),
                        number: found.number.clone(),
                        note: Some(record.message),
                    });
                }
                None => {
                    outcomes.push(Outcome::Failed {
                        key: record.key.clone(),
                        message: record.message.clone(),
                        field: record.field,
                        hash: Some(record.hash),
                        // The ledger has kept it since the record was marked in flight.
                        source: None,
                        modified: record.modified,
                    });
                    settled.push(Settled::Failed {
                        key: record.key,
                        message: record.message,
                    });
                }
            }
        }
        self.store
            .record_outcomes(&self.flow.name, &outcomes, self.clock.now())?;
        Ok(settled)
    }

    /// The most keys one lookup call takes (none without a lookup).
    pub fn max_keys(&self) -> usize {
        self.flow
            .target
            .lookup_operation()
            .and_then(|operation| operation.rows.as_ref())
            .map_or(1, |rows| rows.max_keys.max(1) as usize)
    }

    async fn write_batch(
        &self,
        batch: Vec<Outgoing>,
        defer_refusals: bool,
    ) -> Result<Vec<Settled>> {
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
        drop(pending);
        // From here on the ledger keeps each record's source (a refusal is parked with the one
        // kept there): the batch lets its sources go before the send. With every writer busy,
        // they were most of what a run holds.
        let batch: Vec<Outgoing> = batch.into_iter().map(Outgoing::without_source).collect();
        let mut outcomes: Vec<Outcome> = Vec::new();
        let mut settled = Vec::new();
        let mut remaining: Vec<(usize, &Outgoing)> = batch.iter().enumerate().collect();
        let sends_allowed = self.client.retry_attempts().max(RESEND_ROUNDS);
        let mut sends = 0;
        while !remaining.is_empty() {
            sends += 1;
            let (body, parts) = self.request(&remaining)?;
            let operation = self.flow.target.operation();
            let mut busy: Option<String> = None;
            let payload = payload(operation, Payload::Serialised(body), &self.inputs);
            let per_record: Vec<RecordResult> = match self
                .client
                .call(operation, &self.flow.envelopes, &parts, payload, false)
                .await
            {
                Ok(reply) => {
                    let (per_record, refused_as_busy) = self.read_reply(&reply, &remaining);
                    busy = refused_as_busy;
                    per_record
                }
                Err(CallError::Uncertain(_)) => vec![RecordResult::Unknown; remaining.len()],
                Err(err) => {
                    self.store
                        .record_outcomes(flow_name, &outcomes, self.clock.now())?;
                    return Err(err.into_error());
                }
            };
            // Whatever is not confirmed as written is looked up: an unknown outcome, and a refusal,
            // which may be a "duplicate key" of an earlier uncertain send in any wording. A flow
            // without a lookup parks refusals as they are (an unknown outcome stops it). A clear
            // refusal (not busy) is never sent again, so its lookup may wait (`defer_refusals`):
            // it is returned as `Settled::Refused`, still in flight, and looked up with others.
            let can_look_up = self.flow.target.lookup_operation().is_some();
            let defer = defer_refusals && can_look_up && busy.is_none();
            let to_verify: Vec<usize> = per_record
                .iter()
                .enumerate()
                .filter(|(_, result)| match result {
                    RecordResult::Done { .. } => false,
                    RecordResult::Failed { .. } => can_look_up && !defer,
                    RecordResult::Unknown => true,
                })
                .map(|(i, _)| i)
                .collect();
            let found = if to_verify.is_empty() {
                HashMap::new()
            } else {
                let keys: Vec<String> = to_verify
                    .iter()
                    .map(|i| remaining[*i].1.mapped.key.clone())
                    .collect();
                match self.lookup(&keys).await {
                    Ok(found) => found,
                    Err(err) => {
                        self.store
                            .record_outcomes(flow_name, &outcomes, self.clock.now())?;
                        return Err(err);
                    }
                }
            };
            let mut resend = Vec::new();
            for (&(at, record), result) in remaining.iter().zip(per_record) {
                let key = record.mapped.key.clone();
                let hash = Some(record.mapped.hash.clone());
                match (result, found.get(&key)) {
                    (RecordResult::Done { id, number, .. }, _) => {
                        settled.push(Settled::Written {
                            key: key.clone(),
                            id: id.clone(),
                            number: number.clone(),
                            note: None,
                        });
                        outcomes.push(Outcome::Done {
                            key,
                            target_id: id,
                            target_number: number,
                            hash,
                        });
                    }
                    (result, Some(found)) => {
                        let note = match result {
                            RecordResult::Failed { message, .. } if busy.is_none() => Some(message),
                            _ => None,
                        };
                        settled.push(Settled::Written {
                            key: key.clone(),
                            id: found.id.clone(),
                            number: found.number.clone(),
                            note,
                        });
                        outcomes.push(Outcome::Done {
                            key,
                            target_id: found.id.clone(),
                            target_number: found.number.clone(),
                            hash,
                        });
                    }
                    (RecordResult::Failed { .. }, None) if busy.is_some() => {
                        resend.push((at, record))
                    }
                    (RecordResult::Failed { message, field }, None) if defer => {
                        settled.push(Settled::Refused(Refused {
                            key,
                            message,
                            field,
                            hash: record.mapped.hash.clone(),
                            modified: record.mapped.modified.clone(),
                        }));
                    }
                    (RecordResult::Failed { message, field }, None) => {
                        settled.push(Settled::Failed {
                            key: key.clone(),
                            message: message.clone(),
                        });
                        outcomes.push(Outcome::Failed {
                            key,
                            message,
                            field,
                            hash,
                            // The ledger has kept it since the batch was marked in flight.
                            source: None,
                            modified: record.mapped.modified.clone(),
                        });
                    }
                    (RecordResult::Unknown, None) => resend.push((at, record)),
                }
            }
            remaining = resend;
            if remaining.is_empty() {
                break;
            }
            if sends >= sends_allowed {
                settled.extend(remaining.iter().map(|(_, record)| Settled::Unresolved {
                    key: record.mapped.key.clone(),
                    sends,
                }));
                break;
            }
            let why = busy.as_deref().unwrap_or(
                "the outcome of a write was unknown and its records are not in the target",
            );
            self.client
                .pause(
                    sends,
                    &format!("{why}; sending {} record(s) again", remaining.len()),
                )
                .await;
        }
        self.store
            .record_outcomes(flow_name, &outcomes, self.clock.now())?;
        Ok(settled)
    }
}

impl Writer {
    /// Each record's result in a write's reply, and the message when the target refused the
    /// call as busy (its records not found are sent again).
    fn read_reply(
        &self,
        reply: &Reply,
        remaining: &[(usize, &Outgoing)],
    ) -> (Vec<RecordResult>, Option<String>) {
        let results =
            (self.flow.target.operation().results.as_ref()).expect("write operations have results");
        let busy = match &reply.verdict {
            Verdict::Retryable { message, .. } => Some(message.clone()),
            _ => None,
        };
        match results {
            Results::One(one) => {
                let answer = Answer {
                    status: reply.status,
                    headers: &reply.headers,
                    body: &reply.body,
                    verdict: &reply.verdict,
                };
                let result = results::classify_one(one, &self.flow.envelopes, &answer);
                // A duplicate is looked up and found, never sent again as if the target were busy.
                let busy =
                    busy.filter(|_| !results::is_duplicate(one, &self.flow.envelopes, &answer));
                // One record: `write_request` refuses to build a one-record call for more.
                (vec![result], busy)
            }
            Results::Batch(batch) => {
                let keys: Vec<String> = remaining
                    .iter()
                    .map(|(_, o)| o.mapped.key.clone())
                    .collect();
                let mut per_record = results::classify(batch, &reply.body, &keys);
                if !matches!(batch.matched_by, MatchedBy::Key(_))
                    && positions_disagree(&per_record, &keys)
                {
                    per_record = vec![RecordResult::Unknown; remaining.len()];
                }
                if let Verdict::Failed { message, code } = &reply.verdict
                    && per_record.iter().all(|r| *r == RecordResult::Unknown)
                    && !batch.lists_refusals(&reply.body)
                {
                    // The call as a whole was refused (nothing per record): every record fails with that reason.
                    let code = code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default();
                    per_record = vec![
                        RecordResult::Failed {
                            message: format!("{message}{code}"),
                            field: None
                        };
                        remaining.len()
                    ];
                }
                (per_record, busy)
            }
        }
    }
}

/// The body and the path, query and headers of one write call carrying `batch`. A write
/// without `batch:` takes exactly one record: its answer is that record's result, so one call
/// for several would give every record the first one's result (or send only the first).
fn write_request(
    flow: &Flow,
    inputs: &Json,
    targets: request::Keyed,
    env: &Env,
) -> Result<(Json, request::Parts, request::Keyed)> {
    one_record_check(flow, targets.len())?;
    request::write_request(flow, inputs, targets, env).map_err(body_error)
}

/// A write without `batch:` takes exactly one record: its answer is that record's result, so
/// one call for several would give every record the first one's result (or send only the
/// first).
fn one_record_check(flow: &Flow, records: usize) -> Result<()> {
    if flow.target.operation().batch.is_none() && records != 1 {
        return Err(Error::new(
            ErrorKind::State,
            format!(
                "the write `{}` takes one record per call, and was given {records}",
                flow.target.operation().name,
            ),
        ));
    }
    Ok(())
}

fn body_error(err: crate::tree::EvalError) -> Error {
    Error::config(format!("cannot build the request body: {}", err.message))
        .with_location(err.location)
}

/// The keys and mapped targets of `batch`, parsed from their texts.
fn keyed<'a>(batch: impl IntoIterator<Item = &'a Outgoing>) -> request::Keyed {
    batch
        .into_iter()
        .map(|o| (o.mapped.key.clone(), o.mapped.target()))
        .collect()
}

/// Whether `rows.not_found` says the keys asked are not in the target. Only an answer that
/// succeeded, or a 404/410, can say so: a failed envelope in a 200 (`{"code": 40001, "msg":
/// "token invalid"}`) would otherwise make every key look absent and be sent twice. Any other
/// answer goes on to [`Writer::refused_lookup`], which stops the run.
fn says_not_found(flow: &Flow, rows: &Rows, reply: &Reply) -> bool {
    let Some(not_found) = rows.not_found else {
        return false;
    };
    if reply.verdict != Verdict::Success && !matches!(reply.status, 404 | 410) {
        return false;
    }
    let scope = response_scope(reply.status, &reply.headers, &reply.body);
    (flow.envelopes.eval(not_found, &scope)).is_ok_and(|v| v.is_true())
}

/// What a call sends: the operation's JSON body, or without one its parameters (as its
/// `encoding` says: in the query of a `GET /customers?external_id=…`, or a form).
fn payload(operation: &Operation, body: Payload, inputs: &Json) -> Payload {
    match (&operation.body, inputs) {
        (None, Json::Object(params)) => Payload::Fields(params.clone()),
        _ => body,
    }
}

/// Whether a reply's positions contradict its own numbers: a record reported saved under the
/// key of another record of the batch. Its indexes cannot be trusted then, and every record is
/// looked up instead.
fn positions_disagree(per_record: &[RecordResult], keys: &[String]) -> bool {
    per_record
        .iter()
        .zip(keys)
        .any(|(result, key)| match result {
            RecordResult::Done {
                number: Some(number),
                ..
            } => number != key && keys.contains(number),
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config;

    fn outgoing(flow: &Flow, id: u64) -> Outgoing {
        let source = Arc::new(json!({
            "id": id, "first_name": "Ann", "last_name": "Lee", "email": "ann@example.com",
            "phone": "1", "address": {"city": "Oslo", "country": "no"},
            "updated_at": "2024-01-01T00:00:00Z"
        }));
        Outgoing {
            mapped: crate::record::map(flow, Arc::clone(&source)).unwrap(),
            source: Source::Json(source),
            window: None,
        }
    }

    /// A flow writing to an API whose envelope carries a code in every 200, and whose lookup
    /// says "not found" with an empty `data` (or a 404).
    fn coded_api_flow(dir: &std::path::Path) -> Flow {
        let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
        std::fs::create_dir_all(dir.join("connectors")).unwrap();
        write(
            "connectors/in.yaml",
            "name: in\nfile: { path: ../in.jsonl, format: jsonl }\n",
        );
        write(
            "connectors/api.yaml",
            r#"name: api
base_url: "http://127.0.0.1:9"
auth: { strategy: none }
envelope: { success: "body.code == 0", message: "body.msg" }
operations:
  create: { kind: write, method: POST, path: /c, encoding: json, body: "{{ record }}", results: { id: body.id } }
  find:
    kind: lookup
    method: GET
    path: /c
    encoding: query
    query: { key: "{{ key }}" }
    rows: { path: "$.data[*]", key: row.key, id: row.id, max_keys: 1, not_found: "not body.data or status == 404" }
"#,
        );
        write(
            "flow.yaml",
            "source: { connector: in, operation: read }\ntarget: { connector: api, operation: create, lookup: find }\nkey: { source: \"{{ id }}\", target: key }\nmapping: { key: \"{{ id }}\" }\n",
        );
        let loaded = config::load_flow(&dir.join("flow.yaml"));
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        loaded.value.unwrap()
    }

    #[test]
    fn not_found_is_believed_only_from_a_successful_answer_or_a_404() {
        let dir = tempfile::tempdir().unwrap();
        let flow = coded_api_flow(dir.path());
        let rows = flow
            .target
            .lookup_operation()
            .unwrap()
            .rows
            .as_ref()
            .unwrap();
        let failed = |message: &str| Verdict::Failed {
            code: None,
            message: message.into(),
        };
        // Status, body, the envelope's verdict, and whether the keys are not in the target.
        let table = [
            (200, json!({"code": 0, "data": []}), Verdict::Success, true),
            (
                200,
                json!({"code": 0, "data": [{"key": "A", "id": 1}]}),
                Verdict::Success,
                false,
            ),
            (
                404,
                json!({"code": 404, "msg": "no such key"}),
                failed("no such key"),
                true,
            ),
            // A token gone bad answers 200 without `data`: the lookup failed, it did not
            // find the keys absent (they would be sent again).
            (
                200,
                json!({"code": 40001, "msg": "token invalid"}),
                failed("token invalid"),
                false,
            ),
        ];
        for (status, body, verdict, expected) in table {
            let reply = Reply {
                status,
                headers: Vec::new(),
                body: Arc::new(body.clone()),
                texts: None,
                verdict,
            };
            assert_eq!(
                says_not_found(&flow, rows, &reply),
                expected,
                "{status} {body}"
            );
        }
    }

    /// The shipped example writes one customer per call (`POST /customers`, no `batch:`).
    #[test]
    fn a_one_record_write_given_two_records_is_an_error_not_one_call() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let loaded = config::load_flow(&root.join("mappings/examples/shop_customers.yaml"));
        let flow = loaded.value.expect("the shipped example compiles");
        assert!(flow.target.operation().batch.is_none());
        let env = Env::from([
            ("CRM_URL".to_string(), "http://127.0.0.1:9".to_string()),
            ("CRM_TOKEN".to_string(), "t".to_string()),
        ]);
        let inputs = request::target_inputs(&flow, &env).unwrap();
        let one = [outgoing(&flow, 1)];
        let (.., back) = write_request(&flow, &inputs, keyed(&one), &env).unwrap();
        assert_eq!(
            back,
            keyed(&one),
            "the record lent to the request comes back as it was"
        );
        // Whatever its shape: a record that is a list comes back whole, not as its items.
        let list = vec![("K1".to_string(), serde_json::json!([{"a": 1}, {"a": 2}]))];
        let (.., back) = write_request(&flow, &inputs, list.clone(), &env).unwrap();
        assert_eq!(back, list);
        let two = [outgoing(&flow, 1), outgoing(&flow, 2)];
        let error = write_request(&flow, &inputs, keyed(&two), &env).unwrap_err();
        assert!(
            error
                .message()
                .contains("takes one record per call, and was given 2"),
            "{}",
            error.message()
        );
    }
}
