//! erlmcp-bot: the binary's library. Configuration, storage, executors and chat adapters (the
//! console, Slack and Discord) around the incident core.

pub mod alerts;
pub mod app;
pub mod chat;
pub mod cli;
pub mod config;
pub mod console;
pub mod discord;
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
