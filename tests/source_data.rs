//! Bad source data never passes silently: empty values, numbers that are not plain decimals,
//! WDT's no-date sentinel, last-modified times that are not times and time formats that
//! cannot work, through `engine preview` of the bundled refund flow and of small flows.
//!
//! Each test asserts what would be sent (the body on stdout) and what each refused record is
//! told (stderr): a bad record fails alone, with its reason, and the others go on.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::Output;
use crate::support::repo_root;
use crate::support::sync::Sync;
use crate::support::workspace::Workspace;

/// The first sample refund order with `order_no` set, `changes` applied to the order and
/// `line_changes` to its only detail line (see [`apply`]).
fn order(order_no: &str, changes: Value, line_changes: Value) -> Value {
    let samples: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("mappings/samples/refund_orders.json")).unwrap(),
    )
    .unwrap();
    let mut order = samples[0].clone();
    order["order_no"] = json!(order_no);
    apply(&mut order, changes);
    let mut line = order["details_list"][0].clone();
    apply(&mut line, line_changes);
    order["details_list"] = json!([line]);
    order
}

/// Set each field of `changes`; the string `"<absent>"` removes the field instead.
fn apply(target: &mut Value, changes: Value) {
    let map = target.as_object_mut().unwrap();
    for (key, value) in changes.as_object().unwrap() {
        if value == "<absent>" {
            map.remove(key);
        } else {
            map.insert(key.clone(), value.clone());
        }
    }
}

/// `engine preview` of the bundled refund flow on `orders`.
fn preview_bundled(orders: Value) -> Output {
    let workspace = Workspace::with_bundle();
    workspace.write("orders.json", serde_json::to_vec(&orders).unwrap());
    workspace
        .engine()
        .args(["preview", "mappings/refund.yaml", "--input", "orders.json"])
        .run()
}

/// The bills of a preview's BatchSave body, by bill number.
fn bills(output: &Output) -> Vec<Value> {
    let body = crate::mapping::only_body(&output.stdout);
    body["data"]["Model"].as_array().unwrap().clone()
}

#[track_caller]
fn assert_refused(output: &Output, record: &str, message: &str) {
    let expected = format!("error: record `{record}`: {message}\n");
    assert!(
        output.stderr.contains(&expected),
        "{expected}\n{}",
        output.stderr
    );
}

#[test]
fn the_bundled_flow_sends_empty_text_for_null_or_absent_optional_texts() {
    // Issue 9, items 13 and 18: `src_order_no: null` sent "None" into FHeadNote, a null line
    // remark sent `FNote: null`, and an order without `refund_remark` was refused.
    let orders = json!([
        order(
            "RK-NULLS",
            json!({"src_order_no": null, "refund_remark": null}),
            json!({"remark": null, "goods_unit": null})
        ),
        order(
            "RK-ABSENT",
            json!({"src_order_no": "<absent>", "refund_remark": "<absent>"}),
            json!({"remark": "<absent>", "goods_unit": "<absent>"})
        ),
        order(
            "RK-FULL",
            json!({"refund_remark": "尺码偏小"}),
            json!({"remark": "外包装破损"})
        ),
    ]);
    let output = preview_bundled(orders).success();
    let bills = bills(&output);
    let expected_line = |note: &str, unit: bool| {
        let mut line = json!({
            "FRowType": "Standard",
            "FMaterialId": {"FNumber": "TX-RED-M"},
            "FRealQty": 1,
            "FTaxPrice": 59.9,
            "FEntryTaxRate": 13,
            "FStockId": {"FNumber": "CK001"},
            "FStockstatusId": {"FNumber": "KCZT01_SYS"},
            "FReturnType": {"FNumber": "THLX01_SYS"},
            "FOwnerTypeId": "BD_OwnerOrg",
            "FOwnerId": {"FNumber": "100"},
            "FNote": note
        });
        if unit {
            line.as_object_mut()
                .unwrap()
                .insert("FUnitID".into(), json!({"FNumber": "Pcs"}));
        }
        line
    };
    let bill = |number: &str, note: &str, line: Value| {
        json!({
            "FBillTypeID": {"FNUMBER": "XSTHD01_SYS"},
            "FBillNo": number,
            "FDate": "2024-09-15",
            "FSaleOrgId": {"FNumber": "100"},
            "FStockOrgId": {"FNumber": "100"},
            "FRetcustId": {"FNumber": "CUST0001"},
            "FHeadNote": note,
            "SubHeadEntity": {
                "FSettleCurrId": {"FNumber": "PRE001"},
                "FSettleOrgId": {"FNumber": "100"},
                "FThirdBillNo": number
            },
            "FEntity": [line]
        })
    };
    assert_eq!(
        bills,
        vec![
            bill(
                "RK-NULLS",
                "旺店通退货入库单 RK-NULLS",
                expected_line("", false)
            ),
            bill(
                "RK-ABSENT",
                "旺店通退货入库单 RK-ABSENT",
                expected_line("", false)
            ),
            bill(
                "RK-FULL",
                "旺店通退货入库单 RK-FULL，退换单 RT2409150001：尺码偏小",
                expected_line("外包装破损", true)
            ),
        ]
    );
    assert!(!output.stdout.contains("None") && !output.stdout.contains("none"));
}

