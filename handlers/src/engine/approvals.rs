//! Deciding approval requests: approvals, denials, cancellation and expiry follow the two-person
//! rules, whatever route they come by; the deciding approval starts the run exactly once.

use super::{Engine, Request};
use crate::approval::{Approval, ApprovalRequest, RequestState, Verdict, judge_approval};
use crate::facts::Fact;
use crate::ids::{IncidentId, RequestId, RunId};
use crate::reply::Reply;
use crate::run::{Run, RunState, StepRecord, StepState};
use crate::store::Recorded;
use crate::telemetry::{self, ApprovalRefusal};
use tracing::Instrument;

impl Engine {
    async fn expire_if_due(&self, r: &ApprovalRequest) -> crate::Result<bool> {
        if r.state != RequestState::Pending || self.clock.now() <= r.expires_at {
            return Ok(r.state == RequestState::Expired);
        }
        let draft = self.system_draft(
            "approval.expired",
            format!(
                "{} expired at {} UTC without enough approvals (plan digest {})",
                r.id,
                r.expires_at.format("%H:%M:%S"),
                r.short_digest()
            ),
        );
        let changed = self
            .settle(
                &r.id,
                RequestState::Expired,
                r.expires_at,
                None,
                Some("expired"),
                draft,
            )
            .await?;
        if changed {
            self.outbox
                .post(
                    &r.channel,
                    Reply::channel(format!(
                        "⌛ {} (`{}`) expired unapproved; ask again if it is still needed.",
                        r.id, r.command
                    ))
                    .about(&r.id),
                )
                .await;
        }
        Ok(true)
    }

    /// Sweeps pending requests whose time is up (called before each command).
    pub async fn expire_due(&self) {
        let Ok(pending) = self.store.requests_in_state(RequestState::Pending).await else {
            return;
        };
        for r in pending {
            if let Err(e) = self.expire_if_due(&r).await {
                tracing::warn!(request = %r.id, error = %e, "could not expire request");
            }
        }
    }

