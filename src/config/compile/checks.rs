//! Checks of what a file's templates read and call, all made at load so that a flow that
//! compiles cannot fail later for them: placeholders a paging operation needs, parameter keys
//! against an operation's `params_schema`, parameters a body reads, filters called with
//! literal arguments, names that must exist, whole-`env` access, and the names each context
//! offers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, LazyLock};

use regex::Regex;
use serde_json::Value as Json;

use super::{Compiler, ConnectorSource, Context, beside_connector, pagination, request};
use crate::apischema::ApiSchema;
use crate::config::model::{Operation, PLACEHOLDERS, Param};
use crate::config::raw::RawOperation;
use crate::config::yaml::{Document, YamlPath};
use crate::error::{Error, Location, did_you_mean};
use crate::template::filters;
use crate::template::{self, Builder, TemplateSet, UnknownName};
use crate::tree::{Node, collect_templates};
use crate::value_map::ValueMaps;

/// A paging or windowed operation needs its placeholders in some parameter (`CURRENT_TIME`
/// is optional: an API may filter on a lower bound only). Whether `CURRENT_TIME` is used.
pub(super) fn check_placeholders(
    cx: &mut Compiler,
    doc: &Document,
    params: &[Param],
    op: &Operation,
    op_name: &str,
) -> bool {
    let mut used = String::new();
    for param in params {
        collect_sources(&param.node, &cx.strict, &mut used);
    }
    let mut need = Vec::new();
    if let Some(p) = &op.pagination {
        need.extend(pagination::needed_placeholders(p));
    }
    if op.window.is_some() {
        need.push("LAST_SYNC_TIME");
    }
    for placeholder in op
        .pagination
        .as_ref()
        .map(pagination::unavailable_placeholders)
        .unwrap_or_default()
    {
        if used.contains(placeholder) {
            cx.error(
                format!("operation `{op_name}` does not give `{placeholder}` with its pagination"),
                doc.locate_key(&YamlPath::root().key("source").key("params")),
                Some("each strategy gives its own placeholders (see docs/connectors.md, \"Pagination\")".into()),
            );
        }
    }
    for placeholder in need {
        if !used.contains(placeholder) {
            cx.error(
                format!("operation `{op_name}` needs a parameter that uses `{placeholder}`"),
                doc.locate_key(&YamlPath::root().key("source").key("params")),
                Some(format!(
                    "e.g. `{}: \"{{{{{placeholder}}}}}\"`",
                    placeholder_param_example(placeholder)
                )),
            );
        }
    }
    used.contains("CURRENT_TIME")
}

pub(super) fn placeholder_param_example(placeholder: &str) -> &'static str {
    match placeholder {
        "LAST_SYNC_TIME" => "start_time",
        "CURRENT_TIME" => "end_time",
        "PAGINATION_PAGE_SIZE" => "page_size",
        "PAGINATION_OFFSET" => "offset",
        "PAGINATION_CURSOR" => "starting_after",
        _ => "page_no",
    }
}

pub(super) fn collect_sources(node: &Node, builder: &Builder, out: &mut String) {
    match node {
        Node::Template(id) => {
            out.push_str(builder.source_of(*id));
            out.push('\n');
        }
        Node::Object(fields) => fields
            .iter()
            .for_each(|f| collect_sources(&f.node, builder, out)),
        Node::Array(items) => items.iter().for_each(|i| collect_sources(i, builder, out)),
        Node::Each(each) => collect_sources(&each.item, builder, out),
        Node::When(when) => collect_sources(&when.value, builder, out),
        Node::Literal(_) | Node::Invalid => {}
    }
}

