//! The Kingdee sandbox's injected faults: server errors, conflicts (per call or per bill, and
//! the conflict list), commits whose answer is dropped, and the mishaps armed for the next
//! calls or drawn at seeded rates.

use serde_json::{Value, json};

use super::*;

#[test]
fn commit_then_drop_saves_the_bill_but_never_answers() {
    let kingdee = Kingdee::start(&["--kingdee-commit-then-drop-rate", "1"]);
    let session = kingdee.login();
    let outcome = kingdee.try_post(
        &Kingdee::path_of("DynamicFormService.BatchSave"),
        &batch(vec![bill("RT-LOST", "TX-RED-M")]),
        &session,
    );
    assert!(
        outcome.is_err(),
        "the client must see no response: {outcome:?}"
    );
    let bills = kingdee.sim("GET", "bills", None);
    assert_eq!(bills[0]["FBillNo"], "RT-LOST");
    assert_eq!(kingdee.sim("GET", "stats", None)["drops_injected"], 1);
    // The careful client queries before resending, and finds the bill.
    let query = kingdee.post(
        "DynamicFormService.ExecuteBillQuery",
        json!({"data": {"FormId": "SAL_RETURNSTOCK", "FieldKeys": "FID", "FilterString": "FBillNo='RT-LOST'"}}),
        &session,
    );
    assert_eq!(query.json(), json!([[100001]]));
}

#[test]
fn injected_errors_and_conflicts_save_nothing() {
    let kingdee = Kingdee::start(&["--kingdee-error-rate", "1"]);
    let session_reply = kingdee.try_post(
        &Kingdee::path_of("AuthService.ValidateUser"),
        &json!({"parameters": ["65a1b2c3d4e5f6", "apiuser", "x", 2052]}),
        &[],
    );
    assert_eq!(session_reply.unwrap().status, 500);
    let faults = kingdee.sim(
        "PUT",
        "faults",
        Some(json!({"error_rate": 0.0, "conflict_rate": 1.0})),
    );
    assert_eq!(faults["conflict_rate"], 1.0);
    let session = kingdee.login();
    let reply = kingdee.post(
        "DynamicFormService.BatchSave",
        batch(vec![bill("RT-9", "TX-RED-M")]),
        &session,
    );
    let status = &reply.json()["Result"]["ResponseStatus"];
    assert_eq!(status["MsgCode"], 13);
    assert_eq!(
        status["Errors"][0]["Message"],
        "“Administrator”使用业务单据：“销售退货单”业务操作-“[销售退货单-RT-9-保存]”冲突，请稍候再使用。"
    );
    assert!(
        kingdee
            .sim("GET", "bills", None)
            .as_array()
            .unwrap()
            .is_empty()
    );
    let stats = kingdee.sim("GET", "stats", None);
    assert_eq!(
        (
            stats["errors_injected"].as_u64(),
            stats["conflicts_injected"].as_u64()
        ),
        (Some(1), Some(1))
    );
}

