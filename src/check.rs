//! `engine check`: every problem of the flows, connectors and alerts file, offline, all at once.
//!
//! Finds the files (default: every flow in `mappings/`, every connector in
//! `mappings/connectors/` and `mappings/alerts.yaml`), compiles them (which checks shape,
//! references, templates, placeholders, JSONPaths, expressions and the mapping against the API
//! schemas), adds warnings for environment variables a run would need but are unset (and for
//! alert channels skipped for want of them), and prints the lot.
//! Reads files and the environment; never touches the network.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use crate::alert;
use crate::config::model::Flow;
use crate::config::yaml::Segment;
use crate::config::{self, Loaded};
use crate::diagnostic::{self, Diagnostic, JsonDiagnostic, Severity, SourceCache};
use crate::error::{Error, ExitCode, Location, Result};
use crate::request::Env;
use crate::template::{Origin, TemplateSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people: `error: …`, `--> file:line:col`, the line, a caret, a hint.
    Human,
    /// One JSON object for CI.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Flow,
    Connector,
    Alerts,
}

/// What `check` found.
#[derive(Debug, Default)]
pub struct Outcome {
    pub checked: Vec<PathBuf>,
    pub diagnostics: Vec<Diagnostic>,
    sources: SourceCache,
}

impl Outcome {
    pub fn errors(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    pub fn warnings(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count()
    }
}

/// Check `paths` (files or directories; none means `mappings/`).
pub fn check(paths: &[PathBuf], env: &Env) -> Outcome {
    let mut outcome = Outcome::default();
    let mut targets: Vec<(PathBuf, Kind)> = Vec::new();
    let default = [PathBuf::from("mappings")];
    let paths = if paths.is_empty() {
        &default[..]
    } else {
        paths
    };
    for path in paths {
        if path.is_dir() {
            // A folder's files are recognised one by one, so that `engine check
            // mappings/connectors` checks connectors rather than reading them as flows.
            targets.extend(yaml_files(path).into_iter().map(|f| {
                let kind = kind_of(&f);
                (f, kind)
            }));
            targets.extend(
                yaml_files(&path.join("connectors"))
                    .into_iter()
                    .map(|f| (f, Kind::Connector)),
            );
        } else if path.exists() {
            targets.push((path.clone(), kind_of(path)));
        } else {
            outcome.diagnostics.push(
                Diagnostic::error(format!("`{}` does not exist", path.display()))
                    .with_hint("pass a flow file, a connector file or a folder"),
            );
        }
    }
    if targets.is_empty() && outcome.diagnostics.is_empty() {
        outcome.diagnostics.push(
            Diagnostic::error(format!(
                "no flow or connector files found in {}",
                paths
                    .iter()
                    .map(|p| format!("`{}`", p.display()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .with_hint("run `engine check` in the project folder, or pass the files to check"),
        );
    }
    // The same file named twice (`mappings/refund.yaml`, `./mappings/refund.yaml`) is checked once.
    let mut named = BTreeSet::new();
    targets.retain(|(file, _)| named.insert(normal(file)));
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    for (file, kind) in targets.iter().filter(|(_, k)| *k == Kind::Flow) {
        let loaded = config::load_flow(file);
        if let Some(flow) = &loaded.value {
            env_warnings(&flow.templates, env, &mut outcome.diagnostics);
        }
        record(&mut outcome, &mut seen, file, loaded, *kind);
    }
    for (file, kind) in targets.iter().filter(|(_, k)| *k == Kind::Connector) {
        if seen.contains(&normal(file)) {
            continue;
        }
        let loaded = config::load_connector(file);
        if let Some(standalone) = &loaded.value {
            env_warnings(&standalone.templates, env, &mut outcome.diagnostics);
        }
        record(&mut outcome, &mut seen, file, loaded, *kind);
    }
    for (file, kind) in targets.iter().filter(|(_, k)| *k == Kind::Alerts) {
        let loaded = alert::load(file);
        if let Some(alerts) = &loaded.value {
            alert_env_notes(alerts, env, &mut outcome.diagnostics);
        }
        record(&mut outcome, &mut seen, file, loaded, *kind);
    }
    dedupe(&mut outcome.diagnostics);
    outcome
}

/// Channels a run would skip because the variables of their URL or secret are unset.
fn alert_env_notes(alerts: &alert::Alerts, env: &Env, out: &mut Vec<Diagnostic>) {
    for channel in alerts.channels.iter().filter(|c| c.enabled) {
        let missing = alerts.missing_env(channel, env);
        if missing.is_empty() {
            continue;
        }
        let names: Vec<String> = missing.iter().map(|v| format!("`{v}`")).collect();
        out.push(
            Diagnostic::warning(format!(
                "alert channel `{}` is skipped: environment variable{} {} not set",
                channel.name,
                plural(missing.len()),
                names.join(", ")
            ))
            .at(Some(channel.location.clone()))
            .with_hint(format!(
                "export {}=… where `engine run` runs, or set `enabled: false`",
                missing[0]
            )),
        );
    }
}

fn normal(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

fn record<T>(
    outcome: &mut Outcome,
    seen: &mut BTreeSet<PathBuf>,
    file: &Path,
    loaded: Loaded<T>,
    kind: Kind,
) {
    outcome.checked.push(file.to_path_buf());
    for (path, text) in loaded.sources {
        if kind == Kind::Flow || path == file {
            let is_yaml = path.extension().is_some_and(|x| x == "yaml" || x == "yml");
            // A connector checked through a flow counts as checked, under its own name.
            if is_yaml && path != file && !seen.contains(&normal(&path)) {
                outcome.checked.push(path.clone());
            }
            seen.insert(normal(&path));
        }
        outcome.sources.insert(&path, text);
    }
    outcome
        .diagnostics
        .extend(loaded.errors.iter().map(Diagnostic::from));
    outcome
        .diagnostics
        .extend(loaded.warnings.iter().map(|w| Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::from(w)
        }));
}

fn dedupe(diagnostics: &mut Vec<Diagnostic>) {
    let mut seen = BTreeSet::new();
    diagnostics.retain(|d| {
        seen.insert((
            d.message.clone(),
            d.location
                .as_ref()
                .map(|l| (l.file.clone(), l.line, l.column)),
        ))
    });
}

/// The flow files among `paths` (folders give their flows, as `check` finds them; files are
/// kept as given); none means every flow in `mappings/`.
pub fn flow_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    let default = [PathBuf::from("mappings")];
    let paths = if paths.is_empty() {
        &default[..]
    } else {
        paths
    };
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            files.extend(
                yaml_files(path)
                    .into_iter()
                    .filter(|f| kind_of(f) == Kind::Flow),
            );
        } else {
            files.push(path.clone());
        }
    }
    files
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// A connector file has `operations` (or, when it cannot be read as a mapping, lies in a
/// folder named `connectors`); anything else is read as a flow.
fn kind_of(file: &Path) -> Kind {
    let text = config::file::read_text_for_display(file, config::file::MAX_CONFIG_BYTES)
        .unwrap_or_default();
    let in_connectors = file
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|name| name == "connectors");
    // Through `Document`, which refuses a runaway nesting at once (serde_yaml takes minutes).
    match config::yaml::Document::parse(file, text).map(|doc| doc.value) {
        Ok(serde_yaml::Value::Mapping(map)) if map.contains_key("operations") => Kind::Connector,
        Ok(serde_yaml::Value::Mapping(map))
            if map.contains_key("source") || map.contains_key("target") =>
        {
            Kind::Flow
        }
        Ok(serde_yaml::Value::Mapping(map))
            if map.contains_key("channels") || map.contains_key("rules") =>
        {
            Kind::Alerts
        }
        _ if file.file_name().is_some_and(|name| name == "alerts.yaml") => Kind::Alerts,
        _ if in_connectors => Kind::Connector,
        _ => Kind::Flow,
    }
}

static ENV_WITH_DEFAULT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"env\.([A-Za-z_][A-Za-z0-9_]*)\s*\|\s*default\b").expect("valid regex")
});

