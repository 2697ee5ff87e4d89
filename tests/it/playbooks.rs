//! Issue 4: every built-in playbook against the simulated world, failures, retries, timeouts,
//! crash-and-resume, and drills.

use erlmcp_handlers::approval::RequestState;
use erlmcp_handlers::executor::ExecError;
use erlmcp_handlers::ids::{IncidentId, RequestId, RunId};
use erlmcp_handlers::run::{RunState, StepState};
use erlmcp_tests::{
    Backend, Gate, RecordingOutbox, TestApp, engine_on, on_both_backends, request, test_settings,
};
use std::sync::Arc;

const INC: &str = "INC-20261128-1";

async fn run_to_done(t: &TestApp, sev: &str, command: &str, approver: &str) -> String {
    t.ok("alice", &format!("{sev} declare Drill")).await;
    let plan = t.ok("alice", command).await;
    assert!(plan.contains("Approval needed"), "{plan}");
    let done = t.ok(approver, "approve").await;
    assert!(done.contains("🏁"), "{command}: {done}");
    plan
}

async fn failover_moves_dns_promotes_and_scales(b: Backend) {
    let Some(t) = TestApp::new(b).await else {
        return;
    };
    run_to_done(&t, "p0", "/failover us-west-2", "bob").await;
    let w = t.sim.world();
    assert_eq!(w.dns_region, "us-west-2");
    assert!(!w.regions["us-west-2"].db_in_recovery);
    assert_eq!(
        (
            w.regions["us-west-2"].replicas,
            w.regions["us-west-2"].ready
        ),
        (3, 3)
    );
    assert_eq!(
        w.regions["us-east-1"].replicas, 3,
        "primary untouched unless asked"
    );
    assert_eq!(w.status_page, "major_outage", "P0 sets major outage");
    // Progress went to the channel, one line per step start and end.
    let progress = t.outbox.texts();
    assert_eq!(
        progress
            .iter()
            .filter(|m| m.starts_with("▶ RUN-20261128-1 step"))
            .count(),
        6
    );
    assert_eq!(
        progress
            .iter()
            .filter(|m| m.starts_with("✔ RUN-20261128-1 step"))
            .count(),
        6
    );
}

async fn failover_under_p1_is_planned_and_can_scale_the_primary_down(b: Backend) {
    let Some(t) = TestApp::new(b).await else {
        return;
    };
    let plan = run_to_done(
        &t,
        "p1",
        "run failover region=us-west-2 scale_down_primary=true",
        "bob",
    )
    .await;
    assert!(
        plan.contains("set status page to partial_outage: planned failover"),
        "{plan}"
    );
    assert!(plan.contains("7. Scale down primary: scale statefulset erlmcp-prod/erlmcp-cluster (context us-east-1) to 0 replicas [3 replicas -> 0 replicas]"), "{plan}");
    assert_eq!(t.sim.world().regions["us-east-1"].replicas, 0);
}

async fn failback_returns_traffic_to_the_primary(b: Backend) {
    let Some(t) = TestApp::new(b).await else {
        return;
    };
    run_to_done(&t, "p0", "/failover us-west-2", "bob").await;
    t.ok("bob", "resolve failed over").await;
    t.ok("bob", "close").await;
    run_to_done(&t, "p2", "run failback", "carol").await;
    let w = t.sim.world();
    assert_eq!(w.dns_region, "us-east-1");
    assert_eq!(w.regions["us-west-2"].replicas, 0);
    assert!(
        w.webhooks.iter().any(|(h, _)| h == "reverse-replication")
            && w.webhooks.iter().any(|(h, _)| h == "demote-standby")
    );
}

async fn rollback_to_previous_and_to_a_version(b: Backend) {
    let Some(t) = TestApp::new(b).await else {
        return;
    };
    let plan = run_to_done(&t, "p1", "rollback", "bob").await;
    assert!(plan.contains("set image of statefulset erlmcp-prod/erlmcp-cluster (context us-east-1) to ghcr.io/seanchatmangpt/erlmcp:3.0.1 [3.0.2 -> 3.0.1]"), "`previous` is resolved in the plan: {plan}");
    assert_eq!(t.sim.world().regions["us-east-1"].image_version, "3.0.1");
    let plan = t.ok("alice", "rollback 3.0.0 eu-west-1").await;
    assert!(plan.contains("[3.0.2 -> 3.0.0]"), "{plan}");
    // Another request of the incident just ended: the approver names the one they read.
    t.ok("bob", "approve REQ-20261128-2").await;
    assert_eq!(t.sim.world().regions["eu-west-1"].image_version, "3.0.0");
}

