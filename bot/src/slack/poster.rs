//! Delivering the core's replies to Slack: channel messages, ephemeral answers to the person who
//! asked, approval request cards (Block Kit, remembered so reactions find them), and the card
//! updated in place as its run progresses.

use super::api::{SlackError, WebApi};
use super::blocks;
use crate::store::chat::ChatStore;
use erlmcp_handlers::ids::RequestId;
use erlmcp_handlers::reply::{Audience, Outbox, Reply};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const PLATFORM: &str = "slack";

/// A request card as last rendered, so progress can be appended in place.
#[derive(Clone, Default)]
struct Card {
    text: String,
    progress: Vec<String>,
}

#[derive(Clone)]
pub struct Poster {
    pub api: WebApi,
    pub chat: Arc<dyn ChatStore>,
    cards: Arc<Mutex<HashMap<RequestId, Card>>>,
}

/// Who asked, for answers only they should see.
#[derive(Clone, Default)]
pub struct Asker {
    pub user: Option<String>,
    pub response_url: Option<String>,
}

impl Poster {
    pub fn new(api: WebApi, chat: Arc<dyn ChatStore>) -> Self {
        Self {
            api,
            chat,
            cards: Arc::default(),
        }
    }

    /// Posts a message; if the bot is not in the channel yet, joins it and tries again.
    pub async fn post(
        &self,
        channel: &str,
        text: &str,
        blocks: Option<&serde_json::Value>,
    ) -> Result<String, SlackError> {
        let mut params = vec![("channel", channel.to_string()), ("text", text.to_string())];
        if let Some(b) = blocks {
            params.push(("blocks", b.to_string()));
        }
        let answer = match self.api.call("chat.postMessage", &params).await {
            Err(e) if e.code() == Some("not_in_channel") => {
                self.api
                    .call("conversations.join", &[("channel", channel.to_string())])
                    .await?;
                self.api.call("chat.postMessage", &params).await?
            }
            other => other?,
        };
        Ok(answer["ts"].as_str().unwrap_or_default().to_string())
    }

    async fn ephemeral(&self, channel: &str, asker: &Asker, text: &str) -> Result<(), SlackError> {
        if let Some(url) = &asker.response_url {
            return self.api.respond(url, &json!({ "response_type": "ephemeral", "replace_original": false, "text": text })).await;
        }
        match &asker.user {
            Some(user) => self
                .api
                .call(
                    "chat.postEphemeral",
                    &[
                        ("channel", channel.to_string()),
                        ("user", user.clone()),
                        ("text", text.to_string()),
                    ],
                )
                .await
                .map(|_| ()),
            None => {
                tracing::warn!(
                    channel,
                    "an answer meant for one person had nobody to go to: {text}"
                );
                Ok(())
            }
        }
    }

    async fn post_card(
        &self,
        channel: &str,
        request: &RequestId,
        text: &str,
    ) -> Result<(), SlackError> {
        let ts = self
            .post(
                channel,
                text,
                Some(&blocks::request_card(request.as_str(), text, &[], true)),
            )
            .await?;
        self.cards.lock().unwrap_or_else(|p| p.into_inner()).insert(
            request.clone(),
            Card {
                text: text.to_string(),
                progress: Vec::new(),
            },
        );
        if let Err(e) = self
            .chat
            .remember_message(PLATFORM, channel, &ts, request, text)
            .await
        {
            tracing::error!(request = %request, error = %e, "could not remember the request's message; reactions on it will not be recognised");
        }
        Ok(())
    }

    /// Adds a line to a request's card and updates it in place. `false` if there is no card.
    async fn update_card(&self, request: &RequestId, line: &str) -> Result<bool, SlackError> {
        let Ok(Some((channel, ts, body))) = self.chat.message_for_request(PLATFORM, request).await
        else {
            return Ok(false);
        };
        let card = {
            let mut cards = self.cards.lock().unwrap_or_else(|p| p.into_inner());
            // After a restart the card's text comes back from the database; earlier progress lines do not.
            let card = cards.entry(request.clone()).or_insert_with(|| Card {
                text: body,
                progress: Vec::new(),
            });
            card.progress.push(line.to_string());
            card.clone()
        };
        let blocks = blocks::request_card(request.as_str(), &card.text, &card.progress, false);
        self.api
            .call(
                "chat.update",
                &[
                    ("channel", channel),
                    ("ts", ts),
                    (
                        "text",
                        format!("{}\n{}", card.text, card.progress.join("\n")),
                    ),
                    ("blocks", blocks.to_string()),
                ],
            )
            .await?;
        Ok(true)
    }

    /// Delivers one reply of the core, for a command said in `channel`.
    pub async fn deliver(
        &self,
        channel: &str,
        reply: &Reply,
        asker: &Asker,
    ) -> Result<(), SlackError> {
        if reply.audience == Audience::Requester && !reply.is_request_card {
            return self.ephemeral(channel, asker, &reply.text).await;
        }
        if let Some(request) = &reply.request {
            if reply.is_request_card {
                return self.post_card(channel, request, &reply.text).await;
            }
            let updated = self.update_card(request, &reply.text).await?;
            // Step-by-step progress lives on the card; outcomes are also said in the channel.
            let is_step_progress = reply.text.starts_with('▶') || reply.text.starts_with('✔');
            if updated && is_step_progress {
                return Ok(());
            }
        }
        self.post(channel, &reply.text, None).await.map(|_| ())
    }
}

/// The engine's outbox on Slack: progress and notices go to the channel, or onto the request's card.
pub struct SlackOutbox(pub Poster);

#[async_trait::async_trait]
impl Outbox for SlackOutbox {
    async fn post(&self, channel: &str, reply: Reply) {
        if let Err(e) = self.0.deliver(channel, &reply, &Asker::default()).await {
            // The timeline already has it; Slack being down must not stop the run.
            tracing::error!(channel, error = %e, "could not post to Slack");
        }
    }
}
