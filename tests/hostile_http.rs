//! The bundled flow against hostile HTTP servers: redirects that would carry credentials
//! elsewhere, proxies, endless and dripping bodies, an hour-long `Retry-After`, a certificate
//! nobody trusts. Every case ends quickly with exit 4 and a message saying why, sends nothing
//! where it should not and prints no secret.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::support::hostile_http::{Behaviour, Hostile};
use crate::support::workspace::Workspace;
use crate::support::{Output, repo_root};

const WDT: &str = "mappings/connectors/wdt_qimen.yaml";
const KINGDEE: &str = "mappings/connectors/kingdee_k3cloud.yaml";
const WDT_SECRET: &str = "wdt-s3cret-do-not-print";
const KINGDEE_SECRET: &str = "kd-s3cret-do-not-print";
/// Where nothing listens: a run that reaches it fails at once.
const NOWHERE: &str = "http://127.0.0.1:9/";

/// The bundled flow with fast retries; `wdt_http` lines are added to WDT's `http` section.
fn workspace(wdt_http: &[&str]) -> Workspace {
    let workspace = Workspace::with_bundle();
    workspace.edit(
        WDT,
        "retry: { attempts: 6, initial_backoff: 2s, max_backoff: 40s, throttle_wait: 31s, throttle_attempts: 8 }",
        "retry: { attempts: 6, initial_backoff: 10ms, max_backoff: 100ms, throttle_wait: 50ms, throttle_attempts: 8 }",
    );
    workspace.edit(
        KINGDEE,
        "retry: { attempts: 5, initial_backoff: 1s, max_backoff: 30s }",
        "retry: { attempts: 5, initial_backoff: 10ms, max_backoff: 100ms }",
    );
    let mut lines = String::from("  connect_timeout: 10s\n");
    for line in wdt_http {
        lines.push_str(&format!("  {line}\n"));
    }
    workspace.edit(WDT, "  connect_timeout: 10s\n", &lines);
    workspace
}

