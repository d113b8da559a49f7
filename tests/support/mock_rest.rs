//! A REST target written for the tests: a customers API in the style most SaaS APIs share.
//!
//! | route | answer |
//! | --- | --- |
//! | `POST /customers` | `201 {"id": …}` + `Location`; `409` on a repeated `external_id`; `422 {"errors": [{"field", "message"}]}` for an invalid customer |
//! | `GET /customers?external_id=…&limit=…` | the list of matching customers |
//! | `GET /customers/{id}` | one customer, or `404` |
//! | `GET /customers/by-external-id/{key}` | one customer, or `404` |
//! | `PATCH /customers/{id}` | the fields given changed; `404`, `422` |
//! | `PUT /customers/by-external-id/{key}` | create (`201`) or replace (`200`): an upsert |
//! | `POST /customers/batch` | `{"results": [{"external_id", "id"} or {"external_id", "error"}]}`, in reverse order (so only matching by key reads it right) |
//! | `GET /v1/customers?updated_since&limit&starting_after` | a shop's customers, Stripe-like: `{data, has_more}` (a source) |
//!
//! With [`MockRest::with_token`] every call needs `Authorization: Bearer <token>` (401 else).
//! A customer is invalid without a `name`, or with an `email` lacking `@`. Faults are switched
//! per test ([`Faults`]): `POST /customers` calls answered 500 before committing, connections
//! dropped after the commit, the server restarted after the commit (the data survives), a
//! latency; and `allow_duplicates` turns the 409 off, as APIs without a unique external id do,
//! so that a record sent twice would show as two customers. Every route counts its calls.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::Router;
use axum::extract::{Extension, Path, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use engine::sim::serve::ConnectionControl;
use serde_json::{Value, json};

use super::server::Server;

/// What the mock does besides answering. Call numbers count the calls of the write route
/// (`POST /customers`, or `POST /customers/batch`), from 1.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Answered HTTP 500, nothing created.
    pub server_error_at: Vec<usize>,
    /// Created, then the connection is closed without an answer.
    pub drop_after_commit_at: Vec<usize>,
    /// Created, then the server restarts (down for a moment; the customers survive).
    pub restart_after_commit_at: Vec<usize>,
    /// Every write call takes this long before it is answered.
    pub latency: Duration,
    /// No 409: a repeated `external_id` makes a second customer.
    pub allow_duplicates: bool,
    /// A 409 comes with an empty body (as some APIs send it).
    pub bare_conflicts: bool,
    /// A 201 comes with its `Location` only, no body.
    pub bare_created: bool,
}

#[derive(Default)]
struct Data {
    /// id → customer (with its `id`).
    customers: BTreeMap<u64, Value>,
    next_id: u64,
    /// Calls by route (`POST /customers`).
    calls: HashMap<String, usize>,
    /// The query string of every `GET /customers`.
    list_queries: Vec<String>,
    faults: Faults,
    /// The shop's customers (the source side), by id.
    shop: BTreeMap<String, Value>,
    token: Option<String>,
}

impl Data {
    fn count(&mut self, route: &str) -> usize {
        let calls = self.calls.entry(route.to_string()).or_default();
        *calls += 1;
        *calls
    }

    fn by_external_id(&self, key: &str) -> Vec<&Value> {
        self.customers
            .values()
            .filter(|c| c["external_id"].as_str() == Some(key))
            .collect()
    }

    fn create(&mut self, mut customer: Value) -> Value {
        self.next_id += 1;
        customer["id"] = json!(self.next_id);
        self.customers.insert(self.next_id, customer.clone());
        customer
    }
}

/// How an answer is lost after the commit.
#[derive(Debug, Clone, Copy)]
enum Lost {
    Dropped,
    Restarted,
}

impl Data {
    /// How the answer to write call `n` is lost, if it is.
    fn after_commit(&self, n: usize) -> Option<Lost> {
        if self.faults.drop_after_commit_at.contains(&n) {
            Some(Lost::Dropped)
        } else if self.faults.restart_after_commit_at.contains(&n) {
            Some(Lost::Restarted)
        } else {
            None
        }
    }
}

