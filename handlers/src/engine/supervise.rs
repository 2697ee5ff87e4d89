//! Taking over the runs of processes that died: every executing process looks, periodically, for
//! running runs of its executor mode whose lease expired, claims one at a time (a compare-and-set
//! in the database the replicas share) and continues it from the stored step state. A finished
//! step never runs again; a step found mid-way runs again only if it is idempotent, otherwise the
//! run waits for a person. The timeline says who took over and why.

use super::Engine;
use crate::ids::RunId;
use crate::reply::Reply;
use crate::run::{StepState, TakenOver, owner_label};
use std::time::Duration as StdDuration;

/// What taking over a run led to.
pub enum TakeOver {
    /// The run is ours now (its lease kept from the moment it was claimed) and continues.
    Execute(RunId, super::execute::LeaseKeeper),
    /// Its interrupted step is not safe to run again: it waits for a person (already said).
    Blocked(Box<Reply>),
}

impl Engine {
    /// Claims one run whose owner stopped renewing its lease, if there is one, and prepares it.
    pub async fn take_over_next(&self) -> crate::Result<Option<TakeOver>> {
        if self.is_stopping() {
            return Ok(None);
        }
        let now = self.clock.now();
        let Some(TakenOver {
            run,
            previous_owner,
            previous_lease,
        }) = self
            .store
            .claim_expired_run(self.executor.mode().as_str(), now, &self.lease())
            .await?
        else {
            return Ok(None);
        };
        let why = match (&previous_owner, previous_lease) {
            (Some(o), Some(l)) => format!(
                "its owner {} stopped renewing its lease, which expired at {} UTC",
                owner_label(o),
                l.format("%H:%M:%S")
            ),
            _ => "it had no owner (started before runs had owners)".to_string(),
        };
        let keeper = super::execute::LeaseKeeper::start(self, &run.id);
        let me = owner_label(&self.settings.owner);
        let steps = self.store.steps(&run.id).await?;
        let next = steps
            .iter()
            .find(|s| !matches!(s.state, StepState::Done | StepState::Skipped));
        let from = next
            .map(|s| format!("step {} ({})", s.idx, s.name))
            .unwrap_or_else(|| "its end".into());
        let draft = self.system_draft(
            "run.taken_over",
            format!(
                "{} taken over by {me}: {why}; continuing from {from}",
                run.id
            ),
        );
        self.store.append(&run.incident, vec![draft]).await?;
        self.outbox
            .post(
                &run.channel,
                Reply::channel(format!(
                    "↻ {} taken over by {me}: {why}. Continuing from {from}.",
                    run.id
                ))
                .about(&run.request),
            )
            .await;
        if let Some(interrupted) = steps.iter().find(|s| s.state == StepState::Running) {
            let mut step = interrupted.clone();
            if step.idempotent {
                step.state = StepState::Pending;
                let draft = self.step_draft(
                    &step,
                    "step.interrupted",
                    format!(
                        "{} step {} ({}) was interrupted mid-way when its owner stopped; it is safe to re-run, so it runs again",
                        run.id, step.idx, step.name
                    ),
                );
                self.store.save_step(&step, vec![draft]).await?;
            } else {
                self.block(
                    &run,
                    &step,
                    "was interrupted mid-way when its owner stopped and is not safe to re-run",
                )
                .await?;
                let reply = self.blocked_reply(&run, &step);
                self.outbox.post(&run.channel, reply.clone()).await;
                return Ok(Some(TakeOver::Blocked(Box::new(reply))));
            }
        }
        Ok(Some(TakeOver::Execute(run.id, keeper)))
    }

    /// Takes over every run whose lease expired and executes each here, one after another;
    /// returns what was said about each (tests and one-shot tools).
    pub async fn take_over_expired_runs(&self) -> crate::Result<Vec<Reply>> {
        let mut out = Vec::new();
        while let Some(t) = self.take_over_next().await? {
            match t {
                TakeOver::Execute(id, keeper) => out.push(self.execute_kept(&id, keeper).await?),
                TakeOver::Blocked(reply) => out.push(*reply),
            }
        }
        Ok(out)
    }

    /// The background duty of every executing process, for ever: every few seconds, take
    /// over the runs of dead owners (each executes in a task of its own, its closing summary
    /// going to the channel), then check the severity clocks and expire requests on their own
    /// period.
    pub async fn supervise(self) {
        // Every third of a lease, and at least every 5 s: a run handed over by a replica that is
        // shutting down continues within seconds.
        let scan = StdDuration::from_millis((self.settings.lease_seconds.max(1) as u64) * 333)
            .min(StdDuration::from_secs(5));
        let tick = StdDuration::from_secs(self.settings.tick_seconds.max(1));
        let mut scans = tokio::time::interval(scan);
        let mut ticks = tokio::time::interval(tick);
        loop {
            tokio::select! {
                _ = scans.tick() => self.take_over_in_background().await,
                _ = ticks.tick() => {
                    // Requests left alone expire, and say so, even when nobody types anything.
                    self.expire_due().await;
                    if let Err(e) = self.tick().await {
                        tracing::warn!(error = %e, "severity clock check failed");
                    }
                }
            }
        }
    }

    async fn take_over_in_background(&self) {
        loop {
            match self.take_over_next().await {
                Ok(Some(TakeOver::Execute(id, keeper))) => {
                    let engine = self.clone();
                    tokio::spawn(async move {
                        match engine.execute_kept(&id, keeper).await {
                            Ok(summary) => {
                                if let Ok(Some(run)) = engine.store.run(&id).await {
                                    engine.outbox.post(&run.channel, summary).await;
                                }
                            }
                            Err(e) => {
                                tracing::error!(run = %id, error = %e, "a run taken over failed to execute")
                            }
                        }
                    });
                }
                Ok(Some(TakeOver::Blocked(_))) => {}
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "could not look for runs to take over");
                    return;
                }
            }
        }
    }
}
