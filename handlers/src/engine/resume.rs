//! `/erlmcp resume [RUN] done|retry|abort`: a person decides how a stopped run goes on. Each
//! decision is a compare-and-set on the run's state, so of two people deciding at once one wins
//! and the other is told. Running a step again that is not safe to run twice is itself a change:
//! it becomes an approval request that a second person approves, like the original request.

use super::{Engine, Request};
use crate::approval::{ApprovalRequest, RequestState};
use crate::command::ResumeDecision;
use crate::facts::Fact;
use crate::ids::{IncidentId, RequestId, RunId};
use crate::reply::Reply;
use crate::run::{Run, RunState, StepRecord, StepState};
use crate::store::RunEnd;
use sha2::{Digest, Sha256};

impl Engine {
    pub(crate) async fn resume_command(
        &self,
        req: &Request,
        incident: Option<IncidentId>,
        run: Option<String>,
        decision: ResumeDecision,
    ) -> crate::Result<Vec<Reply>> {
        if req.actor.is_bot {
            return Ok(vec![Reply::error(
                "Bots cannot decide how a run goes on; a person must.",
            )]);
        }
        let run = match self.target_run(req, incident, run).await? {
            Ok(r) => r,
            Err(reply) => return Ok(vec![reply]),
        };
        if run.state != RunState::Blocked {
            return Ok(vec![Reply::error(self.not_waiting(&run))]);
        }
        if let Some(refusal) = self.other_mode(&run) {
            return Ok(vec![refusal]);
        }
        let steps = self.store.steps(&run.id).await?;
        let Some(mut step) = steps.into_iter().find(|s| s.state == StepState::Running) else {
            return Ok(vec![Reply::error(format!(
                "{} has no interrupted step.",
                run.id
            ))]);
        };
        let now = self.clock.now();
        let who = req.actor.name.clone();
        match decision {
            ResumeDecision::Abort => {
                step.state = StepState::Failed;
                step.finished_at = Some(now);
                step.result = Some(format!("interrupted; run aborted by {who}"));
                let draft = self
                    .draft(
                        &req.actor,
                        req.source,
                        "run.aborted",
                        format!(
                            "{} aborted by {who} ({}) at step {} ({})",
                            run.id, req.actor.id, step.idx, step.name
                        ),
                    )
                    .with([
                        Fact::run_state(run.id.as_str(), run.request.as_str(), RunState::Aborted),
                        Fact::request_state(run.request.as_str(), RequestState::Failed),
                        Fact::step(&step),
                    ]);
                let end = RunEnd {
                    run: &run.id,
                    request: &run.request,
                    from: RunState::Blocked,
                    owner: None,
                    to: RunState::Aborted,
                    request_to: RequestState::Failed,
                    at: now,
                    by: Some(&who),
                    reason: Some("aborted"),
                    step: Some(&step),
                };
                if !self.store.end_run(end, vec![draft]).await? {
                    return self.decided_first(&run.id).await;
                }
                self.count_run_end(&run, RunState::Aborted, RequestState::Failed);
                Ok(vec![
                    Reply::channel(format!(
                        "{} aborted by {who}. Steps after {} were not run.",
                        run.id, step.idx
                    ))
                    .about(&run.request),
                ])
            }
            ResumeDecision::Retry if !step.idempotent => self.request_retry(req, &run, &step).await,
            ResumeDecision::Done | ResumeDecision::Retry => {
                let (kind, text) = if decision == ResumeDecision::Done {
                    step.state = StepState::Done;
                    step.finished_at = Some(now);
                    step.result = Some(format!("interrupted; {who} confirmed it completed"));
                    (
                        "step.confirmed",
                        format!(
                            "{who} ({}) confirmed that {} step {} ({}) completed",
                            req.actor.id, run.id, step.idx, step.name
                        ),
                    )
                } else {
                    step.state = StepState::Pending;
                    (
                        "step.retry",
                        format!(
                            "{who} ({}) asked to run {} step {} ({}) again; it is safe to run twice",
                            req.actor.id, run.id, step.idx, step.name
                        ),
                    )
                };
                let draft = self.draft(&req.actor, req.source, kind, text).with([
                    Fact::run_state(run.id.as_str(), run.request.as_str(), RunState::Running),
                    Fact::step(&step),
                ]);
                if !self
                    .store
                    .resume_run(&run.id, &step, &who, now, &self.lease(), vec![draft])
                    .await?
                {
                    return self.decided_first(&run.id).await;
                }
                Ok(vec![self.execute_run(&run.id).await?])
            }
        }
    }

