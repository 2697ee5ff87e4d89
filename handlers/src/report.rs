//! The monthly SLA report (runbook §5.5), filled from the incidents the bot recorded: incident
//! counts, downtime from P0 incidents, the error budget it consumed, and response and resolution
//! times per severity as medians and percentiles (never means), with the share of targets met.
//! Availability, latency and error rate come from monitoring, so they are left for people to fill.

use crate::incident::Incident;
use crate::severity::{Severity, human_duration};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use std::fmt::Write;

/// Runbook §5.1: 99.95% monthly availability, i.e. 21.6 minutes of downtime in 30 days.
pub const AVAILABILITY_SLO: f64 = 0.9995;

/// The first day of a month and of the next.
pub fn month_bounds(year: i32, month: u32) -> Option<(NaiveDate, NaiveDate)> {
    let start = NaiveDate::from_ymd_opt(year, month, 1)?;
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    Some((start, next))
}

/// Parses `2026-11`.
pub fn parse_month(text: &str) -> Option<(i32, u32)> {
    let (y, m) = text.trim().split_once('-')?;
    let (y, m) = (y.parse().ok()?, m.parse().ok()?);
    month_bounds(y, m).map(|_| (y, m))
}

/// Nearest-rank percentile of sorted durations.
fn pct(sorted: &[Duration], p: usize) -> Duration {
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn clock_table(
    o: &mut String,
    title: &str,
    incidents: &[&Incident],
    pick: impl Fn(&Incident) -> Option<Duration>,
    target: impl Fn(Severity) -> Duration,
) {
    let _ = writeln!(
        o,
        "\n### {title}\n\n| Severity | Incidents | p50 | p90 | Max | Target | Met |\n|---|---|---|---|---|---|---|"
    );
    for s in Severity::ALL {
        let mut d: Vec<Duration> = incidents
            .iter()
            .filter(|i| i.severity == s)
            .filter_map(|i| pick(i))
            .collect();
        if d.is_empty() {
            continue;
        }
        d.sort();
        let met = d.iter().filter(|x| **x <= target(s)).count();
        let _ = writeln!(
            o,
            "| {s} | {} | {} | {} | {} | {} | {met}/{} ({:.0}%) |",
            d.len(),
            human_duration(pct(&d, 50)),
            human_duration(pct(&d, 90)),
            human_duration(d[d.len() - 1]),
            human_duration(target(s)),
            d.len(),
            100.0 * met as f64 / d.len() as f64
        );
    }
}

/// `detected`: for incidents with alerts, when the condition began (earliest `startsAt`).
pub fn sla_report(
    all: &[Incident],
    detected: &std::collections::BTreeMap<crate::ids::IncidentId, DateTime<Utc>>,
    year: i32,
    month: u32,
    generated: DateTime<Utc>,
) -> String {
    let Some((start, next)) = month_bounds(year, month) else {
        return format!("{year}-{month:02} is not a month");
    };
    if start > generated.date_naive() {
        return format!(
            "# erlmcp SLA Report - {}\n\nThis month has not begun yet ({} UTC now): there is nothing to report.\n",
            start.format("%B %Y"),
            generated.format("%Y-%m-%d %H:%M")
        );
    }
    let in_month: Vec<&Incident> = all
        .iter()
        .filter(|i| i.declared_at.date_naive() >= start && i.declared_at.date_naive() < next)
        .collect();
    let (drills, real): (Vec<&Incident>, Vec<&Incident>) =
        in_month.into_iter().partition(|i| i.drill);
    let minutes_in_month = (next - start).num_days() as f64 * 24.0 * 60.0;
    let budget = minutes_in_month * (1.0 - AVAILABILITY_SLO);
    // A P0 is a complete outage: its downtime runs from detection (when an alert says the
    // condition began, if earlier than the declaration) or else declaration, to mitigation (or
    // now, if open).
    // The postmortem's rule: a `startsAt` after the declaration or more than
    // `DETECTION_LOOKBACK` before it is not believed (a clock or rule gone wrong would otherwise
    // count years of downtime); the declaration counts instead.
    let start_of = |i: &Incident| {
        detected
            .get(&i.id)
            .copied()
            .filter(|d| {
                *d < i.declared_at && i.declared_at - *d <= crate::postmortem::DETECTION_LOOKBACK
            })
            .unwrap_or(i.declared_at)
    };
    let from_detection = real
        .iter()
        .filter(|i| i.severity == Severity::P0 && start_of(i) != i.declared_at)
        .count();
    let downtime: f64 = real
        .iter()
        .filter(|i| i.severity == Severity::P0)
        .map(|i| {
            (i.mitigated_at.or(i.resolved_at).unwrap_or(generated) - start_of(i)).num_seconds()
                as f64
                / 60.0
        })
        .sum::<f64>()
        // An empty sum is -0.0, which would print as "-0.0 minutes"; `max` may keep -0.0
        // (it compares equal to 0.0), adding 0.0 never does.
        .max(0.0)
        + 0.0;
    let availability = 1.0 - downtime / minutes_in_month;
    let count = |s: Severity| real.iter().filter(|i| i.severity == s).count();

    let mut o = String::new();
    let _ = writeln!(o, "# erlmcp SLA Report - {}\n", start.format("%B %Y"));
    let _ = writeln!(
        o,
        "_Generated by erlmcp-bot on {} from its incident records ({} to {}). Availability from monitoring, latency and error rate (runbook §5.3) are not known to the bot: fill them in._\n",
        generated.format("%Y-%m-%d %H:%M UTC"),
        start,
        next.pred_opt().unwrap_or(next)
    );
    let _ = writeln!(o, "## Executive Summary\n");
    let _ = writeln!(
        o,
        "- Incidents: {} (P0 {}, P1 {}, P2 {}, P3 {}); drills, not counted: {}",
        real.len(),
        count(Severity::P0),
        count(Severity::P1),
        count(Severity::P2),
        count(Severity::P3),
        drills.len()
    );
    let p0s = count(Severity::P0);
    let _ = writeln!(
        o,
        "- Total downtime (P0 incidents, to mitigated; counted from detection by an alert for {from_detection} of {p0s}, from declaration for {}): {:.1} minutes",
        p0s - from_detection,
        downtime
    );
    let _ = writeln!(
        o,
        "- Availability estimated from that downtime: {:.3}% (SLO {:.2}%: {})",
        availability * 100.0,
        AVAILABILITY_SLO * 100.0,
        if availability >= AVAILABILITY_SLO {
            "Met"
        } else {
            "Missed"
        }
    );
    let _ = writeln!(o, "\n## Error Budget Analysis\n");
    let _ = writeln!(o, "- Starting error budget: {budget:.1} minutes");
    let _ = writeln!(
        o,
        "- Consumed: {downtime:.1} minutes ({:.0}%)",
        100.0 * downtime / budget
    );
    let _ = writeln!(
        o,
        "- Remaining: {:.1} minutes",
        (budget - downtime).max(0.0)
    );

    let _ = writeln!(o, "\n## Incident Response (runbook §8.1 targets)");
    clock_table(
        &mut o,
        "Time to acknowledge",
        &real,
        |i| i.acknowledged_at.map(|t| t - i.declared_at),
        |s| s.response_target(),
    );
    clock_table(
        &mut o,
        "Time to resolve",
        &real,
        |i| i.resolved_at.map(|t| t - i.declared_at),
        |s| s.resolution_target(),
    );
    let open = real.iter().filter(|i| i.resolved_at.is_none()).count();
    if open > 0 {
        let _ = writeln!(
            o,
            "\n{open} incident(s) of the month are not resolved yet and are not in the resolution figures."
        );
    }

    let _ = writeln!(
        o,
        "\n## Incidents\n\n| Date | Incident | Severity | Title | Duration | Impact | Root Cause |\n|---|---|---|---|---|---|---|"
    );
    for i in &real {
        let duration = match i.resolved_at {
            Some(r) => human_duration(r - i.declared_at),
            None => "open".to_string(),
        };
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {duration} | {} | _see the postmortem_ |",
            i.declared_at.format("%Y-%m-%d"),
            i.id,
            i.severity,
            crate::markdown::text(&i.title),
            // User text inside a table cell: escaped, and on one line.
            i.summary
                .as_deref()
                .map(|s| crate::markdown::text(&s.replace(['\n', '\r'], " ")))
                .unwrap_or_else(|| "_to be written_".to_string())
        );
    }
    let _ = writeln!(
        o,
        "\n## Trends\n\n_To be written: compare with the previous months' reports._"
    );
    let _ = writeln!(
        o,
        "\n## Actions\n\n_To be written from the postmortems' action items._"
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::IncidentId;
    use crate::incident::IncidentStatus;
    use chrono::TimeZone;

    #[test]
    fn an_empty_month_has_no_negative_zero() {
        let now = Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap();
        let report = sla_report(&[], &Default::default(), 2026, 10, now);
        assert!(!report.contains("-0.0"), "{report}");
        assert!(report.contains("0.0 minutes"), "{report}");
    }

    fn inc(
        n: i64,
        sev: Severity,
        day: u32,
        ack_min: i64,
        resolve_min: Option<i64>,
        drill: bool,
    ) -> Incident {
        let at = Utc.with_ymd_and_hms(2026, 11, day, 10, 0, 0).unwrap();
        Incident {
            id: IncidentId::new(format!("INC-202611{day:02}-{n}")),
            title: format!("incident {n}"),
            severity: sev,
            status: if resolve_min.is_some() {
                IncidentStatus::Resolved
            } else {
                IncidentStatus::Acknowledged
            },
            channel: "c".into(),
            drill,
            declared_by: "alice".into(),
            declared_at: at,
            acknowledged_at: Some(at + Duration::minutes(ack_min)),
            acknowledged_by: Some("bob".into()),
            mitigated_at: resolve_min.map(|m| at + Duration::minutes(m / 2)),
            resolved_at: resolve_min.map(|m| at + Duration::minutes(m)),
            closed_at: None,
            summary: Some(format!("summary {n}")),
            roles: Default::default(),
            version: 1,
        }
    }

    #[test]
    fn figures_are_medians_and_percentiles_with_targets_met() {
        let all = vec![
            inc(1, Severity::P0, 3, 2, Some(40), false),
            inc(2, Severity::P0, 9, 4, Some(20), false),
            inc(3, Severity::P0, 15, 9, Some(90), false),
            inc(4, Severity::P1, 20, 10, None, false),
            inc(5, Severity::P0, 21, 1, Some(10), true),
            inc(6, Severity::P2, 2, 1, Some(10), false),
        ];
        let mut oct = inc(7, Severity::P0, 1, 1, Some(10), false);
        oct.declared_at = Utc.with_ymd_and_hms(2026, 10, 31, 23, 0, 0).unwrap();
        let mut with_october = all.clone();
        with_october.push(oct);
        let r = sla_report(
            &with_october,
            &Default::default(),
            2026,
            11,
            Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap(),
        );
        assert!(r.starts_with("# erlmcp SLA Report - November 2026"), "{r}");
        assert!(
            r.contains("- Incidents: 5 (P0 3, P1 1, P2 1, P3 0); drills, not counted: 1"),
            "{r}"
        );
        // Downtime: P0s mitigated after 20, 10 and 45 minutes.
        assert!(
            r.contains("- Total downtime (P0 incidents, to mitigated; counted from detection by an alert for 0 of 3, from declaration for 3): 75.0 minutes"),
            "{r}"
        );
        // An alert saw the first P0 begin 5 minutes before it was declared; a "detection"
        // after the declaration never shortens the downtime, and one years before is not
        // believed.
        let detected = std::collections::BTreeMap::from([
            (
                IncidentId::new("INC-20261103-1"),
                Utc.with_ymd_and_hms(2026, 11, 3, 9, 55, 0).unwrap(),
            ),
            (
                IncidentId::new("INC-20261109-2"),
                Utc.with_ymd_and_hms(2026, 11, 9, 10, 5, 0).unwrap(),
            ),
            (
                IncidentId::new("INC-20261115-3"),
                Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap(),
            ),
        ]);
        let r2 = sla_report(
            &all,
            &detected,
            2026,
            11,
            Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap(),
        );
        assert!(
            r2.contains("counted from detection by an alert for 1 of 3, from declaration for 2): 80.0 minutes"),
            "{r2}"
        );
        assert!(r.contains("- Starting error budget: 21.6 minutes"), "{r}");
        assert!(r.contains("- Consumed: 75.0 minutes (347%)"), "{r}");
        assert!(
            r.contains("Availability estimated from that downtime: 99.826% (SLO 99.95%: Missed)"),
            "{r}"
        );
        assert!(
            r.contains("| P0 | 3 | 4m 00s | 9m 00s | 9m 00s | 5m 00s | 2/3 (67%) |"),
            "{r}"
        );
        assert!(
            r.contains("| P0 | 3 | 40m 00s | 1h 30m | 1h 30m | 1h 00m | 2/3 (67%) |"),
            "{r}"
        );
        assert!(
            r.contains("1 incident(s) of the month are not resolved yet"),
            "{r}"
        );
        assert!(
            r.contains("| 2026-11-03 | INC-20261103-1 | P0 | incident 1 | 40m 00s | summary 1 |"),
            "{r}"
        );
        assert!(
            !r.contains("INC-20261101-7"),
            "October's incident is not in November's report"
        );
    }

    #[test]
    fn months_parse_strictly() {
        assert_eq!(parse_month("2026-11"), Some((2026, 11)));
        assert_eq!(parse_month("2026-13"), None);
        assert_eq!(parse_month("november"), None);
        assert_eq!(
            month_bounds(2026, 12).unwrap().1,
            NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()
        );
    }
}
