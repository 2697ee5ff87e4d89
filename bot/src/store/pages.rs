//! Long timelines read a page at a time. SQLite folds a page's entries into one JSON array that
//! serde reads: row by row, sqlx hands each row between SQLite's thread and the task, and that
//! hand-over was most of `timeline verify` of a million entries. PostgreSQL sends plain rows,
//! read by column position: folding into JSON cost it about 7 µs an entry.
//!
//! Both read key ranges (`seq > after AND seq <= through`) for the bulk of a timeline: a
//! `LIMIT` page was planned by PostgreSQL, from a cached generic plan and statistics taken
//! before the timeline grew, as "every later entry, sorted" (0.2 s a page of a million-entry
//! timeline); a bounded range reads only its entries whatever the plan.

use super::rows::bad;
use chrono::{DateTime, NaiveDateTime, Utc};
use erlmcp_handlers::error::Result;
use erlmcp_handlers::ids::IncidentId;
use erlmcp_handlers::timeline::{Entry, Source};

/// One entry as the page's JSON array holds it: seq, at, actor, actor_id, source, kind, text,
/// prev_hash, hash, data, mac.
type PageRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

/// A stored time, however it was written: RFC 3339 (what sqlx writes into SQLite and what
/// PostgreSQL's JSON gives a `timestamptz`), or with a space and no offset (SQLite by hand).
fn stored_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%#z") {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|t| t.and_utc())
}

/// The entries of one page, in order.
fn entries(incident: &IncidentId, page: &str) -> Result<Vec<Entry>> {
    let rows: Vec<PageRow> =
        serde_json::from_str(page).map_err(|e| bad("timeline (page)", &e.to_string()))?;
    let mut out = Vec::with_capacity(rows.len());
    for (seq, at, actor, actor_id, source, kind, text, prev_hash, hash, data, mac) in rows {
        let facts = match data {
            Some(f) => serde_json::from_str(&f).map_err(|_| bad("data", &f))?,
            None => Vec::new(),
        };
        out.push(Entry {
            incident: incident.clone(),
            seq,
            at: stored_time(&at).ok_or_else(|| bad("at", &at))?,
            actor,
            actor_id,
            source: Source::parse(&source).ok_or_else(|| bad("source", &source))?,
            kind,
            text,
            prev_hash,
            hash,
            facts,
            mac,
        });
    }
    // An aggregate need not keep its input's order: put it back.
    out.sort_by_key(|e| e.seq);
    Ok(out)
}

/// Parses a page on a blocking thread, so the next page's query and this page's parsing run
/// side by side.
async fn parse_aside(incident: &IncidentId, page: String) -> Result<Vec<Entry>> {
    let incident = incident.clone();
    tokio::task::spawn_blocking(move || entries(&incident, &page))
        .await
        .map_err(|e| erlmcp_handlers::Error::Store(format!("reading the timeline failed: {e}")))?
}

/// How each backend reads a stretch of a timeline: the first `limit` entries after `after`,
/// up to and including position `through`.
pub(crate) trait TimelineRange: sqlx::Database + Sized {
    async fn range(
        pool: &sqlx::Pool<Self>,
        incident: &IncidentId,
        after: i64,
        through: i64,
        limit: i64,
    ) -> Result<Vec<Entry>>;
}

/// SQLite hands sqlx each row from its own thread: folded into one JSON array (column order of
/// `PageRow`), a stretch is one hand-over.
impl TimelineRange for sqlx::Sqlite {
    async fn range(
        pool: &sqlx::SqlitePool,
        incident: &IncidentId,
        after: i64,
        through: i64,
        limit: i64,
    ) -> Result<Vec<Entry>> {
        use sqlx::Row;
        let row = sqlx::query("SELECT json_group_array(json_array(seq, at, actor, actor_id, source, kind, text, prev_hash, hash, data, mac)) AS page FROM (SELECT seq, at, actor, actor_id, source, kind, text, prev_hash, hash, data, mac FROM timeline WHERE incident_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4)")
            .bind(incident.as_str())
            .bind(after)
            .bind(through)
            .bind(limit)
            .fetch_one(pool)
            .await
            .map_err(super::rows::db)?;
        let page: String = row.try_get("page").map_err(super::rows::db)?;
        parse_aside(incident, page).await
    }
}

