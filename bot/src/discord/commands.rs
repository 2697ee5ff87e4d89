//! The guild's application commands, registered (overwritten as a whole) at start: `/erlmcp`
//! with one text option carrying the grammar every platform shares, `/failover` with the
//! topology's regions as choices, and the message command "Add to timeline", which hands the bot
//! a message's text without the privileged Message Content intent.

use super::Connection;
use super::rest::DiscordError;
use erlmcp_handlers::topology::Topology;
use serde_json::{Value, json};

/// The message command's name.
pub const ADD_TO_TIMELINE: &str = "Add to timeline";

/// The commands as Discord's bulk-overwrite call takes them.
pub fn definitions(topology: &Topology) -> Value {
    // Discord allows 25 choices; the runbook has six regions.
    let regions: Vec<Value> = topology
        .names()
        .into_iter()
        .take(25)
        .map(|r| json!({ "name": r, "value": r }))
        .collect();
    json!([
        {
            "name": "erlmcp",
            "type": 1,
            "description": "Incident commands: p0 declare <title>, status, ack, note <text>, approve <REQ>, help",
            "options": [{
                "type": 3,
                "name": "command",
                "description": "What to do, as after /erlmcp on Slack (try: help)",
                "required": true,
                "max_length": 4000
            }]
        },
        {
            "name": "failover",
            "type": 1,
            "description": "Request a DR failover to a region (needs a second person's approval)",
            "options": [{
                "type": 3,
                "name": "region",
                "description": "The region to fail over to",
                "required": true,
                "choices": regions
            }]
        },
        { "name": ADD_TO_TIMELINE, "type": 3 }
    ])
}

pub async fn register(connection: &Connection, topology: &Topology) -> Result<(), DiscordError> {
    let c = &connection.config;
    connection
        .rest
        .call(
            reqwest::Method::PUT,
            "PUT /applications/{app}/guilds/{guild}/commands",
            &format!(
                "/applications/{}/guilds/{}/commands",
                c.application_id, c.guild_id
            ),
            Some(&definitions(topology)),
        )
        .await
        .map(|_| ())
}
