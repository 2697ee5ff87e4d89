//! The postmortem draft, in Markdown, following the Google SRE outline. It is built only from
//! what the bot recorded: it never invents a cause, a trigger, a lesson or an action item, and
//! leaves a marked place for people to write them.

use crate::approval::{Approval, ApprovalRequest};
use crate::incident::Incident;
use crate::run::{Run, StepRecord};
use crate::severity::human_duration;
use crate::timeline::Entry;
use chrono::{DateTime, Duration, Utc};
use std::fmt::Write;

/// What a human must fill in.
pub const TO_BE_WRITTEN: &str = "_To be written by the incident team._";

/// One approval request of the incident, with what became of it.
pub struct RequestRecord {
    pub request: ApprovalRequest,
    pub approvals: Vec<Approval>,
    pub run: Option<(Run, Vec<StepRecord>)>,
}

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn cell(s: &str) -> String {
    crate::markdown::text(s)
}

fn clock_row(
    out: &mut String,
    what: &str,
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
    target: Option<Duration>,
) {
    let (took, verdict) = match end {
        Some(e) => {
            let d = e - start;
            let verdict = match target {
                Some(t) if d <= t => "met",
                Some(_) => "**missed**",
                None => "no target in runbook §8.1",
            };
            (human_duration(d), verdict.to_string())
        }
        None => ("not yet".to_string(), "open".to_string()),
    };
    let target = target
        .map(human_duration)
        .unwrap_or_else(|| "-".to_string());
    let _ = writeln!(out, "| {what} | {took} | {target} | {verdict} |");
}

/// How far before its declaration an incident's detection may be.
pub const DETECTION_LOOKBACK: Duration = Duration::hours(24);

/// When the problem was detected, from the alerts on the timeline. A `startsAt` after the
/// declaration (people saw it first), more than `DETECTION_LOOKBACK` before it, or later than
/// the alert's arrival, is not believed (a wrong clock or a long-firing warning attached later would otherwise claim days of
/// outage).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Detection {
    /// The incident's declaration, which bounds how far back a detection may be.
    pub declared_at: Option<DateTime<Utc>>,
    /// The earliest `startsAt` of a firing alert: when monitoring saw the condition begin.
    pub detected: Option<DateTime<Utc>>,
    /// That alert's name.
    pub alert: Option<String>,
    /// When the bot received the first alert.
    pub first_alert_received: Option<DateTime<Utc>>,
}

impl Detection {
    pub fn of(inc: &Incident) -> Self {
        Self {
            declared_at: Some(inc.declared_at),
            ..Self::default()
        }
    }

    /// Takes one timeline entry into account.
    pub fn add(&mut self, e: &crate::timeline::Entry) {
        for f in &e.facts {
            if let crate::facts::Fact::Alert {
                name,
                status,
                starts_at,
                ..
            } = f
                && status == "firing"
                && *starts_at <= e.at
                && self.declared_at.is_none_or(|d| {
                    // After the declaration, people saw it first: no detection by the alert.
                    *starts_at <= d && d - *starts_at <= DETECTION_LOOKBACK
                })
            {
                if self.detected.is_none_or(|d| *starts_at < d) {
                    self.detected = Some(*starts_at);
                    self.alert = Some(name.clone());
                }
                if self.first_alert_received.is_none_or(|r| e.at < r) {
                    self.first_alert_received = Some(e.at);
                }
            }
        }
    }
}

