//! The client against small scripted servers: retries, throttling, refusals, answers.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;

use super::answer::{REFUSAL_CHARS, refusal_text};
use super::*;
use crate::config::{self, StandaloneConnector};
use crate::time::SystemClock;

/// A server answering from a script: each call takes the next (status, body); the last repeats.
async fn server(script: Vec<(u16, &'static str)>) -> (String, Arc<AtomicU32>) {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&calls);
    let script = Arc::new(script);
    let app = Router::new().route(
        "/api",
        post(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) as usize;
            let (status, body) = script[n.min(script.len() - 1)];
            // Every 429 of the script asks for 90 seconds.
            let retry_after = if status == 429 { "90" } else { "0" };
            async move {
                (
                    StatusCode::from_u16(status).unwrap(),
                    [("Retry-After", retry_after)],
                    body,
                )
                    .into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, calls)
}

fn connector(dir: &tempfile::TempDir) -> StandaloneConnector {
    connector_with(
        dir,
        "{ retry: { attempts: 4, initial_backoff: 1s, max_backoff: 8s, throttle_wait: 31s, throttle_attempts: 3 } }",
    )
}

/// The test connector with `http` as its `http:` settings.
fn connector_with(dir: &tempfile::TempDir, http: &str) -> StandaloneConnector {
    let file = dir.path().join("api.yaml");
    std::fs::write(
        &file,
        r#"name: api
base_url: "{{ env.API_URL }}"
auth: { strategy: none }
envelope:
  success: "body.ok == true"
  message: "body.error"
  retryable: "body.busy == true"
  throttled: "body.limited == true"
http: HTTP
operations:
  read: { kind: read, encoding: form, records: "$.items[*]", pagination: { strategy: none } }
  write:
    kind: write
    encoding: json
    body: { records: "{{ records }}" }
    batch: { max_size: 10 }
    results: { successes: "$.saved[*]", errors: "$.errors[*]", index: at, id: id, message: why }
"#
        .replace("HTTP", http),
    )
    .unwrap();
    config::load_connector(&file)
        .value
        .expect("the test connector compiles")
}

struct Fixture {
    client: Client,
    standalone: StandaloneConnector,
    waits: Arc<Mutex<Vec<std::time::Duration>>>,
    calls: Arc<AtomicU32>,
    _dir: tempfile::TempDir,
}

async fn fixture(script: Vec<(u16, &'static str)>) -> Fixture {
    let (url, calls) = server(script).await;
    let dir = tempfile::tempdir().unwrap();
    let standalone = connector(&dir);
    let env: Env = [("API_URL".to_string(), url)].into_iter().collect();
    let waits = Arc::new(Mutex::new(Vec::new()));
    let client = Client::new(
        &standalone.connector,
        &standalone.templates,
        &env,
        Sleeper::Recording(Arc::clone(&waits)),
        Arc::new(SystemClock),
        Arc::new(|_| {}),
    )
    .unwrap();
    Fixture {
        client,
        standalone,
        waits,
        calls,
        _dir: dir,
    }
}

async fn call(fixture: &Fixture, idempotent: bool) -> Result<Reply, CallError> {
    let operation = &fixture.standalone.connector.operations["read"];
    fixture
        .client
        .call(
            operation,
            &fixture.standalone.envelopes,
            &Parts::literal(operation),
            Payload::Fields(serde_json::Map::new()),
            idempotent,
        )
        .await
}

#[tokio::test]
async fn a_read_that_fails_twice_then_succeeds_is_retried_with_growing_waits() {
    let fixture = fixture(vec![
        (503, "busy"),
        (200, r#"{"busy": true}"#),
        (200, r#"{"ok": true, "items": []}"#),
    ])
    .await;
    let reply = call(&fixture, true).await.unwrap();
    assert_eq!(reply.verdict, Verdict::Success);
    assert_eq!(fixture.calls.load(Ordering::SeqCst), 3);
    let waits = fixture.waits.lock().unwrap().clone();
    assert_eq!(waits.len(), 2);
    assert!(
        waits[0] >= std::time::Duration::from_millis(500)
            && waits[1] >= std::time::Duration::from_secs(1),
        "{waits:?}"
    );
}

#[tokio::test]
async fn a_json_answer_after_a_byte_order_mark_is_read() {
    let fixture = fixture(vec![(200, "\u{FEFF}{\"ok\": true, \"items\": []}")]).await;
    let reply = call(&fixture, true).await.unwrap();
    assert_eq!(reply.verdict, Verdict::Success);
    assert_eq!(fixture.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_definite_refusal_is_not_retried() {
    let fixture = fixture(vec![(
        200,
        r#"{"ok": false, "error": "时间范围与入库单号不能全部为空"}"#,
    )])
    .await;
    let reply = call(&fixture, true).await.unwrap();
    assert_eq!(
        reply.verdict,
        Verdict::Failed {
            code: None,
            message: "时间范围与入库单号不能全部为空".into()
        }
    );
    assert_eq!(fixture.calls.load(Ordering::SeqCst), 1);
    assert!(fixture.waits.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_write_that_may_have_been_processed_is_not_repeated() {
    let fixture = fixture(vec![(502, "<html>Bad Gateway</html>")]).await;
    match call(&fixture, false).await {
        Err(CallError::Uncertain(err)) => assert!(
            err.message()
                .contains("answered HTTP 502: `<html>Bad Gateway</html>`"),
            "{}",
            err.message()
        ),
        other => panic!("expected Uncertain, got {other:?}"),
    }
    assert_eq!(fixture.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn transient_refusals_give_up_after_the_configured_attempts() {
    let fixture = fixture(vec![(
        200,
        r#"{"busy": true, "error": "调用频繁，请稍后再试"}"#,
    )])
    .await;
    match call(&fixture, true).await {
        Err(CallError::Unavailable(err)) => assert!(
            err.message()
                .contains("kept answering `调用频繁，请稍后再试` through 4 attempts"),
            "{}",
            err.message()
        ),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(fixture.calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_rate_limited_call_waits_out_the_limit_and_is_repeated() {
    let fixture = fixture(vec![
        (200, r#"{"limited": true, "error": "调用频繁，请稍后再试"}"#),
        (429, "slow down"),
        (200, r#"{"ok": true, "items": []}"#),
    ])
    .await;
    // A write too: a refusal for calling too often was not processed.
    let reply = call(&fixture, false).await.unwrap();
    assert_eq!(reply.verdict, Verdict::Success);
    assert_eq!(fixture.calls.load(Ordering::SeqCst), 3);
    let waits = fixture.waits.lock().unwrap().clone();
    assert_eq!(waits.len(), 2, "{waits:?}");
    let secs: Vec<f64> = waits.iter().map(|w| w.as_secs_f64()).collect();
    assert!(
        (0.9..=1.3).contains(&secs[0]),
        "a first refusal waits the initial backoff, with at most a fifth more: {secs:?}"
    );
    assert!(
        (89.0..=108.1).contains(&secs[1]),
        "a longer Retry-After wins: {secs:?}"
    );
}

#[tokio::test]
async fn refusals_in_a_row_wait_longer_up_to_the_throttle_wait() {
    let mut script = vec![(200, r#"{"limited": true, "error": "调用频繁"}"#); 3];
    script.push((200, r#"{"ok": true, "items": []}"#));
    let fixture = fixture(script).await;
    // The test connector allows three waits; the fourth answer is the success.
    call(&fixture, true).await.unwrap();
    let secs: Vec<f64> = fixture
        .waits
        .lock()
        .unwrap()
        .iter()
        .map(|w| w.as_secs_f64())
        .collect();
    assert_eq!(secs.len(), 3, "{secs:?}");
    assert!(
        (0.9..=1.3).contains(&secs[0])
            && (1.9..=2.5).contains(&secs[1])
            && (3.9..=4.9).contains(&secs[2]),
        "doubling from the initial backoff: {secs:?}"
    );
}

#[tokio::test]
async fn a_call_throttled_past_its_limit_stops_with_the_apis_message() {
    let fixture = fixture(vec![(
        200,
        r#"{"limited": true, "error": "调用频繁，请稍后再试"}"#,
    )])
    .await;
    match call(&fixture, true).await {
        Err(CallError::Unavailable(err)) => assert!(
            err.message()
                .contains("kept answering `调用频繁，请稍后再试` through 4 waits"),
            "{}",
            err.message()
        ),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(fixture.calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_server_error_that_reports_per_record_results_is_an_answer() {
    // Kingdee's failure envelope carries `ErrorCode: 500`; a server that also sends it as
    // the HTTP status still says which records failed: that is no reason to look them up.
    let fixture = fixture(vec![(
        500,
        r#"{"ok": false, "error": "物料不存在", "errors": [{"at": 0, "why": "物料不存在"}]}"#,
    )])
    .await;
    let operation = &fixture.standalone.connector.operations["write"];
    let reply = fixture
        .client
        .call(
            operation,
            &fixture.standalone.envelopes,
            &Parts::literal(operation),
            Payload::Json(serde_json::json!({"records": []})),
            false,
        )
        .await
        .expect("an answer, not an uncertain write");
    assert_eq!(reply.status, 500);
    assert!(
        matches!(reply.verdict, Verdict::Failed { .. }),
        "{:?}",
        reply.verdict
    );
    assert_eq!(fixture.calls.load(Ordering::SeqCst), 1);
}

/// A 422 answered in plain text that echoes the request: the message kept for the parked
/// record is its beginning, not the whole body with every field sent.
#[test]
fn a_text_refusal_kept_as_the_message_is_capped() {
    let dir = tempfile::tempdir().unwrap();
    let standalone = connector(&dir);
    let operation = &standalone.connector.operations["write"];
    let body = format!("invalid record: {}", "x".repeat(10_000));
    let kept = refusal_text(operation, 422, body.as_bytes()).expect("a refusal");
    let kept = kept.as_str().unwrap();
    assert!(kept.starts_with("invalid record: xxx"), "{kept}");
    assert!(
        kept.chars().count() <= REFUSAL_CHARS + 1,
        "{} chars",
        kept.len()
    );
    assert!(kept.ends_with('…'));
}

/// What an observer was told: each request (operation, outcome) and each rate-limit wait.
#[derive(Default)]
struct Told {
    requests: Mutex<Vec<(String, String, Outcome)>>,
    waits: Mutex<Vec<std::time::Duration>>,
}

impl CallObserver for Told {
    fn request(
        &self,
        connector: &str,
        operation: &str,
        outcome: Outcome,
        _took: std::time::Duration,
    ) {
        let request = (connector.to_string(), operation.to_string(), outcome);
        self.requests.lock().unwrap().push(request);
    }

    fn rate_limit_wait(&self, connector: &str, waited: std::time::Duration) {
        assert_eq!(connector, "api");
        self.waits.lock().unwrap().push(waited);
    }
}

#[tokio::test]
async fn the_observer_is_told_each_request_with_its_outcome_and_each_rate_limit_wait() {
    let Fixture {
        client,
        standalone,
        waits,
        calls,
        _dir,
    } = fixture(vec![
        (503, "busy"),
        (200, r#"{"busy": true}"#),
        (200, r#"{"limited": true}"#),
        (200, r#"{"ok": true, "items": []}"#),
    ])
    .await;
    let told = Arc::new(Told::default());
    let fixture = Fixture {
        client: client.observed_by(Some(Arc::clone(&told) as Arc<dyn CallObserver>)),
        standalone,
        waits,
        calls,
        _dir,
    };
    let reply = call(&fixture, true).await.unwrap();
    assert_eq!(reply.verdict, Verdict::Success);
    let requests = told.requests.lock().unwrap().clone();
    let outcomes: Vec<Outcome> = requests.iter().map(|(_, _, outcome)| *outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::ServerError,
            Outcome::Busy,
            Outcome::Throttled,
            Outcome::Ok
        ]
    );
    assert!(
        requests
            .iter()
            .all(|(connector, operation, _)| connector == "api" && operation == "read")
    );
    // The throttling held every call: the next one waited, and said so; the retries' backoffs
    // are not rate-limit waits.
    assert_eq!(told.waits.lock().unwrap().len(), 1);
}

/// An early request that waits in the rate limit while the answer it was sent on is refused
/// (too frequent) and withdrawn must not go out: its answer can never be used, the call before
/// it is waiting for it, and against WDT it would reach the server during the throttle's pause.
/// With the bundled WDT connector (50 a minute) every early request waits in the limiter once
/// the first 50 calls are spent, so this is every throttled page.
#[tokio::test]
async fn an_early_request_waiting_in_the_rate_limit_is_not_sent_once_withdrawn() {
    let (url, calls) = server(vec![(200, r#"{"ok": true, "items": []}"#)]).await;
    let dir = tempfile::tempdir().unwrap();
    let standalone = connector_with(&dir, "{ rate_limit: { requests: 1, per: 400ms } }");
    let env: Env = [("API_URL".to_string(), url)].into_iter().collect();
    let client = Client::new(
        &standalone.connector,
        &standalone.templates,
        &env,
        Sleeper::Tokio,
        Arc::new(SystemClock),
        Arc::new(|_| {}),
    )
    .unwrap();
    let operation = &standalone.connector.operations["read"];
    let parts = Parts::literal(operation);
    let payload = || Payload::Fields(serde_json::Map::new());
    // The page before: its answer arrives (the window of the limit is now spent).
    let before = Arc::new(Arrival::default());
    client
        .call_announced(
            operation,
            &standalone.envelopes,
            &parts,
            payload(),
            true,
            Reading {
                arrival: Some(&*before),
                ..Reading::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // The early request goes out on that arrival, as `Early::new` sends it.
    let own = Arrival::default();
    let following = before.following().expect("usable");
    let early = async {
        let _following = following;
        client
            .call_announced(
                operation,
                &standalone.envelopes,
                &parts,
                payload(),
                true,
                Reading {
                    arrival: Some(&own),
                    after: Some(&*before),
                    lean: None,
                },
            )
            .await
    };
    // Meanwhile the page before is refused after its arrival: it withdraws and waits.
    let withdraw = async {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        before.withdraw().await;
        calls.load(Ordering::SeqCst)
    };
    let (early, calls_when_withdrawn) = tokio::join!(early, withdraw);
    assert_eq!(
        calls_when_withdrawn, 1,
        "the early request went out after the arrival it was sent on was withdrawn: {early:?}"
    );
    assert!(early.is_err(), "the early answer is not usable: {early:?}");
}
