//! Malformed input never changes state: thousands of generated lines the grammar refuses are
//! sent to the engine of an open incident, on SQLite and PostgreSQL, and the database stays as
//! it was (no timeline entry, no change to the incident, no request).

use erlmcp_handlers::ids::IncidentId;
use erlmcp_tests::{Backend, TestApp, on_both_backends};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, TestRunner};

const CASES: usize = 1_500;

fn line() -> impl Strategy<Value = String> {
    let word = proptest::prop_oneof![
        3 => proptest::sample::select(&[
            "/erlmcp", "declare", "p7", "sev", "p9", "role", "chief", "note", "scale", "us-east-1",
            "99999999999", "run", "no-such-book", "x=", "resume", "maybe", "approve", "REQ-1",
            "report", "2026-13", "stop", "RUN-x", "failover", "mars-1", "rollback", "vX", "deny",
            "readonly", "sideways", "help", "isolate", "eu-nowhere-9",
        ][..]).prop_map(str::to_string),
        1 => proptest::prelude::any::<String>(),
    ];
    proptest::collection::vec(word, 1..6).prop_map(|w| w.join(" "))
}

async fn refused_lines_change_nothing(b: Backend) {
    let Some(t) = TestApp::new(b).await else {
        return;
    };
    t.ok("alice", "p1 declare fuzzed").await;
    let id = IncidentId::new("INC-20261128-1");
    let before = (
        t.timeline_len().await,
        t.db.store.incident(&id).await.unwrap().unwrap(),
    );
    let mut runner = TestRunner::new(Config::default());
    let strategy = line();
    let mut refused = 0;
    for _ in 0..CASES {
        let text = strategy.new_tree(&mut runner).unwrap().current();
        if erlmcp_handlers::command::parse(&text).is_ok() {
            continue;
        }
        refused += 1;
        let replies = t.say("bob", &text).await;
        assert!(
            !replies.is_empty() && replies.iter().all(|r| r.is_error),
            "{text:?} got {replies:?}"
        );
    }
    assert!(
        refused > CASES / 2,
        "the generator reaches the refusals ({refused})"
    );
    let after = (
        t.timeline_len().await,
        t.db.store.incident(&id).await.unwrap().unwrap(),
    );
    assert_eq!(before, after, "refused input changed nothing");
    assert!(
        t.db.store
            .requests_for_incident(&id)
            .await
            .unwrap()
            .is_empty()
    );
}

on_both_backends!(refused_lines_change_nothing);
