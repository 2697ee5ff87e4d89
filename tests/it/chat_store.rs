//! The chat adapters' bookkeeping on both backends: each event counts once; messages map to requests.

use erlmcp_bot::store::chat::ChatStore;
use erlmcp_handlers::ids::RequestId;
use erlmcp_tests::{Backend, TestDb, on_both_backends};
use std::sync::Arc;

async fn events_count_once_and_cards_are_found_both_ways(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let chat: Arc<dyn ChatStore> = match (&db.sqlite, &db.postgres) {
        (Some(s), _) => Arc::new(s.clone()),
        (_, Some(p)) => Arc::new(p.clone()),
        _ => unreachable!(),
    };
    assert!(chat.first_delivery("slack", "Ev1").await.unwrap());
    assert!(!chat.first_delivery("slack", "Ev1").await.unwrap());
    assert!(
        chat.first_delivery("discord", "Ev1").await.unwrap(),
        "per platform"
    );
    let req = RequestId::new("REQ-20261128-1");
    chat.remember_message("slack", "C1", "1700000000.000100", &req, "🔐 plan")
        .await
        .unwrap();
    assert_eq!(
        chat.request_for_message("slack", "C1", "1700000000.000100")
            .await
            .unwrap(),
        Some(req.clone())
    );
    assert_eq!(
        chat.request_for_message("slack", "C1", "1700000000.000999")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        chat.message_for_request("slack", &req).await.unwrap(),
        Some((
            "C1".to_string(),
            "1700000000.000100".to_string(),
            "🔐 plan".to_string()
        ))
    );
    // Concurrent first deliveries of one event: exactly one wins.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let c = chat.clone();
        tasks.push(tokio::spawn(async move {
            c.first_delivery("slack", "EvRace").await.unwrap()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
}

on_both_backends!(events_count_once_and_cards_are_found_both_ways);
