//! The file connector: JSON Lines and CSV files as a flow's target (the WDT sandbox's orders
//! exported, killed mid-run and run again) and as its source (a dump backfilled into the
//! Kingdee sandbox, incremental by file time; a CSV export read back by record time), a bad
//! line named by file and line, and the shipped example.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::run::{bill_numbers, eligible_and_unknown};
use crate::support::sync::Sync;
use crate::support::workspace::Workspace;
use crate::support::{engine_binary, repo_root};

/// A flow reading the WDT sandbox as the bundled flow does, writing `connectors/orders_out.yaml`.
const WDT_TO_FILE: &str = r#"
name: orders_out
source:
  connector: wdt_qimen
  operation: stockin_refund_query
  params:
    start_time: "{{LAST_SYNC_TIME datetime}}"
    end_time: "{{CURRENT_TIME datetime}}"
    status: "80"
    page_size: "{{PAGINATION_PAGE_SIZE}}"
    page_no: "{{PAGINATION_START_PAGE}}"
  page_size: 10
  window:
    start: "{{ env.REFUND_SYNC_START }}"
    lag: 5s
target:
  connector: orders_out
  operation: write
  batch_size: 5
key:
  source: "{{ order_no }}"
  target: order_no
  modified: "{{ modified }}"
mapping:
  order_no: "{{ order_no }}"
  shop: "{{ shop_no }}"
  note: "{{ remark }}, \"quoted\""
  lines:
    $each: "{{ details_list }}"
    $as: line
    $item:
      sku: "{{ line.spec_no }}"
      qty: "{{ line.num | decimal }}"
"#;

/// The keys in every file under `folder` whose name ends with `suffix` (JSON Lines or CSV).
fn keys_in(folder: &Path, suffix: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .map(|entries| entries.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(suffix) {
            continue;
        }
        if suffix.ends_with(".csv") {
            let mut reader = csv::Reader::from_path(&file).unwrap();
            let headers = reader.headers().unwrap().clone();
            assert_eq!(
                headers.iter().collect::<Vec<_>>(),
                ["order_no", "shop", "note", "lines.0.sku"]
            );
            for row in reader.records() {
                let row = row.unwrap();
                assert!(row[2].ends_with(", \"quoted\""), "{row:?}");
                keys.push(row[0].to_string());
            }
        } else {
            for line in std::fs::read_to_string(&file).unwrap().lines() {
                let record: Value = serde_json::from_str(line).unwrap();
                assert!(record["lines"].is_array(), "{line}");
                keys.push(record["order_no"].as_str().unwrap().to_string());
            }
        }
    }
    keys
}

/// Every key once: the keys as a set, asserting none is there twice.
#[track_caller]
fn once(keys: Vec<String>) -> std::collections::BTreeSet<String> {
    let unique: std::collections::BTreeSet<String> = keys.iter().cloned().collect();
    assert_eq!(unique.len(), keys.len(), "a record was written twice");
    unique
}

fn spawn_run(sync: &Sync, flow: &str) -> std::process::Child {
    Command::new(engine_binary())
        .args(["run", flow])
        .current_dir(sync.workspace.root())
        .envs(sync.env())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("engine run starts")
}

