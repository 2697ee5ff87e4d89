//! The incident row is held to what its declaration recorded: a row edited to say "drill" (which
//! drops a real outage from the SLA report), another title, declarer or channel is named by
//! `timeline verify`.

use erlmcp_handlers::reads;
use erlmcp_handlers::timeline::Break;
use erlmcp_tests::{Backend, TestApp, on_both_backends};

async fn an_edited_incident_row_is_named(b: Backend) {
    let Some(app) = TestApp::new(b).await else {
        return;
    };
    app.ok("alice", "/erlmcp p0 declare API down").await;
    let store = app.db.store.as_ref();
    let inc = store.all_incident_ids().await.unwrap().remove(0);
    let check = reads::verify_timeline(store, &inc, None).await.unwrap();
    assert!(check.breaks.is_empty(), "{:?}", check.breaks);
    let edit = "UPDATE incidents SET drill = $1, title = 'harmless drill', declared_by = 'mallory' WHERE id = $2";
    macro_rules! tamper {
        ($pool:expr) => {{
            sqlx::query(edit)
                .bind(true)
                .bind(inc.as_str())
                .execute($pool)
                .await
                .unwrap();
        }};
    }
    match b {
        Backend::Sqlite => tamper!(app.db.sqlite.as_ref().unwrap().pool()),
        Backend::Postgres => tamper!(app.db.postgres.as_ref().unwrap().pool()),
    }
    let check = reads::verify_timeline(store, &inc, None).await.unwrap();
    let fields: Vec<&str> = check
        .breaks
        .iter()
        .filter_map(|b| match b {
            Break::Row { field, .. } => Some(*field),
            _ => None,
        })
        .collect();
    assert_eq!(
        fields,
        ["title", "drill", "declared_by"],
        "{:?}",
        check.breaks
    );
}

on_both_backends!(an_edited_incident_row_is_named);
