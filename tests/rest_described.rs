//! REST sources described from the docs alone, in styles that differ in detail from
//! `rest_sources`: the next cursor in a response header (`X-Next-Cursor`) with `has_more` as
//! the text `"true"` and times in epoch milliseconds, and a POST search that takes its filters
//! and cursor in a JSON body. With a 500, a 429 and records modified while they are read, each
//! delivers every record exactly once. Described wrongly (a `records` path or a cursor path
//! that finds nothing), the run fails the window (exit 4) instead of exiting 0 with the pages
//! behind the first one skipped, and the corrected flow then delivers everything.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use chrono::Utc;
use serde_json::{Value, json};

use crate::support::Output;
use crate::support::axum_thread::AxumThread;
use crate::support::workspace::Workspace;

const COUNT: usize = 60;

struct Inner {
    /// Record id → last-modified time, epoch milliseconds.
    records: BTreeMap<String, i64>,
    calls: u64,
    faults: bool,
    /// The most records `/records` gives per answer, whatever `limit` asks.
    cap: Option<usize>,
    /// `/items` answers 200 `{"error": "quota exceeded"}`, an error its envelope lets through.
    quota: bool,
}

type Shared = Arc<Mutex<Inner>>;

/// The API: `GET /items` (cursor in `X-Next-Cursor`) and `POST /search` (cursor in the JSON
/// body), both over the same records, sorted by id (a keyset cursor). Faults while on: call 2
/// answers 500, call 4 answers 429 with `Retry-After: 1`, and on call 3 records `r05` (behind
/// the first page) and `r40` (ahead) are modified now.
struct Api {
    url: String,
    inner: Shared,
    _served: AxumThread,
}

impl Api {
    fn start() -> Api {
        let now = Utc::now().timestamp_millis();
        let records = (1..=COUNT)
            .map(|n| (format!("r{n:02}"), now - 86_400_000 + n as i64 * 60_000))
            .collect();
        let inner = Arc::new(Mutex::new(Inner {
            records,
            calls: 0,
            faults: true,
            cap: None,
            quota: false,
        }));
        let app = Router::new()
            .route("/items", get(items))
            .route("/search", post(search))
            .route("/records", get(by_offset))
            .route("/feed", get(feed))
            .with_state(inner.clone());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        Api {
            url,
            inner,
            _served: AxumThread::start(listener, app, None),
        }
    }
}

/// A fault for this call, if any; modifies records on call 3.
fn fault(inner: &mut Inner) -> Option<Response> {
    inner.calls += 1;
    if !inner.faults {
        return None;
    }
    match inner.calls {
        2 => Some(
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"message": "boom"})),
            )
                .into_response(),
        ),
        3 => {
            let now = Utc::now().timestamp_millis();
            for id in ["r05", "r40"] {
                inner.records.insert(id.to_string(), now);
            }
            None
        }
        4 => {
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({"message": "slow down"})),
            )
                .into_response();
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
            Some(response)
        }
        _ => None,
    }
}

/// The page of records modified in `since..=until` (epoch ms) after id `after`, and whether
/// more follow.
fn page(inner: &Inner, since: i64, until: i64, after: &str, limit: usize) -> (Vec<Value>, bool) {
    let matching: Vec<_> = inner
        .records
        .iter()
        .filter(|(id, t)| (since..=until).contains(*t) && id.as_str() > after)
        .collect();
    let records = matching
        .iter()
        .take(limit)
        .map(|(id, t)| json!({"id": id, "updated_ms": t}))
        .collect();
    (records, matching.len() > limit)
}

fn number(value: Option<&Value>) -> i64 {
    match value {
        Some(Value::String(text)) => text.parse().unwrap(),
        Some(Value::Number(n)) => n.as_i64().unwrap(),
        other => panic!("not a number: {other:?}"),
    }
}

