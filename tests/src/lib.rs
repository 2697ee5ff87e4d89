//! Test harness: a fresh database per test (a temporary SQLite file, or a PostgreSQL schema of its
//! own), an engine on the simulated world with a clock the test moves, and a recording outbox.
//!
//! PostgreSQL: `ERLMCP_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//! With `ERLMCP_REQUIRE_POSTGRES=1` (CI sets it) a PostgreSQL test fails if the server is not
//! there; without it, it is skipped with a note.

pub mod alertmanager;
pub mod discord;
pub mod fakes;
pub mod proxy;
pub mod slack_fake;

use erlmcp_bot::store::{self, PgStore, SqliteStore};
use erlmcp_handlers::approval::Actor;
use erlmcp_handlers::clock::ManualClock;
use erlmcp_handlers::engine::{Engine, Request, Settings};
use erlmcp_handlers::executor::Executor;
use erlmcp_handlers::executor::simulated::Simulated;
use erlmcp_handlers::playbook::PlaybookSet;
use erlmcp_handlers::reply::{Outbox, Reply};
use erlmcp_handlers::store::Store;
use erlmcp_handlers::timeline::Source;
use erlmcp_handlers::topology::Topology;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn postgres_url() -> String {
    std::env::var("ERLMCP_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn postgres_required() -> bool {
    std::env::var("ERLMCP_REQUIRE_POSTGRES").is_ok_and(|v| v == "1" || v == "true")
}

/// A database for one test. Dropping it removes the PostgreSQL schema.
pub struct TestDb {
    pub backend: Backend,
    pub store: Arc<dyn Store>,
    /// For SQLite: the file, so tests can open it directly (tamper tests).
    pub sqlite_path: Option<std::path::PathBuf>,
    pub sqlite: Option<SqliteStore>,
    pub postgres: Option<PgStore>,
    /// The PostgreSQL schema, so a second "replica" can connect to the same data.
    pub pg_schema: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn pg_options(schema: &str) -> sqlx::postgres::PgConnectOptions {
    sqlx::postgres::PgConnectOptions::from_str(&postgres_url())
        .expect("ERLMCP_TEST_POSTGRES_URL parses")
        .options([("search_path", schema)])
}

impl TestDb {
    /// `None` when PostgreSQL is not available and not required.
    pub async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let path = dir.path().join("erlmcp-bot.db");
                let s = store::open_sqlite(&format!("sqlite://{}", path.display()))
                    .await
                    .expect("open sqlite");
                Some(TestDb {
                    backend,
                    store: Arc::new(s.clone()),
                    sqlite_path: Some(path),
                    sqlite: Some(s),
                    postgres: None,
                    pg_schema: None,
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => {
                let admin = sqlx::postgres::PgPoolOptions::new()
                    .acquire_timeout(std::time::Duration::from_secs(5))
                    .connect(&postgres_url())
                    .await;
                let admin = match admin {
                    Ok(p) => p,
                    Err(e) if !postgres_required() => {
                        eprintln!(
                            "note: PostgreSQL test skipped ({e}); set ERLMCP_REQUIRE_POSTGRES=1 to make this a failure"
                        );
                        return None;
                    }
                    Err(e) => panic!(
                        "PostgreSQL is required (ERLMCP_REQUIRE_POSTGRES=1) but {} is unreachable: {e}",
                        postgres_url()
                    ),
                };
                let schema = format!(
                    "erlmcp_t{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::SeqCst)
                );
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {schema} CASCADE"
                )))
                .execute(&admin)
                .await
                .expect("drop schema");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                    .execute(&admin)
                    .await
                    .expect("create schema");
                admin.close().await;
                let s = store::open_postgres_with(pg_options(&schema), &postgres_url())
                    .await
                    .expect("open postgres");
                Some(TestDb {
                    backend,
                    store: Arc::new(s.clone()),
                    sqlite_path: None,
                    sqlite: None,
                    postgres: Some(s),
                    pg_schema: Some(schema),
                    _dir: None,
                })
            }
        }
    }

    /// Another connection pool on the same data whose timeline entries are keyed with `key`.
    pub async fn keyed(&self, key: erlmcp_handlers::timeline::TimelineKey) -> Arc<dyn Store> {
        match self.backend {
            Backend::Sqlite => {
                let path = self.sqlite_path.as_ref().expect("sqlite path");
                Arc::new(
                    store::open_sqlite(&format!("sqlite://{}", path.display()))
                        .await
                        .expect("open keyed")
                        .with_timeline_key(Some(key)),
                )
            }
            Backend::Postgres => {
                let schema = self.pg_schema.as_ref().expect("schema");
                Arc::new(
                    store::open_postgres_with(pg_options(schema), &postgres_url())
                        .await
                        .expect("open keyed")
                        .with_timeline_key(Some(key)),
                )
            }
        }
    }

    /// What an attacker with write access but without the timeline key can do: drop the guard
    /// triggers, replace `from` with `to` in every entry (actor, text, facts), recompute every
    /// hash and the incident's recorded head. MACs are left as they were (making them needs the key).
    pub async fn rewrite_timeline(
        &self,
        id: &erlmcp_handlers::ids::IncidentId,
        from: &str,
        to: &str,
    ) {
        use erlmcp_handlers::timeline::entry_hash;
        let mut entries = self.store.timeline(id).await.expect("timeline");
        let mut prev = erlmcp_handlers::timeline::GENESIS_HASH.to_string();
        for e in entries.iter_mut() {
            e.actor = e.actor.replace(from, to);
            e.actor_id = e.actor_id.replace(from, to);
            e.text = e.text.replace(from, to);
            let facts = serde_json::to_string(&e.facts).unwrap().replace(from, to);
            e.facts = serde_json::from_str(&facts).unwrap();
            e.prev_hash = prev.clone();
            e.hash = entry_hash(&e.incident, e.seq, &e.draft(), &e.prev_hash);
            prev = e.hash.clone();
        }
        let update = "UPDATE timeline SET actor = $1, text = $2, data = $3, prev_hash = $4, hash = $5, actor_id = $8 WHERE incident_id = $6 AND seq = $7";
        let head = "UPDATE incidents SET timeline_head = $1 WHERE id = $2";
        macro_rules! apply {
            ($pool:expr, $drop:expr) => {{
                let pool = $pool;
                sqlx::query($drop)
                    .execute(pool)
                    .await
                    .expect("drop the guard");
                for e in &entries {
                    let data =
                        (!e.facts.is_empty()).then(|| serde_json::to_string(&e.facts).unwrap());
                    sqlx::query(update)
                        .bind(&e.actor)
                        .bind(&e.text)
                        .bind(data)
                        .bind(&e.prev_hash)
                        .bind(&e.hash)
                        .bind(e.incident.as_str())
                        .bind(e.seq)
                        .bind(&e.actor_id)
                        .execute(pool)
                        .await
                        .expect("rewrite");
                }
                sqlx::query(head)
                    .bind(&prev)
                    .bind(id.as_str())
                    .execute(pool)
                    .await
                    .expect("head");
            }};
        }
        match self.backend {
            Backend::Sqlite => {
                let s = self.sqlite.as_ref().expect("sqlite");
                apply!(s.pool(), "DROP TRIGGER IF EXISTS timeline_no_update");
            }
            Backend::Postgres => {
                let s = self.postgres.as_ref().expect("postgres");
                apply!(
                    s.pool(),
                    "DROP TRIGGER IF EXISTS timeline_no_update_or_delete ON timeline"
                );
            }
        }
    }

    /// Another, independent connection pool on the same data: a second bot replica.
    pub async fn replica(&self) -> Arc<dyn Store> {
        match self.backend {
            Backend::Sqlite => {
                let path = self.sqlite_path.as_ref().expect("sqlite path");
                Arc::new(
                    store::open_sqlite(&format!("sqlite://{}", path.display()))
                        .await
                        .expect("open replica"),
                )
            }
            Backend::Postgres => {
                let schema = self.pg_schema.as_ref().expect("schema");
                Arc::new(
                    store::open_postgres_with(pg_options(schema), &postgres_url())
                        .await
                        .expect("open replica"),
                )
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(schema) = self.pg_schema.take() {
            // Drop runs outside async: a short-lived runtime of its own removes the schema.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async {
                    if let Ok(pool) = sqlx::PgPool::connect(&postgres_url()).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP SCHEMA IF EXISTS {schema} CASCADE"
                        )))
                        .execute(&pool)
                        .await;
                        pool.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// Runs the `erlmcp-bot` command line in-process with `args` (without the program name) and
/// `input` as standard input; returns the exit code and everything printed.
pub async fn cli(args: &[&str], input: &str) -> (u8, String) {
    let buffer = Arc::new(Mutex::new(Vec::<u8>::new()));
    let screen: erlmcp_bot::console::Screen = buffer.clone();
    let mut argv = vec!["erlmcp-bot".to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let code = erlmcp_bot::cli::run(
        argv,
        tokio::io::BufReader::new(std::io::Cursor::new(input.as_bytes().to_vec())),
        screen,
        false,
    )
    .await;
    let out = String::from_utf8(buffer.lock().unwrap().clone()).expect("utf-8 output");
    (code, out)
}

/// Records what the engine posts outside replies (step progress, expiry notices).
#[derive(Default, Clone)]
pub struct RecordingOutbox(pub Arc<Mutex<Vec<(String, Reply)>>>);

#[async_trait::async_trait]
impl Outbox for RecordingOutbox {
    async fn post(&self, channel: &str, reply: Reply) {
        self.0.lock().unwrap().push((channel.to_string(), reply));
    }
}

impl RecordingOutbox {
    pub fn texts(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, r)| r.text.clone())
            .collect()
    }
}

