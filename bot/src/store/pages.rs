//! Long timelines read a page at a time, each page as one row: the database folds the page's
//! entries into one JSON array and serde reads it. Read row by row, sqlx spends most of
//! `timeline verify` of a million entries handing single rows between threads (SQLite) or
//! decoding them one by one (PostgreSQL); folded, a page is one round trip and one string.
//! (`COPY … TO STDOUT` was tried for PostgreSQL: through sqlx it took 0.3 s a page.)

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
pub(crate) async fn parse_aside(incident: &IncidentId, page: String) -> Result<Vec<Entry>> {
    let incident = incident.clone();
    tokio::task::spawn_blocking(move || entries(&incident, &page))
        .await
        .map_err(|e| erlmcp_handlers::Error::Store(format!("reading the timeline failed: {e}")))?
}

/// The query that folds the page of up to `$3` entries after position `$2` of incident `$1`
/// into one JSON array, in `column order above, as the column `page`.
pub(crate) trait FoldedPage {
    const SQL: &'static str;
}

impl FoldedPage for sqlx::Sqlite {
    const SQL: &'static str = "SELECT json_group_array(json_array(seq, at, actor, actor_id, source, kind, text, prev_hash, hash, data, mac)) AS page FROM (SELECT seq, at, actor, actor_id, source, kind, text, prev_hash, hash, data, mac FROM timeline WHERE incident_id = $1 AND seq > $2 ORDER BY seq LIMIT $3)";
}

/// Plain rows were measured too: 17.1 s for a million entries against 11.8 s folded
/// (`bench/run`, 2026-11-29), though PostgreSQL spends about 3 µs an entry building the JSON.
impl FoldedPage for sqlx::Postgres {
    const SQL: &'static str = "SELECT COALESCE(json_agg(json_build_array(seq, at, actor, actor_id, source, kind, text, prev_hash, hash, data, mac) ORDER BY seq), '[]')::text AS page FROM (SELECT seq, at, actor, actor_id, source, kind, text, prev_hash, hash, data, mac FROM timeline WHERE incident_id = $1 AND seq > $2 ORDER BY seq LIMIT $3) AS p";
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
