//! The integration tests: one binary, so the server and its dependencies
//! are linked once, not once per file. Each module drives the real server
//! over a fresh database (see `common`).

#[macro_use]
mod common;

mod access;
mod append;
mod client_js;
mod compose;
mod console_api;
mod feed;
mod fuzz;
mod metrics;
mod openapi;
mod ordering;
mod origins;
mod outbox;
mod partitions;
mod protocol_doc;
mod replicas;
mod rules_agree;
mod sql_api;
mod sql_install;
mod stats;
mod types;
mod types_process;
