//! Running approved plans step by step, durably and by one process at a time. Each step's state
//! is stored before and after it runs, so another process can continue where this one stopped.
//! The run is owned under a lease this process renews while it executes; every step starts only
//! if the lease is still ours (a fenced write), so a process that lost its claim never starts
//! another step.

use super::Engine;
use crate::approval::RequestState;
use crate::executor::{ExecError, FailureKind};
use crate::ids::RunId;
use crate::reply::Reply;
use crate::run::{Lease, Run, RunState, StepRecord, StepState};
use crate::severity::human_duration;
use crate::store::{RunEnd, StepStart};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration as StdDuration;
use tracing::Instrument;

/// The longest wait between retries, whatever the backoff says.
const MAX_BACKOFF_MS: u64 = 30_000;

/// Why a step did not complete.
enum Stop {
    /// The step failed (or timed out) with this error.
    Failed(ExecError),
    /// This process no longer owns the run: another one continues it.
    Lost,
    /// A person asked to stop the run; the step was not started.
    Requested(String),
}

impl From<ExecError> for Stop {
    fn from(e: ExecError) -> Self {
        Stop::Failed(e)
    }
}

/// Renews this process's lease on a run in the background while it executes; stops on drop.
/// It starts the moment the run becomes ours (approved, taken over), before anything slow, such
/// as telling the channel, can let the lease run out.
pub struct LeaseKeeper {
    lost: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl LeaseKeeper {
    pub(crate) fn start(engine: &Engine, run: &RunId) -> Self {
        let lost = Arc::new(AtomicBool::new(false));
        let every = StdDuration::from_millis((engine.settings.lease_seconds.max(1) as u64) * 333);
        let (engine, run, flag) = (engine.clone(), run.clone(), lost.clone());
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match engine.store.renew_lease(&run, &engine.lease()).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(run = %run, "lost the lease on the run; another process continues it");
                        flag.store(true, Ordering::SeqCst);
                        return;
                    }
                    // The database is away: keep trying. If the lease runs out meanwhile, the next
                    // step's fenced start tells us.
                    Err(e) => tracing::warn!(run = %run, error = %e, "could not renew the lease"),
                }
            }
        });
        Self { lost, task }
    }

    fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Counts a run as executing in this process while it lives.
struct Executing<'a>(&'a Engine);

impl<'a> Executing<'a> {
    fn enter(engine: &'a Engine) -> Self {
        engine.runs_here.executing.fetch_add(1, Ordering::SeqCst);
        Self(engine)
    }
}

impl Drop for Executing<'_> {
    fn drop(&mut self) {
        if self.0.runs_here.executing.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.runs_here.idle.notify_waiters();
        }
    }
}

impl Engine {
    /// This process's claim on a run, from now.
    pub(crate) fn lease(&self) -> Lease {
        Lease {
            owner: self.settings.owner.clone(),
            until: self.clock.now() + chrono::Duration::seconds(self.settings.lease_seconds),
        }
    }

    /// Runs the pending steps of a run this process owns, in order, and returns the closing summary.
    pub async fn execute_run(&self, run_id: &RunId) -> crate::Result<Reply> {
        self.execute_kept(run_id, LeaseKeeper::start(self, run_id))
            .await
    }

    /// `execute_run` with the lease already being kept since the run became ours.
    pub(crate) async fn execute_kept(
        &self,
        run_id: &RunId,
        keeper: LeaseKeeper,
    ) -> crate::Result<Reply> {
        // Every line logged while the run executes (executor calls included) names it.
        let span = tracing::info_span!(
            "run",
            run = %run_id,
            request = tracing::field::Empty,
            incident = tracing::field::Empty,
        );
        self.execute_in_span(run_id, keeper, span.clone())
            .instrument(span)
            .await
    }

