//! Running approved plans step by step, durably: each step's state is stored before and after it
//! runs, so a restart resumes where the run stopped. A finished step never runs again; a step
//! interrupted mid-way runs again only if it is idempotent, otherwise a person decides.

use super::{Engine, Request};
use crate::approval::RequestState;
use crate::command::ResumeDecision;
use crate::executor::{ExecError, FailureKind};
use crate::ids::{IncidentId, RunId};
use crate::reply::Reply;
use crate::run::{Run, RunState, StepRecord, StepState};
use crate::severity::human_duration;
use std::time::Duration as StdDuration;

/// The longest wait between retries, whatever the backoff says.
const MAX_BACKOFF_MS: u64 = 30_000;

impl Engine {
    /// Runs the pending steps of a run in order and returns the closing summary.
    pub async fn execute_run(&self, run_id: &RunId) -> crate::Result<Reply> {
        let run = self
            .store
            .run(run_id)
            .await?
            .ok_or_else(|| crate::Error::NotFound(run_id.to_string()))?;
        let mut steps = self.store.steps(run_id).await?;
        let total = steps.len();
        for i in 0..steps.len() {
            if matches!(steps[i].state, StepState::Done | StepState::Skipped) {
                continue;
            }
            if let Err(failure) = self.run_step(&run, &mut steps[i], total).await {
                if failure.kind == FailureKind::Timeout {
                    // Partly done, perhaps: a person looks, then resumes, retries or aborts.
                    self.block(&run, &steps[i], &failure.message).await?;
                    let mut reply = self.blocked_reply(&run, &steps[i]);
                    reply.text = format!(
                        "⏱ {} step {} `{}` {failure}.\n{}",
                        run.id,
                        steps[i].idx,
                        steps[i].name,
                        reply
                            .text
                            .split_once('\n')
                            .map(|(_, rest)| rest)
                            .unwrap_or("")
                    );
                    return Ok(reply);
                }
                let not_done: Vec<String> = steps[i + 1..]
                    .iter()
                    .map(|s| format!("{}. {}", s.idx, s.name))
                    .collect();
                let remaining = if not_done.is_empty() {
                    "none".to_string()
                } else {
                    not_done.join(", ")
                };
                let draft = self.system_draft(
                    "run.failed",
                    format!(
                        "{} failed at step {} ({}): {}. Not done: {remaining}",
                        run.id, steps[i].idx, steps[i].name, failure
                    ),
                );
                self.finish(
                    &run,
                    RunState::Failed,
                    RequestState::Failed,
                    None,
                    Some(&failure.message),
                    draft,
                )
                .await?;
                let mut reply = Reply::channel(format!(
                    "❌ {} ({}) failed at step {}/{total} `{}`: {}\nNot done: {remaining}\nThe state is as the completed steps left it; `/erlmcp timeline` has every step.",
                    run.id, run.playbook, steps[i].idx, steps[i].name, failure
                )).about(&run.request);
                reply.is_error = true;
                return Ok(reply);
            }
        }
        let now = self.clock.now();
        let took = human_duration(now - run.started_at);
        let draft = self.system_draft(
            "run.done",
            format!(
                "{} ({}) completed all {total} steps in {took}",
                run.id, run.playbook
            ),
        );
        self.finish(&run, RunState::Done, RequestState::Done, None, None, draft)
            .await?;
        let mut text = format!(
            "🏁 {} ({}) done: {total}/{total} steps in {took}.",
            run.id, run.playbook
        );
        if let Some(offer) = self
            .playbooks
            .get(&run.playbook)
            .and_then(|p| p.offer.as_deref())
        {
            text.push_str(&format!("\nNext: {offer}"));
        }
        Ok(Reply::channel(text).about(&run.request))
    }

    /// Ends a run and its request together (done, failed or aborted), with the timeline entry.
    async fn finish(
        &self,
        run: &Run,
        run_state: RunState,
        request_state: RequestState,
        by: Option<&str>,
        reason: Option<&str>,
        draft: crate::timeline::Draft,
    ) -> crate::Result<()> {
        let at = self.clock.now();
        self.store
            .set_run_state(&run.id, run_state, Some(at))
            .await?;
        let change = crate::store::StateChange {
            from: &[RequestState::Executing],
            to: request_state,
            at,
            by,
            reason,
        };
        self.store
            .transition_request(&run.request, change, vec![draft])
            .await?;
        Ok(())
    }

