//! Delivering the core's replies to Slack: channel messages, ephemeral answers to the person who
//! asked, approval request cards (Block Kit, remembered so reactions find them), and the card
//! updated in place as its run progresses. Everything the core says is escaped for mrkdwn here,
//! once, so no user text it carries can mention or link.

use super::api::{SlackError, WebApi};
use super::blocks;
use crate::store::chat::ChatStore;
use erlmcp_handlers::ids::RequestId;
use erlmcp_handlers::reply::{Audience, Outbox, Reply, RequestCard};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const PLATFORM: &str = "slack";

/// A request card as last rendered, so progress can be added in place.
#[derive(Clone)]
struct Card {
    card: RequestCard,
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

    /// Posts a message (`text` is mrkdwn the caller escaped); if the bot is not in the channel
    /// yet, joins it and tries again. Returns the message's `ts`.
    pub async fn post(
        &self,
        channel: &str,
        text: &str,
        blocks: Option<&serde_json::Value>,
    ) -> Result<String, SlackError> {
        self.post_in(channel, text, blocks, None).await
    }

    async fn post_in(
        &self,
        channel: &str,
        text: &str,
        blocks: Option<&serde_json::Value>,
        thread: Option<&str>,
    ) -> Result<String, SlackError> {
        let mut params = vec![("channel", channel.to_string()), ("text", text.to_string())];
        if let Some(b) = blocks {
            params.push(("blocks", b.to_string()));
        }
        if let Some(ts) = thread {
            params.push(("thread_ts", ts.to_string()));
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
        let text = blocks::escape(text);
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
                        ("text", text),
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

    async fn post_card(&self, channel: &str, card: &RequestCard) -> Result<(), SlackError> {
        let (card_blocks, plan_cut) = blocks::request_card(card, &[], true);
        let ts = self
            .post(channel, &blocks::card_text(card, true), Some(&card_blocks))
            .await?;
        let request = RequestId::new(&card.request);
        self.cards.lock().unwrap_or_else(|p| p.into_inner()).insert(
            request.clone(),
            Card {
                card: card.clone(),
                progress: Vec::new(),
            },
        );
        let body = serde_json::to_string(card).unwrap_or_default();
        if let Err(e) = self
            .chat
            .remember_message(PLATFORM, channel, &ts, &request, &body)
            .await
        {
            tracing::error!(request = %request, error = %e, "could not remember the request's message; reactions on it will not be recognised");
        }
        if plan_cut
            && let Err(e) = self
                .post_in(
                    channel,
                    &format!("The whole plan of {}", card.request),
                    Some(&blocks::full_plan(card)),
                    Some(&ts),
                )
                .await
        {
            tracing::warn!(request = %request, error = %e, "could not post the whole plan in the card's thread");
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
            if !cards.contains_key(request) {
                // After a restart the card comes back from the database; earlier progress lines do not.
                let Ok(card) = serde_json::from_str::<RequestCard>(&body) else {
                    return Ok(false);
                };
                cards.insert(
                    request.clone(),
                    Card {
                        card,
                        progress: Vec::new(),
                    },
                );
            }
            let card = cards.get_mut(request).expect("inserted above");
            card.progress.push(line.to_string());
            card.clone()
        };
        let (card_blocks, _) = blocks::request_card(&card.card, &card.progress, false);
        self.api
            .call(
                "chat.update",
                &[
                    ("channel", channel),
                    ("ts", ts),
                    (
                        "text",
                        format!(
                            "{}\n{}",
                            blocks::card_text(&card.card, false),
                            blocks::escape(&card.progress.join("\n"))
                        ),
                    ),
                    ("blocks", card_blocks.to_string()),
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
        if let Some(card) = &reply.card {
            return self.post_card(channel, card).await;
        }
        if reply.audience == Audience::Requester {
            return self.ephemeral(channel, asker, &reply.text).await;
        }
        if let Some(request) = &reply.request {
            let updated = self.update_card(request, &reply.text).await?;
            // Step-by-step progress lives on the card; outcomes are also said in the channel.
            let is_step_progress = reply.text.starts_with('▶') || reply.text.starts_with('✔');
            if updated && is_step_progress {
                return Ok(());
            }
        }
        self.post(channel, &blocks::escape(&reply.text), None)
            .await
            .map(|_| ())
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
