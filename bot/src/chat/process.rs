//! Processing stored receipts, whatever platform they came from. Notes, the command people send
//! in bursts, are gathered and recorded in bulk (each exactly once, with its receipt); every other
//! command is claimed (a compare-and-set, so one process takes it) and handled in a task of its
//! own, then marked done. Receipts left behind by a process that died are swept up here too.

use super::inbound::{Inbound, command_line};
use super::{Asker, Chat, Chats};
use crate::intake::Stored;
use erlmcp_handlers::engine::{NoteFate, NoteItem, as_note};
use erlmcp_handlers::reply::Reply;
use erlmcp_handlers::store::NewReceipt;
use std::time::Duration;
use tokio::sync::mpsc;

/// Most notes recorded in one transaction.
const NOTE_BATCH: usize = 512;
/// A receipt still new after this long was left behind (its process died or fell far behind).
const LEFT_BEHIND: Duration = Duration::from_secs(5);
/// How often a process renews its claim on a receipt it is still processing.
const STILL_AT_IT: Duration = Duration::from_secs(10);
/// A receipt whose claim was not renewed for this long was interrupted (its process died):
/// its person is told while the platform still takes answers to the exchange (Discord's
/// interaction token lasts 15 minutes, Slack's response_url 30).
const INTERRUPTED: Duration = Duration::from_secs(45);

/// A task stopped when this is dropped (a panic in the work it guards included).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Processes receipts as they are stored, for ever.
pub async fn run(chats: Chats, mut stored: mpsc::UnboundedReceiver<Stored>) {
    let mut batch = Vec::with_capacity(NOTE_BATCH);
    while stored.recv_many(&mut batch, NOTE_BATCH).await > 0 {
        let mut notes: Vec<(Chat, Stored, Inbound)> = Vec::new();
        for s in batch.drain(..) {
            let Some(chat) = chats.named(&s.receipt.platform).cloned() else {
                // Another replica serves this platform; its own processor or sweep takes it.
                tracing::debug!(receipt = s.id, platform = %s.receipt.platform, "a receipt of a platform not served here");
                continue;
            };
            let inbound = match serde_json::from_str::<Inbound>(&s.receipt.payload) {
                Ok(i) => i,
                Err(e) => {
                    tracing::error!(receipt = s.id, error = %e, "an unreadable receipt is set aside");
                    let store = chat.engine.store();
                    if store.claim_receipt(s.id, "unreadable").await.is_ok() {
                        let _ = store
                            .abandon_receipt(
                                s.id,
                                chrono::Utc::now() + chrono::Duration::seconds(1),
                            )
                            .await;
                    }
                    continue;
                }
            };
            match &inbound {
                Inbound::Command { command, text, .. }
                    if as_note(&command_line(command, text)).is_some() =>
                {
                    notes.push((chat, s, inbound))
                }
                _ => {
                    tokio::spawn(async move { handle_one(&chat, s.id, inbound).await });
                }
            }
        }
        if !notes.is_empty() {
            record_notes(notes).await;
        }
    }
}

async fn handle_one(chat: &Chat, id: i64, inbound: Inbound) {
    let store = chat.engine.store();
    match store.claim_receipt(id, &chat.engine_owner()).await {
        Ok(true) => {}
        Ok(false) => return, // another process has it
        Err(e) => {
            tracing::warn!(receipt = id, error = %e, "could not claim a receipt; the sweep will retry");
            return;
        }
    }
    // A long command (an approval runs the playbook) renews its claim while it works, so only
    // a dead process's claims go stale.
    let owner = chat.engine_owner();
    let renewer = store.clone();
    let _heartbeat = AbortOnDrop(tokio::spawn(async move {
        let mut every = tokio::time::interval(STILL_AT_IT);
        every.tick().await;
        loop {
            every.tick().await;
            if let Err(e) = renewer.renew_receipt(id, &owner).await {
                tracing::warn!(receipt = id, error = %e, "could not renew a receipt's claim");
            }
        }
    }));
    chat.handle(inbound).await;
    if let Err(e) = store.finish_receipt(id).await {
        tracing::warn!(receipt = id, error = %e, "could not mark a receipt done");
    }
}

