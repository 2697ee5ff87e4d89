//! Checking a stored chain: every row against its hash and its predecessor, the incident row's
//! record of the chain's length and head, the keyed MACs when a key is set, and the incident row
//! against what its timeline says.

use super::*;

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
    /// Entries are stored after the end the incident records: rows were added, or the record
    /// was edited back.
    Beyond {
        stored: i64,
        recorded: i64,
    },
    /// An entry at a position the bot never writes (before #1): a row was inserted.
    Inserted {
        seq: i64,
    },
    /// The entry's keyed MAC does not match: the row was rewritten by someone without the key.
    MacInvalid {
        seq: i64,
    },
    /// The entry has no MAC although entries before it have one: it was rewritten (or its MAC
    /// removed) by someone without the key.
    MacMissing {
        seq: i64,
    },
    /// The incident row's keyed record of the chain's length and head does not match.
    HeadMacInvalid,
    /// The requests, approvals, runs or steps tables say something the timeline's facts do not.
    Table {
        what: String,
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
                    "the incident records {expected} entries but the last one stored is #{stored}: entries after #{stored} were deleted"
                )
            }
            Break::HeadMismatch { seq } => write!(
                f,
                "entry #{seq} is not the last entry the incident recorded: the end of the timeline was replaced"
            ),
            Break::Beyond { stored, recorded } => write!(
                f,
                "the incident records {recorded} entries but entries up to #{stored} are stored: rows were added after its end, or its record was edited"
            ),
            Break::Inserted { seq } => write!(
                f,
                "an entry is stored at position #{seq}, which the bot never writes: a row was inserted"
            ),
            Break::MacInvalid { seq } => write!(
                f,
                "entry #{seq} does not carry the MAC the timeline key gives it: it was rewritten without the key"
            ),
            Break::MacMissing { seq } => write!(
                f,
                "entry #{seq} has no MAC although the entries before it have one: it was rewritten without the key"
            ),
            Break::HeadMacInvalid => write!(
                f,
                "the incident's keyed record of the chain's length and last entry does not match: entries were cut off or the record was rewritten"
            ),
            Break::Table { what } => write!(f, "{what}: the table was edited"),
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
    /// With a key: HMAC of the incident, length and hash (`TimelineKey::head_mac`).
    pub mac: Option<String>,
}

/// What the keyed MACs of a chain showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keying {
    /// Every entry carries a MAC, and every MAC is right.
    Keyed { entries: i64 },
    /// No entry carries a MAC: the chain proves nothing against someone who can write the database.
    Unkeyed { entries: i64 },
    /// Entries up to `until` were written before a key was set; the rest are keyed.
    KeyedFrom { until: i64, entries: i64 },
    /// Entries carry MACs, but no key was given to check them.
    NotChecked { entries: i64 },
}

impl fmt::Display for Keying {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Keying::Keyed { entries } => write!(f, "keyed ({entries} entries)"),
            Keying::Unkeyed { entries } => write!(
                f,
                "UNKEYED ({entries} entries): anyone who can write the database could rewrite it and its hashes; set ERLMCP_TIMELINE_KEY"
            ),
            Keying::KeyedFrom { until, entries } => write!(
                f,
                "keyed from entry #{} ({entries} entries; #1-#{until} were written before the key was set)",
                until + 1
            ),
            Keying::NotChecked { entries } => write!(
                f,
                "hash chain only ({entries} entries): the entries are keyed, but ERLMCP_TIMELINE_KEY is not set here to check them"
            ),
        }
    }
}

/// Checks a chain read in `seq` order, and with a key its MACs. Returns every break found,
/// first one first, and what the MACs showed.
pub fn verify(
    entries: &[Entry],
    head: Option<&Head>,
    key: Option<&TimelineKey>,
) -> (Vec<Break>, Keying) {
    let mut checker = ChainChecker::new(key);
    for e in entries {
        checker.check(e);
    }
    checker.finish(head)
}

/// Checks a chain entry by entry as it is read, page after page, holding only the entry before:
/// a timeline of millions is checked in the memory of one page.
pub struct ChainChecker<'k> {
    key: Option<&'k TimelineKey>,
    breaks: Vec<Break>,
    prev_seq: i64,
    prev_hash: String,
    prev_mac: Option<String>,
    unkeyed_until: i64,
    any_mac: bool,
    entries: i64,
    incident: Option<crate::ids::IncidentId>,
    /// A position whose entry's hash is remembered (`watch`), and that hash once seen.
    watched: Option<(i64, Option<String>)>,
}

