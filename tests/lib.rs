//! The integration tests: one binary that runs the real `engine` executable the way a user
//! does, against the built-in sandboxes on 127.0.0.1.

mod support;

mod cli;
mod sim_wdt;
