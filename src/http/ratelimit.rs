//! A sliding-window rate limit shared by every call to one connector.
//!
//! At most `requests` calls start in any period of length `per` (the way WDT counts its 60
//! calls a minute), whatever the number of concurrent writers. The decision is pure
//! ([`Window::try_acquire`] takes the instant); [`RateLimiter`] waits through a [`Sleeper`].

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::model::RateLimit;
use crate::http::retry::Sleeper;

/// The calls started within the last period.
#[derive(Debug)]
pub struct Window {
    requests: usize,
    per: Duration,
    started: VecDeque<Instant>,
}

impl Window {
    pub fn new(requests: u32, per: Duration) -> Window {
        Window {
            requests: requests.max(1) as usize,
            per,
            started: VecDeque::new(),
        }
    }

    /// Start a call at `now`, or say how long to wait first.
    pub fn try_acquire(&mut self, now: Instant) -> Result<(), Duration> {
        while self
            .started
            .front()
            .is_some_and(|start| now.duration_since(*start) >= self.per)
        {
            self.started.pop_front();
        }
        if self.started.len() < self.requests {
            self.started.push_back(now);
            return Ok(());
        }
        let oldest = *self.started.front().expect("the window is full");
        Err(self.per - now.duration_since(oldest))
    }
}

/// The limiter of one connector (none: no limit), and the pause every caller keeps after the
/// API said it is called too often.
#[derive(Debug)]
pub struct RateLimiter {
    window: Option<Mutex<Window>>,
    hold: Mutex<Option<Instant>>,
}

impl RateLimiter {
    pub fn new(limit: Option<RateLimit>) -> RateLimiter {
        let window = limit.map(|limit| {
            Mutex::new(Window::new(
                limit.requests,
                limit.per.to_std().unwrap_or(Duration::from_secs(60)),
            ))
        });
        RateLimiter {
            window,
            hold: Mutex::new(None),
        }
    }

    /// No call starts before `for_` has passed from now (a later hold already set wins).
    pub fn hold(&self, for_: Duration) {
        let until = Instant::now()
            .checked_add(for_)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
        let mut hold = self.hold.lock().expect("rate limit lock");
        if hold.is_none_or(|current| current < until) {
            *hold = Some(until);
        }
    }

    /// Wait until a call may start. Returns how long it waited.
    pub async fn acquire(&self, sleeper: &Sleeper) -> Duration {
        let mut waited = Duration::ZERO;
        loop {
            // A hold set while this call waited for the window (another call refused as too
            // frequent) is honoured too: read again after every wait.
            let held = *self.hold.lock().expect("rate limit lock");
            if let Some(until) = held {
                let now = Instant::now();
                if until > now {
                    waited += until - now;
                    sleeper.sleep(until - now).await;
                }
            }
            let Some(window) = &self.window else {
                return waited;
            };
            let decision = window
                .lock()
                .expect("rate limit lock")
                .try_acquire(Instant::now());
            match decision {
                Ok(()) => return waited,
                Err(wait) => {
                    waited += wait;
                    sleeper.sleep(wait).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_n_calls_start_in_any_period() {
        let start = Instant::now();
        let mut window = Window::new(3, Duration::from_secs(60));
        for second in [0, 1, 2] {
            assert_eq!(
                window.try_acquire(start + Duration::from_secs(second)),
                Ok(())
            );
        }
        // The fourth call must wait until the first one is a full period old.
        assert_eq!(
            window.try_acquire(start + Duration::from_secs(10)),
            Err(Duration::from_secs(50))
        );
        assert_eq!(window.try_acquire(start + Duration::from_secs(60)), Ok(()));
        assert_eq!(
            window.try_acquire(start + Duration::from_secs(60)),
            Err(Duration::from_secs(1))
        );
    }
}