async fn record_notes(notes: Vec<(Chat, Stored, Inbound)>) {
    let Some(engine) = notes.first().map(|(c, _, _)| c.engine.clone()) else {
        return;
    };
    let mut items = Vec::with_capacity(notes.len());
    let mut answer_to = std::collections::HashMap::new();
    for (chat, s, inbound) in notes {
        let Inbound::Command {
            command,
            text,
            user,
            user_name,
            channel,
            reply_to,
            said,
        } = inbound
        else {
            continue;
        };
        let actor = chat.actor_for(&user, user_name.as_deref(), &said).await;
        let request = chat.request(actor, &channel, command_line(&command, &text));
        answer_to.insert(s.id, (chat, channel, Asker::of(&user, reply_to, &said)));
        items.push(NoteItem {
            receipt: s.id,
            request,
            received_at: s.receipt.received_at,
        });
    }
    for (receipt, fate) in engine.record_notes(items).await {
        let reply = match fate {
            NoteFate::Recorded(incident) => {
                // A deferred exchange still waits for its answer.
                if let Some((chat, channel, asker)) = answer_to.remove(&receipt)
                    && asker.deferred
                {
                    chat.tell(
                        &channel,
                        &Reply::private(format!("📝 Noted on {incident}'s timeline.")),
                        &asker,
                    )
                    .await;
                }
                continue;
            }
            // Refused for good: the receipt is finished, so its author is told once.
            NoteFate::Refused(reply) => {
                if let Err(e) = engine.store().finish_receipt(receipt).await {
                    tracing::warn!(receipt, error = %e, "could not mark a refused note's receipt finished");
                }
                reply
            }
            NoteFate::NotYet(reply) => reply,
        };
        if let Some((chat, channel, asker)) = answer_to.remove(&receipt) {
            chat.tell(&channel, &reply, &asker).await;
        }
    }
}

/// Every few seconds: receipts a dead (or far behind) process left new are processed here; those
/// claimed and never finished are set aside and their authors told.
pub async fn sweep(chats: Chats, stored: mpsc::UnboundedSender<Stored>) {
    let Some(engine) = chats.all().first().map(|c| c.engine.clone()) else {
        return;
    };
    let mut every = tokio::time::interval(LEFT_BEHIND);
    loop {
        every.tick().await;
        if engine.is_stopping() {
            return;
        }
        let now = chrono::Utc::now();
        let store = engine.store();
        match store
            .unprocessed_receipts(
                now - chrono::Duration::from_std(LEFT_BEHIND).unwrap_or_default(),
                5000,
            )
            .await
        {
            Ok(left) => {
                for r in left {
                    if chats.named(&r.platform).is_none() {
                        continue;
                    }
                    let _ = stored.send(Stored {
                        id: r.id,
                        receipt: NewReceipt {
                            key: String::new(),
                            platform: r.platform,
                            received_at: r.received_at,
                            payload: r.payload,
                            former_key: None,
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
                let Some(chat) = chats.named(&r.platform) else {
                    continue;
                };
                // One process tells: the one that marks it.
                let cutoff = now - chrono::Duration::from_std(INTERRUPTED).unwrap_or_default();
                if !matches!(store.abandon_receipt(r.id, cutoff).await, Ok(true)) {
                    continue;
                }
                let at = r.received_at.format("%H:%M:%S");
                let (what, user, channel, reply_to, said) =
                    match serde_json::from_str::<Inbound>(&r.payload) {
                        Ok(Inbound::Command {
                            command,
                            text,
                            user,
                            channel,
                            reply_to,
                            said,
                            ..
                        }) => (
                            format!(
                                "Your command `{}` of {at} UTC",
                                command_line(&command, &text)
                            ),
                            user,
                            channel,
                            reply_to,
                            said,
                        ),
                        Ok(Inbound::Button {
                            approve,
                            request,
                            user,
                            channel,
                            reply_to,
                            said,
                            ..
                        }) => (
                            format!(
                                "Your {} of {request} at {at} UTC",
                                if approve { "approval" } else { "denial" }
                            ),
                            user,
                            channel,
                            reply_to,
                            said,
                        ),
                        Ok(Inbound::AddToTimeline {
                            user,
                            channel,
                            reply_to,
                            said,
                            ..
                        }) => (
                            format!("Your \"Add to timeline\" of {at} UTC"),
                            user,
                            channel,
                            reply_to,
                            said,
                        ),
                        _ => continue,
                    };
                let reply = Reply::error(format!(
                    "{what} was being processed when the bot stopped; it may or may not have taken effect. Check with `/erlmcp status` before you repeat it."
                ));
                chat.tell(&channel, &reply, &Asker::of(&user, reply_to, &said))
                    .await;
            }
        }
        let _ = store.prune_receipts(now - chrono::Duration::days(1)).await;
    }
}
