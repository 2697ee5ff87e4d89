//! A small client for Discord's REST API (v10). Bodies are built with serenity's models and
//! builders where they help; the calls are our own so that a 429's `retry_after` is honoured
//! (serenity 0.12 drops it from the error once its rate limiter is off, which it must be to
//! reach a REST stand-in) and Discord's error message reaches the person whole.

use serde_json::Value;
use std::fmt;
use std::time::Duration;

/// Where Discord's API lives; `DISCORD_API_URL` replaces it (tests, gateways).
pub const DEFAULT_API_URL: &str = "https://discord.com";
/// Retries of a 429 or of a connection never made; Discord's rate limits are per route.
const MAX_RETRIES: u32 = 3;
/// Longer than this and the person is better told than kept waiting.
const LONGEST_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub enum DiscordError {
    /// Discord answered with an error: its JSON error code and message.
    Api {
        route: String,
        status: u16,
        code: i64,
        message: String,
    },
    /// No answer (connection refused, timeout, unreadable body).
    Transport { route: String, error: String },
}

impl DiscordError {
    pub fn code(&self) -> Option<i64> {
        match self {
            DiscordError::Api { code, .. } => Some(*code),
            DiscordError::Transport { .. } => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            DiscordError::Api { status, .. } => Some(*status),
            DiscordError::Transport { .. } => None,
        }
    }
}

impl fmt::Display for DiscordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiscordError::Api {
                route,
                status,
                code,
                message,
            } => {
                write!(
                    f,
                    "Discord refused {route}: {message} (code {code}, HTTP {status})"
                )?;
                if *code == MISSING_PERMISSIONS {
                    write!(
                        f,
                        "; give the bot's role the permissions in deploy/discord-app.md"
                    )?;
                }
                Ok(())
            }
            DiscordError::Transport { route, error } => {
                write!(f, "Discord could not be reached for {route}: {error}")
            }
        }
    }
}

impl std::error::Error for DiscordError {}

impl From<DiscordError> for crate::chat::ChatError {
    fn from(e: DiscordError) -> Self {
        crate::chat::ChatError(e.to_string())
    }
}

/// Discord's JSON error code for a permission the bot's role lacks.
pub const MISSING_PERMISSIONS: i64 = 50013;

#[derive(Clone)]
pub struct Rest {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Rest {
    pub fn new(base: &str, token: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: token.trim().to_string(),
        }
    }

    /// `method path` with an optional JSON body; the JSON answer (`Null` for 204). `route` names
    /// the call in errors and metrics (`POST /channels/{id}/messages`).
    pub async fn call(
        &self,
        method: reqwest::Method,
        route: &'static str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, DiscordError> {
        let url = format!("{}/api/v10{path}", self.base);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let began = std::time::Instant::now();
            let counted = |outcome: &'static str| {
                crate::metrics::chat_attempt(
                    "discord",
                    metric_name(route),
                    outcome,
                    began.elapsed(),
                );
            };
            let mut req = self.http.request(method.clone(), &url).header(
                "User-Agent",
                "DiscordBot (https://erlmcp.io, 0.1) erlmcp-bot",
            );
            // Webhook routes (interaction follow-ups) are authorised by their token alone.
            if !path.starts_with("/webhooks/") {
                req = req.header("Authorization", format!("Bot {}", self.token));
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) if attempt <= MAX_RETRIES && e.is_connect() => {
                    counted("retried");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                    continue;
                }
                Err(e) => {
                    counted("transport_error");
                    return Err(DiscordError::Transport {
                        route: route.to_string(),
                        error: e.without_url().to_string(),
                    });
                }
            };
            let status = resp.status();
            let header_wait = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|w| w.is_finite());
            let text = resp.text().await.unwrap_or_default();
            let json: Value = if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::Null)
            };
            if status.as_u16() == 429 {
                // Discord did not act; it says when to come back (seconds, fractional).
                let wait = json["retry_after"]
                    .as_f64()
                    .filter(|w| w.is_finite())
                    .or(header_wait)
                    .unwrap_or(1.0);
                let wait = Duration::from_secs_f64(wait.clamp(0.0, 3600.0));
                if attempt <= MAX_RETRIES && wait <= LONGEST_WAIT {
                    counted("rate_limited");
                    tracing::warn!(
                        route,
                        wait_ms = wait.as_millis() as u64,
                        "Discord rate limit; waiting as it asks"
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
                counted("rate_limited");
                return Err(DiscordError::Api {
                    route: route.to_string(),
                    status: 429,
                    code: json["code"].as_i64().unwrap_or(0),
                    message: format!(
                        "rate limited; Discord asks to wait {:.1} s",
                        wait.as_secs_f64()
                    ),
                });
            }
            if status.is_success() {
                counted("ok");
                return Ok(json);
            }
            counted(if status.is_server_error() {
                "http_error"
            } else {
                "error"
            });
            let message = json["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| {
                    format!(
                        "HTTP {status}: {}",
                        text.chars().take(200).collect::<String>()
                    )
                });
            return Err(DiscordError::Api {
                route: route.to_string(),
                status: status.as_u16(),
                code: json["code"].as_i64().unwrap_or(0),
                message,
            });
        }
    }
}

/// A metrics label for a route: `POST /channels/{id}/messages` -> `channels.messages.post`.
fn metric_name(route: &str) -> &str {
    match route {
        "PUT /applications/{app}/guilds/{guild}/commands" => "commands.put",
        "POST /guilds/{guild}/channels" => "channels.create",
        "POST /channels/{channel}/threads" => "threads.create",
        "POST /channels/{channel}/messages" => "messages.create",
        "PATCH /channels/{channel}/messages/{message}" => "messages.edit",
        "GET /channels/{channel}/messages/{message}" => "messages.get",
        "PUT /channels/{channel}/messages/pins/{message}" => "pins.put",
        "PUT /channels/{channel}/thread-members/{user}" => "thread_members.put",
        "GET /guilds/{guild}/members/{user}" => "members.get",
        "GET /users/@me" => "users.me",
        "POST /webhooks/{app}/{token}" => "followup.create",
        "PATCH /webhooks/{app}/{token}/messages/@original" => "original.edit",
        _ => "other",
    }
}
