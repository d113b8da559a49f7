//! A small REST API behind an OAuth2 token endpoint, for `rest_auth`: `POST /oauth/token`
//! (client credentials in the form body or as basic auth) issues bearer tokens that live `lifetime`; `GET
//! /items` pages the records whose `modified` lies in `since..=until` (`page` from 1,
//! `per_page`, `total` on every page); `POST /items/batch` saves `{records: […]}` and answers
//! per record; `POST /items/lookup` finds saved records by number. Every API call checks its
//! token (401 when it is unknown or expired) and takes `latency`, so that a run lasts several
//! token lifetimes. Faults: the token endpoint answers 503 to its second call; every
//! `fail_every`-th API call answers 503 (before doing anything); every third token is revoked
//! after a quarter of its lifetime although it was issued for all of it (it expires mid-page).
//! A refused client gets an error quoting the secret it sent, as careless servers do.
//! `POST /login` (JSON `user`, `password`) opens a session for the `login` strategy instead:
//! its token comes back in the body (`data.token`) and as cookie `SID`, lives `lifetime` and
//! is accepted as a bearer token or as that cookie. It runs on its own thread and stops when
//! dropped.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::axum_thread::AxumThread;

pub const CLIENT_ID: &str = "engine-test";
pub const CLIENT_SECRET: &str = "s3cret-of-the-client";
pub const USER: &str = "api-user";
pub const PASSWORD: &str = "pa55word-of-the-user";

#[derive(Debug, Clone)]
pub struct Options {
    pub records: Vec<Value>,
    pub lifetime: Duration,
    pub latency: Duration,
    pub fail_every: u64,
}

#[derive(Debug, Default)]
pub struct Counts {
    pub token_calls: u64,
    pub login_calls: u64,
    /// Token calls that sent the client credentials as basic auth.
    pub basic_calls: u64,
    pub api_calls: u64,
    pub unauthorized: u64,
    /// Every token a call was refused with.
    pub refused: BTreeSet<String>,
    /// Every token the endpoint issued.
    pub tokens: Vec<String>,
    /// Saved records by number, with how many times each was saved.
    pub saved: BTreeMap<String, u64>,
}

struct Inner {
    options: Options,
    /// Token → when the server stops accepting it.
    live: HashMap<String, Instant>,
    counts: Counts,
}

type Shared = Arc<Mutex<Inner>>;

pub struct OAuthApi {
    pub url: String,
    inner: Shared,
    /// Serves until the mock is dropped.
    _served: AxumThread,
}

impl OAuthApi {
    pub fn start(options: Options) -> OAuthApi {
        let inner: Shared = Arc::new(Mutex::new(Inner {
            options,
            live: HashMap::new(),
            counts: Counts::default(),
        }));
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/oauth/token", post(token))
            .route("/login", post(login))
            .route("/items", get(items))
            .route("/items/batch", post(batch))
            .route("/items/lookup", post(lookup))
            .with_state(Arc::clone(&inner));
        let served = AxumThread::start(listener, app, Some(2));
        OAuthApi {
            url,
            inner,
            _served: served,
        }
    }

    /// What the server counted so far.
    pub fn counts<T>(&self, read: impl FnOnce(&Counts) -> T) -> T {
        read(&self.inner.lock().unwrap().counts)
    }
}

async fn token(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Form(mut form): Form<HashMap<String, String>>,
) -> Response {
    let mut inner = inner.lock().unwrap();
    inner.counts.token_calls += 1;
    // `client_secret_basic`: the id and secret, form-encoded, in an `Authorization: Basic` header.
    let basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .and_then(|v| String::from_utf8(v).ok());
    if let Some((id, secret)) = basic.as_deref().and_then(|pair| pair.split_once(':')) {
        let decode = |text: &str| {
            percent_encoding::percent_decode_str(text)
                .decode_utf8_lossy()
                .into_owned()
        };
        form.insert("client_id".into(), decode(id));
        form.insert("client_secret".into(), decode(secret));
        inner.counts.basic_calls += 1;
    }
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    if field("grant_type") != "client_credentials" {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    if field("client_id") != CLIENT_ID || field("client_secret") != CLIENT_SECRET {
        let quoted = format!(
            "client {} with secret {} is unknown",
            field("client_id"),
            field("client_secret")
        );
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client", "error_description": quoted})),
        )
            .into_response();
    }
    if inner.counts.token_calls == 2 {
        return (StatusCode::SERVICE_UNAVAILABLE, "token service restarting").into_response();
    }
    let issued = inner.counts.tokens.len() + 1;
    let value = format!("tok-{issued}-{}", inner.counts.token_calls * 7919);
    let lifetime = inner.options.lifetime;
    let accepted = if revoked_early(issued) {
        lifetime / 4
    } else {
        lifetime
    };
    inner.live.insert(value.clone(), Instant::now() + accepted);
    inner.counts.tokens.push(value.clone());
    Json(json!({"access_token": value, "token_type": "Bearer", "expires_in": lifetime.as_secs()}))
        .into_response()
}

