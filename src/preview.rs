//! `engine preview`: the exact request bodies a run would send for given source records.
//!
//! Offline. Reads records (a JSON array, or a whole API response from which the source
//! operation's `records` path picks them), maps each one, batches the mapped records the
//! way a run does, and prints each write body on stdout. Records that fail are reported on
//! stderr beside it, with their key, the reason and where in the flow the failing template
//! is. Reads files and the environment; nothing else.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value as Json;

use crate::check;
use crate::config::{self, model::Flow};
use crate::diagnostic::{self, Diagnostic, SourceCache};
use crate::error::{Error, ExitCode, Location, Result};
use crate::record;
use crate::request::{self, Env};

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
                mapped.push(ok);
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
        "{} record{} mapped into {bodies} `{}` request{} (POST …/{}); {failures} record{} failed",
        mapped_count,
        if mapped_count == 1 { "" } else { "s" },
        operation.name,
        if bodies == 1 { "" } else { "s" },
        operation.path,
        if failures == 1 { "" } else { "s" },
    );
    Ok(if failures > 0 {
        ExitCode::Partial
    } else {
        ExitCode::Ok
    })
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

/// Records from `input`: an array of records, or a response the source's `records` path applies to.
pub fn read_records(flow: &Flow, input: &Path) -> Result<Vec<Json>> {
    let text = std::fs::read_to_string(input).map_err(|err| Error::io("read", input, err))?;
    let json: Json = serde_json::from_str(&text).map_err(|err| {
        Error::usage(format!("`{}` is not valid JSON", input.display()))
            .with_location(Location::new(input, err.line(), err.column(), 1))
            .with_source(err)
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
