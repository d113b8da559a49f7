use chrono::TimeZone;
use serde_json::json;

use super::*;

fn alert(event: Event) -> Alert {
    Alert {
        flow: "refund".into(),
        flow_file: "mappings/refund.yaml".into(),
        at: Utc.with_ymd_and_hms(2026, 12, 5, 8, 0, 0).unwrap(),
        event,
    }
}

fn parked() -> Alert {
    alert(Event::Parked {
        count: 7,
        reasons: vec![
            ("RK001".into(), "customer `C9` is not in Kingdee".into()),
            ("RK002".into(), "material `M1` is forbidden".into()),
        ],
    })
}

fn channel(kind: ChannelKind, url: &str, secret: Option<&str>) -> Resolved {
    Resolved {
        kind,
        url: reqwest::Url::parse(url).unwrap(),
        secret: secret.map(Secret::new),
        headers: vec![("X-Team".into(), "finance".into())],
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2023, 11, 14, 22, 13, 20).unwrap() // 1700000000
}

#[test]
fn messages_are_bilingual_with_counts_and_reasons() {
    for (event, title, lines) in [
        (
            Event::Failed {
                error: "cannot reach `KINGDEE_URL`".into(),
            },
            "【engine】流程 refund 运行失败 / run failed",
            vec!["错误 / error: cannot reach `KINGDEE_URL`"],
        ),
        (
            parked().event,
            "【engine】流程 refund 有 7 条记录被搁置 / 7 record(s) parked",
            vec![
                "- `RK001`: customer `C9` is not in Kingdee",
                "- `RK002`: material `M1` is forbidden",
                "- 另有 5 条 / and 5 more",
                "`engine retry mappings/refund.yaml`",
            ],
        ),
        (
            Event::Unsettled { windows: 2 },
            "【engine】流程 refund 有 2 个时间窗口仍在变化 / 2 window(s) kept changing",
            vec![],
        ),
        (
            Event::Stale {
                since: Utc.with_ymd_and_hms(2026, 12, 4, 23, 0, 0).unwrap(),
                succeeded_before: true,
                after: Duration::hours(6),
            },
            "【engine】流程 refund 已 9h 没有成功运行 / no successful run for 9h",
            vec![
                "上次成功 / last success: 2026-12-05 07:00:00",
                "阈值 / stale_after: 6h",
            ],
        ),
    ] {
        let message = message(&alert(event));
        assert_eq!(message.title, title);
        assert!(
            message.text.starts_with(&format!("### {title}\n\n")),
            "{}",
            message.text
        );
        assert!(
            message.text.contains("时间 / at: 2026-12-05 16:00:00"),
            "{}",
            message.text
        );
        for line in lines {
            assert!(message.text.contains(line), "{line:?} in {}", message.text);
        }
    }
}

#[test]
fn a_long_text_is_cut_to_fit_wecom() {
    let reasons = (0..40)
        .map(|i| (format!("K{i}"), "很长的原因".repeat(40)))
        .collect();
    let message = message(&alert(Event::Parked { count: 40, reasons }));
    assert!(message.text.len() <= MAX_TEXT_BYTES + '…'.len_utf8());
}