/// The postmortem: `timeline` is the table `TimelineTable` built from the incident's entries,
/// `severity_changed` whether any entry changed the severity, `detection` what the alerts say.
pub fn render(
    inc: &Incident,
    timeline: TimelineTable,
    severity_changed: bool,
    requests: &[RequestRecord],
    detection: &Detection,
) -> String {
    let mut o = String::new();
    let drill = if inc.drill { " (DRILL)" } else { "" };
    let _ = writeln!(o, "# Postmortem: {}{drill}\n", cell(&inc.title));
    if inc.drill {
        let _ = writeln!(
            o,
            "> This was a drill on the simulated world. No production system was changed.\n"
        );
    }
    let _ = writeln!(o, "| | |\n|---|---|");
    let _ = writeln!(o, "| Incident | {} |", inc.id);
    let _ = writeln!(o, "| Date | {} |", inc.declared_at.format("%Y-%m-%d"));
    let _ = writeln!(
        o,
        "| Severity | {} ({}) |",
        inc.severity,
        inc.severity.level().name
    );
    let _ = writeln!(o, "| Status | {} |", inc.status);
    let _ = writeln!(o, "| Declared by | {} |", cell(&inc.declared_by));
    let _ = writeln!(o, "| Authors | {TO_BE_WRITTEN} |\n");

    let _ = writeln!(o, "## Summary\n");
    match &inc.summary {
        Some(s) => {
            // A paragraph of its own: what a line's start makes structure of is escaped too.
            let _ = writeln!(o, "{}\n", crate::markdown::line(s));
        }
        None => {
            let _ = writeln!(o, "{TO_BE_WRITTEN}\n");
        }
    }
    let _ = writeln!(o, "## Impact\n\n{TO_BE_WRITTEN}\n");

    let _ = writeln!(o, "## Key moments\n\n| Moment | Time (UTC) |\n|---|---|");
    if let (Some(d), Some(name)) = (detection.detected, &detection.alert) {
        let _ = writeln!(
            o,
            "| Detected (alert `{}` began, per its `startsAt`) | {} |",
            cell(name),
            ts(d)
        );
    }
    let moments = [
        ("Declared", Some(inc.declared_at)),
        ("Acknowledged", inc.acknowledged_at),
        ("Mitigated", inc.mitigated_at),
        ("Resolved", inc.resolved_at),
        ("Closed", inc.closed_at),
    ];
    for (name, t) in moments {
        let _ = writeln!(
            o,
            "| {name} | {} |",
            t.map(ts).unwrap_or_else(|| "-".into())
        );
    }

    let _ = writeln!(
        o,
        "\n## Durations against the {} targets (runbook §8.1)\n",
        inc.severity
    );
    let _ = writeln!(o, "| Clock | Took | Target | Result |\n|---|---|---|---|");
    if let Some(d) = detection.detected {
        clock_row(
            &mut o,
            "Time to detect (condition began to first alert received)",
            d,
            detection.first_alert_received,
            None,
        );
        clock_row(
            &mut o,
            "Time to declare (condition began to declared)",
            d,
            Some(inc.declared_at),
            None,
        );
    }
    clock_row(
        &mut o,
        "Time to acknowledge",
        inc.declared_at,
        inc.acknowledged_at,
        Some(inc.severity.response_target()),
    );
    clock_row(
        &mut o,
        "Time to mitigate",
        inc.declared_at,
        inc.mitigated_at,
        None,
    );
    clock_row(
        &mut o,
        "Time to resolve",
        inc.declared_at,
        inc.resolved_at,
        Some(inc.severity.resolution_target()),
    );
    if severity_changed {
        let _ = writeln!(
            o,
            "\nThe severity changed during the incident; targets are those of the final severity, {}.",
            inc.severity
        );
    }

    let _ = writeln!(o, "\n## Roles\n");
    if inc.roles.is_empty() {
        let _ = writeln!(o, "No roles were assigned.");
    } else {
        for (role, who) in &inc.roles {
            let _ = writeln!(o, "- {}: {}", role.title(), cell(who));
        }
    }

    if !requests.is_empty() {
        let _ = writeln!(o, "\n## Infrastructure changes\n");
        for r in requests {
            let q = &r.request;
            // Each approver by name and platform id: names alone prove nothing.
            let approvers: Vec<String> = r
                .approvals
                .iter()
                .map(|a| match a.approver_platform {
                    // Approvals from before ids were qualified kept the platform beside the id.
                    Some(p) if crate::ids::chat::split(&a.approver_id).is_none() => {
                        format!("{} ({}:{})", a.approver_name, p.as_str(), a.approver_id)
                    }
                    _ => format!("{} ({})", a.approver_name, a.approver_id),
                })
                .collect();
            let _ = writeln!(
                o,
                "### {} `{}`: {}\n\nRequested by {} at {}; approved by {}; plan digest `{}`.\n",
                q.id,
                cell(&q.command),
                q.state,
                cell(&format!("{} ({})", q.requester_name, q.requester_id)),
                ts(q.created_at),
                if approvers.is_empty() {
                    "nobody".to_string()
                } else {
                    cell(&approvers.join(", "))
                },
                q.short_digest()
            );
            match (&q.decided_by, &q.reason, q.state) {
                // A run's failure is an outcome, not anyone's decision.
                (_, Some(reason), crate::approval::RequestState::Failed) => {
                    let _ = writeln!(o, "Outcome: {}\n", cell(reason));
                }
                (Some(by), Some(reason), _) => {
                    let _ = writeln!(o, "Decision by {}: {}\n", cell(by), cell(reason));
                }
                _ => {}
            }
            if let Some((run, steps)) = &r.run {
                let _ = writeln!(o, "Run {} ({}):\n", run.id, run.state.as_str());
                let _ = writeln!(
                    o,
                    "| # | Step | Approved by | Started (UTC) | Duration | Result |\n|---|---|---|---|---|---|"
                );
                for s in steps {
                    let dur = match (s.started_at, s.finished_at) {
                        (Some(a), Some(b)) => human_duration(b - a),
                        _ => "-".into(),
                    };
                    let _ = writeln!(
                        o,
                        "| {} | {} | {} | {} | {} | {}: {} |",
                        s.idx,
                        cell(&s.name),
                        cell(&approvers.join(", ")),
                        s.started_at.map(ts).unwrap_or_else(|| "-".into()),
                        dur,
                        s.state.as_str(),
                        cell(s.result.as_deref().unwrap_or(""))
                    );
                }
                let _ = writeln!(o);
            }
        }
    }

    let _ = writeln!(
        o,
        "\n## Timeline\n\n| Time (UTC) | Who | Source | What |\n|---|---|---|---|"
    );
    o.push_str(&timeline.finish());

    for section in [
        "Root cause",
        "Trigger",
        "Detection",
        "Resolution",
        "Lessons learned",
        "What went well",
        "What went wrong",
        "Where we got lucky",
    ] {
        let _ = writeln!(o, "\n## {section}\n\n{TO_BE_WRITTEN}");
    }
    let _ = writeln!(
        o,
        "\n## Action items\n\n| Action | Type | Owner | Status |\n|---|---|---|---|\n| {TO_BE_WRITTEN} | | | |"
    );
    o
}

