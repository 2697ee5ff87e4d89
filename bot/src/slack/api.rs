//! A small client for the Slack Web API: form-encoded calls with the bot token, `ok: false`
//! turned into the error code Slack gave, HTTP 429 retried after `Retry-After`, server errors
//! retried with backoff for the methods that are safe to repeat. The base URL is configurable
//! (`SLACK_API_URL`) for tests and gateways.

use serde_json::Value;
use std::fmt;
use std::time::Duration;

pub const DEFAULT_API_URL: &str = "https://slack.com/api";
const MAX_RETRIES: u32 = 3;
/// Never wait longer than this for one rate-limit window, whatever Slack asks.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlackError {
    /// Slack answered `ok: false` with this error code (`channel_not_found`, `invalid_auth`, ...).
    Api {
        method: String,
        code: String,
    },
    /// An HTTP failure that retries did not cure.
    Http {
        method: String,
        status: u16,
        body: String,
    },
    Transport {
        method: String,
        message: String,
    },
}

impl SlackError {
    pub fn code(&self) -> Option<&str> {
        match self {
            SlackError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl fmt::Display for SlackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlackError::Api { method, code } => write!(f, "Slack {method}: {code}"),
            SlackError::Http {
                method,
                status,
                body,
            } => write!(
                f,
                "Slack {method}: HTTP {status} {}",
                body.chars().take(200).collect::<String>()
            ),
            SlackError::Transport { method, message } => write!(f, "Slack {method}: {message}"),
        }
    }
}

impl std::error::Error for SlackError {}

/// An error with the causes its `Display` leaves out ("error sending request" says nothing of a
/// refused connection or an unknown host; its sources do).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Methods whose repetition changes nothing more (reads; updates to the same content; joins,
/// invites and pins, which answer `already_…` the second time).
fn safe_to_repeat(method: &str) -> bool {
    matches!(
        method,
        "auth.test"
            | "bots.info"
            | "users.info"
            | "conversations.history"
            | "conversations.replies"
            | "conversations.info"
            | "conversations.join"
            | "conversations.invite"
            | "chat.update"
            | "pins.add"
    )
}

#[derive(Clone)]
pub struct WebApi {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl WebApi {
    pub fn new(base: &str, token: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
        }
    }

    /// Calls `method` with form parameters. Returns the JSON answer of a successful call.
    ///
    /// Retries: a 429 (Slack did not act; it says when to come back) and a connection that was
    /// never made are retried for every method. A 5xx or a connection lost after sending is
    /// retried only for methods that are safe to repeat: posting a message again could post it
    /// twice, creating a channel again could create two.
    pub async fn call(&self, method: &str, params: &[(&str, String)]) -> Result<Value, SlackError> {
        let url = format!("{}/{method}", self.base);
        let repeatable = safe_to_repeat(method);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let began = std::time::Instant::now();
            let counted = |outcome: &'static str| {
                crate::metrics::chat_attempt("slack", method, outcome, began.elapsed());
            };
            let sent = self
                .http
                .post(&url)
                .bearer_auth(&self.token)
                .form(params)
                .send()
                .await;
            let resp = match sent {
                Ok(r) => r,
                Err(e) if attempt <= MAX_RETRIES && (repeatable || e.is_connect()) => {
                    counted("retried");
                    let e = e.without_url();
                    tracing::warn!(method, error = %e, attempt, "Slack call failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                    continue;
                }
                Err(e) => {
                    counted("transport_error");
                    return Err(SlackError::Transport {
                        method: method.into(),
                        message: with_causes(&e.without_url()),
                    });
                }
            };
            let status = resp.status().as_u16();
            if status == 429 && attempt <= MAX_RETRIES {
                counted("rate_limited");
                let wait = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(Duration::from_secs)
                    .unwrap_or(Duration::from_secs(1))
                    .min(MAX_RETRY_AFTER);
                tracing::warn!(method, ?wait, "Slack rate limit; waiting as asked");
                tokio::time::sleep(wait).await;
                continue;
            }
            if status >= 500 && attempt <= MAX_RETRIES && repeatable {
                counted("retried");
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                continue;
            }
            let body = resp.text().await.unwrap_or_default();
            if status != 200 {
                counted(if status == 429 {
                    "rate_limited"
                } else {
                    "http_error"
                });
                return Err(SlackError::Http {
                    method: method.into(),
                    status,
                    body,
                });
            }
            let json: Value = serde_json::from_str(&body).map_err(|e| {
                counted("transport_error");
                SlackError::Transport {
                    method: method.into(),
                    message: format!("unreadable answer: {e}"),
                }
            })?;
            if json["ok"].as_bool() == Some(true) {
                counted("ok");
                return Ok(json);
            }
            counted("error");
            let code = json["error"]
                .as_str()
                .unwrap_or("unknown_error")
                .to_string();
            return Err(SlackError::Api {
                method: method.into(),
                code,
            });
        }
    }

    /// Answers a slash command or interaction later, through its `response_url` (no token needed).
    pub async fn respond(&self, response_url: &str, body: &Value) -> Result<(), SlackError> {
        let began = std::time::Instant::now();
        let result = self.respond_once(response_url, body).await;
        let outcome = match &result {
            Ok(()) => "ok",
            Err(SlackError::Http { .. }) => "http_error",
            Err(_) => "transport_error",
        };
        crate::metrics::chat_attempt("slack", "response_url", outcome, began.elapsed());
        result
    }

    async fn respond_once(&self, response_url: &str, body: &Value) -> Result<(), SlackError> {
        let resp = self
            .http
            .post(response_url)
            .json(body)
            .send()
            .await
            .map_err(|e| SlackError::Transport {
                method: "response_url".into(),
                // A response_url is a capability (it posts as the bot for 30 minutes): never in
                // an error, so never in a log.
                message: with_causes(&e.without_url()),
            })?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(SlackError::Http {
                method: "response_url".into(),
                status: resp.status().as_u16(),
                body: resp.text().await.unwrap_or_default(),
            })
        }
    }
}
