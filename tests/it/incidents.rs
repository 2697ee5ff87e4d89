//! Issue 2: incidents, lifecycle, grammar replies, the timeline and the postmortem, on SQLite and PostgreSQL.

use erlmcp_tests::{Backend, TestApp, on_both_backends};

async fn declare_to_close_with_durations_against_p0_targets(b: Backend) {
    let Some(t) = TestApp::new(b).await else {
        return;
    };
    let declared = t
        .ok("alice", "/erlmcp p0 declare API down in us-east-1")
        .await;
    assert!(
        declared.starts_with("🚨 INC-20261128-1 declared: P0 API down in us-east-1"),
        "{declared}"
    );
    t.clock.advance(chrono::Duration::minutes(3));
    assert!(
        t.ok("bob", "/erlmcp ack")
            .await
            .contains("Acknowledged by bob after 3m 00s (target 5m 00s: met)")
    );
    t.ok("bob", "/erlmcp role ic bob").await;
    t.ok("carol", "/erlmcp note restarted the ingress").await;
    t.clock.advance(chrono::Duration::minutes(20));
    t.ok("bob", "/erlmcp mitigated").await;
    t.clock.advance(chrono::Duration::minutes(50));
    let resolved = t.ok("bob", "/erlmcp resolve bad config rolled back").await;
    assert!(
        resolved.contains("after 1h 13m (target 1h 00m: missed)"),
        "{resolved}"
    );
    t.ok("bob", "/erlmcp close").await;

    let pm = t.ok("alice", "/erlmcp postmortem").await;
    for expected in [
        "# Postmortem: API down in us-east-1",
        "| Incident | INC-20261128-1 |",
        "| Severity | P0 (Critical) |",
        "| Status | closed |",
        "bad config rolled back",
        "| Declared | 2026-11-28 14:00:00 UTC |",
        "| Acknowledged | 2026-11-28 14:03:00 UTC |",
        "| Mitigated | 2026-11-28 14:23:00 UTC |",
        "| Resolved | 2026-11-28 15:13:00 UTC |",
        "| Time to acknowledge | 3m 00s | 5m 00s | met |",
        "| Time to mitigate | 23m 00s |",
        "| Time to resolve | 1h 13m | 1h 00m | **missed** |",
        "- Incident commander: bob",
        "| 2026-11-28 14:03:00 UTC | carol | console | restarted the ingress |",
        "## Root cause\n\n_To be written by the incident team._",
        "## Action items",
    ] {
        assert!(
            pm.contains(expected),
            "postmortem lacks {expected:?}:\n{pm}"
        );
    }
    // Queries are on the timeline as accepted commands, but not in the postmortem's table.
    assert!(!pm.contains("| /erlmcp postmortem |"));
}

async fn invalid_transitions_are_refused_with_the_reason(b: Backend) {
    let Some(t) = TestApp::new(b).await else {
        return;
    };
    t.ok("alice", "p1 declare Checkout errors").await;
    t.ok("bob", "ack").await;
    assert_eq!(
        t.refused("carol", "ack").await,
        "INC-20261128-1 was already acknowledged by bob at 14:00:00 UTC."
    );
    assert!(
        t.refused("bob", "close")
            .await
            .contains("is acknowledged, not resolved; resolve it first")
    );
    assert_eq!(
        t.refused("bob", "sev p1").await,
        "INC-20261128-1 is already P1."
    );
    t.ok("bob", "resolve fixed").await;
    t.ok("bob", "close").await;
    // Closed: nothing open in the channel any more.
    assert!(
        t.refused("bob", "resolve again")
            .await
            .starts_with("No open incident in this channel.")
    );
    assert!(
        t.refused("bob", "INC-20261128-1 resolve again")
            .await
            .contains("is closed")
    );
    assert!(
        t.refused("bob", "INC-20261128-1 note late")
            .await
            .contains("is closed")
    );
}