/// The keys a flow gives an operation's parameters, against the operation's `params_schema`:
/// a key that a closed object of the schema does not list is most likely misspelt, but the
/// lists of APIs such as Kingdee's options are not exhaustive, so it is a warning.
pub(super) fn check_params_schema(
    cx: &mut Compiler,
    doc: &Document,
    conn: &ConnectorSource,
    (op_name, op): (&str, &RawOperation),
    params: &BTreeMap<String, Json>,
) {
    let Some(name) = &op.params_schema else {
        return;
    };
    let file = beside_connector(conn, name);
    let schema = match ApiSchema::load(&file) {
        Ok(schema) => schema,
        // A file that cannot be read at all (a device, too large) is pointed at where it is named.
        Err(err) if err.location().is_none_or(|l| l.line == 0) => {
            let named = YamlPath::root()
                .key("operations")
                .key(op_name)
                .key("params_schema");
            cx.errors.push(err.with_location(conn.doc.locate(&named)));
            return;
        }
        Err(err) => {
            cx.errors.push(err);
            return;
        }
    };
    let path = YamlPath::root().key("target").key("params");
    let params = Json::Object(params.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
    params_keys(cx, doc, &schema, schema.root(), &params, &path);
}

pub(super) fn params_keys(
    cx: &mut Compiler,
    doc: &Document,
    schema: &ApiSchema,
    at: &Json,
    value: &Json,
    path: &YamlPath,
) {
    let at = schema.resolve(at);
    let Json::Object(given) = value else { return };
    let properties = at.get("properties").and_then(Json::as_object);
    let closed = at.get("additionalProperties") == Some(&Json::Bool(false));
    for (key, child) in given {
        match properties.and_then(|p| p.get(key)) {
            Some(property) => params_keys(cx, doc, schema, property, child, &path.key(key)),
            None if closed => {
                let known: Vec<&str> = properties
                    .map(|p| p.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                let hint = match did_you_mean(key, known.iter().copied()) {
                    Some(suggestion) => format!("did you mean `{suggestion}`?"),
                    None => format!("the known keys are listed in {}", schema.file.display()),
                };
                cx.warnings.push(
                    Error::config(format!(
                        "`{key}` is not a known key of `{path}` ({})",
                        schema.title
                    ))
                    .with_location(doc.locate_key(&path.key(key)))
                    .with_hint(hint),
                );
            }
            None => {}
        }
    }
}

static FILTER_CALL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\|\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(((?:[^()'"]|'[^']*'|"[^"]*")*)\)"#)
        .expect("valid regex")
});
static LITERAL_ARGUMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^\s*(?:[A-Za-z_][A-Za-z0-9_]*\s*=\s*)?(?:'[^']*'|"[^"]*"|-?[0-9]+(?:\.[0-9]+)?|true|false|none)\s*$"#)
        .expect("valid regex")
});

/// A value each of the engine's filters accepts, to try literal arguments on at check time.
pub(super) fn probe_input(filter: &str) -> Option<&'static str> {
    Some(match filter {
        "datetime" | "date" | "timestamp" => "'2024-01-01 00:00:00'",
        "decimal" | "add" | "sub" | "mul" | "div" | "round" => "'1'",
        // Arguments are read before the value, so an empty value tells good arguments apart.
        "lookup" => "none",
        _ => return None,
    })
}

/// A call of one of the engine's filters whose arguments are all literals (`lookup('unit',
/// on_missing='ignore')`, `date(42, 43, 44)`) is tried once here, so that bad arguments are
/// reported at the template instead of on every record.
pub(super) fn check_literal_arguments(
    cx: &mut Compiler,
    set: &TemplateSet,
    value_maps: &Arc<ValueMaps>,
) {
    let mut env = minijinja::Environment::new();
    env.set_fuel(Some(template::TEMPLATE_FUEL));
    filters::register(&mut env, Arc::clone(value_maps));
    for id in set.ids() {
        let source = set.source(id).to_string();
        for call in FILTER_CALL.captures_iter(&source) {
            let (filter, arguments) = (&call[1], &call[2]);
            let Some(input) = probe_input(filter) else {
                continue;
            };
            if !split_arguments(arguments)
                .iter()
                .all(|a| LITERAL_ARGUMENT.is_match(a))
            {
                continue;
            }
            let probe = format!("{input} | {filter}({arguments})");
            let Err(err) = env
                .compile_expression(&probe)
                .and_then(|expression| expression.eval(()))
            else {
                continue;
            };
            let detail = match err.detail() {
                Some(detail) => detail.to_string(),
                None => err.kind().to_string(),
            };
            // An empty value is what the probe gives; a missing map is reported on its own.
            if filter == "lookup"
                && (detail.starts_with("cannot look up an empty value")
                    || detail.starts_with("there is no value map"))
            {
                continue;
            }
            cx.error(
                format!("invalid arguments to `{filter}`: {detail}"),
                set.origin(id).location.clone(),
                Some(format!("docs/mapping.md lists what `{filter}` takes")),
            );
        }
    }
}

/// `'a, b', x=1` → `['a, b'`, ` x=1`]: commas inside quotes do not split.
pub(super) fn split_arguments(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quote) = (0, None);
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ',') => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if !text[start..].trim().is_empty() || !parts.is_empty() {
        parts.push(&text[start..]);
    }
    parts
}

/// Every `params.x` an operation's body reads must be a parameter the operation gets (from
/// the connector, the operation or the flow); otherwise the request would fail at run time.
/// Templates of `op` (its body, path, query, headers) reading `params.<x>` that no parameter
/// gives; `side` (`source` or `target`) says where the flow would give it.
pub(super) fn check_param_names(
    cx: &mut Compiler,
    set: &TemplateSet,
    op: &Operation,
    params: &[Param],
    side: &str,
) {
    let mut ids = request::request_templates(op);
    if let Some(body) = &op.body {
        collect_templates(body, &mut ids);
    }
    let known: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
    for id in ids {
        for name in set.undeclared(id) {
            let Some(rest) = name.strip_prefix("params.") else {
                continue;
            };
            let param = rest.split('.').next().unwrap_or(rest);
            // A required parameter left out is reported as such by `check_required_params`.
            if known.contains(&param) || op.required_params.iter().any(|r| r == param) {
                continue;
            }
            let listed = known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let hint = match did_you_mean(param, known.iter().copied()) {
                Some(suggestion) => format!("did you mean `params.{suggestion}`?"),
                None => format!("give `{param}` under the flow's `{side}.params`"),
            };
            cx.error(
                format!(
                    "`params.{param}` is not a parameter of `{}` (params: {listed})",
                    op.name
                ),
                set.origin(id).location.clone(),
                Some(hint),
            );
        }
    }
}

