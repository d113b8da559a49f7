//! Flow and connector files: reading, checking and compiling them.
//!
//! `raw` mirrors the files, `yaml` locates every node (`yaml_limits` bounds what a file may
//! ask of the parser, `yaml_syntax` explains its errors), `shape` checks a file against the
//! raw types' schema, `compile` turns raw values into the validated `model`; `file` reads
//! every file within bounds. Nothing outside this module reads YAML.

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