#[test]
fn wdt_orders_land_in_a_jsonl_and_a_csv_file_exactly_once_even_when_killed_mid_run() {
    // A slow WDT (10 orders a page, 100 ms an answer, no rate limit) so that the kills land mid-run.
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "300",
            "--wdt-days",
            "4",
            "--wdt-latency-ms",
            "100",
            "--wdt-rate-limit",
            "0",
        ],
        5,
    );
    sync.workspace.edit(
        "mappings/connectors/wdt_qimen.yaml",
        "rate_limit: { requests: 50, per: 60s }",
        "rate_limit: { requests: 5000, per: 60s }",
    );
    let completed: std::collections::BTreeSet<String> = sync
        .orders()
        .iter()
        .filter(|o| o["status"].to_string().trim_matches('"') == "80")
        .map(|o| o["order_no"].as_str().unwrap().to_string())
        .collect();
    assert!(completed.len() > 100);
    let cases = [
        ("jsonl", "append", "out/orders.jsonl", ".jsonl", ""),
        (
            "csv",
            "per_run",
            "out/orders-{time:%Y%m%dT%H%M%S%.3f}.csv",
            ".csv",
            "  columns: [order_no, shop, note, lines.0.sku]\n",
        ),
    ];
    for (format, mode, path, suffix, columns) in cases {
        let name = format!("orders_{format}");
        sync.workspace.write(
            &format!("mappings/connectors/{name}.yaml"),
            format!(
                "name: {name}\nfile:\n  path: ../{format}/{path}\n  format: {format}\n  mode: {mode}\n{columns}"
            ),
        );
        let flow = format!("mappings/{name}.yaml");
        sync.workspace
            .write(&flow, WDT_TO_FILE.replace("orders_out", &name));
        let files = sync.workspace.path(&format!("mappings/{format}/out"));
        for delay in [300, 600, 900] {
            let mut child = spawn_run(&sync, &flow);
            std::thread::sleep(Duration::from_millis(delay));
            child.kill().unwrap();
            child.wait().unwrap();
            let written = once(keys_in(&files, suffix));
            assert!(written.is_subset(&completed));
        }
        let before = once(keys_in(&files, suffix)).len();
        assert!(before < completed.len(), "the kills came after the end");
        sync.engine(&["run", &flow]).success();
        assert_eq!(once(keys_in(&files, suffix)), completed, "{format}");
        // A run after a finished one writes nothing, not even an empty file.
        let listed = std::fs::read_dir(&files).unwrap().count();
        let output = sync.engine(&["run", &flow]).success();
        assert!(output.stderr.contains("0 written"), "{}", output.stderr);
        assert_eq!(std::fs::read_dir(&files).unwrap().count(), listed);
        assert_eq!(once(keys_in(&files, suffix)), completed, "{format}");
    }
}

/// Orders of the WDT sandbox as JSON Lines, as a dump of the source would hold them.
fn dump(orders: &[Value]) -> String {
    orders.iter().map(|o| format!("{o}\n")).collect()
}

/// The bundled flow reading `connectors/wdt_dump.yaml` (a glob of JSON Lines files) instead of WDT.
fn read_from_dump(sync: &Sync) {
    sync.workspace.write(
        "mappings/connectors/wdt_dump.yaml",
        "name: wdt_dump\ntime_zone: Asia/Shanghai\nfile:\n  path: ../dumps/*.jsonl\n  format: jsonl\n",
    );
    let flow = sync.workspace.read("mappings/refund.yaml");
    let start = flow.find("source:\n").unwrap();
    let end = flow.find("  window:\n").unwrap();
    let flow = format!(
        "{}source:\n  connector: wdt_dump\n  operation: read\n{}",
        &flow[..start],
        &flow[end..]
    )
    .replace("lookback: 10m", "lookback: 0s")
    .replace("lag: 5s ", "lag: 0s ");
    sync.workspace.write("mappings/refund.yaml", flow);
}

#[test]
fn a_dump_backfills_kingdee_and_a_second_run_reads_only_the_file_added_since() {
    let sync = Sync::start(&["--wdt-orders", "60", "--wdt-unknown-sku-share", "0"], 5);
    read_from_dump(&sync);
    // A dump of the completed orders (what the bundled flow's query asks WDT for).
    let orders: Vec<Value> = sync
        .orders()
        .into_iter()
        .filter(|o| o["status"].to_string().trim_matches('"') == "80")
        .collect();
    let (first, second) = orders.split_at(orders.len() / 2);
    sync.workspace
        .write("mappings/dumps/part-001.jsonl", dump(first));
    // The files modified within the window are read; a window ends on a whole second.
    std::thread::sleep(Duration::from_millis(1100));
    let output = sync.run(&[]).success();
    let (eligible_first, _) = eligible_and_unknown(first);
    assert!(
        output
            .stderr
            .contains(&format!("{} read:", eligible_first.len())),
        "{}",
        output.stderr
    );
    assert_eq!(bill_numbers(&sync), eligible_first);
    sync.workspace
        .write("mappings/dumps/part-002.jsonl", dump(second));
    std::thread::sleep(Duration::from_millis(1200));
    let output = sync.run(&[]).success();
    let (eligible_second, _) = eligible_and_unknown(second);
    assert!(
        output.stderr.contains(&format!(
            "{} read: {} new, 0 seen before; {} written, 0 already written",
            eligible_second.len(),
            eligible_second.len(),
            eligible_second.len()
        )),
        "only the new file is read: {}",
        output.stderr
    );
    let (eligible, _) = eligible_and_unknown(&orders);
    assert_eq!(bill_numbers(&sync), eligible);
    assert_eq!(sync.bills().len(), eligible.len());
}

