//! The security review's attacks, each performed and shown to fail: correctly signed Slack
//! requests against the real server and the Web API stand-in, and the engine on both backends
//! where storage is involved.

use crate::program::{Env, Served, Workdir, run};
use erlmcp_handlers::approval::RequestState;
use erlmcp_handlers::ids::{IncidentId, RequestId};
use erlmcp_tests::slack_fake::{Call, FakeSlack, SignedSlack, bot_config};
use erlmcp_tests::{Backend, TestApp, on_both_backends};
use std::time::{Duration, Instant};

const SECRET: &str = "hardening-test-signing-secret";

/// A bot on SQLite served in-process, with the Slack stand-in.
struct Bot {
    slack: SignedSlack,
    fake: FakeSlack,
    app: erlmcp_bot::app::App,
    _dir: tempfile::TempDir,
}

async fn bot() -> Bot {
    erlmcp_bot::cli::install_crypto_provider();
    let fake = FakeSlack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("bot.db").display());
    let (config, slack_config) = bot_config(&db, &fake.api_url(), SECRET);
    let (router, app) = erlmcp_bot::serve::build(&config, &slack_config)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(erlmcp_bot::http::serve(
        listener,
        router,
        std::future::pending::<()>(),
    ));
    Bot {
        slack: SignedSlack::new(&url, &fake, SECRET),
        fake,
        app,
        _dir: dir,
    }
}

fn cards(calls: &[Call]) -> Vec<Call> {
    calls
        .iter()
        .filter(|c| c.method == "chat.postMessage" && c.form.contains_key("blocks"))
        .filter(|c| c.form["blocks"].contains("erlmcp_approve"))
        .cloned()
        .collect()
}

fn request_id(text: &str) -> String {
    regex::Regex::new(r"REQ-\d{8}-\d+")
        .unwrap()
        .find(text)
        .unwrap()
        .as_str()
        .to_string()
}

impl Bot {
    /// alice declares, then asks for `command` in the incident channel; returns (channel, request).
    async fn pending(&self, command: &str, text: &str) -> (String, String) {
        self.slack
            .command("U_ALICE", "C_GENERAL", "/erlmcp", "p1 declare under attack")
            .await;
        self.fake
            .wait_until("the incident channel", |c| {
                c.iter().any(|c| c.method == "pins.add")
            })
            .await;
        let channel = self.fake.calls("pins.add")[0].form["channel"].clone();
        self.slack.command("U_ALICE", &channel, command, text).await;
        self.fake
            .wait_until("the card", |c| !cards(c).is_empty())
            .await;
        let calls = self.fake.state.lock().unwrap().calls.clone();
        (channel, request_id(&cards(&calls)[0].form["text"]))
    }

    async fn state(&self, id: &str) -> RequestState {
        self.app
            .engine
            .store()
            .request(&RequestId::new(id))
            .await
            .unwrap()
            .unwrap()
            .state
    }

    /// Waits until someone is told `text` privately.
    async fn told(&self, who: &str, text: &str) {
        let (who, text) = (who.to_string(), text.to_string());
        self.fake
            .wait_until(&format!("{who} is told {text:?}"), move |c| {
                c.iter().any(|c| {
                    (c.method == format!("response_url/{who}")
                        || (c.method == "chat.postEphemeral" && c.form.get("user") == Some(&who)))
                        && c.form["text"].contains(&text)
                })
            })
            .await;
    }
}

