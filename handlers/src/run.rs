//! Durable playbook runs: one row per run and one per step, so a run survives a crash and resumes
//! without running a finished step twice.

use crate::executor::Action;
use crate::ids::{IncidentId, RequestId, RunId};
use chrono::{DateTime, Utc};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RunState {
    Running,
    /// Stopped in the middle of a step that is not safe to re-run: a person must decide.
    Blocked,
    Done,
    Failed,
    Aborted,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Blocked => "blocked",
            RunState::Done => "done",
            RunState::Failed => "failed",
            RunState::Aborted => "aborted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Running,
            Self::Blocked,
            Self::Done,
            Self::Failed,
            Self::Aborted,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StepState {
    Pending,
    Running,
    Done,
    Failed,
    Skipped,
}

impl StepState {
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Running => "running",
            StepState::Done => "done",
            StepState::Failed => "failed",
            StepState::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Running,
            Self::Done,
            Self::Failed,
            Self::Skipped,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub id: RunId,
    pub request: RequestId,
    pub incident: IncidentId,
    pub playbook: String,
    pub channel: String,
    pub state: RunState,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A step as planned and approved, and what became of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepRecord {
    pub run: RunId,
    /// 1-based position in the plan.
    pub idx: i64,
    pub name: String,
    pub action: Action,
    /// The plan line people approved.
    pub description: String,
    pub changes_state: bool,
    pub idempotent: bool,
    pub timeout_seconds: i64,
    pub retries: i64,
    pub state: StepState,
    pub attempts: i64,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The outcome line, or the error with the remote system's message.
    pub result: Option<String>,
}
