//! Discord's side of the chat seam: REST calls for what the shared flows ask. Messages are sent
//! with `allowed_mentions` naming at most the one person meant, answers to one person go through
//! the interaction's webhook as ephemeral messages, and request cards carry Approve/Deny buttons.

use super::Connection;
use super::Places;
use super::text::{MESSAGE_LIMIT, code_block, escape, flat, messages};
use crate::chat::{Asker, ChatError, Transport, UserHint};
use erlmcp_handlers::approval::{Actor, Platform};
use erlmcp_handlers::reply::RequestCard;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// The custom id of a card's buttons: `erlmcp:approve:REQ-…` / `erlmcp:deny:REQ-…`.
pub const APPROVE_PREFIX: &str = "erlmcp:approve:";
pub const DENY_PREFIX: &str = "erlmcp:deny:";

/// Message flags: seen by the asker only; no link previews (a URL in a title or note must not
/// unfold into someone's page inside the incident channel).
const EPHEMERAL: u64 = 1 << 6;
const SUPPRESS_EMBEDS: u64 = 1 << 2;

pub struct DiscordTransport {
    connection: Arc<Connection>,
    /// Interaction tokens whose deferred answer has been given its text already.
    answered: Mutex<HashSet<String>>,
}

impl DiscordTransport {
    /// Says `text` through an interaction's webhook, as ephemeral messages; the first answer to
    /// a deferred interaction replaces its "thinking…".
    async fn answer_through(
        &self,
        token: &str,
        deferred: bool,
        text: &str,
    ) -> Result<(), ChatError> {
        if !is_token(token) {
            return Err(ChatError("not an interaction token".into()));
        }
        let first = deferred
            && self
                .answered
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(token.to_string());
        for (i, part) in messages(text).into_iter().enumerate() {
            let body = json!({ "content": part, "flags": EPHEMERAL | SUPPRESS_EMBEDS, "allowed_mentions": { "parse": [] } });
            if first && i == 0 {
                self.call(
                    Method::PATCH,
                    "PATCH /webhooks/{app}/{token}/messages/@original",
                    &format!("/webhooks/{}/{token}/messages/@original", self.app()),
                    Some(&body),
                )
                .await?;
            } else {
                self.call(
                    Method::POST,
                    "POST /webhooks/{app}/{token}",
                    &format!("/webhooks/{}/{token}", self.app()),
                    Some(&body),
                )
                .await?;
            }
        }
        Ok(())
    }

    pub fn new(connection: Arc<Connection>) -> Self {
        Self {
            connection,
            answered: Mutex::default(),
        }
    }

    fn app(&self) -> u64 {
        self.connection.config.application_id
    }

    async fn call(
        &self,
        method: Method,
        route: &'static str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ChatError> {
        Ok(self.connection.rest.call(method, route, path, body).await?)
    }

    /// Posts `content` (already escaped) in pieces; the first message's id.
    async fn post_content(
        &self,
        channel: &str,
        parts: Vec<String>,
        mention: Option<&str>,
        components: Option<Value>,
    ) -> Result<String, ChatError> {
        checked(channel)?;
        let mut first = None;
        let last = parts.len().saturating_sub(1);
        for (i, part) in parts.into_iter().enumerate() {
            let mut body = json!({
                "content": part,
                "allowed_mentions": { "parse": [], "users": mention.into_iter().collect::<Vec<_>>() },
                "flags": SUPPRESS_EMBEDS,
            });
            if i == last
                && let Some(c) = &components
            {
                body["components"] = c.clone();
            }
            let m = self
                .call(
                    Method::POST,
                    "POST /channels/{channel}/messages",
                    &format!("/channels/{channel}/messages"),
                    Some(&body),
                )
                .await?;
            if first.is_none() {
                first = m["id"].as_str().map(str::to_string);
            }
        }
        Ok(first.unwrap_or_default())
    }

