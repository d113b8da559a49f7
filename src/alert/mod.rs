//! Alerts: tell people in their DingTalk, WeCom or Feishu group (or any JSON webhook) when a
//! run failed, parked records, kept reading changing windows, or a flow went stale.
//!
//! Webhooks are declared once, in `alerts.yaml` next to the flows (`raw` mirrors it,
//! `compile` checks it with located errors); `events` decides from a run's end and the run
//! history which events are due, `message` turns each into a bilingual text and each
//! receiver's request body with its signature (`sign`), `send` posts them within a few
//! seconds, and `hook` is the one call `engine run`/`engine retry` make after their summary.
//! Pure except `send` and `hook`. An alert never changes a run's outcome, and no URL or
//! secret is ever printed: reports name the channel and the receiver's host.
//!
//! The receivers' formats, as their documentation (and the SDKs quoting it) describe them:
//! - DingTalk custom robot: `POST https://oapi.dingtalk.com/robot/send?access_token=…` with
//!   `{"msgtype":"markdown","markdown":{"title","text"}}`; with "加签", `timestamp` (ms) and
//!   `sign` = urlEncode(base64(HmacSHA256(key = secret, `timestamp + "\n" + secret`))) in
//!   the query; answer `{"errcode":0,"errmsg":"ok"}`, 310000 for a keyword/sign mismatch
//!   (open.dingtalk.com "自定义机器人安全设置", as quoted by apifox.com/apidoc/docs-site/467052
//!   and cnblogs.com/huawublog/p/12186923.html).
//! - WeCom group robot: `POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…` with
//!   `{"msgtype":"markdown","markdown":{"content"}}` (at most 4096 bytes); answer
//!   `{"errcode":0,"errmsg":"ok"}` (developer.work.weixin.qq.com/document/path/91770, as
//!   quoted by docs.zhuonian.xyz/api/wecom-webhook.html).
//! - Feishu/Lark custom bot: `POST https://open.feishu.cn/open-apis/bot/v2/hook/…` with
//!   `{"msg_type":"text","content":{"text"}}`; with "签名校验", `"timestamp"` (seconds, a
//!   string) and `"sign"` = base64(HmacSHA256(key = `timestamp + "\n" + secret`, message =
//!   empty)) in the body, the reverse of DingTalk's order; answer `{"code":0,…}` (older bots:
//!   `StatusCode: 0`), 19021 for a bad sign (open.feishu.cn/document/client-docs/bot-v3/
//!   add-custom-bot, as quoted by the open-lark crate and blog.csdn.net/zhanglili1993/
//!   article/details/136473704). One Rust crate (openlark-webhook 0.15) keys the HMAC with the
//!   secret instead; the official demo and the other sources do not, and neither do we.
//! - Generic webhook: the event as JSON (`message::event_json`), optional headers, and with a
//!   secret `X-Engine-Timestamp` and `X-Engine-Signature: sha256=<hex HMAC-SHA256(secret,
//!   timestamp + "." + body)>` (documented in `docs/alerts.md`).

pub mod compile;
pub mod events;
pub mod hook;
pub mod message;
pub mod raw;
pub mod send;
pub mod sign;

pub use compile::{Alerts, alerts_schema, load};
pub use hook::Hook;
