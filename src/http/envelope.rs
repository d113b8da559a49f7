//! What a response means, according to the connector's `envelope` expressions.
//!
//! The expressions are lenient (a missing key is undefined, not an error) and see `body`
//! (the parsed JSON, exposed lazily without copying), `status` and `headers` (names in
//! lowercase). Session loss is checked
//! first, because some APIs answer it inside an otherwise ordinary error envelope (Kingdee's
//! MsgCode 1). Pure.

use std::sync::Arc;

use minijinja::Value;
use serde_json::Value as Json;

use crate::config::model::Envelope;
use crate::template::TemplateSet;
use crate::template::scope::{Misses, RecordNode, Scope};

/// The meaning of one response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Success,
    /// The session is gone: log in again and repeat (the call was not processed).
    Reauth {
        message: String,
    },
    /// A transient refusal (a conflict, a busy server): repeat after a backoff.
    Retryable {
        code: Option<String>,
        message: String,
    },
    /// Called too often: every call waits out the API's rate-limit period, then repeats.
    Throttled {
        code: Option<String>,
        message: String,
    },
    /// The call as a whole was refused for a reason no record could fix: stop.
    Fatal {
        code: Option<String>,
        message: String,
    },
    /// A definite failure.
    Failed {
        code: Option<String>,
        message: String,
    },
}

/// What response expressions (envelopes, `has_more`) see: `body`, `status` and `headers`.
pub fn response_scope(status: u16, headers: &[(String, String)], body: &Arc<Json>) -> Value {
    let body_value = Value::from_object(RecordNode::new(
        Arc::clone(body),
        Arc::new(Misses::default()),
    ));
    // A header sent several times reads as its values joined by commas (RFC 9110).
    let mut joined = std::collections::BTreeMap::<&str, String>::new();
    for (name, value) in headers {
        joined
            .entry(name.as_str())
            .and_modify(|all| {
                all.push_str(", ");
                all.push_str(value);
            })
            .or_insert_with(|| value.clone());
    }
    Value::from_object(Scope::named(vec![
        (Arc::from("body"), body_value),
        (Arc::from("status"), Value::from(status)),
        (Arc::from("headers"), Value::from_pairs(joined)),
    ]))
}

