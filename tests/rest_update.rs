//! A mapping change carried to a REST target described in YAML only (`support::mock_rest`,
//! the CRM of the shipped example pair): `engine resend` sends each changed customer once by
//! `PATCH /customers/{id}` (the id the ledger recorded) under `on_change: update`, or by
//! `PUT /customers/by-external-id/{key}` under `on_change: upsert`; a `422` parks the change
//! with the API's message and leaves the customer as it was.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::support::Output;
use crate::support::mock_rest::{Faults, MockRest};
use crate::support::workspace::Workspace;

const TOKEN: &str = "crm-token-for-the-update-tests";
const FLOW: &str = "mappings/examples/shop_customers.yaml";
const CRM: &str = "mappings/examples/connectors/crm.yaml";
const CITY: &str = r#"  city: "{{ address.city }}""#;
const CITY_UPPER: &str = r#"  city: "{{ address.city | upper }}""#;

/// The example pair against one mock (shop and CRM) of `customers` shop customers.
fn example(customers: u64) -> (MockRest, Workspace) {
    let api = MockRest::start(Faults::default())
        .with_token(TOKEN)
        .with_shop(customers, &[]);
    (api, Workspace::with_bundle())
}

fn engine(api: &MockRest, workspace: &Workspace, args: &[&str]) -> Output {
    workspace
        .engine()
        .args(args.iter().copied())
        .env(
            "ENGINE_STATE_DIR",
            workspace.path("state").display().to_string(),
        )
        .env("SHOP_URL", api.url.clone())
        .env("SHOP_TOKEN", TOKEN)
        .env("CRM_URL", api.url.clone())
        .env("CRM_TOKEN", TOKEN)
        .run()
}

/// Each customer's city, by external id.
fn cities(api: &MockRest) -> BTreeMap<String, String> {
    api.customers()
        .iter()
        .map(|c| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (text(&c["external_id"]), text(&c["city"]))
        })
        .collect()
}

#[test]
fn a_mapping_change_patches_each_customer_once_by_its_recorded_id() {
    let (api, workspace) = example(10);
    engine(&api, &workspace, &["run", FLOW]).success();
    assert_eq!(api.calls("POST /customers"), 10);
    let crm = workspace.read(CRM);
    workspace.write(
        CRM,
        crm + r#"  update_customer:
    description: The changed fields of one customer, by the CRM's id.
    kind: update
    method: PATCH
    path: /customers/{{ target_id }}
    encoding: json
    body: "{{ record }}"
"#,
    );
    workspace.edit(
        FLOW,
        "  lookup: find_customer ",
        "  on_change: update\n  update: update_customer\n  lookup: find_customer ",
    );
    workspace.edit(FLOW, CITY, CITY_UPPER);
    engine(&api, &workspace, &["check", FLOW]).success();

    let output = engine(&api, &workspace, &["resend", FLOW, "--dry-run"]).success();
    assert_eq!(
        output
            .stdout
            .matches("  city: \"Lyon\" → \"LYON\"\n")
            .count(),
        10,
        "{}",
        output.stdout
    );
    assert_eq!(
        api.calls("PATCH /customers/{id}"),
        0,
        "a dry run sends nothing"
    );

    let output = engine(&api, &workspace, &["resend", FLOW]).success();
    assert!(
        output.stderr.contains("10 updated, 0 parked"),
        "{}",
        output.stderr
    );
    assert_eq!(
        api.calls("PATCH /customers/{id}"),
        10,
        "one call per customer"
    );
    assert_eq!(api.calls("POST /customers"), 10, "none created again");
    assert!(api.external_ids().values().all(|n| *n == 1));
    assert!(
        cities(&api).values().all(|city| city == "LYON"),
        "{:?}",
        cities(&api)
    );
    let output = engine(&api, &workspace, &["resend", FLOW]).success();
    assert!(output.stderr.contains(" 0 changed"), "{}", output.stderr);
    assert_eq!(api.calls("PATCH /customers/{id}"), 10);

    // A change the API refuses (422) is parked with its message; the customer stays as it was.
    workspace.edit(
        FLOW,
        r#"  email: "{{ email }}""#,
        r#"  email: "{{ 'nowhere' if id == 'cus_1003' else email }}""#,
    );
    let output = engine(&api, &workspace, &["resend", FLOW]).code(1);
    assert!(
        output.stderr.contains("0 updated, 1 parked as conflicts"),
        "{}",
        output.stderr
    );
    engine(&api, &workspace, &["failed", FLOW])
        .success()
        .stdout_contains("cus_1003")
        .stdout_contains("nowhere");
    let customer = api
        .customers()
        .into_iter()
        .find(|c| c["external_id"] == "cus_1003")
        .unwrap();
    assert_eq!(customer["email"], "customer3@example.com");
}

#[test]
fn under_upsert_a_mapping_change_is_put_again_once_per_customer() {
    let (api, workspace) = example(8);
    let crm = workspace.read(CRM);
    workspace.write(
        CRM,
        crm + r#"  put_customer:
    description: Create or replace one customer by its external id.
    kind: write
    method: PUT
    path: /customers/by-external-id/{{ key }}
    encoding: json
    body: "{{ record }}"
    results: { id: body.id }
"#,
    );
    workspace.edit(
        FLOW,
        "  operation: create_customer ",
        "  operation: put_customer\n  on_change: upsert ",
    );
    engine(&api, &workspace, &["run", FLOW]).success();
    let put = "PUT /customers/by-external-id/{key}";
    assert_eq!(api.calls(put), 8);
    workspace.edit(FLOW, CITY, CITY_UPPER);
    let output = engine(&api, &workspace, &["resend", FLOW]).success();
    assert!(
        output.stdout.contains("city: \"Lyon\" → \"LYON\""),
        "{}",
        output.stdout
    );
    assert!(
        output.stderr.contains("8 updated, 0 parked"),
        "{}",
        output.stderr
    );
    assert_eq!(api.calls(put), 16, "one more call per customer");
    assert_eq!(api.calls("POST /customers"), 0);
    assert_eq!(api.external_ids().len(), 8);
    assert!(api.external_ids().values().all(|n| *n == 1));
    assert!(cities(&api).values().all(|city| city == "LYON"));
    // Read again from the shop, every customer is as written: nothing is sent.
    engine(&api, &workspace, &["run", FLOW]).success();
    engine(&api, &workspace, &["resend", FLOW]).success();
    assert_eq!(api.calls(put), 16);
}