/// Warn about environment variables a run would read but that are not set.
fn env_warnings(templates: &TemplateSet, env: &Env, out: &mut Vec<Diagnostic>) {
    for (var, location) in unset_env(templates, env, |_| true) {
        out.push(
            Diagnostic::warning(format!(
                "environment variable `{var}` is not set; `engine run` needs it"
            ))
            .at(Some(location))
            .with_hint(format!(
                "export {var}=… before running (the README lists every variable)"
            )),
        );
    }
}

/// The environment variables that templates chosen by `wanted` read without a `| default`
/// and `env` lacks, each with the first place it is read, in the order they are met.
fn unset_env(
    templates: &TemplateSet,
    env: &Env,
    wanted: impl Fn(&Origin) -> bool,
) -> Vec<(String, Location)> {
    let mut unset: Vec<(String, Location)> = Vec::new();
    for id in templates.ids().filter(|id| wanted(templates.origin(*id))) {
        let optional: BTreeSet<String> = ENV_WITH_DEFAULT
            .captures_iter(templates.source(id))
            .map(|c| c[1].to_string())
            .collect();
        for name in templates.undeclared(id) {
            let Some(var) = name.strip_prefix("env.") else {
                continue;
            };
            if env.contains_key(var) || optional.contains(var) || unset.iter().any(|u| u.0 == var) {
                continue;
            }
            unset.push((var.to_string(), templates.origin(id).location.clone()));
        }
    }
    unset
}