/// PostgreSQL sends rows in one stream: read as rows, by column position (folded into JSON,
/// it spent about 7 µs an entry building the JSON), in a task of their own: stretches requested
/// ahead then arrive, decrypt and decode on every worker thread at once, not all in the task
/// that asked.
impl TimelineRange for sqlx::Postgres {
    async fn range(
        pool: &sqlx::PgPool,
        incident: &IncidentId,
        after: i64,
        through: i64,
        limit: i64,
    ) -> Result<Vec<Entry>> {
        let (pool, incident) = (pool.clone(), incident.clone());
        tokio::spawn(async move { pg_rows(&pool, &incident, after, through, limit).await })
            .await
            .map_err(|e| {
                erlmcp_handlers::Error::Store(format!("reading the timeline failed: {e}"))
            })?
    }
}

async fn pg_rows(
    pool: &sqlx::PgPool,
    incident: &IncidentId,
    after: i64,
    through: i64,
    limit: i64,
) -> Result<Vec<Entry>> {
    use super::rows::db;
    use sqlx::Row;
    // Ranges requested ahead open the pool's next connections: with TCP_NODELAY from the start.
    // An idle connection is taken as it is (acquiring one pings it first, and every wait of a
    // wrapped acquisition sweeps the process's sockets).
    let mut conn = match pool.try_acquire() {
        Some(idle) => idle,
        None => super::with_no_delay(pool.acquire()).await.map_err(db)?,
    };
    let rows = sqlx::query("SELECT seq, at, actor, actor_id, source, kind, text, prev_hash, hash, data, mac FROM timeline WHERE incident_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4")
        .bind(incident.as_str())
        .bind(after)
        .bind(through)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        // By position, and the text columns without a type check per value (about a tenth of
        // the decoding): any bytes are checked as UTF-8 either way. The number and the time are
        // checked, as their decoding trusts the value's length.
        let source: &str = row.try_get_unchecked(4).map_err(db)?;
        let data: Option<&str> = row.try_get_unchecked(9).map_err(db)?;
        out.push(Entry {
            incident: incident.clone(),
            seq: row.try_get(0).map_err(db)?,
            at: row.try_get(1).map_err(db)?,
            actor: row.try_get_unchecked(2).map_err(db)?,
            actor_id: row.try_get_unchecked(3).map_err(db)?,
            source: Source::parse(source).ok_or_else(|| bad("source", source))?,
            kind: row.try_get_unchecked(5).map_err(db)?,
            text: row.try_get_unchecked(6).map_err(db)?,
            prev_hash: row.try_get_unchecked(7).map_err(db)?,
            hash: row.try_get_unchecked(8).map_err(db)?,
            facts: match data {
                Some(f) => serde_json::from_str(f).map_err(|_| bad("data", f))?,
                None => Vec::new(),
            },
            mac: row.try_get_unchecked(10).map_err(db)?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_times_read_in_every_form_they_are_written() {
        let want: DateTime<Utc> = "2026-11-29T10:00:00.123456Z".parse().unwrap();
        for s in [
            "2026-11-29T10:00:00.123456+00:00",
            "2026-11-29T10:00:00.123456Z",
            "2026-11-29T11:00:00.123456+01:00",
            "2026-11-29 10:00:00.123456+00",
            "2026-11-29 10:00:00.123456",
        ] {
            assert_eq!(stored_time(s), Some(want), "{s}");
        }
        assert_eq!(stored_time("yesterday"), None);
    }
}