#[test]
fn the_bundled_flow_refuses_records_missing_required_data_with_the_reason() {
    // Issue 9, item 18: optional texts default to empty; required data stays strict.
    let orders = json!([
        order("RK-NO-SHOP", json!({"shop_no": "<absent>"}), json!({})),
        order("RK-NO-NUM", json!({}), json!({"num": "<absent>"})),
        order("RK-NO-PRICE", json!({}), json!({"tax_price": "<absent>"})),
        order("RK-NO-CHECK", json!({"check_time": "<absent>"}), json!({})),
        order("RK-OK", json!({}), json!({})),
    ]);
    let output = preview_bundled(orders).code(1);
    assert_refused(
        &output,
        "RK-NO-SHOP",
        "field `shop_no` is missing from the record",
    );
    assert_refused(
        &output,
        "RK-NO-NUM",
        "field `details_list[0].num` is missing from the record",
    );
    assert_refused(
        &output,
        "RK-NO-PRICE",
        "field `details_list[0].tax_price` is missing from the record",
    );
    assert_refused(
        &output,
        "RK-NO-CHECK",
        "field `check_time` is missing from the record",
    );
    let numbers: Vec<Value> = bills(&output)
        .iter()
        .map(|b| b["FBillNo"].clone())
        .collect();
    assert_eq!(numbers, vec![json!("RK-OK")]);
    assert!(
        output.stderr.contains("1 record mapped"),
        "{}",
        output.stderr
    );
}

#[test]
fn the_bundled_flow_reads_decimals_exactly_or_refuses_the_record() {
    // Issue 9, item 13: `true` became 1, `"1_000"` 1000, a tax of `"1e2"` 10000, `1e-28` a
    // float one unit off, and a tax of ~7.9e26 was sent as a string.
    let orders = json!([
        order("RK-BOOL", json!({}), json!({"num": true})),
        order("RK-UNDERSCORE", json!({}), json!({"num": "1_000"})),
        order("RK-EXPONENT", json!({}), json!({"tax": "1e2"})),
        order(
            "RK-HUGE",
            json!({}),
            json!({"tax": "792281625142643375935439503"})
        ),
        order(
            "RK-TOO-PRECISE",
            json!({}),
            json!({"tax_price": "0.00000000000000000000000000001"})
        ),
        order(
            "RK-TINY",
            json!({}),
            json!({"tax": 1e-28, "num": 2, "tax_price": "12345678.9012"})
        ),
    ]);
    let output = preview_bundled(orders).code(1);
    assert_refused(
        &output,
        "RK-BOOL",
        "`true` is a boolean, not a decimal number",
    );
    assert_refused(
        &output,
        "RK-UNDERSCORE",
        "`1_000` is not a decimal number: only plain digits with an optional sign and fraction are, such as `-12.50`",
    );
    assert_refused(
        &output,
        "RK-EXPONENT",
        "`1e2` is not a decimal number: only plain digits with an optional sign and fraction are, such as `-12.50`",
    );
    assert_refused(
        &output,
        "RK-HUGE",
        "the target expects a number here: `79228162514264337593543950300` has more digits than a JSON number carries exactly",
    );
    assert_refused(
        &output,
        "RK-TOO-PRECISE",
        "`0.00000000000000000000000000001` cannot be held exactly: a decimal has at most 28 places and 29 digits",
    );
    let bills = bills(&output);
    assert_eq!(bills.len(), 1, "{}", output.stdout);
    let line = &bills[0]["FEntity"][0];
    assert_eq!(
        (
            &line["FRealQty"],
            &line["FTaxPrice"],
            &line["FEntryTaxRate"]
        ),
        (&json!(2), &json!(12345678.9012), &json!(1e-26))
    );
    // The body's text is the exact decimal: 10^-26, not a float near it.
    assert!(
        output.stdout.contains("\"FEntryTaxRate\": 1e-26"),
        "{}",
        output.stdout
    );
}

