//! Alerts after `engine run`: mock DingTalk, WeCom, Feishu and generic receivers on
//! 127.0.0.1 check the message shapes and recompute every signature from the shared secret.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{Duration, SecondsFormat, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::support::receiver::{Received, Receiver};
use crate::support::sync::Sync;
use crate::support::workspace::Workspace;

const DING_PATH: &str = "/robot/send";
const WECOM_PATH: &str = "/cgi-bin/webhook/send";
const FEISHU_PATH: &str = "/open-apis/bot/v2/hook/fs-hook-0042";
const HOOK_PATH: &str = "/events";

/// The secrets the receivers share with the engine; none may ever be printed.
fn secrets() -> BTreeMap<String, String> {
    [
        ("T_DING_TOKEN", "tok-ding-5521"),
        ("T_DING_SECRET", "SECding-s3cr3t-771"),
        ("T_WECOM_KEY", "wecom-key-9913"),
        ("T_FEISHU_HOOK", "fs-hook-0042"),
        ("T_FEISHU_SECRET", "feishu-s3cr3t-305"),
        ("T_HOOK_SECRET", "hook-s3cr3t-618"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn alerts_yaml(root: &str, extra: &str) -> String {
    format!(
        r#"channels:
  ding:
    type: dingtalk
    url: "{root}{DING_PATH}?access_token={{{{ env.T_DING_TOKEN }}}}"
    secret: "{{{{ env.T_DING_SECRET }}}}"
  wecom:
    type: wecom
    url: "{root}{WECOM_PATH}?key={{{{ env.T_WECOM_KEY }}}}"
  feishu:
    type: feishu
    url: "{root}/open-apis/bot/v2/hook/{{{{ env.T_FEISHU_HOOK }}}}"
    secret: "{{{{ env.T_FEISHU_SECRET }}}}"
  hook:
    type: webhook
    url: "{root}{HOOK_PATH}"
    secret: "{{{{ env.T_HOOK_SECRET }}}}"
    headers: {{ X-Team: finance }}
{extra}rules:
  - events: [failed, parked, unsettled, stale]
    channels: [ding, wecom, feishu, hook{more}]
stale_after: 6h
"#,
        more = if extra.is_empty() { "" } else { ", gone" },
    )
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// DingTalk: `timestamp` (ms) and `sign` = urlencode(base64(HMAC(secret, ts\nsecret))) in the query.
#[track_caller]
fn verify_dingtalk(request: &Received) {
    let secret = &secrets()["T_DING_SECRET"];
    assert_eq!(request.query("access_token"), secrets()["T_DING_TOKEN"]);
    let timestamp = request.query("timestamp");
    assert_eq!(timestamp.len(), 13, "milliseconds: {timestamp}");
    let expected = BASE64.encode(hmac_sha256(
        secret.as_bytes(),
        format!("{timestamp}\n{secret}").as_bytes(),
    ));
    assert_eq!(request.query("sign"), expected);
    let encoded: String = url_encode(&expected);
    assert!(
        request.raw_query.contains(&format!("sign={encoded}")),
        "the sign is URL-encoded: {}",
        request.raw_query
    );
    let body = request.json();
    assert_eq!(body["msgtype"], "markdown");
    assert!(
        body["markdown"]["title"]
            .as_str()
            .unwrap()
            .starts_with("【engine】流程 refund ")
    );
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Feishu: `timestamp` (s, a string) and `sign` = base64(HMAC(key = ts\nsecret, empty)) in the body.
#[track_caller]
fn verify_feishu(request: &Received) {
    let secret = &secrets()["T_FEISHU_SECRET"];
    let body = request.json();
    let timestamp = body["timestamp"].as_str().expect("timestamp is a string");
    assert_eq!(timestamp.len(), 10, "seconds: {timestamp}");
    let expected = BASE64.encode(hmac_sha256(
        format!("{timestamp}\n{secret}").as_bytes(),
        b"",
    ));
    assert_eq!(body["sign"], expected);
    assert_eq!(body["msg_type"], "text");
}

/// Generic: `X-Engine-Signature: sha256=hex(HMAC(secret, ts + "." + body))`.
#[track_caller]
fn verify_webhook(request: &Received) {
    let secret = &secrets()["T_HOOK_SECRET"];
    let timestamp = &request.headers["x-engine-timestamp"];
    let mut message = format!("{timestamp}.").into_bytes();
    message.extend_from_slice(&request.body);
    let expected = format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), &message))
    );
    assert_eq!(request.headers["x-engine-signature"], expected);
    assert_eq!(request.headers["x-team"], "finance");
    assert_eq!(request.json()["source"], "engine");
}

/// The text each receiver shows people.
fn text_of(request: &Received) -> String {
    let body = request.json();
    let text = match request.path.as_str() {
        DING_PATH => &body["markdown"]["text"],
        WECOM_PATH => &body["markdown"]["content"],
        HOOK_PATH => &body["text"],
        _ => &body["content"]["text"],
    };
    text.as_str().unwrap().to_string()
}

#[track_caller]
fn assert_no_secret(stderr: &str) {
    for (name, secret) in secrets() {
        assert!(!stderr.contains(&secret), "{name} printed:\n{stderr}");
    }
}

#[test]
fn a_sandbox_run_with_parked_records_sends_one_message_per_channel_with_valid_signatures() {
    let receiver = Receiver::start();
    let workspace = Workspace::with_bundle();
    workspace.write("mappings/alerts.yaml", alerts_yaml(&receiver.root(), ""));
    let output = workspace
        .engine()
        .args(["run", "mappings/refund.yaml", "--sandbox", "--alerts"])
        .envs(&secrets())
        .run()
        .code(1);
    let received = receiver.received();
    assert_eq!(received.len(), 4, "one message per channel: {received:#?}");
    for path in [DING_PATH, WECOM_PATH, FEISHU_PATH, HOOK_PATH] {
        let at = receiver.at(path);
        assert_eq!(at.len(), 1, "{path}");
        let text = text_of(&at[0]);
        for expected in [
            "【engine】流程 refund 有 10 条记录被搁置 / 10 record(s) parked",
            "字段“物料编码”的值“",
            "另有 5 条 / and 5 more",
            "engine retry mappings/refund.yaml",
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} not in {path}:\n{text}"
            );
        }
        assert_eq!(
            text.matches("\n- `").count(),
            5,
            "five reasons quoted: {text}"
        );
    }
    verify_dingtalk(&receiver.at(DING_PATH)[0]);
    assert_eq!(
        receiver.at(WECOM_PATH)[0].query("key"),
        secrets()["T_WECOM_KEY"]
    );
    assert_eq!(receiver.at(WECOM_PATH)[0].json()["msgtype"], "markdown");
    verify_feishu(&receiver.at(FEISHU_PATH)[0]);
    let hook = &receiver.at(HOOK_PATH)[0];
    verify_webhook(hook);
    let event = hook.json();
    assert_eq!(event["event"], "parked");
    assert_eq!(event["flow"], "refund");
    assert_eq!(event["details"]["count"], 10);
    assert_eq!(event["details"]["reasons"].as_array().unwrap().len(), 5);
    let host = receiver.addr.to_string();
    for channel in ["ding", "wecom", "feishu", "hook"] {
        let line = format!("alert `parked` sent to `{channel}` ({host})");
        assert!(
            output.stderr.contains(&line),
            "{line:?} missing:\n{}",
            output.stderr
        );
    }
    assert_no_secret(&output.stderr);
}

