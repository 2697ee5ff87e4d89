//! What the core counts, named once. The core records through the `metrics` facade (a no-op until
//! a process installs a recorder; the binary installs a Prometheus one and serves `/metrics`), so
//! the core knows no exposition format, and tests of the core need no recorder.
//!
//! Label values are always from closed sets (command kinds, states, reasons, action kinds,
//! playbook names from the loaded set): never user text, so a series count cannot explode.

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, histogram};

pub const COMMANDS: &str = "erlmcp_commands_total";
pub const APPROVALS_GRANTED: &str = "erlmcp_approvals_granted_total";
pub const APPROVALS_REFUSED: &str = "erlmcp_approvals_refused_total";
pub const REQUESTS_CREATED: &str = "erlmcp_requests_created_total";
pub const REQUESTS_FINISHED: &str = "erlmcp_requests_finished_total";
pub const RUNS_STARTED: &str = "erlmcp_runs_started_total";
pub const RUNS_FINISHED: &str = "erlmcp_runs_finished_total";
pub const RUN_DURATION: &str = "erlmcp_run_duration_seconds";
pub const STEPS: &str = "erlmcp_steps_total";
pub const STEP_DURATION: &str = "erlmcp_step_duration_seconds";
pub const NOTICES_SENT: &str = "erlmcp_clock_notices_sent_total";
pub const ALERTS: &str = "erlmcp_alerts_received_total";
/// Set by the binary at each scrape from the database (the truth every replica shares).
pub const PENDING_REQUESTS: &str = "erlmcp_pending_requests";
pub const OPEN_INCIDENTS: &str = "erlmcp_open_incidents";

/// How a command ended, as the person who typed it saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandOutcome {
    /// Did what was asked (or answered the question).
    Ok,
    /// Understood, and refused by a rule (not yours to approve, incident closed, ...).
    Refused,
    /// Not a command: the person got "Try: ...".
    Malformed,
    /// The bot could not do it (database or executor error).
    Failed,
}

impl CommandOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Refused => "refused",
            Self::Malformed => "malformed",
            Self::Failed => "failed",
        }
    }
}

/// Why an approval did not count. Closed, so it can label a series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApprovalRefusal {
    /// A bot or app tried to approve.
    Bot,
    /// The platform could not confirm the approver is a person.
    Unverified,
    /// The requester tried to approve their own request.
    OwnRequest,
    /// The same person approved twice.
    AlreadyApproved,
    /// The approver is not in a group the policy requires.
    NotInGroup,
    /// The request was already decided, expired or void.
    NotPending,
    /// Approved on a process running another executor mode than the plan was made for.
    WrongExecutor,
}

impl ApprovalRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bot => "bot",
            Self::Unverified => "unverified",
            Self::OwnRequest => "own_request",
            Self::AlreadyApproved => "already_approved",
            Self::NotInGroup => "not_in_group",
            Self::NotPending => "not_pending",
            Self::WrongExecutor => "wrong_executor",
        }
    }
}

/// Help text for every series the core records and the binary sets, so a scrape always carries
/// `# HELP` and `# TYPE` (promtool insists) even before the first event.
pub fn describe() {
    describe_counter!(
        COMMANDS,
        "Commands handled, by command and outcome (ok, refused, malformed, failed)."
    );
    describe_counter!(
        APPROVALS_GRANTED,
        "Approvals that counted toward a request's quorum."
    );
    describe_counter!(
        APPROVALS_REFUSED,
        "Approvals that did not count, by reason."
    );
    describe_counter!(
        REQUESTS_CREATED,
        "Change requests created (a plan awaiting approval), by playbook."
    );
    describe_counter!(
        REQUESTS_FINISHED,
        "Change requests that reached a final state (done, failed, denied, expired, cancelled, void)."
    );
    describe_counter!(
        RUNS_STARTED,
        "Playbook runs started after approval, by playbook."
    );
    describe_counter!(
        RUNS_FINISHED,
        "Playbook runs ended, by playbook and outcome (done, failed, aborted)."
    );
    describe_histogram!(
        RUN_DURATION,
        Unit::Seconds,
        "Playbook run time from approval to its end, by playbook and outcome."
    );
    describe_counter!(
        STEPS,
        "Step attempts, by action kind and outcome (done, failed, timeout, retry)."
    );
    describe_histogram!(
        STEP_DURATION,
        Unit::Seconds,
        "Time of one step attempt in the executor, by action kind and outcome."
    );
    describe_counter!(
        NOTICES_SENT,
        "Severity clock notices (reminders, missed targets) sent, by clock and stage."
    );
    describe_counter!(
        ALERTS,
        "Alerts received from Alertmanager, by what became of them (recorded, repeat, ignored)."
    );
    describe_gauge!(
        PENDING_REQUESTS,
        "Change requests waiting for approval now (from the database)."
    );
    describe_gauge!(
        OPEN_INCIDENTS,
        "Incidents not yet resolved or closed now, by severity (from the database)."
    );
}

pub fn command(kind: &'static str, outcome: CommandOutcome) {
    counter!(COMMANDS, "command" => kind, "outcome" => outcome.as_str()).increment(1);
}

pub fn approval_granted() {
    counter!(APPROVALS_GRANTED).increment(1);
}

pub fn approval_refused(reason: ApprovalRefusal) {
    counter!(APPROVALS_REFUSED, "reason" => reason.as_str()).increment(1);
    tracing::info!(reason = reason.as_str(), "approval not counted");
}

pub fn request_created(playbook: &str) {
    counter!(REQUESTS_CREATED, "playbook" => playbook.to_string()).increment(1);
}

pub fn request_finished(state: &'static str) {
    counter!(REQUESTS_FINISHED, "state" => state).increment(1);
}

pub fn run_started(playbook: &str) {
    counter!(RUNS_STARTED, "playbook" => playbook.to_string()).increment(1);
}

pub fn run_finished(playbook: &str, outcome: &'static str, seconds: f64) {
    let playbook = playbook.to_string();
    counter!(RUNS_FINISHED, "playbook" => playbook.clone(), "outcome" => outcome).increment(1);
    histogram!(RUN_DURATION, "playbook" => playbook, "outcome" => outcome).record(seconds.max(0.0));
}

pub fn step(action: &'static str, outcome: &'static str, seconds: f64) {
    counter!(STEPS, "action" => action, "outcome" => outcome).increment(1);
    histogram!(STEP_DURATION, "action" => action, "outcome" => outcome).record(seconds.max(0.0));
}

pub fn notice_sent(clock: &str, stage: &str) {
    counter!(NOTICES_SENT, "clock" => clock.to_string(), "stage" => stage.to_string()).increment(1);
}

pub fn alerts(recorded: usize, repeats: usize, ignored: usize) {
    counter!(ALERTS, "fate" => "recorded").increment(recorded as u64);
    counter!(ALERTS, "fate" => "repeat").increment(repeats as u64);
    counter!(ALERTS, "fate" => "ignored").increment(ignored as u64);
}
