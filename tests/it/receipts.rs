//! Receipts that carry their note: the note is on the timeline when the receipt is stored, once,
//! chained after whatever another replica appended, and never on a closed incident.

use chrono::{DateTime, TimeZone, Utc};
use erlmcp_handlers::ids::IncidentId;
use erlmcp_handlers::incident::IncidentStatus;
use erlmcp_handlers::store::{NewIncident, NewReceipt, ReadyNote, ReceiptFate, Store};
use erlmcp_handlers::timeline::{Draft, Source};
use erlmcp_tests::{Backend, TestDb, on_both_backends};

fn draft(at: DateTime<Utc>, kind: &str, text: &str) -> Draft {
    Draft {
        at,
        actor: "alice".into(),
        actor_id: "U_ALICE".into(),
        source: Source::Slack,
        kind: kind.into(),
        text: text.into(),
        facts: Vec::new(),
    }
}

async fn incident(store: &dyn Store, channel: &str) -> IncidentId {
    let at = Utc::now();
    let new = NewIncident {
        title: "receipts".into(),
        severity: erlmcp_handlers::severity::Severity::P1,
        channel: channel.into(),
        drill: false,
        declared_by: "alice".into(),
        declared_at: at,
    };
    store
        .create_incident(new, vec![draft(at, "declared", "Declared P1")])
        .await
        .unwrap()
        .id
}

fn receipt(key: &str, note: Option<(&IncidentId, DateTime<Utc>, &str)>) -> NewReceipt {
    NewReceipt {
        key: key.into(),
        platform: "slack".into(),
        received_at: Utc::now(),
        payload: format!("{{\"text\":\"note {key}\"}}"),
        note: note.map(|(inc, at, text)| ReadyNote {
            incident: inc.clone(),
            draft: draft(at, "note", text),
        }),
        former_key: None,
    }
}

fn notes(tl: &[erlmcp_handlers::timeline::Entry]) -> Vec<String> {
    tl.iter()
        .filter(|e| e.kind == "note")
        .map(|e| e.text.clone())
        .collect()
}

async fn intact(store: &dyn Store, inc: &IncidentId) {
    let check = erlmcp_handlers::reads::verify_timeline(store, inc, None)
        .await
        .unwrap();
    assert!(check.breaks.is_empty(), "{inc}: {check:?}");
}

async fn notes_go_in_with_their_receipts_once(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let store = db.store.as_ref();
    let inc = incident(store, "C_R1").await;
    let t = Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0).unwrap();

    // A note and a plain receipt in one batch: the note is applied, the other only stored.
    let fates = store
        .record_receipts(&[
            receipt("k1", Some((&inc, t, "first note"))),
            receipt("k2", None),
        ])
        .await
        .unwrap();
    assert!(matches!(fates[0], ReceiptFate::Applied(_)), "{fates:?}");
    assert!(matches!(fates[1], ReceiptFate::Stored(_)), "{fates:?}");
    assert_eq!(notes(&store.timeline(&inc).await.unwrap()), ["first note"]);
    // The applied receipt is done: nothing is left for the processor.
    let waiting = store
        .unprocessed_receipts(Utc::now() + chrono::Duration::seconds(5), 100)
        .await
        .unwrap();
    assert_eq!(
        waiting
            .iter()
            .map(|r| r.payload.as_str())
            .collect::<Vec<_>>(),
        ["{\"text\":\"note k2\"}"]
    );

    // The same delivery again (Slack retries): a duplicate, and no second copy of the note.
    let fates = store
        .record_receipts(&[receipt("k1", Some((&inc, t, "first note")))])
        .await
        .unwrap();
    assert_eq!(fates, [ReceiptFate::Duplicate]);
    assert_eq!(notes(&store.timeline(&inc).await.unwrap()), ["first note"]);

    // Another replica appends to the same incident: a note stored here afterwards chains after
    // its entry, whatever this process remembered of the chain's end.
    let other = db.replica().await;
    other
        .append(&inc, vec![draft(t, "note", "from the other replica")])
        .await
        .unwrap();
    let fates = store
        .record_receipts(&[receipt("k3", Some((&inc, t, "after the other")))])
        .await
        .unwrap();
    assert!(matches!(fates[0], ReceiptFate::Applied(_)), "{fates:?}");
    assert_eq!(
        notes(&store.timeline(&inc).await.unwrap()),
        ["first note", "from the other replica", "after the other"]
    );
    intact(store, &inc).await;

    // Closed by the other replica: a note prepared for it is not appended; the receipt is
    // stored so the processor tells its author why.
    let mut closed = other.incident(&inc).await.unwrap().unwrap();
    closed.status = IncidentStatus::Closed;
    closed.closed_at = Some(t);
    other
        .update_incident(&closed, vec![draft(t, "closed", "Closed")])
        .await
        .unwrap();
    let fates = store
        .record_receipts(&[
            receipt("k4", Some((&inc, t, "too late"))),
            receipt("k5", None),
        ])
        .await
        .unwrap();
    assert!(matches!(fates[0], ReceiptFate::Stored(_)), "{fates:?}");
    assert!(matches!(fates[1], ReceiptFate::Stored(_)), "{fates:?}");
    // The processor's path for a stored note, with the incident closed since it was looked
    // up: refused in the transaction that would append it, nothing appended.
    let id = match fates[1] {
        ReceiptFate::Stored(id) => id,
        other => panic!("{other:?}"),
    };
    let refused = store
        .append_receipted(&inc, vec![(id, draft(t, "note", "closed meanwhile"))])
        .await;
    assert!(
        matches!(refused, Err(erlmcp_handlers::Error::Conflict(_))),
        "{refused:?}"
    );
    let tl = store.timeline(&inc).await.unwrap();
    assert!(!notes(&tl).contains(&"too late".to_string()));
    assert!(!notes(&tl).contains(&"closed meanwhile".to_string()));
    assert_eq!(tl.last().unwrap().kind, "closed");
    intact(store, &inc).await;
}

