//! The core's error type. Every variant carries a message fit to show a person.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// The stored row changed since it was read (another replica or command got there first).
    #[error("someone else changed {0} at the same moment; look at it again and retry")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    /// The database said no; its own message is kept so people can act on it.
    #[error("database error: {0}")]
    Store(String),
    /// An infrastructure call failed; the remote system's message is kept.
    #[error("{0}")]
    Executor(#[from] crate::executor::ExecError),
    #[error("playbook error: {0}")]
    Playbook(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