const CSV_TO_JSONL: &str = r#"
name: contacts
source:
  connector: contacts_csv
  operation: read
  window:
    start: "2020-01-01 00:00:00"
    lag: 0s
    lookback: 0s
target:
  connector: contacts_out
  operation: write
key:
  source: "{{ id }}"
  target: id
  modified: "{{ updated_at }}"
mapping:
  id: "{{ id }}"
  name: "{{ name }}"
"#;

#[test]
fn a_csv_source_read_by_record_time_sends_only_the_rows_changed_since_the_last_run() {
    let workspace = Workspace::empty();
    workspace.write(
        "flows/connectors/contacts_csv.yaml",
        "name: contacts_csv\ntime_zone: UTC\nfile:\n  path: ../in/contacts.csv\n  format: csv\n  since: record_time\n",
    );
    workspace.write(
        "flows/connectors/contacts_out.yaml",
        "name: contacts_out\nfile:\n  path: ../out/contacts.jsonl\n  format: jsonl\n",
    );
    workspace.write("flows/contacts.yaml", CSV_TO_JSONL);
    workspace.write(
        "flows/in/contacts.csv",
        "id,name,updated_at\r\nC1,\"Zhang, Wei\",2021-01-01 00:00:00\r\nC2,Li Na,2021-01-02 00:00:00\r\n",
    );
    let run = || {
        workspace
            .engine()
            .args(["run", "flows/contacts.yaml", "--state-dir", "state"])
            .run()
    };
    run()
        .success()
        .stderr_contains("2 read: 2 new, 0 seen before; 2 written");
    // A new row and a changed one, modified after the cursor: the next run reads those two
    // and not C1; the changed C2 follows `on_change` (`skip`: the first version stays).
    std::thread::sleep(Duration::from_millis(1100));
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S");
    let text = workspace.read("flows/in/contacts.csv").replace(
        "C2,Li Na,2021-01-02 00:00:00",
        &format!("C2,Li Na (new),{now}"),
    );
    workspace.write(
        "flows/in/contacts.csv",
        format!("{text}C3,\"Wang \"\"Fang\"\"\",{now}\r\n"),
    );
    std::thread::sleep(Duration::from_millis(1100));
    run()
        .success()
        .stderr_contains("2 read: 1 new, 1 seen before; 1 written");
    let lines: Vec<Value> = workspace
        .read("flows/out/contacts.jsonl")
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            serde_json::json!({"id": "C1", "name": "Zhang, Wei"}),
            serde_json::json!({"id": "C2", "name": "Li Na"}),
            serde_json::json!({"id": "C3", "name": "Wang \"Fang\""}),
        ]
    );
}

#[test]
fn a_bad_line_stops_the_run_naming_the_file_and_the_line_and_a_fixed_file_is_read_whole() {
    let workspace = Workspace::empty();
    workspace.write(
        "flows/connectors/contacts_csv.yaml",
        "name: contacts_csv\nfile:\n  path: ../in/*.jsonl\n  format: jsonl\n",
    );
    workspace.write(
        "flows/connectors/contacts_out.yaml",
        "name: contacts_out\nfile:\n  path: ../out/contacts.csv\n  format: csv\n",
    );
    let flow = CSV_TO_JSONL.replace(
        "  window:\n    start: \"2020-01-01 00:00:00\"\n    lag: 0s\n    lookback: 0s\n",
        "",
    );
    workspace.write("flows/contacts.yaml", flow);
    let good = "{\"id\": \"C1\", \"name\": \"Zhang Wei\", \"updated_at\": \"2021-01-01\"}\n";
    workspace.write(
        "flows/in/contacts.jsonl",
        format!("{good}\n{{\"id\": \"C2\", \"name\": \"Li Na\"\n{{\"id\": \"C3\", \"name\": \"x\", \"updated_at\": \"2021-01-03\"}}\n"),
    );
    let run = || {
        workspace
            .engine()
            .args(["run", "flows/contacts.yaml", "--state-dir", "state"])
            .run()
    };
    let output = run().code(4);
    assert!(
        output.stderr.contains(
            "flows/in/contacts.jsonl` line 3: not JSON: EOF while parsing an object (column 28)"
        ),
        "{}",
        output.stderr
    );
    workspace.write(
        "flows/in/contacts.jsonl",
        format!("{good}{{\"id\": \"C2\", \"name\": \"Li, \\\"Na\\\"\", \"updated_at\": \"2021-01-02\"}}\n{{\"id\": \"C3\", \"name\": \"x\", \"updated_at\": \"2021-01-03\"}}\n"),
    );
    run().success();
    assert_eq!(
        workspace.read("flows/out/contacts.csv"),
        "id,name\r\nC1,Zhang Wei\r\nC2,\"Li, \"\"Na\"\"\"\r\nC3,x\r\n"
    );
}