/// Notes for two incidents in one batch each land on their own timeline, in order.
async fn one_batch_two_incidents(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let store = db.store.as_ref();
    let a = incident(store, "C_A").await;
    let z = incident(store, "C_Z").await;
    let t = Utc::now();
    let batch: Vec<NewReceipt> = (0..40)
        .map(|i| {
            let inc = if i % 3 == 0 { &z } else { &a };
            receipt(&format!("b{i}"), Some((inc, t, &format!("n{i}"))))
        })
        .collect();
    let fates = store.record_receipts(&batch).await.unwrap();
    assert!(
        fates.iter().all(|f| matches!(f, ReceiptFate::Applied(_))),
        "{fates:?}"
    );
    let on_z: Vec<String> = (0..40)
        .filter(|i| i % 3 == 0)
        .map(|i| format!("n{i}"))
        .collect();
    let on_a: Vec<String> = (0..40)
        .filter(|i| i % 3 != 0)
        .map(|i| format!("n{i}"))
        .collect();
    assert_eq!(notes(&store.timeline(&z).await.unwrap()), on_z);
    assert_eq!(notes(&store.timeline(&a).await.unwrap()), on_a);
    intact(store, &a).await;
    intact(store, &z).await;
}

/// SQLite: a note written with its receipt stores its time exactly as a bound parameter does,
/// so comparisons and ordering on the `at` column treat both alike.
#[tokio::test]
async fn sqlite_times_are_written_alike_both_ways() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let store = db.store.as_ref();
    let inc = incident(store, "C_T").await;
    for at in [
        Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0).unwrap(),
        Utc.timestamp_opt(1_796_000_000, 123_456_789).unwrap(),
        Utc.timestamp_opt(1_796_000_000, 120_000_000).unwrap(),
    ] {
        store
            .record_receipts(&[receipt(
                &format!("t{}", at.timestamp_nanos_opt().unwrap()),
                Some((&inc, at, "with receipt")),
            )])
            .await
            .unwrap();
        store
            .append(&inc, vec![draft(at, "note", "bound")])
            .await
            .unwrap();
        let path = db.sqlite_path.as_ref().unwrap();
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let written: Vec<(String, String)> = sqlx::query_as(
            "SELECT text, at FROM timeline WHERE kind = 'note' ORDER BY seq DESC LIMIT 2",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        pool.close().await;
        assert_eq!(written[0].0, "bound");
        assert_eq!(written[1].0, "with receipt");
        assert_eq!(written[0].1, written[1].1, "{at}");
    }
    intact(store, &inc).await;
}

