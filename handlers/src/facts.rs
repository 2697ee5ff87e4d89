//! Structured facts on the timeline. Requests, approvals, runs and steps live in tables of their
//! own, which the postmortem reads and anyone with write access could edit; every change to them
//! is also recorded, as a fact, in the entry the same transaction appends to the hash-chained
//! (and, with a key, MACed) timeline. `check_tables` holds the tables to those facts.

use crate::approval::{Approval, ApprovalRequest};
use crate::run::{Run, StepRecord};
use crate::timeline::Entry;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fact", rename_all = "snake_case")]
pub enum Fact {
    /// A request was made, for exactly this plan.
    Requested {
        request: String,
        requester_id: String,
        command: String,
        playbook: String,
        digest: String,
    },
    /// A request's state changed (approved and executing, denied, expired, done, ...).
    RequestState { request: String, state: String },
    /// A person's approval was counted, bound to this digest.
    Approved {
        request: String,
        approver_id: String,
        digest: String,
        /// The roles the approver held (Discord), which may fill an approver group.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        roles: Vec<String>,
    },
    /// A run's state changed (running, blocked, done, failed, aborted).
    RunState {
        run: String,
        request: String,
        state: String,
    },
    /// A step's state changed, with its result.
    StepState {
        run: String,
        idx: i64,
        state: String,
        result: Option<String>,
    },
    /// The incident as declared: what its row must keep saying (`verify_row`). A flipped
    /// `drill` would drop a real outage from the SLA report.
    Declared {
        title: String,
        drill: bool,
        declared_by: String,
        channel: String,
    },
    /// The incident's channel from now on.
    Channel { channel: String },
    /// An alert as Alertmanager sent it: what the postmortem's "Detected" is read from.
    Alert {
        name: String,
        fingerprint: String,
        status: String,
        starts_at: chrono::DateTime<chrono::Utc>,
        ends_at: Option<chrono::DateTime<chrono::Utc>>,
        labels: BTreeMap<String, String>,
        generator_url: String,
    },
}

/// A request as recorded and as the table holds it: equal, allowing the requester's id to have
/// been qualified by the migration since.
fn same_request(recorded: &Fact, now: &Fact) -> bool {
    match (recorded, now) {
        (
            Fact::Requested {
                request: a,
                requester_id: ra,
                command: ca,
                playbook: pa,
                digest: da,
            },
            Fact::Requested {
                request: b,
                requester_id: rb,
                command: cb,
                playbook: pb,
                digest: db,
            },
        ) => {
            a == b && ca == cb && pa == pb && da == db && crate::ids::chat::same_or_migrated(ra, rb)
        }
        _ => recorded == now,
    }
}

impl Fact {
    pub fn requested(r: &ApprovalRequest) -> Self {
        Fact::Requested {
            request: r.id.to_string(),
            requester_id: r.requester_id.clone(),
            command: r.command.clone(),
            playbook: r.playbook.clone(),
            digest: r.plan_digest.clone(),
        }
    }

    pub fn request_state(id: &str, state: crate::approval::RequestState) -> Self {
        Fact::RequestState {
            request: id.to_string(),
            state: state.as_str().to_string(),
        }
    }

    pub fn run_state(run: &str, request: &str, state: crate::run::RunState) -> Self {
        Fact::RunState {
            run: run.to_string(),
            request: request.to_string(),
            state: state.as_str().to_string(),
        }
    }

    pub fn step(s: &StepRecord) -> Self {
        Fact::StepState {
            run: s.run.to_string(),
            idx: s.idx,
            state: s.state.as_str().to_string(),
            result: s.result.clone(),
        }
    }

    /// The fact with the store's new id in place of `store::ID_PLACEHOLDER`.
    pub fn with_id(self, id: &str) -> Self {
        let fill = |s: String| s.replacen(crate::store::ID_PLACEHOLDER, id, 1);
        match self {
            // Nothing in them is a new id: user text stays as typed.
            Fact::Declared { .. } | Fact::Channel { .. } | Fact::Alert { .. } => self,
            Fact::Requested {
                request,
                requester_id,
                command,
                playbook,
                digest,
            } => Fact::Requested {
                request: fill(request),
                requester_id,
                command,
                playbook,
                digest,
            },
            Fact::RequestState { request, state } => Fact::RequestState {
                request: fill(request),
                state,
            },
            Fact::Approved {
                request,
                approver_id,
                digest,
                roles,
            } => Fact::Approved {
                request: fill(request),
                approver_id,
                digest,
                roles,
            },
            Fact::RunState {
                run,
                request,
                state,
            } => Fact::RunState {
                run: fill(run),
                request,
                state,
            },
            Fact::StepState {
                run,
                idx,
                state,
                result,
            } => Fact::StepState {
                run: fill(run),
                idx,
                state,
                result,
            },
        }
    }
}

