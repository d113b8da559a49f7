//! Everything the sandbox remembers, in one struct behind one lock: auth (users, apps,
//! sessions), base data, bills, fault settings, statistics, async save tasks, randomness.
//!
//! Every operation on it is short and synchronous, so one `Mutex` serialises concurrent
//! calls without holding it across a sleep or a socket write.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::sim::kingdee::auth::Auth;
use crate::sim::kingdee::basedata::BaseData;
use crate::sim::kingdee::bills::BillStore;
use crate::sim::kingdee::faults::Faults;
use crate::sim::kingdee::mishap::Mishap;
use crate::sim::kingdee::random::Random;

/// What happened to one call, for `/_sim/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Answered without any error.
    Ok,
    /// A save where some packets were saved and others rejected.
    Partial,
    /// An error envelope (validation, bad parameters, failed login).
    Failed,
    /// No valid session or signature (MsgCode 1, or the thirty-passport refusal).
    Unauthorised,
    /// Authenticated but not on the WebAPI whitelist.
    NotWhitelisted,
    /// Gateway mode refused the timestamp.
    GatewayRefused,
    /// An injected HTTP 500.
    InjectedError,
    /// An injected network-control conflict.
    InjectedConflict,
    /// A save beyond the capacity, answered busy.
    Busy,
    /// Saved, then the connection was dropped on purpose.
    Dropped,
    /// A wrong answer (see `mishap`).
    Mishap(Mishap),
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Partial => "partial",
            Outcome::Failed => "failed",
            Outcome::Unauthorised => "unauthorised",
            Outcome::NotWhitelisted => "not_whitelisted",
            Outcome::GatewayRefused => "gateway_refused",
            Outcome::InjectedError => "injected_5xx",
            Outcome::InjectedConflict => "injected_conflict",
            Outcome::Busy => "busy",
            Outcome::Dropped => "dropped",
            Outcome::Mishap(mishap) => mishap.outcome_name(),
        }
    }
}

/// Counters for `/_sim/stats`.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Calls by service short name, then by outcome name.
    pub requests: BTreeMap<String, BTreeMap<&'static str, u64>>,
    pub bills_created: u64,
    pub bills_updated: u64,
    pub packets_rejected: u64,
    pub duplicates_rejected: u64,
    /// Bills moved by `Submit`, `Audit`, `UnAudit`.
    pub bills_submitted: u64,
    pub bills_audited: u64,
    pub bills_unaudited: u64,
    pub errors_injected: u64,
    pub conflicts_injected: u64,
    pub drops_injected: u64,
    pub mishaps_injected: u64,
}

impl Stats {
    pub fn record(&mut self, service: &str, outcome: Outcome) {
        *self
            .requests
            .entry(service.to_string())
            .or_default()
            .entry(outcome.name())
            .or_default() += 1;
        match outcome {
            Outcome::InjectedError => self.errors_injected += 1,
            Outcome::InjectedConflict => self.conflicts_injected += 1,
            Outcome::Dropped => self.drops_injected += 1,
            Outcome::Mishap(_) => self.mishaps_injected += 1,
            _ => {}
        }
    }
}

/// The sandbox's whole memory.
#[derive(Debug)]
pub struct State {
    pub auth: Auth,
    pub basedata: BaseData,
    pub bills: BillStore,
    pub faults: Faults,
    pub stats: Stats,
    pub random: Random,
    /// Results of async (`BeginQueryImpl`) saves by task id.
    pub tasks: HashMap<String, Value>,
}

impl State {
    pub fn session_ttl(&self) -> Duration {
        Duration::seconds(self.faults.session_ttl_secs.min(i64::MAX as u64) as i64)
    }

    /// `GET /_sim/stats`.
    pub fn stats_json(&self, now: DateTime<Utc>) -> Value {
        let requests: serde_json::Map<String, Value> = self
            .stats
            .requests
            .iter()
            .map(|(service, outcomes)| (service.clone(), json!(outcomes)))
            .collect();
        let total: u64 = self.stats.requests.values().flat_map(|o| o.values()).sum();
        json!({
            "requests": requests,
            "requests_total": total,
            "bills_total": self.bills.bills().len(),
            "bills_created": self.stats.bills_created,
            "bills_updated": self.stats.bills_updated,
            "packets_rejected": self.stats.packets_rejected,
            "duplicates_rejected": self.stats.duplicates_rejected,
            "bills_submitted": self.stats.bills_submitted,
            "bills_audited": self.stats.bills_audited,
            "bills_unaudited": self.stats.bills_unaudited,
            "errors_injected": self.stats.errors_injected,
            "conflicts_injected": self.stats.conflicts_injected,
            "drops_injected": self.stats.drops_injected,
            "mishaps_injected": self.stats.mishaps_injected,
            "sessions_created": self.auth.sessions_created,
            "sessions_live": self.auth.live_sessions(now, self.session_ttl()),
        })
    }
}
