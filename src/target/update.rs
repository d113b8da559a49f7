//! Sending a changed record to a key the target already holds, one record per call, each step
//! recorded before it is sent.
//!
//! Under `on_change: update` the record goes through the update operation by the target id the
//! ledger recorded; a target that refuses because the record is audited (the operation's
//! `audited`) may, when the flow says `allow_unaudit: true`, have it un-audited (`unaudit`
//! actions), updated again, and audited again (`reaudit` actions); otherwise the change is
//! parked as a `conflict` with the target's message. Under `on_change: upsert` it goes through
//! the write operation again, which creates or updates. The ledger row stays done throughout:
//! the step and the new content live in `state`'s table of updates, written (synced) before
//! each call, so a crash at any point is finished by the next run or `engine retry` from that
//! step. Every call is idempotent (an update sends the same content; an action's `already`
//! counts "already in that state" as done), so an uncertain answer is answered by the
//! client's retries and, after them, by the next run sending the step again — never by a
//! lookup. The order of steps is the pure function [`next`], tested below.

use std::sync::Arc;

use minijinja::Value;
use serde_json::Value as Json;

use crate::config::model::Operation;
use crate::error::{Error, ErrorKind, Result};
use crate::http::client::{CallError, Payload, Reply};
use crate::http::envelope::{Verdict, response_scope};
use crate::request;
use crate::state::{Entry, PendingUpdate, Step, UpdateEnd};
use crate::target::writer::{Outgoing, Settled, Writer};
use crate::template;

/// What one answer of an update, upsert or action call said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Accepted.
    Done,
    /// Refused because the record is audited (an update's `audited`).
    Audited { message: String },
    /// Refused because the record already is in the state the action produces (its `already`).
    Already,
    /// Any other definite refusal.
    Refused { message: String },
}

/// The shape of a flow's update: whether it may un-audit, and how many actions each way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub allow_unaudit: bool,
    pub unaudit: usize,
    pub reaudit: usize,
}

/// What comes after an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Send this step, with the refusal to park the change with once the record is audited
    /// again (if any).
    Send(Step, Option<String>),
    Finish(UpdateEnd),
}

/// The step after `step` answered `answer`, `refused` being the refusal met after un-auditing.
pub fn next(plan: Plan, step: Step, answer: Answer, refused: Option<&str>) -> Next {
    let reaudit_or = |refused: Option<String>, end: UpdateEnd| match plan.reaudit {
        0 => Next::Finish(end),
        _ => Next::Send(Step::Reaudit(0), refused),
    };
    let applied = UpdateEnd::Applied {
        target_id: None,
        target_number: None,
    };
    match (step, answer) {
        (Step::Update | Step::Upsert, Answer::Done | Answer::Already) => Next::Finish(applied),
        (Step::Update, Answer::Audited { .. }) if plan.allow_unaudit && plan.unaudit > 0 => {
            Next::Send(Step::Unaudit(0), None)
        }
        (Step::Update, Answer::Audited { message }) if plan.unaudit > 0 => {
            Next::Finish(UpdateEnd::Refused {
                message: format!(
                    "{message} (the flow may un-audit, update and audit it again with `allow_unaudit: true`)"
                ),
            })
        }
        (
            Step::Update | Step::Upsert,
            Answer::Audited { message } | Answer::Refused { message },
        ) => Next::Finish(UpdateEnd::Refused { message }),
        (Step::Unaudit(n), Answer::Done | Answer::Already) if n + 1 < plan.unaudit => {
            Next::Send(Step::Unaudit(n + 1), None)
        }
        (Step::Unaudit(_), Answer::Done | Answer::Already) => {
            Next::Send(Step::UpdateAfterUnaudit, None)
        }
        (Step::Unaudit(n), Answer::Audited { message } | Answer::Refused { message }) => {
            let message = format!("un-auditing it was refused: {message}");
            match n {
                // Nothing changed yet: the record is as it was.
                0 => Next::Finish(UpdateEnd::Refused { message }),
                _ => reaudit_or(Some(message.clone()), UpdateEnd::Refused { message }),
            }
        }
        (Step::UpdateAfterUnaudit, Answer::Done | Answer::Already) => reaudit_or(None, applied),
        (Step::UpdateAfterUnaudit, Answer::Audited { message } | Answer::Refused { message }) => {
            reaudit_or(Some(message.clone()), UpdateEnd::Refused { message })
        }
        (Step::Reaudit(n), Answer::Done | Answer::Already) if n + 1 < plan.reaudit => {
            Next::Send(Step::Reaudit(n + 1), refused.map(str::to_string))
        }
        (Step::Reaudit(_), Answer::Done | Answer::Already) => Next::Finish(match refused {
            Some(message) => UpdateEnd::Refused {
                message: message.to_string(),
            },
            None => applied,
        }),
        (Step::Reaudit(_), Answer::Audited { message } | Answer::Refused { message }) => {
            Next::Finish(match refused {
                Some(first) => UpdateEnd::Refused {
                    message: format!("{first}; auditing it again was refused too: {message}"),
                },
                None => UpdateEnd::AppliedThenRefused {
                    message: format!("updated, but auditing it again was refused: {message}"),
                },
            })
        }
    }
}