    /// `/erlmcp stop`: the run stops before its next step; the step in progress is not cut off
    /// mid-way (that would leave it half done). Any person may ask, as anyone may deny.
    pub(crate) async fn stop_command(
        &self,
        req: &Request,
        incident: Option<IncidentId>,
        run: Option<String>,
        reason: Option<String>,
    ) -> crate::Result<Vec<Reply>> {
        if req.actor.is_bot {
            return Ok(vec![Reply::error("Bots cannot stop runs; a person must.")]);
        }
        if let Some(why) = &req.actor.unverified {
            return Ok(vec![Reply::error(format!(
                "Not stopped: the bot could not check that you are a person ({why}). Try again in a moment."
            ))]);
        }
        let run = match run {
            Some(id) => match self.store.run(&RunId::new(id.clone())).await? {
                Some(r) => r,
                None => return Ok(vec![Reply::error(format!("There is no run {id}."))]),
            },
            None => {
                let inc = match self.target_incident(req, incident, false).await? {
                    Ok(i) => i,
                    Err(reply) => return Ok(vec![reply]),
                };
                let running: Vec<Run> = self
                    .store
                    .runs_in_state(RunState::Running)
                    .await?
                    .into_iter()
                    .filter(|r| r.incident == inc.id)
                    .collect();
                match running.as_slice() {
                    [one] => one.clone(),
                    [] => {
                        return Ok(vec![Reply::error(format!(
                            "No run of {} is running. (A run waiting for a decision is ended with `/erlmcp resume abort`.)",
                            inc.id
                        ))]);
                    }
                    several => {
                        let ids: Vec<String> = several.iter().map(|r| r.id.to_string()).collect();
                        return Ok(vec![Reply::error(format!(
                            "Several runs are running: {}. Name one: `/erlmcp stop {}`.",
                            ids.join(", "),
                            ids[0]
                        ))]);
                    }
                }
            }
        };
        if run.state != RunState::Running {
            return Ok(vec![Reply::error(format!(
                "{} is {}; only a running run can be stopped{}.",
                run.id,
                run.state.as_str(),
                if run.state == RunState::Blocked {
                    " (this one waits for `/erlmcp resume done|retry|abort`)"
                } else {
                    ""
                }
            ))]);
        }
        let why = reason.unwrap_or_else(|| "no reason given".into());
        let draft = self.draft(
            &req.actor,
            req.source,
            "run.stop_requested",
            format!(
                "{} ({}) asked {} to stop before its next step: {why}",
                req.actor.name, req.actor.id, run.id
            ),
        );
        if !self
            .store
            .request_stop(&run.id, &req.actor.name, vec![draft])
            .await?
        {
            let now = self.store.run(&run.id).await?.unwrap_or(run);
            return Ok(vec![Reply::error(match &now.stop_requested_by {
                Some(by) => format!("{} is already stopping, as {by} asked.", now.id),
                None => self.not_waiting(&now),
            })]);
        }
        Ok(vec![Reply::channel(format!(
            "⏹ {} will stop before its next step, as {} asked ({why}); the step in progress finishes first.",
            run.id, req.actor.name
        ))
        .about(&run.request)])
    }

    /// The run a decision is about: the one named, or the only stopped one of the incident.
    async fn target_run(
        &self,
        req: &Request,
        incident: Option<IncidentId>,
        run: Option<String>,
    ) -> crate::Result<Result<Run, Reply>> {
        if let Some(id) = run {
            return Ok(match self.store.run(&RunId::new(id.clone())).await? {
                Some(r) => Ok(r),
                None => Err(Reply::error(format!(
                    "There is no run {id}. Run ids look like RUN-20261128-1; `/erlmcp status` lists an incident's runs."
                ))),
            });
        }
        let inc = match self.target_incident(req, incident, false).await? {
            Ok(i) => i,
            Err(reply) => return Ok(Err(reply)),
        };
        let blocked: Vec<Run> = self
            .store
            .runs_in_state(RunState::Blocked)
            .await?
            .into_iter()
            .filter(|r| r.incident == inc.id)
            .collect();
        let running: Vec<Run> = if blocked.is_empty() {
            self.store
                .runs_in_state(RunState::Running)
                .await?
                .into_iter()
                .filter(|r| r.incident == inc.id)
                .collect()
        } else {
            Vec::new()
        };
        Ok(match blocked.as_slice() {
            [one] => Ok(one.clone()),
            [] if !running.is_empty() => Err(Reply::error(
                running
                    .iter()
                    .map(|r| self.not_waiting(r))
                    .collect::<Vec<_>>()
                    .join("\n"),
            )),
            [] => Err(Reply::error(format!(
                "No run of {} is waiting for a decision.",
                inc.id
            ))),
            several => {
                let ids: Vec<String> = several.iter().map(|r| r.id.to_string()).collect();
                Err(Reply::error(format!(
                    "Several runs wait for a decision: {}. Name one: `/erlmcp resume {} retry`.",
                    ids.join(", "),
                    ids[0]
                )))
            }
        })
    }

