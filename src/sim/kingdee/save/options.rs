//! The options of a save's `data` that change what it does (spec §3.2): booleans read the way
//! .NET's `Convert.ToBoolean` reads them, field lists as arrays or comma-separated strings.

use serde_json::{Map, Value};

use crate::sim::kingdee::body::scalar_text;

/// The options of `data` that change what a save does (spec §3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Options {
    pub(super) verify_base_data: bool,
    pub(super) validate: bool,
    pub(super) auto_submit_and_audit: bool,
    pub(super) validate_repeat_json: bool,
    pub(super) delete_entry: bool,
    pub(super) need_return_fields: Vec<String>,
    pub(super) need_update_fields: Vec<String>,
}

pub(super) fn get_ci<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(key))
        .map(|(_, value)| value)
}

/// .NET's `Convert.ToBoolean` accepts `true`/`false` in any case and nothing else; its
/// message is what the server would report.
pub(super) fn option_bool(
    data: &Map<String, Value>,
    key: &str,
    default: bool,
) -> Result<bool, String> {
    match get_ci(data, key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(flag)) => Ok(*flag),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(default),
        Some(Value::String(text)) => match text.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(format!(
                "参数{key}的值“{text}”无效：String was not recognized as a valid Boolean."
            )),
        },
        Some(Value::Number(number)) => Ok(number.as_f64() != Some(0.0)),
        Some(other) => Err(format!(
            "参数{key}的值“{other}”无效：String was not recognized as a valid Boolean."
        )),
    }
}

pub(super) fn option_list(data: &Map<String, Value>, key: &str) -> Vec<String> {
    match get_ci(data, key) {
        Some(Value::Array(items)) => items.iter().filter_map(scalar_text).collect(),
        Some(Value::String(text)) => text
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

pub(super) fn parse_options(data: &Map<String, Value>) -> Result<Options, String> {
    Ok(Options {
        verify_base_data: option_bool(data, "IsVerifyBaseDataField", false)?,
        validate: option_bool(data, "ValidateFlag", true)?,
        auto_submit_and_audit: option_bool(data, "IsAutoSubmitAndAudit", false)?,
        validate_repeat_json: option_bool(data, "ValidateRepeatJson", false)?,
        delete_entry: option_bool(data, "IsDeleteEntry", true)?,
        need_return_fields: option_list(data, "NeedReturnFields"),
        need_update_fields: option_list(data, "NeedUpDateFields"),
    })
}