/// Item 1: A display name is not an identity: U_EVE named herself "U_SAM" (the security approver's
/// id); her approval of a security isolation is refused, and the real U_SAM's counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_display_name_never_satisfies_an_approver_group() {
    let b = bot().await;
    let (channel, req) = b.pending("/erlmcp", "isolate").await;
    b.slack
        .button("U_EVE", &channel, "erlmcp_approve", &req)
        .await;
    b.told("U_EVE", "approver must be in group security").await;
    assert_eq!(b.state(&req).await, RequestState::Pending);
    b.slack
        .button("U_SAM", &channel, "erlmcp_approve", &req)
        .await;
    b.fake
        .wait_until("the isolation runs", |c| {
            c.iter()
                .any(|c| c.form.get("text").is_some_and(|t| t.contains("🏁 RUN-")))
        })
        .await;
    let inc = b
        .app
        .engine
        .store()
        .open_incidents()
        .await
        .unwrap()
        .remove(0);
    let tl = b.app.engine.store().timeline(&inc.id).await.unwrap();
    let approved = tl.iter().find(|e| e.kind == "approval.approved").unwrap();
    assert!(
        approved.text.contains("sam (slack:U_SAM)"),
        "the timeline names the approver and their id: {}",
        approved.text
    );
}

/// Item 2: When Slack cannot say who someone is, their approval is refused with the reason, never
/// counted, and can be given again once Slack answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_is_refused_when_the_bot_cannot_tell_a_person_from_a_bot() {
    let b = bot().await;
    let (channel, req) = b.pending("/failover", "us-west-2").await;
    for (status, body) in [
        (429u16, ""),
        (503, "upstream connect error"),
        (200, r#"{"ok":false,"error":"missing_scope"}"#),
        (200, r#"{"ok":false,"error":"ratelimited"}"#),
    ] {
        // users.info is retried on 429s and 5xx; make every try fail.
        for _ in 0..4 {
            b.fake.fail("users.info", status, body, Some(0));
        }
        b.slack
            .button("U_BOB", &channel, "erlmcp_approve", &req)
            .await;
        b.told("U_BOB", "could not check that you are a person")
            .await;
        assert_eq!(
            b.state(&req).await,
            RequestState::Pending,
            "{status} {body}"
        );
        assert!(
            b.app
                .engine
                .store()
                .approvals(&RequestId::new(&req))
                .await
                .unwrap()
                .is_empty(),
            "never counted"
        );
        b.fake.state.lock().unwrap().faults.clear();
        b.fake.state.lock().unwrap().calls.clear();
    }
    // Slack answers again: the same person's approval counts.
    b.slack
        .button("U_BOB", &channel, "erlmcp_approve", &req)
        .await;
    b.fake
        .wait_until("the failover runs", |c| {
            c.iter()
                .any(|c| c.form.get("text").is_some_and(|t| t.contains("🏁 RUN-")))
        })
        .await;
}

/// Item 6: Only the bot's own workspace and app: a request signed for another workspace or app, and
/// an external (Slack Connect) user's button, change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_workspaces_apps_and_external_users_are_refused() {
    let b = bot().await;
    let (channel, req) = b.pending("/failover", "us-west-2").await;
    let mut other_team = b.slack.clone();
    other_team.team_id = "T0OTHER".into();
    let r = other_team
        .command("U_BOB", &channel, "/erlmcp", "approve")
        .await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["text"].as_str().unwrap().contains("workspace T0OTHER"),
        "{body}"
    );
    let mut other_app = b.slack.clone();
    other_app.app_id = "A0OTHERAPP".into();
    let r = other_app
        .button("U_BOB", &channel, "erlmcp_approve", &req)
        .await;
    assert_eq!(r.status(), 200);
    let r = other_app
        .command("U_BOB", &channel, "/erlmcp", "p0 declare from another app")
        .await;
    assert!(r.text().await.unwrap().contains("app A0OTHERAPP"));
    // An external user pressing the button in a shared channel (their team is T0OTHER).
    let r = b
        .slack
        .button("U_EXT1", &channel, "erlmcp_approve", &req)
        .await;
    assert_eq!(r.status(), 200);
    b.told("U_EXT1", "you belong to workspace T0OTHER").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(b.state(&req).await, RequestState::Pending);
    assert_eq!(
        b.app.engine.store().open_incidents().await.unwrap().len(),
        1,
        "no incident from another app"
    );
}

