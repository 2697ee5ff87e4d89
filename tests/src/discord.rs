//! Stand-ins for Discord, on 127.0.0.1: the REST API (`DiscordFake`, reached by serenity through
//! `HttpBuilder::proxy`), the gateway WebSocket (`FakeGateway`), and the HTTP interactions sender
//! (`InteractionSigner`: Ed25519-signed requests in Discord's documented payload formats, API v10).
//!
//! What serenity 0.12.5 needs from them (read in its source, proven by the tests below):
//! - REST: with `HttpBuilder::new(token).proxy(url).ratelimiter_disabled(true)` every request goes to
//!   `{url}/api/v10/...` with `Authorization: Bot <token>` (the prefix is added when missing). The
//!   proxy is ignored while the rate limiter is on, so tests run with it off, and then a 429 comes
//!   back as an error: `Error::Http(HttpError::UnsuccessfulRequest(ErrorResponse))` keeps the status
//!   code but neither the headers nor `retry_after`. `DiscordJsonError::code` is not optional: a body
//!   without `code` (Discord's documented 429 body has none) does not decode, and serenity puts
//!   `code: -1` and a "[Serenity] Could not decode json ..." message in its place.
//! - Gateway: `Client` asks `GET /api/v10/gateway` (not `/gateway/bot`) once when built, and falls
//!   back to `wss://gateway.discord.gg` if that fails; the shard appends `?v=10` to the URL, so the
//!   URL must carry no query string. Identify carries the token with its `Bot ` prefix.
//! - Interactions: `Interaction` needs `id, application_id, type, data, channel_id, token, version,
//!   locale, entitlements, attachment_size_limit`; a component interaction also the whole `message`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The application (and, as for every application created since 2020, its bot user).
pub const APP_ID: u64 = 1_300_000_000_000_000_001;
pub const BOT_USER_ID: u64 = APP_ID;
pub const BOT_USERNAME: &str = "erlmcp-bot";
/// The guild the fakes' defaults live in.
pub const GUILD_ID: u64 = 1_300_000_000_000_000_100;
/// Where follow-ups of an interaction token nobody bound land (see `DiscordFake::bind_interaction`).
pub const DEFAULT_CHANNEL_ID: u64 = 1_300_000_000_000_000_200;
/// The bot token the REST fake accepts (as `Bot <token>`) and the gateway expects.
pub const BOT_TOKEN: &str = "fake-discord-bot-token";
/// GUILDS | GUILD_MESSAGE_REACTIONS, the intents the adapter identifies with.
pub const INTENTS: u64 = 1 | (1 << 10);
const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// A new snowflake: the current time in Discord's layout, strictly increasing in this process.
pub fn snowflake() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or_default();
    let t = now.saturating_sub(DISCORD_EPOCH_MS) << 22;
    let prev = LAST
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |p| Some(t.max(p + 1)))
        .unwrap_or_default();
    t.max(prev + 1)
}

/// Now, as Discord writes timestamps (`2026-11-28T14:00:00.000000+00:00`).
pub fn timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

// ---------------------------------------------------------------------------------------------
// Objects in Discord's shapes (API v10)
// ---------------------------------------------------------------------------------------------

/// A user object.
pub fn user(id: u64, username: &str, bot: bool) -> Value {
    json!({
        "id": id.to_string(), "username": username, "discriminator": "0", "global_name": username,
        "avatar": null, "bot": bot, "system": false, "banner": null, "accent_color": null,
        "public_flags": 0, "flags": 0, "avatar_decoration_data": null, "primary_guild": null,
        "collectibles": null
    })
}

/// The bot's own user, as `GET /users/@me` and READY give it.
pub fn bot_user() -> Value {
    let mut u = user(BOT_USER_ID, BOT_USERNAME, true);
    u["verified"] = json!(true);
    u["mfa_enabled"] = json!(false);
    u["email"] = Value::Null;
    u["locale"] = json!("en-US");
    u
}

/// A guild member object carrying `user` and its role ids.
pub fn member(user: &Value, roles: &[u64]) -> Value {
    json!({
        "user": user, "nick": null, "avatar": null, "banner": null,
        "roles": roles.iter().map(u64::to_string).collect::<Vec<_>>(),
        "joined_at": "2025-01-15T09:30:00.000000+00:00", "premium_since": null,
        "deaf": false, "mute": false, "flags": 0, "pending": false,
        "communication_disabled_until": null, "unusual_dm_activity_until": null
    })
}

/// A message object in `channel` by `author`; `components` are action rows (or `[]`).
pub fn message(id: u64, channel: u64, author: &Value, content: &str, components: Value) -> Value {
    json!({
        "id": id.to_string(), "channel_id": channel.to_string(), "type": 0,
        "author": author, "content": content, "timestamp": timestamp(), "edited_timestamp": null,
        "tts": false, "mention_everyone": false, "mentions": [], "mention_roles": [],
        "attachments": [], "embeds": [], "pinned": false, "flags": 0,
        "components": if components.is_null() { json!([]) } else { components }
    })
}

/// A guild text channel object.
pub fn text_channel(id: u64, guild: u64, name: &str) -> Value {
    json!({
        "id": id.to_string(), "type": 0, "guild_id": guild.to_string(), "name": name,
        "position": 0, "permission_overwrites": [], "topic": null, "nsfw": false,
        "last_message_id": null, "rate_limit_per_user": 0, "parent_id": null, "flags": 0
    })
}

/// A thread channel object (`kind` 11 public, 12 private) under `parent`.
pub fn thread_channel(id: u64, guild: u64, parent: u64, name: &str, kind: u64) -> Value {
    json!({
        "id": id.to_string(), "type": kind, "guild_id": guild.to_string(),
        "parent_id": parent.to_string(), "owner_id": BOT_USER_ID.to_string(), "name": name,
        "last_message_id": null, "rate_limit_per_user": 0, "message_count": 0,
        "member_count": 1, "total_message_sent": 0, "flags": 0,
        "thread_metadata": { "archived": false, "auto_archive_duration": 1440,
                             "archive_timestamp": timestamp(), "locked": false,
                             "create_timestamp": timestamp(), "invitable": kind == 12 },
        "member": { "id": id.to_string(), "user_id": BOT_USER_ID.to_string(),
                    "join_timestamp": timestamp(), "flags": 0 }
    })
}

/// Discord's error body.
pub fn error_body(code: i64, message: &str) -> Value {
    json!({ "message": message, "code": code })
}

/// Discord's documented 429 body (no `code`: see the module note on what serenity makes of it).
pub fn rate_limited_body(retry_after: f64, global: bool) -> Value {
    json!({ "message": "You are being rate limited.", "retry_after": retry_after, "global": global })
}

/// The 403 a request without the permission gets.
pub fn missing_permissions_body() -> Value {
    error_body(50013, "Missing Permissions")
}

// ---------------------------------------------------------------------------------------------
// REST stand-in
// ---------------------------------------------------------------------------------------------

/// One request as the REST fake saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub method: String,
    /// The whole path, `/api/v10/...`.
    pub path: String,
    pub query: String,
    /// The JSON body, or `Null` (no body, or not JSON: multipart uploads).
    pub body: Value,
    pub authorization: Option<String>,
}

impl Call {
    /// Whether this is `method` on a path starting with `prefix` (with or without `/api/v10`).
    pub fn is(&self, method: &str, prefix: &str) -> bool {
        self.method.eq_ignore_ascii_case(method) && path_matches(&self.path, prefix)
    }

    /// The path without `/api/v10`.
    pub fn route(&self) -> &str {
        self.path.strip_prefix("/api/v10").unwrap_or(&self.path)
    }
}

fn path_matches(path: &str, prefix: &str) -> bool {
    path.starts_with(prefix)
        || path
            .strip_prefix("/api/v10")
            .is_some_and(|p| p.starts_with(prefix))
}

struct Fault {
    method: String,
    prefix: String,
    status: u16,
    body: Value,
    headers: Vec<(String, String)>,
    remaining: u32,
}

#[derive(Default)]
struct FakeState {
    calls: Vec<Call>,
    faults: Vec<Fault>,
    channels: BTreeMap<u64, Value>,
    /// Every message by id: channel messages, follow-ups and original responses.
    messages: BTreeMap<u64, Value>,
    /// Ephemeral messages: reachable through their webhook only.
    ephemeral: BTreeSet<u64>,
    commands: BTreeMap<u64, Vec<Value>>,
    users: BTreeMap<u64, (String, bool)>,
    roles: BTreeMap<u64, Vec<u64>>,
    interaction_channels: BTreeMap<String, u64>,
    /// Interaction token -> the original response's message id.
    originals: BTreeMap<String, u64>,
    gateway_url: Option<String>,
    verify_key: String,
}

/// A Discord REST API stand-in: answers like Discord (objects serenity deserializes, Discord's error
/// JSON), keeps channels, messages and commands, and records every call.
#[derive(Clone)]
pub struct DiscordFake {
    url: String,
    state: Arc<Mutex<FakeState>>,
}

