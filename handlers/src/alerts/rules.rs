//! What an alert means: whether it opens an incident, at which severity, which channel is told,
//! and what a person is advised to do. Defaults follow the runbook (§5.4 alert thresholds, §10.1
//! `prometheus-rules.yaml`, §8.1 severities); the operator's `[alerts]` configuration replaces
//! them per alert name.

use super::Alert;
use crate::severity::Severity;
use std::collections::BTreeMap;

/// The mapping, as configured (or the runbook's defaults).
#[derive(Clone, Debug, PartialEq)]
pub struct AlertRules {
    /// The alert's `severity` label → the incident's severity; `None`: such alerts open nothing
    /// (they still join an incident they are attached to).
    pub severity_labels: BTreeMap<String, Option<Severity>>,
    /// Per alert name (`alertname` label), overriding the above.
    pub rules: BTreeMap<String, AlertRule>,
    /// The chat channel told when an alert opens an incident (a Slack channel id), if any.
    pub channel: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertRule {
    /// `Some(false)`: never opens an incident; `Some(true)`: opens one even without a mapped
    /// `severity` label (at `severity`, else P2).
    pub open: Option<bool>,
    pub severity: Option<Severity>,
    /// Told instead of the default channel.
    pub channel: Option<String>,
    pub suggestions: Vec<Suggestion>,
}

/// Advice for a person, when the alert's labels match `when`: a command to type (never run by
/// the bot) and/or words. `{{label}}` in either is replaced by the label's value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Suggestion {
    pub when: BTreeMap<String, String>,
    pub command: Option<String>,
    pub advice: Option<String>,
}

/// What to do with one alert.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// Opens an incident at this severity when nothing it belongs to is open.
    pub opens: Option<Severity>,
    pub channel: Option<String>,
    /// A command for a person to type, e.g. `/failover us-west-2`.
    pub command: Option<String>,
    pub advice: Option<String>,
}

impl Default for AlertRules {
    /// The runbook's alerts: `severity: critical` is P1, `warning` P2; `ErrorBudgetBurn` (the
    /// budget burning faster than the daily rate, §5.4) is P0; `HighErrorRate` in the primary
    /// region suggests failing over to the hot DR region (§6.3); replication lag advises checking
    /// the standby before any failover, and suggests no change.
    fn default() -> Self {
        let mut rules = BTreeMap::new();
        rules.insert(
            "ErrorBudgetBurn".to_string(),
            AlertRule {
                severity: Some(Severity::P0),
                suggestions: vec![Suggestion {
                    advice: Some(
                        "The error budget is burning faster than the daily rate (runbook §5.4): stop non-essential releases; if one is rolling out, consider `/erlmcp rollback`."
                            .into(),
                    ),
                    ..Suggestion::default()
                }],
                ..AlertRule::default()
            },
        );
        rules.insert(
            "HighErrorRate".to_string(),
            AlertRule {
                suggestions: vec![Suggestion {
                    when: BTreeMap::from([("region".to_string(), "us-east-1".to_string())]),
                    command: Some("/failover us-west-2".into()),
                    advice: Some(
                        "Errors in the primary region: if it does not recover, fail over to the hot DR region (runbook §6.3)."
                            .into(),
                    ),
                }],
                ..AlertRule::default()
            },
        );
        rules.insert(
            "DatabaseReplicationLag".to_string(),
            AlertRule {
                suggestions: vec![Suggestion {
                    advice: Some(
                        "Replication lag: a failover now could lose the last writes. Check `pg_stat_replication` on the primary before any `/failover` (runbook §6.3); no change is suggested."
                            .into(),
                    ),
                    ..Suggestion::default()
                }],
                ..AlertRule::default()
            },
        );
        rules.insert(
            "HighLatency".to_string(),
            AlertRule {
                suggestions: vec![Suggestion {
                    when: BTreeMap::from([("region".to_string(), "*".to_string())]),
                    command: Some("/erlmcp scale {{region}} <replicas>".into()),
                    advice: Some(
                        "P95 latency above 500 ms: check load; scaling out is runbook §7.2.".into(),
                    ),
                }],
                ..AlertRule::default()
            },
        );
        AlertRules {
            severity_labels: BTreeMap::from([
                ("critical".to_string(), Some(Severity::P1)),
                ("warning".to_string(), Some(Severity::P2)),
            ]),
            rules,
            channel: None,
        }
    }
}

/// A label value put into a suggested command must look like a region or a name: anything else
/// (spaces, markup, another command) drops the command, keeping only the advice.
fn safe_value(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

/// `{{label}}` replaced by the alert's labels; `None` if a label is missing or unsafe.
fn fill(template: &str, alert: &Alert) -> Option<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}")?;
        let name = after[..end].trim();
        let value = alert.labels.get(name)?;
        if !safe_value(value) {
            return None;
        }
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Some(out)
}

