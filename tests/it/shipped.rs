//! The program users run, started as the README says: every documented subcommand of the built
//! `erlmcp-bot`, and `serve` driven over HTTP with signed Slack requests against the Web API
//! stand-in, from declaration to postmortem.

use crate::program::{Env, Output, Served, Workdir, eventually, run};
use erlmcp_tests::slack_fake::{FakeSlack, SignedSlack};
use std::time::{Duration, Instant};

pub const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

/// The environment `serve` needs to talk to the Slack stand-in.
pub fn slack_env(fake: &FakeSlack, db_url: &str) -> Env {
    Env::new()
        .set("SLACK_BOT_TOKEN", "xoxb-test-token")
        .set("SLACK_SIGNING_SECRET", SECRET)
        .set("SLACK_API_URL", fake.api_url())
        .set("DATABASE_URL", db_url)
        .set("ERLMCP_GROUPS", "security:U_SAM")
}

/// The incident id in a text (`INC-YYYYMMDD-N`).
pub fn incident_id(text: &str) -> String {
    regex::Regex::new(r"INC-\d{8}-\d+")
        .unwrap()
        .find(text)
        .unwrap_or_else(|| panic!("no incident id in {text}"))
        .as_str()
        .to_string()
}

fn position(out: &Output, needle: &str) -> usize {
    out.stdout
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not printed:\n{}", out.all()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_names_every_subcommand() {
    let w = Workdir::new();
    let out = run(w.path(), &Env::new(), &["--help"], "").await;
    assert_eq!(out.code, 0, "{}", out.all());
    for sub in [
        "serve",
        "console",
        "drill",
        "timeline",
        "postmortem",
        "report",
        "playbooks",
        "incidents",
    ] {
        assert!(
            out.stdout.contains(sub),
            "--help lacks {sub}:\n{}",
            out.all()
        );
    }
    let out = run(w.path(), &Env::new(), &["serve", "--help"], "").await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("--listen"), "{}", out.all());
    let out = run(w.path(), &Env::new(), &["frobnicate"], "").await;
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stdout.contains("unrecognized subcommand 'frobnicate'"),
        "{}",
        out.all()
    );
    // Nothing was created by asking for help.
    assert!(!w.file("erlmcp-bot.db").exists());
}

/// The README's quick start, in a fresh directory: the drill prints its transcript in the order
/// things happened, and leaves its database behind in the working directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_transcript_is_in_the_order_things_happened() {
    let w = Workdir::new();
    let out = run(
        w.path(),
        &Env::new(),
        &["drill", "failover", "region=us-west-2"],
        "",
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.all());
    let approve = position(&out, "bob> /erlmcp approve");
    let first_step = position(&out, "▶ RUN-");
    let done = position(&out, "🏁 RUN-");
    let resolve = position(&out, "alice> /erlmcp resolve");
    assert!(
        approve < first_step && first_step < done && done < resolve,
        "the approval must come before the progress it caused:\n{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("# Postmortem: [DRILL]"),
        "{}",
        out.all()
    );
    assert!(
        out.stdout
            .contains("Simulated world after the drill: erlmcp.io -> us-west-2"),
        "{}",
        out.all()
    );
    assert!(
        w.file("erlmcp-bot.db").exists(),
        "state lives in ./erlmcp-bot.db"
    );
    let bad = run(
        w.path(),
        &Env::new(),
        &["drill", "failover", "region=mars-1"],
        "",
    )
    .await;
    assert_ne!(bad.code, 0);
    assert!(
        bad.stdout.contains("mars-1"),
        "a bad parameter is named:\n{}",
        bad.all()
    );
    // A drill that did not start leaves no incident open behind it.
    let after = run(w.path(), &Env::new(), &["console"], "/erlmcp incidents\n").await;
    assert!(
        after.stdout.contains("No open incidents."),
        "{}",
        after.all()
    );
}

