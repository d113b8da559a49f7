//! Fault injection: latency, random HTTP 5xx, network-control conflicts (at random or on
//! given bill numbers), commit-then-drop, the batch mode, the session lifetime and the
//! [`mishap`](crate::sim::kingdee::mishap) answers — everything a client test wants to turn on
//! and off, at start-up (`--kingdee-*` flags) or at run time (`PUT /_sim/faults`, and
//! `POST /_sim/faults/next` to arm a mishap for the next calls).
//!
//! All of it is inferred behaviour (spec §7.7): real servers are slow, fail and time out, but
//! no rate is documented. [`Faults::decide`] and [`Faults::mishap`] are pure: the caller
//! passes the random draws.

use serde::{Deserialize, Serialize};

use crate::sim::kingdee::mishap::{Armed, CallKind, Plan, Rates};

/// How a `BatchSave` treats one bad packet among good ones (spec §4.2, §7.5) **[I]**.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BatchMode {
    /// Every packet is saved or rejected on its own (partial success by `DIndex`).
    Independent,
    /// Any error rolls every packet of the call back.
    Atomic,
}

/// What an injected network-control conflict blocks (spec §4.2, §7.7) **[I]**.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ConflictScope {
    /// The whole call is refused and nothing is saved.
    Call,
    /// Only the first bill of the call is locked: it is refused with the conflict message
    /// and the others are saved, the answer's MsgCode being 13.
    Bill,
}

/// The fault settings in force.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Faults {
    /// Delay before every WebAPI call is handled, in milliseconds.
    pub latency_ms: u64,
    /// Extra delay per bill of a save, after the commit, in milliseconds.
    pub latency_per_bill_ms: u64,
    /// Share of WebAPI calls answered HTTP 500 before anything happens (0..=1).
    pub error_rate: f64,
    /// Share of saves that commit and then close the connection without a response (0..=1).
    pub commit_then_drop_rate: f64,
    /// Share of saves that meet the MsgCode 13 network-control conflict (0..=1).
    pub conflict_rate: f64,
    pub conflict_scope: ConflictScope,
    pub batch_mode: BatchMode,
    /// Idle lifetime of a session, in seconds.
    pub session_ttl_secs: u64,
    /// Most saves under way at once; beyond, a save is answered MsgCode 13 busy and not
    /// carried out. `None`: no limit.
    pub capacity: Option<usize>,
    /// Bill numbers held by someone else: a save of one of them meets the MsgCode 13
    /// network-control conflict while the other bills of the call are saved.
    pub conflict_bill_nos: Vec<String>,
    /// Shares of calls answered with a mishap, and the MsgCode of the `msgcode` one.
    #[serde(flatten)]
    pub rates: Rates,
    /// Mishaps armed for the next calls, first first.
    pub next: Vec<Armed>,
}

/// A partial update of [`Faults`] (the body of `PUT /_sim/faults`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsPatch {
    pub latency_ms: Option<u64>,
    pub latency_per_bill_ms: Option<u64>,
    pub error_rate: Option<f64>,
    pub commit_then_drop_rate: Option<f64>,
    pub conflict_rate: Option<f64>,
    pub conflict_scope: Option<ConflictScope>,
    pub batch_mode: Option<BatchMode>,
    pub session_ttl_secs: Option<u64>,
    /// `0` lifts the limit.
    pub capacity: Option<usize>,
    pub conflict_bill_nos: Option<Vec<String>>,
    pub msgcode: Option<u32>,
    pub msgcode_rate: Option<f64>,
    pub response_error_rate: Option<f64>,
    pub html_login_rate: Option<f64>,
    pub truncated_json_rate: Option<f64>,
    pub missing_entity_rate: Option<f64>,
    /// Replaces the armed mishaps (`[]` disarms them all).
    pub next: Option<Vec<Armed>>,
}

/// What to do to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injection {
    None,
    /// Answer HTTP 500 and do nothing.
    ServerError,
    /// A network-control conflict (MsgCode 13), as wide as the conflict scope.
    Conflict,
    /// Save, then close the connection without answering.
    CommitThenDrop,
    /// More saves under way than the capacity: the whole call is refused as busy (MsgCode
    /// 13), nothing is saved.
    Busy,
}

