//! A cached bearer token or session value, shared by every call of one connector: the
//! `oauth2_client_credentials` and `login` strategies keep theirs here.
//!
//! Renewal is single-flight: callers that saw the same token go stale (or refused) pass its
//! [`Generation`]; the first renews, the others find a newer generation and reuse its token,
//! so a thousand concurrent calls cause one request to the token endpoint, not a thousand.
//! Lifetimes are measured on the monotonic clock, as the server measures them in real time
//! (the run's clock may be pinned in tests); a token is renewed [`renew_after`] its lifetime
//! minus a margin, so it is replaced before the server refuses it.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::auth::Generation;
use crate::error::Result;
use crate::secret::Secret;

/// At most this long before a token expires, it is renewed.
const MAX_MARGIN: Duration = Duration::from_secs(60);

/// A token the server gave, and how long it said the token lives.
#[derive(Debug)]
pub struct Issued {
    pub token: Secret,
    pub lifetime: Option<Duration>,
}

#[derive(Debug, Default)]
struct Cached {
    token: Option<Secret>,
    renew_at: Option<Instant>,
    generation: Generation,
}

#[derive(Debug, Default)]
pub struct TokenCache {
    state: Mutex<Cached>,
    renewal: tokio::sync::Mutex<()>,
}

/// When a token of `lifetime` is renewed: a fifth of its lifetime early, at most a minute
/// early, so a 2-second token is replaced after 1.6 s and an hour's after 59 minutes.
pub fn renew_after(lifetime: Duration) -> Duration {
    lifetime - (lifetime / 5).min(MAX_MARGIN)
}

impl TokenCache {
    /// The token to send, and its generation (`None` before the first renewal).
    pub fn current(&self) -> (Option<Secret>, Generation) {
        let state = self.state.lock().expect("token lock");
        (state.token.clone(), state.generation)
    }

    /// The generation to renew when there is no token yet or it is due at `now`.
    pub fn stale(&self, now: Instant) -> Option<Generation> {
        let state = self.state.lock().expect("token lock");
        let due = state.token.is_none() || state.renew_at.is_some_and(|at| now >= at);
        due.then_some(state.generation)
    }

    /// Replace the token of generation `used` with one from `fetch`, unless another caller
    /// already did.
    pub async fn renew<F, Fut>(&self, used: Generation, fetch: F) -> Result<()>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Issued>>,
    {
        let _renewal = self.renewal.lock().await;
        if self.state.lock().expect("token lock").generation != used {
            return Ok(());
        }
        let issued = fetch().await?;
        let mut state = self.state.lock().expect("token lock");
        state.token = Some(issued.token);
        // A lifetime past the clock's range (`expires_in: 1e30`) is as good as none: the token
        // is renewed when the API refuses it.
        state.renew_at = issued
            .lifetime
            .and_then(|lifetime| Instant::now().checked_add(renew_after(lifetime)));
        state.generation += 1;
        Ok(())
    }
}

/// `text` with every non-empty secret replaced by `***`, for messages that quote an answer.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut text = text.to_string();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        text = text.replace(secret, "***");
    }
    text
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn tokens_are_renewed_before_they_expire() {
        let cases = [(2, 1600), (10, 8000), (3600, 3_540_000), (0, 0)];
        for (lifetime, renew_ms) in cases {
            let after = renew_after(Duration::from_secs(lifetime));
            assert_eq!(after.as_millis(), renew_ms, "lifetime {lifetime}s");
        }
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_renewal() {
        let cache = Arc::new(TokenCache::default());
        let fetches = Arc::new(AtomicUsize::new(0));
        let (_, generation) = cache.current();
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (cache, fetches) = (Arc::clone(&cache), Arc::clone(&fetches));
            tasks.push(tokio::spawn(async move {
                cache
                    .renew(generation, || async {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        Ok(Issued {
                            token: Secret::new("t1"),
                            lifetime: Some(Duration::from_secs(60)),
                        })
                    })
                    .await
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert_eq!(cache.current().0.unwrap().expose(), "t1");
        assert_eq!(cache.stale(Instant::now()), None);
        assert_eq!(
            cache.stale(Instant::now() + Duration::from_secs(49)),
            Some(1),
            "due 12 s before a 60 s token expires"
        );
    }

    #[tokio::test]
    async fn a_lifetime_past_the_clocks_range_is_a_token_without_expiry_not_a_panic() {
        let cache = TokenCache::default();
        let (_, generation) = cache.current();
        cache
            .renew(generation, || async {
                Ok(Issued {
                    token: Secret::new("t1"),
                    // What `expires_in: 1e30` or `18446744073709551615` reads as.
                    lifetime: Some(Duration::from_secs(u64::MAX)),
                })
            })
            .await
            .unwrap();
        assert_eq!(cache.current().0.unwrap().expose(), "t1");
        assert_eq!(cache.stale(Instant::now()), None);
    }

    #[test]
    fn redaction_hides_every_secret_in_a_quoted_answer() {
        assert_eq!(
            redact("bad client s3cr3t (id a)", &["s3cr3t", ""]),
            "bad client *** (id a)"
        );
    }
}