    pub(crate) async fn approve(
        &self,
        req: &Request,
        incident: Option<IncidentId>,
        explicit: Option<RequestId>,
    ) -> crate::Result<Vec<Reply>> {
        let named = explicit.is_some();
        let r = match self
            .target_request(req, incident, explicit, "approve")
            .await?
        {
            Ok(r) => r,
            Err(reply) => return Ok(vec![reply]),
        };
        if !named && let Some(reply) = self.unclear_approval(&r).await? {
            return Ok(vec![reply]);
        }
        if self.expire_if_due(&r).await? {
            let r = self.store.request(&r.id).await?.unwrap_or(r);
            telemetry::approval_refused(ApprovalRefusal::NotPending);
            return Ok(vec![Reply::error(self.not_pending(&r))]);
        }
        if r.state != RequestState::Pending {
            telemetry::approval_refused(ApprovalRefusal::NotPending);
            return Ok(vec![Reply::error(self.not_pending(&r))]);
        }
        if let Some(reply) = self.cancel_if_incident_over(&r).await? {
            telemetry::approval_refused(ApprovalRefusal::NotPending);
            return Ok(vec![reply]);
        }
        // A plan made for the live executor is approved where it will run live: elsewhere the
        // re-made plan would differ (and void it), or run on a pretend world.
        let mine = self.executor.mode().as_str();
        if let Some(m) = r.mode.as_deref().filter(|m| *m != mine) {
            telemetry::approval_refused(ApprovalRefusal::WrongExecutor);
            return Ok(vec![Reply::error(format!(
                "Not approved here: {} was planned for the {m} executor and this process runs {mine}. Approve it where it runs {m} (a `serve` replica, or a console started with `ERLMCP_EXECUTOR={m}` and the same configuration); nothing was recorded.",
                r.id
            ))]);
        }
        let existing = self.store.approvals(&r.id).await?;
        let complete = match judge_approval(&r, &existing, &req.actor, &self.settings.groups) {
            Verdict::Refused(why, reason) => {
                telemetry::approval_refused(reason);
                let draft = self.draft(
                    &req.actor,
                    req.source,
                    "approval.refused",
                    format!("Approval of {} refused: {why}", r.id),
                );
                self.store.append(&r.incident, vec![draft]).await?;
                return Ok(vec![Reply::error(format!("Not approved: {why}"))]);
            }
            Verdict::Counts { complete } => complete,
        };
        let approval = Approval {
            request: r.id.clone(),
            approver_id: req.actor.qualified_id(),
            approver_name: req.actor.name.clone(),
            approver_platform: Some(req.actor.platform),
            approver_roles: req.actor.roles.clone(),
            digest: r.plan_digest.clone(),
            at: self.clock.now(),
        };
        let draft = self.draft(
            &req.actor,
            req.source,
            "approval.granted",
            format!(
                "{} approved {} (plan digest {})",
                req.actor.name,
                r.id,
                r.short_digest()
            ),
        );
        let draft = draft.with([Fact::Approved {
            request: r.id.to_string(),
            approver_id: req.actor.qualified_id(),
            digest: r.plan_digest.clone(),
            roles: req.actor.roles.clone(),
        }]);
        match self.store.add_approval(&approval, vec![draft]).await? {
            Recorded::Recorded => telemetry::approval_granted(),
            Recorded::Duplicate => {
                telemetry::approval_refused(ApprovalRefusal::AlreadyApproved);
                return Ok(vec![Reply::error(format!(
                    "You have already approved {}; one person counts once.",
                    r.id
                ))]);
            }
            // Decided meanwhile (on this replica or another): say how it ended.
            Recorded::NotPending => {
                telemetry::approval_refused(ApprovalRefusal::NotPending);
                let now = self.store.request(&r.id).await?.unwrap_or(r);
                return Ok(vec![Reply::error(self.not_pending(&now))]);
            }
        }
        // Approvals given at the same moment (on two replicas) each see only those before them;
        // counting again after ours is recorded lets the last of them start the run.
        let complete = complete || {
            let now = self.store.approvals(&r.id).await?;
            crate::approval::quorum_met(&r, &now, &self.settings.groups)
        };
        if !complete {
            let have = self.store.approvals(&r.id).await?.len();
            return Ok(vec![
                Reply::channel(format!(
                    "👍 {} approved {} ({have} of {}); waiting for more: {}.",
                    req.actor.name,
                    r.id,
                    r.policy.approvals,
                    r.policy.describe()
                ))
                .about(&r.id),
            ]);
        }
        self.execute_approved(req, r).await
    }

