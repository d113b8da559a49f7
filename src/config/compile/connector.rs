//! Compiling connector files: finding a flow's connector, reading it, and compiling its
//! envelope, HTTP settings and operations, and the operations a flow names from it (with the
//! parameters the connector, the operation and the flow give them).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use minijinja::UndefinedBehavior;
use serde_json::Value as Json;

use super::write::{self, Reads};
use super::{
    Compiler, ConnectorSource, Context, Loaded, StandaloneConnector, auth, check_contexts,
    check_names_exist, connector_schema, file, finish, op_schema, pagination, request, tidy,
    update,
};
use crate::config::model::{
    Batch, Connector, Envelope, Http, Operation, OperationWindow, Param, RateLimit, Retry,
};
use crate::config::raw::{
    Encoding, HttpMethod, OperationKind, RawConnector, RawEnvelope, RawOperation, RawRetry,
    RecordsAbsent,
};
use crate::config::yaml::{Document, YamlPath};
use crate::error::did_you_mean;
use crate::template::{self, Builder};
use crate::value_map::ValueMaps;

/// Find `connectors/<name>.yaml` next to the flow (or a path), then read and compile it.
pub(super) fn load_connector_for(
    cx: &mut Compiler,
    doc: &Document,
    path: &YamlPath,
    name: &str,
    flow_dir: &Path,
) -> Option<ConnectorSource> {
    let file = if name.ends_with(".yaml") || name.ends_with(".yml") || name.contains('/') {
        tidy(&flow_dir.join(name))
    } else {
        tidy(&flow_dir.join("connectors").join(format!("{name}.yaml")))
    };
    if !file.exists() {
        let known = available_connectors(&flow_dir.join("connectors"));
        let hint = match did_you_mean(name, known.iter().map(String::as_str)) {
            Some(suggestion) => format!("did you mean `{suggestion}`?"),
            None if known.is_empty() => format!(
                "put the connector in `{}`",
                flow_dir.join("connectors").display()
            ),
            None => format!(
                "available connectors: {}",
                known
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        cx.error(
            format!(
                "connector `{name}` not found: there is no `{}`",
                file.display()
            ),
            doc.locate(path),
            Some(hint),
        );
        return None;
    }
    if file.is_dir() {
        cx.error(
            format!("connector `{name}` is a folder: `{}`", file.display()),
            doc.locate(path),
            Some("name the connector (`wdt_qimen`) or its YAML file".into()),
        );
        return None;
    }
    if !file.is_file() {
        cx.error(
            format!(
                "connector `{name}` is not a regular file (a device, a pipe or a socket): `{}`",
                file.display()
            ),
            doc.locate(path),
            Some("name the connector (`wdt_qimen`) or its YAML file".into()),
        );
        return None;
    }
    compile_connector_file(cx, &file)
}

pub(super) fn available_connectors(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    e.path()
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .filter(|_| e.path().extension().is_some_and(|x| x == "yaml"))
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

pub(super) fn compile_connector_file(cx: &mut Compiler, file: &Path) -> Option<ConnectorSource> {
    let (doc, raw) = cx.read::<RawConnector>(file, connector_schema())?;
    // A connector with errors is still returned, so that the flows using it are checked too;
    // its errors keep any flow from compiling.
    let errors_before = cx.errors.len();
    let connector = compile_connector(cx, &doc, &raw, file);
    Some(ConnectorSource {
        clean: cx.errors.len() == errors_before && !cx.repaired.contains(&doc.file),
        doc,
        raw,
        connector,
    })
}

/// Load and compile a connector file on its own.
pub fn load_connector(file: &Path) -> Loaded<StandaloneConnector> {
    let mut cx = Compiler::new(Arc::new(ValueMaps::new()));
    let Some(source) = compile_connector_file(&mut cx, file) else {
        return finish(cx, None);
    };
    // Standalone, parameters are compiled for their syntax and names only.
    for (name, op) in &source.raw.operations {
        let context = match op.kind {
            OperationKind::Read => Context::SourceParams,
            _ => Context::TargetInputs(Reads::Params),
        };
        let path = YamlPath::root().key("operations").key(name).key("params");
        for (param, value) in &op.params {
            cx.tree(&source.doc, &path.key(param), value, context);
        }
    }
    let path = YamlPath::root().key("params");
    for (param, value) in &source.raw.params {
        cx.tree(&source.doc, &path.key(param), value, Context::SourceParams);
    }
    let templates = std::mem::replace(
        &mut cx.strict,
        Builder::new(UndefinedBehavior::Strict, Arc::new(ValueMaps::new())),
    )
    .build();
    let envelopes = std::mem::replace(
        &mut cx.lenient,
        Builder::new(UndefinedBehavior::Chainable, Arc::new(ValueMaps::new())),
    )
    .build();
    check_contexts(
        &mut cx,
        &templates,
        &envelopes,
        &Json::Object(Default::default()),
    );
    check_names_exist(&mut cx, &templates, &BTreeSet::new());
    check_names_exist(&mut cx, &envelopes, &BTreeSet::new());
    for name in source.raw.operations.keys() {
        op_schema(&mut cx, &source, name, &[]);
    }
    let value = StandaloneConnector {
        connector: source.connector,
        templates,
        envelopes,
    };
    finish(cx, Some(value))
}

pub(super) fn compile_connector(
    cx: &mut Compiler,
    doc: &Document,
    raw: &RawConnector,
    file: &Path,
) -> Connector {
    let root = YamlPath::root();
    if file
        .file_stem()
        .is_some_and(|stem| stem.to_string_lossy() != raw.name)
    {
        cx.warning(
            format!(
                "connector `{}` is in a file named otherwise; flows find connectors by file name",
                raw.name
            ),
            doc.locate(&root.key("name")),
        );
    }
    let settings = Context::ConnectorSettings;
    let time_zone = request::compile_time_zone(cx, doc, raw);
    if let Some(spec) = &raw.file {
        return file::compile_connector(cx, doc, raw, spec, file, time_zone);
    }
    for (key, present) in [
        ("base_url", raw.base_url.is_some()),
        ("auth", raw.auth.is_some()),
        ("envelope", raw.envelope.is_some()),
    ] {
        if !present {
            cx.error(
                format!("missing key `{key}` in the top level"),
                doc.locate_key(&root),
                Some("an HTTP connector has `base_url`, `auth`, `envelope` and `operations`; a file connector has `file:` instead".into()),
            );
        }
    }
    let base_text = raw.base_url.as_deref().unwrap_or_default();
    let base_url = cx.leaf(doc, &root.key("base_url"), base_text, settings);
    request::check_base_url(cx, doc, base_text);
    let auth = match &raw.auth {
        Some(raw_auth) => auth::compile_auth(cx, doc, raw_auth),
        None => crate::config::model::Auth::None,
    };
    let headers = raw
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.clone(),
                cx.leaf(doc, &root.key("headers").key(name), value, settings),
            )
        })
        .collect();
    let envelope = raw
        .envelope
        .as_ref()
        .and_then(|envelope| compile_envelope(cx, doc, &root.key("envelope"), envelope));
    let http = compile_http(cx, doc, raw);
    let mut operations = BTreeMap::new();
    for (name, op) in &raw.operations {
        if let Some(envelope) = envelope.clone() {
            let compiled = compile_operation(
                cx,
                doc,
                &root.key("operations").key(name),
                name,
                op,
                envelope,
            );
            operations.insert(name.clone(), compiled);
        }
    }
    Connector {
        name: raw.name.clone(),
        file: file.to_path_buf(),
        description: raw.description.clone(),
        base_url,
        auth,
        headers,
        envelope: envelope.unwrap_or_else(placeholder_envelope),
        http,
        operations,
        null_values: raw.null_values.clone().into(),
        time_zone,
        files: None,
    }
}