#[test]
fn a_sandbox_run_sends_nothing_unless_asked() {
    let receiver = Receiver::start();
    let workspace = Workspace::with_bundle();
    workspace.write("mappings/alerts.yaml", alerts_yaml(&receiver.root(), ""));
    let output = workspace
        .engine()
        .args(["run", "mappings/refund.yaml", "--sandbox"])
        .envs(&secrets())
        .run()
        .code(1);
    assert!(output.stderr.contains("10 parked"), "{}", output.stderr);
    assert!(!output.stderr.contains("alert `"), "{}", output.stderr);
    assert_eq!(receiver.received().len(), 0);
}

#[test]
fn a_failed_run_sends_the_failure_and_a_flow_stale_for_too_long_says_so() {
    let receiver = Receiver::start();
    let sync = Sync::start(&["--wdt-orders", "10", "--wdt-days", "3"], 4);
    sync.workspace
        .write("mappings/alerts.yaml", alerts_yaml(&receiver.root(), ""));
    let mut env = sync.env();
    env.extend(secrets());
    // A first run that completes, without alerts.
    let first = sync
        .workspace
        .engine()
        .args(["run", "mappings/refund.yaml", "--no-alerts"])
        .envs(&env)
        .run();
    assert!(matches!(first.code, 0 | 1), "{}", first.stderr);
    assert_eq!(receiver.received().len(), 0, "--no-alerts sends nothing");
    // That success was seven hours ago.
    let db = rusqlite::Connection::open(sync.workspace.path("state/state.db")).unwrap();
    let ago = (Utc::now() - Duration::hours(7)).to_rfc3339_opts(SecondsFormat::Nanos, true);
    let changed = db
        .execute("UPDATE runs SET started = ?1, finished = ?1", [&ago])
        .unwrap();
    assert_eq!(changed, 1);
    drop(db);
    let output = sync
        .workspace
        .engine()
        .args(["run", "mappings/refund.yaml"])
        .envs(&env)
        .env("WDT_APP_SECRET", "wrong")
        .run()
        .code(4);
    assert_eq!(
        receiver.received().len(),
        8,
        "failed and stale on four channels"
    );
    for path in [DING_PATH, WECOM_PATH, FEISHU_PATH, HOOK_PATH] {
        let texts: Vec<String> = receiver.at(path).iter().map(text_of).collect();
        assert!(
            texts.iter().any(
                |t| t.contains("【engine】流程 refund 运行失败 / run failed")
                    && (t.contains("Illegal request") || t.contains("Invalid signature"))
            ),
            "{path}: {texts:#?}"
        );
        assert!(
            texts.iter().any(|t| t
                .contains("【engine】流程 refund 已 7h 没有成功运行 / no successful run for 7h")),
            "{path}: {texts:#?}"
        );
    }
    verify_dingtalk(&receiver.at(DING_PATH)[0]);
    verify_feishu(&receiver.at(FEISHU_PATH)[0]);
    let events: Vec<Value> = receiver.at(HOOK_PATH).iter().map(Received::json).collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 2);
    assert!(
        kinds.contains(&"failed") && kinds.contains(&"stale"),
        "{kinds:?}"
    );
    assert!(
        output.stderr.contains("alert `failed` sent to `ding`"),
        "{}",
        output.stderr
    );
    assert!(!output.stderr.contains("wrong"), "{}", output.stderr);
    assert_no_secret(&output.stderr);
}

