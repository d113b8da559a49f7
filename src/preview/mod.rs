//! `engine preview`: the exact request bodies a run would send for given source records.
//!
//! Offline. Reads records (a JSON array, or a whole API response from which the source
//! operation's `records` path picks them), maps each one, batches the mapped records the
//! way a run does, and prints the write bodies on stdout: one JSON array, or one body per
//! line. Records that fail are reported on stderr beside it, with their key, the reason and
//! where in the flow the failing template is. Reads files and the environment; nothing else.
//!
//! Memory does not grow with the input: the input is read twice, record by record
//! (`input`). The first pass keeps only each key's newest version (its modified time and
//! position), parsing only the fields the key and modified time read; the second maps the
//! winners, parsing only the fields the mapping reads (in a list an `$each` repeats over, only
//! the item fields read: `record::mapped_fields`), and prints each body as its batch fills.

use std::collections::{HashMap, HashSet};
use std::io::Write;

use serde::Serialize as _;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value as Json;

use crate::check;
use crate::config::{self, model::Flow};
use crate::diagnostic::{self, Diagnostic, SourceCache};
use crate::error::{Error, ErrorKind, ExitCode, Result};
use crate::projected::Projection;
use crate::record;
use crate::request::{self, Env};
use crate::time;

pub(crate) mod elements;
pub(crate) mod input;

/// How the bodies are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON array of the request bodies, pretty-printed.
    Json,
    /// JSON Lines: one request body per line.
    Jsonl,
}

/// Preview `flow_file` on the records in `input`, printing bodies to stdout and problems to stderr.
pub fn preview(flow_file: &Path, input: &Path, format: Format, env: &Env) -> Result<ExitCode> {
    let stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout());
    preview_to(flow_file, input, format, env, stdout)
}

/// [`preview`], writing the bodies to `out`.
pub fn preview_to(
    flow_file: &Path,
    input: &Path,
    format: Format,
    env: &Env,
    out: impl Write,
) -> Result<ExitCode> {
    Previewer::load(flow_file)?.preview_to(input, format, env, out)
}

/// A flow loaded to preview inputs with: the benchmark measures the mapping of records this
/// way, apart from loading the flow.
pub struct Previewer {
    flow: Flow,
    /// The flow's files, for quoting them beside a record's failure.
    sources: SourceCache,
}

impl Previewer {
    pub fn load(flow_file: &Path) -> Result<Previewer> {
        let loaded = config::load_flow(flow_file);
        let Some(flow) = loaded.value else {
            return Err(check::load_failure(&loaded));
        };
        let mut sources = SourceCache::new();
        for (path, text) in &loaded.sources {
            sources.insert(path, text.clone());
        }
        Ok(Previewer { flow, sources })
    }

    /// [`preview`] with this flow, writing the bodies to `out`.
    pub fn preview_to(
        &mut self,
        input: &Path,
        format: Format,
        env: &Env,
        out: impl Write,
    ) -> Result<ExitCode> {
        preview_flow(&self.flow, &mut self.sources, input, format, env, out)
    }
}