/// Used only when the connector has errors (and is then never used).
pub(super) fn placeholder_envelope() -> Envelope {
    let id = template::id_at(0);
    Envelope {
        success: id,
        code: None,
        message: id,
        retryable: None,
        throttled: None,
        reauth: None,
        fatal: None,
    }
}

pub(super) fn compile_envelope(
    cx: &mut Compiler,
    doc: &Document,
    path: &YamlPath,
    raw: &RawEnvelope,
) -> Option<Envelope> {
    let success = cx.expression(doc, &path.key("success"), &raw.success, Context::Envelope);
    let message = cx.expression(doc, &path.key("message"), &raw.message, Context::Envelope);
    let mut optional = |key: &str, text: &Option<String>| {
        text.as_ref()
            .and_then(|text| cx.expression(doc, &path.key(key), text, Context::Envelope))
    };
    let code = optional("code", &raw.code);
    let retryable = optional("retryable", &raw.retryable);
    let throttled = optional("throttled", &raw.throttled);
    let reauth = optional("reauth", &raw.reauth);
    let fatal = optional("fatal", &raw.fatal);
    Some(Envelope {
        success: success?,
        code,
        message: message?,
        retryable,
        throttled,
        reauth,
        fatal,
    })
}

pub(super) fn compile_http(cx: &mut Compiler, doc: &Document, raw: &RawConnector) -> Http {
    let path = YamlPath::root().key("http");
    let http = raw.http.clone().unwrap_or_default();
    let defaults = Http::default();
    // A limit of zero would fail every call: it is a mistake, not a setting.
    let positive = |cx: &mut Compiler, key: &str, text: Option<&str>, default| {
        let key_path = path.key(key);
        let span = cx.span(doc, &key_path, text, default);
        if span <= chrono::Duration::zero() {
            cx.error(
                format!("`http.{key}` must be longer than zero"),
                doc.locate(&key_path),
                None,
            );
            return default;
        }
        span
    };
    let timeout = positive(cx, "timeout", http.timeout.as_deref(), defaults.timeout);
    let connect_timeout = positive(
        cx,
        "connect_timeout",
        http.connect_timeout.as_deref(),
        defaults.connect_timeout,
    );
    let call_timeout = positive(
        cx,
        "call_timeout",
        http.call_timeout.as_deref(),
        defaults.call_timeout,
    );
    let max_response_bytes = match http.max_response_bytes {
        Some(0) => {
            cx.error(
                "`http.max_response_bytes` must be at least 1",
                doc.locate(&path.key("max_response_bytes")),
                None,
            );
            defaults.max_response_bytes
        }
        Some(bytes) => bytes,
        None => defaults.max_response_bytes,
    };
    let rate_limit = http.rate_limit.as_ref().map(|limit| {
        let per = cx.span(
            doc,
            &path.key("rate_limit").key("per"),
            Some(&limit.per),
            chrono::Duration::seconds(60),
        );
        if limit.requests == 0 || per <= chrono::Duration::zero() {
            cx.error(
                "a rate limit needs at least one request per non-empty period",
                doc.locate_key(&path.key("rate_limit")),
                None,
            );
        }
        RateLimit {
            requests: limit.requests.max(1),
            per,
        }
    });
    Http {
        timeout,
        connect_timeout,
        call_timeout,
        max_response_bytes,
        rate_limit,
        retry: compile_retry(cx, doc, &path.key("retry"), http.retry.as_ref()),
    }
}

