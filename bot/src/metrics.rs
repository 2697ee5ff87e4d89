//! `/metrics`: the process's Prometheus recorder, the series only the binary knows (chat API
//! calls, database statements), and the gauges read from the database at each scrape.
//!
//! The exporter is `metrics-exporter-prometheus`, which writes the classic text format (0.0.4)
//! that Debian's promtool accepts; the core records through the `metrics` facade
//! (`erlmcp_handlers::telemetry`). Histograms are real Prometheus histograms (fixed buckets),
//! not summaries, so replicas can be aggregated.

use erlmcp_handlers::severity::Severity;
use erlmcp_handlers::store::Store;
use metrics::{Unit, counter, describe_counter, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

pub const CHAT_CALLS: &str = "erlmcp_chat_api_calls_total";
pub const CHAT_CALL_DURATION: &str = "erlmcp_chat_api_call_duration_seconds";
pub const DB_STATEMENT_DURATION: &str = "erlmcp_db_statement_duration_seconds";
pub const SCRAPE_ERRORS: &str = "erlmcp_metrics_database_errors_total";
pub const PROCESS_RSS: &str = "process_resident_memory_bytes";
pub const DATABASE_UP: &str = "erlmcp_metrics_database_up";
pub const ALERT_WEBHOOKS: &str = "erlmcp_alert_webhooks_total";

/// The Prometheus content type of the classic text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Database statements and chat calls: from well under a millisecond to seconds.
const FAST_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Steps and runs: a scale-up waits minutes for pods; a failover may take a quarter hour.
const SLOW_BUCKETS: &[f64] = &[
    0.01, 0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder: installed once (a second call returns the same handle, so tests that
/// build several servers in one process share it), with upkeep running in the background so
/// histogram samples do not pile up between scrapes.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(erlmcp_handlers::telemetry::RUN_DURATION.into()),
                    SLOW_BUCKETS,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(erlmcp_handlers::telemetry::STEP_DURATION.into()),
                        SLOW_BUCKETS,
                    )
                })
                .and_then(|b| b.set_buckets(FAST_BUCKETS));
            // The bucket lists above are constant and non-empty: the builder cannot refuse them.
            let recorder = builder
                .map(|b| b.build_recorder())
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics stays empty");
            }
            erlmcp_handlers::telemetry::describe();
            describe();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let upkept = handle.clone();
                rt.spawn(async move {
                    let mut every = tokio::time::interval(Duration::from_secs(5));
                    loop {
                        every.tick().await;
                        upkept.run_upkeep();
                    }
                });
            }
            handle
        })
        .clone()
}

fn describe() {
    describe_counter!(
        CHAT_CALLS,
        "Chat Web API calls, by platform, method and outcome (ok, error, http_error, transport_error, rate_limited, retried)."
    );
    describe_histogram!(
        CHAT_CALL_DURATION,
        Unit::Seconds,
        "Time of one chat Web API call attempt, by platform and method."
    );
    describe_histogram!(
        DB_STATEMENT_DURATION,
        Unit::Seconds,
        "Database statement execution time as the driver measured it, by operation and table."
    );
    metrics::describe_gauge!(
        PROCESS_RSS,
        Unit::Bytes,
        "Resident memory of this process (from /proc/self/statm)."
    );
    metrics::describe_gauge!(
        DATABASE_UP,
        "1 if the last read of the database gauges succeeded, 0 if not (they then show older values)."
    );
    describe_counter!(
        ALERT_WEBHOOKS,
        "Alertmanager webhook requests by answer (ok, unauthorized, malformed, too_large, not_stored)."
    );
    describe_counter!(
        SCRAPE_ERRORS,
        "Scrapes whose database gauges could not be read (the gauges kept their last value)."
    );
}

/// One chat API attempt.
pub fn chat_attempt(platform: &'static str, method: &str, outcome: &'static str, took: Duration) {
    let method = bounded_method(method);
    counter!(CHAT_CALLS, "platform" => platform, "method" => method.clone(), "outcome" => outcome)
        .increment(1);
    histogram!(CHAT_CALL_DURATION, "platform" => platform, "method" => method)
        .record(took.as_secs_f64());
}