fn preview_flow(
    flow: &Flow,
    sources: &mut SourceCache,
    input: &Path,
    format: Format,
    env: &Env,
    out: impl Write,
) -> Result<ExitCode> {
    let input = input::Replayable::new(input)?;
    let records_path = flow.source.operation().records.as_ref();
    let newest = newest_versions(flow, &input.path, records_path)?;
    let inputs = request::target_inputs(flow, env)
        .map_err(|err| eval_error("cannot evaluate the target's params", err))?;
    let batch_size = flow.target.batch_size.max(1) as usize;
    let mut out = Bodies::new(format, out);
    let mut batch: Vec<(String, Json)> = Vec::with_capacity(batch_size);
    let (mut position, mut mapped, mut failures) = (0, 0, 0);
    // Only the fields the mapping reads are parsed; the others are skipped unbuilt. Not
    // `exact`, which costs about 3% of a preview: a record whose skipped fields hold a lone
    // surrogate escape, a number beyond an `f64` or nesting beyond 128 levels is previewed,
    // where `engine run` refuses its page as serde_json does (see `projected::parse_fields`).
    let fields = record::mapped_fields(flow);
    let projection = fields.as_ref().map(|fields| Projection {
        fields,
        exact: false,
    });
    input::for_each_input(&input.path, records_path, projection, &mut |record| {
        let index = position;
        position += 1;
        let record = Arc::new(record);
        if newest.lost.contains(&index) {
            newest.tell_dropped(flow, index, &record);
            return Ok(());
        }
        match record::map_target(flow, record) {
            Ok(ok) => {
                for note in &ok.skipped {
                    eprintln!("warning: record `{}`: {note}", ok.key);
                }
                mapped += 1;
                batch.push((ok.key, ok.target));
            }
            Err(failure) => {
                failures += 1;
                eprintln!(
                    "{}",
                    diagnostic::render(&failure_diagnostic(index, &failure), sources)
                );
            }
        }
        if batch.len() == batch_size {
            out.push(&write_body(flow, &inputs, std::mem::take(&mut batch), env)?)?;
        }
        Ok(())
    })?;
    if !batch.is_empty() {
        out.push(&write_body(flow, &inputs, batch, env)?)?;
    }
    let bodies = out.finish()?;
    let operation = flow.target.operation();
    if let Some(files) = &flow.target.connector.files {
        eprintln!(
            "{mapped} record{} mapped into {bodies} batch{} for `{}`; {failures} record{} failed",
            plural(mapped),
            if bodies == 1 { "" } else { "es" },
            files.path.display(),
            plural(failures),
        );
        return Ok(if failures > 0 {
            ExitCode::Partial
        } else {
            ExitCode::Ok
        });
    }
    eprintln!(
        "{} record{} mapped into {bodies} `{}` request{} ({} …/{}); {failures} record{} failed",
        mapped,
        plural(mapped),
        operation.name,
        plural(bodies),
        operation.method.as_str(),
        operation.path.text.trim_start_matches('/'),
        plural(failures),
    );
    Ok(if failures > 0 {
        ExitCode::Partial
    } else {
        ExitCode::Ok
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn write_body(flow: &Flow, inputs: &Json, batch: request::Keyed, env: &Env) -> Result<Json> {
    // A file target receives the mapped records themselves.
    if flow.target.connector.files.is_some() {
        return Ok(Json::Array(
            batch.into_iter().map(|(_, record)| record).collect(),
        ));
    }
    request::write_body(flow, inputs, batch, env)
        .map_err(|err| eval_error("cannot build the request body", err))
}

/// Print `bodies` on stdout as `format` says, as `preview` does (`engine run --dry-run`);
/// returns how many.
pub fn print_bodies(format: Format, bodies: &[Json]) -> Result<usize> {
    let mut out = Bodies::new(format, std::io::stdout().lock());
    for body in bodies {
        out.push(body)?;
    }
    out.finish()
}

/// The bodies on stdout, each as soon as it is built.
struct Bodies<W: Write> {
    format: Format,
    out: W,
    count: usize,
}

impl<W: Write> Bodies<W> {
    fn new(format: Format, out: W) -> Bodies<W> {
        Bodies {
            format,
            out,
            count: 0,
        }
    }

    fn push(&mut self, body: &Json) -> Result<()> {
        let written = match self.format {
            Format::Jsonl => serde_json::to_writer(&mut self.out, body)
                .map_err(std::io::Error::from)
                .and_then(|()| self.out.write_all(b"\n")),
            // Exactly what `to_string_pretty` makes of the whole array, one element at a time:
            // each body pretty-printed one level in.
            Format::Json => {
                let start: &[u8] = if self.count == 0 { b"[\n  " } else { b",\n  " };
                self.out.write_all(start).and_then(|()| {
                    let mut serializer =
                        serde_json::Serializer::with_formatter(&mut self.out, Indented::default());
                    body.serialize(&mut serializer)
                        .map_err(std::io::Error::from)
                })
            }
        };
        self.count += 1;
        stdout_result(written)
    }

    /// Close the array and flush; returns how many bodies were printed.
    fn finish(mut self) -> Result<usize> {
        stdout_result(self.end())?;
        Ok(self.count)
    }

    fn end(&mut self) -> std::io::Result<()> {
        let end: &[u8] = match (self.format, self.count) {
            (Format::Jsonl, _) => b"",
            (Format::Json, 0) => b"[]\n",
            (Format::Json, _) => b"\n]\n",
        };
        self.out.write_all(end)?;
        self.out.flush()
    }
}

/// serde_json's `PrettyFormatter` (two spaces a level) for a value one level in: an element
/// of the array `to_string_pretty` prints.
struct Indented {
    level: usize,
    has_value: bool,
}

impl Default for Indented {
    fn default() -> Indented {
        Indented {
            level: 1,
            has_value: false,
        }
    }
}

impl Indented {
    fn new_line<W: ?Sized + Write>(&self, out: &mut W, first: bool) -> std::io::Result<()> {
        out.write_all(if first { b"\n" } else { b",\n" })?;
        (0..self.level).try_for_each(|_| out.write_all(b"  "))
    }

    fn open<W: ?Sized + Write>(&mut self, out: &mut W, bracket: &[u8]) -> std::io::Result<()> {
        self.level += 1;
        self.has_value = false;
        out.write_all(bracket)
    }

    fn close<W: ?Sized + Write>(&mut self, out: &mut W, bracket: &[u8]) -> std::io::Result<()> {
        self.level -= 1;
        if self.has_value {
            out.write_all(b"\n")?;
            (0..self.level).try_for_each(|_| out.write_all(b"  "))?;
        }
        out.write_all(bracket)
    }
}

impl serde_json::ser::Formatter for Indented {
    fn begin_array<W: ?Sized + Write>(&mut self, out: &mut W) -> std::io::Result<()> {
        self.open(out, b"[")
    }
    fn end_array<W: ?Sized + Write>(&mut self, out: &mut W) -> std::io::Result<()> {
        self.close(out, b"]")
    }
    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        out: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.new_line(out, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + Write>(&mut self, out: &mut W) -> std::io::Result<()> {
        self.open(out, b"{")
    }
    fn end_object<W: ?Sized + Write>(&mut self, out: &mut W) -> std::io::Result<()> {
        self.close(out, b"}")
    }
    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        out: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.new_line(out, first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, out: &mut W) -> std::io::Result<()> {
        out.write_all(b": ")
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

fn stdout_result(written: std::io::Result<()>) -> Result<()> {
    match written {
        // `engine preview … | head`: stop quietly, as `println!` meeting a closed pipe does
        // through the CLI's panic hook.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {
            std::process::exit(ExitCode::ClosedPipe.code())
        }
        Err(err) => {
            Err(Error::new(ErrorKind::Io, "cannot write to standard output").with_source(err))
        }
        Ok(()) => Ok(()),
    }
}

/// The first pass: of copies with the same key, the one modified last wins (the later one in
/// the input on a tie), as a run sends one copy per key.
struct Newest {
    /// Per key: the winner's modified time and position.
    winners: HashMap<String, (Option<String>, usize)>,
    /// Positions of the copies that lost.
    lost: HashSet<usize>,
}

fn newest_versions(
    flow: &Flow,
    input: &Path,
    records: Option<&config::model::JsonPath>,
) -> Result<Newest> {
    let mut newest = Newest {
        winners: HashMap::new(),
        lost: HashSet::new(),
    };
    let mut position = 0;
    // Only the key and the modified time are read here: the other fields are skipped unbuilt.
    let fields = record::key_fields(flow);
    let projection = fields.as_ref().map(|fields| Projection {
        fields,
        exact: false,
    });
    input::for_each_input(input, records, projection, &mut |record| {
        // A record whose key cannot be read fails in the second pass, with the reason.
        if let Ok((key, modified)) = record::key_of(flow, &Arc::new(record)) {
            newest.offer(key, modified, position);
        }
        position += 1;
        Ok(())
    })?;
    Ok(newest)
}

impl Newest {
    fn offer(&mut self, key: String, modified: Option<String>, position: usize) {
        match self.winners.get_mut(&key) {
            Some(best) if newer(&best.0, &modified) => {
                self.lost.insert(position);
            }
            Some(best) => {
                self.lost.insert(best.1);
                *best = (modified, position);
            }
            None => {
                self.winners.insert(key, (modified, position));
            }
        }
    }

    /// Say on stderr that the record at `index` is not previewed, and which copy is.
    fn tell_dropped(&self, flow: &Flow, index: usize, record: &Arc<Json>) {
        let Ok((key, _)) = record::key_of(flow, record) else {
            return;
        };
        let Some((modified, best)) = self.winners.get(&key) else {
            return;
        };
        eprintln!(
            "warning: record #{} repeats key `{}`; a run sends only one copy, so the preview shows record #{}{}",
            index + 1,
            key,
            best + 1,
            modified
                .as_ref()
                .map_or(String::new(), |m| format!(" (modified `{m}`)")),
        );
    }
}

/// Whether `current` was modified after `candidate` (so `candidate` does not replace it).
fn newer(current: &Option<String>, candidate: &Option<String>) -> bool {
    let instant = |m: &Option<String>| m.as_deref().and_then(|m| time::parse_instant(m).ok());
    match (instant(current), instant(candidate)) {
        (Some(a), Some(b)) => a > b,
        _ => current > candidate,
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn bodies_print_as_the_whole_array_would_or_one_per_line() {
        let bodies = [
            json!({"a": [1, {"b": "x\ny"}], "c": {}, "d": []}),
            json!([]),
            json!("text"),
        ];
        for count in 0..=bodies.len() {
            let shown = &bodies[..count];
            for format in [Format::Json, Format::Jsonl] {
                let mut out = Bodies::new(format, Vec::new());
                for body in shown {
                    out.push(body).unwrap();
                }
                out.end().unwrap();
                let expected = match format {
                    Format::Json => serde_json::to_string_pretty(shown).unwrap() + "\n",
                    Format::Jsonl => shown.iter().map(|b| b.to_string() + "\n").collect(),
                };
                assert_eq!(
                    String::from_utf8(out.out).unwrap(),
                    expected,
                    "{format:?} {count}"
                );
            }
        }
    }
}
