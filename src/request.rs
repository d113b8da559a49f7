//! Building request contents from a compiled flow: parameters, JSON bodies, and the path,
//! query and headers ([`Parts`]) of each call.
//!
//! Pure: the caller passes the environment variables and the values of the placeholders;
//! this module evaluates the connector's and the flow's templates with them. A templated path
//! segment is percent-encoded here, so no value can change which resource is called. Source
//! templates read and write times in the source connector's zone, target templates in the
//! target's. Signing and sending are the HTTP client's business.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use minijinja::Value;
use serde_json::Value as Json;

use crate::config::model::{Flow, Operation, Param};
use crate::template::scope::{Misses, RecordNode, Root, Scope, Texts};
use crate::template::{self, Leaf, filters};
use crate::time;
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
    // One copy of the environment for every parameter's scope.
    let env = Arc::new(env.clone());
    for param in params {
        let scope = Scope::named(names.clone()).with_env(Arc::clone(&env));
        let value = tree::evaluate(&param.node, &flow.templates, scope)?.value;
        out.insert(param.name.clone(), value);
    }
    Ok(out)
}

fn vars(flow: &Flow) -> (Arc<str>, Value) {
    (Arc::from("vars"), flow.vars_value.clone())
}

/// `vars` and the target connector's time zone: what every target template sees.
fn target_names(flow: &Flow) -> Vec<(Arc<str>, Value)> {
    let zone = flow.target.connector.time_zone;
    let mut names = vec![vars(flow)];
    names.extend(filters::zone_names(zone, zone));
    names
}

/// The target operation's inputs (`params` of its body), evaluated.
pub fn target_inputs(flow: &Flow, env: &Env) -> Result<Json, EvalError> {
    evaluate_params(flow, &flow.target.params, target_names(flow), env).map(Json::Object)
}

