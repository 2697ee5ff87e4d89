//! What the core needs from storage, as a trait. The bot crate implements it on SQLite and
//! PostgreSQL; the core never sees SQL. Every method that changes several rows does so atomically.

use crate::approval::{Approval, ApprovalRequest, RequestState};
use crate::error::Result;
use crate::ids::{IncidentId, RequestId, RunId};
use crate::incident::Incident;
use crate::run::{Lease, Run, RunState, StepRecord, TakenOver};
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

/// In the drafts (text and facts) passed to `create_request` and `begin_execution`, the first
/// occurrence of this text is replaced by the id the store allocates, so the timeline names the
/// new request or run.
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
pub trait Store: RunStore + ReceiptStore {
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
    /// The first `limit` entries after entry `after_seq` up to and including entry
    /// `through_seq`, in order: a long timeline read a stretch at a time. A bounded key range
    /// is read whatever plan the database picks; with `through_seq` at `i64::MAX` (a page of
    /// whatever follows) PostgreSQL, from stale statistics, may read every later entry and sort
    /// them (0.2 s a page of a million-entry timeline, 0.76 s for the first).
    async fn timeline_range(
        &self,
        incident: &IncidentId,
        after_seq: i64,
        through_seq: i64,
        limit: i64,
    ) -> Result<Vec<Entry>>;
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
    /// Records an approval, only while the request is still pending (a compare-and-set on its
    /// state) and only once per person.
    async fn add_approval(&self, approval: &Approval, drafts: Vec<Draft>) -> Result<Recorded>;
    async fn approvals(&self, id: &RequestId) -> Result<Vec<Approval>>;
    /// Requests in a state, across incidents, oldest first (the expiry sweep reads pending ones).
    async fn requests_in_state(&self, state: RequestState) -> Result<Vec<ApprovalRequest>>;
    /// Moves the request to `to` only if it is in one of `from`; `true` if this call made the
    /// change. This compare-and-set is what makes a request decided once across replicas.
    async fn transition_request(
        &self,
        id: &RequestId,
        change: StateChange<'_>,
        drafts: Vec<Draft>,
    ) -> Result<bool>;

    // Periodic notices.

    /// Records a notice (`key`, e.g. `clock.response.missed`) for an incident with its timeline
    /// entries, only if it was never recorded; `true` if this call recorded it (and should send it).
    async fn record_notice_once(
        &self,
        incident: &IncidentId,
        key: &str,
        at: DateTime<Utc>,
        drafts: Vec<Draft>,
    ) -> Result<bool>;

    // Alerts.

    /// Links from alert keys to incidents that are not closed.
    async fn alert_links(&self) -> Result<Vec<AlertLink>>;

    /// Sets links (replacing any link of the same key) and appends the entries that record the
    /// alert, in one transaction that replicas take in turn; `false`, and nothing written, when
    /// every `fp:` link given is already there unchanged (same incident, status and start).
    async fn record_alert(
        &self,
        incident: &IncidentId,
        links: Vec<AlertLink>,
        drafts: Vec<Draft>,
    ) -> Result<bool>;

    /// Opens an incident for an alert, linked to `links` (their `incident` is ignored), unless
    /// one of those keys already leads to an incident that is not closed: then that incident,
    /// and nothing is created. Decided in one transaction that replicas take in turn, so an alert
    /// delivered to two replicas at once opens one incident.
    async fn open_for_alert(
        &self,
        new: NewIncident,
        drafts: Vec<Draft>,
        links: Vec<AlertLink>,
    ) -> Result<AlertOpened>;
}

/// A link from an alert key (`fp:<fingerprint>`, `group:<group key>`, `match:<k=v,...>`) to
/// the incident it belongs to, with the last status and start seen for it (a repeat of the same
/// is not recorded again).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertLink {
    pub key: String,
    pub incident: IncidentId,
    pub status: String,
    pub starts_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum AlertOpened {
    Opened(Box<Incident>),
    /// Already open (another replica, or an earlier alert of the group, got there first).
    Existing(IncidentId),
}

