//! Auth strategies against a REST API of the common kind: OAuth2 client credentials whose
//! tokens live two seconds, over a run of several thousand records that lasts several token
//! lifetimes, with the token endpoint and the API failing now and then and tokens revoked
//! mid-page. Every record arrives exactly once; the token endpoint is called about once per
//! token lifetime, never per request; no secret or token reaches the output or the state.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::Output;
use crate::support::hostile_http::{Behaviour as HostileBehaviour, Hostile};
use crate::support::oauth_api::{
    CLIENT_ID, CLIENT_SECRET, OAuthApi, Options, PASSWORD, USER, revoked_early,
};
use crate::support::workspace::Workspace;

const RECORDS: usize = 3000;

const SOURCE: &str = r#"name: crm
base_url: "{{ env.CRM_URL }}"
auth:
  strategy: oauth2_client_credentials
  token_url: /oauth/token
  client_id: "{{ env.CRM_CLIENT_ID }}"
  client_secret: "{{ env.CRM_CLIENT_SECRET }}"
  scope: items.read
envelope: { success: "status == 200 and body.error is not defined", message: "body.error or 'unexpected response'" }
http:
  retry: { attempts: 5, initial_backoff: 50ms, max_backoff: 200ms }
operations:
  list_items:
    kind: read
    method: GET
    path: /items
    encoding: query
    records: $.data[*]
    total: $.total
    pagination: { first_page: 1, max_page_size: 100 }
    window: { max_span: 30d, field: modified }
"#;

const TARGET: &str = r#"name: store
base_url: "{{ env.CRM_URL }}"
auth:
  strategy: oauth2_client_credentials
  token_url: "{{ env.CRM_URL }}/oauth/token"
  client_id: "{{ env.CRM_CLIENT_ID }}"
  client_secret: "{{ env.CRM_CLIENT_SECRET }}"
  client_auth: client_secret_basic
envelope: { success: "status == 200 and body.error is not defined", message: "body.error or 'unexpected response'" }
http:
  retry: { attempts: 5, initial_backoff: 50ms, max_backoff: 200ms }
operations:
  save:
    kind: write
    method: POST
    path: /items/batch
    encoding: json
    body: { records: "{{ records }}" }
    batch: { max_size: 100, default_size: 50, concurrency: 2 }
    results: { successes: "$.saved[*]", errors: "$.errors[*]", index: index, id: id, number: number, message: message }
  find:
    kind: lookup
    method: POST
    path: /items/lookup
    encoding: json
    body: { keys: "{{ keys }}" }
    rows: { path: "$.rows[*]", key: "row.number", id: "row.id", number: "row.number", max_keys: 100 }
"#;

const FLOW: &str = r#"name: items
source:
  connector: crm
  operation: list_items
  params:
    since: "{{LAST_SYNC_TIME datetime}}"
    until: "{{CURRENT_TIME datetime}}"
    page: "{{PAGINATION_START_PAGE}}"
    per_page: "{{PAGINATION_PAGE_SIZE}}"
  page_size: 50
  window: { start: "2026-11-01 00:00:00", lag: 0s }
target:
  connector: store
  operation: save
  batch_size: 50
  concurrency: 2
  lookup: find
  on_change: skip
key:
  source: "{{ id }}"
  target: number
  modified: "{{ modified }}"
mapping:
  number: "{{ id }}"
  name: "{{ name }}"
"#;

/// Records modified over the fortnight before the run, a few per timestamp.
fn records() -> Vec<Value> {
    (0..RECORDS)
        .map(|n| {
            let minutes = n as i64 * 6 / 2;
            let modified = chrono::NaiveDate::from_ymd_opt(2026, 11, 20)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
                + chrono::Duration::minutes(minutes);
            json!({
                "id": format!("IT{n:05}"),
                "name": format!("item {n}"),
                "modified": modified.format("%Y-%m-%d %H:%M:%S").to_string(),
            })
        })
        .collect()
}

fn workspace() -> Workspace {
    let workspace = Workspace::empty();
    workspace.write("connectors/crm.yaml", SOURCE);
    workspace.write("connectors/store.yaml", TARGET);
    workspace.write("items.yaml", FLOW);
    workspace
}

fn run(workspace: &Workspace, api: &OAuthApi, secret: &str, extra: &[&str]) -> Output {
    workspace
        .engine()
        .args(["run", "items.yaml"])
        .args(extra.iter().copied())
        .env("CRM_URL", &api.url)
        .env("CRM_CLIENT_ID", CLIENT_ID)
        .env("CRM_CLIENT_SECRET", secret)
        .env(
            "ENGINE_STATE_DIR",
            workspace.path("state").to_string_lossy(),
        )
        .run()
}

