//! The accept loop the sandboxes (and the tests' mock servers) serve an axum router with,
//! instead of `axum::serve`, for one reason: commit-then-drop. A handler cannot make axum
//! close a connection without answering, so every connection gets a [`ConnectionControl`]
//! (an axum `Extension`); a handler that has committed a write and must "time out" trips it,
//! and the connection task drops the hyper connection, which closes the socket with no
//! response at all. Shutting down closes every connection too, mid-request or not (a crash).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Extension;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

/// Lets a handler close its connection without answering.
#[derive(Clone, Default)]
pub struct ConnectionControl(Arc<Notify>);

impl ConnectionControl {
    /// Close this request's connection without an answer; the handler then waits for ever
    /// (`std::future::pending`), and is dropped with the connection.
    pub fn drop_connection(&self) {
        self.0.notify_one();
    }
}

/// Serve `router` on `listener` until `shutdown` fires (its sender is dropped).
pub async fn serve(listener: TcpListener, router: Router, mut shutdown: watch::Receiver<()>) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Transient accept errors (e.g. too many open files) must not end the server.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let control = ConnectionControl::default();
        let service = TowerToHyperService::new(router.clone().layer(Extension(control.clone())));
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            // Dropping the connection future closes the socket, mid-request or not.
            tokio::select! {
                _ = connection => {}
                _ = control.0.notified() => {}
                _ = shutdown.changed() => {}
            }
        });
    }
}
