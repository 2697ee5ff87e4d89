//! Alerts open and update incidents: the first firing alert of a group opens one (if its mapping
//! says so), the rest of the group, repeats and `resolved` notifications go on that incident's
//! timeline, and a person can attach alerts to an incident they declared. An alert never
//! requests, approves or resolves anything: it suggests a command for a person to type.

use super::{Engine, Request};
use crate::alerts::{Alert, AlertStatus, Notification};
use crate::approval::Actor;
use crate::facts::Fact;
use crate::ids::IncidentId;
use crate::reply::Reply;
use crate::severity::{Severity, human_duration};
use crate::store::{AlertLink, AlertOpened, NewIncident};
use crate::timeline::{Draft, Source};

/// What one notification did to one incident.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertOutcome {
    pub incident: IncidentId,
    /// The alert opened it (adapters open its channel and tell `announce`).
    pub opened: bool,
    /// The mapping's channel, if any: where an opened incident is announced, and where the
    /// messages of an incident without a chat channel of its own go.
    pub announce: Option<String>,
    /// Messages for the incident's channel.
    pub replies: Vec<Reply>,
}

/// What became of a notification, for the webhook's answer and the logs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertSummary {
    pub outcomes: Vec<AlertOutcome>,
    /// Alerts recorded on a timeline.
    pub recorded: usize,
    /// Repeats of what was already recorded (Alertmanager re-sends firing alerts).
    pub repeats: usize,
    /// Alerts that open nothing and belong to no open incident (unmapped, or resolved).
    pub ignored: usize,
    /// The database error that stopped the notification part-way, if one did: what is above
    /// was recorded, the rest was not.
    pub error: Option<String>,
}

/// Incidents alerts may open within `STORM_WINDOW` before further ones join the latest.
pub const STORM_INCIDENTS: usize = 5;
pub const STORM_WINDOW: chrono::Duration = chrono::Duration::minutes(10);

/// The notice (and timeline kind) that says an alert-opened incident was announced.
const ANNOUNCED: &str = "alert.announced";

/// The name Alertmanager acts under on the timeline.
const ALERTMANAGER: &str = "alertmanager";

fn alertmanager() -> Actor {
    Actor {
        is_bot: true,
        ..Actor::person(ALERTMANAGER)
    }
}

/// `match:k=v,k2=v2` (sorted): a person's label matcher.
pub fn matcher_key(pairs: &[(String, String)]) -> String {
    let mut sorted: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    sorted.sort();
    format!("match:{}", sorted.join(","))
}

fn matcher_matches(matcher: &str, alert: &Alert) -> bool {
    !matcher.is_empty()
        && matcher.split(',').all(|pair| match pair.split_once('=') {
            Some((k, v)) => alert.labels.get(k).is_some_and(|actual| actual == v),
            None => false,
        })
}

/// A title from an alert: its name and summary, one line, bounded.
fn title_of(alert: &Alert) -> String {
    let summary = alert.summary();
    if summary == alert.display_name() {
        crate::alerts::shown(&summary, 120)
    } else {
        crate::alerts::shown(&format!("{}: {summary}", alert.name()), 120)
    }
}

impl Engine {
    /// Takes one Alertmanager notification. Each alert goes to the open incident its
    /// fingerprint, a person's matcher or its group leads to; otherwise a firing alert the
    /// mapping opens an incident for opens one (once, however many replicas receive it). On a
    /// database error it stops there: what was recorded before is in the summary (to be said in
    /// chat), with the error.
    pub async fn receive_alerts(&self, n: &Notification) -> AlertSummary {
        let mut summary = AlertSummary::default();
        if let Err(e) = self.take_alerts(n, &mut summary).await {
            tracing::error!(error = ?e.to_string(), recorded = summary.recorded, "alert notification stopped by an error");
            summary.error = Some(e.to_string());
        }
        for o in &summary.outcomes {
            tracing::info!(incident = %o.incident, opened = o.opened, "alert notification recorded");
        }
        crate::telemetry::alerts(summary.recorded, summary.repeats, summary.ignored);
        summary
    }