fn encode(id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

fn decode(token: &str) -> String {
    String::from_utf8(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .unwrap(),
    )
    .unwrap()
}

async fn items(
    State(inner): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if let Some(response) = fault(&mut inner) {
        return response;
    }
    if inner.quota {
        return Json(json!({"error": "quota exceeded"})).into_response();
    }
    let get = |name: &str| query.get(name).map(|v| Value::String(v.clone()));
    let after = query.get("cursor").map(|t| decode(t)).unwrap_or_default();
    let limit = number(get("limit").as_ref()) as usize;
    let (records, more) = page(
        &inner,
        number(get("since").as_ref()),
        number(get("until").as_ref()),
        &after,
        limit,
    );
    let mut headers = HeaderMap::new();
    if more {
        let last = records.last().unwrap()["id"].as_str().unwrap();
        headers.insert(
            "x-next-cursor",
            HeaderValue::from_str(&encode(last)).unwrap(),
        );
    }
    let has_more = if more { "true" } else { "false" };
    (
        headers,
        Json(json!({"items": records, "has_more": has_more})),
    )
        .into_response()
}

/// `GET /records?since&until&offset&limit`: a top-level array sorted by last-modified time
/// (so positions shift when a record is modified), 25 by default, the total in `X-Total-Count`.
async fn by_offset(
    State(inner): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if let Some(response) = fault(&mut inner) {
        return response;
    }
    let get = |name: &str| query.get(name).map(|v| v.parse::<i64>().unwrap());
    let (since, until) = (get("since").unwrap(), get("until").unwrap());
    let mut matching: Vec<_> = inner
        .records
        .iter()
        .filter(|(_, t)| (since..=until).contains(*t))
        .map(|(id, t)| (*t, id.clone()))
        .collect();
    matching.sort();
    let offset = get("offset").unwrap_or(0) as usize;
    let limit = get("limit").unwrap_or(25) as usize;
    let limit = inner.cap.map_or(limit, |cap| limit.min(cap));
    let page: Vec<_> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(t, id)| json!({"id": id, "updated_ms": t}))
        .collect();
    let mut headers = HeaderMap::new();
    headers.insert("x-total-count", HeaderValue::from(matching.len()));
    (headers, Json(Value::Array(page))).into_response()
}

/// `GET /feed?since&until&limit&after`: the next page as a URL relative to this one, only a
/// query (`"next": "?since=…&after=r07"`), as RFC 3986 resolves it against the answer's URL.
async fn feed(
    State(inner): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if let Some(response) = fault(&mut inner) {
        return response;
    }
    let get = |name: &str| query.get(name).map(|v| Value::String(v.clone()));
    let after = query.get("after").cloned().unwrap_or_default();
    let limit = number(get("limit").as_ref()) as usize;
    let (records, more) = page(
        &inner,
        number(get("since").as_ref()),
        number(get("until").as_ref()),
        &after,
        limit,
    );
    let next = more.then(|| {
        let last = records.last().unwrap()["id"].as_str().unwrap();
        format!(
            "?since={}&until={}&limit={limit}&after={last}",
            query["since"], query["until"]
        )
    });
    Json(json!({"entries": records, "next": next})).into_response()
}

async fn search(State(inner): State<Shared>, body: Option<Json<Value>>) -> Response {
    let mut inner = inner.lock().unwrap();
    if let Some(response) = fault(&mut inner) {
        return response;
    }
    let Some(Json(body)) = body else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "a JSON body is required"})),
        )
            .into_response();
    };
    let filter = &body["filter"];
    let after = body["cursor"].as_str().map(decode).unwrap_or_default();
    let limit = number(body.get("page_size")) as usize;
    let (records, more) = page(
        &inner,
        number(filter.get("since")),
        number(filter.get("until")),
        &after,
        limit,
    );
    let next =
        more.then(|| json!({"cursor": encode(records.last().unwrap()["id"].as_str().unwrap())}));
    Json(json!({"results": records, "next": next})).into_response()
}

/// The source connector, as written from docs/connectors.md.
fn connector(url: &str) -> String {
    format!(
        r#"name: source
base_url: {url}
time_zone: UTC
auth: {{ strategy: none }}
envelope: {{ success: "status == 200", message: "body.message or 'failed'" }}
http: {{ retry: {{ initial_backoff: 50ms, max_backoff: 200ms }} }}
operations:
  items:
    kind: read
    method: GET
    path: /items
    encoding: query
    params:
      since: "{{{{ LAST_SYNC_TIME | timestamp }}}}000"
      until: "{{{{ CURRENT_TIME | timestamp }}}}999"
      limit: "{{{{PAGINATION_PAGE_SIZE}}}}"
      cursor: "{{{{PAGINATION_CURSOR}}}}"
    records: $.items[*]
    pagination: {{ strategy: cursor, cursor_header: X-Next-Cursor, has_more: "body.has_more == 'true'", max_page_size: 50 }}
    window: {{ max_span: 30d, field: updated_ms }}
  search:
    kind: read
    method: POST
    path: /search
    encoding: json
    params:
      since: "{{{{ LAST_SYNC_TIME | timestamp }}}}000"
      until: "{{{{ CURRENT_TIME | timestamp }}}}999"
      page_size: "{{{{PAGINATION_PAGE_SIZE}}}}"
      cursor: "{{{{PAGINATION_CURSOR}}}}"
    body:
      filter: {{ since: "{{{{ params.since }}}}", until: "{{{{ params.until }}}}" }}
      page_size: "{{{{ params.page_size }}}}"
      cursor: "{{{{ params.cursor }}}}"
    records: $.results[*]
    pagination: {{ strategy: cursor, cursor: $.next.cursor, max_page_size: 50 }}
    window: {{ max_span: 30d, field: updated_ms }}
  feed:
    kind: read
    method: GET
    path: /feed
    encoding: query
    params:
      since: "{{{{ LAST_SYNC_TIME | timestamp }}}}000"
      until: "{{{{ CURRENT_TIME | timestamp }}}}999"
      limit: "{{{{PAGINATION_PAGE_SIZE}}}}"
    records: $.entries[*]
    pagination: {{ strategy: next_url, next_url: $.next, max_page_size: 50 }}
    window: {{ max_span: 30d, field: updated_ms }}
  records:
    kind: read
    method: GET
    path: /records
    encoding: query
    params:
      since: "{{{{ LAST_SYNC_TIME | timestamp }}}}000"
      until: "{{{{ CURRENT_TIME | timestamp }}}}999"
      offset: "{{{{PAGINATION_OFFSET}}}}"
      limit: "{{{{PAGINATION_PAGE_SIZE}}}}"
    records: $[*]
    pagination: {{ strategy: offset, max_page_size: 100, total_header: X-Total-Count }}
    window: {{ max_span: 30d, field: updated_ms }}
"#
    )
}

