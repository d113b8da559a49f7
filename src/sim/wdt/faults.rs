//! What can go wrong on purpose: the per-`sid` rate limiter and the injected faults
//! (latency, HTTP 5xx, `1012`, page drift), all changeable at runtime through `/_sim/faults`.
//!
//! Every random decision draws from its own seeded stream, so a test that switches on drift
//! sees the same drift for the same seed and the same request sequence, whatever the other
//! switches say. The limiter takes the instant as a parameter. No IO here: the server sleeps
//! for the latency, this module only says how long.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Duration, Utc};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::sim::wdt::random::{below, chance, stream};

/// Where page drift moves the order it bumps **[I]**.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DriftTo {
    /// `modified` = now: the order leaves any window that ends before now (an edit in the ERP).
    Now,
    /// `modified` = the request's `end_time`: the order stays in the window but moves to its
    /// end, onto a page a downward reader has already read (spec §8.6 `mutate` hook).
    End,
}

/// The runtime-adjustable behaviour of the sandbox; `GET /_sim/faults` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    /// Delay before every API answer, in milliseconds.
    pub latency_ms: u64,
    /// Share of API requests answered with an HTTP 5xx before any check.
    pub error_rate: f64,
    /// Share of authenticated requests answered `1012` regardless of the limiter.
    pub rate_limit_rate: f64,
    /// Chance, after serving a non-empty page, that one order on that page or an earlier one
    /// gets `modified` = now (spec §6 pitfall 1).
    pub drift_rate: f64,
    pub drift_to: DriftTo,
    /// Chance that a served page lists one of its orders twice (spec §6 pitfall 4, §8.6).
    pub duplicate_rate: f64,
    /// The next N API requests get an HTTP 5xx (then the count runs down to 0).
    pub fail_next: u32,
    /// The next N authenticated requests get `1012`.
    pub rate_limit_next: u32,
    /// Requests allowed per `sid` per period; 0 switches the limiter off.
    pub rate_limit: u32,
    /// Length of the limiter's sliding period, in seconds.
    pub rate_limit_period_secs: u64,
}

/// A partial update of [`Faults`] (`PUT /_sim/faults`): absent fields keep their value.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsPatch {
    pub latency_ms: Option<u64>,
    pub error_rate: Option<f64>,
    pub rate_limit_rate: Option<f64>,
    pub drift_rate: Option<f64>,
    pub drift_to: Option<DriftTo>,
    pub duplicate_rate: Option<f64>,
    pub fail_next: Option<u32>,
    pub rate_limit_next: Option<u32>,
    pub rate_limit: Option<u32>,
    pub rate_limit_period_secs: Option<u64>,
}

impl Faults {
    /// Apply a patch, refusing it whole if a share is outside 0..=1 or the period is 0.
    pub fn apply(&mut self, patch: &FaultsPatch) -> Result<(), String> {
        for (name, share) in [
            ("error_rate", patch.error_rate),
            ("rate_limit_rate", patch.rate_limit_rate),
            ("drift_rate", patch.drift_rate),
            ("duplicate_rate", patch.duplicate_rate),
        ] {
            if let Some(share) = share {
                check_share(share).map_err(|err| format!("{name}: {err}"))?;
            }
        }
        if patch.rate_limit_period_secs == Some(0) {
            return Err("rate_limit_period_secs: must be at least 1".to_string());
        }
        let mut next = self.clone();
        let assign = |target: &mut f64, value: Option<f64>| {
            if let Some(value) = value {
                *target = value;
            }
        };
        assign(&mut next.error_rate, patch.error_rate);
        assign(&mut next.rate_limit_rate, patch.rate_limit_rate);
        assign(&mut next.drift_rate, patch.drift_rate);
        assign(&mut next.duplicate_rate, patch.duplicate_rate);
        next.drift_to = patch.drift_to.unwrap_or(next.drift_to);
        next.latency_ms = patch.latency_ms.unwrap_or(next.latency_ms);
        next.fail_next = patch.fail_next.unwrap_or(next.fail_next);
        next.rate_limit_next = patch.rate_limit_next.unwrap_or(next.rate_limit_next);
        next.rate_limit = patch.rate_limit.unwrap_or(next.rate_limit);
        next.rate_limit_period_secs = patch
            .rate_limit_period_secs
            .unwrap_or(next.rate_limit_period_secs);
        *self = next;
        Ok(())
    }
}

/// A share must be a number between 0 and 1.
pub fn check_share(share: f64) -> Result<f64, String> {
    if (0.0..=1.0).contains(&share) {
        Ok(share)
    } else {
        Err(format!("`{share}` is not a share between 0 and 1"))
    }
}

/// The statuses an injected 5xx picks from: what a gateway in trouble answers.
const INJECTED_STATUSES: [u16; 4] = [500, 502, 503, 504];

/// The random sources of the faults, one stream each.
pub struct Dice {
    server_error: ChaCha8Rng,
    rate_limit: ChaCha8Rng,
    drift: ChaCha8Rng,
    duplicate: ChaCha8Rng,
}

impl Dice {
    pub fn new(seed: u64) -> Dice {
        Dice {
            server_error: stream(seed, 0x5858),
            rate_limit: stream(seed, 0x1012),
            drift: stream(seed, 0xD81F),
            duplicate: stream(seed, 0xD0B1),
        }
    }

