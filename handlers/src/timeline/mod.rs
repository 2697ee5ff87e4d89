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
    /// What the entry records about requests, approvals, runs and steps, in structured form, so
    /// `verify` can hold those tables to the chain.
    pub facts: Vec<crate::facts::Fact>,
}

impl Draft {
    /// The same draft recording these facts too.
    pub fn with(mut self, facts: impl IntoIterator<Item = crate::facts::Fact>) -> Self {
        self.facts.extend(facts);
        self
    }
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
    pub facts: Vec<crate::facts::Fact>,
    /// The keyed MAC (see `TimelineKey`), when the entry was written with a key.
    pub mac: Option<String>,
}

/// Timestamps are kept to the microsecond: both SQLite (text) and PostgreSQL (timestamptz)
/// store that exactly, so the hash computed before storing matches the one recomputed after.
pub fn normalise_time(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

/// SHA-256 over the previous hash and this entry's content, as a JSON array so that no
/// separator inside a field can make two different entries hash alike. Facts, when there are
/// any, are part of it (entries from before facts were kept hash as they always did).
pub fn entry_hash(incident: &IncidentId, seq: i64, draft: &Draft, prev_hash: &str) -> String {
    let mut canonical = vec![
        serde_json::json!(incident.as_str()),
        serde_json::json!(seq),
        serde_json::json!(
            normalise_time(draft.at).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        ),
        serde_json::json!(draft.actor),
        serde_json::json!(draft.actor_id),
        serde_json::json!(draft.source.as_str()),
        serde_json::json!(draft.kind),
        serde_json::json!(draft.text),
        serde_json::json!(prev_hash),
    ];
    if !draft.facts.is_empty() {
        canonical.push(serde_json::to_value(&draft.facts).unwrap_or_default());
    }
    hex::encode(Sha256::digest(
        serde_json::Value::Array(canonical).to_string().as_bytes(),
    ))
}

/// The entry an entry follows: its position, hash and MAC.
#[derive(Clone, Copy, Debug)]
pub struct Prev<'a> {
    pub seq: i64,
    pub hash: &'a str,
    pub mac: Option<&'a str>,
}

/// Seals a draft as the entry after `prev` (or the first one); with a key, MACs it too.
pub fn seal(
    incident: &IncidentId,
    prev: Option<Prev<'_>>,
    draft: Draft,
    key: Option<&TimelineKey>,
) -> Entry {
    let (seq, prev_hash) = match prev {
        Some(p) => (p.seq + 1, p.hash.to_string()),
        None => (1, GENESIS_HASH.to_string()),
    };
    let hash = entry_hash(incident, seq, &draft, &prev_hash);
    let mac = key.map(|k| {
        let chained = prev.and_then(|p| p.mac).unwrap_or(&prev_hash);
        k.entry_mac(chained, &hash)
    });
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
        facts: draft.facts,
        mac,
    }
}

impl Entry {
    /// The draft this entry was sealed from (to recompute its hash).
    pub fn draft(&self) -> Draft {
        Draft {
            at: self.at,
            actor: self.actor.clone(),
            actor_id: self.actor_id.clone(),
            source: self.source,
            kind: self.kind.clone(),
            text: self.text.clone(),
            facts: self.facts.clone(),
        }
    }
}

mod key;
mod verify;

pub use key::TimelineKey;
pub use verify::{Break, Head, Keying, verify, verify_row};
