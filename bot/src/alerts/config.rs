//! The `[alerts]` section of the configuration file: which alerts open incidents, at which
//! severity, which channel is told, what is suggested. Given rules replace the runbook's default
//! rule of the same alert name; given severity labels replace that label's default.
//!
//! ```toml
//! [alerts]
//! channel = "C0INCIDENTS"
//! [alerts.severity_labels]
//! warning = "none"            # warnings open nothing (they still join an incident)
//! [alerts.rules.HighCPUUsage]
//! open = false
//! [alerts.rules.HighErrorRate]
//! severity = "p0"
//! suggest = [{ when = { region = "us-east-1" }, command = "/failover us-west-2" }]
//! ```

use erlmcp_handlers::alerts::rules::{AlertRule, AlertRules, Suggestion};
use erlmcp_handlers::severity::Severity;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsFile {
    pub channel: Option<String>,
    #[serde(default)]
    pub severity_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub rules: BTreeMap<String, AlertRuleFile>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRuleFile {
    pub open: Option<bool>,
    pub severity: Option<String>,
    pub channel: Option<String>,
    #[serde(default)]
    pub suggest: Vec<SuggestionFile>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuggestionFile {
    #[serde(default)]
    pub when: BTreeMap<String, String>,
    pub command: Option<String>,
    pub advice: Option<String>,
}

fn severity(value: &str, at: &str) -> Result<Option<Severity>, String> {
    if value.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    Severity::parse(value)
        .map(Some)
        .ok_or_else(|| format!("{at}: `{value}` is not a severity; use p0, p1, p2, p3 or none"))
}

impl AlertsFile {
    /// The runbook's rules with this file's on top.
    pub fn rules(&self) -> Result<AlertRules, String> {
        let mut rules = AlertRules::default();
        if let Some(c) = &self.channel {
            rules.channel = Some(c.clone());
        }
        for (label, value) in &self.severity_labels {
            let s = severity(value, &format!("[alerts.severity_labels] {label}"))?;
            rules.severity_labels.insert(label.to_ascii_lowercase(), s);
        }
        for (name, r) in &self.rules {
            let at = format!("[alerts.rules.{name}]");
            let sev = match &r.severity {
                Some(v) => match severity(v, &format!("{at} severity"))? {
                    Some(s) => Some(s),
                    None => {
                        return Err(format!(
                            "{at} severity = \"none\": a rule's severity is p0-p3; to make this alert open nothing, write `open = false` instead"
                        ));
                    }
                },
                None => None,
            };
            let suggestions = r
                .suggest
                .iter()
                .map(|s| Suggestion {
                    when: s.when.clone(),
                    command: s.command.clone(),
                    advice: s.advice.clone(),
                })
                .collect();
            rules.rules.insert(
                name.clone(),
                AlertRule {
                    open: r.open,
                    severity: sev,
                    channel: r.channel.clone(),
                    suggestions,
                },
            );
        }
        Ok(rules)
    }
}
