//! Backoff between attempts, and sleeping as a parameter.
//!
//! The wait before retry `n` (1-based) is `initial × 2ⁿ⁻¹`, capped at `max`, of which the
//! second half is random ("equal jitter"), so concurrent writers that failed together do not
//! retry together. Which failures are retried is decided by the caller; this only times them.
//! Tests pass a [`Sleeper`] that records the waits instead of sleeping.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::model::Retry;

/// The wait before retry number `attempt` (1 = the first retry); `jitter` is in `[0, 1)`.
pub fn backoff(retry: &Retry, attempt: u32, jitter: f64) -> Duration {
    let initial = retry
        .initial_backoff
        .to_std()
        .unwrap_or(Duration::from_secs(1));
    let max = retry
        .max_backoff
        .to_std()
        .unwrap_or(Duration::from_secs(30))
        .max(initial);
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
    let base = initial.saturating_mul(factor).min(max);
    base / 2 + base.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
}

/// How waiting happens: for real, or recorded (tests).
#[derive(Debug, Clone, Default)]
pub enum Sleeper {
    #[default]
    Tokio,
    /// Returns at once and remembers every requested wait.
    Recording(Arc<Mutex<Vec<Duration>>>),
}

impl Sleeper {
    pub async fn sleep(&self, duration: Duration) {
        match self {
            Sleeper::Tokio => tokio::time::sleep(duration).await,
            Sleeper::Recording(waits) => waits.lock().expect("sleeper lock").push(duration),
        }
    }
}

/// A small, fast source of jitter (xorshift), seeded per client.
#[derive(Debug)]
pub struct Jitter(Mutex<u64>);

impl Jitter {
    pub fn new(seed: u64) -> Jitter {
        Jitter(Mutex::new(seed | 1))
    }

    /// A number in `[0, 1)`.
    pub fn next(&self) -> f64 {
        let mut state = self.0.lock().expect("jitter lock");
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        (*state >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(initial: i64, max: i64) -> Retry {
        Retry {
            attempts: 5,
            initial_backoff: chrono::Duration::seconds(initial),
            max_backoff: chrono::Duration::seconds(max),
            ..Retry::default()
        }
    }

    #[test]
    fn waits_double_up_to_the_maximum_with_half_of_each_random() {
        let policy = retry(1, 10);
        let lowest: Vec<u64> = (1..=6)
            .map(|n| backoff(&policy, n, 0.0).as_millis() as u64)
            .collect();
        assert_eq!(lowest, vec![500, 1_000, 2_000, 4_000, 5_000, 5_000]);
        let highest: Vec<u64> = (1..=6)
            .map(|n| backoff(&policy, n, 0.999_999).as_millis() as u64)
            .collect();
        assert_eq!(highest, vec![999, 1_999, 3_999, 7_999, 9_999, 9_999]);
    }

    #[test]
    fn jitter_stays_in_range_and_varies() {
        let jitter = Jitter::new(42);
        let values: Vec<f64> = (0..1000).map(|_| jitter.next()).collect();
        assert!(values.iter().all(|v| (0.0..1.0).contains(v)));
        assert!(values.windows(2).any(|w| w[0] != w[1]));
    }
}
