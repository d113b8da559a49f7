//! The writer against a small target that holds each call until the test lets it through:
//! what a batch keeps while its send is under way, and what the ledger keeps for it.

use std::sync::Arc;

use axum::Router;
use axum::routing::post;
use serde_json::{Value as Json, json};
use tokio::sync::{Semaphore, mpsc};

use crate::config::{self, model::Flow};
use crate::http::client::Client;
use crate::http::retry::Sleeper;
use crate::record;
use crate::request::{self, Env};
use crate::state::{Source, Status, Store};
use crate::target::writer::{Outgoing, Settled, Writer};
use crate::time::SystemClock;

/// A target answering every write with `answer`, each call held until the gate lets it
/// through; `arrived` hears of each call as it arrives.
async fn held_target(
    answer: &'static str,
) -> (String, mpsc::UnboundedReceiver<()>, Arc<Semaphore>) {
    let (arrived, calls) = mpsc::unbounded_channel();
    let gate = Arc::new(Semaphore::new(0));
    let held = Arc::clone(&gate);
    let app = Router::new().route(
        "/c",
        post(move || {
            let (arrived, held) = (arrived.clone(), Arc::clone(&held));
            async move {
                arrived.send(()).expect("the test listens");
                held.acquire().await.expect("open").forget();
                answer
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, calls, gate)
}

/// A flow writing one record per call to the API at `API_URL`, without a lookup (a refusal is
/// parked as it is).
fn flow(dir: &std::path::Path) -> Flow {
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    std::fs::create_dir_all(dir.join("connectors")).unwrap();
    write(
        "connectors/in.yaml",
        "name: in\nfile: { path: ../in.jsonl, format: jsonl }\n",
    );
    write(
        "connectors/api.yaml",
        r#"name: api
base_url: "{{ env.API_URL }}"
auth: { strategy: none }
envelope: { success: "body.code == 0", message: "body.msg" }
operations:
  create: { kind: write, method: POST, path: /c, encoding: json, body: "{{ record }}", results: { id: body.id } }
"#,
    );
    write(
        "flow.yaml",
        "source: { connector: in, operation: read }\ntarget: { connector: api, operation: create }\nkey: { source: \"{{ id }}\", target: key }\nmapping: { key: \"{{ id }}\", name: \"{{ name }}\" }\n",
    );
    let loaded = config::load_flow(&dir.join("flow.yaml"));
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    loaded.value.unwrap()
}

fn writer(flow: Flow, url: String) -> Writer {
    let env: Env = [("API_URL".to_string(), url)].into_iter().collect();
    let client = Client::new(
        &flow.target.connector,
        &flow.templates,
        &env,
        Sleeper::default(),
        Arc::new(SystemClock),
        Arc::new(|_| {}),
    )
    .unwrap();
    Writer {
        inputs: request::target_inputs(&flow, &env).unwrap(),
        lookup_inputs: request::lookup_inputs(&flow, &env).unwrap(),
        flow: Arc::new(flow),
        client: Arc::new(client),
        store: Store::in_memory().unwrap(),
        env,
        clock: Arc::new(SystemClock),
    }
}

/// Send one record to a target answering `answer`; `during` runs while the send is held, with
/// the writer and the record's source. Returns how the record ended.
async fn send_one(
    answer: &'static str,
    during: impl FnOnce(&Writer, &Arc<Json>),
) -> (Writer, Settled) {
    let dir = tempfile::tempdir().unwrap();
    let (url, mut arrived, gate) = held_target(answer).await;
    let writer = Arc::new(writer(flow(dir.path()), url));
    let source = Arc::new(json!({"id": "RK1", "name": "Ann", "lines": [{"sku": "A1", "qty": 2}]}));
    let outgoing = Outgoing {
        mapped: record::map(&writer.flow, Arc::clone(&source)).unwrap(),
        source: Source::Json(Arc::clone(&source)),
        window: None,
    };
    let send = tokio::spawn({
        let writer = Arc::clone(&writer);
        async move { writer.write(vec![outgoing]).await }
    });
    arrived.recv().await.expect("the write arrives");
    during(&writer, &source);
    gate.add_permits(1);
    let mut settled = send.await.unwrap().unwrap();
    assert_eq!(settled.len(), 1);
    let writer = Arc::into_inner(writer).expect("the send is over");
    (writer, settled.remove(0))
}

/// Regression (issue 13): every writer under way held its batch's source records through the
/// send, though the ledger had them from the in-flight mark on: with 16 writers, most of what
/// a run held at once.
#[tokio::test]
async fn a_batch_lets_its_sources_go_once_the_ledger_keeps_them_and_a_refusal_is_parked_with_it() {
    let (_, written) = send_one(r#"{"code": 0, "id": "7"}"#, |writer, source| {
        assert_eq!(
            Arc::strong_count(source),
            1,
            "the writer still holds the source while the send is under way"
        );
        let entry = writer
            .store
            .entry(&writer.flow.name, "RK1")
            .unwrap()
            .unwrap();
        assert_eq!(entry.status, Status::InFlight);
        assert_eq!(entry.source.as_ref(), Some(&**source));
    })
    .await;
    assert!(matches!(written, Settled::Written { .. }), "{written:?}");

    // Refused (and no lookup to ask): parked with the source the ledger kept, so that
    // `engine retry` maps it again.
    let (writer, refused) = send_one(r#"{"code": 1, "msg": "unknown material"}"#, |_, _| {}).await;
    assert!(matches!(refused, Settled::Failed { .. }), "{refused:?}");
    let parked = writer.store.parked(&writer.flow.name, &[]).unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].last_error.as_deref(), Some("unknown material"));
    assert_eq!(
        parked[0].source,
        Some(json!({"id": "RK1", "name": "Ann", "lines": [{"sku": "A1", "qty": 2}]}))
    );
}
