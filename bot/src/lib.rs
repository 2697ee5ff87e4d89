//! erlmcp-bot: the binary's library. Configuration, storage, executors and transports (the
//! console now; Slack and Discord adapters plug in the same way) around the incident core.

pub mod alerts;
pub mod app;
pub mod cli;
pub mod config;
pub mod console;
pub mod drill;
pub mod environment;
pub mod error;
pub mod http;
pub mod inspect;
pub mod intake;
pub mod live;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod serve;
pub mod slack;
pub mod store;
pub mod web;