pub(super) fn compile_retry(
    cx: &mut Compiler,
    doc: &Document,
    path: &YamlPath,
    retry: Option<&RawRetry>,
) -> Retry {
    let defaults = Retry::default();
    Retry {
        attempts: retry
            .and_then(|r| r.attempts)
            .unwrap_or(defaults.attempts)
            .max(1),
        initial_backoff: cx.span(
            doc,
            &path.key("initial_backoff"),
            retry.and_then(|r| r.initial_backoff.as_deref()),
            defaults.initial_backoff,
        ),
        max_backoff: cx.span(
            doc,
            &path.key("max_backoff"),
            retry.and_then(|r| r.max_backoff.as_deref()),
            defaults.max_backoff,
        ),
        throttle_wait: cx.span(
            doc,
            &path.key("throttle_wait"),
            retry.and_then(|r| r.throttle_wait.as_deref()),
            defaults.throttle_wait,
        ),
        throttle_attempts: retry
            .and_then(|r| r.throttle_attempts)
            .unwrap_or(defaults.throttle_attempts)
            .max(1),
        max_retry_after: cx.span(
            doc,
            &path.key("max_retry_after"),
            retry.and_then(|r| r.max_retry_after.as_deref()),
            defaults.max_retry_after,
        ),
    }
}

