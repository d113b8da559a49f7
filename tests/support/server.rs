//! A test server: an axum router served on 127.0.0.1 from its own thread (and tokio runtime)
//! through the sandboxes' accept loop (`engine::sim::serve`), so a handler can drop its
//! connection after committing. It stops when dropped; [`Server::restart`] stops it (every
//! open connection closes, as in a crash) and serves the same router on the same port again,
//! its state kept in whatever the router shares.

use std::net::SocketAddr;
use std::thread::JoinHandle;

use axum::Router;
use tokio::sync::watch;

pub struct Server {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    addr: SocketAddr,
    router: Router,
    running: Option<(watch::Sender<()>, JoinHandle<()>)>,
}

impl Server {
    /// Serve `router` on a free port.
    pub fn start(router: Router) -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let addr = listener.local_addr().unwrap();
        let mut server = Server {
            url: format!("http://{addr}"),
            addr,
            router,
            running: None,
        };
        server.serve(listener);
        server
    }

    fn serve(&mut self, listener: std::net::TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let (stop, stopped) = watch::channel(());
        let router = self.router.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                engine::sim::serve::serve(listener, router, stopped).await;
            });
            // Dropping the runtime ends every connection task still running.
        });
        self.running = Some((stop, thread));
    }

    /// Stop serving: the port refuses connections and every open connection closes.
    pub fn stop(&mut self) {
        if let Some((stop, thread)) = self.running.take() {
            drop(stop);
            let _ = thread.join();
        }
    }

    /// Stop, then serve again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let listener = std::net::TcpListener::bind(self.addr).expect("the same port again");
        self.serve(listener);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}
