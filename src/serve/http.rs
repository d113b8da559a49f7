//! The HTTP server of `engine serve`: `GET /metrics` now, and the composition point where other
//! parts (the web console) mount their routes.
//!
//! [`app`] builds the whole router from the shared [`AppState`]; [`listen`] binds it. Bound to
//! a loopback address it is open; bound elsewhere every request needs
//! `Authorization: Bearer <token>` (`--token` or `ENGINE_SERVE_TOKEN`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::console::ConsoleState;
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::serve::metrics::Metrics;

/// What the routes share.
#[derive(Clone)]
pub struct AppState {
    pub metrics: Arc<Metrics>,
}

/// Every route of `engine serve`; further routers (the console) are merged here.
pub fn app(state: AppState, token: Option<Secret>, console: Option<ConsoleState>) -> Router {
    let router = Router::new()
        .route("/metrics", get(metrics))
        .with_state(state);
    let router = match token {
        Some(token) => router.layer(middleware::from_fn_with_state(Arc::new(token), authorize)),
        None => router,
    };
    // The console checks the same token its own way (a browser cannot send a bearer header).
    match console {
        Some(console) => router.merge(crate::console::router(console)),
        None => router,
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn authorize(State(token): State<Arc<Secret>>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match given {
        Some(given) if constant_time_eq(given.as_bytes(), token.expose().as_bytes()) => {
            next.run(request).await
        }
        _ => (StatusCode::UNAUTHORIZED, "a bearer token is required\n").into_response(),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Refuse a non-loopback address without a token.
pub fn require_token(addr: SocketAddr, token: Option<&Secret>) -> Result<()> {
    if !addr.ip().is_loopback() && token.is_none() {
        return Err(Error::usage(format!(
            "`--listen {addr}` is not a loopback address: a token is required"
        ))
        .with_hint("give `--token` or set `ENGINE_SERVE_TOKEN`; clients send `Authorization: Bearer <token>`"));
    }
    Ok(())
}

/// Bind `addr`, refusing a non-loopback address without a token; serve `app` until `stop`.
pub async fn listen(
    addr: SocketAddr,
    token: Option<Secret>,
    state: AppState,
    console: Option<ConsoleState>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<SocketAddr> {
    require_token(addr, token.as_ref())?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|err| Error::usage(format!("cannot listen on `{addr}`: {err}")))?;
    let bound = listener
        .local_addr()
        .map_err(|err| Error::usage(format!("cannot listen on `{addr}`: {err}")))?;
    let router = app(state, token, console);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(stop)
            .await;
    });
    Ok(bound)
}
