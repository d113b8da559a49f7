//! `engine preview`: the exact request bodies a run would send for given source records.
//!
//! Offline. Reads records (a JSON array, or a whole API response from which the source
//! operation's `records` path picks them), maps each one, batches the mapped records the
//! way a run does, and prints each write body on stdout. Records that fail are reported on
//! stderr beside it, with their key, the reason and where in the flow the failing template
//! is. Reads files and the environment; nothing else.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value as Json;

use crate::check;
use crate::config::{self, model::Flow};
use crate::diagnostic::{self, Diagnostic, SourceCache};
use crate::error::{Error, ExitCode, Location, Result};
use crate::record;
use crate::request::{self, Env};
use crate::time;

/// Preview `flow_file` on the records in `input`, printing bodies to stdout and problems to stderr.
pub fn preview(flow_file: &Path, input: &Path, env: &Env) -> Result<ExitCode> {
    let loaded = config::load_flow(flow_file);
    let Some(flow) = &loaded.value else {
        return Err(check::load_failure(&loaded));
    };
    let mut sources = SourceCache::new();
    for (path, text) in &loaded.sources {
        sources.insert(path, text.clone());
    }
    let records = read_records(flow, input)?;
    let mut mapped = Vec::new();
    let mut failures = 0;
    for (index, record) in records.into_iter().enumerate() {
        match record::map(flow, Arc::new(record)) {
            Ok(ok) => {
                for note in &ok.skipped {
                    eprintln!("warning: record `{}`: {note}", ok.key);
                }
                mapped.push((index, ok));
            }
            Err(failure) => {
                failures += 1;
                eprintln!(
                    "{}",
                    diagnostic::render(&failure_diagnostic(index, &failure), &mut sources)
                );
            }
        }
    }
    let mapped = drop_repeated_keys(mapped);
    let inputs = request::target_inputs(flow, env)
        .map_err(|err| eval_error("cannot evaluate the target's params", err))?;
    let batch_size = flow.target.batch_size.max(1) as usize;
    let mapped_count = mapped.len();
    let mut targets = mapped.into_iter().map(|m| m.target).peekable();
    let mut bodies = 0;
    while targets.peek().is_some() {
        let batch: Vec<Json> = targets.by_ref().take(batch_size).collect();
        let body = request::write_body(flow, &inputs, batch, env)
            .map_err(|err| eval_error("cannot build the request body", err))?;
        println!(
            "{}",
            serde_json::to_string_pretty(&body).expect("JSON serialises")
        );
        bodies += 1;
    }
    let operation = flow.target.operation();
    eprintln!(
        "{} record{} mapped into {bodies} `{}` request{} ({} …/{}); {failures} record{} failed",
        mapped_count,
        if mapped_count == 1 { "" } else { "s" },
        operation.name,
        if bodies == 1 { "" } else { "s" },
        operation.method.as_str(),
        operation.path.text,
        if failures == 1 { "" } else { "s" },
    );
    Ok(if failures > 0 {
        ExitCode::Partial
    } else {
        ExitCode::Ok
    })
}

/// One record per key, as a run sends: of copies with the same key the one modified last wins
/// (the later one in the input on a tie), and each drop is said on stderr.
fn drop_repeated_keys(mapped: Vec<(usize, record::Mapped)>) -> Vec<record::Mapped> {
    let mut winner: HashMap<String, usize> = HashMap::new();
    for (position, (_, record)) in mapped.iter().enumerate() {
        match winner.get(&record.key) {
            Some(&best) if newer(&mapped[best].1, record) => {}
            _ => {
                winner.insert(record.key.clone(), position);
            }
        }
    }
    let mut kept = Vec::with_capacity(winner.len());
    for (position, (index, record)) in mapped.iter().enumerate() {
        let best = winner[&record.key];
        if best == position {
            continue;
        }
        let (best_index, best_record) = &mapped[best];
        eprintln!(
            "warning: record #{} repeats key `{}`; a run sends only one copy, so the preview shows record #{}{}",
            index + 1,
            record.key,
            best_index + 1,
            best_record
                .modified
                .as_ref()
                .map_or(String::new(), |m| format!(" (modified `{m}`)")),
        );
    }
    for (position, (_, record)) in mapped.into_iter().enumerate() {
        if winner[&record.key] == position {
            kept.push(record);
        }
    }
    kept
}

/// Whether `current` was modified after `candidate` (so `candidate` does not replace it).
fn newer(current: &record::Mapped, candidate: &record::Mapped) -> bool {
    let instant = |m: &Option<String>| m.as_deref().and_then(|m| time::parse_instant(m).ok());
    match (instant(&current.modified), instant(&candidate.modified)) {
        (Some(a), Some(b)) => a > b,
        _ => current.modified > candidate.modified,
    }
}

fn failure_diagnostic(index: usize, failure: &record::Failure) -> Diagnostic {
    let who = match &failure.key {
        Some(key) => format!("record `{key}`"),
        None => format!("record #{}", index + 1),
    };
    let mut diagnostic = Diagnostic::error(format!("{who}: {}", failure.error.message))
        .at(Some(failure.error.location.clone()));
    if !failure.error.target.is_empty() {
        diagnostic = diagnostic.with_label(format!("while computing `{}`", failure.error.target));
    }
    diagnostic
}

fn eval_error(what: &str, err: crate::tree::EvalError) -> Error {
    Error::config(format!("{what}: {}", err.message)).with_location(err.location)
}

/// The longest input line an error quotes.
const MAX_QUOTED_LINE: usize = 200;

/// Records from `input`: an array of records, or a response the source's `records` path applies to.
pub fn read_records(flow: &Flow, input: &Path) -> Result<Vec<Json>> {
    let text = std::fs::read_to_string(input).map_err(|err| {
        Error::usage(format!("cannot read the input `{}`", input.display())).with_source(err)
    })?;
    // Editors on Windows save UTF-8 with a byte-order mark; JSON itself has none.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let json: Json = serde_json::from_str(text).map_err(|err| {
        // API responses are often one long line: quoting it under a caret would flood the terminal.
        let line_length = text
            .lines()
            .nth(err.line().saturating_sub(1))
            .map_or(0, str::len);
        let error = if line_length <= MAX_QUOTED_LINE {
            Error::usage(format!("`{}` is not valid JSON", input.display()))
                .with_location(Location::new(input, err.line(), err.column(), 1))
        } else {
            Error::usage(format!(
                "`{}` is not valid JSON (line {}, column {})",
                input.display(),
                err.line(),
                err.column()
            ))
        };
        error.with_source(err)
    })?;
    match json {
        Json::Array(records) => Ok(records),
        Json::Object(_) => {
            let operation = flow.source.operation();
            let records = operation
                .records
                .as_ref()
                .map(|path| path.select(&json))
                .unwrap_or_default();
            if records.is_empty() {
                let path = operation.records.as_ref().map_or("", |p| p.text.as_str());
                return Err(Error::usage(format!(
                    "`{}` has no records at `{path}`",
                    input.display()
                ))
                .with_hint(
                    "give a JSON array of records, or a whole response of the source operation",
                ));
            }
            Ok(records.into_iter().cloned().collect())
        }
        _ => Err(Error::usage(format!(
            "`{}` holds neither records nor a response",
            input.display()
        ))),
    }
}
