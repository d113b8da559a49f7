//! Changes carried to records already written (issue 11): `on_change: skip` says how many it
//! skipped, `engine resend` shows a mapping change field by field and updates each audited
//! Kingdee bill once (un-audit, save, submit, audit), and a resend killed between the steps is
//! finished by the next run, each bill updated and audited once.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::run::bill_numbers;
use crate::support::engine_binary;
use crate::support::sync::Sync;

const NOTE_END: &str = r#"{% endif %}"   # 备注"#;
const NOTE_END_V2: &str = r#"{% endif %}（第二版）"   # 备注"#;
const SKIP: &str =
    "  on_change: skip                  # an order already in Kingdee is never saved twice";
const UPDATE: &str = "  on_change: update\n  update: bill_update\n  allow_unaudit: true";

/// A sync of 20 orders, every one deliverable, read up to now.
fn synced() -> Sync {
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "20",
            "--wdt-days",
            "3",
            "--wdt-unknown-sku-share",
            "0",
        ],
        4,
    );
    sync.workspace
        .edit("mappings/refund.yaml", "    lag: 5s ", "    lag: 0s ");
    sync.run(&[]).success();
    sync
}

/// Calls of a Kingdee service so far (every outcome).
fn calls(sync: &Sync, service: &str) -> u64 {
    let stats = sync.kingdee("/_sim/stats");
    match &stats["requests"][format!("DynamicFormService.{service}")] {
        Value::Number(n) => n.as_u64().unwrap_or(0),
        Value::Object(outcomes) => outcomes.values().filter_map(Value::as_u64).sum(),
        _ => 0,
    }
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
}

/// Each bill's number with its note and status.
fn notes_and_statuses(sync: &Sync) -> Vec<(String, String, String)> {
    sync.bills()
        .iter()
        .map(|bill| {
            (
                text(&bill["FBillNo"]),
                text(&bill["FHeadNote"]),
                text(&bill["FDocumentStatus"]),
            )
        })
        .collect()
}

/// Updates under way in the ledger (read-only, beside the engine).
fn updates_under_way(sync: &Sync) -> u64 {
    let path = sync.workspace.path("state/state.db");
    let connection =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    connection
        .query_row("SELECT COUNT(*) FROM updates", [], |row| row.get(0))
        .unwrap()
}

#[test]
fn a_run_under_skip_says_how_many_written_records_changed_and_how_to_send_them() {
    let sync = synced();
    let changed = bill_numbers(&sync).into_iter().next().unwrap();
    sync.post_wdt(
        &format!("/_sim/orders/{changed}/touch"),
        json!({"refund_remark": "客户补充说明"}),
    );
    std::thread::sleep(Duration::from_millis(1100));
    let output = sync.run(&[]).success();
    assert!(
        output.stderr.contains(
            "1 record(s) changed since they were written and were skipped (`on_change: skip`); \
             `engine resend mappings/refund.yaml --dry-run` shows what changed"
        ),
        "{}",
        output.stderr
    );
    // The newest version was kept: the dry run shows the new remark, and sends nothing.
    let saves = calls(&sync, "BatchSave") + calls(&sync, "Save");
    let output = sync
        .engine(&["resend", "mappings/refund.yaml", "--dry-run"])
        .success();
    assert!(
        output.stdout.contains(&changed) && output.stdout.contains("客户补充说明"),
        "{}",
        output.stdout
    );
    assert!(output.stderr.contains("1 changed"), "{}", output.stderr);
    assert_eq!(calls(&sync, "BatchSave") + calls(&sync, "Save"), saves);
    // Without a mode that sends changes, a resend refuses and says what to set.
    let output = sync.engine(&["resend", "mappings/refund.yaml"]).code(2);
    assert!(
        output.stderr.contains("set `on_change: update`"),
        "{}",
        output.stderr
    );
}

