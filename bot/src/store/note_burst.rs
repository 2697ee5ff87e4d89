//! A burst of notes on SQLite in three trips to the database thread instead of six or more.
//!
//! Every statement sqlx runs on SQLite is a round trip between the async task and the
//! connection's own thread; on a busy two-core machine each costs a few hundred microseconds of
//! waiting to be scheduled, far more than SQLite's work. Group commit already puts a burst of
//! receipts and their notes into one transaction; here that transaction is one `BEGIN`, one
//! batch of statements (the receipts, then per incident its new entries and its new chain end)
//! and one `COMMIT`. The new entries are sealed in advance from where this process last saw the
//! incident's chain end; the chain-end update is a compare-and-set on the length, so a stale
//! view (another process appended, the incident was closed) changes nothing: the transaction is
//! rolled back and the batch is stored the ordinary way.

use super::SqliteStore;
use super::rows::db;
use chrono::{DateTime, SecondsFormat, Utc};
use erlmcp_handlers::Error;
use erlmcp_handlers::error::Result;
use erlmcp_handlers::ids::IncidentId;
use erlmcp_handlers::store::{NewReceipt, ReceiptFate};
use erlmcp_handlers::timeline::{self, Draft, Entry};
use futures_util::TryStreamExt;
use serde_json::json;
use sqlx::Row;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Where an incident's hash chain ended when this process last wrote or read it.
#[derive(Clone, Debug)]
struct ChainEnd {
    len: i64,
    hash: String,
    mac: Option<String>,
}

/// The chain ends this process knows, by incident id.
#[derive(Clone, Default)]
pub struct ChainEnds(Arc<Mutex<HashMap<String, ChainEnd>>>);

impl ChainEnds {
    fn get(&self, incident: &IncidentId) -> Option<ChainEnd> {
        let known = self.0.lock().unwrap_or_else(|p| p.into_inner());
        known.get(incident.as_str()).cloned()
    }

    fn set(&self, incident: &IncidentId, end: ChainEnd) {
        let mut known = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: only incidents taking notes right now matter.
        if known.len() >= 256 {
            known.clear();
        }
        known.insert(incident.as_str().to_string(), end);
    }

    fn forget(&self, incident: &IncidentId) {
        let mut known = self.0.lock().unwrap_or_else(|p| p.into_inner());
        known.remove(incident.as_str());
    }
}

/// A time as sqlx writes a `DateTime<Utc>` into SQLite, so rows written either way compare and
/// read alike.
fn sqlite_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

const INSERT_RECEIPTS: &str = "INSERT INTO receipts (key, platform, received_at, payload, state) SELECT value->>0, value->>1, value->>2, value->>3, value->>4 FROM json_each($1) WHERE NOT EXISTS (SELECT 1 FROM receipts AS former WHERE former.key = value->>5) ON CONFLICT (key) DO NOTHING RETURNING id, key";

/// The statements for incident number `g` of the batch: its entries, then its chain end moved
/// from the length it was sealed against (and only while the incident is not closed).
fn incident_statements(g: usize) -> String {
    let p = 2 + g * 6;
    format!(
        "INSERT INTO timeline (incident_id, seq, at, actor, actor_id, source, kind, text, prev_hash, hash, data, mac) SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, value->>7, value->>8, value->>9, value->>10, value->>11 FROM json_each(${p}); UPDATE incidents SET timeline_len = ${}, timeline_head = ${}, timeline_head_mac = ${} WHERE id = ${} AND timeline_len = ${} AND status <> 'closed';",
        p + 1,
        p + 2,
        p + 3,
        p + 4,
        p + 5
    )
}

/// One incident's part of the batch, sealed in advance.
struct Sealed<'a> {
    incident: &'a IncidentId,
    from: i64,
    entries: Vec<Entry>,
}

impl Sealed<'_> {
    fn end(&self) -> ChainEnd {
        let last = self.entries.last().expect("a sealed group is never empty");
        ChainEnd {
            len: last.seq,
            hash: last.hash.clone(),
            mac: last.mac.clone(),
        }
    }

    fn rows(&self) -> Result<String> {
        let rows: Vec<serde_json::Value> = self
            .entries
            .iter()
            .map(|e| {
                let facts = if e.facts.is_empty() {
                    None
                } else {
                    Some(serde_json::to_string(&e.facts).map_err(|e| Error::Store(e.to_string()))?)
                };
                Ok(json!([
                    e.incident.as_str(),
                    e.seq,
                    sqlite_time(e.at),
                    e.actor,
                    e.actor_id,
                    e.source.as_str(),
                    e.kind,
                    e.text,
                    e.prev_hash,
                    e.hash,
                    facts,
                    e.mac
                ]))
            })
            .collect::<Result<_>>()?;
        serde_json::to_string(&rows).map_err(|e| Error::Store(e.to_string()))
    }
}

