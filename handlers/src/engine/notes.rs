//! Notes in bulk. Notes are the one command people send in bursts (a scribe typing through an
//! outage); each was acknowledged and stored as a receipt. Consecutive notes for one incident
//! are appended in one transaction that also marks their receipts processed, so a crash loses
//! none and repeats none, and thousands a second cost thousands of rows, not transactions.

use super::{Engine, Request};
use crate::command::{self, Command};
use crate::ids::IncidentId;
use crate::reply::Reply;
use crate::store::ReadyNote;
use crate::timeline::Draft;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a channel's note target is remembered. Within this, a change made by another
/// process (a second incident declared in the channel) may not be seen; a closed incident never
/// takes a note, whatever is remembered (the store checks that when it appends).
const TARGET_MEMORY: Duration = Duration::from_secs(2);

/// Which open incident notes sent in a channel (or naming an incident) go to, remembered for
/// `TARGET_MEMORY` so a burst of notes costs one lookup, not one each.
#[derive(Default)]
pub(crate) struct NoteTargets {
    known: Mutex<HashMap<TargetKey, (IncidentId, Instant)>>,
}

/// A channel, and the incident a note names there if it names one.
type TargetKey = (String, Option<IncidentId>);

impl NoteTargets {
    fn get(&self, key: &TargetKey) -> Option<IncidentId> {
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known
            .get(key)
            .filter(|(_, at)| at.elapsed() < TARGET_MEMORY)
            .map(|(id, _)| id.clone())
    }

    fn remember(&self, key: TargetKey, id: IncidentId) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: channels are few, but a flood of named incidents must not grow it for ever.
        if known.len() >= 1024 {
            known.clear();
        }
        known.insert(key, (id, Instant::now()));
    }

    pub(crate) fn forget(&self) {
        self.known.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// What became of a note given to `Engine::record_notes`.
#[derive(Clone, Debug)]
pub enum NoteFate {
    /// On this incident's timeline (now, or already by another process).
    Recorded(IncidentId),
    /// Refused for good (no open incident, closed, a bot): tell the author; the receipt is
    /// finished.
    Refused(Reply),
    /// Not written now (the database failed): tell the author; the receipt stays to be retried.
    NotYet(Reply),
}

/// One note to record: who said it where, when it was received, and its receipt.
#[derive(Clone, Debug)]
pub struct NoteItem {
    pub receipt: i64,
    pub request: Request,
    pub received_at: DateTime<Utc>,
}

/// The text of a note if `text` is one (`/erlmcp note …`, `INC-… note …`), and which incident it
/// names, if any.
pub fn as_note(text: &str) -> Option<(Option<IncidentId>, String)> {
    match command::parse(text) {
        Ok(command::Parsed {
            incident,
            command: Command::Note(body),
        }) => Some((incident, body)),
        _ => None,
    }
}

impl Engine {
    /// A note ready to be stored with its receipt, if `request` is a plain note from a person to
    /// an open incident that can be found at once. Anything else (not a note, a bot, no incident
    /// or several, a closed one, a database error) is `None`: the receipt is then processed the
    /// ordinary way, which gives the person the specific answer.
    pub async fn ready_note(
        &self,
        request: &Request,
        received_at: DateTime<Utc>,
    ) -> Option<ReadyNote> {
        let (named, body) = as_note(&request.text)?;
        if self.is_bot(&request.actor) {
            return None;
        }
        let key = (request.channel.clone(), named.clone());
        let incident = match self.note_targets.get(&key) {
            Some(id) => id,
            None => match self.target_incident(request, named, false).await {
                Ok(Ok(inc)) if inc.is_open() => {
                    self.note_targets.remember(key, inc.id.clone());
                    inc.id
                }
                _ => return None,
            },
        };
        let draft = Draft {
            at: received_at,
            ..self.draft(&request.actor, request.source, "note", body)
        };
        Some(ReadyNote { incident, draft })
    }

    /// Records notes, in order, each exactly once. Returns, per receipt, what became of it.
    pub async fn record_notes(&self, items: Vec<NoteItem>) -> Vec<(i64, NoteFate)> {
        let mut out: Vec<(i64, NoteFate)> = Vec::with_capacity(items.len());
        // Which incident each channel (or named incident) addresses, looked up once per batch.
        let mut targets: BTreeMap<(String, Option<IncidentId>), Result<IncidentId, Reply>> =
            BTreeMap::new();
        let mut batches: Vec<(IncidentId, Vec<(i64, Draft)>)> = Vec::new();
        for item in items {
            let Some((named, body)) = as_note(&item.request.text) else {
                out.push((
                    item.receipt,
                    NoteFate::Refused(Reply::error("internal: not a note (it was routed as one)")),
                ));
                continue;
            };
            if self.is_bot(&item.request.actor) {
                out.push((
                    item.receipt,
                    NoteFate::Refused(Reply::error("Bots cannot change incidents; a person must.")),
                ));
                continue;
            }
            let key = (item.request.channel.clone(), named.clone());
            if !targets.contains_key(&key) {
                let found = match self.target_incident(&item.request, named, false).await {
                    Ok(Ok(inc)) if inc.is_open() => Ok(inc.id),
                    Ok(Ok(inc)) => Err(Reply::error(format!(
                        "{} is closed; its timeline takes no more notes.",
                        inc.id
                    ))),
                    Ok(Err(reply)) => Err(reply),
                    Err(e) => Err(Reply::error(format!("note failed: {e}"))),
                };
                targets.insert(key.clone(), found);
            }
            match &targets[&key] {
                Err(reply) => out.push((item.receipt, NoteFate::Refused(reply.clone()))),
                Ok(id) => {
                    let draft = Draft {
                        at: item.received_at,
                        ..self.draft(&item.request.actor, item.request.source, "note", body)
                    };
                    match batches.last_mut() {
                        Some((last, notes)) if last == id => notes.push((item.receipt, draft)),
                        _ => batches.push((id.clone(), vec![(item.receipt, draft)])),
                    }
                }
            }
        }
        for (incident, notes) in batches {
            let receipts: Vec<i64> = notes.iter().map(|(r, _)| *r).collect();
            match self.store.append_receipted(&incident, notes).await {
                // Receipts another process applied first are done already: nothing to say.
                Ok(applied) => {
                    // Counted once: only the notes this call wrote (a receipt another process
                    // or an earlier sweep applied is done, and was counted there).
                    for _ in &applied {
                        crate::telemetry::command("note", crate::telemetry::CommandOutcome::Ok);
                    }
                    out.extend(
                        receipts
                            .into_iter()
                            .map(|r| (r, NoteFate::Recorded(incident.clone()))),
                    )
                }
                // Closed (by another replica) since it was looked up: refused for good.
                Err(crate::Error::Conflict(_)) => out.extend(receipts.into_iter().map(|r| {
                    (
                        r,
                        NoteFate::Refused(Reply::error(format!(
                            "{incident} is closed; its timeline takes no more notes."
                        ))),
                    )
                })),
                Err(e) => out.extend(receipts.into_iter().map(|r| {
                    (
                        r,
                        NoteFate::NotYet(Reply::error(format!(
                            "Your note was received but could not be written to {incident}'s timeline yet ({e}); it will be, once the database answers."
                        ))),
                    )
                })),
            }
        }
        // Refusals are final and counted once; a note not written yet is counted when it is.
        for (_, fate) in &out {
            if let NoteFate::Refused(_) = fate {
                crate::telemetry::command("note", crate::telemetry::CommandOutcome::Refused);
            }
        }
        out
    }
}