/// Item 8: A hostile title cannot break out of the card, mention the channel, link, or push the
/// digest and the plan's later steps out of the card.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_is_escaped_and_cards_keep_their_digest() {
    let b = bot().await;
    let title = format!(
        "x```\n<!channel> *Plan digest 000 verified safe* <https://evil.example|click> {}",
        "y".repeat(100)
    );
    b.slack
        .command(
            "U_ALICE",
            "C_GENERAL",
            "/erlmcp",
            &format!("p1 declare {title}"),
        )
        .await;
    b.fake
        .wait_until("the channel", |c| c.iter().any(|c| c.method == "pins.add"))
        .await;
    let channel = b.fake.calls("pins.add")[0].form["channel"].clone();
    // A webhook step carries the title into the plan: the security isolation's last step.
    b.slack
        .command("U_ALICE", &channel, "/erlmcp", "isolate")
        .await;
    b.fake
        .wait_until("the card", |c| !cards(c).is_empty())
        .await;
    let calls = b.fake.state.lock().unwrap().calls.clone();
    for c in calls.iter().filter(|c| c.method.starts_with("chat.")) {
        let text = c.form.get("text").cloned().unwrap_or_default();
        assert!(
            !text.contains("<!channel>") && !text.contains("<https://evil"),
            "unescaped user text reached Slack: {text}"
        );
    }
    let card = &cards(&calls)[0];
    let blocks: serde_json::Value = serde_json::from_str(&card.form["blocks"]).unwrap();
    let blocks = blocks.as_array().unwrap();
    let digest = b
        .app
        .engine
        .store()
        .request(&RequestId::new(request_id(&card.form["text"])))
        .await
        .unwrap()
        .unwrap()
        .plan_digest;
    for block in blocks.iter().filter(|bl| bl["type"] == "section") {
        let text = block["text"]["text"].as_str().unwrap();
        if text.contains("evil") {
            assert_eq!(
                block["text"]["type"], "plain_text",
                "user text is plain text"
            );
        }
    }
    let actions = blocks
        .iter()
        .position(|bl| bl["type"] == "actions")
        .unwrap();
    assert!(
        blocks[actions - 1]["text"]["text"]
            .as_str()
            .unwrap()
            .contains(&digest),
        "the digest sits right above the buttons"
    );
    // A user name of a megabyte is refused, not stored.
    let r = b
        .slack
        .command(
            "U_ALICE",
            &channel,
            "/erlmcp",
            &format!("role ic {}", "z".repeat(5000)),
        )
        .await;
    assert_eq!(r.status(), 200);
    b.told("U_ALICE", "a user name is at most 80 characters")
        .await;
    let inc = b
        .app
        .engine
        .store()
        .open_incidents()
        .await
        .unwrap()
        .remove(0);
    assert!(inc.roles.is_empty());
    assert!(inc.title.chars().count() <= erlmcp_handlers::command::MAX_TITLE_CHARS);
    // The postmortem keeps the title a title.
    let md = b.app.engine.postmortem_markdown(&inc.id).await.unwrap();
    let first = md.lines().next().unwrap();
    assert!(first.starts_with("# Postmortem: x\\`\\`\\`"), "{first}");
    assert!(!md.contains("<!channel>") && !md.contains("<https://"));
}

