//! The mapping language, feature by feature, through `engine preview`.
//!
//! Each test writes a flow whose mapping is only the feature under test, between a generic
//! source (records as given) and a generic sink (whose body is `{records: […]}`), previews one
//! or more records, and compares the target records exactly.

use serde_json::{Value, json};

use crate::support::Output;
use crate::support::workspace::Workspace;

const SOURCE: &str = r#"
name: records
base_url: http://127.0.0.1:9/
auth: { strategy: none }
envelope: { success: "true", message: "'failed'" }
operations:
  read: { kind: read, encoding: query, records: "$[*]", pagination: { strategy: none } }
"#;

const SINK: &str = r#"
name: sink
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
"#;

const SHOPS: &str = "shop,customer\nSHOP01,CUST0001\nSHOP02,CUST0002\n";

/// A workspace with a flow whose mapping is `id` plus `mapping` (indented YAML under `mapping:`).
fn flow(mapping: &str) -> Workspace {
    let workspace = Workspace::empty();
    workspace.write("connectors/records.yaml", SOURCE);
    workspace.write("connectors/sink.yaml", SINK);
    workspace.write("shops.csv", SHOPS);
    workspace.write(
        "flow.yaml",
        format!(
            r#"source: {{ connector: records, operation: read }}
target: {{ connector: sink, operation: write }}
key: {{ source: "{{{{ id }}}}", target: id }}
vars: {{ org: "100", rate: 13 }}
value_maps:
  shops: {{ file: shops.csv }}
  shops_or_default: {{ file: shops.csv, on_missing: default, default: CUST9999 }}
  shops_or_skip: {{ file: shops.csv, on_missing: skip_line }}
mapping:
  id: "{{{{ id }}}}"
{mapping}"#
        ),
    );
    workspace
}

fn preview(workspace: &Workspace, records: Value) -> Output {
    workspace.write("input.json", serde_json::to_vec(&records).unwrap());
    workspace
        .engine()
        .args(["preview", "flow.yaml", "--input", "input.json"])
        .run()
}

/// The one request body a preview printed (its stdout is a JSON array of bodies).
#[track_caller]
pub fn only_body(stdout: &str) -> Value {
    let bodies: Vec<Value> = serde_json::from_str(stdout).expect("a JSON array of bodies");
    assert_eq!(bodies.len(), 1, "{stdout}");
    bodies.into_iter().next().unwrap()
}

/// The target records of a successful preview.
#[track_caller]
fn mapped(mapping: &str, records: Value) -> Vec<Value> {
    let output = preview(&flow(mapping), records).success();
    let body = only_body(&output.stdout);
    body["records"].as_array().unwrap().clone()
}

#[test]
fn a_single_expression_keeps_its_type_and_literals_stay_literal() {
    let mapping = r#"  count: "{{ n }}"
  price: "{{ price | decimal }}"
  flag: "{{ flag }}"
  nested: "{{ obj }}"
  list: "{{ items }}"
  none: "{{ nothing }}"
  literal_number: 5
  literal_text: XSTHD01_SYS
  literal_object: { FNumber: PRE001 }
  text: "n={{ n }}"
"#;
    let record = json!({"id": "A1", "n": 3, "price": "59.9000", "flag": true, "obj": {"k": "v"}, "items": [1, 2], "nothing": null});
    assert_eq!(
        mapped(mapping, json!([record])),
        vec![json!({
            "id": "A1", "count": 3, "price": 59.9, "flag": true, "nested": {"k": "v"}, "list": [1, 2], "none": null,
            "literal_number": 5, "literal_text": "XSTHD01_SYS", "literal_object": {"FNumber": "PRE001"}, "text": "n=3"
        })]
    );
}

#[test]
fn each_repeats_a_section_per_source_line_and_sees_the_parent_record() {
    let mapping = r#"  lines:
    $each: "{{ details }}"
    $as: line
    $item:
      sku: "{{ line.sku }}"
      warehouse: "{{ warehouse }}"
"#;
    let record = json!({"id": "A1", "warehouse": "WH01", "details": [{"sku": "X"}, {"sku": "Y"}]});
    assert_eq!(
        mapped(mapping, json!([record])),
        vec![
            json!({"id": "A1", "lines": [{"sku": "X", "warehouse": "WH01"}, {"sku": "Y", "warehouse": "WH01"}]})
        ]
    );
}