/// How one update ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Updated {
    /// The target holds the new content.
    Applied { key: String },
    /// Parked as a `conflict` with this message (the target may hold the new content, when
    /// only auditing it again was refused).
    Parked { key: String, message: String },
}

/// Send each record of `batch`, a changed version of a written key, through the flow's update
/// (one call per step, one record after the other): written when the target took it, failed
/// (parked as a conflict) when it refused. An error stops the run; the update under way stays
/// in the ledger.
pub async fn update_batch(writer: &Writer, batch: Vec<Outgoing>) -> Result<Vec<Settled>> {
    let flow = &writer.flow.name;
    let Some(updater) = Updater::new(writer)? else {
        return Err(Error::new(
            ErrorKind::State,
            format!("flow `{flow}` sends no changes, yet an update was asked for"),
        ));
    };
    let keys: Vec<String> = batch.iter().map(|o| o.mapped.key.clone()).collect();
    let entries = writer.store.entries(flow, &keys)?;
    let mut settled = Vec::with_capacity(batch.len());
    for record in &batch {
        let key = &record.mapped.key;
        let entry = entries.get(key).ok_or_else(|| {
            Error::new(
                ErrorKind::State,
                format!("record `{key}` has no ledger row; it cannot be updated"),
            )
        })?;
        settled.push(match updater.update(entry, record).await? {
            Updated::Applied { key } => Settled::Written {
                key,
                id: entry.target_id.clone(),
                number: entry.target_number.clone(),
                note: None,
            },
            Updated::Parked { key, message } => Settled::Failed { key, message },
        });
    }
    Ok(settled)
}

/// Sends changed records of one flow through its update (or upsert) operation.
pub struct Updater<'a> {
    writer: &'a Writer,
    plan: Plan,
    inputs: Json,
    unaudit: Vec<Json>,
    reaudit: Vec<Json>,
}