/// Every template may only read the names its context offers.
/// Every filter, test and value map a template names must exist.
pub(super) fn check_names_exist(
    cx: &mut Compiler,
    set: &TemplateSet,
    value_maps: &BTreeSet<String>,
) {
    for id in set.ids() {
        let location = set.origin(id).location.clone();
        for unknown in set.unknown_names(id, value_maps) {
            let (message, suggestion) = match &unknown {
                UnknownName::Filter(name) => (
                    format!("unknown filter `{name}`"),
                    did_you_mean(
                        name,
                        filters::FILTERS
                            .iter()
                            .chain(filters::BUILTIN_FILTERS)
                            .copied(),
                    ),
                ),
                UnknownName::Test(name) => (
                    format!("unknown test `{name}`"),
                    did_you_mean(name, filters::BUILTIN_TESTS.iter().copied()),
                ),
                UnknownName::ValueMap(name) => (
                    format!("there is no value map `{name}`"),
                    did_you_mean(name, value_maps.iter().map(String::as_str)),
                ),
            };
            let hint = match (suggestion, &unknown) {
                (Some(suggestion), _) => format!("did you mean `{suggestion}`?"),
                (None, UnknownName::ValueMap(_)) => {
                    "value maps are declared under `value_maps` in the flow".to_string()
                }
                (None, _) => "docs/mapping.md lists the filters and tests of the mapping language"
                    .to_string(),
            };
            cx.error(message, location.clone(), Some(hint));
        }
    }
}

/// No template may show more than the values it names: `debug()` prints all it sees, and
/// `env` read whole (`env | tojson`, `env[name]`, a loop) would send every environment
/// variable, secrets included, wherever the template goes.
pub(super) fn check_environment_access(
    cx: &mut Compiler,
    names: &BTreeSet<String>,
    context: Context,
    location: &Location,
) {
    if names.contains("debug") {
        cx.error(
            "`debug()` is not allowed in a template",
            location.clone(),
            Some(
                "it prints every value the template can see, the environment included; name the values you need"
                    .into(),
            ),
        );
    }
    // The mapping may not read `env` at all, which `MappingCheck` reports.
    if context != Context::Mapping && names.iter().any(|n| template::reads_whole_environment(n)) {
        cx.error(
            "a template may read environment variables only one by one, by name",
            location.clone(),
            Some(
                "write `env.NAME`; `env` whole (`env | tojson`, `env[name]`, a loop over `env`) would expose every variable, secrets included"
                    .into(),
            ),
        );
    }
}

pub(super) fn check_contexts(
    cx: &mut Compiler,
    strict: &TemplateSet,
    lenient: &TemplateSet,
    vars: &Json,
) {
    let contexts = std::mem::take(&mut cx.contexts);
    let mut seen = BTreeSet::new();
    for (id, context, is_strict) in contexts {
        if !seen.insert((id, is_strict)) {
            continue;
        }
        let set = if is_strict { strict } else { lenient };
        let location = set.origin(id).location.clone();
        let names = set.undeclared(id);
        check_environment_access(cx, &names, context, &location);
        if context == Context::Mapping {
            continue;
        }
        for name in names {
            if name == "debug" || template::reads_whole_environment(&name) {
                continue;
            }
            let root = name.split('.').next().unwrap_or(&name);
            let roots = context.roots();
            if roots.contains(&root) {
                if root == "vars"
                    && let Some(key) = name
                        .strip_prefix("vars.")
                        .map(|k| k.split('.').next().unwrap_or(k))
                    && vars.get(key).is_none()
                    && vars.as_object().is_some_and(|o| !o.is_empty())
                {
                    cx.error(
                        format!("`vars.{key}` is not defined in the flow's `vars`"),
                        location.clone(),
                        None,
                    );
                }
                continue;
            }
            let is_placeholder = root
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            let message = if is_placeholder {
                if PLACEHOLDERS.contains(&root) {
                    format!(
                        "placeholder `{root}` is not available in {}",
                        context.describe()
                    )
                } else {
                    format!("unknown placeholder `{root}`")
                }
            } else {
                format!("`{root}` is not available in {}", context.describe())
            };
            let misread = match context {
                Context::TargetInputs(reads) | Context::Request(reads) => reads.misread_hint(root),
                _ => None,
            };
            let hint = match (misread, did_you_mean(root, roots.iter().copied())) {
                (Some(hint), _) => hint,
                (None, Some(suggestion)) => format!("did you mean `{suggestion}`?"),
                (None, None) => format!(
                    "{} can read {}",
                    context.describe(),
                    roots
                        .iter()
                        .map(|r| format!("`{r}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            cx.error(message, location.clone(), Some(hint));
        }
    }
}