/// API method names come from this program's code, but keep the label safe anyway: a name that
/// does not look like one (`chat.postMessage`) is counted as `other`.
fn bounded_method(method: &str) -> String {
    let looks_right = method.len() <= 48
        && method
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_');
    if looks_right {
        method.to_string()
    } else {
        "other".to_string()
    }
}

/// Sets the gauges that describe shared state (the same on every replica) from the database.
async fn gauges_from(store: &dyn Store) -> erlmcp_handlers::Result<()> {
    use erlmcp_handlers::approval::RequestState;
    use erlmcp_handlers::incident::IncidentStatus;
    // "Open" as people mean it: not yet resolved (a resolved incident waits only for closing).
    let open: Vec<_> = store
        .open_incidents()
        .await?
        .into_iter()
        .filter(|i| !matches!(i.status, IncidentStatus::Resolved | IncidentStatus::Closed))
        .collect();
    for severity in Severity::ALL {
        let n = open
            .iter()
            .filter(|i| i.severity == severity && !i.drill)
            .count();
        gauge!(erlmcp_handlers::telemetry::OPEN_INCIDENTS, "severity" => severity.as_str().to_ascii_uppercase())
            .set(n as f64);
    }
    let drills = open.iter().filter(|i| i.drill).count();
    gauge!(erlmcp_handlers::telemetry::OPEN_INCIDENTS, "severity" => "drill").set(drills as f64);
    let pending = store.requests_in_state(RequestState::Pending).await?;
    gauge!(erlmcp_handlers::telemetry::PENDING_REQUESTS).set(pending.len() as f64);
    Ok(())
}

/// This process's resident memory, to set against the container's limit.
fn process_gauges() {
    if let Some(rss) = crate::memory::resident_bytes() {
        gauge!(PROCESS_RSS).set(rss as f64);
    }
}

/// A scrape waits at most this for the database gauges; then it answers with the last values
/// (and counts the failure), so an outage does not make the bot look down to Prometheus too.
const GAUGE_PATIENCE: Duration = Duration::from_secs(2);

/// Scrapes at once; more get a 503 at once (Prometheus scrapes one at a time; anyone else
/// hammering the endpoint must not load the database behind the incident bot).
const MAX_SCRAPES: usize = 4;

/// `GET /metrics`, for the public listener or a separate one (`ERLMCP_METRICS_LISTEN`).
pub fn router(store: std::sync::Arc<dyn Store>) -> axum::Router {
    let handle = install();
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_SCRAPES));
    let reading: std::sync::Arc<tokio::sync::Mutex<()>> = std::sync::Arc::default();
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            let store = store.clone();
            let permits = permits.clone();
            let reading = reading.clone();
            async move {
                use axum::response::IntoResponse;
                let Ok(_permit) = permits.try_acquire_owned() else {
                    return (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        "too many scrapes at once",
                    )
                        .into_response();
                };
                process_gauges();
                // One database read at a time: a scrape that arrives while another reads waits
                // for it and shows what it read, so a flood of scrapes costs one query at once.
                match reading.try_lock() {
                    Ok(_reading) => {
                        let up = match tokio::time::timeout(GAUGE_PATIENCE, gauges_from(&*store))
                            .await
                        {
                            Ok(Ok(())) => true,
                            Ok(Err(e)) => {
                                counter!(SCRAPE_ERRORS).increment(1);
                                tracing::warn!(error = %e, "metrics: could not read the gauges");
                                false
                            }
                            Err(_) => {
                                counter!(SCRAPE_ERRORS).increment(1);
                                tracing::warn!("metrics: the database did not answer in time");
                                false
                            }
                        };
                        gauge!(DATABASE_UP).set(if up { 1.0 } else { 0.0 });
                    }
                    Err(_) => {
                        let _ = reading.lock().await;
                    }
                }
                (
                    [(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)],
                    handle.render(),
                )
                    .into_response()
            }
        }),
    )
}

