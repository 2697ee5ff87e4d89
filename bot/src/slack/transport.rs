//! Slack's side of the chat seam: the Web API calls and Block Kit for what the shared flows
//! ask (`chat::Transport`). Every text the core says is escaped for mrkdwn here, once, so no user
//! text it carries can mention or link.

use super::api::{SlackError, WebApi};
use super::blocks;
use super::workspace::Workspace;
use crate::chat::{Asker, ChatError, Transport, UserHint};
use erlmcp_handlers::approval::{Actor, Platform};
use erlmcp_handlers::reply::RequestCard;
use serde_json::json;
use std::sync::Arc;

impl From<SlackError> for ChatError {
    fn from(e: SlackError) -> Self {
        ChatError(e.to_string())
    }
}

#[derive(Clone)]
pub struct SlackTransport {
    pub api: WebApi,
    pub workspace: Arc<Workspace>,
}

impl SlackTransport {
    /// Posts a message (`text` is mrkdwn the caller escaped); if the bot is not in the channel
    /// yet, joins it and tries again. Returns the message's `ts`.
    async fn post_raw(
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
}

#[async_trait::async_trait]
impl Transport for SlackTransport {
    fn platform(&self) -> Platform {
        Platform::Slack
    }

    fn is_self(&self, user: &str) -> bool {
        user == self.workspace.bot_user
    }

    async fn post(
        &self,
        channel: &str,
        text: &str,
        mention: Option<&str>,
    ) -> Result<String, ChatError> {
        // The declarer is invited to the incident's channel, which Slack tells them of: no
        // mention is needed (and none of the core's text may mention anyone).
        let _ = mention;
        Ok(self
            .post_raw(channel, &blocks::escape(text), None, None)
            .await?)
    }

    async fn post_private(
        &self,
        channel: &str,
        asker: &Asker,
        text: &str,
    ) -> Result<(), ChatError> {
        let text = blocks::escape(text);
        if let Some(url) = &asker.reply_to {
            return Ok(self
                .api
                .respond(
                    url,
                    &json!({ "response_type": "ephemeral", "replace_original": false, "text": text }),
                )
                .await?);
        }
        match &asker.user {
            Some(user) => Ok(self
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
                .map(|_| ())?),
            None => {
                tracing::warn!(
                    channel,
                    "an answer meant for one person had nobody to go to: {text}"
                );
                Ok(())
            }
        }
    }

    async fn post_card(&self, channel: &str, card: &RequestCard) -> Result<String, ChatError> {
        let (card_blocks, plan_cut) = blocks::request_card(card, &[], true);
        let ts = self
            .post_raw(
                channel,
                &blocks::card_text(card, true),
                Some(&card_blocks),
                None,
            )
            .await?;
        if plan_cut
            && let Err(e) = self
                .post_raw(
                    channel,
                    &format!("The whole plan of {}", card.request),
                    Some(&blocks::full_plan(card)),
                    Some(&ts),
                )
                .await
        {
            tracing::warn!(request = %card.request, error = %e, "could not post the whole plan in the card's thread");
        }
        Ok(ts)
    }

    async fn update_card(
        &self,
        channel: &str,
        message: &str,
        card: &RequestCard,
        progress: &[String],
    ) -> Result<(), ChatError> {
        let (card_blocks, _) = blocks::request_card(card, progress, false);
        self.api
            .call(
                "chat.update",
                &[
                    ("channel", channel.to_string()),
                    ("ts", message.to_string()),
                    (
                        "text",
                        format!(
                            "{}\n{}",
                            blocks::card_text(card, false),
                            blocks::escape(&progress.join("\n"))
                        ),
                    ),
                    ("blocks", card_blocks.to_string()),
                ],
            )
            .await?;
        Ok(())
    }

