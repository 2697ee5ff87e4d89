//! Incident commands: declare, acknowledge, severity, roles, notes, status, the lifecycle to
//! close, the timeline and the postmortem.

use super::{Engine, Request};
use crate::command::Command;
use crate::error::Error;
use crate::ids::IncidentId;
use crate::incident::{Incident, Transition};
use crate::reply::Reply;
use crate::run::{RunState, StepState};
use crate::severity::{Severity, human_duration};
use crate::store::NewIncident;
use crate::timeline::{Break, Draft};

/// Most characters of a chat message put on the timeline.
pub const PINNED_TEXT_CHARS: usize = 8000;

impl Engine {
    pub(crate) async fn declare(
        &self,
        req: &Request,
        severity: Severity,
        title: String,
        drill: bool,
    ) -> crate::Result<Vec<Reply>> {
        let now = self.clock.now();
        let title = if drill && !title.starts_with("[DRILL]") {
            format!("[DRILL] {title}")
        } else {
            title
        };
        let level = severity.level();
        let text = format!(
            "Declared {severity} ({}): {title}. Targets: acknowledge within {}, resolve within {}.",
            level.name,
            human_duration(severity.response_target()),
            human_duration(severity.resolution_target())
        );
        let new = NewIncident {
            title: title.clone(),
            severity,
            channel: req.channel.clone(),
            drill,
            declared_by: req.actor.name.clone(),
            declared_at: now,
        };
        let inc = self
            .store
            .create_incident(
                new,
                vec![
                    Draft {
                        at: now,
                        ..self.draft(&req.actor, req.source, "declared", text)
                    }
                    .with([crate::facts::Fact::Declared {
                        title: title.clone(),
                        drill,
                        declared_by: req.actor.name.clone(),
                        channel: req.channel.clone(),
                    }]),
                ],
            )
            .await?;
        tracing::Span::current().record("incident", inc.id.as_str());
        let fits: Vec<String> = self
            .playbooks
            .for_severity(severity)
            .iter()
            .map(|p| p.name.clone())
            .collect();
        let mut msg = format!(
            "🚨 {} declared: {severity} {title}\nDeclared by {} at {} UTC{}. Acknowledge within {} (`/erlmcp ack`), resolve within {}.",
            inc.id,
            inc.declared_by,
            now.format("%H:%M:%S"),
            if drill {
                " — DRILL on the simulated world"
            } else {
                ""
            },
            human_duration(severity.response_target()),
            human_duration(severity.resolution_target()),
        );
        if !fits.is_empty() {
            msg.push_str(&format!(
                "\nPlaybooks for {severity}: {} (`/erlmcp playbooks` explains them).",
                fits.join(", ")
            ));
        }
        let mut reply = Reply::channel(msg);
        reply.declared = Some(inc.id.clone());
        Ok(vec![reply])
    }

    /// Ties an incident to a new channel (a chat adapter opened one for it): commands there address
    /// it from now on.
    pub async fn tie_to_channel(
        &self,
        id: &IncidentId,
        channel: &str,
        label: &str,
    ) -> crate::Result<()> {
        for _ in 0..3 {
            let mut inc = self
                .store
                .incident(id)
                .await?
                .ok_or_else(|| Error::NotFound(id.to_string()))?;
            inc.channel = channel.to_string();
            let draft = self
                .system_draft("channel", format!("Incident channel: {label}"))
                .with([crate::facts::Fact::Channel {
                    channel: channel.to_string(),
                }]);
            match self.store.update_incident(&inc, vec![draft]).await {
                Err(Error::Conflict(_)) => continue,
                other => return other.map(|_| ()),
            }
        }
        Err(Error::Conflict(id.to_string()))
    }