/// Classify `body` (already parsed) answered with HTTP `status` and `headers`.
pub fn classify(
    envelope: &Envelope,
    templates: &TemplateSet,
    status: u16,
    headers: &[(String, String)],
    body: &Arc<Json>,
) -> Verdict {
    let ctx = response_scope(status, headers, body);
    let holds = |id| templates.eval(id, &ctx).is_ok_and(|v| v.is_true());
    let text = |id| {
        templates
            .eval(id, &ctx)
            .ok()
            .filter(|v| !v.is_undefined() && !v.is_none())
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .filter(|s| !s.trim().is_empty())
    };
    let message = || {
        text(envelope.message)
            .unwrap_or_else(|| "the API reported a failure without a message".to_string())
    };
    if envelope.reauth.is_some_and(holds) {
        return Verdict::Reauth { message: message() };
    }
    if holds(envelope.success) {
        return Verdict::Success;
    }
    let code = envelope.code.and_then(text);
    if envelope.fatal.is_some_and(holds) {
        return Verdict::Fatal {
            code,
            message: message(),
        };
    }
    if envelope.throttled.is_some_and(holds) {
        return Verdict::Throttled {
            code,
            message: message(),
        };
    }
    if envelope.retryable.is_some_and(holds) {
        return Verdict::Retryable {
            code,
            message: message(),
        };
    }
    Verdict::Failed {
        code,
        message: message(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;
    use crate::config::{self, StandaloneConnector};

    fn connector(name: &str) -> StandaloneConnector {
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("mappings/connectors")
            .join(format!("{name}.yaml"));
        config::load_connector(&file)
            .value
            .expect("the bundled connector compiles")
    }

    fn verdict(connector: &StandaloneConnector, operation: &str, body: Json) -> Verdict {
        let envelope = connector.connector.operations[operation]
            .envelope
            .as_ref()
            .unwrap();
        classify(envelope, &connector.envelopes, 200, &[], &Arc::new(body))
    }

    #[test]
    fn response_expressions_read_status_headers_and_body() {
        let mut builder = crate::template::Builder::new(
            minijinja::UndefinedBehavior::Lenient,
            Arc::new(crate::value_map::ValueMaps::new()),
        );
        let mut compile = |text: &str| {
            let origin = crate::template::Origin {
                location: crate::error::Location::new("test.yaml", 1, 1, 1),
                path: crate::config::yaml::YamlPath::root(),
            };
            builder.expression(text, origin).unwrap()
        };
        let cases = [
            compile("headers['x-has-more'] == 'true'"),
            compile("status == 206 and body.more"),
            compile("headers.link is defined and 'rel=\"next\"' in headers.link"),
        ];
        let set = builder.build();
        let headers = vec![
            ("x-has-more".to_string(), "true".to_string()),
            ("link".to_string(), "</a?p=2>; rel=\"next\"".to_string()),
            ("link".to_string(), "</a?p=9>; rel=\"last\"".to_string()),
        ];
        let scope = response_scope(206, &headers, &Arc::new(json!({"more": true})));
        for id in cases {
            assert!(set.eval(id, &scope).unwrap().is_true());
        }
        let scope = response_scope(200, &[], &Arc::new(json!({})));
        for id in cases {
            assert!(!set.eval(id, &scope).unwrap().is_true());
        }
    }

    #[test]
    fn wdt_qimen_envelopes() {
        let wdt = connector("wdt_qimen");
        let op = "stockin_refund_query";
        let cases = [
            (
                json!({"response": {"errorcode": 0, "message": "", "total_count": 0, "stockin_list": []}}),
                Verdict::Success,
            ),
            (
                json!({"response": {"code": "0", "stockin_list": []}}),
                Verdict::Success,
            ),
            (
                json!({"response": {"flag": "failure", "code": "25", "message": "Invalid signature", "sub_code": "sign-check-failure", "sub_message": "Illegal request"}}),
                Verdict::Failed {
                    code: Some("sign-check-failure".into()),
                    message: "Illegal request".into(),
                },
            ),
            (
                json!({"response": {"flag": "success", "total_count": 0, "stockin_list": []}}),
                Verdict::Success,
            ),
            (
                // No status at all is no success: the records might simply be missing.
                json!({"response": {"message": "系统繁忙"}}),
                Verdict::Failed {
                    code: None,
                    message: "系统繁忙".into(),
                },
            ),
            (
                json!({"response": {"flag": "failure", "code": "50", "message": "Remote service error", "sub_code": "1012", "sub_message": "调用频繁，请稍后再试"}}),
                Verdict::Throttled {
                    code: Some("1012".into()),
                    message: "调用频繁，请稍后再试".into(),
                },
            ),
            (
                json!({"response": {"errorcode": 1012, "message": "系统调用频繁"}}),
                Verdict::Throttled {
                    code: Some("1012".into()),
                    message: "系统调用频繁".into(),
                },
            ),
            (
                json!({"error_response": {"code": 50, "msg": "Remote service error", "sub_code": 1012, "sub_msg": "调用频繁"}}),
                Verdict::Throttled {
                    code: Some("1012".into()),
                    message: "调用频繁".into(),
                },
            ),
            (
                json!({"response": {"flag": "failure", "code": "50", "message": "Remote service error", "sub_code": "2900", "sub_message": "时间范围与入库单号不能全部为空"}}),
                Verdict::Failed {
                    code: Some("2900".into()),
                    message: "时间范围与入库单号不能全部为空".into(),
                },
            ),
            (
                json!({"error_response": {"code": 25, "msg": "Invalid signature", "sub_code": "isv.sign-check-failure", "sub_msg": "Illegal request"}}),
                Verdict::Failed {
                    code: Some("isv.sign-check-failure".into()),
                    message: "Illegal request".into(),
                },
            ),
            (
                json!({"response": {"errorcode": 1, "message": "x"}}),
                Verdict::Failed {
                    code: Some("1".into()),
                    message: "x".into(),
                },
            ),
            (
                json!("<html>busy</html>"),
                Verdict::Failed {
                    code: None,
                    message: "unexpected response".into(),
                },
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(verdict(&wdt, op, body.clone()), expected, "{body}");
        }
    }

    #[test]
    fn kingdee_envelopes() {
        let kingdee = connector("kingdee_k3cloud");
        let lost = json!({"Result": {"ResponseStatus": {"ErrorCode": 500, "IsSuccess": false, "Errors": [{"FieldName": null, "Message": "会话信息已丢失，请重新登录", "DIndex": 0}], "SuccessEntitys": [], "SuccessMessages": [], "MsgCode": 1}}});
        let cases = [
            (
                json!({"Result": {"ResponseStatus": {"IsSuccess": true, "Errors": [], "SuccessEntitys": [{"Id": 1, "Number": "RK1", "DIndex": 0}], "MsgCode": 0}}}),
                Verdict::Success,
            ),
            (
                json!({"Result": {"ResponseStatus": {"IsSuccess": "true"}}}),
                Verdict::Success,
            ),
            (
                lost.clone(),
                Verdict::Reauth {
                    message: "会话信息已丢失，请重新登录".into(),
                },
            ),
            (
                json!({"Result": {"ResponseStatus": {"IsSuccess": false, "MsgCode": 13, "Errors": [{"Message": "冲突，请稍候再使用。", "DIndex": 0}]}}}),
                Verdict::Retryable {
                    code: Some("13".into()),
                    message: "冲突，请稍候再使用。".into(),
                },
            ),
            (
                json!({"Result": {"ResponseStatus": {"IsSuccess": false, "MsgCode": 11, "Errors": [{"Message": "a", "DIndex": 0}, {"Message": "b", "DIndex": 1}]}}}),
                Verdict::Failed {
                    code: Some("11".into()),
                    message: "a; b".into(),
                },
            ),
            (
                json!({"Result": {"ResponseStatus": {"IsSuccess": false, "MsgCode": 11, "Errors": [{"FieldName": null, "Message": "当前用户未指定允许调用WebAPI接口", "DIndex": 0}]}}}),
                Verdict::Fatal {
                    code: Some("11".into()),
                    message: "当前用户未指定允许调用WebAPI接口".into(),
                },
            ),
            (
                json!({"Result": {"ResponseStatus": {"IsSuccess": false, "MsgCode": 7, "Errors": [{"Message": "许可错误", "DIndex": 0}]}}}),
                Verdict::Fatal {
                    code: Some("7".into()),
                    message: "许可错误".into(),
                },
            ),
            (
                // Some bills were saved: not a refusal of the call, whatever the code says.
                json!({"Result": {"ResponseStatus": {"IsSuccess": false, "MsgCode": 8, "Errors": [{"Message": "参数错误", "DIndex": 1}], "SuccessEntitys": [{"Id": 1, "Number": "RK1", "DIndex": 0}]}}}),
                Verdict::Failed {
                    code: Some("8".into()),
                    message: "参数错误".into(),
                },
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(
                verdict(&kingdee, "batch_save", body.clone()),
                expected,
                "{body}"
            );
        }
        let query = [
            (json!([[100001, "RK1"], [100002, "RK2"]]), Verdict::Success),
            (json!([]), Verdict::Success),
            (
                json!([[lost]]),
                Verdict::Reauth {
                    message: "会话信息已丢失，请重新登录".into(),
                },
            ),
            (
                json!([[{"Result": {"ResponseStatus": {"ErrorCode": 500, "IsSuccess": false, "Errors": [{"Message": "元数据中标识为FX的字段不存在", "DIndex": 0}], "MsgCode": 9}}}]]),
                Verdict::Failed {
                    code: Some("9".into()),
                    message: "元数据中标识为FX的字段不存在".into(),
                },
            ),
            (
                json!([[{"Result": {"ResponseStatus": {"ErrorCode": 500, "IsSuccess": false, "Errors": [{"Message": "当前用户未指定允许调用WebAPI接口", "DIndex": 0}], "MsgCode": 11}}}]]),
                Verdict::Fatal {
                    code: Some("11".into()),
                    message: "当前用户未指定允许调用WebAPI接口".into(),
                },
            ),
            (
                // An error wrapped once, or bare, is still an error, never "no rows".
                json!([{"Result": {"ResponseStatus": {"IsSuccess": false, "Errors": [{"Message": "元数据中标识为FX的字段不存在"}], "MsgCode": 9}}}]),
                Verdict::Failed {
                    code: Some("9".into()),
                    message: "元数据中标识为FX的字段不存在".into(),
                },
            ),
            (
                json!({"Result": {"ResponseStatus": {"IsSuccess": false, "Errors": [{"Message": "GetRealExpress error"}], "MsgCode": 4}}}),
                Verdict::Failed {
                    code: Some("4".into()),
                    message: "GetRealExpress error".into(),
                },
            ),
            (
                json!({"ResponseStatus": {"IsSuccess": false, "Errors": [{"Message": "会话信息已丢失"}], "MsgCode": 4}}),
                Verdict::Failed {
                    code: Some("4".into()),
                    message: "会话信息已丢失".into(),
                },
            ),
            (
                json!([{"FID": 100001, "FBillNo": "RK1"}]),
                Verdict::Failed {
                    code: None,
                    message: "unexpected response".into(),
                },
            ),
        ];
        for (body, expected) in query {
            assert_eq!(
                verdict(&kingdee, "bill_query", body.clone()),
                expected,
                "{body}"
            );
        }
    }
}
