//! The JSON bodies the sandbox answers (spec §2.6, §3.4, §8.3, §8.7).
//!
//! Through the Qimen router a success is `{"response":{"errorcode":0,…}}` without `flag`; a
//! failure is `{"response":{"flag":"failure","code":…,"sub_code":…}}`, or, behind a switch,
//! TOP's `{"error_response":{…}}` for gateway-level failures. The direct `openapi2` endpoint
//! answers `{"code":0,…}` or `{"code":N,"message":…}`. Pure functions from outcome to JSON.

use serde_json::{Map, Value, json};

use crate::sim::wdt::codes::{GatewayCode, REMOTE_SERVICE_ERROR, WdtError};
use crate::sim::wdt::query::Page;

/// The business part of a success, shared by both APIs: `message`, `total_count` (when asked
/// for) and `stockin_list`.
fn success_fields(page: &Page, with_total: bool) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("message".to_string(), json!(""));
    if with_total {
        fields.insert("total_count".to_string(), json!(page.total));
    }
    let rows: Vec<Value> = page
        .rows
        .iter()
        .map(|order| serde_json::to_value(order).expect("an order always serialises"))
        .collect();
    fields.insert("stockin_list".to_string(), Value::Array(rows));
    fields
}

/// `{"response":{"errorcode":0,"message":"","total_count":N,"stockin_list":[…]}}`.
pub fn qimen_success(page: &Page, with_total: bool) -> Value {
    let mut response = Map::new();
    response.insert("errorcode".to_string(), json!(0));
    response.extend(success_fields(page, with_total));
    json!({ "response": response })
}

/// A gateway-level failure, in the `response` shape or TOP's `error_response` shape.
pub fn qimen_gateway_failure(code: &GatewayCode, request_id: &str, top_style: bool) -> Value {
    if top_style {
        json!({"error_response": {
            "code": code.code,
            "msg": code.message,
            "sub_code": code.top_sub_code,
            "sub_msg": code.sub_message,
            "request_id": request_id,
        }})
    } else {
        failure(
            &code.code.to_string(),
            code.message,
            code.sub_code,
            code.sub_message,
            request_id,
        )
    }
}

/// A WDT-level failure through the router: code 50 and WDT's code and text underneath.
pub fn qimen_wdt_failure(error: &WdtError, request_id: &str) -> Value {
    failure(
        &REMOTE_SERVICE_ERROR.0.to_string(),
        REMOTE_SERVICE_ERROR.1,
        &error.code.to_string(),
        &error.message,
        request_id,
    )
}

fn failure(
    code: &str,
    message: &str,
    sub_code: &str,
    sub_message: &str,
    request_id: &str,
) -> Value {
    json!({"response": {
        "flag": "failure",
        "code": code,
        "message": message,
        "sub_code": sub_code,
        "sub_message": sub_message,
        "request_id": request_id,
    }})
}

/// `{"code":0,"message":"","total_count":N,"stockin_list":[…]}`.
pub fn direct_success(page: &Page, with_total: bool) -> Value {
    let mut body = Map::new();
    body.insert("code".to_string(), json!(0));
    body.extend(success_fields(page, with_total));
    Value::Object(body)
}

/// `{"code":N,"message":"…"}`.
pub fn direct_failure(error: &WdtError) -> Value {
    json!({"code": error.code, "message": error.message})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::wdt::codes;
    use crate::sim::wdt::data::Order;

    #[test]
    fn the_sign_failure_envelope_is_exactly_the_specs() {
        assert_eq!(
            qimen_gateway_failure(&codes::INVALID_SIGNATURE, "sim-0001", false).to_string(),
            r#"{"response":{"flag":"failure","code":"25","message":"Invalid signature","sub_code":"sign-check-failure","sub_message":"Illegal request","request_id":"sim-0001"}}"#
        );
        assert_eq!(
            qimen_gateway_failure(&codes::INVALID_SIGNATURE, "sim-0001", true).to_string(),
            r#"{"error_response":{"code":25,"msg":"Invalid signature","sub_code":"isv.sign-check-failure","sub_msg":"Illegal request","request_id":"sim-0001"}}"#
        );
    }

    #[test]
    fn wdt_failures_travel_under_code_50() {
        assert_eq!(
            qimen_wdt_failure(&codes::range_or_number_required(), "sim-0002").to_string(),
            r#"{"response":{"flag":"failure","code":"50","message":"Remote service error","sub_code":"2900","sub_message":"时间范围与入库单号不能全部为空","request_id":"sim-0002"}}"#
        );
        assert_eq!(
            direct_failure(&codes::too_frequent()).to_string(),
            r#"{"code":1012,"message":"调用频繁，请稍后再试"}"#
        );
    }

    #[test]
    fn successes_carry_total_count_only_when_asked() {
        let order = Order {
            order_no: "RK1".to_string(),
            ..Order::default()
        };
        let page = Page {
            total: 3,
            offset: 0,
            rows: vec![&order],
        };
        let first = qimen_success(&page, true);
        assert_eq!(first["response"]["errorcode"], 0);
        assert_eq!(first["response"]["message"], "");
        assert_eq!(first["response"]["total_count"], 3);
        assert_eq!(first["response"]["stockin_list"][0]["order_no"], "RK1");
        assert!(first["response"].get("flag").is_none());
        let later = qimen_success(&page, false);
        assert!(later["response"].get("total_count").is_none());
        let direct = direct_success(
            &Page {
                rows: vec![],
                ..page
            },
            true,
        );
        assert_eq!(
            direct.to_string(),
            r#"{"code":0,"message":"","total_count":3,"stockin_list":[]}"#
        );
    }
}