    /// A chat message someone flagged (a pushpin reaction) goes on the timeline of the channel's incident.
    /// `author` is the message author as the timeline names them (name and platform id);
    /// `author_name` is how the reply mentions them.
    pub async fn pin_message(
        &self,
        req: &Request,
        author: &str,
        author_name: &str,
        text: &str,
    ) -> crate::Result<Reply> {
        // Only an incident's own channel files messages: a pin elsewhere is not evidence of
        // anything, whatever incidents are open.
        let here = self.store.incidents_in_channel(&req.channel).await?;
        let open: Vec<&Incident> = here.iter().filter(|i| i.is_open()).collect();
        let inc = match open.as_slice() {
            [one] => (*one).clone(),
            [] => {
                return Ok(Reply::error(
                    "A message goes on an incident's timeline (📌, or \"Add to timeline\") only from that incident's own channel, and this channel belongs to no open incident; nothing was added. Do it in the incident's channel (`/erlmcp incidents` lists them), or copy the text with `/erlmcp INC-… note <text>`.",
                ));
            }
            several => {
                let ids: Vec<String> = several.iter().map(|i| i.id.to_string()).collect();
                return Ok(Reply::error(format!(
                    "Several incidents are open in this channel ({}); nothing was added. Copy the text with `/erlmcp {} note <text>`.",
                    ids.join(", "),
                    ids[0]
                )));
            }
        };
        let text = text.trim();
        // A chat message can be longer than a typed note (Discord 4,000 characters, Slack
        // 40,000): kept whole up to a bound, and a cut is said on the timeline and to the person.
        let total = text.chars().count();
        let mut shown: String = text.chars().take(PINNED_TEXT_CHARS).collect();
        let cut = total > PINNED_TEXT_CHARS;
        if cut {
            shown.push_str(&format!(
                " … (cut: the first {PINNED_TEXT_CHARS} of {total} characters)"
            ));
        }
        let draft = self.draft(
            &req.actor,
            req.source,
            "pinned",
            format!("📌 {author}: {shown}"),
        );
        self.store.append(&inc.id, vec![draft]).await?;
        Ok(Reply::private(format!(
            "📌 Added {author_name}'s message to {}'s timeline{}.",
            inc.id,
            if cut {
                format!(" (its first {PINNED_TEXT_CHARS} of {total} characters)")
            } else {
                String::new()
            }
        )))
    }

    pub(crate) async fn list_incidents(&self) -> crate::Result<Vec<Reply>> {
        let open = self.store.open_incidents().await?;
        if open.is_empty() {
            return Ok(vec![Reply::private("No open incidents.")]);
        }
        let now = self.clock.now();
        let lines: Vec<String> = open
            .iter()
            .map(|i| {
                format!(
                    "- {} {} {} [{}] in {} for {}{}",
                    i.id,
                    i.severity,
                    i.title,
                    i.status,
                    i.channel,
                    human_duration(now - i.declared_at),
                    if i.drill { " (drill)" } else { "" }
                )
            })
            .collect();
        Ok(vec![Reply::private(format!(
            "Open incidents:\n{}",
            lines.join("\n")
        ))])
    }