pub(super) fn compile_operation(
    cx: &mut Compiler,
    doc: &Document,
    path: &YamlPath,
    name: &str,
    raw: &RawOperation,
    connector_envelope: Envelope,
) -> Operation {
    let (request_path, query, headers) = request::compile_parts(cx, doc, path, raw);
    let body = raw.body.as_ref().map(|body| {
        if raw.encoding != Encoding::Json {
            cx.error(
                format!("operation `{name}` has a `body` but `encoding` is not `json`"),
                doc.locate_key(&path.key("body")),
                None,
            );
        }
        let context = Context::TargetInputs(Reads::of(raw));
        cx.tree(doc, &path.key("body"), body, context)
    });
    let envelope = raw
        .envelope
        .as_ref()
        .and_then(|envelope| compile_envelope(cx, doc, &path.key("envelope"), envelope));
    let records = raw
        .records
        .as_ref()
        .and_then(|text| cx.json_path(doc, &path.key("records"), text));
    let total = raw
        .total
        .as_ref()
        .and_then(|text| cx.json_path(doc, &path.key("total"), text));
    let pagination = pagination::compile_pagination(cx, doc, path, name, raw);
    let window = raw.window.as_ref().map(|w| OperationWindow {
        max_span: cx.span(
            doc,
            &path.key("window").key("max_span"),
            Some(&w.max_span),
            chrono::Duration::days(1),
        ),
        field: w.field.clone(),
    });
    let batch = raw.batch.as_ref().map(|b| {
        let default_size = b.default_size.unwrap_or(b.max_size);
        if b.max_size == 0 || default_size == 0 || default_size > b.max_size {
            cx.error(
                "batch sizes must satisfy 1 ≤ `default_size` ≤ `max_size`",
                doc.locate_key(&path.key("batch")),
                None,
            );
        }
        Batch {
            max_size: b.max_size.max(1),
            default_size: default_size.clamp(1, b.max_size.max(1)),
            concurrency: b.concurrency.unwrap_or(1).max(1),
        }
    });
    let results = write::compile_results(cx, doc, path, name, raw);
    let rows = write::compile_rows(cx, doc, path, raw);
    let (audited, already) = update::operation_answers(cx, doc, path, name, raw);
    let missing = |what: &str| {
        format!(
            "operation `{name}` of kind `{}` needs `{what}`",
            kind_name(raw.kind)
        )
    };
    match raw.kind {
        OperationKind::Read if raw.records.is_none() => cx.error(
            missing("records"),
            doc.locate_key(path),
            Some("a JSONPath to the records, e.g. `$.response.stockin_list[*]`".into()),
        ),
        OperationKind::Lookup if raw.rows.is_none() => cx.error(
            missing("rows"),
            doc.locate_key(path),
            Some("where the response lists the found records".into()),
        ),
        _ => {}
    }
    if write::body_is_missing(raw) {
        cx.error(
            missing("body"),
            doc.locate_key(path),
            Some("the JSON request body, a tree of templates".into()),
        );
    }
    Operation {
        name: name.to_string(),
        kind: raw.kind,
        method: raw.method.unwrap_or(HttpMethod::Post),
        path: request_path,
        encoding: raw.encoding,
        required_params: raw.required_params.clone(),
        query,
        headers,
        body,
        envelope: envelope.or(Some(connector_envelope)),
        records,
        records_absent_empty: raw.records_absent == Some(RecordsAbsent::Empty),
        total,
        pagination,
        window,
        batch,
        results,
        rows,
        audited,
        already,
    }
}

