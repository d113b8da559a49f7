//! Compiling flow and connector files into the validated model, collecting every problem.
//!
//! Two stages: the YAML's shape is checked against the raw types' schema (all problems at
//! once), then the raw values are compiled: references resolved (connector files,
//! operations, value-map files, API schemas), templates and JSONPaths compiled, durations
//! read, and the names each template reads checked against what its context offers. A flow
//! that compiles cannot fail later because of its configuration. This module reads files;
//! it sends nothing anywhere.

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use minijinja::UndefinedBehavior;
use regex::Regex;
use serde::de::DeserializeOwned;
use serde_json::Value as Json;

mod request;
mod write;

use crate::apischema::ApiSchema;
use crate::config::model::{Connector, Flow, JsonPath, Param};
use crate::config::raw::{MissPolicy, RawConnector, RawFlow};
use crate::config::shape::{self, Repair};
use crate::config::yaml::{Document, YamlPath};
use crate::error::{Error, Location};
use crate::template::scope::Scope;
use crate::template::{self, Builder, Leaf, TemplateId, TemplateSet};
use crate::time;
use crate::tree::{self, Node, collect_templates};
use crate::value_map::{ValueMap, ValueMaps};

mod auth;
mod checks;
mod concurrency;
mod connector;
mod file;
mod flow;
mod mapping;
mod pagination;
mod schedule;
mod source;
mod target;
mod update;

use checks::{check_contexts, check_names_exist};
pub use connector::load_connector;
use connector::{find_operation, merge_params, placeholder_envelope};
use flow::compile_flow;
use write::Reads;

/// The result of loading a file: the compiled value when there were no errors, and every
/// error and warning found, plus the texts read (so diagnostics show what was checked).
#[derive(Debug)]
pub struct Loaded<T> {
    pub value: Option<T>,
    pub errors: Vec<Error>,
    pub warnings: Vec<Error>,
    pub sources: Vec<(PathBuf, String)>,
}

/// A connector compiled on its own (for checking a connector file).
#[derive(Debug)]
pub struct StandaloneConnector {
    pub connector: Connector,
    pub templates: TemplateSet,
    pub envelopes: TemplateSet,
}

/// The JSON Schema of flow files (also shipped as `schemas/flow.schema.json`).
pub fn flow_schema() -> &'static Json {
    // Generated once a process: every flow read checks its file against it.
    static SCHEMA: LazyLock<Json> = LazyLock::new(|| {
        serde_json::to_value(schemars::schema_for!(RawFlow)).expect("schemas serialise")
    });
    &SCHEMA
}

/// The JSON Schema of connector files (also shipped as `schemas/connector.schema.json`).
pub fn connector_schema() -> &'static Json {
    // Generated once a process: every connector read checks its file against it.
    static SCHEMA: LazyLock<Json> = LazyLock::new(|| {
        serde_json::to_value(schemars::schema_for!(RawConnector)).expect("schemas serialise")
    });
    &SCHEMA
}

/// What a template may read, by where it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    /// Source request parameters: placeholders, `vars`, `env`.
    SourceParams,
    /// Target inputs (`params`, `vars`, `env`) and a write's or lookup's body (what
    /// [`Reads`] says).
    TargetInputs(Reads),
    /// An operation's path, query and headers: `params`, `vars`, `env`, and what [`Reads`] says.
    Request(Reads),
    /// Connector settings shared by every flow: `env` only.
    ConnectorSettings,
    /// A flow setting read once per run: `env` only.
    FlowSetting,
    /// Response envelopes and `has_more`: `body`, `status`, `headers`.
    Envelope,
    /// Lookup rows: `row`.
    Row,
    /// The flow's mapping: checked by `MappingCheck` against the API schemas instead.
    Mapping,
    /// The `signature` auth strategy: the request being signed, the secret, `env`.
    Signature,
}