#[test]
fn a_conflict_on_one_bill_lets_the_others_through() {
    let kingdee = Kingdee::start(&[
        "--kingdee-conflict-rate",
        "1",
        "--kingdee-conflict-scope",
        "bill",
    ]);
    let session = kingdee.login();
    let reply = kingdee.post(
        "DynamicFormService.BatchSave",
        batch(vec![
            bill("RT-1", "TX-RED-M"),
            bill("RT-2", "TX-RED-M"),
            bill("RT-3", "NO-SUCH-SKU"),
        ]),
        &session,
    );
    let status = &reply.json()["Result"]["ResponseStatus"];
    assert_eq!(status["MsgCode"], 13);
    assert_eq!(status["IsSuccess"], false);
    assert_eq!(status["Errors"][0]["DIndex"], 0);
    assert!(
        status["Errors"][0]["Message"]
            .as_str()
            .unwrap()
            .contains("[销售退货单-RT-1-保存]”冲突，请稍候再使用。"),
        "{status}"
    );
    assert_eq!(
        status["Errors"][1]["DIndex"], 2,
        "the unknown material, at its own place"
    );
    assert_eq!(status["SuccessEntitys"][0]["DIndex"], 1);
    assert_eq!(status["SuccessEntitys"][0]["Number"], "RT-2");
    let saved: Vec<String> = kingdee
        .sim("GET", "bills", None)
        .as_array()
        .unwrap()
        .iter()
        .map(|bill| bill["FBillNo"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(saved, vec!["RT-2".to_string()]);
}

#[test]
fn bills_on_the_conflict_list_meet_msg_code_13_and_the_others_are_saved() {
    let kingdee = Kingdee::start(&[
        "--kingdee-conflict-bill-no",
        "RT-2",
        "--kingdee-conflict-bill-no",
        "RT-4",
    ]);
    let session = kingdee.login();
    let reply = kingdee.post(
        "DynamicFormService.BatchSave",
        batch(vec![
            bill("RT-1", "TX-RED-M"),
            bill("RT-2", "TX-RED-M"),
            bill("RT-3", "NO-SUCH-SKU"),
            bill("RT-4", "TX-RED-M"),
        ]),
        &session,
    );
    let status = &reply.json()["Result"]["ResponseStatus"];
    assert_eq!(
        (
            &status["IsSuccess"],
            &status["MsgCode"],
            &status["ErrorCode"]
        ),
        (&json!(false), &json!(13), &json!(500))
    );
    let errors: Vec<(u64, bool)> = status["Errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| {
            let message = error["Message"].as_str().unwrap();
            (
                error["DIndex"].as_u64().unwrap(),
                message.ends_with("冲突，请稍候再使用。"),
            )
        })
        .collect();
    // The unknown material misses two required fields of its line.
    assert_eq!(
        errors,
        [(1, true), (2, false), (2, false), (3, true)],
        "{status}"
    );
    assert_eq!(
        status["SuccessEntitys"],
        json!([{"Id": 100001, "Number": "RT-1", "DIndex": 0}])
    );
    assert_eq!(kingdee.bill_numbers(), ["RT-1"]);
    // A call of listed bills only is refused whole; once the list is cleared they save.
    let reply = kingdee.post(
        "DynamicFormService.BatchSave",
        batch(vec![bill("RT-4", "TX-RED-M")]),
        &session,
    );
    assert_eq!(reply.json()["Result"]["ResponseStatus"]["MsgCode"], 13);
    let faults = kingdee.sim("PUT", "faults", Some(json!({"conflict_bill_nos": []})));
    assert_eq!(faults["conflict_bill_nos"], json!([]));
    let reply = kingdee.post(
        "DynamicFormService.BatchSave",
        batch(vec![bill("RT-4", "TX-RED-M")]),
        &session,
    );
    assert_eq!(reply.json()["Result"]["ResponseStatus"]["IsSuccess"], true);
    assert_eq!(kingdee.bill_numbers(), ["RT-1", "RT-4"]);
}

/// What a client gets for one armed mishap, and whether its bills were saved.
struct MishapCase {
    armed: Value,
    /// Bills sent in one BatchSave.
    sent: &'static [&'static str],
    content_type: &'static str,
    check: fn(&str),
    saved: &'static [&'static str],
}

