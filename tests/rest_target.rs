//! `engine run` into a REST target described in YAML only (`support::mock_rest`, a customers
//! API): one record per `POST` answered `201 {"id"}`, `409` for a duplicate, `422` with the
//! API's message; lookups by external id in the query or in the path; a batch endpoint that
//! answers by key. With 5xx, connections dropped after the commit, restarts and kills, every
//! source record becomes exactly one customer, and a clean run makes one call per record.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::Duration as Span;

use crate::support::mock_rest::{Faults, MockRest};
use crate::support::rest_mock::{self, RestMock, Style, shanghai};
use crate::support::workspace::Workspace;
use crate::support::{Output, repo_root};

/// The source: the Stripe-like list of `support::rest_mock`.
fn source_connector(url: &str) -> String {
    format!(
        r#"name: source
base_url: {url}
auth: {{ strategy: none }}
envelope: {{ success: "status == 200", message: "body.message or 'failed'" }}
operations:
  items:
    kind: read
    method: GET
    path: /v1/items
    encoding: query
    params:
      since: "{{{{LAST_SYNC_TIME datetime}}}}"
      until: "{{{{CURRENT_TIME datetime}}}}"
      limit: "{{{{PAGINATION_PAGE_SIZE}}}}"
      starting_after: "{{{{PAGINATION_CURSOR}}}}"
    records: $.data[*]
    pagination: {{ strategy: cursor, cursor: "$.data[-1:].id", has_more: body.has_more, max_page_size: 100 }}
    window: {{ max_span: 30d, field: updated_at }}
"#
    )
}

/// The CRM's bearer token in these tests.
const TOKEN: &str = "crm-token-for-the-tests";

/// The target, as an integrator describes a typical REST API: the shipped example's, with
/// short backoffs.
fn crm_connector() -> String {
    let shipped =
        std::fs::read_to_string(repo_root().join("mappings/examples/connectors/crm.yaml")).unwrap();
    let backoff = "retry: { initial_backoff: 500ms, max_backoff: 10s }";
    assert!(shipped.contains(backoff));
    shipped.replace(
        backoff,
        "retry: { initial_backoff: 50ms, max_backoff: 200ms }",
    )
}

/// A workspace whose flow sends the source's items to `operation` of the CRM, looked up by
/// `lookup`. Items whose id is in `vars.broken` get an invalid email.
fn workspace(source: &str, operation: &str, lookup: &str) -> Workspace {
    let workspace = Workspace::empty();
    workspace.write("connectors/source.yaml", source_connector(source));
    workspace.write("connectors/crm.yaml", crm_connector());
    workspace.write(
        "flow.yaml",
        format!(
            r#"name: customers
source:
  connector: source
  operation: items
  page_size: 25
  window: {{ start: "{start}", lag: 1s, lookback: 1s }}
target: {{ connector: crm, operation: {operation}, lookup: {lookup} }}
key: {{ source: "{{{{ id }}}}", target: external_id, modified: "{{{{ updated_at }}}}" }}
vars: {{ broken: [3, 17] }}
mapping:
  external_id: "{{{{ id | string }}}}"
  name: "{{{{ name }}}}"
  email: "{{{{ 'not-an-address' if id in vars.broken else 'customer' ~ id ~ '@example.com' }}}}"
"#,
            start = shanghai(Span::days(3)),
        ),
    );
    workspace
}

fn engine(workspace: &Workspace, crm: &MockRest, args: &[&str]) -> Output {
    workspace
        .engine()
        .args(args.iter().copied())
        .env(
            "ENGINE_STATE_DIR",
            workspace.path("state").display().to_string(),
        )
        .env("CRM_URL", crm.url.clone())
        .env("CRM_TOKEN", TOKEN)
        .run()
}

fn run(workspace: &Workspace, crm: &MockRest) -> Output {
    engine(workspace, crm, &["run", "flow.yaml"])
}

/// Every source item is exactly one customer, and there is no other.
#[track_caller]
fn assert_one_customer_per_item(source: &RestMock, crm: &MockRest, except: &[u64]) {
    let expected: BTreeMap<String, usize> = source
        .ids()
        .into_iter()
        .filter(|id| !except.contains(id))
        .map(|id| (id.to_string(), 1))
        .collect();
    assert_eq!(crm.external_ids(), expected);
}

