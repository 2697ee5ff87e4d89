//! What a person did in a chat, after the platform's wire format is gone: the one shape every
//! adapter hands to the shared flows, and the payload a receipt stores (so it must keep reading
//! receipts written before it grew fields: every new field has a default).
//!
//! Ids here are the platform's own (`U123`, `C123`, a Discord snowflake); the chat adapter
//! qualifies them (`slack:U123`) before the core sees them.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Inbound {
    /// `/erlmcp …` or `/failover …`.
    Command {
        command: String,
        text: String,
        user: String,
        user_name: Option<String>,
        channel: String,
        /// Where answers only this person sees go: Slack's `response_url`, Discord's
        /// interaction token.
        #[serde(alias = "response_url")]
        reply_to: Option<String>,
        #[serde(default, skip_serializing_if = "Said::is_empty")]
        said: Said,
    },
    /// Approve or Deny pressed on a request card.
    Button {
        approve: bool,
        request: String,
        /// The message the button is on, where the platform says (Discord): it must be that
        /// request's card.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        user: String,
        user_name: Option<String>,
        channel: String,
        #[serde(alias = "response_url")]
        reply_to: Option<String>,
        #[serde(default, skip_serializing_if = "Said::is_empty")]
        said: Said,
    },
    /// A reaction added to or removed from a message (`ts`: the message's id).
    Reaction {
        added: bool,
        /// Slack's name (`white_check_mark`) or the emoji itself (Discord: `✅`).
        reaction: String,
        user: String,
        channel: String,
        ts: String,
        #[serde(default, skip_serializing_if = "Said::is_empty")]
        said: Said,
    },
    /// `@erlmcp-bot …` in a channel.
    Mention {
        user: String,
        channel: String,
        text: String,
    },
    /// A message put on the timeline by a person ("Add to timeline" on Discord), with its
    /// content as the platform delivered it.
    AddToTimeline {
        user: String,
        user_name: Option<String>,
        channel: String,
        author: String,
        author_name: Option<String>,
        text: String,
        #[serde(default)]
        reply_to: Option<String>,
        #[serde(default, skip_serializing_if = "Said::is_empty")]
        said: Said,
    },
}

/// What the platform itself said about the acting user with the event (Discord sends the
/// member with every interaction and reaction); `None` when it did not say.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Said {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_bot: Option<bool>,
    /// The name the platform shows for them (never used to authorise anything).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Role ids (Discord), which approver groups may name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Whether the answer to this event is a deferred interaction response to complete.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deferred: bool,
}

impl Said {
    pub fn is_empty(&self) -> bool {
        *self == Said::default()
    }
}

/// What a reaction means, whatever the platform calls it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Meaning {
    Approve,
    Deny,
    Pin,
    Nothing,
}

impl Meaning {
    pub fn of(reaction: &str) -> Meaning {
        match reaction {
            "white_check_mark" | "heavy_check_mark" | "✅" | "✔️" | "✔" | "☑️" => {
                Meaning::Approve
            }
            "x" | "❌" => Meaning::Deny,
            "pushpin" | "📌" => Meaning::Pin,
            _ => Meaning::Nothing,
        }
    }
}

/// The slash command line a command stands for.
pub fn command_line(command: &str, text: &str) -> String {
    if command.trim_start_matches('/') == "erlmcp" {
        format!("/erlmcp {text}")
    } else {
        format!("{command} {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_written_before_the_seam_still_read() {
        let old = r#"{"kind":"command","command":"/erlmcp","text":"status","user":"U1","user_name":"ann","channel":"C1","response_url":"https://hooks.slack.com/x"}"#;
        let Inbound::Command { reply_to, said, .. } = serde_json::from_str::<Inbound>(old).unwrap()
        else {
            panic!("a command");
        };
        assert_eq!(reply_to.as_deref(), Some("https://hooks.slack.com/x"));
        assert!(said.is_empty());
        let old_reaction = r#"{"kind":"reaction","added":true,"reaction":"x","user":"U1","channel":"C1","ts":"1.2"}"#;
        assert!(serde_json::from_str::<Inbound>(old_reaction).is_ok());
    }

    #[test]
    fn reactions_mean_the_same_on_every_platform() {
        assert_eq!(Meaning::of("white_check_mark"), Meaning::Approve);
        assert_eq!(Meaning::of("✅"), Meaning::Approve);
        assert_eq!(Meaning::of("❌"), Meaning::Deny);
        assert_eq!(Meaning::of("x"), Meaning::Deny);
        assert_eq!(Meaning::of("📌"), Meaning::Pin);
        assert_eq!(Meaning::of("tada"), Meaning::Nothing);
    }
}