/// One request with its approvals and run, as the tables hold them.
pub struct Recorded<'a> {
    pub request: &'a ApprovalRequest,
    pub approvals: &'a [Approval],
    pub run: Option<(&'a Run, &'a [StepRecord])>,
}

/// Where the tables say something the chain does not.
pub fn check_tables(entries: &[Entry], recorded: &[Recorded<'_>]) -> Vec<String> {
    let facts: Vec<&Fact> = entries.iter().flat_map(|e| e.facts.iter()).collect();
    if facts.is_empty() && !recorded.is_empty() {
        // Written before facts were kept: nothing to hold the tables to.
        return Vec::new();
    }
    let mut requested = BTreeMap::new();
    let mut request_state = BTreeMap::new();
    let mut approvals = BTreeMap::new();
    let mut run_state = BTreeMap::new();
    let mut step_state = BTreeMap::new();
    for f in facts {
        match f {
            // The incident row's facts: `verify_row` holds the row to them. Alerts are
            // records of what Alertmanager said, held by the chain alone.
            Fact::Declared { .. } | Fact::Channel { .. } | Fact::Alert { .. } => {}
            Fact::Requested { request, .. } => {
                requested.insert(request.clone(), f);
            }
            Fact::RequestState { request, state } => {
                request_state.insert(request.clone(), state.clone());
            }
            Fact::Approved {
                request,
                approver_id,
                digest,
                roles,
            } => {
                approvals.insert(
                    (request.clone(), approver_id.clone()),
                    (digest.clone(), roles.clone()),
                );
            }
            Fact::RunState { run, state, .. } => {
                run_state.insert(run.clone(), state.clone());
            }
            Fact::StepState {
                run,
                idx,
                state,
                result,
            } => {
                step_state.insert((run.clone(), *idx), (state.clone(), result.clone()));
            }
        }
    }
    let mut out = Vec::new();
    for rec in recorded {
        let r = rec.request;
        let id = r.id.to_string();
        match requested.get(&id) {
            Some(f) if same_request(f, &Fact::requested(r)) => {}
            Some(_) => out.push(format!(
                "{id}: the requests table's requester, command, playbook or plan digest differ from what the timeline recorded when it was requested"
            )),
            None => out.push(format!(
                "{id} is in the requests table but its request is not on the timeline"
            )),
        }
        let chained = request_state
            .get(&id)
            .map(String::as_str)
            .unwrap_or("pending");
        if chained != r.state.as_str() {
            out.push(format!(
                "{id} is `{}` in the requests table but the timeline last recorded `{chained}`",
                r.state
            ));
        }
        for a in rec.approvals {
            let recorded = approvals
                .get(&(id.clone(), a.approver_id.clone()))
                .or_else(|| {
                    // Recorded before ids were qualified: under the bare id.
                    let (_, local) = crate::ids::chat::split(&a.approver_id)?;
                    approvals
                        .get(&(id.clone(), local.to_string()))
                        .filter(|_| crate::ids::chat::same_or_migrated(local, &a.approver_id))
                });
            match recorded {
                Some((d, roles)) if *d == a.digest && *roles == a.approver_roles => {}
                Some((d, _)) if *d == a.digest => out.push(format!(
                    "{id}: the approval by {} names other roles than the timeline recorded",
                    a.approver_id
                )),
                Some(_) => out.push(format!(
                    "{id}: the approval by {} names another plan digest than the timeline recorded",
                    a.approver_id
                )),
                None => out.push(format!(
                    "{id}: the approvals table has an approval by {} that is not on the timeline",
                    a.approver_id
                )),
            }
        }
        let counted = approvals.keys().filter(|(req, _)| *req == id).count();
        if counted != rec.approvals.len() {
            out.push(format!(
                "{id}: the timeline recorded {counted} approval(s), the approvals table holds {}",
                rec.approvals.len()
            ));
        }
        if let Some((run, steps)) = rec.run {
            let rid = run.id.to_string();
            match run_state.get(&rid) {
                Some(s) if s == run.state.as_str() => {}
                Some(s) => out.push(format!(
                    "{rid} is `{}` in the runs table but the timeline last recorded `{s}`",
                    run.state.as_str()
                )),
                None => out.push(format!(
                    "{rid} is in the runs table but its start is not on the timeline"
                )),
            }
            for s in steps {
                let chained = step_state.get(&(rid.clone(), s.idx));
                let table = (s.state.as_str().to_string(), s.result.clone());
                match chained {
                    Some(c) if *c == table => {}
                    None if s.state == crate::run::StepState::Pending => {}
                    Some((state, _)) => out.push(format!(
                        "{rid} step {}: the steps table says `{}` ({}) but the timeline last recorded `{state}`",
                        s.idx,
                        s.state.as_str(),
                        s.result.as_deref().unwrap_or("no result")
                    )),
                    None => out.push(format!(
                        "{rid} step {} is `{}` in the steps table but no change of it is on the timeline",
                        s.idx,
                        s.state.as_str()
                    )),
                }
            }
        }
    }
    out
}
