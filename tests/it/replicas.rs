//! Exactly once across processes: two `erlmcp-bot serve` replicas on one PostgreSQL database,
//! the Kubernetes stand-in as the world, signed Slack requests. Approvals race on both replicas;
//! the replica that executes is killed with SIGKILL at each step boundary and in the middle of
//! steps, and the other takes the run over after the lease, never applying a step twice; both
//! replicas tick the severity clocks and each notice goes out once. And two consoles on one
//! SQLite file follow the same ownership rules.

use crate::program::{Env, Running, Served, Workdir, eventually, run};
use crate::shipped::{live_env, slack_env};
use erlmcp_handlers::ids::{IncidentId, RequestId};
use erlmcp_handlers::run::RunState;
use erlmcp_tests::fakes::FakeKube;
use erlmcp_tests::slack_fake::{Call, FakeSlack, SignedSlack};
use erlmcp_tests::{Backend, TestDb};
use std::time::{Duration, Instant};

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
/// Short, so tests wait seconds; production's default is 30 s.
const LEASE_SECONDS: u64 = 2;

/// An operator playbook with a step of each kind that matters: idempotent changes, a change not
/// safe to run twice (a rolling restart), and a slow wait.
const PLAYBOOK: &str = "name: restart-then-scale
description: Scale up, restart the pods, wait for them, scale back.
severities: [p0, p1, p2]
steps:
  - name: Scale up
    kind: kube.scale
    with: { region: us-east-1, replicas: 8 }
    timeout: 1m
  - name: Restart
    kind: kube.restart
    with: { region: us-east-1 }
    timeout: 1m
  - name: Wait ready
    kind: kube.wait-ready
    with: { region: us-east-1 }
    timeout: 2m
  - name: Scale down
    kind: kube.scale
    with: { region: us-east-1, replicas: 3 }
    timeout: 1m
";

/// A wait that times out while pods come up one per poll: the run stops for a person.
const SLOW_WAIT: &str = "name: slow-wait
description: Scale up and wait briefly for the pods.
severities: [p0, p1, p2]
steps:
  - name: Scale up
    kind: kube.scale
    with: { region: us-east-1, replicas: 8 }
    timeout: 1m
  - name: Wait ready
    kind: kube.wait-ready
    with: { region: us-east-1 }
    timeout: 1s
";

/// Two replicas on one PostgreSQL schema, sharing the Kubernetes and Slack stand-ins.
struct Pair {
    w: Workdir,
    db: TestDb,
    db_url: String,
    kube: FakeKube,
    fake: FakeSlack,
    a: Served,
    b: Served,
    to_a: SignedSlack,
    to_b: SignedSlack,
}

fn pg_url(schema: &str) -> String {
    let mut url = url::Url::parse(&erlmcp_tests::postgres_url()).unwrap();
    url.query_pairs_mut()
        .append_pair("options[search_path]", schema);
    url.to_string()
}

/// The environment of a replica: live executor against the stand-in, Slack, short lease.
fn replica_env(
    w: &Workdir,
    kube: &FakeKube,
    fake: &FakeSlack,
    db_url: &str,
    extra: &[(&str, &str)],
) -> Env {
    let dir = w.file("playbooks");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("restart-then-scale.yaml"), PLAYBOOK).unwrap();
    std::fs::write(dir.join("slow-wait.yaml"), SLOW_WAIT).unwrap();
    std::fs::write(w.file("erlmcp-bot.toml"), "[kube]\npoll_ms = 300\n").unwrap();
    let mut env = live_env(kube, w, db_url);
    for (k, v) in slack_env(fake, db_url).0 {
        env = env.set(&k, v);
    }
    env = env
        .set("ERLMCP_PLAYBOOKS_DIR", dir.display().to_string())
        .set("ERLMCP_RUN_LEASE", format!("{LEASE_SECONDS}s"))
        .set("ERLMCP_TICK_EVERY", "1s");
    for (k, v) in extra {
        env = env.set(k, *v);
    }
    env
}