impl<'k> ChainChecker<'k> {
    pub fn new(key: Option<&'k TimelineKey>) -> Self {
        Self {
            key,
            breaks: Vec::new(),
            prev_seq: 0,
            prev_hash: GENESIS_HASH.to_string(),
            prev_mac: None,
            unkeyed_until: 0,
            any_mac: false,
            entries: 0,
            incident: None,
            watched: None,
        }
    }

    /// Remembers the hash of the entry at `seq` when it is checked, so the chain can be held
    /// to a record of its end read before its entries (`finish_at_earlier`).
    pub fn watch(&mut self, seq: i64) {
        self.watched = Some((seq, None));
    }

    /// The next entry, in `seq` order.
    pub fn check(&mut self, e: &Entry) {
        self.check_hashed(e, e.hash_matches());
    }

    /// The next entry, its content already held to its hash (`Entry::hash_matches`, on another
    /// thread, for instance).
    pub fn check_hashed(&mut self, e: &Entry, hash_matches: bool) {
        if e.seq < 1 {
            self.breaks.push(Break::Inserted { seq: e.seq });
            return;
        }
        if self.incident.is_none() {
            self.incident = Some(e.incident.clone());
        }
        self.entries += 1;
        self.any_mac |= e.mac.is_some();
        if e.seq != self.prev_seq + 1 {
            self.breaks.push(Break::Gap {
                after: self.prev_seq,
                next: e.seq,
            });
        }
        if !hash_matches {
            self.breaks.push(Break::Edited { seq: e.seq });
        } else if e.prev_hash != self.prev_hash && e.seq == self.prev_seq + 1 {
            self.breaks.push(Break::Unlinked {
                seq: e.seq,
                expected_prev: self.prev_hash.clone(),
            });
        }
        match (&e.mac, self.key) {
            (None, _) if self.prev_mac.is_some() => {
                self.breaks.push(Break::MacMissing { seq: e.seq })
            }
            (None, _) => self.unkeyed_until = e.seq,
            (Some(mac), Some(k)) => {
                let chained = self.prev_mac.as_deref().unwrap_or(&e.prev_hash);
                if *mac != k.entry_mac(chained, &e.hash) {
                    self.breaks.push(Break::MacInvalid { seq: e.seq });
                }
            }
            (Some(_), None) => {}
        }
        if let Some((seq, seen)) = &mut self.watched
            && *seq == e.seq
        {
            *seen = Some(e.hash.clone());
        }
        self.prev_seq = e.seq;
        self.prev_hash.clone_from(&e.hash);
        self.prev_mac.clone_from(&e.mac);
    }

    /// The position of the last entry checked (0 before any).
    pub fn last_seq(&self) -> i64 {
        self.prev_seq
    }

    /// How many entries were checked so far.
    pub fn entries(&self) -> i64 {
        self.entries
    }

    /// For a chain still growing while it was read: holds the record of its end read before the
    /// entries (`earlier`, whose position was `watch`ed) to the entry at that position. Entries
    /// after it were appended since; a chain cut below it shows as cut.
    pub fn finish_at_earlier(mut self, earlier: &Head) -> (Vec<Break>, Keying) {
        let seen = match self.watched.take() {
            Some((seq, seen)) if seq == earlier.len => seen,
            _ => None,
        };
        if self.prev_seq < earlier.len {
            self.breaks.push(Break::Truncated {
                stored: self.prev_seq,
                expected: earlier.len,
            });
        } else if earlier.len > 0
            && seen.as_deref() != Some(earlier.hash.as_str())
            && self.breaks.is_empty()
        {
            self.breaks.push(Break::HeadMismatch { seq: earlier.len });
        }
        self.finish_keyed(Some(earlier))
    }

    /// Holds the chain's end to the incident's record of it; every break, and what the MACs showed.
    pub fn finish(mut self, head: Option<&Head>) -> (Vec<Break>, Keying) {
        let last_seq = self.prev_seq;
        if let Some(head) = head {
            // The last entry there is, not how many: a row deleted in the middle is a gap, not a cut.
            if last_seq < head.len {
                self.breaks.push(Break::Truncated {
                    stored: last_seq,
                    expected: head.len,
                });
            } else {
                if self.entries > 0 && self.prev_hash != head.hash && self.breaks.is_empty() {
                    self.breaks.push(Break::HeadMismatch { seq: last_seq });
                }
                if last_seq > head.len {
                    self.breaks.push(Break::Beyond {
                        stored: last_seq,
                        recorded: head.len,
                    });
                }
            }
        }
        self.finish_keyed(head)
    }