    async fn take_alerts(&self, n: &Notification, summary: &mut AlertSummary) -> crate::Result<()> {
        let mut links = self.store.alert_links().await?;
        let group_key = (!n.group_key.is_empty()).then(|| format!("group:{}", n.group_key));
        for alert in &n.alerts {
            let fp_key = format!("fp:{}", alert.fingerprint);
            let decision = self.settings.alerts.decide(alert);
            // The alert itself, then what a person said (their matcher), then its group.
            let target = links
                .iter()
                .find(|l| l.key == fp_key)
                .or_else(|| {
                    links.iter().find(|l| {
                        l.key
                            .strip_prefix("match:")
                            .is_some_and(|m| matcher_matches(m, alert))
                    })
                })
                .or_else(|| {
                    group_key
                        .as_ref()
                        .and_then(|g| links.iter().find(|l| &l.key == g))
                })
                .map(|l| l.incident.clone());
            let own = AlertLink {
                key: fp_key.clone(),
                incident: IncidentId::new(""),
                status: alert.status.as_str().to_string(),
                starts_at: Some(crate::timeline::normalise_time(alert.starts_at)),
            };
            let mut new_links = vec![own.clone()];
            if let Some(g) = &group_key {
                new_links.push(AlertLink {
                    key: g.clone(),
                    ..own.clone()
                });
            }
            // The group link stays with the incident it first led to.
            new_links
                .retain(|l| !l.key.starts_with("group:") || !links.iter().any(|x| x.key == l.key));
            let target = match target {
                Some(id) => Some(id),
                None if alert.status == AlertStatus::Firing && decision.opens.is_some() => {
                    self.storm_target().await?
                }
                None => None,
            };
            let incident = match target {
                Some(id) => {
                    if !self
                        .join(&id, alert, &decision, new_links.clone(), summary)
                        .await?
                    {
                        continue;
                    }
                    id
                }
                None => {
                    let Some(severity) = decision
                        .opens
                        .filter(|_| alert.status == AlertStatus::Firing)
                    else {
                        tracing::info!(alert = ?alert.display_name(), fingerprint = ?alert.fingerprint, status = alert.status.as_str(), "alert opens nothing and belongs to no open incident; ignored");
                        summary.ignored += 1;
                        continue;
                    };
                    let opened = self
                        .open_for(alert, severity, decision.channel.clone(), new_links.clone())
                        .await?;
                    match opened {
                        AlertOpened::Opened(inc) => {
                            summary.recorded += 1;
                            let reply = self.alert_opened(&inc.id, severity, alert, &decision);
                            push_reply(summary, &inc.id, true, decision.channel.clone(), reply);
                            inc.id
                        }
                        // Another replica (or delivery) opened it a moment ago: join it.
                        AlertOpened::Existing(id) => {
                            if !self
                                .join(&id, alert, &decision, new_links.clone(), summary)
                                .await?
                            {
                                continue;
                            }
                            id
                        }
                    }
                }
            };
            for mut l in new_links {
                l.incident = incident.clone();
                links.retain(|x| x.key != l.key);
                links.push(l);
            }
        }
        Ok(())
    }

    /// Records an alert on an incident it belongs to, unless that exact alert (status and start)
    /// is recorded there already (a repeat, or another replica a moment ago): `false` then.
    async fn join(
        &self,
        id: &IncidentId,
        alert: &Alert,
        decision: &crate::alerts::rules::Decision,
        links: Vec<AlertLink>,
        summary: &mut AlertSummary,
    ) -> crate::Result<bool> {
        if !self
            .store
            .record_alert(id, links, vec![self.alert_draft(alert)])
            .await?
        {
            summary.repeats += 1;
            return Ok(false);
        }
        summary.recorded += 1;
        let reply = self.alert_update(id, alert, decision).await;
        push_reply(summary, id, false, decision.channel.clone(), reply);
        Ok(true)
    }