#[test]
fn the_bundled_flow_reads_wdt_no_date_as_missing() {
    // Issue 9, item 13: WDT's "no date" `9999-12-01 00:00:00` became FDate 9999-12-01.
    let orders = json!([
        order(
            "RK-NO-DATE",
            json!({"check_time": "9999-12-01 00:00:00"}),
            json!({})
        ),
        order("RK-NULL-DATE", json!({"check_time": null}), json!({})),
        // The sample's lines carry the sentinel in `expire_date`, which the flow does not read.
        order(
            "RK-OK",
            json!({}),
            json!({"expire_date": "9999-12-01 00:00:00"})
        ),
    ]);
    let output = preview_bundled(orders).code(1);
    assert_refused(
        &output,
        "RK-NO-DATE",
        "an empty value (`null`) is not a time",
    );
    assert_refused(
        &output,
        "RK-NULL-DATE",
        "an empty value (`null`) is not a time",
    );
    assert!(
        output.stderr.contains("while computing `FDate`"),
        "{}",
        output.stderr
    );
    let bills = bills(&output);
    assert_eq!(bills.len(), 1);
    assert_eq!(bills[0]["FDate"], "2024-09-15");
    assert!(!output.stdout.contains("9999"), "{}", output.stdout);
}

#[test]
fn the_bundled_flow_refuses_a_record_whose_last_modified_time_is_not_a_time() {
    // Issue 9, item 13: `modified` null or "yesterday" was accepted. The record is refused
    // under its own key (a run parks it there, with the reason, and moves on). Epoch seconds
    // or milliseconds are a time, as a number too (issue 10, item 4); a number of another
    // length is not.
    let orders = json!([
        order("RK-MOD-NULL", json!({"modified": null}), json!({})),
        order("RK-MOD-WORD", json!({"modified": "yesterday"}), json!({})),
        order("RK-MOD-NUMBER", json!({"modified": 17263657}), json!({})),
        order("RK-MOD-EPOCH", json!({"modified": 1726365753}), json!({})),
        order(
            "RK-MOD-EPOCH-MS",
            json!({"modified": 1726365753123_u64}),
            json!({})
        ),
        order("RK-MOD-ABSENT", json!({"modified": "<absent>"}), json!({})),
        order(
            "RK-MOD-SENTINEL",
            json!({"modified": "9999-12-01 00:00:00"}),
            json!({})
        ),
        order(
            "RK-OK",
            json!({"modified": "2024-09-15T10:02:33+08:00"}),
            json!({})
        ),
    ]);
    let output = preview_bundled(orders).code(1);
    let expected = "; expected `yyyy-MM-dd HH:mm:ss` (Asia/Shanghai), RFC 3339 or epoch seconds or milliseconds";
    for (record, problem) in [
        ("RK-MOD-NULL", "is empty (`null`)"),
        ("RK-MOD-WORD", "is `yesterday`, not a time"),
        ("RK-MOD-NUMBER", "is `17263657` (number), not a time"),
        ("RK-MOD-SENTINEL", "is empty (`null`)"),
    ] {
        assert_refused(
            &output,
            record,
            &format!("the last-modified time `modified` {problem}{expected}"),
        );
    }
    assert_refused(
        &output,
        "RK-MOD-ABSENT",
        "field `modified` is missing from the record",
    );
    let bills = bills(&output);
    let numbers: Vec<&Value> = bills.iter().map(|bill| &bill["FBillNo"]).collect();
    assert_eq!(numbers, ["RK-MOD-EPOCH", "RK-MOD-EPOCH-MS", "RK-OK"]);
}