/// A tracing layer that turns the driver's per-statement events (sqlx logs each statement on
/// target `sqlx::query` with its measured `elapsed_secs`) into the statement latency histogram.
/// It sees only those events: it is given a filter of its own, independent of `RUST_LOG`.
pub struct StatementTimer;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for StatementTimer {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let mut fields = StatementFields::default();
        event.record(&mut fields);
        let Some(seconds) = fields.elapsed_secs else {
            return;
        };
        // The full statement when sqlx gave it (its summary is only the first four words).
        let (operation, table) = fields
            .from_statement
            .or(fields.from_summary)
            .unwrap_or(("other", "none"));
        histogram!(DB_STATEMENT_DURATION, "operation" => operation, "table" => table)
            .record(seconds);
    }
}

/// Labels are worked out from the borrowed field values as they are visited: the statement
/// text (which can be a long multi-row insert) is never copied.
#[derive(Default)]
struct StatementFields {
    from_summary: Option<(&'static str, &'static str)>,
    from_statement: Option<(&'static str, &'static str)>,
    elapsed_secs: Option<f64>,
}

impl tracing::field::Visit for StatementFields {
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        if field.name() == "elapsed_secs" {
            self.elapsed_secs = Some(value);
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "summary" => self.from_summary = Some(statement_labels(value)),
            "db.statement" if !value.trim().is_empty() => {
                self.from_statement = Some(statement_labels(value))
            }
            _ => {}
        }
    }

    fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
}

/// The tables this program's statements touch; anything else is `other`, so the label set is
/// closed whatever SQL appears.
const TABLES: &[&str] = &[
    "incidents",
    "timeline",
    "approval_requests",
    "approvals",
    "runs",
    "run_steps",
    "receipts",
    "notices",
    "chat_messages",
    "chat_events",
    "_sqlx_migrations",
];

/// `(operation, table)` of a statement: its first keyword, and the first known table after
/// FROM, INTO, UPDATE or JOIN.
fn statement_labels(sql: &str) -> (&'static str, &'static str) {
    let mut words = sql
        .split(|c: char| c.is_whitespace() || c == '(' || c == ',' || c == ';')
        .filter(|w| !w.is_empty())
        .take(64);
    let operation = match words.next() {
        Some(w) if w.eq_ignore_ascii_case("select") => "select",
        Some(w) if w.eq_ignore_ascii_case("insert") => "insert",
        Some(w) if w.eq_ignore_ascii_case("update") => "update",
        Some(w) if w.eq_ignore_ascii_case("delete") => "delete",
        Some(w) if w.eq_ignore_ascii_case("with") => "with",
        Some(w) if w.eq_ignore_ascii_case("begin") => "begin",
        Some(w) if w.eq_ignore_ascii_case("commit") => "commit",
        Some(w) if w.eq_ignore_ascii_case("rollback") => "rollback",
        Some(w) if w.eq_ignore_ascii_case("pragma") => "pragma",
        _ => "other",
    };
    // An UPDATE names its table right after the keyword already consumed.
    let mut previous_names_table = operation == "update";
    let mut table = "none";
    for word in words {
        if previous_names_table {
            let name = word.trim_matches('"');
            if let Some(t) = TABLES.iter().find(|t| t.eq_ignore_ascii_case(name)) {
                table = t;
                break;
            }
        }
        previous_names_table = ["from", "into", "update", "join"]
            .iter()
            .any(|k| word.eq_ignore_ascii_case(k));
    }
    (operation, table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_labelled_by_operation_and_known_table() {
        assert_eq!(
            statement_labels("SELECT id, title FROM incidents WHERE id = $1"),
            ("select", "incidents")
        );
        assert_eq!(
            statement_labels("INSERT INTO timeline (incident_id, seq) VALUES ($1, $2)"),
            ("insert", "timeline")
        );
        assert_eq!(
            statement_labels("UPDATE runs SET lease_until = $1"),
            ("update", "runs")
        );
        assert_eq!(statement_labels("BEGIN IMMEDIATE"), ("begin", "none"));
        assert_eq!(
            statement_labels("SELECT * FROM secret_table_of_someone"),
            ("select", "none")
        );
        assert_eq!(statement_labels(""), ("other", "none"));
    }

    #[test]
    fn odd_method_names_do_not_become_labels() {
        assert_eq!(bounded_method("chat.postMessage"), "chat.postMessage");
        assert_eq!(bounded_method("chat.post\nMessage"), "other");
        assert_eq!(bounded_method(&"a".repeat(200)), "other");
    }
}
