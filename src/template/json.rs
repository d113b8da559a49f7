//! Template values and JSON: a template's result written as JSON (an undefined value is an
//! error, never an empty string), and JSON constants given to templates. Pure.

use minijinja::Value;
use minijinja::value::ValueKind;
use serde_json::Value as Json;

use super::{decimal, scope};

/// What a template's JSON holds where it gave, whole, the records a write lends its body
/// ([`scope::RecordNode::lent`]): a text no data holds (it carries a random number drawn once a
/// process), replaced by the records themselves when the body is serialised or completed
/// (`request`), so that building a body does not copy its records.
pub fn lent_marker() -> &'static str {
    static MARKER: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        use std::hash::{BuildHasher as _, Hasher as _};
        let nonce = std::hash::RandomState::new().build_hasher().finish();
        format!("\u{0}engine: the records lent to this body {nonce:016x}\u{0}")
    });
    &MARKER
}

/// Whether `json` is the [`lent_marker`].
pub fn is_lent_marker(json: &Json) -> bool {
    matches!(json, Json::String(text) if text == lent_marker())
}

/// What [`to_json`] says of an undefined value (inside a list or mapping a template built).
pub const UNDEFINED_RESULT: &str = "the template produced no value (undefined)";

/// The JSON value of a template result. Undefined is an error: it never becomes an empty string.
pub fn to_json(value: &Value) -> Result<Json, String> {
    if let Some(decimal) = value.downcast_object_ref::<decimal::Decimal>() {
        return Ok(decimal::to_json(decimal.0));
    }
    if let Some(json) = scope::record_json(value) {
        return Ok(json);
    }
    match value.kind() {
        ValueKind::Undefined => Err(UNDEFINED_RESULT.to_string()),
        ValueKind::None => Ok(Json::Null),
        ValueKind::Bool => Ok(Json::Bool(value.is_true())),
        ValueKind::Number => {
            if let Some(integer) = value.as_i64() {
                return Ok(Json::from(integer));
            }
            let float = f64::try_from(value.clone()).map_err(|err| err.to_string())?;
            serde_json::Number::from_f64(float)
                .map(Json::Number)
                .ok_or_else(|| format!("`{value}` is not a finite number"))
        }
        ValueKind::String => Ok(Json::String(value.as_str().unwrap_or_default().to_string())),
        ValueKind::Seq | ValueKind::Iterable => {
            let items = value.try_iter().map_err(|err| err.to_string())?;
            items
                .map(|item| to_json(&item))
                .collect::<Result<Vec<_>, _>>()
                .map(Json::Array)
        }
        ValueKind::Map => {
            let mut map = serde_json::Map::new();
            for key in value.try_iter().map_err(|err| err.to_string())? {
                let item = value.get_item(&key).map_err(|err| err.to_string())?;
                map.insert(key.to_string(), to_json(&item)?);
            }
            Ok(Json::Object(map))
        }
        ValueKind::Plain => Ok(Json::String(value.to_string())),
        other => Err(format!("a {other} value cannot be written to JSON")),
    }
}

/// A template value from JSON (for `vars`, `params` and other constants given to templates).
pub fn from_json(json: &Json) -> Value {
    match json {
        Json::Null => Value::from(()),
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Value::from(i),
            (_, Some(f)) => Value::from(f),
            _ => Value::from(n.to_string()),
        },
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(items) => Value::from(items.iter().map(from_json).collect::<Vec<_>>()),
        Json::Object(map) => Value::from_pairs(map.iter().map(|(k, v)| (k.clone(), from_json(v)))),
    }
}
