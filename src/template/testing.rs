//! What the template tests share: a place for templates written in no file, and how an
//! evaluation shows (to compare two ways of evaluating a template).

use std::path::Path;

use minijinja::Value;

use super::scope::Misses;
use super::{Origin, to_json};
use crate::config::yaml::YamlPath;
use crate::error::Location;

pub fn origin() -> Origin {
    Origin {
        location: Location::new(Path::new("f.yaml"), 1, 1, 1),
        path: YamlPath::root(),
    }
}

/// What an evaluation shows: its value (kind, JSON, text) or its error, and the field noted
/// missing.
pub fn shown(result: Result<Value, minijinja::Error>, misses: &Misses) -> String {
    let shown = match result {
        Ok(value) => format!(
            "{:?} {:?} {:?} {:?}",
            value.kind(),
            to_json(&value),
            value.to_string(),
            value.as_str()
        ),
        Err(err) => format!("error {:?} {}", err.kind(), err),
    };
    format!("{shown} / missed {:?}", misses.last())
}