/// Credentials for both APIs (Kingdee by app signature: no login before reading), a day to read.
fn env(workspace: &Workspace, wdt_url: &str, kingdee_url: &str) -> BTreeMap<String, String> {
    [
        ("WDT_QIMEN_URL", wdt_url.to_string()),
        ("WDT_APP_KEY", "12345678".into()),
        ("WDT_APP_SECRET", WDT_SECRET.into()),
        ("WDT_TARGET_APP_KEY", "87654321".into()),
        ("WDT_SID", "seller".into()),
        ("KINGDEE_URL", kingdee_url.to_string()),
        ("KINGDEE_ACCT_ID", "acct".into()),
        ("KINGDEE_USERNAME", "demo".into()),
        ("KINGDEE_APP_ID", "app".into()),
        ("KINGDEE_APP_SECRET", KINGDEE_SECRET.into()),
        (
            "ENGINE_STATE_DIR",
            workspace.path("state").display().to_string(),
        ),
        (
            "REFUND_SYNC_START",
            (Utc::now() - chrono::Duration::days(1)).to_rfc3339(),
        ),
        // Whatever the machine running the tests has set.
        ("HTTP_PROXY", String::new()),
        ("HTTPS_PROXY", String::new()),
        ("ALL_PROXY", String::new()),
        ("NO_PROXY", String::new()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn run(workspace: &Workspace, env: &BTreeMap<String, String>) -> Output {
    workspace
        .engine()
        .args(["run", "mappings/refund.yaml"])
        .envs(env)
        .run()
}

#[track_caller]
fn assert_no_secret(output: &Output) {
    for secret in [WDT_SECRET, KINGDEE_SECRET] {
        assert!(
            !output.stderr.contains(secret) && !output.stdout.contains(secret),
            "a secret was printed:\n{}",
            output.stderr
        );
    }
}

#[test]
fn a_password_login_redirected_to_another_port_is_not_followed() {
    let elsewhere = Hostile::start(Behaviour::answer(200, &[], "{}"));
    let location = elsewhere.url("/k3cloud/steal?token=leak-me");
    let kingdee = Hostile::start(Behaviour::answer(307, &[("Location", &location)], ""));
    let workspace = workspace(&[]);
    let mut env = env(&workspace, NOWHERE, &kingdee.url("/k3cloud/"));
    env.remove("KINGDEE_APP_ID");
    env.remove("KINGDEE_APP_SECRET");
    env.insert("KINGDEE_PASSWORD".into(), KINGDEE_SECRET.into());
    let output = run(&workspace, &env)
        .code(4)
        .stderr_contains("HTTP 307, a redirect to")
        .stderr_contains(&format!("`{}`, another origin", elsewhere.url("")));
    assert_no_secret(&output);
    assert!(!output.stderr.contains("leak-me"), "{}", output.stderr);
    assert_eq!(
        elsewhere.connections(),
        0,
        "the login was sent on: {:?}",
        elsewhere.requests()
    );
    assert_eq!(kingdee.requests().len(), 1, "a redirect is not retried");
    assert!(kingdee.requests()[0].contains(KINGDEE_SECRET));
}

#[test]
fn a_signed_call_is_never_redirected_from_https_to_plain_http() {
    let elsewhere = Hostile::start(Behaviour::answer(200, &[], "{}"));
    let location = elsewhere.url("/router");
    let wdt = Hostile::start(Behaviour::Tls(Box::new(Behaviour::answer(
        307,
        &[("Location", &location)],
        "",
    ))));
    let workspace = workspace(&[]);
    let mut env = env(&workspace, &wdt.https_url("/router"), NOWHERE);
    // The private CA of the test certificate, the way the README tells users to add theirs.
    let ca = repo_root().join("tests/fixtures/tls/ca.pem");
    env.insert("SSL_CERT_FILE".into(), ca.display().to_string());
    let output = run(&workspace, &env)
        .code(4)
        .stderr_contains("connector `wdt_qimen` operation `stockin_refund_query` answered HTTP 307")
        .stderr_contains(&format!("`{}`, another origin", elsewhere.url("")));
    assert_no_secret(&output);
    assert_eq!(wdt.requests().len(), 1, "the TLS handshake succeeded once");
    assert_eq!(elsewhere.connections(), 0, "{:?}", elsewhere.requests());
}

#[test]
fn an_untrusted_certificate_fails_at_once_with_the_tls_reason() {
    let wdt = Hostile::start(Behaviour::Tls(Box::new(Behaviour::answer(200, &[], "{}"))));
    let workspace = workspace(&[]);
    let mut env = env(&workspace, &wdt.https_url("/router"), NOWHERE);
    // A CA that did not sign the server's certificate, whatever the machine's own list holds.
    let other = repo_root().join("tests/fixtures/tls/other-ca.pem");
    env.insert("SSL_CERT_FILE".into(), other.display().to_string());
    let output = run(&workspace, &env)
        .code(4)
        .stderr_contains("the TLS handshake failed: invalid peer certificate: UnknownIssuer")
        .stderr_contains("SSL_CERT_FILE");
    assert_no_secret(&output);
    assert_eq!(
        wdt.connections(),
        1,
        "a certificate failure is not retried:\n{}",
        output.stderr
    );
}

#[test]
fn an_endless_body_fails_the_call_once_at_the_size_limit() {
    let wdt = Hostile::start(Behaviour::Endless);
    let workspace = workspace(&["max_response_bytes: 1048576"]);
    let output = run(&workspace, &env(&workspace, &wdt.url("/router"), NOWHERE))
        .code(4)
        .stderr_contains(
            "response of connector `wdt_qimen` operation `stockin_refund_query` exceeds 1 MiB",
        );
    assert_no_secret(&output);
    assert_eq!(wdt.connections(), 1, "an answer too large is not retried");
}

#[test]
fn a_dripping_server_is_cut_off_at_the_call_timeout() {
    let wdt = Hostile::start(Behaviour::Drip {
        every: Duration::from_millis(100),
    });
    // Twenty attempts of a second each would take twenty seconds; the call may take three.
    let workspace = workspace(&["call_timeout: 3s"]);
    workspace.edit(WDT, "  timeout: 60s\n", "  timeout: 1s\n");
    workspace.edit(
        WDT,
        "attempts: 6, initial_backoff: 10ms",
        "attempts: 20, initial_backoff: 10ms",
    );
    let started = Instant::now();
    let output = run(&workspace, &env(&workspace, &wdt.url("/router"), NOWHERE))
        .code(4)
        .stderr_contains("within 3s (`http.call_timeout`)");
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(9),
        "the run took {elapsed:?}, more than three times the call's limit:\n{}",
        output.stderr
    );
    assert!(wdt.connections() <= 4, "{}", wdt.connections());
}

#[test]
fn a_retry_after_of_an_hour_fails_the_call_at_once_and_says_so() {
    let wdt = Hostile::start(Behaviour::answer(429, &[("Retry-After", "3600")], ""));
    let workspace = workspace(&[]);
    let started = Instant::now();
    let output = run(&workspace, &env(&workspace, &wdt.url("/router"), NOWHERE))
        .code(4)
        .stderr_contains(
            "asks to wait 3600s (`Retry-After`), longer than `http.retry.max_retry_after` (2m) allows",
        );
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "the run waited:\n{}",
        output.stderr
    );
    assert_eq!(wdt.connections(), 1);
}

#[test]
fn a_proxy_from_the_environment_carries_the_requests_and_the_run_header_names_it() {
    let proxy = Hostile::start(Behaviour::answer(502, &[], "bad gateway"));
    let workspace = workspace(&[]);
    let mut env = env(
        &workspace,
        "http://wdt.example.invalid/router",
        "http://kingdee.example.invalid/k3cloud/",
    );
    env.insert(
        "HTTP_PROXY".into(),
        format!("http://squid:pr0xy-pa55@{}", proxy.addr),
    );
    let output = run(&workspace, &env).code(4).stderr_contains(&format!(
        "source `wdt_qimen` at http://wdt.example.invalid via proxy http://{}",
        proxy.addr
    ));
    output.clone().stderr_contains(&format!(
        "target `kingdee_k3cloud` at http://kingdee.example.invalid via proxy http://{}",
        proxy.addr
    ));
    assert!(!output.stderr.contains("pr0xy-pa55"), "{}", output.stderr);
    let requests = proxy.requests();
    assert!(
        requests
            .first()
            .is_some_and(|r| r.starts_with("POST http://wdt.example.invalid/router HTTP/1.1")),
        "{requests:?}"
    );
}

#[test]
fn no_proxy_covering_the_host_keeps_the_requests_away_from_the_proxy() {
    let proxy = Hostile::start(Behaviour::answer(502, &[], "bad gateway"));
    let wdt = Hostile::start(Behaviour::answer(502, &[], "bad gateway"));
    let workspace = workspace(&[]);
    let mut env = env(&workspace, &wdt.url("/router"), NOWHERE);
    env.insert("HTTP_PROXY".into(), format!("http://{}", proxy.addr));
    env.insert("NO_PROXY".into(), "127.0.0.1".into());
    run(&workspace, &env)
        .code(4)
        .stderr_contains(&format!("source `wdt_qimen` at {}, direct", wdt.url("")));
    assert_eq!(proxy.connections(), 0, "{:?}", proxy.requests());
    assert!(wdt.connections() > 0);
}

#[test]
fn an_https_api_is_reached_through_the_proxy_by_a_tunnel_with_the_proxys_credentials() {
    let proxy = Hostile::start(Behaviour::answer(502, &[], "no tunnel"));
    let workspace = workspace(&[]);
    let mut env = env(&workspace, "https://wdt.example.invalid/router", NOWHERE);
    env.insert(
        "HTTPS_PROXY".into(),
        format!("http://squid:pr0xy-pa55@{}", proxy.addr),
    );
    let output = run(&workspace, &env).code(4).stderr_contains(&format!(
        "source `wdt_qimen` at https://wdt.example.invalid via proxy http://{}",
        proxy.addr
    ));
    assert!(!output.stderr.contains("pr0xy-pa55"), "{}", output.stderr);
    let requests = proxy.requests();
    let first = requests.first().cloned().unwrap_or_default();
    assert!(
        first.starts_with("CONNECT wdt.example.invalid:443 HTTP/1.1"),
        "{requests:?}"
    );
    // `squid:pr0xy-pa55` in base64: the proxy gets the credentials, the log never does.
    assert!(
        first.contains("proxy-authorization: Basic c3F1aWQ6cHIweHktcGE1NQ=="),
        "{requests:?}"
    );
}

#[test]
fn a_token_endpoint_on_another_host_listed_in_no_proxy_is_never_sent_through_the_proxy() {
    let proxy = Hostile::start(Behaviour::answer(502, &[], "bad gateway"));
    let token = Hostile::start(Behaviour::answer(
        401,
        &[("Content-Type", "application/json")],
        r#"{"error": "invalid_client"}"#,
    ));
    let workspace = Workspace::with_bundle();
    let crm = "mappings/examples/connectors/crm.yaml";
    workspace.edit(
        crm,
        "  strategy: bearer\n  token: \"{{ env.CRM_TOKEN }}\"",
        "  strategy: oauth2_client_credentials\n  token_url: \"{{ env.CRM_TOKEN_URL }}\"\n  client_id: engine\n  client_secret: \"{{ env.CRM_TOKEN }}\"",
    );
    // The API through the proxy, its token endpoint (another host) kept away from it.
    let output = workspace
        .engine()
        .args(["run", "mappings/examples/shop_customers.yaml"])
        .env("ENGINE_STATE_DIR", workspace.path("state").display().to_string())
        .env("SHOP_URL", NOWHERE)
        .env("SHOP_TOKEN", "shop")
        .env("CRM_URL", "http://crm.example.invalid")
        .env("CRM_TOKEN_URL", token.url("/oauth/token"))
        .env("CRM_TOKEN", KINGDEE_SECRET)
        .env("HTTP_PROXY", format!("http://{}", proxy.addr))
        .env("NO_PROXY", "127.0.0.1")
        .env("HTTPS_PROXY", "")
        .env("ALL_PROXY", "")
        .run()
        .code(4)
        .stderr_contains(&format!(
            "target `crm` at http://crm.example.invalid via proxy http://{}; its login at {}, direct",
            proxy.addr,
            token.url("")
        ));
    assert_no_secret(&output);
    assert_eq!(
        proxy.connections(),
        0,
        "the token request went through the proxy: {:?}",
        proxy.requests()
    );
    assert_eq!(token.requests().len(), 1, "a refused secret is not retried");
    assert!(token.requests()[0].contains(KINGDEE_SECRET));
}
