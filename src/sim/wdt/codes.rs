//! Every error code and text the WDT sandbox can answer, in one table.
//!
//! Two layers answer errors. The Qimen **gateway** checks method, app key, timestamp, sign and
//! target app key before anything reaches WDT; its codes are TOP's numeric codes (spec §8.3),
//! inferred, not documented for `router/qm`. **WDT** itself (the ERP behind the router, or
//! the `openapi2` endpoint directly) answers integer codes with Chinese texts; through the
//! router they travel as `sub_code`/`sub_message` under gateway code `50`.
//!
//! Provenance of each entry: `2900` and `1012` are seen in WDT documentation or integrator
//! code; the sign-failure convention (`sign-check-failure` / `Illegal request`) is a Qimen
//! convention; everything else is invented (spec §8.3, §8.4 "placeholder codes") and marked
//! so in docs/sandboxes.md. Only this module spells them; nothing else writes a code literal.

use serde::Serialize;

/// A gateway-level (Qimen/TOP) failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GatewayCode {
    /// TOP's numeric code, sent as a string in the `response` envelope and as a number in the
    /// TOP-style `error_response` envelope.
    pub code: u32,
    pub message: &'static str,
    /// `sub_code` in the `response` envelope.
    pub sub_code: &'static str,
    /// `sub_code` in the TOP-style `error_response` envelope (TOP prefixes `isv.`).
    pub top_sub_code: &'static str,
    pub sub_message: &'static str,
}

/// `method` absent. TOP code [I].
pub const MISSING_METHOD: GatewayCode = GatewayCode {
    code: 21,
    message: "Missing method",
    sub_code: "missing-parameter:method",
    top_sub_code: "isv.missing-parameter:method",
    sub_message: "缺少必要参数 method",
};
/// `method` is not `wdt.stockin.order.query.refund`. TOP code [I].
pub const INVALID_METHOD: GatewayCode = GatewayCode {
    code: 22,
    message: "Invalid method",
    sub_code: "invalid-method",
    top_sub_code: "isv.invalid-method",
    sub_message: "不支持的接口方法",
};
/// `sign_method` is not `md5`, `hmac` or `hmac-sha256`. Code per spec §8.3 [I].
pub const INVALID_SIGN_METHOD: GatewayCode = GatewayCode {
    code: 23,
    message: "Invalid sign method",
    sub_code: "invalid-sign-method",
    top_sub_code: "isv.invalid-sign-method",
    sub_message: "签名方法只支持 md5、hmac、hmac-sha256",
};
/// `sign` absent. TOP code [I].
pub const MISSING_SIGNATURE: GatewayCode = GatewayCode {
    code: 24,
    message: "Missing signature",
    sub_code: "missing-parameter:sign",
    top_sub_code: "isv.missing-parameter:sign",
    sub_message: "缺少必要参数 sign",
};
/// The sign does not match. `sign-check-failure` / `Illegal request` is the Qimen convention
/// [C]; code 25 is TOP's [I for the router].
pub const INVALID_SIGNATURE: GatewayCode = GatewayCode {
    code: 25,
    message: "Invalid signature",
    sub_code: "sign-check-failure",
    top_sub_code: "isv.sign-check-failure",
    sub_message: "Illegal request",
};
/// `app_key` absent. TOP code [I].
pub const MISSING_APP_KEY: GatewayCode = GatewayCode {
    code: 28,
    message: "Missing app key",
    sub_code: "missing-parameter:app_key",
    top_sub_code: "isv.missing-parameter:app_key",
    sub_message: "缺少必要参数 app_key",
};
/// `app_key` unknown. TOP code [I].
pub const INVALID_APP_KEY: GatewayCode = GatewayCode {
    code: 29,
    message: "Invalid app key",
    sub_code: "invalid-app-key",
    top_sub_code: "isv.invalid-app-key",
    sub_message: "应用不存在或 app_key 错误",
};
/// `timestamp` absent. TOP code [I].
pub const MISSING_TIMESTAMP: GatewayCode = GatewayCode {
    code: 30,
    message: "Missing timestamp",
    sub_code: "missing-parameter:timestamp",
    top_sub_code: "isv.missing-parameter:timestamp",
    sub_message: "缺少必要参数 timestamp",
};
/// `timestamp` unparseable or outside the allowed skew. TOP code [I].
pub const INVALID_TIMESTAMP: GatewayCode = GatewayCode {
    code: 31,
    message: "Invalid timestamp",
    sub_code: "invalid-timestamp",
    top_sub_code: "isv.invalid-timestamp",
    sub_message: "时间戳错误或与服务器时间相差过大",
};
/// `target_app_key` absent. TOP code [I].
pub const MISSING_TARGET_APP_KEY: GatewayCode = GatewayCode {
    code: 40,
    message: "Missing required arguments: target_app_key",
    sub_code: "missing-parameter:target_app_key",
    top_sub_code: "isv.missing-parameter:target_app_key",
    sub_message: "缺少必要参数 target_app_key",
};
/// `target_app_key` is not WDT's app. TOP code [I].
pub const INVALID_TARGET_APP_KEY: GatewayCode = GatewayCode {
    code: 41,
    message: "Invalid arguments: target_app_key",
    sub_code: "invalid-parameter:target_app_key",
    top_sub_code: "isv.invalid-parameter:target_app_key",
    sub_message: "target_app_key 错误",
};