fn not_json_but_the_start_of_a_save_answer(text: &str) {
    assert!(serde_json::from_str::<Value>(text).is_err(), "{text}");
    assert!(
        text.starts_with(r#"{"Result":{"ResponseStatus":{"IsSuccess":true"#),
        "{text}"
    );
}

fn one_entity_of_two_left_out(text: &str) {
    let body: Value = serde_json::from_str(text).unwrap();
    let status = &body["Result"]["ResponseStatus"];
    assert_eq!(status["IsSuccess"], true, "{body}");
    assert_eq!(status["Errors"], json!([]), "{body}");
    assert_eq!(
        status["SuccessEntitys"].as_array().unwrap().len(),
        1,
        "{body}"
    );
}

#[test]
fn mishaps_armed_for_the_next_save_answer_in_their_documented_shapes() {
    let cases = [
        MishapCase {
            armed: json!({"mishap": "msgcode", "on": "save"}),
            sent: &["RT-1"],
            content_type: "application/json; charset=utf-8",
            check: |text| assert_eq!(text, SESSION_LOST),
            saved: &[],
        },
        MishapCase {
            armed: json!({"mishap": "msgcode", "msgcode": 1, "done": true}),
            sent: &["RT-1"],
            content_type: "application/json; charset=utf-8",
            check: |text| assert_eq!(text, SESSION_LOST),
            saved: &["RT-1"],
        },
        MishapCase {
            armed: json!({"mishap": "response_error"}),
            sent: &["RT-1"],
            content_type: "text/plain; charset=utf-8",
            check: |text| assert!(text.starts_with("response_error:"), "{text}"),
            saved: &[],
        },
        MishapCase {
            armed: json!({"mishap": "html_login", "on": "save"}),
            sent: &["RT-1"],
            content_type: "text/html; charset=utf-8",
            check: |text| {
                assert!(text.starts_with("<!DOCTYPE html>"), "{text}");
                assert!(text.contains("type=\"password\""), "{text}");
            },
            saved: &[],
        },
        MishapCase {
            armed: json!({"mishap": "truncated_json"}),
            sent: &["RT-1", "RT-2"],
            content_type: "application/json; charset=utf-8",
            check: not_json_but_the_start_of_a_save_answer,
            saved: &["RT-1", "RT-2"],
        },
        MishapCase {
            armed: json!({"mishap": "missing_entity"}),
            sent: &["RT-1", "RT-2"],
            content_type: "application/json; charset=utf-8",
            check: one_entity_of_two_left_out,
            saved: &["RT-1", "RT-2"],
        },
    ];
    for case in cases {
        let kingdee = Kingdee::start(&[]);
        let session = kingdee.login();
        let faults = kingdee.sim("POST", "faults/next", Some(case.armed.clone()));
        assert_eq!(faults["next"].as_array().unwrap().len(), 1, "{faults}");
        let sent = case.sent.iter().map(|no| bill(no, "TX-RED-M")).collect();
        let reply = kingdee.post("DynamicFormService.BatchSave", batch(sent), &session);
        assert_eq!(
            (reply.status, reply.content_type.as_str()),
            (200, case.content_type),
            "{}",
            case.armed
        );
        (case.check)(&reply.text);
        assert_eq!(kingdee.bill_numbers(), case.saved, "{}", case.armed);
        let stats = kingdee.sim("GET", "stats", None);
        assert_eq!(stats["mishaps_injected"], 1, "{}: {stats}", case.armed);
        assert_eq!(kingdee.sim("GET", "faults", None)["next"], json!([]));
    }
}

#[test]
fn a_missing_entity_armed_unsaved_leaves_a_bill_out_of_the_answer_and_the_table() {
    let kingdee = Kingdee::start(&[]);
    let session = kingdee.login();
    kingdee.sim(
        "POST",
        "faults/next",
        Some(json!({"mishap": "missing_entity", "saved": false})),
    );
    let reply = kingdee.post(
        "DynamicFormService.BatchSave",
        batch(vec![bill("RT-1", "TX-RED-M"), bill("RT-2", "TX-RED-M")]),
        &session,
    );
    let body = reply.json();
    one_entity_of_two_left_out(&reply.text);
    let reported = body["Result"]["ResponseStatus"]["SuccessEntitys"][0].clone();
    // The bill the answer names is the one saved, at its own position in the call.
    let saved = kingdee.bill_numbers();
    assert_eq!(saved.len(), 1);
    assert_eq!(reported["Number"], saved[0].as_str());
    let position = if saved[0] == "RT-1" { 0 } else { 1 };
    assert_eq!(reported["DIndex"], position);
}

#[test]
fn mishaps_hit_only_the_calls_they_are_armed_for_and_as_many_as_armed() {
    let kingdee = Kingdee::start(&["--kingdee-arm", "msgcode:2:query"]);
    let session = kingdee.login();
    let query = json!({"data": {"FormId": "SAL_RETURNSTOCK", "FieldKeys": "FID"}});
    let saved = kingdee.post(
        "DynamicFormService.BatchSave",
        batch(vec![bill("RT-1", "TX-RED-M")]),
        &session,
    );
    assert_eq!(saved.json()["Result"]["ResponseStatus"]["IsSuccess"], true);
    for _ in 0..2 {
        let reply = kingdee.post(
            "DynamicFormService.ExecuteBillQuery",
            query.clone(),
            &session,
        );
        assert_eq!(reply.text, format!("[[{SESSION_LOST}]]"));
    }
    let reply = kingdee.post(
        "DynamicFormService.ExecuteBillQuery",
        query.clone(),
        &session,
    );
    assert_eq!(reply.json(), json!([[100001]]));
    // A MsgCode other than 1, and an HTML page even for a login.
    kingdee.sim(
        "POST",
        "faults/next",
        Some(json!({"mishap": "msgcode", "msgcode": 14, "on": "query"})),
    );
    kingdee.sim(
        "POST",
        "faults/next",
        Some(json!({"mishap": "html_login", "on": "login"})),
    );
    let reply = kingdee.post("DynamicFormService.BillQuery", query, &session);
    assert_eq!(reply.json()["Result"]["ResponseStatus"]["MsgCode"], 14);
    let login = kingdee.post(
        "AuthService.ValidateUser",
        json!({"parameters": [kingdee.var("KINGDEE_ACCT_ID"), kingdee.var("KINGDEE_USERNAME"), kingdee.var("KINGDEE_PASSWORD"), 2052]}),
        &[],
    );
    assert!(login.content_type.starts_with("text/html"), "{login:?}");
    assert!(login.set_cookies.is_empty());
    let refused = kingdee
        .client
        .post(format!("{}/_sim/faults/next", kingdee.root()))
        .body(json!({"mishap": "msgcode", "on": "login"}).to_string())
        .send()
        .unwrap();
    assert_eq!(refused.status().as_u16(), 400);
    let error: Value = refused.json().unwrap();
    assert_eq!(
        error["error"],
        "a `msgcode` mishap never hits `login` calls"
    );
    let disarmed = kingdee.sim("DELETE", "faults/next", None);
    assert_eq!(disarmed["next"], json!([]));
}

#[test]
fn mishap_rates_follow_the_seed() {
    let counts = |seed: &str| {
        let kingdee = Kingdee::start(&[
            "--seed",
            seed,
            "--kingdee-truncated-json-rate",
            "0.3",
            "--kingdee-response-error-rate",
            "0.3",
        ]);
        let mut shapes = Vec::new();
        for _ in 0..20 {
            let reply = kingdee.post("AuthService.Logout", json!({}), &[]);
            shapes.push(if reply.text.starts_with("response_error:") {
                'e'
            } else if serde_json::from_str::<Value>(&reply.text).is_err() {
                't'
            } else {
                'j'
            });
        }
        let stats = kingdee.sim("GET", "stats", None);
        let injected = shapes.iter().filter(|shape| **shape != 'j').count();
        assert_eq!(stats["mishaps_injected"], injected);
        shapes.into_iter().collect::<String>()
    };
    let first = counts("3");
    assert_eq!(first, counts("3"), "the same seed, the same mishaps");
    for shape in ['e', 't', 'j'] {
        assert!(first.contains(shape), "{first}");
    }
}

#[test]
fn malformed_mishap_switches_are_usage_errors() {
    for (args, needle) in [
        (&["--kingdee-arm", "msgcode:x"][..], "CALLS must be a count"),
        (&["--kingdee-arm", "typo"][..], "the mishap is one of"),
        (&["--kingdee-arm", "msgcode:1:login"][..], "never hits"),
        (&["--kingdee-msgcode", "16"][..], "16"),
        (&["--kingdee-html-login-rate", "2"][..], "html_login_rate"),
    ] {
        let output = crate::support::Engine::new()
            .args(["sim", "kingdee"])
            .args(args.iter().copied())
            .run()
            .code(2);
        assert!(
            output.stderr.contains(needle),
            "{args:?}: {}",
            output.stderr
        );
    }
}
