//! The HTTP edge of the WDT sandbox: axum routes that turn requests into calls on the
//! [`Service`] and its answers into responses.
//!
//! This is the only place that reads the clock and sleeps (for injected latency: an answer
//! leaves that long after its request arrived). It makes no
//! decision of its own: which answer a request gets is decided in `service` under the lock.
//!
//! | route | what |
//! | --- | --- |
//! | `GET, POST /router/qm` | the Qimen router |
//! | `POST /openapi2/stockin_order_query_refund.php` | WDT's direct API |
//! | `POST /openapi2/his_stockin_order_query_refund.php` | the same over archived orders |
//! | `GET, DELETE /_sim/stats` | counters by outcome; `DELETE` zeroes them and the log |
//! | `GET /_sim/requests` | the last 10 000 API requests and how they ended |
//! | `GET, POST /_sim/orders` | every order; insert or replace orders (object or array) |
//! | `POST /_sim/orders/{order_no}/touch` | `modified` = now, optional JSON patch |
//! | `POST /_sim/generate` | `{"count":N}` new orders modified now |
//! | `GET, PUT /_sim/faults` | the runtime switches; `PUT` patches them |
//! | `GET /_sim/codes` | every error code and text the sandbox can answer |

use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::sim::wdt::codes::{self, REMOTE_SERVICE_ERROR};
use crate::sim::wdt::data::Order;
use crate::sim::wdt::faults::FaultsPatch;
use crate::sim::wdt::params::Incoming;
use crate::sim::wdt::service::{EditError, JSON, Reply, Service};
use crate::sim::wdt::stats::Api;
use crate::time::Clock;

pub struct Shared {
    pub service: Mutex<Service>,
    pub clock: Arc<dyn Clock>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Service> {
        // A panic while holding the lock leaves consistent data (every mutation is a single
        // insert), so a poisoned lock is safe to keep using.
        self.service
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

type SharedState = State<Arc<Shared>>;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/router/qm", get(qimen).post(qimen))
        .route("/openapi2/stockin_order_query_refund.php", post(openapi2))
        .route(
            "/openapi2/his_stockin_order_query_refund.php",
            post(openapi2_history),
        )
        .route("/_sim/stats", get(stats).delete(reset_stats))
        .route("/_sim/requests", get(requests))
        .route("/_sim/orders", get(orders).post(upsert_orders))
        .route("/_sim/orders/{order_no}/touch", post(touch))
        .route("/_sim/generate", post(generate))
        .route("/_sim/faults", get(faults).put(update_faults))
        .route("/_sim/codes", get(error_codes))
        .with_state(shared)
}

async fn qimen(
    state: SharedState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    api(Api::Qimen, state, method, uri, headers, body).await
}

async fn openapi2(
    state: SharedState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    api(Api::Openapi2, state, method, uri, headers, body).await
}

async fn openapi2_history(
    state: SharedState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    api(Api::Openapi2History, state, method, uri, headers, body).await
}

async fn api(
    which: Api,
    State(shared): SharedState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let arrived = tokio::time::Instant::now();
    let latency = shared.lock().latency();
    let incoming = Incoming {
        http_method: method.to_string(),
        query: uri.query().unwrap_or_default().to_string(),
        content_type: headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string),
        body: body.to_vec(),
    };
    let now = shared.clock.now();
    let reply = shared.lock().handle(which, &incoming, now);
    // The latency is the time to an answer, the sandbox's own work included (a page costs
    // what `--wdt-latency-ms` says, not that plus the time to select and print 100 orders).
    tokio::time::sleep_until(arrived + latency).await;
    send(reply)
}

fn send(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, reply.content_type)],
        reply.body,
    )
        .into_response()
}

fn ok(value: Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, JSON)],
        value.to_string(),
    )
        .into_response()
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    let body = json!({ "error": message.into() });
    (status, [(header::CONTENT_TYPE, JSON)], body.to_string()).into_response()
}

/// Parse a JSON body; an empty body is `None`.
fn json_body(body: &Bytes) -> Result<Option<Value>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|err| format!("the body is not JSON: {err}"))
}

/// Parse an optional JSON body into `T`.
fn typed_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<Option<T>, String> {
    json_body(body)?
        .map(|value| serde_json::from_value(value).map_err(|err| err.to_string()))
        .transpose()
}