    /// A card within one message: the header (who asked for what) and the digest, policy and
    /// expiry always; the plan cut to what room is left; the latest progress lines, a step's
    /// "▶ started" line giving way to its outcome.
    fn card_content(card: &RequestCard, progress: &[String], pending: bool) -> String {
        let command: String = flat(&card.command).chars().take(150).collect();
        let header = format!(
            "{}**{}** on {}: `{command}` by {}",
            if pending {
                "🔐 Approval needed: "
            } else {
                ""
            },
            card.request,
            card.incident,
            escape(&card.requester),
        );
        let mut footer = format!(
            "Plan digest `{}` · {} · expires {}",
            card.digest,
            escape(&card.policy),
            card.expires
        );
        if pending {
            footer.push_str("\nApprove with the button or ✅, deny with the button or ❌. The requester cannot approve.");
        }
        // Progress: a step's start is replaced by what came of it.
        let mut lines: Vec<String> = Vec::new();
        for p in progress {
            if lines.last().is_some_and(|l| l.starts_with('▶')) && !p.starts_with('▶') {
                lines.pop();
            }
            lines.push(escape(p));
        }
        let count = |s: &str| s.chars().count();
        let budget = MESSAGE_LIMIT - 20;
        let fixed = count(&header) + count(&footer) + 4;
        // At most half the message for progress, the latest lines first.
        let mut shown_progress: Vec<String> = Vec::new();
        let mut used = 0;
        for l in lines.iter().rev() {
            let n = count(l) + 1;
            if used + n > (budget - fixed) / 2 {
                break;
            }
            used += n;
            shown_progress.push(l.clone());
        }
        shown_progress.reverse();
        let dropped = lines.len() - shown_progress.len();
        if dropped > 0 {
            shown_progress.insert(0, format!("… {dropped} earlier progress line(s)"));
            used += 40;
        }
        let room = budget.saturating_sub(fixed + used + 60);
        // The block can be longer than the plan (a ``` inside is broken up): cut until it fits.
        let mut take = room;
        let (plan, block) = loop {
            let plan: String = card.plan.chars().take(take).collect();
            let block = code_block(&plan);
            let over = count(&block).saturating_sub(room);
            if over == 0 || take == 0 {
                break (plan, block);
            }
            take = take.saturating_sub(over);
        };
        let mut s = header;
        s.push('\n');
        s.push_str(&block);
        if count(&plan) < count(&card.plan) {
            s.push_str("\n(plan cut here for Discord: `/erlmcp status` shows it whole)");
        }
        s.push('\n');
        s.push_str(&footer);
        for l in shown_progress {
            s.push('\n');
            s.push_str(&l);
        }
        s
    }

    fn buttons(card: &RequestCard) -> Value {
        json!([{ "type": 1, "components": [
            { "type": 2, "style": 3, "label": "Approve", "custom_id": format!("{APPROVE_PREFIX}{}", card.request) },
            { "type": 2, "style": 4, "label": "Deny", "custom_id": format!("{DENY_PREFIX}{}", card.request) }
        ]}])
    }

    fn actor_of_member(&self, user: &str, member: &Value) -> Actor {
        let u = &member["user"];
        let pick = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
        let name = pick(&member["nick"])
            .or_else(|| pick(&u["global_name"]))
            .or_else(|| pick(&u["username"]))
            .unwrap_or_else(|| user.to_string());
        let mut a = Actor::on(Platform::Discord, user, &name);
        a.is_bot = u["bot"].as_bool().unwrap_or(false) || self.is_self(user);
        a.roles = member["roles"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        a
    }
}

#[async_trait::async_trait]
impl Transport for DiscordTransport {
    fn platform(&self) -> Platform {
        Platform::Discord
    }

    fn is_self(&self, user: &str) -> bool {
        user == self.connection.bot_user
    }

    async fn post(
        &self,
        channel: &str,
        text: &str,
        mention: Option<&str>,
    ) -> Result<String, ChatError> {
        let mention = mention.filter(|u| is_snowflake(u));
        let mut parts = messages(text);
        if let (Some(user), Some(first)) = (mention, parts.first_mut()) {
            *first = format!("<@{user}> {first}");
        }
        self.post_content(channel, parts, mention, None).await
    }

    async fn post_private(
        &self,
        channel: &str,
        asker: &Asker,
        text: &str,
    ) -> Result<(), ChatError> {
        let Some(token) = asker.reply_to.as_deref() else {
            // No interaction to answer through (a reaction): to them by mention, in the channel.
            return match asker.user.as_deref().filter(|u| is_snowflake(u)) {
                Some(user) => self.post(channel, text, Some(user)).await.map(|_| ()),
                None => {
                    tracing::warn!(
                        channel,
                        "an answer meant for one person had nobody to go to"
                    );
                    Ok(())
                }
            };
        };
        let sent = self.answer_through(token, asker.deferred, text).await;
        match (sent, asker.user.as_deref().filter(|u| is_snowflake(u))) {
            (Ok(()), _) => Ok(()),
            // The interaction's webhook is gone (answered after its 15 minutes, say): in the
            // channel, to them by mention, rather than not at all.
            (Err(e), Some(user)) => {
                tracing::warn!(error = %e, "an interaction's follow-up failed; answering in the channel");
                self.post(channel, text, Some(user)).await.map(|_| ())
            }
            (Err(e), None) => Err(e),
        }
    }