/// A workspace whose flow reads `operation` into a JSON Lines file.
fn workspace(url: &str, operation: &str) -> Workspace {
    let workspace = Workspace::empty();
    workspace.write("connectors/source.yaml", connector(url));
    workspace.write(
        "connectors/sink.yaml",
        "name: sink\nfile: { path: ../out.jsonl, format: jsonl }\n",
    );
    let start = (Utc::now() - chrono::Duration::days(2)).to_rfc3339();
    workspace.write(
        "flow.yaml",
        format!(
            r#"name: described
source:
  connector: source
  operation: {operation}
  page_size: 7
  window: {{ start: "{start}", lag: 1s, lookback: 1s }}
target: {{ connector: sink, operation: write }}
key: {{ source: "{{{{ id }}}}", target: id, modified: "{{{{ updated_ms | string }}}}" }}
mapping:
  id: "{{{{ id }}}}"
  updated: "{{{{ updated_ms | datetime }}}}"
"#
        ),
    );
    workspace
}

fn run(workspace: &Workspace) -> Output {
    workspace.run_flow("flow.yaml")
}

/// Every record of the API was written exactly once.
#[track_caller]
fn assert_each_written_once(workspace: &Workspace) {
    let mut written: BTreeMap<String, u32> = BTreeMap::new();
    for line in workspace.read("out.jsonl").lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        *written
            .entry(record["id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let wrong: Vec<_> = (1..=COUNT)
        .map(|n| format!("r{n:02}"))
        .filter(|id| written.get(id) != Some(&1))
        .map(|id| format!("{id}: {:?}", written.get(&id)))
        .collect();
    assert!(wrong.is_empty(), "not written exactly once: {wrong:?}");
    assert_eq!(written.len(), COUNT, "nothing else was written");
}

/// Two runs (the second once the records modified during the first are older than its lag).
fn every_record_once(operation: &str) {
    let api = Api::start();
    let workspace = workspace(&api.url, operation);
    run(&workspace)
        .success()
        .stderr_contains("answered HTTP 500")
        .stderr_contains("answered HTTP 429");
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    run(&workspace).success();
    assert_each_written_once(&workspace);
}

#[test]
fn a_cursor_in_a_response_header_with_has_more_as_text_delivers_every_record_once() {
    every_record_once("items");
}

#[test]
fn a_post_search_with_the_cursor_in_its_json_body_delivers_every_record_once() {
    // Before, a read sent its parameters in the query and no body: the API saw no cursor.
    every_record_once("search");
}

#[test]
fn a_next_url_that_is_only_a_query_keeps_the_path_of_the_answer() {
    // Before: `?since=…` was resolved against `base_url` (`GET /?since=…`, a 404).
    every_record_once("feed");
}

#[test]
fn an_offset_api_with_the_total_in_a_header_delivers_every_record_once() {
    every_record_once("records");
}

/// The connector edited by `edits` fails the run with `message` (exit 4), the cursor kept;
/// the corrected connector then delivers every record.
fn wrong_description_fails_then_recovers(operation: &str, edits: &[(&str, &str)], message: &str) {
    let api = Api::start();
    api.inner.lock().unwrap().faults = false;
    let workspace = workspace(&api.url, operation);
    let connector = workspace.read("connectors/source.yaml");
    for (old, new) in edits {
        workspace.edit("connectors/source.yaml", old, new);
    }
    run(&workspace).code(4).stderr_contains(message);
    workspace
        .engine()
        .args(["state", "flow.yaml"])
        .env(
            "ENGINE_STATE_DIR",
            workspace.path("state").display().to_string(),
        )
        .run()
        .success()
        .stdout_contains("cursor: none yet");
    workspace.write("connectors/source.yaml", connector);
    run(&workspace).success();
    assert_each_written_once(&workspace);
}

#[test]
fn a_records_path_that_finds_nothing_while_the_answer_holds_records_fails_the_window() {
    // Before: 0 records on every page, exit 0, and the cursor moved past all 60.
    wrong_description_fails_then_recovers(
        "items",
        &[("records: $.items[*]", "records: $.data[*]")],
        "`$.data` is not in the answer, which holds a list of 7 object(s) at `$.items` (is `records: $.data[*]` right?)",
    );
}

#[test]
fn a_cursor_path_that_finds_nothing_while_a_header_gives_the_token_fails_the_window() {
    // Before: the first page of each window, then exit 0 with the other pages never read.
    wrong_description_fails_then_recovers(
        "items",
        &[(
            "cursor_header: X-Next-Cursor, has_more: \"body.has_more == 'true'\"",
            "cursor: $.next_cursor",
        )],
        "the answer gives a next page in the header `x-next-cursor`, but the pagination finds no cursor where it reads it",
    );
}

#[test]
fn a_has_more_as_text_read_as_a_flag_fails_the_window() {
    // `has_more: body.has_more` is true for the text "false": the last page says more
    // records follow but gives no cursor.
    wrong_description_fails_then_recovers(
        "items",
        &[(
            "has_more: \"body.has_more == 'true'\"",
            "has_more: body.has_more",
        )],
        "an answer says more records follow (`has_more`) but gives no next cursor",
    );
}

#[test]
fn an_offset_api_read_as_one_answer_fails_on_its_header_total() {
    // Before: the API's default page of 25 taken for the whole window, exit 0, 35 lost.
    wrong_description_fails_then_recovers(
        "records",
        &[
            (
                "      offset: \"{{PAGINATION_OFFSET}}\"\n      limit: \"{{PAGINATION_PAGE_SIZE}}\"\n",
                "",
            ),
            (
                "strategy: offset, max_page_size: 100, total_header: X-Total-Count",
                "strategy: none",
            ),
        ],
        "the header `x-total-count` says 60 record(s) but the answer holds 25; pagination `none` reads one answer per window",
    );
}

#[test]
fn an_offset_api_capping_its_pages_below_the_size_asked_fails_the_window_without_a_total() {
    // Before: the API gives 5 records where 7 are asked and no total is described; the first
    // short page ended every window, exit 0, 55 of 60 never read.
    let api = Api::start();
    {
        let mut inner = api.inner.lock().unwrap();
        inner.faults = false;
        inner.cap = Some(5);
    }
    let workspace = workspace(&api.url, "records");
    workspace.edit(
        "connectors/source.yaml",
        "strategy: offset, max_page_size: 100, total_header: X-Total-Count",
        "strategy: offset, max_page_size: 100",
    );
    run(&workspace).code(4).stderr_contains(
        "page 0 held 5 record(s), fewer than the 7 `page_size` asks, yet the page after it held more",
    );
    workspace.edit("flow.yaml", "page_size: 7", "page_size: 5");
    run(&workspace).success();
    assert_each_written_once(&workspace);
}

#[test]
fn an_error_answer_without_the_records_list_fails_the_window_instead_of_reading_as_empty() {
    // Before: 200 {"error": "quota exceeded"} passed the envelope (`success: status == 200`),
    // was read as no records, and the run exited 0 with the cursor past all 60.
    let api = Api::start();
    {
        let mut inner = api.inner.lock().unwrap();
        inner.faults = false;
        inner.quota = true;
    }
    let workspace = workspace(&api.url, "items");
    run(&workspace)
        .code(4)
        .stderr_contains("without `$.items`, and nothing in it says it holds no records")
        .stderr_contains("records_absent: empty");
    workspace
        .engine()
        .args(["state", "flow.yaml"])
        .env(
            "ENGINE_STATE_DIR",
            workspace.path("state").display().to_string(),
        )
        .run()
        .success()
        .stdout_contains("cursor: none yet");
    api.inner.lock().unwrap().quota = false;
    run(&workspace).success();
    assert_each_written_once(&workspace);
}
