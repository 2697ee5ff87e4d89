//! Processing stored Slack receipts. Notes, the command people send in bursts, are gathered and
//! recorded in bulk (each exactly once, with its receipt); every other command is claimed (a
//! compare-and-set, so one process takes it) and handled in a task of its own, then marked done.
//! Receipts left behind by a process that died are swept up here too.

use super::Slack;
use super::inbound::Inbound;
use crate::intake::Stored;
use erlmcp_handlers::engine::{NoteFate, NoteItem, Request, as_note};
use erlmcp_handlers::reply::Reply;
use erlmcp_handlers::store::NewReceipt;
use erlmcp_handlers::timeline::Source;
use serde_json::json;
use std::time::Duration;
use tokio::sync::mpsc;

/// Most notes recorded in one transaction.
const NOTE_BATCH: usize = 512;
/// A receipt still new after this long was left behind (its process died or fell far behind).
const LEFT_BEHIND: Duration = Duration::from_secs(5);
/// A receipt claimed this long ago and never finished was interrupted.
const INTERRUPTED: Duration = Duration::from_secs(3600);

/// The slash command line a Slack command stands for.
pub fn command_line(command: &str, text: &str) -> String {
    if command.trim_start_matches('/') == "erlmcp" {
        format!("/erlmcp {text}")
    } else {
        format!("{command} {text}")
    }
}

/// Processes receipts as they are stored, for ever.
pub async fn run(slack: Slack, mut stored: mpsc::UnboundedReceiver<Stored>) {
    let mut batch = Vec::with_capacity(NOTE_BATCH);
    while stored.recv_many(&mut batch, NOTE_BATCH).await > 0 {
        let mut notes = Vec::new();
        for s in batch.drain(..) {
            let inbound = match serde_json::from_str::<Inbound>(&s.receipt.payload) {
                Ok(i) => i,
                Err(e) => {
                    tracing::error!(receipt = s.id, error = %e, "an unreadable receipt is set aside");
                    if slack
                        .engine
                        .store()
                        .claim_receipt(s.id, "unreadable")
                        .await
                        .is_ok()
                    {
                        let _ = slack.engine.store().abandon_receipt(s.id).await;
                    }
                    continue;
                }
            };
            match &inbound {
                Inbound::Command { command, text, .. }
                    if as_note(&command_line(command, text)).is_some() =>
                {
                    notes.push((s, inbound))
                }
                _ => {
                    let slack = slack.clone();
                    tokio::spawn(async move { handle_one(&slack, s.id, inbound).await });
                }
            }
        }
        if !notes.is_empty() {
            record_notes(&slack, notes).await;
        }
    }
}

async fn handle_one(slack: &Slack, id: i64, inbound: Inbound) {
    let store = slack.engine.store();
    match store.claim_receipt(id, &slack.engine_owner()).await {
        Ok(true) => {}
        Ok(false) => return, // another process has it
        Err(e) => {
            tracing::warn!(receipt = id, error = %e, "could not claim a receipt; the sweep will retry");
            return;
        }
    }
    slack.handle(inbound).await;
    if let Err(e) = store.finish_receipt(id).await {
        tracing::warn!(receipt = id, error = %e, "could not mark a receipt done");
    }
}

async fn record_notes(slack: &Slack, notes: Vec<(Stored, Inbound)>) {
    let mut items = Vec::with_capacity(notes.len());
    let mut answer_to = std::collections::HashMap::new();
    for (s, inbound) in notes {
        let Inbound::Command {
            command,
            text,
            user,
            user_name,
            channel,
            response_url,
        } = inbound
        else {
            continue;
        };
        let actor = slack.actor(&user, user_name.as_deref()).await;
        answer_to.insert(s.id, (channel.clone(), user.clone(), response_url));
        items.push(NoteItem {
            receipt: s.id,
            request: Request {
                actor,
                source: Source::Slack,
                channel,
                text: command_line(&command, &text),
            },
            received_at: s.receipt.received_at,
        });
    }
    for (receipt, fate) in slack.engine.record_notes(items).await {
        let reply = match fate {
            NoteFate::Recorded => continue,
            // Refused for good: the receipt is finished, so its author is told once.
            NoteFate::Refused(reply) => {
                if let Err(e) = slack.engine.store().finish_receipt(receipt).await {
                    tracing::warn!(receipt, error = %e, "could not mark a refused note's receipt finished");
                }
                reply
            }
            NoteFate::NotYet(reply) => reply,
        };
        if let Some((channel, user, response_url)) = answer_to.remove(&receipt) {
            slack
                .tell(
                    &channel,
                    &reply,
                    &super::poster::Asker {
                        user: Some(user),
                        response_url,
                    },
                )
                .await;
        }
    }
}

/// Every few seconds: receipts a dead (or far behind) process left new are processed here; those
/// claimed and never finished are set aside and their authors told.
pub async fn sweep(slack: Slack, stored: mpsc::UnboundedSender<Stored>) {
    let mut every = tokio::time::interval(LEFT_BEHIND);
    loop {
        every.tick().await;
        if slack.engine.is_stopping() {
            return;
        }
        let now = chrono::Utc::now();
        let store = slack.engine.store();
        match store
            .unprocessed_receipts(
                now - chrono::Duration::from_std(LEFT_BEHIND).unwrap_or_default(),
                5000,
            )
            .await
        {
            Ok(left) => {
                for r in left {
                    let _ = stored.send(Stored {
                        id: r.id,
                        receipt: NewReceipt {
                            key: String::new(),
                            platform: r.platform,
                            received_at: r.received_at,
                            payload: r.payload,
                            note: None,
                        },
                    });
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not look for receipts left behind"),
        }
        if let Ok(stuck) = store
            .interrupted_receipts(now - chrono::Duration::from_std(INTERRUPTED).unwrap_or_default())
            .await
        {
            for r in stuck {
                let _ = store.abandon_receipt(r.id).await;
                if let Ok(Inbound::Command {
                    command,
                    text,
                    user,
                    channel,
                    response_url,
                    ..
                }) = serde_json::from_str::<Inbound>(&r.payload)
                {
                    let reply = Reply::error(format!(
                        "Your command `{}` of {} UTC was being processed when the bot stopped; it may or may not have taken effect. Check with `/erlmcp status` before you repeat it.",
                        command_line(&command, &text),
                        r.received_at.format("%H:%M:%S")
                    ));
                    slack
                        .tell(
                            &channel,
                            &reply,
                            &super::poster::Asker {
                                user: Some(user),
                                response_url,
                            },
                        )
                        .await;
                }
            }
        }
        let _ = store.prune_receipts(now - chrono::Duration::days(1)).await;
    }
}

/// The answer to a note stored but not yet on the timeline: to its author only.
pub fn note_received() -> serde_json::Value {
    json!({ "response_type": "ephemeral", "text": "📝 Received and stored; it goes on the incident's timeline in a moment (you will be told here if it cannot)." })
}

/// The body of the answer to a note already on the timeline: shown in the channel, without a
/// Web API call.
pub fn note_acknowledgement(incident: &erlmcp_handlers::ids::IncidentId) -> serde_json::Value {
    json!({ "response_type": "in_channel", "text": format!("📝 Noted on {incident}'s timeline.") })
}
