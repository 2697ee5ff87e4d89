//! `bench/run` (or `cargo run --release -p erlmcp-bench`): how fast the released `erlmcp-bot`
//! acknowledges slash commands durably, beside a Bolt for Python app doing the same job on the
//! same machine in the same run; how soon every acknowledged note is on the timeline; memory;
//! start-up; and `timeline verify` and `postmortem` of very large incidents. Prints one report.

mod big;
mod load;
mod procs;
mod standin;

use load::{Measured, Target};
use procs::Child;
use std::time::{Duration, Instant};

const SECRET: &str = "bench-signing-secret-0123456789";
/// Length of each measured load run, as in the measurements.
const RUN: Duration = Duration::from_secs(8);
const WARMUP: Duration = Duration::from_secs(1);
/// How long after the load "RSS after" is read: what the process holds once it is idle again.
const SETTLE: Duration = Duration::from_secs(3);

/// One line of the table.
struct Row {
    name: String,
    at32: Measured,
    at128: Measured,
    /// Resident memory (kB) at its peak, and once the load has been over for `SETTLE`.
    rss_peak_kb: u64,
    rss_after_kb: u64,
    drain: Option<Duration>,
    /// Percent of the CPU time the hypervisor took for other guests during the load.
    stolen: f64,
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async_main());
}

