//! A small REST API in the common paging styles, written for the tests: it serves items
//! filtered by an update-time window and paged the way Stripe (`starting_after` + `has_more`),
//! GitHub (`Link` with page numbers), Shopify (an opaque `page_info` in `Link`), HubSpot
//! (`paging.next.after` in the body) or a plain offset API does, with faults on demand (one
//! HTTP 500, one 429 with `Retry-After: 1`) and items modified while a window is read. It is
//! also the target: a JSON batch-write endpoint and a lookup by key, so a test can count what
//! arrived. It runs on its own thread and stops when dropped.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use chrono::{Duration, FixedOffset, Utc};
use serde_json::{Value, json};

use super::server::Server;

/// How the source pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `GET /v1/items?limit&starting_after` → `{data, has_more}`.
    Stripe,
    /// `GET /issues?per_page&page` → a list, `Link: <…&page=2>; rel="next"`.
    GitHub,
    /// `GET /admin/orders.json?limit` then `?page_info=…` from `Link` → `{orders}`.
    Shopify,
    /// `GET /crm/contacts?limit&after` → `{results, paging: {next: {after}}, total}`.
    HubSpot,
    /// `GET /records?offset&limit` → `{items, total}`.
    Offset,
}

/// What the mock does beyond answering.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Source requests (1-based) answered with HTTP 500 instead.
    pub server_error_at: Vec<usize>,
    /// Source requests (1-based) answered with HTTP 429 and `Retry-After: 1` instead.
    pub throttle_at: Vec<usize>,
    /// After answering source request `n`, these items are modified (their update time set to
    /// now, so they leave the window being read).
    pub modify_after: Vec<(usize, Vec<u64>)>,
    /// Added to the true total the body reports (HubSpot, offset).
    pub total_lie: i64,
    /// HubSpot's `paging.next.link` points to another origin (`localhost` for `127.0.0.1`).
    pub foreign_next: bool,
}

#[derive(Debug, Default)]
struct Inner {
    style: Option<Style>,
    /// id → update time, `yyyy-MM-dd HH:mm:ss` in UTC+8.
    items: BTreeMap<u64, String>,
    faults: Faults,
    /// Source requests answered so far (faults included).
    requests: usize,
    /// Source requests that came through a link to another origin.
    foreign: usize,
    /// Every write received, by key.
    written: HashMap<String, u32>,
    base: String,
}

type Shared = Arc<Mutex<Inner>>;

pub struct RestMock {
    /// The base URL of both the source and the sink.
    pub url: String,
    inner: Shared,
    _server: Server,
}

