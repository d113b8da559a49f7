//! One `Save` or `BatchSave` call around [`save::save`]: the bills withheld from it (an injected
//! or listed network-control conflict, a bill a `missing_entity` mishap leaves unsaved), the
//! answer put back together, a saved bill left out of it, the async begin, and commit-then-drop.
//!
//! Called by `service` once the call is authorised. No IO.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::sim::kingdee::body::{RawCall, scalar_text};
use crate::sim::kingdee::envelope::{self, MsgCode};
use crate::sim::kingdee::faults::Injection;
use crate::sim::kingdee::mishap::{self, Mishap, Plan};
use crate::sim::kingdee::route::Service;
use crate::sim::kingdee::save::{self, SaveConfig, SaveKind, SaveOutcome};
use crate::sim::kingdee::service::{After, Response, call_error};
use crate::sim::kingdee::state::{Outcome, State};
use crate::sim::kingdee::withhold;

/// The answer to a save beyond the sandbox's capacity (MsgCode 13: "the server is busy, try
/// again later").
pub const BUSY_MESSAGE: &str = "服务器繁忙，请稍后再试。";

/// The action a save's conflict message names.
const SAVE_ACTION: &str = "保存";

pub fn save_call(
    state: &mut State,
    config: &SaveConfig,
    service: Service,
    call: &RawCall,
    injection: Injection,
    plan: Option<Plan>,
    now: DateTime<Utc>,
) -> (Response, Outcome) {
    let mut form = match call.form_call() {
        Ok(form) => form,
        Err(err) => return (call_error(service, err), Outcome::Failed),
    };
    // Bills withheld from the save: one an injected conflict locks (the first of the call:
    // the whole call with scope `call`, that bill alone with scope `bill`), those on the
    // conflict list, and one a `missing_entity` mishap leaves unsaved.
    let numbers: Vec<String> = withhold::packets(&form.data)
        .into_iter()
        .map(withhold::bill_no)
        .collect();
    let batch = matches!(
        form.data
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case("Model")),
        Some((_, Value::Array(_)))
    );
    if injection == Injection::Busy {
        let body = envelope::failure(MsgCode::NetworkControlConflict, None, BUSY_MESSAGE);
        return (Response::json(body), Outcome::Busy);
    }
    let locked = match withhold::locked(
        &state.faults,
        injection == Injection::Conflict,
        &numbers,
        batch,
    ) {
        Ok(locked) => locked,
        Err(number) => {
            let message = withhold::conflict_message(&number, SAVE_ACTION);
            let body = envelope::failure(MsgCode::NetworkControlConflict, None, message);
            return (Response::json(body), Outcome::InjectedConflict);
        }
    };
    let unsaved = match plan {
        Some(plan) if plan.mishap == Mishap::MissingEntity && !plan.saved && batch => {
            Some(unsaved_position(state, numbers.len(), &locked))
        }
        _ => None,
    };
    let mut withheld: BTreeSet<usize> = locked.iter().map(|(position, _)| *position).collect();
    withheld.extend(unsaved);
    if withheld.len() >= numbers.len() && !withheld.is_empty() {
        // Only the silently unsaved bill was left: the answer says all is well, with nothing.
        let body = json!({"Result": {
            "ResponseStatus": envelope::response_status(&[], &[]),
            "NeedReturnData": [],
        }});
        return (Response::json(body), Outcome::Mishap(Mishap::MissingEntity));
    }
    let kept = withhold::take_out(&mut form.data, &withheld);
    let kind = match service {
        Service::Save => SaveKind::Save,
        _ => SaveKind::BatchSave,
    };
    let config = SaveConfig {
        batch_mode: state.faults.batch_mode,
        ..config.clone()
    };
    let mut outcome = save::save(&mut state.bills, &state.basedata, &config, kind, &form, now);
    if !withheld.is_empty() {
        withhold::restore_positions(&mut outcome.body, &kept);
        if !locked.is_empty() {
            withhold::add_conflicts(&mut outcome.body, &locked, SAVE_ACTION);
        }
    }
    let left_out = match plan {
        Some(plan) if plan.mishap == Mishap::MissingEntity && unsaved.is_none() => {
            mishap::leave_out_entity(&mut outcome.body, state.random.unit()).is_some()
        }
        _ => unsaved.is_some(),
    };
    state.stats.bills_created += outcome.created as u64;
    state.stats.bills_updated += outcome.updated as u64;
    state.stats.packets_rejected += outcome.rejected as u64;
    state.stats.duplicates_rejected += outcome.duplicates as u64;
    let result = classify(&outcome, !locked.is_empty(), left_out);
    let packets = outcome.packets;
    let mut response = Response::json(begin_or_answer(state, call, outcome.body));
    response.bills = packets;
    if injection == Injection::CommitThenDrop {
        response.after = After::DropConnection;
        return (response, Outcome::Dropped);
    }
    (response, result)
}

/// Which of the bills not locked by a conflict a `missing_entity` mishap leaves unsaved.
fn unsaved_position(state: &mut State, bills: usize, locked: &[(usize, String)]) -> usize {
    let free: Vec<usize> = (0..bills)
        .filter(|position| !locked.iter().any(|(locked, _)| locked == position))
        .collect();
    let pick = ((state.random.unit() * free.len() as f64) as usize).min(free.len() - 1);
    free[pick]
}

/// What the stats count a save call as.
fn classify(outcome: &SaveOutcome, conflict: bool, left_out: bool) -> Outcome {
    match (outcome.committed(), outcome.rejected > 0) {
        _ if conflict => Outcome::InjectedConflict,
        _ if left_out => Outcome::Mishap(Mishap::MissingEntity),
        (_, false) if outcome.packets > 0 => Outcome::Ok,
        (true, true) => Outcome::Partial,
        _ => Outcome::Failed,
    }
}

/// The answer, or, for an asynchronous `BeginQueryImpl` call, a task id to fetch it by later.
fn begin_or_answer(state: &mut State, call: &RawCall, body: Value) -> Value {
    let async_begin = call
        .named("beginmethod")
        .and_then(scalar_text)
        .is_some_and(|method| method.eq_ignore_ascii_case("BeginQueryImpl"));
    if async_begin {
        let task_id = state.random.hex_id(32);
        state.tasks.insert(task_id.clone(), body);
        json!({"Status": 0, "TaskId": task_id, "Result": null})
    } else {
        body
    }
}