#[test]
fn a_mapping_change_is_resent_to_each_audited_bill_once() {
    let sync = synced();
    let written = bill_numbers(&sync);
    assert!(
        notes_and_statuses(&sync)
            .iter()
            .all(|(_, _, status)| status == "C"),
        "the bundled flow audits its bills"
    );
    sync.workspace
        .edit("mappings/refund.yaml", NOTE_END, NOTE_END_V2);
    sync.workspace.edit("mappings/refund.yaml", SKIP, UPDATE);
    sync.engine(&["check", "mappings/refund.yaml"]).success();
    let services = ["Save", "UnAudit", "Submit", "Audit", "BatchSave"];
    let before: Vec<u64> = services.iter().map(|s| calls(&sync, s)).collect();

    let output = sync
        .engine(&["resend", "mappings/refund.yaml", "--dry-run"])
        .success();
    for number in &written {
        assert!(
            output
                .stdout
                .contains(&format!("{number}\n  FHeadNote: \"")),
            "{number} missing from:\n{}",
            output.stdout
        );
    }
    assert_eq!(
        output.stdout.matches("（第二版）\"\n").count(),
        written.len(),
        "one changed field per bill:\n{}",
        output.stdout
    );
    let unchanged: Vec<u64> = services.iter().map(|s| calls(&sync, s)).collect();
    assert_eq!(unchanged, before, "a dry run sends nothing");

    let output = sync.engine(&["resend", "mappings/refund.yaml"]).success();
    let n = written.len() as u64;
    assert!(
        output.stderr.contains(&format!("{n} updated, 0 parked")),
        "{}",
        output.stderr
    );
    let after: Vec<u64> = services.iter().map(|s| calls(&sync, s)).collect();
    // Each audited bill: one refused save, un-audit, save, submit, audit; no new bill.
    assert_eq!(
        after,
        vec![
            before[0] + 2 * n,
            before[1] + n,
            before[2] + n,
            before[3] + n,
            before[4]
        ],
        "calls of {services:?}"
    );
    assert_eq!(bill_numbers(&sync), written, "no bill twice, none new");
    for (number, note, status) in notes_and_statuses(&sync) {
        assert!(note.ends_with("（第二版）"), "{number}: {note}");
        assert_eq!(status, "C", "{number} is audited again");
    }

    // Nothing changed since: nothing is sent.
    let output = sync.engine(&["resend", "mappings/refund.yaml"]).success();
    assert!(output.stderr.contains(" 0 changed"), "{}", output.stderr);
    let again: Vec<u64> = services.iter().map(|s| calls(&sync, s)).collect();
    assert_eq!(again, after);
    // A run reads the orders again and finds them as written.
    let output = sync
        .run(&["--since", &sync.workspace.read(".start")])
        .success();
    assert!(output.stderr.contains(" 0 written"), "{}", output.stderr);
}

/// The run reads each order lean (only the nine fields the mapping reads are parsed), but the
/// ledger keeps it whole: a mapping changed later to read another field finds it there.
#[test]
fn a_resend_maps_a_field_the_first_mapping_did_not_read_from_the_kept_order() {
    let sync = synced();
    let written = bill_numbers(&sync);
    sync.workspace.edit(
        "mappings/refund.yaml",
        NOTE_END,
        r#"{% endif %}（物流 {{ logistics_no }}）"   # 备注"#,
    );
    sync.engine(&["check", "mappings/refund.yaml"]).success();
    let output = sync
        .engine(&["resend", "mappings/refund.yaml", "--dry-run"])
        .success();
    let mut checked = 0;
    for order in sync.orders() {
        let number = text(&order["order_no"]);
        if !written.contains(&number) {
            continue;
        }
        let heading = format!("{number}\n  FHeadNote: ");
        let at = output.stdout.find(&heading).unwrap_or_else(|| {
            panic!("{number} missing from:\n{}", output.stdout);
        });
        let line = output.stdout[at + heading.len()..].lines().next().unwrap();
        let expected = format!("（物流 {}）\"", text(&order["logistics_no"]));
        assert!(
            line.ends_with(&expected),
            "{number}: {line}, not {expected}"
        );
        checked += 1;
    }
    assert_eq!(checked, written.len());
    assert!(checked > 10, "{checked}");
}

