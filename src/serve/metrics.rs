//! Prometheus text exposition of what runs did: `GET /metrics` of `engine serve` and
//! `engine run --metrics-file FILE` (node_exporter's textfile collector).
//!
//! [`Metrics`] collects per-flow counters after each run (from the run's progress counters and
//! the ledger's counts by status), and the runs' API calls as they happen (`calls`, the
//! observer their HTTP clients are given); [`Metrics::render`] writes them in the text format
//! (version 0.0.4). The format is a few lines per series: hand-written here, with its escaping,
//! rather than a registry crate whose types would spread into the run code.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, ErrorKind, ExitCode, Result};
use crate::http::client::CallObserver;
use crate::run::progress::Progress;
use crate::serve::calls::CallMetrics;
use crate::state::{Status, Store};

/// Upper bounds (seconds) of the run duration histogram.
const DURATION_BUCKETS: [f64; 8] = [1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0];

/// What `engine serve` (or one `engine run`) knows of one flow.
#[derive(Debug, Default, Clone)]
pub struct FlowMetrics {
    pub read: u64,
    pub written: u64,
    pub skipped: u64,
    pub parked_by_runs: u64,
    /// Records parked (failed or conflict) in the ledger now.
    pub parked: u64,
    /// Records whose write is not confirmed, in the ledger now.
    pub in_flight: u64,
    /// Runs by outcome: `ok`, `partial`, `failed`, `interrupted`.
    pub runs: BTreeMap<String, u64>,
    /// Ticks skipped because another command held the flow's lock.
    pub lock_skips: u64,
    /// 1 while this process holds the flow's lock.
    pub running: bool,
    pub duration_buckets: [u64; DURATION_BUCKETS.len()],
    pub duration_count: u64,
    pub duration_sum: f64,
}

/// Every flow's metrics, shared between the scheduler and the HTTP server.
#[derive(Debug, Default)]
pub struct Metrics {
    flows: Mutex<BTreeMap<String, FlowMetrics>>,
    calls: Arc<CallMetrics>,
}

impl Metrics {
    fn with(&self, flow: &str, change: impl FnOnce(&mut FlowMetrics)) {
        let mut flows = self.flows.lock().unwrap_or_else(|e| e.into_inner());
        change(flows.entry(flow.to_string()).or_default());
    }

    /// What a run's HTTP clients report their requests and rate-limit waits to.
    pub fn call_observer(&self) -> Arc<dyn CallObserver> {
        Arc::clone(&self.calls) as Arc<dyn CallObserver>
    }

    /// The flow is known (listed with zeros before its first run).
    pub fn register(&self, flow: &str) {
        self.with(flow, |_| {});
    }

    pub fn set_running(&self, flow: &str, running: bool) {
        self.with(flow, |m| m.running = running);
    }

    pub fn lock_skipped(&self, flow: &str) {
        self.with(flow, |m| m.lock_skips += 1);
    }

    /// A run ended with `outcome` after `took`; its counts are in `progress`, and the ledger
    /// in `store` (when it opens) gives what is parked and in flight now.
    pub fn finished(
        &self,
        flow: &str,
        outcome: &str,
        took: Duration,
        progress: &Progress,
        store: &Path,
    ) {
        let count = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        let ledger = Store::open(store).and_then(|s| s.counts(flow)).ok();
        self.with(flow, |m| {
            m.read += count(&progress.counts.read);
            m.written += count(&progress.counts.written);
            m.skipped += count(&progress.counts.skipped);
            m.parked_by_runs += count(&progress.counts.failed);
            *m.runs.entry(outcome.to_string()).or_default() += 1;
            let secs = took.as_secs_f64();
            for (bucket, bound) in m.duration_buckets.iter_mut().zip(DURATION_BUCKETS) {
                if secs <= bound {
                    *bucket += 1;
                }
            }
            m.duration_count += 1;
            m.duration_sum += secs;
            if let Some(ledger) = ledger {
                let n = |s: Status| ledger.get(&s).copied().unwrap_or(0);
                m.parked = n(Status::Failed) + n(Status::Conflict);
                m.in_flight = n(Status::InFlight);
            }
        });
    }

    /// The text format of every flow's series.
    pub fn render(&self) -> String {
        let flows = self.flows.lock().unwrap_or_else(|e| e.into_inner());
        let mut text = render(&flows);
        self.calls.render(&mut text);
        text
    }

    /// Write the text to `file` atomically (a temporary file beside it, then a rename), as
    /// node_exporter's textfile collector requires.
    pub fn write_file(&self, file: &Path) -> Result<()> {
        let temp = file.with_extension(format!("prom.{}.tmp", std::process::id()));
        std::fs::write(&temp, self.render()).map_err(|err| Error::io("write", &temp, err))?;
        std::fs::rename(&temp, file).map_err(|err| Error::io("write", file, err))
    }
}