#[test]
fn each_can_filter_lines_and_defaults_its_variable_to_item() {
    let mapping = r#"  lines:
    $each: "{{ details }}"
    $if: "{{ item.qty is positive }}"
    $item: { sku: "{{ item.sku }}" }
"#;
    let record = json!({"id": "A1", "details": [{"sku": "X", "qty": "0.0000"}, {"sku": "Y", "qty": "2.0000"}]});
    assert_eq!(
        mapped(mapping, json!([record])),
        vec![json!({"id": "A1", "lines": [{"sku": "Y"}]})]
    );
}

#[test]
fn a_conditional_field_is_omitted_when_its_condition_is_false() {
    let mapping = r#"  note:
    $if: "{{ remark != '' }}"
    $value: "{{ remark }}"
"#;
    let records = json!([{"id": "A1", "remark": "破损"}, {"id": "A2", "remark": ""}]);
    assert_eq!(
        mapped(mapping, records),
        vec![json!({"id": "A1", "note": "破损"}), json!({"id": "A2"})]
    );
}

#[test]
fn decimals_from_strings_are_exact() {
    let mapping = r#"  qty: "{{ num | decimal }}"
  amount: "{{ price | mul(num) }}"
  sum: "{{ '0.1' | add('0.2') }}"
  unit: "{{ total | div(3) | round(2) }}"
  rate: "{{ tax | mul(100) }}"
  half_up: "{{ '2.345' | round(2) }}"
"#;
    let record = json!({"id": "A1", "num": "3.0000", "price": "19.9000", "total": "100.00", "tax": "0.1300"});
    assert_eq!(
        mapped(mapping, json!([record])),
        vec![
            json!({"id": "A1", "qty": 3, "amount": 59.7, "sum": 0.3, "unit": 33.33, "rate": 13, "half_up": 2.35})
        ]
    );
}

#[test]
fn times_are_read_and_written_in_asia_shanghai() {
    let mapping = r#"  date: "{{ check_time | date }}"
  from_utc: "{{ utc | datetime }}"
  compact: "{{ check_time | datetime('%Y%m%d%H%M') }}"
  epoch: "{{ check_time | timestamp }}"
"#;
    let record =
        json!({"id": "A1", "check_time": "2024-01-01 00:30:00", "utc": "2023-12-31T16:30:00Z"});
    assert_eq!(
        mapped(mapping, json!([record])),
        vec![
            json!({"id": "A1", "date": "2024-01-01", "from_utc": "2024-01-01 00:30:00", "compact": "202401010030", "epoch": 1704040200})
        ]
    );
}

#[test]
fn value_map_lookups_follow_their_miss_policy() {
    let mapping = r#"  found: "{{ shop | lookup('shops') }}"
  defaulted: "{{ other | lookup('shops_or_default') }}"
  overridden: "{{ other | lookup('shops', default='CUST0000') }}"
  lines:
    $each: "{{ details }}"
    $item: { customer: "{{ item.shop | lookup('shops_or_skip') }}" }
"#;
    let record = json!({"id": "A1", "shop": "SHOP01", "other": "SHOP77", "details": [{"shop": "SHOP02"}, {"shop": "SHOP77"}]});
    let output = preview(&flow(mapping), json!([record])).success();
    let body = only_body(&output.stdout);
    assert_eq!(
        body["records"][0],
        json!({"id": "A1", "found": "CUST0001", "defaulted": "CUST9999", "overridden": "CUST0000", "lines": [{"customer": "CUST0002"}]})
    );
    assert!(
        output.stderr.contains(
            "warning: record `A1`: lines item 2: `SHOP77` is not in value map `shops_or_skip`"
        ),
        "{}",
        output.stderr
    );
}

#[test]
fn a_lookup_miss_under_the_error_policy_fails_only_that_record() {
    let output = preview(
        &flow("  customer: \"{{ shop | lookup('shops') }}\"\n"),
        json!([{"id": "A1", "shop": "SHOP99"}, {"id": "A2", "shop": "SHOP02"}]),
    )
    .code(1);
    let body = only_body(&output.stdout);
    assert_eq!(
        body["records"],
        json!([{"id": "A2", "customer": "CUST0002"}])
    );
    assert!(
        output
            .stderr
            .contains("error: record `A1`: `SHOP99` is not in value map `shops` (shops.csv)"),
        "{}",
        output.stderr
    );
}

