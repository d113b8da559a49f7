//! What the sandbox saw: request counts by outcome (`GET /_sim/stats`) and a bounded log of
//! the API requests it answered (`GET /_sim/requests`), so a test can assert how a client
//! behaved — how many pages it fetched, in which order, whether it retried.

use std::collections::VecDeque;

use serde::Serialize;

use crate::sim::wdt::codes::GatewayCode;
use crate::sim::wdt::params::Params;

/// Which API a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// `/router/qm`.
    Qimen,
    /// `/openapi2/stockin_order_query_refund.php`.
    Openapi2,
    /// `/openapi2/his_stockin_order_query_refund.php`, the archived orders.
    Openapi2History,
}

/// How a request ended; one counter each in [`Stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A success envelope.
    Ok,
    /// Missing or wrong `method` (Qimen 21/22).
    Method,
    /// Missing or unknown `app_key` (Qimen 28/29).
    AppKey,
    /// Missing, unreadable or skewed `timestamp` (Qimen 30/31, direct 103).
    Timestamp,
    /// Missing sign, unknown sign method or wrong sign (Qimen 23/24/25, direct 102).
    Sign,
    /// Missing or wrong `target_app_key` (Qimen 40/41).
    TargetAppKey,
    /// Unknown seller or app key (Qimen 1020, direct 101).
    Account,
    /// A required public parameter is missing (direct 100).
    MissingParameter,
    /// Refused by the per-`sid` limiter (`1012`).
    RateLimited,
    /// `1012` injected by `rate_limit_rate` or `rate_limit_next`.
    InjectedRateLimit,
    /// HTTP 5xx injected by `error_rate` or `fail_next`.
    #[serde(rename = "injected_5xx")]
    Injected5xx,
    /// Refused by the business rules (`29xx`).
    Business,
}

impl Outcome {
    /// The class of a gateway failure.
    pub fn of_gateway(code: &GatewayCode) -> Outcome {
        match code.code {
            21 | 22 => Outcome::Method,
            28 | 29 => Outcome::AppKey,
            30 | 31 => Outcome::Timestamp,
            40 | 41 => Outcome::TargetAppKey,
            _ => Outcome::Sign,
        }
    }

    /// The class of a direct-mode authentication failure, by its WDT code.
    pub fn of_direct(code: i64) -> Outcome {
        match code {
            100 => Outcome::MissingParameter,
            101 => Outcome::Account,
            103 => Outcome::Timestamp,
            _ => Outcome::Sign,
        }
    }
}

/// Counters since start (or since the last `DELETE /_sim/stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// API requests of any outcome.
    pub requests: u64,
    pub qimen: u64,
    pub openapi2: u64,
    pub openapi2_history: u64,
    pub ok: u64,
    pub method: u64,
    pub app_key: u64,
    pub timestamp: u64,
    pub sign: u64,
    pub target_app_key: u64,
    pub account: u64,
    pub missing_parameter: u64,
    pub rate_limited: u64,
    pub injected_rate_limit: u64,
    pub injected_5xx: u64,
    pub business: u64,
    /// Orders whose `modified` was bumped by page drift.
    pub drifted: u64,
    /// Pages that listed one of their orders twice.
    pub duplicated: u64,
    /// Orders served in success envelopes, counting repeats.
    pub rows_served: u64,
}

impl Stats {
    pub fn count(&mut self, api: Api, outcome: Outcome) {
        self.requests += 1;
        match api {
            Api::Qimen => self.qimen += 1,
            Api::Openapi2 => self.openapi2 += 1,
            Api::Openapi2History => self.openapi2_history += 1,
        }
        let counter = match outcome {
            Outcome::Ok => &mut self.ok,
            Outcome::Method => &mut self.method,
            Outcome::AppKey => &mut self.app_key,
            Outcome::Timestamp => &mut self.timestamp,
            Outcome::Sign => &mut self.sign,
            Outcome::TargetAppKey => &mut self.target_app_key,
            Outcome::Account => &mut self.account,
            Outcome::MissingParameter => &mut self.missing_parameter,
            Outcome::RateLimited => &mut self.rate_limited,
            Outcome::InjectedRateLimit => &mut self.injected_rate_limit,
            Outcome::Injected5xx => &mut self.injected_5xx,
            Outcome::Business => &mut self.business,
        };
        *counter += 1;
    }
}

/// One answered API request, as `GET /_sim/requests` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggedRequest {
    pub request_id: String,
    /// When it was answered (Asia/Shanghai wall-clock time).
    pub at: String,
    pub api: Api,
    pub http_method: String,
    /// Every parameter received, query and form merged (including `sign`).
    pub params: Params,
    pub outcome: Outcome,
    /// The HTTP status (200 unless a 5xx was injected).
    pub status: u16,
    /// The failure code as the client saw it (`"25"`, `"2900"`, …), for failures.
    pub error_code: Option<String>,
    /// Orders in the page served.
    pub rows: usize,
    /// `total_count` if the envelope carried it.
    pub total_count: Option<usize>,
    /// The order whose `modified` drift bumped after this page.
    pub drifted: Option<String>,
}

/// The most recent requests, oldest first; bounded so a long-running sandbox does not grow.
#[derive(Debug, Default)]
pub struct RequestLog {
    entries: VecDeque<LoggedRequest>,
}

impl RequestLog {
    pub const CAPACITY: usize = 10_000;

    pub fn push(&mut self, entry: LoggedRequest) {
        if self.entries.len() == Self::CAPACITY {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }

    pub fn entries(&self) -> impl Iterator<Item = &LoggedRequest> {
        self.entries.iter()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::wdt::codes;

    #[test]
    fn gateway_codes_map_to_their_class() {
        for (code, outcome) in [
            (codes::MISSING_METHOD, Outcome::Method),
            (codes::INVALID_APP_KEY, Outcome::AppKey),
            (codes::INVALID_TIMESTAMP, Outcome::Timestamp),
            (codes::INVALID_SIGN_METHOD, Outcome::Sign),
            (codes::MISSING_SIGNATURE, Outcome::Sign),
            (codes::INVALID_SIGNATURE, Outcome::Sign),
            (codes::INVALID_TARGET_APP_KEY, Outcome::TargetAppKey),
        ] {
            assert_eq!(Outcome::of_gateway(&code), outcome, "{}", code.code);
        }
    }

    #[test]
    fn counts_land_in_their_counter() {
        let mut stats = Stats::default();
        stats.count(Api::Qimen, Outcome::Ok);
        stats.count(Api::Openapi2, Outcome::RateLimited);
        let json = serde_json::to_value(&stats).unwrap();
        assert_eq!(json["requests"], 2);
        assert_eq!(
            (json["qimen"].as_u64(), json["openapi2"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(
            (json["ok"].as_u64(), json["rate_limited"].as_u64()),
            (Some(1), Some(1))
        );
    }

    #[test]
    fn the_log_is_bounded() {
        let mut log = RequestLog::default();
        for index in 0..RequestLog::CAPACITY + 5 {
            log.push(LoggedRequest {
                request_id: index.to_string(),
                at: String::new(),
                api: Api::Qimen,
                http_method: "POST".to_string(),
                params: Params::new(),
                outcome: Outcome::Ok,
                status: 200,
                error_code: None,
                rows: 0,
                total_count: None,
                drifted: None,
            });
        }
        assert_eq!(log.entries().count(), RequestLog::CAPACITY);
        assert_eq!(log.entries().next().unwrap().request_id, "5");
    }
}
