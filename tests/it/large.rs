//! Long timelines: checked a page at a time (an edit or a deletion deep inside, or at a page's
//! edge, is still found), and a postmortem that shortens long runs of alike entries, saying
//! how many it left out.

use chrono::Utc;
use erlmcp_handlers::ids::IncidentId;
use erlmcp_handlers::reads;
use erlmcp_handlers::store::{NewIncident, Store};
use erlmcp_handlers::timeline::{Break, Draft, Source};
use erlmcp_tests::{Backend, TestDb, on_both_backends};

fn draft(kind: &str, actor: &str, text: &str) -> Draft {
    Draft {
        at: Utc::now(),
        actor: actor.into(),
        actor_id: format!("U_{}", actor.to_uppercase()),
        source: Source::Slack,
        kind: kind.into(),
        text: text.into(),
        facts: Vec::new(),
    }
}

/// An incident with 5,000 notes by alice, then one by bob: 5,002 entries, three pages.
async fn long_incident(store: &dyn Store) -> IncidentId {
    let declared = draft("declared", "alice", "Declared P2 (Medium): long");
    let inc = store
        .create_incident(
            NewIncident {
                title: "long".into(),
                severity: erlmcp_handlers::severity::Severity::P2,
                channel: "C_LONG".into(),
                drill: false,
                declared_by: "alice".into(),
                declared_at: declared.at,
            },
            vec![declared],
        )
        .await
        .unwrap()
        .id;
    for chunk in 0..10 {
        let drafts = (0..500)
            .map(|i| draft("note", "alice", &format!("note {}", chunk * 500 + i)))
            .collect();
        store.append(&inc, drafts).await.unwrap();
    }
    store
        .append(&inc, vec![draft("note", "bob", "bob's only note")])
        .await
        .unwrap();
    inc
}

/// Writes to the database behind the bot's back, as someone with access to it could: first the
/// triggers that keep the timeline append-only go.
async fn unguard(db: &TestDb) {
    match (&db.sqlite, &db.postgres) {
        (Some(s), _) => {
            sqlx::raw_sql("DROP TRIGGER timeline_no_update; DROP TRIGGER timeline_no_delete")
                .execute(s.pool())
                .await
                .map(|_| ())
        }
        (None, Some(p)) => sqlx::raw_sql("DROP TRIGGER timeline_no_update_or_delete ON timeline")
            .execute(p.pool())
            .await
            .map(|_| ()),
        (None, None) => panic!("a test database has a backend"),
    }
    .unwrap();
}

/// Runs `sql` on the database directly, the incident's id as `$1`.
async fn write(db: &TestDb, sql: &str, inc: &IncidentId) {
    match (&db.sqlite, &db.postgres) {
        (Some(s), _) => sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(inc.as_str())
            .execute(s.pool())
            .await
            .map(|_| ()),
        (None, Some(p)) => sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(inc.as_str())
            .execute(p.pool())
            .await
            .map(|_| ()),
        (None, None) => panic!("a test database has a backend"),
    }
    .unwrap();
}

async fn long_timelines_are_checked_page_by_page(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let store = db.store.as_ref();
    let inc = long_incident(store).await;
    let check = reads::verify_timeline(store, &inc, None).await.unwrap();
    assert!(check.breaks.is_empty(), "{:?}", check.breaks);
    assert_eq!(check.entries, 5002);

    let md = reads::postmortem_markdown(store, &inc).await.unwrap();
    // 5,000 notes by alice and one by bob: the first ten and the last three shown, the rest
    // counted.
    assert!(
        md.contains("… 4988 more `note` entries by alice in this stretch"),
        "{md}"
    );
    assert!(md.contains(&format!("`erlmcp-bot timeline show {inc}` lists every one")));
    for shown in [
        "note 0 |",
        "note 9 |",
        "note 4998 |",
        "note 4999 |",
        "bob's only note",
    ] {
        assert!(md.contains(shown), "{shown} is shown");
    }
    for left_out in ["note 10 |", "note 2500 |", "note 4997 |"] {
        assert!(!md.contains(left_out), "{left_out} is counted, not shown");
    }
    assert!(md.contains("Declared P2 (Medium): long"));

    // Edit an entry on the third page and delete the first entry of the second.
    unguard(&db).await;
    for q in [
        "UPDATE timeline SET text = 'nothing happened' WHERE incident_id = $1 AND seq = 4500",
        "DELETE FROM timeline WHERE incident_id = $1 AND seq = 2049",
    ] {
        write(&db, q, &inc).await;
    }
    let check = reads::verify_timeline(store, &inc, None).await.unwrap();
    assert_eq!(
        check.breaks,
        vec![
            Break::Gap {
                after: 2048,
                next: 2050
            },
            Break::Edited { seq: 4500 },
        ]
    );
    let md = reads::postmortem_markdown(store, &inc).await.unwrap();
    assert!(md.contains("fails verification"), "{md}");
    assert!(md.contains("4500 was modified"), "{md}");
}

