//! Small hostile HTTP servers for the limits of `engine`'s HTTP client: one that redirects,
//! one that never stops sending, one that drips a byte at a time, one that asks to be left
//! alone for an hour, one with a certificate nobody trusts. Each is a plain blocking
//! listener on 127.0.0.1 with a thread per connection; it remembers every request it read
//! and counts the connections it accepted. It also serves as an HTTP proxy: a proxied
//! request is an ordinary request whose first line names the whole URL.
//!
//! The certificates in `tests/fixtures/tls/` were made once with `openssl`: `ca.pem` is a
//! test CA and `server.pem`/`server.key` a certificate it signed for `127.0.0.1` and
//! `localhost`, valid from 2000 to 2100; `other-ca.pem` is a CA that signed nothing here.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::repo_root;

/// What the server does with each request.
#[derive(Clone)]
pub enum Behaviour {
    /// One answer, then the connection closes.
    Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// A 200 whose body never ends.
    Endless,
    /// A 200 whose body comes one byte per `every`, for ever.
    Drip { every: Duration },
    /// TLS with the test certificate, then the inner behaviour.
    Tls(Box<Behaviour>),
}

impl Behaviour {
    pub fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Behaviour {
        Behaviour::Answer {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }
}

pub struct Hostile {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Hostile {
    pub fn start(behaviour: Behaviour) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let tls = tls_config();
        {
            let (requests, accepted, stop) = (
                Arc::clone(&requests),
                Arc::clone(&accepted),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let (behaviour, requests, stop, tls) = (
                        behaviour.clone(),
                        Arc::clone(&requests),
                        Arc::clone(&stop),
                        Arc::clone(&tls),
                    );
                    std::thread::spawn(move || serve(stream, behaviour, requests, stop, tls));
                }
            });
        }
        Hostile {
            addr,
            requests,
            accepted,
            stop,
        }
    }

    /// `http://127.0.0.1:port<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `https://127.0.0.1:port<path>`.
    pub fn https_url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// Every request read so far (head and body, lossily as text).
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn tls_config() -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    super::install_crypto();
    let dir = repo_root().join("tests/fixtures/tls");
    let certs = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    )
}

fn serve(
    stream: TcpStream,
    behaviour: Behaviour,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    tls: Arc<rustls::ServerConfig>,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    match behaviour {
        Behaviour::Tls(inner) => {
            let Ok(connection) = rustls::ServerConnection::new(tls) else {
                return;
            };
            let stream = rustls::StreamOwned::new(connection, stream);
            respond(stream, *inner, &requests, &stop);
        }
        behaviour => respond(stream, behaviour, &requests, &stop),
    }
}

fn respond(
    mut stream: impl Read + Write,
    behaviour: Behaviour,
    requests: &Mutex<Vec<String>>,
    stop: &AtomicBool,
) {
    let Some(request) = read_request(&mut stream) else {
        return;
    };
    requests.lock().unwrap().push(request);
    match behaviour {
        Behaviour::Answer {
            status,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} Hostile\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
            let _ = stream.flush();
        }
        Behaviour::Endless => {
            let head =
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n[";
            let _ = stream.write_all(head.as_bytes());
            let chunk = "0,".repeat(32 * 1024);
            while !stop.load(Ordering::SeqCst) && stream.write_all(chunk.as_bytes()).is_ok() {}
        }
        Behaviour::Drip { every } => {
            let head =
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n";
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.flush();
            while !stop.load(Ordering::SeqCst)
                && stream.write_all(b" ").is_ok()
                && stream.flush().is_ok()
            {
                std::thread::sleep(every);
            }
        }
        Behaviour::Tls(_) => unreachable!("TLS is unwrapped in `serve`"),
    }
}

/// One request's head and body (by `Content-Length`), or `None` when the peer gave up.
fn read_request(stream: &mut impl Read) -> Option<String> {
    let mut data = Vec::new();
    let mut buffer = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let read = stream.read(&mut buffer).ok().filter(|n| *n > 0)?;
        data.extend_from_slice(&buffer[..read]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    while data.len() < head_end + length {
        let read = stream.read(&mut buffer).ok().filter(|n| *n > 0)?;
        data.extend_from_slice(&buffer[..read]);
    }
    Some(String::from_utf8_lossy(&data).into_owned())
}