impl SqliteStore {
    pub(crate) async fn record_receipts_here(
        &self,
        new: &[NewReceipt],
    ) -> Result<Vec<ReceiptFate>> {
        if new.iter().any(|r| r.note.is_some()) {
            match self.record_burst(new).await {
                Ok(Some(fates)) => return Ok(fates),
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "a burst of notes is stored the ordinary way")
                }
            }
        }
        self.record_receipts_plainly(new).await
    }

    /// Where `incident`'s chain ends, as remembered or read now.
    async fn chain_end(&self, incident: &IncidentId) -> Result<ChainEnd> {
        if let Some(end) = self.chain_ends.get(incident) {
            return Ok(end);
        }
        let row = sqlx::query("SELECT timeline_len, timeline_head, (SELECT mac FROM timeline WHERE incident_id = $1 AND seq = incidents.timeline_len) AS last_mac FROM incidents WHERE id = $1")
            .bind(incident.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| Error::NotFound(incident.to_string()))?;
        let end = ChainEnd {
            len: row.try_get("timeline_len").map_err(db)?,
            hash: row.try_get("timeline_head").map_err(db)?,
            mac: row.try_get("last_mac").map_err(db)?,
        };
        self.chain_ends.set(incident, end.clone());
        Ok(end)
    }

    /// The burst in three trips; `None` when the view it was sealed against turned out stale or
    /// a receipt with a note was a duplicate (nothing was stored: the caller stores it plainly).
    async fn record_burst(&self, new: &[NewReceipt]) -> Result<Option<Vec<ReceiptFate>>> {
        // The notes, per incident, in order, sealed from the chain ends as known.
        let mut drafts: Vec<(&IncidentId, Vec<Draft>)> = Vec::new();
        for note in new.iter().filter_map(|r| r.note.as_ref()) {
            match drafts.iter_mut().find(|(i, _)| *i == &note.incident) {
                Some((_, d)) => d.push(note.draft.clone()),
                None => drafts.push((&note.incident, vec![note.draft.clone()])),
            }
        }
        let mut sealed = Vec::with_capacity(drafts.len());
        for (incident, drafts) in drafts {
            let mut end = self.chain_end(incident).await?;
            let from = end.len;
            let mut entries = Vec::with_capacity(drafts.len());
            for d in drafts {
                let prev = (end.len > 0).then_some(timeline::Prev {
                    seq: end.len,
                    hash: end.hash.as_str(),
                    mac: end.mac.as_deref(),
                });
                let e = timeline::seal(incident, prev, d, self.key.as_deref());
                end = ChainEnd {
                    len: e.seq,
                    hash: e.hash.clone(),
                    mac: e.mac.clone(),
                };
                entries.push(e);
            }
            sealed.push(Sealed {
                incident,
                from,
                entries,
            });
        }

        let receipts: Vec<serde_json::Value> = new
            .iter()
            .map(|r| {
                json!([
                    r.key,
                    r.platform,
                    sqlite_time(timeline::normalise_time(r.received_at)),
                    r.payload,
                    if r.note.is_some() { "done" } else { "new" },
                    r.former_key
                ])
            })
            .collect();
        let mut sql = format!("{INSERT_RECEIPTS};");
        let mut q_args = Vec::with_capacity(sealed.len());
        for (g, s) in sealed.iter().enumerate() {
            sql.push_str(&incident_statements(g));
            q_args.push((s.rows()?, s.end(), s.from, s.incident));
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(serde_json::to_string(&receipts).map_err(|e| Error::Store(e.to_string()))?);
        for (rows, end, from, incident) in &q_args {
            let head_mac = self
                .key
                .as_deref()
                .map(|k| k.head_mac(incident.as_str(), end.len, &end.hash));
            q = q
                .bind(rows.as_str())
                .bind(end.len)
                .bind(end.hash.as_str())
                .bind(head_mac)
                .bind(incident.as_str())
                .bind(*from);
        }

        let mut tx = tokio::time::timeout(std::time::Duration::from_millis(1500), self.begin())
            .await
            .map_err(|_| Error::Store("no connection to the database within 1.5 s".into()))??;
        let mut ids: HashMap<String, i64> = HashMap::with_capacity(new.len());
        let mut changed: Vec<u64> = Vec::with_capacity(1 + 2 * sealed.len());
        let outcome = {
            // sqlx deprecates several statements in one prepared query, but SQLite is the one
            // driver that runs them, and `raw_sql` cannot bind: one round trip through the
            // driver's thread instead of 1 + 2 per incident is what this file exists for.
            #[allow(deprecated)]
            let mut results = q.fetch_many(&mut *tx);
            loop {
                match results.try_next().await {
                    Ok(Some(sqlx::Either::Left(done))) => changed.push(done.rows_affected()),
                    Ok(Some(sqlx::Either::Right(row))) => {
                        ids.insert(
                            row.try_get("key").map_err(db)?,
                            row.try_get("id").map_err(db)?,
                        );
                    }
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                }
            }
        };
        // Every statement ran; each incident's entries all went in and its chain end moved.
        let applied = outcome.is_ok()
            && changed.len() == 1 + 2 * sealed.len()
            && sealed.iter().enumerate().all(|(g, s)| {
                changed[1 + 2 * g] == s.entries.len() as u64 && changed[2 + 2 * g] == 1
            });
        // The fate of each receipt; a note sealed for a receipt that turned out a duplicate
        // would put a replay on the timeline: then nothing of this is kept.
        let mut fates = Vec::with_capacity(new.len());
        let mut clean = applied;
        for r in new {
            match (ids.remove(r.key.as_str()), &r.note) {
                (Some(id), Some(_)) => fates.push(ReceiptFate::Applied(id)),
                (Some(id), None) => fates.push(ReceiptFate::Stored(id)),
                (None, Some(_)) => clean = false,
                (None, None) => fates.push(ReceiptFate::Duplicate),
            }
        }
        if !clean {
            let _ = tx.rollback().await;
            for s in &sealed {
                self.chain_ends.forget(s.incident);
            }
            return match outcome {
                Err(e) => Err(db(e)),
                Ok(()) => Ok(None),
            };
        }
        tx.commit().await.map_err(db)?;
        for s in &sealed {
            self.chain_ends.set(s.incident, s.end());
        }
        Ok(Some(fates))
    }
}
