//! The WDT sandbox's in-memory service: the orders, the limiter, the fault dice and the
//! counters, and the request pipeline that runs over them.
//!
//! A request goes through injected 5xx → authentication (`gateway`) → rate limit (`faults`)
//! → business rules and selection (`query`) → envelope (`envelope`) → page drift. Every
//! decision is a function of the request, the instant passed in and this state; the HTTP
//! server only moves bytes and holds the lock. The `/_sim/` operations (insert, touch,
//! generate, faults, stats) are methods here too, so they are testable without a socket.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDateTime, Timelike, Utc};
use serde_json::Value;

use crate::sim::wdt::codes::{self, WdtError};
use crate::sim::wdt::data::{Generator, Order, STATUSES, Shares, parse_wall_clock};
use crate::sim::wdt::envelope;
use crate::sim::wdt::faults::{Dice, DriftTo, Faults, FaultsPatch, RateLimiter, check_share};
use crate::sim::wdt::gateway::{self, DirectCredentials, QimenCredentials};
use crate::sim::wdt::params::{self, Decoded, Incoming, get};
use crate::sim::wdt::query::{self, Rules};
use crate::sim::wdt::stats::{Api, LoggedRequest, Outcome, RequestLog, Stats};
use crate::time::{SHANGHAI, wall_clock};

/// The content type of every API answer, success or failure (spec §8.1).
pub const JSON: &str = "application/json;charset=utf-8";
const HTML: &str = "text/html;charset=utf-8";

/// The fixed behaviour of one sandbox, compiled from its options.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub qimen: QimenCredentials,
    pub direct: DirectCredentials,
    pub rules: Rules,
    /// Emit `total_count` on every page, not only page 0 [switch; documented is page 0 only].
    pub total_count_on_every_page: bool,
    /// Answer gateway-level failures in TOP's `error_response` shape [switch, I].
    pub top_error_response: bool,
    /// Shares used by `/_sim/generate` when the request names none.
    pub shares: Shares,
    /// Orders last modified more than this long ago are archived: only the history endpoint
    /// serves them [switch, I; `None`: nothing is archived].
    pub archive_after: Option<Duration>,
}

/// An HTTP answer, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

/// Why a `/_sim/` edit was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditError {
    /// No order with that number (HTTP 404).
    NotFound(String),
    /// The order or patch is malformed (HTTP 400).
    Invalid(String),
}

/// How `/_sim/orders` changed the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Upserted {
    pub inserted: usize,
    pub replaced: usize,
}

pub struct Service {
    settings: Settings,
    faults: Faults,
    /// By `order_no`; the result set is sorted per request, so no order is kept here.
    orders: BTreeMap<String, Order>,
    generator: Generator,
    limiter: RateLimiter,
    dice: Dice,
    stats: Stats,
    log: RequestLog,
    answered: u64,
}

/// Whether an order is in the archive: last modified before `cut` (none without a cut).
fn archived(order: &Order, cut: Option<NaiveDateTime>) -> bool {
    match (cut, order.modified_at()) {
        (Some(cut), Some(modified)) => modified < cut,
        _ => false,
    }
}

/// The current second as Asia/Shanghai wall-clock time, the resolution of `modified`.
pub fn wall_now(now: DateTime<Utc>) -> NaiveDateTime {
    let local = now.with_timezone(&SHANGHAI).naive_local();
    local.with_nanosecond(0).unwrap_or(local)
}

impl Service {
    /// A service holding `count` generated orders modified within `days` days up to `until`.
    pub fn new(
        settings: Settings,
        faults: Faults,
        seed: u64,
        count: usize,
        days: u32,
        until: NaiveDateTime,
    ) -> Service {
        let mut generator = Generator::new(seed);
        let orders = generator
            .initial(count, days, until, settings.shares)
            .into_iter()
            .map(|order| (order.order_no.clone(), order))
            .collect();
        Service {
            settings,
            faults,
            orders,
            generator,
            limiter: RateLimiter::default(),
            dice: Dice::new(seed),
            stats: Stats::default(),
            log: RequestLog::default(),
            answered: 0,
        }
    }

