//! Alerts from Alertmanager: the webhook payload (version 4) parsed into closed types with
//! limits, and what the core makes of an alert (`rules.rs` maps it to a severity and a
//! suggestion; `engine/alerts.rs` opens or updates incidents).
//!
//! An alert never requests or approves a change: it can open an incident, add to its timeline,
//! and suggest a command for a person to type.

pub mod rules;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Alerts in one notification Alertmanager may send us; more is refused (400), not truncated.
pub const MAX_ALERTS: usize = 1000;
/// Labels (and annotations) per alert.
pub const MAX_LABELS: usize = 64;
/// Characters of one label name or value, annotation, URL, fingerprint or group key.
pub const MAX_VALUE_CHARS: usize = 2048;

/// One webhook notification: a group of alerts, as Alertmanager's webhook receiver sends it.
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    pub receiver: String,
    /// `firing` if any alert of the group fires.
    pub status: AlertStatus,
    /// Identifies the group (route and its `group_by` labels): alerts with one group key belong
    /// to one incident.
    pub group_key: String,
    pub alerts: Vec<Alert>,
    pub external_url: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub status: AlertStatus,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// When the condition began (Prometheus: when the rule first matched).
    pub starts_at: DateTime<Utc>,
    /// When it stopped, for a resolved alert.
    pub ends_at: Option<DateTime<Utc>>,
    pub generator_url: String,
    /// Alertmanager's hash of the label set: one alert across notifications.
    pub fingerprint: String,
}

impl Alert {
    pub fn name(&self) -> &str {
        self.labels
            .get("alertname")
            .map(String::as_str)
            .unwrap_or("unnamed")
    }

    /// The name as messages show it (`shown`).
    pub fn display_name(&self) -> String {
        shown(self.name(), 100)
    }

    /// `summary`, else `description`, else the name: one line, bounded (`shown`).
    pub fn summary(&self) -> String {
        shown(
            self.annotations
                .get("summary")
                .or_else(|| self.annotations.get("description"))
                .map(String::as_str)
                .unwrap_or_else(|| self.name()),
            SUMMARY_CHARS,
        )
    }

    /// `k=v, k=v` of the labels other than `alertname`, for people: one line, bounded.
    pub fn label_text(&self) -> String {
        let all = self
            .labels
            .iter()
            .filter(|(k, _)| k.as_str() != "alertname")
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ");
        shown(&all, LABEL_TEXT_CHARS)
    }
}

/// Characters of an alert's summary as messages and titles show it.
pub const SUMMARY_CHARS: usize = 300;
/// Characters of an alert's labels as messages show them.
pub const LABEL_TEXT_CHARS: usize = 1000;

/// Text from an alert as the bot shows it: on one line (line breaks and other control
/// characters become spaces, so it cannot start a line that looks like the bot's own), without
/// invisible format characters (right-to-left overrides and the like), at most `max` characters.
pub fn shown(text: &str, max: usize) -> String {
    let is_format = |c: char| matches!(c as u32, 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0xFEFF | 0x00AD);
    let mut out = String::with_capacity(text.len().min(max * 4));
    let mut n = 0;
    for c in text.chars() {
        if is_format(c) {
            continue;
        }
        if n == max {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
        n += 1;
    }
    out
}

/// Why a payload was refused: said to the sender with a 400.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayloadError(pub String);

impl std::fmt::Display for PayloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireNotification {
    version: Option<String>,
    #[serde(default)]
    receiver: String,
    status: String,
    #[serde(default)]
    group_key: String,
    alerts: Vec<WireAlert>,
    #[serde(default, rename = "externalURL")]
    external_url: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAlert {
    status: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    starts_at: String,
    #[serde(default)]
    ends_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    generator_url: String,
    #[serde(default)]
    fingerprint: String,
}

fn status(s: &str, what: &str) -> Result<AlertStatus, PayloadError> {
    match s {
        "firing" => Ok(AlertStatus::Firing),
        "resolved" => Ok(AlertStatus::Resolved),
        other => Err(PayloadError(format!(
            "{what} status `{}` is neither `firing` nor `resolved`",
            shorten(other)
        ))),
    }
}

fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out
}

fn time(s: &str, what: &str) -> Result<DateTime<Utc>, PayloadError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            PayloadError(format!(
                "{what} `{}` is not an RFC 3339 time: {e}",
                shorten(s)
            ))
        })
}