async fn malformed_commands_get_specific_replies_and_change_nothing(b: Backend) {
    let Some(t) = TestApp::new(b).await else {
        return;
    };
    t.ok("alice", "p2 declare Slow dashboards").await;
    let before_len = t.timeline_len().await;
    let before = t.db.store.open_incidents().await.unwrap();
    let cases: &[(&str, &str)] = &[
        ("", "empty command"),
        ("/erlmcp", "empty command"),
        ("/erlmcp p5 declare x", "`p5` is not a severity"),
        ("/erlmcp p1 declare", "an incident needs a title"),
        ("/erlmcp declare", "the severity comes first"),
        ("/erlmcp p1", "after `p1` comes `declare`"),
        ("/erlmcp sev", "which severity?"),
        ("/erlmcp sev p9", "`p9` is not a severity"),
        ("/erlmcp sev p1 p2", "takes exactly one severity"),
        ("/erlmcp role boss alice", "`boss` is not a role"),
        ("/erlmcp role ic", "needs a role"),
        ("/erlmcp note", "a note needs text"),
        ("/erlmcp ack now please", "takes no arguments"),
        ("/erlmcp stauts", "did you mean `status`?"),
        ("/erlmcp resolv", "did you mean `resolve`?"),
        ("/erlmcp frobnicate", "unknown command `frobnicate`"),
        ("/failover", "which region should take over?"),
        ("/failover us west 2", "takes exactly one region"),
        ("/failover 'us-west-2'", "is not a region name"),
        (
            "/erlmcp scale us-east-1 many",
            "`many` is not a replica count",
        ),
        ("/erlmcp scale us-east-1 500", "more than the limit of 50"),
        ("/erlmcp approve REQ-banana", "is not a request id"),
        (
            "/erlmcp approve REQ-20261128-99",
            "There is no request REQ-20261128-99",
        ),
        (
            "/erlmcp run failover region",
            "`region` is not a key=value parameter",
        ),
        (
            "/erlmcp run failover region=mars-north-9",
            "unknown region `mars-north-9`",
        ),
        (
            "/erlmcp run nosuchbook",
            "there is no playbook `nosuchbook`",
        ),
        ("/erlmcp readonly maybe", "say `on` or `off`"),
        ("/erlmcp help nonsense", "there is no help topic `nonsense`"),
        (
            "/erlmcp INC-20991231-7 status",
            "There is no incident INC-20991231-7",
        ),
        ("/erlmcp resume RUN-1 retry", "is not a run id"),
    ];
    assert!(cases.len() >= 20);
    for (input, expected) in cases {
        let replies = t.say("mallory", input).await;
        assert_eq!(replies.len(), 1, "{input:?}: {replies:?}");
        assert!(
            replies[0].is_error,
            "{input:?} should be refused: {replies:?}"
        );
        assert!(
            replies[0].text.contains(expected),
            "{input:?}: expected {expected:?} in {:?}",
            replies[0].text
        );
        assert!(
            replies[0].text.contains("Try: `") || !replies[0].text.contains("Try:"),
            "{input:?}"
        );
    }
    assert_eq!(
        t.timeline_len().await,
        before_len,
        "refused commands must not touch the timeline"
    );
    assert_eq!(
        t.db.store.open_incidents().await.unwrap(),
        before,
        "refused commands must not change incidents"
    );
}

async fn several_open_incidents_in_a_channel_must_be_named(b: Backend) {
    let Some(t) = TestApp::new(b).await else {
        return;
    };
    t.ok("alice", "p1 declare First").await;
    t.ok("alice", "p2 declare Second").await;
    let msg = t.refused("bob", "ack").await;
    assert!(msg.starts_with("Several incidents are open in this channel: INC-20261128-2 (P2 Second, declared); INC-20261128-1 (P1 First, declared)."), "{msg}");
    assert!(
        t.ok("bob", "INC-20261128-1 ack")
            .await
            .starts_with("INC-20261128-1: Acknowledged by bob")
    );
    let list = t.ok("bob", "incidents").await;
    assert!(
        list.contains("INC-20261128-1 P1 First [acknowledged]")
            && list.contains("INC-20261128-2 P2 Second [declared]"),
        "{list}"
    );
    // Another channel, tied to no incident, sees neither while two are open...
    let other = erlmcp_handlers::engine::Request {
        channel: "C-other".into(),
        ..erlmcp_tests::request("bob", "status")
    };
    let r = t.engine.handle(&other).await;
    // ...and says which are open elsewhere, so the person can name one.
    assert!(
        r[0].is_error
            && r[0]
                .text
                .starts_with("This channel is tied to no incident, and 2 are open elsewhere:")
            && r[0].text.contains("INC-20261128-1 (P1 First)")
            && r[0].text.contains("INC-20261128-2 (P2 Second)"),
        "{}",
        r[0].text
    );
    // ...and addresses the only open one once the other is closed.
    t.ok("bob", "INC-20261128-2 resolve fixed").await;
    t.ok("bob", "INC-20261128-2 close").await;
    let r = t.engine.handle(&other).await;
    assert!(
        !r[0].is_error && r[0].text.starts_with("INC-20261128-1 P1 First"),
        "{r:?}"
    );
}

