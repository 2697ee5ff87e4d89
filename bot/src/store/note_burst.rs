//! A burst of notes on SQLite in one trip to the database thread instead of six or more.
//!
//! Every statement sqlx runs on SQLite is a round trip between the async task and the
//! connection's own thread; on a busy two-core machine each costs a few hundred microseconds of
//! waiting to be scheduled, far more than SQLite's work. Group commit already puts a burst of
//! receipts and their notes into one transaction; here that transaction is one batch of
//! statements, `BEGIN` to `COMMIT` (the receipts, then per incident its new entries and its new
//! chain end). The new entries are sealed in advance from where this process last saw the
//! incident's chain end; the chain-end update is a compare-and-set on the length, and a guard
//! (a temporary view whose trigger raises an error, `BURST_GUARD`) stops the batch before its
//! `COMMIT` when a stale view (another process appended, the incident was closed) changed
//! nothing or a note's receipt was a duplicate: the transaction is rolled back and the batch is
//! stored the ordinary way.
//!
//! The write connection is kept between back-to-back bursts (`BurstWriter`): sqlx tests a
//! connection given back to its pool with a round trip of its own, from a task of its own, and
//! the next burst waited for both.

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
use sqlx::pool::PoolConnection;
use sqlx::{Sqlite, SqlitePool};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// Receipts from the JSON array `$n`, each unless its key (or the key an earlier version stored
/// the same delivery under) is stored already.
fn insert_receipts(n: usize) -> String {
    format!(
        "INSERT INTO receipts (key, platform, received_at, payload, state) SELECT value->>0, value->>1, value->>2, value->>3, value->>4 FROM jsonb_each(${n}) WHERE NOT EXISTS (SELECT 1 FROM receipts AS former WHERE former.key = value->>5) ON CONFLICT (key) DO NOTHING RETURNING id, key;"
    )
}

/// Created on the write connection: inserting a false `ok` into the view raises an error, which
/// ends a batch of statements before its `COMMIT`. (SQLite raises errors only in triggers.)
pub(crate) const BURST_GUARD: &str = "CREATE TEMP VIEW IF NOT EXISTS burst_guard (ok) AS SELECT 1; CREATE TEMP TRIGGER IF NOT EXISTS burst_guard_refuses INSTEAD OF INSERT ON burst_guard WHEN NOT NEW.ok BEGIN SELECT RAISE(ABORT, 'erlmcp-bot: a burst sealed against a stale view was refused'); END;";

