//! The chat seam Slack and Discord share. `Chat` (adapter.rs) owns the flows once — delivering
//! replies with a fallback, opening an incident's channel, request cards updated in place, what
//! a reaction means, the pin flow — over a small `Transport` each platform implements with its
//! wire formats. `Chats` holds the platforms `serve` runs and routes the engine's messages to the
//! platform a (qualified) channel id names. Receipts of every platform are processed here.

pub mod adapter;
pub mod inbound;
pub mod process;
pub mod receive;
pub mod transport;

pub use adapter::Chat;
pub use inbound::Inbound;
pub use transport::{Asker, ChatError, Transport, UserHint};

use erlmcp_handlers::approval::Platform;
use erlmcp_handlers::ids::chat::split;
use erlmcp_handlers::reply::{Outbox, Reply};
use std::sync::{Arc, OnceLock};

/// The platforms this process serves.
#[derive(Clone, Default)]
pub struct Chats {
    chats: Vec<Chat>,
}

impl Chats {
    pub fn new(chats: Vec<Chat>) -> Self {
        Self { chats }
    }

    pub fn on(&self, platform: Platform) -> Option<&Chat> {
        self.chats.iter().find(|c| c.platform() == platform)
    }

    /// The chat a receipt's platform name names.
    pub fn named(&self, platform: &str) -> Option<&Chat> {
        Platform::parse(platform).and_then(|p| self.on(p))
    }

    pub fn all(&self) -> &[Chat] {
        &self.chats
    }

    /// The chat a qualified channel belongs to, and the platform's own id of it. A bare id is
    /// Slack's (configuration written before ids were qualified).
    pub fn for_channel<'a>(&self, channel: &'a str) -> Option<(&Chat, &'a str)> {
        match split(channel) {
            Some((p, local)) => self.on(p).map(|c| (c, local)),
            None if channel == "console" || channel == "alertmanager" => None,
            None => self.on(Platform::Slack).map(|c| (c, channel)),
        }
    }

    /// What alerts did, each said on the platform of its announce channel (or, without one,
    /// the first platform served).
    pub async fn deliver_alerts(&self, outcomes: Vec<erlmcp_handlers::engine::AlertOutcome>) {
        for o in outcomes {
            let announce = o.announce.clone();
            if let Some((chat, own)) = self.announcing(announce.as_deref()) {
                chat.deliver_alert(o, own).await;
            }
        }
    }

    pub async fn announce_missed_alert_incidents(&self, announce: Option<&str>) {
        if let Some((chat, own)) = self.announcing(announce) {
            chat.announce_missed_alert_incidents(own).await;
        }
    }

    /// The platform alert incidents are announced on (the announce channel's, else the first
    /// served) and the announce channel's own id there, if any.
    fn announcing<'a>(&self, announce: Option<&'a str>) -> Option<(&Chat, Option<&'a str>)> {
        match announce.and_then(|a| self.for_channel(a)) {
            Some((c, own)) => Some((c, Some(own))),
            None => self.chats.first().map(|c| (c, None)),
        }
    }
}

/// The engine's outbox: progress and notices go to the platform the channel belongs to (onto
/// the request's card where there is one). Filled once the chats exist (they need the engine,
/// which needs the outbox).
#[derive(Clone, Default)]
pub struct ChatOutbox(pub Arc<OnceLock<Chats>>);

#[async_trait::async_trait]
impl Outbox for ChatOutbox {
    async fn post(&self, channel: &str, reply: Reply) {
        let Some(chats) = self.0.get() else {
            tracing::warn!(
                channel,
                "a message before chat was ready: dropped (it is on the timeline)"
            );
            return;
        };
        let Some((chat, own)) = chats.for_channel(channel) else {
            // The console, or a platform this process does not serve: the timeline has it.
            tracing::debug!(channel, "no chat serves this channel");
            return;
        };
        if let Err(e) = chat.deliver(own, &reply, &Asker::nobody()).await {
            // The timeline already has it; a chat outage must not stop the run.
            tracing::error!(channel, error = %e, "could not post to chat");
        }
    }
}
