//! Flow and connector files: reading, checking and compiling them.
//!
//! `raw` mirrors the files, `yaml` locates every node (`yaml_limits` bounds what a file may
//! ask of the parser, `yaml_syntax` explains its errors), `shape` checks a file against the
//! raw types' schema, `compile` turns raw values into the validated `model`; `file` reads
//! every file within bounds. Nothing outside this module reads YAML: other files (the alerts
//! file) are read through [`read_checked`].

mod compile;
pub mod file;
pub mod model;
pub mod raw;
pub mod shape;
pub mod yaml;
mod yaml_limits;
mod yaml_syntax;

pub use compile::{
    Loaded, StandaloneConnector, connector_schema, flow_schema, load_connector, load_flow,
};

/// Read `file` and check its shape against `schema` (for files other than flows and
/// connectors, such as the alerts file): every shape problem, located; the document and its
/// value only when there is none. The file's text is returned for diagnostics.
pub fn read_checked<T: serde::de::DeserializeOwned>(
    file: &std::path::Path,
    schema: &serde_json::Value,
) -> (
    Option<(yaml::Document, T)>,
    Vec<crate::error::Error>,
    Option<String>,
) {
    use crate::error::Error;
    let doc = match yaml::Document::read(file) {
        Ok(doc) => doc,
        Err(err) => return (None, vec![err], None),
    };
    let text = Some(doc.text.clone());
    let mut errors = Vec::new();
    for problem in shape::check(&doc.value, schema) {
        let location = match problem.on_key {
            true => doc.locate_key(&problem.path),
            false => doc.locate(&problem.path),
        };
        let mut error = Error::config(problem.message).with_location(location);
        if let Some(hint) = problem.hint.or(problem.label) {
            error = error.with_hint(hint);
        }
        errors.push(error);
    }
    if !errors.is_empty() {
        return (None, errors, text);
    }
    match serde_yaml::from_value(doc.value.clone()) {
        Ok(value) => (Some((doc, value)), errors, text),
        Err(err) => {
            errors.push(
                Error::config(format!("cannot read `{}`: {err}", file.display()))
                    .with_location(doc.locate(&yaml::YamlPath::root())),
            );
            (None, errors, text)
        }
    }
}