    /// How long the server should wait before answering an API request.
    pub fn latency(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.faults.latency_ms)
    }

    /// Answer one API request.
    pub fn handle(&mut self, api: Api, incoming: &Incoming, now: DateTime<Utc>) -> Reply {
        self.answered += 1;
        let request_id = format!("sim-{:04}", self.answered);
        let decoded = params::decode(incoming);
        let mut entry = LoggedRequest {
            request_id: request_id.clone(),
            at: wall_clock(now),
            api,
            http_method: incoming.http_method.clone(),
            params: decoded.params.clone(),
            outcome: Outcome::Ok,
            status: 200,
            error_code: None,
            rows: 0,
            total_count: None,
            drifted: None,
        };
        let reply = match self.dice.server_error(&mut self.faults) {
            Some(status) => {
                entry.outcome = Outcome::Injected5xx;
                entry.status = status;
                Reply {
                    status,
                    content_type: HTML,
                    body: format!(
                        "<html><body><h1>{status}</h1><p>sandbox: injected upstream failure</p></body></html>"
                    ),
                }
            }
            None => Reply {
                status: 200,
                content_type: JSON,
                body: self
                    .answer(api, &decoded, now, &request_id, &mut entry)
                    .to_string(),
            },
        };
        self.stats.count(api, entry.outcome);
        self.log.push(entry);
        reply
    }

    fn answer(
        &mut self,
        api: Api,
        decoded: &Decoded,
        now: DateTime<Utc>,
        request_id: &str,
        entry: &mut LoggedRequest,
    ) -> Value {
        let mut fail = |error: WdtError, outcome: Outcome| {
            entry.outcome = outcome;
            entry.error_code = Some(error.code.to_string());
            match api {
                Api::Qimen => envelope::qimen_wdt_failure(&error, request_id),
                Api::Openapi2 | Api::Openapi2History => envelope::direct_failure(&error),
            }
        };
        let params = &decoded.params;
        match api {
            Api::Qimen => {
                if let Err(code) = gateway::check_qimen(decoded, now, &self.settings.qimen) {
                    entry.outcome = Outcome::of_gateway(&code);
                    entry.error_code = Some(code.code.to_string());
                    return envelope::qimen_gateway_failure(
                        &code,
                        request_id,
                        self.settings.top_error_response,
                    );
                }
                if let Err(error) = gateway::check_sid(params, &self.settings.qimen.sid) {
                    return fail(error, Outcome::Account);
                }
            }
            Api::Openapi2 | Api::Openapi2History => {
                if let Err(error) = gateway::check_direct(params, now, &self.settings.direct) {
                    let outcome = Outcome::of_direct(error.code);
                    return fail(error, outcome);
                }
            }
        }

        let sid = get(params, "sid").unwrap_or_default();
        if self.dice.rate_limit(&mut self.faults) {
            return fail(codes::too_frequent(), Outcome::InjectedRateLimit);
        }
        let period = Duration::seconds(self.faults.rate_limit_period_secs as i64);
        if !self.limiter.admit(sid, now, self.faults.rate_limit, period) {
            return fail(codes::too_frequent(), Outcome::RateLimited);
        }

        let query = match query::parse(params, &self.settings.rules) {
            Ok(query) => query,
            Err(error) => return fail(error, Outcome::Business),
        };
        let with_total = query.page_no == 0 || self.settings.total_count_on_every_page;
        // The history endpoint reads the archive, the others everything else.
        let cut = self
            .settings
            .archive_after
            .map(|after| wall_now(now) - after);
        let history = api == Api::Openapi2History;
        let partition = self
            .orders
            .values()
            .filter(|order| archived(order, cut) == history);
        let selected = query::select(partition, &query);
        let mut page = query::page(&selected, &query);
        let distinct_rows = page.rows.len();
        // A page that lists an order twice, as integrators report the formal API doing.
        if let Some(index) = self.dice.duplicate(&self.faults, page.rows.len()) {
            page.rows.insert(index + 1, page.rows[index]);
            self.stats.duplicated += 1;
        }
        let body = match api {
            Api::Qimen => envelope::qimen_success(&page, with_total),
            Api::Openapi2 | Api::Openapi2History => envelope::direct_success(&page, with_total),
        };
        entry.rows = page.rows.len();
        entry.total_count = with_total.then_some(page.total);
        // Drift reproduces an edit made in the ERP while the client pages: an order on this
        // page or an earlier one is modified now, leaving any window that ends before now and
        // shifting every later row one place forward; or (`drift_to: end`) it moves to the
        // window's last second, staying in it, at its end.
        let bumped = match distinct_rows {
            0 => None,
            rows => self
                .dice
                .drift(&self.faults, page.offset + rows - 1)
                .map(|index| selected[index].order_no.clone()),
        };
        self.stats.rows_served += page.rows.len() as u64;
        if let Some(order_no) = bumped {
            let to = match (self.faults.drift_to, query.end) {
                (DriftTo::End, Some(end)) => end,
                _ => wall_now(now),
            };
            if let Some(order) = self.orders.get_mut(&order_no) {
                order.touch(to);
            }
            self.stats.drifted += 1;
            entry.drifted = Some(order_no);
        }
        body
    }

    /// Every order, in result-set order (`modified`, then `stockin_id`).
    pub fn orders(&self) -> Vec<&Order> {
        let mut all: Vec<&Order> = self.orders.values().collect();
        all.sort_by(|a, b| query::sort_key(a).cmp(&query::sort_key(b)));
        all
    }

    /// Insert or replace orders by `order_no`; all or nothing. A missing `modified` is now,
    /// a missing `stockin_id` is kept from the replaced order or freshly allocated.
    pub fn upsert(&mut self, orders: Vec<Order>, now: DateTime<Utc>) -> Result<Upserted, String> {
        let mut checked = Vec::with_capacity(orders.len());
        for (index, mut order) in orders.into_iter().enumerate() {
            self.normalise(&mut order, now)
                .map_err(|err| format!("order {index}: {err}"))?;
            checked.push(order);
        }
        let mut upserted = Upserted {
            inserted: 0,
            replaced: 0,
        };
        for order in checked {
            match self.orders.insert(order.order_no.clone(), order) {
                Some(_) => upserted.replaced += 1,
                None => upserted.inserted += 1,
            }
        }
        Ok(upserted)
    }

    fn normalise(&mut self, order: &mut Order, now: DateTime<Utc>) -> Result<(), String> {
        if order.order_no.is_empty() {
            return Err("an order needs an `order_no`".to_string());
        }
        if !STATUSES.contains(&order.status) {
            return Err(format!(
                "`status` must be one of 10, 20, 30, 60, 80, not `{}`",
                order.status
            ));
        }
        if order.stockin_no.is_empty() {
            order.stockin_no = order.order_no.clone();
        }
        if order.modified.is_empty() {
            order.modified = wall_clock(now);
        }
        if parse_wall_clock(&order.modified).is_none() {
            return Err(format!(
                "`modified` must be `yyyy-MM-dd HH:mm:ss`, not `{}`",
                order.modified
            ));
        }
        if order.stockin_id.is_empty() {
            order.stockin_id = match self.orders.get(&order.order_no) {
                Some(existing) => existing.stockin_id.clone(),
                None => self.generator.next_stockin_id(),
            };
        }
        for detail in &mut order.details_list {
            if detail.stockin_id.is_empty() {
                detail.stockin_id = order.stockin_id.clone();
            }
            if detail.modified.is_empty() {
                detail.modified = order.modified.clone();
            }
        }
        Ok(())
    }

    /// Set an order's `modified` (and its lines') to now, then apply `patch`, a JSON object
    /// of fields to overwrite (a `modified` in the patch wins over now).
    pub fn touch(
        &mut self,
        order_no: &str,
        patch: Option<&Value>,
        now: DateTime<Utc>,
    ) -> Result<Order, EditError> {
        let Some(existing) = self.orders.get(order_no) else {
            return Err(EditError::NotFound(format!("no order `{order_no}`")));
        };
        let mut value = serde_json::to_value(existing).expect("an order always serialises");
        value["modified"] = Value::String(wall_clock(now));
        match patch {
            None => {}
            Some(Value::Object(fields)) => {
                for (key, field) in fields {
                    value[key] = field.clone();
                }
            }
            Some(other) => {
                return Err(EditError::Invalid(format!(
                    "a touch patch must be a JSON object, not `{other}`"
                )));
            }
        }
        let mut order: Order = serde_json::from_value(value)
            .map_err(|err| EditError::Invalid(format!("the patched order is invalid: {err}")))?;
        if order.order_no != order_no {
            return Err(EditError::Invalid(
                "touch cannot change `order_no`; POST /_sim/orders instead".to_string(),
            ));
        }
        let modified = parse_wall_clock(&order.modified).ok_or_else(|| {
            EditError::Invalid(format!(
                "`modified` must be `yyyy-MM-dd HH:mm:ss`, not `{}`",
                order.modified
            ))
        })?;
        order.touch(modified);
        self.normalise(&mut order, now)
            .map_err(EditError::Invalid)?;
        self.orders.insert(order.order_no.clone(), order.clone());
        Ok(order)
    }

    /// Generate `count` new orders modified now, with the given shares or the configured ones.
    pub fn generate(
        &mut self,
        count: usize,
        unknown_sku_share: Option<f64>,
        other_status_share: Option<f64>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Order>, String> {
        let shares = Shares {
            unknown_sku: match unknown_sku_share {
                Some(share) => {
                    check_share(share).map_err(|err| format!("unknown_sku_share: {err}"))?
                }
                None => self.settings.shares.unknown_sku,
            },
            other_status: match other_status_share {
                Some(share) => {
                    check_share(share).map_err(|err| format!("other_status_share: {err}"))?
                }
                None => self.settings.shares.other_status,
            },
        };
        let existing = &self.orders;
        let fresh = self.generator.fresh(count, wall_now(now), shares, &|no| {
            existing.contains_key(no)
        });
        for order in &fresh {
            self.orders.insert(order.order_no.clone(), order.clone());
        }
        Ok(fresh)
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    pub fn update_faults(&mut self, patch: &FaultsPatch) -> Result<&Faults, String> {
        self.faults.apply(patch)?;
        Ok(&self.faults)
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn requests(&self) -> Vec<&LoggedRequest> {
        self.log.entries().collect()
    }

    /// Zero the counters and forget the logged requests (orders and faults stay).
    pub fn reset_stats(&mut self) {
        self.stats = Stats::default();
        self.log.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::sign::qimen::{self, SignMethod};
    use crate::sim::wdt::gateway::SignLengthPolicy;
    use crate::time::parse_instant;

    fn now() -> DateTime<Utc> {
        parse_instant("2024-06-01 12:00:00").unwrap()
    }

    fn settings() -> Settings {
        Settings {
            qimen: QimenCredentials {
                app_key: "app".to_string(),
                app_secret: "secret".to_string(),
                target_app_key: "target".to_string(),
                sid: "sid1".to_string(),
                skew: Duration::seconds(600),
            },
            direct: DirectCredentials {
                sid: "sid1".to_string(),
                appkey: "direct".to_string(),
                appsecret: "direct-secret".to_string(),
                skew: Duration::seconds(300),
                length_policy: SignLengthPolicy::Chars,
            },
            rules: Rules::default(),
            total_count_on_every_page: false,
            top_error_response: false,
            shares: Shares {
                unknown_sku: 0.0,
                other_status: 0.0,
            },
            archive_after: None,
        }
    }

    fn faults() -> Faults {
        Faults {
            latency_ms: 0,
            error_rate: 0.0,
            rate_limit_rate: 0.0,
            drift_rate: 0.0,
            drift_to: DriftTo::Now,
            duplicate_rate: 0.0,
            fail_next: 0,
            rate_limit_next: 0,
            rate_limit: 60,
            rate_limit_period_secs: 60,
        }
    }

    fn service(count: usize) -> Service {
        let until = wall_now(now()) - Duration::minutes(5);
        Service::new(settings(), faults(), 1, count, 2, until)
    }

    /// A signed Qimen form POST for the last three days with these extra parameters.
    fn request(extra: &[(&str, &str)]) -> Incoming {
        let mut params: BTreeMap<String, String> = [
            ("method", gateway::METHOD),
            ("app_key", "app"),
            ("target_app_key", "target"),
            ("sid", "sid1"),
            ("timestamp", "2024-06-01 12:00:00"),
            ("format", "json"),
            ("v", "2.0"),
            ("sign_method", "md5"),
            ("start_time", "2024-05-29 12:00:00"),
            ("end_time", "2024-06-01 11:59:00"),
        ]
        .into_iter()
        .chain(extra.iter().copied())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let sign = qimen::sign(&params, "secret", SignMethod::Md5);
        params.insert("sign".to_string(), sign);
        let body: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", v.replace(' ', "+")))
            .collect();
        Incoming {
            http_method: "POST".to_string(),
            query: String::new(),
            content_type: Some("application/x-www-form-urlencoded".to_string()),
            body: body.join("&").into_bytes(),
        }
    }

    fn json(reply: &Reply) -> Value {
        assert_eq!(reply.content_type, JSON);
        serde_json::from_str(&reply.body).unwrap()
    }

    #[test]
    fn a_signed_request_pages_through_every_order() {
        let mut service = service(25);
        let mut seen = Vec::new();
        for page_no in 0.. {
            let reply = service.handle(
                Api::Qimen,
                &request(&[("page_size", "10"), ("page_no", &page_no.to_string())]),
                now(),
            );
            let body = json(&reply);
            let response = &body["response"];
            assert_eq!(response["errorcode"], 0, "{body}");
            assert_eq!(response.get("total_count").is_some(), page_no == 0);
            let rows = response["stockin_list"].as_array().unwrap();
            seen.extend(
                rows.iter()
                    .map(|row| row["order_no"].as_str().unwrap().to_string()),
            );
            if rows.len() < 10 {
                break;
            }
        }
        let all: Vec<String> = service
            .orders()
            .iter()
            .map(|o| o.order_no.clone())
            .collect();
        assert_eq!(seen, all);
        assert_eq!(service.stats().ok, 3);
        assert_eq!(service.stats().rows_served, 25);
    }

    #[test]
    fn a_tampered_request_gets_the_sign_failure_envelope() {
        let mut service = service(3);
        let mut tampered = request(&[]);
        // Query and body merge: a parameter added in the query is signed over, so it breaks
        // a sign computed without it.
        tampered.query = "shop_no=SHOP01".to_string();
        let body = json(&service.handle(Api::Qimen, &tampered, now()));
        assert_eq!(
            body.to_string(),
            r#"{"response":{"flag":"failure","code":"25","message":"Invalid signature","sub_code":"sign-check-failure","sub_message":"Illegal request","request_id":"sim-0001"}}"#
        );
        assert_eq!(service.stats().sign, 1);
        assert_eq!(service.requests()[0].error_code.as_deref(), Some("25"));
    }

    #[test]
    fn the_rate_limit_counts_admitted_requests_per_sid() {
        let mut service = service(1);
        service
            .update_faults(&FaultsPatch {
                rate_limit: Some(2),
                ..FaultsPatch::default()
            })
            .unwrap();
        let codes: Vec<Value> = (0..3)
            .map(|_| {
                json(&service.handle(Api::Qimen, &request(&[]), now()))["response"]["sub_code"]
                    .clone()
            })
            .collect();
        assert_eq!(codes, [Value::Null, Value::Null, Value::from("1012")]);
        assert_eq!(service.stats().rate_limited, 1);
        // A minute later the window has slid past the first two calls.
        let later = now() + Duration::seconds(60);
        let body = json(&service.handle(Api::Qimen, &request(&[]), later));
        assert_eq!(body["response"]["errorcode"], 0, "{body}");
    }

    #[test]
    fn business_errors_travel_under_code_50() {
        let mut service = service(1);
        let mut incoming = request(&[]);
        // Re-sign without the window: only business validation can fail now.
        let mut params = params::decode(&incoming).params;
        params.remove("start_time");
        params.remove("end_time");
        params.remove("sign");
        let sign = qimen::sign(&params, "secret", SignMethod::Md5);
        params.insert("sign".to_string(), sign);
        incoming.body = params
            .iter()
            .map(|(k, v)| format!("{k}={}", v.replace(' ', "+")))
            .collect::<Vec<_>>()
            .join("&")
            .into_bytes();
        let body = json(&service.handle(Api::Qimen, &incoming, now()));
        assert_eq!(body["response"]["code"], "50");
        assert_eq!(body["response"]["sub_code"], "2900");
        assert_eq!(service.stats().business, 1);
    }

    #[test]
    fn injected_failures_come_first_and_are_counted() {
        let mut service = service(1);
        service
            .update_faults(&FaultsPatch {
                fail_next: Some(1),
                rate_limit_next: Some(1),
                ..FaultsPatch::default()
            })
            .unwrap();
        let first = service.handle(Api::Qimen, &request(&[]), now());
        assert!(first.status >= 500 && first.content_type != JSON);
        let second = json(&service.handle(Api::Qimen, &request(&[]), now()));
        assert_eq!(second["response"]["sub_code"], "1012");
        let third = json(&service.handle(Api::Qimen, &request(&[]), now()));
        assert_eq!(third["response"]["errorcode"], 0);
        let stats = service.stats();
        assert_eq!(
            (stats.injected_5xx, stats.injected_rate_limit, stats.ok),
            (1, 1, 1)
        );
    }

    #[test]
    fn drift_bumps_an_order_at_or_before_the_page_served() {
        let mut service = service(30);
        service
            .update_faults(&FaultsPatch {
                drift_rate: Some(1.0),
                ..FaultsPatch::default()
            })
            .unwrap();
        let before: Vec<String> = service
            .orders()
            .iter()
            .map(|o| o.order_no.clone())
            .collect();
        service.handle(
            Api::Qimen,
            &request(&[("page_size", "10"), ("page_no", "1")]),
            now(),
        );
        let bumped = service.requests()[0]
            .drifted
            .clone()
            .expect("drift at rate 1");
        let position = before.iter().position(|no| *no == bumped).unwrap();
        assert!(position < 20, "bumped row {position} lies after page 1");
        let order = service.orders.get(&bumped).unwrap();
        assert_eq!(order.modified, "2024-06-01 12:00:00");
        assert!(
            order
                .details_list
                .iter()
                .all(|d| d.modified == order.modified)
        );
        assert_eq!(service.stats().drifted, 1);
    }

    #[test]
    fn drift_to_the_end_keeps_the_order_in_the_window_at_its_end() {
        let mut service = service(30);
        service
            .update_faults(&FaultsPatch {
                drift_rate: Some(1.0),
                drift_to: Some(DriftTo::End),
                ..FaultsPatch::default()
            })
            .unwrap();
        let page = request(&[("page_size", "10"), ("page_no", "0")]);
        service.handle(Api::Qimen, &page, now());
        let bumped = service.requests()[0].drifted.clone().expect("drift");
        assert_eq!(service.orders[&bumped].modified, "2024-06-01 11:59:00");
        let last = service.orders().last().unwrap().order_no.clone();
        assert_eq!(last, bumped, "it is the last row of the window now");
    }

    #[test]
    fn a_duplicated_row_repeats_right_after_itself() {
        let mut service = service(30);
        service
            .update_faults(&FaultsPatch {
                duplicate_rate: Some(1.0),
                ..FaultsPatch::default()
            })
            .unwrap();
        let page = json(&service.handle(
            Api::Qimen,
            &request(&[("page_size", "10"), ("page_no", "0")]),
            now(),
        ));
        let numbers: Vec<&str> = page["response"]["stockin_list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|order| order["order_no"].as_str().unwrap())
            .collect();
        assert_eq!(numbers.len(), 11, "ten orders and one of them again");
        assert!(numbers.windows(2).any(|pair| pair[0] == pair[1]));
        assert_eq!(
            page["response"]["total_count"], 30,
            "the total counts orders"
        );
        assert_eq!(service.stats().duplicated, 1);
    }

    #[test]
    fn inserted_and_touched_orders_are_normalised() {
        let mut service = service(0);
        let order: Order = serde_json::from_str(
            r#"{"order_no":"RKX1","shop_no":"SHOP01","details_list":[{"spec_no":"TX-RED-M"}]}"#,
        )
        .unwrap();
        let upserted = service.upsert(vec![order.clone(), order], now()).unwrap();
        assert_eq!((upserted.inserted, upserted.replaced), (1, 1));
        let stored = service.orders()[0].clone();
        assert_eq!(
            (stored.status, stored.modified.as_str()),
            (80, "2024-06-01 12:00:00")
        );
        assert_eq!(stored.details_list[0].stockin_id, stored.stockin_id);
        assert_eq!(stored.stockin_no, "RKX1");

        let later = now() + Duration::seconds(30);
        let patch = serde_json::json!({"remark": "改过"});
        let touched = service.touch("RKX1", Some(&patch), later).unwrap();
        assert_eq!(
            (touched.modified.as_str(), touched.remark.as_str()),
            ("2024-06-01 12:00:30", "改过")
        );
        assert_eq!(touched.stockin_id, stored.stockin_id);
        assert!(matches!(
            service.touch("RKX2", None, later),
            Err(EditError::NotFound(_))
        ));
        let bad = serde_json::json!({"modified": "yesterday"});
        assert!(matches!(
            service.touch("RKX1", Some(&bad), later),
            Err(EditError::Invalid(_))
        ));
        let renamed = serde_json::json!({"order_no": "RKX9"});
        assert!(matches!(
            service.touch("RKX1", Some(&renamed), later),
            Err(EditError::Invalid(_))
        ));
        let refused: Order = serde_json::from_str(r#"{"order_no":"RKX3","status":50}"#).unwrap();
        assert!(
            service
                .upsert(vec![refused], now())
                .unwrap_err()
                .contains("`status`")
        );
    }

    /// A signed direct-mode form POST for the three days before `now()`.
    fn direct(extra: &[(&str, &str)]) -> Incoming {
        use crate::sign::wdt_openapi::{self, LengthUnit};
        let timestamp = now().timestamp().to_string();
        let mut params: BTreeMap<String, String> = [
            ("sid", "sid1"),
            ("appkey", "direct"),
            ("timestamp", timestamp.as_str()),
            ("start_time", "2024-05-29 12:00:00"),
            ("end_time", "2024-06-01 11:59:00"),
            ("page_size", "100"),
        ]
        .into_iter()
        .chain(extra.iter().copied())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let sign = wdt_openapi::sign(&params, "direct-secret", LengthUnit::Chars);
        params.insert("sign".to_string(), sign);
        let body: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", v.replace(' ', "+")))
            .collect();
        Incoming {
            http_method: "POST".to_string(),
            query: String::new(),
            content_type: Some("application/x-www-form-urlencoded".to_string()),
            body: body.join("&").into_bytes(),
        }
    }

    fn order_nos(reply: &Reply) -> BTreeSet<String> {
        let body = json(reply);
        assert_eq!(body["code"], 0, "{body}");
        body["stockin_list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|order| order["order_no"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn the_history_endpoint_serves_the_archived_orders_and_only_them() {
        let mut settings = settings();
        settings.archive_after = Some(Duration::days(1));
        let until = wall_now(now()) - Duration::minutes(5);
        let mut service = Service::new(settings, faults(), 1, 40, 2, until);
        let cut = wall_now(now()) - Duration::days(1);
        let (old, recent): (BTreeSet<String>, BTreeSet<String>) = {
            let (old, recent): (Vec<&Order>, Vec<&Order>) = service
                .orders()
                .into_iter()
                .partition(|order| order.modified_at().unwrap() < cut);
            let nos = |orders: Vec<&Order>| orders.iter().map(|o| o.order_no.clone()).collect();
            (nos(old), nos(recent))
        };
        assert!(!old.is_empty() && !recent.is_empty());
        let history = service.handle(Api::Openapi2History, &direct(&[]), now());
        assert_eq!(order_nos(&history), old);
        let current = service.handle(Api::Openapi2, &direct(&[]), now());
        assert_eq!(order_nos(&current), recent);
        let qimen = json(&service.handle(Api::Qimen, &request(&[("page_size", "100")]), now()));
        assert_eq!(qimen["response"]["total_count"], recent.len());
        // The same signature, the same rules: a wrong sign and a long window are refused.
        let mut tampered = direct(&[]);
        tampered.query = "shop_no=SHOP01".to_string();
        let body = json(&service.handle(Api::Openapi2History, &tampered, now()));
        assert_eq!(body["code"], 102, "{body}");
        let long = direct(&[("start_time", "2024-04-01 00:00:00")]);
        let body = json(&service.handle(Api::Openapi2History, &long, now()));
        assert_ne!(body["code"], 0, "{body}");
        let stats = service.stats();
        assert_eq!(
            (stats.openapi2_history, stats.openapi2, stats.qimen),
            (3, 1, 1)
        );
        // Touched now, an archived order is current again.
        let moved = old.iter().next().unwrap().clone();
        service.touch(&moved, None, now()).unwrap();
        let history = service.handle(Api::Openapi2History, &direct(&[]), now());
        assert!(!order_nos(&history).contains(&moved));
    }

    #[test]
    fn generated_orders_are_modified_now() {
        let mut service = service(5);
        let fresh = service.generate(3, Some(1.0), None, now()).unwrap();
        assert_eq!(fresh.len(), 3);
        assert!(fresh.iter().all(|o| o.modified == "2024-06-01 12:00:00"));
        assert_eq!(service.orders().len(), 8);
        assert!(service.generate(1, Some(2.0), None, now()).is_err());
    }
}
