//! Mishaps: the wrong answers a real site gives when the server, or something in front of it,
//! misbehaves (spec §1.3, §4.2, §7.7) — an error envelope with a forced MsgCode (1: the session
//! is lost), a plain-text `response_error:` body, an HTML login page (a misconfigured site or
//! proxy), a JSON answer cut short, and `IsSuccess: true` with one saved bill missing from
//! `SuccessEntitys` (the MCP-B issue #8 shape).
//!
//! All of them are inferred **[I]**: nothing documents when they happen. A call meets one at a
//! configured rate (`--kingdee-<mishap>-rate`, drawn from the seeded randomness) or because one
//! was armed for the next calls of its kind (`POST /_sim/faults/next`). This module decides
//! which mishap a call gets and builds the bodies; `service` decides whether the call runs
//! before the mishap answers. Pure: no clock, no IO.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::sim::kingdee::envelope::SESSION_LOST;

/// One kind of wrong answer.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Mishap {
    /// An error envelope with the configured MsgCode; the call is not carried out. Business
    /// calls only (a login answers in its own shape).
    Msgcode,
    /// HTTP 200, `text/plain`, a body starting `response_error:` (what the SDK checks for); the
    /// call is not carried out.
    ResponseError,
    /// HTTP 200, `text/html`, the site's login page; the call is not carried out.
    HtmlLogin,
    /// The real answer cut in half: the call was carried out (a save is saved).
    TruncatedJson,
    /// A save (or Submit/Audit/UnAudit) whose answer leaves one bill out of `SuccessEntitys`,
    /// `IsSuccess` staying true when nothing else failed; every bill is saved (or, armed with
    /// `saved: false`, the left-out bill silently is not). Saves and operations only.
    MissingEntity,
}

impl Mishap {
    /// The outcome name in `/_sim/stats`.
    pub fn outcome_name(self) -> &'static str {
        match self {
            Mishap::Msgcode => "injected_msgcode",
            Mishap::ResponseError => "injected_response_error",
            Mishap::HtmlLogin => "injected_html_login",
            Mishap::TruncatedJson => "injected_truncated_json",
            Mishap::MissingEntity => "injected_missing_entity",
        }
    }

    /// Whether the call runs before the mishap answers, unless armed otherwise.
    fn done_by_default(self) -> bool {
        matches!(self, Mishap::TruncatedJson | Mishap::MissingEntity)
    }

    fn applies_to(self, kind: CallKind) -> bool {
        match self {
            Mishap::Msgcode => kind != CallKind::Login,
            Mishap::MissingEntity => matches!(kind, CallKind::Save | CallKind::Operation),
            _ => true,
        }
    }
}

/// What a call is, for deciding which mishaps can hit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// The login services, `Logout` and `GetDataCenterList`.
    Login,
    /// `Save` and `BatchSave`.
    Save,
    /// `Submit`, `Audit` and `UnAudit`.
    Operation,
    /// Every other business call: queries, `View`, async results.
    Query,
}

/// Which calls an armed mishap waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Calls {
    /// The next calls it applies to, whatever they are.
    #[default]
    Any,
    Login,
    Save,
    /// `Submit`, `Audit` and `UnAudit`.
    Operation,
    Query,
}

impl Calls {
    fn name(self) -> &'static str {
        match self {
            Calls::Any => "any",
            Calls::Login => "login",
            Calls::Save => "save",
            Calls::Operation => "operation",
            Calls::Query => "query",
        }
    }

    fn includes(self, kind: CallKind) -> bool {
        match self {
            Calls::Any => true,
            Calls::Login => kind == CallKind::Login,
            Calls::Save => kind == CallKind::Save,
            Calls::Operation => kind == CallKind::Operation,
            Calls::Query => kind == CallKind::Query,
        }
    }
}

/// The shares of calls that meet each mishap (each 0..=1), and the MsgCode of `msgcode`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rates {
    /// The MsgCode a `msgcode` mishap answers (0–15; 1 = 上下文丢失, the session is lost).
    pub msgcode: u32,
    pub msgcode_rate: f64,
    pub response_error_rate: f64,
    pub html_login_rate: f64,
    pub truncated_json_rate: f64,
    pub missing_entity_rate: f64,
}