fn json_response(status: u16, v: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn unknown_message() -> Response {
    json_response(404, error_body(10008, "Unknown Message"))
}

fn id_of(segment: &str) -> Option<u64> {
    segment.parse().ok()
}

async fn rest_handler(
    State(state): State<Arc<Mutex<FakeState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let call = Call {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().unwrap_or("").to_string(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    };
    let mut s = state.lock().unwrap();
    s.calls.push(call.clone());
    if let Some(i) = s.faults.iter().position(|f| call.is(&f.method, &f.prefix)) {
        let fault = &mut s.faults[i];
        let mut resp = json_response(fault.status, fault.body.clone());
        for (k, v) in &fault.headers {
            resp.headers_mut().insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        fault.remaining -= 1;
        if fault.remaining == 0 {
            s.faults.remove(i);
        }
        return resp;
    }
    route(&mut s, &call)
}

fn route(s: &mut FakeState, call: &Call) -> Response {
    let Some(rest) = call.path.strip_prefix("/api/v10/") else {
        return json_response(404, error_body(0, "404: Not Found"));
    };
    let parts: Vec<&str> = rest.split('/').collect();
    // Webhook and callback routes are authenticated by their token; everything else by the bot's.
    let by_token = matches!(parts.first(), Some(&"webhooks") | Some(&"interactions"));
    if !by_token && call.authorization.as_deref() != Some(format!("Bot {BOT_TOKEN}").as_str()) {
        return json_response(401, error_body(0, "401: Unauthorized"));
    }
    let body = &call.body;
    match (call.method.as_str(), parts.as_slice()) {
        ("GET", ["gateway"]) => json_response(200, json!({ "url": s.gateway_url() })),
        ("GET", ["gateway", "bot"]) => json_response(
            200,
            json!({ "url": s.gateway_url(), "shards": 1,
                    "session_start_limit": { "total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1 } }),
        ),
        ("GET", ["users", "@me"]) => json_response(200, bot_user()),
        ("GET", ["oauth2", "applications", "@me"]) => json_response(200, s.application()),
        ("GET", ["users", u]) => match id_of(u) {
            Some(u) => json_response(200, s.user(u)),
            None => json_response(404, error_body(10013, "Unknown User")),
        },
        ("GET", ["guilds", g, "members", u]) => match (id_of(g), id_of(u)) {
            (Some(_), Some(u)) => {
                let roles = s.roles.get(&u).cloned().unwrap_or_default();
                json_response(200, member(&s.user(u), &roles))
            }
            _ => json_response(404, error_body(10007, "Unknown Member")),
        },
        ("PUT", ["applications", app, "guilds", g, "commands"]) => {
            let (Some(app), Some(g)) = (id_of(app), id_of(g)) else {
                return json_response(404, error_body(0, "404: Not Found"));
            };
            let commands: Vec<Value> = body
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|c| command_object(app, g, c))
                .collect();
            s.commands.insert(g, commands.clone());
            json_response(200, Value::Array(commands))
        }
        ("GET", ["applications", _, "guilds", g, "commands"]) => {
            let list = id_of(g)
                .and_then(|g| s.commands.get(&g).cloned())
                .unwrap_or_default();
            json_response(200, Value::Array(list))
        }
        ("POST", ["guilds", g, "channels"]) => {
            let Some(g) = id_of(g) else {
                return json_response(404, error_body(10004, "Unknown Guild"));
            };
            let id = snowflake();
            let mut c = text_channel(id, g, body["name"].as_str().unwrap_or("channel"));
            for k in [
                "type",
                "topic",
                "parent_id",
                "permission_overwrites",
                "nsfw",
                "position",
            ] {
                if let Some(v) = body.get(k).filter(|v| !v.is_null()) {
                    c[k] = v.clone();
                }
            }
            s.channels.insert(id, c.clone());
            json_response(201, c)
        }
        ("GET", ["channels", c]) => match id_of(c).and_then(|c| s.channels.get(&c)) {
            Some(c) => json_response(200, c.clone()),
            None => json_response(404, error_body(10003, "Unknown Channel")),
        },
        ("POST", ["channels", c, "threads"]) => {
            let Some(c) = id_of(c) else {
                return json_response(404, error_body(10003, "Unknown Channel"));
            };
            let kind = body["type"].as_u64().unwrap_or(12);
            let t = s.thread(snowflake(), c, body, kind);
            json_response(201, t)
        }
        ("POST", ["channels", c, "messages", m, "threads"]) => {
            let (Some(c), Some(m)) = (id_of(c), id_of(m)) else {
                return unknown_message();
            };
            // A thread started from a message has the message's id.
            let t = s.thread(m, c, body, 11);
            if let Some(msg) = s.messages.get_mut(&m) {
                msg["thread"] = t.clone();
                msg["flags"] = json!(msg["flags"].as_u64().unwrap_or(0) | 32);
            }
            json_response(201, t)
        }
        ("POST", ["channels", c, "messages"]) => {
            let Some(c) = id_of(c) else {
                return json_response(404, error_body(10003, "Unknown Channel"));
            };
            let m = s.create_message(c, body, None);
            json_response(200, m)
        }
        ("GET", ["channels", c, "messages", m]) => match s.channel_message(c, m) {
            Some(m) => json_response(200, m.clone()),
            None => unknown_message(),
        },
        ("PATCH", ["channels", c, "messages", m]) => {
            if s.channel_message(c, m).is_none() {
                return unknown_message();
            }
            let m = id_of(m).unwrap();
            json_response(200, s.edit_message(m, body))
        }
        ("DELETE", ["channels", c, "messages", m]) => {
            if s.channel_message(c, m).is_none() {
                return unknown_message();
            }
            s.messages.remove(&id_of(m).unwrap());
            no_content()
        }
        ("PUT", ["channels", _, "pins", m]) | ("PUT", ["channels", _, "messages", "pins", m]) => {
            if let Some(msg) = id_of(m).and_then(|m| s.messages.get_mut(&m)) {
                msg["pinned"] = json!(true);
            }
            no_content()
        }
        ("PUT", ["channels", _, "messages", _, "reactions", _, "@me"])
        | ("PUT", ["channels", _, "recipients", _])
        | ("PUT", ["channels", _, "thread-members", _])
        | ("PUT", ["channels", _, "permissions", _])
        | ("DELETE", ["channels", _, "permissions", _]) => no_content(),
        ("POST", ["interactions", _, token, "callback"]) => {
            s.callback(token, body);
            no_content()
        }
        ("POST", ["webhooks", app, token]) => {
            let channel = s.interaction_channel(token);
            let app = id_of(app);
            let m = s.create_message(channel, body, app);
            json_response(200, m)
        }
        ("GET", ["webhooks", _, token, "messages", "@original"]) => {
            match s.originals.get(*token).and_then(|m| s.messages.get(m)) {
                Some(m) => json_response(200, m.clone()),
                None => unknown_message(),
            }
        }
        ("PATCH", ["webhooks", app, token, "messages", "@original"]) => {
            // Lenient: the original may have been the HTTP answer to the interaction, which the
            // fake never sees; then the edit makes it.
            let id = match s.originals.get(*token) {
                Some(id) => *id,
                None => {
                    let channel = s.interaction_channel(token);
                    let m = s.create_message(channel, &json!({}), id_of(app));
                    let id = id_of(m["id"].as_str().unwrap()).unwrap();
                    s.originals.insert(token.to_string(), id);
                    id
                }
            };
            json_response(200, s.edit_message(id, body))
        }
        ("PATCH", ["webhooks", _, _, "messages", m]) => match id_of(m) {
            Some(m) if s.messages.contains_key(&m) => json_response(200, s.edit_message(m, body)),
            _ => unknown_message(),
        },
        ("DELETE", ["webhooks", _, token, "messages", "@original"]) => {
            match s.originals.remove(*token) {
                Some(m) => {
                    s.messages.remove(&m);
                    no_content()
                }
                None => unknown_message(),
            }
        }
        _ => json_response(404, error_body(0, "404: Not Found")),
    }
}

fn command_object(app: u64, guild: u64, mut c: Value) -> Value {
    if !c.is_object() {
        return c;
    }
    c["id"] = json!(snowflake().to_string());
    c["application_id"] = json!(app.to_string());
    c["guild_id"] = json!(guild.to_string());
    c["version"] = json!(snowflake().to_string());
    for (k, v) in [
        ("type", json!(1)),
        ("description", json!("")),
        ("default_member_permissions", Value::Null),
        ("nsfw", json!(false)),
    ] {
        if c.get(k).is_none_or(Value::is_null) {
            c[k] = v;
        }
    }
    c
}

impl FakeState {
    fn gateway_url(&self) -> String {
        // With no gateway attached, a URL nothing listens on: serenity must not fall back to the
        // real Discord (which it does when this call fails).
        self.gateway_url
            .clone()
            .unwrap_or_else(|| "ws://127.0.0.1:1".to_string())
    }

    fn application(&self) -> Value {
        json!({
            "id": APP_ID.to_string(), "name": BOT_USERNAME, "icon": null, "description": "",
            "rpc_origins": [], "bot_public": false, "bot_require_code_grant": false,
            "owner": user(1_300_000_000_000_000_002, "owner", false), "verify_key": self.verify_key,
            "team": null, "flags": 0, "bot": bot_user(), "redirect_uris": [],
            "interactions_endpoint_url": null, "role_connections_verification_url": null,
            "approximate_guild_count": 1, "integration_types_config": { "0": {} }
        })
    }

    fn user(&self, id: u64) -> Value {
        if id == BOT_USER_ID {
            return user(id, BOT_USERNAME, true);
        }
        match self.users.get(&id) {
            Some((name, bot)) => user(id, name, *bot),
            None => user(id, &format!("user{id}"), false),
        }
    }

    fn guild_of(&self, channel: u64) -> u64 {
        self.channels
            .get(&channel)
            .and_then(|c| c["guild_id"].as_str())
            .and_then(id_of)
            .unwrap_or(GUILD_ID)
    }

    fn thread(&mut self, id: u64, parent: u64, body: &Value, kind: u64) -> Value {
        let guild = self.guild_of(parent);
        let mut t = thread_channel(
            id,
            guild,
            parent,
            body["name"].as_str().unwrap_or("thread"),
            kind,
        );
        if let Some(d) = body["auto_archive_duration"].as_u64() {
            t["thread_metadata"]["auto_archive_duration"] = json!(d);
        }
        if let Some(i) = body["invitable"].as_bool() {
            t["thread_metadata"]["invitable"] = json!(i);
        }
        self.channels.insert(id, t.clone());
        t
    }

    fn interaction_channel(&self, token: &str) -> u64 {
        self.interaction_channels
            .get(token)
            .copied()
            .unwrap_or(DEFAULT_CHANNEL_ID)
    }

    /// A message in `channel` made from a create body; `webhook` for interaction messages.
    fn create_message(&mut self, channel: u64, body: &Value, webhook: Option<u64>) -> Value {
        let id = snowflake();
        let mut m = message(
            id,
            channel,
            &bot_user_in_message(),
            body["content"].as_str().unwrap_or(""),
            body["components"].clone(),
        );
        for k in ["embeds", "tts", "flags", "poll"] {
            if let Some(v) = body.get(k).filter(|v| !v.is_null()) {
                m[k] = v.clone();
            }
        }
        if let Some(r) = body.get("message_reference").filter(|v| v.is_object()) {
            let mut r = r.clone();
            if r.get("channel_id").is_none_or(Value::is_null) {
                r["channel_id"] = json!(channel.to_string());
            }
            m["message_reference"] = r;
            m["type"] = json!(19);
        }
        if let Some(app) = webhook {
            m["webhook_id"] = json!(app.to_string());
            m["application_id"] = json!(app.to_string());
        }
        if m["flags"].as_u64().unwrap_or(0) & 64 != 0 {
            self.ephemeral.insert(id);
        }
        self.messages.insert(id, m.clone());
        m
    }

    fn channel_message(&self, channel: &str, id: &str) -> Option<&Value> {
        let (channel, id) = (id_of(channel)?, id_of(id)?);
        if self.ephemeral.contains(&id) {
            return None;
        }
        self.messages
            .get(&id)
            .filter(|m| m["channel_id"] == json!(channel.to_string()))
    }

    fn edit_message(&mut self, id: u64, body: &Value) -> Value {
        let m = self.messages.get_mut(&id).expect("edited message exists");
        if let Some(fields) = body.as_object() {
            for (k, v) in fields {
                match k.as_str() {
                    "content" => m[k] = if v.is_null() { json!("") } else { v.clone() },
                    "components" | "embeds" => {
                        m[k] = if v.is_null() { json!([]) } else { v.clone() }
                    }
                    "flags" if !v.is_null() => m[k] = v.clone(),
                    _ => {}
                }
            }
        }
        m["edited_timestamp"] = json!(timestamp());
        m.clone()
    }

    fn callback(&mut self, token: &str, body: &Value) {
        // 4: a message; 5: deferred ("thinking…"): both make the original response.
        let kind = body["type"].as_u64().unwrap_or(0);
        if kind == 4 || kind == 5 {
            let mut data = body["data"].clone();
            if !data.is_object() {
                data = json!({});
            }
            if kind == 5 {
                let flags = data["flags"].as_u64().unwrap_or(0) & 64;
                data = json!({ "flags": flags | 128 });
            }
            let channel = self.interaction_channel(token);
            let m = self.create_message(channel, &data, Some(APP_ID));
            let id = id_of(m["id"].as_str().unwrap()).unwrap();
            self.originals.insert(token.to_string(), id);
        }
    }
}

/// The bot as the author of its messages (no `verified`/`email`: those are only on `@me`).
fn bot_user_in_message() -> Value {
    user(BOT_USER_ID, BOT_USERNAME, true)
}

impl DiscordFake {
    /// Starts the fake on a free port of 127.0.0.1.
    pub async fn start() -> DiscordFake {
        let state = Arc::new(Mutex::new(FakeState {
            verify_key: InteractionSigner::new().public_key_hex(),
            ..FakeState::default()
        }));
        let router = Router::new()
            .fallback(rest_handler)
            .with_state(state.clone());
        // Port 0 rather than `fakes::free_port`: the kernel's pick cannot be taken meanwhile.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the Discord fake");
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        DiscordFake { url, state }
    }

    /// `http://127.0.0.1:PORT` (what `HttpBuilder::proxy` takes).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// A serenity client of this fake: `HttpBuilder::new(BOT_TOKEN).proxy(url)
    /// .ratelimiter_disabled(true).application_id(APP_ID)`.
    pub fn http(&self) -> serenity::http::Http {
        serenity::http::HttpBuilder::new(BOT_TOKEN)
            .proxy(self.url())
            .ratelimiter_disabled(true)
            .application_id(serenity::model::id::ApplicationId::new(APP_ID))
            .build()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Calls of `method` to a path starting with `path_prefix` (with or without `/api/v10`).
    pub fn calls_to(&self, method: &str, path_prefix: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.is(method, path_prefix))
            .collect()
    }

    /// Waits (bounded) for a call matching `predicate`; returns the first one. Panics with every
    /// call so far if none comes.
    pub async fn wait_for(&self, predicate: impl Fn(&Call) -> bool, timeout: Duration) -> Call {
        let mut found = None;
        self.wait_until(
            |calls| {
                found = calls.iter().find(|c| predicate(c)).cloned();
                found.is_some()
            },
            timeout,
        )
        .await;
        found.unwrap()
    }

    /// Waits (bounded) until `check` holds on all calls so far; returns them.
    pub async fn wait_until(
        &self,
        mut check: impl FnMut(&[Call]) -> bool,
        timeout: Duration,
    ) -> Vec<Call> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let calls = self.calls();
            if check(&calls) {
                return calls;
            }
            if tokio::time::Instant::now() >= deadline {
                let list: Vec<String> = calls
                    .iter()
                    .map(|c| format!("{} {}?{} {}", c.method, c.path, c.query, c.body))
                    .collect();
                panic!(
                    "the Discord fake never saw the expected calls within {timeout:?}; calls:\n{}",
                    list.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The next `times` calls of `method` to a path starting with `path_prefix` get `status` and
    /// `body` instead of the normal answer. A 429 also gets Discord's rate-limit headers
    /// (`retry-after`, `x-ratelimit-reset-after`, ... from the body's `retry_after`).
    pub fn fail_next(&self, method: &str, path_prefix: &str, status: u16, body: Value, times: u32) {
        let mut headers = Vec::new();
        if status == 429 {
            let after = body["retry_after"].as_f64().unwrap_or(1.0);
            let global = body["global"].as_bool().unwrap_or(false);
            let reset = chrono::Utc::now().timestamp_millis() as f64 / 1000.0 + after;
            headers.push(("retry-after".into(), format!("{}", after.ceil() as u64)));
            headers.push(("x-ratelimit-limit".into(), "5".into()));
            headers.push(("x-ratelimit-remaining".into(), "0".into()));
            headers.push(("x-ratelimit-reset".into(), format!("{reset:.3}")));
            headers.push(("x-ratelimit-reset-after".into(), format!("{after:.3}")));
            headers.push(("x-ratelimit-bucket".into(), "fakebucket0001".into()));
            headers.push((
                "x-ratelimit-scope".into(),
                if global { "global" } else { "user" }.into(),
            ));
            if global {
                headers.push(("x-ratelimit-global".into(), "true".into()));
            }
        }
        self.fail_next_with_headers(method, path_prefix, status, body, headers, times);
    }

    /// Like `fail_next`, with exactly the given headers.
    pub fn fail_next_with_headers(
        &self,
        method: &str,
        path_prefix: &str,
        status: u16,
        body: Value,
        headers: Vec<(String, String)>,
        times: u32,
    ) {
        if times == 0 {
            return;
        }
        self.state.lock().unwrap().faults.push(Fault {
            method: method.to_string(),
            prefix: path_prefix.to_string(),
            status,
            body,
            headers,
            remaining: times,
        });
    }

    /// `GET /gateway` hands out `url` from now on (`FakeGateway::start` does this).
    pub fn set_gateway_url(&self, url: &str) {
        self.state.lock().unwrap().gateway_url = Some(url.to_string());
    }

    /// The application's `verify_key` (defaults to `InteractionSigner::new()`'s public key).
    pub fn set_verify_key(&self, hex: &str) {
        self.state.lock().unwrap().verify_key = hex.to_string();
    }

    /// What `GET /users/{id}` (and member lookups) say about `id`.
    pub fn set_user(&self, id: u64, username: &str, bot: bool) {
        self.state
            .lock()
            .unwrap()
            .users
            .insert(id, (username.to_string(), bot));
    }

    /// The role ids `GET /guilds/{g}/members/{user}` gives `user`.
    pub fn set_roles(&self, user: u64, roles: &[u64]) {
        self.state
            .lock()
            .unwrap()
            .roles
            .insert(user, roles.to_vec());
    }

    /// Follow-ups and original responses of interaction `token` are messages of `channel`.
    pub fn bind_interaction(&self, token: &str, channel: u64) {
        self.state
            .lock()
            .unwrap()
            .interaction_channels
            .insert(token.to_string(), channel);
    }

    /// Puts a message (e.g. `message(..)` by someone else) where `GET` and `PATCH` find it.
    pub fn insert_message(&self, m: Value) {
        let id = m["id"].as_str().and_then(id_of).expect("message id");
        self.state.lock().unwrap().messages.insert(id, m);
    }

    /// A stored message (channel messages, follow-ups, original responses), by id.
    pub fn message(&self, id: u64) -> Option<Value> {
        self.state.lock().unwrap().messages.get(&id).cloned()
    }

    /// The messages of `channel`, oldest first (ephemeral ones included).
    pub fn messages_in(&self, channel: u64) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .messages
            .values()
            .filter(|m| m["channel_id"] == json!(channel.to_string()))
            .cloned()
            .collect()
    }

    /// The original response of interaction `token`, once made.
    pub fn original(&self, token: &str) -> Option<Value> {
        let s = self.state.lock().unwrap();
        s.originals
            .get(token)
            .and_then(|id| s.messages.get(id))
            .cloned()
    }

    /// Channels and threads made through the fake, by id.
    pub fn channel(&self, id: u64) -> Option<Value> {
        self.state.lock().unwrap().channels.get(&id).cloned()
    }

    pub fn channels(&self) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .channels
            .values()
            .cloned()
            .collect()
    }

    /// The commands last registered in `guild`.
    pub fn commands(&self, guild: u64) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .commands
            .get(&guild)
            .cloned()
            .unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// Gateway stand-in
// ---------------------------------------------------------------------------------------------

/// What a client sent in Identify (op 2).
#[derive(Clone, Debug)]
pub struct Identify {
    pub token: String,
    pub intents: u64,
    pub shard: Option<(u64, u64)>,
    /// The whole `d`.
    pub raw: Value,
}

enum Outgoing {
    Dispatch(String, Value),
    Close(u16),
}

#[derive(Default)]
struct GatewayState {
    identifies: Vec<Identify>,
    /// Request URIs of the WebSocket handshakes (`/?v=10` from serenity).
    connections: Vec<String>,
    /// Every frame clients sent, parsed.
    received: Vec<Value>,
    heartbeats: usize,
    /// Sessions past Identify (or Resume), where dispatches go.
    sessions: Vec<tokio::sync::mpsc::UnboundedSender<Outgoing>>,
    /// Dispatches made while no session was live, for the next one.
    pending: Vec<(String, Value)>,
    next_session: u64,
}

/// A Discord gateway stand-in (plain ws, JSON text frames): Hello, READY after Identify, heartbeat
/// acknowledgements, RESUMED after Resume, and dispatches the test pushes.
#[derive(Clone)]
pub struct FakeGateway {
    url: String,
    state: Arc<Mutex<GatewayState>>,
}

impl FakeGateway {
    /// Starts a gateway (heartbeat interval 45 s) and makes `rest`'s `GET /gateway` hand it out.
    pub async fn start(rest: &DiscordFake) -> FakeGateway {
        Self::start_with_interval(rest, 45_000).await
    }

    /// Like `start`, with Hello's `heartbeat_interval` (ms).
    pub async fn start_with_interval(rest: &DiscordFake, heartbeat_ms: u64) -> FakeGateway {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the gateway fake");
        // No path or query: serenity appends `?v=10` to whatever it is given.
        let url = format!("ws://{}", listener.local_addr().unwrap());
        rest.set_gateway_url(&url);
        let gw = FakeGateway {
            url: url.clone(),
            state: Arc::default(),
        };
        let state = gw.state.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(session(tcp, state.clone(), url.clone(), heartbeat_ms));
            }
        });
        gw
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Waits (bounded) for an Identify; returns the latest. By then READY is on its way and
    /// dispatches reach the session, after READY.
    pub async fn wait_identified(&self, timeout: Duration) -> Identify {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(i) = self.state.lock().unwrap().identifies.last() {
                return i.clone();
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "no Identify within {timeout:?}; connections: {:?}, frames: {:?}",
                    self.connection_uris(),
                    self.received()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends dispatch `t` with data `d` to every live session (with its next sequence number); with
    /// none live, the next session gets it after READY.
    pub fn dispatch(&self, t: &str, d: Value) {
        let mut s = self.state.lock().unwrap();
        s.sessions.retain(|tx| {
            tx.send(Outgoing::Dispatch(t.to_string(), d.clone()))
                .is_ok()
        });
        if s.sessions.is_empty() {
            s.pending.push((t.to_string(), d));
        }
    }

    /// Closes every live session with `code` (4000 "unknown error" makes serenity resume).
    pub fn disconnect_all(&self, code: u16) {
        let mut s = self.state.lock().unwrap();
        for tx in s.sessions.drain(..) {
            let _ = tx.send(Outgoing::Close(code));
        }
    }

    /// How many WebSocket connections were opened.
    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections.len()
    }

    /// The request URIs of the handshakes, e.g. `/?v=10`.
    pub fn connection_uris(&self) -> Vec<String> {
        self.state.lock().unwrap().connections.clone()
    }

    pub fn identifies(&self) -> Vec<Identify> {
        self.state.lock().unwrap().identifies.clone()
    }

    /// Heartbeats (op 1) received (each was acknowledged with op 11).
    pub fn heartbeats(&self) -> usize {
        self.state.lock().unwrap().heartbeats
    }

    /// Every frame clients sent.
    pub fn received(&self) -> Vec<Value> {
        self.state.lock().unwrap().received.clone()
    }
}

fn ready(session_id: &str, resume_url: &str, shard: Option<(u64, u64)>) -> Value {
    let (id, total) = shard.unwrap_or((0, 1));
    json!({
        "v": 10, "user": bot_user(),
        "guilds": [ { "id": GUILD_ID.to_string(), "unavailable": true } ],
        "session_id": session_id, "session_type": "normal", "resume_gateway_url": resume_url,
        "shard": [id, total],
        "application": { "id": APP_ID.to_string(), "flags": 0 },
        "private_channels": [], "relationships": [], "presences": [], "guild_join_requests": [],
        "geo_ordered_rtc_regions": ["us-east"], "user_settings": {}, "auth": {},
        "_trace": ["[\"fake-gateway\",{\"micros\":0}]"]
    })
}

async fn session(
    tcp: tokio::net::TcpStream,
    state: Arc<Mutex<GatewayState>>,
    url: String,
    heartbeat_ms: u64,
) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::handshake::server::{
        ErrorResponse, Request, Response as WsResponse,
    };
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;

    let uri = Arc::new(Mutex::new(String::new()));
    let seen = uri.clone();
    // The callback's signature is tungstenite's.
    #[allow(clippy::result_large_err)]
    let record = move |req: &Request, resp: WsResponse| -> Result<WsResponse, ErrorResponse> {
        *seen.lock().unwrap() = req.uri().to_string();
        Ok(resp)
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, record).await else {
        return;
    };
    state
        .lock()
        .unwrap()
        .connections
        .push(uri.lock().unwrap().clone());
    let (mut tx, mut rx) = ws.split();
    let text = |v: Value| Message::Text(v.to_string().into());
    let hello = json!({ "op": 10, "d": { "heartbeat_interval": heartbeat_ms, "_trace": ["fake-gateway"] }, "s": null, "t": null });
    if tx.send(text(hello)).await.is_err() {
        return;
    }
    let (out_tx, mut out_rx) = tokio::sync::mpsc::unbounded_channel::<Outgoing>();
    let mut seq: u64 = 0;
    loop {
        tokio::select! {
            frame = rx.next() => match frame {
                Some(Ok(Message::Text(t))) => {
                    let Ok(v) = serde_json::from_str::<Value>(&t) else { continue };
                    state.lock().unwrap().received.push(v.clone());
                    match v["op"].as_u64() {
                        Some(1) => {
                            state.lock().unwrap().heartbeats += 1;
                            if tx.send(text(json!({ "op": 11, "d": null, "s": null, "t": null }))).await.is_err() {
                                break;
                            }
                        }
                        Some(2) => {
                            let d = v["d"].clone();
                            let shard = d["shard"].as_array().and_then(|a| Some((a.first()?.as_u64()?, a.get(1)?.as_u64()?)));
                            let session_id = {
                                let mut s = state.lock().unwrap();
                                s.next_session += 1;
                                format!("fake-session-{}", s.next_session)
                            };
                            seq += 1;
                            let ready = json!({ "op": 0, "t": "READY", "s": seq, "d": ready(&session_id, &url, shard) });
                            if tx.send(text(ready)).await.is_err() {
                                break;
                            }
                            let mut s = state.lock().unwrap();
                            for (t, d) in s.pending.drain(..) {
                                let _ = out_tx.send(Outgoing::Dispatch(t, d));
                            }
                            s.sessions.push(out_tx.clone());
                            s.identifies.push(Identify {
                                token: d["token"].as_str().unwrap_or("").to_string(),
                                intents: d["intents"].as_u64().unwrap_or(0),
                                shard,
                                raw: d,
                            });
                        }
                        Some(6) => {
                            seq = v["d"]["seq"].as_u64().unwrap_or(seq) + 1;
                            let resumed = json!({ "op": 0, "t": "RESUMED", "s": seq, "d": { "_trace": ["fake-gateway"] } });
                            if tx.send(text(resumed)).await.is_err() {
                                break;
                            }
                            let mut s = state.lock().unwrap();
                            for (t, d) in s.pending.drain(..) {
                                let _ = out_tx.send(Outgoing::Dispatch(t, d));
                            }
                            s.sessions.push(out_tx.clone());
                        }
                        _ => {}
                    }
                }
                Some(Ok(Message::Ping(p))) => {
                    let _ = tx.send(Message::Pong(p)).await;
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            out = out_rx.recv() => match out {
                Some(Outgoing::Dispatch(t, d)) => {
                    seq += 1;
                    if tx.send(text(json!({ "op": 0, "t": t, "s": seq, "d": d }))).await.is_err() {
                        break;
                    }
                }
                Some(Outgoing::Close(code)) => {
                    let frame = CloseFrame { code: code.into(), reason: "fake gateway closed the session".into() };
                    let _ = tx.send(Message::Close(Some(frame))).await;
                    break;
                }
                None => break,
            },
        }
    }
}

/// A MESSAGE_REACTION_ADD `d` as Discord documents it: `user` (a `user(..)` object) with `roles`
/// reacted `emoji` (a unicode emoji) to `message` (by the bot) in `channel` of `guild`.
pub fn reaction_add(
    user: &Value,
    roles: &[u64],
    channel: u64,
    message: u64,
    guild: u64,
    emoji: &str,
) -> Value {
    json!({
        "user_id": user["id"], "channel_id": channel.to_string(), "message_id": message.to_string(),
        "guild_id": guild.to_string(), "member": member(user, roles),
        "emoji": { "id": null, "name": emoji }, "message_author_id": BOT_USER_ID.to_string(),
        "burst": false, "burst_colors": [], "type": 0
    })
}

// ---------------------------------------------------------------------------------------------
// HTTP interactions: signing and payloads
// ---------------------------------------------------------------------------------------------

/// How `InteractionSigner::post` signs a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signing {
    /// Correct signature, current timestamp.
    Valid,
    /// Correct signature over a timestamp 10 minutes old.
    Stale,
    /// Correct signature over the given Unix timestamp.
    At(i64),
    /// Headers present, signature made by another key.
    WrongKey,
    /// Headers present, signature over a different body.
    TamperedBody,
    /// Neither header.
    NoHeaders,
}

/// The test's stand-in for Discord's interaction signing key (a fixed seed, so the public key is
/// stable across runs).
#[derive(Clone)]
pub struct InteractionSigner {
    key: ed25519_dalek::SigningKey,
    http: reqwest::Client,
}

impl Default for InteractionSigner {
    fn default() -> Self {
        Self::new()
    }
}

impl InteractionSigner {
    pub const SEED: [u8; 32] = *b"erlmcp-bot discord test key seed";

    pub fn new() -> Self {
        Self::from_seed(Self::SEED)
    }

    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            key: ed25519_dalek::SigningKey::from_bytes(&seed),
            http: reqwest::Client::new(),
        }
    }

    /// The application's public key as the Developer Portal shows it (64 hex digits).
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.public_key_bytes())
    }

    pub fn public_key_bytes(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// hex(Ed25519(timestamp ++ body)), the `X-Signature-Ed25519` header.
    pub fn sign(&self, timestamp: &str, body: &[u8]) -> String {
        use ed25519_dalek::Signer;
        let message = [timestamp.as_bytes(), body].concat();
        hex::encode(self.key.sign(&message).to_bytes())
    }

    /// The two headers Discord sends with `body` at `timestamp`.
    pub fn headers(&self, timestamp: &str, body: &[u8]) -> [(&'static str, String); 2] {
        [
            ("x-signature-ed25519", self.sign(timestamp, body)),
            ("x-signature-timestamp", timestamp.to_string()),
        ]
    }

    /// Now, in Unix seconds (what Discord puts in `X-Signature-Timestamp`).
    pub fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    /// POSTs `body` (JSON) to `url`, signed now.
    pub async fn signed_post(&self, url: &str, body: &str) -> reqwest::Response {
        self.post(url, body, Signing::Valid).await
    }

    /// POSTs `body` (JSON) to `url`, signed as `signing` says.
    pub async fn post(&self, url: &str, body: &str, signing: Signing) -> reqwest::Response {
        let ts = match signing {
            Signing::Stale => Self::now() - 600,
            Signing::At(t) => t,
            _ => Self::now(),
        }
        .to_string();
        let signature = match signing {
            Signing::WrongKey => Self::from_seed([9; 32]).sign(&ts, body.as_bytes()),
            Signing::TamperedBody => self.sign(&ts, format!("{body} ").as_bytes()),
            _ => self.sign(&ts, body.as_bytes()),
        };
        let mut req = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header(
                "user-agent",
                "Discord-Interactions/1.0 (+https://discord.com)",
            )
            .body(body.to_string());
        if signing != Signing::NoHeaders {
            req = req
                .header("x-signature-ed25519", signature)
                .header("x-signature-timestamp", ts);
        }
        req.send().await.expect("the bot answers")
    }
}

fn interaction_token(id: u64) -> String {
    format!("aW50ZXJhY3Rpb246{id}OmZha2U")
}

/// A PING (type 1), what Discord sends to check the endpoint.
pub fn ping() -> Value {
    let id = snowflake();
    json!({
        "id": id.to_string(), "application_id": APP_ID.to_string(), "type": 1,
        "token": interaction_token(id), "version": 1, "entitlements": [], "authorizing_integration_owners": {},
        "attachment_size_limit": 10485760
    })
}

/// The fields every guild interaction has; `kind` and `data` differ.
fn guild_interaction(
    app: u64,
    guild: u64,
    channel: u64,
    user: &Value,
    roles: &[u64],
    kind: u64,
    data: Value,
) -> Value {
    let id = snowflake();
    let mut member = member(user, roles);
    member["permissions"] = json!("2248473465835073");
    json!({
        "id": id.to_string(), "application_id": app.to_string(), "type": kind, "data": data,
        "guild_id": guild.to_string(), "guild": { "id": guild.to_string(), "locale": "en-US", "features": [] },
        "channel_id": channel.to_string(),
        "channel": { "id": channel.to_string(), "type": 0, "guild_id": guild.to_string(), "name": "incident",
                     "permissions": "2248473465835073", "flags": 0, "parent_id": null, "nsfw": false,
                     "position": 0, "topic": null, "rate_limit_per_user": 0, "last_message_id": null },
        "member": member,
        "token": interaction_token(id), "version": 1, "locale": "en-US", "guild_locale": "en-US",
        "app_permissions": "2248473465835073", "entitlements": [],
        "authorizing_integration_owners": { "0": guild.to_string() }, "context": 0,
        "attachment_size_limit": 10485760
    })
}

/// A slash command (type 2, data.type 1) named `name` with `options` (Discord's option objects,
/// e.g. `[{"name":"text","type":3,"value":"..."}]`), by `user` with `roles` in `channel`.
pub fn slash_command(
    app: u64,
    guild: u64,
    channel: u64,
    user: &Value,
    roles: &[u64],
    name: &str,
    options: Value,
) -> Value {
    let options = if options.is_null() {
        json!([])
    } else {
        options
    };
    let data = json!({ "id": snowflake().to_string(), "name": name, "type": 1, "options": options,
                       "guild_id": guild.to_string() });
    guild_interaction(app, guild, channel, user, roles, 2, data)
}

/// A button press (type 3, component_type 2) on `message` (the whole message object).
pub fn button(
    app: u64,
    guild: u64,
    channel: u64,
    user: &Value,
    roles: &[u64],
    custom_id: &str,
    message: &Value,
) -> Value {
    let data = json!({ "custom_id": custom_id, "component_type": 2 });
    let mut i = guild_interaction(app, guild, channel, user, roles, 3, data);
    i["message"] = message.clone();
    i
}

/// A message context-menu command (type 2, data.type 3) named `name` (e.g. "Add to timeline") on
/// `message`, which Discord resolves in full (content included, without the MESSAGE_CONTENT intent).
pub fn message_command(
    app: u64,
    guild: u64,
    channel: u64,
    user: &Value,
    roles: &[u64],
    name: &str,
    message: &Value,
) -> Value {
    let target = message["id"].clone();
    let target_key = target.as_str().unwrap_or_default().to_string();
    let data = json!({ "id": snowflake().to_string(), "name": name, "type": 3, "target_id": target,
                       "guild_id": guild.to_string(),
                       "resolved": { "messages": { target_key: message } } });
    guild_interaction(app, guild, channel, user, roles, 2, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serenity::all::{
        ButtonStyle, ChannelId, ChannelType, CommandOptionType, CreateActionRow, CreateButton,
        CreateChannel, CreateCommand, CreateCommandOption, CreateEmbed, CreateInteractionResponse,
        CreateInteractionResponseFollowup, CreateInteractionResponseMessage, CreateMessage,
        CreateThread, EditInteractionResponse, EditMessage, GuildId, MessageId, UserId,
    };
    use serenity::http::{ErrorResponse, HttpError};
    use serenity::model::application::Interaction;

    const ALICE: u64 = 1_300_000_000_000_000_501;
    const ONCALL_ROLE: u64 = 1_300_000_000_000_000_601;
    const CHANNEL: u64 = 1_300_000_000_000_000_301;

    fn crypto() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }

    fn card_buttons() -> Vec<CreateActionRow> {
        vec![CreateActionRow::Buttons(vec![
            CreateButton::new("approve:R1")
                .label("Approve")
                .style(ButtonStyle::Success),
            CreateButton::new("deny:R1")
                .label("Deny")
                .style(ButtonStyle::Danger),
        ])]
    }

    fn unsuccessful(e: serenity::Error) -> ErrorResponse {
        match e {
            serenity::Error::Http(HttpError::UnsuccessfulRequest(r)) => r,
            other => panic!("expected an unsuccessful request, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn messages_round_trip_through_serenity() {
        crypto();
        let fake = DiscordFake::start().await;
        let http = fake.http();
        let channel = ChannelId::new(CHANNEL);
        let sent = channel
            .send_message(
                &http,
                CreateMessage::new()
                    .content("INC-1 opened")
                    .embed(CreateEmbed::new().title("INC-1").description("p1"))
                    .components(card_buttons()),
            )
            .await
            .expect("send_message");
        assert_eq!(sent.content, "INC-1 opened");
        assert_eq!(sent.channel_id, channel);
        assert_eq!(sent.author.id, UserId::new(BOT_USER_ID));
        assert!(sent.author.bot);
        assert_eq!(sent.embeds[0].title.as_deref(), Some("INC-1"));
        let row = &sent.components[0];
        assert_eq!(row.components.len(), 2);
        match &row.components[0] {
            serenity::all::ActionRowComponent::Button(b) => {
                assert_eq!(b.label.as_deref(), Some("Approve"));
                assert!(
                    matches!(&b.data, serenity::all::ButtonKind::NonLink { custom_id, style }
                    if custom_id == "approve:R1" && *style == ButtonStyle::Success)
                );
            }
            other => panic!("not a button: {other:?}"),
        }

        let call = &fake.calls_to("POST", "/channels/")[0];
        assert_eq!(call.path, format!("/api/v10/channels/{CHANNEL}/messages"));
        assert_eq!(
            call.authorization.as_deref(),
            Some("Bot fake-discord-bot-token")
        );
        assert_eq!(
            call.body["components"][0]["components"][1]["custom_id"],
            "deny:R1"
        );

        let edited = channel
            .edit_message(
                &http,
                sent.id,
                EditMessage::new()
                    .content("INC-1 approved")
                    .components(vec![]),
            )
            .await
            .expect("edit_message");
        assert_eq!(edited.content, "INC-1 approved");
        assert!(edited.components.is_empty());
        assert!(edited.edited_timestamp.is_some());

        let fetched = channel.message(&http, sent.id).await.expect("message");
        assert_eq!(fetched.content, "INC-1 approved");
        channel.pin(&http, sent.id).await.expect("pin");
        assert!(fake.message(sent.id.get()).unwrap()["pinned"] == true);
        assert_eq!(
            fake.calls_to("PUT", "/channels/").last().unwrap().route(),
            format!("/channels/{CHANNEL}/pins/{}", sent.id)
        );

        let reply = channel
            .send_message(
                &http,
                CreateMessage::new()
                    .content("reply")
                    .reference_message((channel, sent.id)),
            )
            .await
            .expect("reply");
        assert_eq!(
            reply.message_reference.unwrap().message_id,
            Some(sent.id),
            "replies keep their reference"
        );

        let err = channel
            .message(&http, MessageId::new(42))
            .await
            .expect_err("unknown message");
        let r = unsuccessful(err);
        assert_eq!(r.status_code.as_u16(), 404);
        assert_eq!(r.error.code, 10008);
        assert_eq!(r.error.message, "Unknown Message");
    }

    #[tokio::test]
    async fn channels_threads_commands_members_and_users_deserialize() {
        crypto();
        let fake = DiscordFake::start().await;
        let http = fake.http();
        let guild = GuildId::new(GUILD_ID);

        let c = guild
            .create_channel(
                &http,
                CreateChannel::new("inc-2026-11-28-db")
                    .kind(ChannelType::Text)
                    .topic("INC-1"),
            )
            .await
            .expect("create_channel");
        assert_eq!(c.name, "inc-2026-11-28-db");
        assert_eq!(c.kind, ChannelType::Text);
        assert_eq!(c.guild_id, guild);
        assert_eq!(c.topic.as_deref(), Some("INC-1"));
        assert!(fake.channel(c.id.get()).is_some());

        let t =
            c.id.create_thread(
                &http,
                CreateThread::new("war room").kind(ChannelType::PrivateThread),
            )
            .await
            .expect("create_thread");
        assert_eq!(t.kind, ChannelType::PrivateThread);
        assert_eq!(t.parent_id, Some(c.id));
        assert_eq!(t.guild_id, guild);
        assert!(t.thread_metadata.is_some());

        let m =
            c.id.send_message(&http, CreateMessage::new().content("card"))
                .await
                .unwrap();
        let t2 =
            c.id.create_thread_from_message(&http, m.id, CreateThread::new("INC-1 discussion"))
                .await
                .expect("create_thread_from_message");
        assert_eq!(
            t2.id.get(),
            m.id.get(),
            "a message's thread has the message's id"
        );
        assert_eq!(t2.kind, ChannelType::PublicThread);
        t.id.add_thread_member(&http, UserId::new(ALICE))
            .await
            .expect("thread member");
        let overwrite = serenity::all::PermissionOverwrite {
            allow: serenity::all::Permissions::VIEW_CHANNEL,
            deny: serenity::all::Permissions::empty(),
            kind: serenity::all::PermissionOverwriteType::Member(UserId::new(ALICE)),
        };
        c.id.create_permission(&http, overwrite)
            .await
            .expect("permission overwrite");
        assert_eq!(
            fake.calls_to("PUT", &format!("/channels/{}/permissions/", c.id))[0].body["allow"],
            "1024"
        );

        let commands = guild
            .set_commands(
                &http,
                vec![
                    CreateCommand::new("incident")
                        .description("Incident commands")
                        .add_option(
                            CreateCommandOption::new(
                                CommandOptionType::String,
                                "text",
                                "What to do",
                            )
                            .required(true),
                        ),
                    CreateCommand::new("Add to timeline").kind(serenity::all::CommandType::Message),
                ],
            )
            .await
            .expect("set_commands");
        assert_eq!(commands.len(), 2);
        assert_eq!(commands[0].name, "incident");
        assert_eq!(commands[0].options[0].name, "text");
        assert!(commands[0].options[0].required);
        assert_eq!(commands[1].kind, serenity::all::CommandType::Message);
        assert_eq!(commands[1].application_id.get(), APP_ID);
        assert_eq!(
            fake.calls_to("PUT", "/applications/")[0].route(),
            format!("/applications/{APP_ID}/guilds/{GUILD_ID}/commands")
        );
        assert_eq!(fake.commands(GUILD_ID).len(), 2);

        fake.set_user(ALICE, "alice", false);
        fake.set_roles(ALICE, &[ONCALL_ROLE]);
        fake.set_user(1_300_000_000_000_000_502, "deploybot", true);
        let member = guild
            .member(&http, UserId::new(ALICE))
            .await
            .expect("member");
        assert_eq!(member.user.name, "alice");
        assert_eq!(member.roles, vec![serenity::all::RoleId::new(ONCALL_ROLE)]);
        assert_eq!(member.guild_id, guild);
        let bot = UserId::new(1_300_000_000_000_000_502)
            .to_user(&http)
            .await
            .expect("user");
        assert!(bot.bot);
        let me = http.get_current_user().await.expect("current user");
        assert_eq!(me.id.get(), BOT_USER_ID);
        assert!(me.bot);
        let app = http
            .get_current_application_info()
            .await
            .expect("application");
        assert_eq!(app.id.get(), APP_ID);
        assert_eq!(app.verify_key, InteractionSigner::new().public_key_hex());
    }

    #[tokio::test]
    async fn interaction_responses_and_follow_ups() {
        crypto();
        let fake = DiscordFake::start().await;
        let http = fake.http();
        let i = slash_command(
            APP_ID,
            GUILD_ID,
            CHANNEL,
            &user(ALICE, "alice", false),
            &[],
            "incident",
            json!([]),
        );
        let token = i["token"].as_str().unwrap();
        fake.bind_interaction(token, CHANNEL);
        let id = serenity::all::InteractionId::new(i["id"].as_str().unwrap().parse().unwrap());
        http.create_interaction_response(
            id,
            token,
            &CreateInteractionResponse::Defer(
                CreateInteractionResponseMessage::new().ephemeral(true),
            ),
            vec![],
        )
        .await
        .expect("callback");
        assert_eq!(
            fake.calls_to("POST", "/interactions/")[0].route(),
            format!("/interactions/{id}/{token}/callback")
        );
        assert_eq!(fake.original(token).unwrap()["flags"], 64 | 128);

        let original = http
            .edit_original_interaction_response(
                token,
                &EditInteractionResponse::new().content("INC-1 opened"),
                vec![],
            )
            .await
            .expect("edit original");
        assert_eq!(original.content, "INC-1 opened");
        assert_eq!(original.channel_id.get(), CHANNEL);
        assert_eq!(original.webhook_id.map(|w| w.get()), Some(APP_ID));

        let followup = http
            .create_followup_message(
                token,
                &CreateInteractionResponseFollowup::new()
                    .content("only you can see this")
                    .ephemeral(true),
                vec![],
            )
            .await
            .expect("follow-up");
        assert_eq!(followup.content, "only you can see this");
        assert!(
            followup
                .flags
                .unwrap()
                .contains(serenity::all::MessageFlags::EPHEMERAL)
        );
        assert!(
            ChannelId::new(CHANNEL)
                .message(&http, followup.id)
                .await
                .is_err(),
            "ephemeral messages are not channel messages"
        );
        let edited = http
            .edit_followup_message(
                token,
                followup.id,
                &CreateInteractionResponseFollowup::new().content("edited"),
                vec![],
            )
            .await
            .expect("edit follow-up");
        assert_eq!(edited.content, "edited");
        let public = http
            .create_followup_message(
                token,
                &CreateInteractionResponseFollowup::new().content("for everyone"),
                vec![],
            )
            .await
            .unwrap();
        assert!(
            !public
                .flags
                .unwrap()
                .contains(serenity::all::MessageFlags::EPHEMERAL)
        );
        assert_eq!(
            fake.calls_to("POST", "/webhooks/")[0].route(),
            format!("/webhooks/{APP_ID}/{token}")
        );

        // An original answered in the HTTP response (never seen by the fake) can still be edited.
        let other = http
            .edit_original_interaction_response(
                "unseen-token",
                &EditInteractionResponse::new().content("late edit"),
                vec![],
            )
            .await
            .expect("edit an original the fake never saw");
        assert_eq!(other.channel_id.get(), DEFAULT_CHANNEL_ID);
    }

    #[tokio::test]
    async fn faults_surface_as_serenity_errors() {
        crypto();
        let fake = DiscordFake::start().await;
        let http = fake.http();
        let channel = ChannelId::new(CHANNEL);

        fake.fail_next(
            "POST",
            &format!("/channels/{CHANNEL}/messages"),
            429,
            rate_limited_body(0.2, false),
            1,
        );
        let r = unsuccessful(
            channel
                .send_message(&http, CreateMessage::new().content("x"))
                .await
                .unwrap_err(),
        );
        assert_eq!(r.status_code.as_u16(), 429);
        // Discord's documented 429 body has no `code`, which serenity requires: the body is lost,
        // `retry_after` with it, and serenity gives no access to the headers either.
        assert_eq!(r.error.code, -1);
        assert!(
            r.error
                .message
                .starts_with("[Serenity] Could not decode json"),
            "{}",
            r.error.message
        );
        assert!(r.error.message.contains("missing field `code`"));

        // With a `code` (Discord adds one for some limits) the message survives; retry_after still not.
        let mut with_code = rate_limited_body(0.2, false);
        with_code["code"] = json!(0);
        fake.fail_next("POST", "/channels/", 429, with_code, 1);
        let r = unsuccessful(
            channel
                .send_message(&http, CreateMessage::new().content("x"))
                .await
                .unwrap_err(),
        );
        assert_eq!(
            (
                r.status_code.as_u16(),
                r.error.code,
                r.error.message.as_str()
            ),
            (429, 0, "You are being rate limited.")
        );
        let rate_limited = fake.calls_to("POST", "/channels/");
        assert_eq!(rate_limited.len(), 2, "no retry with the rate limiter off");

        // The headers are there for a client that reads them itself.
        fake.fail_next("GET", "/users/@me", 429, rate_limited_body(1.5, true), 1);
        let raw = reqwest::Client::new()
            .get(format!("{}/api/v10/users/@me", fake.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(raw.status().as_u16(), 429);
        assert_eq!(raw.headers()["retry-after"], "2");
        assert_eq!(raw.headers()["x-ratelimit-reset-after"], "1.500");
        assert_eq!(raw.headers()["x-ratelimit-scope"], "global");
        assert_eq!(raw.json::<Value>().await.unwrap()["retry_after"], 1.5);

        fake.fail_next("PUT", "/channels/", 403, missing_permissions_body(), 2);
        for _ in 0..2 {
            let r = unsuccessful(channel.pin(&http, MessageId::new(7)).await.unwrap_err());
            assert_eq!(r.status_code.as_u16(), 403);
            assert_eq!(r.error.code, 50013);
            assert_eq!(r.error.message, "Missing Permissions");
            assert_eq!(r.method.as_str(), "PUT");
        }
        channel
            .pin(&http, MessageId::new(7))
            .await
            .expect("the fault was used up");

        // Unknown routes: 404 with Discord's JSON, recorded.
        let r = unsuccessful(
            http.get_guild(GuildId::new(GUILD_ID))
                .await
                .expect_err("no such route in the fake"),
        );
        assert_eq!((r.status_code.as_u16(), r.error.code), (404, 0));
        assert_eq!(fake.calls_to("GET", "/guilds/").len(), 1);

        // A wrong token: 401.
        let stranger = serenity::http::HttpBuilder::new("another-token")
            .proxy(fake.url())
            .ratelimiter_disabled(true)
            .build();
        let r = unsuccessful(stranger.get_current_user().await.unwrap_err());
        assert_eq!(r.status_code.as_u16(), 401);
    }

    #[tokio::test]
    async fn wait_for_sees_calls_made_later() {
        crypto();
        let fake = DiscordFake::start().await;
        let http = fake.http();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            ChannelId::new(CHANNEL)
                .send_message(&http, CreateMessage::new().content("late"))
                .await
                .unwrap();
        });
        let call = fake
            .wait_for(
                |c| c.is("POST", "/channels/") && c.body["content"] == "late",
                Duration::from_secs(10),
            )
            .await;
        assert_eq!(call.query, "");
        assert_eq!(fake.messages_in(CHANNEL).len(), 1);
    }

    async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
        tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("an event in time")
            .expect("handler alive")
    }

    #[derive(Clone)]
    struct Handler(tokio::sync::mpsc::UnboundedSender<String>);

    #[serenity::async_trait]
    impl serenity::client::EventHandler for Handler {
        async fn ready(&self, _: serenity::client::Context, ready: serenity::all::Ready) {
            let _ = self.0.send(format!(
                "ready {} {} {}",
                ready.user.id, ready.user.bot, ready.session_id
            ));
        }

        async fn reaction_add(&self, _: serenity::client::Context, r: serenity::all::Reaction) {
            let member = r.member.clone().expect("member");
            let _ = self.0.send(format!(
                "reaction {} {} {} {} {:?} {} {}",
                r.user_id.unwrap(),
                r.message_id,
                r.emoji,
                member.user.name,
                member.roles,
                member.user.bot,
                member.guild_id
            ));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_serenity_client_connects_and_receives_reactions() {
        crypto();
        let fake = DiscordFake::start().await;
        // A short heartbeat interval, to see heartbeats acknowledged (serenity sends the first one
        // an interval after Identify, and reconnects when one goes unacknowledged).
        let gateway = FakeGateway::start_with_interval(&fake, 200).await;
        // Queued before anyone connects: delivered after READY.
        gateway.dispatch(
            "MESSAGE_REACTION_ADD",
            reaction_add(
                &user(ALICE, "alice", false),
                &[ONCALL_ROLE],
                CHANNEL,
                77,
                GUILD_ID,
                "✅",
            ),
        );
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let intents = serenity::all::GatewayIntents::GUILDS
            | serenity::all::GatewayIntents::GUILD_MESSAGE_REACTIONS;
        let mut client = serenity::client::ClientBuilder::new_with_http(fake.http(), intents)
            .event_handler(Handler(tx))
            .await
            .expect("client");
        let shards = client.shard_manager.clone();
        let running = tokio::spawn(async move { client.start().await });

        let identify = gateway.wait_identified(Duration::from_secs(20)).await;
        assert_eq!(identify.token, format!("Bot {BOT_TOKEN}"));
        assert_eq!(identify.intents, INTENTS);
        assert_eq!(identify.shard, Some((0, 1)));
        assert_eq!(gateway.connection_uris(), vec!["/?v=10".to_string()]);
        assert_eq!(
            fake.calls_to("GET", "/gateway").len(),
            1,
            "{:?}",
            fake.calls()
        );

        let ready = next(&mut rx).await;
        assert_eq!(ready, format!("ready {BOT_USER_ID} true fake-session-1"));
        let reaction = next(&mut rx).await;
        assert_eq!(
            reaction,
            format!("reaction {ALICE} 77 ✅ alice [RoleId({ONCALL_ROLE})] false {GUILD_ID}")
        );

        gateway.dispatch(
            "MESSAGE_REACTION_ADD",
            reaction_add(
                &user(1_300_000_000_000_000_502, "deploybot", true),
                &[],
                CHANNEL,
                78,
                GUILD_ID,
                "✅",
            ),
        );
        let reaction = next(&mut rx).await;
        assert!(
            reaction.ends_with(&format!("deploybot [] true {GUILD_ID}")),
            "{reaction}"
        );

        for _ in 0..500 {
            if gateway.heartbeats() >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(gateway.heartbeats() >= 3, "{:?}", gateway.received());
        assert_eq!(
            gateway.connections(),
            1,
            "acknowledged heartbeats keep the session"
        );

        // A dropped session: serenity resumes on resume_gateway_url and events flow again.
        gateway.disconnect_all(4000);
        for _ in 0..1000 {
            if gateway.connections() > 1 && gateway.received().iter().any(|f| f["op"] == 6) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let resume = gateway
            .received()
            .into_iter()
            .find(|f| f["op"] == 6)
            .expect("a Resume");
        assert_eq!(resume["d"]["session_id"], "fake-session-1");
        gateway.dispatch(
            "MESSAGE_REACTION_ADD",
            reaction_add(
                &user(ALICE, "alice", false),
                &[ONCALL_ROLE],
                CHANNEL,
                79,
                GUILD_ID,
                "✅",
            ),
        );
        let reaction = next(&mut rx).await;
        assert!(
            reaction.starts_with(&format!("reaction {ALICE} 79")),
            "{reaction}"
        );

        shards.shutdown_all().await;
        let _ = tokio::time::timeout(Duration::from_secs(10), running).await;
    }

    fn parse(v: &Value) -> Interaction {
        serde_json::from_slice::<Interaction>(&serde_json::to_vec(v).unwrap())
            .unwrap_or_else(|e| panic!("{e}: {v:#}"))
    }

    #[test]
    fn ping_deserializes() {
        match parse(&ping()) {
            Interaction::Ping(p) => assert_eq!(p.application_id.get(), APP_ID),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn slash_command_deserializes_with_member_roles() {
        let v = slash_command(
            APP_ID,
            GUILD_ID,
            CHANNEL,
            &user(ALICE, "alice", false),
            &[ONCALL_ROLE],
            "incident",
            json!([{ "name": "text", "type": 3, "value": "status" }]),
        );
        match parse(&v) {
            Interaction::Command(c) => {
                assert_eq!(c.data.name, "incident");
                assert_eq!(c.data.kind, serenity::all::CommandType::ChatInput);
                assert_eq!(c.data.options[0].name, "text");
                assert_eq!(c.data.options[0].value.as_str(), Some("status"));
                assert_eq!(
                    c.user.id.get(),
                    ALICE,
                    "serenity copies member.user into user"
                );
                assert!(!c.user.bot);
                let m = c.member.unwrap();
                assert_eq!(m.roles, vec![serenity::all::RoleId::new(ONCALL_ROLE)]);
                assert_eq!(m.guild_id.get(), GUILD_ID);
                assert_eq!(c.channel_id.get(), CHANNEL);
                assert_eq!(c.channel.unwrap().name.as_deref(), Some("incident"));
                assert_eq!(c.version, 1);
                assert_eq!(c.context, Some(serenity::all::InteractionContext::Guild));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn button_deserializes_with_its_message() {
        let card = message(
            snowflake(),
            CHANNEL,
            &bot_user_in_message(),
            "Approve restart?",
            json!([{ "type": 1, "components": [
                { "type": 2, "style": 3, "label": "Approve", "custom_id": "approve:R1" } ] }]),
        );
        let v = button(
            APP_ID,
            GUILD_ID,
            CHANNEL,
            &user(1_300_000_000_000_000_502, "deploybot", true),
            &[],
            "approve:R1",
            &card,
        );
        match parse(&v) {
            Interaction::Component(c) => {
                assert_eq!(c.data.custom_id, "approve:R1");
                assert!(matches!(
                    c.data.kind,
                    serenity::all::ComponentInteractionDataKind::Button
                ));
                assert_eq!(c.message.content, "Approve restart?");
                assert_eq!(c.message.components[0].components.len(), 1);
                assert!(c.user.bot, "a bot pressing is visible");
                assert_eq!(c.member.unwrap().guild_id.get(), GUILD_ID);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn message_command_deserializes_with_the_resolved_message() {
        let target = message(
            snowflake(),
            CHANNEL,
            &user(ALICE, "alice", false),
            "db failover done at 14:02",
            json!([]),
        );
        let v = message_command(
            APP_ID,
            GUILD_ID,
            CHANNEL,
            &user(ALICE, "alice", false),
            &[ONCALL_ROLE],
            "Add to timeline",
            &target,
        );
        match parse(&v) {
            Interaction::Command(c) => {
                assert_eq!(c.data.kind, serenity::all::CommandType::Message);
                assert_eq!(c.data.name, "Add to timeline");
                let id = MessageId::new(target["id"].as_str().unwrap().parse().unwrap());
                assert_eq!(c.data.target_id.map(|t| t.get()), Some(id.get()));
                let m = &c.data.resolved.messages[&id];
                assert_eq!(m.content, "db failover done at 14:02");
                assert_eq!(m.author.name, "alice");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn serenity_verifier_accepts_the_signature_and_refuses_tampering() {
        let signer = InteractionSigner::new();
        assert_eq!(signer.public_key_hex().len(), 64);
        assert_eq!(
            signer.public_key_hex(),
            InteractionSigner::new().public_key_hex(),
            "fixed seed"
        );
        let verifier =
            serenity::interactions_endpoint::Verifier::try_new(signer.public_key_bytes())
                .expect("valid key");
        let body = ping().to_string();
        let ts = InteractionSigner::now().to_string();
        let sig = signer.sign(&ts, body.as_bytes());
        assert_eq!(sig.len(), 128);
        assert!(verifier.verify(&sig, &ts, body.as_bytes()).is_ok());
        assert!(
            verifier
                .verify(&sig, &ts, format!("{body} ").as_bytes())
                .is_err()
        );
        assert!(verifier.verify(&sig, "0", body.as_bytes()).is_err());
        let other = InteractionSigner::from_seed([9; 32]).sign(&ts, body.as_bytes());
        assert!(verifier.verify(&other, &ts, body.as_bytes()).is_err());
        let [(h1, v1), (h2, v2)] = signer.headers(&ts, body.as_bytes());
        assert_eq!((h1, v1.as_str()), ("x-signature-ed25519", sig.as_str()));
        assert_eq!((h2, v2.as_str()), ("x-signature-timestamp", ts.as_str()));
    }

    /// What the bot's endpoint must do: 401 unless the signature verifies and the timestamp is
    /// within 5 minutes.
    async fn verifying_endpoint(headers: HeaderMap, body: Bytes) -> StatusCode {
        let verifier = serenity::interactions_endpoint::Verifier::try_new(
            InteractionSigner::new().public_key_bytes(),
        )
        .unwrap();
        let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
        let (Some(sig), Some(ts)) = (
            header("x-signature-ed25519"),
            header("x-signature-timestamp"),
        ) else {
            return StatusCode::UNAUTHORIZED;
        };
        let fresh = ts
            .parse::<i64>()
            .is_ok_and(|t| (InteractionSigner::now() - t).abs() <= 300);
        if verifier.verify(sig, ts, &body).is_err() || !fresh {
            return StatusCode::UNAUTHORIZED;
        }
        StatusCode::OK
    }

    #[tokio::test]
    async fn signed_posts_carry_what_each_signing_says() {
        crypto();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/interactions", listener.local_addr().unwrap());
        let app = Router::new().route("/interactions", axum::routing::post(verifying_endpoint));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let signer = InteractionSigner::new();
        let body = ping().to_string();
        for (signing, status) in [
            (Signing::Valid, 200),
            (Signing::At(InteractionSigner::now() - 10), 200),
            (Signing::Stale, 401),
            (Signing::At(1_700_000_000), 401),
            (Signing::WrongKey, 401),
            (Signing::TamperedBody, 401),
            (Signing::NoHeaders, 401),
        ] {
            let resp = signer.post(&url, &body, signing).await;
            assert_eq!(resp.status().as_u16(), status, "{signing:?}");
        }
        assert_eq!(signer.signed_post(&url, &body).await.status(), 200);
    }
}