#[test]
fn the_file_example_exports_the_sample_orders_to_a_csv_once() {
    let workspace = Workspace::with_bundle();
    let flow = "mappings/examples/file/refund_export.yaml";
    workspace.engine().args(["check", flow]).run().success();
    // A preview shows the records the file receives, a batch at a time.
    let preview = workspace
        .engine()
        .args([
            "preview",
            flow,
            "--input",
            "mappings/samples/refund_orders.json",
        ])
        .run()
        .success()
        .stderr_contains(
            "5 records mapped into 1 batch for `mappings/examples/file/exports/refunds-{time}.csv`",
        );
    let batches: Vec<Vec<Value>> = serde_json::from_str(&preview.stdout).unwrap();
    assert_eq!(batches[0][4]["order_no"], "RK2409150005");
    assert_eq!(batches[0][4]["lines"][0]["sku"], "TX-RED-M");
    let run = || {
        workspace
            .engine()
            .args(["run", flow, "--state-dir", "state"])
            .run()
            .success()
    };
    run().stderr_contains("5 read: 5 new, 0 seen before; 5 written");
    run().stderr_contains("5 read: 0 new, 5 seen before; 0 written, 5 already written");
    let exports = workspace.path("mappings/examples/file/exports");
    let files: Vec<PathBuf> = std::fs::read_dir(&exports)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    insta::assert_snapshot!(text);
    // The sample orders the example's dump was converted from.
    let sample: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("mappings/samples/refund_orders.json")).unwrap(),
    )
    .unwrap();
    let dump: Vec<Value> =
        std::fs::read_to_string(repo_root().join("mappings/examples/file/refund_orders.jsonl"))
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
    assert_eq!(dump, sample);
}

#[test]
fn a_json_lines_dump_previews_as_the_json_array_it_was_converted_from() {
    let preview = |input: &str| {
        crate::support::Engine::new()
            .args(["preview", "mappings/refund.yaml", "--input", input])
            .run()
            .code(1)
    };
    let lines = preview("mappings/examples/file/refund_orders.jsonl");
    let array = preview("mappings/samples/refund_orders.json");
    assert_eq!(lines.stdout, array.stdout);
    assert_eq!(lines.stderr, array.stderr);
    assert!(
        lines
            .stderr
            .contains("4 records mapped into 1 `batch_save` request"),
        "{}",
        lines.stderr
    );
}

#[test]
fn an_http_connector_with_a_file_url_is_pointed_at_the_file_connector_at_run_time_too() {
    let workspace = Workspace::with_bundle();
    let mut env: BTreeMap<String, String> = crate::check::flow_env();
    env.insert("KINGDEE_URL".into(), "file:///srv/kingdee/".into());
    env.insert(
        "ENGINE_STATE_DIR".into(),
        workspace.path("state").display().to_string(),
    );
    workspace
        .engine()
        .args(["run", "mappings/refund.yaml"])
        .envs(&env)
        .run()
        .code(3)
        .stderr_contains("`base_url` of connector `kingdee_k3cloud` is `file:///srv/kingdee/`, not an http(s) URL")
        .stderr_contains("make it a file connector");
}

