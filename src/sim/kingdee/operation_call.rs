//! One `Submit`, `Audit` or `UnAudit` call around [`operation::apply`], with the same faults as
//! a save: busy beyond the capacity, network-control conflicts (injected or on listed bill
//! numbers, naming the operation), a bill a `missing_entity` mishap leaves out of the answer
//! (done, or with `saved: false` not done), and commit-then-drop.
//!
//! Called by `service` once the call is authorised. No IO.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::sim::kingdee::body::RawCall;
use crate::sim::kingdee::envelope::{self, MsgCode};
use crate::sim::kingdee::faults::Injection;
use crate::sim::kingdee::mishap::{self, Mishap, Plan};
use crate::sim::kingdee::operation::{self, Operation, Target};
use crate::sim::kingdee::route::Service;
use crate::sim::kingdee::save_call::BUSY_MESSAGE;
use crate::sim::kingdee::service::{After, Response, call_error};
use crate::sim::kingdee::state::{Outcome, State};
use crate::sim::kingdee::withhold;

pub fn operation_call(
    state: &mut State,
    service: Service,
    call: &RawCall,
    injection: Injection,
    plan: Option<Plan>,
    now: DateTime<Utc>,
) -> (Response, Outcome) {
    let operation = match service {
        Service::Submit => Operation::Submit,
        Service::Audit => Operation::Audit,
        _ => Operation::UnAudit,
    };
    let form = match call.form_call() {
        Ok(form) => form,
        Err(err) => return (call_error(service, err), Outcome::Failed),
    };
    let targets = match operation::read_targets(&form) {
        Ok(targets) => targets,
        Err(body) => return (Response::json(body), Outcome::Failed),
    };
    if injection == Injection::Busy {
        let body = envelope::failure(MsgCode::NetworkControlConflict, None, BUSY_MESSAGE);
        return (Response::json(body), Outcome::Busy);
    }
    let numbers: Vec<String> = targets
        .iter()
        .map(|target| target.bill_no(&state.bills))
        .collect();
    let action = operation.caption();
    let locked = match withhold::locked(
        &state.faults,
        injection == Injection::Conflict,
        &numbers,
        true,
    ) {
        Ok(locked) => locked,
        Err(number) => {
            let message = withhold::conflict_message(&number, action);
            let body = envelope::failure(MsgCode::NetworkControlConflict, None, message);
            return (Response::json(body), Outcome::InjectedConflict);
        }
    };
    let unsaved = match plan {
        Some(plan) if plan.mishap == Mishap::MissingEntity && !plan.saved => {
            let free: Vec<usize> = (0..targets.len())
                .filter(|position| !locked.iter().any(|(locked, _)| locked == position))
                .collect();
            let pick = ((state.random.unit() * free.len() as f64) as usize).min(free.len() - 1);
            Some(free[pick])
        }
        _ => None,
    };
    let mut withheld: BTreeSet<usize> = locked.iter().map(|(position, _)| *position).collect();
    withheld.extend(unsaved);
    if withheld.len() >= targets.len() {
        // Only the silently skipped bill was left: the answer says all is well, with nothing.
        let body = json!({"Result": {"ResponseStatus": envelope::response_status(&[], &[])}});
        return (Response::json(body), Outcome::Mishap(Mishap::MissingEntity));
    }
    let count = targets.len();
    let kept: Vec<(usize, Target)> = targets
        .into_iter()
        .enumerate()
        .filter(|(position, _)| !withheld.contains(position))
        .collect();
    let mut outcome = operation::apply(&mut state.bills, operation, &kept, now);
    if !locked.is_empty() {
        withhold::add_conflicts(&mut outcome.body, &locked, action);
    }
    let left_out = match plan {
        Some(plan) if plan.mishap == Mishap::MissingEntity && unsaved.is_none() => {
            mishap::leave_out_entity(&mut outcome.body, state.random.unit()).is_some()
        }
        _ => unsaved.is_some(),
    };
    let counter = match operation {
        Operation::Submit => &mut state.stats.bills_submitted,
        Operation::Audit => &mut state.stats.bills_audited,
        Operation::UnAudit => &mut state.stats.bills_unaudited,
    };
    *counter += outcome.done as u64;
    let result = match (outcome.done > 0, outcome.refused > 0) {
        _ if !locked.is_empty() => Outcome::InjectedConflict,
        _ if left_out => Outcome::Mishap(Mishap::MissingEntity),
        (_, false) => Outcome::Ok,
        (true, true) => Outcome::Partial,
        (false, true) => Outcome::Failed,
    };
    let mut response = Response::json(outcome.body);
    response.bills = count;
    if injection == Injection::CommitThenDrop {
        response.after = After::DropConnection;
        return (response, Outcome::Dropped);
    }
    (response, result)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::Value;

    use super::*;
    use crate::sim::CommonOptions;
    use crate::sim::kingdee::body;
    use crate::sim::kingdee::save::{self, SaveConfig, SaveKind};
    use crate::sim::kingdee::{KingdeeOptions, initial_state};

    fn now() -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000, 0).unwrap()
    }

    /// A sandbox holding `RT-1`, `RT-2`, `RT-3` in status A.
    fn sandbox() -> State {
        let (mut state, _, _) =
            initial_state(&CommonOptions::default(), &KingdeeOptions::default()).unwrap();
        let packets: Vec<Value> = (1..=3)
            .map(|n| {
                json!({
                    "FBillTypeID": {"FNUMBER": "XSTHD01_SYS"},
                    "FBillNo": format!("RT-{n}"),
                    "FSaleOrgId": {"FNumber": "100"},
                    "FStockOrgId": {"FNumber": "100"},
                    "FRetcustId": {"FNumber": "CUST0001"},
                    "FEntity": [{"FMaterialId": {"FNumber": "TX-RED-M"}, "FRealQty": 1, "FStockId": {"FNumber": "CK001"}}],
                })
            })
            .collect();
        let form = body::parse(
            None,
            json!({"formid": "SAL_RETURNSTOCK", "data": {"Model": packets}})
                .to_string()
                .as_bytes(),
        )
        .unwrap()
        .form_call()
        .unwrap();
        let saved = save::save(
            &mut state.bills,
            &state.basedata,
            &SaveConfig::default(),
            SaveKind::BatchSave,
            &form,
            now(),
        );
        assert_eq!(saved.created, 3);
        state
    }

    fn run(
        state: &mut State,
        service: Service,
        data: Value,
        injection: Injection,
        plan: Option<Plan>,
    ) -> (Value, Outcome, After) {
        let call = body::parse(
            None,
            json!({"formid": "SAL_RETURNSTOCK", "data": data})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        let (response, outcome) = operation_call(state, service, &call, injection, plan, now());
        let body = serde_json::from_str(&response.body).unwrap();
        (body, outcome, response.after)
    }

    fn statuses(state: &State) -> String {
        state
            .bills
            .bills()
            .iter()
            .map(|bill| bill.status.code())
            .collect()
    }

    #[test]
    fn submit_audit_unaudit_walk_a_bill_through_its_statuses() {
        let mut state = sandbox();
        let ids = json!({"Ids": "100001,100002"});
        for (service, data, expected_statuses, outcome) in [
            (Service::Audit, ids.clone(), "AAA", Outcome::Failed),
            (Service::Submit, ids.clone(), "BBA", Outcome::Ok),
            (
                Service::Submit,
                json!({"Numbers": ["RT-2", "RT-3"]}),
                "BBB",
                Outcome::Partial,
            ),
            (Service::Audit, json!({"Ids": 100001}), "CBB", Outcome::Ok),
            (Service::UnAudit, ids.clone(), "DBB", Outcome::Partial),
            (
                Service::Submit,
                json!({"Ids": "100001"}),
                "BBB",
                Outcome::Ok,
            ),
        ] {
            let (body, got, _) = run(&mut state, service, data.clone(), Injection::None, None);
            assert_eq!(
                statuses(&state),
                expected_statuses,
                "{service:?} {data}: {body}"
            );
            assert_eq!(got, outcome, "{service:?} {data}: {body}");
        }
        assert_eq!(
            (
                state.stats.bills_submitted,
                state.stats.bills_audited,
                state.stats.bills_unaudited
            ),
            (4, 1, 1)
        );
    }

    #[test]
    fn operations_meet_the_faults_of_a_save() {
        let bill_plan = |saved| Plan {
            saved,
            ..Plan::of(Mishap::MissingEntity, 1)
        };
        let all = json!({"Ids": "100001,100002,100003"});
        for (injection, plan, listed, expected_statuses, outcome, entities) in [
            (Injection::Busy, None, None, "AAA", Outcome::Busy, 0),
            (
                Injection::Conflict,
                None,
                None,
                "AAA",
                Outcome::InjectedConflict,
                0,
            ),
            (
                Injection::None,
                None,
                Some("RT-2"),
                "BAB",
                Outcome::InjectedConflict,
                2,
            ),
            (
                Injection::CommitThenDrop,
                None,
                None,
                "BBB",
                Outcome::Dropped,
                3,
            ),
            (
                Injection::None,
                Some(bill_plan(true)),
                None,
                "BBB",
                Outcome::Mishap(Mishap::MissingEntity),
                2,
            ),
            (
                Injection::None,
                Some(bill_plan(false)),
                None,
                "",
                Outcome::Mishap(Mishap::MissingEntity),
                2,
            ),
        ] {
            let mut state = sandbox();
            if let Some(number) = listed {
                state.faults.conflict_bill_nos = vec![number.to_string()];
            }
            let (body, got, after) = run(&mut state, Service::Submit, all.clone(), injection, plan);
            let status = &body["Result"]["ResponseStatus"];
            assert_eq!(got, outcome, "{injection:?} {plan:?}: {body}");
            assert_eq!(
                status["SuccessEntitys"].as_array().map_or(0, Vec::len),
                entities,
                "{injection:?} {plan:?}: {body}"
            );
            assert_eq!(
                after == After::DropConnection,
                injection == Injection::CommitThenDrop
            );
            let codes = statuses(&state);
            if expected_statuses.is_empty() {
                // One bill, picked at random, was silently not submitted.
                assert_eq!(codes.matches('B').count(), 2, "{codes}");
                assert_eq!(status["IsSuccess"], true);
            } else {
                assert_eq!(codes, expected_statuses, "{injection:?} {plan:?}: {body}");
            }
            if got == Outcome::InjectedConflict {
                assert_eq!(status["MsgCode"], 13);
                assert!(
                    status["Errors"][0]["Message"]
                        .as_str()
                        .unwrap()
                        .ends_with("-提交]”冲突，请稍候再使用。"),
                    "{body}"
                );
            }
        }
    }
}