impl Context {
    fn roots(self) -> &'static [&'static str] {
        match self {
            Context::SourceParams => &[
                "LAST_SYNC_TIME",
                "CURRENT_TIME",
                "PAGINATION_PAGE_SIZE",
                "PAGINATION_START_PAGE",
                "PAGINATION_OFFSET",
                "PAGINATION_CURSOR",
                "vars",
                "env",
            ],
            Context::TargetInputs(reads) | Context::Request(reads) => reads.roots(),
            Context::ConnectorSettings | Context::FlowSetting => &["env"],
            Context::Envelope => &["body", "status", "headers"],
            Context::Row => &["row"],
            Context::Mapping => &[],
            Context::Signature => &[
                "params",
                "body",
                "method",
                "path",
                "timestamp",
                "epoch_seconds",
                "epoch_millis",
                "secret",
                "env",
            ],
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Context::SourceParams => "source parameters",
            Context::TargetInputs(reads) => reads.describe_body(),
            Context::Request(_) => "a request path, query or header",
            Context::ConnectorSettings => "connector settings",
            Context::FlowSetting => "this setting",
            Context::Envelope => "a response envelope",
            Context::Row => "a lookup row",
            Context::Mapping => "the mapping",
            Context::Signature => "a request signature",
        }
    }
}

static JSONPATH_COLUMN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"-->\s*\d+:(\d+)").expect("valid regex"));
static JSONPATH_EXPECTED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)^\s*=\s*(.+)$").expect("valid regex"));

/// A file named relative to the connector file `conn` (an API schema, a params schema).
fn beside_connector(conn: &ConnectorSource, name: impl AsRef<Path>) -> PathBuf {
    tidy(
        &conn
            .connector
            .file
            .parent()
            .unwrap_or(Path::new("."))
            .join(name),
    )
}