impl Pair {
    async fn start(extra: &[(&str, &str)]) -> Option<Pair> {
        let db = TestDb::new(Backend::Postgres).await?;
        let db_url = pg_url(db.pg_schema.as_ref().unwrap());
        let w = Workdir::new();
        let kube = FakeKube::start(3).await;
        let fake = FakeSlack::start().await;
        let env = replica_env(&w, &kube, &fake, &db_url, extra);
        let a = Served::start(w.path(), &env, &[]).await;
        let b = Served::start(w.path(), &env, &[]).await;
        let to_a = SignedSlack::new(&a.url, &fake, SECRET);
        let to_b = SignedSlack::new(&b.url, &fake, SECRET);
        Some(Pair {
            w,
            db,
            db_url,
            kube,
            fake,
            a,
            b,
            to_a,
            to_b,
        })
    }

    /// alice declares an incident through replica A; returns its channel.
    async fn declare(&self, title: &str) -> String {
        let r = self
            .to_a
            .command(
                "U_ALICE",
                "C_GENERAL",
                "/erlmcp",
                &format!("p1 declare {title}"),
            )
            .await;
        assert_eq!(r.status(), 200);
        self.fake
            .wait_until("the incident channel is opened", |c| {
                c.iter().any(|c| c.method == "pins.add")
            })
            .await;
        self.fake.calls("pins.add")[0].form["channel"].clone()
    }

    /// alice asks for `text` in `channel` through `via`; returns the new request's id (the n-th card).
    async fn request(
        &self,
        via: &SignedSlack,
        channel: &str,
        command: &str,
        text: &str,
        n: usize,
    ) -> String {
        let r = via.command("U_ALICE", channel, command, text).await;
        assert_eq!(r.status(), 200);
        self.fake
            .wait_until("the request card is posted", |c| cards(c).len() >= n)
            .await;
        let calls = self.fake.state.lock().unwrap().calls.clone();
        let card = cards(&calls)[n - 1].clone();
        request_id(&card.form["text"])
    }

    /// The incident declared through Slack (its announcement says "declared:").
    fn incident(&self) -> IncidentId {
        let text = self
            .fake
            .calls("chat.postMessage")
            .into_iter()
            .find(|c| c.form["text"].contains(" declared: "))
            .expect("an incident was declared")
            .form["text"]
            .clone();
        IncidentId::new(crate::shipped::incident_id(&text))
    }

    /// Changing requests the API server carried out, by what they did.
    fn applied(&self, what: &str) -> usize {
        self.kube
            .applied()
            .iter()
            .filter(|s| match what {
                "scale-up" => s.path.ends_with("/scale") && s.body.contains("\"replicas\":8"),
                "scale-down" => s.path.ends_with("/scale") && s.body.contains("\"replicas\":3"),
                "restart" => s.method == "PATCH" && s.body.contains("restartedAt"),
                other => panic!("unknown change {other}"),
            })
            .count()
    }

    async fn kinds(&self) -> Vec<String> {
        self.db
            .store
            .timeline(&self.incident())
            .await
            .unwrap()
            .iter()
            .map(|e| e.kind.clone())
            .collect()
    }

    async fn timeline_intact(&self) {
        let out = run(
            self.w.path(),
            &Env::new().set("DATABASE_URL", &self.db_url),
            &["timeline", "verify"],
            "",
        )
        .await;
        assert_eq!(out.code, 0, "{}", out.all());
        assert!(out.stdout.contains(": intact, "), "{}", out.all());
    }
}

fn cards(calls: &[Call]) -> Vec<Call> {
    calls
        .iter()
        .filter(|c| {
            c.method == "chat.postMessage"
                && c.form
                    .get("blocks")
                    .is_some_and(|b| b.contains("erlmcp_approve"))
        })
        .cloned()
        .collect()
}

