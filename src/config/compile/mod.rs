//! Compiling flow and connector files into the validated model, collecting every problem.
//!
//! Two stages: the YAML's shape is checked against the raw types' schema (all problems at
//! once), then the raw values are compiled: references resolved (connector files,
//! operations, value-map files, API schemas), templates and JSONPaths compiled, durations
//! read, and the names each template reads checked against what its context offers. A flow
//! that compiles cannot fail later because of its configuration. This module reads files;
//! it sends nothing anywhere.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use minijinja::UndefinedBehavior;
use regex::Regex;
use serde::de::DeserializeOwned;
use serde_json::Value as Json;

mod request;
mod write;

use crate::apischema::{ApiSchema, MappingCheck};
use crate::config::model::{
    Batch, Connector, Flow, JsonPath, Key, Operation, Param, Schedule, ScheduleKind, Source,
    Target, Window,
};
use crate::config::raw::{MissPolicy, OnChange, OperationKind, RawConnector, RawFlow, RawSchedule};
use crate::config::shape::{self, Repair};
use crate::config::yaml::{Document, YamlPath};
use crate::error::{Error, Location};
use crate::template::scope::Scope;
use crate::template::{self, Builder, Leaf, TemplateId, TemplateSet};
use crate::time;
use crate::tree::{self, Node};
use crate::value_map::{ValueMap, ValueMaps};

mod auth;
mod checks;
mod concurrency;
mod connector;
mod file;
mod pagination;
mod update;

use checks::{
    check_contexts, check_literal_arguments, check_names_exist, check_param_names,
    check_params_schema, check_placeholders, collect_templates,
};
use concurrency::target_concurrency;
pub use connector::load_connector;
use connector::{
    check_required_params, find_operation, load_connector_for, merge_params, placeholder_envelope,
};
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
pub fn flow_schema() -> Json {
    serde_json::to_value(schemars::schema_for!(RawFlow)).expect("schemas serialise")
}

