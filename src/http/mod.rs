//! Talking HTTP to a connector's API: rate limit, retries, response classification.

pub mod envelope;
pub mod ratelimit;
pub mod retry;
