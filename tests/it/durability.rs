//! An acknowledged command is durable: `serve` is killed with SIGKILL while notes pour in, and
//! after a restart every note it acknowledged is on the timeline exactly once (the receipts it
//! stored before acknowledging are processed by the process that comes back).

use crate::program::{Served, Workdir};
use crate::shipped::{incident_id, slack_env};
use erlmcp_handlers::ids::IncidentId;
use erlmcp_tests::slack_fake::{FakeSlack, SignedSlack};
use erlmcp_tests::{Backend, TestDb};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

async fn acked_notes_survive_a_kill(backend: Backend) {
    let w = Workdir::new();
    let (db_url, _db) = match backend {
        Backend::Sqlite => (w.db_url(), None),
        Backend::Postgres => {
            let Some(db) = TestDb::new(Backend::Postgres).await else {
                return;
            };
            let mut url = url::Url::parse(&erlmcp_tests::postgres_url()).unwrap();
            url.query_pairs_mut()
                .append_pair("options[search_path]", db.pg_schema.as_ref().unwrap());
            (url.to_string(), Some(db))
        }
    };
    let fake = FakeSlack::start().await;
    let env = slack_env(&fake, &db_url);
    let mut bot = Served::start(w.path(), &env, &[]).await;
    let slack = SignedSlack::new(&bot.url, &fake, SECRET);
    slack
        .command(
            "U_ALICE",
            "C_GENERAL",
            "/erlmcp",
            "p1 declare notes under fire",
        )
        .await;
    fake.wait_until("the incident channel", |c| {
        c.iter().any(|c| c.method == "pins.add")
    })
    .await;
    let channel = fake.calls("pins.add")[0].form["channel"].clone();
    let inc = IncidentId::new(incident_id(&fake.calls("chat.postMessage")[0].form["text"]));

    // Processing waits (its first look-up of the note-taker is held), so receipts are stored
    // and acknowledged but not yet on the timeline when the bot dies: the restart must do it.
    let gate = Arc::new(tokio::sync::Notify::new());
    fake.state.lock().unwrap().hold_users_info = Some(gate.clone());
    // 16 senders, notes as fast as they are acknowledged; the bot dies under them.
    let acked: Arc<Mutex<BTreeMap<String, bool>>> = Arc::default();
    let mut senders = Vec::new();
    for s in 0..16 {
        let (slack, channel, acked) = (slack.clone(), channel.clone(), acked.clone());
        senders.push(tokio::spawn(async move {
            for k in 0.. {
                let text = format!("note s{s}-n{k}");
                let body = slack.command_body("U_BOB", &channel, "/erlmcp", &text);
                let sent = slack
                    .http
                    .post(format!("{}/slack/commands", slack.bot_url))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("x-slack-request-timestamp", SignedSlack::now().to_string())
                    .header(
                        "x-slack-signature",
                        erlmcp_tests::slack_fake::sign(&slack.secret, SignedSlack::now(), &body),
                    )
                    .body(body)
                    .send()
                    .await;
                let ok = match sent {
                    Ok(r) if r.status() == 200 => r.text().await.is_ok_and(|t| {
                        t.contains("s timeline.\"") || t.contains("Received and stored")
                    }),
                    // The bot is gone: this one was never acknowledged; stop.
                    _ => break,
                };
                acked
                    .lock()
                    .unwrap()
                    .insert(text.trim_start_matches("note ").to_string(), ok);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    bot.kill9().await;
    for s in senders {
        let _ = s.await;
    }
    let acked: Vec<String> = acked
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, ok)| **ok)
        .map(|(t, _)| t.clone())
        .collect();
    assert!(
        acked.len() > 100,
        "the load was real: {} acknowledged",
        acked.len()
    );

    let store: Arc<dyn erlmcp_handlers::store::Store> = match &_db {
        Some(db) => db.store.clone(),
        None => erlmcp_bot::store::open(&db_url, None).await.unwrap().store,
    };
    let before_restart = store
        .timeline(&inc)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.kind == "note")
        .count();
    assert_eq!(before_restart, 0, "nothing was processed before the kill");
    // Back up on the same database: what was acknowledged is processed from its receipts.
    fake.state.lock().unwrap().hold_users_info = None;
    gate.notify_waiters();
    let _bot = Served::start(w.path(), &env, &[]).await;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..200 {
        counts.clear();
        for e in store.timeline(&inc).await.unwrap() {
            if e.kind == "note" {
                *counts.entry(e.text.clone()).or_default() += 1;
            }
        }
        if acked.iter().all(|t| counts.contains_key(t)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let missing: Vec<&String> = acked.iter().filter(|t| !counts.contains_key(*t)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged notes were lost (of {}): {:?}",
        missing.len(),
        acked.len(),
        missing.iter().take(5).collect::<Vec<_>>()
    );
    let twice: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "notes recorded twice: {twice:?}");
    let check = erlmcp_handlers::reads::verify_timeline(store.as_ref(), &inc, None)
        .await
        .unwrap();
    assert!(check.breaks.is_empty(), "{:?}", check.breaks);
    eprintln!(
        "{backend:?}: {} notes acknowledged before the kill, all on the timeline once ({} there in all)",
        acked.len(),
        counts.len()
    );
}

erlmcp_tests::on_both_backends!(acked_notes_survive_a_kill);

/// A note that cannot be recorded (no incident in the channel) is stored, answered to its author
/// only, refused once, and finished: it is not offered again every few seconds, and the
/// commands after it are processed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_note_is_told_once_and_finished() {
    let w = Workdir::new();
    let fake = FakeSlack::start().await;
    let env = slack_env(&fake, &w.db_url());
    let bot = Served::start(w.path(), &env, &[]).await;
    let slack = SignedSlack::new(&bot.url, &fake, SECRET);
    let answer = slack
        .command("U_ALICE", "C_NOWHERE", "/erlmcp", "note nobody hears this")
        .await;
    assert_eq!(answer.status(), 200);
    let body = answer.text().await.unwrap();
    assert!(
        body.contains("Received and stored") && body.contains("ephemeral"),
        "not announced in the channel as noted: {body}"
    );
    let refusals = |c: &[erlmcp_tests::slack_fake::Call]| {
        c.iter()
            .filter(|c| {
                c.form
                    .get("text")
                    .is_some_and(|t| t.contains("No open incident"))
            })
            .count()
    };
    fake.wait_until("the refusal", |c| refusals(c) >= 1).await;
    // Two sweeps of receipts left behind (every 5 s) later, it was said once.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let calls = fake.state.lock().unwrap().calls.clone();
    assert_eq!(refusals(&calls), 1, "told once");
    // And what comes after it is processed.
    slack
        .command(
            "U_ALICE",
            "C_GENERAL",
            "/erlmcp",
            "p2 declare after the refusal",
        )
        .await;
    fake.wait_until("the incident after it", |c| {
        c.iter().any(|c| c.method == "pins.add")
    })
    .await;
    let pool = sqlx::SqlitePool::connect(&w.db_url()).await.unwrap();
    let waiting: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM receipts WHERE state = 'new'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(waiting, 0, "nothing left to process");
    drop(bot);
}

/// SQLite's write-ahead log starts again from its beginning while writes keep coming, one
/// transaction after another with no pause: it is copied into the database file whole between
/// two of them, so it does not grow for as long as the load lasts (it grew by about 100 MB a
/// second at 8,000 notes a second, and its index, mapped into the process, with it). The log's
/// header carries a salt that changes at each restart. (Driven through the store, not `serve`:
/// a debug build's HTTP path leaves pauses between writes in which the log restarts anyway.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_ahead_log_starts_again_under_a_steady_load() {
    use erlmcp_handlers::store::NewIncident;
    use erlmcp_handlers::timeline::{Draft, Source};
    let w = Workdir::new();
    let opened = erlmcp_bot::store::open(&w.db_url(), None).await.unwrap();
    let store = opened.store.clone();
    let draft = |text: String| Draft {
        at: chrono::Utc::now(),
        actor: "bob".into(),
        actor_id: "slack:U_BOB".into(),
        source: Source::Slack,
        kind: "note".into(),
        text,
        facts: Vec::new(),
    };
    let inc = store
        .create_incident(
            NewIncident {
                title: "steady writes".into(),
                severity: erlmcp_handlers::severity::Severity::P2,
                channel: "slack:C_STEADY".into(),
                drill: false,
                declared_by: "alice".into(),
                declared_at: chrono::Utc::now(),
            },
            vec![draft("declared".into())],
        )
        .await
        .unwrap()
        .id;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (store, inc, stop) = (store.clone(), inc.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let drafts = (0..20).map(|i| draft(format!("note {n}-{i}"))).collect();
                store.append(&inc, drafts).await.unwrap();
                n += 1;
            }
            n
        })
    };
    // The salt in the log's header (bytes 16-19), read every 100 ms for 3 s of writes.
    let wal = w.file("bot.db-wal");
    let mut salts = std::collections::BTreeSet::new();
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(header) = std::fs::read(&wal).map(|b| b.get(16..20).map(<[u8]>::to_vec)) {
            salts.extend(header);
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let transactions = writer.await.unwrap();
    assert!(
        transactions > 100,
        "the load was real: {transactions} transactions"
    );
    assert!(
        salts.len() >= 3,
        "the log restarted {} times in 3 s of {transactions} back-to-back transactions",
        salts.len().saturating_sub(1)
    );
}
