//! Operating the bot: `/metrics` scraped from the built binary while it runs a failover (checked
//! with Debian's `promtool`), and JSON logs at `RUST_LOG=trace` that name incidents, requests and
//! runs on the lines about them and never print a secret.

use crate::program::{Env, Served, Workdir};
use crate::shipped::slack_env;
use erlmcp_tests::slack_fake::{FakeSlack, SignedSlack};
use std::collections::BTreeMap;

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

/// A scrape as `series → value`, e.g. `erlmcp_commands_total{command="declare",outcome="ok"}`
/// with its labels in the order the exporter writes them (sorted here, to compare reliably).
fn parse_scrape(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            panic!("unreadable scrape line {line:?}");
        };
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        out.insert(normalise(series), value);
    }
    out
}

/// `name{b="2",a="1"}` → `name{a="1",b="2"}`.
fn normalise(series: &str) -> String {
    match series.split_once('{') {
        None => series.to_string(),
        Some((name, rest)) => {
            let labels = rest.trim_end_matches('}');
            let mut parts: Vec<&str> = labels.split("\",").collect();
            let last = parts.len() - 1;
            let mut owned: Vec<String> = parts
                .iter_mut()
                .enumerate()
                .map(|(i, p)| {
                    if i == last {
                        p.to_string()
                    } else {
                        format!("{p}\"")
                    }
                })
                .collect();
            owned.sort();
            format!("{name}{{{}}}", owned.join(","))
        }
    }
}

fn value(scrape: &BTreeMap<String, f64>, series: &str) -> f64 {
    scrape.get(&normalise(series)).copied().unwrap_or(0.0)
}

/// The sum over every series of `name` whose labels include all of `having`.
fn sum(scrape: &BTreeMap<String, f64>, name: &str, having: &[&str]) -> f64 {
    scrape
        .iter()
        .filter(|(k, _)| {
            (k.starts_with(&format!("{name}{{")) || k.as_str() == name)
                && having.iter().all(|h| k.contains(h))
        })
        .map(|(_, v)| v)
        .sum()
}

/// `promtool check metrics` on a scrape: exit 0 and no lint problems, or the test fails (when
/// promtool is missing, only if emulators are required, as in CI).
fn promtool_accepts(scrape: &str) {
    use std::io::Write;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            let required = std::env::var("ERLMCP_REQUIRE_EMULATORS").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "promtool is required (Debian package prometheus): {e}"
            );
            eprintln!("note: promtool not installed; the scrape's format was not checked");
            return;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics refused the scrape:\n{said}\n--- scrape ---\n{scrape}"
    );
}

async fn scrape(url: &str) -> String {
    let resp = reqwest::get(format!("{url}/metrics")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        ct.starts_with("text/plain; version=0.0.4"),
        "classic text format, not {ct}"
    );
    resp.text().await.unwrap()
}

/// The address `serve` printed for its separate metrics listener.
fn metrics_url(log: &str) -> String {
    let line = log
        .lines()
        .find(|l| l.contains("erlmcp-bot metrics on http://"))
        .unwrap_or_else(|| panic!("no metrics address printed:\n{log}"));
    let start = line.find("http://").unwrap();
    line[start..]
        .split(['/', '"', ' '])
        .take(3)
        .collect::<Vec<_>>()
        .join("/")
}