fn request_id(text: &str) -> String {
    regex::Regex::new(r"REQ-\d{8}-\d+")
        .unwrap()
        .find(text)
        .unwrap_or_else(|| panic!("no request id in {text}"))
        .as_str()
        .to_string()
}

/// Approvals race on both replicas, 100 rounds: exactly one run each, and the test checks the
/// race was real (decided by the database's compare-and-set, not by one replica being first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_racing_on_two_replicas_run_once() {
    let Some(p) = Pair::start(&[]).await else {
        return;
    };
    let channel = p.declare("load test").await;
    let mut cas_decided = 0;
    const ROUNDS: usize = 100;
    for round in 1..=ROUNDS {
        let replicas = if round % 2 == 1 { 4 } else { 5 };
        let via = if round % 2 == 1 { &p.to_a } else { &p.to_b };
        let req = p
            .request(
                via,
                &channel,
                "/erlmcp",
                &format!("scale us-east-1 {replicas}"),
                round,
            )
            .await;
        let (bob, carol) = tokio::join!(
            p.to_a.button("U_BOB", &channel, "erlmcp_approve", &req),
            p.to_b.button("U_CAROL", &channel, "erlmcp_approve", &req),
        );
        assert_eq!((bob.status().as_u16(), carol.status().as_u16()), (200, 200));
        p.fake
            .wait_until("the run finishes", |c| {
                c.iter()
                    .filter(|c| {
                        c.method == "chat.postMessage"
                            && c.form.get("text").is_some_and(|t| t.contains("🏁 RUN-"))
                    })
                    .count()
                    >= round
            })
            .await;
        let run =
            p.db.store
                .run_for_request(&RequestId::new(&req))
                .await
                .unwrap()
                .expect("a run");
        assert_eq!(run.state, RunState::Done);
        let scale_patches = p
            .kube
            .applied()
            .iter()
            .filter(|s| s.path.ends_with("/scale"))
            .count();
        assert_eq!(
            scale_patches, round,
            "round {round}: one approval, one PATCH"
        );
        // The loser heard why it did not start a second run.
        p.fake
            .wait_until("the second approver is answered", |c| {
                c.iter().any(|c| {
                    c.method.starts_with("response_url/")
                        && c.form["text"].contains(&req)
                        && (c.form["text"].contains("at the same moment")
                            || c.form["text"].contains("already approved and execut"))
                })
            })
            .await;
        let calls = p.fake.state.lock().unwrap().calls.clone();
        if calls.iter().any(|c| {
            c.method.starts_with("response_url/")
                && c.form["text"].contains(&req)
                && c.form["text"].contains("at the same moment")
        }) {
            cas_decided += 1;
        }
    }
    let runs =
        p.db.store
            .runs_in_state(RunState::Done)
            .await
            .unwrap()
            .len();
    assert_eq!(runs, ROUNDS, "one run per request");
    eprintln!("{cas_decided} of {ROUNDS} rounds were decided by the compare-and-set");
    assert!(
        cas_decided >= ROUNDS / 10,
        "the race must be real: only {cas_decided} of {ROUNDS} rounds reached the compare-and-set together"
    );
    p.timeline_intact().await;
}

/// Where the executing replica dies.
#[derive(Clone, Copy, Debug)]
enum KillAt {
    /// Step `n` is recorded running; its request was not sent yet.
    StepStarted(usize),
    /// Step `n` is recorded done; the next has not started.
    StepDone(usize),
    /// The restart's PATCH is at the API server when the process dies.
    RestartInFlight,
}

