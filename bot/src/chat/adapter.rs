//! `Chat`: the flows every chat platform shares, written once over a `Transport`. What a
//! command, button, reaction or "add to timeline" means is decided here (by calling the engine);
//! how it looks on the wire is the transport's business. Ids are qualified (`slack:C1`) on the
//! way into the core and made the platform's own again on the way out.

use super::inbound::{Inbound, Meaning, Said, command_line};
use super::transport::{Asker, ChatError, Transport, UserHint};
use crate::store::chat::ChatStore;
use erlmcp_handlers::approval::{Actor, Platform};
use erlmcp_handlers::engine::{AlertOutcome, Engine, Request};
use erlmcp_handlers::ids::chat::{qualify, split};
use erlmcp_handlers::ids::{IncidentId, RequestId};
use erlmcp_handlers::reply::{Audience, Reply, RequestCard};
use erlmcp_handlers::timeline::Source;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const USER_CACHE_TTL: Duration = Duration::from_secs(600);

/// A request card as last shown, so progress can be added in place.
#[derive(Clone)]
struct Card {
    card: RequestCard,
    progress: Vec<String>,
}

#[derive(Clone)]
pub struct Chat {
    pub engine: Engine,
    pub transport: Arc<dyn Transport>,
    pub chat_store: Arc<dyn ChatStore>,
    users: Arc<Mutex<HashMap<String, (Actor, Instant)>>>,
    cards: Arc<Mutex<HashMap<RequestId, Card>>>,
    /// Where people reach the web view, for links (`ERLMCP_PUBLIC_URL`).
    public_url: Option<Arc<str>>,
}

impl Chat {
    pub fn new(
        engine: Engine,
        transport: Arc<dyn Transport>,
        chat_store: Arc<dyn ChatStore>,
    ) -> Self {
        Self {
            engine,
            transport,
            chat_store,
            users: Arc::default(),
            cards: Arc::default(),
            public_url: None,
        }
    }

    /// Links incident summaries and postmortems to the web view at `url`.
    pub fn with_public_url(mut self, url: Option<String>) -> Self {
        self.public_url = url.map(|u| Arc::from(u.trim_end_matches('/')));
        self
    }

    pub fn platform(&self) -> Platform {
        self.transport.platform()
    }