/// The target id the ledger holds for each key.
fn target_ids(workspace: &Workspace) -> BTreeMap<String, Option<String>> {
    let db = rusqlite::Connection::open(workspace.path("state/state.db")).unwrap();
    let mut query = db
        .prepare(
            "SELECT key, target_id FROM ledger
             WHERE flow_id = (SELECT id FROM flows WHERE name = 'customers')",
        )
        .unwrap();
    query
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Every customer's id is recorded in the ledger under its external id (`201`'s `body.id`).
#[track_caller]
fn assert_ids_recorded(workspace: &Workspace, crm: &MockRest) {
    let recorded = target_ids(workspace);
    for customer in crm.customers() {
        let key = customer["external_id"].as_str().unwrap();
        assert_eq!(recorded[key], Some(customer["id"].to_string()), "{key}");
    }
}

fn source(count: u64) -> RestMock {
    RestMock::start(Style::Stripe, count, rest_mock::Faults::default())
}

#[test]
fn one_post_per_record_creates_every_customer_once_and_parks_the_invalid_with_the_apis_message() {
    let source = source(40);
    let crm = MockRest::start(Faults::default()).with_token(TOKEN);
    let workspace = workspace(&source.url, "create_customer", "find_customer");
    let output = run(&workspace, &crm).code(1);
    assert_one_customer_per_item(&source, &crm, &[3, 17]);
    // One call per record, and no lookup after a 201; each refusal is looked up once before
    // it is parked (it might have been a duplicate of a lost answer).
    assert_eq!(crm.calls("POST /customers"), 40, "{}", output.stderr);
    assert_eq!(crm.calls("GET /customers"), 2, "{}", output.stderr);
    assert_ids_recorded(&workspace, &crm);
    engine(&workspace, &crm, &["failed", "flow.yaml"])
        .success()
        .stdout_contains("email \"not-an-address\" is not a valid address");
    // The bad data is fixed in the mapping; `engine retry` delivers the two records once.
    workspace.edit("flow.yaml", "broken: [3, 17]", "broken: []");
    engine(&workspace, &crm, &["retry", "flow.yaml"]).success();
    assert_one_customer_per_item(&source, &crm, &[]);
    assert_eq!(crm.calls("POST /customers"), 42);
    run(&workspace, &crm).success();
    assert_eq!(crm.calls("POST /customers"), 42, "nothing is sent twice");
}

#[test]
fn without_a_lookup_successes_are_written_and_refusals_parked_without_a_second_call() {
    let source = source(40);
    let crm = MockRest::start(Faults::default()).with_token(TOKEN);
    let workspace = workspace(&source.url, "create_customer", "find_customer");
    workspace.edit("flow.yaml", ", lookup: find_customer", "");
    run(&workspace, &crm)
        .code(1)
        .stderr_contains("38 written")
        .stderr_contains("2 parked");
    assert_one_customer_per_item(&source, &crm, &[3, 17]);
    assert_eq!(crm.calls("POST /customers"), 40);
    assert_eq!(crm.calls("GET /customers"), 0);
    assert_ids_recorded(&workspace, &crm);
}

#[test]
fn a_customer_already_in_the_target_answers_409_and_is_found_not_created_again() {
    for bare_conflicts in [false, true] {
        let source = source(10);
        let crm = MockRest::start(Faults {
            bare_conflicts,
            ..Faults::default()
        })
        .with_token(TOKEN);
        let made_by_hand = crm.insert(serde_json::json!({"external_id": "4", "name": "by hand"}));
        let workspace = workspace(&source.url, "create_customer", "find_customer");
        workspace.edit("flow.yaml", "broken: [3, 17]", "broken: []");
        run(&workspace, &crm).success();
        assert_one_customer_per_item(&source, &crm, &[]);
        // The customer found is the one recorded.
        assert_eq!(
            target_ids(&workspace)["4"],
            Some(made_by_hand["id"].to_string()),
            "a 409 with an empty body: {bare_conflicts}"
        );
        assert_ids_recorded(&workspace, &crm);
    }
}

#[test]
fn a_201_with_only_a_location_header_is_a_success_read_from_the_header() {
    let source = source(10);
    let crm = MockRest::start(Faults {
        bare_created: true,
        ..Faults::default()
    })
    .with_token(TOKEN);
    let workspace = workspace(&source.url, "create_customer", "find_customer");
    workspace.edit("flow.yaml", "broken: [3, 17]", "broken: []");
    workspace.edit(
        "connectors/crm.yaml",
        "id: body.id ",
        "id: \"headers.location | split('/') | last\" ",
    );
    run(&workspace, &crm).success();
    assert_one_customer_per_item(&source, &crm, &[]);
    assert_ids_recorded(&workspace, &crm);
    assert_eq!(crm.calls("POST /customers"), 10);
    assert_eq!(crm.calls("GET /customers"), 0, "no lookup after a 201");
}

