//! One source record through a flow: its key, its last-modified time, and the target record.
//!
//! This is the whole of "mapping" as `preview` and `run` see it: pure, no IO. A record
//! that cannot be mapped fails alone, with the reason and (when the key could be read) its
//! key, so the run can park it and go on. Templates see the record with the source
//! connector's `null_values` read as `null`, and a record whose last-modified value is not a
//! time fails like any other record that cannot be mapped.

use std::sync::Arc;

use minijinja::Value;
use minijinja::value::ValueKind;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use crate::config::model::Flow;
use crate::template::scope::Scope;
use crate::time;
use crate::tree::{self, EvalError};

/// A record mapped into the target's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    pub key: String,
    pub modified: Option<String>,
    pub target: Json,
    /// Detail lines dropped by `skip_line` lookups.
    pub skipped: Vec<String>,
    /// A digest of `target`: the same source content maps to the same hash.
    pub hash: String,
}

/// A record that could not be mapped.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The record's key, when even that could not be read `None`.
    pub key: Option<String>,
    pub error: Box<EvalError>,
}

/// A record's scope: `vars`, and the time filters reading naive times in the source's zone and
/// writing in the target's.
fn scope(flow: &Flow, record: Arc<Json>) -> Scope {
    let mut names = vec![(Arc::from("vars"), flow.vars_value.clone())];
    names.extend(crate::template::filters::zone_names(
        flow.source.connector.time_zone,
        flow.target.connector.time_zone,
    ));
    // Fields holding one of the source connector's `null_values` (WDT's no-date
    // `9999-12-01 00:00:00`) read as `null`; the record itself stays as read (the ledger keeps
    // that).
    Scope::for_record_with_nulls(
        record,
        names,
        Arc::clone(&flow.source.connector.null_values),
    )
}

/// The key and last-modified text of a source record. The text is as the record gives it,
/// even when it is not a time (a copy with another text is another version); [`map`] refuses
/// a record whose last-modified value is not a time.
pub fn key_of(flow: &Flow, record: &Arc<Json>) -> Result<(String, Option<String>), EvalError> {
    let key = key_text(flow, record)?;
    let modified = flow.key.modified.and_then(|id| {
        tree::evaluate_template(id, &flow.templates, scope(flow, Arc::clone(record)))
            .ok()
            .filter(|value| !value.is_none() && !value.is_undefined())
            .map(|value| text(&value))
    });
    Ok((key, modified))
}

fn key_text(flow: &Flow, record: &Arc<Json>) -> Result<String, EvalError> {
    let key = tree::evaluate_template(
        flow.key.source,
        &flow.templates,
        scope(flow, Arc::clone(record)),
    )?;
    let problem = if key.is_none() {
        Some("is null")
    } else if !matches!(key.kind(), ValueKind::String | ValueKind::Number) {
        Some("is not a text or a number")
    } else if text(&key).trim().is_empty() {
        Some("is empty")
    } else {
        None
    };
    if let Some(problem) = problem {
        return Err(EvalError {
            target: String::new(),
            location: flow.templates.origin(flow.key.source).location.clone(),
            message: format!(
                "the key `{}` {problem}",
                flow.templates.source(flow.key.source).trim()
            ),
            missing_field: None,
        });
    }
    Ok(text(&key))
}

/// The record's last-modified time (`key.modified`), which must be a time: a record without
/// one cannot be placed in time, so it is refused (and parked under its key) rather than sent.
fn modified_of(flow: &Flow, record: &Arc<Json>) -> Result<Option<String>, EvalError> {
    let Some(id) = flow.key.modified else {
        return Ok(None);
    };
    let value = tree::evaluate_template(id, &flow.templates, scope(flow, Arc::clone(record)))?;
    let source = flow.templates.source(id).trim();
    let problem = if value.is_none() {
        "is empty (`null`)".to_string()
    } else if let Some(text) = value.as_str() {
        match time::parse_instant_in(text, flow.source.connector.time_zone) {
            Ok(_) => return Ok(Some(text.to_string())),
            Err(_) => format!("is `{text}`, not a time"),
        }
    } else if value.kind() == ValueKind::Number
        && time::parse_instant_in(&text(&value), flow.source.connector.time_zone).is_ok()
    {
        // Epoch seconds or milliseconds given as a JSON number, as many APIs send them.
        return Ok(Some(text(&value)));
    } else {
        format!("is `{}` ({}), not a time", text(&value), value.kind())
    };
    Err(EvalError {
        target: String::new(),
        location: flow.templates.origin(id).location.clone(),
        message: format!(
            "the last-modified time `{source}` {problem}; expected `yyyy-MM-dd HH:mm:ss` ({}), RFC 3339 or epoch seconds or milliseconds",
            flow.source.connector.time_zone.name()
        ),
        missing_field: None,
    })
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
}

/// Map one source record.
pub fn map(flow: &Flow, record: Arc<Json>) -> Result<Mapped, Failure> {
    let key = key_text(flow, &record).map_err(|error| Failure {
        key: None,
        error: Box::new(error),
    })?;
    let modified = modified_of(flow, &record).map_err(|error| Failure {
        key: Some(key.clone()),
        error: Box::new(error),
    })?;
    let evaluated =
        tree::evaluate(&flow.mapping, &flow.templates, scope(flow, record)).map_err(|error| {
            Failure {
                key: Some(key.clone()),
                error: Box::new(error),
            }
        })?;
    let written = evaluated
        .value
        .get(&flow.key.target)
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
    if written.as_deref() != Some(key.as_str()) {
        return Err(Failure {
            key: Some(key.clone()),
            error: Box::new(EvalError {
                target: flow.key.target.clone(),
                location: flow.templates.origin(flow.key.source).location.clone(),
                message: match written {
                    Some(written) => format!(
                        "`{}` is `{written}`, not the record's key `{key}`",
                        flow.key.target
                    ),
                    None => format!(
                        "the mapping left `{}` empty; it must carry the record's key `{key}`",
                        flow.key.target
                    ),
                },
                missing_field: None,
            }),
        });
    }
    let hash = content_hash(&evaluated.value);
    Ok(Mapped {
        key,
        modified,
        target: evaluated.value,
        skipped: evaluated.skipped,
        hash,
    })
}

/// A short, stable digest of a JSON value.
pub fn content_hash(value: &Json) -> String {
    let digest = Sha256::digest(serde_json::to_vec(value).expect("JSON values serialise"));
    hex::encode(&digest[..16])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_hash_follows_the_content() {
        let a = content_hash(&json!({"FBillNo": "RK1", "FQty": 2}));
        assert_eq!(a, content_hash(&json!({"FBillNo": "RK1", "FQty": 2})));
        assert_ne!(a, content_hash(&json!({"FBillNo": "RK1", "FQty": 3})));
        assert_eq!(a.len(), 32);
    }
}