/// A small flow reading records as given and writing `{records: […]}`, whose target schema
/// types `note` as text and `qty` as a number, and whose source connector lists `nulls`.
fn small_flow(mapping: &str, nulls: &str) -> Workspace {
    let workspace = Workspace::empty();
    workspace.write(
        "connectors/records.yaml",
        format!(
            "name: records\nbase_url: http://127.0.0.1:9/\nauth: {{ strategy: none }}\nenvelope: {{ success: \"true\", message: \"'failed'\" }}\noperations:\n  read: {{ kind: read, encoding: query, records: \"$[*]\", pagination: {{ strategy: none }} }}\n{nulls}"
        ),
    );
    workspace.write(
        "connectors/sink.yaml",
        r#"name: sink
base_url: http://127.0.0.1:9/
auth: { strategy: none }
envelope: { success: "true", message: "'failed'" }
operations:
  write:
    kind: write
    encoding: json
    body: { records: "{{ records }}" }
    batch: { max_size: 100 }
    results: { successes: "$.ok[*]", errors: "$.errors[*]", index: i, id: id, message: m }
    schema: ../target.json
"#,
    );
    workspace.write(
        "target.json",
        r#"{"type": "object", "properties": {"id": {"type": "string"}, "note": {"type": "string"}, "qty": {"type": "number"}, "day": {"type": "string"}}}"#,
    );
    workspace.write(
        "flow.yaml",
        format!(
            "source: {{ connector: records, operation: read }}\ntarget: {{ connector: sink, operation: write }}\nkey: {{ source: \"{{{{ id }}}}\", target: id }}\nmapping:\n  id: \"{{{{ id }}}}\"\n{mapping}"
        ),
    );
    workspace
}

fn preview_small(workspace: &Workspace, records: Value) -> Output {
    workspace.write("input.json", serde_json::to_vec(&records).unwrap());
    workspace
        .engine()
        .args(["preview", "flow.yaml", "--input", "input.json"])
        .run()
}

#[test]
fn null_is_empty_text_in_text_templates_and_text_fields_never_the_word_none() {
    let mapping = "  note: \"{{ remark }}\"\n  label: \"RT {{ remark }}/{{ count }}\"\n  raw: \"{{ remark }}\"\n";
    let output = preview_small(
        &small_flow(mapping, ""),
        json!([{"id": "A1", "remark": null, "count": 0}]),
    )
    .success();
    let body = crate::mapping::only_body(&output.stdout);
    // `note` is text in the target's schema; `raw` has no schema and keeps the null as it is.
    assert_eq!(
        body["records"],
        json!([{"id": "A1", "note": "", "label": "RT /0", "raw": null}])
    );
}

#[test]
fn a_connectors_null_values_read_as_null_so_optional_dates_can_be_left_out() {
    let nulls = "null_values: [\"9999-12-01 00:00:00\", \"0000-00-00 00:00:00\"]\n";
    let mapping = "  day: \"{{ made | date }}\"\n  note:\n    $if: \"{{ expires is not none }}\"\n    $value: \"{{ expires | date }}\"\n";
    let workspace = small_flow(mapping, nulls);
    let output = preview_small(
        &workspace,
        json!([
            {"id": "A1", "made": "2024-09-15 10:00:00", "expires": "9999-12-01 00:00:00"},
            {"id": "A2", "made": "2024-09-15 10:00:00", "expires": "2025-01-31 00:00:00"},
            {"id": "A3", "made": "0000-00-00 00:00:00", "expires": null}
        ]),
    )
    .code(1);
    let body = crate::mapping::only_body(&output.stdout);
    assert_eq!(
        body["records"],
        json!([{"id": "A1", "day": "2024-09-15"}, {"id": "A2", "day": "2024-09-15", "note": "2025-01-31"}])
    );
    assert_refused(&output, "A3", "an empty value (`null`) is not a time");
    // Without the list, the sentinel is an ordinary text (and a real, if unlikely, date).
    let output = preview_small(
        &small_flow(mapping, ""),
        json!([{"id": "A1", "made": "9999-12-01 00:00:00", "expires": null}]),
    )
    .success();
    assert!(
        output.stdout.contains("\"day\": \"9999-12-01\""),
        "{}",
        output.stdout
    );
}