/// Every byte under `dir`, for looking for secrets.
fn all_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            bytes.extend(all_bytes(&path));
        } else {
            bytes.extend(std::fs::read(&path).unwrap_or_default());
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn oauth2_tokens_of_two_seconds_carry_a_long_run_with_every_record_once() {
    let api = OAuthApi::start(Options {
        records: records(),
        lifetime: Duration::from_secs(2),
        latency: Duration::from_millis(60),
        fail_every: 23,
    });
    let workspace = workspace();
    let started = Instant::now();
    let output = run(&workspace, &api, CLIENT_SECRET, &[]).success();
    let elapsed = started.elapsed();

    let (saved, token_calls, api_calls, unauthorized) =
        api.counts(|c| (c.saved.clone(), c.token_calls, c.api_calls, c.unauthorized));
    let (tokens, refused) = api.counts(|c| (c.tokens.clone(), c.refused.clone()));
    // The target sends its credentials as basic auth, the source in the form body.
    let basic_calls = api.counts(|c| c.basic_calls);
    assert!(
        basic_calls >= 1 && basic_calls < token_calls,
        "{basic_calls} of {token_calls}"
    );
    assert_eq!(saved.len(), RECORDS, "every record delivered");
    let twice: Vec<_> = saved.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "records saved more than once: {twice:?}");

    // Two connectors, each renewing its 2-second token 1.6 s in: about one token per 1.6 s
    // each, a few more for the revoked ones and the endpoint's one failure; never per call.
    let lifetimes = elapsed.as_secs_f64() / 1.6;
    assert!(
        tokens.len() >= 4,
        "the run outlived several tokens: {} in {elapsed:?}",
        tokens.len()
    );
    assert!(
        (token_calls as f64) <= 2.0 * lifetimes + 2.0 * (tokens.len() as f64 / 3.0) + 4.0,
        "{token_calls} token calls in {elapsed:?}"
    );
    assert!(
        api_calls >= 10 * token_calls,
        "{api_calls} API calls, {token_calls} token calls"
    );
    // Only revoked tokens (every third) are refused: the others were renewed before they
    // expired. One more is tolerated for a call delayed between sending and arriving.
    assert!(
        unauthorized >= 1,
        "a token revoked mid-run was refused and renewed"
    );
    let expired: Vec<_> = tokens
        .iter()
        .enumerate()
        .filter(|(n, token)| !revoked_early(n + 1) && refused.contains(*token))
        .collect();
    assert!(
        expired.len() <= 1,
        "tokens not renewed before they expired: {expired:?}"
    );

    let state = all_bytes(&workspace.path("state"));
    for text in [&output.stdout, &output.stderr] {
        assert!(!text.contains(CLIENT_SECRET), "{text}");
        assert!(!tokens.iter().any(|t| text.contains(t.as_str())), "{text}");
    }
    assert!(!contains(&state, CLIENT_SECRET));
    assert!(!tokens.iter().any(|t| contains(&state, t)));
}

#[test]
fn a_refused_client_secret_stops_the_run_without_printing_the_secret() {
    let api = OAuthApi::start(Options {
        records: records().into_iter().take(10).collect(),
        lifetime: Duration::from_secs(2),
        latency: Duration::ZERO,
        fail_every: u64::MAX,
    });
    let workspace = workspace();
    let wrong = "wrong-secret-1234";
    for extra in [&[][..], &["--dry-run"][..]] {
        let output = run(&workspace, &api, wrong, extra);
        assert_ne!(output.code, 0, "{output:?}");
        let text = format!("{}{}", output.stdout, output.stderr);
        assert!(
            text.contains("refused the client credentials (HTTP 401)"),
            "{text}"
        );
        assert!(text.contains("invalid_client"), "{text}");
        assert!(!text.contains(wrong), "{text}");
        if extra.is_empty() {
            // The target (the one sending basic auth) fetched its token as the run started.
            assert_eq!(api.counts(|c| (c.token_calls, c.basic_calls)), (1, 1));
        }
    }
    assert!(!contains(&all_bytes(&workspace.path("state")), wrong));
    // Refused before any call: the target logs in as the run starts, the source before reading.
    assert_eq!(api.counts(|c| c.api_calls), 0);
}