    /// The quorum is reached: check the plan still renders the same, then start it exactly once.
    async fn execute_approved(
        &self,
        req: &Request,
        r: ApprovalRequest,
    ) -> crate::Result<Vec<Reply>> {
        if let Some((run, idx)) = r.retry_of.clone() {
            return self.execute_retry(req, r, run, idx).await;
        }
        let inc = self
            .store
            .incident(&r.incident)
            .await?
            .ok_or_else(|| crate::Error::NotFound(r.incident.to_string()))?;
        let params: Vec<(String, String)> = r.params.clone().into_iter().collect();
        let fresh = self.plan_for(&inc, &r.playbook, &params).await;
        let plan = match fresh {
            Ok(p) if p.digest == r.plan_digest => p,
            other => {
                let why = match &other {
                    Ok(p) => format!(
                        "the plan now reads differently (digest {} instead of {})\nNow it would be:\n{}",
                        &p.digest[..12],
                        r.short_digest(),
                        p.text
                    ),
                    Err(m) => format!("the plan can no longer be made: {m}"),
                };
                let draft = self.system_draft(
                    "approval.void",
                    format!(
                        "{} void at approval: {}",
                        r.id,
                        why.lines().next().unwrap_or("")
                    ),
                );
                let voided = self
                    .settle(
                        &r.id,
                        RequestState::Void,
                        self.clock.now(),
                        Some(&req.actor.name),
                        Some("plan changed"),
                        draft,
                    )
                    .await?;
                // Another approval (on another replica) started the run first, and the plan
                // reads differently because that run already changed the world: say what
                // became of the request, not that it is void.
                if !voided && let Some(now) = self.store.request(&r.id).await? {
                    return Ok(vec![Reply::private(self.not_pending(&now)).about(&r.id)]);
                }
                return Ok(vec![Reply::error(format!(
                    "{} is void and will not run: {why}\nNobody approved that. Request it again: `{}`.",
                    r.id, r.command
                )).about(&r.id)]);
            }
        };
        let now = self.clock.now();
        let run = Run {
            id: RunId::new(""),
            request: r.id.clone(),
            incident: r.incident.clone(),
            playbook: r.playbook.clone(),
            channel: r.channel.clone(),
            state: RunState::Running,
            started_at: now,
            finished_at: None,
            owner: Some(self.settings.owner.clone()),
            lease_until: Some(self.lease().until),
            mode: Some(self.executor.mode().as_str().to_string()),
            decided_by: None,
            decided_at: None,
            stop_requested_by: None,
        };
        let steps: Vec<StepRecord> = plan
            .steps
            .iter()
            .map(|s| StepRecord {
                run: RunId::new(""),
                idx: s.idx,
                name: s.name.clone(),
                action: s.action.clone(),
                description: s.line.clone(),
                changes_state: s.changes_state,
                idempotent: s.idempotent,
                timeout_seconds: s.timeout_seconds,
                retries: s.retries as i64,
                state: StepState::Pending,
                attempts: 0,
                started_at: None,
                finished_at: None,
                result: None,
            })
            .collect();
        let approvals = self.store.approvals(&r.id).await?;
        // The timeline names each approver with their platform id; the channel by name.
        let approvers: Vec<String> = approvals
            .iter()
            .map(|a| format!("{} ({})", a.approver_name, a.approver_id))
            .collect();
        let names: Vec<&str> = approvals.iter().map(|a| a.approver_name.as_str()).collect();
        let drafts = vec![
            self.draft(
                &req.actor,
                req.source,
                "approval.approved",
                format!(
                    "{} approved by {} (plan digest {})",
                    r.id,
                    approvers.join(", "),
                    r.short_digest()
                ),
            )
            .with([Fact::request_state(r.id.as_str(), RequestState::Executing)]),
            self.system_draft(
                "run.started",
                format!(
                    "{}: executing {} for {} ({} steps, executor {}) on {}",
                    crate::store::ID_PLACEHOLDER,
                    r.playbook,
                    r.id,
                    steps.len(),
                    self.executor.mode().as_str(),
                    crate::run::owner_label(&self.settings.owner)
                ),
            )
            .with([Fact::run_state(
                crate::store::ID_PLACEHOLDER,
                r.id.as_str(),
                RunState::Running,
            )]),
        ];
        let Some(run) = self
            .store
            .begin_execution(&r.id, now, &req.actor.name, run, steps, drafts)
            .await?
        else {
            return Ok(vec![Reply::private(format!(
                "{} was approved at the same moment by someone else; it runs once, and is running.",
                r.id
            ))]);
        };
        telemetry::run_started(&run.playbook);
        tracing::info!(run = %run.id, request = %r.id, incident = %r.incident, playbook = %run.playbook, "run started");
        // The run is ours from here: keep its lease before saying anything anywhere.
        let keeper = super::execute::LeaseKeeper::start(self, &run.id);
        self.outbox
            .post(
                &r.channel,
                Reply::channel(format!(
                    "✅ {} approved by {}; running {} as {} ({} mode).",
                    r.id,
                    names.join(", "),
                    r.playbook,
                    run.id,
                    self.executor.mode().as_str()
                ))
                .about(&r.id),
            )
            .await;
        let summary = self.execute_kept(&run.id, keeper).await?;
        Ok(vec![summary])
    }

