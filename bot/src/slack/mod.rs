//! The Slack adapter: slash commands, Block Kit buttons, reactions and pins in, replies and
//! progress out. It translates; every rule lives in the core (`Engine::handle`, `Engine::decide`).

pub mod api;
pub mod blocks;
pub mod inbound;
#[cfg(test)]
mod inbound_props;
pub mod poster;
pub mod process;
pub mod server;
pub mod socket_mode;
mod verify;
pub mod workspace;

use api::{SlackError, WebApi};
use erlmcp_handlers::approval::{Actor, Platform};
use erlmcp_handlers::engine::{Engine, Request};
use erlmcp_handlers::ids::IncidentId;
use erlmcp_handlers::reply::Reply;
use erlmcp_handlers::timeline::Source;
use inbound::Inbound;
use poster::{Asker, PLATFORM, Poster};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Slack settings, from the environment only (they are secrets).
#[derive(Clone, Debug)]
pub struct SlackConfig {
    pub signing_secret: String,
    pub bot_token: String,
    pub app_token: Option<String>,
    pub api_url: String,
    pub listen: String,
    /// `SLACK_TEAM_ID`: the workspace, when it should be checked against the token's.
    pub team_id: Option<String>,
    /// `SLACK_APP_ID`: the app, when `bots.info` should not be asked.
    pub app_id: Option<String>,
    /// `ERLMCP_METRICS_LISTEN`: serve `/metrics` on this address only, not on the public
    /// listener (which Slack, and so the internet, reaches).
    pub metrics_listen: Option<String>,
    /// `ERLMCP_ALERTS_TOKEN`: the bearer token Alertmanager's webhook must send; unset, alert
    /// intake refuses everything.
    pub alerts_token: Option<String>,
    /// `ERLMCP_WEB_TOKEN`: turns the read-only web view (`/ui/`) on; its bearer token.
    pub web_token: Option<String>,
    /// `ERLMCP_PUBLIC_URL`: where people reach `serve` (links in chat to the web view).
    pub public_url: Option<String>,
    /// `SLACK_ALLOWED_TEAMS`: other workspaces whose users may act (shared channels).
    pub allowed_teams: std::collections::BTreeSet<String>,
}