/// Which of a flow's templates a command evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// `run`: both connectors and the whole flow.
    Everything,
    /// `retry`: what writing needs, not the source's connector or `source:` section.
    Target,
}

/// Refuse to start when a variable the command reads is not set, naming every one of them
/// and where it is read (the command itself would stop at the first).
pub fn require_env(flow: &Flow, env: &Env, needs: Needs) -> Result<()> {
    let source_file = &flow.source.connector.file;
    let wanted = |origin: &Origin| match needs {
        Needs::Everything => true,
        Needs::Target => {
            let in_source_connector =
                origin.location.file == *source_file && *source_file != flow.target.connector.file;
            let in_source_section = origin.location.file == flow.file
                && matches!(origin.path.segments().first(), Some(Segment::Key(key)) if key == "source");
            !in_source_connector && !in_source_section
        }
    };
    let mut unset = unset_env(&flow.templates, env, wanted);
    unset.sort_by(|a, b| a.0.cmp(&b.0));
    let hint = "set them in the environment, or in a file given with `--env-file FILE` \
                (`engine sim all --env-file sandbox.env` writes one for the sandboxes)";
    match unset.as_slice() {
        [] => Ok(()),
        [(var, location)] => Err(
            Error::config(format!("environment variable `{var}` is not set"))
                .with_location(location.clone())
                .with_hint(hint),
        ),
        several => {
            let mut message = format!("{} environment variables are not set:", several.len());
            for (var, location) in several {
                message.push_str(&format!("\n    `{var}` (read at {location})"));
            }
            Err(Error::config(message).with_hint(hint))
        }
    }
}

/// Print `outcome` and return the exit code: 0 without errors (warnings allowed), 3 with errors.
pub fn report(outcome: &mut Outcome, format: Format) -> ExitCode {
    let code = if outcome.errors() > 0 {
        ExitCode::Config
    } else {
        ExitCode::Ok
    };
    match format {
        Format::Human => {
            let mut ordered: Vec<&Diagnostic> = outcome
                .diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .collect();
            ordered.extend(
                outcome
                    .diagnostics
                    .iter()
                    .filter(|d| d.severity == Severity::Warning),
            );
            for diagnostic in ordered {
                eprintln!("{}", diagnostic::render(diagnostic, &mut outcome.sources));
            }
            let files = outcome.checked.len();
            eprintln!(
                "checked {files} file{}: {} error{}, {} warning{}",
                plural(files),
                outcome.errors(),
                plural(outcome.errors()),
                outcome.warnings(),
                plural(outcome.warnings())
            );
        }
        Format::Json => {
            let json = serde_json::json!({
                "ok": outcome.errors() == 0,
                "checked": outcome.checked.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                "errors": outcome.diagnostics.iter().filter(|d| d.severity == Severity::Error).map(JsonDiagnostic::from).collect::<Vec<_>>(),
                "warnings": outcome.diagnostics.iter().filter(|d| d.severity == Severity::Warning).map(JsonDiagnostic::from).collect::<Vec<_>>(),
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&json).expect("diagnostics serialise")
            );
        }
    }
    code
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Print the errors and warnings of a failed load (for `preview` and `run`), returning an error to exit with.
pub fn load_failure<T>(loaded: &Loaded<T>) -> Error {
    let mut sources = SourceCache::new();
    for (path, text) in &loaded.sources {
        sources.insert(path, text.clone());
    }
    for error in &loaded.errors {
        eprintln!(
            "{}",
            diagnostic::render(&Diagnostic::from(error), &mut sources)
        );
    }
    Error::config(format!(
        "the configuration has {} error{}; `engine check` lists them too",
        loaded.errors.len(),
        plural(loaded.errors.len())
    ))
}