    /// The HTTP status to fail this request with, if any; consumes `fail_next`.
    pub fn server_error(&mut self, faults: &mut Faults) -> Option<u16> {
        let forced = faults.fail_next > 0;
        if forced {
            faults.fail_next -= 1;
        }
        if forced || chance(&mut self.server_error, faults.error_rate) {
            let index = below(&mut self.server_error, INJECTED_STATUSES.len() as u64);
            Some(INJECTED_STATUSES[index as usize])
        } else {
            None
        }
    }

    /// Whether to answer `1012` although the limiter would admit; consumes `rate_limit_next`.
    pub fn rate_limit(&mut self, faults: &mut Faults) -> bool {
        if faults.rate_limit_next > 0 {
            faults.rate_limit_next -= 1;
            return true;
        }
        chance(&mut self.rate_limit, faults.rate_limit_rate)
    }

    /// For a page of `rows` rows: the row to list a second time, right after itself, or `None`.
    pub fn duplicate(&mut self, faults: &Faults, rows: usize) -> Option<usize> {
        if rows > 0 && chance(&mut self.duplicate, faults.duplicate_rate) {
            Some(below(&mut self.duplicate, rows as u64) as usize)
        } else {
            None
        }
    }

    /// After serving a page whose last row has index `last` in the result set: the index of
    /// the row to bump, chosen among rows `0..=last`, or `None`.
    pub fn drift(&mut self, faults: &Faults, last: usize) -> Option<usize> {
        if chance(&mut self.drift, faults.drift_rate) {
            Some(below(&mut self.drift, last as u64 + 1) as usize)
        } else {
            None
        }
    }
}

/// A sliding-window limiter per `sid`: at most `limit` admitted requests in any `period`.
/// Refused requests do not count, so a client that backs off gets through again.
#[derive(Debug, Default)]
pub struct RateLimiter {
    admitted: HashMap<String, VecDeque<DateTime<Utc>>>,
}

impl RateLimiter {
    pub fn admit(&mut self, sid: &str, now: DateTime<Utc>, limit: u32, period: Duration) -> bool {
        if limit == 0 {
            return true;
        }
        let calls = self.admitted.entry(sid.to_string()).or_default();
        while calls.front().is_some_and(|&at| at <= now - period) {
            calls.pop_front();
        }
        if calls.len() >= limit as usize {
            return false;
        }
        calls.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_instant;

    fn quiet() -> Faults {
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

    #[test]
    fn the_limiter_slides() {
        let start = parse_instant("2024-01-01 00:00:00").unwrap();
        let at = |seconds| start + Duration::seconds(seconds);
        let period = Duration::seconds(60);
        let mut limiter = RateLimiter::default();
        assert!(limiter.admit("a", at(0), 2, period));
        assert!(limiter.admit("a", at(30), 2, period));
        assert!(!limiter.admit("a", at(59), 2, period));
        // Another seller has its own budget.
        assert!(limiter.admit("b", at(59), 2, period));
        // The first call leaves the window exactly one period later.
        assert!(limiter.admit("a", at(60), 2, period));
        assert!(!limiter.admit("a", at(61), 2, period));
        assert!(limiter.admit("a", at(90), 2, period));
        // 0 means no limit.
        assert!((0..1000).all(|_| limiter.admit("c", at(0), 0, period)));
    }

    #[test]
    fn forced_faults_run_down_and_random_ones_follow_the_seed() {
        let mut faults = Faults {
            fail_next: 2,
            rate_limit_next: 1,
            ..quiet()
        };
        let mut dice = Dice::new(1);
        assert!(dice.server_error(&mut faults).is_some());
        assert!(dice.server_error(&mut faults).is_some());
        assert_eq!(dice.server_error(&mut faults), None);
        assert!(dice.rate_limit(&mut faults));
        assert!(!dice.rate_limit(&mut faults));

        let draws = |seed| {
            let mut dice = Dice::new(seed);
            let mut faults = Faults {
                error_rate: 0.5,
                drift_rate: 0.5,
                ..quiet()
            };
            (0..20)
                .map(|i| (dice.server_error(&mut faults), dice.drift(&faults, i)))
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(4), draws(4));
        assert_ne!(draws(4), draws(5));
        for ((status, bumped), last) in draws(4).into_iter().zip(0..) {
            assert!(status.is_none_or(|s| INJECTED_STATUSES.contains(&s)));
            assert!(bumped.is_none_or(|index| index <= last));
        }
    }

    #[test]
    fn patches_change_only_what_they_name_and_refuse_bad_shares() {
        let mut current = quiet();
        current
            .apply(&FaultsPatch {
                drift_rate: Some(0.25),
                fail_next: Some(3),
                ..FaultsPatch::default()
            })
            .unwrap();
        assert_eq!(
            (current.drift_rate, current.fail_next, current.rate_limit),
            (0.25, 3, 60)
        );
        let refused = current.apply(&FaultsPatch {
            error_rate: Some(1.5),
            latency_ms: Some(10),
            ..FaultsPatch::default()
        });
        assert_eq!(
            refused.unwrap_err(),
            "error_rate: `1.5` is not a share between 0 and 1"
        );
        assert_eq!(current.latency_ms, 0, "a refused patch changes nothing");
    }
}
