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
use crate::sim::wdt::data::{Order, STATUSES, parse_wall_clock};
use crate::sim::wdt::envelope;
use crate::sim::wdt::faults::{Dice, DriftTo, Faults, FaultsPatch, RateLimiter, check_share};
use crate::sim::wdt::gateway::{self, DirectCredentials, QimenCredentials};
use crate::sim::wdt::generate::{Generator, Shares};
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
    // Without a cut nothing is archived: `modified` is not parsed for every order.
    cut.is_some_and(|cut| order.modified_at().is_some_and(|modified| modified < cut))
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
mod tests;