/// An engine on the simulated world, a manual clock and a recording outbox.
pub struct TestApp {
    pub db: TestDb,
    pub engine: Engine,
    pub sim: Simulated,
    pub clock: Arc<ManualClock>,
    pub outbox: RecordingOutbox,
}

pub fn start_time() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-11-28T14:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc)
}

pub fn test_settings() -> Settings {
    let mut s = Settings {
        retry_base_ms: 1,
        ..Settings::default()
    };
    s.groups
        .insert("security".into(), ["sam".to_string()].into_iter().collect());
    s.bots.insert("deploybot".into());
    s
}

impl TestApp {
    pub async fn new(backend: Backend) -> Option<TestApp> {
        Self::with_settings(backend, test_settings()).await
    }

    pub async fn with_settings(backend: Backend, settings: Settings) -> Option<TestApp> {
        let db = TestDb::new(backend).await?;
        let sim = Simulated::new(Topology::runbook_default());
        let clock = Arc::new(ManualClock::new(start_time()));
        let outbox = RecordingOutbox::default();
        let engine = engine_on(
            db.store.clone(),
            Arc::new(sim.clone()),
            clock.clone(),
            outbox.clone(),
            settings,
        );
        Some(TestApp {
            db,
            engine,
            sim,
            clock,
            outbox,
        })
    }