async fn timeline_is_hash_chained_and_append_only(b: Backend) {
    let Some(t) = TestApp::new(b).await else {
        return;
    };
    t.ok("alice", "p1 declare Chain").await;
    t.ok("bob", "note one").await;
    t.ok("bob", "note two").await;
    let id = erlmcp_handlers::ids::IncidentId::new("INC-20261128-1");
    let entries = t.db.store.timeline(&id).await.unwrap();
    assert_eq!(
        entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(entries[1].prev_hash, entries[0].hash);
    assert!(t.engine.verify_timeline(&id).await.unwrap().is_empty());
    // The database itself refuses updates and deletes.
    let err = match (&t.db.sqlite, &t.db.postgres) {
        (Some(s), _) => sqlx::query("UPDATE timeline SET text = 'x' WHERE seq = 2")
            .execute(s.pool())
            .await
            .unwrap_err()
            .to_string(),
        (_, Some(p)) => sqlx::query("DELETE FROM timeline WHERE seq = 2")
            .execute(p.pool())
            .await
            .unwrap_err()
            .to_string(),
        _ => unreachable!(),
    };
    assert!(err.contains("timeline is append-only"), "{err}");
}

async fn concurrent_updates_do_not_lose_changes(b: Backend) {
    let Some(t) = TestApp::new(b).await else {
        return;
    };
    t.ok("alice", "p1 declare Busy").await;
    // Two replicas append notes at once; every note lands, the chain stays intact.
    let replica = erlmcp_tests::engine_on(
        t.db.replica().await,
        std::sync::Arc::new(t.sim.clone()),
        t.clock.clone(),
        t.outbox.clone(),
        erlmcp_tests::test_settings(),
    );
    let mut tasks = Vec::new();
    for i in 0..20 {
        let e = if i % 2 == 0 {
            t.engine.clone()
        } else {
            replica.clone()
        };
        tasks.push(tokio::spawn(async move {
            e.handle(&erlmcp_tests::request("bob", &format!("note n{i}")))
                .await
        }));
    }
    for task in tasks {
        let r = task.await.unwrap();
        assert!(!r[0].is_error, "{r:?}");
    }
    let id = erlmcp_handlers::ids::IncidentId::new("INC-20261128-1");
    assert_eq!(t.db.store.timeline(&id).await.unwrap().len(), 21);
    assert!(t.engine.verify_timeline(&id).await.unwrap().is_empty());
}

async fn severity_clocks_warn_then_call_out_a_missed_target_once(b: Backend) {
    let Some(t) = TestApp::new(b).await else {
        return;
    };
    t.ok("alice", "p0 declare API down").await;
    t.ok("alice", "role ic dana").await;
    t.clock.advance(chrono::Duration::minutes(3));
    assert_eq!(
        t.engine.tick().await.unwrap(),
        0,
        "nothing before 80% of the 5-minute target"
    );
    t.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(t.engine.tick().await.unwrap(), 1);
    assert_eq!(t.engine.tick().await.unwrap(), 0, "once per stage");
    t.clock.advance(chrono::Duration::minutes(2));
    assert_eq!(t.engine.tick().await.unwrap(), 1);
    let notices = t.outbox.texts();
    assert_eq!(
        notices[0],
        "⏰ INC-20261128-1 (P0 API down): 59s left to meet the response target of 5m 00s. Acknowledge: `/erlmcp ack`."
    );
    assert_eq!(
        notices[1],
        "🚨 INC-20261128-1 (P0 API down) missed its response target of 5m 00s: 6m 01s since it was declared. Acknowledge: `/erlmcp ack`. Incident commander: dana."
    );
    t.ok("bob", "ack").await;
    t.clock.advance(chrono::Duration::minutes(40));
    assert_eq!(
        t.engine.tick().await.unwrap(),
        0,
        "acknowledged: the response clock stops; resolution not yet at 80%"
    );
    t.clock.advance(chrono::Duration::minutes(2));
    assert_eq!(t.engine.tick().await.unwrap(), 1);
    assert!(t.outbox.texts()[2].contains("left to meet the resolution target of 1h 00m"));
    t.ok("bob", "resolve fixed").await;
    t.clock.advance(chrono::Duration::hours(2));
    assert_eq!(
        t.engine.tick().await.unwrap(),
        0,
        "resolved: no more clocks"
    );
    let kinds: Vec<String> =
        t.db.store
            .timeline(&erlmcp_handlers::ids::IncidentId::new("INC-20261128-1"))
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .filter(|k| k.starts_with("clock."))
            .collect();
    assert_eq!(
        kinds,
        vec![
            "clock.response.warning",
            "clock.response.missed",
            "clock.resolution.warning"
        ]
    );
}

on_both_backends!(
    severity_clocks_warn_then_call_out_a_missed_target_once,
    declare_to_close_with_durations_against_p0_targets,
    invalid_transitions_are_refused_with_the_reason,
    malformed_commands_get_specific_replies_and_change_nothing,
    several_open_incidents_in_a_channel_must_be_named,
    timeline_is_hash_chained_and_append_only,
    concurrent_updates_do_not_lose_changes,
);