#[test]
fn a_bad_time_format_computed_per_record_fails_that_record_without_a_panic() {
    // Issue 9, item 8: `datetime('%Q')` panicked. A literal one is a check error (see the
    // `bad_time_format` fixture); one read from the record fails only that record.
    let mapping = "  day: \"{{ made | datetime(format) }}\"\n";
    let output = preview_small(
        &small_flow(mapping, ""),
        json!([
            {"id": "A1", "made": "2024-09-15 10:00:00", "format": "%Q"},
            {"id": "A2", "made": "2024-09-15 10:00:00", "format": "%"},
            {"id": "A3", "made": "2024-09-15 10:00:00", "format": "%Y/%m/%d"}
        ]),
    )
    .code(1);
    assert_refused(
        &output,
        "A1",
        "`%Q` is not a valid time format (chrono `strftime`: `%Y-%m-%d %H:%M:%S`)",
    );
    assert_refused(
        &output,
        "A2",
        "`%` is not a valid time format (chrono `strftime`: `%Y-%m-%d %H:%M:%S`)",
    );
    assert!(!output.stderr.contains("panicked"), "{}", output.stderr);
    let body = crate::mapping::only_body(&output.stdout);
    assert_eq!(body["records"], json!([{"id": "A3", "day": "2024/09/15"}]));
}

#[test]
fn a_number_field_of_the_target_gets_an_exact_number_or_the_record_fails() {
    let mapping = "  qty: \"{{ qty }}\"\n";
    let output = preview_small(
        &small_flow(mapping, ""),
        json!([
            {"id": "A1", "qty": "2.5000"},
            {"id": "A2", "qty": "1_000"},
            {"id": "A3", "qty": true},
            {"id": "A4", "qty": "12345678901234567.891"},
            {"id": "A5", "qty": "1e2"}
        ]),
    )
    .code(1);
    let body = crate::mapping::only_body(&output.stdout);
    assert_eq!(body["records"], json!([{"id": "A1", "qty": 2.5}]));
    assert_refused(
        &output,
        "A2",
        "the target expects a number here, not `1_000`",
    );
    assert_refused(
        &output,
        "A3",
        "the target expects a number here, not `true`",
    );
    assert_refused(
        &output,
        "A4",
        "the target expects a number here: `12345678901234567.891` has more digits than a JSON number carries exactly",
    );
    assert_refused(&output, "A5", "the target expects a number here, not `1e2`");
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
}

#[test]
fn a_run_parks_an_order_without_an_audit_date_and_sends_it_once_wdt_gives_one() {
    // Issue 9, item 13, against the WDT sandbox: the no-date sentinel parks the order with its
    // reason, the others are written, the cursor moves, and the fixed order arrives once.
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "12",
            "--wdt-days",
            "3",
            "--wdt-unknown-sku-share",
            "0",
        ],
        4,
    );
    sync.workspace
        .edit("mappings/refund.yaml", "    lag: 5s ", "    lag: 0s ");
    let eligible: BTreeSet<String> = sync
        .orders()
        .iter()
        .filter(|order| text(&order["status"]) == "80")
        .map(|order| text(&order["order_no"]))
        .collect();
    let victim = eligible.iter().next().unwrap().clone();
    sync.post_wdt(
        &format!("/_sim/orders/{victim}/touch"),
        json!({"check_time": "9999-12-01 00:00:00"}),
    );
    std::thread::sleep(Duration::from_millis(1100));
    let output = sync.run(&[]).code(1);
    assert!(
        output.stderr.contains(&format!(
            "record `{victim}` parked: an empty value (`null`) is not a time (in `FDate`"
        )),
        "{}",
        output.stderr
    );
    let written: BTreeSet<String> = sync.bills().iter().map(|b| text(&b["FBillNo"])).collect();
    let others: BTreeSet<String> = eligible.iter().filter(|k| **k != victim).cloned().collect();
    assert_eq!(
        written, others,
        "every other order is written, the dateless one is not"
    );
    assert!(
        sync.bills()
            .iter()
            .all(|bill| !text(&bill["FDate"]).starts_with("9999"))
    );
    let failed = sync
        .engine(&["failed", "mappings/refund.yaml", "--json"])
        .success();
    let parked: Vec<Value> = serde_json::from_str(&failed.stdout).unwrap();
    assert_eq!(parked.len(), 1, "{}", failed.stdout);
    assert_eq!(text(&parked[0]["key"]), victim);

    // WDT audits it: the next run reads the new version and writes it, once.
    sync.post_wdt(
        &format!("/_sim/orders/{victim}/touch"),
        json!({"check_time": "2024-09-15 10:02:33"}),
    );
    std::thread::sleep(Duration::from_millis(1100));
    sync.run(&[]).success();
    let numbers: Vec<String> = sync.bills().iter().map(|b| text(&b["FBillNo"])).collect();
    let unique: BTreeSet<String> = numbers.iter().cloned().collect();
    assert_eq!(unique.len(), numbers.len(), "nothing twice: {numbers:?}");
    assert_eq!(unique, eligible);
}
