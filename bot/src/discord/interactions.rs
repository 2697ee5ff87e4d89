//! `POST /discord/interactions`: Discord's HTTP interactions. Each request is verified (Ed25519
//! over timestamp and body with the application's public key, by serenity's verifier; then our
//! own 5-minute window on the timestamp, which the verifier does not check; then a replay is
//! refused by the interaction's id), stored as a receipt, and answered within Discord's 3
//! seconds: deferred, to be completed through the interaction's webhook.

use super::Discord;
use super::commands::ADD_TO_TIMELINE;
use super::transport::{APPROVE_PREFIX, DENY_PREFIX};
use crate::chat::inbound::{Inbound, Said, command_line};
use crate::chat::receive::{Taken, database_down_text, database_slow_text, take};
use crate::http::SmallBody;
use crate::intake::Intake;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use serenity::model::application::{
    CommandDataOptionValue, CommandInteraction, CommandType, ComponentInteraction, Interaction,
};

/// How far a request's timestamp may be from now.
const WINDOW_SECONDS: i64 = 300;

#[derive(Clone)]
pub struct State {
    pub discord: Discord,
    pub intake: Intake,
}

/// Discord gives up on an answer after 3 seconds and sends small bodies at once.
const DEADLINE: std::time::Duration = std::time::Duration::from_secs(3);
const BODY_LIMIT: usize = 64 * 1024;

pub fn router(state: State) -> Router {
    crate::http::guarded_within(
        Router::new()
            .route("/discord/interactions", axum::routing::post(receive))
            .with_state(state),
        DEADLINE,
        BODY_LIMIT,
    )
}

fn unauthorized(why: &str) -> Response {
    tracing::warn!(why, "refused a request that is not from Discord");
    (
        StatusCode::UNAUTHORIZED,
        format!("invalid Discord request signature: {why}"),
    )
        .into_response()
}

/// An answer only the person sees, at once.
fn ephemeral(text: &str) -> Response {
    axum::Json(json!({ "type": 4, "data": { "content": super::text::escape(text), "flags": 64, "allowed_mentions": { "parse": [] } } }))
        .into_response()
}

/// Checks the signature and the timestamp's age; the body as text if genuine.
fn verified(state: &State, headers: &HeaderMap, body: &[u8]) -> Result<(), &'static str> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(signature), Some(timestamp)) = (
        header("x-signature-ed25519"),
        header("x-signature-timestamp"),
    ) else {
        return Err("missing X-Signature-Ed25519 or X-Signature-Timestamp");
    };
    state
        .discord
        .verifier()
        .verify(signature, timestamp, body)
        .map_err(|_| "the signature does not match the application's public key")?;
    let Ok(at) = timestamp.parse::<i64>() else {
        return Err("the timestamp is not a number of seconds");
    };
    if (chrono::Utc::now().timestamp() - at).abs() > WINDOW_SECONDS {
        return Err("the timestamp is more than 5 minutes from now (stale or replayed)");
    }
    Ok(())
}

async fn receive(
    axum::extract::State(state): axum::extract::State<State>,
    headers: HeaderMap,
    SmallBody(body): SmallBody,
) -> Response {
    if let Err(why) = verified(&state, &headers, &body) {
        return unauthorized(why);
    }
    let interaction = match serde_json::from_slice::<Interaction>(&body) {
        Ok(i) => i,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("not a Discord interaction: {e}"),
            )
                .into_response();
        }
    };
    let guild = state.discord.connection.config.guild_id;
    match interaction {
        Interaction::Ping(_) => axum::Json(json!({ "type": 1 })).into_response(),
        Interaction::Command(cmd) => {
            if cmd.guild_id.map(|g| g.get()) != Some(guild) {
                return ephemeral(&format!(
                    "erlmcp-bot serves one Discord server ({guild}); use it there, not in direct messages or another server."
                ));
            }
            let key = format!("discord:interaction:{}", cmd.id);
            let Some(inbound) = command_inbound(&cmd) else {
                return ephemeral("erlmcp-bot does not know this command. Try `/erlmcp help`.");
            };
            let note = matches!(&inbound, Inbound::Command { command, text, .. }
                if erlmcp_handlers::engine::as_note(&command_line(command, text)).is_some());
            match take(&state.discord.chat, &state.intake, inbound, key).await {
                // A note already on the timeline is answered at once, in the channel.
                Taken::Applied(incident) => axum::Json(json!({
                    "type": 4,
                    "data": { "content": format!("📝 Noted on {incident}'s timeline."), "allowed_mentions": { "parse": [] } }
                }))
                .into_response(),
                // Deferred: Discord shows "thinking…" to the person; the answers follow.
                Taken::Stored => {
                    let _ = note;
                    axum::Json(json!({ "type": 5, "data": { "flags": 64 } })).into_response()
                }
                Taken::Duplicate => unauthorized("replayed interaction: this one was already taken"),
                Taken::Ignored => ephemeral("Nothing to do."),
                Taken::NotOurs(why) => ephemeral(&format!("erlmcp-bot did nothing: {why}.")),
                Taken::Failed(why) => ephemeral(&database_down_text(&why)),
                Taken::Unknown(why) => ephemeral(&database_slow_text(&why)),
            }
        }
        Interaction::Component(c) => {
            if c.guild_id.map(|g| g.get()) != Some(guild) {
                return ephemeral(
                    "erlmcp-bot serves one Discord server; this button is not of it.",
                );
            }
            let key = format!("discord:interaction:{}", c.id);
            let Some(inbound) = button_inbound(&c) else {
                return ephemeral("This button is not erlmcp-bot's; nothing was done.");
            };
            match take(&state.discord.chat, &state.intake, inbound, key).await {
                // Acknowledged without changing the card; the outcome edits it.
                Taken::Stored | Taken::Applied(_) | Taken::Ignored => {
                    axum::Json(json!({ "type": 6 })).into_response()
                }
                Taken::Duplicate => {
                    unauthorized("replayed interaction: this one was already taken")
                }
                Taken::NotOurs(why) => ephemeral(&format!("erlmcp-bot did nothing: {why}.")),
                Taken::Failed(why) => ephemeral(&database_down_text(&why)),
                Taken::Unknown(why) => ephemeral(&database_slow_text(&why)),
            }
        }
        _ => ephemeral("erlmcp-bot answers its commands and buttons only."),
    }
}

