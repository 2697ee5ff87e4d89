//! Very large incidents: a timeline of a million entries checked with `timeline verify`, and a
//! postmortem of a hundred thousand, each timed with its peak memory, on SQLite and PostgreSQL.
//! The entries are sealed into a real chain (the same code the bot uses) and loaded in bulk.

use erlmcp_handlers::ids::IncidentId;
use erlmcp_handlers::store::NewIncident;
use erlmcp_handlers::timeline::{self, Draft, Source};
use std::path::Path;
use std::time::Duration;

/// A PostgreSQL schema of its own for the run, when the server answers.
pub struct PgSchema {
    pub url: String,
    schema: String,
    admin: String,
}

impl PgSchema {
    pub async fn create() -> Option<PgSchema> {
        let admin = std::env::var("ERLMCP_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let pool = sqlx::PgPool::connect(&admin).await.ok()?;
        let schema = format!("erlmcp_bench_{}", std::process::id());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&pool)
            .await
            .ok()?;
        pool.close().await;
        let mut url = url::Url::parse(&admin).ok()?;
        url.query_pairs_mut()
            .append_pair("options[search_path]", &schema);
        Some(PgSchema {
            url: url.to_string(),
            schema,
            admin,
        })
    }

    pub async fn drop(self) {
        if let Ok(pool) = sqlx::PgPool::connect(&self.admin).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA {} CASCADE",
                self.schema
            )))
            .execute(&pool)
            .await;
        }
    }
}

/// Declares an incident and gives it `n` entries in all, chained as the bot chains them.
async fn large_incident(db_url: &str, n: i64) -> IncidentId {
    let opened = erlmcp_bot::store::open(db_url, None).await.expect("open");
    let at = chrono::Utc::now() - chrono::Duration::days(1);
    let inc = opened
        .store
        .create_incident(
            NewIncident {
                title: format!("{n} entries"),
                severity: erlmcp_handlers::severity::Severity::P1,
                channel: format!("C_BIG_{n}"),
                drill: false,
                declared_by: "bench".into(),
                declared_at: at,
            },
            vec![Draft {
                at,
                actor: "bench".into(),
                actor_id: "U_BENCH".into(),
                source: Source::Console,
                kind: "declared".into(),
                text: "Declared P1 (High): large".into(),
                facts: Vec::new(),
            }],
        )
        .await
        .expect("declare");
    let head = opened
        .store
        .timeline_head(&inc.id)
        .await
        .expect("head")
        .expect("head");
    let (mut seq, mut hash) = (head.len, head.hash);
    let bulk = Bulk::connect(db_url).await;
    let mut rows = Vec::with_capacity(10_000);
    while seq < n {
        rows.clear();
        while seq < n && rows.len() < 10_000 {
            let draft = Draft {
                at: at + chrono::Duration::milliseconds(seq),
                actor: "bob".into(),
                actor_id: "U_BOB".into(),
                source: Source::Slack,
                kind: "note".into(),
                text: format!(
                    "note {seq}: p99 back under 200 ms in us-east-1 after the cache flush"
                ),
                facts: Vec::new(),
            };
            let e = timeline::seal(
                &inc.id,
                Some(timeline::Prev {
                    seq,
                    hash: &hash,
                    mac: None,
                }),
                draft,
                None,
            );
            seq = e.seq;
            hash = e.hash.clone();
            rows.push(e);
        }
        bulk.insert(&rows).await;
    }
    bulk.set_head(&inc.id, seq, &hash).await;
    inc.id
}

/// Loads entries straight into the database, many rows a statement.
enum Bulk {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

const COLUMNS: &str = "incident_id, seq, at, actor, actor_id, source, kind, text, prev_hash, hash";

macro_rules! insert_rows {
    ($pool:expr, $rows:expr, $per:expr) => {{
        let mut tx = $pool.begin().await.expect("begin");
        for chunk in $rows.chunks($per) {
            let mut sql = format!("INSERT INTO timeline ({COLUMNS}) VALUES ");
            for i in 0..chunk.len() {
                let b = i * 10;
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!(
                    "(${},${},${},${},${},${},${},${},${},${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7,
                    b + 8,
                    b + 9,
                    b + 10
                ));
            }
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for e in chunk {
                q = q
                    .bind(e.incident.as_str())
                    .bind(e.seq)
                    .bind(e.at)
                    .bind(&e.actor)
                    .bind(&e.actor_id)
                    .bind(e.source.as_str())
                    .bind(&e.kind)
                    .bind(&e.text)
                    .bind(&e.prev_hash)
                    .bind(&e.hash);
            }
            q.execute(&mut *tx).await.expect("insert");
        }
        tx.commit().await.expect("commit");
    }};
}

impl Bulk {
    async fn connect(db_url: &str) -> Bulk {
        if db_url.starts_with("sqlite:") {
            Bulk::Sqlite(sqlx::SqlitePool::connect(db_url).await.expect("sqlite"))
        } else {
            Bulk::Postgres(sqlx::PgPool::connect(db_url).await.expect("postgres"))
        }
    }

    async fn insert(&self, rows: &[timeline::Entry]) {
        match self {
            Bulk::Sqlite(p) => insert_rows!(p, rows, 500),
            Bulk::Postgres(p) => insert_rows!(p, rows, 1000),
        }
    }

    async fn set_head(&self, id: &IncidentId, len: i64, hash: &str) {
        let sql = "UPDATE incidents SET timeline_len = $1, timeline_head = $2 WHERE id = $3";
        match self {
            Bulk::Sqlite(p) => sqlx::query(sql)
                .bind(len)
                .bind(hash)
                .bind(id.as_str())
                .execute(p)
                .await
                .map(|_| ()),
            Bulk::Postgres(p) => sqlx::query(sql)
                .bind(len)
                .bind(hash)
                .bind(id.as_str())
                .execute(p)
                .await
                .map(|_| ()),
        }
        .expect("set the head");
    }
}

fn row(what: &str, entries: i64, took: Duration, peak_kb: u64, code: i32) {
    println!(
        "| {what} | {entries} | {:.2} s | {:.1} MB{} |",
        took.as_secs_f64(),
        peak_kb as f64 / 1024.0,
        if code == 0 {
            String::new()
        } else {
            format!(" (exit {code})")
        }
    );
}

/// Times `timeline verify` of 1,000,000 entries and `postmortem` of 100,000, per backend.
pub async fn report(bin: &str, work: &Path, pg: Option<&PgSchema>) {
    let sqlite = format!("sqlite://{}", work.join("big.db").display());
    let mut backends = vec![("SQLite", sqlite)];
    if let Some(pg) = pg {
        backends.push(("PostgreSQL", pg.url.clone()));
    }
    for (name, url) in backends {
        let million = large_incident(&url, 1_000_000).await;
        let (took, peak, code, out) = crate::procs::measure(
            bin,
            &["timeline", "verify", million.as_str()],
            &[("DATABASE_URL", &url)],
        );
        if !out.contains("intact") {
            println!("(verify said: {})", out.trim());
        }
        row(
            &format!("`timeline verify`, {name}"),
            1_000_000,
            took,
            peak,
            code,
        );
        let lakh = large_incident(&url, 100_000).await;
        let (took, peak, code, _) = crate::procs::measure(
            bin,
            &["postmortem", lakh.as_str()],
            &[("DATABASE_URL", &url)],
        );
        row(&format!("`postmortem`, {name}"), 100_000, took, peak, code);
    }
}