#[test]
fn a_write_with_the_key_in_its_path_sends_each_record_once() {
    let source = source(12);
    let crm = MockRest::start(Faults::default()).with_token(TOKEN);
    let workspace = workspace(&source.url, "put_customer", "customer_by_key");
    workspace.edit("flow.yaml", "broken: [3, 17]", "broken: []");
    let connector = workspace.read("connectors/crm.yaml");
    workspace.write(
        "connectors/crm.yaml",
        connector
            + r#"  put_customer:
    kind: write
    method: PUT
    path: /customers/by-external-id/{{ key }}
    encoding: json
    body: { name: "{{ record.name }}", email: "{{ record.email }}" }
    results: { id: body.id }
"#,
    );
    run(&workspace, &crm).success();
    assert_one_customer_per_item(&source, &crm, &[]);
    assert_ids_recorded(&workspace, &crm);
    assert_eq!(crm.calls("PUT /customers/by-external-id/{key}"), 12);
}

#[test]
fn a_5xx_and_connections_dropped_after_the_commit_are_found_by_lookup_and_never_duplicated() {
    let source = source(30);
    // Without the 409, a record sent twice would be two customers.
    let crm = MockRest::start(Faults {
        server_error_at: vec![3],
        drop_after_commit_at: vec![5, 9, 20],
        allow_duplicates: true,
        ..Faults::default()
    })
    .with_token(TOKEN);
    let workspace = workspace(&source.url, "create_customer", "find_customer");
    workspace.edit("flow.yaml", "broken: [3, 17]", "broken: []");
    let output = run(&workspace, &crm).success();
    assert_one_customer_per_item(&source, &crm, &[]);
    // Four answers lost: each looked up once; the 5xx one was not there and was sent again.
    assert_eq!(crm.calls("GET /customers"), 4, "{}", output.stderr);
    assert_eq!(crm.calls("POST /customers"), 31, "{}", output.stderr);
    // The lookup's key and its parameters (`encoding: query`) are in the query.
    for query in crm.list_queries() {
        let key = query
            .strip_prefix("external_id=")
            .and_then(|q| q.strip_suffix("&limit=1"));
        assert!(key.is_some_and(|k| k.parse::<u64>().is_ok()), "{query}");
    }
}

#[test]
fn a_target_restarting_after_a_commit_loses_nothing_and_duplicates_nothing() {
    let source = source(30);
    let crm = MockRest::start(Faults {
        restart_after_commit_at: vec![7],
        allow_duplicates: true,
        ..Faults::default()
    })
    .with_token(TOKEN);
    let workspace = workspace(&source.url, "create_customer", "find_customer");
    workspace.edit("flow.yaml", "broken: [3, 17]", "broken: []");
    run(&workspace, &crm).success();
    assert_one_customer_per_item(&source, &crm, &[]);
}

#[test]
fn a_lookup_by_key_in_the_path_reads_404_as_not_found_and_sends_again() {
    let source = source(20);
    let crm = MockRest::start(Faults {
        server_error_at: vec![2, 6],
        allow_duplicates: true,
        ..Faults::default()
    })
    .with_token(TOKEN);
    let workspace = workspace(&source.url, "create_customer", "customer_by_key");
    workspace.edit("flow.yaml", "broken: [3, 17]", "broken: []");
    run(&workspace, &crm).success();
    assert_one_customer_per_item(&source, &crm, &[]);
    assert_eq!(crm.calls("GET /customers/by-external-id/{key}"), 2);
}

#[test]
fn a_lookup_answering_404_without_not_found_stops_the_run_instead_of_sending_twice() {
    let source = source(10);
    let crm = MockRest::start(Faults {
        server_error_at: vec![2],
        allow_duplicates: true,
        ..Faults::default()
    })
    .with_token(TOKEN);
    let workspace = workspace(&source.url, "create_customer", "customer_by_key");
    workspace.edit("flow.yaml", "broken: [3, 17]", "broken: []");
    workspace.edit("connectors/crm.yaml", ", not_found: \"status == 404\"", "");
    run(&workspace, &crm)
        .code(4)
        .stderr_contains("refused the lookup `customer_by_key` (HTTP 404)")
        .stderr_contains("rows.not_found");
    let counts = crm.external_ids();
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
    // Nor when the envelope calls every answer below 500 a success.
    workspace.edit(
        "connectors/crm.yaml",
        "success: \"status < 300\"",
        "success: \"status < 500\"",
    );
    run(&workspace, &crm)
        .code(4)
        .stderr_contains("refused the lookup `customer_by_key` (HTTP 404)");
    let counts = crm.external_ids();
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
}