/// What the platform says of the person with the interaction itself.
fn said(
    user: &serenity::model::user::User,
    member: Option<&serenity::model::guild::Member>,
) -> Said {
    Said {
        is_bot: Some(user.bot),
        name: Some(display_name(user, member)),
        roles: member
            .map(|m| m.roles.iter().map(|r| r.get().to_string()).collect())
            .unwrap_or_default(),
        deferred: true,
    }
}

fn display_name(
    user: &serenity::model::user::User,
    member: Option<&serenity::model::guild::Member>,
) -> String {
    member
        .and_then(|m| m.nick.clone())
        .or_else(|| user.global_name.clone())
        .unwrap_or_else(|| user.name.clone())
}

fn string_option(cmd: &CommandInteraction, name: &str) -> Option<String> {
    cmd.data
        .options
        .iter()
        .find(|o| o.name == name)
        .and_then(|o| match &o.value {
            CommandDataOptionValue::String(s) => Some(s.clone()),
            _ => None,
        })
}

/// The option as people type it: with or without the leading `/erlmcp` (the bot's own hints
/// say `/erlmcp ack`), or another command written out (`/failover eu-central-1`).
fn as_typed(option: &str) -> (String, String) {
    let t = option.trim();
    match t.strip_prefix('/') {
        Some(rest) => {
            let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            (format!("/{name}"), args.trim().to_string())
        }
        None => ("/erlmcp".to_string(), t.to_string()),
    }
}

fn command_inbound(cmd: &CommandInteraction) -> Option<Inbound> {
    let member = cmd.member.as_deref();
    let user = &cmd.user;
    match (cmd.data.kind, cmd.data.name.as_str()) {
        (CommandType::ChatInput, "erlmcp") => {
            let (command, text) = as_typed(&string_option(cmd, "command").unwrap_or_default());
            Some(Inbound::Command {
                command,
                text,
                user: user.id.get().to_string(),
                user_name: Some(display_name(user, member)),
                channel: cmd.channel_id.get().to_string(),
                reply_to: Some(cmd.token.clone()),
                said: said(user, member),
            })
        }
        (CommandType::ChatInput, "failover") => Some(Inbound::Command {
            command: "/failover".into(),
            text: string_option(cmd, "region").unwrap_or_default(),
            user: user.id.get().to_string(),
            user_name: Some(display_name(user, member)),
            channel: cmd.channel_id.get().to_string(),
            reply_to: Some(cmd.token.clone()),
            said: said(user, member),
        }),
        (CommandType::Message, ADD_TO_TIMELINE) => {
            let target = cmd.data.target_id?;
            let message = cmd
                .data
                .resolved
                .messages
                .get(&serenity::model::id::MessageId::new(target.get()))?;
            Some(Inbound::AddToTimeline {
                user: user.id.get().to_string(),
                user_name: Some(display_name(user, member)),
                channel: cmd.channel_id.get().to_string(),
                author: message.author.id.get().to_string(),
                author_name: Some(
                    message
                        .author
                        .global_name
                        .clone()
                        .unwrap_or_else(|| message.author.name.clone()),
                ),
                text: message.content.clone(),
                reply_to: Some(cmd.token.clone()),
                said: said(user, member),
            })
        }
        _ => None,
    }
}

fn button_inbound(c: &ComponentInteraction) -> Option<Inbound> {
    let id = c.data.custom_id.as_str();
    let (approve, request) = if let Some(r) = id.strip_prefix(APPROVE_PREFIX) {
        (true, r)
    } else {
        (false, id.strip_prefix(DENY_PREFIX)?)
    };
    let member = c.member.as_ref();
    let mut said = said(&c.user, member);
    // A button's deferred update shows nothing to complete; answers go as follow-ups.
    said.deferred = false;
    Some(Inbound::Button {
        approve,
        request: request.chars().take(64).collect(),
        message: Some(c.message.id.get().to_string()),
        user: c.user.id.get().to_string(),
        user_name: Some(display_name(&c.user, member)),
        channel: c.channel_id.get().to_string(),
        reply_to: Some(c.token.clone()),
        said,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_option_reads_with_or_without_the_command_written_out() {
        let t = |s: &str| super::as_typed(s);
        assert_eq!(t("status"), ("/erlmcp".into(), "status".into()));
        assert_eq!(t(" /erlmcp  ack "), ("/erlmcp".into(), "ack".into()));
        assert_eq!(
            t("/failover eu-central-1"),
            ("/failover".into(), "eu-central-1".into())
        );
        assert_eq!(t("/erlmcp"), ("/erlmcp".into(), "".into()));
    }
}