/// Item 9: A 📌 on a thread reply files that reply (not the newest top-level message); a 📌 in a
/// channel that belongs to no incident files nothing and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_files_the_exact_message_and_only_in_an_incident_channel() {
    let b = bot().await;
    b.slack
        .command("U_ALICE", "C_GENERAL", "/erlmcp", "p1 declare pins")
        .await;
    b.fake
        .wait_until("the channel", |c| c.iter().any(|c| c.method == "pins.add"))
        .await;
    let channel = b.fake.calls("pins.add")[0].form["channel"].clone();
    b.fake.state.lock().unwrap().messages = vec![
        (
            channel.clone(),
            "1700000100.000100".into(),
            "U_CAROL".into(),
            "root of the thread".into(),
            None,
        ),
        (
            channel.clone(),
            "1700000105.000100".into(),
            "U_BOB".into(),
            "the reply that matters".into(),
            Some("1700000100.000100".into()),
        ),
        (
            channel.clone(),
            "1700000200.000100".into(),
            "U_ALICE".into(),
            "a newer top-level message".into(),
            None,
        ),
        (
            "C_RANDOM".into(),
            "1700000300.000100".into(),
            "U_CAROL".into(),
            "unrelated chatter".into(),
            None,
        ),
    ];
    b.slack
        .reaction(
            "EvPin1",
            "U_ALICE",
            "pushpin",
            &channel,
            "1700000105.000100",
        )
        .await;
    b.told("U_ALICE", "Added bob's message").await;
    let inc = b
        .app
        .engine
        .store()
        .open_incidents()
        .await
        .unwrap()
        .remove(0);
    let tl = b.app.engine.store().timeline(&inc.id).await.unwrap();
    let pinned: Vec<&str> = tl
        .iter()
        .filter(|e| e.kind == "pinned")
        .map(|e| e.text.as_str())
        .collect();
    assert_eq!(pinned, vec!["📌 bob (slack:U_BOB): the reply that matters"]);
    // In a channel of no incident: refused with a hint, nothing filed.
    b.slack
        .reaction(
            "EvPin2",
            "U_ALICE",
            "pushpin",
            "C_RANDOM",
            "1700000300.000100",
        )
        .await;
    b.told("U_ALICE", "belongs to no open incident").await;
    let tl = b.app.engine.store().timeline(&inc.id).await.unwrap();
    assert_eq!(tl.iter().filter(|e| e.kind == "pinned").count(), 1);
}

/// Item 5: Slow and huge requests: a body over the limit is refused while it is read, a body that
/// trickles is cut after the read timeout, headers that trickle too; many at once get a quick
/// 503 rather than memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_or_huge_requests_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let w = Workdir::new();
    let fake = FakeSlack::start().await;
    let bot = Served::start(
        w.path(),
        &crate::shipped::slack_env(&fake, &w.db_url()),
        &[],
    )
    .await;
    let addr = bot.url.trim_start_matches("http://").to_string();
    let rss = |pid: u32| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    let before = rss(bot.pid());
    // Too big: 413 before any of the body is read. (Sent over a raw socket that waits for the
    // answer: a client still writing the 2 MB when the bot closes gets a broken pipe, or a reset
    // that can discard the 413 before it is read.)
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"POST /slack/commands HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 2097152\r\nx-slack-request-timestamp: 1\r\nx-slack-signature: v0=00\r\n\r\n")
        .await
        .unwrap();
    let mut answer = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut answer))
        .await
        .expect("the bot answers an oversized request at once")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    drop(s);
    // 150 connections trickling a large body: each is cut after the read timeout; the process
    // stays small and answers probes meanwhile.
    let started = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..150 {
        let addr = addr.clone();
        slow.push(tokio::spawn(async move {
            let Ok(mut s) = tokio::net::TcpStream::connect(&addr).await else {
                return (None, Duration::ZERO);
            };
            let t = Instant::now();
            let head = "POST /slack/commands HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 200000\r\nx-slack-request-timestamp: 1\r\nx-slack-signature: v0=00\r\n\r\n";
            if s.write_all(head.as_bytes()).await.is_err() {
                return (None, t.elapsed());
            }
            let mut answer = vec![0u8; 512];
            for _ in 0..400 {
                if s.write_all(&[b'a'; 100]).await.is_err() {
                    break;
                }
                if let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_millis(100), s.read(&mut answer)).await
                {
                    let text = String::from_utf8_lossy(&answer[..n]).to_string();
                    return (Some(text), t.elapsed());
                }
            }
            (None, t.elapsed())
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let probe = reqwest::get(format!("{}/healthz", bot.url)).await.unwrap();
    assert_eq!(probe.status(), 200, "the probes answer during the attack");
    let mut outcomes = Vec::new();
    for s in slow {
        outcomes.push(s.await.unwrap());
    }
    let cut = outcomes
        .iter()
        .filter(|(a, _)| {
            a.as_deref()
                .is_some_and(|t| t.starts_with("HTTP/1.1 408") || t.starts_with("HTTP/1.1 503"))
        })
        .count();
    assert!(
        cut >= 140,
        "slow uploads are answered 408 (or 503 when too many): {:?}",
        outcomes.iter().take(5).collect::<Vec<_>>()
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "every slow upload was cut within the read timeout ({:?})",
        started.elapsed()
    );
    let after = rss(bot.pid());
    assert!(
        after < before + 40 * 1024,
        "memory stays bounded: {before} kB before, {after} kB after"
    );
    // Headers that trickle are cut too.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let t = Instant::now();
    let mut closed = false;
    for _ in 0..300 {
        if s.write_all(b"X").await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 64];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await
        {
            closed = n == 0 || String::from_utf8_lossy(&buf[..n]).contains("408");
            if closed {
                break;
            }
        }
    }
    assert!(
        closed,
        "a connection sending headers byte by byte is closed"
    );
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
}

/// Item 10: A password in the query string of DATABASE_URL is never printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_passwords_never_reach_the_output() {
    let w = Workdir::new();
    let url = "postgres://bot:s3cret-in-userinfo@127.0.0.1:1/erlmcp?password=s3cret-in-query&sslmode=disable";
    let out = run(
        w.path(),
        &Env::new().set("DATABASE_URL", url),
        &["timeline", "verify"],
        "",
    )
    .await;
    assert_ne!(out.code, 0);
    let all = out.all();
    assert!(!all.contains("s3cret"), "{all}");
    assert!(all.contains("cannot connect to PostgreSQL"), "{all}");
}