impl SlackConfig {
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, crate::error::Error> {
        let app_token = env("SLACK_APP_TOKEN");
        let mut missing = Vec::new();
        let bot_token = env("SLACK_BOT_TOKEN").unwrap_or_else(|| {
            missing.push("SLACK_BOT_TOKEN (the bot's xoxb- token)");
            String::new()
        });
        let signing_secret = env("SLACK_SIGNING_SECRET").unwrap_or_default();
        if signing_secret.is_empty() && app_token.is_none() {
            missing.push("SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN for Socket Mode)");
        }
        if !missing.is_empty() {
            return Err(crate::error::Error::Config(format!(
                "`serve` needs {}",
                missing.join(" and ")
            )));
        }
        Ok(Self {
            signing_secret,
            bot_token,
            app_token,
            api_url: env("SLACK_API_URL").unwrap_or_else(|| api::DEFAULT_API_URL.to_string()),
            listen: env("ERLMCP_LISTEN").unwrap_or_else(|| "0.0.0.0:3000".to_string()),
            metrics_listen: env("ERLMCP_METRICS_LISTEN"),
            alerts_token: env("ERLMCP_ALERTS_TOKEN"),
            web_token: env("ERLMCP_WEB_TOKEN"),
            public_url: env("ERLMCP_PUBLIC_URL"),
            team_id: env("SLACK_TEAM_ID"),
            app_id: env("SLACK_APP_ID"),
            allowed_teams: env("SLACK_ALLOWED_TEAMS")
                .map(|v| {
                    v.split(',')
                        .map(|t| t.trim().to_string())
                        .filter(|t| !t.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

const USER_CACHE_TTL: Duration = Duration::from_secs(600);

#[derive(Clone)]
pub struct Slack {
    pub engine: Engine,
    pub poster: Poster,
    users: Arc<Mutex<HashMap<String, (Actor, Instant)>>>,
    /// The workspace and app served; the bot's own user.
    pub workspace: Arc<workspace::Workspace>,
    /// Where people reach the web view, for links (`ERLMCP_PUBLIC_URL`).
    public_url: Option<Arc<str>>,
}

impl Slack {
    pub fn new(engine: Engine, poster: Poster, workspace: workspace::Workspace) -> Self {
        Self {
            engine,
            poster,
            users: Arc::default(),
            workspace: Arc::new(workspace),
            public_url: None,
        }
    }

    /// Links incident summaries and postmortems to the web view at `url`.
    pub fn with_public_url(mut self, url: Option<String>) -> Self {
        self.public_url = url.map(|u| Arc::from(u.trim_end_matches('/')));
        self
    }

    /// ` <url|web view>` for an incident, when there is a public URL.
    fn web_link(&self, id: &IncidentId) -> String {
        match &self.public_url {
            // A plain URL: Slack links it, and reply text is escaped (`<...>` would show).
            Some(base) => format!("\nWeb view: {}", crate::web::incident_url(base, id)),
            None => String::new(),
        }
    }

    pub fn api(&self) -> &WebApi {
        &self.poster.api
    }

    /// Who a Slack user is (`users.info`, cached): their id, display name, whether a bot or app,
    /// and whether they belong to this workspace. When Slack cannot say (rate limit, outage,
    /// missing scope), the actor is marked unverified and nothing privileged is counted for them.
    pub async fn actor(&self, user: &str, fallback_name: Option<&str>) -> Actor {
        if let Some(a) = self.known_actor(user) {
            return a;
        }
        self.look_up_actor(user, fallback_name).await
    }

    /// Who a Slack user is, if `users.info` answered for them recently; never a network call.
    pub fn known_actor(&self, user: &str) -> Option<Actor> {
        self.users
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(user)
            .filter(|(_, at)| at.elapsed() < USER_CACHE_TTL)
            .map(|(a, _)| a.clone())
    }

    async fn look_up_actor(&self, user: &str, fallback_name: Option<&str>) -> Actor {
        match self
            .api()
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
                    || user == self.workspace.bot_user;
                if let Some(team) = u["team_id"].as_str()
                    && !self.workspace.admits_team(team)
                {
                    // A Slack Connect user from another organisation: not one of ours.
                    actor.unverified = Some(format!(
                        "you belong to workspace {team}, and this bot acts only for {}",
                        self.workspace.team_id
                    ));
                }
                self.users
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(user.to_string(), (actor.clone(), Instant::now()));
                actor
            }
            Err(e) => {
                tracing::warn!(user, error = %e, "users.info failed; the user counts as unverified");
                let mut actor = Actor::on(Platform::Slack, user, fallback_name.unwrap_or(user));
                actor.is_bot = user == self.workspace.bot_user;
                actor.unverified = Some(e.to_string());
                actor
            }
        }
    }

    /// Says one reply for a command said in `channel` (to the person, or the channel).
    pub async fn tell(&self, channel: &str, reply: &Reply, asker: &Asker) {
        self.deliver_all(channel, std::slice::from_ref(reply), asker)
            .await;
    }

    /// This process as a claimant of receipts (the engine's run owner id).
    pub fn engine_owner(&self) -> String {
        self.engine.owner().to_string()
    }

    async fn deliver_all(&self, channel: &str, replies: &[Reply], asker: &Asker) {
        for reply in replies {
            if let Err(e) = self.poster.deliver(channel, reply, asker).await {
                tracing::error!(channel, error = %e, "could not deliver a reply to Slack");
                // Tell the person, through a route that does not need the failing call.
                let note = format!(
                    "⚠ The bot could not post to this channel ({e}). Everything is on the incident timeline; `/erlmcp timeline` shows it."
                );
                if let Some(url) = &asker.response_url {
                    let _ = self
                        .api()
                        .respond(
                            url,
                            &serde_json::json!({ "response_type": "ephemeral", "text": note }),
                        )
                        .await;
                }
            }
        }
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
                response_url,
            } => {
                self.on_command(
                    &command,
                    &text,
                    &user,
                    user_name.as_deref(),
                    &channel,
                    response_url,
                )
                .await
            }
            Inbound::Button {
                approve,
                request,
                user,
                user_name,
                channel,
                response_url,
            } => {
                self.on_button(
                    approve,
                    &request,
                    &user,
                    user_name.as_deref(),
                    &channel,
                    response_url,
                )
                .await
            }
            Inbound::Reaction {
                added,
                reaction,
                user,
                channel,
                ts,
            } => {
                if user != self.workspace.bot_user {
                    self.on_reaction(added, &reaction, &user, &channel, &ts)
                        .await
                }
            }
            Inbound::Mention {
                user,
                channel,
                text,
            } => {
                if user == self.workspace.bot_user {
                    return;
                }
                let actor = self.actor(&user, None).await;
                let req = Request {
                    actor,
                    source: Source::Slack,
                    channel: channel.clone(),
                    text,
                };
                let replies = self.engine.handle(&req).await;
                self.deliver_all(
                    &channel,
                    &replies,
                    &Asker {
                        user: Some(user),
                        response_url: None,
                    },
                )
                .await;
            }
        }
    }

    /// A slash command: `/erlmcp ...` or `/failover ...`.
    async fn on_command(
        &self,
        command: &str,
        text: &str,
        user: &str,
        user_name: Option<&str>,
        channel: &str,
        response_url: Option<String>,
    ) {
        let line = if command.trim_start_matches('/') == "erlmcp" {
            format!("/erlmcp {text}")
        } else {
            format!("{command} {text}")
        };
        let actor = self.actor(user, user_name).await;
        let req = Request {
            actor,
            source: Source::Slack,
            channel: channel.to_string(),
            text: line,
        };
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
                {
                    r.text.push_str(&self.web_link(&id));
                }
            }
        }
        let asker = Asker {
            user: Some(user.to_string()),
            response_url,
        };
        self.deliver_all(channel, &replies, &asker).await;
        for reply in &replies {
            if let Some(id) = &reply.declared
                && let Err(e) = self
                    .open_incident_channel(id, Some(user), Some(channel))
                    .await
            {
                tracing::error!(incident = %id, error = %e, "could not open the incident channel");
                let _ = self.poster.post(channel, &blocks::escape(&format!("⚠ Could not create a channel for {id}: {e}. The incident is tracked here instead.")), None).await;
            }
        }
    }

    /// Creates the incident's channel, invites the declarer, posts and pins the summary, and
    /// announces it where the incident was declared.
    async fn open_incident_channel(
        &self,
        id: &IncidentId,
        user: Option<&str>,
        origin: Option<&str>,
    ) -> Result<(), SlackError> {
        let inc = match self.engine.store().incident(id).await {
            Ok(Some(i)) => i,
            _ => return Ok(()),
        };
        let base = channel_name(id.as_str(), &inc.title);
        let mut created = None;
        for attempt in 1..=5 {
            let name = if attempt == 1 {
                base.clone()
            } else {
                format!("{}-{attempt}", &base[..base.len().min(76)])
            };
            match self
                .api()
                .call(
                    "conversations.create",
                    &[("name", name.clone()), ("is_private", "false".into())],
                )
                .await
            {
                Ok(v) => {
                    created = Some((
                        v["channel"]["id"].as_str().unwrap_or_default().to_string(),
                        name,
                    ));
                    break;
                }
                Err(e) if e.code() == Some("name_taken") => continue,
                Err(e) => return Err(e),
            }
        }
        let Some((channel, name)) = created else {
            return Err(SlackError::Api {
                method: "conversations.create".into(),
                code: "name_taken".into(),
            });
        };
        if let Err(e) = self
            .engine
            .tie_to_channel(id, &channel, &format!("#{name} ({channel})"))
            .await
        {
            tracing::error!(incident = %id, error = %e, "could not tie the incident to its channel");
        }
        if let Some(user) = user
            && let Err(e) = self
                .api()
                .call(
                    "conversations.invite",
                    &[("channel", channel.clone()), ("users", user.to_string())],
                )
                .await
            && e.code() != Some("already_in_channel")
        {
            tracing::warn!(error = %e, "could not invite the declarer");
        }
        let roles = if inc.roles.is_empty() {
            "none yet (`/erlmcp role ic <user>`)".to_string()
        } else {
            inc.roles
                .iter()
                .map(|(r, u)| format!("{}: {}", r.title(), blocks::escape(u)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let summary = format!(
            "*{id}* — {} {}\nDeclared by {} at {} UTC. Targets: acknowledge within {}, resolve within {}.\nRoles: {roles}\nCommands here address this incident: `/erlmcp ack`, `/erlmcp status`, `/failover <region>`.{}",
            inc.severity,
            blocks::escape(&inc.title),
            blocks::escape(&inc.declared_by),
            inc.declared_at.format("%Y-%m-%d %H:%M"),
            erlmcp_handlers::severity::human_duration(inc.severity.response_target()),
            erlmcp_handlers::severity::human_duration(inc.severity.resolution_target()),
            self.web_link(id),
        );
        let ts = self.poster.post(&channel, &summary, None).await?;
        if let Err(e) = self
            .api()
            .call(
                "pins.add",
                &[("channel", channel.clone()), ("timestamp", ts)],
            )
            .await
        {
            tracing::warn!(error = %e, "could not pin the summary");
        }
        if let Some(origin) = origin {
            self.poster
                .post(
                    origin,
                    &format!("{id} is being handled in <#{channel}>."),
                    None,
                )
                .await?;
        }
        Ok(())
    }

    /// What alerts did, said in chat: an incident an alert opened gets its channel (announced
    /// where the mapping says), then each incident's messages go to its channel.
    pub async fn deliver_alerts(&self, outcomes: Vec<erlmcp_handlers::engine::AlertOutcome>) {
        for o in outcomes {
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
                self.announce_alert_incident(&o.incident, &headline, o.announce.as_deref())
                    .await;
            }
            let channel = match self.engine.store().incident(&o.incident).await {
                // No Slack channel of its own (creating it failed, or it was declared in the
                // console): the announce channel, if any.
                Ok(Some(inc)) if inc.channel == "alertmanager" || inc.channel == "console" => {
                    match &o.announce {
                        Some(a) => a.clone(),
                        None => {
                            tracing::error!(incident = %o.incident, "an alert's incident has no channel and no announce channel is configured ([alerts] channel)");
                            continue;
                        }
                    }
                }
                Ok(Some(inc)) => inc.channel,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(incident = %o.incident, error = %e, "could not read the incident to tell its channel about alerts");
                    continue;
                }
            };
            let asker = Asker {
                user: None,
                response_url: None,
            };
            self.deliver_all(&channel, &o.replies, &asker).await;
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
            if let Ok(Some(now)) = self.engine.store().incident(&inc.id).await {
                let asker = Asker {
                    user: None,
                    response_url: None,
                };
                self.deliver_all(&now.channel, &[Reply::channel(headline)], &asker)
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
            let asker = Asker {
                user: None,
                response_url: None,
            };
            self.deliver_all(a, &[Reply::channel(headline.to_string())], &asker)
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

    /// A button press on a request card.
    async fn on_button(
        &self,
        approve: bool,
        request: &str,
        user: &str,
        user_name: Option<&str>,
        channel: &str,
        response_url: Option<String>,
    ) {
        let actor = self.actor(user, user_name).await;
        let req = Request {
            actor,
            source: Source::Slack,
            channel: channel.to_string(),
            text: format!("[{} button]", if approve { "Approve" } else { "Deny" }),
        };
        let replies = self
            .engine
            .decide(
                &req,
                erlmcp_handlers::ids::RequestId::new(request),
                approve,
                None,
            )
            .await;
        self.deliver_all(
            channel,
            &replies,
            &Asker {
                user: Some(user.to_string()),
                response_url,
            },
        )
        .await;
    }

    async fn on_reaction(&self, added: bool, reaction: &str, user: &str, channel: &str, ts: &str) {
        let asker = Asker {
            user: Some(user.to_string()),
            response_url: None,
        };
        let request = self
            .poster
            .chat
            .request_for_message(PLATFORM, channel, ts)
            .await
            .ok()
            .flatten();
        match (added, reaction, request) {
            (true, "white_check_mark" | "heavy_check_mark", Some(request))
            | (true, "x", Some(request)) => {
                let actor = self.actor(user, None).await;
                let req = Request {
                    actor,
                    source: Source::Slack,
                    channel: channel.to_string(),
                    text: format!("[:{reaction}: reaction]"),
                };
                let replies = self
                    .engine
                    .decide(
                        &req,
                        request,
                        reaction != "x",
                        Some(format!("denied with :x: by {user}")),
                    )
                    .await;
                self.deliver_all(channel, &replies, &asker).await;
            }
            (false, "white_check_mark" | "heavy_check_mark", Some(request)) => {
                let text = format!(
                    "Removing your :white_check_mark: does not withdraw an approval of {request}; to stop it, `/erlmcp deny {request} <reason>` (or the requester cancels)."
                );
                self.deliver_all(channel, &[Reply::private(text)], &asker)
                    .await;
            }
            (true, "pushpin", _) => {
                let (author_id, text) = match self.message_at(channel, ts).await {
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
                    let a = self.actor(&author_id, None).await;
                    (a.label(), a.name)
                };
                let actor = self.actor(user, None).await;
                let req = Request {
                    actor,
                    source: Source::Slack,
                    channel: channel.to_string(),
                    text: "[:pushpin: reaction]".into(),
                };
                let reply = self
                    .engine
                    .pin_message(&req, &author, &author_name, &text)
                    .await
                    .unwrap_or_else(|e| {
                        Reply::error(format!("Could not add the message to the timeline: {e}"))
                    });
                self.deliver_all(channel, &[reply], &asker).await;
            }
            _ => {}
        }
    }
}

impl Slack {
    /// The exact message at `ts` in `channel` (author id, text): a top-level message from the
    /// channel's history, or a thread reply from its thread. `None` if Slack has no such message.
    async fn message_at(
        &self,
        channel: &str,
        ts: &str,
    ) -> Result<Option<(String, String)>, SlackError> {
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
            .api()
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
            .api()
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
            Err(e) => Err(e),
        }
    }
}

/// `inc-20261128-1-api-down-in-us-east-1`: lowercase letters, digits and dashes, at most 80.
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