/// `yyyy-MM-dd HH:mm:ss` in UTC+8, `ago` before now.
pub fn shanghai(ago: Duration) -> String {
    (Utc::now() - ago)
        .with_timezone(&FixedOffset::east_opt(8 * 3600).unwrap())
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

impl RestMock {
    /// Serve `count` items updated over the last day in `style`, with `faults`.
    pub fn start(style: Style, count: u64, faults: Faults) -> RestMock {
        let items = (1..=count)
            .map(|id| (id, shanghai(Duration::minutes(10 + (id as i64 * 7) % 1400))))
            .collect();
        let inner: Shared = Arc::new(Mutex::new(Inner {
            style: Some(style),
            items,
            faults,
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/v1/items", get(source))
            .route("/issues", get(source))
            .route("/admin/orders.json", get(source))
            .route("/crm/contacts", get(source))
            .route("/records", get(source))
            .route("/sink/write", post(write))
            .route("/sink/lookup", post(lookup))
            .with_state(Arc::clone(&inner));
        let server = Server::start(app);
        inner.lock().unwrap().base = server.url.clone();
        RestMock {
            url: server.url.clone(),
            inner,
            _server: server,
        }
    }

    /// Every item id the source holds.
    pub fn ids(&self) -> Vec<u64> {
        self.inner.lock().unwrap().items.keys().copied().collect()
    }

    /// How many times each key was written.
    pub fn written(&self) -> HashMap<String, u32> {
        self.inner.lock().unwrap().written.clone()
    }

    /// Source requests that followed a link to another origin (none, ever).
    pub fn foreign_requests(&self) -> usize {
        self.inner.lock().unwrap().foreign
    }

    /// Source requests answered so far.
    pub fn requests(&self) -> usize {
        self.inner.lock().unwrap().requests
    }

    pub fn set_faults(&self, faults: Faults) {
        let mut inner = self.inner.lock().unwrap();
        inner.faults = faults;
        inner.requests = 0;
    }
}

fn record(id: u64, updated: &str) -> Value {
    json!({"id": id, "updated_at": updated, "name": format!("item {id}")})
}

/// A query parameter as a number.
fn number(query: &HashMap<String, String>, name: &str) -> Option<u64> {
    query.get(name).and_then(|value| value.parse().ok())
}

/// The opaque `page_info` of Shopify: the window and the last id, hex-encoded.
fn page_info(since: &str, until: &str, after: u64) -> String {
    format!("{since}|{until}|{after}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn read_page_info(text: &str) -> Option<(String, String, u64)> {
    let bytes: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect();
    let text = String::from_utf8(bytes?).ok()?;
    let mut parts = text.split('|');
    Some((
        parts.next()?.to_string(),
        parts.next()?.to_string(),
        parts.next()?.parse().ok()?,
    ))
}

async fn source(
    State(inner): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = inner.lock().unwrap();
    inner.requests += 1;
    if query.contains_key("foreign") {
        inner.foreign += 1;
    }
    let n = inner.requests;
    if inner.faults.server_error_at.contains(&n) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "upstream failed").into_response();
    }
    if inner.faults.throttle_at.contains(&n) {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("1"));
        return (
            StatusCode::TOO_MANY_REQUESTS,
            headers,
            Json(json!({"message": "slow down"})),
        )
            .into_response();
    }
    let response = answer(&inner, &query);
    let now = shanghai(Duration::zero());
    let modify: Vec<u64> = inner
        .faults
        .modify_after
        .iter()
        .filter(|(at, _)| *at == n)
        .flat_map(|(_, ids)| ids.clone())
        .collect();
    for id in modify {
        inner.items.insert(id, now.clone());
    }
    response
}

/// One page in the mock's style.
fn answer(inner: &Inner, query: &HashMap<String, String>) -> Response {
    let style = inner.style.expect("a style");
    let limit = number(query, "limit")
        .or(number(query, "per_page"))
        .unwrap_or(10)
        .max(1) as usize;
    let (since, until, after) = match query.get("page_info") {
        Some(info) => match read_page_info(info) {
            Some(found) => found,
            None => return (StatusCode::BAD_REQUEST, "bad page_info").into_response(),
        },
        None => (
            query.get("since").cloned().unwrap_or_default(),
            query.get("until").cloned().unwrap_or_default(),
            number(query, "starting_after")
                .or(number(query, "after"))
                .unwrap_or(0),
        ),
    };
    if since.is_empty() || until.is_empty() {
        return (StatusCode::BAD_REQUEST, "since and until are required").into_response();
    }
    // Every style sorts by id; keyset styles continue after an id, the others skip a count.
    let window: Vec<(u64, &String)> = inner
        .items
        .iter()
        .filter(|(_, updated)| **updated >= since && **updated <= until)
        .map(|(id, updated)| (*id, updated))
        .collect();
    let skip = match style {
        Style::GitHub => (number(query, "page").unwrap_or(1).max(1) as usize - 1) * limit,
        Style::Offset => number(query, "offset").unwrap_or(0) as usize,
        _ => window.iter().take_while(|(id, _)| *id <= after).count(),
    };
    let page: Vec<Value> = window
        .iter()
        .skip(skip)
        .take(limit)
        .map(|(id, updated)| record(*id, updated))
        .collect();
    let more = window.len() > skip + page.len();
    let last = page.last().and_then(|r| r["id"].as_u64()).unwrap_or(after);
    let total = (window.len() as i64 + inner.faults.total_lie).max(0);
    let base = &inner.base;
    let mut headers = HeaderMap::new();
    let body = match style {
        Style::Stripe => json!({"object": "list", "data": page, "has_more": more}),
        Style::GitHub => {
            let page_no = number(query, "page").unwrap_or(1).max(1);
            let link = |p: u64, rel: &str| {
                format!(
                    "<{base}/issues?since={}&until={}&per_page={limit}&page={p}>; rel=\"{rel}\"",
                    encode(&since),
                    encode(&until)
                )
            };
            let last_page = window.len().div_ceil(limit).max(1) as u64;
            let mut links = vec![link(last_page, "last")];
            if more {
                links.insert(0, link(page_no + 1, "next"));
            }
            headers.insert("link", HeaderValue::from_str(&links.join(", ")).unwrap());
            headers.insert("x-total-count", HeaderValue::from(total as u64));
            Value::Array(page)
        }
        Style::Shopify => {
            if more {
                let next = format!(
                    "<{base}/admin/orders.json?limit={limit}&page_info={}>; rel=\"next\"",
                    page_info(&since, &until, last)
                );
                headers.insert("link", HeaderValue::from_str(&next).unwrap());
            }
            json!({"orders": page})
        }
        Style::HubSpot => {
            let mut body = json!({"results": page, "total": total});
            if more {
                let origin = if inner.faults.foreign_next {
                    base.replace("127.0.0.1", "localhost") + "/crm/contacts?foreign=1&"
                } else {
                    format!("{base}/crm/contacts?")
                };
                let link = format!(
                    "{origin}since={}&until={}&limit={limit}&after={last}",
                    encode(&since),
                    encode(&until)
                );
                body["paging"] = json!({"next": {"after": last.to_string(), "link": link}});
            }
            body
        }
        Style::Offset => json!({"items": page, "total": total}),
    };
    (StatusCode::OK, headers, Json(body)).into_response()
}

fn encode(text: &str) -> String {
    text.replace(' ', "%20").replace(':', "%3A")
}

async fn write(State(inner): State<Shared>, Json(body): Json<Value>) -> Json<Value> {
    let mut inner = inner.lock().unwrap();
    let mut ok = Vec::new();
    for (index, record) in body["records"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let key = record["id"]
            .as_str()
            .map_or_else(|| record["id"].to_string(), str::to_string);
        *inner.written.entry(key.clone()).or_default() += 1;
        ok.push(json!({"i": index, "id": format!("T{key}")}));
    }
    Json(json!({"ok": ok, "errors": []}))
}

async fn lookup(State(inner): State<Shared>, Json(body): Json<Value>) -> Json<Value> {
    let inner = inner.lock().unwrap();
    let rows: Vec<Value> = body["keys"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|key| {
            let key = key.as_str()?.to_string();
            inner
                .written
                .contains_key(&key)
                .then(|| json!({"key": key, "id": format!("T{key}")}))
        })
        .collect();
    Json(json!({"rows": rows}))
}