impl Default for Rates {
    fn default() -> Rates {
        Rates {
            msgcode: 1,
            msgcode_rate: 0.0,
            response_error_rate: 0.0,
            html_login_rate: 0.0,
            truncated_json_rate: 0.0,
            missing_entity_rate: 0.0,
        }
    }
}

/// The largest documented MsgCode (15, 禁止管理员登录).
pub const MAX_MSGCODE: u32 = 15;

fn check_msgcode(code: u32) -> Result<(), String> {
    if code <= MAX_MSGCODE {
        Ok(())
    } else {
        Err(format!(
            "`msgcode` must be a documented MsgCode (0 to {MAX_MSGCODE}), not `{code}`"
        ))
    }
}

impl Rates {
    fn shares(&self) -> [(Mishap, &'static str, f64); 5] {
        [
            (Mishap::Msgcode, "msgcode_rate", self.msgcode_rate),
            (
                Mishap::ResponseError,
                "response_error_rate",
                self.response_error_rate,
            ),
            (Mishap::HtmlLogin, "html_login_rate", self.html_login_rate),
            (
                Mishap::TruncatedJson,
                "truncated_json_rate",
                self.truncated_json_rate,
            ),
            (
                Mishap::MissingEntity,
                "missing_entity_rate",
                self.missing_entity_rate,
            ),
        ]
    }

    pub fn validate(&self) -> Result<(), String> {
        check_msgcode(self.msgcode)?;
        for (_, name, share) in self.shares() {
            if !(0.0..=1.0).contains(&share) {
                return Err(format!("`{name}` must be between 0 and 1, not `{share}`"));
            }
        }
        Ok(())
    }

    pub fn any(&self) -> bool {
        self.shares().iter().any(|(_, _, share)| *share > 0.0)
    }

    /// The mishap a uniform `draw` in `0..1` picks for a call of `kind`: the shares of the
    /// mishaps that apply are laid end to end, in declaration order.
    pub fn draw(&self, kind: CallKind, draw: f64) -> Option<Mishap> {
        let mut end = 0.0;
        for (mishap, _, share) in self.shares() {
            if !mishap.applies_to(kind) {
                continue;
            }
            end += share;
            if draw < end {
                return Some(mishap);
            }
        }
        None
    }
}

fn one() -> u64 {
    1
}

/// A mishap armed for the next calls of a kind (the body of `POST /_sim/faults/next`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Armed {
    pub mishap: Mishap,
    /// How many calls it hits (default 1).
    #[serde(default = "one")]
    pub calls: u64,
    /// Which calls: `any` (default), `login`, `save`, `operation` (Submit/Audit/UnAudit) or
    /// `query`.
    #[serde(default)]
    pub on: Calls,
    /// The MsgCode of a `msgcode` mishap (default: `--kingdee-msgcode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msgcode: Option<u32>,
    /// For `msgcode`, `response_error` and `html_login`: carry the call out first (a save is
    /// saved, then the answer is lost). Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done: Option<bool>,
    /// For `missing_entity`: whether the bill left out of the answer was saved (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved: Option<bool>,
}

impl Armed {
    pub fn validate(&self) -> Result<(), String> {
        if self.calls == 0 {
            return Err("`calls` must be at least 1".to_string());
        }
        let kinds = [
            CallKind::Login,
            CallKind::Save,
            CallKind::Operation,
            CallKind::Query,
        ];
        if !kinds
            .iter()
            .any(|&kind| self.on.includes(kind) && self.mishap.applies_to(kind))
        {
            return Err(format!(
                "a `{}` mishap never hits `{}` calls",
                self.mishap.outcome_name().trim_start_matches("injected_"),
                self.on.name()
            ));
        }
        match (self.mishap, self.msgcode, self.done, self.saved) {
            (Mishap::Msgcode, Some(code), _, _) => check_msgcode(code)?,
            (_, Some(_), _, _) => return Err("`msgcode` is for the `msgcode` mishap".to_string()),
            _ => {}
        }
        if self.done.is_some() && self.mishap.done_by_default() {
            return Err("`done` is for `msgcode`, `response_error` and `html_login`".to_string());
        }
        if self.saved.is_some() && self.mishap != Mishap::MissingEntity {
            return Err("`saved` is for the `missing_entity` mishap".to_string());
        }
        Ok(())
    }