impl<'a> Updater<'a> {
    /// The updater of the writer's flow; `None` when the flow does not send changes.
    pub fn new(writer: &'a Writer) -> Result<Option<Updater<'a>>> {
        let flow = &writer.flow;
        let Some(update) = &flow.target.update else {
            return Ok(None);
        };
        let evaluate = |params| {
            request::operation_inputs(flow, params, &writer.env).map_err(|err| {
                Error::config(format!(
                    "cannot evaluate the update's params: {}",
                    err.message
                ))
                .with_location(err.location)
            })
        };
        let inputs = evaluate(&update.params)?;
        let unaudit = update
            .unaudit
            .iter()
            .map(|a| evaluate(&a.params))
            .collect::<Result<_>>()?;
        let reaudit = update
            .reaudit
            .iter()
            .map(|a| evaluate(&a.params))
            .collect::<Result<_>>()?;
        let plan = Plan {
            allow_unaudit: flow.target.allow_unaudit,
            unaudit: update.unaudit.len(),
            reaudit: update.reaudit.len(),
        };
        Ok(Some(Updater {
            writer,
            plan,
            inputs,
            unaudit,
            reaudit,
        }))
    }

    /// Send `record`, a changed version of the written key of `entry`, and finish it. An error
    /// leaves the update under way in the ledger: the next run or `engine retry` finishes it.
    pub async fn update(&self, entry: &Entry, record: &Outgoing) -> Result<Updated> {
        let upsert = self.writer.flow.target.on_change == crate::config::raw::OnChange::Upsert;
        let pending = PendingUpdate {
            key: record.mapped.key.clone(),
            hash: record.mapped.hash.clone(),
            step: if upsert { Step::Upsert } else { Step::Update },
            record: record.mapped.target(),
            source: record.source.whole()?,
            modified: record.mapped.modified.clone(),
            refused: None,
            sends: 0,
        };
        let flow = &self.writer.flow.name;
        self.writer
            .store
            .begin_update(flow, &pending, self.writer.clock.now())?;
        self.resume(entry, pending).await
    }

    /// Finish every update an earlier run left under way, from its step.
    pub async fn resume_all(&self) -> Result<Vec<Updated>> {
        let flow = &self.writer.flow.name;
        let pending = self.writer.store.pending_updates(flow)?;
        let keys: Vec<String> = pending.iter().map(|p| p.key.clone()).collect();
        let entries = self.writer.store.entries(flow, &keys)?;
        let mut ended = Vec::with_capacity(pending.len());
        for update in pending {
            let Some(entry) = entries.get(&update.key) else {
                return Err(Error::new(
                    ErrorKind::State,
                    format!(
                        "an update of record `{}` is under way but the ledger has no row for it",
                        update.key
                    ),
                ));
            };
            ended.push(self.resume(entry, update).await?);
        }
        Ok(ended)
    }

    /// Go on with `update` from its step until it ends.
    async fn resume(&self, entry: &Entry, mut update: PendingUpdate) -> Result<Updated> {
        let store = &self.writer.store;
        let flow = &self.writer.flow.name;
        let (target_id, target_number) = self.target_ids(entry).await?;
        if target_id.is_none() && update.step != Step::Upsert {
            // Without the id an update could only create a second record.
            let end = UpdateEnd::Refused {
                message: "the target id of this record is unknown (the ledger has none and the lookup found none); it cannot be updated".to_string(),
            };
            store.finish_update(flow, &update.key, &end, self.writer.clock.now())?;
            let UpdateEnd::Refused { message } = end else {
                unreachable!()
            };
            return Ok(Updated::Parked {
                key: update.key,
                message,
            });
        }
        loop {
            let answer = self
                .send(&update, target_id.as_deref(), target_number.as_deref())
                .await?;
            match next(self.plan, update.step, answer, update.refused.as_deref()) {
                Next::Send(step, refused) => {
                    store.update_step(
                        flow,
                        &update.key,
                        step,
                        refused.as_deref(),
                        self.writer.clock.now(),
                    )?;
                    update.step = step;
                    if refused.is_some() {
                        update.refused = refused;
                    }
                }
                Next::Finish(end) => {
                    store.finish_update(flow, &update.key, &end, self.writer.clock.now())?;
                    let key = update.key;
                    return Ok(match end {
                        UpdateEnd::Applied { .. } => Updated::Applied { key },
                        UpdateEnd::Refused { message }
                        | UpdateEnd::AppliedThenRefused { message } => {
                            Updated::Parked { key, message }
                        }
                    });
                }
            }
        }
    }

    /// The target id and number of the written key; looked up when the ledger lacks the id
    /// (a key confirmed by a lookup that found its number only).
    async fn target_ids(&self, entry: &Entry) -> Result<(Option<String>, Option<String>)> {
        if entry.target_id.is_some() || self.writer.flow.target.lookup.is_none() {
            return Ok((entry.target_id.clone(), entry.target_number.clone()));
        }
        let found = self.writer.lookup(std::slice::from_ref(&entry.key)).await?;
        Ok(match found.get(&entry.key) {
            Some(found) => (
                found.id.clone(),
                found.number.clone().or(entry.target_number.clone()),
            ),
            None => (None, entry.target_number.clone()),
        })
    }

    /// Send `update`'s step once (the client retries what is transient) and classify the answer.
    async fn send(
        &self,
        update: &PendingUpdate,
        target_id: Option<&str>,
        target_number: Option<&str>,
    ) -> Result<Answer> {
        let flow = &self.writer.flow;
        let target = &flow.target;
        let (operation, inputs, with_record) = match update.step {
            Step::Upsert => (target.operation(), &self.writer.inputs, true),
            Step::Update | Step::UpdateAfterUnaudit => (
                target.update_operation().expect("an updater has an update"),
                &self.inputs,
                true,
            ),
            Step::Unaudit(n) => (self.action(n, true), &self.unaudit[n], false),
            Step::Reaudit(n) => (self.action(n, false), &self.reaudit[n], false),
        };
        let built = if update.step == Step::Upsert {
            let keyed = vec![(update.key.clone(), update.record.clone())];
            request::write_request(flow, inputs, keyed, &self.writer.env)
                .map(|(body, parts, _)| (body, parts))
        } else {
            let text = |value: Option<&str>| value.map_or(Value::from(()), Value::from);
            let mut names = vec![
                (Arc::from("key"), Value::from(update.key.as_str())),
                (Arc::from("target_id"), text(target_id)),
                (Arc::from("target_number"), text(target_number)),
            ];
            if with_record {
                names.push((Arc::from("record"), template::from_json(&update.record)));
            }
            request::one_record_request(flow, operation, inputs, names, &self.writer.env)
        };
        let (body, parts) = built.map_err(|err| {
            Error::config(format!(
                "cannot build the request of `{}` for record `{}`: {}",
                operation.name, update.key, err.message
            ))
            .with_location(err.location)
        })?;
        let reply = self
            .writer
            .client
            .call(operation, &flow.envelopes, &parts, Payload::Json(body), true)
            .await
            .map_err(|err| match err {
                CallError::Uncertain(err) | CallError::Unavailable(err) => err.with_hint(
                    "the update stays under way in the ledger: the next run, `engine retry` or `engine resend` sends this step again",
                ),
                other => other.into_error(),
            })?;
        Ok(self.classify(operation, &reply))
    }

    fn action(&self, n: usize, unaudit: bool) -> &Operation {
        let update = self.writer.flow.target.update.as_ref().expect("an update");
        let name = match unaudit {
            true => &update.unaudit[n].operation,
            false => &update.reaudit[n].operation,
        };
        &self.writer.flow.target.connector.operations[name]
    }

    fn classify(&self, operation: &Operation, reply: &Reply) -> Answer {
        let holds = |id| {
            let scope = response_scope(reply.status, &reply.headers, &reply.body);
            self.writer
                .flow
                .envelopes
                .eval(id, &scope)
                .is_ok_and(|v| v.is_true())
        };
        match &reply.verdict {
            Verdict::Success => Answer::Done,
            Verdict::Failed { code, message } => {
                if operation.already.is_some_and(holds) {
                    return Answer::Already;
                }
                let code = code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default();
                let message = format!("{message}{code}");
                match operation.audited.is_some_and(holds) {
                    true => Answer::Audited { message },
                    false => Answer::Refused { message },
                }
            }
            // Not returned for an idempotent call: the client repeats or fails instead.
            other => Answer::Refused {
                message: format!("unexpected answer {other:?}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(message: &str) -> UpdateEnd {
        UpdateEnd::Refused {
            message: message.to_string(),
        }
    }

    #[test]
    fn each_answer_leads_to_the_next_step_or_to_the_end() {
        let applied = UpdateEnd::Applied {
            target_id: None,
            target_number: None,
        };
        let kingdee = Plan {
            allow_unaudit: true,
            unaudit: 1,
            reaudit: 2,
        };
        let forbidden = Plan {
            allow_unaudit: false,
            ..kingdee
        };
        let audited = || Answer::Audited {
            message: "已审核".to_string(),
        };
        let no = |m: &str| Answer::Refused {
            message: m.to_string(),
        };
        let send = |step| Next::Send(step, None);
        let cases = [
            // (plan, step, answer, refused so far) → next
            (
                kingdee,
                Step::Update,
                Answer::Done,
                None,
                Next::Finish(applied.clone()),
            ),
            (
                kingdee,
                Step::Upsert,
                Answer::Done,
                None,
                Next::Finish(applied.clone()),
            ),
            (
                kingdee,
                Step::Update,
                no("bad"),
                None,
                Next::Finish(refused("bad")),
            ),
            (
                kingdee,
                Step::Upsert,
                no("bad"),
                None,
                Next::Finish(refused("bad")),
            ),
            (
                kingdee,
                Step::Update,
                audited(),
                None,
                send(Step::Unaudit(0)),
            ),
            (
                forbidden,
                Step::Update,
                audited(),
                None,
                Next::Finish(refused(
                    "已审核 (the flow may un-audit, update and audit it again with `allow_unaudit: true`)",
                )),
            ),
            (
                Plan {
                    unaudit: 0,
                    ..kingdee
                },
                Step::Update,
                audited(),
                None,
                Next::Finish(refused("已审核")),
            ),
            (
                kingdee,
                Step::Unaudit(0),
                Answer::Done,
                None,
                send(Step::UpdateAfterUnaudit),
            ),
            (
                kingdee,
                Step::Unaudit(0),
                Answer::Already,
                None,
                send(Step::UpdateAfterUnaudit),
            ),
            (
                Plan {
                    unaudit: 2,
                    ..kingdee
                },
                Step::Unaudit(0),
                Answer::Done,
                None,
                send(Step::Unaudit(1)),
            ),
            (
                kingdee,
                Step::Unaudit(0),
                no("locked"),
                None,
                Next::Finish(refused("un-auditing it was refused: locked")),
            ),
            (
                Plan {
                    unaudit: 2,
                    ..kingdee
                },
                Step::Unaudit(1),
                no("locked"),
                None,
                Next::Send(
                    Step::Reaudit(0),
                    Some("un-auditing it was refused: locked".to_string()),
                ),
            ),
            (
                kingdee,
                Step::UpdateAfterUnaudit,
                Answer::Done,
                None,
                send(Step::Reaudit(0)),
            ),
            (
                Plan {
                    reaudit: 0,
                    ..kingdee
                },
                Step::UpdateAfterUnaudit,
                Answer::Done,
                None,
                Next::Finish(applied.clone()),
            ),
            (
                kingdee,
                Step::UpdateAfterUnaudit,
                no("bad qty"),
                None,
                Next::Send(Step::Reaudit(0), Some("bad qty".to_string())),
            ),
            (
                kingdee,
                Step::Reaudit(0),
                Answer::Done,
                None,
                send(Step::Reaudit(1)),
            ),
            (
                kingdee,
                Step::Reaudit(0),
                Answer::Already,
                None,
                send(Step::Reaudit(1)),
            ),
            (
                kingdee,
                Step::Reaudit(0),
                Answer::Done,
                Some("bad qty"),
                Next::Send(Step::Reaudit(1), Some("bad qty".to_string())),
            ),
            (
                kingdee,
                Step::Reaudit(1),
                Answer::Done,
                None,
                Next::Finish(applied.clone()),
            ),
            (
                kingdee,
                Step::Reaudit(1),
                Answer::Already,
                None,
                Next::Finish(applied),
            ),
            (
                kingdee,
                Step::Reaudit(1),
                Answer::Done,
                Some("bad qty"),
                Next::Finish(refused("bad qty")),
            ),
            (
                kingdee,
                Step::Reaudit(1),
                no("workflow"),
                None,
                Next::Finish(UpdateEnd::AppliedThenRefused {
                    message: "updated, but auditing it again was refused: workflow".to_string(),
                }),
            ),
            (
                kingdee,
                Step::Reaudit(0),
                no("workflow"),
                Some("bad qty"),
                Next::Finish(refused(
                    "bad qty; auditing it again was refused too: workflow",
                )),
            ),
        ];
        for (plan, step, answer, so_far, expected) in cases {
            assert_eq!(
                next(plan, step, answer.clone(), so_far),
                expected,
                "{step} answered {answer:?} ({plan:?}, refused {so_far:?})"
            );
        }
    }
}
