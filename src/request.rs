//! Building request contents from a compiled flow: parameters and JSON bodies.
//!
//! Pure: the caller passes the environment variables and the values of the placeholders;
//! this module evaluates the connector's and the flow's templates with them. Signing and
//! sending are the HTTP client's business.

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::Value;
use serde_json::Value as Json;

use crate::config::model::{Flow, Operation, Param};
use crate::template;
use crate::template::scope::{Misses, RecordNode, Scope};
use crate::tree::{self, EvalError, Node};

/// Environment variables as templates read them.
pub type Env = BTreeMap<String, String>;

/// Evaluate parameters (each a tree of templates) into a JSON object, in order.
pub fn evaluate_params(
    flow: &Flow,
    params: &[Param],
    names: Vec<(Arc<str>, Value)>,
    env: &Env,
) -> Result<serde_json::Map<String, Json>, EvalError> {
    let mut out = serde_json::Map::new();
    for param in params {
        let scope = Scope::named(names.clone()).with_env(env.clone());
        let value = tree::evaluate(&param.node, &flow.templates, scope)?.value;
        out.insert(param.name.clone(), value);
    }
    Ok(out)
}

fn vars(flow: &Flow) -> (Arc<str>, Value) {
    (Arc::from("vars"), flow.vars_value.clone())
}

/// The target operation's inputs (`params` of its body), evaluated.
pub fn target_inputs(flow: &Flow, env: &Env) -> Result<Json, EvalError> {
    evaluate_params(flow, &flow.target.params, vec![vars(flow)], env).map(Json::Object)
}

/// The lookup operation's inputs, evaluated.
pub fn lookup_inputs(flow: &Flow, env: &Env) -> Result<Json, EvalError> {
    evaluate_params(flow, &flow.target.lookup_params, vec![vars(flow)], env).map(Json::Object)
}

fn body(
    flow: &Flow,
    operation: &Operation,
    names: Vec<(Arc<str>, Value)>,
    env: &Env,
) -> Result<Json, EvalError> {
    let node = operation
        .body
        .as_ref()
        .unwrap_or(&Node::Literal(Json::Null));
    let scope = Scope::named(names).with_env(env.clone());
    tree::evaluate(node, &flow.templates, scope).map(|evaluated| evaluated.value)
}

/// The JSON body of one write call carrying `records` (already mapped target records).
pub fn write_body(
    flow: &Flow,
    inputs: &Json,
    records: Vec<Json>,
    env: &Env,
) -> Result<Json, EvalError> {
    let names = vec![
        vars(flow),
        (Arc::from("params"), template::from_json(inputs)),
        // The records stay JSON: the body reads them lazily and copies them once, into the result.
        (
            Arc::from("records"),
            Value::from_object(RecordNode::new(
                Arc::new(Json::Array(records)),
                Arc::new(Misses::default()),
            )),
        ),
    ];
    body(flow, flow.target.operation(), names, env)
}

/// The JSON body of one lookup call for `keys`.
pub fn lookup_body(
    flow: &Flow,
    inputs: &Json,
    keys: &[String],
    env: &Env,
) -> Result<Json, EvalError> {
    let operation = flow
        .target
        .lookup_operation()
        .expect("a lookup operation is configured");
    let keys = Json::Array(keys.iter().map(|k| Json::String(k.clone())).collect());
    let names = vec![
        vars(flow),
        (Arc::from("params"), template::from_json(inputs)),
        (Arc::from("keys"), template::from_json(&keys)),
    ];
    body(flow, operation, names, env)
}

/// The values of the source placeholders for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholders {
    /// Window start and end, as `yyyy-MM-dd HH:mm:ss` in Asia/Shanghai.
    pub last_sync_time: Option<String>,
    pub current_time: Option<String>,
    pub page_size: Option<u32>,
    pub page: Option<u32>,
    /// Records before this page (`offset` pagination).
    pub offset: Option<u64>,
    /// The token the last answer gave (`cursor` pagination); null on the first request.
    pub cursor: Option<String>,
}

/// The source request's parameters for one page of one window.
pub fn source_params(
    flow: &Flow,
    placeholders: &Placeholders,
    env: &Env,
) -> Result<serde_json::Map<String, Json>, EvalError> {
    let mut names = vec![vars(flow)];
    let mut put = |name: &str, value: Option<Value>| {
        if let Some(value) = value {
            names.push((Arc::from(name), value));
        }
    };
    put(
        "LAST_SYNC_TIME",
        placeholders.last_sync_time.as_deref().map(Value::from),
    );
    put(
        "CURRENT_TIME",
        placeholders.current_time.as_deref().map(Value::from),
    );
    put(
        "PAGINATION_PAGE_SIZE",
        placeholders.page_size.map(Value::from),
    );
    put("PAGINATION_START_PAGE", placeholders.page.map(Value::from));
    put("PAGINATION_OFFSET", placeholders.offset.map(Value::from));
    put(
        "PAGINATION_CURSOR",
        Some(
            placeholders
                .cursor
                .as_deref()
                .map_or(Value::from(()), Value::from),
        ),
    );
    evaluate_params(flow, &flow.source.params, names, env)
}
