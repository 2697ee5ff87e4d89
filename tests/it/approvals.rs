//! Issue 3: the two-person rule, attacked from every side, on SQLite and PostgreSQL.

use erlmcp_handlers::approval::{Actor, Platform, RequestState};
use erlmcp_handlers::engine::Request;
use erlmcp_handlers::ids::{IncidentId, RequestId};
use erlmcp_handlers::timeline::Source;
use erlmcp_tests::{Backend, TestApp, engine_on, on_both_backends, request, test_settings};
use std::sync::Arc;

const INC: &str = "INC-20261128-1";
const REQ1: &str = "REQ-20261128-1";

async fn incident_with_failover_request(b: Backend) -> Option<TestApp> {
    let t = TestApp::new(b).await?;
    t.ok("alice", "p0 declare API down").await;
    let r = t.say("alice", "/failover us-west-2").await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].request, Some(RequestId::new(REQ1)), "{r:?}");
    Some(t)
}

async fn state(t: &TestApp, id: &str) -> RequestState {
    t.db.store
        .request(&RequestId::new(id))
        .await
        .unwrap()
        .unwrap()
        .state
}

async fn kinds(t: &TestApp) -> Vec<String> {
    t.db.store
        .timeline(&IncidentId::new(INC))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

async fn requester_cannot_approve_by_any_route(b: Backend) {
    let Some(t) = incident_with_failover_request(b).await else {
        return;
    };
    assert_eq!(
        t.refused("alice", "approve").await,
        "Not approved: you requested REQ-20261128-1; a second person must approve it."
    );
    assert!(
        t.refused("alice", "approve REQ-20261128-1")
            .await
            .contains("a second person must approve")
    );
    assert!(
        t.refused("alice", "INC-20261128-1 approve")
            .await
            .contains("a second person must approve")
    );
    // A reaction or button: same rules, through `decide`.
    let reaction = t
        .engine
        .decide(
            &request("alice", ":white_check_mark:"),
            RequestId::new(REQ1),
            true,
            None,
        )
        .await;
    assert!(reaction[0].is_error && reaction[0].text.contains("a second person must approve"));
    // Same person under another id (a chat account and the console) is still the requester.
    let alias = Request {
        actor: Actor::on(Platform::Slack, "U123", "alice"),
        source: Source::Slack,
        channel: "console".into(),
        text: "approve".into(),
    };
    assert!(t.engine.handle(&alias).await[0].is_error);
    assert_eq!(state(&t, REQ1).await, RequestState::Pending);
    assert_eq!(t.sim.apply_count(), 0, "nothing ran");
    // Each refusal is on the timeline.
    assert_eq!(
        kinds(&t)
            .await
            .iter()
            .filter(|k| *k == "approval.refused")
            .count(),
        5
    );
}

async fn second_person_executes_once_and_further_approvals_do_nothing(b: Backend) {
    let Some(t) = incident_with_failover_request(b).await else {
        return;
    };
    let done = t.ok("bob", "approve").await;
    assert!(
        done.contains("🏁 RUN-20261128-1 (failover) done: 6/6 steps"),
        "{done}"
    );
    let applied = t.sim.apply_count();
    assert_eq!(t.sim.world().dns_region, "us-west-2");
    assert_eq!(state(&t, REQ1).await, RequestState::Done);
    let again = t.refused("carol", "approve").await;
    assert!(
        again.contains("REQ-20261128-1 was already approved and executed"),
        "{again}"
    );
    assert!(
        t.refused("carol", "approve REQ-20261128-1")
            .await
            .contains("runs only once")
    );
    assert!(
        t.refused("bob", "approve REQ-20261128-1")
            .await
            .contains("runs only once")
    );
    assert_eq!(t.sim.apply_count(), applied, "nothing ran a second time");
    // Who, when, which request, which digest: on the timeline.
    let entries = t.db.store.timeline(&IncidentId::new(INC)).await.unwrap();
    let digest =
        t.db.store
            .request(&RequestId::new(REQ1))
            .await
            .unwrap()
            .unwrap()
            .plan_digest;
    let granted = entries
        .iter()
        .find(|e| e.kind == "approval.granted")
        .unwrap();
    assert_eq!(
        (granted.actor.as_str(), granted.text.as_str()),
        (
            "bob",
            format!(
                "bob approved REQ-20261128-1 (plan digest {})",
                &digest[..12]
            )
            .as_str()
        )
    );
    let k = kinds(&t).await;
    for expected in [
        "approval.requested",
        "approval.granted",
        "approval.approved",
        "run.started",
        "step.started",
        "step.done",
        "run.done",
    ] {
        assert!(
            k.iter().any(|x| x == expected),
            "{expected} missing from {k:?}"
        );
    }
    assert!(
        t.engine
            .verify_timeline(&IncidentId::new(INC))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn bots_cannot_approve(b: Backend) {
    let Some(t) = incident_with_failover_request(b).await else {
        return;
    };
    assert!(
        t.refused("deploybot", "approve")
            .await
            .contains("bots and apps cannot approve")
    );
    let bot = Request {
        actor: Actor {
            is_bot: true,
            ..Actor::on(Platform::Slack, "B01", "ci")
        },
        source: Source::Slack,
        channel: "console".into(),
        text: "approve".into(),
    };
    assert!(
        t.engine
            .decide(&bot, RequestId::new(REQ1), true, None)
            .await[0]
            .text
            .contains("bots and apps cannot approve")
    );
    assert_eq!(state(&t, REQ1).await, RequestState::Pending);
}

async fn approver_must_come_from_the_required_group(b: Backend) {
    let Some(t) = TestApp::new(b).await else {
        return;
    };
    t.ok("alice", "p1 declare Suspicious traffic").await;
    let req = t.ok("alice", "isolate us-east-1").await;
    assert!(req.contains("including a member of security"), "{req}");
    assert_eq!(
        t.refused("bob", "approve").await,
        "Not approved: approver must be in group security for REQ-20261128-1."
    );
    assert_eq!(state(&t, REQ1).await, RequestState::Pending);
    let done = t.ok("sam", "approve").await;
    assert!(done.contains("🏁"), "{done}");
    assert!(
        t.sim.world().regions["us-east-1"]
            .network_policies
            .contains("incident-isolation")
    );
}

async fn one_person_counts_once_when_two_approvals_are_needed(b: Backend) {
    let Some(t) = TestApp::new(b).await else {
        return;
    };
    // An operator playbook asking for two approvers.
    let mut settings = test_settings();
    settings.approval_expiry_seconds = None;
    let topo = erlmcp_handlers::topology::Topology::runbook_default();
    let mut set = erlmcp_handlers::playbook::PlaybookSet::builtin(&topo).unwrap();
    let yaml = "name: big-scale\ndescription: scale with two approvers\nseverities: [p0, p1]\nparameters:\n  - name: replicas\n    type: int\napproval:\n  approvals: 2\nsteps:\n  - name: Scale\n    kind: kube.scale\n    with: { region: us-east-1, replicas: \"{{replicas}}\" }\n";
    set.add_files(&[("ops/big-scale.yaml".into(), yaml.into())], &topo)
        .unwrap();
    let engine = erlmcp_handlers::engine::Engine::new(
        t.db.store.clone(),
        Arc::new(t.sim.clone()),
        Arc::new(t.outbox.clone()),
        t.clock.clone(),
        Arc::new(topo),
        Arc::new(set),
        settings,
    );
    let say = |who: &'static str, text: &'static str| {
        let engine = engine.clone();
        async move { engine.handle(&request(who, text)).await }
    };
    say("alice", "p1 declare Load").await;
    assert!(
        say("alice", "run big-scale replicas=6").await[0]
            .text
            .contains("2 approvals from someone other than the requester")
    );
    let first = say("bob", "approve").await;
    assert!(
        first[0]
            .text
            .contains("👍 bob approved REQ-20261128-1 (1 of 2)"),
        "{first:?}"
    );
    let dup = say("bob", "approve").await;
    assert!(
        dup[0].is_error
            && dup[0].text.contains(
                "you have already approved REQ-20261128-1; one person counts once. It needs 1 more."
            ),
        "{dup:?}"
    );
    assert_eq!(state(&t, REQ1).await, RequestState::Pending);
    assert_eq!(t.sim.world().regions["us-east-1"].replicas, 3);
    let second = say("carol", "approve").await;
    assert!(second[0].text.contains("🏁"), "{second:?}");
    assert_eq!(t.sim.world().regions["us-east-1"].replicas, 6);
}

async fn approval_after_expiry_is_refused_and_says_when(b: Backend) {
    let Some(t) = incident_with_failover_request(b).await else {
        return;
    };
    t.clock
        .advance(chrono::Duration::minutes(15) + chrono::Duration::seconds(1));
    let msg = t.refused("bob", "approve REQ-20261128-1").await;
    assert_eq!(
        msg,
        "REQ-20261128-1 expired at 14:15 UTC; ask again: `/failover us-west-2`."
    );
    assert_eq!(state(&t, REQ1).await, RequestState::Expired);
    assert!(kinds(&t).await.contains(&"approval.expired".to_string()));
    assert!(
        t.outbox
            .texts()
            .iter()
            .any(|m| m.contains("REQ-20261128-1 (`/failover us-west-2`) expired unapproved"))
    );
    assert_eq!(t.sim.apply_count(), 0);
}

async fn configured_expiry_applies_to_every_playbook(b: Backend) {
    let mut settings = test_settings();
    settings.approval_expiry_seconds = Some(5);
    let Some(t) = TestApp::with_settings(b, settings).await else {
        return;
    };
    t.ok("alice", "p0 declare API down").await;
    assert!(
        t.ok("alice", "/failover us-west-2")
            .await
            .contains("expires after 5s")
    );
    t.clock.advance(chrono::Duration::seconds(4));
    t.ok("bob", "requests").await;
    t.clock.advance(chrono::Duration::seconds(2));
    assert!(
        t.refused("bob", "approve")
            .await
            .contains("expired at 14:00 UTC")
    );
}

async fn approval_after_denial_is_refused(b: Backend) {
    let Some(t) = incident_with_failover_request(b).await else {
        return;
    };
    assert!(
        t.refused("alice", "deny too risky")
            .await
            .contains("You requested REQ-20261128-1; to withdraw it")
    );
    let denied = t.ok("carol", "deny primary is recovering").await;
    assert_eq!(
        denied,
        "⛔ carol denied REQ-20261128-1 (`/failover us-west-2`): primary is recovering. Nothing was changed."
    );
    let msg = t.refused("bob", "approve REQ-20261128-1").await;
    assert_eq!(
        msg,
        "REQ-20261128-1 was denied by carol at 14:00:00 UTC (primary is recovering); it cannot be approved. Ask again if the situation changed."
    );
    assert_eq!(state(&t, REQ1).await, RequestState::Denied);
    assert_eq!(t.sim.apply_count(), 0);
}

async fn a_request_whose_plan_changed_is_void(b: Backend) {
    let Some(t) = TestApp::new(b).await else {
        return;
    };
    t.ok("alice", "p1 declare Load").await;
    // Two scale requests made from the same starting state (3 replicas).
    assert!(
        t.ok("alice", "scale us-east-1 5")
            .await
            .contains("[3 replicas -> 5 replicas]")
    );
    assert!(
        t.ok("dave", "scale us-east-1 7")
            .await
            .contains("[3 replicas -> 7 replicas]")
    );
    assert!(
        t.refused("bob", "approve")
            .await
            .contains("Several requests are pending")
    );
    assert!(t.ok("bob", "approve REQ-20261128-1").await.contains("🏁"));
    assert_eq!(t.sim.world().regions["us-east-1"].replicas, 5);
    let void = t.refused("carol", "approve REQ-20261128-2").await;
    assert!(
        void.starts_with("REQ-20261128-2 is void and will not run: the plan now reads differently"),
        "{void}"
    );
    assert!(
        void.contains("[5 replicas -> 7 replicas]"),
        "the reply shows the plan it would be now: {void}"
    );
    assert_eq!(state(&t, "REQ-20261128-2").await, RequestState::Void);
    assert_eq!(
        t.sim.world().regions["us-east-1"].replicas,
        5,
        "the unapproved plan did not run"
    );
    assert!(
        t.refused("erin", "approve REQ-20261128-2")
            .await
            .contains("is void")
    );
}

async fn unknown_and_malformed_request_ids(b: Backend) {
    let Some(t) = incident_with_failover_request(b).await else {
        return;
    };
    assert_eq!(
        t.refused("bob", "approve REQ-20261128-9").await,
        "There is no request REQ-20261128-9. `/erlmcp requests` lists the pending ones."
    );
    assert!(
        t.refused("bob", "approve 42")
            .await
            .contains("`42` is not a request id")
    );
    assert!(
        t.refused("bob", "approve REQ-1 REQ-2")
            .await
            .contains("takes at most one request id")
    );
    assert!(
        t.refused("bob", "deny REQ-x no")
            .await
            .contains("is not a request id")
    );
    assert_eq!(state(&t, REQ1).await, RequestState::Pending);
}

async fn requests_lists_pending_plans_and_cancel_withdraws(b: Backend) {
    let Some(t) = incident_with_failover_request(b).await else {
        return;
    };
    let list = t.ok("bob", "requests").await;
    assert!(
        list.contains("REQ-20261128-1 `/failover us-west-2` by alice")
            && list.contains("Plan digest: "),
        "{list}"
    );
    assert!(
        t.refused("bob", "cancel")
            .await
            .contains("Only alice can cancel")
    );
    assert_eq!(
        t.ok("alice", "cancel").await,
        "REQ-20261128-1 cancelled by alice."
    );
    assert!(
        t.refused("bob", "approve REQ-20261128-1")
            .await
            .contains("was cancelled by alice")
    );
}

async fn no_incident_no_infrastructure_change(b: Backend) {
    let Some(t) = TestApp::new(b).await else {
        return;
    };
    let msg = t.refused("alice", "/failover us-west-2").await;
    assert!(
        msg.contains("infrastructure changes run inside an incident"),
        "{msg}"
    );
}

/// Two replicas (independent pools on one database) receive the deciding approvals at the same
/// moment. Exactly one execution, every time.
async fn race_between_replicas(b: Backend, rounds: usize) {
    let Some(t) = TestApp::new(b).await else {
        return;
    };
    let replica = engine_on(
        t.db.replica().await,
        Arc::new(t.sim.clone()),
        t.clock.clone(),
        t.outbox.clone(),
        test_settings(),
    );
    t.ok("alice", "p1 declare Race").await;
    let mut lost_at_the_same_moment = 0;
    for i in 0..rounds {
        let replicas = 2 + (i % 2) as u32 * 2; // alternate 2 and 4 so every plan changes something
        let req = t.ok("alice", &format!("scale eu-west-1 {replicas}")).await;
        assert!(req.contains("Approval needed"), "{req}");
        let before = t.sim.apply_count();
        // Two tasks on the multi-threaded runtime, each on its own replica and connection pool.
        let id = format!("approve REQ-20261128-{}", i + 1);
        let (e1, e2, id2) = (t.engine.clone(), replica.clone(), id.clone());
        let a = tokio::spawn(async move { e1.handle(&request("bob", &id)).await });
        let c = tokio::spawn(async move { e2.handle(&request("carol", &id2)).await });
        let (a, c) = (a.await.unwrap(), c.await.unwrap());
        let all: Vec<_> = a.iter().chain(c.iter()).collect();
        let finished = all.iter().filter(|r| r.text.contains("🏁")).count();
        assert_eq!(
            finished, 1,
            "round {i}: exactly one replica runs it: {all:#?}"
        );
        if all.iter().any(|r| r.text.contains("at the same moment")) {
            lost_at_the_same_moment += 1;
        }
        assert_eq!(
            t.sim.apply_count() - before,
            2,
            "round {i}: scale + wait, once"
        );
        assert_eq!(t.sim.world().regions["eu-west-1"].replicas, replicas);
    }
    let runs: usize = {
        let reqs =
            t.db.store
                .requests_for_incident(&IncidentId::new(INC))
                .await
                .unwrap();
        assert!(reqs.iter().all(|r| r.state == RequestState::Done));
        let mut n = 0;
        for r in reqs {
            n += usize::from(t.db.store.run_for_request(&r.id).await.unwrap().is_some());
        }
        n
    };
    assert_eq!(runs, rounds);
    // How many rounds the loser reached the compare-and-set itself (rather than arriving after).
    eprintln!(
        "{b:?}: {rounds} rounds, {lost_at_the_same_moment} decided by the database compare-and-set"
    );
    assert!(
        t.engine
            .verify_timeline(&IncidentId::new(INC))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn race_100_rounds(b: Backend) {
    race_between_replicas(b, if b == Backend::Postgres { 100 } else { 25 }).await;
}

on_both_backends!(
    requester_cannot_approve_by_any_route,
    second_person_executes_once_and_further_approvals_do_nothing,
    bots_cannot_approve,
    approver_must_come_from_the_required_group,
    one_person_counts_once_when_two_approvals_are_needed,
    approval_after_expiry_is_refused_and_says_when,
    configured_expiry_applies_to_every_playbook,
    approval_after_denial_is_refused,
    a_request_whose_plan_changed_is_void,
    unknown_and_malformed_request_ids,
    requests_lists_pending_plans_and_cancel_withdraws,
    no_incident_no_infrastructure_change,
    race_100_rounds,
);