#[test]
fn a_receiver_that_refuses_or_cannot_be_reached_is_reported_and_the_exit_code_is_unchanged() {
    let receiver = Receiver::start();
    receiver.answer(
        DING_PATH,
        200,
        r#"{"errcode":310000,"errmsg":"keywords not in content"}"#,
    );
    receiver.answer(FEISHU_PATH, 200, r#"{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time"}"#);
    // A port nobody listens on: bound, then released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let gone = format!("  gone:\n    type: webhook\n    url: \"http://{closed}/events\"\n");
    let workspace = Workspace::with_bundle();
    workspace.write("mappings/alerts.yaml", alerts_yaml(&receiver.root(), &gone));
    let output = workspace
        .engine()
        .args(["run", "mappings/refund.yaml", "--sandbox", "--alerts"])
        .envs(&secrets())
        .run()
        .code(1);
    let host = receiver.addr.to_string();
    for line in [
        format!(
            "alert `parked` not sent to `ding` ({host}): errcode 310000: keywords not in content"
        ),
        format!("alert `parked` not sent to `feishu` ({host}): code 19021: sign match fail"),
        format!("alert `parked` not sent to `gone` ({closed}): cannot connect after 3 attempts"),
        format!("alert `parked` sent to `wecom` ({host})"),
        format!("alert `parked` sent to `hook` ({host})"),
    ] {
        assert!(
            output.stderr.contains(&line),
            "{line:?} missing:\n{}",
            output.stderr
        );
    }
    assert!(
        output.stderr.contains(
            "180 read: 180 new, 0 seen before; 170 written, 0 already written, 10 parked"
        )
    );
    // A refusal is an answer: not sent again.
    assert_eq!(receiver.at(DING_PATH).len(), 1);
    assert_no_secret(&output.stderr);
}

#[test]
fn check_reads_the_alerts_file_offline_with_located_errors_and_skipped_channels() {
    let workspace = Workspace::empty();
    workspace.write(
        "alerts.yaml",
        "channels:\n  ding:\n    type: dingtalk\n    url: \"https://oapi.dingtalk.com/robot/send?access_token={{ env.T_DING_TOKEN }}\"\nrules:\n  - events: [parked]\n    channels: [ding]\n",
    );
    workspace
        .engine()
        .args(["check", "alerts.yaml"])
        .run()
        .success()
        .stderr_contains(
            "warning: alert channel `ding` is skipped: environment variable `T_DING_TOKEN` not set",
        )
        .stderr_contains("--> alerts.yaml:4:10");
    workspace
        .engine()
        .args(["check", "alerts.yaml"])
        .env("T_DING_TOKEN", "x")
        .run()
        .success()
        .stderr_contains("checked 1 file: 0 errors, 0 warnings");
    workspace.write(
        "alerts.yaml",
        "channels:\n  ding:\n    type: dingtalk\n    url: \"{{ env.T }}\"\nrules:\n  - events: [parked, stale]\n    channels: [dnig]\n",
    );
    workspace
        .engine()
        .args(["check", "alerts.yaml"])
        .env("T", "x")
        .run()
        .code(3)
        .stderr_contains("error: unknown channel `dnig`\n --> alerts.yaml:7:16")
        .stderr_contains("hint: did you mean `ding`?")
        .stderr_contains("error: the `stale` event needs `stale_after`\n --> alerts.yaml:6:22");
}

#[test]
fn a_broken_alerts_file_stops_the_run_before_it_starts() {
    let workspace = Workspace::with_bundle();
    workspace.edit("mappings/alerts.yaml", "type: wecom", "type: wechat");
    let output = workspace
        .engine()
        .args(["run", "mappings/refund.yaml", "--sandbox", "--alerts"])
        .run()
        .code(3);
    assert!(
        output
            .stderr
            .contains("`wechat` is not a valid value for `channels.ops-wecom.type`"),
        "{}",
        output.stderr
    );
    assert!(
        !output.stderr.contains("read,"),
        "nothing ran: {}",
        output.stderr
    );
}

#[test]
fn a_retry_that_leaves_records_parked_says_so_once_per_channel() {
    let receiver = Receiver::start();
    let sync = Sync::start(&["--wdt-orders", "40", "--wdt-days", "3"], 4);
    sync.workspace
        .write("mappings/alerts.yaml", alerts_yaml(&receiver.root(), ""));
    let mut env = sync.env();
    env.extend(secrets());
    let run = |args: &[&str]| {
        sync.workspace
            .engine()
            .args(args.iter().copied())
            .envs(&env)
            .run()
    };
    run(&["run", "mappings/refund.yaml", "--no-alerts"]).code(1);
    assert_eq!(receiver.received().len(), 0);
    // Master data is unchanged: every parked record is parked again.
    let output = run(&["retry", "mappings/refund.yaml"]).code(1);
    let parked = sync
        .engine(&["failed", "mappings/refund.yaml", "--json"])
        .success();
    let parked: Vec<Value> = serde_json::from_str(&parked.stdout).unwrap();
    assert!(!parked.is_empty());
    assert_eq!(receiver.received().len(), 4, "{}", output.stderr);
    let event = receiver.at(HOOK_PATH)[0].json();
    assert_eq!(event["event"], "parked");
    assert_eq!(event["details"]["count"], parked.len());
    let first_key = parked[0]["key"].as_str().unwrap();
    assert!(
        event["details"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["key"] == first_key),
        "{event:#}"
    );
    assert_no_secret(&output.stderr);
}

#[test]
fn a_run_stopped_on_purpose_pages_nobody() {
    let receiver = Receiver::start();
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "60",
            "--wdt-days",
            "3",
            "--kingdee-latency-per-bill-ms",
            "40",
        ],
        4,
    );
    sync.workspace
        .write("mappings/alerts.yaml", alerts_yaml(&receiver.root(), ""));
    sync.set_batch_size(5);
    let mut env = sync.env();
    env.extend(secrets());
    let child = sync.spawn_run(&env, std::process::Stdio::piped());
    // Stopped once it writes: before, it may not listen for the signal yet.
    sync.wait_until("the run's first bill", |sync| !sync.bills().is_empty());
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    assert_eq!(receiver.received().len(), 0, "{stderr}");
}