/// The JSON Schema of connector files (also shipped as `schemas/connector.schema.json`).
pub fn connector_schema() -> Json {
    serde_json::to_value(schemars::schema_for!(RawConnector)).expect("schemas serialise")
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
    let Some((doc, raw)) = pre.read::<RawFlow>(file, &flow_schema()) else {
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

fn compile_flow(
    cx: &mut Compiler,
    doc: &Document,
    raw: RawFlow,
    file: &Path,
    flow_dir: &Path,
    value_maps: Arc<ValueMaps>,
) -> Option<Flow> {
    let root = YamlPath::root();
    if raw.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        cx.error(
            "`name` is empty",
            doc.locate(&root.key("name")),
            Some("the name keys the flow's saved state; leave it out to use the file name".into()),
        );
    }
    let name = raw.name.clone().unwrap_or_else(|| {
        file.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let source_conn = load_connector_for(
        cx,
        doc,
        &root.key("source").key("connector"),
        &raw.source.connector,
        flow_dir,
    );
    let target_conn = load_connector_for(
        cx,
        doc,
        &root.key("target").key("connector"),
        &raw.target.connector,
        flow_dir,
    );

    // The source: its operation, parameters, paging and window.
    let mut source = None;
    let source_conn = match source_conn {
        Some(conn) if conn.connector.files.is_some() => {
            source = file::source(cx, doc, &raw, conn);
            None
        }
        other => other,
    };
    if let Some(conn) = source_conn {
        let op_path = root.key("source").key("operation");
        if find_operation(
            cx,
            doc,
            &op_path,
            &conn,
            &raw.source.operation,
            OperationKind::Read,
        )
        .is_some()
            // An operation whose connector failed to compile is missing here; its errors are reported.
            && let Some(op) = conn.connector.operations.get(&raw.source.operation)
        {
            let params = merge_params(
                cx,
                &conn,
                &raw.source.operation,
                (doc, &root.key("source").key("params"), &raw.source.params),
                Context::SourceParams,
            );
            let max_page_size = op.pagination.as_ref().and_then(|p| p.max_page_size);
            let page_size = match (max_page_size, raw.source.page_size) {
                // Against a connector with errors the limits may be stand-ins: not compared.
                (Some(max), Some(size)) if conn.clean && (size == 0 || size > max) => {
                    cx.error(
                        format!(
                            "`page_size` {size} is outside what `{}` accepts (1 to {})",
                            raw.source.operation, max
                        ),
                        doc.locate(&root.key("source").key("page_size")),
                        None,
                    );
                    max
                }
                (Some(_), Some(size)) => size,
                (Some(max), None) => max,
                (None, size) => size.unwrap_or(0),
            };
            let mut window = compile_window(cx, doc, &raw, op, conn.clean);
            let bounded = check_placeholders(cx, doc, &params, op, &raw.source.operation);
            if let Some(window) = window.as_mut() {
                window.open_ended = !bounded;
                request::check_open_ended(cx, doc, &raw, window);
            }
            let record_schema = op_schema(cx, &conn, &raw.source.operation, &[]);
            source = Some(Source {
                connector: conn.connector,
                operation: raw.source.operation.clone(),
                params,
                page_size,
                window,
                record_schema,
            });
        }
    }

    // The target: its write operation, inputs, batches and lookup.
    let mut target = None;
    let mut lookup_at = None;
    let target_conn = match target_conn {
        Some(conn) if conn.connector.files.is_some() => {
            target = file::target(cx, doc, &raw, conn);
            None
        }
        other => other,
    };
    if let Some(conn) = target_conn {
        let op_path = root.key("target").key("operation");
        let write = find_operation(
            cx,
            doc,
            &op_path,
            &conn,
            &raw.target.operation,
            OperationKind::Write,
        );
        let lookup_raw = raw.target.lookup.as_ref().and_then(|lookup| {
            find_operation(
                cx,
                doc,
                &root.key("target").key("lookup"),
                &conn,
                lookup,
                OperationKind::Lookup,
            )
        });
        if let Some(op_raw) = write
            && let Some(op) = conn.connector.operations.get(&raw.target.operation)
        {
            let flow_params = (doc, &root.key("target").key("params"), &raw.target.params);
            let inputs = Context::TargetInputs(Reads::Params);
            let params = merge_params(cx, &conn, &raw.target.operation, flow_params, inputs);
            let lookup_params = match (&lookup_raw, &raw.target.lookup) {
                (Some(_), Some(lookup)) => merge_params(cx, &conn, lookup, flow_params, inputs),
                _ => Vec::new(),
            };
            check_required_params(
                cx,
                doc,
                &op_raw,
                &raw.target.operation,
                &params,
                &root.key("target"),
            );
            if let (Some(lookup_op), Some(lookup)) = (&lookup_raw, &raw.target.lookup) {
                check_required_params(
                    cx,
                    doc,
                    lookup_op,
                    lookup,
                    &lookup_params,
                    &root.key("target"),
                );
            }
            let batch = op.batch.unwrap_or(Batch {
                max_size: 1,
                default_size: 1,
                concurrency: 1,
            });
            let batch_size = match raw.target.batch_size {
                Some(size) if conn.clean && (size == 0 || size > batch.max_size) => {
                    cx.error(
                        format!(
                            "`batch_size` {size} is outside what `{}` accepts (1 to {})",
                            raw.target.operation, batch.max_size
                        ),
                        doc.locate(&root.key("target").key("batch_size")),
                        None,
                    );
                    batch.default_size
                }
                Some(size) => size,
                None => batch.default_size,
            };
            let concurrency = target_concurrency(cx, doc, &root, &raw.target, batch.concurrency);
            if raw.target.lookup.is_none() {
                cx.warning(
                    "the target has no `lookup`: a write whose outcome is unknown (timeout, crash) cannot be verified before it is sent again",
                    doc.locate_key(&root.key("target")),
                );
            }
            check_params_schema(
                cx,
                doc,
                &conn,
                (&raw.target.operation, &op_raw),
                &raw.target.params,
            );
            let update = update::compile_update(cx, doc, &raw, &conn);
            let param_values = constant_params(&params);
            let record_schema = op_schema(cx, &conn, &raw.target.operation, &param_values);
            lookup_at = (raw.target.lookup.as_ref())
                .filter(|_| lookup_raw.is_some())
                .map(|name| conn.doc.locate_key(&root.key("operations").key(name)));
            target = Some(Target {
                connector: conn.connector,
                operation: raw.target.operation.clone(),
                params,
                batch_size,
                concurrency,
                lookup: raw.target.lookup.clone().filter(|_| lookup_raw.is_some()),
                lookup_params,
                on_change: raw.target.on_change.unwrap_or(OnChange::Skip),
                update,
                allow_unaudit: raw.target.allow_unaudit.unwrap_or(false),
                keep_records: raw.target.keep_records.unwrap_or(true),
                record_schema,
            });
        }
    }

    // The key, the mapping and the vars.
    let vars = Json::Object(
        raw.vars
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    );
    let key_path = root.key("key");
    let key_source = match tree::leaf(
        &raw.key.source,
        &key_path.key("source"),
        doc,
        &mut cx.strict,
    ) {
        Ok(Leaf::Template(id)) => Some(id),
        Ok(Leaf::Literal(_)) => {
            cx.error(
                "`key.source` must be a template that reads the record, such as `{{ order_no }}`",
                doc.locate(&key_path.key("source")),
                None,
            );
            None
        }
        Err(err) => {
            cx.errors.push(err);
            None
        }
    };
    let key_modified = raw.key.modified.as_ref().and_then(|text| {
        match tree::leaf(text, &key_path.key("modified"), doc, &mut cx.strict) {
            Ok(Leaf::Template(id)) => Some(id),
            Ok(Leaf::Literal(_)) => None,
            Err(err) => {
                cx.errors.push(err);
                None
            }
        }
    });
    let mapping_path = root.key("mapping");
    let mapping = match &raw.mapping {
        Json::Object(_) => cx.tree(doc, &mapping_path, &raw.mapping, Context::Mapping),
        other => {
            cx.error(
                format!(
                    "`mapping` must be a tree of target fields, not {}",
                    describe_json(other)
                ),
                doc.locate(&mapping_path),
                Some("write the target record's fields under `mapping:`".into()),
            );
            Node::Invalid
        }
    };
    if let Node::Object(fields) = &mapping
        && !fields.iter().any(|f| f.key == raw.key.target)
    {
        cx.error(
            format!("the mapping does not write the key field `{}`", raw.key.target),
            doc.locate(&key_path.key("target")),
            Some(format!("map `{}` from the same value as `key.source`, so a record can be found in the target by its key", raw.key.target)),
        );
    }

    // Build the template sets, then check what every template reads.
    let strict = std::mem::replace(
        &mut cx.strict,
        Builder::new(UndefinedBehavior::Strict, Arc::clone(&value_maps)),
    )
    .build();
    let lenient = std::mem::replace(
        &mut cx.lenient,
        Builder::new(UndefinedBehavior::Chainable, Arc::clone(&value_maps)),
    )
    .build();
    check_contexts(cx, &strict, &lenient, &vars);
    check_literal_arguments(cx, &strict, &value_maps);
    if let Some(target) = &target {
        let ops = [
            Some((&target.operation, &target.params)),
            target.lookup.as_ref().map(|l| (l, &target.lookup_params)),
        ];
        for (op_name, params) in ops.into_iter().flatten() {
            if let Some(op) = target.connector.operations.get(op_name) {
                check_param_names(cx, &strict, op, params, "target");
            }
        }
        if let (Some(op), Some(at)) = (target.lookup_operation(), lookup_at) {
            write::check_lookup_reads_keys(cx, &strict, op, at);
        }
    }
    if let Some(source) = &source {
        let op = source.operation();
        check_param_names(cx, &strict, op, &source.params, "source");
    }
    // Maps that failed to load are still declared: their own errors are enough.
    let declared: BTreeSet<String> = raw.value_maps.keys().cloned().collect();
    check_names_exist(cx, &strict, &declared);
    check_names_exist(cx, &lenient, &declared);
    {
        let mut check = MappingCheck {
            templates: &strict,
            source: source.as_ref().and_then(|s| s.record_schema.as_ref()),
            target: target.as_ref().and_then(|t| t.record_schema.as_ref()),
            vars: &vars,
            errors: Vec::new(),
        };
        check.check(&mapping, &doc.locate_key(&mapping_path));
        for id in [key_source, key_modified].into_iter().flatten() {
            check.template_names(id);
        }
        cx.errors.append(&mut check.errors);
    }
    let mut mapping = mapping;
    if let Some(schema) = target.as_ref().and_then(|t| t.record_schema.as_ref()) {
        tree::apply_target_schema(&mut mapping, schema);
    }

    let schedule = raw
        .schedule
        .as_ref()
        .and_then(|raw| compile_schedule(cx, doc, raw));
    let (source, target, key_source) = (source?, target?, key_source?);
    let modified = key_modified.or(None);
    Some(Flow {
        name,
        file: file.to_path_buf(),
        description: raw.description,
        source,
        target,
        key: Key {
            source: key_source,
            target: raw.key.target,
            modified,
        },
        vars_value: template::from_json(&vars),
        vars,
        value_maps,
        mapping,
        templates: strict,
        envelopes: lenient,
        schedule,
    })
}

/// `schedule:`: one of `every` and `cron`, and a time zone chrono-tz knows.
fn compile_schedule(cx: &mut Compiler, doc: &Document, raw: &RawSchedule) -> Option<Schedule> {
    let path = YamlPath::root().key("schedule");
    let time_zone = match raw.time_zone.as_deref() {
        None => chrono_tz::Asia::Shanghai,
        Some(name) => match name.parse::<chrono_tz::Tz>() {
            Ok(tz) => tz,
            Err(_) => {
                cx.error(
                    format!("`{name}` is not a time zone"),
                    doc.locate(&path.key("time_zone")),
                    Some("write an IANA name such as `Asia/Shanghai` or `UTC`".to_string()),
                );
                return None;
            }
        },
    };
    let when = match (&raw.every, &raw.cron) {
        (Some(every), None) => {
            let span = time::parse_span(every).ok().and_then(|s| s.to_std().ok());
            match span {
                Some(span) if span >= std::time::Duration::from_secs(1) => {
                    ScheduleKind::Every(span)
                }
                _ => {
                    cx.error(
                        format!("`{every}` is not an interval of at least `1s`"),
                        doc.locate(&path.key("every")),
                        Some("write it like `30s`, `5m` or `1h`".to_string()),
                    );
                    return None;
                }
            }
        }
        (None, Some(cron)) => {
            let parsed = croner::parser::CronParser::builder()
                .seconds(croner::parser::Seconds::Optional)
                .build()
                .parse(cron);
            match parsed {
                Ok(parsed) => ScheduleKind::Cron(Box::new(parsed)),
                Err(err) => {
                    cx.error(
                        format!("`{cron}` is not a cron expression: {err}"),
                        doc.locate(&path.key("cron")),
                        Some("write five fields (minute hour day month weekday), such as `*/10 * * * *`".to_string()),
                    );
                    return None;
                }
            }
        }
        _ => {
            cx.error(
                "`schedule` needs exactly one of `every` and `cron`",
                doc.locate(&path),
                Some(
                    "e.g. `schedule: { every: 5m }` or `schedule: { cron: \"0 2 * * *\" }`"
                        .to_string(),
                ),
            );
            return None;
        }
    };
    Some(Schedule { when, time_zone })
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

fn compile_window(
    cx: &mut Compiler,
    doc: &Document,
    raw: &RawFlow,
    op: &Operation,
    clean: bool,
) -> Option<Window> {
    let path = YamlPath::root().key("source").key("window");
    match (&op.window, &raw.source.window) {
        (None, None) => None,
        (None, Some(_)) => {
            cx.warning(
                format!(
                    "operation `{}` has no time window; `window` is ignored",
                    raw.source.operation
                ),
                doc.locate_key(&path),
            );
            None
        }
        (Some(_), None) => {
            cx.error(
                format!("operation `{}` reads by time window; the flow needs `window.start`", raw.source.operation),
                doc.locate_key(&YamlPath::root().key("source")),
                Some("add `window: { start: \"2024-01-01 00:00:00\" }` under `source`: where the first run begins".into()),
            );
            None
        }
        (Some(op_window), Some(window)) => {
            let start = cx.leaf(doc, &path.key("start"), &window.start, Context::FlowSetting);
            if let Leaf::Literal(Json::String(text)) = &start
                && let Err(message) = time::parse_instant(text)
            {
                cx.error(message, doc.locate(&path.key("start")), None);
            }
            let lag = cx.span(
                doc,
                &path.key("lag"),
                window.lag.as_deref(),
                chrono::Duration::minutes(1),
            );
            let lookback = cx.span(
                doc,
                &path.key("lookback"),
                window.lookback.as_deref(),
                chrono::Duration::minutes(5),
            );
            let max_span = cx.span(
                doc,
                &path.key("max_span"),
                window.max_span.as_deref(),
                op_window.max_span,
            );
            if clean && max_span > op_window.max_span {
                cx.error(
                    format!(
                        "`max_span` {} is longer than `{}` allows ({})",
                        time::format_span(max_span),
                        raw.source.operation,
                        time::format_span(op_window.max_span)
                    ),
                    doc.locate(&path.key("max_span")),
                    None,
                );
            }
            if max_span <= chrono::Duration::zero() {
                cx.error(
                    "`max_span` must be longer than zero",
                    doc.locate(&path.key("max_span")),
                    None,
                );
            }
            Some(Window {
                start,
                lag,
                lookback,
                max_span: max_span.min(op_window.max_span),
                field: op_window.field.clone(),
                open_ended: false,
            })
        }
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