/// Kills replica A at `at` while it executes the playbook; B takes over. Returns the pair (B
/// alive) after the takeover was recorded.
async fn kill_and_take_over(at: KillAt) -> Option<(Pair, Duration)> {
    let mut p = Pair::start(&[]).await?;
    let channel = p.declare("restart drill").await;
    let req = p
        .request(&p.to_a, &channel, "/erlmcp", "run restart-then-scale", 1)
        .await;
    let (release, arrived) = match at {
        KillAt::StepStarted(n) => {
            let marker = format!("step {n}/4");
            p.fake.hold(move |c| {
                c.method == "chat.update"
                    && c.form["text"]
                        .lines()
                        .last()
                        .is_some_and(|l| l.starts_with("▶") && l.contains(&marker))
            })
        }
        KillAt::StepDone(n) => {
            let marker = format!("step {n}/4");
            p.fake.hold(move |c| {
                c.method == "chat.update"
                    && c.form["text"]
                        .lines()
                        .last()
                        .is_some_and(|l| l.starts_with("✔") && l.contains(&marker))
            })
        }
        KillAt::RestartInFlight => {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let hold = p.kube.hold("PATCH", "/statefulsets/erlmcp-cluster");
            let kube = p.kube.clone();
            tokio::spawn(async move {
                kube.wait_for_arrivals("PATCH", "/statefulsets/erlmcp-cluster", 1)
                    .await;
                let _ = tx.send(());
            });
            // Released after the kill, for the taker; the dying replica's request goes with it.
            let (release, _) = tokio::sync::watch::channel(false);
            std::mem::forget(hold);
            (release, rx)
        }
    };
    let r = p
        .to_a
        .button("U_BOB", &channel, "erlmcp_approve", &req)
        .await;
    assert_eq!(r.status(), 200);
    tokio::time::timeout(Duration::from_secs(30), arrived)
        .await
        .unwrap_or_else(|_| panic!("{at:?} was never reached:\n{}", p.a.log()))
        .unwrap();
    p.a.kill9().await;
    let killed = Instant::now();
    let _ = release.send(true);
    let inc = p.incident();
    let store = p.db.store.clone();
    eventually("B takes the run over", Duration::from_secs(20), || {
        let (store, inc) = (store.clone(), inc.clone());
        async move {
            store
                .timeline(&inc)
                .await
                .unwrap()
                .iter()
                .any(|e| e.kind == "run.taken_over")
        }
    })
    .await;
    let took = killed.elapsed();
    assert!(
        took <= Duration::from_secs(LEASE_SECONDS + 3),
        "{at:?}: the takeover took {took:?}, more than the lease"
    );
    let entry =
        p.db.store
            .timeline(&inc)
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.kind == "run.taken_over")
            .unwrap();
    assert!(
        entry.text.contains(&format!("(pid {})", p.b.pid()))
            && entry.text.contains("stopped renewing its lease"),
        "the timeline says who took over and why: {}",
        entry.text
    );
    assert!(p.b.running(), "{}", p.b.log());
    Some((p, took))
}

impl Pair {
    /// The state of the first request's run, once there is one.
    async fn run_state(&self) -> Option<RunState> {
        let req = request_id(&cards(&self.fake.state.lock().unwrap().calls)[0].form["text"]);
        self.db
            .store
            .run_for_request(&RequestId::new(&req))
            .await
            .unwrap()
            .map(|r| r.state)
    }

