//! Migration 0007: chat ids that were stored bare (Slack's `C…`/`U…`, console names) become
//! platform-qualified, and the timeline that recorded them bare still verifies. The old data is
//! made as the previous version made it: a real failover through the engine, then every id put
//! back to its bare form (timeline rehashed, tables rewritten) and the migration run again on it.

use erlmcp_handlers::approval::{Actor, Platform};
use erlmcp_handlers::engine::Request;
use erlmcp_handlers::timeline::Source;
use erlmcp_tests::{Backend, TestApp, on_both_backends};

fn slack(id: &str, name: &str, text: &str) -> Request {
    Request {
        actor: Actor::on(Platform::Slack, id, name),
        source: Source::Slack,
        channel: "slack:C_OLD".into(),
        text: text.into(),
    }
}

/// Runs `sql` on the test database, whichever backend.
async fn exec(t: &TestApp, sql: &str) {
    let q = sqlx::AssertSqlSafe(sql.to_string());
    match t.db.backend {
        Backend::Sqlite => {
            sqlx::query(q)
                .execute(t.db.sqlite.as_ref().unwrap().pool())
                .await
                .unwrap();
        }
        Backend::Postgres => {
            sqlx::query(q)
                .execute(t.db.postgres.as_ref().unwrap().pool())
                .await
                .unwrap();
        }
    }
}

async fn bare_ids_are_qualified_and_the_chain_still_verifies(backend: Backend) {
    let Some(t) = TestApp::new(backend).await else {
        return;
    };
    let e = &t.engine;
    e.handle(&slack("U_ALICE", "alice", "/erlmcp p0 declare API down"))
        .await;
    e.handle(&slack("U_ALICE", "alice", "/failover us-west-2"))
        .await;
    let r = e.handle(&slack("U_BOB", "bob", "/erlmcp approve")).await;
    assert!(
        r.iter().any(|r| r.text.contains("done: 6/6 steps")),
        "{r:?}"
    );
    // A console incident too, approved by someone whose platform was never kept.
    t.ok("carol", "p1 declare console one").await;
    t.ok("carol", "scale us-east-1 4").await;
    t.ok("dave", "approve").await;

    // Back to how the previous version stored it.
    let ids = t.db.store.all_incident_ids().await.unwrap();
    for id in &ids {
        t.db.rewrite_timeline(id, "slack:", "").await;
        t.db.rewrite_timeline(id, "console:", "").await;
    }
    for (table, column) in [
        ("incidents", "channel"),
        ("approval_requests", "channel"),
        ("approval_requests", "requester_id"),
        ("approvals", "approver_id"),
        ("runs", "channel"),
    ] {
        exec(
            &t,
            &format!(
                "UPDATE {table} SET {column} = replace(replace({column}, 'slack:', ''), 'console:', '')"
            ),
        )
        .await;
    }
    exec(
        &t,
        "UPDATE approvals SET approver_platform = NULL WHERE approver_id = 'dave'",
    )
    .await;
    for id in &ids {
        let before = erlmcp_handlers::reads::verify_timeline(t.db.store.as_ref(), id, None)
            .await
            .unwrap();
        assert!(
            before.breaks.is_empty(),
            "the old data verifies: {:?}",
            before.breaks
        );
    }
    exec(&t, "DELETE FROM _sqlx_migrations WHERE version = 7").await;

    // Opening the database migrates it.
    let migrated = t.db.replica().await;
    let mut channels = Vec::new();
    for id in &ids {
        let inc = migrated.incident(id).await.unwrap().unwrap();
        channels.push(inc.channel.clone());
        let check = erlmcp_handlers::reads::verify_timeline(migrated.as_ref(), id, None)
            .await
            .unwrap();
        assert!(
            check.breaks.is_empty(),
            "{id} verifies after the migration: {:?}",
            check.breaks
        );
        for r in migrated.requests_for_incident(id).await.unwrap() {
            let approvals = migrated.approvals(&r.id).await.unwrap();
            let who: Vec<(String, Option<Platform>)> = approvals
                .iter()
                .map(|a| (a.approver_id.clone(), a.approver_platform))
                .collect();
            if inc.channel == "console" {
                assert_eq!(
                    (r.channel.as_str(), r.requester_id.as_str()),
                    ("console", "console:carol")
                );
                assert_eq!(who, [("console:dave".to_string(), Some(Platform::Console))]);
            } else {
                assert_eq!(
                    (r.channel.as_str(), r.requester_id.as_str()),
                    ("slack:C_OLD", "slack:U_ALICE")
                );
                assert_eq!(who, [("slack:U_BOB".to_string(), Some(Platform::Slack))]);
            }
        }
    }
    channels.sort();
    assert_eq!(channels, ["console", "slack:C_OLD"]);

    // A second run changes nothing.
    exec(&t, "DELETE FROM _sqlx_migrations WHERE version = 7").await;
    let again = t.db.replica().await;
    let inc = again.incident(&ids[0]).await.unwrap().unwrap();
    assert!(!inc.channel.contains("slack:slack:"), "{}", inc.channel);
}

on_both_backends!(bare_ids_are_qualified_and_the_chain_still_verifies);
