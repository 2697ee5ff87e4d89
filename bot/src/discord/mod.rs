//! The Discord adapter: application commands, buttons and the "Add to timeline" message command
//! over the interactions endpoint (Ed25519-verified, stored before the deferred answer), ✅ ❌ 📌
//! reactions over the gateway (serenity's `Client`), and replies, cards, channels and pins over
//! REST. What each means is the shared chat flows' business (`chat::Chat`).

pub mod commands;
pub mod gateway;
pub mod interactions;
pub mod permissions;
pub mod rest;
pub mod text;
pub mod transport;

use crate::chat::Chat;
use crate::error::Error;
use erlmcp_handlers::engine::Engine;
use rest::Rest;
use std::sync::Arc;

/// Where an incident gets its own place on Discord.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Places {
    /// A text channel in the guild (under `DISCORD_CATEGORY_ID` when set).
    Channel,
    /// A public thread in the channel where it was declared.
    Thread,
}

/// Discord settings, from the environment only (the token is a secret).
#[derive(Clone)]
pub struct DiscordConfig {
    pub token: String,
    pub application_id: u64,
    /// The application's Ed25519 public key, hex (the Developer Portal's "Public Key").
    pub public_key: String,
    pub guild_id: u64,
    pub api_url: String,
    pub places: Places,
    pub category_id: Option<u64>,
}

impl std::fmt::Debug for DiscordConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordConfig")
            .field("token", &"<redacted>")
            .field("application_id", &self.application_id)
            .field("guild_id", &self.guild_id)
            .field("api_url", &self.api_url)
            .field("places", &self.places)
            .finish()
    }
}

fn snowflake(env: &dyn Fn(&str) -> Option<String>, name: &str) -> Result<Option<u64>, String> {
    match env(name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
    {
        None => Ok(None),
        Some(v) => v.parse::<u64>().map(Some).map_err(|_| {
            format!("{name} must be a Discord id (a number such as 1187362548930187264), not `{v}`")
        }),
    }
}

impl DiscordConfig {
    /// Whether the environment asks for Discord at all.
    pub fn wanted(env: &dyn Fn(&str) -> Option<String>) -> bool {
        [
            "DISCORD_TOKEN",
            "DISCORD_APPLICATION_ID",
            "DISCORD_PUBLIC_KEY",
            "DISCORD_GUILD_ID",
        ]
        .iter()
        .any(|k| env(k).is_some_and(|v| !v.trim().is_empty()))
    }

    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let mut problems = Vec::new();
        let token = env("DISCORD_TOKEN")
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        if token.is_none() {
            problems.push(
                "DISCORD_TOKEN is not set (the bot token: Developer Portal → your application → Bot → Reset Token)".to_string(),
            );
        }
        let mut id = |name: &str, what: &str| match snowflake(env, name) {
            Ok(Some(v)) => Some(v),
            Ok(None) => {
                problems.push(format!("{name} is not set ({what})"));
                None
            }
            Err(e) => {
                problems.push(e);
                None
            }
        };
        let application_id = id(
            "DISCORD_APPLICATION_ID",
            "the Application ID on the Developer Portal's General Information page",
        );
        let guild_id = id(
            "DISCORD_GUILD_ID",
            "the server served: with Developer Mode on, right-click the server → Copy Server ID",
        );
        let public_key = env("DISCORD_PUBLIC_KEY")
            .map(|k| k.trim().to_string())
            .unwrap_or_default();
        if public_key.is_empty() {
            problems.push(
                "DISCORD_PUBLIC_KEY is not set (the Public Key on the Developer Portal's General Information page, 64 hex digits)".into(),
            );
        } else if let Some(bad) = public_key.chars().find(|c| !c.is_ascii_hexdigit()) {
            problems.push(format!(
                "DISCORD_PUBLIC_KEY must be hex digits (0-9, a-f); `{bad}` is not one (is it the Public Key, not the token or client secret?)"
            ));
        } else if public_key.len() != 64 {
            problems.push(format!(
                "DISCORD_PUBLIC_KEY must be 64 hex digits (the Developer Portal's \"Public Key\"); it has {}",
                public_key.len()
            ));
        }
        let places = match env("DISCORD_INCIDENT_PLACE")
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("") | Some("channel") => Places::Channel,
            Some("thread") => Places::Thread,
            Some(other) => {
                problems.push(format!(
                    "DISCORD_INCIDENT_PLACE must be `channel` or `thread`, not `{other}`"
                ));
                Places::Channel
            }
        };
        let category_id = match snowflake(env, "DISCORD_CATEGORY_ID") {
            Ok(v) => v,
            Err(e) => {
                problems.push(e);
                None
            }
        };
        let api_url = env("DISCORD_API_URL")
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| rest::DEFAULT_API_URL.to_string());
        match url::Url::parse(&api_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && !u.path().contains("/api") => {}
            _ => problems.push(format!(
                "DISCORD_API_URL must be the base http(s) URL, such as https://discord.com (without /api/v10), not `{api_url}`"
            )),
        }
        match (token, application_id, guild_id) {
            (Some(token), Some(application_id), Some(guild_id)) if problems.is_empty() => {
                Ok(Self {
                    token,
                    application_id,
                    public_key,
                    guild_id,
                    api_url,
                    places,
                    category_id,
                })
            }
            _ => Err(Error::Config(format!("Discord: {}", problems.join("; ")))),
        }
    }

    /// The public key's 32 bytes (checked by `from_env`).
    pub fn public_key_bytes(&self) -> Option<[u8; 32]> {
        hex::decode(&self.public_key).ok()?.try_into().ok()
    }
}