/// Close the connection without an answer: dropped, or the server restarting.
async fn lose_the_answer(shared: &AppState, control: &ConnectionControl, lost: Lost) -> Response {
    match lost {
        Lost::Dropped => control.drop_connection(),
        Lost::Restarted => {
            let server = shared.server.lock().unwrap().clone();
            // Not from this runtime's thread: the restart waits for it to end.
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                if let Some(server) = server.upgrade() {
                    let mut server = server.lock().unwrap();
                    server.stop();
                    std::thread::sleep(Duration::from_millis(150));
                    server.restart();
                }
            });
        }
    }
    std::future::pending::<()>().await;
    unreachable!("the connection is dropped with this handler")
}

struct Shared {
    data: Mutex<Data>,
    /// The server, to restart it from a handler (set once it runs).
    server: Mutex<Weak<Mutex<Server>>>,
}

type AppState = Arc<Shared>;

pub struct MockRest {
    pub url: String,
    shared: AppState,
    server: Arc<Mutex<Server>>,
}

impl MockRest {
    pub fn start(faults: Faults) -> MockRest {
        let shared = Arc::new(Shared {
            data: Mutex::new(Data {
                faults,
                ..Data::default()
            }),
            server: Mutex::new(Weak::new()),
        });
        let router = Router::new()
            .route("/customers", post(create).get(list))
            .route("/customers/batch", post(create_batch))
            .route("/customers/{id}", get(by_id).patch(patch))
            .route("/customers/by-external-id/{key}", get(by_key).put(upsert))
            .route("/v1/customers", get(shop_customers))
            .layer(middleware::from_fn_with_state(
                Arc::clone(&shared),
                check_token,
            ))
            .with_state(Arc::clone(&shared));
        let server = Arc::new(Mutex::new(Server::start(router)));
        *shared.server.lock().unwrap() = Arc::downgrade(&server);
        let url = server.lock().unwrap().url.clone();
        MockRest {
            url,
            shared,
            server,
        }
    }

    /// Every call must carry `Authorization: Bearer <token>`.
    pub fn with_token(self, token: &str) -> MockRest {
        self.shared.data.lock().unwrap().token = Some(token.to_string());
        self
    }

    /// A shop of `count` customers (`cus_1001`…), updated over the last hours; those whose
    /// number is in `without_email` have an empty email.
    pub fn with_shop(self, count: u64, without_email: &[u64]) -> MockRest {
        let now = chrono::Utc::now();
        let shop = (1..=count).map(|n| {
            let updated = now - chrono::Duration::minutes(10 + 5 * (count - n) as i64);
            let id = format!("cus_{}", 1000 + n);
            let email = match without_email.contains(&n) {
                true => String::new(),
                false => format!("customer{n}@example.com"),
            };
            let first_name = ["Ann", "Bo", "Chen", "Dara"][n as usize % 4];
            let customer = json!({
                "id": id,
                "first_name": first_name,
                "last_name": format!("Doe{n}"),
                "email": email,
                "phone": if n % 3 == 0 { Value::Null } else { json!(format!("+33 1 23 45 {n:02}")) },
                "address": {"city": "Lyon", "country": "fr"},
                "created_at": (updated - chrono::Duration::days(30)).format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "updated_at": updated.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            });
            (id, customer)
        });
        self.shared.data.lock().unwrap().shop = shop.collect();
        self
    }

    pub fn set_faults(&self, faults: Faults) {
        self.shared.data.lock().unwrap().faults = faults;
    }

    /// Calls of `route` (`"POST /customers"`, `"GET /customers"`, …) so far.
    pub fn calls(&self, route: &str) -> usize {
        let data = self.shared.data.lock().unwrap();
        data.calls.get(route).copied().unwrap_or(0)
    }

    /// The query string of every `GET /customers` so far.
    pub fn list_queries(&self) -> Vec<String> {
        self.shared.data.lock().unwrap().list_queries.clone()
    }

    /// Every customer.
    pub fn customers(&self) -> Vec<Value> {
        let data = self.shared.data.lock().unwrap();
        data.customers.values().cloned().collect()
    }