#[test]
fn the_bundled_flow_runs_with_qimen_written_as_a_declarative_signature() {
    let workspace = Workspace::with_bundle();
    workspace.edit(
        "mappings/connectors/wdt_qimen.yaml",
        "  strategy: qimen_sign\n",
        "  strategy: signature\n  params: { app_key: \"{{ env.WDT_APP_KEY }}\", timestamp: \"{{ timestamp }}\", sign_method: md5 }\n  string_to_sign: \"{{ secret }}{% for p in params if p.value %}{{ p.name }}{{ p.value }}{% endfor %}{{ body }}{{ secret }}\"\n  algorithm: md5\n  signature: { in: param, name: sign }\n",
    );
    workspace.edit(
        "mappings/connectors/wdt_qimen.yaml",
        "  app_key: \"{{ env.WDT_APP_KEY }}\"\n",
        "",
    );
    workspace.edit(
        "mappings/connectors/wdt_qimen.yaml",
        "  sign_method: md5                  # md5 (every WDT integrator), hmac or hmac-sha256\n",
        "",
    );
    // The WDT sandbox verifies every signature: a wrong one would fail the first page.
    let output = workspace
        .engine()
        .args(["run", "mappings/refund.yaml", "--sandbox"])
        .run()
        .code(1);
    assert!(
        output.stderr.contains(
            "180 read: 180 new, 0 seen before; 170 written, 0 already written, 10 parked"
        ),
        "{}",
        output.stderr
    );
}

#[test]
fn login_sessions_by_cookie_or_body_token_are_renewed_when_refused() {
    let api = OAuthApi::start(Options {
        records: records().into_iter().take(1000).collect(),
        lifetime: Duration::from_secs(1),
        // Slow enough that the run outlasts a session whatever the engine's speed: at 40 ms
        // a faster engine finished some runs within the first sessions' second.
        latency: Duration::from_millis(100),
        fail_every: 29,
    });
    let workspace = workspace();
    // Both log in with JSON; the source sends the session back as its cookie, the target as
    // a bearer token read from the body.
    let login = |token: &str, send: &str| {
        format!(
            "auth:\n  strategy: login\n  request: {{ method: POST, path: /login, json: {{ user: \"{{{{ env.ERP_USER }}}}\", password: \"{{{{ env.ERP_PASSWORD }}}}\" }} }}\n  token: {token}\n  send: {send}\n"
        )
    };
    let oauth = |text: &str| {
        let start = text.find("auth:\n").unwrap();
        let end = text.find("envelope:").unwrap();
        text[start..end].to_string()
    };
    let source = SOURCE.replace(
        &oauth(SOURCE),
        &login("{ cookie: SID }", "{ in: cookie, name: SID }"),
    );
    let target = TARGET.replace(
        &oauth(TARGET),
        &login(
            "{ path: $.data.token }",
            "{ in: header, name: Authorization, value: \"Bearer {{ token }}\" }",
        ),
    );
    workspace.write("connectors/crm.yaml", source);
    workspace.write("connectors/store.yaml", target);
    let output = workspace
        .engine()
        .args(["run", "items.yaml"])
        .env("CRM_URL", &api.url)
        .env("ERP_USER", USER)
        .env("ERP_PASSWORD", PASSWORD)
        .env(
            "ENGINE_STATE_DIR",
            workspace.path("state").to_string_lossy(),
        )
        .run()
        .success();
    let (saved, login_calls, api_calls, unauthorized, tokens) = api.counts(|c| {
        (
            c.saved.clone(),
            c.login_calls,
            c.api_calls,
            c.unauthorized,
            c.tokens.clone(),
        )
    });
    assert_eq!(saved.len(), 1000, "every record delivered");
    assert!(saved.values().all(|n| *n == 1), "a record saved twice");
    assert!(
        unauthorized >= 1,
        "sessions expired during the run and were renewed: {login_calls} logins, {api_calls} calls"
    );
    assert!(
        login_calls >= 3 && api_calls >= 5 * login_calls,
        "{login_calls} logins, {api_calls} calls"
    );
    let text = format!("{}{}", output.stdout, output.stderr);
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(!tokens.iter().any(|t| text.contains(t.as_str())), "{text}");
}

#[test]
fn a_token_endpoint_redirecting_elsewhere_never_gets_the_secret_sent_on() {
    let elsewhere = Hostile::start(HostileBehaviour::answer(200, &[], "{}"));
    let location = elsewhere.url("/steal");
    let redirecting = Hostile::start(HostileBehaviour::answer(
        307,
        &[("Location", &location)],
        "",
    ));
    let api = OAuthApi::start(Options {
        records: records().into_iter().take(10).collect(),
        lifetime: Duration::from_secs(2),
        latency: Duration::ZERO,
        fail_every: u64::MAX,
    });
    let workspace = workspace();
    workspace.edit(
        "connectors/crm.yaml",
        "token_url: /oauth/token",
        &format!("token_url: {}", redirecting.url("/oauth/token")),
    );
    let output = run(&workspace, &api, CLIENT_SECRET, &[]);
    assert_ne!(output.code, 0, "{output:?}");
    assert!(
        output.stderr.contains("another origin"),
        "{}",
        output.stderr
    );
    assert!(!output.stderr.contains(CLIENT_SECRET), "{}", output.stderr);
    assert_eq!(
        redirecting.requests().len(),
        1,
        "a permanent failure is not repeated"
    );
    assert!(
        elsewhere.requests().is_empty(),
        "the token request followed the redirect"
    );
}