    /// The platform's name as receipts and chat bookkeeping store it.
    pub fn platform_name(&self) -> &'static str {
        self.platform().as_str()
    }

    pub fn source(&self) -> Source {
        match self.platform() {
            Platform::Slack => Source::Slack,
            Platform::Discord => Source::Discord,
            Platform::Console => Source::Console,
        }
    }

    /// `slack:C1` for the platform's `C1`.
    pub fn qualified(&self, id: &str) -> String {
        qualify(self.platform(), id)
    }

    /// This process as a claimant of receipts (the engine's run owner id).
    pub fn engine_owner(&self) -> String {
        self.engine.owner().to_string()
    }

    fn web_link(&self, id: &IncidentId) -> Option<String> {
        self.public_url
            .as_deref()
            .map(|base| crate::web::incident_url(base, id))
    }

    /// Who a user is (cached for a while): the platform's word, or unverified.
    pub async fn actor(&self, user: &str, hint: &UserHint) -> Actor {
        if hint.is_bot.is_none()
            && let Some(a) = self.known_actor(user)
        {
            return a;
        }
        let actor = self.transport.who(user, hint).await;
        if actor.unverified.is_none() {
            self.users
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(user.to_string(), (actor.clone(), Instant::now()));
        }
        actor
    }

    /// Who a user is, if the platform answered for them recently; never a network call.
    pub fn known_actor(&self, user: &str) -> Option<Actor> {
        self.users
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(user)
            .filter(|(_, at)| at.elapsed() < USER_CACHE_TTL)
            .map(|(a, _)| a.clone())
    }

    /// The actor an inbound event names, when the event itself says enough (Discord sends the
    /// member with every interaction): no lookup, so notes can be stored with their receipt.
    pub fn actor_from_event(&self, user: &str, name: Option<&str>, said: &Said) -> Option<Actor> {
        let is_bot = said.is_bot?;
        let name = name.or(said.name.as_deref()).unwrap_or(user);
        let mut a = Actor::on(self.platform(), user, name);
        a.is_bot = is_bot || self.transport.is_self(user);
        a.roles = said.roles.clone();
        Some(a)
    }

    /// Who the user of an inbound event is: what the event said, or the platform's word.
    pub(crate) async fn actor_for(&self, user: &str, name: Option<&str>, said: &Said) -> Actor {
        if let Some(a) = self.actor_from_event(user, name, said) {
            return a;
        }
        let hint = UserHint {
            name: name.map(str::to_string),
            is_bot: said.is_bot,
            roles: said.roles.clone(),
        };
        self.actor(user, &hint).await
    }

    /// What `actor` said in `channel` (the platform's id), for the engine.
    pub(crate) fn request(&self, actor: Actor, channel: &str, text: String) -> Request {
        Request {
            actor,
            source: self.source(),
            channel: self.qualified(channel),
            text,
        }
    }

    /// Says one reply for a command said in `channel` (the platform's id).
    pub async fn tell(&self, channel: &str, reply: &Reply, asker: &Asker) {
        self.deliver_all(channel, std::slice::from_ref(reply), asker)
            .await;
    }

    /// Delivers the core's replies for an exchange, then completes the exchange.
    pub async fn deliver_all(&self, channel: &str, replies: &[Reply], asker: &Asker) {
        let mut said_privately = false;
        for reply in replies {
            said_privately |= reply.audience == Audience::Requester && reply.card.is_none();
            if let Err(e) = self.deliver(channel, reply, asker).await {
                tracing::error!(platform = self.platform_name(), channel, error = %e, "could not deliver a reply");
                // Tell the person, through a route that does not need the failing call.
                if reply.audience == Audience::Channel && (asker.reply_to.is_some()) {
                    let note = format!(
                        "⚠ The bot could not post to this channel ({e}). Everything is on the incident timeline; `/erlmcp timeline` shows it."
                    );
                    if self
                        .transport
                        .post_private(channel, asker, &note)
                        .await
                        .is_ok()
                    {
                        said_privately = true;
                    }
                }
            }
        }
        self.transport.finish(asker, said_privately).await;
    }

    /// Delivers one reply of the core for `channel` (the platform's id).
    pub async fn deliver(
        &self,
        channel: &str,
        reply: &Reply,
        asker: &Asker,
    ) -> Result<(), ChatError> {
        if let Some(card) = &reply.card {
            return self.post_card(channel, card).await;
        }
        if reply.audience == Audience::Requester {
            return self
                .transport
                .post_private(channel, asker, &reply.text)
                .await;
        }
        if let Some(request) = &reply.request {
            let updated = self.update_card(request, &reply.text).await?;
            // Step-by-step progress lives on the card; outcomes are also said in the channel.
            let is_step_progress = reply.text.starts_with('▶') || reply.text.starts_with('✔');
            if updated && is_step_progress {
                return Ok(());
            }
        }
        self.transport
            .post(channel, &reply.text, None)
            .await
            .map(|_| ())
    }

    async fn post_card(&self, channel: &str, card: &RequestCard) -> Result<(), ChatError> {
        let message = self.transport.post_card(channel, card).await?;
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
            .chat_store
            .remember_message(self.platform_name(), channel, &message, &request, &body)
            .await
        {
            tracing::error!(request = %request, error = %e, "could not remember the request's message; reactions on it will not be recognised");
        }
        Ok(())
    }

    /// Adds a line to a request's card and shows it again in place. `false` if there is no card.
    async fn update_card(&self, request: &RequestId, line: &str) -> Result<bool, ChatError> {
        let Ok(Some((channel, message, body))) = self
            .chat_store
            .message_for_request(self.platform_name(), request)
            .await
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
            let Some(card) = cards.get_mut(request) else {
                return Ok(false);
            };
            card.progress.push(line.to_string());
            card.clone()
        };
        self.transport
            .update_card(&channel, &message, &card.card, &card.progress)
            .await?;
        Ok(true)
    }

    /// Acts on one parsed input (already verified, admitted and deduplicated).
    pub async fn handle(&self, inbound: Inbound) {
        match inbound {
            Inbound::Command {
                command,
                text,
                user,
                user_name,
                channel,
                reply_to,
                said,
            } => {
                let asker = Asker::of(&user, reply_to, &said);
                self.on_command(
                    &command,
                    &text,
                    &user,
                    user_name.as_deref(),
                    &channel,
                    &said,
                    asker,
                )
                .await
            }
            Inbound::Button {
                approve,
                request,
                message,
                user,
                user_name,
                channel,
                reply_to,
                said,
            } => {
                let asker = Asker::of(&user, reply_to, &said);
                // A button counts only on the card of the request it names. A card the bot
                // posted but could not note down (it stopped, or the database failed, just
                // then) is known by its button alone: the platform sends only our own.
                if let Some(message) = &message {
                    let card_of = self
                        .chat_store
                        .request_for_message(self.platform_name(), &channel, message)
                        .await
                        .ok()
                        .flatten();
                    if card_of.is_none() {
                        let _ = self
                            .chat_store
                            .remember_message(
                                self.platform_name(),
                                &channel,
                                message,
                                &RequestId::new(&request),
                                "",
                            )
                            .await;
                    } else if card_of.as_ref().map(|r| r.as_str()) != Some(request.as_str()) {
                        let refusal = Reply::error(format!(
                            "That button is not on {request}'s card; nothing was done. Use the card's own buttons, or `/erlmcp approve {request}`."
                        ));
                        self.deliver_all(&channel, &[refusal], &asker).await;
                        return;
                    }
                }
                let actor = self.actor_for(&user, user_name.as_deref(), &said).await;
                let req = self.request(
                    actor,
                    &channel,
                    format!("[{} button]", if approve { "Approve" } else { "Deny" }),
                );
                let replies = self
                    .engine
                    .decide(&req, RequestId::new(request), approve, None)
                    .await;
                self.deliver_all(&channel, &replies, &asker).await;
            }
            Inbound::Reaction {
                added,
                reaction,
                user,
                channel,
                ts,
                said,
            } => {
                if !self.transport.is_self(&user) {
                    self.on_reaction(added, &reaction, &user, &channel, &ts, &said)
                        .await
                }
            }
            Inbound::Mention {
                user,
                channel,
                text,
            } => {
                if self.transport.is_self(&user) {
                    return;
                }
                let actor = self.actor(&user, &UserHint::default()).await;
                let req = self.request(actor, &channel, text);
                let replies = self.engine.handle(&req).await;
                let asker = Asker {
                    user: Some(user),
                    ..Asker::default()
                };
                self.deliver_all(&channel, &replies, &asker).await;
            }
            Inbound::AddToTimeline {
                user,
                user_name,
                channel,
                author,
                author_name,
                text,
                reply_to,
                said,
            } => {
                let asker = Asker::of(&user, reply_to, &said);
                let actor = self.actor_for(&user, user_name.as_deref(), &said).await;
                let author_label = format!(
                    "{} ({})",
                    author_name.as_deref().unwrap_or(&author),
                    self.qualified(&author)
                );
                self.pin_to_timeline(
                    actor,
                    &channel,
                    "[Add to timeline]",
                    &author_label,
                    author_name.as_deref().unwrap_or(&author),
                    &text,
                    &asker,
                )
                .await;
            }
        }
    }

    /// A slash command: `/erlmcp ...` or `/failover ...`.
    #[allow(clippy::too_many_arguments)]
    async fn on_command(
        &self,
        command: &str,
        text: &str,
        user: &str,
        user_name: Option<&str>,
        channel: &str,
        said: &Said,
        asker: Asker,
    ) {
        let actor = self.actor_for(user, user_name, said).await;
        let req = self.request(actor, channel, command_line(command, text));
        let mut replies = self.engine.handle(&req).await;
        // A postmortem links to its page, where the picture and the rendered draft are.
        if self.public_url.is_some() {
            for r in &mut replies {
                if r.text.starts_with("# Postmortem")
                    && let Some(id) = r
                        .text
                        .lines()
                        .find(|l| l.starts_with("| Incident | "))
                        .and_then(|l| l.split('|').nth(2))
                        .map(|s| IncidentId::new(s.trim()))
                    && let Some(link) = self.web_link(&id)
                {
                    r.text.push_str("\nWeb view: ");
                    r.text.push_str(&link);
                }
            }
        }
        self.deliver_all(channel, &replies, &asker).await;
        for reply in &replies {
            if let Some(id) = &reply.declared
                && let Err(e) = self
                    .open_incident_channel(id, Some(user), Some(channel))
                    .await
            {
                tracing::error!(incident = %id, error = %e, "could not open the incident channel");
                let _ = self
                    .transport
                    .post(
                        channel,
                        &format!(
                            "⚠ Could not create a channel for {id}: {e}. The incident is tracked here instead."
                        ),
                        None,
                    )
                    .await;
            }
        }
    }

    /// Creates the incident's channel (or thread), brings the declarer in, posts and pins the
    /// summary (mentioning the declarer), and announces it where the incident was declared.
    async fn open_incident_channel(
        &self,
        id: &IncidentId,
        user: Option<&str>,
        origin: Option<&str>,
    ) -> Result<(), ChatError> {
        let inc = match self.engine.store().incident(id).await {
            Ok(Some(i)) => i,
            _ => return Ok(()),
        };
        let (channel, label) = self
            .transport
            .create_place(
                &channel_name(id.as_str(), &inc.title),
                &format!(
                    "{id}: {} {} (erlmcp-bot keeps its timeline)",
                    inc.severity, inc.title
                ),
                origin,
            )
            .await?;
        if let Err(e) = self
            .engine
            .tie_to_channel(
                id,
                &self.qualified(&channel),
                &format!("{label} ({})", self.qualified(&channel)),
            )
            .await
        {
            tracing::error!(incident = %id, error = %e, "could not tie the incident to its channel");
        }
        if let Some(user) = user
            && let Err(e) = self.transport.invite(&channel, user).await
        {
            tracing::warn!(error = %e, "could not bring the declarer in");
        }
        let link = self.web_link(id);
        let summary = erlmcp_handlers::incident::summary_text(&inc, link.as_deref());
        let message = self.transport.post(&channel, &summary, user).await?;
        if let Err(e) = self.transport.pin(&channel, &message).await {
            tracing::warn!(error = %e, "could not pin the summary");
            let _ = self
                .transport
                .post(&channel, &format!("⚠ Could not pin the summary: {e}"), None)
                .await;
        }
        if let Some(origin) = origin
            && origin != channel
        {
            // The channel exists and is tied: a failed announcement is not a failed channel.
            if let Err(e) = self
                .transport
                .point_to(origin, &format!("{id} is being handled in"), &channel)
                .await
            {
                tracing::warn!(incident = %id, error = %e, "could not announce the incident's channel where it was declared");
            }
        }
        Ok(())
    }

    /// What alerts did, said in chat: an incident an alert opened gets its channel (announced
    /// where the mapping says), then each incident's messages go to its channel. `announce` is
    /// this platform's own channel id.
    pub async fn deliver_alert(&self, o: AlertOutcome, announce: Option<&str>) {
        {
            // One replica announces (the one that claims it); a crash before this is made
            // good by `announce_missed_alert_incidents`.
            let announce_here = o.opened
                && match self.engine.claim_alert_announcement(&o.incident).await {
                    Ok(claimed) => claimed,
                    Err(e) => {
                        tracing::error!(incident = %o.incident, error = ?e.to_string(), "could not claim an alert incident's announcement");
                        false
                    }
                };
            if announce_here {
                let headline = o
                    .replies
                    .first()
                    .map(|r| r.text.lines().next().unwrap_or_default().to_string())
                    .unwrap_or_default();
                self.announce_alert_incident(&o.incident, &headline, announce)
                    .await;
            }
            let channel = match self.engine.store().incident(&o.incident).await {
                Ok(Some(inc)) => match self.own_channel(&inc.channel) {
                    Some(c) => c.to_string(),
                    // No channel of its own here (creating it failed, or it lives elsewhere):
                    // the announce channel, if any.
                    _ => match announce {
                        Some(a) => a.to_string(),
                        None => {
                            tracing::error!(incident = %o.incident, "an alert's incident has no channel and no announce channel is configured ([alerts] channel)");
                            return;
                        }
                    },
                },
                Ok(None) => return,
                Err(e) => {
                    tracing::error!(incident = %o.incident, error = %e, "could not read the incident to tell its channel about alerts");
                    return;
                }
            };
            self.deliver_all(&channel, &o.replies, &Asker::nobody())
                .await;
        }
    }

    /// Announces incidents alerts opened that nobody announced (the process that stored them
    /// stopped first): checked every few seconds by `serve` while alert intake is on.
    pub async fn announce_missed_alert_incidents(&self, announce: Option<&str>) {
        let missed = match self
            .engine
            .unannounced_alert_incidents(chrono::Duration::seconds(5))
            .await
        {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = ?e.to_string(), "could not look for unannounced alert incidents");
                return;
            }
        };
        for inc in missed {
            if !matches!(
                self.engine.claim_alert_announcement(&inc.id).await,
                Ok(true)
            ) {
                continue;
            }
            let headline = format!(
                "🚨 {} opened by an alert ({}): {} (announced late: the process that recorded it stopped before saying so)",
                inc.id, inc.severity, inc.title
            );
            if !self
                .announce_alert_incident(&inc.id, &headline, announce)
                .await
            {
                continue;
            }
            // Its new channel has not heard of it either.
            if let Ok(Some(now)) = self.engine.store().incident(&inc.id).await
                && let Some(channel) = self.own_channel(&now.channel)
            {
                self.deliver_all(channel, &[Reply::channel(headline)], &Asker::nobody())
                    .await;
            }
        }
    }

    /// Says an incident an alert opened where incidents are announced (what opened and why,
    /// not only where), then gives it its channel; `false` if the channel could not be made.
    async fn announce_alert_incident(
        &self,
        id: &IncidentId,
        headline: &str,
        announce: Option<&str>,
    ) -> bool {
        if let Some(a) = announce.filter(|_| !headline.is_empty()) {
            self.deliver_all(a, &[Reply::channel(headline.to_string())], &Asker::nobody())
                .await;
        }
        match self.open_incident_channel(id, None, announce).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(incident = %id, error = %e, "could not open the channel of an incident an alert opened");
                false
            }
        }
    }

    async fn on_reaction(
        &self,
        added: bool,
        reaction: &str,
        user: &str,
        channel: &str,
        message: &str,
        said: &Said,
    ) {
        let asker = Asker {
            user: Some(user.to_string()),
            ..Asker::default()
        };
        let request = self
            .chat_store
            .request_for_message(self.platform_name(), channel, message)
            .await
            .ok()
            .flatten();
        let meaning = Meaning::of(reaction);
        // As people see it: `:x:` on Slack, `❌` on Discord.
        let shown = if reaction
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '+' || c == '-')
        {
            format!(":{reaction}:")
        } else {
            reaction.to_string()
        };
        let reaction = shown.as_str();
        match (added, meaning, request) {
            (true, meaning @ (Meaning::Approve | Meaning::Deny), Some(request)) => {
                let actor = self.actor_for(user, None, said).await;
                let approve = meaning == Meaning::Approve;
                let reason =
                    (!approve).then(|| format!("denied with {reaction} by {}", actor.name));
                let req = self.request(actor, channel, format!("[{reaction} reaction]"));
                let replies = self.engine.decide(&req, request, approve, reason).await;
                self.deliver_all(channel, &replies, &asker).await;
            }
            (false, Meaning::Approve, Some(request)) => {
                let text = format!(
                    "Removing your {reaction} does not withdraw an approval of {request}; to stop it, `/erlmcp deny {request} <reason>` (or the requester cancels)."
                );
                self.deliver_all(channel, &[Reply::private(text)], &asker)
                    .await;
            }
            (true, Meaning::Pin, _) => {
                let (author_id, text) = match self.transport.fetch_message(channel, message).await {
                    Ok(Some(found)) => found,
                    Ok(None) => {
                        let reply = Reply::error(
                            "Could not find the message you pinned (deleted, or not visible to the bot); nothing was added.",
                        );
                        self.deliver_all(channel, &[reply], &asker).await;
                        return;
                    }
                    Err(e) => {
                        self.deliver_all(
                            channel,
                            &[Reply::error(format!(
                                "Could not read the pinned message ({e}); nothing was added. React again to retry."
                            ))],
                            &asker,
                        )
                        .await;
                        return;
                    }
                };
                if text.is_empty() {
                    return;
                }
                let (author, author_name) = if author_id.is_empty() {
                    ("unknown".to_string(), "an unknown author".to_string())
                } else {
                    let a = self.actor(&author_id, &UserHint::default()).await;
                    (a.label(), a.name)
                };
                let actor = self.actor_for(user, None, said).await;
                self.pin_to_timeline(
                    actor,
                    channel,
                    &format!("[{reaction} reaction]"),
                    &author,
                    &author_name,
                    &text,
                    &asker,
                )
                .await;
            }
            _ => {}
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn pin_to_timeline(
        &self,
        actor: Actor,
        channel: &str,
        how: &str,
        author: &str,
        author_name: &str,
        text: &str,
        asker: &Asker,
    ) {
        let req = self.request(actor, channel, how.to_string());
        let reply = self
            .engine
            .pin_message(&req, author, author_name, text)
            .await
            .unwrap_or_else(|e| {
                Reply::error(format!("Could not add the message to the timeline: {e}"))
            });
        self.deliver_all(channel, &[reply], asker).await;
    }

    /// The platform's own id of a qualified channel of this platform.
    pub fn own_channel<'a>(&self, channel: &'a str) -> Option<&'a str> {
        match split(channel) {
            Some((p, c)) if p == self.platform() => Some(c),
            _ => None,
        }
    }
}

/// `inc-20261128-1-api-down-in-us-east-1`: lowercase letters, digits and dashes, at most 72.
pub fn channel_name(id: &str, title: &str) -> String {
    let mut name = id.to_ascii_lowercase();
    let slug: String = title
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    if !slug.is_empty() {
        name.push('-');
        name.push_str(&slug);
    }
    name.chars()
        .take(72)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn channel_names_are_readable_and_valid() {
        assert_eq!(
            super::channel_name("INC-20261128-1", "API down in us-east-1!"),
            "inc-20261128-1-api-down-in-us-east-1"
        );
        assert_eq!(
            super::channel_name("INC-20261128-2", "[DRILL] Ünïcode — ok"),
            "inc-20261128-2-drill-n-code-ok"
        );
        assert!(super::channel_name("INC-20261128-3", &"x".repeat(200)).len() <= 72);
    }
}
