//! A mock webhook receiver on 127.0.0.1:0: records every request and answers as told, the way
//! DingTalk, WeCom and Feishu robots and a generic webhook answer. Runs on its own thread and
//! runtime; stops when the handle drops.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use serde_json::Value;

use crate::support::axum_thread::AxumThread;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    /// The query, decoded, in order.
    pub query: Vec<(String, String)>,
    /// The raw query string, as sent.
    pub raw_query: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    #[track_caller]
    pub fn query(&self, name: &str) -> String {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no `{name}` in {:?}", self.query))
    }
}

type Answers = Arc<Mutex<BTreeMap<String, (u16, String)>>>;

pub struct Receiver {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    answers: Answers,
    /// Serves until the receiver is dropped.
    _served: AxumThread,
}

/// What the robots answer when all is well, by path prefix.
fn default_answer(path: &str) -> (u16, String) {
    if path.starts_with("/open-apis/") {
        (200, r#"{"code":0,"msg":"success","data":{}}"#.into())
    } else if path.starts_with("/robot/") || path.starts_with("/cgi-bin/") {
        (200, r#"{"errcode":0,"errmsg":"ok"}"#.into())
    } else {
        (204, String::new())
    }
}

impl Receiver {
    pub fn start() -> Receiver {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let answers: Answers = Arc::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let addr = listener.local_addr().unwrap();
        let (log, told) = (Arc::clone(&received), Arc::clone(&answers));
        let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let (log, told) = (Arc::clone(&log), Arc::clone(&told));
            async move {
                let path = uri.path().to_string();
                let raw_query = uri.query().unwrap_or_default().to_string();
                let query = reqwest::Url::parse(&format!("http://x/?{raw_query}"))
                    .unwrap()
                    .query_pairs()
                    .into_owned()
                    .collect();
                let headers = headers
                    .iter()
                    .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect();
                log.lock().unwrap().push(Received {
                    path: path.clone(),
                    query,
                    raw_query,
                    headers,
                    body: body.to_vec(),
                });
                let answer = told.lock().unwrap().get(&path).cloned();
                let (status, text) = answer.unwrap_or_else(|| default_answer(&path));
                (StatusCode::from_u16(status).unwrap(), text)
            }
        });
        let served = AxumThread::start(listener, app, None);
        Receiver {
            addr,
            received,
            answers,
            _served: served,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn root(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answer requests to `path` with this status and body from now on.
    pub fn answer(&self, path: &str, status: u16, body: &str) {
        self.answers
            .lock()
            .unwrap()
            .insert(path.to_string(), (status, body.to_string()));
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The requests to `path`.
    pub fn at(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
}
