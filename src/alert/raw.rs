//! The raw types of the alerts file (`mappings/alerts.yaml`): a faithful mirror of the YAML.
//!
//! Like `config::raw`, every struct denies unknown keys and documents every field; the JSON
//! Schema `schemas/alerts.schema.json` is generated from these types (`engine schema alerts`).
//! Nothing here validates beyond shape: `alert::compile` checks names, templates and spans.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where alerts go and when: webhooks declared once, for every flow of the folder.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "engine alerts")]
pub struct RawAlerts {
    /// The webhooks alerts can go to, by name (the name is what logs and rules use).
    #[serde(default)]
    pub channels: BTreeMap<String, RawChannel>,
    /// Which events go to which channels. An event no rule names is not sent.
    #[serde(default)]
    pub rules: Vec<RawRule>,
    /// A flow whose last successful run is older than this is stale (`6h`, `1d`, `90m`): the
    /// `stale` event is sent once when it crosses the line, then again each further span.
    #[serde(default)]
    pub stale_after: Option<String>,
    /// How many parked records' reasons a `parked` message quotes (default 5); the count is
    /// always the whole count.
    #[serde(default)]
    pub max_reasons: Option<usize>,
}

/// One webhook.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawChannel {
    /// What kind of receiver it is: the message shape, signature and answer follow from it.
    #[serde(rename = "type")]
    pub kind: ChannelKind,
    /// The webhook URL, with its token: write it `{{ env.NAME }}` (or with the token part only
    /// from the environment), never literally. A channel whose variables are unset is skipped.
    pub url: String,
    /// Signing secret: DingTalk's "加签" secret (`SEC…`), Feishu's "签名校验" secret, or the
    /// HMAC-SHA256 key of a generic webhook. `{{ env.NAME }}`. WeCom robots have none.
    #[serde(default)]
    pub secret: Option<String>,
    /// Extra HTTP headers (generic webhooks only); values may be `{{ env.NAME }}` templates.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Send to this channel (default `true`); `false` keeps it declared but silent.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// The kinds of receivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// DingTalk custom robot (钉钉自定义机器人): markdown message, optional "加签" signature.
    Dingtalk,
    /// WeCom group robot (企业微信群机器人): markdown message.
    Wecom,
    /// Feishu/Lark custom bot (飞书自定义机器人): text message, optional signature.
    Feishu,
    /// Any HTTP endpoint: the event as JSON, optional HMAC-SHA256 signature header.
    Webhook,
}

/// Which events go where.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Events this rule sends.
    pub events: Vec<EventKind>,
    /// Channel names (keys of `channels`).
    pub channels: Vec<String>,
    /// Flow names the rule applies to. Default: every flow.
    #[serde(default)]
    pub flows: Option<Vec<String>>,
}

/// The events a run can raise.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// The run stopped (exit code 4): credentials refused, an API unreachable, …
    Failed,
    /// Records were parked in the run (one message per run, with the count and first reasons).
    Parked,
    /// Windows kept changing while they were read; the cursor stays before them.
    Unsettled,
    /// The flow has not run successfully for longer than `stale_after`.
    Stale,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Failed => "failed",
            EventKind::Parked => "parked",
            EventKind::Unsettled => "unsettled",
            EventKind::Stale => "stale",
        }
    }
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Dingtalk => "dingtalk",
            ChannelKind::Wecom => "wecom",
            ChannelKind::Feishu => "feishu",
            ChannelKind::Webhook => "webhook",
        }
    }
}