/// The console example of the README, then every read-only subcommand on what it recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_then_every_read_only_subcommand() {
    let w = Workdir::new();
    let env = Env::new();
    let script = "as alice\n/erlmcp p0 declare API down\n/failover us-west-2\nas bob\n/erlmcp approve\n/erlmcp resolve failed over\n/erlmcp close\n/erlmcp postmortem\n";
    let out = run(w.path(), &env, &["console"], script).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("bob> /erlmcp approve"), "{}", out.all());
    assert!(out.stdout.contains("🏁 RUN-"), "{}", out.all());
    assert!(
        out.stdout.contains("# Postmortem: API down"),
        "{}",
        out.all()
    );
    let inc = incident_id(&out.stdout);

    let verify = run(w.path(), &env, &["timeline", "verify"], "").await;
    assert_eq!(verify.code, 0, "{}", verify.all());
    assert!(
        verify.stdout.contains(&format!("{inc}: intact, ")),
        "{}",
        verify.all()
    );
    let verify_one = run(w.path(), &env, &["timeline", "verify", &inc], "").await;
    assert_eq!(verify_one.code, 0, "{}", verify_one.all());

    let show = run(w.path(), &env, &["timeline", "show", &inc], "").await;
    assert_eq!(show.code, 0, "{}", show.all());
    for kind in [
        "declared",
        "approval.approved",
        "run.started",
        "step.done",
        "closed",
    ] {
        assert!(
            show.stdout.contains(kind),
            "timeline lacks {kind}:\n{}",
            show.all()
        );
    }

    let pm = run(w.path(), &env, &["postmortem", &inc.to_lowercase()], "").await;
    assert_eq!(pm.code, 0, "{}", pm.all());
    assert!(pm.stdout.contains("approved by bob"), "{}", pm.all());

    let month = &inc[4..8].to_string();
    let month = format!("{month}-{}", &inc[8..10]);
    let report = run(w.path(), &env, &["report", "--month", &month], "").await;
    assert_eq!(report.code, 0, "{}", report.all());
    assert!(report.stdout.contains("P0"), "{}", report.all());
    let this_month = run(w.path(), &env, &["report"], "").await;
    assert_eq!(this_month.code, 0, "{}", this_month.all());
    let positional = run(w.path(), &env, &["report", &month], "").await;
    assert_eq!(
        positional.stdout, report.stdout,
        "`report 2026-11` is `report --month 2026-11`"
    );
    let open = run(w.path(), &env, &["incidents"], "").await;
    assert_eq!(open.code, 0, "{}", open.all());
    assert!(open.stdout.contains("No open incidents."), "{}", open.all());

    let list = run(w.path(), &env, &["playbooks", "list"], "").await;
    assert_eq!(list.code, 0, "{}", list.all());
    for name in ["failover", "failback", "security-isolation", "scale"] {
        assert!(list.stdout.contains(name), "{}", list.all());
    }
    let check = run(w.path(), &env, &["playbooks", "check"], "").await;
    assert_eq!(check.code, 0, "{}", check.all());
    assert!(check.stdout.contains("playbooks valid"), "{}", check.all());

    // Mistakes get a specific answer and a non-zero exit.
    let missing = run(w.path(), &env, &["postmortem", "INC-19990101-9"], "").await;
    assert_eq!(missing.code, 1, "{}", missing.all());
    assert!(
        missing
            .stdout
            .contains("there is no incident INC-19990101-9"),
        "{}",
        missing.all()
    );
    let bad_month = run(w.path(), &env, &["report", "--month", "2026-13"], "").await;
    assert_eq!(bad_month.code, 2, "{}", bad_month.all());
    assert!(
        bad_month.stdout.contains("`2026-13` is not a month"),
        "{}",
        bad_month.all()
    );
    let no_show = run(w.path(), &env, &["timeline", "show", "INC-19990101-9"], "").await;
    assert_eq!(no_show.code, 1, "{}", no_show.all());
}