fn check_rate(name: &str, rate: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&rate) {
        Ok(())
    } else {
        Err(format!("`{name}` must be between 0 and 1, not `{rate}`"))
    }
}

impl Faults {
    /// Reject rates outside 0..=1 and a zero session lifetime.
    pub fn validate(&self) -> Result<(), String> {
        check_rate("error_rate", self.error_rate)?;
        check_rate("commit_then_drop_rate", self.commit_then_drop_rate)?;
        check_rate("conflict_rate", self.conflict_rate)?;
        if self.session_ttl_secs == 0 {
            return Err("`session_ttl_secs` must be at least 1".to_string());
        }
        self.rates.validate()?;
        for armed in &self.next {
            armed.validate()?;
        }
        Ok(())
    }

    /// These settings with `patch` applied, if the result is valid.
    pub fn patched(&self, patch: &FaultsPatch) -> Result<Faults, String> {
        let faults = Faults {
            latency_ms: patch.latency_ms.unwrap_or(self.latency_ms),
            latency_per_bill_ms: patch
                .latency_per_bill_ms
                .unwrap_or(self.latency_per_bill_ms),
            error_rate: patch.error_rate.unwrap_or(self.error_rate),
            commit_then_drop_rate: patch
                .commit_then_drop_rate
                .unwrap_or(self.commit_then_drop_rate),
            conflict_rate: patch.conflict_rate.unwrap_or(self.conflict_rate),
            conflict_scope: patch.conflict_scope.unwrap_or(self.conflict_scope),
            batch_mode: patch.batch_mode.unwrap_or(self.batch_mode),
            session_ttl_secs: patch.session_ttl_secs.unwrap_or(self.session_ttl_secs),
            capacity: match patch.capacity {
                Some(0) => None,
                Some(n) => Some(n),
                None => self.capacity,
            },
            conflict_bill_nos: patch
                .conflict_bill_nos
                .clone()
                .unwrap_or_else(|| self.conflict_bill_nos.clone()),
            rates: Rates {
                msgcode: patch.msgcode.unwrap_or(self.rates.msgcode),
                msgcode_rate: patch.msgcode_rate.unwrap_or(self.rates.msgcode_rate),
                response_error_rate: patch
                    .response_error_rate
                    .unwrap_or(self.rates.response_error_rate),
                html_login_rate: patch.html_login_rate.unwrap_or(self.rates.html_login_rate),
                truncated_json_rate: patch
                    .truncated_json_rate
                    .unwrap_or(self.rates.truncated_json_rate),
                missing_entity_rate: patch
                    .missing_entity_rate
                    .unwrap_or(self.rates.missing_entity_rate),
            },
            next: patch.next.clone().unwrap_or_else(|| self.next.clone()),
        };
        faults.validate()?;
        Ok(faults)
    }

    /// Pick the injection for one call from three uniform draws in `0..1`. Server errors
    /// apply to every WebAPI call; conflicts and drops only to saves.
    pub fn decide(&self, is_save: bool, draws: [f64; 3]) -> Injection {
        if draws[0] < self.error_rate {
            Injection::ServerError
        } else if is_save && draws[1] < self.conflict_rate {
            Injection::Conflict
        } else if is_save && draws[2] < self.commit_then_drop_rate {
            Injection::CommitThenDrop
        } else {
            Injection::None
        }
    }

    /// Arm a mishap for the next calls of its kind, after those already armed.
    pub fn arm(&mut self, armed: Armed) -> Result<(), String> {
        armed.validate()?;
        self.next.push(armed);
        Ok(())
    }

    /// The mishap for one call of `kind`, if any: the first armed one that fits (which is
    /// used up by this call), else one drawn at the configured rates with `draw` (`0..1`).
    pub fn mishap(&mut self, kind: CallKind, draw: f64) -> Option<Plan> {
        if let Some(position) = self.next.iter().position(|armed| armed.fits(kind)) {
            let armed = &mut self.next[position];
            let plan = armed.plan(self.rates.msgcode);
            armed.calls -= 1;
            if armed.calls == 0 {
                self.next.remove(position);
            }
            return Some(plan);
        }
        self.rates
            .draw(kind, draw)
            .map(|mishap| Plan::of(mishap, self.rates.msgcode))
    }

