//! The HTTP endpoints Slack calls, and the probes. Each Slack request is verified, answered at
//! once (Slack wants an answer within 3 seconds), and its work continues in a spawned task.

use super::Slack;
use super::poster::PLATFORM;
use super::verify::Verifier;
use crate::store::futures_ping::PingFuture;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub slack: Slack,
    pub verifier: Arc<Verifier>,
    pub ping: Arc<dyn Fn() -> PingFuture + Send + Sync>,
}

impl AppState {
    pub fn new(
        slack: Slack,
        signing_secret: &str,
        ping: Arc<dyn Fn() -> PingFuture + Send + Sync>,
    ) -> Self {
        Self {
            slack,
            verifier: Arc::new(Verifier::new(signing_secret)),
            ping,
        }
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/slack/commands", post(commands))
        .route("/slack/interactions", post(interactions))
        .route("/slack/events", post(events))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(state)
}

fn unauthorized(why: String) -> Response {
    tracing::warn!(%why, "refused a request that is not from Slack");
    (
        StatusCode::UNAUTHORIZED,
        format!("invalid Slack request signature: {why}"),
    )
        .into_response()
}

fn bad_request(why: &str) -> Response {
    (StatusCode::BAD_REQUEST, why.to_string()).into_response()
}

/// The body as text, if it is genuine; otherwise the answer to give (boxed: it is large).
fn verified(state: &AppState, headers: &HeaderMap, body: &Bytes) -> Result<String, Box<Response>> {
    let text = std::str::from_utf8(body).map_err(|_| Box::new(bad_request("body is not UTF-8")))?;
    state
        .verifier
        .check(headers, text)
        .map_err(|why| Box::new(unauthorized(why)))?;
    Ok(text.to_string())
}

/// Why a request was not taken.
enum NotTaken {
    /// A replay, or otherwise not from Slack: the answer to give.
    Refused(Box<Response>),
    /// The database did not record it: nothing happened; the person must be told.
    DatabaseDown(String),
}

/// Slack never re-sends a slash command or a button press, so a second request with the same
/// signature is a replay (a signature stays valid for the 5-minute window): refused.
async fn not_replayed(state: &AppState, headers: &HeaderMap) -> Result<(), NotTaken> {
    let signature = headers
        .get("x-slack-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let recorded = tokio::time::timeout(
        DATABASE_PATIENCE,
        state
            .slack
            .poster
            .chat
            .first_delivery("slack-signature", signature),
    )
    .await
    .unwrap_or_else(|_| {
        Err(crate::error::Error::Database(format!(
            "no answer within {} s",
            DATABASE_PATIENCE.as_secs()
        )))
    });
    match recorded {
        Ok(true) => Ok(()),
        Ok(false) => Err(NotTaken::Refused(Box::new(unauthorized(
            "replayed request: this signature was already used".into(),
        )))),
        Err(e) => {
            tracing::error!(error = %e, "the database is unreachable; a request was refused unrecorded");
            Err(NotTaken::DatabaseDown(e.to_string()))
        }
    }
}

/// How long the request path waits for the database before telling the person it is down:
/// Slack gives up on an answer after 3 seconds.
const DATABASE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// What the person is told when the database could not record their request.
fn database_down_text(why: &str) -> String {
    format!(
        "⚠ erlmcp-bot cannot reach its database ({why}). Nothing was recorded and nothing was changed. Try again in a moment; if it persists, run `erlmcp-bot console` against the standby database (`DATABASE_URL=...`)."
    )
}

/// The answer to a command that could not be recorded: a 200 whose body Slack shows to the
/// person only (a 5xx would show only Slack's generic error).
fn database_unreachable(why: &str) -> Response {
    axum::Json(json!({ "response_type": "ephemeral", "text": database_down_text(why) }))
        .into_response()
}

fn form(text: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(text.as_bytes())
        .into_owned()
        .collect()
}

async fn commands(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let text = match verified(&state, &headers, &body) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    match not_replayed(&state, &headers).await {
        Ok(()) => {}
        Err(NotTaken::Refused(r)) => return *r,
        Err(NotTaken::DatabaseDown(why)) => return database_unreachable(&why),
    }
    match dispatch_command(&state.slack, form(&text)) {
        // An empty 200 acknowledges at once; the answers follow through the Web API.
        Ok(()) => StatusCode::OK.into_response(),
        Err(why) => bad_request(why),
    }
}

async fn interactions(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let text = match verified(&state, &headers, &body) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let Some(payload) = form(&text).remove("payload") else {
        return bad_request("an interaction needs a payload field");
    };
    let Ok(p) = serde_json::from_str::<Value>(&payload) else {
        return bad_request("the payload is not JSON");
    };
    match not_replayed(&state, &headers).await {
        Ok(()) => {}
        Err(NotTaken::Refused(r)) => return *r,
        Err(NotTaken::DatabaseDown(why)) => {
            // A button's answer body is not shown: tell the person through its response URL.
            if let Some(url) = p["response_url"].as_str().map(str::to_string) {
                let api = state.slack.api().clone();
                tokio::spawn(async move {
                    let body = json!({ "response_type": "ephemeral", "replace_original": false, "text": database_down_text(&why) });
                    if let Err(e) = api.respond(&url, &body).await {
                        tracing::warn!(error = %e, "could not tell the person the database is down");
                    }
                });
            }
            return StatusCode::OK.into_response();
        }
    }
    match dispatch_interaction(&state.slack, &p) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(why) => bad_request(why),
    }
}

