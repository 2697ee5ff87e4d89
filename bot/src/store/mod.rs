//! Storage: the core's `Store` trait on SQLite (the embedded default, a file created on first run)
//! and PostgreSQL (production). One SQL text serves both where it can; the differences are the
//! transaction start and row locks, passed into one macro-generated implementation.

#[macro_use]
mod sql;
#[macro_use]
mod runs;
#[macro_use]
mod receipts;
pub mod chat;
mod note_burst;
pub(crate) mod pages;
pub(crate) mod rows;

use crate::error::Error;
use erlmcp_handlers::store::Store;
use erlmcp_handlers::timeline::TimelineKey;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// SQLite: reads through a small pool; every write through one connection, so writers queue
/// without waiting on SQLite's busy handler (which sleeps, by the millisecond) and batches run
/// back to back.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: SqlitePool,
    /// Keys the timeline chain (`ERLMCP_TIMELINE_KEY`), when set.
    key: Option<Arc<TimelineKey>>,
    /// Where incidents' chains end, as this process last saw them (see `note_burst`).
    chain_ends: note_burst::ChainEnds,
    /// The write connection, kept across back-to-back bursts of receipts.
    burst_writer: note_burst::BurstWriter,
    /// Held by every copy of the store; the checkpointer stops when the last is dropped.
    _alive: Arc<()>,
}

/// PostgreSQL: one pool (the server handles concurrent writers with row locks).
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    writer: PgPool,
    key: Option<Arc<TimelineKey>>,
}

impl SqliteStore {
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The one connection writes go through.
    pub fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// The same store, writing keyed entries with `key`.
    pub fn with_timeline_key(self, key: Option<TimelineKey>) -> Self {
        Self {
            key: key.map(Arc::new),
            ..self
        }
    }
}

impl PgStore {
    /// Receipts and their notes, as any other transaction: PostgreSQL's round trips are the
    /// network's, not a thread's.
    pub(crate) async fn record_receipts_here(
        &self,
        new: &[erlmcp_handlers::store::NewReceipt],
    ) -> erlmcp_handlers::error::Result<Vec<erlmcp_handlers::store::ReceiptFate>> {
        self.record_receipts_plainly(new).await
    }

    /// Nothing to give back: every transaction takes a connection from the pool.
    pub(crate) async fn pause_receipts(&self) {}

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn writer(&self) -> &PgPool {
        &self.writer
    }

    pub fn with_timeline_key(self, key: Option<TimelineKey>) -> Self {
        Self {
            key: key.map(Arc::new),
            ..self
        }
    }
}

sql_store!(SqliteStore, sqlx::Sqlite, "BEGIN IMMEDIATE", "", "SELECT 1");
sql_store!(
    PgStore,
    sqlx::Postgres,
    "BEGIN",
    " FOR UPDATE",
    "SELECT pg_advisory_xact_lock(7274010)"
);
run_store!(SqliteStore, sqlx::Sqlite, "", "");
run_store!(
    PgStore,
    sqlx::Postgres,
    " FOR UPDATE",
    " FOR UPDATE SKIP LOCKED"
);
receipt_store!(SqliteStore, sqlx::Sqlite);
receipt_store!(PgStore, sqlx::Postgres);

/// A connected store, and what to say about it at start.
pub struct Opened {
    pub store: Arc<dyn Store>,
    /// The same database, for chat adapters' bookkeeping.
    pub chat: Arc<dyn chat::ChatStore>,
    pub description: String,
    /// Pings the database, for readiness probes.
    pub ping: Arc<dyn Fn() -> futures_ping::PingFuture + Send + Sync>,
}

pub mod futures_ping {
    pub type PingFuture =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>;
}

/// Opens the database a URL names (`sqlite://path` or `postgres://...`) and applies migrations.
pub async fn open(url: &str, key: Option<TimelineKey>) -> Result<Opened, Error> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = open_postgres(url).await?.with_timeline_key(key);
        let pool = store.pool.clone();
        Ok(Opened {
            description: format!("PostgreSQL {}", redact_url(url)),
            chat: Arc::new(store.clone()),
            store: Arc::new(store),
            ping: Arc::new(move || {
                let pool = pool.clone();
                Box::pin(async move {
                    sqlx::query("SELECT 1")
                        .execute(&pool)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                })
            }),
        })
    } else if url.starts_with("sqlite:") {
        let store = open_sqlite(url).await?.with_timeline_key(key);
        let pool = store.pool.clone();
        Ok(Opened {
            description: format!(
                "SQLite {}",
                url.trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:")
            ),
            chat: Arc::new(store.clone()),
            store: Arc::new(store),
            ping: Arc::new(move || {
                let pool = pool.clone();
                Box::pin(async move {
                    sqlx::query("SELECT 1")
                        .execute(&pool)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                })
            }),
        })
    } else {
        Err(Error::Config(format!(
            "DATABASE_URL `{}` is neither sqlite:… nor postgres://…; e.g. sqlite://erlmcp-bot.db or postgres://user@host/db",
            redact_url(url)
        )))
    }
}