pub(super) fn kind_name(kind: OperationKind) -> &'static str {
    match kind {
        OperationKind::Read => "read",
        OperationKind::Write => "write",
        OperationKind::Lookup => "lookup",
        OperationKind::Update => "update",
        OperationKind::Action => "action",
    }
}

pub(super) fn article(kind: OperationKind) -> &'static str {
    match kind {
        OperationKind::Update | OperationKind::Action => "an",
        _ => "a",
    }
}

pub(super) fn find_operation(
    cx: &mut Compiler,
    doc: &Document,
    path: &YamlPath,
    conn: &ConnectorSource,
    name: &str,
    kind: OperationKind,
) -> Option<RawOperation> {
    let Some(op) = conn.raw.operations.get(name) else {
        let known: Vec<&str> = conn.raw.operations.keys().map(String::as_str).collect();
        let hint = did_you_mean(name, known.iter().copied())
            .map(|s| format!("did you mean `{s}`?"))
            .unwrap_or_else(|| {
                format!(
                    "operations of `{}`: {}",
                    conn.raw.name,
                    known
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            });
        cx.error(
            format!("connector `{}` has no operation `{name}`", conn.raw.name),
            doc.locate(path),
            Some(hint),
        );
        return None;
    };
    if op.kind != kind {
        cx.error(
            format!(
                "operation `{name}` of `{}` is {} `{}` operation; this needs {} `{}` one",
                conn.raw.name,
                article(op.kind),
                kind_name(op.kind),
                article(kind),
                kind_name(kind)
            ),
            doc.locate(path),
            None,
        );
        return None;
    }
    Some(op.clone())
}

/// The connector's params, then the operation's, then the flow's; each compiled where it is written.
pub(super) fn merge_params(
    cx: &mut Compiler,
    conn: &ConnectorSource,
    op_name: &str,
    flow: (&Document, &YamlPath, &BTreeMap<String, Json>),
    context: Context,
) -> Vec<Param> {
    let op = &conn.raw.operations[op_name];
    let mut merged: Vec<(String, &Document, YamlPath, &Json)> = Vec::new();
    let mut put = |name: &String, doc, path: YamlPath, value| {
        merged.retain(|(n, _, _, _)| n != name);
        merged.push((name.clone(), doc, path, value));
    };
    for (name, value) in &conn.raw.params {
        put(
            name,
            &conn.doc,
            YamlPath::root().key("params").key(name),
            value,
        );
    }
    for (name, value) in &op.params {
        put(
            name,
            &conn.doc,
            YamlPath::root()
                .key("operations")
                .key(op_name)
                .key("params")
                .key(name),
            value,
        );
    }
    let (flow_doc, flow_path, flow_params) = flow;
    for (name, value) in flow_params {
        put(name, flow_doc, flow_path.key(name), value);
    }
    merged
        .into_iter()
        .map(|(name, doc, path, value)| Param {
            node: cx.tree(doc, &path, value, context),
            name,
        })
        .collect()
}

pub(super) fn check_required_params(
    cx: &mut Compiler,
    doc: &Document,
    op: &RawOperation,
    name: &str,
    params: &[Param],
    at: &YamlPath,
) {
    for required in &op.required_params {
        if !params.iter().any(|p| &p.name == required) {
            cx.error(
                format!("operation `{name}` needs the parameter `{required}`"),
                doc.locate_key(&at.key("params")),
                Some(format!("add `{required}:` under `params`")),
            );
        }
    }
}