    /// During an alert storm (more than `STORM_INCIDENTS` incidents opened by alerts in
    /// `STORM_WINDOW`), an alert that would open another incident joins the latest one instead:
    /// a flood of distinct groups must not open a channel each.
    async fn storm_target(&self) -> crate::Result<Option<IncidentId>> {
        let since = self.clock.now() - STORM_WINDOW;
        let mut recent: Vec<_> = self
            .store
            .open_incidents()
            .await?
            .into_iter()
            .filter(|i| i.declared_by == ALERTMANAGER && i.declared_at >= since)
            .collect();
        if recent.len() < STORM_INCIDENTS {
            return Ok(None);
        }
        recent.sort_by_key(|i| i.declared_at);
        let latest = recent.pop().map(|i| i.id);
        if let Some(id) = &latest {
            tracing::warn!(incident = %id, "alert storm: alerts that would open incidents join the latest one");
        }
        Ok(latest)
    }

    async fn open_for(
        &self,
        alert: &Alert,
        severity: Severity,
        channel: Option<String>,
        links: Vec<AlertLink>,
    ) -> crate::Result<AlertOpened> {
        let now = self.clock.now();
        let title = title_of(alert);
        let level = severity.level();
        let text = format!(
            "Declared {severity} ({}) by alert {}: {}. Targets: acknowledge within {}, resolve within {}.",
            level.name,
            alert.display_name(),
            alert.summary(),
            human_duration(severity.response_target()),
            human_duration(severity.resolution_target())
        );
        let channel = channel.unwrap_or_else(|| ALERTMANAGER.to_string());
        let declared = Draft {
            at: now,
            ..self.draft(&alertmanager(), Source::Alert, "declared", text)
        }
        .with([Fact::Declared {
            title: title.clone(),
            drill: false,
            declared_by: ALERTMANAGER.to_string(),
            channel: channel.clone(),
        }]);
        let new = NewIncident {
            title,
            severity,
            channel,
            drill: false,
            declared_by: ALERTMANAGER.to_string(),
            declared_at: now,
        };
        self.store
            .open_for_alert(new, vec![declared, self.alert_draft(alert)], links)
            .await
    }

    /// The timeline entry that records an alert as Alertmanager sent it.
    fn alert_draft(&self, alert: &Alert) -> Draft {
        let kind = match alert.status {
            AlertStatus::Firing => "alert.firing",
            AlertStatus::Resolved => "alert.resolved",
        };
        let mut text = format!(
            "{} {} (began {} UTC",
            alert.display_name(),
            alert.status.as_str(),
            alert.starts_at.format("%Y-%m-%d %H:%M:%S")
        );
        if let Some(end) = alert.ends_at {
            text.push_str(&format!(", ended {} UTC", end.format("%H:%M:%S")));
        }
        text.push(')');
        let labels = alert.label_text();
        if !labels.is_empty() {
            text.push_str(&format!(" ({labels})"));
        }
        text.push_str(&format!(
            ": {}. Fingerprint {}",
            alert.summary(),
            crate::alerts::shown(&alert.fingerprint, 64)
        ));
        if !alert.generator_url.is_empty() {
            text.push_str(&format!(
                ". Source: {}",
                crate::alerts::shown(&alert.generator_url, 300)
            ));
        }
        self.draft(&alertmanager(), Source::Alert, kind, text)
            .with([Fact::Alert {
                name: alert.name().to_string(),
                fingerprint: alert.fingerprint.clone(),
                status: alert.status.as_str().to_string(),
                starts_at: crate::timeline::normalise_time(alert.starts_at),
                ends_at: alert.ends_at.map(crate::timeline::normalise_time),
                labels: alert.labels.clone(),
                generator_url: alert.generator_url.clone(),
            }])
    }

