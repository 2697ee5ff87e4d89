//! Taking in what a person did: stored as a receipt (by the one writer, `intake`) before the
//! platform gets its answer, so an acknowledged command survives a crash; a note whose author
//! and incident are known goes onto the timeline in the same transaction.

use super::Chat;
use super::inbound::{Inbound, command_line};
use crate::intake::{Intake, Outcome};
use erlmcp_handlers::store::NewReceipt;

/// How long the request path waits for the database before telling the person it is down:
/// Slack and Discord both give up on an answer after 3 seconds.
pub const DATABASE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// What became of an inbound event.
pub enum Taken {
    /// Stored as a receipt: it will be processed, whatever happens to this process now.
    Stored,
    /// A note stored with its receipt: already on this incident's timeline.
    Applied(erlmcp_handlers::ids::IncidentId),
    /// Stored before (a replay of a command or button, or a redelivered event).
    Duplicate,
    /// Nothing for the bot to do (another kind of event or interaction).
    Ignored,
    /// Signed by the platform, but for another workspace or app: refused, with the reason.
    NotOurs(String),
    /// Not recorded (the database refused or is unreachable).
    Failed(String),
    /// No answer in time: it may or may not be recorded.
    Unknown(String),
}

/// The key a receipt is stored under, and the one earlier versions of the bot stored the same
/// delivery under, if it was different.
pub struct ReceiptKeys {
    pub key: String,
    pub former: Option<String>,
}

impl From<String> for ReceiptKeys {
    fn from(key: String) -> Self {
        ReceiptKeys { key, former: None }
    }
}

/// Stores `inbound` as a receipt under `keys` (unique: a replay is a `Duplicate`).
pub async fn take(
    chat: &Chat,
    intake: &Intake,
    inbound: Inbound,
    keys: impl Into<ReceiptKeys>,
) -> Taken {
    let ReceiptKeys { key, former } = keys.into();
    let payload = match serde_json::to_string(&inbound) {
        Ok(p) => p,
        Err(e) => return Taken::Failed(e.to_string()),
    };
    let received_at = chrono::Utc::now();
    let note = ready_note(chat, &inbound, received_at).await;
    let receipt = NewReceipt {
        key,
        platform: chat.platform_name().to_string(),
        received_at,
        payload,
        note,
        former_key: former,
    };
    match intake.submit(receipt, DATABASE_PATIENCE).await {
        Outcome::Stored(_) => Taken::Stored,
        Outcome::Applied(incident) => Taken::Applied(incident),
        Outcome::Duplicate => Taken::Duplicate,
        Outcome::Failed(e) => {
            tracing::error!(error = %e, "a request could not be recorded");
            Taken::Failed(e)
        }
        Outcome::Unknown(e) => {
            tracing::error!(error = %e, "a request may not have been recorded");
            Taken::Unknown(e)
        }
    }
}

/// A note whose author the platform has already vouched for (no lookup while the platform waits
/// for the answer) and whose incident is known goes onto the timeline with its receipt, in the
/// same transaction; any other command is processed from its receipt afterwards. (A person's
/// first note is processed afterwards, so it may land a moment after a second one sent at once;
/// each keeps the time it was received.)
async fn ready_note(
    chat: &Chat,
    inbound: &Inbound,
    received_at: chrono::DateTime<chrono::Utc>,
) -> Option<erlmcp_handlers::store::ReadyNote> {
    let Inbound::Command {
        command,
        text,
        user,
        user_name,
        channel,
        said,
        ..
    } = inbound
    else {
        return None;
    };
    let actor = chat
        .actor_from_event(user, user_name.as_deref(), said)
        .or_else(|| chat.known_actor(user))?;
    let request = chat.request(actor, channel, command_line(command, text));
    chat.engine.ready_note(&request, received_at).await
}

/// What the person is told when the database could not record their request.
pub fn database_down_text(why: &str) -> String {
    format!(
        "⚠ erlmcp-bot cannot reach its database ({why}). Nothing was recorded and nothing was changed. Try again in a moment; if it persists, run `erlmcp-bot console` against the standby database (`DATABASE_URL=...`)."
    )
}

/// What the person is told when their request may or may not have been recorded.
pub fn database_slow_text(why: &str) -> String {
    format!(
        "⚠ erlmcp-bot's database did not answer in time ({why}). Your command may or may not have been recorded: check with `/erlmcp status` before you repeat it."
    )
}
