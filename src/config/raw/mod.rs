//! The raw configuration types: a faithful mirror of the YAML files, nothing more.
//!
//! Every struct denies unknown keys and documents every field; the JSON Schemas in
//! `schemas/` are generated from these types, so the doc comments here are what editors
//! show. Nothing in this module validates beyond shape: templates, JSONPaths, references
//! and files are checked by `config::compile`, which turns these into the validated types.
//! Flow files (`flow`) and connector files (`connector`) each have their own file.

mod connector;
mod flow;

pub use connector::*;
pub use flow::*;