/// A run of one kind of entry longer than this is shortened in the postmortem.
const RUN_SHOWN_FIRST: usize = 10;
/// How many of the last entries of a shortened run are shown after the count of those left out.
const RUN_SHOWN_LAST: usize = 3;

/// The postmortem's timeline table, built entry by entry as the timeline is read. A long run of
/// the same kind of entry (two scribes' thousand notes, a flood of reminders) shows its first and
/// last entries and one row saying how many were left out, by whom, between which times, and how
/// to see them: nothing is dropped silently. Entries that mark the incident's life or record an
/// infrastructure change are always shown.
pub struct TimelineTable {
    out: String,
    incident: String,
    run: Option<RunOfEntries>,
}

/// The run of alike entries being written.
struct RunOfEntries {
    kind: String,
    shown: usize,
    /// Who wrote the entries left out (a few names; the rest counted).
    left_out_by: std::collections::BTreeSet<String>,
    left_out_by_others: bool,
    /// The last entries, not yet written: shown at the run's end unless more follow.
    tail: std::collections::VecDeque<(DateTime<Utc>, String, String)>,
    left_out: u64,
    left_out_from: Option<DateTime<Utc>>,
    left_out_to: Option<DateTime<Utc>>,
}

impl TimelineTable {
    pub fn new(incident: &str) -> Self {
        Self {
            out: String::new(),
            incident: incident.to_string(),
            run: None,
        }
    }

    /// The next entry, in order.
    pub fn add(&mut self, e: &Entry) {
        if e.kind == "query" {
            return;
        }
        let row = format!(
            "| {} | {} | {} | {} |\n",
            ts(e.at),
            cell(&e.actor),
            e.source,
            cell(&e.text)
        );
        let groupable = !crate::timeline::kept_for_row_checks(e);
        let same = groupable && self.run.as_ref().is_some_and(|r| r.kind == e.kind);
        if !same {
            self.end_run();
            if groupable {
                self.run = Some(RunOfEntries {
                    kind: e.kind.clone(),
                    shown: 0,
                    left_out_by: Default::default(),
                    left_out_by_others: false,
                    tail: Default::default(),
                    left_out: 0,
                    left_out_from: None,
                    left_out_to: None,
                });
            } else {
                self.out.push_str(&row);
                return;
            }
        }
        let Some(run) = self.run.as_mut() else {
            return;
        };
        if run.shown < RUN_SHOWN_FIRST {
            run.shown += 1;
            self.out.push_str(&row);
            return;
        }
        run.tail.push_back((e.at, e.actor.clone(), row));
        if run.tail.len() > RUN_SHOWN_LAST
            && let Some((at, actor, _)) = run.tail.pop_front()
        {
            run.left_out += 1;
            if run.left_out_by.len() < 5 || run.left_out_by.contains(&actor) {
                run.left_out_by.insert(actor);
            } else {
                run.left_out_by_others = true;
            }
            run.left_out_from.get_or_insert(at);
            run.left_out_to = Some(at);
        }
    }

    fn end_run(&mut self) {
        let Some(run) = self.run.take() else {
            return;
        };
        if run.left_out > 0 {
            let mut by: Vec<String> = run.left_out_by.iter().map(|a| cell(a)).collect();
            if run.left_out_by_others {
                by.push("others".into());
            }
            let who = if by.len() == 1 {
                by[0].clone()
            } else {
                format!("{} people", by.len())
            };
            let _ = writeln!(
                self.out,
                "| {} to {} | {who} | | … {} more `{}` entries by {} in this stretch, not shown here; `erlmcp-bot timeline show {}` lists every one |",
                run.left_out_from.map(ts).unwrap_or_default(),
                run.left_out_to.map(ts).unwrap_or_default(),
                run.left_out,
                cell(&run.kind),
                by.join(", "),
                self.incident
            );
        }
        for (_, _, row) in run.tail {
            self.out.push_str(&row);
        }
    }

    /// The table's rows.
    pub fn finish(mut self) -> String {
        self.end_run();
        self.out
    }
}
