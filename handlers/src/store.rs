//! What the core needs from storage, as a trait. The bot crate implements it on SQLite and
//! PostgreSQL; the core never sees SQL. Every method that changes several rows does so atomically.

use crate::approval::{Approval, ApprovalRequest, RequestState};
use crate::error::Result;
use crate::ids::{IncidentId, RequestId, RunId};
use crate::incident::Incident;
use crate::run::{Run, RunState, StepRecord};
use crate::timeline::{Draft, Entry, Head};
use chrono::{DateTime, Utc};

/// A request state change: allowed only from one of `from`.
#[derive(Clone, Copy, Debug)]
pub struct StateChange<'a> {
    pub from: &'a [RequestState],
    pub to: RequestState,
    pub at: DateTime<Utc>,
    pub by: Option<&'a str>,
    pub reason: Option<&'a str>,
}

/// In the drafts passed to `create_request` and `begin_execution`, the first occurrence of this
/// text is replaced by the id the store allocates, so the timeline names the new request or run.
pub const ID_PLACEHOLDER: &str = "{id}";

/// An incident before it has an id.
#[derive(Clone, Debug)]
pub struct NewIncident {
    pub title: String,
    pub severity: crate::severity::Severity,
    pub channel: String,
    pub drill: bool,
    pub declared_by: String,
    pub declared_at: DateTime<Utc>,
}

#[async_trait::async_trait]
pub trait Store: Send + Sync {
    // Incidents and their timeline.

    /// Allocates the next `INC-YYYYMMDD-N` for the declaration day and stores the incident with its
    /// first timeline entries.
    async fn create_incident(&self, new: NewIncident, drafts: Vec<Draft>) -> Result<Incident>;
    async fn incident(&self, id: &IncidentId) -> Result<Option<Incident>>;
    /// Incidents tied to a channel, newest first.
    async fn incidents_in_channel(&self, channel: &str) -> Result<Vec<Incident>>;
    /// Every incident that is not closed, newest first.
    async fn open_incidents(&self) -> Result<Vec<Incident>>;
    async fn all_incident_ids(&self) -> Result<Vec<IncidentId>>;
    /// Every incident, newest first (reports).
    async fn all_incidents(&self) -> Result<Vec<Incident>>;
    /// Stores the incident's new state if nobody changed it since `incident.version` was read
    /// (`Error::Conflict` otherwise) and appends the drafts, in one transaction.
    async fn update_incident(&self, incident: &Incident, drafts: Vec<Draft>) -> Result<Incident>;
    /// Appends entries to an incident's timeline.
    async fn append(&self, incident: &IncidentId, drafts: Vec<Draft>) -> Result<Vec<Entry>>;
    async fn timeline(&self, incident: &IncidentId) -> Result<Vec<Entry>>;
    /// Whether the incident's timeline has an entry of this kind.
    async fn has_entry(&self, incident: &IncidentId, kind: &str) -> Result<bool>;
    /// The chain length and last hash the incident row records.
    async fn timeline_head(&self, incident: &IncidentId) -> Result<Option<Head>>;

    // Approval requests.

    /// Allocates `REQ-YYYYMMDD-N` and stores the request (its `id` field is ignored) with a timeline entry.
    async fn create_request(
        &self,
        request: ApprovalRequest,
        drafts: Vec<Draft>,
    ) -> Result<ApprovalRequest>;
    async fn request(&self, id: &RequestId) -> Result<Option<ApprovalRequest>>;
    /// Requests of an incident, oldest first.
    async fn requests_for_incident(&self, incident: &IncidentId) -> Result<Vec<ApprovalRequest>>;
    /// Records an approval; `false` if this approver had already approved (one person counts once).
    async fn add_approval(&self, approval: &Approval, drafts: Vec<Draft>) -> Result<bool>;
    async fn approvals(&self, id: &RequestId) -> Result<Vec<Approval>>;
    /// Requests in a state, across incidents, oldest first (the expiry sweep reads pending ones).
    async fn requests_in_state(&self, state: RequestState) -> Result<Vec<ApprovalRequest>>;
    /// The deciding approval: moves the request from `pending` to `executing` and stores the run
    /// with its steps, in one transaction, only if the request is still pending. `None` if another
    /// approval (on this replica or another) got there first. This is the exactly-once guarantee.
    async fn begin_execution(
        &self,
        id: &RequestId,
        at: DateTime<Utc>,
        by: &str,
        run: Run,
        steps: Vec<StepRecord>,
        drafts: Vec<Draft>,
    ) -> Result<Option<Run>>;
    /// Moves the request to `to` only if it is in one of `from`; `true` if this call made the
    /// change. This compare-and-set is what makes a request execute once across replicas.
    async fn transition_request(
        &self,
        id: &RequestId,
        change: StateChange<'_>,
        drafts: Vec<Draft>,
    ) -> Result<bool>;

    // Playbook runs.

    async fn run(&self, id: &RunId) -> Result<Option<Run>>;
    async fn run_for_request(&self, request: &RequestId) -> Result<Option<Run>>;
    async fn runs_in_state(&self, state: RunState) -> Result<Vec<Run>>;
    async fn steps(&self, run: &RunId) -> Result<Vec<StepRecord>>;
    /// Saves a step's state, attempts, times and result.
    async fn save_step(&self, step: &StepRecord) -> Result<()>;
    async fn set_run_state(
        &self,
        run: &RunId,
        state: RunState,
        finished_at: Option<DateTime<Utc>>,
    ) -> Result<()>;
}