    async fn create_place(
        &self,
        name: &str,
        _topic: &str,
        _origin: Option<&str>,
    ) -> Result<(String, String), ChatError> {
        for attempt in 1..=5 {
            let name = if attempt == 1 {
                name.to_string()
            } else {
                format!("{}-{attempt}", &name[..name.len().min(76)])
            };
            match self
                .api
                .call(
                    "conversations.create",
                    &[("name", name.clone()), ("is_private", "false".into())],
                )
                .await
            {
                Ok(v) => {
                    let id = v["channel"]["id"].as_str().unwrap_or_default().to_string();
                    return Ok((id, format!("#{name}")));
                }
                Err(e) if e.code() == Some("name_taken") => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(SlackError::Api {
            method: "conversations.create".into(),
            code: "name_taken".into(),
        }
        .into())
    }

    async fn invite(&self, channel: &str, user: &str) -> Result<(), ChatError> {
        match self
            .api
            .call(
                "conversations.invite",
                &[
                    ("channel", channel.to_string()),
                    ("users", user.to_string()),
                ],
            )
            .await
        {
            Err(e) if e.code() != Some("already_in_channel") => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn pin(&self, channel: &str, message: &str) -> Result<(), ChatError> {
        self.api
            .call(
                "pins.add",
                &[
                    ("channel", channel.to_string()),
                    ("timestamp", message.to_string()),
                ],
            )
            .await?;
        Ok(())
    }

    /// A top-level message from the channel's history, or a thread reply from its thread.
    async fn fetch_message(
        &self,
        channel: &str,
        ts: &str,
    ) -> Result<Option<(String, String)>, ChatError> {
        let pick = |v: &serde_json::Value| -> Option<(String, String)> {
            v["messages"].as_array()?.iter().find_map(|m| {
                (m["ts"].as_str() == Some(ts)).then(|| {
                    (
                        m["user"].as_str().unwrap_or("").to_string(),
                        m["text"].as_str().unwrap_or("").to_string(),
                    )
                })
            })
        };
        let history = self
            .api
            .call(
                "conversations.history",
                &[
                    ("channel", channel.to_string()),
                    ("latest", ts.to_string()),
                    ("oldest", ts.to_string()),
                    ("inclusive", "true".into()),
                    ("limit", "1".into()),
                ],
            )
            .await?;
        if let Some(found) = pick(&history) {
            return Ok(Some(found));
        }
        // Not a top-level message: a reply in a thread, which the thread itself holds.
        let thread = self
            .api
            .call(
                "conversations.replies",
                &[
                    ("channel", channel.to_string()),
                    ("ts", ts.to_string()),
                    ("inclusive", "true".into()),
                    ("limit", "200".into()),
                ],
            )
            .await;
        match thread {
            Ok(v) => Ok(pick(&v)),
            Err(e) if e.code() == Some("thread_not_found") => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// `users.info`: display name, whether a bot or app, and whether of this workspace.
    async fn who(&self, user: &str, hint: &UserHint) -> Actor {
        match self
            .api
            .call("users.info", &[("user", user.to_string())])
            .await
        {
            Ok(v) => {
                let u = &v["user"];
                let pick = |s: &serde_json::Value| {
                    s.as_str().filter(|s| !s.is_empty()).map(str::to_string)
                };
                let name = pick(&u["profile"]["display_name"])
                    .or_else(|| pick(&u["profile"]["real_name"]))
                    .or_else(|| pick(&u["real_name"]))
                    .or_else(|| pick(&u["name"]))
                    .unwrap_or_else(|| user.to_string());
                let mut actor = Actor::on(Platform::Slack, user, &name);
                actor.is_bot = u["is_bot"].as_bool().unwrap_or(false)
                    || u["is_app_user"].as_bool().unwrap_or(false)
                    || self.is_self(user);
                if let Some(team) = u["team_id"].as_str()
                    && !self.workspace.admits_team(team)
                {
                    // A Slack Connect user from another organisation: not one of ours.
                    actor.unverified = Some(format!(
                        "you belong to workspace {team}, and this bot acts only for {}",
                        self.workspace.team_id
                    ));
                }
                actor
            }
            Err(e) => {
                tracing::warn!(user, error = %e, "users.info failed; the user counts as unverified");
                let mut actor =
                    Actor::on(Platform::Slack, user, hint.name.as_deref().unwrap_or(user));
                actor.is_bot = self.is_self(user);
                actor.unverified = Some(e.to_string());
                actor
            }
        }
    }

    async fn point_to(&self, channel: &str, text: &str, place: &str) -> Result<(), ChatError> {
        let link = if is_slack_id(place) {
            format!(" <#{place}>.")
        } else {
            String::new()
        };
        self.post_raw(
            channel,
            &format!("{}{link}", blocks::escape(text)),
            None,
            None,
        )
        .await?;
        Ok(())
    }
}

/// A Slack user id (`U…`/`W…`): the only thing put inside `<@…>`.
fn is_slack_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}
