//! The append-only, hash-chained incident timeline. Each entry's hash covers its own content
//! and the previous entry's hash, so an edited, deleted or reordered row breaks the chain.

use crate::ids::IncidentId;
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// Where a timeline entry came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Console,
    Slack,
    Discord,
    System,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Console => "console",
            Source::Slack => "slack",
            Source::Discord => "discord",
            Source::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Source::Console,
            Source::Slack,
            Source::Discord,
            Source::System,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The hash that precedes the first entry of every incident.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An entry before it is sealed into the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    pub at: DateTime<Utc>,
    /// Display name of who did it (`system` for the bot itself).
    pub actor: String,
    /// Stable id of who did it (a Slack or Discord user id; the login name on the console).
    pub actor_id: String,
    pub source: Source,
    /// What happened, as a short machine word: `declared`, `note`, `approval.granted`, `step.done`, ...
    pub kind: String,
    pub text: String,
}

/// A stored timeline entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub incident: IncidentId,
    /// 1, 2, 3, ... per incident, without gaps.
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub actor_id: String,
    pub source: Source,
    pub kind: String,
    pub text: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Timestamps are kept to the microsecond: both SQLite (text) and PostgreSQL (timestamptz)
/// store that exactly, so the hash computed before storing matches the one recomputed after.
pub fn normalise_time(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

/// SHA-256 over the previous hash and this entry's content, as a JSON array so that no
/// separator inside a field can make two different entries hash alike.
pub fn entry_hash(incident: &IncidentId, seq: i64, draft: &Draft, prev_hash: &str) -> String {
    let canonical = serde_json::json!([
        incident.as_str(),
        seq,
        normalise_time(draft.at).to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        draft.actor,
        draft.actor_id,
        draft.source.as_str(),
        draft.kind,
        draft.text,
        prev_hash,
    ]);
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// Seals a draft as the entry after `prev` (or the first one).
pub fn seal(incident: &IncidentId, prev: Option<(i64, &str)>, draft: Draft) -> Entry {
    let (seq, prev_hash) = match prev {
        Some((s, h)) => (s + 1, h.to_string()),
        None => (1, GENESIS_HASH.to_string()),
    };
    let hash = entry_hash(incident, seq, &draft, &prev_hash);
    Entry {
        incident: incident.clone(),
        seq,
        at: normalise_time(draft.at),
        actor: draft.actor,
        actor_id: draft.actor_id,
        source: draft.source,
        kind: draft.kind,
        text: draft.text,
        prev_hash,
        hash,
    }
}

/// What is wrong with a stored chain, naming the row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Break {
    /// The row's content no longer matches its hash: it was edited.
    Edited {
        seq: i64,
    },
    /// The row does not follow the one before it: a row before it was deleted, or rows were reordered.
    Unlinked {
        seq: i64,
        expected_prev: String,
    },
    /// Sequence numbers jump: rows were deleted.
    Gap {
        after: i64,
        next: i64,
    },
    /// The incident records more entries, or a different last hash, than the table holds: rows were cut off the end.
    Truncated {
        stored: i64,
        expected: i64,
    },
    HeadMismatch {
        seq: i64,
    },
    /// The incident's row says something its (intact) timeline does not: the row was edited.
    Row {
        field: &'static str,
        row: String,
        timeline: String,
    },
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Break::Edited { seq } => write!(
                f,
                "entry #{seq} was modified: its content does not match its hash"
            ),
            Break::Unlinked { seq, expected_prev } => write!(
                f,
                "entry #{seq} does not follow the entry before it (expected previous hash {}…): a row was deleted, inserted or reordered",
                &expected_prev[..12.min(expected_prev.len())]
            ),
            Break::Gap { after, next } => write!(
                f,
                "entries #{} to #{} are missing (deleted)",
                after + 1,
                next - 1
            ),
            Break::Truncated { stored, expected } => {
                write!(
                    f,
                    "the incident records {expected} entries but only {stored} are stored: entries after #{stored} were deleted"
                )
            }
            Break::HeadMismatch { seq } => write!(
                f,
                "entry #{seq} is not the last entry the incident recorded: the end of the timeline was replaced"
            ),
            Break::Row {
                field,
                row,
                timeline,
            } => write!(
                f,
                "the incident row's {field} is {row} but its timeline says {timeline}: the incidents table was edited"
            ),
        }
    }
}

/// The incident's own record of how long its chain is and how it ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub len: i64,
    pub hash: String,
}

/// Checks a chain read in `seq` order. Returns every break found, first one first.
pub fn verify(entries: &[Entry], head: Option<&Head>) -> Vec<Break> {
    let mut breaks = Vec::new();
    let mut prev_seq = 0;
    let mut prev_hash = GENESIS_HASH.to_string();
    for e in entries {
        if e.seq != prev_seq + 1 {
            breaks.push(Break::Gap {
                after: prev_seq,
                next: e.seq,
            });
        }
        let draft = Draft {
            at: e.at,
            actor: e.actor.clone(),
            actor_id: e.actor_id.clone(),
            source: e.source,
            kind: e.kind.clone(),
            text: e.text.clone(),
        };
        if entry_hash(&e.incident, e.seq, &draft, &e.prev_hash) != e.hash {
            breaks.push(Break::Edited { seq: e.seq });
        } else if e.prev_hash != prev_hash && e.seq == prev_seq + 1 {
            breaks.push(Break::Unlinked {
                seq: e.seq,
                expected_prev: prev_hash.clone(),
            });
        } else if e.prev_hash != prev_hash {
            // Already reported as a gap; a gap with an intact link cannot happen, so say nothing more.
        }
        prev_seq = e.seq;
        prev_hash = e.hash.clone();
    }
    if let Some(head) = head {
        let stored = entries.len() as i64;
        if stored < head.len {
            breaks.push(Break::Truncated {
                stored,
                expected: head.len,
            });
        } else if let Some(last) = entries.last()
            && last.hash != head.hash
            && breaks.is_empty()
        {
            breaks.push(Break::HeadMismatch { seq: last.seq });
        }
    }
    breaks
}