/// Dumps without `key.modified`: a later dump holding a changed copy of a key is the version
/// written, never dropped as a repeat of the earlier dump's copy; a third dump changing it again
/// is reported as a change to send with `engine resend` (`on_change: skip`).
#[test]
fn a_later_dump_changing_a_record_is_the_version_written_and_a_further_change_is_reported() {
    let workspace = Workspace::empty();
    workspace.write(
        "flows/connectors/dumps.yaml",
        "name: dumps\nfile:\n  path: ../in/*.jsonl\n  format: jsonl\n",
    );
    workspace.write(
        "flows/connectors/contacts_out.yaml",
        "name: contacts_out\nfile:\n  path: ../out/contacts.jsonl\n  format: jsonl\n",
    );
    let flow = CSV_TO_JSONL
        .replace(
            "  window:\n    start: \"2020-01-01 00:00:00\"\n    lag: 0s\n    lookback: 0s\n",
            "",
        )
        .replace("  modified: \"{{ updated_at }}\"\n", "")
        .replace("contacts_csv", "dumps");
    workspace.write("flows/contacts.yaml", flow);
    workspace.write(
        "flows/in/part-001.jsonl",
        "{\"id\": \"C1\", \"name\": \"Zhang Wei\"}\n{\"id\": \"C2\", \"name\": \"Li Na\"}\n",
    );
    workspace.write(
        "flows/in/part-002.jsonl",
        "{\"id\": \"C1\", \"name\": \"Zhang Wei (moved)\"}\n",
    );
    let run = || {
        workspace
            .engine()
            .args(["run", "flows/contacts.yaml", "--state-dir", "state"])
            .run()
    };
    run().success();
    assert_eq!(
        workspace.read("flows/out/contacts.jsonl"),
        "{\"id\":\"C2\",\"name\":\"Li Na\"}\n{\"id\":\"C1\",\"name\":\"Zhang Wei (moved)\"}\n"
    );
    workspace.write(
        "flows/in/part-003.jsonl",
        "{\"id\": \"C1\", \"name\": \"Zhang Wei (moved again)\"}\n",
    );
    run()
        .success()
        .stderr_contains("1 record(s) changed since they were written and were skipped");
}

#[test]
fn a_megabyte_key_or_value_in_the_source_is_parked_and_echoed_cut_short() {
    let workspace = Workspace::with_bundle();
    let flow = "mappings/examples/file/refund_export.yaml";
    let huge_key = "K".repeat(1_000_000);
    let huge_time = "2".repeat(1_000_000);
    workspace.write(
        "mappings/examples/file/refund_orders.jsonl",
        format!(
            "{}\n{}\n",
            serde_json::json!({"order_no": huge_key, "modified": "2024-09-15 10:00:00"}),
            serde_json::json!({"order_no": "RK1", "modified": huge_time}),
        ),
    );
    let run = workspace
        .engine()
        .args(["run", flow, "--state-dir", "state"])
        .run()
        .code(1)
        .stderr_contains("… (1000000 characters in all)` parked: field `shop_name` is missing")
        .stderr_contains("record `RK1` parked: the last-modified time `modified` is `2222");
    assert!(
        run.stderr.len() < 10_000,
        "{} bytes on stderr",
        run.stderr.len()
    );
    let failed = workspace
        .engine()
        .args(["failed", flow, "--state-dir", "state"])
        .run()
        .success();
    assert!(
        failed.stdout.len() < 10_000,
        "{} bytes",
        failed.stdout.len()
    );
    // The exact key stays available to scripts.
    let failed = workspace
        .engine()
        .args(["failed", flow, "--state-dir", "state", "--json"])
        .run()
        .success();
    let parked: Vec<Value> = serde_json::from_str(&failed.stdout).unwrap();
    assert!(parked.iter().any(|p| p["key"] == huge_key.as_str()));
}

#[test]
fn a_source_path_naming_a_device_or_a_folder_is_refused_as_not_a_regular_file() {
    let workspace = Workspace::with_bundle();
    let flow = "mappings/examples/file/refund_export.yaml";
    let dump = "mappings/examples/file/connectors/refund_dump.yaml";
    for path in ["/dev/zero", ".."] {
        workspace.write(
            dump,
            workspace
                .read(dump)
                .lines()
                .map(|line| match line.trim_start().starts_with("path:") {
                    true => format!("  path: {path}"),
                    false => line.to_string(),
                })
                .collect::<Vec<_>>()
                .join("\n"),
        );
        workspace
            .engine()
            .args(["run", flow, "--state-dir", "state"])
            .run()
            .code(4)
            .stderr_contains(&format!(
                "the source file `{}` is not a regular file",
                match path {
                    ".." => "mappings/examples/file",
                    other => other,
                }
            ));
    }
}