async fn scale_and_read_only(b: Backend) {
    let Some(t) = TestApp::new(b).await else {
        return;
    };
    run_to_done(&t, "p2", "scale ap-southeast-1 4", "bob").await;
    assert_eq!(t.sim.world().regions["ap-southeast-1"].replicas, 4);
    t.ok("alice", "readonly on").await;
    t.ok("bob", "approve REQ-20261128-2").await;
    assert!(
        t.sim.world().regions["us-east-1"]
            .config_maps
            .contains_key("erlmcp-read-only")
    );
    t.ok("alice", "readonly off").await;
    t.ok("bob", "approve REQ-20261128-3").await;
    assert!(
        !t.sim.world().regions["us-east-1"]
            .config_maps
            .contains_key("erlmcp-read-only")
    );
}

async fn security_isolation_and_data_corruption(b: Backend) {
    let Some(t) = TestApp::new(b).await else {
        return;
    };
    let plan = run_to_done(&t, "p1", "isolate", "sam").await;
    assert!(plan.contains("apply deny-all NetworkPolicy incident-isolation on pods app=erlmcp in namespace erlmcp-prod (context us-east-1)"), "{plan}");
    let w = t.sim.world();
    assert!(
        w.regions["us-east-1"]
            .network_policies
            .contains("incident-isolation")
    );
    assert!(
        w.regions["us-east-1"]
            .config_maps
            .contains_key("erlmcp-audit-logging")
    );
    assert_eq!(w.regions["us-east-1"].restarts, 1);
    let hooks: Vec<&str> = w.webhooks.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(hooks, vec!["forensics", "rotate-secrets", "security-team"]);

    let plan = t.ok("alice", "run data-corruption").await;
    assert!(plan.contains("restore the database from backup backup-20261128-0000 [live data -> backup-20261128-0000]"), "last good backup chosen in the plan: {plan}");
    t.ok("bob", "approve REQ-20261128-2").await;
    let w = t.sim.world();
    assert_eq!(w.restored_from.as_deref(), Some("backup-20261128-0000"));
    assert!(
        !w.regions["us-east-1"]
            .config_maps
            .contains_key("erlmcp-read-only"),
        "read-only mode is off again"
    );
}

async fn p0_outage_pages_and_offers_failover_and_is_p0_only(b: Backend) {
    let Some(t) = TestApp::new(b).await else {
        return;
    };
    t.ok("alice", "p1 declare Not that bad").await;
    let refusal = t.refused("alice", "run p0-outage").await;
    assert!(
        refusal.contains("playbook `p0-outage` may not run under P1: it is for P0 incidents"),
        "{refusal}"
    );
    t.ok("alice", "sev p0").await;
    t.ok("alice", "run p0-outage").await;
    let done = t.ok("bob", "approve").await;
    assert!(
        done.contains("Next: If the primary region cannot be recovered quickly, fail over"),
        "{done}"
    );
    let w = t.sim.world();
    assert_eq!(w.pages, vec!["P0 INC-20261128-1: Not that bad".to_string()]);
    assert_eq!(w.status_page, "major_outage");
}

async fn a_failed_step_stops_the_run_with_the_remote_message_and_what_was_not_done(b: Backend) {
    let Some(t) = TestApp::new(b).await else {
        return;
    };
    t.sim.fail_next("dns.point", ExecError::permanent("AccessDenied: User: arn:aws:iam::123:user/bot is not authorized to perform: route53:ChangeResourceRecordSets"));
    t.ok("alice", "p0 declare API down").await;
    t.ok("alice", "/failover us-west-2").await;
    let r = t.say("bob", "approve").await;
    let text = &r[0].text;
    assert!(r[0].is_error, "{r:?}");
    assert!(text.contains("❌ RUN-20261128-1 (failover) failed at step 5/6 `Move DNS`: AccessDenied: User: arn:aws:iam::123:user/bot is not authorized"), "{text}");
    assert!(text.contains("Not done: 6. Verify health"), "{text}");
    let req =
        t.db.store
            .request(&RequestId::new("REQ-20261128-1"))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(req.state, RequestState::Failed);
    let steps =
        t.db.store
            .steps(&RunId::new("RUN-20261128-1"))
            .await
            .unwrap();
    let states: Vec<StepState> = steps.iter().map(|s| s.state).collect();
    assert_eq!(
        states,
        vec![
            StepState::Done,
            StepState::Done,
            StepState::Done,
            StepState::Done,
            StepState::Failed,
            StepState::Pending
        ]
    );
    assert_eq!(t.sim.world().dns_region, "us-east-1");
}