pub async fn open_sqlite(url: &str) -> Result<SqliteStore, Error> {
    let opts = SqliteConnectOptions::from_str(url)
        .map_err(|e| Error::Database(format!("bad SQLite URL `{url}`: {e}")))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT);
    let pool = SqlitePoolOptions::new()
        .max_connections(3)
        .connect_with(opts.clone())
        .await
        .map_err(|e| Error::Database(format!("cannot open SQLite database {url}: {e}")))?;
    SQLITE_MIGRATIONS
        .run(&pool)
        .await
        .map_err(|e| Error::Database(format!("migrating {url}: {e}")))?;
    // The writer never checkpoints the write-ahead log at a commit (that copies it into the
    // database file and syncs it, stalling every write queued behind it for milliseconds); a
    // background task does (`checkpoint_while`). Once the log has been copied whole, the next
    // write starts it again from its beginning, and a log that grew past the limit is cut back.
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::query("PRAGMA wal_autocheckpoint = 0")
                    .execute(&mut *conn)
                    .await?;
                // A batch's statements each keep, in a statement journal, the pages they change
                // (to undo that one statement); past 64 KB SQLite spills it to a temporary file
                // created, written and deleted per batch (perf showed the writer's thread
                // closing and evicting a deleted file's pages). In memory instead.
                sqlx::query("PRAGMA temp_store = MEMORY")
                    .execute(&mut *conn)
                    .await?;
                sqlx::query(WAL_SIZE_LIMIT).execute(&mut *conn).await?;
                sqlx::raw_sql(note_burst::BURST_GUARD)
                    .execute(conn)
                    .await
                    .map(|_| ())
            })
        })
        // A burst returns a row for each receipt stored; with sqlx's 50-row buffer SQLite's thread
        // stopped mid-transaction whenever a burst had more, until the busy async side read them.
        .connect_with(opts.clone().row_buffer_size(2 * crate::intake::MAX_BATCH))
        .await
        .map_err(|e| Error::Database(format!("cannot open SQLite database {url}: {e}")))?;
    let alive = Arc::new(());
    tokio::spawn(checkpoint_while(
        Arc::downgrade(&alive),
        pool.clone(),
        writer.clone(),
    ));
    Ok(SqliteStore {
        pool,
        writer,
        key: None,
        chain_ends: Default::default(),
        burst_writer: Default::default(),
        _alive: alive,
    })
}

