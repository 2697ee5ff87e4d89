//! The end-to-end tests, in one binary (linking every crate once is what costs on 2 cores).
//! Modules that start the built `erlmcp-bot` program (`env!("CARGO_BIN_EXE_erlmcp-bot")`) test
//! it as users run it; the others drive the library directly, on SQLite and PostgreSQL.

mod alerts;
mod approvals;
mod chat_store;
mod cli;
mod discord;
mod durability;
mod hardening;
mod incidents;
mod large;
mod live;
mod manifests;
mod migration;
mod operations;
mod playbooks;
mod program;
mod props;
mod readme;
mod receipts;
mod replicas;
mod row_facts;
mod shipped;
mod slack;
mod web;