/// Playbook runs: starting them exactly once, owning them under a lease, and continuing them.
/// Part of `Store`; a trait of its own so each backend's implementation stays in a file of its own.
#[async_trait::async_trait]
pub trait RunStore: Send + Sync {
    /// The deciding approval: moves the request from `pending` to `executing` and stores the run
    /// (owned by `run.owner` until `run.lease_until`) with its steps, in one transaction, only if
    /// the request is still pending. `None` if another approval (on this replica or another) got
    /// there first. This is the exactly-once guarantee for starting.
    async fn begin_execution(
        &self,
        id: &RequestId,
        at: DateTime<Utc>,
        by: &str,
        run: Run,
        steps: Vec<StepRecord>,
        drafts: Vec<Draft>,
    ) -> Result<Option<Run>>;
    async fn run(&self, id: &RunId) -> Result<Option<Run>>;
    async fn run_for_request(&self, request: &RequestId) -> Result<Option<Run>>;
    async fn runs_in_state(&self, state: RunState) -> Result<Vec<Run>>;
    async fn steps(&self, run: &RunId) -> Result<Vec<StepRecord>>;
    /// Claims one running run of executor `mode` whose lease expired before `now` (or that has
    /// none), for `lease`; on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so replicas scanning at
    /// once claim different runs. `None` when there is nothing to take over.
    async fn claim_expired_run(
        &self,
        mode: &str,
        now: DateTime<Utc>,
        lease: &Lease,
    ) -> Result<Option<TakenOver>>;
    /// Extends the owner's lease; `false` if the run is no longer running under this owner.
    async fn renew_lease(&self, run: &RunId, lease: &Lease) -> Result<bool>;
    /// Marks a step running (with the timeline entries), only while `owner` still owns the
    /// running run (the fence against a process that lost its lease) and nobody asked to stop it;
    /// otherwise nothing is written and the answer says why.
    async fn start_step(
        &self,
        step: &StepRecord,
        owner: &str,
        drafts: Vec<Draft>,
    ) -> Result<StepStart>;
    /// Asks a running run to stop before its next step; `false` if it is not running or a stop
    /// was already asked for.
    async fn request_stop(&self, run: &RunId, by: &str, drafts: Vec<Draft>) -> Result<bool>;
    /// Saves a step's state, attempts, times and result, with the timeline entries that say so.
    async fn save_step(&self, step: &StepRecord, drafts: Vec<Draft>) -> Result<()>;
    /// Gives up `owner`'s lease on a running run (shutting down), with the timeline entries, so
    /// another process claims it at once; `false` if it was not this owner's.
    async fn release_run(&self, run: &RunId, owner: &str, drafts: Vec<Draft>) -> Result<bool>;
    /// Stops a running run of `owner` for a person to decide (`blocked`, no owner), with the
    /// timeline entries; `false` if it was not running under this owner.
    async fn block_run(&self, run: &RunId, owner: &str, drafts: Vec<Draft>) -> Result<bool>;
    /// Ends a run and its request together, in one transaction, if the run is still in `from`
    /// (and, for a running run, still owned by `owner`); `false` otherwise.
    async fn end_run(&self, end: RunEnd<'_>, drafts: Vec<Draft>) -> Result<bool>;
    /// A person's decision on a blocked run: it becomes running again under `lease` with `step`
    /// saved as given (done, or pending to run again), if it is still blocked; `false` if
    /// someone else decided first.
    async fn resume_run(
        &self,
        run: &RunId,
        step: &StepRecord,
        decided_by: &str,
        at: DateTime<Utc>,
        lease: &Lease,
        drafts: Vec<Draft>,
    ) -> Result<bool>;
    /// The approved retry of a blocked run's step: the retry request goes from pending to done and
    /// the run from blocked to running under `lease`, its step back to pending, in one
    /// transaction; `false` (and nothing changes) if either was already decided.
    async fn begin_retry(
        &self,
        request: &RequestId,
        at: DateTime<Utc>,
        by: &str,
        step: &StepRecord,
        lease: &Lease,
        drafts: Vec<Draft>,
    ) -> Result<bool>;
}

/// Receipts: every command acknowledged to a chat platform, stored durably before the
/// acknowledgement, then processed from there exactly once (a crash between the two loses
/// nothing; a receipt is marked processed in the same transaction as the effect of a note).
#[async_trait::async_trait]
pub trait ReceiptStore: Send + Sync {
    /// Stores new receipts, all in one transaction (one sync to disk for many commands). A
    /// receipt that carries a ready note has it appended in the same transaction and is stored
    /// processed (unless the note cannot be appended after all, say its incident was closed
    /// meanwhile: then it is stored unprocessed, for the processor to answer). A key stored
    /// before (a replay or a redelivery) is a duplicate, and nothing of it is applied.
    async fn record_receipts(&self, new: &[NewReceipt]) -> Result<Vec<ReceiptFate>>;
    /// Says nothing more is queued for `record_receipts` for now: a store that keeps its write
    /// connection between back-to-back batches gives it back, for the other writers.
    async fn receipts_paused(&self) {}
    /// Claims a new receipt for processing by `owner`; `false` if another process has it.
    async fn claim_receipt(&self, id: i64, owner: &str) -> Result<bool>;
    /// Marks a claimed receipt processed.
    async fn finish_receipt(&self, id: i64) -> Result<()>;
    /// Frees a receipt key for a new event under it (the receipt itself is kept, renamed): a
    /// reaction removed makes its next addition a new event.
    async fn release_receipt_key(&self, key: &str) -> Result<()>;
    /// Says `owner` is still processing the receipt (its claim is renewed); `false` if it no
    /// longer holds it.
    async fn renew_receipt(&self, id: i64, owner: &str) -> Result<bool>;
    /// Appends notes to an incident's timeline, each only if its receipt was still unprocessed,
    /// marking it processed in the same transaction; returns the receipts that were applied.
    async fn append_receipted(
        &self,
        incident: &IncidentId,
        notes: Vec<(i64, Draft)>,
    ) -> Result<Vec<i64>>;
    /// Receipts still new that were received before `before` (their process died, or fell
    /// behind), oldest first.
    async fn unprocessed_receipts(&self, before: DateTime<Utc>, limit: i64)
    -> Result<Vec<Receipt>>;
    /// Receipts claimed but never finished, claimed before `before` (their process died mid-way).
    async fn interrupted_receipts(&self, before: DateTime<Utc>) -> Result<Vec<Receipt>>;
    /// Marks a receipt as interrupted (its effect unknown; the person is told); `false` if
    /// another process did first (then it tells).
    /// Only a claim last renewed before `claimed_before` is abandoned (its process may have
    /// renewed it since it was found stale).
    async fn abandon_receipt(&self, id: i64, claimed_before: DateTime<Utc>) -> Result<bool>;
    /// Forgets processed receipts received before `before` (replays of them are refused by the
    /// platform's own time window long before).
    async fn prune_receipts(&self, before: DateTime<Utc>) -> Result<u64>;
}

/// A command as acknowledged, before it has an id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewReceipt {
    /// Unique per delivery: the request's signature, or the platform's event id.
    pub key: String,
    pub platform: String,
    pub received_at: DateTime<Utc>,
    /// What to process, as the adapter wrote it (JSON).
    pub payload: String,
    /// A note to append with the receipt, when the engine could prepare it at once.
    pub note: Option<ReadyNote>,
    /// The key an earlier version of the bot stored the same delivery under, when it differs:
    /// a receipt stored under it makes this one a duplicate too (a replay sent to an old and a
    /// new process during an upgrade is taken once).
    pub former_key: Option<String>,
}