    /// `who` says `text` in the `console` channel.
    pub async fn say(&self, who: &str, text: &str) -> Vec<Reply> {
        self.engine.handle(&request(who, text)).await
    }

    /// Like `say`, and asserts a single reply that is not an error.
    pub async fn ok(&self, who: &str, text: &str) -> String {
        let r = self.say(who, text).await;
        assert!(
            !r.is_empty() && r.iter().all(|r| !r.is_error),
            "`{text}` by {who} was refused: {r:#?}"
        );
        r.iter()
            .map(|r| r.text.clone())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Like `say`, and asserts an error reply; returns its text.
    pub async fn refused(&self, who: &str, text: &str) -> String {
        let r = self.say(who, text).await;
        assert!(
            r.len() == 1 && r[0].is_error,
            "`{text}` by {who} should have been refused: {r:#?}"
        );
        r[0].text.clone()
    }

    pub async fn timeline_len(&self) -> usize {
        let mut n = 0;
        for id in self.db.store.all_incident_ids().await.unwrap() {
            n += self.db.store.timeline(&id).await.unwrap().len();
        }
        n
    }
}

pub fn engine_on(
    store: Arc<dyn Store>,
    executor: Arc<dyn Executor>,
    clock: Arc<ManualClock>,
    outbox: RecordingOutbox,
    settings: Settings,
) -> Engine {
    engine_with(
        store,
        executor,
        clock,
        outbox,
        settings,
        Topology::runbook_default(),
    )
}

/// An engine on a given topology (live tests point health URLs and zones at stand-ins).
pub fn engine_with(
    store: Arc<dyn Store>,
    executor: Arc<dyn Executor>,
    clock: Arc<ManualClock>,
    outbox: RecordingOutbox,
    settings: Settings,
    topo: Topology,
) -> Engine {
    let playbooks = PlaybookSet::builtin(&topo).expect("built-in playbooks");
    Engine::new(
        store,
        executor,
        Arc::new(outbox),
        clock,
        Arc::new(topo),
        Arc::new(playbooks),
        settings,
    )
}

pub fn request(who: &str, text: &str) -> Request {
    Request {
        actor: Actor::person(who),
        source: Source::Console,
        channel: "console".into(),
        text: text.into(),
    }
}

/// Generates one `#[tokio::test]` per backend for an `async fn(Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::Backend::Postgres).await })*
        }
    };
}

/// Wraps an executor and, for one step kind, stops inside `apply` for ever (optionally after the
/// change took effect): what a process killed in the middle of a step looks like from outside.
#[derive(Clone)]
pub struct Gate {
    inner: Arc<dyn Executor>,
    hang: Arc<Mutex<Option<(String, bool)>>>,
    pub reached: Arc<tokio::sync::Notify>,
}

impl Gate {
    pub fn new(inner: Arc<dyn Executor>) -> Self {
        Self {
            inner,
            hang: Arc::default(),
            reached: Arc::default(),
        }
    }

    /// The next `apply` of `kind` hangs; if `after_effect`, the change is made first.
    pub fn hang_on(&self, kind: &str, after_effect: bool) {
        *self.hang.lock().unwrap() = Some((kind.to_string(), after_effect));
    }
}

#[async_trait::async_trait]
impl Executor for Gate {
    fn mode(&self) -> erlmcp_handlers::executor::Mode {
        self.inner.mode()
    }

    async fn observe(
        &self,
        a: &erlmcp_handlers::executor::Action,
    ) -> Result<erlmcp_handlers::executor::Observation, erlmcp_handlers::executor::ExecError> {
        self.inner.observe(a).await
    }

    async fn apply(
        &self,
        a: &erlmcp_handlers::executor::Action,
    ) -> Result<String, erlmcp_handlers::executor::ExecError> {
        let hang = {
            let mut h = self.hang.lock().unwrap();
            match h.as_ref() {
                Some((kind, after)) if kind == a.kind() => {
                    let after = *after;
                    *h = None;
                    Some(after)
                }
                _ => None,
            }
        };
        if let Some(after_effect) = hang {
            if after_effect {
                self.inner.apply(a).await?;
            }
            self.reached.notify_one();
            std::future::pending::<()>().await;
        }
        self.inner.apply(a).await
    }
}