// Engine-level attacks, on SQLite and PostgreSQL.

/// Item 3: a typed `approve` binds to what the approver saw: after the requester cancelled a harmless
/// scale and asked for a failover, `approve` alone does not run the failover.
async fn a_typed_approve_without_an_id_does_not_approve_a_switched_request(b: Backend) {
    let Some(t) = TestApp::new(b).await else {
        return;
    };
    t.ok("alice", "p1 declare API slow").await;
    t.ok("alice", "scale us-east-1 4").await;
    t.ok("alice", "cancel").await;
    t.ok("alice", "/failover us-west-2").await;
    let r = t.refused("bob", "approve").await;
    assert!(r.contains("name the request you read"), "{r}");
    assert!(
        r.contains("REQ-20261128-1 (`scale us-east-1 4`) became cancelled"),
        "{r}"
    );
    assert!(r.contains("REQ-20261128-2"), "{r}");
    assert!(
        r.contains("Plan digest:"),
        "the reply shows the pending plan: {r}"
    );
    assert_eq!(t.sim.apply_count(), 0, "nothing ran");
    // Named, it runs.
    assert!(t.ok("bob", "approve REQ-20261128-2").await.contains("🏁"));
    // A lone fresh request is still approved at once, a minute on.
    t.clock.advance(chrono::Duration::seconds(61));
    t.ok("alice", "scale us-east-1 4").await;
    assert!(t.ok("bob", "approve").await.contains("🏁"));
}