    fn alert_opened(
        &self,
        id: &IncidentId,
        severity: Severity,
        alert: &Alert,
        decision: &crate::alerts::rules::Decision,
    ) -> Reply {
        let mut text = format!(
            "🚨 {id} opened by alert {} ({severity}): {}\nFiring since {} UTC ({}). Fingerprint {}.",
            alert.display_name(),
            alert.summary(),
            alert.starts_at.format("%Y-%m-%d %H:%M:%S"),
            alert.label_text(),
            crate::alerts::shown(&alert.fingerprint, 64)
        );
        suggest(&mut text, decision);
        text.push_str(
            "\nA person acknowledges with `/erlmcp ack`; the alert changes nothing by itself.",
        );
        let mut r = Reply::channel(text);
        r.declared = Some(id.clone());
        r
    }

    async fn alert_update(
        &self,
        id: &IncidentId,
        alert: &Alert,
        decision: &crate::alerts::rules::Decision,
    ) -> Reply {
        let mut text = match alert.status {
            AlertStatus::Firing => format!(
                "🔔 {id}: alert {} firing since {} UTC ({}): {}",
                alert.display_name(),
                alert.starts_at.format("%H:%M:%S"),
                alert.label_text(),
                alert.summary()
            ),
            AlertStatus::Resolved => format!(
                "✅ {id}: alert {} resolved{} ({}). The incident stays as it is until a person decides (`/erlmcp mitigated`, `/erlmcp resolve`).",
                alert.display_name(),
                alert
                    .ends_at
                    .map(|e| format!(" at {} UTC", e.format("%H:%M:%S")))
                    .unwrap_or_default(),
                alert.label_text()
            ),
        };
        if alert.status == AlertStatus::Firing {
            if let (Some(maps_to), Ok(Some(inc))) = (decision.opens, self.store.incident(id).await)
                && maps_to < inc.severity
            {
                text.push_str(&format!(
                    "\nThis alert maps to {maps_to}; the incident is {}. `/erlmcp sev {}` raises it.",
                    inc.severity,
                    maps_to.as_str()
                ));
            }
            suggest(&mut text, decision);
        }
        Reply::channel(text)
    }

    /// Claims the announcement of an incident an alert opened: `true` for exactly one caller
    /// across replicas (a notice row), which then says it in chat. Recorded on the timeline.
    pub async fn claim_alert_announcement(&self, id: &IncidentId) -> crate::Result<bool> {
        self.store
            .record_notice_once(
                id,
                ANNOUNCED,
                self.clock.now(),
                vec![self.system_draft(ANNOUNCED, "Announced in chat")],
            )
            .await
    }

    /// Incidents alerts opened more than `grace` ago that were never announced: the process
    /// that stored them stopped before it said so.
    pub async fn unannounced_alert_incidents(
        &self,
        grace: chrono::Duration,
    ) -> crate::Result<Vec<crate::incident::Incident>> {
        let before = self.clock.now() - grace;
        let mut out = Vec::new();
        for inc in self.store.open_incidents().await? {
            if inc.declared_by == ALERTMANAGER
                && inc.declared_at < before
                && !self.store.has_entry(&inc.id, ANNOUNCED).await?
            {
                out.push(inc);
            }
        }
        Ok(out)
    }

    /// The alerts that go to an incident, for `status`: firing and resolved ones by
    /// fingerprint, and people's matchers.
    pub(crate) async fn alerts_text(&self, id: &IncidentId) -> crate::Result<String> {
        let links: Vec<AlertLink> = self
            .store
            .alert_links()
            .await?
            .into_iter()
            .filter(|l| &l.incident == id)
            .collect();
        if links.is_empty() {
            return Ok(String::new());
        }
        let count = |status: &str| {
            links
                .iter()
                .filter(|l| l.key.starts_with("fp:") && l.status == status)
                .count()
        };
        let mut s = format!(
            "\nAlerts: {} firing, {} resolved",
            count("firing"),
            count("resolved")
        );
        let matchers: Vec<String> = links
            .iter()
            .filter_map(|l| l.key.strip_prefix("match:"))
            .map(|m| m.replace(',', " "))
            .collect();
        if !matchers.is_empty() {
            s.push_str(&format!("; attached: {}", matchers.join("; ")));
        }
        Ok(s)
    }