    async fn execute_in_span(
        &self,
        run_id: &RunId,
        keeper: LeaseKeeper,
        span: tracing::Span,
    ) -> crate::Result<Reply> {
        let _counted = Executing::enter(self);
        let run = self
            .store
            .run(run_id)
            .await?
            .ok_or_else(|| crate::Error::NotFound(run_id.to_string()))?;
        span.record("request", run.request.as_str());
        span.record("incident", run.incident.as_str());
        if run.state != RunState::Running || run.owner.as_deref() != Some(&self.settings.owner) {
            return Ok(self.not_ours(&run));
        }
        let mut steps = self.store.steps(run_id).await?;
        let total = steps.len();
        for i in 0..steps.len() {
            if matches!(steps[i].state, StepState::Done | StepState::Skipped) {
                continue;
            }
            if keeper.lost() {
                return self.lost(&run).await;
            }
            if self.is_stopping() {
                drop(keeper);
                return self.handed_over(&run, &steps[i]).await;
            }
            let failure = match self.run_step(&run, &mut steps[i], total).await {
                Ok(()) => continue,
                Err(Stop::Lost) => return self.lost(&run).await,
                Err(Stop::Requested(by)) => return self.stopped(&run, &steps[i..], &by).await,
                Err(Stop::Failed(f)) => f,
            };
            if failure.kind == FailureKind::Timeout {
                // Partly done, perhaps: a person looks, then resumes, retries or aborts.
                if !self.block(&run, &steps[i], &failure.message).await? {
                    return self.lost(&run).await;
                }
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
            if !self
                .finish(
                    &run,
                    RunState::Failed,
                    RequestState::Failed,
                    Some(&failure.message),
                    draft,
                )
                .await?
            {
                return self.lost(&run).await;
            }
            let mut reply = Reply::channel(format!(
                "❌ {} ({}) failed at step {}/{total} `{}`: {}\nNot done: {remaining}\nThe state is as the completed steps left it; `/erlmcp timeline` has every step.",
                run.id, run.playbook, steps[i].idx, steps[i].name, failure
            ))
            .about(&run.request);
            reply.is_error = true;
            return Ok(reply);
        }
        drop(keeper);
        let now = self.clock.now();
        let took = human_duration(now - run.started_at);
        let draft = self.system_draft(
            "run.done",
            format!(
                "{} ({}) completed all {total} steps in {took}",
                run.id, run.playbook
            ),
        );
        if !self
            .finish(&run, RunState::Done, RequestState::Done, None, draft)
            .await?
        {
            return self.lost(&run).await;
        }
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

    /// Ends a run this process owns and its request together (done or failed). `false` if the
    /// run is no longer ours.
    async fn finish(
        &self,
        run: &Run,
        to: RunState,
        request_to: RequestState,
        reason: Option<&str>,
        draft: crate::timeline::Draft,
    ) -> crate::Result<bool> {
        let draft = draft.with([
            crate::facts::Fact::run_state(run.id.as_str(), run.request.as_str(), to),
            crate::facts::Fact::request_state(run.request.as_str(), request_to),
        ]);
        let end = RunEnd {
            run: &run.id,
            request: &run.request,
            from: RunState::Running,
            owner: Some(&self.settings.owner),
            to,
            request_to,
            at: self.clock.now(),
            by: None,
            reason,
            step: None,
        };
        let ended = self.store.end_run(end, vec![draft]).await?;
        if ended {
            self.count_run_end(run, to, request_to);
        }
        Ok(ended)
    }

    /// Metrics and a log line for a run that ended (and its request with it).
    pub(crate) fn count_run_end(&self, run: &Run, to: RunState, request_to: RequestState) {
        let took = (self.clock.now() - run.started_at).num_milliseconds() as f64 / 1000.0;
        crate::telemetry::run_finished(&run.playbook, to.as_str(), took);
        crate::telemetry::request_finished(request_to.as_str());
        tracing::info!(
            run = %run.id,
            request = %run.request,
            incident = %run.incident,
            playbook = %run.playbook,
            outcome = to.as_str(),
            seconds = took,
            "run ended"
        );
    }

    /// What this process says when it finds a run is not (or no longer) its own.
    fn not_ours(&self, run: &Run) -> Reply {
        let mut r = Reply::private(match run.state {
            RunState::Running => format!(
                "{} is executing on {}; this process leaves it alone.",
                run.id,
                run.owner_label()
            ),
            other => format!("{} is {}; nothing to execute.", run.id, other.as_str()),
        })
        .about(&run.request);
        r.is_error = true;
        r
    }

    /// Someone asked to stop: the run ends here, before `rest[0]`, which did not start.
    async fn stopped(&self, run: &Run, rest: &[StepRecord], by: &str) -> crate::Result<Reply> {
        let not_done: Vec<String> = rest
            .iter()
            .map(|s| format!("{}. {}", s.idx, s.name))
            .collect();
        let draft = self
            .system_draft(
                "run.stopped",
                format!(
                    "{} stopped before step {} as {by} asked; not done: {}",
                    run.id,
                    rest[0].idx,
                    not_done.join(", ")
                ),
            )
            .with([
                crate::facts::Fact::run_state(
                    run.id.as_str(),
                    run.request.as_str(),
                    RunState::Aborted,
                ),
                crate::facts::Fact::request_state(run.request.as_str(), RequestState::Failed),
            ]);
        let end = RunEnd {
            run: &run.id,
            request: &run.request,
            from: RunState::Running,
            owner: Some(&self.settings.owner),
            to: RunState::Aborted,
            request_to: RequestState::Failed,
            at: self.clock.now(),
            by: Some(by),
            reason: Some("stopped"),
            step: None,
        };
        if !self.store.end_run(end, vec![draft]).await? {
            return self.lost(run).await;
        }
        self.count_run_end(run, RunState::Aborted, RequestState::Failed);
        Ok(Reply::channel(format!(
            "⏹ {} ({}) stopped before step {} as {by} asked. Not done: {}. The state is as the completed steps left it.",
            run.id,
            run.playbook,
            rest[0].idx,
            not_done.join(", ")
        ))
        .about(&run.request))
    }

    /// Shutting down between steps: the lease is given up so another replica continues at once,
    /// from this step, instead of waiting for the lease to run out.
    async fn handed_over(&self, run: &Run, next: &StepRecord) -> crate::Result<Reply> {
        let me = crate::run::owner_label(&self.settings.owner);
        let draft = self.system_draft(
            "run.handed_over",
            format!(
                "{me} is shutting down: it gave {} up before step {} ({}) for another process to continue",
                run.id, next.idx, next.name
            ),
        );
        self.store
            .release_run(&run.id, &self.settings.owner, vec![draft])
            .await?;
        Ok(Reply::channel(format!(
            "↻ {me} is shutting down; {} continues on another replica from step {} ({}).",
            run.id, next.idx, next.name
        ))
        .about(&run.request))
    }

    /// This process lost its claim while executing: it stops and says who continues.
    async fn lost(&self, run: &Run) -> crate::Result<Reply> {
        let now = self
            .store
            .run(&run.id)
            .await?
            .unwrap_or_else(|| run.clone());
        let draft = self.system_draft(
            "run.lost",
            format!(
                "{} stopped executing {}: its lease expired and {} holds the run now ({})",
                crate::run::owner_label(&self.settings.owner),
                run.id,
                now.owner_label(),
                now.state.as_str()
            ),
        );
        self.store.append(&run.incident, vec![draft]).await?;
        let mut r = Reply::channel(format!(
            "⚠ {} lost {} (its lease expired, perhaps while the database was away); it is {} under {} now, and this process does nothing more for it.",
            crate::run::owner_label(&self.settings.owner),
            run.id,
            now.state.as_str(),
            now.owner_label()
        ))
        .about(&run.request);
        r.is_error = true;
        Ok(r)
    }

    /// One step with its timeout and retries. The step is stored as running before the call
    /// (fenced by our lease), which is what lets another process tell "interrupted mid-way" from
    /// "not started". Each change of the step is stored with the timeline entry that records it,
    /// in one transaction, and then said in the channel.
    async fn run_step(&self, run: &Run, step: &mut StepRecord, total: usize) -> Result<(), Stop> {
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
            let drafts = if tries_this_time == 1 {
                vec![self.step_draft(
                    step,
                    "step.started",
                    format!("Step {}/{total} started: {}", step.idx, step.description),
                )]
            } else {
                Vec::new()
            };
            match self
                .store
                .start_step(step, &self.settings.owner, drafts)
                .await
            {
                Ok(StepStart::Started) => {}
                Ok(StepStart::Lost) => return Err(Stop::Lost),
                Ok(StepStart::StopRequested { by }) => return Err(Stop::Requested(by)),
                Err(e) => {
                    return Err(Stop::Failed(ExecError::permanent(format!(
                        "could not record the step: {e}"
                    ))));
                }
            }
            if tries_this_time == 1 {
                self.say(
                    run,
                    format!("▶ {} step {}/{total}: {}", run.id, step.idx, step.name),
                )
                .await;
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
            let attempt_seconds = (finished - started).num_milliseconds() as f64 / 1000.0;
            let step_outcome = match &outcome {
                Ok(_) => "done",
                Err(e) if e.kind == FailureKind::Timeout => "timeout",
                Err(e) if e.kind == FailureKind::Transient && tries_this_time < max_attempts => {
                    "retry"
                }
                Err(_) => "failed",
            };
            crate::telemetry::step(step.action.kind(), step_outcome, attempt_seconds);
            match &outcome {
                Ok(_) => {
                    tracing::info!(run = %run.id, step = step.idx, action = step.action.kind(), outcome = step_outcome, seconds = attempt_seconds, "step attempt ended")
                }
                Err(e) => {
                    tracing::warn!(run = %run.id, step = step.idx, action = step.action.kind(), outcome = step_outcome, seconds = attempt_seconds, error = %e, "step attempt ended")
                }
            }
            match outcome {
                Ok(result) => {
                    step.state = StepState::Done;
                    step.finished_at = Some(finished);
                    step.result = Some(result.clone());
                    let took = human_duration(finished - step.started_at.unwrap_or(started));
                    let text = format!(
                        "Step {}/{total} done in {took}: {} — {result}",
                        step.idx, step.name
                    );
                    self.save(step, vec![self.step_draft(step, "step.done", text)])
                        .await?;
                    self.say(
                        run,
                        format!(
                            "✔ {} step {}/{total} {} ({took}): {result}",
                            run.id, step.idx, step.name
                        ),
                    )
                    .await;
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
                    let text = format!("Step {}/{total} {}: {e}", step.idx, step.name);
                    self.save(step, vec![self.step_draft(step, "step.timeout", text)])
                        .await?;
                    return Err(Stop::Failed(e));
                }
                Err(e) => {
                    step.state = StepState::Failed;
                    step.finished_at = Some(finished);
                    step.result = Some(e.message.clone());
                    let text = format!(
                        "Step {}/{total} failed after {} attempt(s): {} — {e}",
                        step.idx, step.attempts, step.name
                    );
                    self.save(step, vec![self.step_draft(step, "step.failed", text)])
                        .await?;
                    return Err(Stop::Failed(e));
                }
            }
        }
    }

    /// A system entry recording the step as it now stands.
    pub(crate) fn step_draft(
        &self,
        step: &StepRecord,
        kind: &str,
        text: String,
    ) -> crate::timeline::Draft {
        self.system_draft(kind, text)
            .with([crate::facts::Fact::step(step)])
    }

    async fn save(
        &self,
        step: &StepRecord,
        drafts: Vec<crate::timeline::Draft>,
    ) -> Result<(), ExecError> {
        self.store
            .save_step(step, drafts)
            .await
            .map_err(|e| ExecError::permanent(format!("could not record the step: {e}")))
    }

    /// Says a run's progress in its channel, on the request's card.
    async fn say(&self, run: &Run, text: String) {
        self.outbox
            .post(&run.channel, Reply::channel(text).about(&run.request))
            .await;
    }

    async fn note(&self, run: &Run, kind: &str, text: String) -> Result<(), ExecError> {
        let draft = self.system_draft(kind, text);
        self.store
            .append(&run.incident, vec![draft])
            .await
            .map(|_| ())
            .map_err(|e| ExecError::permanent(format!("could not write the timeline: {e}")))
    }

    /// Stops a run this process owns for a person to decide; `false` if it was not ours.
    pub(crate) async fn block(
        &self,
        run: &Run,
        step: &StepRecord,
        why: &str,
    ) -> crate::Result<bool> {
        let draft = self
            .system_draft(
                "step.interrupted",
                format!(
                    "{} step {} ({}) {why}; the run waits for a person to say whether it completed",
                    run.id, step.idx, step.name
                ),
            )
            .with([crate::facts::Fact::run_state(
                run.id.as_str(),
                run.request.as_str(),
                RunState::Blocked,
            )]);
        self.store
            .block_run(&run.id, &self.settings.owner, vec![draft])
            .await
    }

    pub(crate) fn blocked_reply(&self, run: &Run, step: &StepRecord) -> Reply {
        let retry = if step.idempotent {
            "run it again".to_string()
        } else {
            "run it again; not safe to run twice, so a second person approves the retry".to_string()
        };
        let mut r = Reply::channel(format!(
            "⚠ {} stopped: step {} `{}` was interrupted mid-way and is not safe to run twice.\nCheck whether it took effect ({}), then say `/erlmcp resume {} done` (it did), `/erlmcp resume {} retry` ({retry}) or `/erlmcp resume {} abort`.",
            run.id, step.idx, step.name, step.description, run.id, run.id, run.id
        ))
        .about(&run.request);
        r.is_error = true;
        r
    }
}