async fn events(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let text = match verified(&state, &headers, &body) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let Ok(v) = serde_json::from_str::<Value>(&text) else {
        return bad_request("the event is not JSON");
    };
    if v["type"] == "url_verification" {
        return axum::Json(json!({ "challenge": v["challenge"] })).into_response();
    }
    match dispatch_event(&state.slack, v) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(why) => bad_request(why),
    }
}

// The dispatchers below take Slack's documented payloads (form fields, interaction JSON, event
// callback JSON), start the work in a task, and return at once. HTTP and Socket Mode share them.

/// A slash command's fields (`command`, `text`, `user_id`, `channel_id`, `response_url`, ...).
pub fn dispatch_command(slack: &Slack, f: HashMap<String, String>) -> Result<(), &'static str> {
    let (Some(command), Some(user), Some(channel)) =
        (f.get("command"), f.get("user_id"), f.get("channel_id"))
    else {
        return Err("a slash command needs command, user_id and channel_id");
    };
    let (command, user, channel) = (command.clone(), user.clone(), channel.clone());
    let args = f.get("text").cloned().unwrap_or_default();
    let user_name = f.get("user_name").cloned();
    let response_url = f.get("response_url").cloned();
    let slack = slack.clone();
    tokio::spawn(async move {
        slack
            .on_command(
                &command,
                &args,
                &user,
                user_name.as_deref(),
                &channel,
                response_url,
            )
            .await;
    });
    Ok(())
}

/// An interaction payload; only `block_actions` (our buttons) do anything.
pub fn dispatch_interaction(slack: &Slack, p: &Value) -> Result<(), &'static str> {
    if p["type"] != "block_actions" {
        return Ok(());
    }
    let action = p["actions"][0]["action_id"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let request = p["actions"][0]["value"].as_str().unwrap_or("").to_string();
    let user = p["user"]["id"].as_str().unwrap_or("").to_string();
    let user_name = p["user"]["name"]
        .as_str()
        .or(p["user"]["username"].as_str())
        .map(str::to_string);
    let channel = p["channel"]["id"]
        .as_str()
        .or(p["container"]["channel_id"].as_str())
        .unwrap_or("")
        .to_string();
    let response_url = p["response_url"].as_str().map(str::to_string);
    if user.is_empty() || request.is_empty() || channel.is_empty() {
        return Err("the interaction lacks a user, a channel or a request");
    }
    let slack = slack.clone();
    tokio::spawn(async move {
        slack
            .on_button(
                &action,
                &request,
                &user,
                user_name.as_deref(),
                &channel,
                response_url,
            )
            .await;
    });
    Ok(())
}

/// An Events API callback (`event_id` + `event`).
pub fn dispatch_event(slack: &Slack, v: Value) -> Result<(), &'static str> {
    if v["type"] != "event_callback" {
        return Ok(());
    }
    let Some(event_id) = v["event_id"].as_str().map(str::to_string) else {
        return Err("an event callback needs an event_id");
    };
    let slack = slack.clone();
    tokio::spawn(async move {
        // Slack retries deliveries (X-Slack-Retry-Num); the event id makes each one count once,
        // whichever delivery arrives first.
        match slack.poster.chat.first_delivery(PLATFORM, &event_id).await {
            Ok(true) => slack.on_event(&v["event"]).await,
            Ok(false) => tracing::debug!(event_id, "repeated delivery ignored"),
            Err(e) => {
                tracing::error!(event_id, error = %e, "cannot record the event; not handling it twice is safer")
            }
        }
    });
    Ok(())
}

/// Readiness answers within a second whatever the database does: a probe that hangs is
/// worse than one that says why it fails.
const READY_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

async fn ready(State(state): State<AppState>) -> Response {
    match tokio::time::timeout(READY_PATIENCE, (state.ping)()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready").into_response(),
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: database unreachable: {e}"),
        )
            .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the database did not answer within 1 s",
        )
            .into_response(),
    }
}