fn bounded(map: &BTreeMap<String, String>, what: &str) -> Result<(), PayloadError> {
    if map.len() > MAX_LABELS {
        return Err(PayloadError(format!(
            "{what} has {} entries; at most {MAX_LABELS} are accepted",
            map.len()
        )));
    }
    for (k, v) in map {
        if k.chars().count() > MAX_VALUE_CHARS || v.chars().count() > MAX_VALUE_CHARS {
            return Err(PayloadError(format!(
                "{what} `{}` is longer than {MAX_VALUE_CHARS} characters",
                shorten(k)
            )));
        }
    }
    Ok(())
}

fn short_field(v: &str, what: &str) -> Result<(), PayloadError> {
    if v.chars().count() > MAX_VALUE_CHARS {
        return Err(PayloadError(format!(
            "{what} is longer than {MAX_VALUE_CHARS} characters"
        )));
    }
    Ok(())
}

impl Notification {
    /// Parses Alertmanager's webhook body. Only version 4 is understood; anything unknown,
    /// oversized or malformed is refused with the reason (nothing is half-taken).
    pub fn parse(body: &[u8]) -> Result<Notification, PayloadError> {
        let wire: WireNotification = serde_json::from_slice(body).map_err(|e| {
            PayloadError(format!(
                "not an Alertmanager webhook payload (version 4): {e}"
            ))
        })?;
        match wire.version.as_deref() {
            Some("4") => {}
            Some(v) => {
                return Err(PayloadError(format!(
                    "payload version `{}` is not supported; this bot reads version 4 (Alertmanager 0.x webhook_configs)",
                    shorten(v)
                )));
            }
            None => {
                return Err(PayloadError(
                    "the payload has no `version`; Alertmanager's webhook sends version \"4\""
                        .into(),
                ));
            }
        }
        if wire.alerts.len() > MAX_ALERTS {
            return Err(PayloadError(format!(
                "{} alerts in one notification; at most {MAX_ALERTS} are accepted (set max_alerts in the webhook config)",
                wire.alerts.len()
            )));
        }
        short_field(&wire.group_key, "groupKey")?;
        if wire.group_key.is_empty() {
            // Alertmanager always sends one; without it every alert would open its own incident.
            return Err(PayloadError(
                "the payload has no `groupKey` (Alertmanager always sends one)".into(),
            ));
        }
        short_field(&wire.receiver, "receiver")?;
        short_field(&wire.external_url, "externalURL")?;
        let status = status(&wire.status, "the notification's")?;
        let mut alerts = Vec::with_capacity(wire.alerts.len());
        for (i, a) in wire.alerts.into_iter().enumerate() {
            let which = format!("alert {}", i + 1);
            bounded(&a.labels, &format!("{which}'s labels"))?;
            bounded(&a.annotations, &format!("{which}'s annotations"))?;
            short_field(&a.generator_url, &format!("{which}'s generatorURL"))?;
            short_field(&a.fingerprint, &format!("{which}'s fingerprint"))?;
            if a.fingerprint.is_empty() {
                return Err(PayloadError(format!(
                    "{which} has no fingerprint (Alertmanager always sends one)"
                )));
            }
            let ends_at = match a.ends_at.as_deref() {
                // Alertmanager sends the zero time for alerts that have not ended.
                None | Some("") | Some("0001-01-01T00:00:00Z") => None,
                Some(t) => Some(time(t, &format!("{which}'s endsAt"))?),
            };
            alerts.push(Alert {
                status: status_of(&a.status, &which)?,
                labels: a.labels,
                annotations: a.annotations,
                starts_at: time(&a.starts_at, &format!("{which}'s startsAt"))?,
                ends_at,
                generator_url: a.generator_url,
                // Alertmanager writes them in lowercase hex; people may not.
                fingerprint: a.fingerprint.to_ascii_lowercase(),
            });
        }
        Ok(Notification {
            receiver: wire.receiver,
            status,
            group_key: wire.group_key,
            alerts,
            external_url: wire.external_url,
        })
    }
}

