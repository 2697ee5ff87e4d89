//! Incidents and their lifecycle: declared -> acknowledged -> mitigated -> resolved -> closed.
//! Transitions are pure functions that either change the incident and say what happened, or
//! refuse with the reason; storage and transports never decide lifecycle rules.

use crate::command::Role;
use crate::ids::IncidentId;
use crate::severity::Severity;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    Declared,
    Acknowledged,
    Mitigated,
    Resolved,
    Closed,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Declared => "declared",
            IncidentStatus::Acknowledged => "acknowledged",
            IncidentStatus::Mitigated => "mitigated",
            IncidentStatus::Resolved => "resolved",
            IncidentStatus::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Declared,
            Self::Acknowledged,
            Self::Mitigated,
            Self::Resolved,
            Self::Closed,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

impl fmt::Display for IncidentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The current state of one incident. Its history lives in the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incident {
    pub id: IncidentId,
    pub title: String,
    pub severity: Severity,
    pub status: IncidentStatus,
    /// The channel (or console session) it was declared in; commands there address it.
    pub channel: String,
    /// A rehearsal on the simulated world, never a real outage.
    pub drill: bool,
    pub declared_by: String,
    pub declared_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub mitigated_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub summary: Option<String>,
    pub roles: BTreeMap<Role, String>,
    /// Optimistic-concurrency version: a change is stored only if nobody changed the row since it was read.
    pub version: i64,
}

/// A change the lifecycle accepted, with the timeline text that records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub kind: &'static str,
    pub text: String,
}

/// Why a lifecycle command was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal(pub String);

type Outcome = Result<Vec<Transition>, Refusal>;

fn t(kind: &'static str, text: String) -> Transition {
    Transition { kind, text }
}

impl Incident {
    pub fn is_open(&self) -> bool {
        self.status != IncidentStatus::Closed
    }

    fn refuse_if_closed(&self, what: &str) -> Result<(), Refusal> {
        if self.status == IncidentStatus::Closed {
            return Err(Refusal(format!(
                "{} is closed; it cannot {what}. Declare a new incident if the problem is back.",
                self.id
            )));
        }
        Ok(())
    }

    pub fn acknowledge(&mut self, by: &str, at: DateTime<Utc>) -> Outcome {
        self.refuse_if_closed("be acknowledged")?;
        if let (Some(when), Some(who)) = (self.acknowledged_at, &self.acknowledged_by) {
            return Err(Refusal(format!(
                "{} was already acknowledged by {who} at {} UTC.",
                self.id,
                when.format("%H:%M:%S")
            )));
        }
        if self.status != IncidentStatus::Declared {
            return Err(Refusal(format!("{} is already {}.", self.id, self.status)));
        }
        self.status = IncidentStatus::Acknowledged;
        self.acknowledged_at = Some(at);
        self.acknowledged_by = Some(by.to_string());
        let late = at - self.declared_at > self.severity.response_target();
        let clock = crate::severity::human_duration(at - self.declared_at);
        let verdict = if late { "missed" } else { "met" };
        Ok(vec![t(
            "acknowledged",
            format!(
                "Acknowledged by {by} after {clock} (target {}: {verdict})",
                crate::severity::human_duration(self.severity.response_target())
            ),
        )])
    }

    /// Acknowledgement implied by a later step (mitigating without an explicit ack).
    fn imply_ack(&mut self, by: &str, at: DateTime<Utc>, out: &mut Vec<Transition>) {
        if self.acknowledged_at.is_none() {
            self.acknowledged_at = Some(at);
            self.acknowledged_by = Some(by.to_string());
            out.push(t(
                "acknowledged",
                format!("Acknowledged by {by} (implied by the next step)"),
            ));
        }
    }

