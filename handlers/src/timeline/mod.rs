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
    /// Alertmanager, through the alert webhook.
    Alert,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Console => "console",
            Source::Slack => "slack",
            Source::Discord => "discord",
            Source::System => "system",
            Source::Alert => "alert",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Source::Console,
            Source::Slack,
            Source::Discord,
            Source::System,
            Source::Alert,
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
    content_hash(Content {
        incident: incident.as_str(),
        seq,
        at: draft.at,
        actor: &draft.actor,
        actor_id: &draft.actor_id,
        source: draft.source,
        kind: &draft.kind,
        text: &draft.text,
        prev_hash,
        facts: &draft.facts,
    })
}

/// What an entry's hash covers, borrowed from wherever it lives.
struct Content<'a> {
    incident: &'a str,
    seq: i64,
    at: DateTime<Utc>,
    actor: &'a str,
    actor_id: &'a str,
    source: Source,
    kind: &'a str,
    text: &'a str,
    prev_hash: &'a str,
    facts: &'a [crate::facts::Fact],
}

/// Feeds what serde_json writes straight into the hash: no JSON value is built.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The hash of `["incident",seq,"at","actor","actor_id","source","kind","text","prev"(,facts)]`
/// in serde_json's compact form, written field by field: byte for byte what serialising the
/// array as a `serde_json::Value` gives (a test holds it to that), without building one, which
/// is most of the cost when a million entries are checked.
fn content_hash(c: Content<'_>) -> String {
    hex::encode(content_digest(c))
}

/// The SHA-256 digest `content_hash` shows in hex.
fn content_digest(c: Content<'_>) -> [u8; 32] {
    let mut w = HashWriter(Sha256::new());
    let at = normalise_time(c.at).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let string = |w: &mut HashWriter, s: &str| {
        // Writing a &str into a hasher cannot fail.
        let _ = serde_json::to_writer(&mut *w, s);
    };
    w.0.update(b"[");
    string(&mut w, c.incident);
    // Writing into a hasher cannot fail; no string is built for the number.
    let _ = std::io::Write::write_fmt(&mut w, format_args!(",{},", c.seq));
    for (i, field) in [
        at.as_str(),
        c.actor,
        c.actor_id,
        c.source.as_str(),
        c.kind,
        c.text,
        c.prev_hash,
    ]
    .into_iter()
    .enumerate()
    {
        if i > 0 {
            w.0.update(b",");
        }
        string(&mut w, field);
    }
    if !c.facts.is_empty() {
        // Through a Value, as before: its maps keep keys sorted, which the hash depends on.
        w.0.update(b",");
        let _ = serde_json::to_writer(&mut w, &serde_json::to_value(c.facts).unwrap_or_default());
    }
    w.0.update(b"]");
    w.0.finalize().into()
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
    /// The hash this entry's content gives now; differs from `hash` if a row was edited.
    pub fn recomputed_hash(&self) -> String {
        hex::encode(self.recomputed_digest())
    }

    /// Whether the entry's content still gives its stored hash (compared as bytes: no hex is
    /// written for each of a million entries).
    pub fn hash_matches(&self) -> bool {
        let mut stored = [0u8; 32];
        hex::decode_to_slice(&self.hash, &mut stored).is_ok()
            && self.hash.bytes().all(|b| !b.is_ascii_uppercase())
            && stored == self.recomputed_digest()
    }

    fn recomputed_digest(&self) -> [u8; 32] {
        content_digest(Content {
            incident: self.incident.as_str(),
            seq: self.seq,
            at: self.at,
            actor: &self.actor,
            actor_id: &self.actor_id,
            source: self.source,
            kind: &self.kind,
            text: &self.text,
            prev_hash: &self.prev_hash,
            facts: &self.facts,
        })
    }

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
pub use verify::{Break, ChainChecker, Head, Keying, kept_for_row_checks, verify, verify_row};

#[cfg(test)]
mod hash_tests {
    use super::*;
    use crate::facts::Fact;
    use chrono::TimeZone;
    use proptest::prelude::*;

    /// The hash as it was first written, through a `serde_json::Value`: every chain stored so
    /// far was sealed with it, so the fast path must give exactly the same bytes.
    fn hash_through_value(incident: &IncidentId, seq: i64, d: &Draft, prev: &str) -> String {
        let mut canonical = vec![
            serde_json::json!(incident.as_str()),
            serde_json::json!(seq),
            serde_json::json!(
                normalise_time(d.at).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            ),
            serde_json::json!(d.actor),
            serde_json::json!(d.actor_id),
            serde_json::json!(d.source.as_str()),
            serde_json::json!(d.kind),
            serde_json::json!(d.text),
            serde_json::json!(prev),
        ];
        if !d.facts.is_empty() {
            canonical.push(serde_json::to_value(&d.facts).unwrap());
        }
        hex::encode(Sha256::digest(
            serde_json::Value::Array(canonical).to_string().as_bytes(),
        ))
    }

    proptest! {
        #[test]
        fn the_fast_hash_is_the_hash_chains_were_sealed_with(
            text in "\\PC*|[\"\\\\\\x00-\\x1f\u{2028}\u{fffd}é😀]*",
            actor in ".*",
            seq in any::<i64>(),
            nanos in 0u32..1_000_000_000,
            with_facts in any::<bool>(),
        ) {
            let id = IncidentId::new("INC-20261129-7");
            let draft = Draft {
                at: Utc.timestamp_opt(1_796_000_000, nanos).unwrap(),
                actor: actor.clone(),
                actor_id: format!("U\"{actor}"),
                source: Source::Discord,
                kind: "note".into(),
                text: text.clone(),
                facts: if with_facts {
                    vec![
                        Fact::RequestState { request: text.clone(), state: "done".into() },
                        Fact::Approved {
                            request: "REQ-1".into(),
                            approver_id: actor.clone(),
                            digest: "ab".into(),
                            roles: Vec::new(),
                        },
                    ]
                } else {
                    Vec::new()
                },
            };
            let prev = "0f".repeat(32);
            let fast = entry_hash(&id, seq, &draft, &prev);
            prop_assert_eq!(&fast, &hash_through_value(&id, seq, &draft, &prev));
            let sealed = seal(&id, Some(Prev { seq: seq.saturating_sub(1), hash: &prev, mac: None }), draft, None);
            prop_assert_eq!(sealed.recomputed_hash(), sealed.hash.clone());
            prop_assert!(sealed.hash_matches());
            let mut edited = sealed.clone();
            edited.text.push('.');
            prop_assert!(!edited.hash_matches());
            let mut shouted = sealed;
            shouted.hash = shouted.hash.to_uppercase();
            prop_assert!(shouted.hash.bytes().all(|b| !b.is_ascii_lowercase()));
            prop_assert!(!shouted.hash_matches(), "a hash not as it was written is not its hash");
        }
    }
}