#[test]
fn a_batch_endpoint_answering_by_key_in_any_order_is_read_right() {
    let source = source(45);
    let crm = MockRest::start(Faults::default()).with_token(TOKEN);
    let workspace = workspace(&source.url, "create_customers", "find_customer");
    let output = run(&workspace, &crm).code(1);
    assert_one_customer_per_item(&source, &crm, &[3, 17]);
    // 45 records in batches of 20 (the operation's default): 3 calls whatever the order of
    // the answers, and the two refusals looked up before they are parked.
    assert_eq!(crm.calls("POST /customers/batch"), 3, "{}", output.stderr);
    engine(&workspace, &crm, &["failed", "flow.yaml"])
        .success()
        .stdout_contains("email \"not-an-address\" is not a valid address");
}

#[test]
fn a_batch_endpoint_failing_dropping_and_restarting_duplicates_nothing() {
    let source = source(70);
    // Batch 1 answered 500 (nothing created), 2 created then dropped, 3 created then the
    // server restarts; without the 409 a record sent twice would be two customers.
    let crm = MockRest::start(Faults {
        server_error_at: vec![1],
        drop_after_commit_at: vec![2],
        restart_after_commit_at: vec![3],
        allow_duplicates: true,
        ..Faults::default()
    })
    .with_token(TOKEN);
    let workspace = workspace(&source.url, "create_customers", "find_customer");
    workspace.edit("flow.yaml", "broken: [3, 17]", "broken: []");
    let output = run(&workspace, &crm).success();
    assert_one_customer_per_item(&source, &crm, &[]);
    assert_ids_recorded(&workspace, &crm);
    // The records of the three batches whose answer was lost (20 or 10 each, depending on
    // which batches came first) were looked up, one key per call, and nothing else was.
    let lookups = crm.calls("GET /customers");
    assert!([50, 60].contains(&lookups), "{lookups}: {}", output.stderr);
}