    /// A run approved for another executor mode is continued only by a process of that mode: a
    /// simulated console must never "complete" a live failover on its pretend world.
    fn other_mode(&self, run: &Run) -> Option<Reply> {
        let mine = self.executor.mode().as_str();
        match run.mode.as_deref() {
            Some(m) if m != mine => Some(Reply::error(format!(
                "{} runs on the {m} executor and this process runs {mine}; decide from a process running {m} (`ERLMCP_EXECUTOR={m}`), so the steps after it run for real where they should.",
                run.id
            ))),
            _ => None,
        }
    }

    /// Why a run is not waiting for a decision, naming who holds or decided it.
    fn not_waiting(&self, run: &Run) -> String {
        let decided = match (&run.decided_by, run.decided_at) {
            (Some(by), Some(at)) => format!(" ({by} decided at {} UTC)", at.format("%H:%M:%S")),
            _ => String::new(),
        };
        match run.state {
            RunState::Running => format!(
                "{} is running on {}{decided}; it is not waiting for a decision.",
                run.id,
                run.owner_label()
            ),
            other => format!(
                "{} is {}{decided}; it is not waiting for a decision.",
                run.id,
                other.as_str()
            ),
        }
    }

    /// The answer to the loser of two concurrent decisions.
    async fn decided_first(&self, run: &RunId) -> crate::Result<Vec<Reply>> {
        let now = self
            .store
            .run(run)
            .await?
            .ok_or_else(|| crate::Error::NotFound(run.to_string()))?;
        Ok(vec![Reply::error(format!(
            "Someone decided first: {}",
            self.not_waiting(&now)
        ))])
    }

    /// `resume retry` of a step that is not safe to run twice: an approval request.
    async fn request_retry(
        &self,
        req: &Request,
        run: &Run,
        step: &StepRecord,
    ) -> crate::Result<Vec<Reply>> {
        let existing = self.store.requests_for_incident(&run.incident).await?;
        if let Some(pending) = existing.iter().find(|r| {
            r.state == RequestState::Pending
                && r.retry_of.as_ref().is_some_and(|(id, _)| id == &run.id)
        }) {
            return Ok(vec![Reply::error(format!(
                "{} already asks to run {} step {} again; a second person approves it with `/erlmcp approve {}`.",
                pending.id, run.id, step.idx, pending.id
            ))]);
        }
        let Some(original) = self.store.request(&run.request).await? else {
            return Err(crate::Error::NotFound(run.request.to_string()));
        };
        let steps = self.store.steps(&run.id).await?;
        let plan_text = retry_plan(run, &steps, step);
        let now = self.clock.now();
        let expiry = self
            .settings
            .approval_expiry_seconds
            .unwrap_or(original.policy.expiry_seconds);
        let policy = crate::approval::Policy {
            expiry_seconds: expiry,
            ..original.policy.clone()
        };
        let request = ApprovalRequest {
            id: RequestId::new(""),
            incident: run.incident.clone(),
            channel: req.channel.clone(),
            requester_id: req.actor.qualified_id(),
            requester_name: req.actor.name.clone(),
            command: req.text.trim().to_string(),
            playbook: run.playbook.clone(),
            params: Default::default(),
            severity: original.severity,
            plan_digest: digest(&plan_text),
            plan_text,
            policy: policy.clone(),
            state: RequestState::Pending,
            created_at: now,
            expires_at: now + chrono::Duration::seconds(expiry),
            decided_at: None,
            decided_by: None,
            reason: None,
            retry_of: Some((run.id.clone(), step.idx)),
            mode: run.mode.clone(),
        };
        let draft = self.draft(
            &req.actor,
            req.source,
            "approval.requested",
            format!(
                "{}: requested `{}`: run {} step {} ({}) again, which is not safe to run twice (plan digest {}); needs {}",
                crate::store::ID_PLACEHOLDER,
                request.command,
                run.id,
                step.idx,
                step.name,
                &request.plan_digest[..12],
                policy.describe()
            ),
        );
        let draft = draft.with([Fact::Requested {
            request: crate::store::ID_PLACEHOLDER.to_string(),
            requester_id: request.requester_id.clone(),
            command: request.command.clone(),
            playbook: request.playbook.clone(),
            digest: request.plan_digest.clone(),
        }]);
        let saved = self.store.create_request(request, vec![draft]).await?;
        Ok(vec![Reply::card(
            super::requests::render_request(&saved, true),
            &saved,
        )])
    }

