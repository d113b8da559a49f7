//! The API calls of runs, counted for `/metrics` and `--metrics-file`: requests by connector,
//! operation and outcome, their latency, and the waits for rate limits.
//!
//! [`CallMetrics`] is the [`CallObserver`] a run's HTTP clients are given; it only adds up what
//! they report, and [`CallMetrics::render`] writes the Prometheus text of it.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use crate::http::client::{CallObserver, Outcome};
use crate::serve::metrics::label;

/// Upper bounds (seconds) of the request latency histogram.
const LATENCY_BUCKETS: [f64; 11] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// A latency histogram: counts per bucket (not cumulative), the count and the sum.
#[derive(Debug, Default, Clone)]
struct Latency {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Latency {
    fn add(&mut self, took: Duration) {
        let secs = took.as_secs_f64();
        if let Some(bucket) = LATENCY_BUCKETS.iter().position(|bound| secs <= *bound) {
            self.buckets[bucket] += 1;
        }
        self.count += 1;
        self.sum += secs;
    }
}

/// Waits for one connector's rate limit: how many, and how long in all.
#[derive(Debug, Default, Clone, Copy)]
struct Waits {
    count: u64,
    seconds: f64,
}

#[derive(Debug, Default)]
struct Calls {
    /// (connector, operation, outcome) → requests.
    requests: BTreeMap<(String, String, Outcome), u64>,
    /// (connector, operation) → latency.
    latency: BTreeMap<(String, String), Latency>,
    /// connector → waits.
    waits: BTreeMap<String, Waits>,
}

/// Every API request of the runs of this process.
#[derive(Debug, Default)]
pub struct CallMetrics {
    calls: Mutex<Calls>,
}

impl CallObserver for CallMetrics {
    fn request(&self, connector: &str, operation: &str, outcome: Outcome, took: Duration) {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let key = (connector.to_string(), operation.to_string());
        *calls
            .requests
            .entry((key.0.clone(), key.1.clone(), outcome))
            .or_default() += 1;
        calls.latency.entry(key).or_default().add(took);
    }

    fn rate_limit_wait(&self, connector: &str, waited: Duration) {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let waits = calls.waits.entry(connector.to_string()).or_default();
        waits.count += 1;
        waits.seconds += waited.as_secs_f64();
    }
}

impl CallMetrics {
    /// Append the text format of the calls to `out`.
    pub fn render(&self, out: &mut String) {
        let calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        render(&calls, out);
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
}

fn render(calls: &Calls, out: &mut String) {
    header(
        out,
        "engine_api_calls_total",
        "counter",
        "API requests sent, by connector, operation and outcome (ok, failed, refused, busy, throttled, session_lost, server_error, bad_response, uncertain, network_error, timeout).",
    );
    for ((connector, operation, outcome), n) in &calls.requests {
        let _ = writeln!(
            out,
            "engine_api_calls_total{{connector=\"{}\",operation=\"{}\",outcome=\"{}\"}} {n}",
            label(connector),
            label(operation),
            outcome.as_str()
        );
    }
    header(
        out,
        "engine_api_call_duration_seconds",
        "histogram",
        "How long API requests took, by connector and operation.",
    );
    for ((connector, operation), latency) in &calls.latency {
        let labels = format!(
            "connector=\"{}\",operation=\"{}\"",
            label(connector),
            label(operation)
        );
        let mut cumulative = 0;
        for (n, bound) in latency.buckets.iter().zip(LATENCY_BUCKETS) {
            cumulative += n;
            let _ = writeln!(
                out,
                "engine_api_call_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "engine_api_call_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
            latency.count
        );
        let _ = writeln!(
            out,
            "engine_api_call_duration_seconds_sum{{{labels}}} {}",
            latency.sum
        );
        let _ = writeln!(
            out,
            "engine_api_call_duration_seconds_count{{{labels}}} {}",
            latency.count
        );
    }
    header(
        out,
        "engine_rate_limit_waits_total",
        "counter",
        "Calls that waited for their connector's rate limit or a pause after throttling.",
    );
    for (connector, waits) in &calls.waits {
        let _ = writeln!(
            out,
            "engine_rate_limit_waits_total{{connector=\"{}\"}} {}",
            label(connector),
            waits.count
        );
    }
    header(
        out,
        "engine_rate_limit_wait_seconds_total",
        "counter",
        "Seconds calls waited for their connector's rate limit or a pause after throttling.",
    );
    for (connector, waits) in &calls.waits {
        let _ = writeln!(
            out,
            "engine_rate_limit_wait_seconds_total{{connector=\"{}\"}} {}",
            label(connector),
            waits.seconds
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_requests_by_outcome_a_cumulative_latency_histogram_and_waits() {
        let metrics = CallMetrics::default();
        let ms = Duration::from_millis;
        metrics.request("kingdee", "save", Outcome::Ok, ms(250));
        metrics.request("kingdee", "save", Outcome::Ok, ms(500));
        metrics.request("kingdee", "save", Outcome::Busy, ms(40_000));
        metrics.request("wdt", "read \"x\"", Outcome::Throttled, ms(5));
        metrics.rate_limit_wait("wdt", ms(1500));
        metrics.rate_limit_wait("wdt", ms(500));
        let mut text = String::new();
        metrics.render(&mut text);
        for line in [
            "# TYPE engine_api_calls_total counter",
            "engine_api_calls_total{connector=\"kingdee\",operation=\"save\",outcome=\"ok\"} 2",
            "engine_api_calls_total{connector=\"kingdee\",operation=\"save\",outcome=\"busy\"} 1",
            "engine_api_calls_total{connector=\"wdt\",operation=\"read \\\"x\\\"\",outcome=\"throttled\"} 1",
            "# TYPE engine_api_call_duration_seconds histogram",
            "engine_api_call_duration_seconds_bucket{connector=\"kingdee\",operation=\"save\",le=\"0.1\"} 0",
            "engine_api_call_duration_seconds_bucket{connector=\"kingdee\",operation=\"save\",le=\"0.25\"} 1",
            "engine_api_call_duration_seconds_bucket{connector=\"kingdee\",operation=\"save\",le=\"0.5\"} 2",
            "engine_api_call_duration_seconds_bucket{connector=\"kingdee\",operation=\"save\",le=\"30\"} 2",
            "engine_api_call_duration_seconds_bucket{connector=\"kingdee\",operation=\"save\",le=\"+Inf\"} 3",
            "engine_api_call_duration_seconds_sum{connector=\"kingdee\",operation=\"save\"} 40.75",
            "engine_api_call_duration_seconds_count{connector=\"kingdee\",operation=\"save\"} 3",
            "engine_rate_limit_waits_total{connector=\"wdt\"} 2",
            "engine_rate_limit_wait_seconds_total{connector=\"wdt\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
