//! Severity levels and their response/resolution targets, as one table (runbook §8.1).

use chrono::Duration;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An incident severity, P0 (critical) to P3 (low).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    P0,
    P1,
    P2,
    P3,
}

/// One row of the runbook's severity table.
#[derive(Debug)]
pub struct SeverityLevel {
    pub severity: Severity,
    pub name: &'static str,
    /// Time to acknowledge.
    pub response_minutes: i64,
    /// Time to resolve.
    pub resolution_minutes: i64,
    pub example: &'static str,
}

/// Runbook §8.1 "Severity Levels". The only place these numbers live.
pub const SEVERITY_TABLE: [SeverityLevel; 4] = [
    SeverityLevel {
        severity: Severity::P0,
        name: "Critical",
        response_minutes: 5,
        resolution_minutes: 60,
        example: "Complete outage",
    },
    SeverityLevel {
        severity: Severity::P1,
        name: "High",
        response_minutes: 15,
        resolution_minutes: 4 * 60,
        example: "Major degradation",
    },
    SeverityLevel {
        severity: Severity::P2,
        name: "Medium",
        response_minutes: 60,
        resolution_minutes: 24 * 60,
        example: "Partial degradation",
    },
    SeverityLevel {
        severity: Severity::P3,
        name: "Low",
        response_minutes: 24 * 60,
        resolution_minutes: 7 * 24 * 60,
        example: "Minor issues",
    },
];

impl Severity {
    pub const ALL: [Severity; 4] = [Severity::P0, Severity::P1, Severity::P2, Severity::P3];

    pub fn level(self) -> &'static SeverityLevel {
        // The table is ordered like the enum; the index cannot be out of range.
        &SEVERITY_TABLE[self as usize]
    }

    pub fn response_target(self) -> Duration {
        Duration::minutes(self.level().response_minutes)
    }

    pub fn resolution_target(self) -> Duration {
        Duration::minutes(self.level().resolution_minutes)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::P0 => "p0",
            Severity::P1 => "p1",
            Severity::P2 => "p2",
            Severity::P3 => "p3",
        }
    }

    /// Parses `p0`..`p3` (any case).
    pub fn parse(text: &str) -> Option<Severity> {
        match text.to_ascii_lowercase().as_str() {
            "p0" => Some(Severity::P0),
            "p1" => Some(Severity::P1),
            "p2" => Some(Severity::P2),
            "p3" => Some(Severity::P3),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str().to_ascii_uppercase())
    }
}

/// Formats a duration as `1h 02m`, `4m 05s`, `2d 3h`, for people.
pub fn human_duration(d: Duration) -> String {
    let total = d.num_seconds();
    let (sign, total) = if total < 0 {
        ("-", -total)
    } else {
        ("", total)
    };
    let (days, hours, minutes, seconds) = (
        total / 86_400,
        total / 3600 % 24,
        total / 60 % 60,
        total % 60,
    );
    let body = if days > 0 {
        format!("{days}d {hours}h {minutes:02}m")
    } else if hours > 0 {
        format!("{hours}h {minutes:02}m")
    } else if minutes > 0 {
        format!("{minutes}m {seconds:02}s")
    } else {
        format!("{seconds}s")
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_runbook_section_8_1() {
        let rows: Vec<(Severity, i64, i64)> = SEVERITY_TABLE
            .iter()
            .map(|l| (l.severity, l.response_minutes, l.resolution_minutes))
            .collect();
        assert_eq!(
            rows,
            vec![
                (Severity::P0, 5, 60),
                (Severity::P1, 15, 240),
                (Severity::P2, 60, 1440),
                (Severity::P3, 1440, 10080)
            ]
        );
        for s in Severity::ALL {
            assert_eq!(s.level().severity, s);
        }
    }

    #[test]
    fn durations_read_like_a_person_wrote_them() {
        assert_eq!(human_duration(Duration::seconds(42)), "42s");
        assert_eq!(human_duration(Duration::seconds(245)), "4m 05s");
        assert_eq!(human_duration(Duration::minutes(62)), "1h 02m");
        assert_eq!(human_duration(Duration::minutes(60 * 27 + 3)), "1d 3h 03m");
    }
}