/// The `outcome` label of a run's result.
pub fn outcome(result: &Result<ExitCode>) -> &'static str {
    match result {
        Ok(ExitCode::Ok) => "ok",
        Ok(_) => "partial",
        Err(err) if err.kind() == ErrorKind::Interrupted => "interrupted",
        Err(_) => "failed",
    }
}

/// `"` `\` and newlines escaped, as label values need.
pub fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn render(flows: &BTreeMap<String, FlowMetrics>) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, String)>| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (labels, value) in rows {
            out.push_str(&format!("{name}{{{labels}}} {value}\n"));
        }
    };
    let per_flow = |value: &dyn Fn(&FlowMetrics) -> String| {
        flows
            .iter()
            .map(|(flow, m)| (format!("flow=\"{}\"", label(flow)), value(m)))
            .collect::<Vec<_>>()
    };
    family(
        "engine_records_read_total",
        "counter",
        "Records read from the source.",
        per_flow(&|m| m.read.to_string()),
    );
    family(
        "engine_records_written_total",
        "counter",
        "Records written to the target.",
        per_flow(&|m| m.written.to_string()),
    );
    family(
        "engine_records_skipped_total",
        "counter",
        "Records read again and not sent (already written or unchanged).",
        per_flow(&|m| m.skipped.to_string()),
    );
    family(
        "engine_records_parked_total",
        "counter",
        "Records parked by runs (refused or impossible to map).",
        per_flow(&|m| m.parked_by_runs.to_string()),
    );
    family(
        "engine_records_parked",
        "gauge",
        "Records parked in the ledger now.",
        per_flow(&|m| m.parked.to_string()),
    );
    family(
        "engine_records_in_flight",
        "gauge",
        "Records whose write is not confirmed, in the ledger now.",
        per_flow(&|m| m.in_flight.to_string()),
    );
    let runs = flows
        .iter()
        .flat_map(|(flow, m)| {
            m.runs.iter().map(move |(outcome, n)| {
                (
                    format!("flow=\"{}\",outcome=\"{}\"", label(flow), label(outcome)),
                    n.to_string(),
                )
            })
        })
        .collect();
    family("engine_runs_total", "counter", "Runs by outcome.", runs);
    family(
        "engine_lock_skips_total",
        "counter",
        "Scheduled runs skipped because another command held the flow's lock.",
        per_flow(&|m| m.lock_skips.to_string()),
    );
    family(
        "engine_lock_held",
        "gauge",
        "1 while this process holds the flow's lock.",
        per_flow(&|m| u8::from(m.running).to_string()),
    );
    let mut durations = Vec::new();
    for (flow, m) in flows.iter() {
        let flow = label(flow);
        for (n, bound) in m.duration_buckets.iter().zip(DURATION_BUCKETS) {
            durations.push((format!("flow=\"{flow}\",le=\"{bound}\""), n.to_string()));
        }
        durations.push((
            format!("flow=\"{flow}\",le=\"+Inf\""),
            m.duration_count.to_string(),
        ));
    }
    out.push_str("# HELP engine_run_duration_seconds How long runs took.\n# TYPE engine_run_duration_seconds histogram\n");
    for (labels, value) in durations {
        out.push_str(&format!(
            "engine_run_duration_seconds_bucket{{{labels}}} {value}\n"
        ));
    }
    for (flow, m) in flows.iter() {
        let flow = label(flow);
        out.push_str(&format!(
            "engine_run_duration_seconds_sum{{flow=\"{flow}\"}} {}\n",
            m.duration_sum
        ));
        out.push_str(&format!(
            "engine_run_duration_seconds_count{{flow=\"{flow}\"}} {}\n",
            m.duration_count
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_escaped_labels() {
        let mut flows = BTreeMap::new();
        let mut m = FlowMetrics {
            read: 30,
            written: 12,
            duration_count: 1,
            duration_sum: 4.5,
            ..FlowMetrics::default()
        };
        m.runs.insert("ok".into(), 1);
        m.duration_buckets = [0, 1, 1, 1, 1, 1, 1, 1];
        flows.insert("re\"fund".to_string(), m);
        let text = render(&flows);
        for line in [
            "# TYPE engine_records_read_total counter",
            "engine_records_read_total{flow=\"re\\\"fund\"} 30",
            "engine_records_written_total{flow=\"re\\\"fund\"} 12",
            "engine_runs_total{flow=\"re\\\"fund\",outcome=\"ok\"} 1",
            "engine_run_duration_seconds_bucket{flow=\"re\\\"fund\",le=\"1\"} 0",
            "engine_run_duration_seconds_bucket{flow=\"re\\\"fund\",le=\"5\"} 1",
            "engine_run_duration_seconds_bucket{flow=\"re\\\"fund\",le=\"+Inf\"} 1",
            "engine_run_duration_seconds_sum{flow=\"re\\\"fund\"} 4.5",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