#[test]
fn a_missing_source_field_is_an_error_naming_the_field_the_record_and_the_file_line() {
    let mapping = "  lines:\n    $each: \"{{ details }}\"\n    $as: line\n    $item: { lot: \"{{ line.batch_no }}\" }\n";
    let output = preview(
        &flow(mapping),
        json!([{"id": "A1", "details": [{"batch_no": "B1"}, {"sku": "X"}]}]),
    )
    .code(1);
    let expected = "\
error: record `A1`: field `details[1].batch_no` is missing from the record
  --> flow.yaml:14:19
   |
14 |     $item: { lot: \"{{ line.batch_no }}\" }
   |                   ^^^^^^^^^^^^^^^^^^^^^ while computing `lines[1].lot`
";
    assert!(output.stderr.starts_with(expected), "{}", output.stderr);
    assert!(
        output.stderr.contains("0 records mapped"),
        "nothing empty is ever sent: {}",
        output.stderr
    );
}

#[test]
fn a_field_made_optional_with_default_is_not_an_error() {
    let mapping = "  note: \"{{ remark | default('') }}\"\n";
    assert_eq!(
        mapped(mapping, json!([{"id": "A1"}])),
        vec![json!({"id": "A1", "note": ""})]
    );
}

#[test]
fn vars_and_text_templates_with_control_flow() {
    let mapping = "  org: { FNumber: \"{{ vars.org }}\" }\n  note: \"{% if urgent %}加急 {% endif %}{{ id }}\"\n  rate: \"{{ vars.rate }}\"\n";
    let records = json!([{"id": "A1", "urgent": true}, {"id": "A2", "urgent": false}]);
    assert_eq!(
        mapped(mapping, records),
        vec![
            json!({"id": "A1", "org": {"FNumber": "100"}, "note": "加急 A1", "rate": 13}),
            json!({"id": "A2", "org": {"FNumber": "100"}, "note": "A2", "rate": 13})
        ]
    );
}

#[test]
fn a_non_numeric_quantity_fails_its_record_with_the_value_named() {
    let output = preview(
        &flow("  qty: \"{{ num | decimal }}\"\n"),
        json!([{"id": "A1", "num": "2件"}]),
    )
    .code(1);
    assert!(
        output
            .stderr
            .contains("error: record `A1`: `2件` is not a decimal number"),
        "{}",
        output.stderr
    );
}

#[test]
fn templates_are_compiled_before_any_record_is_read() {
    // The broken template sits in a branch no record reaches: it still stops the flow at load.
    let mapping = "  note:\n    $if: \"{{ false }}\"\n    $value: \"{{ id | }}\"\n";
    let output = preview(&flow(mapping), json!([{"id": "A1"}])).code(3);
    assert!(
        output.stderr.contains("error: invalid template"),
        "{}",
        output.stderr
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn the_key_field_must_carry_the_record_key() {
    let workspace = flow("");
    workspace.edit(
        "flow.yaml",
        "  id: \"{{ id }}\"\n",
        "  id: \"X-{{ id }}\"\n",
    );
    let output = preview(&workspace, json!([{"id": "A1"}])).code(1);
    assert!(
        output
            .stderr
            .contains("error: record `A1`: `id` is `X-A1`, not the record's key `A1`"),
        "{}",
        output.stderr
    );
}

/// A target schema for the sink's records: typed scalars and a list that needs one item.
const TARGET_SCHEMA: &str = r#"{
  "title": "sink record",
  "type": "object",
  "properties": {
    "id": { "type": "string" },
    "code": { "type": "string" },
    "qty": { "type": "number" },
    "count": { "type": "integer" },
    "lines": { "type": "array", "minItems": 1, "items": { "type": "object", "properties": { "sku": { "type": "string" } } } }
  }
}"#;

/// [`flow`] whose sink's write operation has [`TARGET_SCHEMA`] as its record schema.
fn flow_with_target_schema(mapping: &str) -> Workspace {
    let workspace = flow(mapping);
    workspace.write("target.json", TARGET_SCHEMA);
    workspace.edit(
        "connectors/sink.yaml",
        "    batch: { max_size: 100 }\n",
        "    batch: { max_size: 100 }\n    schema: ../target.json\n",
    );
    workspace
}

#[test]
fn a_missing_field_through_a_filter_is_named_not_an_empty_value() {
    // Audit 21: `date`, `decimal`, `lookup` and its `default=` used to see an empty value.
    let cases = [
        ("  day: \"{{ check_time | date }}\"\n", "check_time", "day"),
        ("  qty: \"{{ num | decimal | mul(2) }}\"\n", "num", "qty"),
        ("  qty: \"{{ '2' | mul(num) }}\"\n", "num", "qty"),
        (
            "  customer: \"{{ shop | lookup('shops') }}\"\n",
            "shop",
            "customer",
        ),
        (
            "  lines:\n    $each: \"{{ details }}\"\n    $as: line\n    $item: { m: \"{{ line.sku | lookup('shops', default=line.sku) }}\" }\n",
            "details[0].sku",
            "lines[0].m",
        ),
        (
            "  lines:\n    $each: \"{{ details }}\"\n    $as: line\n    $if: \"{{ line.qty is positive }}\"\n    $item: { m: x }\n",
            "details[0].qty",
            "",
        ),
        ("  q: \"{{ code | sql_quote }}\"\n", "code", "q"),
        ("  j: \"{{ obj | tojson }}\"\n", "obj", "j"),
        ("  l: \"{{ [code, id] }}\"\n", "code", "l"),
        ("  n: \"{{ count + 1 }}\"\n", "count", "n"),
    ];
    for (mapping, field, target) in cases {
        let output = preview(&flow(mapping), json!([{"id": "MISS1", "details": [{}]}])).code(1);
        assert!(
            output.stderr.contains(&format!(
                "error: record `MISS1`: field `{field}` is missing from the record"
            )),
            "{mapping}\n{}",
            output.stderr
        );
        assert!(
            output.stderr.contains("--> flow.yaml:"),
            "{}",
            output.stderr
        );
        if !target.is_empty() {
            assert!(
                output
                    .stderr
                    .contains(&format!("while computing `{target}`")),
                "{}",
                output.stderr
            );
        }
        assert_eq!(output.stdout, "[]\n", "nothing is sent: {}", output.stdout);
    }
}

#[test]
fn a_numeric_value_for_a_text_field_of_the_target_is_sent_as_text() {
    // Audit 23: the target schema says `code` is a string.
    let mapping = "  code: \"{{ code }}\"\n  qty: \"{{ qty }}\"\n  count: \"{{ count }}\"\n";
    let output = preview(
        &flow_with_target_schema(mapping),
        json!([{"id": 12345, "code": 7, "qty": "2.5000", "count": "3"}]),
    )
    .success();
    let body = only_body(&output.stdout);
    assert_eq!(
        body["records"],
        json!([{"id": "12345", "code": "7", "qty": 2.5, "count": 3}])
    );
}

#[test]
fn a_text_that_is_not_a_number_fails_a_number_field_of_the_target() {
    let mapping = "  qty: \"{{ qty }}\"\n  count: \"{{ count }}\"\n";
    let output = preview(
        &flow_with_target_schema(mapping),
        json!([{"id": "A1", "qty": "2件", "count": "1"}, {"id": "A2", "qty": "1", "count": "1.5"}]),
    )
    .code(1);
    assert!(
        output
            .stderr
            .contains("error: record `A1`: the target expects a number here, not `2件`"),
        "{}",
        output.stderr
    );
    assert!(
        output
            .stderr
            .contains("error: record `A2`: the target expects a whole number here, not `1.5`"),
        "{}",
        output.stderr
    );
}

#[test]
fn a_record_without_lines_fails_when_the_target_needs_one() {
    // Audit 25: Kingdee refuses a bill without lines (`minItems: 1`).
    let mapping = "  lines:\n    $each: \"{{ details }}\"\n    $if: \"{{ item.qty is positive }}\"\n    $item: { sku: \"{{ item.sku }}\" }\n";
    let output = preview(
        &flow_with_target_schema(mapping),
        json!([
            {"id": "A1", "details": []},
            {"id": "A2", "details": [{"sku": "X", "qty": "0"}]},
            {"id": "A3", "details": [{"sku": "Y", "qty": "1"}]}
        ]),
    )
    .code(1);
    assert!(
        output
            .stderr
            .contains("error: record `A1`: `details` is empty, but `lines` needs at least 1 item"),
        "{}",
        output.stderr
    );
    assert!(
        output.stderr.contains(
            "error: record `A2`: none of the 1 items of `details` was kept, but `lines` needs at least 1 item"
        ),
        "{}",
        output.stderr
    );
    let body = only_body(&output.stdout);
    assert_eq!(
        body["records"],
        json!([{"id": "A3", "lines": [{"sku": "Y"}]}])
    );
}

#[test]
fn a_null_key_is_named_without_leaking_none() {
    // Audit 22.
    let output = preview(&flow(""), json!([{"id": null}, {"id": ""}])).code(1);
    assert!(
        output
            .stderr
            .contains("error: record #1: the key `id` is null"),
        "{}",
        output.stderr
    );
    assert!(
        output
            .stderr
            .contains("error: record #2: the key `id` is empty"),
        "{}",
        output.stderr
    );
    assert!(!output.stderr.contains("None"), "{}", output.stderr);
}

#[test]
fn the_loop_variable_named_by_as_is_suggested_for_item() {
    // Audit 16.
    let mapping = "  lines:\n    $each: \"{{ details }}\"\n    $as: line\n    $item: { sku: \"{{ item.sku }}\" }\n";
    let output = preview(&flow(mapping), json!([{"id": "A1", "details": []}])).code(3);
    assert!(
        output
            .stderr
            .contains("error: `item` is not defined here; this `$each` names its item `line`"),
        "{}",
        output.stderr
    );
    assert!(
        output.stderr.contains("did you mean `line.sku`?"),
        "{}",
        output.stderr
    );
    assert!(
        output.stderr.contains("the configuration has 1 error;"),
        "{}",
        output.stderr
    );
}

#[test]
fn a_misspelt_directive_is_one_error_with_a_suggestion() {
    // Audit 15: no follow-up errors about `$as`, `$item`, `$value` or fields beside `$if`.
    let cases = [
        (
            "  lines:\n    $eahc: \"{{ details }}\"\n    $as: line\n    $item: { sku: \"{{ line.sku }}\" }\n",
            "$eahc",
            "$each",
        ),
        (
            "  note:\n    $fi: \"{{ id }}\"\n    $value: \"{{ id }}\"\n",
            "$fi",
            "$if",
        ),
        ("  $vlaue: x\n  other: y\n", "$vlaue", "$value"),
    ];
    for (mapping, typo, suggestion) in cases {
        let output = preview(&flow(mapping), json!([{"id": "A1"}])).code(3);
        assert!(
            output
                .stderr
                .contains(&format!("error: unknown directive `{typo}`")),
            "{}",
            output.stderr
        );
        assert!(
            output
                .stderr
                .contains(&format!("did you mean `{suggestion}`?")),
            "{}",
            output.stderr
        );
        assert!(
            output.stderr.contains("the configuration has 1 error;"),
            "{}",
            output.stderr
        );
    }
}

#[test]
fn repeated_keys_are_previewed_once_the_last_modified_winning() {
    // Audit 24: a run sends one copy per key.
    let workspace = flow("  v: \"{{ v }}\"\n");
    workspace.edit(
        "flow.yaml",
        "key: { source: \"{{ id }}\", target: id }",
        "key: { source: \"{{ id }}\", target: id, modified: \"{{ modified }}\" }",
    );
    let output = preview(
        &workspace,
        json!([
            {"id": "A1", "v": "new", "modified": "2024-01-02 00:00:00"},
            {"id": "B1", "v": "b", "modified": "2024-01-01 00:00:00"},
            {"id": "A1", "v": "old", "modified": "2024-01-01 00:00:00"}
        ]),
    )
    .success();
    let body = only_body(&output.stdout);
    assert_eq!(
        body["records"],
        json!([{"id": "A1", "v": "new"}, {"id": "B1", "v": "b"}])
    );
    assert!(
        output.stderr.contains(
            "warning: record #3 repeats key `A1`; a run sends only one copy, so the preview shows record #1 (modified `2024-01-02 00:00:00`)"
        ),
        "{}",
        output.stderr
    );
}

#[test]
fn an_input_with_a_byte_order_mark_is_read() {
    // Audit 26.
    let workspace = flow("");
    workspace.write("input.json", "\u{feff}[{\"id\": \"A1\"}]");
    let output = workspace
        .engine()
        .args(["preview", "flow.yaml", "--input", "input.json"])
        .run()
        .success();
    assert!(output.stdout.contains("\"A1\""), "{}", output.stdout);
}

#[test]
fn a_bad_input_file_exits_2() {
    // Audit 27: missing, unparsable or empty input are all usage errors.
    let workspace = flow("");
    for (contents, expected) in [
        (None, "cannot read the input `input.json`"),
        (Some("[{"), "`input.json` is not valid JSON"),
        (Some("{}"), "`input.json` has no records"),
    ] {
        let _ = std::fs::remove_file(workspace.path("input.json"));
        if let Some(contents) = contents {
            workspace.write("input.json", contents);
        }
        let output = workspace
            .engine()
            .args(["preview", "flow.yaml", "--input", "input.json"])
            .run()
            .code(2);
        assert!(output.stderr.contains(expected), "{}", output.stderr);
    }
    let help = workspace
        .engine()
        .args(["preview", "--help"])
        .run()
        .success();
    assert!(
        help.stdout.contains("2: the input cannot be read"),
        "{}",
        help.stdout
    );
}

/// 120 distinct refund orders made from the bundled sample's first record.
fn sample_orders() -> Vec<Value> {
    let sample: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(
            crate::support::repo_root().join("mappings/samples/refund_orders.json"),
        )
        .unwrap(),
    )
    .unwrap();
    (0..120)
        .map(|n| {
            let mut order = sample[0].clone();
            order["order_no"] = json!(format!("RK{n:08}"));
            order
        })
        .collect()
}

#[test]
fn a_streamed_response_with_repeats_previews_as_the_array_of_its_newest_copies() {
    // Issue 13 item 7: the input is read record by record, in two passes.
    let workspace = Workspace::with_bundle();
    let preview = |input: &str, format: &str| {
        workspace
            .engine()
            .args(["preview", "mappings/refund.yaml", "--input", input])
            .args(["--format", format])
            .run()
            .success()
    };
    let winners = sample_orders();
    workspace.write("winners.json", serde_json::to_vec(&winners).unwrap());
    // The same orders in a whole WDT response (with a byte-order mark), plus an older copy of
    // order 70 before the batch it lands in and a newer copy of order 3 after its own.
    let mut listed = winners.clone();
    let mut older = winners[70].clone();
    older["modified"] = json!("2024-09-01 00:00:00");
    older["remark"] = json!("older copy");
    listed.insert(10, older);
    let mut newer = winners[3].clone();
    newer["modified"] = json!("2024-09-30 00:00:00");
    newer["remark"] = json!("newer copy");
    listed.push(newer.clone());
    let mut expected_orders = winners.clone();
    expected_orders.remove(3);
    expected_orders.push(newer);
    workspace.write(
        "expected.json",
        serde_json::to_vec(&expected_orders).unwrap(),
    );
    let response = json!({"code": 0, "response": {"total_count": 122, "stockin_list": listed}});
    let mut text = "\u{feff}".to_string();
    text.push_str(&serde_json::to_string_pretty(&response).unwrap());
    workspace.write("response.json", text);

    let streamed = preview("response.json", "json");
    let expected = preview("expected.json", "json");
    assert_eq!(streamed.stdout, expected.stdout);
    let bodies: Vec<Value> = serde_json::from_str(&streamed.stdout).unwrap();
    assert_eq!(bodies.len(), 3, "120 records in batches of 50");
    assert!(
        streamed
            .stderr
            .contains("warning: record #11 repeats key `RK00000070`; a run sends only one copy, so the preview shows record #72"),
        "{}",
        streamed.stderr
    );
    // JSON Lines: the same bodies, one per line.
    let lines = preview("response.json", "jsonl").stdout;
    let lines: Vec<Value> = lines
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines, bodies);
}
