//! An axum app served with `axum::serve` from its own thread and tokio runtime, for the test
//! mocks that answer with plain handlers (unlike [`super::server::Server`], it never drops a
//! connection mid-answer and cannot restart). It shuts down gracefully and joins its thread
//! when dropped, so no mock outlives its test.

use std::net::TcpListener;
use std::thread::JoinHandle;

use axum::Router;
use tokio::sync::oneshot;

pub struct AxumThread {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl AxumThread {
    /// Serve `app` on `listener` from a current-thread runtime, or from a runtime with
    /// `workers` threads when a handler must not block the others.
    pub fn start(listener: TcpListener, app: Router, workers: Option<usize>) -> AxumThread {
        listener.set_nonblocking(true).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = match workers {
                None => tokio::runtime::Builder::new_current_thread(),
                Some(workers) => {
                    let mut builder = tokio::runtime::Builder::new_multi_thread();
                    builder.worker_threads(workers);
                    builder
                }
            }
            .enable_all()
            .build()
            .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        AxumThread {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for AxumThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