    /// One step with its timeout and retries. The step is stored as running before the call,
    /// which is what lets a restart tell "interrupted mid-way" from "not started".
    async fn run_step(
        &self,
        run: &Run,
        step: &mut StepRecord,
        total: usize,
    ) -> Result<(), ExecError> {
        let max_attempts = if step.idempotent {
            step.retries.max(0) + 1
        } else {
            1
        };
        let mut tries_this_time = 0;
        loop {
            tries_this_time += 1;
            step.state = StepState::Running;
            step.attempts += 1;
            let started = self.clock.now();
            step.started_at.get_or_insert(started);
            self.save(step).await?;
            if tries_this_time == 1 {
                self.announce(
                    run,
                    "step.started",
                    format!("Step {}/{total} started: {}", step.idx, step.description),
                    format!("▶ {} step {}/{total}: {}", run.id, step.idx, step.name),
                )
                .await?;
            }
            let timeout = StdDuration::from_secs(step.timeout_seconds.max(1) as u64);
            let outcome =
                match tokio::time::timeout(timeout, self.executor.apply(&step.action)).await {
                    Ok(r) => r,
                    Err(_) => Err(ExecError::timeout(format!(
                        "timed out after {}; it may be partly done",
                        human_duration(chrono::Duration::seconds(step.timeout_seconds))
                    ))),
                };
            let finished = self.clock.now();
            match outcome {
                Ok(result) => {
                    step.state = StepState::Done;
                    step.finished_at = Some(finished);
                    step.result = Some(result.clone());
                    self.save(step).await?;
                    let took = human_duration(finished - step.started_at.unwrap_or(started));
                    self.announce(
                        run,
                        "step.done",
                        format!(
                            "Step {}/{total} done in {took}: {} — {result}",
                            step.idx, step.name
                        ),
                        format!(
                            "✔ {} step {}/{total} {} ({took}): {result}",
                            run.id, step.idx, step.name
                        ),
                    )
                    .await?;
                    return Ok(());
                }
                Err(e) if e.kind == FailureKind::Transient && tries_this_time < max_attempts => {
                    let backoff = (self.settings.retry_base_ms << (tries_this_time - 1).min(16))
                        .min(MAX_BACKOFF_MS);
                    self.note(
                        run,
                        "step.retry",
                        format!(
                            "Step {}/{total} attempt {} failed (will retry in {backoff} ms): {e}",
                            step.idx, step.attempts
                        ),
                    )
                    .await?;
                    tokio::time::sleep(StdDuration::from_millis(backoff)).await;
                }
                Err(e) if e.kind == FailureKind::Timeout => {
                    // Left `running`: whether it took effect is for a person to say.
                    step.result = Some(e.message.clone());
                    self.save(step).await?;
                    self.note(
                        run,
                        "step.timeout",
                        format!("Step {}/{total} {}: {e}", step.idx, step.name),
                    )
                    .await?;
                    return Err(e);
                }
                Err(e) => {
                    step.state = StepState::Failed;
                    step.finished_at = Some(finished);
                    step.result = Some(e.message.clone());
                    self.save(step).await?;
                    self.note(
                        run,
                        "step.failed",
                        format!(
                            "Step {}/{total} failed after {} attempt(s): {} — {e}",
                            step.idx, step.attempts, step.name
                        ),
                    )
                    .await?;
                    return Err(e);
                }
            }
        }
    }

    async fn save(&self, step: &StepRecord) -> Result<(), ExecError> {
        self.store
            .save_step(step)
            .await
            .map_err(|e| ExecError::permanent(format!("could not record the step: {e}")))
    }

    /// Records a run event on the timeline and says it in the run's channel (on the request's card).
    async fn announce(
        &self,
        run: &Run,
        kind: &str,
        timeline_text: String,
        channel_text: String,
    ) -> Result<(), ExecError> {
        self.note(run, kind, timeline_text).await?;
        self.outbox
            .post(
                &run.channel,
                Reply::channel(channel_text).about(&run.request),
            )
            .await;
        Ok(())
    }

    async fn note(&self, run: &Run, kind: &str, text: String) -> Result<(), ExecError> {
        let draft = self.system_draft(kind, text);
        self.store
            .append(&run.incident, vec![draft])
            .await
            .map(|_| ())
            .map_err(|e| ExecError::permanent(format!("could not write the timeline: {e}")))
    }

    /// After a restart: continue every run that was running. Returns what was said about each.
    pub async fn resume_unfinished(&self) -> crate::Result<Vec<Reply>> {
        let mut out = Vec::new();
        for run in self.store.runs_in_state(RunState::Running).await? {
            let steps = self.store.steps(&run.id).await?;
            if let Some(interrupted) = steps.iter().find(|s| s.state == StepState::Running) {
                let mut step = interrupted.clone();
                if step.idempotent {
                    let draft = self.system_draft(
                        "step.interrupted",
                        format!("{} step {} ({}) was interrupted mid-way by a restart; it is safe to re-run, so it runs again", run.id, step.idx, step.name),
                    );
                    self.store.append(&run.incident, vec![draft]).await?;
                    step.state = StepState::Pending;
                    self.store.save_step(&step).await?;
                } else {
                    self.block(
                        &run,
                        &step,
                        "was interrupted mid-way by a restart and is not safe to re-run",
                    )
                    .await?;
                    out.push(self.blocked_reply(&run, &step));
                    continue;
                }
            }
            let draft =
                self.system_draft("run.resumed", format!("{} resumed after a restart", run.id));
            self.store.append(&run.incident, vec![draft]).await?;
            self.outbox
                .post(
                    &run.channel,
                    Reply::channel(format!("↻ {} resumed after a restart.", run.id))
                        .about(&run.request),
                )
                .await;
            out.push(self.execute_run(&run.id).await?);
        }
        Ok(out)
    }

