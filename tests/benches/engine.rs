//! Prints figures for the engine's hot paths on SQLite (and PostgreSQL when reachable):
//! command latency, a full request -> approval -> 6-step run on the simulated world, timeline
//! verification throughput, and peak memory. `cargo bench -p erlmcp-tests --bench engine`.

use erlmcp_handlers::ids::IncidentId;
use erlmcp_tests::{Backend, TestApp};
use std::time::{Duration, Instant};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{what:<48} n={:<5} p50={:>9.3?} p90={:>9.3?} p99={:>9.3?} max={:>9.3?}",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.9),
        percentile(&samples, 0.99),
        samples[samples.len() - 1]
    );
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn bench(backend: Backend) {
    let Some(t) = TestApp::new(backend).await else {
        println!("{backend:?}: not available, skipped");
        return;
    };
    let label = format!("{backend:?}");
    t.ok("alice", "p1 declare Benchmark").await;

    let mut notes = Vec::new();
    for i in 0..2000 {
        let start = Instant::now();
        t.ok("bob", &format!("note observation {i}")).await;
        notes.push(start.elapsed());
    }
    report(
        &format!("{label}: /erlmcp note (append to a 2000-entry chain)"),
        notes,
    );

    let mut status = Vec::new();
    for _ in 0..500 {
        let start = Instant::now();
        t.ok("bob", "status").await;
        status.push(start.elapsed());
    }
    report(&format!("{label}: /erlmcp status"), status);

    let mut parse_errors = Vec::new();
    for _ in 0..2000 {
        let start = Instant::now();
        t.refused("mallory", "/erlmcp stauts").await;
        parse_errors.push(start.elapsed());
    }
    report(
        &format!("{label}: malformed command -> suggestion"),
        parse_errors,
    );

    let mut plans = Vec::new();
    let mut runs = Vec::new();
    for i in 0..50 {
        let replicas = 2 + (i % 2) * 2;
        let start = Instant::now();
        t.ok("alice", &format!("scale eu-west-1 {replicas}")).await;
        plans.push(start.elapsed());
        let start = Instant::now();
        t.ok("bob", "approve").await;
        runs.push(start.elapsed());
    }
    report(&format!("{label}: request (plan + digest + store)"), plans);
    report(&format!("{label}: approve -> 2-step run to done"), runs);

    let id = IncidentId::new("INC-20261128-1");
    let entries = t.db.store.timeline(&id).await.unwrap().len();
    let mut verify = Vec::new();
    for _ in 0..10 {
        let start = Instant::now();
        assert!(t.engine.verify_timeline(&id).await.unwrap().is_empty());
        verify.push(start.elapsed());
    }
    verify.sort();
    let p50 = percentile(&verify, 0.5);
    println!(
        "{label}: timeline verify of {entries} entries: p50 {p50:.3?} ({:.0} entries/s, read + SHA-256)",
        entries as f64 / p50.as_secs_f64()
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        bench(Backend::Sqlite).await;
        bench(Backend::Postgres).await;
    });
    println!("peak resident memory: {} MiB", peak_rss_kib() / 1024);
}