impl AlertRules {
    pub fn decide(&self, alert: &Alert) -> Decision {
        let rule = self.rules.get(alert.name());
        let by_label = alert
            .labels
            .get("severity")
            .and_then(|s| self.severity_labels.get(&s.to_ascii_lowercase()))
            .copied()
            .flatten();
        let opens = match rule.and_then(|r| r.open) {
            Some(false) => None,
            Some(true) => Some(
                rule.and_then(|r| r.severity)
                    .or(by_label)
                    .unwrap_or(Severity::P2),
            ),
            None => rule.and_then(|r| r.severity).or(by_label),
        };
        let matching = rule.and_then(|r| {
            r.suggestions.iter().find(|s| {
                s.when.iter().all(|(k, v)| match alert.labels.get(k) {
                    Some(actual) => v == "*" || actual == v,
                    None => false,
                })
            })
        });
        Decision {
            opens,
            channel: rule
                .and_then(|r| r.channel.clone())
                .or_else(|| self.channel.clone()),
            command: matching
                .and_then(|s| s.command.as_deref())
                .and_then(|c| fill(c, alert)),
            advice: matching
                .and_then(|s| s.advice.as_deref())
                .map(|a| fill(a, alert).unwrap_or_else(|| a.to_string())),
        }
    }

    /// Every suggested command names a playbook or command that exists: checked at start, so a
    /// typo in the configuration is said before an alert needs it.
    pub fn check(&self, known_command: &dyn Fn(&str) -> Result<(), String>) -> Result<(), String> {
        for (name, rule) in &self.rules {
            for s in &rule.suggestions {
                if let Some(c) = &s.command {
                    if !c.trim_start().starts_with('/') {
                        return Err(format!(
                            "[alerts.rules.{name}] suggests `{c}`: write it as a person types it in chat, starting with `/` (e.g. `/failover us-west-2`)"
                        ));
                    }
                    // Placeholders stand for values; check the command with a sample in each.
                    let sample = c
                        .replace("<replicas>", "3")
                        .split("{{")
                        .enumerate()
                        .map(|(i, part)| {
                            if i == 0 {
                                part.to_string()
                            } else {
                                match part.split_once("}}") {
                                    Some((_, rest)) => format!("us-east-1{rest}"),
                                    None => part.to_string(),
                                }
                            }
                        })
                        .collect::<String>();
                    known_command(&sample).map_err(|e| {
                        format!("[alerts.rules.{name}] suggests `{c}`, which is not a command: {e}")
                    })?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::AlertStatus;

    fn alert(labels: &[(&str, &str)]) -> Alert {
        Alert {
            status: AlertStatus::Firing,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: BTreeMap::new(),
            starts_at: chrono::Utc::now(),
            ends_at: None,
            generator_url: String::new(),
            fingerprint: "f".into(),
        }
    }

    #[test]
    fn runbook_defaults() {
        let r = AlertRules::default();
        let d = r.decide(&alert(&[
            ("alertname", "HighErrorRate"),
            ("severity", "critical"),
            ("region", "us-east-1"),
        ]));
        assert_eq!(d.opens, Some(Severity::P1));
        assert_eq!(d.command.as_deref(), Some("/failover us-west-2"));
        // In another region, no failover is suggested.
        let d = r.decide(&alert(&[
            ("alertname", "HighErrorRate"),
            ("severity", "critical"),
            ("region", "eu-west-1"),
        ]));
        assert_eq!(d.command, None);
        let d = r.decide(&alert(&[
            ("alertname", "ErrorBudgetBurn"),
            ("severity", "critical"),
        ]));
        assert_eq!(d.opens, Some(Severity::P0));
        let d = r.decide(&alert(&[
            ("alertname", "DatabaseReplicationLag"),
            ("severity", "warning"),
        ]));
        assert_eq!(d.opens, Some(Severity::P2));
        assert_eq!(d.command, None);
        assert!(d.advice.unwrap().contains("no change"));
        let d = r.decide(&alert(&[("alertname", "Whatever"), ("severity", "info")]));
        assert_eq!(d.opens, None);
    }

    #[test]
    fn label_values_fill_commands_only_when_safe() {
        let r = AlertRules::default();
        let d = r.decide(&alert(&[
            ("alertname", "HighLatency"),
            ("severity", "warning"),
            ("region", "ap-southeast-1"),
        ]));
        assert_eq!(
            d.command.as_deref(),
            Some("/erlmcp scale ap-southeast-1 <replicas>")
        );
        let d = r.decide(&alert(&[
            ("alertname", "HighLatency"),
            ("region", "x; /erlmcp approve"),
        ]));
        assert_eq!(d.command, None, "an unsafe label value drops the command");
        assert!(d.advice.is_some());
    }

    #[test]
    fn open_false_wins() {
        let mut r = AlertRules::default();
        r.rules.insert(
            "HighCPUUsage".into(),
            AlertRule {
                open: Some(false),
                ..AlertRule::default()
            },
        );
        let d = r.decide(&alert(&[
            ("alertname", "HighCPUUsage"),
            ("severity", "critical"),
        ]));
        assert_eq!(d.opens, None);
    }
}