    /// The quorum is reached on a retry request: the run must still be stopped at that step
    /// (the plan renders the same), then it resumes here, once.
    pub(crate) async fn execute_retry(
        &self,
        req: &Request,
        r: ApprovalRequest,
        run_id: RunId,
        idx: i64,
    ) -> crate::Result<Vec<Reply>> {
        let run = self
            .store
            .run(&run_id)
            .await?
            .ok_or_else(|| crate::Error::NotFound(run_id.to_string()))?;
        if let Some(refusal) = self.other_mode(&run) {
            return Ok(vec![refusal]);
        }
        let steps = self.store.steps(&run_id).await?;
        let step = steps
            .iter()
            .find(|s| s.idx == idx && s.state == StepState::Running)
            .filter(|_| run.state == RunState::Blocked);
        let fresh = step.map(|s| digest(&retry_plan(&run, &steps, s)));
        let Some(step) = step.filter(|_| fresh.as_deref() == Some(r.plan_digest.as_str())) else {
            let why = self.not_waiting(&run);
            let draft =
                self.system_draft("approval.void", format!("{} void at approval: {why}", r.id));
            self.settle(
                &r.id,
                RequestState::Void,
                self.clock.now(),
                Some(&req.actor.name),
                Some("the run moved on"),
                draft,
            )
            .await?;
            return Ok(vec![
                Reply::error(format!("{} is void and will not run: {why}", r.id)).about(&r.id),
            ]);
        };
        let mut step = step.clone();
        step.state = StepState::Pending;
        let approvers: Vec<String> = self
            .store
            .approvals(&r.id)
            .await?
            .into_iter()
            .map(|a| format!("{} ({})", a.approver_name, a.approver_id))
            .collect();
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
            .with([Fact::request_state(r.id.as_str(), RequestState::Done)]),
            self.draft(
                &req.actor,
                req.source,
                "step.retry",
                format!(
                    "{} step {} ({}) runs again, as {} asked and {} approved",
                    run.id,
                    step.idx,
                    step.name,
                    r.requester_name,
                    approvers.join(", ")
                ),
            )
            .with([
                Fact::run_state(run.id.as_str(), run.request.as_str(), RunState::Running),
                Fact::step(&step),
            ]),
        ];
        let now = self.clock.now();
        if !self
            .store
            .begin_retry(&r.id, now, &req.actor.name, &step, &self.lease(), drafts)
            .await?
        {
            return Ok(vec![Reply::error(format!(
                "{} was decided at the same moment by someone else; {}",
                r.id,
                self.not_waiting(&self.store.run(&run_id).await?.unwrap_or(run))
            ))]);
        }
        Ok(vec![self.execute_run(&run_id).await?])
    }
}

/// What a retry approval shows: which run, which step again, and what follows.
fn retry_plan(run: &Run, steps: &[StepRecord], step: &StepRecord) -> String {
    let mut text = format!(
        "Run {} ({}) stopped mid-way through step {}; run it again, then the steps after it:\n",
        run.id, run.playbook, step.idx
    );
    for s in steps.iter().filter(|s| s.idx >= step.idx) {
        text.push_str(&format!(
            "{}{}\n",
            s.description,
            if s.idx == step.idx {
                " [again: not safe to run twice; it was interrupted after it started]"
            } else {
                ""
            }
        ));
    }
    text.push_str(&format!(
        "Step {} attempts so far: {}\n",
        step.idx, step.attempts
    ));
    text
}

fn digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}