/// `serve` without its tokens says what it needs and exits 2; it does not panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_without_tokens_says_what_it_needs() {
    let w = Workdir::new();
    let out = run(
        w.path(),
        &Env::new(),
        &["serve", "--listen", "127.0.0.1:0"],
        "",
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.all());
    // A service says why it stops on stderr, where its logs go.
    assert!(
        out.stderr.contains(
            "`serve` needs a chat platform: Slack (SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET, or SLACK_APP_TOKEN for Socket Mode) or Discord (DISCORD_TOKEN, DISCORD_APPLICATION_ID, DISCORD_PUBLIC_KEY and DISCORD_GUILD_ID)"
        ),
        "{}",
        out.all()
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.all());
    // A token Slack refuses is named at start.
    let fake = FakeSlack::start().await;
    fake.fail(
        "auth.test",
        200,
        r#"{"ok":false,"error":"invalid_auth"}"#,
        None,
    );
    let out = run(
        w.path(),
        &slack_env(&fake, &w.db_url()),
        &["serve", "--listen", "127.0.0.1:0"],
        "",
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr
            .contains("Slack refused the bot token (auth.test: invalid_auth)"),
        "{}",
        out.all()
    );
}

/// The whole story through the shipped binary: declare → channel, `/failover us-west-2` → card,
/// a second person's button → steps run; SIGTERM stops it cleanly; the timeline and the
/// postmortem, read by the binary, show it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_a_failover_from_signed_slack_requests() {
    let w = Workdir::new();
    let fake = FakeSlack::start().await;
    let env = slack_env(&fake, &w.db_url());
    let started = Instant::now();
    let mut bot = Served::start(w.path(), &env, &[]).await;
    let http = reqwest::Client::new();
    let health = http
        .get(format!("{}/healthz", bot.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = http
        .get(format!("{}/readyz", bot.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "{}", bot.log());
    eprintln!("serve ready after {:?}", started.elapsed());

    let slack = SignedSlack::new(&bot.url, &fake, SECRET);
    let r = slack
        .command(
            "U_ALICE",
            "C_GENERAL",
            "/erlmcp",
            "p0 declare API down in us-east-1",
        )
        .await;
    assert_eq!(r.status(), 200);
    fake.wait_until(
        "the incident channel is created and its summary pinned",
        |c| c.iter().any(|c| c.method == "pins.add"),
    )
    .await;
    let channel = fake.calls("conversations.create")[0].form["name"].clone();
    assert!(channel.starts_with("inc-"), "{channel}");
    let channel_id = fake.calls("pins.add")[0].form["channel"].clone();
    let invite = fake.calls("conversations.invite");
    assert_eq!(invite[0].form["users"], "U_ALICE");

    let r = slack
        .command("U_ALICE", &channel_id, "/failover", "us-west-2")
        .await;
    assert_eq!(r.status(), 200);
    fake.wait_until("the request card is posted with its buttons", |c| {
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
    assert!(card.form["text"].contains("plan digest"), "{:?}", card.form);

    // The requester's own button is refused, privately; nothing runs.
    let r = slack
        .button("U_ALICE", &channel_id, "erlmcp_approve", &request)
        .await;
    assert_eq!(r.status(), 200);
    fake.wait_until("the requester is told they cannot approve", |c| {
        c.iter().any(|c| {
            c.method == "response_url/U_ALICE"
                && c.form["text"].contains("a second person must approve it")
        })
    })
    .await;
    // A second person approves: the steps run and the card shows them.
    let r = slack
        .button("U_BOB", &channel_id, "erlmcp_approve", &request)
        .await;
    assert_eq!(r.status(), 200);
    fake.wait_until("the run finishes", |c| {
        c.iter().any(|c| {
            c.method == "chat.postMessage"
                && c.form.get("text").is_some_and(|t| t.contains("🏁 RUN-"))
        })
    })
    .await;
    assert!(
        fake.calls("chat.update")
            .iter()
            .any(|c| c.form["text"].contains("✔ RUN-")),
        "progress is shown on the card"
    );
    let code = bot.terminate().await;
    assert_eq!(code, Some(0), "SIGTERM stops serve cleanly:\n{}", bot.log());

    let plain = Env::new().set("DATABASE_URL", w.db_url());
    let verify = run(w.path(), &plain, &["timeline", "verify"], "").await;
    assert_eq!(verify.code, 0, "{}", verify.all());
    let inc = incident_id(&verify.stdout);
    let pm = run(w.path(), &plain, &["postmortem", &inc], "").await;
    assert_eq!(pm.code, 0, "{}", pm.all());
    for expected in [
        "# Postmortem: API down in us-east-1",
        &format!("### {request} `/failover us-west-2`: done"),
        "approved by bob",
        "| 2 | Promote database | bob (slack:U_BOB) |",
        "| 5 | Move DNS | bob (slack:U_BOB) |",
        "| alice | slack | Declared P0",
    ] {
        assert!(
            pm.stdout.contains(expected),
            "postmortem lacks {expected:?}:\n{}",
            pm.stdout
        );
    }
}

/// `/readyz` and slash commands while the database is away (a proxy the test cuts in front of
/// the local PostgreSQL), and again once it is back, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_reported_quickly_and_survived() {
    let Some(db) = erlmcp_tests::TestDb::new(erlmcp_tests::Backend::Postgres).await else {
        return;
    };
    let schema = db.pg_schema.clone().unwrap();
    let upstream = url::Url::parse(&erlmcp_tests::postgres_url()).unwrap();
    let proxy = erlmcp_tests::proxy::TcpProxy::start(&format!(
        "{}:{}",
        upstream.host_str().unwrap_or("127.0.0.1"),
        upstream.port().unwrap_or(5432)
    ))
    .await;
    let mut via_proxy = upstream.clone();
    via_proxy.set_port(Some(proxy.port)).unwrap();
    via_proxy
        .query_pairs_mut()
        .append_pair("options[search_path]", &schema);
    let w = Workdir::new();
    let fake = FakeSlack::start().await;
    let bot = Served::start(w.path(), &slack_env(&fake, via_proxy.as_str()), &[]).await;
    let http = reqwest::Client::new();
    let slack = SignedSlack::new(&bot.url, &fake, SECRET);
    assert_eq!(
        http.get(format!("{}/readyz", bot.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    proxy.cut();
    let t = Instant::now();
    let ready = http
        .get(format!("{}/readyz", bot.url))
        .send()
        .await
        .unwrap();
    let took = t.elapsed();
    assert_eq!(ready.status(), 503);
    let why = ready.text().await.unwrap();
    assert!(why.starts_with("not ready: "), "{why}");
    assert!(took < Duration::from_millis(1500), "readyz took {took:?}");
    let health = http
        .get(format!("{}/healthz", bot.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "liveness never touches the database");

    let t = Instant::now();
    let r = slack
        .command(
            "U_ALICE",
            "C_GENERAL",
            "/erlmcp",
            "p1 declare during the outage",
        )
        .await;
    let took = t.elapsed();
    assert_eq!(r.status(), 200, "Slack shows a 200's body to the person");
    assert!(took < Duration::from_secs(3), "answered in {took:?}");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["response_type"], "ephemeral");
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("cannot reach its database") && text.contains("Nothing was recorded"),
        "{text}"
    );

    // A button pressed meanwhile: its answer body is not shown, so the person hears through
    // the response URL.
    let r = slack
        .button("U_BOB", "C_GENERAL", "erlmcp_approve", "REQ-20261129-1")
        .await;
    assert_eq!(r.status(), 200);
    fake.wait_until("the button presser is told the database is down", |c| {
        c.iter().any(|c| {
            c.method == "response_url/U_BOB" && c.form["text"].contains("cannot reach its database")
        })
    })
    .await;

    proxy.restore();
    eventually("readyz recovers", Duration::from_secs(20), || {
        let http = http.clone();
        let url = format!("{}/readyz", bot.url);
        async move { http.get(url).send().await.is_ok_and(|r| r.status() == 200) }
    })
    .await;
    let r = slack
        .command(
            "U_ALICE",
            "C_GENERAL",
            "/erlmcp",
            "p1 declare after the outage",
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(
        r.text().await.unwrap().is_empty(),
        "an ordinary acknowledgement"
    );
    fake.wait_until("the incident is declared", |c| {
        c.iter().any(|c| {
            c.method == "chat.postMessage"
                && c.form
                    .get("text")
                    .is_some_and(|t| t.contains("after the outage"))
        })
    })
    .await;
    let open = db.store.open_incidents().await.unwrap();
    assert_eq!(
        open.len(),
        1,
        "only the command after the outage was recorded"
    );
    assert_eq!(open[0].title, "after the outage");
}

/// The environment of a process running the live executor against the Kubernetes stand-in
/// (every region's context points at it; the DR databases are never reached by `scale`).
pub fn live_env(kube: &erlmcp_tests::fakes::FakeKube, w: &Workdir, db_url: &str) -> Env {
    let kubeconfig = kube.write_kubeconfig(w.path());
    Env::new()
        .set("DATABASE_URL", db_url)
        .set("ERLMCP_EXECUTOR", "live")
        .set("KUBECONFIG", kubeconfig.display().to_string())
        .set(
            "ERLMCP_PG_US_WEST_2",
            "postgres://postgres@127.0.0.1:1/none",
        )
        .set(
            "ERLMCP_PG_EU_CENTRAL_1",
            "postgres://postgres@127.0.0.1:1/none",
        )
        .set("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .set("AWS_ACCESS_KEY_ID", "testing")
        .set("AWS_SECRET_ACCESS_KEY", "testing")
        .set("AWS_REGION", "us-east-1")
}

/// While a console executes a live `scale` whose PATCH the API server holds, every read-only
/// subcommand runs beside it on the same database and not one more request reaches Kubernetes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_subcommands_never_execute_beside_a_live_run() {
    let w = Workdir::new();
    let kube = erlmcp_tests::fakes::FakeKube::start(3).await;
    let release = kube.hold("PATCH", "/statefulsets/erlmcp-cluster/scale");
    let env = live_env(&kube, &w, &w.db_url());
    let script = "as alice\n/erlmcp p1 declare scale up for load\n/erlmcp scale us-east-1 5\nas bob\n/erlmcp approve\n";
    let mut console =
        crate::program::Running::spawn(w.path(), &env, &["console"], Some(script), "");
    kube.wait_for_arrivals("PATCH", "/scale", 1).await;
    let before = kube.seen().len();

    let plain = Env::new().set("DATABASE_URL", w.db_url());
    let verify = run(w.path(), &plain, &["timeline", "verify"], "").await;
    assert_eq!(verify.code, 0, "{}", verify.all());
    let inc = incident_id(&verify.stdout);
    // Run with the live configuration too: reading must not even connect to the cluster.
    for args in [
        vec!["timeline", "verify"],
        vec!["timeline", "show", inc.as_str()],
        vec!["postmortem", inc.as_str()],
        vec!["report"],
        vec!["incidents"],
        vec!["playbooks", "list"],
        vec!["playbooks", "check"],
    ] {
        let out = run(w.path(), &env, &args, "").await;
        assert_eq!(out.code, 0, "{args:?}: {}", out.all());
    }
    assert_eq!(
        kube.seen().len(),
        before,
        "a read-only subcommand reached the API server: {:?}",
        &kube.seen()[before..]
    );
    assert_eq!(kube.applied().len(), 0, "the held PATCH is not applied yet");

    release.send(true).unwrap();
    let code = console.wait(Duration::from_secs(60)).await;
    assert_eq!(code, Some(0), "{}", console.log());
    assert!(console.log().contains("🏁 RUN-"), "{}", console.log());
    let patches: Vec<_> = kube
        .applied()
        .into_iter()
        .filter(|s| s.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), 1, "one approval, one PATCH: {patches:?}");
}

/// `serve` behind a firewall: with `SLACK_APP_TOKEN` it opens Socket Mode (no public endpoint),
/// still answers the probes, acknowledges each envelope, and acts on it as on an HTTP request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_in_socket_mode_takes_commands_over_the_websocket() {
    let w = Workdir::new();
    let fake = FakeSlack::start().await;
    let socket = erlmcp_tests::slack_fake::FakeSocket::start(&fake).await;
    let env = slack_env(&fake, &w.db_url()).set("SLACK_APP_TOKEN", "xapp-1-test");
    let bot = Served::start(w.path(), &env, &[]).await;
    assert!(bot.log().contains("Socket Mode"), "{}", bot.log());
    socket.connected().await;
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(format!("{}/readyz", bot.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    socket.send(
        "e-declare",
        "slash_commands",
        serde_json::json!({
            "token": "x", "team_id": "T1", "team_domain": "acme", "channel_id": "C_GENERAL", "channel_name": "general",
            "user_id": "U_ALICE", "user_name": "alice", "command": "/erlmcp", "text": "p1 declare checkout errors",
            "api_app_id": "A1", "response_url": format!("{}/response/U_ALICE", fake.url), "trigger_id": "1.2.3"
        }),
    );
    socket.acked("e-declare").await;
    fake.wait_until("the incident is declared and its channel opened", |c| {
        c.iter().any(|c| c.method == "pins.add")
    })
    .await;
    let channel_id = fake.calls("pins.add")[0].form["channel"].clone();
    socket.send(
        "e-failover",
        "slash_commands",
        serde_json::json!({
            "token": "x", "team_id": "T1", "team_domain": "acme", "channel_id": channel_id, "channel_name": "inc",
            "user_id": "U_ALICE", "user_name": "alice", "command": "/failover", "text": "us-west-2",
            "api_app_id": "A1", "response_url": format!("{}/response/U_ALICE", fake.url), "trigger_id": "1.2.4"
        }),
    );
    socket.acked("e-failover").await;
    fake.wait_until("the request card is posted", |c| {
        c.iter().any(|c| {
            c.method == "chat.postMessage"
                && c.form
                    .get("blocks")
                    .is_some_and(|b| b.contains("erlmcp_approve"))
        })
    })
    .await;
}

/// `serve` started beside a run whose owner died answers its probes at once; taking the run over
/// happens in the background (here it is stuck at the API server, and readiness does not care).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_taken_over_at_start_does_not_delay_readiness() {
    let w = Workdir::new();
    let kube = erlmcp_tests::fakes::FakeKube::start(3).await;
    let release = kube.hold("PATCH", "/statefulsets/erlmcp-cluster/scale");
    let env = live_env(&kube, &w, &w.db_url()).set("ERLMCP_RUN_LEASE", "1s");
    let script = "as alice\n/erlmcp p1 declare scale up\n/erlmcp scale us-east-1 5\nas bob\n/erlmcp approve\n";
    let mut console =
        crate::program::Running::spawn(w.path(), &env, &["console"], Some(script), "");
    kube.wait_for_arrivals("PATCH", "/scale", 1).await;
    console.kill9().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let fake = FakeSlack::start().await;
    let mut serve_env = env.clone();
    for (k, v) in slack_env(&fake, &w.db_url()).0 {
        serve_env = serve_env.set(&k, v);
    }
    let bot = Served::start(w.path(), &serve_env, &[]).await;
    let http = reqwest::Client::new();
    let t = Instant::now();
    let ready = http
        .get(format!("{}/readyz", bot.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "{}", bot.log());
    assert!(t.elapsed() < Duration::from_secs(1));
    // The takeover's own PATCH reaches the API server and waits there.
    kube.wait_for_arrivals("PATCH", "/scale", 2).await;
    let t = Instant::now();
    let ready = http
        .get(format!("{}/readyz", bot.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    assert!(t.elapsed() < Duration::from_secs(1));
    release.send(true).unwrap();
    // The incident was declared at the console, so no chat hears of it: the timeline does.
    let plain = Env::new().set("DATABASE_URL", w.db_url());
    let inc = incident_id(&run(w.path(), &plain, &["incidents"], "").await.stdout);
    eventually(
        "the run taken over finishes",
        Duration::from_secs(30),
        || {
            let (w, plain, inc) = (&w, &plain, &inc);
            async move {
                run(w.path(), plain, &["timeline", "show", inc], "")
                    .await
                    .stdout
                    .contains("run.done")
            }
        },
    )
    .await;
    assert!(
        !fake
            .calls("chat.postMessage")
            .iter()
            .any(|c| c.form.get("channel").is_some_and(|c| c == "console")),
        "nothing is posted to a Slack channel named console"
    );
}
