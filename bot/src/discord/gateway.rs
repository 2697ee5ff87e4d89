//! The gateway connection, for reactions (interactions come over HTTP): serenity's `Client`
//! with intents `GUILDS | GUILD_MESSAGE_REACTIONS` (no privileged intent). A reaction is stored
//! as a receipt under a key of its own (channel, message, user, emoji), so when every replica
//! holds a gateway session and hears the same reaction, one of them acts on it.

use super::Discord;
use crate::chat::inbound::{Inbound, Said};
use crate::chat::receive::{Taken, take};
use crate::intake::Intake;
use serenity::all::{Context, EventHandler, GatewayIntents, Reaction, ReactionType, Ready};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long the gateway may take to connect before the bot says reactions do not work.
const CONNECT_PATIENCE: Duration = Duration::from_secs(30);

struct Handler {
    discord: Discord,
    intake: Intake,
    connected: Arc<AtomicBool>,
}

/// Whether the gateway is connected: said once per change in the log, and as a gauge.
fn connected(flag: &AtomicBool, now: bool) {
    metrics::gauge!("erlmcp_chat_gateway_connected", "platform" => "discord").set(if now {
        1.0
    } else {
        0.0
    });
    if flag.swap(now, Ordering::SeqCst) != now {
        if now {
            tracing::info!("Discord gateway connected: reactions (✅ ❌ 📌) are heard");
        } else {
            tracing::warn!(
                "Discord gateway disconnected: reactions (✅ ❌ 📌) are not heard until it reconnects; commands and buttons still work"
            );
        }
    }
}

fn emoji_name(e: &ReactionType) -> String {
    match e {
        ReactionType::Unicode(s) => s.clone(),
        ReactionType::Custom { name, .. } => name.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

impl Handler {
    async fn on_reaction(&self, r: Reaction, added: bool) {
        if r.guild_id.map(|g| g.get()) != Some(self.discord.connection.config.guild_id) {
            return;
        }
        let Some(user) = r.user_id.map(|u| u.get().to_string()) else {
            return;
        };
        let emoji = emoji_name(&r.emoji);
        if crate::chat::inbound::Meaning::of(&emoji) == crate::chat::inbound::Meaning::Nothing {
            return;
        }
        let said = match &r.member {
            Some(m) => Said {
                is_bot: Some(m.user.bot),
                name: Some(
                    m.nick
                        .clone()
                        .or_else(|| m.user.global_name.clone())
                        .unwrap_or_else(|| m.user.name.clone()),
                ),
                roles: m.roles.iter().map(|x| x.get().to_string()).collect(),
                deferred: false,
            },
            None => Said::default(),
        };
        // Every replica's session hears the same reaction: one key for it, so one replica
        // acts. The key is the reaction's state (added or removed): reacting again means
        // removing, then adding, and each change frees the other state's key, so the next
        // addition is a new event however soon it comes.
        let key = |added: bool| {
            format!(
                "discord:reaction:{}:{}:{user}:{emoji}:{}",
                r.channel_id.get(),
                r.message_id.get(),
                if added { "add" } else { "remove" }
            )
        };
        if let Err(e) = self
            .discord
            .chat
            .engine
            .store()
            .release_receipt_key(&key(!added))
            .await
        {
            tracing::warn!(error = %e, "could not free a reaction's earlier state");
        }
        let key = key(added);
        let inbound = Inbound::Reaction {
            added,
            reaction: emoji,
            user,
            channel: r.channel_id.get().to_string(),
            ts: r.message_id.get().to_string(),
            said,
        };
        match take(&self.discord.chat, &self.intake, inbound, key).await {
            Taken::Failed(why) | Taken::Unknown(why) => {
                tracing::error!(%why, "a Discord reaction could not be recorded; react again")
            }
            _ => {}
        }
    }
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _ctx: Context, ready: Ready) {
        tracing::debug!(user = %ready.user.id, "Discord gateway ready");
        connected(&self.connected, true);
    }

    async fn shard_stage_update(&self, _ctx: Context, event: serenity::all::ShardStageUpdateEvent) {
        use serenity::all::ConnectionStage;
        match event.new {
            ConnectionStage::Connected => connected(&self.connected, true),
            ConnectionStage::Disconnected => connected(&self.connected, false),
            _ => {}
        }
    }

    async fn reaction_add(&self, _ctx: Context, r: Reaction) {
        self.on_reaction(r, true).await
    }

    async fn reaction_remove(&self, _ctx: Context, r: Reaction) {
        self.on_reaction(r, false).await
    }
}

/// Runs the gateway client in the background; if it stops, it starts again after a pause.
pub fn start(discord: Discord, intake: Intake) {
    let up = Arc::new(AtomicBool::new(false));
    metrics::gauge!("erlmcp_chat_gateway_connected", "platform" => "discord").set(0.0);
    let watched = up.clone();
    tokio::spawn(async move {
        tokio::time::sleep(CONNECT_PATIENCE).await;
        if !watched.load(Ordering::SeqCst) {
            tracing::error!(
                "the Discord gateway has not connected within 30 s: reactions (✅ ❌ 📌) are not heard until it does; commands, buttons and \"Add to timeline\" work (they come over HTTP). Check outbound access to Discord's gateway"
            );
        }
    });
    tokio::spawn(async move {
        let config = discord.connection.config.clone();
        let intents = GatewayIntents::GUILDS | GatewayIntents::GUILD_MESSAGE_REACTIONS;
        loop {
            let http = {
                let b = serenity::http::HttpBuilder::new(&config.token).application_id(
                    serenity::model::id::ApplicationId::new(config.application_id),
                );
                if config.api_url == super::rest::DEFAULT_API_URL {
                    b.build()
                } else {
                    // A stand-in or gateway: serenity uses the proxy only with its limiter off.
                    b.proxy(config.api_url.clone())
                        .ratelimiter_disabled(true)
                        .build()
                }
            };
            let handler = Handler {
                discord: discord.clone(),
                intake: intake.clone(),
                connected: up.clone(),
            };
            match serenity::client::ClientBuilder::new_with_http(http, intents)
                .event_handler(handler)
                .await
            {
                Ok(mut client) => {
                    if let Err(e) = client.start().await {
                        tracing::error!(error = %e, "the Discord gateway connection ended; reconnecting");
                    }
                    connected(&up, false);
                }
                Err(e) => tracing::error!(error = %e, "could not start the Discord gateway client"),
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });
}
