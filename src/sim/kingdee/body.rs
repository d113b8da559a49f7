//! Request bodies: every shape working clients send (spec §1.2), normalised.
//!
//! Seven shapes arrive in practice: `{"formid","data"}` with `data` an object or a JSON
//! string; a positional `parameters` array, bare or inside the legacy "ApiClient" envelope,
//! or as a string holding a JSON array; form-urlencoded `data=`/`formid=`; and named login
//! parameters. [`parse`] turns any of them into a [`RawCall`]; the accessors then read it the
//! way a given service needs (form + data, data only, or login parameters). Top-level key
//! matching is case-insensitive. Pure functions, no IO.

use std::collections::BTreeMap;

use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

/// A request body, read but not yet interpreted by a service.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawCall {
    /// Top-level named keys, lower-cased (`formid`, `data`, `acctid`, `beginmethod`, …).
    named: BTreeMap<String, Value>,
    /// The positional `parameters`, when the body had them.
    parameters: Option<Vec<Value>>,
}

/// Why a body cannot be read at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError(pub String);

/// Why a readable body lacks what a service needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// No `data` (nor a positional equivalent).
    MissingData,
    /// `data` is neither an object nor a string holding one.
    DataNotAnObject(String),
}

/// A form service call (`Save`, `BatchSave`, `View`, …): the form id and the `data` object.
#[derive(Debug, Clone, PartialEq)]
pub struct FormCall {
    pub formid: Option<String>,
    pub data: Map<String, Value>,
}

/// Read a body of any accepted shape.
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<RawCall, BodyError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| BodyError("请求数据不是有效的UTF-8文本".to_string()))?
        .trim_start_matches('\u{feff}')
        .trim();
    let form_encoded = content_type
        .is_some_and(|ct| ct.to_ascii_lowercase().contains("x-www-form-urlencoded"))
        || (!text.starts_with('{') && !text.starts_with('[') && text.contains('='));
    if form_encoded {
        return Ok(parse_form(text));
    }
    if text.is_empty() {
        return Ok(RawCall::default());
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|err| BodyError(format!("请求数据不是有效的JSON：{err}")))?;
    match value {
        Value::Object(object) => Ok(from_object(object)),
        // A bare array is the positional form without its `parameters` wrapper.
        Value::Array(items) => Ok(RawCall {
            named: BTreeMap::new(),
            parameters: Some(items),
        }),
        _ => Err(BodyError("请求数据必须是JSON对象".to_string())),
    }
}

fn from_object(object: Map<String, Value>) -> RawCall {
    let mut named = BTreeMap::new();
    let mut parameters = None;
    for (key, value) in object {
        let key = key.to_lowercase();
        if key == "parameters" {
            parameters = match value {
                Value::Array(items) => Some(items),
                // Shape 5: the array arrives as a JSON string.
                Value::String(text) => match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Array(items)) => Some(items),
                    _ => Some(vec![Value::String(text)]),
                },
                other => Some(vec![other]),
            };
        } else {
            named.insert(key, value);
        }
    }
    RawCall { named, parameters }
}

fn parse_form(text: &str) -> RawCall {
    let mut named = BTreeMap::new();
    for pair in text.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        named.insert(
            form_decode(key).to_lowercase(),
            Value::String(form_decode(value)),
        );
    }
    let parameters = named.remove("parameters").map(|value| match value {
        Value::String(text) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Array(items)) => items,
            _ => vec![Value::String(text)],
        },
        other => vec![other],
    });
    RawCall { named, parameters }
}