    async fn block(&self, run: &Run, step: &StepRecord, why: &str) -> crate::Result<()> {
        self.store
            .set_run_state(&run.id, RunState::Blocked, None)
            .await?;
        let draft = self.system_draft(
            "step.interrupted",
            format!(
                "{} step {} ({}) {why}; the run waits for a person to say whether it completed",
                run.id, step.idx, step.name
            ),
        );
        self.store.append(&run.incident, vec![draft]).await?;
        Ok(())
    }

    fn blocked_reply(&self, run: &Run, step: &StepRecord) -> Reply {
        let mut r = Reply::channel(format!(
            "⚠ {} stopped: step {} `{}` was interrupted mid-way and is not safe to run twice.\nCheck whether it took effect ({}), then say `/erlmcp resume {} done` (it did), `/erlmcp resume {} retry` (run it again) or `/erlmcp resume {} abort`.",
            run.id, step.idx, step.name, step.description, run.id, run.id, run.id
        )).about(&run.request);
        r.is_error = true;
        r
    }

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
                let blocked: Vec<Run> = self
                    .store
                    .runs_in_state(RunState::Blocked)
                    .await?
                    .into_iter()
                    .filter(|r| r.incident == inc.id)
                    .collect();
                match blocked.as_slice() {
                    [one] => one.clone(),
                    [] => {
                        return Ok(vec![Reply::error(format!(
                            "No run of {} is waiting for a decision.",
                            inc.id
                        ))]);
                    }
                    several => {
                        let ids: Vec<String> = several.iter().map(|r| r.id.to_string()).collect();
                        return Ok(vec![Reply::error(format!(
                            "Several runs wait for a decision: {}. Name one: `/erlmcp resume {} retry`.",
                            ids.join(", "),
                            ids[0]
                        ))]);
                    }
                }
            }
        };
        if run.state != RunState::Blocked {
            return Ok(vec![Reply::error(format!(
                "{} is {}, not waiting for a decision.",
                run.id,
                run.state.as_str()
            ))]);
        }
        let steps = self.store.steps(&run.id).await?;
        let Some(mut step) = steps.into_iter().find(|s| s.state == StepState::Running) else {
            return Ok(vec![Reply::error(format!(
                "{} has no interrupted step.",
                run.id
            ))]);
        };
        let now = self.clock.now();
        match decision {
            ResumeDecision::Abort => {
                step.state = StepState::Failed;
                step.finished_at = Some(now);
                step.result = Some(format!("interrupted; run aborted by {}", req.actor.name));
                self.store.save_step(&step).await?;
                let draft = self.draft(
                    &req.actor,
                    req.source,
                    "run.aborted",
                    format!(
                        "{} aborted by {} at step {} ({})",
                        run.id, req.actor.name, step.idx, step.name
                    ),
                );
                self.finish(
                    &run,
                    RunState::Aborted,
                    RequestState::Failed,
                    Some(&req.actor.name),
                    Some("aborted"),
                    draft,
                )
                .await?;
                Ok(vec![
                    Reply::channel(format!(
                        "{} aborted by {}. Steps after {} were not run.",
                        run.id, req.actor.name, step.idx
                    ))
                    .about(&run.request),
                ])
            }
            ResumeDecision::Done | ResumeDecision::Retry => {
                let (kind, text) = if decision == ResumeDecision::Done {
                    step.state = StepState::Done;
                    step.finished_at = Some(now);
                    step.result = Some(format!(
                        "interrupted; {} confirmed it completed",
                        req.actor.name
                    ));
                    (
                        "step.confirmed",
                        format!(
                            "{} confirmed that {} step {} ({}) completed",
                            req.actor.name, run.id, step.idx, step.name
                        ),
                    )
                } else {
                    step.state = StepState::Pending;
                    (
                        "step.retry",
                        format!(
                            "{} asked to run {} step {} ({}) again",
                            req.actor.name, run.id, step.idx, step.name
                        ),
                    )
                };
                self.store.save_step(&step).await?;
                self.store
                    .set_run_state(&run.id, RunState::Running, None)
                    .await?;
                self.store
                    .append(
                        &run.incident,
                        vec![self.draft(&req.actor, req.source, kind, text)],
                    )
                    .await?;
                Ok(vec![self.execute_run(&run.id).await?])
            }
        }
    }
}