/// Item 4: resolving cancels pending requests (on the timeline), nothing is approved afterwards, and
/// no new change is accepted for a resolved or closed incident.
async fn requests_die_with_their_incident(b: Backend) {
    let Some(t) = TestApp::new(b).await else {
        return;
    };
    t.ok("alice", "p1 declare API slow").await;
    t.ok("alice", "scale us-east-1 4").await;
    let resolved = t.ok("alice", "resolve it recovered").await;
    assert!(
        resolved.contains("Pending requests cancelled"),
        "{resolved}"
    );
    assert!(resolved.contains("Timeline witness: "), "{resolved}");
    let r = t.refused("bob", "approve REQ-20261128-1").await;
    assert!(r.contains("was cancelled"), "{r}");
    let r = t.refused("alice", "scale us-east-1 9").await;
    assert!(
        r.contains("not requested for a resolved or closed incident"),
        "{r}"
    );
    t.ok("alice", "close").await;
    let r = t.refused("alice", "INC-20261128-1 scale us-east-1 9").await;
    assert!(r.contains("closed"), "{r}");
    assert_eq!(t.sim.apply_count(), 0);
    let tl =
        t.db.store
            .timeline(&IncidentId::new("INC-20261128-1"))
            .await
            .unwrap();
    assert!(
        tl.iter()
            .any(|e| e.kind == "approval.cancelled" && e.text.contains("resolved"))
    );
    assert!(
        t.engine
            .verify_timeline(&IncidentId::new("INC-20261128-1"))
            .await
            .unwrap()
            .is_empty()
    );
}

/// Item 7: with the timeline keyed, rewriting "bob approved" as carol (triggers dropped, every hash
/// and the head recomputed) is caught; editing the approvals table the postmortem reads is
/// caught against the chain's facts even without a key.
async fn rewriting_history_without_the_key_is_caught(b: Backend) {
    let settings = erlmcp_tests::test_settings();
    let Some(t) = TestApp::with_settings(b, settings).await else {
        return;
    };
    let key =
        erlmcp_handlers::timeline::TimelineKey::new("0123456789abcdef0123456789abcdef").unwrap();
    let keyed = t.db.keyed(key.clone()).await;
    let engine = erlmcp_tests::engine_on(
        keyed.clone(),
        std::sync::Arc::new(t.sim.clone()),
        t.clock.clone(),
        t.outbox.clone(),
        erlmcp_tests::test_settings(),
    );
    let say = |who: &'static str, text: &'static str| {
        let engine = engine.clone();
        async move { engine.handle(&erlmcp_tests::request(who, text)).await }
    };
    say("alice", "p1 declare keyed").await;
    say("alice", "scale us-east-1 4").await;
    assert!(say("bob", "approve").await[0].text.contains("🏁"));
    let id = IncidentId::new("INC-20261128-1");
    let check = erlmcp_handlers::reads::verify_timeline(keyed.as_ref(), &id, Some(&key))
        .await
        .unwrap();
    assert!(check.breaks.is_empty(), "{:?}", check.breaks);
    assert_eq!(
        check.keying.to_string(),
        format!("keyed ({} entries)", check.entries)
    );

    // The attacker: rewrite every "bob" as "carol", recompute the chain, update the head.
    t.db.rewrite_timeline(&id, "bob", "carol").await;
    let check = erlmcp_handlers::reads::verify_timeline(t.db.store.as_ref(), &id, Some(&key))
        .await
        .unwrap();
    assert!(
        check
            .breaks
            .iter()
            .any(|b| matches!(b, erlmcp_handlers::timeline::Break::MacInvalid { .. })),
        "{:?}",
        check.breaks
    );
    let unkeyed = erlmcp_handlers::reads::verify_timeline(t.db.store.as_ref(), &id, None)
        .await
        .unwrap();
    assert!(
        unkeyed
            .breaks
            .iter()
            .all(|b| matches!(b, erlmcp_handlers::timeline::Break::Table { .. })),
        "without the key the hashes alone cannot tell: {:?}",
        unkeyed.breaks
    );
    // The tables the postmortem reads are held to the chain's facts: the rewritten chain says
    // carol approved, the approvals table still says bob.
    assert!(
        unkeyed
            .breaks
            .iter()
            .any(|b| b.to_string().contains("approval by")),
        "{:?}",
        unkeyed.breaks
    );
}

on_both_backends!(
    a_typed_approve_without_an_id_does_not_approve_a_switched_request,
    requests_die_with_their_incident,
    rewriting_history_without_the_key_is_caught,
);
