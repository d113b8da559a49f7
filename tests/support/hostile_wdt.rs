//! A small hostile WDT: it answers `wdt.stockin.order.query.refund` through a Qimen-style
//! router well enough for the bundled flow (the `response` envelope, `total_count` on page 0,
//! `stockin_list` paged by `page_no`/`page_size` over the orders whose `modified` lies in
//! `start_time`..`end_time`), then lies the way a broken gateway might: a wrong `total_count`,
//! a records list of the wrong shape. It serves the orders it is given (usually the WDT
//! sandbox's own, so that the Kingdee sandbox knows their customers and materials), does not
//! check signatures, and counts the pages it was asked for. It runs on its own thread and
//! stops when dropped.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::response::Json;
use axum::routing::post;
use serde_json::{Value, json};

use crate::support::axum_thread::AxumThread;

/// How `stockin_list` is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListShape {
    /// A list of order objects, as WDT sends it.
    List,
    /// An object whose values are the orders (keyed by order number).
    Object,
    /// A list of order numbers (strings).
    Strings,
}

/// What the server says, beside the orders of the page.
#[derive(Debug, Clone, Copy)]
pub struct Behaviour {
    /// `total_count` on page 0: the true count when `None`.
    pub total: Option<u64>,
    pub shape: ListShape,
}

impl Default for Behaviour {
    fn default() -> Behaviour {
        Behaviour {
            total: None,
            shape: ListShape::List,
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    orders: Vec<Value>,
    behaviour: Behaviour,
    /// `page_no` of every query served, in order.
    pages: Vec<u64>,
    /// Answer `1012` (too frequent, in an HTTP 200) the first time this page is asked for.
    throttle_once: Option<u64>,
    /// Every answer waits this long.
    slow_ms: u64,
    /// Queries being answered now, and the most at once.
    in_flight: u32,
    max_in_flight: u32,
    /// `start P` and `end P` of every query, in order.
    log: Vec<String>,
}

type Shared = Arc<Mutex<Inner>>;

pub struct HostileWdt {
    /// The router URL to give the flow as `WDT_QIMEN_URL`.
    pub url: String,
    inner: Shared,
    /// Serves until the mock is dropped.
    _served: AxumThread,
}

impl HostileWdt {
    /// Serve `orders` (WDT `stockin_list` objects) on 127.0.0.1.
    pub fn start(orders: Vec<Value>, behaviour: Behaviour) -> HostileWdt {
        let inner: Shared = Arc::new(Mutex::new(Inner {
            orders,
            behaviour,
            pages: Vec::new(),
            ..Inner::default()
        }));
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let url = format!("http://{}/router/qm", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/router/qm", post(answer))
            .with_state(Arc::clone(&inner));
        let served = AxumThread::start(listener, app, None);
        HostileWdt {
            url,
            inner,
            _served: served,
        }
    }

    /// Change what the server says from the next request on.
    pub fn set(&self, behaviour: Behaviour) {
        self.inner.lock().unwrap().behaviour = behaviour;
    }

    pub fn set_orders(&self, orders: Vec<Value>) {
        self.inner.lock().unwrap().orders = orders;
    }

    /// Refuse `page` once as too frequent, and answer every query after `slow_ms`.
    pub fn throttle_once(&self, page: Option<u64>, slow_ms: u64) {
        let mut inner = self.inner.lock().unwrap();
        inner.throttle_once = page;
        inner.slow_ms = slow_ms;
    }

    /// The most queries answered at once, and the log of their starts and ends.
    pub fn concurrency(&self) -> (u32, Vec<String>) {
        let inner = self.inner.lock().unwrap();
        (inner.max_in_flight, inner.log.clone())
    }

    /// The `page_no` of every query served since the last call.
    pub fn take_pages(&self) -> Vec<u64> {
        std::mem::take(&mut self.inner.lock().unwrap().pages)
    }
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
}

/// One query: the orders of the window, sorted as WDT sorts them, one page of them.
async fn answer(
    State(inner): State<Shared>,
    Query(mut params): Query<HashMap<String, String>>,
    Form(body): Form<HashMap<String, String>>,
) -> Json<Value> {
    params.extend(body);
    let page: u64 = params
        .get("page_no")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let (slow, throttled) = {
        let mut guard = inner.lock().unwrap();
        guard.in_flight += 1;
        guard.max_in_flight = guard.max_in_flight.max(guard.in_flight);
        guard.log.push(format!("start {page}"));
        let throttled = guard.throttle_once == Some(page);
        if throttled {
            guard.throttle_once = None;
        }
        (guard.slow_ms, throttled)
    };
    tokio::time::sleep(std::time::Duration::from_millis(slow)).await;
    let answer = answer_now(&inner, params, throttled);
    let mut guard = inner.lock().unwrap();
    guard.in_flight -= 1;
    guard.log.push(format!(
        "end {page}{}",
        if throttled { " (1012)" } else { "" }
    ));
    answer
}

fn answer_now(inner: &Shared, params: HashMap<String, String>, throttled: bool) -> Json<Value> {
    if throttled {
        return Json(json!({"response": {
            "flag": "failure", "code": "50", "message": "Remote service error",
            "sub_code": "1012", "sub_message": "too frequent",
        }}));
    }
    let param = |key: &str| params.get(key).cloned().unwrap_or_default();
    let mut inner = inner.lock().unwrap();
    if param("method") != "wdt.stockin.order.query.refund" {
        return Json(json!({"response": {
            "flag": "failure", "code": "50", "message": "Remote service error",
            "sub_code": "invalid-method", "sub_message": "unknown method",
        }}));
    }
    let (start, end) = (param("start_time"), param("end_time"));
    let status = params
        .get("status")
        .cloned()
        .unwrap_or_else(|| "80".to_string());
    let page_no: u64 = param("page_no").parse().unwrap_or(0);
    let page_size: u64 = param("page_size").parse().unwrap_or(40);
    inner.pages.push(page_no);
    let mut selected: Vec<&Value> = inner
        .orders
        .iter()
        .filter(|order| {
            let modified = text(&order["modified"]);
            text(&order["status"]) == status
                && modified.as_str() >= start.as_str()
                && modified.as_str() <= end.as_str()
        })
        .collect();
    selected.sort_by_key(|order| (text(&order["modified"]), text(&order["order_no"])));
    let rows: Vec<Value> = selected
        .iter()
        .skip((page_no * page_size) as usize)
        .take(page_size as usize)
        .map(|order| (*order).clone())
        .collect();
    let list = match inner.behaviour.shape {
        ListShape::List => Value::Array(rows),
        ListShape::Object => Value::Object(
            rows.into_iter()
                .map(|order| (text(&order["order_no"]), order))
                .collect(),
        ),
        ListShape::Strings => Value::Array(
            rows.iter()
                .map(|order| Value::String(text(&order["order_no"])))
                .collect(),
        ),
    };
    let mut response = json!({"errorcode": 0, "message": "", "stockin_list": list});
    if page_no == 0 {
        let total = inner.behaviour.total.unwrap_or(selected.len() as u64);
        response["total_count"] = json!(total);
    }
    Json(json!({ "response": response }))
}