/// Declares a P0, requests a failover, has the requester try to approve their own request, and
/// a second person approve it; returns (channel id, request id) once the run is done.
pub(crate) async fn failover_through_slack(
    fake: &FakeSlack,
    slack: &SignedSlack,
) -> (String, String) {
    let r = slack
        .command("U_ALICE", "C_GENERAL", "/erlmcp", "p0 declare API down")
        .await;
    assert_eq!(r.status(), 200);
    fake.wait_until("the incident's summary is pinned", |c| {
        c.iter().any(|c| c.method == "pins.add")
    })
    .await;
    let channel = fake.calls("pins.add")[0].form["channel"].clone();
    slack
        .command("U_ALICE", &channel, "/failover", "us-west-2")
        .await;
    fake.wait_until("the request card is posted", |c| {
        c.iter().any(|c| {
            c.method == "chat.postMessage"
                && c.form
                    .get("blocks")
                    .is_some_and(|b| b.contains("erlmcp_approve"))
        })
    })
    .await;
    let card = fake
        .calls("chat.postMessage")
        .into_iter()
        .find(|c| {
            c.form
                .get("blocks")
                .is_some_and(|b| b.contains("erlmcp_approve"))
        })
        .unwrap();
    let request = regex::Regex::new(r"REQ-\d{8}-\d+")
        .unwrap()
        .find(&card.form["text"])
        .unwrap()
        .as_str()
        .to_string();
    slack
        .button("U_ALICE", &channel, "erlmcp_approve", &request)
        .await;
    fake.wait_until("the requester is refused", |c| {
        c.iter()
            .any(|c| c.method == "response_url/U_ALICE" && c.form["text"].contains("second person"))
    })
    .await;
    slack
        .button("U_BOB", &channel, "erlmcp_approve", &request)
        .await;
    fake.wait_until("the run finishes", |c| {
        c.iter().any(|c| {
            c.method == "chat.postMessage"
                && c.form.get("text").is_some_and(|t| t.contains("🏁 RUN-"))
        })
    })
    .await;
    (channel, request)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_a_failover_through_serve() {
    let w = Workdir::new();
    let fake = FakeSlack::start().await;
    let env = slack_env(&fake, &w.db_url()).set("ERLMCP_METRICS_LISTEN", "127.0.0.1:0");
    let mut bot = Served::start(w.path(), &env, &[]).await;
    let metrics = metrics_url(&bot.log());

    // With a listener of its own, /metrics is not on the public (Slack) one.
    let public = reqwest::get(format!("{}/metrics", bot.url)).await.unwrap();
    assert_eq!(public.status(), 404, "metrics must not be public");

    let before_text = scrape(&metrics).await;
    promtool_accepts(&before_text);
    let before = parse_scrape(&before_text);
    assert_eq!(
        value(&before, r#"erlmcp_open_incidents{severity="P0"}"#),
        0.0
    );

    let slack = SignedSlack::new(&bot.url, &fake, SECRET);
    // One Slack 429 on the way: the call waits as asked, then succeeds.
    fake.fail(
        "chat.postMessage",
        429,
        r#"{"ok":false,"error":"ratelimited"}"#,
        Some(0),
    );
    let (channel, _request) = failover_through_slack(&fake, &slack).await;
    slack
        .command("U_ALICE", &channel, "/erlmcp", "frobnicate now")
        .await;
    fake.wait_until("the malformed command is answered", |c| {
        c.iter()
            .any(|c| c.method == "response_url/U_ALICE" && c.form["text"].contains("frobnicate"))
    })
    .await;

    let text = scrape(&metrics).await;
    promtool_accepts(&text);
    let after = parse_scrape(&text);
    let moved = |series: &str| value(&after, series) - value(&before, series);

    assert_eq!(
        moved(r#"erlmcp_commands_total{command="declare",outcome="ok"}"#),
        1.0,
        "{text}"
    );
    assert_eq!(
        moved(r#"erlmcp_commands_total{command="failover",outcome="ok"}"#),
        1.0,
        "{text}"
    );
    assert_eq!(
        moved(r#"erlmcp_commands_total{command="approve",outcome="refused"}"#),
        1.0,
        "{text}"
    );
    assert_eq!(
        moved(r#"erlmcp_commands_total{command="approve",outcome="ok"}"#),
        1.0,
        "{text}"
    );
    assert_eq!(
        moved(r#"erlmcp_commands_total{command="malformed",outcome="malformed"}"#),
        1.0,
        "{text}"
    );
    assert_eq!(
        moved(r#"erlmcp_approvals_refused_total{reason="own_request"}"#),
        1.0
    );
    assert_eq!(moved("erlmcp_approvals_granted_total"), 1.0);
    assert_eq!(
        moved(r#"erlmcp_requests_created_total{playbook="failover"}"#),
        1.0
    );
    assert_eq!(
        moved(r#"erlmcp_requests_finished_total{state="done"}"#),
        1.0
    );
    assert_eq!(
        moved(r#"erlmcp_runs_started_total{playbook="failover"}"#),
        1.0
    );
    assert_eq!(
        moved(r#"erlmcp_runs_finished_total{outcome="done",playbook="failover"}"#),
        1.0
    );
    assert_eq!(
        moved(r#"erlmcp_run_duration_seconds_count{outcome="done",playbook="failover"}"#),
        1.0
    );
    // Every step of the failover playbook ran once and is counted with its duration.
    let steps_done = sum(&after, "erlmcp_steps_total", &[r#"outcome="done""#]);
    let step_durations = sum(
        &after,
        "erlmcp_step_duration_seconds_count",
        &[r#"outcome="done""#],
    );
    assert!(steps_done >= 5.0, "failover has at least 5 steps:\n{text}");
    assert_eq!(steps_done, step_durations);
    // Gauges from the database: one P0 open, nothing pending.
    assert_eq!(
        value(&after, r#"erlmcp_open_incidents{severity="P0"}"#),
        1.0
    );
    assert_eq!(value(&after, "erlmcp_pending_requests"), 0.0);
    // Chat calls, the 429 among them, and database statements with their latency.
    assert!(
        value(
            &after,
            r#"erlmcp_chat_api_calls_total{method="chat.postMessage",outcome="ok",platform="slack"}"#
        ) >= 3.0,
        "{text}"
    );
    assert_eq!(
        value(
            &after,
            r#"erlmcp_chat_api_calls_total{method="chat.postMessage",outcome="rate_limited",platform="slack"}"#
        ),
        1.0,
        "{text}"
    );
    assert!(
        sum(
            &after,
            "erlmcp_db_statement_duration_seconds_count",
            &[r#"operation="insert""#, r#"table="timeline""#]
        ) >= 10.0,
        "{text}"
    );

    // A pending request shows in the gauge at the next scrape.
    slack
        .command("U_ALICE", &channel, "/erlmcp", "scale us-east-1 7")
        .await;
    fake.wait_until("the scale card is posted", |c| {
        c.iter().any(|c| {
            c.method == "chat.postMessage"
                && c.form.get("text").is_some_and(|t| t.contains("scale"))
                && c.form
                    .get("blocks")
                    .is_some_and(|b| b.contains("erlmcp_approve"))
        })
    })
    .await;
    let later = parse_scrape(&scrape(&metrics).await);
    assert_eq!(value(&later, "erlmcp_pending_requests"), 1.0);
    assert_eq!(value(&later, "erlmcp_metrics_database_up"), 1.0);
    assert!(value(&later, "process_resident_memory_bytes") > 1_000_000.0);
    // Resolved is no longer open, and its pending request died with it.
    slack
        .command("U_ALICE", &channel, "/erlmcp", "resolve failed over")
        .await;
    fake.wait_until("the resolution is said", |c| {
        c.iter().any(|c| {
            c.method == "chat.postMessage"
                && c.form.get("text").is_some_and(|t| t.contains("resolved"))
        })
    })
    .await;
    let resolved = parse_scrape(&scrape(&metrics).await);
    assert_eq!(
        value(&resolved, r#"erlmcp_open_incidents{severity="P0"}"#),
        0.0
    );
    assert_eq!(value(&resolved, "erlmcp_pending_requests"), 0.0);
    assert_eq!(bot.terminate().await, Some(0), "{}", bot.log());
}

/// What users type never reaches a terminal reading the text logs as escapes, and a Slack
/// response_url (a capability to post as the bot) is never logged, even when posting to it
/// fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_carry_no_escapes_and_no_response_urls() {
    let w = Workdir::new();
    let fake = FakeSlack::start().await;
    let env = slack_env(&fake, &w.db_url()).set("RUST_LOG", "info");
    let mut bot = Served::start(w.path(), &env, &[]).await;
    let slack = SignedSlack::new(&bot.url, &fake, SECRET);
    slack
        .command("U_ALICE", "C_GENERAL", "/erlmcp", "fr\u{1b}[2Kob\u{7}")
        .await;
    // A malformed command whose response_url cannot be reached: the failure is logged.
    let capability = "http://127.0.0.1:9/commands/T1/111/RESPURL-CAPABILITY-TOKEN";
    let body = slack
        .command_body("U_ALICE", "C_GENERAL", "/erlmcp", "frobnicate")
        .replace(
            &url::form_urlencoded::byte_serialize(
                format!(
                    "{}/response/U_ALICE",
                    fake.api_url().trim_end_matches("/api")
                )
                .as_bytes(),
            )
            .collect::<String>(),
            &url::form_urlencoded::byte_serialize(capability.as_bytes()).collect::<String>(),
        );
    assert!(body.contains("RESPURL-CAPABILITY-TOKEN"), "{body}");
    let r = slack
        .post_signed(
            "/slack/commands",
            &body,
            "application/x-www-form-urlencoded",
            SignedSlack::now(),
            &[],
        )
        .await;
    assert_eq!(r.status(), 200);
    bot.wait_for_output(
        "could not deliver a reply",
        std::time::Duration::from_secs(20),
    )
    .await;
    assert_eq!(bot.terminate().await, Some(0), "{}", bot.log());
    let log = bot.log();
    assert!(log.contains("malformed command"), "{log}");
    assert!(
        !log.contains('\u{1b}') && !log.contains('\u{7}'),
        "raw control characters in:\n{log:?}"
    );
    assert!(!log.contains("RESPURL-CAPABILITY-TOKEN"), "{log}");
}

/// `serve` that cannot start says why on stderr, as JSON when the logs are JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_start_failures_are_json_on_stderr() {
    let w = Workdir::new();
    let env = Env::new().set("ERLMCP_LOG_FORMAT", "json");
    let out = crate::program::run(w.path(), &env, &["serve", "--listen", "127.0.0.1:0"], "").await;
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stdout.trim().is_empty(), "{}", out.all());
    let line: serde_json::Value = serde_json::from_str(out.stderr.trim())
        .unwrap_or_else(|e| panic!("not one JSON line ({e}): {}", out.stderr));
    assert_eq!(line["level"], "ERROR");
    assert!(
        line["message"]
            .as_str()
            .is_some_and(|m| m.contains("`serve` needs a chat platform: Slack (SLACK_BOT_TOKEN")),
        "{line}"
    );
}

/// Every line is a JSON object; the lines about a run carry its run, request and incident ids;
/// and at `RUST_LOG=trace` no token, signing secret, database password or timeline key is
/// printed anywhere. On PostgreSQL, so that the database URL carries a password (the local
/// server trusts the connection, so any password works).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_name_their_ids_and_never_a_secret() {
    let Some(db) = erlmcp_tests::TestDb::new(erlmcp_tests::Backend::Postgres).await else {
        return;
    };
    let schema = db.pg_schema.clone().unwrap();
    let db_password = "pw-Zq81-never-logged";
    let mut url = url::Url::parse(&erlmcp_tests::postgres_url()).unwrap();
    url.set_password(Some(db_password)).unwrap();
    url.query_pairs_mut()
        .append_pair("options[search_path]", &schema);
    let bot_token = "xoxb-4471-secret-bot-token";
    let timeline_key = "timeline-key-0f9e8d7c6b5a49382716";
    let replica_password = "replica-pw-77aa";
    let w = Workdir::new();
    let fake = FakeSlack::start().await;
    let env = slack_env(&fake, url.as_str())
        .set("SLACK_BOT_TOKEN", bot_token)
        .set("ERLMCP_TIMELINE_KEY", timeline_key)
        .set(
            "ERLMCP_PG_US_WEST_2",
            format!("postgres://replicator:{replica_password}@db.us-west-2.internal/erlmcp"),
        )
        .set("ERLMCP_LOG_FORMAT", "json")
        .set("RUST_LOG", "trace");
    let mut bot = Served::start(w.path(), &env, &[]).await;
    let slack = SignedSlack::new(&bot.url, &fake, SECRET);
    let (_channel, request) = failover_through_slack(&fake, &slack).await;
    // A forged request is logged as refused; its (wrong) signature is no secret, ours is.
    let forged = SignedSlack::new(&bot.url, &fake, "not-the-secret");
    assert_eq!(
        forged
            .command("U_EVE", "C_GENERAL", "/erlmcp", "incidents")
            .await
            .status(),
        401
    );
    assert_eq!(bot.terminate().await, Some(0), "{}", bot.log());
    let log = bot.log();

    for secret in [
        bot_token,
        SECRET,
        db_password,
        timeline_key,
        replica_password,
    ] {
        assert!(
            !log.contains(secret),
            "a secret ({}…) appears in the logs",
            &secret[..6]
        );
    }
    let mut lines = 0;
    let mut run_lines = 0;
    let mut command_lines = 0;
    let id = regex::Regex::new(r"\b(INC|REQ|RUN)-\d{8}-\d+").unwrap();
    for line in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        lines += 1;
        let field = |name: &str| -> Option<String> {
            v.get(name)
                .or_else(|| v["span"].get(name))
                .and_then(|x| x.as_str())
                .map(str::to_string)
        };
        if v["message"] == "step attempt ended" || v["message"] == "run ended" {
            run_lines += 1;
            let run = field("run").unwrap_or_default();
            assert!(run.starts_with("RUN-"), "no run id: {line}");
            assert_eq!(
                field("request").as_deref(),
                Some(request.as_str()),
                "{line}"
            );
            assert!(
                field("incident").is_some_and(|i| i.starts_with("INC-")),
                "{line}"
            );
        }
        // Each command and button press about the incident names it, the declaration included.
        if v["message"] == "command handled" || v["message"] == "decision handled" {
            command_lines += 1;
            assert!(
                field("incident").is_some_and(|i| i.starts_with("INC-")),
                "no incident: {line}"
            );
        }
        // Our own lines that name an id carry it as a field, not only inside the message.
        let ours = v["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("erlmcp"));
        if ours && let Some(message) = v["message"].as_str() {
            for m in id.find_iter(message) {
                let kind = match &m.as_str()[..3] {
                    "INC" => "incident",
                    "REQ" => "request",
                    _ => "run",
                };
                assert!(
                    field(kind).is_some(),
                    "{kind} named only in the message: {line}"
                );
            }
        }
    }
    assert!(lines > 100, "RUST_LOG=trace printed only {lines} lines");
    assert!(run_lines >= 6, "{run_lines} lines about the run");
    // declare, failover, the refused own approval, the counted one.
    assert_eq!(command_lines, 4);
}

/// A misspelt log format is refused at start with what to type instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misspelt_log_format_is_named() {
    let w = Workdir::new();
    let env = Env::new().set("ERLMCP_LOG_FORMAT", "jsno");
    let out = crate::program::run(w.path(), &env, &["incidents"], "").await;
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.all().contains("ERLMCP_LOG_FORMAT `jsno`") && out.all().contains("`json`"),
        "{}",
        out.all()
    );
}