/// The lookup operation's inputs, evaluated.
pub fn lookup_inputs(flow: &Flow, env: &Env) -> Result<Json, EvalError> {
    evaluate_params(flow, &flow.target.lookup_params, target_names(flow), env).map(Json::Object)
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

/// Mapped target records with their keys, in batch order.
pub type Keyed = Vec<(String, Json)>;

/// What a write's templates read: `records` and `keys` for a batch write, `record` and `key`
/// for a one-record write (no `batch:`), which is given one record. `records` is the record,
/// or the list of records, that the templates see through `lent`, reading it lazily. Written
/// into the result whole, it is copied there, or with `marked` it is the
/// [`template::lent_marker`], for the caller to put the records in its place.
fn write_names(
    flow: &Flow,
    inputs: &Json,
    keys: Vec<String>,
    lent: &Root,
    marked: bool,
) -> Vec<(Arc<str>, Value)> {
    let mut names = target_names(flow);
    names.push((Arc::from("params"), template::from_json(inputs)));
    let misses = Arc::new(Misses::default());
    let node = if marked {
        RecordNode::lent(lent.clone(), misses)
    } else {
        RecordNode::new(lent.clone(), misses)
    };
    let lazy = Value::from_object(node);
    if flow.target.operation().batch.is_none() {
        names.push((Arc::from("record"), lazy));
        let key = keys.into_iter().next().unwrap_or_default();
        names.push((Arc::from("key"), Value::from(key)));
    } else {
        names.push((Arc::from("records"), lazy));
        names.push((Arc::from("keys"), Value::from(keys)));
    }
    names
}

/// The records of a write as its templates see them: the one record of a one-record write (no
/// `batch:`), else the list.
fn lend(flow: &Flow, records: Vec<Json>) -> Arc<Json> {
    if flow.target.operation().batch.is_none() {
        debug_assert_eq!(records.len(), 1, "a one-record write is given one record");
        Arc::new(records.into_iter().next().unwrap_or(Json::Null))
    } else {
        Arc::new(Json::Array(records))
    }
}

/// The records [`lend`] lent, back (copied only if something still holds a reference to them:
/// the templates' scope is gone by then).
fn give_back(flow: &Flow, lent: Arc<Json>) -> Vec<Json> {
    let lent = Arc::unwrap_or_clone(lent);
    match lent {
        // A one-record write lent the record itself, whatever its shape.
        Json::Array(records) if flow.target.operation().batch.is_some() => records,
        record => vec![record],
    }
}

/// The JSON body of one write call carrying `records` (already mapped target records), for
/// printing (`preview`): the records are moved into it, not copied.
pub fn write_body(
    flow: &Flow,
    inputs: &Json,
    records: Keyed,
    env: &Env,
) -> Result<Json, EvalError> {
    let (keys, records): (Vec<String>, Vec<Json>) = records.into_iter().unzip();
    let lent = lend(flow, records);
    let names = write_names(flow, inputs, keys, &Root::Json(Arc::clone(&lent)), true);
    let mut body = body(flow, flow.target.operation(), names, env)?;
    // The templates' references to the records went with their scope.
    put_lent(&mut body, Arc::unwrap_or_clone(lent));
    Ok(body)
}

/// `body` with each [`template::lent_marker`] in it replaced by `records`: moved into one
/// place, copied into any other.
fn put_lent(body: &mut Json, records: Json) {
    fn places<'a>(json: &'a mut Json, found: &mut Vec<&'a mut Json>) {
        if template::is_lent_marker(json) {
            found.push(json);
            return;
        }
        match json {
            Json::Array(items) => items.iter_mut().for_each(|item| places(item, found)),
            Json::Object(fields) => fields.values_mut().for_each(|value| places(value, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    places(body, &mut found);
    if let Some((last, others)) = found.split_last_mut() {
        for place in others {
            **place = records.clone();
        }
        **last = records;
    }
}

/// The JSON body and the [`Parts`] of one write call carrying `records`, and the records back
/// (a write may be sent again): they are lent to the templates, not copied for them.
pub fn write_request(
    flow: &Flow,
    inputs: &Json,
    records: Keyed,
    env: &Env,
) -> Result<(Json, Parts, Keyed), EvalError> {
    let (keys, records): (Vec<String>, Vec<Json>) = records.into_iter().unzip();
    let lent = lend(flow, records);
    let names = write_names(
        flow,
        inputs,
        keys.clone(),
        &Root::Json(Arc::clone(&lent)),
        false,
    );
    let operation = flow.target.operation();
    let parts = parts(flow, operation, names.clone(), env)?;
    let body = body(flow, operation, names, env)?;
    let records = keys.into_iter().zip(give_back(flow, lent)).collect();
    Ok((body, parts, records))
}

/// [`write_request`] with the body serialised, for records given as their compact JSON
/// `texts` (made when they were mapped, in the order of `keys`): lent to the templates, parsed
/// only if one reads inside them, and written into the body as they are, neither copied into
/// a value nor serialised again (the run's writers send this).
pub fn write_request_serialised(
    flow: &Flow,
    inputs: &Json,
    keys: Vec<String>,
    texts: Vec<Arc<str>>,
    env: &Env,
) -> Result<(Vec<u8>, Parts), EvalError> {
    debug_assert_eq!(keys.len(), texts.len(), "a text for each record");
    let operation = flow.target.operation();
    let texts = Arc::new(Texts::new(texts, operation.batch.is_none()));
    let lent = Root::Texts(Arc::clone(&texts));
    // The path, query and headers are texts: they see the records as any template does.
    let parts = parts(
        flow,
        operation,
        write_names(flow, inputs, keys.clone(), &lent, false),
        env,
    )?;
    let body = body(
        flow,
        operation,
        write_names(flow, inputs, keys, &lent, true),
        env,
    )?;
    Ok((spliced(&body, &texts), parts))
}

/// `body` serialised with the records' texts in place of each [`template::lent_marker`]: the
/// list of them, or the one record of a one-record write (as [`lend`] lends them). The marker
/// carries a number drawn once a process, so no other text of the body holds it.
fn spliced(body: &Json, texts: &Texts) -> Vec<u8> {
    let bytes = serde_json::to_vec(body).expect("JSON serialises");
    let marker = serde_json::to_vec(template::lent_marker()).expect("a text serialises");
    let records: usize = texts.texts().iter().map(|text| text.len() + 1).sum();
    let mut out = Vec::with_capacity(bytes.len() + records + 1);
    let mut rest = &bytes[..];
    while let Some(at) = memchr::memmem::find(rest, &marker) {
        out.extend_from_slice(&rest[..at]);
        match texts.texts() {
            [one] if texts.is_one() => out.extend_from_slice(one.as_bytes()),
            all => {
                out.push(b'[');
                for (i, text) in all.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(text.as_bytes());
                }
                out.push(b']');
            }
        }
        rest = &rest[at + marker.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// The inputs of an operation about one record (an update or an action): its `params`.
pub fn operation_inputs(flow: &Flow, params: &[Param], env: &Env) -> Result<Json, EvalError> {
    evaluate_params(flow, params, target_names(flow), env).map(Json::Object)
}

/// The JSON body and the [`Parts`] of an update or action call about one record: its templates
/// see `params` (`inputs`) and the `names` given (`record`, `key`, `target_id`, …).
pub fn one_record_request(
    flow: &Flow,
    operation: &Operation,
    inputs: &Json,
    names: Vec<(Arc<str>, Value)>,
    env: &Env,
) -> Result<(Json, Parts), EvalError> {
    let mut all = target_names(flow);
    all.push((Arc::from("params"), template::from_json(inputs)));
    all.extend(names);
    let parts = parts(flow, operation, all.clone(), env)?;
    Ok((body(flow, operation, all, env)?, parts))
}

/// What a lookup's templates read: `keys`, and `key` when it takes one key per call.
fn lookup_names(flow: &Flow, inputs: &Json, keys: &[String]) -> Vec<(Arc<str>, Value)> {
    let one_key = lookup_operation(flow)
        .rows
        .as_ref()
        .is_some_and(|rows| rows.max_keys == 1);
    let mut names = target_names(flow);
    names.push((Arc::from("params"), template::from_json(inputs)));
    names.push((Arc::from("keys"), Value::from(keys.to_vec())));
    if one_key && let [key] = keys {
        names.push((Arc::from("key"), Value::from(key.clone())));
    }
    names
}

fn lookup_operation(flow: &Flow) -> &Operation {
    flow.target
        .lookup_operation()
        .expect("a lookup operation is configured")
}

/// The JSON body of one lookup call for `keys`.
pub fn lookup_body(
    flow: &Flow,
    inputs: &Json,
    keys: &[String],
    env: &Env,
) -> Result<Json, EvalError> {
    body(
        flow,
        lookup_operation(flow),
        lookup_names(flow, inputs, keys),
        env,
    )
}

/// The JSON body and the [`Parts`] of one lookup call for `keys`.
pub fn lookup_request(
    flow: &Flow,
    inputs: &Json,
    keys: &[String],
    env: &Env,
) -> Result<(Json, Parts), EvalError> {
    let names = lookup_names(flow, inputs, keys);
    let operation = lookup_operation(flow);
    let parts = parts(flow, operation, names.clone(), env)?;
    Ok((body(flow, operation, names, env)?, parts))
}

/// The values of the source placeholders for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholders {
    /// Window start and end, written `yyyy-MM-dd HH:mm:ss` in the source connector's zone.
    pub last_sync_time: Option<DateTime<Utc>>,
    pub current_time: Option<DateTime<Utc>>,
    pub page_size: Option<u32>,
    pub page: Option<u32>,
    /// Records before this page (`offset` pagination).
    pub offset: Option<u64>,
    /// The token the last answer gave (`cursor` pagination); null on the first request.
    pub cursor: Option<String>,
}

fn source_names(flow: &Flow, placeholders: &Placeholders) -> Vec<(Arc<str>, Value)> {
    let zone = flow.source.connector.time_zone;
    let mut names = vec![vars(flow)];
    names.extend(filters::zone_names(zone, zone));
    let mut put = |name: &str, value: Option<Value>| {
        if let Some(value) = value {
            names.push((Arc::from(name), value));
        }
    };
    let wall_clock = |instant: Option<DateTime<Utc>>| {
        instant.map(|instant| Value::from(time::wall_clock_in(instant, zone)))
    };
    put("LAST_SYNC_TIME", wall_clock(placeholders.last_sync_time));
    put("CURRENT_TIME", wall_clock(placeholders.current_time));
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
    names
}

/// The source request's parameters for one page of one window.
pub fn source_params(
    flow: &Flow,
    placeholders: &Placeholders,
    env: &Env,
) -> Result<serde_json::Map<String, Json>, EvalError> {
    evaluate_params(
        flow,
        &flow.source.params,
        source_names(flow, placeholders),
        env,
    )
}

/// The parameters, the JSON body (when the operation has `body:`) and the [`Parts`] of one
/// source request.
pub type SourceRequest = (serde_json::Map<String, Json>, Option<Json>, Parts);

/// The source request's parameters, body and [`Parts`] for one page of one window; the body,
/// path, query and headers read the parameters as `params`.
pub fn source_request(
    flow: &Flow,
    placeholders: &Placeholders,
    env: &Env,
) -> Result<SourceRequest, EvalError> {
    let mut names = source_names(flow, placeholders);
    let params = evaluate_params(flow, &flow.source.params, names.clone(), env)?;
    names.push((
        Arc::from("params"),
        template::from_json(&Json::Object(params.clone())),
    ));
    let operation = flow.source.operation();
    let parts = parts(flow, operation, names.clone(), env)?;
    // A POST search that takes its filters and cursor in a JSON body (`body:`) sends that
    // body; the parameters reach it through `{{ params.… }}`.
    let body = match operation.body {
        Some(_) => Some(body(flow, operation, names, env)?),
        None => None,
    };
    Ok((params, body, parts))
}

/// What an operation's templates give one call besides its parameters or body: the path
/// (segments encoded), query parameters and headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parts {
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
}

impl Parts {
    /// The parts of an operation whose path, query and headers hold no template.
    pub fn literal(operation: &Operation) -> Parts {
        let text = |leaf: &Leaf| match leaf {
            Leaf::Literal(Json::String(text)) => Some(text.clone()),
            _ => None,
        };
        let pairs = |list: &[(String, Leaf)]| {
            list.iter()
                .filter_map(|(name, leaf)| Some((name.clone(), text(leaf)?)))
                .collect()
        };
        Parts {
            path: operation.path.text.clone(),
            query: pairs(&operation.query),
            headers: pairs(&operation.headers),
        }
    }
}

fn parts(
    flow: &Flow,
    operation: &Operation,
    names: Vec<(Arc<str>, Value)>,
    env: &Env,
) -> Result<Parts, EvalError> {
    // Copied once, and only if a template needs it.
    let shared = std::cell::OnceCell::new();
    let scope = || {
        let env = shared.get_or_init(|| Arc::new(env.clone()));
        Scope::named(names.clone()).with_env(Arc::clone(env))
    };
    let render = |leaf: &Leaf| -> Result<Option<String>, EvalError> {
        Ok(match leaf {
            Leaf::Literal(Json::Null) => None,
            Leaf::Literal(Json::String(text)) => Some(text.clone()),
            Leaf::Literal(other) => Some(other.to_string()),
            Leaf::Template(id) => {
                let value = tree::evaluate_template(*id, &flow.templates, scope())?;
                if value.is_none() {
                    None
                } else {
                    Some(
                        value
                            .as_str()
                            .map_or_else(|| value.to_string(), str::to_string),
                    )
                }
            }
        })
    };
    let mut segments = Vec::with_capacity(operation.path.segments.len());
    for leaf in &operation.path.segments {
        let segment = match leaf {
            Leaf::Template(id) => {
                let text = render(leaf)?.unwrap_or_default();
                // An empty segment would call the collection (`DELETE /contacts/`), and `.`
                // or `..` (even encoded) would climb to another resource.
                if matches!(text.as_str(), "" | "." | "..") {
                    return Err(EvalError {
                        target: String::new(),
                        location: flow.templates.origin(*id).location.clone(),
                        message: format!(
                            "a segment of the path `{}` of operation `{}` is `{text}`: a segment must name something",
                            operation.path.text, operation.name
                        ),
                        missing_field: None,
                    });
                }
                encode_segment(&text)
            }
            literal => render(literal)?.unwrap_or_default(),
        };
        segments.push(segment);
    }
    let pairs = |list: &[(String, Leaf)]| -> Result<Vec<(String, String)>, EvalError> {
        let mut out = Vec::new();
        for (name, leaf) in list {
            if let Some(value) = render(leaf)? {
                out.push((name.clone(), value));
            }
        }
        Ok(out)
    };
    Ok(Parts {
        path: segments.join("/"),
        query: pairs(&operation.query)?,
        headers: pairs(&operation.headers)?,
    })
}

/// `text` as one path segment: every byte outside RFC 3986's `pchar` (unreserved, sub-delims,
/// `:` and `@`) percent-encoded, `/`, `?`, `#` and `%` included.
pub fn encode_segment(text: &str) -> String {
    const KEPT: &[u8] = b"-._~!$&'()*+,;=:@";
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || KEPT.contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::record::Compact;

    use super::*;

    fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }

    /// The bundled flow with its write's body replaced by `body` (YAML at the body's indent).
    fn flow_with_body(dir: &std::path::Path, body: &str) -> Flow {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for folder in ["mappings", "schemas"] {
            copy_dir(&root.join(folder), &dir.join(folder));
        }
        let connector = dir.join("mappings/connectors/kingdee_k3cloud.yaml");
        let text = std::fs::read_to_string(&connector).unwrap();
        let shipped = "    body:\n      formid: \"{{ params.form_id }}\"\n      data: \"{{ params.options | merge({'Model': records}) }}\"\n";
        assert!(text.contains(shipped));
        std::fs::write(&connector, text.replacen(shipped, body, 1)).unwrap();
        let loaded = crate::config::load_flow(&dir.join("mappings/refund.yaml"));
        assert!(loaded.errors.is_empty(), "{body}: {:?}", loaded.errors);
        loaded.value.unwrap()
    }

    /// However a write's body uses its records (merged into an object, whole in two places or
    /// as the body, one of them or a part of one, counted), the body sent (serialised with the records
    /// written where they are lent), the body printed (the records moved in) and the body
    /// built with the records copied in are the same, and the records come back as lent.
    #[test]
    fn a_body_holds_its_records_as_if_copied_in_however_it_uses_them() {
        let bodies = [
            "    body:\n      formid: \"{{ params.form_id }}\"\n      data: \"{{ params.options | merge({'Model': records}) }}\"\n",
            "    body:\n      one: \"{{ records }}\"\n      again: { inner: [\"{{ records }}\", 1] }\n",
            "    body:\n      first: \"{{ records[0] }}\"\n      count: \"{{ records | length }}\"\n      text: \"{{ keys | join(',') }}\"\n",
            "    body:\n      second: \"{{ records[1] }}\"\n      list: [\"{{ records[2].FEntity }}\", \"{{ records }}\"]\n",
            "    body: \"{{ records }}\"\n",
        ];
        let records: Keyed = (1..=3)
            .map(|i| {
                (
                    format!("RK{i}"),
                    json!({"FBillNo": format!("RK{i}"), "FEntity": [{"FRealQty": i, "FNote": "a\"b"}], "n": null}),
                )
            })
            .collect();
        let env = Env::from([
            (
                "KINGDEE_URL".to_string(),
                "http://127.0.0.1:9/k3cloud".to_string(),
            ),
            ("KINGDEE_ACCT_ID".to_string(), "a".to_string()),
            ("KINGDEE_USERNAME".to_string(), "u".to_string()),
            ("KINGDEE_APP_ID".to_string(), "i".to_string()),
            ("KINGDEE_APP_SECRET".to_string(), "s".to_string()),
            ("KINGDEE_LCID".to_string(), "2052".to_string()),
        ]);
        for body in bodies {
            let dir = tempfile::tempdir().unwrap();
            let flow = flow_with_body(dir.path(), body);
            let inputs = target_inputs(&flow, &env).unwrap();
            let (copied, parts, back) =
                write_request(&flow, &inputs, records.clone(), &env).unwrap();
            assert_eq!(back, records, "{body}");
            let keys = records.iter().map(|(key, _)| key.clone()).collect();
            let texts = records
                .iter()
                .map(|(_, r)| Compact::of(r).shared())
                .collect();
            let (sent, sent_parts) =
                write_request_serialised(&flow, &inputs, keys, texts, &env).unwrap();
            assert_eq!(sent_parts.path, parts.path, "{body}");
            assert_eq!(
                String::from_utf8(sent).unwrap(),
                serde_json::to_string(&copied).unwrap(),
                "{body}"
            );
            let printed = write_body(&flow, &inputs, records.clone(), &env).unwrap();
            assert_eq!(printed, copied, "{body}");
            assert_eq!(
                (&sent_parts.query, &sent_parts.headers),
                (&parts.query, &parts.headers),
                "{body}"
            );
        }
    }

    /// A one-record write (no `batch:`) lends its record itself, whatever its shape: the body
    /// sent and printed is the one with the record copied in, and the record comes back whole.
    #[test]
    fn a_one_record_body_holds_its_record_as_if_copied_in() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let loaded = crate::config::load_flow(&root.join("mappings/examples/shop_customers.yaml"));
        let flow = loaded.value.expect("the shipped example compiles");
        assert!(flow.target.operation().batch.is_none());
        let env = Env::from([
            ("CRM_URL".to_string(), "http://127.0.0.1:9".to_string()),
            ("CRM_TOKEN".to_string(), "t".to_string()),
        ]);
        let inputs = target_inputs(&flow, &env).unwrap();
        for record in [
            json!({"external_id": "C1", "name": "Ann", "tags": ["a", null], "n": 1.5}),
            json!([{"a": 1}, {"a": 2}]),
        ] {
            let one: Keyed = vec![("C1".to_string(), record)];
            let (copied, parts, back) = write_request(&flow, &inputs, one.clone(), &env).unwrap();
            assert_eq!(back, one);
            let text = Compact::of(&one[0].1).shared();
            let (sent, sent_parts) =
                write_request_serialised(&flow, &inputs, vec!["C1".to_string()], vec![text], &env)
                    .unwrap();
            assert_eq!(sent, serde_json::to_vec(&copied).unwrap());
            assert_eq!(
                (sent_parts.path, sent_parts.query, sent_parts.headers),
                (parts.path, parts.query, parts.headers)
            );
            assert_eq!(write_body(&flow, &inputs, one, &env).unwrap(), copied);
        }
    }

    #[test]
    fn path_segments_are_percent_encoded_so_values_cannot_change_the_path() {
        let table = [
            ("42", "42"),
            ("a/b", "a%2Fb"),
            ("../admin", "..%2Fadmin"),
            ("x?admin=1", "x%3Fadmin=1"),
            ("x#frag", "x%23frag"),
            ("100%", "100%25"),
            ("a b", "a%20b"),
            ("user@example.com", "user@example.com"),
            ("订单", "%E8%AE%A2%E5%8D%95"),
            ("a:b;c,d", "a:b;c,d"),
        ];
        for (value, expected) in table {
            assert_eq!(encode_segment(value), expected, "{value}");
        }
    }
}