/// `a/connectors/../../schemas/x.json` → `schemas/x.json` (lexically, for messages and reading).
pub(crate) fn tidy(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir
                if out
                    .components()
                    .next_back()
                    .is_some_and(|c| matches!(c, std::path::Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

struct Compiler {
    errors: Vec<Error>,
    warnings: Vec<Error>,
    sources: Vec<(PathBuf, String)>,
    strict: Builder,
    lenient: Builder,
    /// Templates and their contexts, checked once the sets are built.
    contexts: Vec<(TemplateId, Context, bool)>,
    /// Where a missing required text was reported and a placeholder put in its place: any
    /// other error there stems from the placeholder and is dropped.
    placeholders: Vec<Location>,
    /// Files read with shape problems, mended to be checked further.
    repaired: Vec<PathBuf>,
}

impl Compiler {
    fn new(value_maps: Arc<ValueMaps>) -> Compiler {
        Compiler {
            errors: Vec::new(),
            warnings: Vec::new(),
            sources: Vec::new(),
            strict: Builder::new(UndefinedBehavior::Strict, Arc::clone(&value_maps)),
            lenient: Builder::new(UndefinedBehavior::Chainable, value_maps),
            contexts: Vec::new(),
            placeholders: Vec::new(),
            repaired: Vec::new(),
        }
    }

    /// Read a YAML file, check its shape against `schema`, and deserialise it.
    fn read<T: DeserializeOwned>(&mut self, file: &Path, schema: &Json) -> Option<(Document, T)> {
        let doc = match Document::read(file) {
            Ok(doc) => doc,
            Err(err) => {
                self.errors.push(err);
                return None;
            }
        };
        self.sources.push((file.to_path_buf(), doc.text.clone()));
        let problems = shape::check(&doc.value, schema);
        let mut value = doc.value.clone();
        let had_problems = !problems.is_empty();
        if had_problems {
            self.repaired.push(file.to_path_buf());
        }
        for problem in problems {
            // Each problem is reported, then mended (dropped, or replaced by the suggested
            // choice) so that the rest of the file is still checked: one wrong setting must
            // not hide the template and schema problems elsewhere.
            let location = if problem.on_key {
                doc.locate_key(&problem.path)
            } else {
                doc.locate(&problem.path)
            };
            match problem.repair {
                _ if problem.unknown_key => shape::remove(&mut value, &problem.path),
                Repair::Remove => shape::remove(&mut value, &problem.path),
                Repair::Replace(replacement) => {
                    shape::replace(&mut value, &problem.path, replacement)
                }
                Repair::Insert { key, value: item } => {
                    shape::insert(&mut value, &problem.path, &key, item);
                    self.placeholders.push(location.clone());
                }
                Repair::Keep => {}
            }
            let mut error = Error::config(problem.message).with_location(location);
            match (problem.label, problem.hint) {
                (Some(label), Some(hint)) => error = error.with_hint(format!("{label} ({hint})")),
                (Some(text), None) | (None, Some(text)) => error = error.with_hint(text),
                (None, None) => {}
            }
            self.errors.push(error);
        }
        match serde_yaml::from_value::<T>(value) {
            Ok(raw) => Some((doc, raw)),
            // The mended file still is not one (a required setting was wrong or missing): the
            // problems above say why.
            Err(_) if had_problems => None,
            Err(err) => {
                self.errors.push(
                    Error::config(format!("invalid file: {err}"))
                        .with_location(Location::file_only(file)),
                );
                None
            }
        }
    }

    fn leaf(&mut self, doc: &Document, path: &YamlPath, text: &str, context: Context) -> Leaf {
        match tree::leaf(text, path, doc, &mut self.strict) {
            Ok(leaf) => {
                if let Leaf::Template(id) = leaf {
                    self.contexts.push((id, context, true));
                }
                leaf
            }
            Err(err) => {
                self.errors.push(err);
                Leaf::Literal(Json::Null)
            }
        }
    }

    fn tree(&mut self, doc: &Document, path: &YamlPath, value: &Json, context: Context) -> Node {
        let yaml: serde_yaml::Value =
            serde_yaml::to_value(value).unwrap_or(serde_yaml::Value::Null);
        let first = self.strict_count();
        let node = tree::compile(&yaml, path, doc, &mut self.strict, &mut self.errors);
        for index in first..self.strict_count() {
            self.contexts.push((template::id_at(index), context, true));
        }
        node
    }

    fn strict_count(&self) -> usize {
        self.strict.len()
    }

    fn expression(
        &mut self,
        doc: &Document,
        path: &YamlPath,
        text: &str,
        context: Context,
    ) -> Option<TemplateId> {
        let origin = template::Origin {
            location: doc.locate(path),
            path: path.clone(),
        };
        match self.lenient.expression(text, origin) {
            Ok(id) => {
                self.contexts.push((id, context, false));
                Some(id)
            }
            Err(err) => {
                self.errors.push(
                    Error::config(format!("invalid expression: {}", err.message))
                        .with_location(doc.locate_in_scalar(path, err.line, err.column, err.len)),
                );
                None
            }
        }
    }

    fn json_path(&mut self, doc: &Document, path: &YamlPath, text: &str) -> Option<JsonPath> {
        match jsonpath_rust::parser::parse_json_path(text) {
            Ok(query) => Some(JsonPath {
                text: text.to_string(),
                query,
            }),
            Err(err) => {
                // pest reports `--> line:column` and `= expected …`; point into the path itself.
                let detail = err.to_string();
                let column = JSONPATH_COLUMN
                    .captures(&detail)
                    .and_then(|c| c[1].parse::<usize>().ok());
                // pest's guess for `$.a[*` is "expected string"; the `[` left open is the news.
                let expected = if text.matches('[').count() > text.matches(']').count() {
                    ": a `[` is not closed with `]`".to_string()
                } else {
                    JSONPATH_EXPECTED
                        .captures(&detail)
                        .map(|c| format!(": {}", human_expected(c[1].trim())))
                        .unwrap_or_default()
                };
                let location = match column {
                    Some(column) => doc.locate_in_scalar(path, 1, column, 1),
                    None => doc.locate(path),
                };
                self.errors.push(
                    Error::config(format!("invalid JSONPath `{text}`{expected}"))
                        .with_location(location)
                        .with_hint("JSONPaths look like `$.response.stockin_list[*]`"),
                );
                None
            }
        }
    }

    fn span(
        &mut self,
        doc: &Document,
        path: &YamlPath,
        text: Option<&str>,
        default: chrono::Duration,
    ) -> chrono::Duration {
        match text {
            None => default,
            Some(text) => match time::parse_span(text) {
                Ok(span) if span <= time::span_limit(path.last_key().unwrap_or("DEFAULT")) => span,
                result => {
                    let setting = path.last_key().unwrap_or("DEFAULT");
                    let limit = time::span_limit(setting);
                    let message = match result {
                        Ok(span) => format!(
                            "`{setting}` {} is longer than the allowed {}",
                            time::format_span(span),
                            time::format_span(limit)
                        ),
                        Err(message) if !message.contains("far too long") => {
                            self.errors
                                .push(Error::config(message).with_location(doc.locate(path)));
                            return default;
                        }
                        Err(_) => format!(
                            "`{setting}` {} is longer than the allowed {}",
                            text.trim(),
                            time::format_span(limit)
                        ),
                    };
                    self.errors.push(
                        Error::config(message)
                        .with_location(doc.locate(path))
                        .with_hint(format!(
                            "`{setting}` goes up to {}; docs/connectors.md lists the limit of every span",
                            time::format_span(limit)
                        )),
                    );
                    default
                }
            },
        }
    }

    fn error(&mut self, message: impl Into<String>, location: Location, hint: Option<String>) {
        let mut error = Error::config(message).with_location(location);
        if let Some(hint) = hint {
            error = error.with_hint(hint);
        }
        self.errors.push(error);
    }

    fn warning(&mut self, message: impl Into<String>, location: Location) {
        self.warnings
            .push(Error::config(message).with_location(location));
    }
}

/// Load and compile a flow file with its connectors, value maps and API schemas.
pub fn load_flow(file: &Path) -> Loaded<Flow> {
    let mut value_maps = ValueMaps::new();
    // Value maps are needed by the template environment, so they are read before anything else.
    let mut pre = Compiler::new(Arc::new(ValueMaps::new()));
    let Some((doc, raw)) = pre.read::<RawFlow>(file, flow_schema()) else {
        return finish(pre, None);
    };
    let flow_dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    for (name, map) in &raw.value_maps {
        let path = YamlPath::root().key("value_maps").key(name);
        let csv = tidy(&flow_dir.join(&map.file));
        let policy = map.on_missing.unwrap_or(MissPolicy::Error);
        if policy == MissPolicy::Default && map.default.is_none() {
            pre.error(
                format!("value map `{name}` has `on_missing: default` but no `default`"),
                doc.locate_key(&path.key("on_missing")),
                Some("add `default: <code>`".into()),
            );
        }
        if policy != MissPolicy::Default && map.default.is_some() {
            pre.warning(
                format!(
                    "value map `{name}` has a `default` that is never used: `on_missing` is not `default`"
                ),
                doc.locate_key(&path.key("default")),
            );
        }
        if csv.is_dir() {
            pre.error(
                format!(
                    "value map file `{}` is a folder, not a CSV file",
                    csv.display()
                ),
                doc.locate(&path.key("file")),
                Some("name the CSV file itself; the path is relative to the flow file".into()),
            );
            continue;
        }
        if csv.exists() && !csv.is_file() {
            pre.error(
                format!(
                    "value map file `{}` is not a regular file (a device, a pipe or a socket)",
                    csv.display()
                ),
                doc.locate(&path.key("file")),
                Some("name the CSV file itself; the path is relative to the flow file".into()),
            );
            continue;
        }
        if !csv.exists() {
            pre.error(
                format!("value map file `{}` does not exist", csv.display()),
                doc.locate(&path.key("file")),
                Some("the path is relative to the flow file".into()),
            );
            continue;
        }
        match ValueMap::load(name, &csv, policy, map.default.clone()) {
            Ok(loaded) => {
                if let Some(text) = crate::config::file::read_text_for_display(
                    &csv,
                    crate::config::file::MAX_VALUE_MAP_BYTES,
                ) {
                    pre.sources.push((csv.clone(), text));
                }
                value_maps.insert(name.clone(), loaded);
            }
            Err(errors) => {
                if let Some(text) = crate::config::file::read_text_for_display(
                    &csv,
                    crate::config::file::MAX_VALUE_MAP_BYTES,
                ) {
                    pre.sources.push((csv.clone(), text));
                }
                pre.errors.extend(errors);
            }
        }
    }
    let value_maps = Arc::new(value_maps);
    let mut cx = Compiler::new(Arc::clone(&value_maps));
    cx.errors.append(&mut pre.errors);
    cx.warnings.append(&mut pre.warnings);
    cx.placeholders.append(&mut pre.placeholders);
    cx.sources.append(&mut pre.sources);
    let flow = compile_flow(&mut cx, &doc, raw, file, &flow_dir, value_maps);
    finish(cx, flow)
}

fn finish<T>(mut cx: Compiler, value: Option<T>) -> Loaded<T> {
    let placeholders = std::mem::take(&mut cx.placeholders);
    cx.errors.retain(|error| {
        error.message().starts_with("missing key ")
            || error
                .location()
                .is_none_or(|location| !placeholders.contains(location))
    });
    cx.warnings.retain(|warning| {
        warning
            .location()
            .is_none_or(|location| !placeholders.contains(location))
    });
    let value = if cx.errors.is_empty() { value } else { None };
    Loaded {
        value,
        errors: cx.errors,
        warnings: cx.warnings,
        sources: cx.sources,
    }
}

/// A connector file read and compiled into `cx`.
struct ConnectorSource {
    doc: Document,
    raw: RawConnector,
    connector: Connector,
    /// Compiled without errors: its limits are the file's, not stand-ins for bad values.
    clean: bool,
}

/// pest's "expected jp_query, EOI" in words: the grammar's rule names mean nothing to a
/// person writing a path.
fn human_expected(expected: &str) -> String {
    let Some(list) = expected.strip_prefix("expected ") else {
        return expected.to_string();
    };
    let mut words: Vec<&str> = Vec::new();
    for rule in list.split([',']).flat_map(|part| part.split(" or ")) {
        let word = match rule.trim() {
            "jp_query" | "root" => "`$` (a JSONPath starts at the root)",
            "EOI" => "the end of the path",
            "segment"
            | "segments"
            | "child_segment"
            | "descendant_segment"
            | "bracketed_selection" => "`.name` or `[…]`",
            "selector" | "name_selector" | "string" => "a quoted name, an index, `*` or a filter",
            "wildcard_selector" => "`*`",
            "index_selector" | "int" | "start" | "end" | "step" => "an index",
            "slice_selector" => "a slice `start:end`",
            "filter_selector" => "a filter `?…`",
            "member_name_shorthand" => "a field name",
            "comparable" | "literal" | "singular_query" | "number" | "bool" | "null" => {
                "a value or a path to compare"
            }
            "logical_expr" | "logical_expr_and" | "atom_expr" | "comp_expr" | "test_expr"
            | "paren_expr" | "test" => "a condition",
            "comp_op" => "a comparison (`==`, `!=`, `<`, `<=`, `>`, `>=`)",
            "function_expr" => "a function",
            "" => continue,
            _ => "a valid JSONPath here",
        };
        if !words.contains(&word) {
            words.push(word);
        }
    }
    match words.split_last() {
        None => expected.to_string(),
        Some((last, [])) => format!("expected {last}"),
        Some((last, rest)) => format!("expected {} or {last}", rest.join(", ")),
    }
}

fn describe_json(value: &Json) -> &'static str {
    match value {
        Json::Null => "empty",
        Json::Bool(_) => "true or false",
        Json::Number(_) => "a number",
        Json::String(_) => "a text",
        Json::Array(_) => "a list",
        Json::Object(_) => "a mapping",
    }
}

/// Parameters whose values need nothing at run time (used to pick the target's schema file).
fn constant_params(params: &[Param]) -> Vec<(Arc<str>, minijinja::Value)> {
    params
        .iter()
        .filter_map(|p| match &p.node {
            Node::Literal(json) => Some((Arc::from(p.name.as_str()), template::from_json(json))),
            _ => None,
        })
        .collect()
}

/// Load the API schema an operation names, evaluating `{{ params.… }}` in its path.
fn op_schema(
    cx: &mut Compiler,
    conn: &ConnectorSource,
    op_name: &str,
    params: &[(Arc<str>, minijinja::Value)],
) -> Option<ApiSchema> {
    let text = conn.raw.operations.get(op_name)?.schema.clone()?;
    let path = YamlPath::root()
        .key("operations")
        .key(op_name)
        .key("schema");
    let location = conn.doc.locate(&path);
    let rendered = if text.contains("{{") {
        let params_value =
            minijinja::Value::from_pairs(params.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let scope = Scope::named(vec![(Arc::from("params"), params_value)]);
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(template::TEMPLATE_FUEL));
        env.remove_global("debug");
        match env.render_str(&text, minijinja::Value::from_object(scope)) {
            Ok(rendered) => rendered,
            Err(err) => {
                if params.is_empty() {
                    // Checked alone, a connector cannot know a flow's parameters.
                    return None;
                }
                cx.error(
                    format!(
                        "cannot work out the schema file: {}",
                        err.detail().unwrap_or("invalid template")
                    ),
                    location,
                    None,
                );
                return None;
            }
        }
    } else {
        text
    };
    let file = beside_connector(conn, &rendered);
    if file.is_dir() {
        cx.error(
            format!(
                "API schema `{}` is a folder, not a JSON file",
                file.display()
            ),
            location,
            Some("name the schema file itself; the path is relative to the connector file".into()),
        );
        return None;
    }
    if !file.exists() {
        cx.error(
            format!("API schema `{}` does not exist", file.display()),
            location,
            Some("the path is relative to the connector file".into()),
        );
        return None;
    }
    match ApiSchema::load(&file) {
        Ok(schema) => Some(schema),
        // A file that cannot be read at all (a device, too large) is pointed at where it is named.
        Err(err) if err.location().is_none_or(|l| l.line == 0) => {
            cx.errors.push(err.with_location(location));
            None
        }
        Err(err) => {
            cx.errors.push(err);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonpath_errors_name_what_was_expected_in_words() {
        assert_eq!(
            human_expected("expected jp_query"),
            "expected `$` (a JSONPath starts at the root)"
        );
        assert_eq!(
            human_expected("expected comparable"),
            "expected a value or a path to compare"
        );
        assert_eq!(
            human_expected("expected segment or EOI"),
            "expected `.name` or `[…]` or the end of the path"
        );
    }

    #[test]
    fn the_flow_schema_is_closed_and_documented() {
        let schema = flow_schema();
        assert_eq!(schema["additionalProperties"], Json::Bool(false));
        assert!(schema["properties"]["source"].is_object());
        assert!(
            schema["$defs"]["RawSource"]["properties"]["params"]["description"]
                .as_str()
                .unwrap()
                .contains("LAST_SYNC_TIME")
        );
    }
}