fn status_of(s: &str, which: &str) -> Result<AlertStatus, PayloadError> {
    status(s, &format!("{which}'s"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
      "version": "4", "groupKey": "{}:{alertname=\"HighErrorRate\"}", "status": "firing",
      "receiver": "erlmcp-bot", "groupLabels": {"alertname": "HighErrorRate"},
      "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am:9093",
      "truncatedAlerts": 0,
      "alerts": [{"status": "firing", "labels": {"alertname": "HighErrorRate", "severity": "critical", "region": "us-east-1"},
        "annotations": {"summary": "High error rate detected"}, "startsAt": "2026-11-29T10:00:00.123Z",
        "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prom:9090/graph?g0.expr=x", "fingerprint": "a1b2c3d4e5f60718"}]
    }"#;

    #[test]
    fn a_version_4_payload_parses() {
        let n = Notification::parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(n.status, AlertStatus::Firing);
        assert_eq!(n.alerts.len(), 1);
        let a = &n.alerts[0];
        assert_eq!(a.name(), "HighErrorRate");
        assert_eq!(a.summary(), "High error rate detected");
        assert_eq!(a.ends_at, None);
        assert_eq!(a.label_text(), "region=us-east-1, severity=critical");
        assert_eq!(a.starts_at.to_rfc3339(), "2026-11-29T10:00:00.123+00:00");
        // Alertmanager spells these `generatorURL` and `externalURL`.
        assert_eq!(a.generator_url, "http://prom:9090/graph?g0.expr=x");
        assert_eq!(n.external_url, "http://am:9093");
    }

    #[test]
    fn malformed_payloads_are_refused_with_the_reason() {
        let cases: Vec<(String, &str)> = vec![
            ("{".into(), "not an Alertmanager webhook payload"),
            (
                SAMPLE.replace("\"4\"", "\"5\""),
                "version `5` is not supported",
            ),
            (
                SAMPLE.replace("\"version\": \"4\",", ""),
                "has no `version`",
            ),
            (
                SAMPLE.replace(
                    "\"status\": \"firing\", \"labels\"",
                    "\"status\": \"burning\", \"labels\"",
                ),
                "alert 1's status `burning`",
            ),
            (
                SAMPLE.replace("2026-11-29T10:00:00.123Z", "yesterday"),
                "alert 1's startsAt `yesterday` is not an RFC 3339 time",
            ),
            (
                SAMPLE.replace("a1b2c3d4e5f60718", ""),
                "alert 1 has no fingerprint",
            ),
        ];
        for (body, expected) in cases {
            let e = Notification::parse(body.as_bytes()).unwrap_err();
            assert!(e.0.contains(expected), "{e} (expected {expected})");
        }
    }

    #[test]
    fn huge_label_sets_and_alert_counts_are_refused() {
        let labels: Vec<String> = (0..65).map(|i| format!("\"l{i}\": \"v\"")).collect();
        let body = SAMPLE.replace(
            "\"severity\": \"critical\",",
            &format!("{},", labels.join(",")),
        );
        let e = Notification::parse(body.as_bytes()).unwrap_err();
        assert!(e.0.contains("at most 64"), "{e}");
        let long = SAMPLE.replace("us-east-1", &"x".repeat(MAX_VALUE_CHARS + 1));
        let e = Notification::parse(long.as_bytes()).unwrap_err();
        assert!(e.0.contains("longer than"), "{e}");
        let one = r#"{"status":"firing","labels":{"alertname":"A"},"startsAt":"2026-11-29T10:00:00Z","fingerprint":"f"}"#;
        let many = format!(
            r#"{{"version":"4","status":"firing","alerts":[{}]}}"#,
            vec![one; MAX_ALERTS + 1].join(",")
        );
        let e = Notification::parse(many.as_bytes()).unwrap_err();
        assert!(e.0.contains("at most 1000"), "{e}");
    }
}
