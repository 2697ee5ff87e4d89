//! The Slack adapter: slash commands, Block Kit buttons, reactions and pins in (verified, parsed
//! and admitted here), replies and progress out through `SlackTransport`. What each means is the
//! shared chat flows' business (`chat::Chat`); every rule lives in the core.

pub mod api;
pub mod blocks;
pub mod inbound;
#[cfg(test)]
mod inbound_props;
pub mod server;
pub mod socket_mode;
pub mod transport;
mod verify;
pub mod workspace;

use crate::chat::Chat;
use api::WebApi;
use erlmcp_handlers::approval::Actor;
use erlmcp_handlers::engine::Engine;
use std::sync::Arc;

/// Slack settings, from the environment only (they are secrets).
#[derive(Clone, Debug)]
pub struct SlackConfig {
    pub signing_secret: String,
    pub bot_token: String,
    pub app_token: Option<String>,
    pub api_url: String,
    /// `SLACK_TEAM_ID`: the workspace, when it should be checked against the token's.
    pub team_id: Option<String>,
    /// `SLACK_APP_ID`: the app, when `bots.info` should not be asked.
    pub app_id: Option<String>,
    /// `SLACK_ALLOWED_TEAMS`: other workspaces whose users may act (shared channels).
    pub allowed_teams: std::collections::BTreeSet<String>,
}

impl SlackConfig {
    /// Whether the environment asks for Slack at all.
    pub fn wanted(env: &dyn Fn(&str) -> Option<String>) -> bool {
        ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"]
            .iter()
            .any(|k| env(k).is_some_and(|v| !v.trim().is_empty()))
    }

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

/// The Slack platform as `serve` runs it: the shared chat flows over Slack's transport, and
/// what only Slack has (the workspace and app served, the Web API for `response_url`s).
#[derive(Clone)]
pub struct Slack {
    pub chat: Chat,
    pub api: WebApi,
    pub workspace: Arc<workspace::Workspace>,
}

impl Slack {
    pub fn new(
        engine: Engine,
        api: WebApi,
        workspace: workspace::Workspace,
        chat_store: Arc<dyn crate::store::chat::ChatStore>,
        public_url: Option<String>,
    ) -> Self {
        let workspace = Arc::new(workspace);
        let transport = transport::SlackTransport {
            api: api.clone(),
            workspace: workspace.clone(),
        };
        Self {
            chat: Chat::new(engine, Arc::new(transport), chat_store).with_public_url(public_url),
            api,
            workspace,
        }
    }

    pub fn api(&self) -> &WebApi {
        &self.api
    }

    /// Who a Slack user is, if `users.info` answered for them recently; never a network call.
    pub fn known_actor(&self, user: &str) -> Option<Actor> {
        self.chat.known_actor(user)
    }
}