fn to_json(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).expect("sandbox state always serialises")
}

async fn stats(State(shared): SharedState) -> Response {
    ok(to_json(shared.lock().stats()))
}

async fn reset_stats(State(shared): SharedState) -> Response {
    let mut service = shared.lock();
    service.reset_stats();
    ok(to_json(service.stats()))
}

async fn requests(State(shared): SharedState) -> Response {
    ok(to_json(&shared.lock().requests()))
}

async fn orders(State(shared): SharedState) -> Response {
    ok(to_json(&shared.lock().orders()))
}

async fn upsert_orders(State(shared): SharedState, body: Bytes) -> Response {
    let value = match json_body(&body) {
        Ok(Some(value)) => value,
        Ok(None) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "send an order or an array of orders",
            );
        }
        Err(message) => return refuse(StatusCode::BAD_REQUEST, message),
    };
    let list = match value {
        Value::Array(items) => items,
        single => vec![single],
    };
    let mut parsed = Vec::with_capacity(list.len());
    for (index, item) in list.into_iter().enumerate() {
        match serde_json::from_value::<Order>(item) {
            Ok(order) => parsed.push(order),
            Err(err) => return refuse(StatusCode::BAD_REQUEST, format!("order {index}: {err}")),
        }
    }
    let now = shared.clock.now();
    match shared.lock().upsert(parsed, now) {
        Ok(upserted) => ok(to_json(&upserted)),
        Err(message) => refuse(StatusCode::BAD_REQUEST, message),
    }
}

async fn touch(State(shared): SharedState, Path(order_no): Path<String>, body: Bytes) -> Response {
    let patch = match json_body(&body) {
        Ok(patch) => patch,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, message),
    };
    let now = shared.clock.now();
    match shared.lock().touch(&order_no, patch.as_ref(), now) {
        Ok(order) => ok(to_json(&order)),
        Err(EditError::NotFound(message)) => refuse(StatusCode::NOT_FOUND, message),
        Err(EditError::Invalid(message)) => refuse(StatusCode::BAD_REQUEST, message),
    }
}

/// `POST /_sim/generate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerateRequest {
    count: usize,
    unknown_sku_share: Option<f64>,
    other_status_share: Option<f64>,
}

/// More than this in one call is a typo, not a test.
const MAX_GENERATE: usize = 100_000;

async fn generate(State(shared): SharedState, body: Bytes) -> Response {
    let request: GenerateRequest = match typed_body(&body) {
        Ok(Some(request)) => request,
        Ok(None) => return refuse(StatusCode::BAD_REQUEST, "send {\"count\": N}"),
        Err(message) => return refuse(StatusCode::BAD_REQUEST, message),
    };
    if request.count > MAX_GENERATE {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("count: at most {MAX_GENERATE} orders per call"),
        );
    }
    let now = shared.clock.now();
    let generated = shared.lock().generate(
        request.count,
        request.unknown_sku_share,
        request.other_status_share,
        now,
    );
    match generated {
        Ok(orders) => ok(json!({
            "generated": orders.len(),
            "order_nos": orders.iter().map(|order| order.order_no.as_str()).collect::<Vec<_>>(),
        })),
        Err(message) => refuse(StatusCode::BAD_REQUEST, message),
    }
}

async fn faults(State(shared): SharedState) -> Response {
    ok(to_json(shared.lock().faults()))
}

async fn update_faults(State(shared): SharedState, body: Bytes) -> Response {
    let patch: FaultsPatch = match typed_body(&body) {
        Ok(patch) => patch.unwrap_or_default(),
        Err(message) => return refuse(StatusCode::BAD_REQUEST, message),
    };
    let mut service = shared.lock();
    match service.update_faults(&patch) {
        Ok(faults) => ok(to_json(faults)),
        Err(message) => refuse(StatusCode::BAD_REQUEST, message),
    }
}

async fn error_codes() -> Response {
    ok(json!({
        "gateway": codes::GATEWAY_TABLE,
        "remote_service_error": {"code": REMOTE_SERVICE_ERROR.0, "message": REMOTE_SERVICE_ERROR.1},
        "wdt": codes::wdt_table(),
    }))
}