    async fn wait_done(&self) {
        let store = self.db.store.clone();
        let req = request_id(&cards(&self.fake.state.lock().unwrap().calls)[0].form["text"]);
        eventually("the run completes", Duration::from_secs(30), || {
            let (store, req) = (store.clone(), req.clone());
            async move {
                store
                    .run_for_request(&RequestId::new(&req))
                    .await
                    .unwrap()
                    .is_some_and(|r| r.state == RunState::Done)
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_steps_1_and_2_the_other_replica_continues_at_step_2() {
    let Some((p, _)) = kill_and_take_over(KillAt::StepDone(1)).await else {
        return;
    };
    p.wait_done().await;
    assert_eq!(
        (
            p.applied("scale-up"),
            p.applied("restart"),
            p.applied("scale-down")
        ),
        (1, 1, 1),
        "a finished step never runs again"
    );
    p.timeline_intact().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_steps_2_and_3_the_restart_is_not_repeated() {
    let Some((p, _)) = kill_and_take_over(KillAt::StepDone(2)).await else {
        return;
    };
    p.wait_done().await;
    assert_eq!(
        (
            p.applied("scale-up"),
            p.applied("restart"),
            p.applied("scale-down")
        ),
        (1, 1, 1)
    );
    p.timeline_intact().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_idempotent_step_it_runs_again_and_nothing_else_does() {
    let Some((p, _)) = kill_and_take_over(KillAt::StepStarted(3)).await else {
        return;
    };
    p.wait_done().await;
    assert_eq!(
        (
            p.applied("scale-up"),
            p.applied("restart"),
            p.applied("scale-down")
        ),
        (1, 1, 1)
    );
    let kinds = p.kinds().await;
    assert!(kinds.contains(&"step.interrupted".to_string()), "{kinds:?}");
    p.timeline_intact().await;
}

/// Step 2 (a rolling restart) was recorded running when the owner died: nobody can tell whether
/// it happened, so the run waits for a person; running it again needs a second person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_unsafe_step_the_run_waits_and_a_retry_needs_two_people() {
    let Some((p, _)) = kill_and_take_over(KillAt::StepStarted(2)).await else {
        return;
    };
    eventually(
        "the run is blocked for a person",
        Duration::from_secs(10),
        || async { p.run_state().await == Some(RunState::Blocked) },
    )
    .await;
    assert_eq!(p.applied("restart"), 0);
    let channel = p.fake.calls("pins.add")[0].form["channel"].clone();
    // bob asks to run the restart again: that is a change, with its own approval card.
    let r = p
        .to_b
        .command("U_BOB", &channel, "/erlmcp", "resume retry")
        .await;
    assert_eq!(r.status(), 200);
    p.fake
        .wait_until("the retry needs approval", |c| cards(c).len() >= 2)
        .await;
    let retry = request_id(&cards(&p.fake.state.lock().unwrap().calls)[1].form["text"]);
    assert_eq!(
        p.applied("restart"),
        0,
        "nothing runs before a second person approves"
    );
    // bob cannot approve his own retry; carol can.
    p.to_b
        .button("U_BOB", &channel, "erlmcp_approve", &retry)
        .await;
    p.fake
        .wait_until("bob is refused", |c| {
            c.iter().any(|c| {
                c.method == "response_url/U_BOB"
                    && c.form["text"].contains("a second person must approve")
            })
        })
        .await;
    p.to_b
        .button("U_CAROL", &channel, "erlmcp_approve", &retry)
        .await;
    p.wait_done().await;
    assert_eq!(
        (
            p.applied("scale-up"),
            p.applied("restart"),
            p.applied("scale-down")
        ),
        (1, 1, 1)
    );
    let tl = p.db.store.timeline(&p.incident()).await.unwrap();
    assert!(
        tl.iter()
            .any(|e| e.kind == "step.retry" && e.text.contains("carol")),
        "the timeline records who approved the retry"
    );
    p.timeline_intact().await;
}

/// The restart's request was at the API server when its sender died: the run waits for a person,
/// who says it did complete; the restart is never sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_with_the_restart_in_flight_it_is_never_sent_twice() {
    let Some((p, _)) = kill_and_take_over(KillAt::RestartInFlight).await else {
        return;
    };
    eventually(
        "the run is blocked for a person",
        Duration::from_secs(10),
        || async { p.run_state().await == Some(RunState::Blocked) },
    )
    .await;
    let channel = p.fake.calls("pins.add")[0].form["channel"].clone();
    let r = p
        .to_b
        .command("U_CAROL", &channel, "/erlmcp", "resume done")
        .await;
    assert_eq!(r.status(), 200);
    p.wait_done().await;
    assert!(p.applied("restart") <= 1, "sent at most once");
    assert_eq!((p.applied("scale-up"), p.applied("scale-down")), (1, 1));
    let tl = p.db.store.timeline(&p.incident()).await.unwrap();
    assert!(
        tl.iter()
            .any(|e| e.kind == "step.confirmed" && e.actor == "carol")
    );
    p.timeline_intact().await;
}

/// A run stopped by a timeout (the pods were not ready in time); two people say `resume retry`
/// at the same moment on the two replicas: the step runs again once, and the loser is told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_resumes_run_the_step_once() {
    let Some(p) = Pair::start(&[]).await else {
        return;
    };
    let channel = p.declare("slow pods").await;
    let req = p
        .request(&p.to_a, &channel, "/erlmcp", "run slow-wait", 1)
        .await;
    p.to_a
        .button("U_BOB", &channel, "erlmcp_approve", &req)
        .await;
    eventually(
        "the wait times out and the run stops",
        Duration::from_secs(20),
        || async { p.run_state().await == Some(RunState::Blocked) },
    )
    .await;
    // The winner's retry pauses as it starts the step again, so the other decision surely finds
    // the run already taken (by the compare-and-set, or by looking).
    let (release, _) = p.fake.hold(|c| {
        c.method == "chat.update"
            && c.form["text"]
                .lines()
                .last()
                .is_some_and(|l| l.starts_with("▶") && l.contains("step 2/2"))
    });
    let (bob, carol) = tokio::join!(
        p.to_a.command("U_BOB", &channel, "/erlmcp", "resume retry"),
        p.to_b
            .command("U_CAROL", &channel, "/erlmcp", "resume retry"),
    );
    assert_eq!((bob.status().as_u16(), carol.status().as_u16()), (200, 200));
    // The later one is told what happened: decided first by someone else (the compare-and-set),
    // or already running, moved on or done by the time it looked.
    p.fake
        .wait_until("the later one is told what happened", |c| {
            c.iter().any(|c| {
                c.method.starts_with("response_url/")
                    && (c.form["text"].contains("Someone decided first")
                        || c.form["text"].contains("not waiting for a decision")
                        || c.form["text"].contains("is waiting for a decision")
                        // Looked after the winner's retry had already moved the run on.
                        || c.form["text"].contains("has no interrupted step"))
            })
        })
        .await;
    release.send(true).unwrap();
    p.wait_done().await;
    let tl = p.db.store.timeline(&p.incident()).await.unwrap();
    assert_eq!(
        tl.iter().filter(|e| e.kind == "step.retry").count(),
        1,
        "one decision took effect"
    );
    assert_eq!(
        tl.iter()
            .filter(|e| e.kind == "step.started" && e.text.contains("Step 2/2"))
            .count(),
        2,
        "the step started twice: once at first, once for the one retry"
    );
    assert_eq!(p.applied("scale-up"), 1);
    p.timeline_intact().await;
}

/// An incident a replica that has since gone declared `minutes_ago`, with its first entry.
async fn backdated_p0(p: &Pair, channel: &str, minutes_ago: i64) -> IncidentId {
    let at = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
    let new = erlmcp_handlers::store::NewIncident {
        title: format!("declared {minutes_ago} minutes ago"),
        severity: erlmcp_handlers::severity::Severity::P0,
        channel: channel.to_string(),
        drill: false,
        declared_by: "alice".into(),
        declared_at: at,
    };
    let draft = erlmcp_handlers::timeline::Draft {
        at,
        actor: "alice".into(),
        actor_id: "U_ALICE".into(),
        source: erlmcp_handlers::timeline::Source::Slack,
        kind: "declared".into(),
        text: "Declared P0 (Critical): an old one".into(),
        facts: Vec::new(),
    };
    p.db.store
        .create_incident(new, vec![draft])
        .await
        .unwrap()
        .id
}

/// Both replicas run the severity clocks and request expiry every second: each reminder,
/// call-out and expiry notice is recorded and sent once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_replicas_tick_and_each_notice_goes_out_once() {
    let Some(p) = Pair::start(&[("ERLMCP_APPROVAL_EXPIRY", "2s")]).await else {
        return;
    };
    // P0: respond within 5 minutes, resolve within an hour.
    let late = backdated_p0(&p, "C_LATE", 61).await; // both targets missed
    let nearly = backdated_p0(&p, "C_NEARLY", 50).await; // response missed, resolution at 83%
    let soon = backdated_p0(&p, "C_SOON", 4).await; // response at 80%
    let channel = p.declare("expiring request").await;
    p.request(&p.to_a, &channel, "/erlmcp", "scale us-east-1 4", 1)
        .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let said = |channel: &str, text: &str| {
        p.fake
            .calls("chat.postMessage")
            .iter()
            .filter(|c| c.form["channel"] == channel && c.form["text"].contains(text))
            .count()
    };
    assert_eq!(said("C_LATE", "missed its response target"), 1);
    assert_eq!(said("C_LATE", "missed its resolution target"), 1);
    assert_eq!(said("C_NEARLY", "missed its response target"), 1);
    assert_eq!(said("C_NEARLY", "left to meet the resolution target"), 1);
    assert_eq!(said("C_SOON", "left to meet the response target"), 1);
    assert_eq!(said("C_SOON", "resolution"), 0);
    assert_eq!(said(&channel, "expired unapproved"), 1, "expired once");
    for (inc, kinds) in [
        (
            &late,
            vec!["clock.response.missed", "clock.resolution.missed"],
        ),
        (
            &nearly,
            vec!["clock.response.missed", "clock.resolution.warning"],
        ),
        (&soon, vec!["clock.response.warning"]),
    ] {
        let tl = p.db.store.timeline(inc).await.unwrap();
        for kind in kinds {
            assert_eq!(
                tl.iter().filter(|e| e.kind == kind).count(),
                1,
                "{inc}: {kind} once on the timeline"
            );
        }
    }
    let tl = p.db.store.timeline(&p.incident()).await.unwrap();
    assert_eq!(
        tl.iter().filter(|e| e.kind == "approval.expired").count(),
        1
    );
    p.timeline_intact().await;
}

/// Two consoles on one SQLite file: one executes (its step held at the API server), the other
/// reports who owns the run and leaves it alone while the lease is renewed; when the first is
/// killed, the second takes the run over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consoles_on_one_sqlite_file_share_runs_by_lease() {
    let w = Workdir::new();
    let kube = FakeKube::start(3).await;
    let release = kube.hold("PATCH", "/statefulsets/erlmcp-cluster/scale");
    let env = live_env(&kube, &w, &w.db_url()).set("ERLMCP_RUN_LEASE", format!("{LEASE_SECONDS}s"));
    std::fs::write(w.file("erlmcp-bot.toml"), "[kube]\npoll_ms = 100\n").unwrap();
    let script = "as alice\n/erlmcp p1 declare scale for load\n/erlmcp scale us-east-1 5\nas bob\n/erlmcp approve\n";
    let mut first = Running::spawn(w.path(), &env, &["console"], Some(script), "");
    kube.wait_for_arrivals("PATCH", "/scale", 1).await;
    let mut second = Running::spawn(w.path(), &env, &["console", "--user", "carol"], None, "");
    second.send("/erlmcp status").await;
    let out = second
        .wait_for_output("executing step 1/2", Duration::from_secs(20))
        .await;
    assert!(
        out.contains(&format!("(pid {})", first.pid())),
        "the second console says who owns the run:\n{out}"
    );
    second.send("/erlmcp resume retry").await;
    second
        .wait_for_output("not waiting for a decision", Duration::from_secs(20))
        .await;
    // Two leases' time: the owner renews, so the second console takes nothing over.
    tokio::time::sleep(Duration::from_secs(2 * LEASE_SECONDS + 1)).await;
    assert_eq!(
        kube.seen().iter().filter(|s| s.method == "PATCH").count(),
        1,
        "the run is left to its owner"
    );
    assert!(!second.log().contains("taken over"), "{}", second.log());

    first.kill9().await;
    let out = second
        .wait_for_output("taken over by", Duration::from_secs(LEASE_SECONDS + 10))
        .await;
    assert!(
        out.contains(&format!("(pid {})", second.pid())),
        "the takeover names the new owner:\n{out}"
    );
    release.send(true).unwrap();
    second
        .wait_for_output("🏁 RUN-", Duration::from_secs(30))
        .await;
    let plain = Env::new().set("DATABASE_URL", w.db_url());
    let verify = run(w.path(), &plain, &["timeline", "verify"], "").await;
    assert_eq!(verify.code, 0, "{}", verify.all());
}

/// `/erlmcp stop` on the replica that does not execute: the step in progress finishes, the run
/// stops before its next step, and nothing after it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_a_run_before_its_next_step() {
    let Some(p) = Pair::start(&[]).await else {
        return;
    };
    let channel = p.declare("stop me").await;
    let req = p
        .request(&p.to_a, &channel, "/erlmcp", "run restart-then-scale", 1)
        .await;
    let (release, arrived) = p.fake.hold(|c| {
        c.method == "chat.update"
            && c.form["text"]
                .lines()
                .last()
                .is_some_and(|l| l.starts_with("▶") && l.contains("step 2/4"))
    });
    p.to_a
        .button("U_BOB", &channel, "erlmcp_approve", &req)
        .await;
    arrived.await.unwrap();
    let r = p
        .to_b
        .command("U_CAROL", &channel, "/erlmcp", "stop wrong cluster")
        .await;
    assert_eq!(r.status(), 200);
    p.fake
        .wait_until("the stop is announced", |c| {
            c.iter().any(|c| {
                c.form
                    .get("text")
                    .is_some_and(|t| t.contains("will stop before its next step, as carol asked"))
            })
        })
        .await;
    release.send(true).unwrap();
    p.fake
        .wait_until("the run stops", |c| {
            c.iter().any(|c| {
                c.form
                    .get("text")
                    .is_some_and(|t| t.contains("stopped before step 3 as carol asked"))
            })
        })
        .await;
    assert_eq!(p.run_state().await, Some(RunState::Aborted));
    assert_eq!(
        (
            p.applied("scale-up"),
            p.applied("restart"),
            p.applied("scale-down")
        ),
        (1, 1, 0),
        "the step in progress finished; nothing after it ran"
    );
    p.timeline_intact().await;
}

/// SIGTERM (a rolling restart of the bot) during a run: the step in progress finishes, the run is
/// handed over at once (not after the lease), and the other replica continues from the next step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_a_run_over_at_the_next_step() {
    let Some(mut p) = Pair::start(&[("ERLMCP_RUN_LEASE", "30s")]).await else {
        return;
    };
    let channel = p.declare("rolling restart of the bot").await;
    let req = p
        .request(&p.to_a, &channel, "/erlmcp", "run restart-then-scale", 1)
        .await;
    let (release, arrived) = p.fake.hold(|c| {
        c.method == "chat.update"
            && c.form["text"]
                .lines()
                .last()
                .is_some_and(|l| l.starts_with("▶") && l.contains("step 2/4"))
    });
    p.to_a
        .button("U_BOB", &channel, "erlmcp_approve", &req)
        .await;
    arrived.await.unwrap();
    let pid = p.a.pid();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped = Instant::now();
    release.send(true).unwrap();
    let code = p.a.wait(Duration::from_secs(25)).await;
    assert_eq!(code, Some(0), "{}", p.a.log());
    p.wait_done().await;
    assert!(
        stopped.elapsed() < Duration::from_secs(15),
        "handed over, not left to a 30 s lease: {:?}",
        stopped.elapsed()
    );
    let kinds = p.kinds().await;
    assert!(kinds.contains(&"run.handed_over".to_string()), "{kinds:?}");
    assert!(
        !kinds.contains(&"step.interrupted".to_string()),
        "a clean hand-over interrupts nothing: {kinds:?}"
    );
    assert_eq!(
        (
            p.applied("scale-up"),
            p.applied("restart"),
            p.applied("scale-down")
        ),
        (1, 1, 1)
    );
    p.timeline_intact().await;
}
