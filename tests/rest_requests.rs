//! `engine run` against a small REST API written for these tests (a "CRM" on 127.0.0.1): a
//! UTC source that filters by `updated_since` only, and writes by PATCH, PUT or DELETE to a
//! templated path, with templated query parameters and headers. The server logs every
//! request as it arrived (method, raw path and query, headers, body).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use axum::response::Json;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::support::Output;
use crate::support::axum_thread::AxumThread;
use crate::support::workspace::Workspace;

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: BTreeMap<String, String>,
    headers: BTreeMap<String, String>,
    body: Value,
}

#[derive(Debug, Default)]
struct Inner {
    /// Contacts: `id`, `name`, `updated_at` (RFC 3339, UTC).
    contacts: Vec<Value>,
    /// Contacts whose `updated_at` becomes "now" when the first page is served: modified
    /// while the run reads.
    touch_on_read: Vec<String>,
    log: Vec<Seen>,
}

type Shared = Arc<Mutex<Inner>>;

struct Crm {
    url: String,
    inner: Shared,
    /// Serves until the mock is dropped.
    _served: AxumThread,
}

fn rfc3339(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Secs, true)
}

async fn answer(State(inner): State<Shared>, request: Request) -> Json<Value> {
    let (parts, body) = request.into_parts();
    let bytes: Bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let query: BTreeMap<String, String> = Query::try_from_uri(&parts.uri)
        .map(|Query(query)| query)
        .unwrap_or_default();
    let seen = Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: query.clone(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    };
    let mut inner = inner.lock().unwrap();
    inner.log.push(seen.clone());
    if seen.method == "GET" && seen.path == "/v1/contacts" {
        let since = query
            .get("updated_since")
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|s| s.with_timezone(&Utc));
        let Some(since) = since else {
            return Json(json!({"message": "updated_since must be RFC 3339"}));
        };
        let matching: Vec<Value> = inner
            .contacts
            .iter()
            .filter(|c| {
                let at = DateTime::parse_from_rfc3339(c["updated_at"].as_str().unwrap()).unwrap();
                at >= since
            })
            .cloned()
            .collect();
        // Modified while the run reads: after this answer was made, before the next run.
        let now = rfc3339(Utc::now());
        let touch = std::mem::take(&mut inner.touch_on_read);
        for contact in inner.contacts.iter_mut() {
            if touch.iter().any(|id| contact["id"] == json!(id)) {
                contact["updated_at"] = json!(now);
            }
        }
        let answered: Vec<Value> = matching
            .into_iter()
            .map(|c| {
                inner
                    .contacts
                    .iter()
                    .find(|now| now["id"] == c["id"])
                    .cloned()
                    .unwrap_or(c)
            })
            .collect();
        return Json(json!({"total": answered.len(), "data": answered}));
    }
    let id = seen.path.rsplit('/').next().unwrap_or_default().to_string();
    Json(json!({"results": [{"index": 0, "id": id}], "errors": []}))
}

impl Crm {
    fn start(contacts: Vec<Value>) -> Crm {
        let inner: Shared = Arc::new(Mutex::new(Inner {
            contacts,
            ..Inner::default()
        }));
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new()
            .fallback(answer)
            .with_state(Arc::clone(&inner));
        let served = AxumThread::start(listener, app, None);
        Crm {
            url,
            inner,
            _served: served,
        }
    }

    fn take_log(&self) -> Vec<Seen> {
        std::mem::take(&mut self.inner.lock().unwrap().log)
    }

    fn touch_on_read(&self, ids: &[&str]) {
        self.inner.lock().unwrap().touch_on_read = ids.iter().map(|s| s.to_string()).collect();
    }
}

const CONNECTOR: &str = r#"
name: crm
base_url: "{{ env.CRM_URL }}"
time_zone: UTC
auth: { strategy: none }
headers:
  X-Tenant: "{{ env.CRM_TENANT }}"
envelope:
  success: "status < 300 and not body.message"
  message: "body.message"
operations:
  contacts:
    kind: read
    method: GET
    path: /v1/contacts
    encoding: query
    headers:
      X-Since: "{{ params.updated_since }}"
    records: $.data[*]
    total: $.total
    pagination: { first_page: 1, max_page_size: 100 }
    window: { max_span: 30d, field: updated_at }
"#;

/// A write operation named `name` sent with `method`.
fn write_operation(name: &str, method: &str) -> String {
    format!(
        r#"  {name}:
    kind: write
    method: {method}
    path: "/v1/contacts/{{{{ records[0].id }}}}"
    encoding: json
    query:
      tenant: "{{{{ env.CRM_TENANT }}}}"
      form: "{{{{ params.form }}}}"
    headers:
      X-Contact: "{{{{ records[0].id }}}}"
    body: "{{{{ records[0] }}}}"
    batch: {{ max_size: 1 }}
    results: {{ successes: "$.results[*]", errors: "$.errors[*]", index: index, id: id, message: message }}
"#
    )
}

fn flow(operation: &str) -> String {
    format!(
        r#"
source:
  connector: crm
  operation: contacts
  params:
    updated_since: "{{{{ LAST_SYNC_TIME | datetime('%Y-%m-%dT%H:%M:%SZ') }}}}"
    since_as_written: "{{{{LAST_SYNC_TIME}}}}"
    limit: "{{{{PAGINATION_PAGE_SIZE}}}}"
    page: "{{{{PAGINATION_START_PAGE}}}}"
  window:
    start: "2026-01-01T00:00:00Z"
    lag: 2s
    lookback: 1m
target:
  connector: crm
  operation: {operation}
  params:
    form: contact
  batch_size: 1
key:
  source: "{{{{ id }}}}"
  target: id
  modified: "{{{{ updated_at }}}}"
mapping:
  id: "{{{{ id }}}}"
  name: "{{{{ name }}}}"
  updated: "{{{{ updated_at | datetime }}}}"
"#
    )
}

