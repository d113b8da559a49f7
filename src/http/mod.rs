//! Talking HTTP to a connector's API: rate limit, retries, response classification.

pub mod arrival;
pub mod client;
pub mod envelope;
pub mod lean;
pub mod proxy;
pub mod ratelimit;
pub mod retry;
pub mod transport;