async fn login(State(inner): State<Shared>, Json(body): Json<Value>) -> Response {
    let mut inner = inner.lock().unwrap();
    inner.counts.login_calls += 1;
    if body["user"] != USER || body["password"] != PASSWORD {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"msg": "wrong user or password"})),
        )
            .into_response();
    }
    let issued = inner.counts.tokens.len() + 1;
    let value = format!("ses-{issued}-{}", inner.counts.login_calls * 104_729);
    let lifetime = inner.options.lifetime;
    inner.live.insert(value.clone(), Instant::now() + lifetime);
    inner.counts.tokens.push(value.clone());
    let cookie = format!("SID={value}; Path=/; HttpOnly");
    (
        [("set-cookie", cookie)],
        Json(json!({"code": 0, "data": {"token": value}})),
    )
        .into_response()
}

/// Whether the `issued`-th token (from 1) is revoked a quarter into its lifetime.
pub fn revoked_early(issued: usize) -> bool {
    issued.is_multiple_of(3)
}

/// Check the call's token and count it; `Err` is the answer to send instead.
async fn admit(inner: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    let latency = {
        let mut inner = inner.lock().unwrap();
        inner.counts.api_calls += 1;
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let cookie = header("cookie").and_then(|cookies| {
            cookies
                .split("; ")
                .find_map(|pair| pair.strip_prefix("SID="))
        });
        let token = header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .or(cookie)
            .unwrap_or_default();
        let live = inner
            .live
            .get(token)
            .is_some_and(|until| Instant::now() < *until);
        if !live {
            inner.counts.unauthorized += 1;
            inner.counts.refused.insert(token.to_string());
            return Err((
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "invalid_token"})),
            )
                .into_response());
        }
        if inner
            .counts
            .api_calls
            .is_multiple_of(inner.options.fail_every)
        {
            return Err((StatusCode::SERVICE_UNAVAILABLE, "busy").into_response());
        }
        inner.options.latency
    };
    tokio::time::sleep(latency).await;
    Ok(())
}

async fn items(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Err(refused) = admit(&inner, &headers).await {
        return refused;
    }
    let number = |name: &str| query.get(name).and_then(|v| v.parse::<usize>().ok());
    let (Some(page), Some(per_page)) = (number("page"), number("per_page")) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "page and per_page"})),
        )
            .into_response();
    };
    let since = query.get("since").cloned().unwrap_or_default();
    let until = query.get("until").cloned().unwrap_or_default();
    let inner = inner.lock().unwrap();
    let mut window: Vec<&Value> = inner
        .options
        .records
        .iter()
        .filter(|r| {
            let modified = r["modified"].as_str().unwrap_or_default();
            since.as_str() <= modified && modified <= until.as_str()
        })
        .collect();
    window.sort_by_key(|r| {
        (
            r["modified"].as_str().unwrap_or_default().to_string(),
            r["id"].as_str().unwrap_or_default().to_string(),
        )
    });
    let data: Vec<&Value> = window
        .iter()
        .skip((page.max(1) - 1) * per_page)
        .take(per_page)
        .copied()
        .collect();
    Json(json!({"data": data, "total": window.len()})).into_response()
}

async fn batch(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Err(refused) = admit(&inner, &headers).await {
        return refused;
    }
    let mut inner = inner.lock().unwrap();
    let mut saved = Vec::new();
    for (index, record) in body["records"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let number = record["number"].as_str().unwrap_or_default().to_string();
        *inner.counts.saved.entry(number.clone()).or_default() += 1;
        saved.push(json!({"index": index, "id": format!("id-{number}"), "number": number}));
    }
    Json(json!({"saved": saved, "errors": []})).into_response()
}

async fn lookup(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Err(refused) = admit(&inner, &headers).await {
        return refused;
    }
    let inner = inner.lock().unwrap();
    let rows: Vec<Value> = body["keys"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|key| key.as_str())
        .filter(|key| inner.counts.saved.contains_key(*key))
        .map(|key| json!({"id": format!("id-{key}"), "number": key}))
        .collect();
    Json(json!({"rows": rows})).into_response()
}
