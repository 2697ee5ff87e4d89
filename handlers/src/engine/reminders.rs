//! The severity clocks (runbook §8.1): an open incident whose response or resolution target is
//! near, or missed, is called out in its channel and on its timeline, once per clock and stage,
//! however many replicas tick (the notice is unique in the database).

use super::Engine;
use crate::incident::{Incident, IncidentStatus};
use crate::reply::Reply;
use crate::severity::human_duration;
use chrono::Duration;

/// A warning goes out when this share of a target has elapsed.
const WARN_AT_PERCENT: i64 = 80;

struct Clock {
    name: &'static str,
    target: Duration,
    done: bool,
    remedy: &'static str,
}

impl Engine {
    /// Checks every open incident's clocks; returns how many notices it sent.
    pub async fn tick(&self) -> crate::Result<usize> {
        let now = self.clock.now();
        let mut sent = 0;
        for inc in self.store.open_incidents().await? {
            if inc.status >= IncidentStatus::Resolved {
                continue;
            }
            for clock in clocks(&inc) {
                if clock.done {
                    continue;
                }
                let elapsed = now - inc.declared_at;
                let (stage, text) = if elapsed > clock.target {
                    (
                        "missed",
                        format!(
                            "🚨 {} ({} {}) missed its {} target of {}: {} since it was declared. {}{}",
                            inc.id,
                            inc.severity,
                            inc.title,
                            clock.name,
                            human_duration(clock.target),
                            human_duration(elapsed),
                            clock.remedy,
                            escalation(&inc)
                        ),
                    )
                } else if elapsed * 100 >= clock.target * WARN_AT_PERCENT as i32 {
                    (
                        "warning",
                        format!(
                            "⏰ {} ({} {}): {} left to meet the {} target of {}. {}",
                            inc.id,
                            inc.severity,
                            inc.title,
                            human_duration(clock.target - elapsed),
                            clock.name,
                            human_duration(clock.target),
                            clock.remedy
                        ),
                    )
                } else {
                    continue;
                };
                let kind = format!("clock.{}.{stage}", clock.name);
                // Only a due notice costs a look at the timeline: one indexed existence check.
                if self.store.has_entry(&inc.id, &kind).await? {
                    continue;
                }
                // Every replica ticks; the notice is recorded once, by whichever gets there
                // first, and only that one sends it.
                let recorded = self
                    .store
                    .record_notice_once(
                        &inc.id,
                        &kind,
                        now,
                        vec![self.system_draft(&kind, text.clone())],
                    )
                    .await?;
                if !recorded {
                    continue;
                }
                self.outbox.post(&inc.channel, Reply::channel(text)).await;
                crate::telemetry::notice_sent(clock.name, stage);
                tracing::info!(incident = %inc.id, notice = %kind, "clock notice sent");
                sent += 1;
            }
        }
        Ok(sent)
    }
}

fn clocks(inc: &Incident) -> [Clock; 2] {
    [
        Clock {
            name: "response",
            target: inc.severity.response_target(),
            done: inc.acknowledged_at.is_some(),
            remedy: "Acknowledge: `/erlmcp ack`.",
        },
        Clock {
            name: "resolution",
            target: inc.severity.resolution_target(),
            done: inc.resolved_at.is_some(),
            remedy: "Resolve it, or change the severity if it was misjudged.",
        },
    ]
}

/// Who to call on when a target is missed: the incident commander if there is one.
fn escalation(inc: &Incident) -> String {
    match inc.roles.get(&crate::command::Role::Ic) {
        Some(ic) => format!(" Incident commander: {ic}."),
        None => " No incident commander yet: `/erlmcp role ic <user>`.".to_string(),
    }
}
