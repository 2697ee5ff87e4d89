//! What Slack sends, parsed into closed types before anything acts on it: slash commands (form
//! fields), button presses (`block_actions` interactions) and Events API callbacks. The parsers
//! are pure and total: any input gives a value or a reason, never a panic (a property test feeds
//! them arbitrary payloads). HTTP and Socket Mode both end here.

use serde_json::Value;
use std::collections::HashMap;

/// Longest text of a slash command Slack sends (it allows 4,000 characters; the margin is for
/// escapes), and of a field we keep.
const MAX_FIELD: usize = 8_000;

pub use crate::chat::Inbound;
use crate::chat::inbound::Said;

/// Where a payload says it comes from: checked against the bot's own workspace and app.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    pub team: Option<String>,
    pub app: Option<String>,
}

/// A parsed payload: what to do, where it comes from, and (events) the id Slack retries under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub inbound: Option<Inbound>,
    pub origin: Origin,
    pub event_id: Option<String>,
}

fn field(f: &HashMap<String, String>, name: &str) -> Option<String> {
    f.get(name)
        .filter(|v| !v.is_empty())
        .map(|v| v.chars().take(MAX_FIELD).collect())
}

fn text_at(v: &Value, path: &[&str]) -> Option<String> {
    let mut at = v;
    for p in path {
        at = at.get(p)?;
    }
    at.as_str()
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(MAX_FIELD).collect())
}

/// A slash command's form fields (`command`, `text`, `user_id`, `channel_id`, `response_url`,
/// `team_id`, `api_app_id`, ...).
pub fn parse_command(f: &HashMap<String, String>) -> Result<Parsed, &'static str> {
    let (Some(command), Some(user), Some(channel)) = (
        field(f, "command"),
        field(f, "user_id"),
        field(f, "channel_id"),
    ) else {
        return Err("a slash command needs command, user_id and channel_id");
    };
    if !command.starts_with('/') {
        return Err("a slash command's command starts with /");
    }
    Ok(Parsed {
        inbound: Some(Inbound::Command {
            command,
            // Whole: the request body's limit bounds it, and the engine's own limit then says
            // how long it really is (cut here, a 250,000-character note was "7995 characters").
            text: f.get("text").cloned().unwrap_or_default(),
            user,
            user_name: field(f, "user_name"),
            channel,
            reply_to: field(f, "response_url"),
            said: Said::default(),
        }),
        origin: Origin {
            team: field(f, "team_id"),
            app: field(f, "api_app_id"),
        },
        event_id: None,
    })
}

/// An interaction payload; only our buttons (`block_actions`) do anything.
pub fn parse_interaction(p: &Value) -> Result<Parsed, &'static str> {
    if !p.is_object() {
        return Err("the interaction payload is not a JSON object");
    }
    let origin = Origin {
        // The acting user's team, when Slack gives it, is the one that matters (shared channels).
        team: text_at(p, &["user", "team_id"]).or_else(|| text_at(p, &["team", "id"])),
        app: text_at(p, &["api_app_id"]),
    };
    if p["type"] != "block_actions" {
        return Ok(Parsed {
            inbound: None,
            origin,
            event_id: None,
        });
    }
    let action = p["actions"][0]["action_id"].as_str().unwrap_or("");
    let approve = match action {
        super::blocks::APPROVE_ACTION => true,
        super::blocks::DENY_ACTION => false,
        _ => {
            return Ok(Parsed {
                inbound: None,
                origin,
                event_id: None,
            });
        }
    };
    let request = p["actions"][0]["value"].as_str().unwrap_or("").to_string();
    let user = text_at(p, &["user", "id"]).unwrap_or_default();
    let channel = text_at(p, &["channel", "id"])
        .or_else(|| text_at(p, &["container", "channel_id"]))
        .unwrap_or_default();
    if user.is_empty() || request.is_empty() || channel.is_empty() {
        return Err("the interaction lacks a user, a channel or a request");
    }
    Ok(Parsed {
        inbound: Some(Inbound::Button {
            approve,
            request: request.chars().take(64).collect(),
            message: None,
            user,
            user_name: text_at(p, &["user", "name"]).or_else(|| text_at(p, &["user", "username"])),
            channel,
            reply_to: text_at(p, &["response_url"]),
            said: Said::default(),
        }),
        origin,
        event_id: None,
    })
}