/// The gateway code under which every WDT (ERP-level) error travels through the router [I].
pub const REMOTE_SERVICE_ERROR: (u32, &str) = (50, "Remote service error");

/// An error answered by WDT itself: `code`/`message` direct, `sub_code`/`sub_message` via Qimen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WdtError {
    pub code: i64,
    pub message: String,
}

impl WdtError {
    fn new(code: i64, message: impl Into<String>) -> WdtError {
        WdtError {
            code,
            message: message.into(),
        }
    }
}

/// Direct mode: a public parameter (`sid`, `appkey`, `timestamp`, `sign`) is missing.
/// Code invented; wording of the official PHP SDK's client-side check [I].
pub fn missing_parameter(name: &str) -> WdtError {
    WdtError::new(100, format!("缺少必要请求参数【 {name} 】"))
}

/// Direct mode: `sid` unknown or `appkey` not of that seller [U, invented].
pub fn invalid_app_key() -> WdtError {
    WdtError::new(101, "卖家账号或接口账号错误")
}

/// Direct mode: sign mismatch [U, invented].
pub fn invalid_sign() -> WdtError {
    WdtError::new(102, "签名错误")
}

/// Direct mode: `timestamp` not a 10-digit number of seconds [U, invented].
pub fn invalid_timestamp_format() -> WdtError {
    WdtError::new(103, "时间戳格式错误")
}

/// Direct mode: `timestamp` more than the allowed skew away from the server clock [U, invented].
pub fn timestamp_expired() -> WdtError {
    WdtError::new(103, "时间戳过期")
}

/// Too many calls for this seller: the code is known from integrators [C-int], the text [I].
pub fn too_frequent() -> WdtError {
    WdtError::new(1012, "调用频繁，请稍后再试")
}

/// Through Qimen: `sid` missing or no such seller [U, invented].
pub fn seller_not_found() -> WdtError {
    WdtError::new(1020, "卖家账号不存在")
}

/// Neither a time range nor an order number was given [C, Y-edition doc].
pub fn range_or_number_required() -> WdtError {
    WdtError::new(2900, "时间范围与入库单号不能全部为空")
}

/// `start_time` or `end_time` is not `yyyy-MM-dd HH:mm:ss` [U, invented].
pub fn invalid_time(name: &str) -> WdtError {
    WdtError::new(2901, format!("{name} 时间格式错误"))
}

/// `end_time` earlier than `start_time` [U, invented].
pub fn end_before_start() -> WdtError {
    WdtError::new(2902, "结束时间不能早于开始时间")
}

/// The window is longer than allowed (30 days by default, [C]); code and text [U, invented].
pub fn window_too_long(max_days: u32) -> WdtError {
    WdtError::new(2903, format!("时间跨度不能超过{max_days}天"))
}

/// `page_size` not an integer in range [U, invented].
pub fn invalid_page_size(max: u32) -> WdtError {
    WdtError::new(2904, format!("page_size 必须是 1 到 {max} 之间的整数"))
}

/// `page_no` not a non-negative integer [U, invented].
pub fn invalid_page_no() -> WdtError {
    WdtError::new(2905, "page_no 必须是大于等于 0 的整数")
}

/// `status` not one of 10, 20, 30, 60, 80 [U, invented].
pub fn invalid_status() -> WdtError {
    WdtError::new(2906, "status 不合法，只能是 10、20、30、60、80 之一")
}

/// Every WDT code this sandbox answers, with its text (`GET /_sim/codes`).
pub fn wdt_table() -> Vec<WdtError> {
    vec![
        missing_parameter("sid"),
        invalid_app_key(),
        invalid_sign(),
        invalid_timestamp_format(),
        timestamp_expired(),
        too_frequent(),
        seller_not_found(),
        range_or_number_required(),
        invalid_time("start_time"),
        end_before_start(),
        window_too_long(30),
        invalid_page_size(100),
        invalid_page_no(),
        invalid_status(),
    ]
}

/// Every gateway code (`GET /_sim/codes`).
pub const GATEWAY_TABLE: &[GatewayCode] = &[
    MISSING_METHOD,
    INVALID_METHOD,
    INVALID_SIGN_METHOD,
    MISSING_SIGNATURE,
    INVALID_SIGNATURE,
    MISSING_APP_KEY,
    INVALID_APP_KEY,
    MISSING_TIMESTAMP,
    INVALID_TIMESTAMP,
    MISSING_TARGET_APP_KEY,
    INVALID_TARGET_APP_KEY,
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn gateway_codes_are_distinct() {
        let codes: HashSet<u32> = GATEWAY_TABLE.iter().map(|entry| entry.code).collect();
        assert_eq!(codes.len(), GATEWAY_TABLE.len());
        assert!(!codes.contains(&REMOTE_SERVICE_ERROR.0));
    }

    #[test]
    fn wdt_codes_never_collide_with_different_meanings() {
        // 103 is shared on purpose (both are "bad timestamp"); nothing else is.
        let mut seen: Vec<i64> = wdt_table().iter().map(|error| error.code).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), wdt_table().len() - 1);
        assert!(wdt_table().iter().all(|error| error.code != 0));
    }
}