fn form_decode(text: &str) -> String {
    percent_decode_str(&text.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// A `data` value: an object, or a string holding one.
fn data_object(value: &Value) -> Result<Map<String, Value>, CallError> {
    match value {
        Value::Object(object) => Ok(object.clone()),
        Value::String(text) if text.trim().is_empty() => Err(CallError::MissingData),
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(object)) => Ok(object),
            Ok(_) => Err(CallError::DataNotAnObject(
                "data数据包必须是JSON对象".to_string(),
            )),
            Err(err) => Err(CallError::DataNotAnObject(format!(
                "data数据包不是有效的JSON：{err}"
            ))),
        },
        Value::Null => Err(CallError::MissingData),
        _ => Err(CallError::DataNotAnObject(
            "data数据包必须是JSON对象".to_string(),
        )),
    }
}

/// Text of a scalar JSON value as clients mean it (`"100"` and `100` are the same code).
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

impl RawCall {
    /// A named top-level value, matched case-insensitively.
    pub fn named(&self, key: &str) -> Option<&Value> {
        self.named.get(&key.to_lowercase())
    }

    /// The positional parameters, if the body had them.
    pub fn parameters(&self) -> Option<&[Value]> {
        self.parameters.as_deref()
    }

    /// Read a form service call: `formid` and `data` by name, else `parameters[0..2]`.
    pub fn form_call(&self) -> Result<FormCall, CallError> {
        if let Some(data) = self.named("data") {
            let formid = self.named("formid").and_then(scalar_text);
            return Ok(FormCall {
                formid,
                data: data_object(data)?,
            });
        }
        match self.parameters() {
            Some([formid, data, ..]) => Ok(FormCall {
                formid: scalar_text(formid),
                data: data_object(data)?,
            }),
            _ => Err(CallError::MissingData),
        }
    }

    /// Read a call whose only argument is `data` (queries): by name, else `parameters[0]`.
    pub fn data_call(&self) -> Result<Map<String, Value>, CallError> {
        if let Some(data) = self.named("data") {
            return data_object(data);
        }
        match self.parameters() {
            Some([data, ..]) => data_object(data),
            _ => Err(CallError::MissingData),
        }
    }

