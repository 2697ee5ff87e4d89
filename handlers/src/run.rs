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
    /// The process executing it (see `Lease`), while it is running.
    pub owner: Option<String>,
    /// Until when the owner's claim holds unless renewed.
    pub lease_until: Option<DateTime<Utc>>,
    /// The executor mode it was approved under (`live`, `dry-run`, `simulated`): only a process
    /// of the same mode may take it over.
    pub mode: Option<String>,
    /// The last person who decided how the stopped run goes on, and when.
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    /// Someone asked to stop it before its next step.
    pub stop_requested_by: Option<String>,
}

impl Run {
    /// A run's owner as people read it: `host/pid` without the incarnation token.
    pub fn owner_label(&self) -> String {
        self.owner
            .as_deref()
            .map(owner_label)
            .unwrap_or_else(|| "nobody".to_string())
    }
}

/// `host/pid/token` → `host (pid pid)`.
pub fn owner_label(owner: &str) -> String {
    let mut parts = owner.split('/');
    match (parts.next(), parts.next()) {
        (Some(host), Some(pid)) => format!("{host} (pid {pid})"),
        _ => owner.to_string(),
    }
}

/// A process's claim on a run: who, and until when unless renewed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub until: DateTime<Utc>,
}

/// A run another process held until its lease expired, now claimed by this one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TakenOver {
    /// The run as it is now (owned by this process).
    pub run: Run,
    /// Who held it before, and until when.
    pub previous_owner: Option<String>,
    pub previous_lease: Option<DateTime<Utc>>,
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