fn workspace(operation: &str) -> Workspace {
    let workspace = Workspace::empty();
    let connector = [
        CONNECTOR.to_string(),
        write_operation("update_contact", "PATCH"),
        write_operation("replace_contact", "PUT"),
        write_operation("delete_contact", "DELETE"),
    ]
    .concat();
    workspace.write("connectors/crm.yaml", connector);
    workspace.write("crm.yaml", flow(operation));
    workspace
}

fn run(workspace: &Workspace, crm: &Crm) -> Output {
    workspace
        .engine()
        .args(["run", "crm.yaml"])
        .env("CRM_URL", crm.url.clone())
        .env("CRM_TENANT", "acme")
        .env(
            "ENGINE_STATE_DIR",
            workspace.path("state").display().to_string(),
        )
        .run()
}

fn contact(id: &str, updated_at: &str) -> Value {
    json!({"id": id, "name": format!("contact {id}"), "updated_at": updated_at})
}

fn writes(log: &[Seen]) -> Vec<&Seen> {
    log.iter().filter(|seen| seen.method != "GET").collect()
}

#[test]
fn a_utc_api_filtered_by_updated_since_only_reads_records_modified_during_a_run_once() {
    let crm = Crm::start(vec![
        contact("c1", "2026-02-01T10:00:00Z"),
        contact("c2", "2026-03-01T10:00:00Z"),
    ]);
    let workspace = workspace("update_contact");
    crm.touch_on_read(&["c2"]);
    run(&workspace, &crm).success();
    let first = crm.take_log();
    let reads: Vec<&Seen> = first.iter().filter(|s| s.method == "GET").collect();
    // The placeholders and filters write in the connector's zone (UTC), not Beijing time.
    assert_eq!(reads[0].query["updated_since"], "2026-01-01T00:00:00Z");
    assert_eq!(reads[0].query["since_as_written"], "2026-01-01 00:00:00");
    assert_eq!(reads[0].headers["x-since"], "2026-01-01T00:00:00Z");
    // c2 was modified after the window's end while the run read it: it is the next run's.
    let written: Vec<&str> = writes(&first).iter().map(|s| s.path.as_str()).collect();
    assert_eq!(written, ["/v1/contacts/c1"]);
    assert_eq!(writes(&first)[0].body["updated"], "2026-02-01 10:00:00");

    // The next run starts at the cursor minus the lookback, after the lag has passed.
    std::thread::sleep(std::time::Duration::from_secs(3));
    run(&workspace, &crm).success();
    let second = crm.take_log();
    let written: Vec<&str> = writes(&second).iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        written,
        ["/v1/contacts/c2"],
        "c2 arrives once, c1 not again"
    );
}

#[test]
fn writes_reach_the_server_with_their_method_encoded_path_query_and_headers() {
    for (operation, method) in [
        ("update_contact", "PATCH"),
        ("replace_contact", "PUT"),
        ("delete_contact", "DELETE"),
    ] {
        let crm = Crm::start(vec![contact("a/b?x=1", "2026-02-01T10:00:00Z")]);
        let workspace = workspace(operation);
        run(&workspace, &crm).success();
        let log = crm.take_log();
        let writes = writes(&log);
        assert_eq!(writes.len(), 1, "{operation}: {log:?}");
        let write = writes[0];
        assert_eq!(write.method, method, "{operation}");
        // The `/` and `?` of the id stay inside their segment.
        assert_eq!(write.path, "/v1/contacts/a%2Fb%3Fx=1", "{operation}");
        assert_eq!(write.query["tenant"], "acme", "{operation}");
        assert_eq!(write.query["form"], "contact", "{operation}");
        assert_eq!(write.headers["x-tenant"], "acme", "{operation}");
        assert_eq!(write.headers["x-contact"], "a/b?x=1", "{operation}");
        assert_eq!(write.body["id"], "a/b?x=1", "{operation}");
    }
}

#[test]
fn cursor_resets_and_backfills_take_rfc_3339_times() {
    let crm = Crm::start(vec![contact("c1", "2026-02-01T10:00:00Z")]);
    let workspace = workspace("update_contact");
    let engine = |args: &[&str]| {
        workspace
            .engine()
            .args(args.iter().copied())
            .env("CRM_URL", crm.url.clone())
            .env("CRM_TENANT", "acme")
            .env(
                "ENGINE_STATE_DIR",
                workspace.path("state").display().to_string(),
            )
            .run()
    };
    engine(&[
        "state",
        "crm.yaml",
        "--reset-cursor",
        "2026-01-31T16:01:00Z",
    ])
    .success()
    .stderr_contains("set to 2026-02-01 00:01:00");
    run(&workspace, &crm).success();
    let log = crm.take_log();
    // The cursor minus the one-minute lookback, written in the API's zone (UTC).
    assert_eq!(log[0].query["updated_since"], "2026-01-31T16:00:00Z");
    assert_eq!(writes(&log).len(), 1);

    engine(&[
        "run",
        "crm.yaml",
        "--since",
        "2026-03-01T00:00:00+00:00",
        "--until",
        "1775001600",
    ])
    .success();
    let log = crm.take_log();
    assert_eq!(log[0].query["updated_since"], "2026-03-01T00:00:00Z");
    assert!(writes(&log).is_empty(), "nothing was modified since March");
}