#[test]
fn a_receiver_redirecting_elsewhere_gets_nothing_sent_on_and_an_endless_answer_is_cut_short() {
    use crate::support::hostile_http::{Behaviour, Hostile};
    let elsewhere = Hostile::start(Behaviour::answer(200, &[], "{}"));
    let location = elsewhere.url("/stolen");
    let moved = Hostile::start(Behaviour::answer(307, &[("Location", &location)], ""));
    let endless = Hostile::start(Behaviour::Endless);
    let workspace = Workspace::with_bundle();
    workspace.write(
        "mappings/alerts.yaml",
        format!(
            r#"channels:
  moved:
    type: webhook
    url: "{moved}?token={{{{ env.T_DING_TOKEN }}}}"
    secret: "{{{{ env.T_HOOK_SECRET }}}}"
    headers: {{ X-Api-Key: "{{{{ env.T_WECOM_KEY }}}}" }}
  endless:
    type: feishu
    url: "{endless}"
rules:
  - events: [parked]
    channels: [moved, endless]
stale_after: 6h
"#,
            moved = moved.url("/events"),
            endless = endless.url("/open-apis/bot/v2/hook/x"),
        ),
    );
    let output = workspace
        .engine()
        .args(["run", "mappings/refund.yaml", "--sandbox", "--alerts"])
        .envs(&secrets())
        .run()
        .code(1)
        .stderr_contains(&format!(
            "alert `parked` not sent to `moved` ({}): HTTP 307",
            moved.addr
        ))
        // Read up to 64 KiB, then judged: not JSON, quoted from its start.
        .stderr_contains(&format!(
            "alert `parked` not sent to `endless` ({}): the answer is not JSON: `[0,0,0,",
            endless.addr
        ));
    assert_no_secret(&output.stderr);
    assert_eq!(
        elsewhere.connections(),
        0,
        "the alert, its token and headers were sent on: {:?}",
        elsewhere.requests()
    );
    assert_eq!(
        moved.requests().len(),
        1,
        "a redirect is a refusal: not retried"
    );
}

#[test]
fn an_alerts_file_that_is_not_a_regular_file_is_an_error_not_silence() {
    let workspace = Workspace::with_bundle();
    std::fs::remove_file(workspace.path("mappings/alerts.yaml")).unwrap();
    std::os::unix::fs::symlink("/dev/null", workspace.path("mappings/alerts.yaml")).unwrap();
    workspace
        .engine()
        .args(["run", "mappings/refund.yaml", "--sandbox", "--alerts"])
        .run()
        .code(3)
        .stderr_contains("error: `mappings/alerts.yaml` is not a regular file");
}
