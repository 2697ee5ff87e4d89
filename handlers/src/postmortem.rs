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

pub fn render(inc: &Incident, entries: &[Entry], requests: &[RequestRecord]) -> String {
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
            let _ = writeln!(o, "{}\n", cell(s));
        }
        None => {
            let _ = writeln!(o, "{TO_BE_WRITTEN}\n");
        }
    }
    let _ = writeln!(o, "## Impact\n\n{TO_BE_WRITTEN}\n");

    let _ = writeln!(o, "## Key moments\n\n| Moment | Time (UTC) |\n|---|---|");
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
    if entries.iter().any(|e| e.kind == "severity") {
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
                    Some(p) => format!("{} ({}:{})", a.approver_name, p.as_str(), a.approver_id),
                    None => format!("{} ({})", a.approver_name, a.approver_id),
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
    for e in entries.iter().filter(|e| e.kind != "query") {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} |",
            ts(e.at),
            cell(&e.actor),
            e.source,
            cell(&e.text)
        );
    }

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
