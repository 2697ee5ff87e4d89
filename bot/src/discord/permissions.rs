//! The permissions the bot's role needs, each with the call that needs it. The install URL in
//! `deploy/discord-app.md` is built from this table, and a test holds the calls the bot makes in
//! the end-to-end story to it.

/// (permission, bit, why, the REST routes that need it).
pub const NEEDED: &[(&str, u64, &str, &[&str])] = &[
    (
        "VIEW_CHANNEL",
        1 << 10,
        "see the incident channels and the messages people react to",
        &[
            "POST /channels/{channel}/messages",
            "GET /channels/{channel}/messages/{message}",
        ],
    ),
    (
        "SEND_MESSAGES",
        1 << 11,
        "post replies, request cards and progress",
        &[
            "POST /channels/{channel}/messages",
            "PATCH /channels/{channel}/messages/{message}",
        ],
    ),
    (
        "MANAGE_CHANNELS",
        1 << 4,
        "create a text channel per incident",
        &["POST /guilds/{guild}/channels"],
    ),
    (
        "READ_MESSAGE_HISTORY",
        1 << 16,
        "read the message a 📌 reaction puts on the timeline",
        &["GET /channels/{channel}/messages/{message}"],
    ),
    (
        "PIN_MESSAGES",
        1 << 51,
        "pin the incident summary (Discord split it from MANAGE_MESSAGES in February 2026)",
        &["PUT /channels/{channel}/messages/pins/{message}"],
    ),
    (
        "CREATE_PUBLIC_THREADS",
        1 << 35,
        "a thread per incident (DISCORD_INCIDENT_PLACE=thread)",
        &["POST /channels/{channel}/threads"],
    ),
    (
        "SEND_MESSAGES_IN_THREADS",
        1 << 38,
        "post in incident threads and add the declarer to them",
        &["PUT /channels/{channel}/thread-members/{user}"],
    ),
];

/// Routes that need no channel permission (the bot's own identity, its commands, answers to
/// interactions through their webhook, guild members' roles).
pub const NEED_NONE: &[&str] = &[
    "GET /users/@me",
    "GET /gateway",
    "PUT /applications/{app}/guilds/{guild}/commands",
    "POST /webhooks/{app}/{token}",
    "PATCH /webhooks/{app}/{token}/messages/@original",
    "GET /guilds/{guild}/members/{user}",
];

/// The permissions integer of the install URL.
pub fn integer() -> u64 {
    NEEDED.iter().fold(0, |acc, (_, bit, _, _)| acc | bit)
}

/// The install URL for an application.
pub fn install_url(application_id: u64) -> String {
    format!(
        "https://discord.com/oauth2/authorize?client_id={application_id}&scope=bot+applications.commands&permissions={}",
        integer()
    )
}

/// The permissions a route needs; `None` for a route the table does not know.
pub fn for_route(route: &str) -> Option<Vec<&'static str>> {
    if NEED_NONE.contains(&route) {
        return Some(Vec::new());
    }
    let needed: Vec<&'static str> = NEEDED
        .iter()
        .filter(|(_, _, _, routes)| routes.contains(&route))
        .map(|(name, _, _, _)| *name)
        .collect();
    (!needed.is_empty()).then_some(needed)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_integer_is_the_sum_of_the_table() {
        assert_eq!(super::integer(), 2_252_109_051_399_184);
        assert!(super::install_url(1).ends_with("permissions=2252109051399184"));
        assert_eq!(
            super::for_route("POST /guilds/{guild}/channels"),
            Some(vec!["MANAGE_CHANNELS"])
        );
        assert_eq!(super::for_route("DELETE /guilds/{guild}"), None);
    }
}