    /// Whether any mishap can happen, so that calls draw for one only then (the draws of
    /// the other faults stay where a seed put them).
    pub fn mishaps_possible(&self) -> bool {
        !self.next.is_empty() || self.rates.any()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::kingdee::mishap::Mishap;

    fn quiet() -> Faults {
        Faults {
            latency_ms: 0,
            latency_per_bill_ms: 0,
            error_rate: 0.0,
            commit_then_drop_rate: 0.0,
            conflict_rate: 0.0,
            conflict_scope: ConflictScope::Call,
            batch_mode: BatchMode::Independent,
            session_ttl_secs: 1200,
            capacity: None,
            conflict_bill_nos: Vec::new(),
            rates: Rates::default(),
            next: Vec::new(),
        }
    }

    #[test]
    fn decisions_follow_the_rates_and_the_kind_of_call() {
        let all = Faults {
            error_rate: 0.5,
            conflict_rate: 0.5,
            conflict_scope: ConflictScope::Call,
            commit_then_drop_rate: 0.5,
            ..quiet()
        };
        for (faults, is_save, draws, expected) in [
            (quiet(), true, [0.0, 0.0, 0.0], Injection::None),
            (all.clone(), false, [0.1, 0.1, 0.1], Injection::ServerError),
            (all.clone(), false, [0.9, 0.1, 0.1], Injection::None),
            (all.clone(), true, [0.9, 0.1, 0.1], Injection::Conflict),
            (
                all.clone(),
                true,
                [0.9, 0.9, 0.1],
                Injection::CommitThenDrop,
            ),
            (all.clone(), true, [0.9, 0.9, 0.9], Injection::None),
        ] {
            assert_eq!(faults.decide(is_save, draws), expected, "{draws:?}");
        }
    }

    #[test]
    fn armed_mishaps_come_first_in_order_and_run_down_then_rates_apply() {
        let mut faults = Faults {
            rates: Rates {
                html_login_rate: 1.0,
                ..Rates::default()
            },
            ..quiet()
        };
        for text in [
            r#"{"mishap":"msgcode","on":"save","calls":2,"msgcode":4}"#,
            r#"{"mishap":"truncated_json","on":"query"}"#,
        ] {
            faults.arm(serde_json::from_str(text).unwrap()).unwrap();
        }
        let mut seen = Vec::new();
        for kind in [
            CallKind::Query,
            CallKind::Login,
            CallKind::Save,
            CallKind::Save,
            CallKind::Save,
            CallKind::Query,
        ] {
            let plan = faults.mishap(kind, 0.5).unwrap();
            seen.push((plan.mishap, plan.msgcode, plan.done));
        }
        use Mishap::*;
        assert_eq!(
            seen,
            [
                (TruncatedJson, 1, true),
                (HtmlLogin, 1, false),
                (Msgcode, 4, false),
                (Msgcode, 4, false),
                (HtmlLogin, 1, false),
                (HtmlLogin, 1, false),
            ]
        );
        assert!(faults.next.is_empty());
        assert!(faults.mishaps_possible());
        assert!(!quiet().mishaps_possible());
        let bad = serde_json::from_str(r#"{"mishap":"missing_entity","on":"login"}"#).unwrap();
        assert!(faults.arm(bad).is_err());
    }

    #[test]
    fn patches_change_only_what_they_name_and_are_validated() {
        let patch: FaultsPatch =
            serde_json::from_str(r#"{"batch_mode":"atomic","error_rate":0.25}"#).unwrap();
        let faults = quiet().patched(&patch).unwrap();
        assert_eq!(faults.batch_mode, BatchMode::Atomic);
        assert_eq!(faults.error_rate, 0.25);
        assert_eq!(faults.session_ttl_secs, 1200);
        let bad: FaultsPatch = serde_json::from_str(r#"{"conflict_rate":2}"#).unwrap();
        assert_eq!(
            quiet().patched(&bad).unwrap_err(),
            "`conflict_rate` must be between 0 and 1, not `2`"
        );
        assert!(serde_json::from_str::<FaultsPatch>(r#"{"eror_rate":1}"#).is_err());
    }
}