    /// Read positional login parameters, falling back to named ones (shape 7): `names[i]`
    /// lists the accepted spellings of parameter `i`.
    pub fn login_parameters(&self, names: &[&[&str]]) -> Vec<Option<String>> {
        names
            .iter()
            .enumerate()
            .map(|(index, spellings)| {
                if let Some(parameters) = self.parameters() {
                    return parameters.get(index).and_then(scalar_text);
                }
                spellings
                    .iter()
                    .find_map(|name| self.named(name))
                    .and_then(scalar_text)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const JSON: Option<&str> = Some("application/json");
    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

    fn model() -> Value {
        json!({"Model": [{"FBillNo": "RT-1"}]})
    }

    #[test]
    fn every_form_call_shape_normalises_to_the_same_formid_and_data() {
        let data_text = model().to_string();
        let cases: Vec<(&str, Option<&str>, String)> = vec![
            (
                "1 SDK object",
                JSON,
                json!({"formid": "SAL_RETURNSTOCK", "data": model()}).to_string(),
            ),
            (
                "2 data as a JSON string",
                JSON,
                json!({"formid": "SAL_RETURNSTOCK", "data": data_text}).to_string(),
            ),
            (
                "3 positional parameters",
                JSON,
                json!({"parameters": ["SAL_RETURNSTOCK", data_text]}).to_string(),
            ),
            (
                "4 legacy ApiClient envelope",
                JSON,
                json!({"format": 1, "useragent": "ApiClient", "rid": {}, "parameters": ["SAL_RETURNSTOCK", data_text], "timestamp": "2006-01-02", "v": "1.0"}).to_string(),
            ),
            (
                "5 parameters as a JSON string",
                JSON,
                json!({"parameters": json!(["SAL_RETURNSTOCK", data_text]).to_string()})
                    .to_string(),
            ),
            (
                "6 form-urlencoded",
                FORM,
                format!(
                    "formid=SAL_RETURNSTOCK&data={}",
                    percent_encoding::utf8_percent_encode(
                        &data_text,
                        percent_encoding::NON_ALPHANUMERIC
                    )
                ),
            ),
            (
                "key case does not matter",
                JSON,
                json!({"FormId": "SAL_RETURNSTOCK", "Data": model()}).to_string(),
            ),
            (
                "form body without a content type",
                None,
                format!("formid=SAL_RETURNSTOCK&data={}", data_text.replace('"', "%22")),
            ),
        ];
        for (name, content_type, body) in cases {
            let call = parse(content_type, body.as_bytes())
                .unwrap_or_else(|err| panic!("{name}: {err:?}"))
                .form_call()
                .unwrap_or_else(|err| panic!("{name}: {err:?}"));
            assert_eq!(call.formid.as_deref(), Some("SAL_RETURNSTOCK"), "{name}");
            assert_eq!(Value::Object(call.data), model(), "{name}");
        }
    }

    #[test]
    fn query_calls_read_data_by_name_or_position() {
        let query = json!({"FormId": "SAL_RETURNSTOCK", "FieldKeys": "FID"});
        for body in [
            json!({"data": query}).to_string(),
            json!({"data": query.to_string()}).to_string(),
            json!({"parameters": [query.to_string()]}).to_string(),
        ] {
            let data = parse(JSON, body.as_bytes()).unwrap().data_call().unwrap();
            assert_eq!(Value::Object(data), query, "{body}");
        }
        let form = format!("data={}", query.to_string().replace('"', "%22"));
        let data = parse(FORM, form.as_bytes()).unwrap().data_call().unwrap();
        assert_eq!(Value::Object(data), query);
    }

    #[test]
    fn missing_or_malformed_data_is_reported() {
        for (body, expected) in [
            (r#"{"formid":"SAL_RETURNSTOCK"}"#, CallError::MissingData),
            (
                r#"{"formid":"SAL_RETURNSTOCK","data":""}"#,
                CallError::MissingData,
            ),
            (
                r#"{"formid":"SAL_RETURNSTOCK","data":null}"#,
                CallError::MissingData,
            ),
            (r#"{}"#, CallError::MissingData),
            ("", CallError::MissingData),
        ] {
            let call = parse(JSON, body.as_bytes()).unwrap();
            assert_eq!(call.form_call().unwrap_err(), expected, "{body}");
        }
        let call = parse(JSON, br#"{"formid":"X","data":"{not json"}"#).unwrap();
        assert!(matches!(
            call.form_call().unwrap_err(),
            CallError::DataNotAnObject(_)
        ));
        let call = parse(JSON, br#"{"formid":"X","data":[1]}"#).unwrap();
        assert!(matches!(
            call.form_call().unwrap_err(),
            CallError::DataNotAnObject(_)
        ));
        assert!(parse(JSON, b"{broken").is_err());
        assert!(parse(JSON, b"42").is_err());
    }

    #[test]
    fn login_parameters_come_positional_or_named() {
        let names: &[&[&str]] = &[
            &["acctid", "acctID"],
            &["username", "userName"],
            &["password"],
            &["lcid"],
        ];
        for body in [
            json!({"parameters": ["65a1", "apiuser", "pw", 2052]}).to_string(),
            json!({"parameters": json!(["65a1", "apiuser", "pw", 2052]).to_string()})
                .to_string(),
            json!({"format": 1, "useragent": "ApiClient", "parameters": ["65a1", "apiuser", "pw", "2052"], "v": "1.0"}).to_string(),
            json!({"acctid": "65a1", "userName": "apiuser", "password": "pw", "lcid": 2052})
                .to_string(),
            json!(["65a1", "apiuser", "pw", 2052]).to_string(),
        ] {
            let values = parse(JSON, body.as_bytes())
                .unwrap()
                .login_parameters(names);
            assert_eq!(
                values,
                vec![
                    Some("65a1".to_string()),
                    Some("apiuser".to_string()),
                    Some("pw".to_string()),
                    Some("2052".to_string())
                ],
                "{body}"
            );
        }
    }
}