/// SQLite: another process holding the write lock (a console's transaction, the sqlite3 shell)
/// gets the person a definite answer within the platform's patience: nothing recorded, said as
/// such, not "may or may not have been recorded"; once the lock is free the same commands are
/// stored, once.
#[tokio::test]
async fn a_write_lock_held_elsewhere_is_a_definite_failure() {
    use erlmcp_bot::intake::{Intake, Outcome};
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let store = db.store.clone();
    let inc = incident(store.as_ref(), "C_LOCKED").await;
    let t = Utc::now();
    let path = db.sqlite_path.as_ref().unwrap();
    use sqlx::Connection;
    let mut elsewhere = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE; UPDATE incidents SET title = title;")
        .execute(&mut elsewhere)
        .await
        .unwrap();
    let (stored_tx, _stored) = tokio::sync::mpsc::unbounded_channel();
    let intake = Intake::start(store.clone(), stored_tx);
    let patience = erlmcp_bot::chat::receive::DATABASE_PATIENCE;
    for r in [
        receipt("locked-note", Some((&inc, t, "while locked"))),
        receipt("locked-plain", None),
    ] {
        match intake.submit(r, patience).await {
            Outcome::Failed(why) => assert!(why.contains("write lock"), "{why}"),
            other => panic!("a held write lock must be a definite failure: {other:?}"),
        }
    }
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut elsewhere)
        .await
        .unwrap();
    assert!(matches!(
        intake
            .submit(
                receipt("locked-note", Some((&inc, t, "while locked"))),
                patience
            )
            .await,
        Outcome::Applied(_)
    ));
    assert!(matches!(
        intake.submit(receipt("locked-plain", None), patience).await,
        Outcome::Stored(_)
    ));
    assert_eq!(
        notes(&store.timeline(&inc).await.unwrap()),
        ["while locked"]
    );
    intact(store.as_ref(), &inc).await;
}

/// A delivery an earlier version stored under its former key (during an upgrade, an old and a
/// new process take requests side by side) is a duplicate: with a note (SQLite's burst, which
/// then falls back to the plain path) and without one.
async fn a_delivery_stored_under_its_former_key_is_a_duplicate(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let store = db.store.as_ref();
    let inc = incident(store, "C_R3").await;
    let t = Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0).unwrap();
    // What the older version stored: the signature alone.
    let old = store
        .record_receipts(&[
            receipt("slack:sig:v0=aa", None),
            receipt("slack:sig:v0=bb", None),
        ])
        .await
        .unwrap();
    assert!(
        old.iter().all(|f| matches!(f, ReceiptFate::Stored(_))),
        "{old:?}"
    );
    let renamed =
        |key: &str, former: &str, note: Option<(&IncidentId, DateTime<Utc>, &str)>| NewReceipt {
            former_key: Some(former.into()),
            ..receipt(key, note)
        };
    let fates = store
        .record_receipts(&[
            renamed(
                "slack:sig:1:v0=aa",
                "slack:sig:v0=aa",
                Some((&inc, t, "replayed")),
            ),
            renamed(
                "slack:sig:1:v0=cc",
                "slack:sig:v0=cc",
                Some((&inc, t, "fresh")),
            ),
            renamed("slack:sig:1:v0=bb", "slack:sig:v0=bb", None),
            renamed("slack:sig:1:v0=dd", "slack:sig:v0=dd", None),
        ])
        .await
        .unwrap();
    assert!(matches!(fates[0], ReceiptFate::Duplicate), "{fates:?}");
    assert!(matches!(fates[1], ReceiptFate::Applied(_)), "{fates:?}");
    assert!(matches!(fates[2], ReceiptFate::Duplicate), "{fates:?}");
    assert!(matches!(fates[3], ReceiptFate::Stored(_)), "{fates:?}");
    assert_eq!(notes(&store.timeline(&inc).await.unwrap()), ["fresh"]);
    // Notes alone (the burst), the replay first.
    let fates = store
        .record_receipts(&[
            renamed(
                "slack:sig:2:v0=aa",
                "slack:sig:v0=aa",
                Some((&inc, t, "again")),
            ),
            renamed(
                "slack:sig:2:v0=ee",
                "slack:sig:v0=ee",
                Some((&inc, t, "later")),
            ),
        ])
        .await
        .unwrap();
    assert!(matches!(fates[0], ReceiptFate::Duplicate), "{fates:?}");
    assert!(matches!(fates[1], ReceiptFate::Applied(_)), "{fates:?}");
    assert_eq!(
        notes(&store.timeline(&inc).await.unwrap()),
        ["fresh", "later"]
    );
    intact(store, &inc).await;
}