    pub fn change_severity(&mut self, to: Severity) -> Outcome {
        self.refuse_if_closed("change severity")?;
        if self.severity == to {
            return Err(Refusal(format!("{} is already {to}.", self.id)));
        }
        let from = self.severity;
        self.severity = to;
        Ok(vec![t(
            "severity",
            format!(
                "Severity {from} -> {to} (targets now: respond {}, resolve {})",
                crate::severity::human_duration(to.response_target()),
                crate::severity::human_duration(to.resolution_target())
            ),
        )])
    }

    pub fn assign_role(&mut self, role: Role, user: &str) -> Outcome {
        self.refuse_if_closed("take role changes")?;
        if self.roles.get(&role).map(String::as_str) == Some(user) {
            return Err(Refusal(format!(
                "{user} is already {} of {}.",
                role.title(),
                self.id
            )));
        }
        let previous = self.roles.insert(role, user.to_string());
        let text = match previous {
            Some(p) => format!("{}: {p} -> {user}", role.title()),
            None => format!("{}: {user}", role.title()),
        };
        Ok(vec![t("role", text)])
    }

    pub fn mitigate(&mut self, by: &str, at: DateTime<Utc>) -> Outcome {
        self.refuse_if_closed("be mitigated")?;
        if self.status >= IncidentStatus::Mitigated {
            return Err(Refusal(format!("{} is already {}.", self.id, self.status)));
        }
        let mut out = Vec::new();
        self.imply_ack(by, at, &mut out);
        self.status = IncidentStatus::Mitigated;
        self.mitigated_at = Some(at);
        out.push(t(
            "mitigated",
            format!(
                "Impact mitigated (reported by {by}) after {}",
                crate::severity::human_duration(at - self.declared_at)
            ),
        ));
        Ok(out)
    }

    pub fn resolve(&mut self, by: &str, at: DateTime<Utc>, summary: Option<String>) -> Outcome {
        self.refuse_if_closed("be resolved")?;
        if self.status == IncidentStatus::Resolved {
            return Err(Refusal(format!(
                "{} is already resolved; `/erlmcp close` closes it.",
                self.id
            )));
        }
        let mut out = Vec::new();
        self.imply_ack(by, at, &mut out);
        if self.mitigated_at.is_none() {
            self.mitigated_at = Some(at);
            out.push(t(
                "mitigated",
                "Impact mitigated (implied by resolution)".to_string(),
            ));
        }
        self.status = IncidentStatus::Resolved;
        self.resolved_at = Some(at);
        let elapsed = at - self.declared_at;
        let verdict = if elapsed > self.severity.resolution_target() {
            "missed"
        } else {
            "met"
        };
        let mut text = format!(
            "Resolved by {by} after {} (target {}: {verdict})",
            crate::severity::human_duration(elapsed),
            crate::severity::human_duration(self.severity.resolution_target())
        );
        if let Some(s) = &summary {
            text.push_str(&format!(": {s}"));
            self.summary = summary.clone();
        }
        out.push(t("resolved", text));
        Ok(out)
    }

    pub fn close(&mut self, by: &str, at: DateTime<Utc>) -> Outcome {
        match self.status {
            IncidentStatus::Closed => Err(Refusal(format!("{} is already closed.", self.id))),
            IncidentStatus::Resolved => {
                self.status = IncidentStatus::Closed;
                self.closed_at = Some(at);
                Ok(vec![t("closed", format!("Closed by {by}"))])
            }
            other => Err(Refusal(format!(
                "{} is {other}, not resolved; resolve it first: `/erlmcp resolve <summary>`.",
                self.id
            ))),
        }
    }
}