async fn transient_errors_are_retried_with_backoff(b: Backend) {
    let Some(t) = TestApp::new(b).await else {
        return;
    };
    for _ in 0..2 {
        t.sim.fail_next(
            "http.health",
            ExecError::transient("503 Service Unavailable"),
        );
    }
    run_to_done(&t, "p0", "/failover us-west-2", "bob").await;
    let steps =
        t.db.store
            .steps(&RunId::new("RUN-20261128-1"))
            .await
            .unwrap();
    assert_eq!(steps[5].attempts, 3);
    let tl = t.db.store.timeline(&IncidentId::new(INC)).await.unwrap();
    assert_eq!(tl.iter().filter(|e| e.kind == "step.retry").count(), 2);
    // A non-idempotent step is never retried, even on a transient error.
    let Some(t2) = TestApp::new(b).await else {
        return;
    };
    t2.sim.fail_next(
        "pg.promote",
        ExecError::transient("connection reset by peer"),
    );
    t2.ok("alice", "p0 declare API down").await;
    t2.ok("alice", "/failover us-west-2").await;
    let r = t2.say("bob", "approve").await;
    assert!(
        r[0].text
            .contains("failed at step 2/6 `Promote database`: connection reset by peer"),
        "{r:?}"
    );
}

/// A fresh engine on a fresh connection pool: the process after a restart.
async fn restarted(
    t: &TestApp,
    executor: Arc<dyn erlmcp_handlers::executor::Executor>,
) -> erlmcp_handlers::engine::Engine {
    engine_on(
        t.db.replica().await,
        executor,
        t.clock.clone(),
        RecordingOutbox::default(),
        test_settings(),
    )
}

/// Starts the failover with a gate, waits until the gated step is reached, and kills the task.
async fn crash_during(t: &TestApp, kind: &str, after_effect: bool) -> Gate {
    let gate = Gate::new(Arc::new(t.sim.clone()));
    let engine = engine_on(
        t.db.store.clone(),
        Arc::new(gate.clone()),
        t.clock.clone(),
        t.outbox.clone(),
        test_settings(),
    );
    engine
        .handle(&request("alice", "p0 declare API down"))
        .await;
    engine
        .handle(&request("alice", "/failover us-west-2"))
        .await;
    gate.hang_on(kind, after_effect);
    let task = tokio::spawn(async move { engine.handle(&request("bob", "approve")).await });
    gate.reached.notified().await;
    task.abort();
    let _ = task.await;
    gate
}

/// Another process takes over once the crashed one's lease has run out: the clock moves past it.
async fn take_over(
    t: &TestApp,
    engine: &erlmcp_handlers::engine::Engine,
) -> Vec<erlmcp_handlers::reply::Reply> {
    t.clock.advance(chrono::Duration::seconds(
        erlmcp_handlers::engine::DEFAULT_LEASE_SECONDS + 1,
    ));
    engine.take_over_expired_runs().await.unwrap()
}

async fn steps(t: &TestApp) -> Vec<(StepState, i64)> {
    t.db.store
        .steps(&RunId::new("RUN-20261128-1"))
        .await
        .unwrap()
        .iter()
        .map(|s| (s.state, s.attempts))
        .collect()
}

