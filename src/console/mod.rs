//! The web console: server-rendered pages over the flows' state, and a retry button.
//!
//! [`router`] is an axum `Router` that any server can mount (`engine serve` does; so does the
//! small `engine console` command, [`serve`], which serves nothing else). Every page reads the
//! flow files and their state databases afresh through `state::Store`, so it shows what the
//! last run left; the one action, retry, runs `run::commands::retry` under the flow's lock
//! exactly as `engine retry FLOW KEY` does. Pages are in `pages`, markup and escaping in
//! `html`. A token, when set, is required on every request (`Authorization: Bearer`, a
//! `token` query parameter, which also sets a cookie for the pages that follow, or that
//! cookie); a POST from another site's page (its `Origin`) is refused, token or not.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::error::{Error, ErrorKind, ExitCode, Result};
use crate::request::Env;
use crate::secret::Secret;

mod conflict;
pub mod html;
mod pages;

/// The cookie that carries the token after it was given once in the query.
const COOKIE: &str = "engine_console_token";

/// What the console reads: the flow files, where their state lives, the environment a retry
/// runs with, and the token required (if any).
#[derive(Clone)]
pub struct ConsoleState {
    pub flows: Vec<PathBuf>,
    /// The state folder given (`--state-dir`/`ENGINE_STATE_DIR`), else `.engine/` by each flow.
    pub state_dir: Option<PathBuf>,
    pub env: Arc<Env>,
    pub token: Option<Arc<Secret>>,
}

/// The console's routes, ready to be mounted at `/` of a server.
pub fn router(state: ConsoleState) -> Router {
    let guarded = state.clone();
    Router::new()
        .route("/", get(pages::flows))
        .route("/flows/{flow}", get(pages::overview))
        .route("/flows/{flow}/live", get(pages::live))
        .route("/flows/{flow}/records", get(pages::records))
        .route("/flows/{flow}/record", get(pages::record))
        .route("/flows/{flow}/parked", get(pages::parked))
        .route("/flows/{flow}/conflicts", get(pages::conflicts))
        .route("/flows/{flow}/retry", post(pages::retry))
        .layer(middleware::from_fn_with_state(guarded, require_token))
        .with_state(state)
}

/// Refuse a request without the token (when one is set); a valid `?token=` sets the cookie.
async fn require_token(
    State(state): State<ConsoleState>,
    request: Request,
    next: Next,
) -> Response {
    if !same_origin(&request) {
        return (
            StatusCode::FORBIDDEN,
            axum::response::Html(html::page(
                "拒绝 Refused",
                None,
                "<p>来自其他网站的请求 A request sent by another site.</p>",
            )),
        )
            .into_response();
    }
    let Some(token) = &state.token else {
        return next.run(request).await;
    };
    let expected = token.expose();
    let headers = request.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .next();
    let query = request
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|pair| {
            let value = pair.strip_prefix("token=")?;
            percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .ok()
                .map(|v| v.into_owned())
        });
    let from_query = query.as_deref() == Some(expected);
    if bearer == Some(expected) || cookie == Some(expected) || from_query {
        let mut response = next.run(request).await;
        if from_query {
            let value = format!(
                "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
                html::query_value(expected)
            );
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
        }
        return response;
    }
    (
        StatusCode::UNAUTHORIZED,
        axum::response::Html(html::page(
            "需要令牌 Token required",
            None,
            "<p>打开 Open <code>/?token=…</code> (the token given to <code>--token</code>).</p>",
        )),
    )
        .into_response()
}

/// Whether a POST comes from the console's own pages: a browser names the page's origin in
/// `Origin`; another site's form posting here (with the user's cookie or on 127.0.0.1) is
/// refused. Requests without `Origin` (scripts, `curl`) pass on to the token check.
fn same_origin(request: &Request) -> bool {
    if request.method() != axum::http::Method::POST {
        return true;
    }
    let header_text = |name| {
        request
            .headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let Some(origin) = header_text(header::ORIGIN) else {
        return true;
    };
    let host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    header_text(header::HOST) == Some(host)
}

/// `engine console`: serve only the console on `listen` until Ctrl-C or SIGTERM. Prints the
/// bound address (`http://127.0.0.1:PORT/`) on stdout, so `--listen 127.0.0.1:0` can be used.
pub async fn serve(state: ConsoleState, listen: SocketAddr) -> Result<ExitCode> {
    if !listen.ip().is_loopback() && state.token.as_ref().is_none_or(|t| t.is_empty()) {
        return Err(Error::usage(format!(
            "the console would listen on `{listen}`, beyond this machine, without a token"
        ))
        .with_hint("give `--token` (or `ENGINE_CONSOLE_TOKEN`), or listen on 127.0.0.1"));
    }
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|err| {
        Error::new(ErrorKind::Io, format!("cannot listen on `{listen}`")).with_source(err)
    })?;
    let bound = listener.local_addr().map_err(|err| {
        Error::new(ErrorKind::Io, "cannot read the bound address").with_source(err)
    })?;
    println!("http://{bound}/");
    eprintln!(
        "console of {} flow(s) at http://{bound}/; press Ctrl-C to stop",
        state.flows.len()
    );
    axum::serve(listener, router(state))
        .with_graceful_shutdown(crate::cli::shutdown_signal())
        .await
        .map_err(|err| Error::new(ErrorKind::Io, "the console server failed").with_source(err))?;
    Ok(ExitCode::Ok)
}