/// How long a statement waits for a lock another process holds (SQLite's busy handler).
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long storing receipts waits for the write connection (and on SQLite, for a write lock
/// another process holds) before the person is told, for certain, that nothing was recorded:
/// within Slack's and Discord's 3 seconds.
pub(crate) const WRITER_PATIENCE: Duration = Duration::from_millis(1500);

/// The answer when `WRITER_PATIENCE` passed without a write connection.
pub(crate) fn no_writer_in_time() -> erlmcp_handlers::Error {
    erlmcp_handlers::Error::Store(format!(
        "no connection to the database within {} ms",
        WRITER_PATIENCE.as_millis()
    ))
}

/// How often the write-ahead log is copied into the database file. Each copy takes CPU and a
/// sync from the cores the writer runs on: every 250 ms, the 99th percentile at 32 connections
/// was 5.7-6.6 ms; every 500 ms (still restarted every second), 4.9-5.7 ms.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// The write-ahead log's size once it starts again: a log that grew past it is cut back. As
/// large as the log may grow before it is restarted (`RESTART_AT_FRAMES`), so a steady load
/// does not cut the file and grow it again every second.
const WAL_SIZE_LIMIT: &str = "PRAGMA journal_size_limit = 268435456";

/// A write-ahead log this many frames long (256 MB of 4 KB pages) is restarted at once.
const RESTART_AT_FRAMES: i64 = 65_536;

/// Otherwise the log is restarted every this many checkpoints (every second): a short log keeps
/// its index small (it is mapped into the process) and its pages in the cache.
const RESTART_EVERY: u32 = 2;

/// Checkpoints the write-ahead log for as long as the store is in use, in two steps. A reading
/// connection copies what it can while writes go on, every `CHECKPOINT_EVERY`. Every few of
/// those, or at once when the log has grown long, the writer copies the little written
/// meanwhile, between two of its transactions, so the log is copied whole and its next write
/// starts it again from the beginning. (With the first step alone the log was never copied
/// whole under a steady load, each write adding to it while it was copied: it grew by about
/// 100 MB a second at 8,000 notes a second, and its index, mapped into the process, with it.
/// The second step syncs the database file while the writer waits, so it is taken once a
/// second, not at every checkpoint.)
async fn checkpoint_while(alive: std::sync::Weak<()>, readers: SqlitePool, writer: SqlitePool) {
    use sqlx::Row;
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut since_restart = 0u32;
    let mut last_frames = 0i64;
    loop {
        every.tick().await;
        if alive.upgrade().is_none() {
            return;
        }
        // (busy, frames in the log, frames copied): everything in the log when it started is
        // usually copied, but a write made meanwhile keeps the log from starting again.
        let frames = match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&readers)
            .await
        {
            Ok(row) => row.try_get::<i64, _>(1).unwrap_or(0),
            Err(e) => {
                tracing::debug!(error = %e, "checkpoint skipped");
                continue;
            }
        };
        // A shorter log than last time started again by itself (a pause between writes).
        if frames < last_frames {
            since_restart = 0;
        }
        let written = frames > last_frames;
        last_frames = frames;
        since_restart += 1;
        if !written || (frames < RESTART_AT_FRAMES && since_restart < RESTART_EVERY) {
            continue;
        }
        since_restart = 0;
        // A second pass by a reader copies what was written during the first, so the writer is
        // left only the little written during the second (and two syncs): measured with the
        // writer copying everything written since the first pass, the 99th percentile at 128
        // connections doubled (38 ms).
        let _ = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&readers)
            .await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&writer)
            .await
        {
            tracing::debug!(error = %e, "checkpoint by the writer skipped");
        }
    }
}

pub async fn open_postgres(url: &str) -> Result<PgStore, Error> {
    let opts = PgConnectOptions::from_str(url)
        .map_err(|e| Error::Database(format!("bad PostgreSQL URL `{}`: {e}", redact_url(url))))?;
    open_postgres_with(opts, url).await
}

/// Opens PostgreSQL with explicit options (tests use a schema of their own through `search_path`).
pub async fn open_postgres_with(opts: PgConnectOptions, url: &str) -> Result<PgStore, Error> {
    // One connection first, so a refused connection, an unknown database or a wrong role is
    // said as PostgreSQL says it (a pool would only report that it timed out waiting). The
    // migrations run on it while the pool opens its first connection beside it (a task of its
    // own). Both are opened through `with_no_delay`: a connection whose handshake ran with
    // Nagle's algorithm on took about 90 ms over TLS here, not 5.
    use sqlx::ConnectOptions;
    let mut first =
        match tokio::time::timeout(Duration::from_secs(10), with_no_delay(opts.connect())).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                return Err(Error::Database(format!(
                    "cannot connect to PostgreSQL {}: {}",
                    redact_url(url),
                    rows::plain_db_message(&e)
                )));
            }
            Err(_) => {
                return Err(Error::Database(format!(
                    "cannot connect to PostgreSQL {}: no answer within 10 s",
                    redact_url(url)
                )));
            }
        };
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(|_, _| {
            Box::pin(async {
                no_delay_on_tcp_sockets();
                Ok(())
            })
        })
        .connect_lazy_with(opts);
    let warm = pool.clone();
    // Its failure, if any, is said by the first query that needs the pool.
    tokio::spawn(async move { drop(with_no_delay(warm.acquire()).await) });
    let migrated = POSTGRES_MIGRATIONS.run(&mut first).await;
    let _ = sqlx::Connection::close(first).await;
    migrated
        .map_err(|e| Error::Database(format!("migrating PostgreSQL {}: {e}", redact_url(url))))?;
    Ok(PgStore {
        writer: pool.clone(),
        pool,
        key: None,
    })
}

