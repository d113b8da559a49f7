//! The end of `engine run` / `engine retry`: find the run's events, send them, say so on stderr.
//!
//! The one place alerts meet a run. It reads the alerts file before the run (so a broken file
//! is refused with `check`'s diagnostics before anything is written), and after the run reads
//! the state (read-only: the reasons of the records parked since the run started, and the run
//! history for `stale`), then sends. Nothing here changes the run's outcome or exit code.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::alert::compile::{self, Alerts};
use crate::alert::events::{self, History, RunEnd};
use crate::alert::message::Alert;
use crate::alert::raw::EventKind;
use crate::alert::send;
use crate::check;
use crate::error::{Error, ErrorKind, Result};
use crate::request::Env;
use crate::run::Summary;
use crate::state::Store;

/// The alerts file a flow uses: `alerts.yaml` next to the flow file.
pub fn alerts_file(flow_file: &Path) -> PathBuf {
    flow_file
        .parent()
        .unwrap_or(Path::new("."))
        .join("alerts.yaml")
}

/// Alerts for one command: off, or the checked alerts file and the flow file named.
pub struct Hook {
    config: Option<Alerts>,
    flow_file: String,
}

impl Hook {
    /// When `on`, the alerts file next to `flow_file` (none there: no alerts), refused with
    /// its diagnostics when invalid.
    pub fn load(flow_file: &Path, on: bool) -> Result<Hook> {
        let file = alerts_file(flow_file);
        // Whatever is there is read (a device or a folder is an error, not "no alerts").
        let config = match on && file.exists() {
            false => None,
            true => {
                let loaded = compile::load(&file);
                match loaded.value {
                    Some(alerts) => Some(alerts),
                    None => return Err(check::load_failure(&loaded)),
                }
            }
        };
        Ok(Hook {
            config,
            flow_file: flow_file.display().to_string(),
        })
    }

    /// After a run or retry of `flow` that started at `started`: send what its end calls for,
    /// and say what became of each alert (the caller prints it).
    pub async fn after(
        &self,
        flow: &str,
        store: &Path,
        started: DateTime<Utc>,
        result: &Result<Summary>,
        env: &Env,
    ) -> Vec<send::Report> {
        let Some(config) = &self.config else {
            return Vec::new();
        };
        // Someone stopped the run on purpose (Ctrl-C, SIGTERM of a deployment): nobody to page.
        if let Err(err) = result
            && err.kind() == ErrorKind::Interrupted
        {
            return Vec::new();
        }
        let store = Store::open(store).ok();
        let end = match result {
            Err(err) => RunEnd::Failed(error_text(err)),
            Ok(summary) => RunEnd::Finished {
                parked: summary.failed + summary.conflicts,
                reasons: store
                    .as_ref()
                    .map(|store| parked_since(store, flow, started, config.max_reasons))
                    .unwrap_or_default(),
                unsettled: summary.unsettled,
            },
        };
        let now = Utc::now();
        let mut found = events::run_events(&end, config.max_reasons);
        if let (Some(after), Some(store), true) =
            (config.stale_after, &store, config.wants(EventKind::Stale))
            && let Some(history) = history(store, flow, started)
        {
            found.extend(events::stale(&history, now, after));
        }
        let alerts: Vec<Alert> = found
            .into_iter()
            .map(|event| Alert {
                flow: flow.to_string(),
                flow_file: self.flow_file.clone(),
                at: now,
                event,
            })
            .collect();
        if alerts.is_empty() {
            return Vec::new();
        }
        send::send(config, &alerts, env).await
    }
}

/// The error as one line: its message and causes.
fn error_text(err: &Error) -> String {
    std::iter::once(err.message().to_string())
        .chain(err.causes())
        .collect::<Vec<_>>()
        .join(": ")
}

/// (key, reason) of the first `limit` records of `flow` parked since `started`.
fn parked_since(
    store: &Store,
    flow: &str,
    started: DateTime<Utc>,
    limit: usize,
) -> Vec<(String, String)> {
    store
        .parked_since(flow, started, limit)
        .unwrap_or_default()
        .into_iter()
        .map(|(key, reason)| {
            let reason = reason.unwrap_or_else(|| "no reason recorded".to_string());
            (key, reason)
        })
        .collect()
}

/// The history the `stale` check reads; the previous check is the end of the last run that
/// started before this one.
fn history(store: &Store, flow: &str, started: DateTime<Utc>) -> Option<History> {
    let successes = store.success_history(flow).ok()?;
    let previous_check = store
        .runs(flow, 5)
        .ok()?
        .into_iter()
        .find(|run| run.started < started)
        .map(|run| run.finished.unwrap_or(run.started));
    Some(History {
        last_success: successes.last_success,
        first_run: successes.first_run,
        previous_check,
    })
}