async fn async_main() {
    erlmcp_bot::cli::install_crypto_provider();
    let bin = procs::bot_binary();
    let api = standin::start().await;
    let work = std::env::temp_dir().join(format!("erlmcp-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("work dir");
    println!("{}", procs::machine());
    println!(
        "Load: distinct, correctly signed `/erlmcp note` slash commands for one incident; {} s per run after {} s of warm-up; one load-generator thread.\n",
        RUN.as_secs(),
        WARMUP.as_secs()
    );

    let mut rows = Vec::new();
    let mut ready = Vec::new();
    // erlmcp-bot on SQLite (the embedded default).
    let targets =
        std::env::var("ERLMCP_BENCH_TARGETS").unwrap_or_else(|_| "sqlite,postgres,bolt".into());
    let sqlite_url = format!("sqlite://{}", work.join("bot.db").display());
    if targets.contains("sqlite") {
        let (row, started) = bot_row("erlmcp-bot, SQLite", &bin, &api, &sqlite_url).await;
        rows.push(row);
        ready.push(("SQLite", started));
    }
    // erlmcp-bot on PostgreSQL, when it answers.
    let pg = big::PgSchema::create().await;
    if let Some(pg) = pg.as_ref().filter(|_| targets.contains("postgres")) {
        let (row, started) = bot_row("erlmcp-bot, PostgreSQL", &bin, &api, &pg.url).await;
        rows.push(row);
        ready.push(("PostgreSQL", started));
    }
    // The peer.
    if targets.contains("bolt")
        && let Some(row) = bolt_row(&work, &api).await
    {
        rows.push(row);
    }
    print_table(&rows);
    for (backend, t) in ready {
        println!("Start to ready ({backend}): {}", ms(t));
    }

    if std::env::var_os("ERLMCP_BENCH_LOAD_ONLY").is_none() {
        println!("\nLarge incidents:\n");
        println!("| | entries | time | peak RSS |\n|---|---|---|---|");
        big::report(&bin, &work, pg.as_ref()).await;
    }
    // ERLMCP_BENCH_KEEP keeps the databases for a closer look (profiling a large incident).
    if std::env::var_os("ERLMCP_BENCH_KEEP").is_some() {
        println!("(kept {})", work.display());
        if let Some(pg) = pg {
            println!("(kept {})", pg.url);
        }
    } else {
        let _ = std::fs::remove_dir_all(&work);
        if let Some(pg) = pg {
            pg.drop().await;
        }
    }
}

/// Starts the bot, declares an incident, loads it at 32 then 128 connections, and measures.
async fn bot_row(name: &str, bin: &str, api: &str, db_url: &str) -> (Row, Duration) {
    let port = procs::free_port();
    let addr = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let mut child = Child::spawn(
        bin,
        &["serve", "--listen", &addr],
        &[
            ("SLACK_BOT_TOKEN", "xoxb-bench"),
            ("SLACK_SIGNING_SECRET", SECRET),
            ("SLACK_API_URL", api),
            ("DATABASE_URL", db_url),
            ("RUST_LOG", "error"),
        ],
        None,
    );
    procs::wait_ready(&addr, "/readyz").await;
    let to_ready = started.elapsed();
    if std::env::var_os("ERLMCP_BENCH_DEBUG_RSS").is_some() {
        println!(
            "debug: RSS at ready {:?} kB; {}",
            child.rss_kb(),
            child.memory()
        );
    }
    let target = Target {
        addr: addr.clone(),
        path: "/slack/commands".into(),
        secret: SECRET.into(),
        channel: "C_INC1".into(),
    };
    procs::declare(&target).await;
    let store = erlmcp_bot::store::open(db_url, None)
        .await
        .expect("open the bot's database")
        .store;
    let incident = procs::incident(store.as_ref()).await;
    // Every note is one entry: what the timeline holds beyond this is the notes.
    let before = procs::timeline_len(store.as_ref(), &incident).await;
    procs::settle_disk();
    let warm = load::run(&target, 32, WARMUP, "warm").await;
    let ticks = procs::cpu_ticks();
    let at32 = load::run(&target, 32, RUN, "c32").await;
    let at128 = load::run(&target, 128, RUN, "c128").await;
    let stolen = procs::stolen_since(ticks);
    // Drain: from the end of the load until every acknowledged note is on the timeline.
    let stopped = Instant::now();
    let mut drain = None;
    while stopped.elapsed() < Duration::from_secs(30) {
        let notes = procs::timeline_len(store.as_ref(), &incident).await - before;
        if notes >= (warm.acks + at32.acks + at128.acks) as i64 {
            drain = Some(stopped.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(SETTLE.saturating_sub(stopped.elapsed())).await;
    let (rss_after_kb, rss_peak_kb) = child.rss_kb();
    if std::env::var_os("ERLMCP_BENCH_DEBUG_RSS").is_some() {
        println!("debug: RSS after {} kB; {}", rss_after_kb, child.memory());
    }
    child.kill();
    (
        Row {
            name: name.into(),
            at32,
            at128,
            rss_peak_kb,
            rss_after_kb,
            drain,
            stolen,
        },
        to_ready,
    )
}

/// Whether this gunicorn has a control socket to turn off (version 27 on).
fn gunicorn_has_control_socket() -> bool {
    std::process::Command::new("python3")
        .args(["-m", "gunicorn", "--help"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--no-control-socket"))
}

/// The Bolt for Python app: needs `slack_bolt` from PyPI (`bench/run` installs it).
async fn bolt_row(work: &std::path::Path, api: &str) -> Option<Row> {
    let port = procs::free_port();
    let addr = format!("127.0.0.1:{port}");
    let dir = env!("CARGO_MANIFEST_DIR");
    let db = work.join("bolt.db").display().to_string();
    let workers = std::env::var("ERLMCP_BENCH_BOLT_WORKERS").unwrap_or_else(|_| {
        std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .to_string()
    });
    let threads = std::env::var("ERLMCP_BENCH_BOLT_THREADS").unwrap_or_else(|_| "1".into());
    let log = work.join("bolt.log");
    let mut args = vec![
        "-m",
        "gunicorn",
        "--chdir",
        dir,
        "-w",
        &workers,
        "--threads",
        &threads,
        "-b",
        &addr,
        "--log-level",
        "error",
    ];
    // gunicorn 27 opens a control socket at a fixed path in $HOME (with it, the peer died under
    // load in every run on a fresh machine); earlier versions have none.
    if gunicorn_has_control_socket() {
        args.push("--no-control-socket");
    }
    args.push("bolt_peer:application");
    let mut child = Child::spawn(
        "python3",
        &args,
        &[("BOLT_SECRET", SECRET), ("BOLT_DB", &db), ("BOLT_API", api)],
        Some(&log),
    );
    // The last lines the peer wrote, to say why it failed.
    let last_words = || {
        let said = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = said.lines().rev().take(15).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    };
    if !procs::wait_listening(&addr, Duration::from_secs(20)).await {
        println!(
            "(Bolt for Python did not start: are slack_bolt and gunicorn installed? `pip install slack_bolt gunicorn`; its last words:\n{}\n)\n",
            last_words()
        );
        child.kill();
        return None;
    }
    let target = Target {
        addr,
        path: "/slack/events".into(),
        secret: SECRET.into(),
        channel: "C_INC1".into(),
    };
    procs::settle_disk();
    load::run(&target, 32, WARMUP, "warm").await;
    let ticks = procs::cpu_ticks();
    let at32 = load::run(&target, 32, RUN, "c32").await;
    let at128 = load::run(&target, 128, RUN, "c128").await;
    let stolen = procs::stolen_since(ticks);
    tokio::time::sleep(SETTLE).await;
    // A peer that stopped, or refused the load, is not a row of zeros: say what it said.
    if !child.running() || at32.acks == 0 || at128.acks == 0 {
        println!(
            "(Bolt for Python failed under the load ({} and {} errors; {}); its last words, from {}:\n{}\n)\n",
            at32.errors,
            at128.errors,
            if child.running() {
                "still running"
            } else {
                "it exited"
            },
            log.display(),
            last_words()
        );
        child.kill();
        return None;
    }
    let (rss_after_kb, rss_peak_kb) = child.rss_kb();
    child.kill();
    Some(Row {
        name: format!("Bolt for Python (gunicorn, {workers} workers x {threads} threads), SQLite"),
        at32,
        at128,
        rss_peak_kb,
        rss_after_kb,
        // It inserts before it acknowledges: nothing is left to do after the load.
        drain: Some(Duration::ZERO),
        stolen,
    })
}

fn print_table(rows: &[Row]) {
    println!(
        "| | acks/s at 32 conns | p50 / p99 | errors | acks/s at 128 conns | p50 / p99 | errors | RSS peak / {} s after the load | all acked notes on the timeline after the load | CPU stolen by the hypervisor |",
        SETTLE.as_secs()
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {:.0} | {} / {} | {} | {:.0} | {} / {} | {} | {:.1} / {:.1} MB | {} | {:.0}% |",
            r.name,
            r.at32.per_second(),
            ms(r.at32.percentile(0.5)),
            ms(r.at32.percentile(0.99)),
            r.at32.errors,
            r.at128.per_second(),
            ms(r.at128.percentile(0.5)),
            ms(r.at128.percentile(0.99)),
            r.at128.errors,
            r.rss_peak_kb as f64 / 1024.0,
            r.rss_after_kb as f64 / 1024.0,
            r.drain.map(ms).unwrap_or_else(|| "not within 30 s".into()),
            r.stolen
        );
    }
    let bot = rows.iter().find(|r| r.name == "erlmcp-bot, SQLite");
    let bolt = rows.iter().find(|r| r.name.starts_with("Bolt"));
    if let (Some(b), Some(p)) = (bot, bolt) {
        println!(
            "\nerlmcp-bot on SQLite acknowledges {:.1}x as many commands a second as the Bolt for Python app at 32 connections, {:.1}x at 128.",
            b.at32.per_second() / p.at32.per_second(),
            b.at128.per_second() / p.at128.per_second()
        );
    }
}
