//! `engine`: a declarative data-integration engine.
//!
//! Modules in data-flow order: `config` reads and compiles flow and connector files, `source`
//! reads windows and pages, `record` (with `template` and `tree`) turns a source record into a
//! target record, `target` writes it exactly once, `state` keeps the ledger, `run` joins them,
//! `http`/`auth`/`sign` talk to the APIs, `sim` holds the sandboxes of both APIs, and `cli`
//! wires commands to all of them.
//! See docs/architecture.md for the map and its invariants.

pub mod alert;
pub mod allocator;
pub mod apischema;
pub mod auth;
pub mod check;
pub mod cli;
pub mod config;
pub mod console;
pub mod diagnostic;
pub mod envfile;
pub mod error;
pub mod file;
pub mod http;
pub mod preview;
pub mod projected;
pub mod record;
pub mod request;
pub mod run;
pub mod schedule;
pub mod secret;
pub mod serve;
pub mod sign;
pub mod sim;
pub mod source;
pub mod state;
pub mod target;
pub mod template;
pub mod time;
pub mod tree;
pub mod value_map;
