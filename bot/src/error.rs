//! The bot crate's one error type: what can fail at start and at the edges (configuration, the
//! database, playbook files, Slack, listening), each with a message a person can act on.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// The configuration (file, environment, arguments) is wrong or incomplete.
    #[error("{0}")]
    Config(String),
    /// The database could not be opened, migrated or used; the database's own message is kept.
    #[error("{0}")]
    Database(String),
    /// Playbook files did not load; every problem with its file and line.
    #[error("{0}")]
    Playbooks(String),
    /// Slack refused a call or could not be reached.
    #[error(transparent)]
    Slack(#[from] crate::slack::api::SlackError),
    /// A listener, a socket or a file failed.
    #[error("{0}")]
    Io(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