    /// How many customers carry each `external_id`.
    pub fn external_ids(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for customer in self.customers() {
            let key = customer["external_id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            *counts.entry(key).or_default() += 1;
        }
        counts
    }

    /// Add a customer directly (one made by hand in the target).
    pub fn insert(&self, customer: Value) -> Value {
        self.shared.data.lock().unwrap().create(customer)
    }

    /// Stop and start again on the same port; the customers stay.
    pub fn restart(&self) {
        self.server.lock().unwrap().restart();
    }
}

/// Why a customer is refused: `(field, message)` pairs.
fn invalid(customer: &Value) -> Vec<Value> {
    let mut errors = Vec::new();
    if customer["name"].as_str().is_none_or(str::is_empty) {
        errors.push(json!({"field": "name", "message": "name is required"}));
    }
    if let Some(email) = customer.get("email")
        && !email.as_str().is_some_and(|e| e.contains('@'))
    {
        errors.push(
            json!({"field": "email", "message": format!("email {email} is not a valid address")}),
        );
    }
    if customer["external_id"].as_str().is_none_or(str::is_empty) {
        errors.push(json!({"field": "external_id", "message": "external_id is required"}));
    }
    errors
}

async fn check_token(
    State(shared): State<AppState>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    let expected = shared.data.lock().unwrap().token.clone();
    if let Some(token) = expected {
        let given = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if given != Some(format!("Bearer {token}").as_str()) {
            return refused(
                StatusCode::UNAUTHORIZED,
                json!({"message": "invalid token"}),
            );
        }
    }
    next.run(request).await
}

/// The shop's customers updated at or after `updated_since`, by id, after `starting_after`.
async fn shop_customers(
    State(shared): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut data = shared.data.lock().unwrap();
    data.count("GET /v1/customers");
    let Some(since) = query.get("updated_since") else {
        return refused(
            StatusCode::BAD_REQUEST,
            json!({"message": "updated_since is required"}),
        );
    };
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(10);
    let after = query.get("starting_after").cloned().unwrap_or_default();
    let matching: Vec<&Value> = data
        .shop
        .iter()
        .filter(|(id, c)| **id > after && c["updated_at"].as_str() >= Some(since.as_str()))
        .map(|(_, c)| c)
        .collect();
    let page: Vec<Value> = matching.iter().take(limit).map(|c| (*c).clone()).collect();
    Json(json!({"object": "list", "data": page, "has_more": matching.len() > limit}))
        .into_response()
}

fn refused(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

async fn create(
    State(shared): State<AppState>,
    Extension(control): Extension<ConnectionControl>,
    Json(customer): Json<Value>,
) -> Response {
    let latency = shared.data.lock().unwrap().faults.latency;
    tokio::time::sleep(latency).await;
    let (created, after) = {
        let mut data = shared.data.lock().unwrap();
        let n = data.count("POST /customers");
        if data.faults.server_error_at.contains(&n) {
            return refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"message": "upstream failed"}),
            );
        }
        let errors = invalid(&customer);
        if !errors.is_empty() {
            return refused(StatusCode::UNPROCESSABLE_ENTITY, json!({"errors": errors}));
        }
        let key = customer["external_id"].as_str().unwrap_or_default();
        if let Some(existing) = data.by_external_id(key).first()
            && !data.faults.allow_duplicates
        {
            if data.faults.bare_conflicts {
                return StatusCode::CONFLICT.into_response();
            }
            let message = format!("a customer with external_id `{key}` exists");
            return refused(
                StatusCode::CONFLICT,
                json!({"message": message, "id": existing["id"]}),
            );
        }
        let after = data.after_commit(n);
        (data.create(customer), after)
    };
    match after {
        Some(lost) => lose_the_answer(&shared, &control, lost).await,
        None => {
            let mut headers = HeaderMap::new();
            let location = format!("/customers/{}", created["id"]);
            headers.insert("location", HeaderValue::from_str(&location).unwrap());
            if shared.data.lock().unwrap().faults.bare_created {
                return (StatusCode::CREATED, headers).into_response();
            }
            (StatusCode::CREATED, headers, Json(created)).into_response()
        }
    }
}