    async fn post_card(&self, channel: &str, card: &RequestCard) -> Result<String, ChatError> {
        self.post_content(
            channel,
            vec![Self::card_content(card, &[], true)],
            None,
            Some(Self::buttons(card)),
        )
        .await
    }

    async fn update_card(
        &self,
        channel: &str,
        message: &str,
        card: &RequestCard,
        progress: &[String],
    ) -> Result<(), ChatError> {
        checked(channel)?;
        checked(message)?;
        let content = Self::card_content(card, progress, false);
        // Decided: the buttons go.
        let body =
            json!({ "content": content, "components": [], "allowed_mentions": { "parse": [] } });
        self.call(
            Method::PATCH,
            "PATCH /channels/{channel}/messages/{message}",
            &format!("/channels/{channel}/messages/{message}"),
            Some(&body),
        )
        .await
        .map(|_| ())
    }

    async fn create_place(
        &self,
        name: &str,
        topic: &str,
        origin: Option<&str>,
    ) -> Result<(String, String), ChatError> {
        let c = &self.connection.config;
        let created = match (c.places, origin.filter(|o| is_snowflake(o))) {
            (Places::Thread, Some(origin)) => {
                self.call(
                    Method::POST,
                    "POST /channels/{channel}/threads",
                    &format!("/channels/{origin}/threads"),
                    Some(&json!({ "name": name, "type": 11, "auto_archive_duration": 10080 })),
                )
                .await?
            }
            _ => {
                let mut body = json!({ "name": name, "type": 0, "topic": flat(topic).chars().take(1024).collect::<String>() });
                if let Some(parent) = c.category_id {
                    body["parent_id"] = json!(parent.to_string());
                }
                self.call(
                    Method::POST,
                    "POST /guilds/{guild}/channels",
                    &format!("/guilds/{}/channels", c.guild_id),
                    Some(&body),
                )
                .await?
            }
        };
        let id = created["id"].as_str().unwrap_or_default().to_string();
        if id.is_empty() {
            return Err(ChatError(
                "Discord created the channel but gave no id".into(),
            ));
        }
        let shown = created["name"].as_str().unwrap_or(name);
        Ok((id, format!("#{shown}")))
    }

    async fn invite(&self, channel: &str, user: &str) -> Result<(), ChatError> {
        // Guild members see a new text channel already; a thread needs them added.
        if self.connection.config.places != Places::Thread || !is_snowflake(user) {
            return Ok(());
        }
        checked(channel)?;
        self.call(
            Method::PUT,
            "PUT /channels/{channel}/thread-members/{user}",
            &format!("/channels/{channel}/thread-members/{user}"),
            None,
        )
        .await
        .map(|_| ())
    }

    async fn pin(&self, channel: &str, message: &str) -> Result<(), ChatError> {
        checked(channel)?;
        checked(message)?;
        self.call(
            Method::PUT,
            "PUT /channels/{channel}/messages/pins/{message}",
            &format!("/channels/{channel}/messages/pins/{message}"),
            None,
        )
        .await
        .map(|_| ())
    }