/// An Events API callback (`event_id` + `event`); reactions and mentions do something.
pub fn parse_event(v: &Value) -> Result<Parsed, &'static str> {
    if !v.is_object() {
        return Err("the event is not a JSON object");
    }
    let origin = Origin {
        team: text_at(v, &["team_id"]),
        app: text_at(v, &["api_app_id"]),
    };
    if v["type"] != "event_callback" {
        return Ok(Parsed {
            inbound: None,
            origin,
            event_id: None,
        });
    }
    let Some(event_id) = text_at(v, &["event_id"]) else {
        return Err("an event callback needs an event_id");
    };
    let e = &v["event"];
    let user = text_at(e, &["user"]).unwrap_or_default();
    let from_a_bot = e.get("bot_id").is_some_and(|b| !b.is_null());
    let inbound = match e["type"].as_str().unwrap_or("") {
        _ if user.is_empty() || from_a_bot => None,
        kind @ ("reaction_added" | "reaction_removed") if e["item"]["type"] == "message" => {
            match (
                text_at(e, &["item", "channel"]),
                text_at(e, &["item", "ts"]),
                text_at(e, &["reaction"]),
            ) {
                (Some(channel), Some(ts), Some(reaction)) => Some(Inbound::Reaction {
                    added: kind == "reaction_added",
                    reaction,
                    user,
                    channel,
                    ts,
                    said: Said::default(),
                }),
                _ => return Err("a reaction event needs item.channel, item.ts and reaction"),
            }
        }
        "app_mention" => {
            let Some(channel) = text_at(e, &["channel"]) else {
                return Err("a mention needs a channel");
            };
            let text = text_at(e, &["text"]).unwrap_or_default();
            // `<@UBOT> status` → `status`
            let text = text
                .split_once('>')
                .map(|(_, rest)| rest)
                .unwrap_or(&text)
                .trim()
                .to_string();
            Some(Inbound::Mention {
                user,
                channel,
                text,
            })
        }
        _ => None,
    };
    Ok(Parsed {
        inbound,
        origin,
        event_id: Some(event_id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_command_text_is_kept_whole_for_the_engine_to_measure() {
        let mut f = HashMap::new();
        for (k, v) in [
            ("command", "/erlmcp"),
            ("user_id", "U1"),
            ("channel_id", "C1"),
        ] {
            f.insert(k.to_string(), v.to_string());
        }
        f.insert("text".into(), format!("note {}", "x".repeat(20_000)));
        let Some(Inbound::Command { text, .. }) = parse_command(&f).unwrap().inbound else {
            panic!("a command");
        };
        assert_eq!(text.chars().count(), 20_005);
    }

    #[test]
    fn a_command_needs_its_fields() {
        let mut f = HashMap::new();
        assert!(parse_command(&f).is_err());
        for (k, v) in [
            ("command", "/erlmcp"),
            ("text", "p1 declare x"),
            ("user_id", "U1"),
            ("channel_id", "C1"),
            ("team_id", "T1"),
            ("api_app_id", "A1"),
        ] {
            f.insert(k.to_string(), v.to_string());
        }
        let p = parse_command(&f).unwrap();
        assert_eq!(p.origin.team.as_deref(), Some("T1"));
        assert!(
            matches!(p.inbound, Some(Inbound::Command { ref text, .. }) if text == "p1 declare x")
        );
        f.insert("command".into(), "erlmcp".into());
        assert!(parse_command(&f).is_err());
    }

    #[test]
    fn only_our_buttons_and_known_events_do_something() {
        let other = json!({ "type": "view_submission", "api_app_id": "A1" });
        assert_eq!(parse_interaction(&other).unwrap().inbound, None);
        let unknown_button = json!({ "type": "block_actions", "actions": [ { "action_id": "x", "value": "REQ-1" } ],
            "user": { "id": "U1" }, "channel": { "id": "C1" } });
        assert_eq!(parse_interaction(&unknown_button).unwrap().inbound, None);
        let message = json!({ "type": "event_callback", "event_id": "Ev1", "event": { "type": "message", "user": "U1" } });
        let p = parse_event(&message).unwrap();
        assert_eq!((p.inbound, p.event_id.as_deref()), (None, Some("Ev1")));
        let from_bot = json!({ "type": "event_callback", "event_id": "Ev2", "event": { "type": "app_mention", "user": "U1", "bot_id": "B1", "channel": "C1", "text": "<@UBOT> status" } });
        assert_eq!(parse_event(&from_bot).unwrap().inbound, None);
        assert!(parse_event(&json!([1, 2])).is_err());
    }
}
