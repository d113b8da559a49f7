//! The HTTP edge: an accept loop serving an axum router over hyper, the WebAPI handler that
//! hands requests to [`service::handle`], and the `/_sim/` inspection endpoints:
//!
//! | route | what |
//! | --- | --- |
//! | `GET, DELETE /_sim/bills` | every bill; `DELETE` removes them all |
//! | `GET /_sim/stats` | calls by service and outcome, bills, injected faults, sessions |
//! | `POST /_sim/sessions/expire` | end every session now |
//! | `GET, POST /_sim/basedata/{table}` | a base-data table; insert or change a record |
//! | `GET, PUT /_sim/faults` | the fault settings; `PUT` patches them |
//! | `POST, DELETE /_sim/faults/next` | arm a mishap for the next calls; disarm them all |
//! | `GET, POST /_sim/users/{username}` | the API user; whitelist, lock, password |
//!
//! The accept loop is [`crate::sim::serve`], not `axum::serve`, for commit-then-drop: a
//! handler that has committed a save and must "time out" trips its [`ConnectionControl`].
//! Sleeping (latency faults) happens here, never under the state lock.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State as AxumState};
use axum::http::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response as AxumResponse};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::secret::Secret;
use crate::sign::kingdee::header;
use crate::sim::kingdee::auth::Credentials;
use crate::sim::kingdee::basedata::Table;
use crate::sim::kingdee::faults::FaultsPatch;
use crate::sim::kingdee::mishap::Armed;
use crate::sim::kingdee::route::{self, Route};
use crate::sim::kingdee::save::SaveConfig;
use crate::sim::kingdee::service::{self, After, Request};
use crate::sim::kingdee::state::State;
use crate::time::Clock;

/// What every handler shares.
pub struct Shared {
    pub state: Mutex<State>,
    /// Saves under way now (from arrival to answer), for the capacity limit.
    pub saves_under_way: AtomicUsize,
    pub save_config: SaveConfig,
    pub vdir: String,
    pub clock: Box<dyn Clock>,
}

impl Shared {
    /// The state, even if a panicking handler poisoned the lock (the data stays usable).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub use crate::sim::serve::{ConnectionControl, serve};

/// The router: the WebAPI as the fallback, inspection endpoints under `/_sim/`.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/_sim/bills", get(list_bills).delete(clear_bills))
        .route("/_sim/stats", get(stats))
        .route("/_sim/sessions/expire", post(expire_sessions))
        .route(
            "/_sim/basedata/{table}",
            get(list_basedata).post(upsert_basedata),
        )
        .route("/_sim/faults", get(get_faults).put(put_faults))
        .route("/_sim/faults/next", post(arm_mishap).delete(disarm_mishaps))
        .route("/_sim/users/{username}", get(get_user).post(patch_user))
        .fallback(webapi)
        .with_state(shared)
}

fn json_response(status: StatusCode, value: Value) -> AxumResponse {
    (status, [(CONTENT_TYPE, service::JSON)], value.to_string()).into_response()
}

fn credentials(headers: &HeaderMap) -> Credentials {
    let mut session_ids = Vec::new();
    for cookie_header in headers.get_all(COOKIE) {
        let Ok(text) = cookie_header.to_str() else {
            continue;
        };
        for pair in text.split(';') {
            if let Some((name, value)) = pair.split_once('=')
                && name.trim().eq_ignore_ascii_case(header::SESSION_ID)
                && !value.trim().is_empty()
            {
                session_ids.push(value.trim().to_string());
            }
        }
    }
    if let Some(sid) = headers
        .get(header::SESSION_ID)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|sid| !sid.is_empty())
    {
        session_ids.push(sid.to_string());
    }
    let headers = headers
        .iter()
        .filter_map(|(name, value)| {
            Some((
                name.as_str().to_ascii_lowercase(),
                value.to_str().ok()?.to_string(),
            ))
        })
        .collect();
    Credentials {
        session_ids,
        headers,
    }
}