    /// `/erlmcp attach-alert <fingerprint>` or `/erlmcp attach-alert k=v [k=v ...]`: from now on
    /// that alert, or alerts with those labels, update this incident instead of opening another.
    pub(crate) async fn attach_alert(
        &self,
        req: &Request,
        incident: &crate::incident::Incident,
        fingerprint: Option<String>,
        labels: Vec<(String, String)>,
    ) -> crate::Result<Vec<Reply>> {
        if !incident.is_open() {
            return Ok(vec![Reply::error(format!(
                "{} is closed; attach alerts to an open incident.",
                incident.id
            ))]);
        }
        let (key, what) = match fingerprint {
            Some(fp) => (
                format!("fp:{fp}"),
                format!("the alert with fingerprint {fp}"),
            ),
            None => {
                let shown: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                (
                    matcher_key(&labels),
                    format!("alerts labelled {}", shown.join(" ")),
                )
            }
        };
        let before = self
            .store
            .alert_links()
            .await?
            .into_iter()
            .find(|l| l.key == key);
        if let Some(prev) = &before
            && prev.incident == incident.id
        {
            return Ok(vec![Reply::private(format!(
                "{what}: already going to {}.",
                incident.id
            ))]);
        }
        let moved = before
            .as_ref()
            .map(|p| format!(" (it updated {} until now)", p.incident))
            .unwrap_or_default();
        let link = AlertLink {
            key,
            incident: incident.id.clone(),
            status: before
                .as_ref()
                .map(|p| p.status.clone())
                .unwrap_or_else(|| "attached".to_string()),
            starts_at: before.as_ref().and_then(|p| p.starts_at),
        };
        let draft = self.draft(
            &req.actor,
            req.source,
            "alert.attached",
            format!("{} attached {what} to this incident{moved}", req.actor.name),
        );
        self.store
            .record_alert(&incident.id, vec![link], vec![draft])
            .await?;
        // The incident it came from hears about it too, on its timeline and in its channel.
        if let Some(prev) = &before
            && let Ok(Some(old)) = self.store.incident(&prev.incident).await
        {
            let text = format!(
                "{} moved {what} to {}; they no longer go to this incident",
                req.actor.name, incident.id
            );
            self.store
                .append(
                    &old.id,
                    vec![self.draft(&req.actor, req.source, "alert.detached", text.clone())],
                )
                .await?;
            self.outbox
                .post(
                    &old.channel,
                    Reply::channel(format!("🔗 {}: {text}.", old.id)),
                )
                .await;
        }
        Ok(vec![Reply::channel(format!(
            "🔗 From now on {what} go to {}{moved}: their notifications go on its timeline. They open no other incident and change nothing.",
            incident.id
        ))])
    }
}

fn suggest(text: &mut String, decision: &crate::alerts::rules::Decision) {
    if let Some(advice) = &decision.advice {
        text.push_str(&format!("\n{advice}"));
    }
    if let Some(command) = &decision.command {
        text.push_str(&format!(
            "\nSuggested: `{command}` (a person types it; a second person approves the plan)."
        ));
    }
}

fn push_reply(
    summary: &mut AlertSummary,
    id: &IncidentId,
    opened: bool,
    announce: Option<String>,
    reply: Reply,
) {
    match summary.outcomes.iter_mut().find(|o| &o.incident == id) {
        Some(o) => {
            o.opened |= opened;
            if announce.is_some() {
                o.announce = announce;
            }
            o.replies.push(reply);
        }
        None => summary.outcomes.push(AlertOutcome {
            incident: id.clone(),
            opened,
            announce,
            replies: vec![reply],
        }),
    }
}