    /// Whether this armed mishap takes a call of `kind`.
    pub fn fits(&self, kind: CallKind) -> bool {
        self.on.includes(kind) && self.mishap.applies_to(kind)
    }

    pub fn plan(&self, default_msgcode: u32) -> Plan {
        let mut plan = Plan::of(self.mishap, self.msgcode.unwrap_or(default_msgcode));
        plan.done = self.done.unwrap_or(plan.done);
        plan.saved = self.saved.unwrap_or(plan.saved);
        plan
    }
}

/// What one call gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub mishap: Mishap,
    pub msgcode: u32,
    /// Whether the call runs first.
    pub done: bool,
    /// For `missing_entity`: whether the left-out bill is saved.
    pub saved: bool,
}

impl Plan {
    pub fn of(mishap: Mishap, msgcode: u32) -> Plan {
        Plan {
            mishap,
            msgcode,
            done: mishap.done_by_default(),
            saved: true,
        }
    }
}

/// What each MsgCode means (spec §4.1), the message of a forced one.
const MSGCODE_MEANINGS: [&str; 16] = [
    "默认",
    SESSION_LOST,
    "没有权限",
    "操作标识为空",
    "异常",
    "单据标识为空",
    "数据库操作失败",
    "许可错误",
    "参数错误",
    "指定字段/值不存在",
    "未找到对应数据",
    "验证失败",
    "不可操作",
    "网控冲突",
    "调用限制",
    "禁止管理员登录",
];

/// The failure envelope of a forced MsgCode: MsgCode 1 is byte for byte the documented
/// session-lost answer; the others carry the code's meaning as their message.
pub fn msgcode_envelope(code: u32) -> Value {
    let message = MSGCODE_MEANINGS
        .get(code as usize)
        .copied()
        .unwrap_or("异常");
    json!({"Result": {"ResponseStatus": {
        "ErrorCode": 500,
        "IsSuccess": false,
        "Errors": [{"FieldName": null, "Message": message, "DIndex": 0}],
        "SuccessEntitys": [],
        "SuccessMessages": [],
        "MsgCode": code,
    }}})
}

/// The plain-text body of a `response_error` mishap **[I: the text]**.
pub const RESPONSE_ERROR: &str =
    "response_error:服务器处理请求时发生异常，请稍后重试。（engine sim 注入）";

/// The K/3 Cloud HTML5 login page a site answers when a request reaches the web client
/// instead of the WebAPI **[I: the markup]**.
pub fn html_login_page(vdir: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>金蝶云星空 - 登录</title></head>\n\
         <body>\n<form id=\"loginForm\" method=\"post\" action=\"/{vdir}/html5/index.aspx\">\n\
         <input type=\"text\" name=\"UserName\" placeholder=\"用户名\">\n\
         <input type=\"password\" name=\"Password\" placeholder=\"密码\">\n\
         <button type=\"submit\">登录</button>\n</form>\n</body>\n</html>\n"
    )
}

/// The first half of `body`, cut on a character boundary.
pub fn truncate(body: &str) -> String {
    let mut end = body.len() / 2;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    body[..end].to_string()
}