    pub(crate) async fn incident_command(
        &self,
        req: &Request,
        explicit: Option<IncidentId>,
        cmd: Command,
    ) -> crate::Result<Vec<Reply>> {
        let read_only = matches!(
            cmd,
            Command::Status | Command::Timeline | Command::Postmortem
        );
        let mut inc = match self.target_incident(req, explicit, read_only).await? {
            Ok(i) => i,
            Err(reply) => return Ok(vec![reply]),
        };
        if read_only {
            let query = self.draft(&req.actor, req.source, "query", req.text.trim().to_string());
            if inc.is_open() {
                self.store.append(&inc.id, vec![query]).await?;
            }
            return Ok(vec![match cmd {
                Command::Status => Reply::channel(format!(
                    "{}{}{}",
                    self.status_text(&inc),
                    self.runs_text(&inc.id).await?,
                    self.alerts_text(&inc.id).await?
                )),
                Command::Timeline => Reply::channel(self.timeline_text(&inc.id).await?),
                _ => Reply::channel(self.postmortem_markdown(&inc.id).await?),
            }]);
        }
        if req.actor.is_bot {
            return Ok(vec![Reply::error(
                "Bots cannot change incidents; a person must.",
            )]);
        }
        if let Command::AttachAlert {
            fingerprint,
            labels,
        } = cmd
        {
            return self.attach_alert(req, &inc, fingerprint, labels).await;
        }
        let now = self.clock.now();
        let who = req.actor.name.as_str();
        let outcome = match &cmd {
            Command::Ack => inc.acknowledge(who, now),
            Command::Sev(s) => inc.change_severity(*s),
            Command::Role { role, user } => inc.assign_role(*role, user),
            Command::Mitigated => inc.mitigate(who, now),
            Command::Resolve { summary } => inc.resolve(who, now, summary.clone()),
            Command::Close => inc.close(who, now),
            Command::Note(text) => {
                if !inc.is_open() {
                    Err(crate::incident::Refusal(format!(
                        "{} is closed; its timeline takes no more notes.",
                        inc.id
                    )))
                } else {
                    Ok(vec![Transition {
                        kind: "note",
                        text: text.clone(),
                    }])
                }
            }
            other => Err(crate::incident::Refusal(format!(
                "`{}` is not a command about an incident's state; `/erlmcp help` lists the commands ({other:?}).",
                req.text.trim()
            ))),
        };
        let transitions = match outcome {
            Ok(t) => t,
            Err(refusal) => return Ok(vec![Reply::error(refusal.0)]),
        };
        let drafts = transitions
            .iter()
            // Stamped with the same instant as the state change, so row and timeline agree exactly.
            .map(|t| Draft {
                at: now,
                ..self.draft(&req.actor, req.source, t.kind, t.text.clone())
            })
            .collect();
        let saved = if matches!(cmd, Command::Note(_)) {
            self.store.append(&inc.id, drafts).await?;
            inc
        } else {
            match self.store.update_incident(&inc, drafts).await {
                Ok(i) => i,
                Err(Error::Conflict(_)) => {
                    return Ok(vec![Reply::error(format!(
                        "{} changed while you were typing (someone else updated it); `/erlmcp status` shows it now, then try again.",
                        inc.id
                    ))]);
                }
                Err(e) => return Err(e),
            }
        };
        let lines: Vec<String> = transitions.iter().map(|t| t.text.clone()).collect();
        let announce = !matches!(cmd, Command::Note(_)) && saved.channel != req.channel;
        let mut after = String::new();
        if matches!(cmd, Command::Resolve { .. } | Command::Close) {
            let cancelled = self.cancel_pending_of(&saved, &req.actor.name).await?;
            if !cancelled.is_empty() {
                let ids: Vec<String> = cancelled.iter().map(|r| r.to_string()).collect();
                after.push_str(&format!(
                    "\nPending requests cancelled, since nothing runs for a resolved incident: {}.",
                    ids.join(", ")
                ));
            }
            // A witness outside the database: the chain's length and head, said in the channel.
            if let Some(head) = self.store.timeline_head(&saved.id).await? {
                after.push_str(&format!(
                    "\nTimeline witness: {} entries, head {}",
                    head.len, head.hash
                ));
            }
        }
        let text = match cmd {
            Command::Note(_) => format!("📝 Noted on {}'s timeline.", saved.id),
            Command::Close => format!(
                "✅ {}: {}. `/erlmcp postmortem` renders the postmortem draft.",
                saved.id,
                lines.join("; ")
            ),
            _ => format!("{}: {}", saved.id, lines.join("; ")),
        } + &after;
        if announce {
            // Changed from another channel: the incident's own channel hears of it too.
            self.outbox
                .post(
                    &saved.channel,
                    Reply::channel(format!("{text} (by {} from elsewhere)", req.actor.name)),
                )
                .await;
        }
        Ok(vec![Reply::channel(text)])
    }