/// A note prepared for its incident while the request waits (its author and incident known):
/// stored with its receipt, so the acknowledgement means it is on the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadyNote {
    pub incident: IncidentId,
    pub draft: Draft,
}

/// What became of one receipt given to `record_receipts`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiptFate {
    /// Its key was stored before: nothing was done.
    Duplicate,
    /// Stored, to be processed.
    Stored(i64),
    /// Stored with its note appended: processed.
    Applied(i64),
}

/// A stored receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub id: i64,
    pub platform: String,
    pub received_at: DateTime<Utc>,
    pub payload: String,
}

/// What `start_step` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepStart {
    Started,
    /// The run is no longer this owner's.
    Lost,
    /// Someone asked to stop the run; the step did not start.
    StopRequested {
        by: String,
    },
}

/// What `add_approval` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    Recorded,
    /// This person had already approved; one person counts once.
    Duplicate,
    /// The request was decided (approved, denied, cancelled, expired) meanwhile.
    NotPending,
}

/// How a run ends (`end_run`).
#[derive(Clone, Copy, Debug)]
pub struct RunEnd<'a> {
    pub run: &'a RunId,
    pub request: &'a RequestId,
    /// The state the run must be in: `Running` (then owned by `owner`) or `Blocked`.
    pub from: RunState,
    pub owner: Option<&'a str>,
    pub to: RunState,
    pub request_to: RequestState,
    pub at: DateTime<Utc>,
    /// Who decided it (an abort), if a person did.
    pub by: Option<&'a str>,
    pub reason: Option<&'a str>,
    /// A step to save in the same transaction (the interrupted step an abort fails).
    pub step: Option<&'a StepRecord>,
}