#[test]
fn killed_at_random_moments_and_run_again_every_record_is_one_customer() {
    let source = source(80);
    let crm = MockRest::start(Faults {
        latency: Duration::from_millis(100),
        allow_duplicates: true,
        ..Faults::default()
    })
    .with_token(TOKEN);
    let workspace = workspace(&source.url, "create_customer", "find_customer");
    workspace.edit("flow.yaml", "broken: [3, 17]", "broken: []");
    workspace.edit(
        "flow.yaml",
        "lookup: find_customer }",
        "lookup: find_customer, concurrency: 2 }",
    );
    for delay in [250, 600, 1000] {
        let mut child = Command::new(crate::support::engine_binary())
            .args(["run", "flow.yaml"])
            .current_dir(workspace.root())
            .env("ENGINE_STATE_DIR", workspace.path("state"))
            .env("CRM_URL", &crm.url)
            .env("CRM_TOKEN", TOKEN)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("engine run starts");
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert!(
        crm.customers().len() < 80,
        "the kills came before the end of the run"
    );
    crm.set_faults(Faults {
        allow_duplicates: true,
        ..Faults::default()
    });
    run(&workspace, &crm).success();
    assert_one_customer_per_item(&source, &crm, &[]);
}

#[test]
fn the_mock_updates_by_id_and_upserts_by_external_id() {
    // The mock's update routes, for the update and upsert modes' tests.
    crate::support::install_crypto();
    let crm = MockRest::start(Faults::default()).with_token(TOKEN);
    let http = reqwest::blocking::Client::builder()
        .default_headers(reqwest::header::HeaderMap::from_iter([(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {TOKEN}").parse().unwrap(),
        )]))
        .build()
        .unwrap();
    let created: serde_json::Value = http
        .post(format!("{}/customers", crm.url))
        .json(&serde_json::json!({"external_id": "A", "name": "Ann", "email": "a@x.org"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let id = created["id"].as_u64().unwrap();
    let patched = http
        .patch(format!("{}/customers/{id}", crm.url))
        .json(&serde_json::json!({"name": "Anne"}))
        .send()
        .unwrap();
    assert_eq!(patched.status(), 200);
    let invalid = http
        .patch(format!("{}/customers/{id}", crm.url))
        .json(&serde_json::json!({"email": "nowhere"}))
        .send()
        .unwrap();
    assert_eq!(invalid.status(), 422);
    for (key, status) in [("A", 200), ("B", 201)] {
        let upserted = http
            .put(format!("{}/customers/by-external-id/{key}", crm.url))
            .json(&serde_json::json!({"name": format!("upserted {key}")}))
            .send()
            .unwrap();
        assert_eq!(upserted.status(), status, "{key}");
    }
    let names: Vec<String> = crm
        .customers()
        .iter()
        .map(|c| format!("{}={}", c["external_id"], c["name"]))
        .collect();
    assert_eq!(names, vec![r#""A"="upserted A""#, r#""B"="upserted B""#]);
    assert_eq!(crm.calls("PATCH /customers/{id}"), 2);
}

#[test]
fn the_second_example_pair_checks_clean_and_runs_against_its_mocks() {
    // mappings/examples/: a shop's customers (source) into a CRM (target), both mocked here on
    // one server; customers 7 and 32 have no email, which the CRM refuses.
    let api = MockRest::start(Faults::default())
        .with_token(TOKEN)
        .with_shop(60, &[7, 32]);
    let workspace = Workspace::with_bundle();
    let engine = |args: &[&str]| {
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
    };
    engine(&["check", "mappings/examples"])
        .success()
        .stderr_contains("checked 3 files: 0 errors, 0 warnings");
    let flow = "mappings/examples/shop_customers.yaml";
    let output = engine(&["run", flow]).code(1);
    let expected: BTreeMap<String, usize> = (1..=60)
        .filter(|n| ![7, 32].contains(n))
        .map(|n| (format!("cus_{}", 1000 + n), 1))
        .collect();
    assert_eq!(api.external_ids(), expected, "{}", output.stderr);
    assert_eq!(api.calls("POST /customers"), 60, "one call per customer");
    let customer = api
        .customers()
        .into_iter()
        .find(|c| c["external_id"] == "cus_1003")
        .unwrap();
    assert_eq!(
        customer,
        serde_json::json!({"id": customer["id"], "external_id": "cus_1003", "name": "Dara Doe3",
            "email": "customer3@example.com", "phone": null, "city": "Lyon", "country": "FR"})
    );
    engine(&["failed", flow])
        .success()
        .stdout_contains("cus_1007")
        .stdout_contains("email \"\" is not a valid address");
    engine(&["run", flow]).success();
    assert_eq!(api.calls("POST /customers"), 60, "nothing is sent twice");
}

/// A lookup whose filter the API does not know (`externalId` for `external_id`) is answered
/// with other customers. Read as "not there", a lost answer's record would be sent again: the
/// run stops instead, naming the key the answer cannot speak for.
#[test]
fn a_lookup_answering_rows_of_other_keys_stops_the_run_rather_than_send_a_customer_twice() {
    let source = source(10);
    let crm = MockRest::start(Faults {
        drop_after_commit_at: vec![5],
        allow_duplicates: true,
        ..Faults::default()
    })
    .with_token(TOKEN);
    let workspace = workspace(&source.url, "create_customer", "find_customer");
    workspace.edit("flow.yaml", "broken: [3, 17]", "broken: []");
    workspace.edit(
        "connectors/crm.yaml",
        "query: { external_id: \"{{ key }}\" }",
        "query: { externalId: \"{{ key }}\" }",
    );
    run(&workspace, &crm)
        .code(4)
        .stderr_contains("the lookup `find_customer` answered a row whose key is `")
        .stderr_contains(", not a key asked, and no row for `");
    assert!(
        crm.external_ids().values().all(|n| *n == 1),
        "{:?}",
        crm.external_ids()
    );
}

/// A lookup whose `rows.path` selects nothing in the answer (`$.data[*]` where the API answers
/// a bare list) would read every record as absent and send a lost answer's record again: the
/// run stops instead, naming the list the answer lacks.
#[test]
fn a_lookup_whose_rows_path_finds_no_list_stops_the_run_rather_than_send_a_customer_twice() {
    let source = source(10);
    let crm = MockRest::start(Faults {
        drop_after_commit_at: vec![5],
        allow_duplicates: true,
        ..Faults::default()
    })
    .with_token(TOKEN);
    let workspace = workspace(&source.url, "create_customer", "find_customer");
    workspace.edit("flow.yaml", "broken: [3, 17]", "broken: []");
    workspace.edit(
        "connectors/crm.yaml",
        "rows: { path: \"$[*]\"",
        "rows: { path: \"$.data[*]\"",
    );
    run(&workspace, &crm)
        .code(4)
        .stderr_contains("the answer to the lookup `find_customer` has no list at `$.data`");
    assert!(
        crm.external_ids().values().all(|n| *n == 1),
        "{:?}",
        crm.external_ids()
    );
}
