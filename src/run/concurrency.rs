//! The adaptive write concurrency controller: how many writers may be under way at once.
//!
//! Additive increase, multiplicative decrease, as Vector's adaptive request concurrency does
//! for HTTP sinks, after a slow start as TCP's: until the first sign of a limit the level
//! doubles each window instead of rising by one, and that first sign halves it (the level
//! before the last doubling was fine), so a short run is not spent climbing one step a round
//! trip. Each finished write reports its round-trip time and whether the target
//! pushed back (a busy answer, a timeout, an error). Once per window — about one average
//! round trip — the window's mean round trip is compared with the long-run moving average:
//! when it stayed within the average (plus a quarter) plus twice the mean deviation and the writers were all
//! busy at some point, the limit rises by one; when it rose beyond, the limit is cut to
//! `DECREASE` of itself. A push-back cuts at once, once for all the writes sent before the cut. The controller is pure: the clock is a parameter
//! (the time since the run started) and it does no IO; the write stage feeds it. A fixed
//! concurrency is a controller whose limit never moves.

use std::time::Duration;

/// The share of the limit kept after a cut.
const DECREASE: f64 = 0.9;
/// How many mean deviations above the moving average a window's round trip may be and still
/// count as flat.
const DEVIATION_SCALE: f64 = 2.0;
/// How much above the moving average a window's round trip may be, as a share of it, before
/// the deviation is known well enough to judge alone.
const TOLERANCE: f64 = 0.25;
/// Weight of a new window in the moving average of round trips.
const EWMA_ALPHA: f64 = 0.4;

/// How the write concurrency is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Always this many writers.
    Fixed(usize),
    /// Starts at `initial`, moves between 1 and `max` with the target's latency.
    Adaptive { initial: usize, max: usize },
}

/// How a write ended, for the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The target answered without pushing back.
    Answered,
    /// A busy answer (Kingdee MsgCode 13/14, HTTP 429/503), a timeout or an error.
    PushedBack,
}

/// A moving average and its mean deviation, in seconds.
#[derive(Debug, Clone, Copy, Default)]
struct Ewma {
    mean: f64,
    deviation: f64,
    primed: bool,
}

impl Ewma {
    fn update(&mut self, value: f64) {
        if !self.primed {
            *self = Ewma {
                mean: value,
                deviation: 0.0,
                primed: true,
            };
            return;
        }
        let diff = (value - self.mean).abs();
        self.mean += EWMA_ALPHA * (value - self.mean);
        self.deviation += EWMA_ALPHA * (diff - self.deviation);
    }
}

#[derive(Debug, Clone)]
pub struct Controller {
    mode: Mode,
    limit: usize,
    /// The highest limit so far (the summary shows it).
    pub peak: usize,
    past: Ewma,
    /// Since the current window began: its start, round-trip sum and count (a round trip that
    /// came with a push-back says how long the target took to refuse, not how long it takes to
    /// work: it stays out), and whether every writer was busy at some point.
    window_start: Duration,
    rtt_sum: f64,
    rtt_count: u32,
    reached_limit: bool,
    /// When the limit was last cut for a push-back: a push-back to a write sent before then
    /// was already answered by that cut.
    last_cut: Option<Duration>,
    /// No sign of the target's limit yet: a flat window doubles the level.
    slow_start: bool,
}

impl Controller {
    pub fn new(mode: Mode) -> Controller {
        let limit = match mode {
            Mode::Fixed(n) => n.max(1),
            Mode::Adaptive { initial, max } => initial.clamp(1, max.max(1)),
        };
        Controller {
            mode,
            limit,
            peak: limit,
            past: Ewma::default(),
            window_start: Duration::ZERO,
            rtt_sum: 0.0,
            rtt_count: 0,
            reached_limit: false,
            last_cut: None,
            slow_start: true,
        }
    }

    /// Writers allowed under way now.
    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// A write started; `in_flight` writers are now under way, this one included.
    pub fn started(&mut self, in_flight: usize) {
        if in_flight >= self.limit {
            self.reached_limit = true;
        }
    }

    /// A write that took `rtt` ended at `now` (time since the run started).
    pub fn finished(&mut self, now: Duration, rtt: Duration, outcome: Outcome) {
        let Mode::Adaptive { max, .. } = self.mode else {
            return;
        };
        if outcome == Outcome::PushedBack {
            self.pushed_back_now(now, rtt);
            return;
        }
        self.rtt_sum += rtt.as_secs_f64();
        self.rtt_count += 1;
        let window = Duration::from_secs_f64(if self.past.primed {
            self.past.mean
        } else {
            0.0
        });
        if now.saturating_sub(self.window_start) < window {
            return;
        }
        let current = self.rtt_sum / f64::from(self.rtt_count);
        let threshold = self.past.mean * (1.0 + TOLERANCE) + DEVIATION_SCALE * self.past.deviation;
        if self.past.primed && current > threshold {
            self.cut();
        } else if self.reached_limit && self.limit < max {
            self.limit = if self.slow_start {
                (self.limit * 2).min(max)
            } else {
                self.limit + 1
            };
        }
        self.peak = self.peak.max(self.limit);
        self.past.update(current);
        self.new_window(now);
    }

    /// A push-back cuts the limit at once, not at the window's end: waiting a window would let
    /// the limit rise again past a target already refusing. Writes sent before the last cut
    /// were sent at the old level; their push-backs do not cut again.
    fn pushed_back_now(&mut self, now: Duration, rtt: Duration) {
        let sent = now.saturating_sub(rtt);
        if self.last_cut.is_some_and(|cut| sent < cut) {
            return;
        }
        self.cut();
        self.last_cut = Some(now);
        self.new_window(now);
    }