async fn list(
    State(shared): State<AppState>,
    RawQuery(raw): RawQuery,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut data = shared.data.lock().unwrap();
    data.count("GET /customers");
    data.list_queries.push(raw.unwrap_or_default());
    let limit = query.get("limit").and_then(|l| l.parse().ok());
    let found: Vec<Value> = match query.get("external_id") {
        Some(key) => data.by_external_id(key).into_iter().cloned().collect(),
        None => data.customers.values().cloned().collect(),
    };
    let found = found
        .into_iter()
        .take(limit.unwrap_or(usize::MAX))
        .collect();
    Json(Value::Array(found)).into_response()
}

fn not_found() -> Response {
    refused(
        StatusCode::NOT_FOUND,
        json!({"message": "no such customer"}),
    )
}

async fn by_id(State(shared): State<AppState>, Path(id): Path<u64>) -> Response {
    let mut data = shared.data.lock().unwrap();
    data.count("GET /customers/{id}");
    match data.customers.get(&id) {
        Some(customer) => Json(customer.clone()).into_response(),
        None => not_found(),
    }
}

async fn by_key(State(shared): State<AppState>, Path(key): Path<String>) -> Response {
    let mut data = shared.data.lock().unwrap();
    data.count("GET /customers/by-external-id/{key}");
    match data.by_external_id(&key).first() {
        Some(customer) => Json((*customer).clone()).into_response(),
        None => not_found(),
    }
}

async fn patch(
    State(shared): State<AppState>,
    Path(id): Path<u64>,
    Json(changes): Json<Value>,
) -> Response {
    let mut data = shared.data.lock().unwrap();
    data.count("PATCH /customers/{id}");
    let Some(customer) = data.customers.get(&id) else {
        return not_found();
    };
    let mut changed = customer.clone();
    for (field, value) in changes.as_object().into_iter().flatten() {
        if field != "id" {
            changed[field] = value.clone();
        }
    }
    let errors = invalid(&changed);
    if !errors.is_empty() {
        return refused(StatusCode::UNPROCESSABLE_ENTITY, json!({"errors": errors}));
    }
    data.customers.insert(id, changed.clone());
    Json(changed).into_response()
}

async fn upsert(
    State(shared): State<AppState>,
    Path(key): Path<String>,
    Json(mut customer): Json<Value>,
) -> Response {
    let mut data = shared.data.lock().unwrap();
    data.count("PUT /customers/by-external-id/{key}");
    customer["external_id"] = json!(key);
    let errors = invalid(&customer);
    if !errors.is_empty() {
        return refused(StatusCode::UNPROCESSABLE_ENTITY, json!({"errors": errors}));
    }
    let existing = data.by_external_id(&key).first().map(|c| c["id"].clone());
    match existing.and_then(|id| id.as_u64()) {
        Some(id) => {
            customer["id"] = json!(id);
            data.customers.insert(id, customer.clone());
            Json(customer).into_response()
        }
        None => (StatusCode::CREATED, Json(data.create(customer))).into_response(),
    }
}

async fn create_batch(
    State(shared): State<AppState>,
    Extension(control): Extension<ConnectionControl>,
    Json(body): Json<Value>,
) -> Response {
    let latency = shared.data.lock().unwrap().faults.latency;
    tokio::time::sleep(latency).await;
    let (results, after) = {
        let mut data = shared.data.lock().unwrap();
        let n = data.count("POST /customers/batch");
        if data.faults.server_error_at.contains(&n) {
            return refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"message": "upstream failed"}),
            );
        }
        (data.create_batch(&body), data.after_commit(n))
    };
    match after {
        Some(lost) => lose_the_answer(&shared, &control, lost).await,
        None => Json(json!({"results": results})).into_response(),
    }
}

impl Data {
    /// Create the batch's valid customers; one result per customer, in reverse order.
    fn create_batch(&mut self, body: &Value) -> Vec<Value> {
        let mut results = Vec::new();
        for customer in body["customers"].as_array().into_iter().flatten() {
            let key = customer["external_id"].clone();
            let errors = invalid(customer);
            let exists = !self
                .by_external_id(key.as_str().unwrap_or_default())
                .is_empty();
            results.push(if let Some(error) = errors.first() {
                json!({"external_id": key, "error": error["message"]})
            } else if exists && !self.faults.allow_duplicates {
                json!({"external_id": key, "error": "external_id exists"})
            } else {
                let created = self.create(customer.clone());
                json!({"external_id": key, "id": created["id"]})
            });
        }
        results.reverse();
        results
    }
}
