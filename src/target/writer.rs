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

use crate::config::model::{Flow, MatchedBy, Operation, Results};
use crate::error::{Error, ErrorKind, Result};
use crate::http::client::{CallError, Client, Payload, Reply};
use crate::http::envelope::{Verdict, response_scope};
use crate::record::Mapped;
use crate::request::{self, Env};
use crate::state::{Outcome, Pending, Store};
use crate::target::results::{self, Answer, RecordResult};
use crate::template;
use crate::template::scope::Scope;
use crate::time::Clock;

/// A mapped record ready to write, with what the ledger keeps about it.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub mapped: Mapped,
    pub source: Arc<Json>,
    pub window: Option<usize>,
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
/// "duplicate" of an earlier send whose answer was lost, so it is looked up before it is parked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub key: String,
    pub message: String,
    pub field: Option<String>,
    pub hash: String,
    pub source: Arc<Json>,
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
            let payload = payload(operation, body, &self.lookup_inputs);
            let reply = self
                .client
                .call(operation, &self.flow.envelopes, &parts, payload, true)
                .await
                .map_err(CallError::into_error)?;
            if let Some(not_found) = rows.not_found {
                let scope = response_scope(reply.status, &reply.headers, &reply.body);
                if (self.flow.envelopes.eval(not_found, &scope)).is_ok_and(|v| v.is_true()) {
                    continue;
                }
            }
            // Without `not_found`, a 404 is never read as "not there", whatever the envelope
            // says: a wrong path would make every record look absent and be sent twice.
            let refused = match &reply.verdict {
                Verdict::Failed { code, message } => Some((code.clone(), message.clone())),
                _ if reply.status == 404 => Some((None, "the API answered HTTP 404".to_string())),
                _ => None,
            };
            if let Some((code, message)) = refused {
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
                return Err(error);
            }
            let selected = rows.path.select(&reply.body);
            if selected.is_empty()
                && let Some(list) = rows.path.text.strip_suffix("[*]")
                && let Ok(query) = jsonpath_rust::parser::parse_json_path(list)
            {
                let list = crate::config::model::JsonPath {
                    text: list.to_string(),
                    query,
                };
                if !matches!(list.select(&reply.body).as_slice(), [Json::Array(_)]) {
                    return Err(Error::new(
                        ErrorKind::Api,
                        format!(
                            "the answer to the lookup `{}` has no list at `{}`: it cannot say which keys are absent",
                            operation.name, list.text
                        ),
                    )
                    .with_hint("check `rows.path` against what the API answers"));
                }
            }
            for row in selected {
                let ctx = minijinja::Value::from_object(Scope::named(vec![(
                    Arc::from("row"),
                    template::from_json(row),
                )]));
                let text = |id| -> Option<String> {
                    let value = self
                        .flow
                        .envelopes
                        .eval(id, &ctx)
                        .ok()
                        .filter(|v| !v.is_undefined() && !v.is_none())?;
                    Some(
                        value
                            .as_str()
                            .map_or_else(|| value.to_string(), str::to_string),
                    )
                    .filter(|s| !s.is_empty())
                };
                let key = text(rows.key);
                let Some(key) = key.clone().filter(|k| chunk.contains(k)) else {
                    // A row of another key (a filter the API ignored, a key it rewrote): the
                    // answer cannot say which asked key is absent.
                    return Err(Error::new(
                        ErrorKind::Api,
                        format!(
                            "the lookup `{}` answered a row whose key is {}, none of the {} key(s) asked",
                            operation.name,
                            key.map_or("empty".to_string(), |k| format!("`{k}`")),
                            chunk.len()
                        ),
                    )
                    .with_hint("check that the lookup filters by key as the API expects, and that `rows.key` reads the key as it was sent"));
                };
                {
                    found.insert(
                        key,
                        Found {
                            id: text(rows.id),
                            number: rows.number.and_then(text),
                        },
                    );
                }
            }
        }
        Ok(found)
    }

    /// The body of one write call carrying `batch` (what a dry run prints).
    pub fn body<'a>(&self, batch: impl IntoIterator<Item = &'a Outgoing>) -> Result<Json> {
        self.request(batch).map(|(body, _)| body)
    }

    /// The body and the path, query and headers of one write call.
    fn request<'a>(
        &self,
        batch: impl IntoIterator<Item = &'a Outgoing>,
    ) -> Result<(Json, request::Parts)> {
        let targets: request::Keyed = batch
            .into_iter()
            .map(|o| (o.mapped.key.clone(), o.mapped.target.clone()))
            .collect();
        request::write_request(&self.flow, &self.inputs, targets, &self.env).map_err(|err| {
            Error::config(format!("cannot build the request body: {}", err.message))
                .with_location(err.location)
        })
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
                        source: Some((*record.source).clone()),
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
        let pending: Vec<Pending> = batch
            .iter()
            .map(|o| Pending {
                key: o.mapped.key.clone(),
                hash: o.mapped.hash.clone(),
                source: (*o.source).clone(),
                target: o.mapped.target.clone(),
                modified: o.mapped.modified.clone(),
            })
            .collect();
        self.store
            .mark_in_flight(flow_name, &pending, self.clock.now())?;
        let mut outcomes: Vec<Outcome> = Vec::new();
        let mut settled = Vec::new();
        let mut remaining: Vec<&Outgoing> = batch.iter().collect();
        let sends_allowed = self.client.retry_attempts().max(RESEND_ROUNDS);
        let mut sends = 0;
        while !remaining.is_empty() {
            sends += 1;
            let (body, parts) = self.request(remaining.iter().copied())?;
            let operation = self.flow.target.operation();
            let mut busy: Option<String> = None;
            let payload = payload(operation, body, &self.inputs);
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
                    .map(|i| remaining[*i].mapped.key.clone())
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
            for (record, result) in remaining.iter().zip(per_record) {
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
                    (RecordResult::Failed { .. }, None) if busy.is_some() => resend.push(*record),
                    (RecordResult::Failed { message, field }, None) if defer => {
                        settled.push(Settled::Refused(Refused {
                            key,
                            message,
                            field,
                            hash: record.mapped.hash.clone(),
                            source: Arc::clone(&record.source),
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
                            source: Some((*record.source).clone()),
                            modified: record.mapped.modified.clone(),
                        });
                    }
                    (RecordResult::Unknown, None) => resend.push(*record),
                }
            }
            remaining = resend;
            if remaining.is_empty() {
                break;
            }
            if sends >= sends_allowed {
                settled.extend(remaining.iter().map(|record| Settled::Unresolved {
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
        remaining: &[&Outgoing],
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
                (vec![result; remaining.len()], busy)
            }
            Results::Batch(batch) => {
                let keys: Vec<String> = remaining.iter().map(|o| o.mapped.key.clone()).collect();
                let mut per_record = results::classify(batch, &reply.body, &keys);
                if !matches!(batch.matched_by, MatchedBy::Key(_))
                    && positions_disagree(&per_record, remaining)
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

/// What a call sends: the operation's JSON body, or without one its parameters (as its
/// `encoding` says: in the query of a `GET /customers?external_id=…`, or a form).
fn payload(operation: &Operation, body: Json, inputs: &Json) -> Payload {
    match (&operation.body, inputs) {
        (None, Json::Object(params)) => Payload::Fields(params.clone()),
        _ => Payload::Json(body),
    }
}

/// Whether a reply's positions contradict its own numbers: a record reported saved under the
/// key of another record of the batch. Its indexes cannot be trusted then, and every record is
/// looked up instead.
fn positions_disagree(per_record: &[RecordResult], batch: &[&Outgoing]) -> bool {
    per_record
        .iter()
        .zip(batch)
        .any(|(result, record)| match result {
            RecordResult::Done {
                number: Some(number),
                ..
            } => {
                number != &record.mapped.key
                    && batch.iter().any(|other| &other.mapped.key == number)
            }
            _ => false,
        })
}