    pub(crate) async fn deny(
        &self,
        req: &Request,
        incident: Option<IncidentId>,
        explicit: Option<RequestId>,
        reason: Option<String>,
    ) -> crate::Result<Vec<Reply>> {
        let r = match self.target_request(req, incident, explicit, "deny").await? {
            Ok(r) => r,
            Err(reply) => return Ok(vec![reply]),
        };
        if self.expire_if_due(&r).await? || r.state != RequestState::Pending {
            let r = self.store.request(&r.id).await?.unwrap_or(r);
            return Ok(vec![Reply::error(self.not_pending(&r))]);
        }
        if req.actor.is_bot {
            return Ok(vec![Reply::error(
                "Bots cannot deny requests; a person must.",
            )]);
        }
        if req.actor.qualified_id() == r.requester_id || req.actor.name == r.requester_name {
            return Ok(vec![Reply::error(format!(
                "You requested {}; to withdraw it, `/erlmcp cancel {}`.",
                r.id, r.id
            ))]);
        }
        let reason_text = reason.clone().unwrap_or_else(|| "no reason given".into());
        let draft = self.draft(
            &req.actor,
            req.source,
            "approval.denied",
            format!(
                "{} denied {}: {reason_text} (plan digest {})",
                req.actor.name,
                r.id,
                r.short_digest()
            ),
        );
        let changed = self
            .settle(
                &r.id,
                RequestState::Denied,
                self.clock.now(),
                Some(&req.actor.name),
                Some(&reason_text),
                draft,
            )
            .await?;
        if !changed {
            let r = self.store.request(&r.id).await?.unwrap_or(r);
            return Ok(vec![Reply::error(self.not_pending(&r))]);
        }
        Ok(vec![
            Reply::channel(format!(
                "⛔ {} denied {} (`{}`): {reason_text}. Nothing was changed.",
                req.actor.name, r.id, r.command
            ))
            .about(&r.id),
        ])
    }

    pub(crate) async fn cancel(
        &self,
        req: &Request,
        incident: Option<IncidentId>,
        explicit: Option<RequestId>,
    ) -> crate::Result<Vec<Reply>> {
        let r = match self
            .target_request(req, incident, explicit, "cancel")
            .await?
        {
            Ok(r) => r,
            Err(reply) => return Ok(vec![reply]),
        };
        if r.state != RequestState::Pending {
            return Ok(vec![Reply::error(self.not_pending(&r))]);
        }
        if req.actor.qualified_id() != r.requester_id {
            return Ok(vec![Reply::error(format!(
                "Only {} can cancel {}; to refuse it, `/erlmcp deny {} <reason>`.",
                r.requester_name, r.id, r.id
            ))]);
        }
        let draft = self.draft(
            &req.actor,
            req.source,
            "approval.cancelled",
            format!("{} cancelled {}", req.actor.name, r.id),
        );
        let changed = self
            .settle(
                &r.id,
                RequestState::Cancelled,
                self.clock.now(),
                Some(&req.actor.name),
                Some("cancelled by requester"),
                draft,
            )
            .await?;
        if !changed {
            let r = self.store.request(&r.id).await?.unwrap_or(r);
            return Ok(vec![Reply::error(self.not_pending(&r))]);
        }
        Ok(vec![
            Reply::channel(format!("{} cancelled by {}.", r.id, req.actor.name)).about(&r.id),
        ])
    }
}

/// A typed `approve` without an id approves the only pending request only if nothing else about
/// the incident's requests changed this recently: the approver may have read another one.
const UNNAMED_APPROVAL_QUIET_SECONDS: i64 = 60;

impl Engine {
    /// An approval must bind to what the approver saw. Buttons and reactions name their request;
    /// a typed `approve` without an id is taken only when the incident has exactly that one
    /// request pending and no other of its requests ended (cancelled, denied, void, expired,
    /// started) in the last minute. Otherwise: the pending requests, and a request to name one.
    async fn unclear_approval(&self, r: &ApprovalRequest) -> crate::Result<Option<Reply>> {
        let all = self.store.requests_for_incident(&r.incident).await?;
        let now = self.clock.now();
        let recent: Vec<&ApprovalRequest> = all
            .iter()
            .filter(|o| {
                o.id != r.id
                    && o.decided_at.is_some_and(|t| {
                        now - t < chrono::Duration::seconds(UNNAMED_APPROVAL_QUIET_SECONDS)
                    })
            })
            .collect();
        if recent.is_empty() {
            return Ok(None);
        }
        let changed: Vec<String> = recent
            .iter()
            .map(|o| format!("{} (`{}`) became {}", o.id, o.command, o.state))
            .collect();
        let pending: Vec<String> = all
            .iter()
            .filter(|o| o.state == RequestState::Pending)
            .map(|o| super::requests::render_request(o, false))
            .collect();
        Ok(Some(Reply::error(format!(
            "Not approved: name the request you read. In the last minute {}, so `approve` alone could approve something other than what you looked at.\nPending now:\n{}\nApprove exactly this plan with `/erlmcp approve {}`.",
            changed.join("; "),
            pending.join("\n\n"),
            r.id
        ))))
    }

