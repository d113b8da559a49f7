//! The shipped files cannot rot: every file under `mappings/` and `schemas/` is checked, the
//! schemas match the config types, the samples preview to a snapshotted BatchSave body, and
//! the value maps agree with the sandboxes' master data.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::check::flow_env;
use crate::support::workspace::Workspace;
use crate::support::{Engine, repo_root};

#[test]
fn every_shipped_flow_and_connector_checks_clean() {
    let output = Engine::new()
        .args(["check", "--format", "json"])
        .envs(&flow_env())
        .run()
        .success();
    let report: Value = serde_json::from_str(&output.stdout).unwrap();
    assert_eq!(report["errors"], serde_json::json!([]));
    assert_eq!(report["warnings"], serde_json::json!([]));
    let checked: Vec<&str> = report["checked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut expected: Vec<String> = Vec::new();
    for dir in ["mappings", "mappings/connectors"] {
        for entry in std::fs::read_dir(repo_root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|x| x == "yaml") {
                expected.push(format!(
                    "{dir}/{}",
                    path.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    for file in &expected {
        assert!(
            checked.contains(&file.as_str()),
            "{file} was not checked: {checked:?}"
        );
    }
}

#[test]
fn the_committed_json_schemas_match_the_config_types() {
    for (which, file) in [
        ("flow", "schemas/flow.schema.json"),
        ("connector", "schemas/connector.schema.json"),
        ("alerts", "schemas/alerts.schema.json"),
    ] {
        let generated = Engine::new().args(["schema", which]).run().success().stdout;
        let committed = std::fs::read_to_string(repo_root().join(file)).unwrap();
        assert!(
            generated == committed,
            "{file} is stale; regenerate it with `cargo run -- schema {which} > {file}`"
        );
    }
}

#[test]
fn every_yaml_file_names_its_schema_for_editors() {
    for (dir, schema) in [
        ("mappings", "../schemas/flow.schema.json"),
        ("mappings/connectors", "../../schemas/connector.schema.json"),
        ("mappings/examples", "../../schemas/flow.schema.json"),
        (
            "mappings/examples/connectors",
            "../../../schemas/connector.schema.json",
        ),
    ] {
        for entry in std::fs::read_dir(repo_root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|x| x == "yaml") {
                let first = std::fs::read_to_string(&path)
                    .unwrap()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                // The alerts file is not a flow: it names its own schema.
                let schema = match path.file_name().is_some_and(|name| name == "alerts.yaml") {
                    true => "../schemas/alerts.schema.json",
                    false => schema,
                };
                assert_eq!(
                    first,
                    format!("# yaml-language-server: $schema={schema}"),
                    "{}",
                    path.display()
                );
                assert!(path.parent().unwrap().join(schema).exists());
            }
        }
    }
}

#[test]
fn every_api_schema_is_valid_json_and_used_by_a_connector() {
    let connectors: String = std::fs::read_dir(repo_root().join("mappings/connectors"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    for entry in std::fs::read_dir(repo_root().join("schemas/api")).unwrap() {
        let path = entry.unwrap().path();
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(schema["type"], "object", "{}", path.display());
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let stem = name
            .trim_end_matches(".json")
            .split('.')
            .next()
            .unwrap()
            .to_string();
        assert!(
            connectors.contains(&name) || connectors.contains(&format!("schemas/api/{stem}.")),
            "{name} is used by no connector"
        );
    }
}

#[test]
fn the_samples_preview_to_one_batchsave_body_with_one_record_error() {
    let output = Engine::new()
        .args([
            "preview",
            "mappings/refund.yaml",
            "--input",
            "mappings/samples/refund_orders.json",
        ])
        .run()
        .code(1);
    insta::assert_snapshot!("sample_preview_body", output.stdout);
    insta::assert_snapshot!("sample_preview_errors", output.stderr);
}

#[test]
fn the_sample_body_has_the_shape_batchsave_accepts() {
    let output = Engine::new()
        .args([
            "preview",
            "mappings/refund.yaml",
            "--input",
            "mappings/samples/refund_orders.json",
        ])
        .run();
    let body = crate::mapping::only_body(&output.stdout);
    assert_eq!(body["formid"], "SAL_RETURNSTOCK");
    let data = &body["data"];
    for option in [
        "IsAutoSubmitAndAudit",
        "IsVerifyBaseDataField",
        "SubSystemId",
    ] {
        assert!(data.get(option).is_some(), "option {option} is sent");
    }
    let model = data["Model"].as_array().unwrap();
    assert_eq!(model.len(), 4);
    for bill in model {
        for field in [
            "FBillTypeID",
            "FBillNo",
            "FDate",
            "FSaleOrgId",
            "FStockOrgId",
            "FRetcustId",
            "FHeadNote",
        ] {
            assert!(bill.get(field).is_some(), "{field} in {bill}");
        }
        assert!(bill["SubHeadEntity"]["FSettleOrgId"]["FNumber"].is_string());
        assert!(
            bill.get("IsAutoSubmitAndAudit").is_none(),
            "options are not bill fields"
        );
        for line in bill["FEntity"].as_array().unwrap() {
            for field in [
                "FMaterialId",
                "FStockId",
                "FRealQty",
                "FTaxPrice",
                "FEntryTaxRate",
                "FNote",
            ] {
                assert!(line.get(field).is_some(), "{field} in {line}");
            }
            assert!(line["FRealQty"].is_number() && line["FTaxPrice"].is_number());
            assert!(
                line.get("SubHeadEntity").is_none(),
                "SubHeadEntity belongs to the bill, not the line"
            );
        }
    }
}

#[test]
fn editing_one_field_mapping_changes_the_preview() {
    let workspace = Workspace::with_bundle();
    let preview = |workspace: &Workspace| -> Value {
        let output = workspace
            .engine()
            .args([
                "preview",
                "mappings/refund.yaml",
                "--input",
                "mappings/samples/refund_orders.json",
            ])
            .run();
        crate::mapping::only_body(&output.stdout)
    };
    assert_eq!(
        preview(&workspace)["data"]["Model"][0]["FDate"],
        "2024-09-15"
    );
    workspace.edit(
        "mappings/refund.yaml",
        "FDate: \"{{ check_time | date }}\"",
        "FDate: \"{{ created_time | date('%Y/%m/%d') }}\"",
    );
    workspace.edit(
        "mappings/refund.yaml",
        "  sale_org: \"100\"",
        "  sale_org: \"101\"",
    );
    let changed = preview(&workspace);
    assert_eq!(changed["data"]["Model"][0]["FDate"], "2024/09/15");
    assert_eq!(changed["data"]["Model"][0]["FSaleOrgId"]["FNumber"], "101");
}

fn csv(name: &str) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(repo_root().join("mappings/value_maps").join(name)).unwrap();
    text.lines()
        .skip(1)
        .filter(|line| !line.is_empty())
        .map(|line| {
            let mut cells = line.split(',');
            (
                cells.next().unwrap().to_string(),
                cells.next().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_value_maps_agree_with_the_sandboxes_master_data() {
    use engine::sim::catalog;
    let shops = csv("shop_customer.csv");
    assert_eq!(shops.len(), catalog::SHOPS.len());
    for shop in catalog::SHOPS {
        assert_eq!(
            shops.get(shop.shop_no).map(String::as_str),
            Some(shop.customer),
            "{}",
            shop.shop_no
        );
    }
    let stocks = csv("warehouse_stock.csv");
    assert_eq!(stocks.len(), catalog::WAREHOUSES.len());
    for warehouse in catalog::WAREHOUSES {
        assert_eq!(
            stocks.get(warehouse.warehouse_no).map(String::as_str),
            Some(warehouse.stock)
        );
    }
    let units = csv("unit.csv");
    for unit in catalog::UNITS {
        assert_eq!(
            units.get(unit.wdt_name).map(String::as_str),
            Some(unit.number)
        );
    }
}

#[test]
fn the_new_api_guides_example_checks_clean_and_previews_its_sample() {
    // docs/new-api.md walks through these files: they must keep passing `check` and map the
    // saved response into the bodies the guide shows.
    let dir = "docs/examples/new-api";
    let env_file = format!("{dir}/.env.example");
    let flow = format!("{dir}/orders.yaml");
    let output = Engine::new()
        .args(["check", "--format", "json", "--env-file", &env_file, &flow])
        .run()
        .success();
    let report: Value = serde_json::from_str(&output.stdout).unwrap();
    assert_eq!(report["errors"], serde_json::json!([]), "{}", output.stdout);
    assert_eq!(
        report["warnings"],
        serde_json::json!([]),
        "{}",
        output.stdout
    );
    let sample = format!("{dir}/sample_response.json");
    let output = Engine::new()
        .args([
            "preview",
            &flow,
            "--input",
            &sample,
            "--env-file",
            &env_file,
        ])
        .run()
        .success();
    let bodies: Vec<Value> = serde_json::from_str(&output.stdout).unwrap();
    assert_eq!(bodies.len(), 1, "{}", output.stdout);
    let guide = std::fs::read_to_string(repo_root().join("docs/new-api.md")).unwrap();
    assert!(
        guide.contains(output.stderr.trim()),
        "the guide quotes preview's summary as it is: {}",
        output.stderr
    );
}

#[test]
fn a_preview_of_an_endless_pipe_stops_at_256_mib_and_leaves_no_copy_behind() {
    use std::io::Write;
    let temporary = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(crate::support::engine_binary())
        .args(["preview", "mappings/refund.yaml", "--input", "/dev/stdin"])
        .current_dir(repo_root())
        .env("TMPDIR", temporary.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // 257 MiB of JSON whitespace: more than a preview copies from a pipe.
    let writer = std::thread::spawn(move || {
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..257 {
            if stdin.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the input `/dev/stdin` is not a regular file and is longer than 256 MiB"),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(temporary.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}