    /// The head's MAC, and what the entries' MACs showed.
    fn finish_keyed(mut self, head: Option<&Head>) -> (Vec<Break>, Keying) {
        // Rewriting content changes the head's hash; cutting entries changes its length:
        // either needs a new head MAC, which takes the key.
        if let (Some(head), Some(k), Some(incident)) = (head, self.key, &self.incident) {
            let expected = k.head_mac(incident.as_str(), head.len, &head.hash);
            match &head.mac {
                Some(m) if *m != expected => self.breaks.push(Break::HeadMacInvalid),
                None if self.any_mac => self.breaks.push(Break::HeadMacInvalid),
                _ => {}
            }
        }
        let n = self.entries;
        let keying = match (self.any_mac, self.key) {
            (false, _) => Keying::Unkeyed { entries: n },
            (true, None) => Keying::NotChecked { entries: n },
            (true, Some(_)) if self.unkeyed_until > 0 => Keying::KeyedFrom {
                until: self.unkeyed_until,
                entries: n,
            },
            (true, Some(_)) => Keying::Keyed { entries: n },
        };
        (self.breaks, keying)
    }
}

/// Whether `verify_row` or the tables' check needs this entry: the moments of the incident's
/// life and the entries that carry facts. Notes and the like are checked and let go.
pub fn kept_for_row_checks(e: &Entry) -> bool {
    // Alerts are records of what Alertmanager said: no row or table check reads them, and an
    // alert storm must not be held in memory (or listed in full by the postmortem).
    e.facts
        .iter()
        .any(|f| !matches!(f, crate::facts::Fact::Alert { .. }))
        || matches!(
            e.kind.as_str(),
            "declared" | "acknowledged" | "mitigated" | "resolved" | "closed" | "severity"
        )
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
    // What the declaration recorded (incidents declared before it was recorded have nothing).
    use crate::facts::Fact;
    let facts = || entries.iter().flat_map(|e| e.facts.iter());
    if let Some(Fact::Declared {
        title,
        drill,
        declared_by,
        channel,
    }) = facts().find(|f| matches!(f, Fact::Declared { .. }))
    {
        let mut channel = channel;
        for f in facts() {
            if let Fact::Channel { channel: moved } = f {
                channel = moved;
            }
        }
        for (field, row, recorded) in [
            ("title", inc.title.clone(), title.clone()),
            ("drill", inc.drill.to_string(), drill.to_string()),
            ("declared_by", inc.declared_by.clone(), declared_by.clone()),
            ("channel", inc.channel.clone(), channel.clone()),
        ] {
            // Channels recorded before ids were qualified (`C123`) match their migrated row.
            let same = if field == "channel" {
                crate::ids::chat::same_or_migrated(&recorded, &row)
            } else {
                row == recorded
            };
            if !same {
                out.push(Break::Row {
                    field,
                    row,
                    timeline: recorded,
                });
            }
        }
    }
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
    use crate::ids::IncidentId;
    use chrono::TimeZone;

    fn chain(n: i64) -> Vec<Entry> {
        keyed_chain(n, None)
    }

    fn keyed_chain(n: i64, key: Option<&TimelineKey>) -> Vec<Entry> {
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
                facts: Vec::new(),
            };
            let prev = out.last().map(|e| Prev {
                seq: e.seq,
                hash: e.hash.as_str(),
                mac: e.mac.as_deref(),
            });
            let e = seal(&id, prev, draft, key);
            out.push(e);
        }
        out
    }

    fn head(c: &[Entry]) -> Head {
        Head {
            len: c.len() as i64,
            hash: c.last().unwrap().hash.clone(),
            mac: None,
        }
    }

    /// What `verify` found, without a key.
    fn breaks(c: &[Entry], h: Option<&Head>) -> Vec<Break> {
        verify(c, h, None).0
    }

    fn key() -> TimelineKey {
        TimelineKey::new("a test key of enough length").unwrap()
    }

    /// Rewrites entry `i` (content and every hash after it) as someone with write access but
    /// without the key would.
    fn rewrite(c: &mut [Entry], i: usize, text: &str) {
        c[i].text = text.into();
        for j in i..c.len() {
            if j > 0 {
                c[j].prev_hash = c[j - 1].hash.clone();
            }
            c[j].hash = entry_hash(&c[j].incident, c[j].seq, &c[j].draft(), &c[j].prev_hash);
        }
    }

    #[test]
    fn a_rewrite_with_recomputed_hashes_passes_unkeyed_and_fails_keyed() {
        // Unkeyed: the chain cannot tell.
        let mut c = chain(4);
        rewrite(&mut c, 1, "carol approved");
        assert_eq!(breaks(&c, Some(&head(&c))), vec![]);
        assert!(matches!(
            verify(&c, None, None).1,
            Keying::Unkeyed { entries: 4 }
        ));
        // Keyed: the MAC of the rewritten entry (and the head's) give it away.
        let k = key();
        let mut c = keyed_chain(4, Some(&k));
        let mut h = head(&c);
        h.mac = Some(k.head_mac("INC-20261128-1", h.len, &h.hash));
        assert_eq!(
            verify(&c, Some(&h), Some(&k)),
            (vec![], Keying::Keyed { entries: 4 })
        );
        rewrite(&mut c, 1, "carol approved");
        let h = Head {
            hash: c.last().unwrap().hash.clone(),
            ..h
        };
        let found = verify(&c, Some(&h), Some(&k)).0;
        assert!(found.contains(&Break::MacInvalid { seq: 2 }), "{found:?}");
        assert!(found.contains(&Break::HeadMacInvalid), "{found:?}");
        // Stripping the MACs from the rewritten entry on does not hide it either.
        c[1].mac = None;
        c[2].mac = None;
        c[3].mac = None;
        assert!(
            verify(&c, Some(&h), Some(&k))
                .0
                .contains(&Break::HeadMacInvalid)
        );
    }

    #[test]
    fn cutting_entries_off_a_keyed_chain_needs_the_key() {
        let k = key();
        let mut c = keyed_chain(5, Some(&k));
        c.truncate(3);
        // The attacker also sets the row's length and head to the shorter chain's.
        let h = Head {
            len: 3,
            hash: c[2].hash.clone(),
            mac: Some(k.head_mac("INC-20261128-1", 5, "whatever it was")),
        };
        assert_eq!(
            verify(&c, Some(&h), Some(&k)).0,
            vec![Break::HeadMacInvalid]
        );
        assert!(
            breaks(&c, Some(&h)).is_empty(),
            "unkeyed, a cut is invisible"
        );
    }

    /// A chain read while it grew is held to the record of its end read before it.
    #[test]
    fn a_growing_chain_is_held_to_the_earlier_record() {
        let c = chain(10);
        let earlier = head(&c[..6]);
        let check = |entries: &[Entry], earlier: &Head| {
            let mut checker = ChainChecker::new(None);
            checker.watch(earlier.len);
            for e in entries {
                checker.check(e);
            }
            checker.finish_at_earlier(earlier).0
        };
        assert_eq!(check(&c, &earlier), vec![]);
        // The end the record named was replaced.
        let mut replaced = c.clone();
        rewrite(&mut replaced, 5, "something else");
        assert!(check(&replaced, &earlier).contains(&Break::HeadMismatch { seq: 6 }));
        // Cut below the record.
        assert_eq!(
            check(&c[..4], &earlier),
            vec![Break::Truncated {
                stored: 4,
                expected: 6
            }]
        );
    }

    #[test]
    fn intact_chain_verifies() {
        let c = chain(5);
        assert_eq!(breaks(&c, Some(&head(&c))), vec![]);
    }

    #[test]
    fn edited_row_is_named() {
        let mut c = chain(5);
        let h = head(&c);
        c[2].text = "nothing happened here".into();
        assert_eq!(breaks(&c, Some(&h)), vec![Break::Edited { seq: 3 }]);
    }

    #[test]
    fn edited_timestamp_is_caught() {
        let mut c = chain(3);
        let h = head(&c);
        c[0].at += chrono::Duration::seconds(1);
        assert_eq!(breaks(&c, Some(&h)), vec![Break::Edited { seq: 1 }]);
    }

    #[test]
    fn deleted_row_is_a_gap_and_an_unlinked_successor() {
        let mut c = chain(5);
        let h = head(&c);
        c.remove(1);
        let breaks = breaks(&c, Some(&h));
        assert_eq!(breaks[0], Break::Gap { after: 1, next: 3 });
        assert!(
            !breaks.iter().any(|b| matches!(b, Break::Truncated { .. })),
            "the last entry is still there: a gap, not a cut: {breaks:?}"
        );
    }

    #[test]
    fn reordered_rows_are_caught() {
        let mut c = chain(4);
        let h = head(&c);
        // Swap the content of rows 2 and 3 but keep their sequence numbers, as an attacker renumbering would.
        let (a, b) = (c[1].clone(), c[2].clone());
        c[1] = Entry { seq: 2, ..b };
        c[2] = Entry { seq: 3, ..a };
        assert!(!breaks(&c, Some(&h)).is_empty());
    }

    #[test]
    fn removing_the_last_row_is_caught_by_the_head() {
        let mut c = chain(4);
        let h = head(&c);
        c.pop();
        assert_eq!(
            breaks(&c, Some(&h)),
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
        assert_eq!(breaks(&[c[0].clone(), again], None), vec![]);
    }
}