    /// A request of an incident that was resolved or closed meanwhile is cancelled, not approved.
    async fn cancel_if_incident_over(&self, r: &ApprovalRequest) -> crate::Result<Option<Reply>> {
        let Some(inc) = self.store.incident(&r.incident).await? else {
            return Ok(None);
        };
        if inc.status < crate::incident::IncidentStatus::Resolved {
            return Ok(None);
        }
        self.cancel_pending_of(&inc, "system").await?;
        Ok(Some(Reply::error(format!(
            "Not approved: {} is {}, so its pending requests were cancelled; nothing runs for a resolved incident. Declare a new incident if a change is still needed.",
            inc.id, inc.status
        ))))
    }

    /// Cancels every pending request of an incident that is resolved or closed; returns their ids.
    pub(crate) async fn cancel_pending_of(
        &self,
        inc: &crate::incident::Incident,
        by: &str,
    ) -> crate::Result<Vec<RequestId>> {
        let mut cancelled = Vec::new();
        for r in self.store.requests_for_incident(&inc.id).await? {
            if r.state != RequestState::Pending {
                continue;
            }
            let draft = self.system_draft(
                "approval.cancelled",
                format!(
                    "{} cancelled: {} is {} (plan digest {})",
                    r.id,
                    inc.id,
                    inc.status,
                    r.short_digest()
                ),
            );
            if self
                .settle(
                    &r.id,
                    RequestState::Cancelled,
                    self.clock.now(),
                    Some(by),
                    Some(&format!("incident {}", inc.status)),
                    draft,
                )
                .await?
            {
                cancelled.push(r.id.clone());
            }
        }
        Ok(cancelled)
    }

    /// Ends a pending request (expired, void, denied, cancelled) with its timeline entry; `false`
    /// if it was no longer pending (someone else decided it first).
    pub(crate) async fn settle(
        &self,
        id: &RequestId,
        to: RequestState,
        at: chrono::DateTime<chrono::Utc>,
        by: Option<&str>,
        reason: Option<&str>,
        draft: crate::timeline::Draft,
    ) -> crate::Result<bool> {
        let change = crate::store::StateChange {
            from: &[RequestState::Pending],
            to,
            at,
            by,
            reason,
        };
        let draft = draft.with([Fact::request_state(id.as_str(), to)]);
        let settled = self
            .store
            .transition_request(id, change, vec![draft])
            .await?;
        if settled {
            telemetry::request_finished(to.as_str());
            tracing::info!(request = %id, state = to.as_str(), "request settled");
        }
        Ok(settled)
    }

    /// Approval or denial by a route other than typed text (a reaction, a button). It goes through
    /// exactly the same rules as `/erlmcp approve` and `/erlmcp deny`.
    pub async fn decide(
        &self,
        req: &Request,
        request: RequestId,
        approve: bool,
        reason: Option<String>,
    ) -> Vec<Reply> {
        let mut req = req.clone();
        req.actor.is_bot = self.is_bot(&req.actor);
        self.expire_due().await;
        let kind = if approve { "approve" } else { "deny" };
        let span = tracing::info_span!(
            "command",
            command = kind,
            actor = %req.actor.id,
            channel = %req.channel,
            request = %request,
            incident = tracing::field::Empty,
        );
        let result = if approve {
            self.approve(&req, None, Some(request))
                .instrument(span.clone())
                .await
        } else {
            self.deny(&req, None, Some(request), reason)
                .instrument(span.clone())
                .await
        };
        let _entered = span.enter();
        match result {
            Ok(replies) => {
                let outcome = super::outcome_of(&replies);
                crate::telemetry::command(kind, outcome);
                tracing::info!(outcome = outcome.as_str(), "decision handled");
                replies
            }
            Err(e) => {
                crate::telemetry::command(kind, crate::telemetry::CommandOutcome::Failed);
                tracing::warn!(error = %e, "decision failed");
                vec![Reply::error(format!(
                    "{} failed: {e}",
                    if approve { "approval" } else { "denial" }
                ))]
            }
        }
    }
}