#[test]
fn each_receiver_gets_its_own_shape_and_signature() {
    let alert = parked();
    let text = message(&alert).text;
    let title = message(&alert).title;

    let ding = outgoing(
        &channel(
            ChannelKind::Dingtalk,
            "https://oapi.dingtalk.com/robot/send?access_token=T",
            Some("SECabc"),
        ),
        &alert,
        now(),
    );
    let expected_sign = sign::dingtalk("SECabc", 1_700_000_000_000);
    let query: Vec<(String, String)> = ding.url.query_pairs().into_owned().collect();
    assert_eq!(
        query,
        vec![
            ("access_token".into(), "T".into()),
            ("timestamp".into(), "1700000000000".into()),
            ("sign".into(), expected_sign.clone()),
        ]
    );
    // Base64's `+`, `/` and `=` are percent-encoded in the query, as DingTalk asks.
    let encoded =
        percent_encoding::utf8_percent_encode(&expected_sign, percent_encoding::NON_ALPHANUMERIC);
    assert!(
        ding.url
            .query()
            .unwrap()
            .ends_with(&format!("&sign={encoded}")),
        "{}",
        ding.url
    );
    let body: Json = serde_json::from_slice(&ding.body).unwrap();
    assert_eq!(
        body,
        json!({"msgtype": "markdown", "markdown": {"title": title, "text": text}})
    );

    let wecom = outgoing(
        &channel(
            ChannelKind::Wecom,
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K",
            None,
        ),
        &alert,
        now(),
    );
    assert_eq!(
        wecom.url.as_str(),
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K"
    );
    let body: Json = serde_json::from_slice(&wecom.body).unwrap();
    assert_eq!(
        body,
        json!({"msgtype": "markdown", "markdown": {"content": text}})
    );

    let feishu = outgoing(
        &channel(
            ChannelKind::Feishu,
            "https://open.feishu.cn/open-apis/bot/v2/hook/H",
            Some("fs"),
        ),
        &alert,
        now(),
    );
    let body: Json = serde_json::from_slice(&feishu.body).unwrap();
    assert_eq!(body["msg_type"], "text");
    assert_eq!(body["timestamp"], "1700000000");
    assert_eq!(body["sign"], sign::feishu("fs", 1_700_000_000));
    assert!(
        body["content"]["text"]
            .as_str()
            .unwrap()
            .starts_with("【engine】")
    );

    let hook = outgoing(
        &channel(ChannelKind::Webhook, "https://example.com/hook", Some("k")),
        &alert,
        now(),
    );
    let body: Json = serde_json::from_slice(&hook.body).unwrap();
    assert_eq!(body["event"], "parked");
    assert_eq!(body["details"]["count"], 7);
    assert_eq!(
        body["details"]["reasons"][0],
        json!({"key": "RK001", "reason": "customer `C9` is not in Kingdee"})
    );
    let header = |name: &str| {
        hook.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("X-Team").as_deref(), Some("finance"));
    assert_eq!(header("X-Engine-Timestamp").as_deref(), Some("1700000000"));
    assert_eq!(
        header("X-Engine-Signature"),
        Some(sign::webhook("k", 1_700_000_000, &hook.body))
    );
}

#[test]
fn unsigned_channels_carry_no_signature() {
    let alert = parked();
    let ding = outgoing(
        &channel(
            ChannelKind::Dingtalk,
            "https://oapi.dingtalk.com/robot/send?access_token=T",
            None,
        ),
        &alert,
        now(),
    );
    assert_eq!(ding.url.query(), Some("access_token=T"));
    let feishu = outgoing(
        &channel(
            ChannelKind::Feishu,
            "https://open.feishu.cn/open-apis/bot/v2/hook/H",
            None,
        ),
        &alert,
        now(),
    );
    let body: Json = serde_json::from_slice(&feishu.body).unwrap();
    assert!(body.get("sign").is_none() && body.get("timestamp").is_none());
}

#[test]
fn answers_are_classified() {
    use ChannelKind::{Dingtalk, Feishu, Webhook, Wecom};
    for (kind, status, body, expected) in [
        (
            Dingtalk,
            200,
            r#"{"errcode":0,"errmsg":"ok"}"#,
            Answer::Delivered,
        ),
        (
            Dingtalk,
            200,
            r#"{"errcode":310000,"errmsg":"keywords not in content"}"#,
            Answer::Refused("errcode 310000: keywords not in content".into()),
        ),
        (
            Wecom,
            200,
            r#"{"errcode":0,"errmsg":"ok"}"#,
            Answer::Delivered,
        ),
        (
            Wecom,
            200,
            r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#,
            Answer::Refused("errcode 93000: invalid webhook url".into()),
        ),
        (
            Feishu,
            200,
            r#"{"code":0,"msg":"success","data":{}}"#,
            Answer::Delivered,
        ),
        (
            Feishu,
            200,
            r#"{"StatusCode":0,"StatusMessage":"success"}"#,
            Answer::Delivered,
        ),
        (
            Feishu,
            200,
            r#"{"code":19021,"msg":"sign match fail"}"#,
            Answer::Refused("code 19021: sign match fail".into()),
        ),
        (
            Dingtalk,
            200,
            "<html>",
            Answer::Refused("the answer is not JSON: `<html>`".into()),
        ),
        (
            Dingtalk,
            200,
            r#"{"ok":true}"#,
            Answer::Refused("the answer has no `errcode`: `{\"ok\":true}`".into()),
        ),
        (Webhook, 204, "", Answer::Delivered),
        (Webhook, 404, "", Answer::Refused("HTTP 404".into())),
        (Wecom, 503, "", Answer::Retry("HTTP 503".into())),
        (Feishu, 429, "", Answer::Retry("HTTP 429".into())),
    ] {
        assert_eq!(
            classify(kind, status, body.as_bytes()),
            expected,
            "{kind:?} {status} {body}"
        );
    }
}