/// A burst whose caller stops waiting at any point (the writer task dropped at shutdown, a
/// timeout) is stored whole or not at all, a write made next through the pool is committed (it
/// did not run inside a transaction the burst left open), and the store takes the next burst as
/// usual.
async fn a_burst_given_up_midway_is_all_or_nothing(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let store = db.store.as_ref();
    let other = db.replica().await;
    let inc = incident(store, "C_GIVEN_UP").await;
    let t = Utc::now();
    let mut expected = Vec::new();
    for (round, micros) in [0u64, 50, 200, 500, 1_000, 2_000, 5_000, 20_000]
        .into_iter()
        .enumerate()
    {
        let batch: Vec<NewReceipt> = (0..300)
            .map(|i| {
                let text = format!("r{round}-{i}");
                receipt(&text, Some((&inc, t, text.as_str())))
            })
            .collect();
        let first = tokio::time::timeout(
            std::time::Duration::from_micros(micros),
            store.record_receipts(&batch),
        )
        .await;
        // Past the longest a burst keeps its connection: then another writer has it.
        tokio::time::sleep(std::time::Duration::from_millis(60)).await;
        let marker = format!("marker {round}");
        store
            .append(&inc, vec![draft(t, "note", &marker)])
            .await
            .unwrap();
        assert!(
            notes(&other.timeline(&inc).await.unwrap()).contains(&marker),
            "round {round}: a write after a burst given up after {micros} µs is not committed"
        );
        // The batch again, in full: each receipt was stored by the first attempt or is stored
        // now, and all of them the same way.
        let again = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            store.record_receipts(&batch),
        )
        .await
        .expect("the store takes a burst after one given up")
        .unwrap();
        let duplicates = again
            .iter()
            .filter(|f| matches!(f, ReceiptFate::Duplicate))
            .count();
        assert!(
            duplicates == 0 || duplicates == batch.len(),
            "round {round} (given up after {micros} µs, finished: {}): {duplicates} of {} taken before",
            first.is_ok(),
            batch.len()
        );
        if duplicates == 0 {
            assert!(
                again.iter().all(|f| matches!(f, ReceiptFate::Applied(_))),
                "{again:?}"
            );
        }
        expected.push(marker);
        expected.extend((0..300).map(|i| format!("r{round}-{i}")));
    }
    // Each note once (a batch stored by its first attempt comes before its round's marker).
    let mut stored = notes(&store.timeline(&inc).await.unwrap());
    stored.sort();
    expected.sort();
    assert_eq!(stored, expected);
    intact(store, &inc).await;
}

/// Back-to-back bursts keep the write connection between them, but never from the other
/// writers: a claim and an append made meanwhile go through (within seconds, not at the pool's
/// 30-second timeout), with no pause between the bursts to let them.
async fn other_writes_go_through_between_back_to_back_bursts(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let store = db.store.clone();
    let inc = incident(store.as_ref(), "C_BUSY").await;
    let t = Utc::now();
    let fates = store
        .record_receipts(&[receipt("plain", None)])
        .await
        .unwrap();
    let ReceiptFate::Stored(plain) = fates[0] else {
        panic!("{fates:?}");
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let bursts = {
        let (store, inc, stop) = (store.clone(), inc.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let batch: Vec<NewReceipt> = (0..20)
                    .map(|i| {
                        let text = format!("busy-{n}-{i}");
                        receipt(&text, Some((&inc, t, text.as_str())))
                    })
                    .collect();
                store.record_receipts(&batch).await.unwrap();
                n += 1;
            }
            n
        })
    };
    let others = async {
        assert!(store.claim_receipt(plain, "this-test").await.unwrap());
        store
            .append(&inc, vec![draft(t, "note", "between bursts")])
            .await
            .unwrap();
        store.finish_receipt(plain).await.unwrap();
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), others)
        .await
        .expect("writes between bursts wait for a turn, not for the bursts to stop");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let rounds = bursts.await.unwrap();
    assert!(rounds > 0);
    let tl = store.timeline(&inc).await.unwrap();
    assert_eq!(notes(&tl).len(), rounds * 20 + 1);
    assert!(notes(&tl).contains(&"between bursts".to_string()));
    intact(store.as_ref(), &inc).await;
}

on_both_backends!(
    notes_go_in_with_their_receipts_once,
    one_batch_two_incidents,
    a_delivery_stored_under_its_former_key_is_a_duplicate,
    a_burst_given_up_midway_is_all_or_nothing,
    other_writes_go_through_between_back_to_back_bursts
);
