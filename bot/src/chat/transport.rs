//! The small set of things a chat platform must do for the shared flows (`Chat`): each platform
//! implements it with its own wire formats (Slack: Web API and Block Kit; Discord: REST and
//! components). Ids are the platform's own, never qualified; text is the core's plain text,
//! which the transport escapes so nothing in it mentions, links or formats as markup.

use erlmcp_handlers::approval::{Actor, Platform};
use erlmcp_handlers::reply::RequestCard;

/// A platform refused or could not be reached; the text is the platform's own words.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ChatError(pub String);

/// Who to answer privately, and how: the person, and the platform's handle for answers to this
/// one exchange (Slack's `response_url`, Discord's interaction token).
#[derive(Clone, Debug, Default)]
pub struct Asker {
    pub user: Option<String>,
    pub reply_to: Option<String>,
    /// The platform is waiting for this exchange to be completed (a deferred interaction).
    pub deferred: bool,
}

impl Asker {
    /// The person behind an inbound event, answered through `reply_to`.
    pub fn of(user: &str, reply_to: Option<String>, said: &super::inbound::Said) -> Self {
        Self {
            user: Some(user.to_string()),
            reply_to,
            deferred: said.deferred,
        }
    }

    /// Nobody in particular (progress, notices).
    pub fn nobody() -> Self {
        Self::default()
    }
}

/// What the platform said about a user with the event itself, so no lookup is needed.
#[derive(Clone, Debug, Default)]
pub struct UserHint {
    pub name: Option<String>,
    pub is_bot: Option<bool>,
    pub roles: Vec<String>,
}

#[async_trait::async_trait]
pub trait Transport: Send + Sync {
    fn platform(&self) -> Platform;

    /// Whether `user` is this bot itself (its own reactions and messages are ignored).
    fn is_self(&self, user: &str) -> bool;

    /// Posts `text` in `channel`, mentioning `mention` (a user id) if given; the message's id.
    async fn post(
        &self,
        channel: &str,
        text: &str,
        mention: Option<&str>,
    ) -> Result<String, ChatError>;

    /// Says `text` to the asker only (or, where the platform cannot, to them by name).
    async fn post_private(&self, channel: &str, asker: &Asker, text: &str)
    -> Result<(), ChatError>;

    /// Posts a request's card with Approve/Deny; the message's id.
    async fn post_card(&self, channel: &str, card: &RequestCard) -> Result<String, ChatError>;

    /// Shows the card again with its progress lines (in place).
    async fn update_card(
        &self,
        channel: &str,
        message: &str,
        card: &RequestCard,
        progress: &[String],
    ) -> Result<(), ChatError>;

    /// Creates the incident's own place, named `name` (a channel, or a thread in `origin`),
    /// about `topic`; its id and how people see it named.
    async fn create_place(
        &self,
        name: &str,
        topic: &str,
        origin: Option<&str>,
    ) -> Result<(String, String), ChatError>;

    /// Brings a person into the incident's place (a no-op where everyone sees it already).
    async fn invite(&self, channel: &str, user: &str) -> Result<(), ChatError>;

    async fn pin(&self, channel: &str, message: &str) -> Result<(), ChatError>;

    /// The author's id and the text of a message, if the platform has it.
    async fn fetch_message(
        &self,
        channel: &str,
        message: &str,
    ) -> Result<Option<(String, String)>, ChatError>;

    /// Who a user is. When the platform cannot say, the actor is marked unverified (nothing
    /// privileged counts for them); never an error.
    async fn who(&self, user: &str, hint: &UserHint) -> Actor;

    /// Posts `text` followed by a link to the channel `place` (in `channel`).
    async fn point_to(&self, channel: &str, text: &str, place: &str) -> Result<(), ChatError>;

    /// Completes the exchange the platform is waiting on (a deferred interaction), after every
    /// answer was given. `said_privately`: whether the person already got an answer of their own.
    async fn finish(&self, _asker: &Asker, _said_privately: bool) {}
}