/// A timeline that grows while it is checked is not taken for a cut one.
async fn a_growing_timeline_is_not_a_cut_one(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let store = db.store.clone();
    let inc = long_incident(store.as_ref()).await;
    let writer = {
        let (store, inc) = (store.clone(), inc.clone());
        tokio::spawn(async move {
            // Single notes, then bursts of 300: more than a whole range (2048 positions) is
            // appended while one check reads.
            for i in 0..40 {
                store
                    .append(&inc, vec![draft("note", "carol", &format!("live {i}"))])
                    .await
                    .unwrap();
            }
            for burst in 0..20 {
                let drafts = (0..300)
                    .map(|i| draft("note", "carol", &format!("burst {burst}-{i}")))
                    .collect();
                store.append(&inc, drafts).await.unwrap();
            }
        })
    };
    while !writer.is_finished() {
        let check = reads::verify_timeline(store.as_ref(), &inc, None)
            .await
            .unwrap();
        assert!(check.breaks.is_empty(), "{:?}", check.breaks);
    }
    writer.await.unwrap();
    let check = reads::verify_timeline(store.as_ref(), &inc, None)
        .await
        .unwrap();
    assert_eq!(check.entries, 5042 + 6000);
}

/// Rows the bot never writes, and a record of the end edited back, are named.
async fn inserted_rows_and_a_shortened_record_are_caught(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let store = db.store.as_ref();
    let inc = long_incident(store).await;
    let forge = "INSERT INTO timeline (incident_id, seq, at, actor, actor_id, source, kind, text, prev_hash, hash) SELECT incident_id, 0, at, actor, actor_id, source, kind, 'FORGED: root cause was the DBA', prev_hash, hash FROM timeline WHERE incident_id = $1 AND seq = 1";
    let shorten = "UPDATE incidents SET timeline_len = timeline_len - 1 WHERE id = $1";
    unguard(&db).await;
    write(&db, forge, &inc).await;
    let check = reads::verify_timeline(store, &inc, None).await.unwrap();
    assert_eq!(check.breaks, vec![Break::Inserted { seq: 0 }]);
    write(
        &db,
        "DELETE FROM timeline WHERE incident_id = $1 AND seq = 0",
        &inc,
    )
    .await;
    write(&db, shorten, &inc).await;
    let check = reads::verify_timeline(store, &inc, None).await.unwrap();
    assert_eq!(
        check.breaks,
        vec![Break::Beyond {
            stored: 5002,
            recorded: 5001
        }]
    );
}

/// The timeline is read in ranges of positions: a hole as wide as a whole range, a row far past
/// the end, and a record of the end edited far back are still found, and every stored entry is
/// still read and checked.
async fn holes_far_rows_and_a_record_set_back_are_found(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let store = db.store.as_ref();
    let inc = long_incident(store).await;
    // Positions 2001-4500 (more than one range of 2048) go; a copy of #5002 lands at #90000.
    let hole = "DELETE FROM timeline WHERE incident_id = $1 AND seq > 2000 AND seq <= 4500";
    let far = "INSERT INTO timeline (incident_id, seq, at, actor, actor_id, source, kind, text, prev_hash, hash) SELECT incident_id, 90000, at, actor, actor_id, source, kind, text, prev_hash, hash FROM timeline WHERE incident_id = $1 AND seq = 5002";
    let set_back = "UPDATE incidents SET timeline_len = 1 WHERE id = $1";
    unguard(&db).await;
    write(&db, hole, &inc).await;
    let check = reads::verify_timeline(store, &inc, None).await.unwrap();
    assert_eq!(
        check.breaks,
        vec![Break::Gap {
            after: 2000,
            next: 4501
        }]
    );
    assert_eq!(check.entries, 2502, "every stored entry is read");
    write(&db, far, &inc).await;
    let check = reads::verify_timeline(store, &inc, None).await.unwrap();
    assert!(
        check.breaks.contains(&Break::Gap {
            after: 5002,
            next: 90000
        }),
        "{:?}",
        check.breaks
    );
    assert_eq!(check.entries, 2503);
    write(&db, set_back, &inc).await;
    let check = reads::verify_timeline(store, &inc, None).await.unwrap();
    assert!(
        check.breaks.contains(&Break::Beyond {
            stored: 90000,
            recorded: 1
        }),
        "{:?}",
        check.breaks
    );
    assert_eq!(
        check.entries, 2503,
        "a record set back does not stop the reading"
    );
    // A record of the end far ahead of what is stored: no range after range up to it.
    write(
        &db,
        "UPDATE incidents SET timeline_len = 1000000000000000 WHERE id = $1",
        &inc,
    )
    .await;
    let check = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        reads::verify_timeline(store, &inc, None),
    )
    .await
    .expect("the check ends")
    .unwrap();
    assert!(
        check.breaks.contains(&Break::Truncated {
            stored: 90000,
            expected: 1_000_000_000_000_000
        }),
        "{:?}",
        check.breaks
    );
    assert_eq!(check.entries, 2503);
}

on_both_backends!(
    long_timelines_are_checked_page_by_page,
    a_growing_timeline_is_not_a_cut_one,
    inserted_rows_and_a_shortened_record_are_caught,
    holes_far_rows_and_a_record_set_back_are_found
);
