//! The integration tests: one binary that runs the real `engine` executable the way a user
//! does, against the built-in sandboxes on 127.0.0.1.

mod support;

mod adaptive;
mod alerts;
mod bundle;
mod check;
mod cli;
mod console;
mod faults;
mod file_connector;
mod fuzz_check;
mod hostile_http;
mod hostile_source;
mod mapping;
mod newcomer;
mod rest_auth;
mod rest_described;
mod rest_requests;
mod rest_sources;
mod rest_target;
mod rest_update;
mod run;
mod serve;
mod sim_kingdee;
mod sim_wdt;
mod source_data;
mod state_lock;
mod state_migration;
mod update;