async fn crash_mid_idempotent_step_reruns_it_and_nothing_else(b: Backend) {
    let Some(t) = TestApp::new(b).await else {
        return;
    };
    crash_during(&t, "kube.scale", true).await;
    let s = steps(&t).await;
    assert_eq!(s[2], (StepState::Running, 1), "{s:?}");
    assert_eq!(t.sim.applies_of("pg.promote"), 1);
    let engine = restarted(&t, Arc::new(t.sim.clone())).await;
    assert!(
        engine.take_over_expired_runs().await.unwrap().is_empty(),
        "nobody takes over while the owner's lease holds"
    );
    let replies = take_over(&t, &engine).await;
    assert!(replies[0].text.contains("🏁"), "{replies:?}");
    assert_eq!(
        t.sim.applies_of("notify.status-page"),
        1,
        "finished steps never run twice"
    );
    assert_eq!(
        t.sim.applies_of("pg.promote"),
        1,
        "finished steps never run twice"
    );
    assert_eq!(
        t.sim.applies_of("kube.scale"),
        2,
        "the interrupted idempotent step ran again"
    );
    assert_eq!(t.sim.world().dns_region, "us-west-2");
    let tl = t.db.store.timeline(&IncidentId::new(INC)).await.unwrap();
    let kinds: Vec<&str> = tl.iter().map(|e| e.kind.as_str()).collect();
    assert!(
        kinds.contains(&"step.interrupted") && kinds.contains(&"run.taken_over"),
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "step.done").count(),
        6,
        "every step recorded done once"
    );
    assert!(
        t.engine
            .verify_timeline(&IncidentId::new(INC))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn crash_mid_non_idempotent_step_waits_for_a_person(b: Backend) {
    let Some(t) = TestApp::new(b).await else {
        return;
    };
    // The promotion took effect, then the process died before recording it.
    crash_during(&t, "pg.promote", true).await;
    let engine = restarted(&t, Arc::new(t.sim.clone())).await;
    let replies = take_over(&t, &engine).await;
    assert!(
        replies[0].is_error
            && replies[0].text.contains(
                "step 2 `Promote database` was interrupted mid-way and is not safe to run twice"
            ),
        "{replies:?}"
    );
    assert_eq!(
        t.db.store
            .run(&RunId::new("RUN-20261128-1"))
            .await
            .unwrap()
            .unwrap()
            .state,
        RunState::Blocked
    );
    // Restarting again does not run it either.
    let again = restarted(&t, Arc::new(t.sim.clone())).await;
    assert!(take_over(&t, &again).await.is_empty());
    assert_eq!(t.sim.applies_of("pg.promote"), 1);
    // A person checked: it did complete.
    let r = engine.handle(&request("carol", "resume done")).await;
    assert!(r[0].text.contains("🏁"), "{r:?}");
    assert_eq!(t.sim.applies_of("pg.promote"), 1, "never promoted twice");
    assert_eq!(t.sim.applies_of("notify.status-page"), 1);
    assert_eq!(t.sim.world().dns_region, "us-west-2");
    let tl = t.db.store.timeline(&IncidentId::new(INC)).await.unwrap();
    assert!(
        tl.iter()
            .any(|e| e.kind == "step.confirmed" && e.actor == "carol")
    );
}

async fn crash_between_steps_resumes_at_the_next_step(b: Backend) {
    let Some(t) = TestApp::new(b).await else {
        return;
    };
    // Dies at the very start of step 3's call, before any effect: steps 1-2 are done, 3 is running.
    crash_during(&t, "kube.scale", false).await;
    assert_eq!(
        steps(&t).await[..3],
        [
            (StepState::Done, 1),
            (StepState::Done, 1),
            (StepState::Running, 1)
        ]
    );
    let engine = restarted(&t, Arc::new(t.sim.clone())).await;
    assert!(take_over(&t, &engine).await[0].text.contains("🏁"));
    assert_eq!(
        (
            t.sim.applies_of("pg.promote"),
            t.sim.applies_of("kube.scale")
        ),
        (1, 1)
    );
    assert!(steps(&t).await.iter().all(|(s, _)| *s == StepState::Done));
}

async fn a_blocked_run_can_be_retried_or_aborted(b: Backend) {
    let Some(t) = TestApp::new(b).await else {
        return;
    };
    // Died before the promotion took effect: retry is right.
    crash_during(&t, "pg.promote", false).await;
    let engine = restarted(&t, Arc::new(t.sim.clone())).await;
    take_over(&t, &engine).await;
    assert!(
        engine.handle(&request("bob", "resume maybe")).await[0]
            .text
            .contains("`maybe` is not one of done, retry, abort")
    );
    // Promotion is not safe to run twice: running it again is a change a second person approves.
    let r = engine
        .handle(&request("bob", "resume RUN-20261128-1 retry"))
        .await;
    assert!(r[0].is_request_card, "{r:?}");
    assert!(r[0].text.contains("REQ-20261128-2"), "{r:?}");
    assert!(r[0].text.contains("not safe to run twice"), "{r:?}");
    assert_eq!(t.sim.applies_of("pg.promote"), 0);
    let r = engine
        .handle(&request("bob", "approve REQ-20261128-2"))
        .await;
    assert!(
        r[0].is_error && r[0].text.contains("a second person"),
        "{r:?}"
    );
    let r = engine
        .handle(&request("carol", "approve REQ-20261128-2"))
        .await;
    assert!(r[0].text.contains("🏁"), "{r:?}");
    assert_eq!(t.sim.applies_of("pg.promote"), 1);

    let Some(t2) = TestApp::new(b).await else {
        return;
    };
    crash_during(&t2, "pg.promote", false).await;
    let engine = restarted(&t2, Arc::new(t2.sim.clone())).await;
    take_over(&t2, &engine).await;
    let r = engine.handle(&request("bob", "resume abort")).await;
    assert!(r[0].text.contains("RUN-20261128-1 aborted by bob"), "{r:?}");
    assert_eq!(
        t2.db
            .store
            .request(&RequestId::new("REQ-20261128-1"))
            .await
            .unwrap()
            .unwrap()
            .state,
        RequestState::Failed
    );
    assert_eq!(t2.sim.world().dns_region, "us-east-1");
    assert!(engine.handle(&request("bob", "resume retry")).await[0].is_error);
}

async fn a_step_that_times_out_blocks_the_run_for_a_person(b: Backend) {
    let Some(t) = TestApp::new(b).await else {
        return;
    };
    let topo = erlmcp_handlers::topology::Topology::runbook_default();
    let mut set = erlmcp_handlers::playbook::PlaybookSet::builtin(&topo).unwrap();
    let yaml = "name: slow\ndescription: a step that hangs\nseverities: [p1]\nsteps:\n  - name: Wait\n    kind: kube.wait-ready\n    with: { region: us-west-2 }\n    timeout: 1s\n  - name: Then\n    kind: kube.scale\n    with: { region: us-west-2, replicas: 1 }\n";
    set.add_files(&[("ops/slow.yaml".into(), yaml.into())], &topo)
        .unwrap();
    let gate = Gate::new(Arc::new(t.sim.clone()));
    gate.hang_on("kube.wait-ready", false);
    let engine = erlmcp_handlers::engine::Engine::new(
        t.db.store.clone(),
        Arc::new(gate),
        Arc::new(t.outbox.clone()),
        t.clock.clone(),
        Arc::new(topo),
        Arc::new(set),
        test_settings(),
    );
    engine.handle(&request("alice", "p1 declare Slow")).await;
    engine.handle(&request("alice", "run slow")).await;
    let r = engine.handle(&request("bob", "approve")).await;
    assert!(
        r[0].text.starts_with(
            "⏱ RUN-20261128-1 step 1 `Wait` timed out after 1s; it may be partly done."
        ),
        "{r:?}"
    );
    assert!(
        r[0].text.contains("/erlmcp resume RUN-20261128-1 retry"),
        "{r:?}"
    );
    assert_eq!(t.sim.applies_of("kube.scale"), 0);
    let r = engine.handle(&request("bob", "resume retry")).await;
    assert!(r[0].text.contains("🏁"), "{r:?}");
    assert_eq!(t.sim.world().regions["us-west-2"].replicas, 1);
}

on_both_backends!(
    failover_moves_dns_promotes_and_scales,
    failover_under_p1_is_planned_and_can_scale_the_primary_down,
    failback_returns_traffic_to_the_primary,
    rollback_to_previous_and_to_a_version,
    scale_and_read_only,
    security_isolation_and_data_corruption,
    p0_outage_pages_and_offers_failover_and_is_p0_only,
    a_failed_step_stops_the_run_with_the_remote_message_and_what_was_not_done,
    transient_errors_are_retried_with_backoff,
    crash_mid_idempotent_step_reruns_it_and_nothing_else,
    crash_mid_non_idempotent_step_waits_for_a_person,
    crash_between_steps_resumes_at_the_next_step,
    a_blocked_run_can_be_retried_or_aborted,
    a_step_that_times_out_blocks_the_run_for_a_person,
);