/// The incident's summary as chat shows it in the incident's own channel (and pins): plain text,
/// which each chat adapter escapes; `link` is appended when there is a page to point to.
pub fn summary_text(inc: &Incident, link: Option<&str>) -> String {
    let roles = if inc.roles.is_empty() {
        "none yet (`/erlmcp role ic <user>`)".to_string()
    } else {
        inc.roles
            .iter()
            .map(|(r, u)| format!("{}: {u}", r.title()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut text = format!(
        "{} — {} {}\nDeclared by {} at {} UTC. Targets: acknowledge within {}, resolve within {}.\nRoles: {roles}\nCommands here address this incident: `/erlmcp ack`, `/erlmcp status`, `/failover <region>`.",
        inc.id,
        inc.severity,
        inc.title,
        inc.declared_by,
        inc.declared_at.format("%Y-%m-%d %H:%M"),
        crate::severity::human_duration(inc.severity.response_target()),
        crate::severity::human_duration(inc.severity.resolution_target()),
    );
    if let Some(link) = link {
        text.push_str("\nWeb view: ");
        text.push_str(link);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn incident() -> Incident {
        Incident {
            id: IncidentId::new("INC-20261128-1"),
            title: "API down".into(),
            severity: Severity::P0,
            status: IncidentStatus::Declared,
            channel: "console".into(),
            drill: false,
            declared_by: "alice".into(),
            declared_at: Utc.with_ymd_and_hms(2026, 11, 28, 14, 0, 0).unwrap(),
            acknowledged_at: None,
            acknowledged_by: None,
            mitigated_at: None,
            resolved_at: None,
            closed_at: None,
            summary: None,
            roles: BTreeMap::new(),
            version: 1,
        }
    }

    fn at(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 14, 0, 0).unwrap() + chrono::Duration::minutes(min)
    }

    #[test]
    fn acknowledging_twice_is_refused_with_who_and_when() {
        let mut i = incident();
        let first = i.acknowledge("bob", at(3)).unwrap();
        assert!(first[0].text.contains("target 5m 00s: met"), "{first:?}");
        let again = i.acknowledge("carol", at(4)).unwrap_err();
        assert_eq!(
            again.0,
            "INC-20261128-1 was already acknowledged by bob at 14:03:00 UTC."
        );
        assert_eq!(i.acknowledged_by.as_deref(), Some("bob"));
    }

    #[test]
    fn late_acknowledgement_is_marked_missed() {
        let mut i = incident();
        let tr = i.acknowledge("bob", at(6)).unwrap();
        assert!(tr[0].text.contains("missed"), "{tr:?}");
    }

    #[test]
    fn closing_requires_resolution_and_closed_incidents_refuse_everything() {
        let mut i = incident();
        assert!(
            i.close("alice", at(1))
                .unwrap_err()
                .0
                .contains("not resolved")
        );
        i.resolve("alice", at(30), Some("bad deploy reverted".into()))
            .unwrap();
        assert_eq!(
            i.mitigated_at,
            Some(at(30)),
            "resolution implies mitigation"
        );
        assert_eq!(
            i.acknowledged_by.as_deref(),
            Some("alice"),
            "resolution implies acknowledgement"
        );
        i.close("alice", at(31)).unwrap();
        assert!(
            i.resolve("alice", at(32), None)
                .unwrap_err()
                .0
                .contains("is closed")
        );
        assert!(
            i.acknowledge("bob", at(32))
                .unwrap_err()
                .0
                .contains("is closed")
        );
        assert!(
            i.change_severity(Severity::P1)
                .unwrap_err()
                .0
                .contains("is closed")
        );
        assert!(
            i.close("alice", at(33))
                .unwrap_err()
                .0
                .contains("already closed")
        );
    }

    #[test]
    fn severity_and_role_changes_say_from_and_to() {
        let mut i = incident();
        assert_eq!(
            i.change_severity(Severity::P1).unwrap()[0].text,
            "Severity P0 -> P1 (targets now: respond 15m 00s, resolve 4h 00m)"
        );
        assert!(i.change_severity(Severity::P1).is_err());
        assert_eq!(
            i.assign_role(Role::Ic, "bob").unwrap()[0].text,
            "Incident commander: bob"
        );
        assert_eq!(
            i.assign_role(Role::Ic, "carol").unwrap()[0].text,
            "Incident commander: bob -> carol"
        );
        assert!(i.assign_role(Role::Ic, "carol").is_err());
    }
}