/// Runs `opening` (a connection being opened, or a pool acquisition that may open one) with
/// TCP_NODELAY set on its socket as soon as the socket exists: each time the future waits, the
/// process's TCP sockets are swept. sqlx 0.9.0 dropped the `set_nodelay(true)` it used to make
/// (its issue 4335, fixed upstream but not released), so a TLS handshake's last message and the
/// startup message after it each waited for the server's delayed acknowledgement: measured,
/// `timeline verify` of a million entries spent 0.5 s of its 2.3 s opening five connections.
/// Connections the pool opens by itself elsewhere get the option from `after_connect`, after
/// their handshake.
pub(crate) async fn with_no_delay<F: std::future::Future>(opening: F) -> F::Output {
    let mut opening = std::pin::pin!(opening);
    std::future::poll_fn(|cx| {
        let polled = opening.as_mut().poll(cx);
        if polled.is_pending() {
            no_delay_on_tcp_sockets();
        }
        polled
    })
    .await
}

/// Turns Nagle's algorithm off on this process's TCP sockets. sqlx 0.9 never sets TCP_NODELAY
/// on its PostgreSQL connections, so a statement whose message spans several segments (a
/// batch of 128 receipts) waits for the server's delayed acknowledgement before its last
/// segment goes: measured, 128 concurrent commands took 100 ms each over TCP and 12 ms over a
/// Unix socket. Called as each connection is made; the connection is not reachable through
/// sqlx, so every TCP socket of the process is set (the option only makes small writes go at
/// once, which every socket here wants).
#[cfg(target_os = "linux")]
fn no_delay_on_tcp_sockets() {
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    for fd in fds.flatten() {
        let Some(fd) = fd
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<libc::c_int>().ok())
        else {
            continue;
        };
        let mut kind: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt and setsockopt write at most `len` bytes into the given int; on a
        // descriptor that is not a socket (or closed since the listing) they fail and nothing
        // is changed.
        unsafe {
            let stream = libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_TYPE,
                (&mut kind as *mut libc::c_int).cast(),
                &mut len,
            ) == 0
                && kind == libc::SOCK_STREAM;
            let mut domain: libc::c_int = 0;
            let mut dlen = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            let inet = libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_DOMAIN,
                (&mut domain as *mut libc::c_int).cast(),
                &mut dlen,
            ) == 0
                && (domain == libc::AF_INET || domain == libc::AF_INET6);
            if stream && inet {
                let on: libc::c_int = 1;
                libc::setsockopt(
                    fd,
                    libc::IPPROTO_TCP,
                    libc::TCP_NODELAY,
                    (&on as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn no_delay_on_tcp_sockets() {}

/// Query parameters that carry secrets in database URLs (libpq and sqlx spellings).
const SECRET_PARAMS: &[&str] = &["password", "pass", "pwd", "sslpassword", "passfile"];

/// Hides the secrets of a database URL (the password in `user:pass@`, and `?password=` and its
/// kin in the query), for logs and messages. Text that is not a URL is returned as is, unless it
/// looks like it might hold a password, which is then hidden whole.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            let pairs: Vec<(String, String)> = parsed
                .query_pairs()
                .map(|(k, v)| {
                    let secret = SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str());
                    (
                        k.into_owned(),
                        if secret { "***".into() } else { v.into_owned() },
                    )
                })
                .collect();
            if !pairs.is_empty() {
                parsed.query_pairs_mut().clear().extend_pairs(pairs);
            }
            parsed.to_string()
        }
        Err(_) if url.contains('@') || url.to_ascii_lowercase().contains("pass") => {
            "(a database URL that could not be read; hidden because it may hold a password)".into()
        }
        Err(_) => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    /// A socket made inside `with_no_delay` has TCP_NODELAY by the time its future first writes
    /// after a wait, as a TLS handshake does (the option is off on a new socket).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_connection_opened_through_with_no_delay_has_it_before_its_first_write() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let after_a_wait = super::with_no_delay(async move {
                let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                tokio::task::yield_now().await;
                stream.nodelay().unwrap()
            })
            .await;
            assert!(
                after_a_wait,
                "TCP_NODELAY was not set while the opening waited"
            );
        });
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            super::redact_url("postgres://bot:s3cret@db:5432/erlmcp"),
            "postgres://bot:***@db:5432/erlmcp"
        );
        assert_eq!(
            super::redact_url("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
        assert_eq!(super::redact_url("sqlite://x.db"), "sqlite://x.db");
        let q = super::redact_url(
            "postgres://bot@db/erlmcp?sslmode=require&password=s3cret&PassWord=x2",
        );
        assert!(!q.contains("s3cret") && !q.contains("x2"), "{q}");
        assert!(q.contains("sslmode=require"), "{q}");
        assert_eq!(
            super::redact_url("postgres://bot:pa@ss@db:5432/erlmcp"),
            "postgres://bot:***@db:5432/erlmcp"
        );
    }
}