/// A checked connection to Discord: the token works and names this bot.
#[derive(Clone)]
pub struct Connection {
    pub config: DiscordConfig,
    pub rest: Rest,
    /// The bot's own user id (its reactions are ignored).
    pub bot_user: String,
}

impl Connection {
    /// Asks Discord who the token is (`GET /users/@me`): a wrong token fails `serve` at start.
    pub async fn open(config: &DiscordConfig) -> Result<Self, Error> {
        let rest = Rest::new(&config.api_url, &config.token);
        let me = rest
            .call(reqwest::Method::GET, "GET /users/@me", "/users/@me", None)
            .await
            .map_err(|e| {
                Error::Config(match e.status() {
                    None => format!(
                        "Discord: could not reach {} (DISCORD_API_URL) to check the bot token: {e}",
                        config.api_url
                    ),
                    Some(401) => format!(
                        "Discord refused the bot token (DISCORD_TOKEN): {e}. Copy it again from the Developer Portal's Bot page"
                    ),
                    Some(404) => format!(
                        "Discord: {} answered 404 for /api/v10/users/@me: is DISCORD_API_URL Discord's base URL? ({e})",
                        config.api_url
                    ),
                    Some(_) => format!("Discord: checking the bot token failed: {e}"),
                })
            })?;
        let bot_user = me["id"].as_str().unwrap_or_default().to_string();
        if bot_user.is_empty() {
            return Err(Error::Config(
                "Discord: GET /users/@me named no user; is DISCORD_API_URL Discord's?".into(),
            ));
        }
        Ok(Self {
            config: config.clone(),
            rest,
            bot_user,
        })
    }
}

/// The Discord platform as `serve` runs it.
#[derive(Clone)]
pub struct Discord {
    pub chat: Chat,
    pub connection: Arc<Connection>,
    verifier: Arc<serenity::interactions_endpoint::Verifier>,
}

impl Discord {
    /// Builds the adapter and registers the guild's commands (`/erlmcp`, `/failover` with the
    /// topology's regions, "Add to timeline").
    pub async fn new(
        engine: Engine,
        connection: Connection,
        chat_store: Arc<dyn crate::store::chat::ChatStore>,
        public_url: Option<String>,
    ) -> Result<Self, Error> {
        let key = connection
            .config
            .public_key_bytes()
            .ok_or_else(|| Error::Config("DISCORD_PUBLIC_KEY must be 64 hex digits".into()))?;
        let verifier = serenity::interactions_endpoint::Verifier::try_new(key)
            .map_err(|_| Error::Config("DISCORD_PUBLIC_KEY is not an Ed25519 public key".into()))?;
        commands::register(&connection, engine.topology())
            .await
            .map_err(|e| {
                let hint = if e.code() == Some(50001) {
                    format!(
                        ". The bot is not in server {} (DISCORD_GUILD_ID): install it with {} (deploy/discord-app.md)",
                        connection.config.guild_id,
                        permissions::install_url(connection.config.application_id)
                    )
                } else {
                    String::new()
                };
                Error::Config(format!("Discord: could not register the commands: {e}{hint}"))
            })?;
        let connection = Arc::new(connection);
        let transport = transport::DiscordTransport::new(connection.clone());
        Ok(Self {
            chat: Chat::new(engine, Arc::new(transport), chat_store).with_public_url(public_url),
            connection,
            verifier: Arc::new(verifier),
        })
    }

    /// `POST /discord/interactions`.
    pub fn router(&self, intake: crate::intake::Intake) -> axum::Router {
        interactions::router(interactions::State {
            discord: self.clone(),
            intake,
        })
    }

    /// Connects to the gateway (reactions) in the background, reconnecting for ever.
    pub fn start_gateway(&self, intake: crate::intake::Intake) {
        gateway::start(self.clone(), intake);
    }

    pub(crate) fn verifier(&self) -> &serenity::interactions_endpoint::Verifier {
        &self.verifier
    }
}