    async fn fetch_message(
        &self,
        channel: &str,
        message: &str,
    ) -> Result<Option<(String, String)>, ChatError> {
        checked(channel)?;
        checked(message)?;
        match self
            .connection
            .rest
            .call(
                Method::GET,
                "GET /channels/{channel}/messages/{message}",
                &format!("/channels/{channel}/messages/{message}"),
                None,
            )
            .await
        {
            Ok(m) => {
                let author = m["author"]["id"].as_str().unwrap_or_default().to_string();
                let content = m["content"].as_str().unwrap_or_default().to_string();
                if content.is_empty() && !self.is_self(&author) {
                    return Err(ChatError(
                        "Discord gave the bot no text for that message (the Message Content intent is off); use the message's Apps → Add to timeline instead".into(),
                    ));
                }
                Ok(Some((author, content)))
            }
            // Unknown Message.
            Err(e) if e.code() == Some(10008) || e.status() == Some(404) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn who(&self, user: &str, hint: &UserHint) -> Actor {
        if let Some(is_bot) = hint.is_bot {
            let mut a = Actor::on(
                Platform::Discord,
                user,
                hint.name.as_deref().unwrap_or(user),
            );
            a.is_bot = is_bot || self.is_self(user);
            a.roles = hint.roles.clone();
            return a;
        }
        let guild = self.connection.config.guild_id;
        if !is_snowflake(user) {
            let mut a = Actor::on(
                Platform::Discord,
                user,
                hint.name.as_deref().unwrap_or(user),
            );
            a.unverified = Some("not a Discord user id".into());
            return a;
        }
        match self
            .connection
            .rest
            .call(
                Method::GET,
                "GET /guilds/{guild}/members/{user}",
                &format!("/guilds/{guild}/members/{user}"),
                None,
            )
            .await
        {
            Ok(member) => self.actor_of_member(user, &member),
            Err(e) => {
                tracing::warn!(user, error = %e, "a Discord member lookup failed; the user counts as unverified");
                let mut a = Actor::on(
                    Platform::Discord,
                    user,
                    hint.name.as_deref().unwrap_or(user),
                );
                a.is_bot = self.is_self(user);
                a.unverified = Some(e.to_string());
                a
            }
        }
    }

    async fn point_to(&self, channel: &str, text: &str, place: &str) -> Result<(), ChatError> {
        let link = if is_snowflake(place) {
            format!(" <#{place}>.")
        } else {
            String::new()
        };
        let mut parts = messages(text);
        if let Some(last) = parts.last_mut() {
            last.push_str(&link);
        }
        self.post_content(channel, parts, None, None)
            .await
            .map(|_| ())
    }

    async fn finish(&self, asker: &Asker, _said_privately: bool) {
        let (true, Some(token)) = (
            asker.deferred,
            asker.reply_to.as_deref().filter(|t| is_token(t)),
        ) else {
            return;
        };
        let answered = self
            .answered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(token);
        if !answered {
            // Everything was said in the channel: the "thinking…" answer says so.
            let body = json!({ "content": "✔ Done (answered in the channel).", "flags": EPHEMERAL, "allowed_mentions": { "parse": [] } });
            if let Err(e) = self
                .call(
                    Method::PATCH,
                    "PATCH /webhooks/{app}/{token}/messages/@original",
                    &format!("/webhooks/{}/{token}/messages/@original", self.app()),
                    Some(&body),
                )
                .await
            {
                tracing::warn!(error = %e, "could not complete a deferred Discord answer");
            }
        }
    }
}

/// An interaction token: what goes into a webhook path.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 512
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// A Discord id: digits only (what goes inside `<@…>` and into a path).
pub fn is_snowflake(s: &str) -> bool {
    !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())
}

/// An id that goes into a REST path must be a snowflake.
fn checked(id: &str) -> Result<&str, ChatError> {
    if is_snowflake(id) {
        Ok(id)
    } else {
        Err(ChatError(format!(
            "`{}` is not a Discord id",
            id.chars().take(40).collect::<String>()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(plan: &str) -> RequestCard {
        RequestCard {
            request: "REQ-20261129-1".into(),
            incident: "INC-20261129-1".into(),
            command: "/failover us-west-2 `x` <@1>".into(),
            requester: "alice (discord:1)".into(),
            plan: plan.into(),
            digest: "d".repeat(64),
            policy: "needs 1 approval".into(),
            expires: "2026-11-29 15:00:00 UTC".into(),
        }
    }

    #[test]
    fn a_card_keeps_its_header_and_digest_and_fits_one_message() {
        let plan = (1..=40)
            .map(|i| format!("{i}. a step with a long description of what it changes ```"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut progress = Vec::new();
        for i in 1..=30 {
            progress.push(format!(
                "▶ RUN-1 step {i}/30 started: something long enough to matter"
            ));
            progress.push(format!(
                "✔ RUN-1 step {i}/30 done in 0s: something long enough to matter"
            ));
        }
        for (p, pending) in [(&progress[..0], true), (&progress[..], false)] {
            let c = DiscordTransport::card_content(&card(&plan), p, pending);
            assert!(c.chars().count() <= MESSAGE_LIMIT, "{}", c.chars().count());
            assert!(
                c.starts_with(if pending {
                    "🔐 Approval needed: **REQ-"
                } else {
                    "**REQ-"
                }),
                "{c}"
            );
            assert!(c.contains(&"d".repeat(64)), "the digest is always there");
            assert_eq!(
                c.matches("```").count(),
                2,
                "the plan's block is closed: {c}"
            );
            assert!(
                !c.contains("▶ RUN-1 step 30/30"),
                "a start gives way to its outcome"
            );
        }
        let done = DiscordTransport::card_content(&card(&plan), &progress, false);
        assert!(
            done.contains("✔ RUN-1 step 30/30") && done.contains("earlier progress line"),
            "{done}"
        );
    }
}