/// Take one entry out of a save answer's `SuccessEntitys`, picked by a uniform `pick` in
/// `0..1`; returns its `DIndex`, or `None` if nothing was saved.
pub fn leave_out_entity(body: &mut Value, pick: f64) -> Option<u64> {
    let entities = body
        .pointer_mut("/Result/ResponseStatus/SuccessEntitys")?
        .as_array_mut()?;
    if entities.is_empty() {
        return None;
    }
    let index = ((pick * entities.len() as f64) as usize).min(entities.len() - 1);
    let removed = entities.remove(index);
    Some(removed.get("DIndex").and_then(Value::as_u64).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_lie_end_to_end_over_the_mishaps_that_apply() {
        let rates = Rates {
            msgcode_rate: 0.1,
            response_error_rate: 0.1,
            missing_entity_rate: 0.2,
            ..Rates::default()
        };
        for (kind, draw, expected) in [
            (CallKind::Save, 0.05, Some(Mishap::Msgcode)),
            (CallKind::Save, 0.15, Some(Mishap::ResponseError)),
            (CallKind::Save, 0.35, Some(Mishap::MissingEntity)),
            (CallKind::Save, 0.45, None),
            // A login skips `msgcode`: its first tenth goes to `response_error`.
            (CallKind::Login, 0.05, Some(Mishap::ResponseError)),
            (CallKind::Login, 0.15, None),
            (CallKind::Query, 0.25, None),
        ] {
            assert_eq!(rates.draw(kind, draw), expected, "{kind:?} {draw}");
        }
        assert!(rates.any());
        assert!(!Rates::default().any());
    }

    #[test]
    fn armed_mishaps_are_checked_against_what_they_can_hit() {
        let armed = |text: &str| serde_json::from_str::<Armed>(text).unwrap().validate();
        assert_eq!(armed(r#"{"mishap":"msgcode","on":"save"}"#), Ok(()));
        for (text, needle) in [
            (
                r#"{"mishap":"msgcode","on":"login"}"#,
                "never hits `login` calls",
            ),
            (r#"{"mishap":"missing_entity","on":"query"}"#, "never hits"),
            (r#"{"mishap":"msgcode","msgcode":16}"#, "0 to 15"),
            (r#"{"mishap":"html_login","msgcode":1}"#, "`msgcode` is for"),
            (
                r#"{"mishap":"truncated_json","done":false}"#,
                "`done` is for",
            ),
            (r#"{"mishap":"html_login","saved":false}"#, "`saved` is for"),
            (r#"{"mishap":"html_login","calls":0}"#, "at least 1"),
        ] {
            let err = armed(text).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
        assert!(serde_json::from_str::<Armed>(r#"{"mishap":"msgcode","cals":2}"#).is_err());
    }

    #[test]
    fn plans_take_the_defaults_unless_armed_otherwise() {
        let armed: Armed =
            serde_json::from_str(r#"{"mishap":"missing_entity","saved":false}"#).unwrap();
        let plan = armed.plan(1);
        assert!(plan.done && !plan.saved);
        let armed: Armed =
            serde_json::from_str(r#"{"mishap":"msgcode","msgcode":4,"done":true}"#).unwrap();
        assert_eq!(armed.plan(1).msgcode, 4);
        assert!(armed.plan(1).done);
        assert!(!Plan::of(Mishap::HtmlLogin, 1).done);
    }

    #[test]
    fn a_forced_msgcode_1_is_the_documented_session_lost_envelope() {
        assert_eq!(
            msgcode_envelope(1),
            crate::sim::kingdee::envelope::session_lost()
        );
        let status = &msgcode_envelope(14)["Result"]["ResponseStatus"];
        assert_eq!(status["MsgCode"], 14);
        assert_eq!(status["Errors"][0]["Message"], "调用限制");
    }

    #[test]
    fn bodies_are_cut_on_character_boundaries_and_entities_left_out() {
        assert_eq!(truncate("{\"a\":\"会话\"}"), "{\"a\":\"");
        assert_eq!(truncate(""), "");
        let mut body = json!({"Result": {"ResponseStatus": {"IsSuccess": true, "SuccessEntitys": [
            {"Id": 1, "Number": "A", "DIndex": 0},
            {"Id": 2, "Number": "B", "DIndex": 1},
        ]}}});
        assert_eq!(leave_out_entity(&mut body, 0.9), Some(1));
        assert_eq!(
            body["Result"]["ResponseStatus"]["SuccessEntitys"],
            json!([{"Id": 1, "Number": "A", "DIndex": 0}])
        );
        assert_eq!(body["Result"]["ResponseStatus"]["IsSuccess"], true);
        let mut empty = json!({"Result": {"ResponseStatus": {"SuccessEntitys": []}}});
        assert_eq!(leave_out_entity(&mut empty, 0.5), None);
        assert!(html_login_page("k3cloud").contains("action=\"/k3cloud/html5/index.aspx\""));
        assert!(RESPONSE_ERROR.starts_with("response_error:"));
    }
}