/// Checks the incident's row (state, severity, key moments) against what an intact timeline recorded.
pub fn verify_row(inc: &crate::incident::Incident, entries: &[Entry]) -> Vec<Break> {
    use crate::incident::IncidentStatus as S;
    let first = |kind: &str| entries.iter().find(|e| e.kind == kind).map(|e| e.at);
    let show = |t: Option<DateTime<Utc>>| {
        t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            .unwrap_or_else(|| "never".into())
    };
    let mut out = Vec::new();
    let moments = [
        ("declared_at", Some(inc.declared_at), first("declared")),
        (
            "acknowledged_at",
            inc.acknowledged_at,
            first("acknowledged"),
        ),
        ("mitigated_at", inc.mitigated_at, first("mitigated")),
        ("resolved_at", inc.resolved_at, first("resolved")),
        ("closed_at", inc.closed_at, first("closed")),
    ];
    for (field, row, recorded) in moments {
        if row.map(normalise_time) != recorded {
            out.push(Break::Row {
                field,
                row: show(row),
                timeline: show(recorded),
            });
        }
    }
    let status = if first("closed").is_some() {
        S::Closed
    } else if first("resolved").is_some() {
        S::Resolved
    } else if first("mitigated").is_some() {
        S::Mitigated
    } else if first("acknowledged").is_some() {
        S::Acknowledged
    } else {
        S::Declared
    };
    if inc.status != status {
        out.push(Break::Row {
            field: "status",
            row: inc.status.to_string(),
            timeline: status.to_string(),
        });
    }
    // "Severity P0 -> P1 (...)" entries, else "Declared P0 (...)".
    let severity = entries
        .iter()
        .rev()
        .find(|e| e.kind == "severity")
        .and_then(|e| e.text.split("-> ").nth(1))
        .or_else(|| {
            entries
                .iter()
                .find(|e| e.kind == "declared")
                .and_then(|e| e.text.strip_prefix("Declared "))
        })
        .and_then(|t| crate::severity::Severity::parse(t.get(..2).unwrap_or("")));
    if let Some(sev) = severity
        && sev != inc.severity
    {
        out.push(Break::Row {
            field: "severity",
            row: inc.severity.to_string(),
            timeline: sev.to_string(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn chain(n: i64) -> Vec<Entry> {
        let id = IncidentId::new("INC-20261128-1");
        let mut out: Vec<Entry> = Vec::new();
        for i in 0..n {
            let draft = Draft {
                at: Utc.with_ymd_and_hms(2026, 11, 28, 14, 0, 0).unwrap()
                    + chrono::Duration::microseconds(1_000_001 * i),
                actor: "alice".into(),
                actor_id: "U1".into(),
                source: Source::Console,
                kind: "note".into(),
                text: format!("note {i}"),
            };
            let prev = out.last().map(|e| (e.seq, e.hash.as_str()));
            let e = seal(&id, prev, draft);
            out.push(e);
        }
        out
    }

    fn head(c: &[Entry]) -> Head {
        Head {
            len: c.len() as i64,
            hash: c.last().unwrap().hash.clone(),
        }
    }

    #[test]
    fn intact_chain_verifies() {
        let c = chain(5);
        assert_eq!(verify(&c, Some(&head(&c))), vec![]);
    }

    #[test]
    fn edited_row_is_named() {
        let mut c = chain(5);
        let h = head(&c);
        c[2].text = "nothing happened here".into();
        assert_eq!(verify(&c, Some(&h)), vec![Break::Edited { seq: 3 }]);
    }

    #[test]
    fn edited_timestamp_is_caught() {
        let mut c = chain(3);
        let h = head(&c);
        c[0].at += chrono::Duration::seconds(1);
        assert_eq!(verify(&c, Some(&h)), vec![Break::Edited { seq: 1 }]);
    }

    #[test]
    fn deleted_row_is_a_gap_and_an_unlinked_successor() {
        let mut c = chain(5);
        let h = head(&c);
        c.remove(1);
        let breaks = verify(&c, Some(&h));
        assert_eq!(breaks[0], Break::Gap { after: 1, next: 3 });
        assert!(breaks.iter().any(|b| matches!(b, Break::Truncated { .. })));
    }

    #[test]
    fn reordered_rows_are_caught() {
        let mut c = chain(4);
        let h = head(&c);
        // Swap the content of rows 2 and 3 but keep their sequence numbers, as an attacker renumbering would.
        let (a, b) = (c[1].clone(), c[2].clone());
        c[1] = Entry { seq: 2, ..b };
        c[2] = Entry { seq: 3, ..a };
        assert!(!verify(&c, Some(&h)).is_empty());
    }

    #[test]
    fn removing_the_last_row_is_caught_by_the_head() {
        let mut c = chain(4);
        let h = head(&c);
        c.pop();
        assert_eq!(
            verify(&c, Some(&h)),
            vec![Break::Truncated {
                stored: 3,
                expected: 4
            }]
        );
    }

    #[test]
    fn hash_is_stable_across_subsecond_precision() {
        let c = chain(2);
        let mut again = c[1].clone();
        again.at = normalise_time(again.at);
        assert_eq!(verify(&[c[0].clone(), again], None), vec![]);
    }
}