/// The statements for incident number `g` of the batch, whose parameters start at `p`: its
/// entries, then its chain end moved from the length it was sealed against (and only while the
/// incident is not closed), guarded.
fn incident_statements(p: usize) -> String {
    format!(
        "INSERT INTO timeline (incident_id, seq, at, actor, actor_id, source, kind, text, prev_hash, hash, data, mac) SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, value->>7, value->>8, value->>9, value->>10, value->>11 FROM jsonb_each(${p}); UPDATE incidents SET timeline_len = ${}, timeline_head = ${}, timeline_head_mac = ${} WHERE id = ${} AND timeline_len = ${} AND status <> 'closed'; INSERT INTO burst_guard (ok) VALUES (changes() = 1);",
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

/// How long the write connection is kept across back-to-back bursts before it is given back to
/// the pool once (the other writers, waiting in its queue, take their turns then).
const HOLD_AT_MOST: Duration = Duration::from_millis(20);

/// The write connection between bursts, if kept, and which holding it is (so the timer that
/// ends a holding ends only its own).
#[derive(Default)]
struct Slot {
    conn: Option<PoolConnection<Sqlite>>,
    holding: u64,
}

/// The write connection, kept across back-to-back bursts; given back when the intake has
/// nothing queued (`ReceiptStore::receipts_paused`), before a batch is stored the ordinary way,
/// and at the latest `HOLD_AT_MOST` after it was taken.
#[derive(Clone, Default)]
pub struct BurstWriter(Arc<tokio::sync::Mutex<Slot>>);

impl BurstWriter {
    /// Gives the connection back to the pool, if kept.
    pub async fn give_back(&self) {
        self.0.lock().await.conn = None;
    }

    /// The kept connection, or one taken from `pool` (waiting at most `WRITER_PATIENCE`).
    async fn take(&self, pool: &SqlitePool) -> Result<tokio::sync::MutexGuard<'_, Slot>> {
        let mut slot = self.0.lock().await;
        if slot.conn.is_none() {
            // No connection within this: the database is away and nothing was sent, so the
            // person can be told for certain that nothing was recorded.
            let conn = tokio::time::timeout(super::WRITER_PATIENCE, pool.acquire())
                .await
                .map_err(|_| super::no_writer_in_time())?
                .map_err(db)?;
            slot.conn = Some(conn);
            slot.holding += 1;
            let (this, holding) = (self.clone(), slot.holding);
            tokio::spawn(async move {
                tokio::time::sleep(HOLD_AT_MOST).await;
                let mut slot = this.0.lock().await;
                if slot.holding == holding {
                    slot.conn = None;
                }
            });
        }
        Ok(slot)
    }
}

impl SqliteStore {
    pub(crate) async fn record_receipts_here(
        &self,
        new: &[NewReceipt],
    ) -> Result<Vec<ReceiptFate>> {
        match self.record_burst(new).await {
            Ok(Burst::Stored(fates)) => return Ok(fates),
            Ok(Burst::Declined) => {}
            // The ordinary way would only wait again, past the platform's patience.
            Ok(Burst::NotBegun(e)) => return Err(e),
            Err(e) => {
                tracing::debug!(error = %e, "a burst of receipts is stored the ordinary way")
            }
        }
        // The ordinary way takes the write connection from the pool.
        self.burst_writer.give_back().await;
        self.record_receipts_plainly(new).await
    }

    /// The intake has nothing queued: the write connection goes back to the pool.
    pub(crate) async fn pause_receipts(&self) {
        self.burst_writer.give_back().await;
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

    /// The burst in one trip; `Declined` when the view it was sealed against turned out stale
    /// or a receipt with a note was a duplicate (nothing was stored: the caller stores it
    /// plainly).
    async fn record_burst(&self, new: &[NewReceipt]) -> Result<Burst> {
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

        // Receipts without a note first (one already stored is a duplicate, as anywhere), then
        // those with one: every one of those must be new, or the note would be a replay's.
        let receipt_rows = |with_note: bool| -> Result<String> {
            let rows: Vec<serde_json::Value> = new
                .iter()
                .filter(|r| r.note.is_some() == with_note)
                .map(|r| {
                    json!([
                        r.key,
                        r.platform,
                        sqlite_time(timeline::normalise_time(r.received_at)),
                        r.payload,
                        if with_note { "done" } else { "new" },
                        r.former_key
                    ])
                })
                .collect();
            serde_json::to_string(&rows).map_err(|e| Error::Store(e.to_string()))
        };
        let with_notes = new.iter().filter(|r| r.note.is_some()).count();
        let mut sql = format!(
            "PRAGMA busy_timeout = {}; BEGIN IMMEDIATE; PRAGMA busy_timeout = {}; {} {} INSERT INTO burst_guard (ok) VALUES (changes() = $3);",
            super::WRITER_PATIENCE.as_millis(),
            super::BUSY_TIMEOUT.as_millis(),
            insert_receipts(1),
            insert_receipts(2)
        );
        let mut q_args = Vec::with_capacity(sealed.len());
        for (g, s) in sealed.iter().enumerate() {
            sql.push_str(&incident_statements(4 + g * 6));
            q_args.push((s.rows()?, s.end(), s.from, s.incident));
        }
        sql.push_str(" COMMIT;");
        // The lock's patience, BEGIN, the usual patience, two inserts and a guard, three
        // statements an incident, COMMIT.
        let statements = 6 + 3 * sealed.len() + 1;
        // Prepared once and kept for the usual shapes (notes for one or a few incidents); a
        // burst across many incidents is a statement list of its own, not worth keeping.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .persistent(sealed.len() <= 4)
            .bind(receipt_rows(false)?)
            .bind(receipt_rows(true)?)
            .bind(with_notes as i64);
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

        let slot = match self.burst_writer.take(&self.writer).await {
            Ok(slot) => slot,
            Err(e) => return Ok(Burst::NotBegun(e)),
        };
        // Until the batch is known committed or rolled back, a connection dropped with it (the
        // caller gave up waiting) is closed, never given to the next writer mid-transaction.
        let mut open = OpenTransaction { slot, ended: false };
        let conn = open.slot.conn.as_mut().expect("taken above");
        let mut ids: HashMap<String, i64> = HashMap::with_capacity(new.len());
        let mut ran = 0usize;
        let outcome = {
            // sqlx deprecates several statements in one prepared query, but SQLite is the one
            // driver that runs them, and `raw_sql` cannot bind: one round trip through the
            // driver's thread instead of five or more is what this file exists for.
            #[allow(deprecated)]
            let mut results = q.fetch_many(&mut **conn);
            loop {
                match results.try_next().await {
                    Ok(Some(sqlx::Either::Left(_))) => ran += 1,
                    // `PRAGMA busy_timeout` answers with the value set.
                    Ok(Some(sqlx::Either::Right(row))) if row.columns().len() == 1 => {}
                    Ok(Some(sqlx::Either::Right(row))) => {
                        match (row.try_get("key"), row.try_get("id")) {
                            (Ok(key), Ok(id)) => {
                                ids.insert(key, id);
                            }
                            (Err(e), _) | (_, Err(e)) => break Err(e),
                        }
                    }
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                }
            }
        };
        if outcome.is_err() || ran != statements {
            // Stopped before or at its COMMIT: nothing of it is kept. (SQLite ends the
            // transaction itself after some errors; then there is none to roll back.)
            let rolled_back = match sqlx::query("ROLLBACK").execute(&mut **conn).await {
                Ok(_) => true,
                Err(e) => e.to_string().contains("no transaction is active"),
            };
            // Stopped before the usual patience was set again (the lock was not had): the
            // list's first three statements set it, begin and set it back.
            let patient = ran >= 3
                || sqlx::query(sqlx::AssertSqlSafe(format!(
                    "PRAGMA busy_timeout = {}",
                    super::BUSY_TIMEOUT.as_millis()
                )))
                .execute(&mut **conn)
                .await
                .is_ok();
            if rolled_back && patient {
                open.ended();
            }
            for s in &sealed {
                self.chain_ends.forget(s.incident);
            }
            return match outcome {
                // Another process holds the write lock (or the transaction could not begin):
                // nothing was recorded, and the person is told so at once.
                Err(e) if ran < 2 => Ok(Burst::NotBegun(Error::Store(format!(
                    "the write lock was not free within {} ms (another process holds it?): {}",
                    super::WRITER_PATIENCE.as_millis(),
                    super::rows::plain_db_message(&e)
                )))),
                Err(e) if !is_guard(&e) => Err(db(e)),
                _ => Ok(Burst::Declined),
            };
        }
        open.ended();
        for s in &sealed {
            self.chain_ends.set(s.incident, s.end());
        }
        Ok(Burst::Stored(
            new.iter()
                .map(|r| match (ids.remove(r.key.as_str()), &r.note) {
                    (Some(id), Some(_)) => ReceiptFate::Applied(id),
                    (Some(id), None) => ReceiptFate::Stored(id),
                    (None, _) => ReceiptFate::Duplicate,
                })
                .collect(),
        ))
    }
}

/// What became of a burst.
enum Burst {
    /// Stored, with each receipt's fate.
    Stored(Vec<ReceiptFate>),
    /// Nothing stored (a stale view, a note's receipt a duplicate): stored the ordinary way.
    Declined,
    /// Nothing stored and not worth trying again at once: no connection, or the write lock
    /// held by another process.
    NotBegun(Error),
}

/// Whether `e` is the guard's refusal (a stale view), not the database failing.
fn is_guard(e: &sqlx::Error) -> bool {
    e.to_string()
        .contains("a burst sealed against a stale view was refused")
}

/// The write connection while a batch's transaction may be open on it: dropped before `ended`
/// (the caller stopped waiting, or the rollback failed), the connection is closed instead of
/// kept or given back, so no other writer ever runs inside that transaction.
struct OpenTransaction<'a> {
    slot: tokio::sync::MutexGuard<'a, Slot>,
    ended: bool,
}

impl OpenTransaction<'_> {
    fn ended(&mut self) {
        self.ended = true;
    }
}

impl Drop for OpenTransaction<'_> {
    fn drop(&mut self) {
        if !self.ended
            && let Some(mut conn) = self.slot.conn.take()
        {
            conn.close_on_drop();
        }
    }
}