async fn webapi(
    AxumState(shared): AxumState<Arc<Shared>>,
    Extension(control): Extension<ConnectionControl>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> AxumResponse {
    let service = match route::route(&shared.vdir, uri.path()) {
        Route::Service(service) => service,
        Route::MissingVirtualDirectory => return StatusCode::FORBIDDEN.into_response(),
        Route::NotFound => {
            return (
                StatusCode::NOT_FOUND,
                [(CONTENT_TYPE, service::TEXT)],
                format!("404 - no such service: {}", uri.path()),
            )
                .into_response();
        }
    };
    if method != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    // Counted from arrival to answer, so that the latency is part of a write's occupancy; the
    // guard also counts down when a dropped connection drops this future.
    let under_way = service
        .is_write()
        .then(|| UnderWay::enter(&shared.saves_under_way));
    let (latency, capacity) = {
        let state = shared.lock();
        (state.faults.latency_ms, state.faults.capacity)
    };
    let over_capacity = match (&under_way, capacity) {
        (Some(under_way), Some(capacity)) => under_way.count > capacity,
        _ => false,
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let request = Request {
        service,
        path_and_query: uri
            .path_and_query()
            .map_or_else(|| uri.path().to_string(), |pq| pq.as_str().to_string()),
        content_type: headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string),
        credentials: credentials(&headers),
        body: body.to_vec(),
        over_capacity,
    };
    let (response, per_bill) = {
        let now = shared.clock.now();
        let mut state = shared.lock();
        let per_bill = state.faults.latency_per_bill_ms;
        (
            service::handle(&mut state, &shared.save_config, &request, now),
            per_bill,
        )
    };
    // The bills are committed; a slow answer now is the "timed out but saved" case.
    let delay = per_bill.saturating_mul(response.bills as u64);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if response.after == After::DropConnection {
        control.drop_connection();
        // The connection task drops this future together with the connection.
        std::future::pending::<()>().await;
    }
    let mut out = (
        StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(CONTENT_TYPE, response.content_type)],
        response.body,
    )
        .into_response();
    for cookie in response.set_cookies {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            out.headers_mut().append(SET_COOKIE, value);
        }
    }
    out
}

/// One save under way: counted in on arrival, out when dropped.
struct UnderWay<'a> {
    counter: &'a AtomicUsize,
    /// Saves under way on arrival, this one included.
    count: usize,
}

impl<'a> UnderWay<'a> {
    fn enter(counter: &'a AtomicUsize) -> UnderWay<'a> {
        let count = counter.fetch_add(1, Ordering::SeqCst) + 1;
        UnderWay { counter, count }
    }
}

impl Drop for UnderWay<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn list_bills(AxumState(shared): AxumState<Arc<Shared>>) -> AxumResponse {
    let state = shared.lock();
    let bills: Vec<Value> = state
        .bills
        .bills()
        .iter()
        .map(|bill| bill.to_inspection_json())
        .collect();
    json_response(StatusCode::OK, Value::Array(bills))
}

async fn clear_bills(AxumState(shared): AxumState<Arc<Shared>>) -> AxumResponse {
    let count = shared.lock().bills.clear();
    json_response(StatusCode::OK, json!({"deleted": count}))
}

async fn stats(AxumState(shared): AxumState<Arc<Shared>>) -> AxumResponse {
    let now = shared.clock.now();
    let stats = shared.lock().stats_json(now);
    json_response(StatusCode::OK, stats)
}

async fn expire_sessions(AxumState(shared): AxumState<Arc<Shared>>) -> AxumResponse {
    let expired = shared.lock().auth.expire_all();
    json_response(StatusCode::OK, json!({"expired": expired}))
}

fn unknown_table(name: &str) -> AxumResponse {
    let names: Vec<&str> = Table::ALL.iter().map(|table| table.name()).collect();
    json_response(
        StatusCode::NOT_FOUND,
        json!({"error": format!("no base-data table `{name}`"), "tables": names}),
    )
}

async fn list_basedata(
    AxumState(shared): AxumState<Arc<Shared>>,
    Path(name): Path<String>,
) -> AxumResponse {
    let Some(table) = Table::parse(&name) else {
        return unknown_table(&name);
    };
    let state = shared.lock();
    let records: Vec<Value> = state.basedata.records(table).map(|r| r.to_json()).collect();
    json_response(StatusCode::OK, Value::Array(records))
}

/// The body of `POST /_sim/basedata/{table}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordPatch {
    #[serde(alias = "FNumber", alias = "Number")]
    number: Value,
    #[serde(default, alias = "FName", alias = "Name")]
    name: Option<String>,
    #[serde(default, alias = "Forbidden")]
    forbidden: bool,
    #[serde(default, alias = "BaseUnit")]
    base_unit: Option<String>,
}