    /// The first cut ends the slow start and halves the level; later ones keep `DECREASE`.
    fn cut(&mut self) {
        let kept = if self.slow_start { 0.5 } else { DECREASE };
        self.slow_start = false;
        self.limit = ((self.limit as f64 * kept) as usize).max(1);
    }

    fn new_window(&mut self, now: Duration) {
        self.window_start = now;
        self.rtt_sum = 0.0;
        self.rtt_count = 0;
        self.reached_limit = false;
    }

    /// The summary's words: `4 (adaptive, max 16, highest 6)`; nothing for a fixed level.
    pub fn report(&self) -> Option<String> {
        match self.mode {
            Mode::Fixed(_) => None,
            Mode::Adaptive { max, .. } => Some(format!(
                "{} (adaptive, max {max}, highest {})",
                self.limit, self.peak
            )),
        }
    }

    /// How the progress line names the level: `4 (adaptive, max 16)`.
    pub fn describe(&self) -> String {
        match self.mode {
            Mode::Fixed(n) => format!("{n}"),
            Mode::Adaptive { max, .. } => format!("{} (adaptive, max {max})", self.limit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Feed writes, one at a time, each `(rtt ms, pushed back)` after the previous one ended,
    /// every writer busy when it started; return the limit after each.
    fn limits(mode: Mode, writes: &[(u64, bool)]) -> Vec<usize> {
        let mut controller = Controller::new(mode);
        let mut now = Duration::ZERO;
        writes
            .iter()
            .map(|&(rtt, pushed)| {
                controller.started(controller.limit());
                now += ms(rtt);
                let outcome = if pushed {
                    Outcome::PushedBack
                } else {
                    Outcome::Answered
                };
                controller.finished(now, ms(rtt), outcome);
                controller.limit()
            })
            .collect()
    }

    #[test]
    fn the_limit_follows_the_latency_and_the_push_backs() {
        // (what, mode, writes as (rtt ms, pushed back), limit after each write)
        type Case<'a> = (&'a str, Mode, &'a [(u64, bool)], &'a [usize]);
        let cases: &[Case] = &[
            (
                "flat latency in the slow start: the level doubles per window, up to the maximum",
                Mode::Adaptive {
                    initial: 2,
                    max: 12,
                },
                &[(100, false); 5],
                &[4, 8, 12, 12, 12],
            ),
            (
                "the first busy answer halves the level, later ones cut it to 90%, never below one",
                Mode::Adaptive { initial: 8, max: 8 },
                &[(100, true); 5],
                &[4, 3, 2, 1, 1],
            ),
            (
                "after the first push-back, one more writer per flat window",
                Mode::Adaptive {
                    initial: 2,
                    max: 16,
                },
                &[(100, false), (100, true), (100, false), (100, false)],
                &[4, 2, 3, 4],
            ),
            (
                "latency rising well above the average ends the slow start",
                Mode::Adaptive {
                    initial: 2,
                    max: 16,
                },
                &[(100, false), (100, false), (100, false), (400, false)],
                &[4, 8, 16, 8],
            ),
            (
                "latency within the deviation counts as flat",
                Mode::Adaptive {
                    initial: 1,
                    max: 16,
                },
                &[(100, false), (120, false), (110, false), (115, false)],
                &[2, 4, 8, 16],
            ),
            (
                "a fixed concurrency never moves",
                Mode::Fixed(3),
                &[(100, false), (900, true), (100, false)],
                &[3, 3, 3],
            ),
        ];
        for (name, mode, writes, expected) in cases {
            assert_eq!(&limits(*mode, writes), expected, "{name}");
        }
    }

    #[test]
    fn the_limit_rises_only_when_every_writer_was_busy() {
        let mut controller = Controller::new(Mode::Adaptive {
            initial: 4,
            max: 16,
        });
        for i in 1..=5 {
            controller.started(1);
            controller.finished(ms(100 * i), ms(100), Outcome::Answered);
        }
        assert_eq!(controller.limit(), 4);
        assert_eq!(controller.describe(), "4 (adaptive, max 16)");
    }

    #[test]
    fn a_push_back_cuts_at_once_and_once_for_the_writes_sent_before_the_cut() {
        let mut controller = Controller::new(Mode::Adaptive {
            initial: 8,
            max: 16,
        });
        for _ in 0..8 {
            controller.started(8);
        }
        // All eight were sent at 0 ms; the first busy answer cuts (halves: it ends the slow
        // start), the others sent with it do not cut again.
        controller.finished(ms(40), ms(40), Outcome::PushedBack);
        assert_eq!(controller.limit(), 4);
        controller.finished(ms(45), ms(45), Outcome::PushedBack);
        controller.finished(ms(50), ms(50), Outcome::PushedBack);
        assert_eq!(controller.limit(), 4);
        // A write sent after the cut and refused too cuts again, to 90%.
        controller.finished(ms(100), ms(50), Outcome::PushedBack);
        assert_eq!(controller.limit(), 3);
    }

    #[test]
    fn a_window_lasts_about_one_round_trip() {
        let mut controller = Controller::new(Mode::Adaptive {
            initial: 1,
            max: 16,
        });
        controller.started(1);
        controller.finished(ms(100), ms(100), Outcome::Answered);
        assert_eq!(controller.limit(), 2);
        // Two writes ending 60 ms apart fall in one window: one step (a doubling), not two.
        controller.started(2);
        controller.finished(ms(150), ms(100), Outcome::Answered);
        controller.finished(ms(210), ms(100), Outcome::Answered);
        assert_eq!(controller.limit(), 4);
        assert_eq!(controller.peak, 4);
    }
}