    fn status_text(&self, inc: &Incident) -> String {
        let now = self.clock.now();
        let mut s = format!(
            "{} {} {}{}\nStatus: {} — declared by {} at {} UTC ({} ago)",
            inc.id,
            inc.severity,
            inc.title,
            if inc.drill { " (drill)" } else { "" },
            inc.status,
            inc.declared_by,
            inc.declared_at.format("%Y-%m-%d %H:%M:%S"),
            human_duration(now - inc.declared_at)
        );
        let clock = |label: &str,
                     done: Option<chrono::DateTime<chrono::Utc>>,
                     target: chrono::Duration| match done {
            Some(t) => {
                let took = t - inc.declared_at;
                format!(
                    "\n{label}: {} (target {}: {})",
                    human_duration(took),
                    human_duration(target),
                    if took <= target { "met" } else { "missed" }
                )
            }
            None if inc.is_open() => {
                let left = target - (now - inc.declared_at);
                if left >= chrono::Duration::zero() {
                    format!(
                        "\n{label}: pending, {} left of {}",
                        human_duration(left),
                        human_duration(target)
                    )
                } else {
                    format!(
                        "\n{label}: pending, OVERDUE by {} (target {})",
                        human_duration(-left),
                        human_duration(target)
                    )
                }
            }
            None => format!("\n{label}: never"),
        };
        s.push_str(&clock(
            "Acknowledge",
            inc.acknowledged_at,
            inc.severity.response_target(),
        ));
        s.push_str(&clock(
            "Resolve",
            inc.resolved_at,
            inc.severity.resolution_target(),
        ));
        if inc.roles.is_empty() {
            s.push_str("\nRoles: none assigned (`/erlmcp role ic <user>`)");
        } else {
            for (r, who) in &inc.roles {
                s.push_str(&format!("\n{}: {who}", r.title()));
            }
        }
        s
    }

    /// The incident's runs that are not over: where each executes, or that it waits for a person.
    async fn runs_text(&self, id: &IncidentId) -> crate::Result<String> {
        let mut s = String::new();
        for state in [RunState::Running, RunState::Blocked] {
            for run in self.store.runs_in_state(state).await? {
                if &run.incident != id {
                    continue;
                }
                let steps = self.store.steps(&run.id).await?;
                let at = steps
                    .iter()
                    .find(|s| !matches!(s.state, StepState::Done | StepState::Skipped))
                    .map(|s| format!("step {}/{} `{}`", s.idx, steps.len(), s.name))
                    .unwrap_or_else(|| "its last step".into());
                s.push_str(&match state {
                    RunState::Running => format!(
                        "\nRun {} ({}): executing {at} on {} (lease until {} UTC)",
                        run.id,
                        run.playbook,
                        run.owner_label(),
                        run.lease_until
                            .map(|t| t.format("%H:%M:%S").to_string())
                            .unwrap_or_else(|| "-".into())
                    ),
                    _ => format!(
                        "\nRun {} ({}): stopped at {at}, waiting for `/erlmcp resume {} done|retry|abort`",
                        run.id, run.playbook, run.id
                    ),
                });
            }
        }
        Ok(s)
    }

    async fn timeline_text(&self, id: &IncidentId) -> crate::Result<String> {
        let entries = self.store.timeline(id).await?;
        let queries = entries.iter().filter(|e| e.kind == "query").count();
        let mut s = format!(
            "Timeline of {id} ({} entries{}):",
            entries.len() - queries,
            if queries > 0 {
                format!(", and {queries} status queries not shown")
            } else {
                String::new()
            }
        );
        for e in entries.iter().filter(|e| e.kind != "query") {
            s.push_str(&format!(
                "\n{} {} [{}] {}",
                e.at.format("%Y-%m-%d %H:%M:%S"),
                e.actor,
                e.source,
                e.text
            ));
        }
        Ok(s)
    }

    /// The postmortem draft of an incident, in Markdown.
    pub async fn postmortem_markdown(&self, id: &IncidentId) -> crate::Result<String> {
        crate::reads::postmortem_markdown(self.store.as_ref(), id).await
    }

    /// Checks an incident's hash chain and its row against it (without a key); an empty list
    /// means intact.
    pub async fn verify_timeline(&self, id: &IncidentId) -> crate::Result<Vec<Break>> {
        Ok(crate::reads::verify_timeline(self.store.as_ref(), id, None)
            .await?
            .breaks)
    }
}

impl Engine {
    /// Declares a drill incident: marked as a drill in its title, its timeline and its postmortem.
    pub async fn declare_drill(
        &self,
        req: &Request,
        severity: Severity,
    ) -> crate::Result<Vec<Reply>> {
        self.declare(req, severity, req.text.clone(), true).await
    }
}