async fn upsert_basedata(
    AxumState(shared): AxumState<Arc<Shared>>,
    Path(name): Path<String>,
    body: Bytes,
) -> AxumResponse {
    let Some(table) = Table::parse(&name) else {
        return unknown_table(&name);
    };
    let patch: RecordPatch = match serde_json::from_slice(&body) {
        Ok(patch) => patch,
        Err(err) => {
            return json_response(StatusCode::BAD_REQUEST, json!({"error": err.to_string()}));
        }
    };
    let Some(number) = crate::sim::kingdee::body::scalar_text(&patch.number)
        .filter(|number| !number.trim().is_empty())
    else {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({"error": "`number` must be a non-empty code"}),
        );
    };
    let mut state = shared.lock();
    let base_unit = match (table, patch.base_unit) {
        (Table::Materials, None) if state.basedata.get(table, &number).is_none() => {
            Some("Pcs".to_string())
        }
        (_, unit) => unit,
    };
    let record = state
        .basedata
        .upsert(
            table,
            number.trim(),
            patch.name.as_deref(),
            patch.forbidden,
            base_unit.as_deref(),
        )
        .to_json();
    json_response(StatusCode::OK, record)
}

fn faults_json(state: &State) -> Value {
    serde_json::to_value(&state.faults).expect("faults serialise")
}

async fn get_faults(AxumState(shared): AxumState<Arc<Shared>>) -> AxumResponse {
    json_response(StatusCode::OK, faults_json(&shared.lock()))
}

async fn put_faults(AxumState(shared): AxumState<Arc<Shared>>, body: Bytes) -> AxumResponse {
    let patch: FaultsPatch = match serde_json::from_slice(&body) {
        Ok(patch) => patch,
        Err(err) => {
            return json_response(StatusCode::BAD_REQUEST, json!({"error": err.to_string()}));
        }
    };
    let mut state = shared.lock();
    match state.faults.patched(&patch) {
        Ok(faults) => {
            state.faults = faults;
            json_response(StatusCode::OK, faults_json(&state))
        }
        Err(err) => json_response(StatusCode::BAD_REQUEST, json!({"error": err})),
    }
}

/// `POST /_sim/faults/next`: arm a mishap (`{"mishap": …, "calls": N, "on": …}`) after those
/// already armed; answers the fault settings.
async fn arm_mishap(AxumState(shared): AxumState<Arc<Shared>>, body: Bytes) -> AxumResponse {
    let armed: Armed = match serde_json::from_slice(&body) {
        Ok(armed) => armed,
        Err(err) => {
            return json_response(StatusCode::BAD_REQUEST, json!({"error": err.to_string()}));
        }
    };
    let mut state = shared.lock();
    match state.faults.arm(armed) {
        Ok(()) => json_response(StatusCode::OK, faults_json(&state)),
        Err(err) => json_response(StatusCode::BAD_REQUEST, json!({"error": err})),
    }
}

/// `DELETE /_sim/faults/next`: disarm every armed mishap.
async fn disarm_mishaps(AxumState(shared): AxumState<Arc<Shared>>) -> AxumResponse {
    let mut state = shared.lock();
    state.faults.next.clear();
    json_response(StatusCode::OK, faults_json(&state))
}

/// The body of `POST /_sim/users/{username}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserPatch {
    webapi_allowed: Option<bool>,
    locked: Option<bool>,
    password: Option<String>,
}

fn user_json(state: &State, username: &str) -> AxumResponse {
    match state.auth.user(username) {
        Some(user) => json_response(
            StatusCode::OK,
            json!({
                "username": user.username,
                "webapi_allowed": user.webapi_allowed,
                "locked": user.locked,
                "failed_logins": user.failed_logins,
            }),
        ),
        None => json_response(
            StatusCode::NOT_FOUND,
            json!({"error": format!("no user `{username}`")}),
        ),
    }
}

async fn get_user(
    AxumState(shared): AxumState<Arc<Shared>>,
    Path(username): Path<String>,
) -> AxumResponse {
    user_json(&shared.lock(), &username)
}

async fn patch_user(
    AxumState(shared): AxumState<Arc<Shared>>,
    Path(username): Path<String>,
    body: Bytes,
) -> AxumResponse {
    let patch: UserPatch = match serde_json::from_slice(&body) {
        Ok(patch) => patch,
        Err(err) => {
            return json_response(StatusCode::BAD_REQUEST, json!({"error": err.to_string()}));
        }
    };
    let mut state = shared.lock();
    if let Some(user) = state.auth.user_mut(&username) {
        if let Some(allowed) = patch.webapi_allowed {
            user.webapi_allowed = allowed;
        }
        if let Some(locked) = patch.locked {
            user.locked = locked;
            user.failed_logins = 0;
        }
        if let Some(password) = patch.password {
            user.password = Secret::new(password);
        }
    }
    user_json(&state, &username)
}

/// The address a client should use for a bound address (a wildcard bind is reached on
/// loopback).
pub fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => {
            SocketAddr::from(([127, 0, 0, 1], addr.port()))
        }
        ip if ip.is_unspecified() => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port())),
        _ => addr,
    }
}