#[test]
fn a_resend_killed_between_the_steps_is_finished_by_the_next_run_each_bill_updated_once() {
    let sync = synced();
    let written = bill_numbers(&sync);
    sync.workspace
        .edit("mappings/refund.yaml", NOTE_END, NOTE_END_V2);
    sync.workspace.edit("mappings/refund.yaml", SKIP, UPDATE);
    // Slow calls, so that the resend is met between two steps of some bill.
    sync.put_kingdee("/_sim/faults", json!({"latency_ms": 60}));
    let mut resend = Command::new(engine_binary())
        .args(["resend", "mappings/refund.yaml"])
        .current_dir(sync.workspace.root())
        .envs(&sync.env())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once some bills are un-audited and before every bill is audited again.
    loop {
        if calls(&sync, "UnAudit") >= 3 || resend.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    resend.kill().unwrap();
    resend.wait().unwrap();
    sync.put_kingdee("/_sim/faults", json!({"latency_ms": 0}));
    let under_way = updates_under_way(&sync);
    assert!(under_way >= 1, "killed between the steps of an update");
    sync.engine(&["state", "mappings/refund.yaml"])
        .success()
        .stdout_contains(&format!("updates under way: {under_way} (record `"));
    // The next run finishes the updates under way from their step, then reads as usual.
    let output = sync.run(&[]).success();
    assert!(
        output.stderr.contains(&format!(
            "{under_way} update(s) were under way when an earlier run stopped; finishing them first"
        )),
        "{}",
        output.stderr
    );
    assert_eq!(updates_under_way(&sync), 0);
    // A resend sends what the killed one did not reach; then every bill holds the new note,
    // audited, once.
    sync.engine(&["resend", "mappings/refund.yaml"]).success();
    assert_eq!(bill_numbers(&sync), written, "no bill twice, none new");
    let notes = notes_and_statuses(&sync);
    let stale: BTreeSet<&str> = notes
        .iter()
        .filter(|(_, note, status)| !note.ends_with("（第二版）") || status != "C")
        .map(|(number, _, _)| number.as_str())
        .collect();
    assert!(stale.is_empty(), "not updated and audited: {stale:?}");
    let output = sync.engine(&["resend", "mappings/refund.yaml"]).success();
    assert!(output.stderr.contains(" 0 changed"), "{}", output.stderr);
}

#[test]
fn without_allow_unaudit_audited_bills_changes_are_parked_with_kingdee_s_message_and_retry_sends_them_once_allowed()
 {
    let sync = synced();
    let written = bill_numbers(&sync);
    let n = written.len();
    sync.workspace
        .edit("mappings/refund.yaml", NOTE_END, NOTE_END_V2);
    sync.workspace.edit(
        "mappings/refund.yaml",
        SKIP,
        "  on_change: update\n  update: bill_update",
    );
    let output = sync.engine(&["resend", "mappings/refund.yaml"]).code(1);
    assert!(
        output
            .stderr
            .contains(&format!("0 updated, {n} parked as conflicts")),
        "{}",
        output.stderr
    );
    let failed = sync
        .engine(&["failed", "mappings/refund.yaml", "--json"])
        .success();
    let listed: Vec<Value> = serde_json::from_str(&failed.stdout).unwrap();
    assert_eq!(listed.len(), n, "{}", failed.stdout);
    for entry in &listed {
        assert_eq!(text(&entry["status"]), "conflict");
        let reason = text(&entry["reason"]);
        assert!(
            reason.contains("已审核，不允许修改") && reason.contains("allow_unaudit: true"),
            "{reason}"
        );
    }
    for (number, note, status) in notes_and_statuses(&sync) {
        assert!(
            !note.ends_with("（第二版）"),
            "{number} left as it was: {note}"
        );
        assert_eq!(status, "C");
    }
    assert_eq!(calls(&sync, "UnAudit"), 0);
    // A run reads them again: they stay parked for a person, nothing is sent.
    let saves = calls(&sync, "Save");
    let output = sync
        .run(&["--since", &sync.workspace.read(".start")])
        .success();
    assert!(
        output.stderr.contains(&format!(
            "{n} record(s) parked earlier were read again unchanged and not sent"
        )),
        "{}",
        output.stderr
    );
    assert_eq!(calls(&sync, "Save"), saves);
    // Allowed now: `retry` sends each change, each bill is audited again, none is left parked.
    sync.workspace.edit(
        "mappings/refund.yaml",
        "  update: bill_update",
        "  update: bill_update\n  allow_unaudit: true",
    );
    sync.engine(&["retry", "mappings/refund.yaml"]).success();
    for (number, note, status) in notes_and_statuses(&sync) {
        assert!(note.ends_with("（第二版）"), "{number}: {note}");
        assert_eq!(status, "C", "{number}");
    }
    let n = n as u64;
    assert_eq!((calls(&sync, "UnAudit"), calls(&sync, "Audit")), (n, n));
    assert_eq!(bill_numbers(&sync), written);
    let failed = sync
        .engine(&["failed", "mappings/refund.yaml", "--json"])
        .success();
    assert_eq!(failed.stdout.trim(), "[]");
}

#[test]
fn under_on_change_update_a_run_updates_a_bill_whose_order_changed_once() {
    let sync = synced();
    let written = bill_numbers(&sync);
    sync.workspace.edit("mappings/refund.yaml", SKIP, UPDATE);
    let changed = written.iter().next().unwrap().clone();
    sync.post_wdt(
        &format!("/_sim/orders/{changed}/touch"),
        json!({"refund_remark": "客户补充说明"}),
    );
    std::thread::sleep(Duration::from_millis(1100));
    let output = sync.run(&[]).success();
    assert!(
        output
            .stderr
            .contains("1 record(s) changed since they were written were sent as updates"),
        "{}",
        output.stderr
    );
    let (_, note, status) = notes_and_statuses(&sync)
        .into_iter()
        .find(|(number, _, _)| number == &changed)
        .unwrap();
    assert!(note.contains("客户补充说明"), "{note}");
    assert_eq!(status, "C");
    assert_eq!((calls(&sync, "UnAudit"), calls(&sync, "Audit")), (1, 1));
    assert_eq!(
        bill_numbers(&sync),
        written,
        "updated in place, no new bill"
    );
    // Read again, it is as written: nothing is sent.
    let output = sync
        .run(&["--since", &sync.workspace.read(".start")])
        .success();
    assert!(output.stderr.contains(" 0 written"), "{}", output.stderr);
    assert_eq!(calls(&sync, "UnAudit"), 1);
}

#[test]
fn a_resend_over_a_backwards_range_is_a_usage_error_not_nothing_to_send() {
    let workspace = crate::support::workspace::Workspace::with_bundle();
    for dry_run in [true, false] {
        let mut args = vec![
            "resend",
            "mappings/refund.yaml",
            "--since",
            "2026-12-01 00:00:00",
            "--until",
            "2026-11-01 00:00:00",
            "--state-dir",
            "state",
        ];
        if dry_run {
            args.push("--dry-run");
        }
        workspace
            .engine()
            .args(args)
            .envs(&crate::check::flow_env())
            .run()
            .code(2)
            .stderr_contains("the range is empty or runs backwards");
    }
}
