//! erlmcp-handlers: the transport-agnostic incident core. Chat text in, decisions and replies out.
//! It knows nothing of Slack, Discord, HTTP, Kubernetes or SQL: storage, infrastructure and
//! message delivery come in through the `Store`, `Executor` and `Outbox` traits.

pub mod alerts;
pub mod approval;
pub mod clock;
pub mod command;
pub mod engine;
pub mod error;
pub mod executor;
pub mod facts;
pub mod ids;
pub mod incident;
pub mod markdown;
pub mod picture;
pub mod playbook;
pub mod postmortem;
pub mod reads;
pub mod reply;
pub mod report;
pub mod run;
pub mod severity;
pub mod store;
pub mod telemetry;
pub mod timeline;
pub mod topology;

pub use error::{Error, Result};
